/*
 * TME-MK bench guest for scripts/bench: time a loop that reads and
 * writes every 64-byte line of a buffer through KeyID 0, then through
 * KeyID 1 (programmed with PCONFIG), and report the RDTSC cycle counts
 * on the debug console (port 0xe9); exit through isa-debug-exit (0xf4).
 *
 * The platform activated TME-MK at reset (mktme-guest activate=on):
 * KeyID k of physical address pa is at (k << 40) | pa with phys-bits=46
 * and keyid-bits=6.  KeyID k gets a window at (k + 1) << 39 mapping
 * 0..1 GiB to (k << 40) | pa with 2 MiB pages; both loops use a window.
 *
 * Each KeyID has its own buffer (KeyID k's at (64 + 64 * k) MiB), as a
 * guest would use one KeyID per page: the figure is the steady-state
 * cost of a KeyID mapping, not of switching a page between KeyIDs.  Both
 * buffers are first written once through KeyID 0 (untimed: the host
 * allocates guest RAM on first touch, which no timed pass should pay),
 * then the KeyID 0 loop has an untimed warm-up pass.  Each round starts
 * with a first pass through KeyID 1 (every page's shadow built: the
 * rounds after the first program KeyID 1's key again beforehand, which
 * drops every shadow), reported on its own line.
 *
 * Build-time parameters: BUF_MIB (buffer size, at most 64),
 * PASSES0 and PASSES1 (passes through KeyID 0 and KeyID 1), ROUNDS: the
 * two loops alternate in ROUNDS rounds of PASSES0 / ROUNDS passes through
 * KeyID 0 then PASSES1 / ROUNDS through KeyID 1, so that changes of the
 * host's load hit both alike; each loop reports its own line.
 *
 * Copyright (c) 2026 The qemu-mktme authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <stdint.h>
#include <stddef.h>
#include "boot.h"       /* tests/qtest/mktme-guest: boot code, helpers */
#include "guest-lib.h"

#ifndef BUF_MIB
#define BUF_MIB     64
#endif
#ifndef PASSES0
#define PASSES0     20
#endif
#ifndef PASSES1
#define PASSES1     2
#endif
#ifndef ROUNDS
#define ROUNDS      1
#endif
#if PASSES0 < ROUNDS || PASSES1 < ROUNDS
#error "PASSES0 and PASSES1 must be at least ROUNDS"
#endif

#define BUF_PA(k)   ((64ULL + 64 * (k)) << 20)
#define BUF_SIZE    ((uint64_t)BUF_MIB << 20)
#define LINE        64

#define MSR_TME_ACTIVATE    0x982
#define KEYID_SHIFT 40
#define KID(k)      ((uint64_t)(k) << KEYID_SHIFT)
#define WIN(k)      ((uint64_t)((k) + 1) << 39)

#define PG_P        1ULL
#define PG_W        2ULL
#define PG_PS       0x80ULL

#define CMD_DIRECT  0
#define ALG128      (1u << 8)

#define EXIT_OK     0
#define EXIT_FAIL   1


static IdtEntry idt[32] __attribute__((aligned(16)));
static uint64_t win_tables[2][2][512] __attribute__((aligned(4096)));
static uint8_t pcs[256] __attribute__((aligned(256)));  /* PCONFIG struct */

static void put0x(uint64_t v)
{
    puts_dbg("0x");
    puthex(v);
}

static void __attribute__((noreturn)) finish(uint32_t code)
{
    puts_dbg(code == EXIT_OK ? "bench: done\n" : "bench: FAILED\n");
    outl(0xf4, code);           /* QEMU exits with (code << 1) | 1 */
    for (;;) {
        asm volatile("cli; hlt");
    }
}

void fatal_fault(uint64_t *frame)
{
    uint64_t cr2;

    cr2 = read_cr2();
    /* boot.S's frame: rax, vector, error, rip, ... */
    puts_dbg("bench: exception ");
    putdec(frame[1]);
    puts_dbg(" error ");
    put0x(frame[2]);
    puts_dbg(" rip ");
    put0x(frame[3]);
    puts_dbg(" cr2 ");
    put0x(cr2);
    puts_dbg("\n");
    finish(EXIT_FAIL);
}


static uint64_t rdmsr(uint32_t msr)
{
    uint32_t lo, hi;

    asm volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
    return (uint64_t)hi << 32 | lo;
}

static uint64_t rdtsc(void)
{
    uint32_t lo, hi;

    asm volatile("lfence; rdtsc; lfence" : "=a"(lo), "=d"(hi) : : "memory");
    return (uint64_t)hi << 32 | lo;
}

/* PCONFIG leaf 0 (MKTME_KEY_PROGRAM): KeyID 1, AES-XTS-128, direct key */
static uint64_t program_keyid1(void)
{
    uint32_t ctrl = CMD_DIRECT | ALG128;
    uint64_t rax = 0;

    for (size_t i = 0; i < sizeof(pcs); i++) {
        pcs[i] = 0;
    }
    pcs[0] = 1;                                 /* u16 KEYID */
    for (int i = 0; i < 4; i++) {
        pcs[2 + i] = ctrl >> (8 * i);           /* u32 KEYID_CTRL */
    }
    for (int i = 0; i < 16; i++) {
        pcs[64 + i] = 0x11 * (i + 1);           /* data key */
        pcs[128 + i] = 0xa0 + i;                /* tweak key */
    }
    asm volatile(".byte 0x0f, 0x01, 0xc5"      /* PCONFIG */
                 : "+a"(rax) : "b"((uint64_t)pcs) : "cc", "memory");
    return rax;
}

/* Window k: PML4[k + 1] -> PDPT -> PD of 2 MiB pages at KeyID k */
static void map_window(unsigned k)
{
    uint64_t *pdpt = win_tables[k][0], *pd = win_tables[k][1];

    pdpt[0] = (uint64_t)pd | PG_P | PG_W;
    for (uint64_t i = 0; i < 512; i++) {
        pd[i] = KID(k) | (i << 21) | PG_PS | PG_P | PG_W;
    }
    boot_pml4[k + 1] = (uint64_t)pdpt | PG_P | PG_W;
}

/* Read and write every line of the buffer through KeyID k, @passes times */
static void loop(unsigned k, uint64_t passes)
{
    for (uint64_t p = 0; p < passes; p++) {
        volatile uint64_t *b = (volatile uint64_t *)(WIN(k) + BUF_PA(k));

        for (uint64_t i = 0; i < BUF_SIZE / 8; i += LINE / 8) {
            b[i] = b[i] + p;
        }
    }
}

/*
 * Untimed: write every line of KeyID k's buffer through KeyID 0, so that
 * the host allocates its RAM now (first touch) and no timed pass pays it.
 */
static void touch(unsigned k)
{
    volatile uint64_t *b = (volatile uint64_t *)(WIN(0) + BUF_PA(k));

    for (uint64_t i = 0; i < BUF_SIZE / 8; i += LINE / 8) {
        b[i] = i;
    }
}

static void run_loop(unsigned k, uint64_t passes)
{
    uint64_t t0, t1;

    puts_dbg("bench: start keyid ");
    putdec(k);
    puts_dbg("\n");
    t0 = rdtsc();
    loop(k, passes);
    t1 = rdtsc();
    puts_dbg("bench: end keyid ");
    putdec(k);
    puts_dbg(" passes ");
    putdec(passes);
    puts_dbg(" mib ");
    putdec(BUF_MIB);
    puts_dbg(" cycles ");
    putdec(t1 - t0);
    puts_dbg("\n");
}

void guest_main(void)
{
    uint64_t act, rax, v0, v1, t0;

    setup_idt(idt, 0);
    act = rdmsr(MSR_TME_ACTIVATE);
    puts_dbg("bench: IA32_TME_ACTIVATE ");
    put0x(act);
    puts_dbg("\n");
    if ((act & 3) != 3 || ((act >> 32) & 0xf) != 6) {
        puts_dbg("bench: TME-MK not active with 6 KeyID bits\n");
        finish(EXIT_FAIL);
    }
    rax = program_keyid1();
    if (rax != 0) {
        puts_dbg("bench: PCONFIG failed, rax ");
        put0x(rax);
        puts_dbg("\n");
        finish(EXIT_FAIL);
    }
    map_window(0);
    map_window(1);
    asm volatile("mov %0, %%cr3" : : "r"((uint64_t)boot_pml4) : "memory");

    touch(0);           /* untimed: QEMU allocates guest RAM on first touch */
    touch(1);
    loop(0, 1);         /* untimed warm-up of the KeyID 0 loop */
    for (int r = 0; r < ROUNDS; r++) {
        /* Programming the key again drops every shadow (untimed) */
        if (r > 0 && program_keyid1() != 0) {
            puts_dbg("bench: PCONFIG failed\n");
            finish(EXIT_FAIL);
        }
        t0 = rdtsc();
        loop(1, 1);
        puts_dbg("bench: first pass keyid 1 cycles ");
        putdec(rdtsc() - t0);
        puts_dbg("\n");
        run_loop(0, PASSES0 / ROUNDS);
        run_loop(1, PASSES1 / ROUNDS);
    }

    /* The same line must read differently through the two KeyIDs. */
    v0 = *(volatile uint64_t *)(WIN(0) + BUF_PA(1));
    v1 = *(volatile uint64_t *)(WIN(1) + BUF_PA(1));
    if (v0 == v1) {
        puts_dbg("bench: KeyID 1 reads what KeyID 0 reads: not encrypted\n");
        finish(EXIT_FAIL);
    }
    finish(EXIT_OK);
}
