/*
 * TME-MK multi-vCPU guest: every vCPU reads and writes through KeyIDs at
 * once, recorded in MksResults at MKS_RESULTS_PA for mktme-smp-test.c.
 *
 * The BSP (boot.S of ../mktme-guest: long mode, ring 0, 0..1 GiB
 * identity-mapped) reads the number of vCPUs from fw_cfg, maps a window
 * per KeyID k at (k + 1) << 39 (0..1 GiB at (k << 40) | pa, 2 MiB pages),
 * programs the KeyIDs with PCONFIG and starts the APs with INIT-SIPI-SIPI
 * (ap.S).  Then all vCPUs run the scenarios of results.h together,
 * separated by barriers:
 *   a. each vCPU writes and reads back its own buffer through its KeyID;
 *   b. vCPU c writes a line through its KeyID (or KeyID 0) and releases
 *      a flag; vCPU c + 1 reads the line through three KeyIDs;
 *   c. the APs loop through a shared KeyID while the BSP re-programs it;
 *      after the BSP's flag each reads a known line through it;
 *   d. each vCPU walks its own page tables reached through its KeyID, and
 *      a page table shared by all behind another KeyID, so that the page
 *      walker sets Accessed and Dirty bits through KeyIDs on all vCPUs.
 * What the guest cannot check itself (views through other KeyIDs) it
 * records for the qtest, which checks it against OpenSSL.
 *
 * With -DMKS_BENCH (make BENCH=1), the benchmark for scripts/bench-smp
 * instead (at most MKS_BENCH_MAX_CPUS vCPUs, -m 512M): each vCPU reads
 * and writes every line of its own BENCH_MIB MiB buffer through KeyID 0,
 * BENCH_PASSES0 passes, then of another one through its own KeyID,
 * BENCH_PASSES1 passes (one untimed pass of each first); all vCPUs run
 * the same phase at once, in BENCH_ROUNDS alternating rounds.  The BSP
 * reports each vCPU's RDTSC cycles per phase, and the maximum over the
 * vCPUs, on the debug console, and exits through isa-debug-exit (0xf4).
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
#include "ap.h"

#define MSR_TME_ACTIVATE    0x982

#define KID(k)      ((uint64_t)(k) << MKS_KEYID_SHIFT)
#define WIN(k)      ((uint64_t)((k) + 1) << 39)
#define WIN_TABLES  0x200000ULL     /* PDPT, PD of window k at + k * 8K */

#define PG_P        1ULL
#define PG_W        2ULL
#define PG_PWT      8ULL
#define PG_PCD      0x10ULL
#define PG_PS       0x80ULL
#define PG_PRW      MKS_PG_PRW

#define APIC_BASE   0xfee00000ULL
#define APIC_ID     0x20
#define APIC_SVR    0xf0
#define APIC_ICR_LO 0x300
#define APIC_ICR_HI 0x310
#define ICR_INIT    0x000c4500u     /* all but self, assert, INIT */
#define ICR_SIPI    0x000c4600u     /* all but self, assert, start-up */

#define FW_CFG_SEL  0x510
#define FW_CFG_DATA 0x511
#define FW_CFG_NB_CPUS  0x05

#define NO_FAULT    0xff        /* g_rdmsr(): no exception */
#define ALG128      (1u << 8)
#define ALG256      (1u << 10)

#ifdef MKS_BENCH
#ifndef BENCH_MIB
#define BENCH_MIB   16
#endif
#ifndef BENCH_PASSES0
#define BENCH_PASSES0   20
#endif
#ifndef BENCH_PASSES1
#define BENCH_PASSES1   2
#endif
#ifndef BENCH_ROUNDS
#define BENCH_ROUNDS    1
#endif
#if BENCH_PASSES0 < BENCH_ROUNDS || BENCH_PASSES1 < BENCH_ROUNDS
#error "BENCH_PASSES0 and BENCH_PASSES1 must be at least BENCH_ROUNDS"
#endif
#if BENCH_MIB > 16 || BENCH_MIB < 1
#error "BENCH_MIB must be 1 to 16"
#endif
#endif

/* A shared variable alone in its line */
typedef struct Flag {
    uint64_t v;
} __attribute__((aligned(64))) Flag;

static MksResults *const res = (MksResults *)MKS_RESULTS_PA;
static IdtEntry idt[32] __attribute__((aligned(16)));
static IdtEntry ap_idt[32] __attribute__((aligned(16)));
static uint64_t apic_pd[512] __attribute__((aligned(4096)));
static uint8_t pcs[256] __attribute__((aligned(256)));  /* PCONFIG struct */
static unsigned ncpus;
static bool apic_mapped;

static Flag crashed, go, bar_count, bar_gen;

static uint64_t load_acq(Flag *f)
{
    return __atomic_load_n(&f->v, __ATOMIC_ACQUIRE);
}

static void store_rel(Flag *f, uint64_t v)
{
    __atomic_store_n(&f->v, v, __ATOMIC_RELEASE);
}

static void cpu_relax(void)
{
    asm volatile("pause" : : : "memory");
}

static void wait_eq(Flag *f, uint64_t v)
{
    while (load_acq(f) != v) {
        cpu_relax();
    }
}

static void wait_ge(Flag *f, uint64_t v)
{
    while (load_acq(f) < v) {
        cpu_relax();
    }
}

static void halt_forever(void)
{
    for (;;) {
        asm volatile("cli; hlt");
    }
}

static uint32_t apic_read(unsigned reg)
{
    return ldn(APIC_BASE + reg, 4);
}

static void apic_write(unsigned reg, uint32_t v)
{
    stn(APIC_BASE + reg, 4, v);
}

static uint64_t rdtsc(void)
{
    uint32_t lo, hi;

    asm volatile("lfence; rdtsc; lfence" : "=a"(lo), "=d"(hi) : : "memory");
    return (uint64_t)hi << 32 | lo;
}

static void write_cr3(uint64_t v)
{
    asm volatile("mov %0, %%cr3" : : "r"(v) : "memory");
}

static void finish(uint64_t code)
{
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    res->done = code;
    puts_dbg(code == MKS_DONE_OK ? "mktme-smp: done\n" :
             "mktme-smp: FAILED\n");
#ifdef MKS_BENCH
    outl(0xf4, code != MKS_DONE_OK);    /* QEMU exits (code << 1) | 1 */
#endif
    halt_forever();
}

/* An exception nobody expected, on any vCPU: record the first, stop. */
void fatal_fault(uint64_t *frame)
{
    if (__atomic_exchange_n(&crashed.v, 1, __ATOMIC_SEQ_CST) == 0) {
        res->crash_vector = frame[1];
        res->crash_error = frame[2];
        res->crash_rip = frame[3];
        res->crash_cr2 = read_cr2();
        res->crash_apic_id = apic_mapped ? apic_read(APIC_ID) >> 24 : ~0ULL;
        puts_dbg("mktme-smp: unexpected exception ");
        puthex(frame[1]);
        puts_dbg(" error ");
        puthex(frame[2]);
        puts_dbg(" rip ");
        puthex(frame[3]);
        puts_dbg(" cr2 ");
        puthex(res->crash_cr2);
        puts_dbg(" apic ");
        puthex(res->crash_apic_id);
        puts_dbg("\n");
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        res->done = MKS_DONE_CRASH;
    }
    halt_forever();
}

static void outw(uint16_t port, uint16_t v)
{
    asm volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}

static uint8_t inb(uint16_t port)
{
    uint8_t v;

    asm volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

/* FW_CFG_NB_CPUS: the number of vCPUs QEMU started (16-bit, LE) */
static unsigned fw_cfg_nb_cpus(void)
{
    unsigned lo, hi;

    outw(FW_CFG_SEL, FW_CFG_NB_CPUS);
    lo = inb(FW_CFG_DATA);
    hi = inb(FW_CFG_DATA);
    return lo | hi << 8;
}

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

/* KeyID @k's address of @pa */
static uint64_t kva(unsigned k, uint64_t pa)
{
    return WIN(k) + pa;
}

/* All ncpus vCPUs meet here */
static void barrier(void)
{
    uint64_t gen = load_acq(&bar_gen);

    if (__atomic_add_fetch(&bar_count.v, 1, __ATOMIC_ACQ_REL) == ncpus) {
        bar_count.v = 0;
        store_rel(&bar_gen, gen + 1);
    } else {
        wait_ge(&bar_gen, gen + 1);
    }
}

/* PCONFIG leaf 0 (KEY_PROGRAM) of KeyID @keyid; only the BSP runs it */
static void pconfig(unsigned keyid, const MksKey *k)
{
    uint32_t ctrl = k->cmd | (k->len == 32 ? ALG256 : ALG128);
    uint64_t rax = 0;

    memset(pcs, 0, sizeof(pcs));
    memcpy(pcs, &keyid, 2);
    memcpy(pcs + 2, &ctrl, 4);
    for (int i = 0; i < k->len; i++) {
        pcs[64 + i] = k->d0 + i;
        pcs[128 + i] = k->t0 + i;
    }
    asm volatile(".byte 0x0f, 0x01, 0xc5"      /* PCONFIG */
                 : "+a"(rax) : "b"((uint64_t)pcs) : "cc", "memory");
    memset(pcs, 0, sizeof(pcs));
    if (rax) {
        res->pconfig_fail++;
        puts_dbg("mktme-smp: PCONFIG failed, KeyID ");
        putdec(keyid);
        puts_dbg(" rax ");
        puthex(rax);
        puts_dbg("\n");
    }
}

/*
 * Window k: PML4[k + 1] -> PDPT -> PD of 2 MiB pages at KeyID k; and
 * the local APIC's page (3..4 GiB through PDPT[3] of the identity map).
 */
static void map_windows(void)
{
    uint64_t *pdpt0 = (uint64_t *)(boot_pml4[0] & ~0xfffULL);

    for (unsigned k = 0; k < MKS_NWIN; k++) {
        uint64_t *pdpt = (uint64_t *)(WIN_TABLES + k * 0x2000);
        uint64_t *pd = pdpt + 512;

        memset(pdpt, 0, 8192);
        pdpt[0] = (uint64_t)pd | PG_PRW;
        for (uint64_t i = 0; i < 512; i++) {
            pd[i] = KID(k) | (i << 21) | PG_PS | PG_PRW;
        }
        boot_pml4[k + 1] = (uint64_t)pdpt | PG_PRW;
    }
    apic_pd[(APIC_BASE >> 21) & 511] = APIC_BASE | PG_PS | PG_PCD | PG_PWT |
                                       PG_P | PG_W;
    pdpt0[3] = (uint64_t)apic_pd | PG_P | PG_W;
    write_cr3((uint64_t)boot_pml4);
    apic_mapped = true;
}

static void lidt_ap(void)
{
    struct __attribute__((packed)) {
        uint16_t lim;
        uint64_t base;
    } d = { sizeof(ap_idt) - 1, (uint64_t)ap_idt };

    asm volatile("lidt %0" : : "m"(d));
}

/* INIT-SIPI-SIPI to all but self; wait (about 10 s at most) for them */
static bool start_aps(void)
{
    uint64_t t0;

    ap_cr3 = (uint64_t)boot_pml4;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    apic_write(APIC_SVR, 0x1ff);
    apic_write(APIC_ICR_HI, 0);
    apic_write(APIC_ICR_LO, ICR_INIT);
    for (int i = 0; i < 2; i++) {
        t0 = rdtsc();
        while (rdtsc() - t0 < 1000000) {
            cpu_relax();
        }
        apic_write(APIC_ICR_LO, ICR_SIPI | ((uint64_t)ap_tramp >> 12));
    }
    t0 = rdtsc();
    while (__atomic_load_n(&res->alive, __ATOMIC_ACQUIRE) < ncpus) {
        if (rdtsc() - t0 > 30000000000ULL) {
            return false;
        }
        cpu_relax();
    }
    return true;
}

#ifndef MKS_BENCH

static Flag b_flag[MKS_MAX_CPUS], b_ack[MKS_MAX_CPUS];
static Flag c_flag1, c_flag2, c_ack[MKS_MAX_CPUS];

/* The 64-byte line at @pa through KeyID @k, 8 bytes at a time */
static void rd_line(unsigned k, uint64_t pa, void *dst)
{
    uint64_t *d = dst;

    for (unsigned q = 0; q < 8; q++) {
        d[q] = ld64(kva(k, pa + 8 * q));
    }
}

static void error(unsigned cpu, unsigned sc, uint64_t index, uint64_t addr,
                  uint64_t got, uint64_t expected)
{
    MksCpu *c = &res->cpu[cpu];

    if (!c->errors++) {
        c->first = (MksError) {
            .scenario = sc, .index = index, .addr = addr, .got = got,
            .expected = expected,
        };
    }
}

static void check(unsigned cpu, unsigned sc, uint64_t index, uint64_t addr,
                  uint64_t got, uint64_t expected)
{
    if (got != expected) {
        error(cpu, sc, index, addr, got, expected);
    }
}

static void stage(unsigned cpu, unsigned sc, const char *name)
{
    res->cpu[cpu].stage = sc;
    if (cpu == 0) {
        puts_dbg("mktme-smp: ");
        puts_dbg(name);
        puts_dbg("\n");
    }
}

/* a. Own buffer and own lines of shared pages, through own KeyID */
static void scenario_a(unsigned cpu)
{
    unsigned k = MKS_KID_CPU(cpu);
    uint64_t pa = MKS_A_PA(cpu);

    for (unsigned pass = 0; pass < MKS_A_PASSES; pass++) {
        for (uint64_t q = 0; q < MKS_A_LEN / 8; q++) {
            st64(kva(k, pa + 8 * q), mks_a_word(cpu, pass, q));
        }
        for (uint64_t q = 0; q < MKS_A_LEN / 8; q++) {
            check(cpu, MKS_SC_A, pass, pa + 8 * q, ld64(kva(k, pa + 8 * q)),
                  mks_a_word(cpu, pass, q));
        }
        for (uint64_t l = cpu; l < MKS_A2_LEN / 64; l += ncpus) {
            for (unsigned q = 0; q < 8; q++) {
                st64(kva(k, MKS_A2_PA + 64 * l + 8 * q),
                     mks_a_word(cpu, MKS_A2_PASS(pass), 8 * l + q));
            }
        }
        for (uint64_t l = cpu; l < MKS_A2_LEN / 64; l += ncpus) {
            for (unsigned q = 0; q < 8; q++) {
                uint64_t pa2 = MKS_A2_PA + 64 * l + 8 * q;

                check(cpu, MKS_SC_A, pass, pa2, ld64(kva(k, pa2)),
                      mks_a_word(cpu, MKS_A2_PASS(pass), 8 * l + q));
            }
            res->cpu[cpu].a2_lines++;
        }
        res->cpu[cpu].a_passes++;
    }
}

/*
 * b. This vCPU writes channel cpu's line (its KeyID is channel cpu's a)
 * and reads channel cpu - 1's (its KeyID is that one's b), step by step.
 */
static void scenario_b(unsigned cpu)
{
    unsigned rc = (cpu + ncpus - 1) % ncpus;
    unsigned ka = MKS_KID_CPU(rc), kb = MKS_KID_CPU(cpu);
    uint64_t wline = MKS_B_PA(cpu), rline = MKS_B_PA(rc);
    MksChannel *ch = &res->ch[rc];
    uint64_t line[8];

    for (unsigned s = 0; s < 2 * MKS_B_ITERS; s++) {
        unsigned t = s / 2, m = mks_b_mask(t);

        /* Writer: KeyID a (some qwords) or KeyID 0 (the whole line) */
        wait_eq(&b_ack[cpu], s);
        for (unsigned q = 0; q < 8; q++) {
            if (s & 1) {
                st64(kva(0, wline + 8 * q), mks_b_word(cpu, s, q));
            } else if (m & (1u << q)) {
                st64(kva(MKS_KID_CPU(cpu), wline + 8 * q),
                     mks_b_word(cpu, s, q));
            }
        }
        store_rel(&b_flag[cpu], s + 1);
        res->cpu[cpu].b_steps++;

        /* Reader */
        wait_eq(&b_flag[rc], s + 1);
        if (s & 1) {
            rd_line(0, rline, line);
            for (unsigned q = 0; q < 8; q++) {
                check(cpu, MKS_SC_B, s, rline + 8 * q, line[q],
                      mks_b_word(rc, s, q));
            }
            rd_line(ka, rline, ch->rev_a[t]);
            rd_line(kb, rline, ch->rev_b[t]);
        } else {
            rd_line(ka, rline, line);
            memcpy(ch->fwd_a[t], line, 64);
            for (unsigned q = 0; q < 8; q++) {
                if (m & (1u << q)) {
                    check(cpu, MKS_SC_B, s, rline + 8 * q, line[q],
                          mks_b_word(rc, s, q));
                }
            }
            rd_line(kb, rline, ch->fwd_b[t]);
            rd_line(0, rline, ch->fwd_0[t]);
        }
        store_rel(&b_ack[rc], s + 1);
    }
}

/*
 * c. Write the own line through KeyID MKS_KID_REKEY and read it back;
 * false and the first wrong qword in @err (address, got, expected) if
 * it reads back wrong.
 */
static bool c_round_trip(unsigned cpu, unsigned round, uint64_t it,
                         uint64_t err[3])
{
    uint64_t pa = MKS_C_OWN(cpu);
    bool ok = true;

    for (unsigned q = 0; q < 8; q++) {
        st64(kva(MKS_KID_REKEY, pa + 8 * q), mks_c_word(cpu, round, it, q));
    }
    for (unsigned q = 0; q < 8; q++) {
        uint64_t v = ld64(kva(MKS_KID_REKEY, pa + 8 * q));

        if (ok && v != mks_c_word(cpu, round, it, q)) {
            err[0] = pa + 8 * q;
            err[1] = v;
            err[2] = mks_c_word(cpu, round, it, q);
            ok = false;
        }
    }
    return ok;
}

static void c_after_flag(unsigned cpu, unsigned r)
{
    uint64_t err[3];

    rd_line(MKS_KID_REKEY, MKS_C_KNOWN, res->cpu[cpu].c_known[r]);
    /* No PCONFIG until every vCPU acknowledged: this is exact. */
    if (!c_round_trip(cpu, r, 1u << 30, err)) {
        error(cpu, MKS_SC_C, r, err[0], err[1], err[2]);
    }
}

/* The BSP: let the APs loop, re-program KeyID MKS_KID_REKEY, flag it */
static void scenario_c_bsp(void)
{
    for (unsigned r = 1; r <= MKS_C_ROUNDS; r++) {
        for (unsigned i = 1; i < ncpus; i++) {
            while (__atomic_load_n(&res->cpu[i].c_loops[r],
                                   __ATOMIC_ACQUIRE) < 2) {
                cpu_relax();
            }
        }
        store_rel(&c_flag1, r);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        pconfig(MKS_KID_REKEY, mks_rekey_of_round(r));
        store_rel(&c_flag2, r);
        c_after_flag(0, r);
        for (unsigned i = 1; i < ncpus; i++) {
            wait_ge(&c_ack[i], r);
        }
    }
}

/*
 * An AP: round trips and reads of the known line until the BSP's flag
 * for round r.  If c_flag1 was still below r after both, no PCONFIG of
 * round r had started: the round trip must be exact, and the known line
 * must read what it read after the flag of round r - 1 (which the qtest
 * checks); otherwise a wrong round trip only counts as transitional.
 */
static void scenario_c_ap(unsigned cpu)
{
    MksCpu *c = &res->cpu[cpu];
    uint64_t known[8], err[3];
    unsigned r = 1;
    uint64_t it = 0;

    while (r <= MKS_C_ROUNDS) {
        bool ok;

        if (load_acq(&c_flag2) >= r) {
            c_after_flag(cpu, r);
            store_rel(&c_ack[cpu], r);
            r++;
            continue;
        }
        ok = c_round_trip(cpu, r, it++, err);
        rd_line(MKS_KID_REKEY, MKS_C_KNOWN, known);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        if (load_acq(&c_flag1) < r) {
            if (!ok) {
                error(cpu, MKS_SC_C, r, err[0], err[1], err[2]);
            }
            for (unsigned q = 0; q < 8; q++) {
                uint64_t prev;

                memcpy(&prev, c->c_known[r - 1] + 8 * q, 8);
                check(cpu, MKS_SC_C, r, MKS_C_KNOWN + 8 * q, known[q], prev);
            }
        } else if (!ok) {
            c->c_transitional[r]++;
        }
        __atomic_store_n(&c->c_loops[r], c->c_loops[r] + 1,
                         __ATOMIC_RELEASE);
    }
}

/* d. Page walks through KeyIDs setting A and D, on every vCPU at once */
static void scenario_d(unsigned cpu)
{
    MksCpu *c = &res->cpu[cpu];
    unsigned k = MKS_KID_CPU(cpu);
    uint64_t pml4 = MKS_D_PML4(cpu), pdpt = MKS_D_PDPT(cpu);
    uint64_t pd = MKS_D_PD(cpu);
    uint64_t pml4e = KID(k) | pdpt | PG_PRW;
    uint64_t pdpte = KID(k) | pd | PG_PRW;
    uint64_t pde = KID(MKS_KID_PT) | MKS_D_PT | PG_PRW;
    uint64_t v;

    for (unsigned i = 0; i < 512; i++) {
        st64(kva(k, pml4 + 8 * i), i == 0 ? boot_pml4[0] : 0);
        st64(kva(k, pdpt + 8 * i), 0);
        st64(kva(k, pd + 8 * i), 0);
    }
    for (unsigned r = 0; r < MKS_D_ROUNDS; r++) {
        /* Entries without A and D, read back as written */
        st64(kva(k, pml4 + 8 * MKS_D_SLOT), pml4e);
        st64(kva(k, pdpt), pdpte);
        st64(kva(k, pd), pde);
        for (unsigned j = 0; j < MKS_D_PAGES; j++) {
            st64(kva(MKS_KID_PT, MKS_D_PT + 8 * MKS_D_PTE(cpu, j)),
                 KID(k) | MKS_D_DATA(cpu, j) | PG_PRW);
        }
        check(cpu, MKS_SC_D, r, pml4 + 8 * MKS_D_SLOT,
              ld64(kva(k, pml4 + 8 * MKS_D_SLOT)), pml4e);
        check(cpu, MKS_SC_D, r, pdpt, ld64(kva(k, pdpt)), pdpte);
        check(cpu, MKS_SC_D, r, pd, ld64(kva(k, pd)), pde);
        for (unsigned j = 0; j < MKS_D_PAGES; j++) {
            uint64_t pa = MKS_D_PT + 8 * MKS_D_PTE(cpu, j);

            check(cpu, MKS_SC_D, r, pa, ld64(kva(MKS_KID_PT, pa)),
                  KID(k) | MKS_D_DATA(cpu, j) | PG_PRW);
        }

        barrier();
        write_cr3(KID(k) | pml4);
        for (unsigned j = 0; j < MKS_D_PAGES; j++) {
            if (mks_d_read_only(r, j)) {
                (void)ld64(MKS_D_VA(cpu, j));
            } else {
                st64(MKS_D_VA(cpu, j), mks_d_word(cpu, r, j));
            }
        }
        write_cr3((uint64_t)boot_pml4);
        barrier();

        v = ld64(kva(k, pml4 + 8 * MKS_D_SLOT));
        check(cpu, MKS_SC_D, r, pml4 + 8 * MKS_D_SLOT, v, pml4e | MKS_PG_A);
        c->d_pml4e = v;
        v = ld64(kva(k, pdpt));
        check(cpu, MKS_SC_D, r, pdpt, v, pdpte | MKS_PG_A);
        c->d_pdpte = v;
        v = ld64(kva(k, pd));
        check(cpu, MKS_SC_D, r, pd, v, pde | MKS_PG_A);
        c->d_pde = v;
        for (unsigned j = 0; j < MKS_D_PAGES; j++) {
            uint64_t pa = MKS_D_PT + 8 * MKS_D_PTE(cpu, j);
            bool ro = mks_d_read_only(r, j);

            v = ld64(kva(MKS_KID_PT, pa));
            check(cpu, MKS_SC_D, r, pa, v, KID(k) | MKS_D_DATA(cpu, j) |
                  PG_PRW | MKS_PG_A | (ro ? 0 : MKS_PG_D));
            c->d_pte[j] = v;
            if (!ro) {
                check(cpu, MKS_SC_D, r, MKS_D_DATA(cpu, j),
                      ld64(kva(k, MKS_D_DATA(cpu, j))), mks_d_word(cpu, r, j));
            }
        }
        c->d_rounds++;
    }
}

static void run(unsigned cpu)
{
    stage(cpu, MKS_SC_A, "a: own buffers through own KeyIDs");
    scenario_a(cpu);
    barrier();

    stage(cpu, MKS_SC_B, "b: lines handed between vCPUs");
    if (ncpus > 1) {
        scenario_b(cpu);
    }
    barrier();

    stage(cpu, MKS_SC_C, "c: re-keying a KeyID the APs use");
    rd_line(MKS_KID_REKEY, MKS_C_KNOWN, res->cpu[cpu].c_known[0]);
    barrier();
    if (cpu == 0) {
        scenario_c_bsp();
    } else {
        scenario_c_ap(cpu);
    }
    barrier();

    stage(cpu, MKS_SC_D, "d: page walks through KeyIDs");
    scenario_d(cpu);
    barrier();

    stage(cpu, MKS_SC_END, "all scenarios ran");
    __atomic_store_n(&res->cpu[cpu].done, 1, __ATOMIC_RELEASE);
}

/* The data the scenarios start from, before the APs run */
static void prepare(void)
{
    for (unsigned c = 0; c < ncpus; c++) {
        for (unsigned q = 0; q < 8; q++) {
            st64(kva(0, MKS_B_PA(c) + 8 * q), mks_b_word(c, MKS_B_INIT, q));
        }
    }
    for (unsigned q = 0; q < 8; q++) {
        st64(kva(0, MKS_C_KNOWN + 8 * q), mks_c_known_word(q));
    }
    for (unsigned i = 0; i < 512; i++) {
        st64(kva(MKS_KID_PT, MKS_D_PT + 8 * i), 0);
    }
}

#else /* MKS_BENCH */

#define BENCH_SIZE  ((uint64_t)BENCH_MIB << 20)

static uint64_t bench_cycles[MKS_MAX_CPUS][2];

/* Read and write every line of vCPU @cpu's buffer of @phase @passes times */
static void bench_loop(unsigned cpu, unsigned phase, uint64_t passes)
{
    unsigned k = phase ? MKS_KID_CPU(cpu) : 0;

    uint64_t b = kva(k, MKS_BENCH_PA(phase, cpu));

    for (uint64_t p = 0; p < passes; p++) {
        for (uint64_t off = 0; off < BENCH_SIZE; off += 64) {
            st64(b + off, ld64(b + off) + p);
        }
    }
}

static void run(unsigned cpu)
{
    uint64_t t0;

    /* Untimed: RAM is allocated on first touch */
    bench_loop(cpu, 0, 1);
    bench_loop(cpu, 1, 1);
    for (int r = 0; r < BENCH_ROUNDS; r++) {
        for (unsigned phase = 0; phase < 2; phase++) {
            barrier();
            t0 = rdtsc();
            bench_loop(cpu, phase, (phase ? BENCH_PASSES1 : BENCH_PASSES0) /
                                   BENCH_ROUNDS);
            bench_cycles[cpu][phase] += rdtsc() - t0;
        }
    }
    barrier();
    __atomic_store_n(&res->cpu[cpu].done, 1, __ATOMIC_RELEASE);
}

static void prepare(void)
{
}

static void bench_report(void)
{
    for (unsigned phase = 0; phase < 2; phase++) {
        uint64_t max = 0;

        for (unsigned i = 0; i < ncpus; i++) {
            uint64_t c = bench_cycles[i][phase];

            puts_dbg("bench-smp: cpu ");
            putdec(i);
            puts_dbg(" keyid ");
            putdec(phase ? MKS_KID_CPU(i) : 0);
            puts_dbg(" phase ");
            puts_dbg(phase ? "keyidN" : "keyid0");
            puts_dbg(" passes ");
            putdec((phase ? BENCH_PASSES1 : BENCH_PASSES0) / BENCH_ROUNDS *
                   BENCH_ROUNDS);
            puts_dbg(" mib ");
            putdec(BENCH_MIB);
            puts_dbg(" cycles ");
            putdec(c);
            puts_dbg("\n");
            max = c > max ? c : max;
        }
        puts_dbg("bench-smp: max phase ");
        puts_dbg(phase ? "keyidN" : "keyid0");
        puts_dbg(" cpus ");
        putdec(ncpus);
        puts_dbg(" passes ");
        putdec((phase ? BENCH_PASSES1 : BENCH_PASSES0) / BENCH_ROUNDS *
               BENCH_ROUNDS);
        puts_dbg(" cycles ");
        putdec(max);
        puts_dbg("\n");
    }
}

#endif /* MKS_BENCH */

void ap_main(unsigned idx)
{
    MksCpu *c = &res->cpu[idx];

    lidt_ap();
    c->apic_id = apic_read(APIC_ID) >> 24;
    __atomic_store_n(&c->alive, 1, __ATOMIC_RELEASE);
    __atomic_add_fetch(&res->alive, 1, __ATOMIC_ACQ_REL);
    wait_eq(&go, 1);
    run(idx);
    halt_forever();
}

void guest_main(void)
{
    uint64_t act = 0;

    memset(res, 0, sizeof(*res));
    res->magic = MKS_MAGIC;
    setup_idt(ap_idt, 0);
    setup_ring0(idt);
    puts_dbg("mktme-smp: long mode, IDT, TSS ok\n");

    if (g_rdmsr(MSR_TME_ACTIVATE, &act) != NO_FAULT ||
        (act & 3) != 3 || ((act >> 32) & 0xf) != 6) {
        res->activate = act;
        puts_dbg("mktme-smp: TME-MK not active with 6 KeyID bits\n");
        finish(MKS_DONE_NO_TME);
    }
    res->activate = act;
    ncpus = fw_cfg_nb_cpus();
    res->ncpus = ncpus;
    puts_dbg("mktme-smp: vCPUs ");
    putdec(ncpus);
    puts_dbg("\n");
#ifdef MKS_BENCH
    if (ncpus < 1 || ncpus > MKS_BENCH_MAX_CPUS) {
#else
    if (ncpus < 1 || ncpus > MKS_MAX_CPUS) {
#endif
        finish(MKS_DONE_TOO_MANY);
    }

    map_windows();
    for (unsigned i = 0; i < ncpus; i++) {
        MksKey k = mks_cpu_key(i);

        pconfig(MKS_KID_CPU(i), &k);
    }
    pconfig(MKS_KID_REKEY, mks_rekey_of_round(0));
    pconfig(MKS_KID_PT, &mks_pt_key);
    prepare();

    res->cpu[0].apic_id = apic_read(APIC_ID) >> 24;
    res->cpu[0].alive = 1;
    res->alive = 1;
    if (ncpus > 1 && !start_aps()) {
        puts_dbg("mktme-smp: not every AP checked in\n");
        finish(MKS_DONE_NO_APS);
    }
    puts_dbg("mktme-smp: all vCPUs up\n");
    store_rel(&go, 1);
    run(0);
    for (unsigned i = 1; i < ncpus; i++) {
        while (!__atomic_load_n(&res->cpu[i].done, __ATOMIC_ACQUIRE)) {
            cpu_relax();
        }
    }
#ifdef MKS_BENCH
    bench_report();
#endif
    finish(MKS_DONE_OK);
}
