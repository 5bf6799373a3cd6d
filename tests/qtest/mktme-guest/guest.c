/*
 * TME-MK test guest: CPUID, the TME MSRs, PCONFIG and KeyID aliasing,
 * recorded in MkgResults at MKG_RESULTS_PA for mktme-pconfig-test.c.
 * Runs in long mode, ring 0, identity-mapped 0..1 GiB (boot.S); KeyID k
 * also gets a window at (k + 1) << 39 mapping 0..1 GiB to (k << 40) | pa.
 *
 * Copyright (c) 2026 The qemu-mktme authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>
#include "results.h"
#include "boot.h"
#include "guest-lib.h"

#define MSR_TME_CAPABILITY  0x981
#define MSR_TME_ACTIVATE    0x982
#define MSR_TME_EXCL_MASK   0x983
#define MSR_TME_EXCL_BASE   0x984

#define PG_P    1ULL
#define PG_W    2ULL
#define PG_U    4ULL
#define PG_PS   0x80ULL
#define PG_PRW  (PG_P | PG_W | PG_U)

/*
 * -DMKG_DEBUG_FAKE_TME: run every step on a QEMU without TME-MK, with
 * all KeyIDs aliased to 0 (to debug the guest itself, not QEMU).
 */
#ifdef MKG_DEBUG_FAKE_TME
#define KID(k)  0ULL
#define FAKE_TME 1
#else
#define KID(k)  ((uint64_t)(k) << 40)
#define FAKE_TME 0
#endif
#define WIN(k)  ((uint64_t)((k) + 1) << 39)
#define WIN_TABLES  0x600000ULL     /* PDPT, PD of window k at + k * 8K */
#define PA_PDPT_F   0x680000ULL
#define PML4_F      20
#define VA_F        (((uint64_t)PML4_F << 39) | (2ULL << 21) | (0x100ULL << 12))
#define VA_UNMAPPED 0x7f0000000000ULL

#define CMD_DIRECT  0
#define CMD_RANDOM  1
#define CMD_CLEAR   2
#define CMD_NOENC   3
#define ALG128      (1u << 8)
#define ALG256      (1u << 10)

enum { FORM_PLAIN, FORM_LOCK, FORM_REP, FORM_REPNE, FORM_OPSIZE, FORM_REXW };


static MkgResults *const res = (MkgResults *)MKG_RESULTS_PA;

static IdtEntry idt[32] __attribute__((aligned(16)));
static uint8_t pcs[256] __attribute__((aligned(256)));  /* PCONFIG struct */
static uint64_t tbuf[512];                              /* a table page */
static uint8_t buf[MKG_LEN_D];

static void stage(const char *name)
{
    res->stage++;
    puts_dbg("mktme-guest: ");
    puts_dbg(name);
    puts_dbg("\n");
}

static void halt_forever(void)
{
    for (;;) {
        asm volatile("cli; hlt");
    }
}

static void finish(uint64_t code)
{
    asm volatile("" : : : "memory");
    res->done = code;
    puts_dbg(code == MKG_DONE_OK ? "mktme-guest: done\n" :
             "mktme-guest: CRASHED\n");
    halt_forever();
}

static void write_cr3(uint64_t v)
{
    asm volatile("mov %0, %%cr3" : : "r"(v) : "memory");
}

/* An exception nobody expected: record it and stop. */
void fatal_fault(uint64_t *frame)
{
    res->crash_vector = frame[1];
    res->crash_error = frame[2];
    res->crash_rip = frame[3];
    res->crash_cr2 = read_cr2();
    puts_dbg("mktme-guest: unexpected exception ");
    puthex(frame[1]);
    puts_dbg(" error ");
    puthex(frame[2]);
    puts_dbg(" rip ");
    puthex(frame[3]);
    puts_dbg(" cr2 ");
    puthex(res->crash_cr2);
    puts_dbg("\n");
    finish(MKG_DONE_CRASH);
}

static void cpuid(uint32_t leaf, uint32_t sub, uint32_t *r)
{
    asm volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3])
                 : "a"(leaf), "c"(sub));
}

static void rdmsr_op(MkgOp *op, uint32_t msr)
{
    uint64_t v = 0;

    op->vector = g_rdmsr(msr, &v);
    op->value = v;
    puts_dbg("  rdmsr ");
    puthex(msr);
    puts_dbg(" = ");
    puthex(v);
    puts_dbg(" vector ");
    puthex(op->vector);
    puts_dbg("\n");
}

static void read_msrs(MkgOp *ops)
{
    for (int i = 0; i < 4; i++) {
        rdmsr_op(&ops[i], MSR_TME_CAPABILITY + i);
    }
}

static void wrmsr_op(unsigned idx, uint32_t msr, uint64_t val)
{
    MkgOp *op = &res->wr[idx];

    op->value = val;
    op->vector = g_wrmsr(msr, val);
    puts_dbg("  wrmsr ");
    puthex(msr);
    puts_dbg(" <- ");
    puthex(val);
    puts_dbg(" vector ");
    puthex(op->vector);
    puts_dbg("\n");
}

/* Fill the PCONFIG struct: KEYID, KEYID_CTRL and the two key fields */
static void pc_struct(uint16_t keyid, uint32_t ctrl, const MkgKey *key)
{
    memset(pcs, 0, sizeof(pcs));
    memcpy(pcs, &keyid, 2);
    memcpy(pcs + 2, &ctrl, 4);
    for (int i = 0; key && i < key->len; i++) {
        pcs[64 + i] = key->d0 + i;
        pcs[128 + i] = key->t0 + i;
    }
}

static void pc_run(unsigned idx, uint64_t rax, uint64_t rbx, unsigned form)
{
    MkgOp *op = &res->pc[idx];
    uint64_t out[2];

    op->vector = g_pconfig(rax, rbx, form, out);
    op->value = out[0];
    op->rflags = out[1];
    if (op->vector == 14) {
        op->aux = read_cr2();
    }
    puts_dbg("  pconfig case ");
    puthex(idx);
    puts_dbg(": vector ");
    puthex(op->vector);
    puts_dbg(" rax ");
    puthex(out[0]);
    puts_dbg(" flags ");
    puthex(out[1]);
    puts_dbg("\n");
}

static void pc_key(unsigned idx, uint16_t keyid, uint32_t ctrl,
                   const MkgKey *key)
{
    pc_struct(keyid, ctrl, key);
    pc_run(idx, 0, (uint64_t)pcs, FORM_PLAIN);
}

static uint64_t kva(unsigned k, uint64_t pa)
{
    return WIN(k) + pa;
}

static void flags_run(MkgFlags *f, uint64_t rax, uint64_t producer)
{
    uint64_t out[3] = { 0 };

    f->vector = g_pconfig_flags(rax, (uint64_t)pcs, producer, out);
    f->rax = out[0];
    f->rflags = out[1];
    f->setcc = out[2];
}

/*
 * PCONFIG's RFLAGS must not depend on the instruction before it: each
 * producer alone (what a fault leaves), then with a successful PCONFIG
 * (all six clear), with one that faults (leaf 1: #GP, flags kept) and
 * with ones that fail with a status (DEVICE_BUSY, ENTROPY_ERROR: ZF
 * alone set).
 */
static void pconfig_flags(void)
{
    for (unsigned p = 0; p < MKG_NFP; p++) {
        pc_struct(MKG_FP_KEYID, CMD_NOENC | ALG128, NULL);
        flags_run(&res->fp_alone[p], 0, p | MKG_FP_ALONE);
        flags_run(&res->fp_ok[p], 0, p);
        flags_run(&res->fp_gp[p], 1, p);
        pc_struct(MKG_FP_BUSY_KEYID, CMD_NOENC | ALG128, NULL);
        flags_run(&res->fp_busy[p], 0, p);
        pc_struct(MKG_FP_NOENT_KEYID, CMD_RANDOM | ALG128, NULL);
        flags_run(&res->fp_noent[p], 0, p);
    }
}

/*
 * 64-bit mode ignores the DS base: with DS loaded from a descriptor with
 * base MKG_DS_BASE, PCONFIG must read RBX (KeyID MKG_FP_KEYID,
 * NO_ENCRYPT), not DS.base + RBX (KeyID 0: #GP).
 */
static void pconfig_ds_base(void)
{
    uint8_t *st = (uint8_t *)kva(0, MKG_PA_PCS_DS);
    uint32_t ctrl = CMD_NOENC | ALG128;
    uint16_t keyid = MKG_FP_KEYID;
    uint64_t out[2];

    memset(st, 0, 192);
    memcpy(st, &keyid, 2);
    memcpy(st + 2, &ctrl, 4);
    memset(st + MKG_DS_BASE, 0, 192);
    g_load_ds(MKG_DS_SEL);
    res->pc_ds.vector = g_pconfig(0, (uint64_t)st, FORM_PLAIN, out);
    g_load_ds(0x10);            /* the flat data segment */
    res->pc_ds.value = out[0];
    res->pc_ds.rflags = out[1];

    /*
     * Compatibility mode adds it: DS.base + EBX is the struct (through
     * the identity map), EBX alone zeroes (KeyID 0: #GP, fatal there).
     */
    st = (uint8_t *)MKG_PA_PCS_DS;
    memset(st - MKG_DS_BASE, 0, 192);
    res->pc_ds32.vector = g_pconfig_compat(0, MKG_PA_PCS_DS - MKG_DS_BASE,
                                           MKG_DS_SEL, out);
    res->pc_ds32.value = out[0];
    res->pc_ds32.rflags = out[1];
}

/* Exactly one access of the given size (unaligned ones included) */
static uint64_t ld64(uint64_t va)
{
    uint64_t v;

    asm volatile("movq (%1), %0" : "=r"(v) : "r"(va) : "memory");
    return v;
}

static void st64(uint64_t va, uint64_t v)
{
    asm volatile("movq %0, (%1)" : : "r"(v), "r"(va) : "memory");
}

static void poke(unsigned k, uint64_t pa, unsigned size, uint64_t val)
{
    stn(kva(k, pa), size, val);
}

/* Copy through KeyID k with 8-byte accesses */
static void rd(unsigned k, uint64_t pa, void *dst, size_t len)
{
    uint64_t *d = dst;

    for (size_t i = 0; i < len / 8; i++) {
        d[i] = ld64(kva(k, pa + i * 8));
    }
}

static void wr(unsigned k, uint64_t pa, const void *src, size_t len)
{
    const uint64_t *s = src;

    for (size_t i = 0; i < len / 8; i++) {
        st64(kva(k, pa + i * 8), s[i]);
    }
}

static void fill(unsigned which, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        buf[i] = mkg_pattern(which, i);
    }
}

/* Window k: PML4[k + 1] -> PDPT -> PD of 2 MiB pages at KeyID k */
static void map_windows(void)
{
    for (unsigned k = 0; k < MKG_NKID; k++) {
        uint64_t *pdpt = (uint64_t *)(WIN_TABLES + k * 0x2000);
        uint64_t *pd = pdpt + 512;

        memset(pdpt, 0, 8192);
        pdpt[0] = (uint64_t)pd | PG_PRW;
        for (uint64_t i = 0; i < 512; i++) {
            pd[i] = KID(k) | (i << 21) | PG_PS | PG_PRW;
        }
        boot_pml4[k + 1] = (uint64_t)pdpt | PG_PRW;
    }
    write_cr3((uint64_t)boot_pml4);
}

/* TME is enumerated but not active: activate it like a BIOS would */
static void self_activate(void)
{
    pc_struct(1, CMD_DIRECT | ALG128, &mkg_key1);
    pc_run(MKG_PC_BEFORE_ACT, 0, (uint64_t)pcs, FORM_PLAIN);
    wrmsr_op(MKG_WR_ACT_RESERVED, MSR_TME_ACTIVATE, MKG_ACTIVATE | 1 << 20);
    wrmsr_op(MKG_WR_ACT_KEYID7, MSR_TME_ACTIVATE,
             (MKG_ACTIVATE & ~(0xfULL << 32)) | 7ULL << 32);
    wrmsr_op(MKG_WR_ACT_POLICY1, MSR_TME_ACTIVATE, MKG_ACTIVATE | 1 << 4);
    wrmsr_op(MKG_WR_ACT_NOENABLE, MSR_TME_ACTIVATE, MKG_ACTIVATE & ~2ULL);
    wrmsr_op(MKG_WR_EMASK_HOLE, MSR_TME_EXCL_MASK,
             MKG_EXCL_MASK & ~(1ULL << 40));
    wrmsr_op(MKG_WR_EMASK_ABOVE, MSR_TME_EXCL_MASK,
             MKG_EXCL_MASK | 1ULL << 46);
    wrmsr_op(MKG_WR_EBASE_ABOVE, MSR_TME_EXCL_BASE,
             MKG_EXCL_BASE | 1ULL << 46);
    wrmsr_op(MKG_WR_EMASK, MSR_TME_EXCL_MASK, MKG_EXCL_MASK);
    wrmsr_op(MKG_WR_EBASE, MSR_TME_EXCL_BASE, MKG_EXCL_BASE);
    wrmsr_op(MKG_WR_ACT, MSR_TME_ACTIVATE, MKG_ACTIVATE);
}

static void program_keys(void)
{
    pc_key(MKG_PC_K1, 1, CMD_DIRECT | ALG128, &mkg_key1);
    pc_key(MKG_PC_K2, 2, CMD_DIRECT | ALG256, &mkg_key2);
    pc_key(MKG_PC_K3, 3, CMD_NOENC | ALG128, NULL);
    pc_key(MKG_PC_K5_SET, 5, CMD_DIRECT | ALG128, &mkg_key5);
    pc_key(MKG_PC_K6_RANDOM, 6, CMD_RANDOM | ALG128, &mkg_junk);
    pc_key(MKG_PC_K7_RANDOM, 7, CMD_RANDOM | ALG256, &mkg_key2);
    pc_key(MKG_PC_K8_NOENC, 8, CMD_NOENC | ALG256, NULL);
    pc_key(MKG_PC_K9_SET, 9, CMD_DIRECT | ALG256, &mkg_key9);
    pc_key(MKG_PC_K9_CLEAR, 9, CMD_CLEAR | ALG256, NULL);
    pc_struct(10, CMD_NOENC | ALG128, NULL);
    pc_run(MKG_PC_K10_REXW, 0, (uint64_t)pcs, FORM_REXW);
    pc_struct(11, CMD_DIRECT | ALG128, &mkg_key1);
    pc_run(MKG_PC_K11_RAXHI, 0xffffffff00000000ULL, (uint64_t)pcs,
           FORM_PLAIN);
}

/* Each of these must fault; most would re-key KeyID 1 if they did not. */
static void pconfig_errors(void)
{
    static const struct {
        uint8_t idx, form;
        uint16_t keyid;
        uint32_t ctrl;
        uint64_t rax;
    } c[] = {
        { MKG_PC_LEAF1, FORM_PLAIN, 1, CMD_DIRECT | ALG128, 1 },
        { MKG_PC_LEAF2, FORM_PLAIN, 1, CMD_DIRECT | ALG128, 2 },
        { MKG_PC_CTRL_RESERVED, FORM_PLAIN, 1,
          CMD_DIRECT | ALG128 | 1u << 24, 0 },
        { MKG_PC_CMD4, FORM_PLAIN, 1, 4 | ALG128, 0 },
        { MKG_PC_KEYID0, FORM_PLAIN, 0, CMD_DIRECT | ALG128, 0 },
        { MKG_PC_KEYID64, FORM_PLAIN, 64, CMD_DIRECT | ALG128, 0 },
        { MKG_PC_KEYID_8001, FORM_PLAIN, 0x8001, CMD_DIRECT | ALG128, 0 },
        { MKG_PC_ALG0, FORM_PLAIN, 1, CMD_DIRECT, 0 },
        { MKG_PC_ALG_TWO, FORM_PLAIN, 1, CMD_DIRECT | ALG128 | ALG256, 0 },
        { MKG_PC_ALG_BIT9, FORM_PLAIN, 1, CMD_DIRECT | 1u << 9, 0 },
        { MKG_PC_CLEAR_ALG0, FORM_PLAIN, 1, CMD_CLEAR, 0 },
        { MKG_PC_NOENC_ALG0, FORM_PLAIN, 1, CMD_NOENC, 0 },
        { MKG_PC_LOCK, FORM_LOCK, 1, CMD_DIRECT | ALG128, 0 },
        { MKG_PC_REP, FORM_REP, 1, CMD_DIRECT | ALG128, 0 },
        { MKG_PC_REPNE, FORM_REPNE, 1, CMD_DIRECT | ALG128, 0 },
        { MKG_PC_OPSIZE, FORM_OPSIZE, 1, CMD_DIRECT | ALG128, 0 },
    };

    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        pc_struct(c[i].keyid, c[i].ctrl, &mkg_junk);
        pc_run(c[i].idx, c[i].rax, (uint64_t)pcs, c[i].form);
    }
    pc_struct(1, CMD_DIRECT | ALG128, &mkg_junk);
    pc_run(MKG_PC_MISALIGNED, 0, (uint64_t)pcs + 16, FORM_PLAIN);
    pc_run(MKG_PC_MISALIGNED_UNMAPPED, 0, VA_UNMAPPED + 16, FORM_PLAIN);
    pc_run(MKG_PC_UNMAPPED, 0, VA_UNMAPPED, FORM_PLAIN);

    res->pc[MKG_PC_CPL3].vector = g_user_pconfig((uint64_t)pcs);
    res->pc[MKG_PC_CPL3].value = fault_cs;
    res->pc[MKG_PC_CPL3].aux = user_returned;
    puts_dbg("  pconfig at CPL 3: vector ");
    puthex(res->pc[MKG_PC_CPL3].vector);
    puts_dbg("\n");
}

/*
 * The first accesses through a KeyID other than 0: F is stored through
 * KeyID 0 first, so that the TLB maps the page writable before any
 * shadow exists; after it has been read through KeyID 1 (a few times:
 * the first fill may wait for the next TB), a store through the same
 * KeyID-0 address must still be seen through KeyID 1.
 */
static void first_fill_tests(void)
{
    stage("first fill: F via KeyID 0, read via KeyID 1, F' via KeyID 0");
    fill(7, MKG_LEN_F);
    wr(0, MKG_PA_F, buf, MKG_LEN_F);
    for (int i = 0; i < 4; i++) {
        rd(1, MKG_PA_F, res->f_read1[0], MKG_LEN_F);
    }
    fill(8, MKG_LEN_F);
    wr(0, MKG_PA_F, buf, MKG_LEN_F);
    rd(1, MKG_PA_F, res->f_read1[1], MKG_LEN_F);
}

static void alias_tests(void)
{
    stage("aliasing: P_A via KeyID 1, read via KeyIDs 0..11");
    fill(1, MKG_LEN_A);
    memcpy((void *)kva(1, MKG_PA_A), buf, MKG_LEN_A);   /* rep movsb */
    rd(5, MKG_PA_A, res->a_read5_set, MKG_LEN_A);
    pc_key(MKG_PC_K5_CLEAR, 5, CMD_CLEAR | ALG128, NULL);
    for (unsigned k = 0; k < MKG_NKID; k++) {
        rd(k, MKG_PA_A, res->a_read[k], MKG_LEN_A);
    }
    rd(6, MKG_PA_A, res->a_read6_again, MKG_LEN_A);

    stage("aliasing: Q via KeyID 0, S via KeyID 3, T via KeyID 2");
    fill(2, MKG_LEN_B);
    wr(0, MKG_PA_B, buf, MKG_LEN_B);
    rd(1, MKG_PA_B, res->b_read1, MKG_LEN_B);
    rd(3, MKG_PA_B, res->b_read3, MKG_LEN_B);
    fill(3, MKG_LEN_C);
    wr(3, MKG_PA_C, buf, MKG_LEN_C);
    rd(0, MKG_PA_C, res->c_read0, MKG_LEN_C);
    rd(1, MKG_PA_C, res->c_read1, MKG_LEN_C);
    rd(3, MKG_PA_C, res->c_read3, MKG_LEN_C);
    fill(4, MKG_LEN_C);
    wr(2, MKG_PA_C2, buf, MKG_LEN_C);
    rd(0, MKG_PA_C2, res->c2_read0, MKG_LEN_C);
    rd(2, MKG_PA_C2, res->c2_read2, MKG_LEN_C);

    stage("aliasing: partial writes via KeyID 1");
    fill(5, MKG_LEN_D);
    wr(1, MKG_PA_D, buf, MKG_LEN_D);
    for (size_t i = 0; i < sizeof(mkg_pokes) / sizeof(mkg_pokes[0]); i++) {
        poke(1, MKG_PA_D + mkg_pokes[i].off, mkg_pokes[i].size,
             mkg_pokes[i].val);
    }
    poke(0, MKG_PA_D + MKG_D_KID0_OFF, 1, MKG_D_KID0_VAL);
    rd(1, MKG_PA_D, res->d_read1, MKG_LEN_D);

    stage("aliasing: U via KeyID 0 at 128 MiB");
    fill(6, MKG_LEN_E);
    wr(0, MKG_PA_E, buf, MKG_LEN_E);
    rd(3, MKG_PA_E, res->e_read3, MKG_LEN_E);
    rd(1, MKG_PA_E, res->e_read1, MKG_LEN_E);
}

static void exec_op(unsigned i, uint64_t va)
{
    uint64_t ret = 0;

    res->exec[i].vector = g_call(va, &ret);
    res->exec[i].value = ret;
    if (res->exec[i].vector == 14) {
        res->exec[i].aux = read_cr2();
    }
    puts_dbg("  call ");
    puthex(va);
    puts_dbg(": vector ");
    puthex(res->exec[i].vector);
    puts_dbg(" eax ");
    puthex(ret);
    puts_dbg("\n");
}

static void exec_tests(void)
{
    uint8_t *line = buf;

    stage("fetch: code via KeyID 1, run via KeyID 1");
    memset(line, 0xcc, 64);
    line[0] = 0xb8;
    line[1] = MKG_CODE_IMM1 & 0xff;
    line[2] = MKG_CODE_IMM1 >> 8;
    line[3] = line[4] = 0;
    line[5] = 0xc3;
    wr(1, MKG_PA_X, line, 64);
    exec_op(0, WIN(1) + MKG_PA_X);
    poke(1, MKG_PA_X + 1, 4, MKG_CODE_IMM2);
    exec_op(1, WIN(1) + MKG_PA_X);
    rd(0, MKG_PA_X, res->x_read0, 64);

    /*
     * CR3 and PML4E carry KeyID 4 (TME mode: reads as KeyID 0), the PD
     * is written and reached via KeyID 1, the PT via KeyID 3.
     */
    stage("fetch: paging structures behind KeyIDs 4, 1, 3");
    memset((void *)PA_PDPT_F, 0, 4096);
    ((uint64_t *)PA_PDPT_F)[0] = KID(1) | MKG_PA_PD_F | PG_PRW;
    memset(tbuf, 0, sizeof(tbuf));
    tbuf[2] = KID(3) | MKG_PA_PT_F | PG_PRW;
    wr(1, MKG_PA_PD_F, tbuf, sizeof(tbuf));
    memset(tbuf, 0, sizeof(tbuf));
    tbuf[0x100] = KID(1) | MKG_PA_X | PG_PRW;
    wr(3, MKG_PA_PT_F, tbuf, sizeof(tbuf));
    boot_pml4[PML4_F] = KID(4) | PA_PDPT_F | PG_PRW;
    res->pd_f_before = ld64(kva(1, MKG_PA_PD_F + 2 * 8));
    res->pt_f_before = ld64(kva(3, MKG_PA_PT_F + 0x100 * 8));
    write_cr3(KID(4) | (uint64_t)boot_pml4);
    exec_op(2, VA_F);
    write_cr3((uint64_t)boot_pml4);
    res->pd_f_after = ld64(kva(1, MKG_PA_PD_F + 2 * 8));
    res->pt_f_after = ld64(kva(3, MKG_PA_PT_F + 0x100 * 8));
}

/* MOVDIR64B (rAX), [rCX] and MOVDIRI [rCX], rAX; LOCK; register forms */
static const uint8_t op_movdir64b[] = { 0x66, 0x0f, 0x38, 0xf8, 0x01 };
static const uint8_t op_movdir64b_a32[] = { 0x67, 0x66, 0x0f, 0x38, 0xf8,
                                            0x01 };
static const uint8_t op_movdir64b_lock[] = { 0xf0, 0x66, 0x0f, 0x38, 0xf8,
                                             0x01 };
static const uint8_t op_movdir64b_reg[] = { 0x66, 0x0f, 0x38, 0xf8, 0xc1 };
static const uint8_t op_movdir64b_rdx[] = { 0x66, 0x0f, 0x38, 0xf8, 0x11 };
static const uint8_t op_movdir64b_r9[] = { 0x66, 0x44, 0x0f, 0x38, 0xf8,
                                           0x09 };
static const uint8_t op_movdiri32[] = { 0x0f, 0x38, 0xf9, 0x01 };
static const uint8_t op_movdiri64[] = { 0x48, 0x0f, 0x38, 0xf9, 0x01 };
static const uint8_t op_movdiri_reg[] = { 0x0f, 0x38, 0xf9, 0xc1 };

#define CR0_WP      (1ULL << 16)
#define PML4_RO     22          /* a read-only view of 0..1 GiB */
#define PA_PDPT_RO  0x690000ULL
#define VA_RO(pa)   (((uint64_t)PML4_RO << 39) + (pa))

static uint8_t *put(uint8_t *c, const void *b, size_t n)
{
    memcpy(c, b, n);
    return c + n;
}

static uint8_t *mov_imm(uint8_t *c, unsigned reg, uint64_t v, bool wide)
{
    if (wide) {
        *c++ = 0x48;
    }
    *c++ = 0xb8 + reg;
    return put(c, &v, wide ? 8 : 4);
}

/* Code slot @slot: RAX = @rax, RCX = @rcx, @op, ret; then call it */
static uint64_t mv_run(unsigned slot, uint64_t rax, uint64_t rcx,
                       const uint8_t *op, size_t n)
{
    uint8_t *c = (uint8_t *)(MKG_PA_MVCODE + slot * 64), *p = c;
    uint64_t ret;

    p = mov_imm(p, 0, rax, true);
    p = mov_imm(p, 1, rcx, true);
    p = put(p, op, n);
    *p = 0xc3;
    return g_call((uint64_t)c, &ret);
}

/*
 * MOVDIR64B with the destination in RDX or R9: RDX = R9 = @dest, RCX =
 * @src, RAX = the decoy line (which a destination taken from RAX hits)
 */
static uint64_t mv_run_reg(unsigned slot, uint64_t dest, uint64_t src,
                           const uint8_t *op, size_t n)
{
    uint8_t *c = (uint8_t *)(MKG_PA_MVCODE + slot * 64), *p = c;
    uint64_t ret;

    p = mov_imm(p, 0, kva(1, MKG_MV_DECOY), true);
    p = mov_imm(p, 2, dest, true);
    *p++ = 0x49;                        /* REX.W REX.B: mov $imm64, %r9 */
    *p++ = 0xb9;
    p = put(p, &dest, 8);
    p = mov_imm(p, 1, src, true);
    p = put(p, op, n);
    *p = 0xc3;
    return g_call((uint64_t)c, &ret);
}

/* The same in compatibility mode (32-bit code), ES = @es */
static uint64_t mv_run32(unsigned slot, uint16_t es, uint32_t eax,
                         uint32_t ebx, uint32_t ecx, uint32_t edi,
                         const uint8_t *op, size_t n)
{
    uint8_t *c = (uint8_t *)(MKG_PA_MVCODE + slot * 64), *p = c;

    p = mov_imm(p, 0, eax, false);
    p = mov_imm(p, 3, ebx, false);
    p = mov_imm(p, 1, ecx, false);
    p = mov_imm(p, 7, edi, false);
    p = put(p, op, n);
    *p = 0xc3;
    return g_compat_call((uint32_t)(uint64_t)c, es);
}

static void mv_fault(unsigned f, uint64_t rax, uint64_t rcx,
                     const uint8_t *op, size_t n)
{
    MkgOp *o = &res->mvf[f];

    o->vector = mv_run(MKG_NMV + f, rax, rcx, op, n);
    o->aux = o->vector == MKG_NO_FAULT ? 0 : fault_err;
    o->value = o->vector == 14 ? read_cr2() : 0;
    puts_dbg("  fault case ");
    putdec(f);
    puts_dbg(": vector ");
    puthex(o->vector);
    puts_dbg("\n");
}

static void mv_tests(void)
{
    uint64_t *pdpt = (uint64_t *)PA_PDPT_RO, *pd = pdpt + 512;
    uint64_t src = MKG_PA_MVSRC + 0x800, cr0;
    uint8_t fillb[64];

    stage("MOVDIR64B and MOVDIRI through KeyIDs");
    memset(fillb, MKG_MV_FILL, 64);
    wr(0, MKG_MV_DECOY, fillb, 64);
    for (unsigned i = 0; i < MKG_NMV; i++) {
        const MkgMv *m = &mkg_mv[i];
        uint64_t dest = mkg_mv_dest(i), from = mkg_mv_src(i);
        unsigned long long *v = &res->mv_vector[i];

        if (m->prekid == 0xff) {
            wr(0, dest, fillb, 64);
        } else {
            fill(MKG_MV_PATTERN + (m->prekid == m->keyid ? 0 : 20) + i, 64);
            wr(m->prekid, dest, buf, 64);
        }
        for (unsigned j = 0; j < 64; j++) {
            poke(m->srckid, from + j, 1, mkg_pattern(MKG_MV_PATTERN + i, j));
        }
        switch (i) {
        case MKG_MV_A32:
            *v = mv_run(i, 0xdead000000000000ULL | dest,
                        0xbeef000000000000ULL | from, op_movdir64b_a32,
                        sizeof(op_movdir64b_a32));
            break;
        case MKG_MV_COMPAT32:
            *v = mv_run32(i, MKG_DS_SEL, dest - MKG_DS_BASE, 0, from, 0,
                          op_movdir64b, sizeof(op_movdir64b));
            break;
        case MKG_MV_COMPAT16:
            /* ES:AX and DS:[BX+DI]: the registers' high halves unused */
            *v = mv_run32(i, 0x10, 0xabcd0000 | dest,
                          0xffff0000 | (from & ~0xfULL), 0, from & 0xf,
                          op_movdir64b_a32, sizeof(op_movdir64b_a32));
            break;
        case MKG_MV_DIRI32:
            *v = mv_run(i, MKG_MV_VAL32, kva(1, dest + MKG_MV_DIRI_OFF),
                        op_movdiri32, sizeof(op_movdiri32));
            break;
        case MKG_MV_DIRI64:
            *v = mv_run(i, MKG_MV_VAL64, kva(2, dest + MKG_MV_DIRI_OFF),
                        op_movdiri64, sizeof(op_movdiri64));
            break;
        case MKG_MV_RDX:
            *v = mv_run_reg(i, kva(m->keyid, dest), kva(m->srckid, from),
                            op_movdir64b_rdx, sizeof(op_movdir64b_rdx));
            break;
        case MKG_MV_R9:
            *v = mv_run_reg(i, kva(m->keyid, dest), kva(m->srckid, from),
                            op_movdir64b_r9, sizeof(op_movdir64b_r9));
            break;
        default:
            *v = mv_run(i, kva(m->keyid, dest), kva(m->srckid, from),
                        op_movdir64b, sizeof(op_movdir64b));
            break;
        }
        rd(m->keyid, dest, res->mv_readk[i], 64);
        rd(0, dest, res->mv_read0[i], 64);
    }

    stage("MOVDIR64B and MOVDIRI: faults leave memory as it was");
    memset(pdpt, 0, 8192);
    pdpt[0] = (uint64_t)pd | PG_PRW;
    for (uint64_t i = 0; i < 512; i++) {
        pd[i] = (i << 21) | PG_PS | PG_P | PG_U;
    }
    boot_pml4[PML4_RO] = (uint64_t)pdpt | PG_PRW;
    write_cr3((uint64_t)boot_pml4);
    for (unsigned j = 0; j < 64; j++) {
        poke(0, src + j, 1, mkg_pattern(MKG_MV_PATTERN + MKG_NMV, j));
    }
    for (unsigned f = 0; f < MKG_NMVF; f++) {
        wr(0, MKG_PA_MVF + f * 0x100, fillb, 64);
    }
    mv_fault(MKG_MVF_MISALIGNED, kva(1, MKG_PA_MVF + 8), src, op_movdir64b,
             sizeof(op_movdir64b));
    mv_fault(MKG_MVF_DEST_UNMAPPED, VA_UNMAPPED, src, op_movdir64b,
             sizeof(op_movdir64b));
    mv_fault(MKG_MVF_SRC_UNMAPPED,
             kva(1, MKG_PA_MVF + MKG_MVF_SRC_UNMAPPED * 0x100),
             VA_UNMAPPED + 5, op_movdir64b, sizeof(op_movdir64b));
    mv_fault(MKG_MVF_SRC_CROSS,
             kva(1, MKG_PA_MVF + MKG_MVF_SRC_CROSS * 0x100),
             MKG_MVF_SRC_CROSS_AT - 24, op_movdir64b, sizeof(op_movdir64b));
    /* CR0.WP: ring 0 too must respect the read-only mapping */
    asm volatile("mov %%cr0, %0" : "=r"(cr0));
    asm volatile("mov %0, %%cr0" : : "r"(cr0 | CR0_WP) : "memory");
    mv_fault(MKG_MVF_DEST_RO, VA_RO(MKG_PA_MVF + MKG_MVF_DEST_RO * 0x100),
             src, op_movdir64b, sizeof(op_movdir64b));
    asm volatile("mov %0, %%cr0" : : "r"(cr0) : "memory");
    mv_fault(MKG_MVF_REG, kva(1, MKG_PA_MVF + MKG_MVF_REG * 0x100), src,
             op_movdir64b_reg, sizeof(op_movdir64b_reg));
    mv_fault(MKG_MVF_LOCK, kva(1, MKG_PA_MVF + MKG_MVF_LOCK * 0x100), src,
             op_movdir64b_lock, sizeof(op_movdir64b_lock));
    mv_fault(MKG_MVF_DIRI_REG, MKG_MV_VAL32,
             kva(1, MKG_PA_MVF + MKG_MVF_DIRI_REG * 0x100), op_movdiri_reg,
             sizeof(op_movdiri_reg));
    boot_pml4[PML4_RO] = 0;
    write_cr3((uint64_t)boot_pml4);
    for (unsigned f = 0; f < MKG_NMVF; f++) {
        rd(0, MKG_PA_MVF + f * 0x100, res->mvf_line[f], 64);
    }
    rd(0, MKG_MV_DECOY, res->mv_decoy, 64);
}

void guest_main(void)
{
    MkgOp *ops = (MkgOp *)&res->msr;
    size_t nops = (MkgOp *)(&res->exec[3]) - ops;
    uint32_t r[4];
    uint64_t act;

    memset(res, 0, sizeof(*res));
    for (size_t i = 0; i < nops; i++) {
        ops[i].vector = MKG_NOT_RUN;
    }
    res->magic = MKG_MAGIC;
    setup_ring0(idt);
    stage("long mode, IDT, TSS ok; CPUID and TME MSRs");

    cpuid(7, 0, r);
    res->cpuid7_ecx = r[2];
    res->cpuid7_edx = r[3];
    cpuid(0x1b, 0, res->cpuid1b[0]);
    cpuid(0x1b, 1, res->cpuid1b[1]);
    cpuid(0x80000008, 0, r);
    res->cpuid80000008_eax = r[0];
    puts_dbg("  cpuid 7.0 ecx ");
    puthex(res->cpuid7_ecx);
    puts_dbg(" edx ");
    puthex(res->cpuid7_edx);
    puts_dbg("\n");
    read_msrs(res->msr);

    if (!(res->cpuid7_ecx & (1 << 13)) && !FAKE_TME) {
        stage("no TME: PCONFIG must #UD, TME MSRs #GP");
        res->path = MKG_PATH_NO_TME;
        pc_key(MKG_PC_NO_TME, 1, CMD_DIRECT | ALG128, &mkg_key1);
        wrmsr_op(MKG_WR_ACT, MSR_TME_ACTIVATE, MKG_ACTIVATE);
        wrmsr_op(MKG_WR_CAP, MSR_TME_CAPABILITY, 0);
        read_msrs(res->msr_after);
        if (!(res->cpuid7_ecx & (3u << 27))) {
            stage("no MOVDIRI, MOVDIR64B: they must #UD");
            /* A source and a value that would show in the line */
            for (unsigned j = 0; j < 64; j++) {
                stn(MKG_PA_MVSRC + j, 1, 0x80 | j);    /* identity map */
            }
            res->mv_noenum[0].vector = mv_run(0, MKG_PA_MVF, MKG_PA_MVSRC,
                                              op_movdir64b,
                                              sizeof(op_movdir64b));
            res->mv_noenum[1].vector = mv_run(1, MKG_MV_VAL32, MKG_PA_MVF,
                                              op_movdiri32,
                                              sizeof(op_movdiri32));
        }
        finish(MKG_DONE_OK);
    }

    if (res->msr[1].vector == MKG_NO_FAULT && (res->msr[1].value & 1)) {
        res->path = MKG_PATH_ACTIVE;
    } else {
        stage("TME not locked: activating it");
        res->path = MKG_PATH_SELF;
        self_activate();
    }
    stage("locked: writes to the TME MSRs");
    wrmsr_op(MKG_WR_ACT_AGAIN, MSR_TME_ACTIVATE, MKG_ACTIVATE);
    wrmsr_op(MKG_WR_EMASK_LOCKED, MSR_TME_EXCL_MASK, MKG_EXCL_MASK);
    wrmsr_op(MKG_WR_EBASE_LOCKED, MSR_TME_EXCL_BASE, MKG_EXCL_BASE);
    wrmsr_op(MKG_WR_CAP, MSR_TME_CAPABILITY, res->msr[0].value);
    read_msrs(res->msr_after);
    act = res->msr_after[1].value;
    if ((res->msr_after[1].vector != MKG_NO_FAULT || (act & 3) != 3 ||
         ((act >> 32) & 0xf) < 4) && !FAKE_TME) {
        stage("TME-MK not usable: stopping");
        res->path = MKG_PATH_INACTIVE;
        finish(MKG_DONE_OK);
    }

    map_windows();
    stage("PCONFIG: programming KeyIDs");
    program_keys();
    stage("PCONFIG: error paths");
    pconfig_errors();
    stage("PCONFIG: RFLAGS after each flag producer; DS base in 64-bit mode");
    pconfig_flags();
    pconfig_ds_base();
    first_fill_tests();
    alias_tests();
    exec_tests();
    if ((res->cpuid7_ecx & (3u << 27)) == 3u << 27) {
        mv_tests();
    }

    stage("PCONFIG: re-key KeyID 1 with AES-XTS-256");
    pc_key(MKG_PC_K1_REKEY, 1, CMD_DIRECT | ALG256, &mkg_key1b);
    rd(1, MKG_PA_A, res->a_read1_rekey, MKG_LEN_A);
    finish(MKG_DONE_OK);
}
