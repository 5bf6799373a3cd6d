/*
 * TME-MK multi-vCPU guest: memory layout, keys, data patterns and the
 * results area, shared by the freestanding guest (smp.c, ap.S) and the
 * qtest (mktme-smp-test.c).
 *
 * Copyright (c) 2026 The qemu-mktme authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef MKTME_SMP_RESULTS_H
#define MKTME_SMP_RESULTS_H

/* The guest writes MksResults here through KeyID 0. */
#define MKS_RESULTS_PA      0x100000ULL
#define MKS_MAGIC           0x31504d53454d4b4dULL   /* "MKEMSMP1" */
#define MKS_DONE_OK         0x600dULL
#define MKS_DONE_CRASH      0xdeadULL
#define MKS_DONE_NO_TME     0x7e7eULL   /* TME-MK not active: nothing run */
#define MKS_DONE_NO_APS     0xa9a9ULL   /* not every AP checked in */
#define MKS_DONE_TOO_MANY   0x7007ULL   /* more vCPUs than MKS_MAX_CPUS */

#define MKS_MAX_CPUS        8
#define MKS_KEYID_SHIFT     40          /* phys-bits 46, keyid-bits 6 */

/*
 * KeyIDs: vCPU i has KeyID MKS_KID_CPU(i), with its own key; KeyID
 * MKS_KID_REKEY is shared by all and re-programmed (scenario c); the
 * page table shared by all vCPUs in scenario d is behind MKS_KID_PT.
 */
#define MKS_KID_CPU(i)      (1 + (i))
#define MKS_KID_REKEY       9
#define MKS_KID_PT          10
#define MKS_NWIN            11          /* KeyIDs 0..10 get a window */

/* PCONFIG KEYID_CTRL commands */
#define MKS_CMD_DIRECT      0
#define MKS_CMD_CLEAR       2
#define MKS_CMD_NOENC       3

/* A key given to PCONFIG: data key d0, d0+1, ...; tweak key t0, t0+1, ... */
typedef struct MksKey {
    unsigned char cmd, d0, t0, len;     /* len: 16 (AES-XTS-128) or 32 */
} MksKey;

static inline MksKey mks_cpu_key(unsigned cpu)
{
    MksKey k = {
        MKS_CMD_DIRECT, (unsigned char)(0x21 + 0x10 * cpu),
        (unsigned char)(0x9a + 0x0b * cpu), cpu & 1 ? 32 : 16
    };
    return k;
}

static const MksKey mks_pt_key = { MKS_CMD_DIRECT, 0xc3, 0xd5, 16 };

/*
 * KeyID MKS_KID_REKEY before round 1: mks_rekey[0]; from round r on:
 * mks_rekey[(r - 1) % 6 + 1], so that every change comes three times.
 */
#define MKS_C_ROUNDS        18
static const MksKey mks_rekey[7] = {
    { MKS_CMD_DIRECT, 0x91, 0xa7, 16 },
    { MKS_CMD_DIRECT, 0x31, 0x47, 32 },
    { MKS_CMD_CLEAR, 0, 0, 0 },         /* reads what KeyID 0 reads */
    { MKS_CMD_DIRECT, 0x55, 0x63, 16 },
    { MKS_CMD_NOENC, 0, 0, 0 },         /* reads the DRAM image */
    { MKS_CMD_DIRECT, 0x71, 0x8b, 32 },
    { MKS_CMD_DIRECT, 0xe1, 0xf3, 16 },
};

static inline const MksKey *mks_rekey_of_round(unsigned r)
{
    return &mks_rekey[r ? (r - 1) % 6 + 1 : 0];
}

/*
 * Scenario a: vCPU i writes and reads back its own buffer through its
 * own KeyID, MKS_A_PASSES passes with a different pattern each.
 */
#define MKS_A_LEN           0x100000ULL
#define MKS_A_PA(i)         (0x1000000ULL + (i) * MKS_A_LEN)
#define MKS_A_PASSES        3
/*
 * ... and, in the same passes, its lines of pages all vCPUs share: line
 * l of MKS_A2_PA belongs to vCPU l % n, and is written through its KeyID
 * while the other vCPUs write the other lines through theirs.
 */
#define MKS_A2_PA           0x800000ULL
#define MKS_A2_LEN          0x10000ULL
#define MKS_A2_PASS(p)      (0x80 + (p))    /* mks_a_word() pass */

/*
 * Scenario b: channel c, a page with one line that vCPU c (the writer)
 * and vCPU (c + 1) % n (the reader) share.  Step 2t: the writer writes
 * the qwords of mks_b_mask(t) through its KeyID a; step 2t + 1: the
 * whole line through KeyID 0.  After each step the reader reads the line
 * through KeyIDs a, b (its own) and 0.  Before step 0, the BSP writes
 * the line with step MKS_B_INIT's words through KeyID 0.
 */
#define MKS_B_PA(c)         (0x400000ULL + (c) * 0x1000ULL + 0x7c0)
#define MKS_B_ITERS         128
#define MKS_B_INIT          0xffff

static inline unsigned mks_b_mask(unsigned t)
{
    return t % 4 == 0 ? 0xff : (1u << (t % 8)) | (1u << ((t * 3 + 1) % 8));
}

/*
 * Scenario c: one page through KeyID MKS_KID_REKEY: vCPU i's own line
 * at + 64 * i, a line the BSP writes once through KeyID 0 at + 0xfc0.
 */
#define MKS_C_PA            0x500000ULL
#define MKS_C_OWN(i)        (MKS_C_PA + 64 * (i))
#define MKS_C_KNOWN         (MKS_C_PA + 0xfc0)

/*
 * Scenario d: vCPU i's PML4, PDPT and PD, written and reached through
 * KeyID MKS_KID_CPU(i); PML4 entry MKS_D_SLOT -> PDPT[0] -> PD[0] -> the
 * page table all vCPUs share, behind KeyID MKS_KID_PT: vCPU i's page j
 * is PTE MKS_D_PTE(i, j), mapping MKS_D_DATA(i, j) through KeyID
 * MKS_KID_CPU(i).  So every line of the PT holds PTEs of every vCPU.
 */
#define MKS_D_PML4(i)       (0x600000ULL + (i) * 0x3000ULL)
#define MKS_D_PDPT(i)       (MKS_D_PML4(i) + 0x1000)
#define MKS_D_PD(i)         (MKS_D_PML4(i) + 0x2000)
#define MKS_D_PT            0x680000ULL
#define MKS_D_PAGES         16
#define MKS_D_PTE(i, j)     ((j) * MKS_MAX_CPUS + (i))
#define MKS_D_DATA(i, j)    (0x700000ULL + MKS_D_PTE(i, j) * 0x1000ULL)
#define MKS_D_SLOT          100
#define MKS_D_VA(i, j)      (((unsigned long long)MKS_D_SLOT << 39) + \
                             MKS_D_PTE(i, j) * 0x1000ULL)
#define MKS_D_ROUNDS        6
#define MKS_PG_PRW          0x7ULL      /* present, writable, user */
#define MKS_PG_A            0x20ULL
#define MKS_PG_D            0x40ULL

/* In round r, page j is only read (A, no D) if this is true, else written */
static inline int mks_d_read_only(unsigned r, unsigned j)
{
    return (j + r) % 3 == 0;
}

/* Benchmark (BENCH=1): vCPU i's buffer for KeyID 0 (0) / its KeyID (1) */
#define MKS_BENCH_PA(phase, i)  ((64ULL + 16 * (4 * (phase) + (i))) << 20)
#define MKS_BENCH_MAX_CPUS  4

/* The words written: a mix of what, where and when */
static inline unsigned long long mks_mix(unsigned long long x)
{
    x ^= x >> 31;
    x *= 0x7fb5d329728ea185ULL;
    x ^= x >> 27;
    x *= 0x81dadef4bc2dd44dULL;
    x ^= x >> 33;
    return x;
}

/* Scenario a: qword @q of vCPU @cpu's buffer in pass @pass */
static inline unsigned long long mks_a_word(unsigned cpu, unsigned pass,
                                            unsigned long long q)
{
    return mks_mix(0xa000000000000000ULL ^ (unsigned long long)cpu << 52 ^
                   (unsigned long long)pass << 44 ^ q);
}

/* Scenario b: qword @q of channel @c's line written in step @step */
static inline unsigned long long mks_b_word(unsigned c, unsigned step,
                                            unsigned q)
{
    return mks_mix(0xb000000000000000ULL ^ (unsigned long long)c << 40 ^
                   (unsigned long long)step << 8 ^ q);
}

/* Scenario c: qword @q of the known line; of vCPU @cpu's own line */
static inline unsigned long long mks_c_known_word(unsigned q)
{
    return mks_mix(0xc0000000000000ffULL ^ q);
}

static inline unsigned long long mks_c_word(unsigned cpu, unsigned round,
                                            unsigned long long it, unsigned q)
{
    return mks_mix(0xc100000000000000ULL ^ (unsigned long long)cpu << 48 ^
                   (unsigned long long)round << 40 ^ it << 4 ^ q);
}

/* Scenario d: the qword written to vCPU @cpu's page @j in round @r */
static inline unsigned long long mks_d_word(unsigned cpu, unsigned r,
                                            unsigned j)
{
    return mks_mix(0xd000000000000000ULL ^ (unsigned long long)cpu << 32 ^
                   (unsigned long long)r << 16 ^ j);
}

/* Scenarios, MksError.scenario and MksCpu.stage */
enum {
    MKS_SC_BOOT = 1,
    MKS_SC_A,
    MKS_SC_B,
    MKS_SC_C,
    MKS_SC_D,
    MKS_SC_END,
};

/* A check the guest made itself that failed (the first one per vCPU) */
typedef struct MksError {
    unsigned long long scenario, index, addr, got, expected;
} MksError;

typedef struct MksCpu {
    unsigned long long alive;           /* 1 once running C code */
    unsigned long long apic_id;
    unsigned long long stage;           /* MKS_SC_* last started */
    unsigned long long done;            /* 1 when all scenarios ran */
    unsigned long long errors;          /* failed guest-side checks */
    MksError first;
    unsigned long long a_passes;        /* passes completed */
    unsigned long long a2_lines;        /* shared-page lines checked */
    unsigned long long b_steps;         /* writer steps completed */
    /* c: round trips through KeyID MKS_KID_REKEY in each round */
    unsigned long long c_loops[MKS_C_ROUNDS + 1];
    /* ... that read back wrong while a PCONFIG may have been running */
    unsigned long long c_transitional[MKS_C_ROUNDS + 1];
    /* d: the entries of the last round, read through their KeyIDs */
    unsigned long long d_rounds;
    unsigned long long d_pml4e, d_pdpte, d_pde, d_pte[MKS_D_PAGES];
    /* c: the known line through KeyID MKS_KID_REKEY, key [r] */
    unsigned char c_known[MKS_C_ROUNDS + 1][64];
} MksCpu;

/* Scenario b, channel c: what the reader read after each step */
typedef struct MksChannel {
    unsigned char fwd_a[MKS_B_ITERS][64];   /* after step 2t, KeyID a */
    unsigned char fwd_b[MKS_B_ITERS][64];   /* ... KeyID b */
    unsigned char fwd_0[MKS_B_ITERS][64];   /* ... KeyID 0 */
    unsigned char rev_a[MKS_B_ITERS][64];   /* after step 2t + 1, KeyID a */
    unsigned char rev_b[MKS_B_ITERS][64];   /* ... KeyID b */
} MksChannel;

typedef struct MksResults {
    unsigned long long magic;
    unsigned long long done;    /* 0 while running, MKS_DONE_* at the end */
    unsigned long long ncpus;   /* fw_cfg FW_CFG_NB_CPUS */
    unsigned long long alive;   /* vCPUs that checked in */
    unsigned long long activate;        /* IA32_TME_ACTIVATE */
    unsigned long long pconfig_fail;    /* PCONFIGs with RAX != 0 */
    unsigned long long crash_vector, crash_error, crash_rip, crash_cr2;
    unsigned long long crash_apic_id;
    MksCpu cpu[MKS_MAX_CPUS];
    MksChannel ch[MKS_MAX_CPUS];
} MksResults;

#endif
