/*
 * TME-MK fuzz guest: a seeded random mix of TME MSR accesses, PCONFIGs,
 * memory accesses and code execution through KeyID windows, each
 * checked against the architecture (docs/tme-mk-facts.md sections 2-3)
 * and the memory model (a KeyID reads back what it wrote).  Results go
 * to MkfResults at MKF_RESULTS_PA for mktme-fuzz-test.c.
 *
 * Runs on boot.S of ../mktme-guest: long mode, ring 0, 0..1 GiB
 * identity-mapped.  Window w (0..63) maps 1 GiB at (1 << 39) + (w << 30)
 * to physical (w << 40): KeyID w with 6 KeyID bits; with k < 6 bits,
 * KeyID w >> (6 - k) if the low 6 - k bits of w are clear, else an
 * address beyond the reduced width (reads all-ones, drops writes).
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

#define MSR_CAP     0x981
#define MSR_ACT     0x982
#define MSR_EMASK   0x983
#define MSR_EBASE   0x984
#define MSR_CORE    0x9ff
#define NO_FAULT    0xff
#define GP          13
#define PF          14
#define FLAGS_ALL   0x8d5ULL
#define ZF          0x40ULL
#define INVALID     0xffffu
#define NSLOTS      8
#define WIN_VA(w)   ((1ULL << 39) + ((uint64_t)(w) << 30))
#define VA_UNMAPPED 0x7f0000000000ULL
#define PA_MASK     ((1ULL << 46) - 1)
#define RAM_TOP     0x10000000ULL   /* -m 256M: unassigned above */
#define CMD_CLEAR   2
#define CMD_NOENC   3


/* A value written through a KeyID, to be read back later */
typedef struct Slot {
    bool live;
    unsigned w, size;
    uint64_t off, val;
    uint32_t gen;
} Slot;

static MkfResults *const res = (MkfResults *)MKF_RESULTS_PA;
static IdtEntry idt[32] __attribute__((aligned(16)));
static uint64_t win_pdpt[512] __attribute__((aligned(4096)));
static uint8_t pcs[512] __attribute__((aligned(256)));  /* PCONFIG struct */
static uint8_t lbuf[64], lbuf2[64];
static uint64_t rng, cur[4];
static unsigned kbits, nkeys, cur_op;
static uint32_t gen[64];        /* bumped by each PCONFIG of a KeyID */
static uint8_t mode[64];        /* command of its last PCONFIG */
static Slot slots[NSLOTS], code;    /* code: the last EXEC's line */

static void putlhex(uint64_t v, const char *label)
{
    puts_dbg(label);
    puthex(v);
}

static void finish(uint64_t code_)
{
    asm volatile("" : : : "memory");
    res->done = code_;
    puts_dbg(code_ == MKF_DONE_OK ? "mktme-fuzz: done\n" :
             "mktme-fuzz: CRASHED\n");
    for (;;) {
        asm volatile("cli; hlt");
    }
}

void fatal_fault(uint64_t *frame)
{
    res->crash_vector = frame[1];
    res->crash_error = frame[2];
    res->crash_rip = frame[3];
    res->crash_cr2 = read_cr2();
    putlhex(frame[1], "mktme-fuzz: unexpected exception ");
    putlhex(frame[3], " at rip ");
    puts_dbg("\n");
    finish(MKF_DONE_CRASH);
}

/* xorshift64* */
static uint64_t rnd(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 0x2545f4914f6cdd1dULL;
}

static uint64_t below(uint64_t n)
{
    return rnd() % n;
}

static bool chance(unsigned pct)
{
    return below(100) < pct;
}

static void failure(uint64_t vec, uint64_t got, uint64_t exp, uint64_t fl)
{
    res->count[cur_op][MKF_OUT_FAIL]++;
    if (!res->failures++) {
        res->first = (MkfFailure) {
            .op = cur_op, .iteration = res->iteration,
            .in = { cur[0], cur[1], cur[2], cur[3] },
            .vector = vec, .error = vec == NO_FAULT ? 0 : fault_err,
            .got = got,
            .expected = exp, .flags = fl,
        };
    }
    if (res->failures <= 8) {
        putlhex(cur_op, "mktme-fuzz: FAIL op ");
        putlhex(res->iteration, " iteration ");
        for (int i = 0; i < 4; i++) {
            putlhex(cur[i], " ");
        }
        putlhex(vec, " vector ");
        putlhex(got, " got ");
        putlhex(exp, " expected ");
        puts_dbg("\n");
    }
}

static void begin(unsigned op, uint64_t a, uint64_t b, uint64_t c, uint64_t d)
{
    cur_op = op;
    cur[0] = a;
    cur[1] = b;
    cur[2] = c;
    cur[3] = d;
}

static void fill_rand(uint8_t *p, unsigned len)
{
    while (len--) {
        *p++ = rnd();
    }
}

/* A fault must be #GP(0) or, when @pf_ok, #PF; returns its outcome. */
static unsigned fault_outcome(uint64_t vec, bool pf_ok)
{
    if (vec == NO_FAULT) {
        return MKF_OUT_OK;
    }
    if (vec == GP && fault_err == 0) {
        return MKF_OUT_GP;
    }
    return vec == PF && pf_ok ? MKF_OUT_PF : MKF_OUT_FAIL;
}

static bool is_tme_msr(uint32_t msr)
{
    return (msr >= MSR_CAP && msr <= MSR_EBASE) || msr == MSR_CORE;
}

/* What a TME MSR must read once ACTIVATE is locked */
static uint64_t msr_value(uint32_t msr)
{
    uint64_t v[4] = {
        res->capability, res->activate, res->excl_mask, res->excl_base
    };

    return msr == MSR_CORE ? (uint64_t)kbits << 32 : v[msr - MSR_CAP];
}

/* A TME MSR, or one nearby */
static uint32_t rand_msr(void)
{
    static const uint32_t tme[] = {
        MSR_CAP, MSR_ACT, MSR_EMASK, MSR_EBASE, MSR_CORE
    };
    static const uint32_t near[] = { 0x971, 0x985, 0x9f0, 0xa00 };

    return chance(75) ? tme[below(5)] : near[below(4)] + below(15);
}

/* IA32_TME_ACTIVATE-like values, mostly plausible */
static uint64_t rand_act(void)
{
    static const uint64_t algs[] = {
        1ULL << 48, 1ULL << 50, 5ULL << 48, 0, 0xffffULL << 48, 2ULL << 48
    };
    uint64_t v = chance(85) ? 2 : 0;

    v |= chance(10) ? 1 : 0;
    v |= (uint64_t)(chance(80) ? 2 * below(2) : below(16)) << 4;
    v |= chance(40) ? 1ULL << 31 : 0;
    v |= (uint64_t)(chance(70) ? 1 + below(6) : below(16)) << 32;
    v |= algs[chance(70) ? below(3) : below(6)];
    if (chance(15)) {
        v ^= 1ULL << below(64);
    }
    return v;
}

/* IA32_TME_EXCLUDE_MASK/BASE-like values: a contiguous mask, or not */
static uint64_t rand_excl(bool base)
{
    uint64_t v = PA_MASK & ~((1ULL << (12 + below(34))) - 1);

    if (base) {
        v &= rnd();
    } else if (chance(80)) {
        v |= 1ULL << 11;
    }
    switch (below(8)) {
    case 0:
        v ^= 1ULL << (12 + below(34));      /* a hole, or one more bit */
        break;
    case 1:
        v |= 1ULL << (46 + below(18));      /* above MAXPHYADDR */
        break;
    case 2:
        v |= 1ULL << below(12);             /* reserved low bits */
        break;
    }
    return v;
}

static uint64_t rand_msr_val(uint32_t msr)
{
    uint64_t r = below(10);

    return r == 0 ? 0 : r == 1 ? rnd() : r == 2 ? 1ULL << below(64) :
           r == 3 ? (uint64_t)below(16) << 32 :   /* MK_TME_CORE_ACTIVATE */
           msr == MSR_EMASK || msr == MSR_EBASE ?
           rand_excl(msr == MSR_EBASE) : rand_act();
}

/* RDMSR or WRMSR after activation: ACTIVATE is locked, values fixed */
static void op_msr(bool write)
{
    uint32_t msr = rand_msr();
    uint64_t val = write ? rand_msr_val(msr) : 0, got = 0, vec, exp = 0;
    int expect = -1;            /* -1: #GP(0) or success */
    unsigned out;

    begin(write ? MKF_OP_WRMSR : MKF_OP_RDMSR, msr, val, 0, 0);
    if (write) {
        vec = g_wrmsr(msr, val);
        if (msr >= MSR_CAP && msr <= MSR_EBASE) {
            expect = GP;        /* read-only, or locked */
        } else if (msr == MSR_CORE) {
            expect = val ? GP : NO_FAULT;
        }
    } else {
        vec = g_rdmsr(msr, &got);
        if (is_tme_msr(msr)) {
            expect = NO_FAULT;
            exp = msr_value(msr);
        }
    }
    out = fault_outcome(vec, false);
    if (out == MKF_OUT_FAIL || (expect >= 0 && vec != (uint64_t)expect) ||
        (!write && expect >= 0 && got != exp)) {
        failure(vec, got, vec == NO_FAULT ? exp : (uint64_t)expect, 0);
        return;
    }
    res->count[cur_op][out]++;
}

/* Write @msr, which must fault or not as said, and read it back. */
static void setup_wrmsr(uint32_t msr, uint64_t val, int expect)
{
    uint64_t vec, got = 0;
    unsigned out;

    begin(MKF_OP_WRMSR, msr, val, 0, 0);
    vec = g_wrmsr(msr, val);
    out = fault_outcome(vec, false);
    if (out == MKF_OUT_FAIL || (expect >= 0 && vec != (uint64_t)expect)) {
        failure(vec, 0, expect, 0);
        return;
    }
    res->count[MKF_OP_WRMSR][out]++;
    cur_op = MKF_OP_RDMSR;
    vec = g_rdmsr(msr, &got);
    if (vec != NO_FAULT) {
        failure(vec, got, NO_FAULT, 0);
        return;
    }
    res->count[MKF_OP_RDMSR][MKF_OUT_OK]++;
    if (msr != MSR_ACT) {
        if (msr != MSR_CORE && out == MKF_OUT_OK && got != val) {
            failure(vec, got, val, 0);
        }
    } else if (out == MKF_OUT_OK && !(val & 4)) {
        if (got != (val | 1)) {
            failure(vec, got, val | 1, 0);  /* activated and locked */
        }
    } else if ((got & 1) || (out == MKF_OUT_OK && (got & 7) != 4)) {
        failure(vec, got, 4, 0);    /* failed: not enabled, not locked */
    }
}

/* IA32_TME_EXCLUDE_MASK/BASE write: #GP or success (facts 2.4) */
static int excl_expect(bool base, uint64_t v)
{
    uint64_t inv = ~(v >> 12) & ((1ULL << 34) - 1);

    if ((v & ~PA_MASK) || (v & (base ? 0xfff : 0x7ff)) ||
        (!base && (v & 0x800) && (inv & (inv + 1)))) {
        return GP;
    }
    return NO_FAULT;
}

/* activate=off: what a BIOS does, with random (mostly wrong) values */
static void self_activate(void)
{
    static const uint64_t bad[] = {
        1ULL << 3, 7ULL << 32 | 2, 1ULL << 4, 3ULL << 4, 1ULL << 9,
        1ULL << 30, 1ULL << 40, 1ULL << 47, 2ULL << 48, 1ULL << 51,
        1ULL << 63, 1ULL << 38,
    };
    uint64_t act, mask = 0, base = 0;

    res->self_activated = 1;
    for (int i = 0; i < 64; i++) {
        uint64_t v;

        switch (below(5)) {
        case 0:
            setup_wrmsr(MSR_ACT, rand_act() | bad[below(12)], GP);
            break;
        case 1:
            /* Key select: no key to restore, so no activation, no lock */
            v = 6 | (chance(50) ? 1ULL << 31 : 0) | 1ULL << 48 |
                (uint64_t)(1 + below(6)) << 32;
            setup_wrmsr(MSR_ACT, v, NO_FAULT);
            break;
        case 2:
        case 3:
            v = rand_excl(i & 1);
            setup_wrmsr(i & 1 ? MSR_EBASE : MSR_EMASK, v,
                        excl_expect(i & 1, v));
            break;
        default:
            v = chance(50) ? 0 : (uint64_t)(1 + below(15)) << 32;
            setup_wrmsr(MSR_CORE, v, v ? GP : NO_FAULT);
            break;
        }
    }

    /* Then valid values: an exclusion range (or none) and ACTIVATE */
    if (chance(50)) {
        mask = (PA_MASK & ~((1ULL << (12 + below(20))) - 1)) | 1ULL << 11;
        base = (chance(50) ? MKF_BUF_PA + below(MKF_BUF_LEN) : rnd()) &
               mask & 0xffff000ULL;
    }
    setup_wrmsr(MSR_EMASK, mask, NO_FAULT);
    setup_wrmsr(MSR_EBASE, base, NO_FAULT);
    act = 2 | (uint64_t)(2 * below(2)) << 4 | (chance(40) ? 1ULL << 31 : 0) |
          (uint64_t)(chance(50) ? 6 : 1 + below(5)) << 32 |
          (1ULL << 48) << (2 * below(2)) | (chance(50) ? 5ULL << 48 : 0);
    setup_wrmsr(MSR_ACT, act, NO_FAULT);
    setup_wrmsr(MSR_CORE, 0, NO_FAULT);
}

/* The KeyID window @w reaches, or INVALID */
static unsigned win_kid(unsigned w)
{
    unsigned lo = 6 - kbits;

    return (w & ((1u << lo) - 1)) ? INVALID : w >> lo;
}

static unsigned rand_valid_win(void)
{
    return below(nkeys + 1) << (6 - kbits);
}

static uint64_t ones(unsigned size)
{
    return size == 8 ? ~0ULL : (1ULL << (8 * size)) - 1;
}

/* A buffer offset for @len bytes, often next to a line or page edge */
static uint64_t rand_off(unsigned len)
{
    uint64_t off = below(MKF_BUF_LEN - len - 64);

    if (chance(30)) {
        off = (off & ~(chance(50) ? 0xfffULL : 0x3fULL)) + 64 - below(9);
    }
    return off;
}

static uint64_t bva(unsigned w, uint64_t off)
{
    return WIN_VA(w) + MKF_BUF_PA + off;
}

static bool lines_overlap(uint64_t a, unsigned alen, uint64_t b, unsigned blen)
{
    return a / 64 <= (b + blen - 1) / 64 && b / 64 <= (a + alen - 1) / 64;
}

/* A write through window @w: values of other KeyIDs in its lines change */
static void wrote(unsigned w, uint64_t off, unsigned len)
{
    if (win_kid(w) == INVALID) {
        return;     /* dropped: must change nothing */
    }
    for (int i = 0; i < NSLOTS; i++) {
        if (slots[i].live && lines_overlap(off, len, slots[i].off,
                                           slots[i].size)) {
            slots[i].live = false;
        }
    }
    if (code.live && lines_overlap(off, len, code.off, 8)) {
        code.live = false;
    }
}

static void check_ones(const uint8_t *p, unsigned len)
{
    for (unsigned i = 0; i < len; i++) {
        if (p[i] != 0xff) {
            failure(NO_FAULT, p[i], 0xff, i);
            return;
        }
    }
    res->count[cur_op][MKF_OUT_OK]++;
}

/* Does KeyID @kid read at @pa what KeyID 0 reads (DESIGN.md section 3)? */
static bool same_as_kid0(unsigned kid, uint64_t pa)
{
    uint64_t m = res->excl_mask & PA_MASK & ~0xfffULL;
    bool bypass = res->activate >> 31 & 1;
    bool rom = pa >= 0xf0000 && pa < 0x100000;
    bool plain0 = bypass || rom ||
        ((res->excl_mask & 0x800) && (pa & m) == (res->excl_base & m));

    if (!kid || pa >= RAM_TOP) {
        return true;            /* not DRAM: never encrypted */
    }
    if (mode[kid] < CMD_CLEAR) {
        return false;
    }
    return (mode[kid] == CMD_NOENC || bypass) == plain0;
}

/* 1 to 8 bytes in the buffer, or now and then in ROM or above RAM */
static void op_access(bool write)
{
    unsigned w = below(64), size = 1 << below(4), kid = win_kid(w);
    uint64_t pa = MKF_BUF_PA + rand_off(size), v = rnd() & ones(size);

    switch (below(20)) {
    case 0:
        pa = 0xf0000 + below(0x10000 - size);
        break;
    case 1:
        pa = RAM_TOP - 32 + below(64);
        break;
    case 2:
        pa = RAM_TOP + below(0x30000000 - size);
        break;
    }
    begin(write ? MKF_OP_WRITE : MKF_OP_READ, w, pa,
          size, v);
    if (write) {
        stn(WIN_VA(w) + pa, size, v);
        wrote(w, pa - MKF_BUF_PA, size);
        res->count[cur_op][MKF_OUT_OK]++;
        return;
    }
    v = ldn(WIN_VA(w) + pa, size);
    if (kid == INVALID ? v != ones(size) :
        same_as_kid0(kid, pa) && same_as_kid0(kid, pa + size - 1) &&
        ldn(WIN_VA(0) + pa, size) != v) {
        failure(NO_FAULT, v, kid == INVALID ? ones(size) :
                ldn(WIN_VA(0) + pa, size), 0);
        return;
    }
    res->count[cur_op][MKF_OUT_OK]++;
}

static void op_movsb(void)
{
    unsigned w = below(64), w2 = below(64), dir = below(3);
    uint64_t off = rand_off(64), off2 = rand_off(64);

    begin(MKF_OP_MOVSB, w, off,
          dir, (uint64_t)w2 << 32 | off2);
    if (dir == 0) {             /* window -> local */
        memcpy(lbuf, (void *)bva(w, off), 64);
        if (win_kid(w) == INVALID) {
            check_ones(lbuf, 64);
            return;
        }
    } else if (dir == 1) {      /* local -> window */
        fill_rand(lbuf, 64);
        memcpy((void *)bva(w, off), lbuf, 64);
        wrote(w, off, 64);
    } else {                    /* window -> window */
        memcpy((void *)bva(w2, off2), (void *)bva(w, off), 64);
        wrote(w2, off2, 64);
    }
    res->count[cur_op][MKF_OUT_OK]++;
}

/*
 * MOVDIR64B of a line of random bytes or of a line read through another
 * window, or MOVDIRI of 4 or 8 bytes, through a KeyID; read back at once
 */
static void op_movdir(void)
{
    unsigned w = rand_valid_win(), w2 = below(64), how = below(4);
    unsigned size = how == 2 ? 4 : how == 3 ? 8 : 64;
    uint64_t off = rand_off(size) & ~(uint64_t)(size - 1), off2 = rand_off(64);
    uint64_t v = rnd() & ones(size == 64 ? 8 : size), dst = bva(w, off), got;
    uint64_t src = (uint64_t)lbuf;

    begin(MKF_OP_MOVDIR, w, off, how, (uint64_t)w2 << 32 | off2);
    switch (how) {
    case 1:
        if (win_kid(w2) != INVALID) {
            src = bva(w2, off2);
            memcpy(lbuf, (void *)src, 64);
            break;
        }
        /* fall through */
    case 0:
        fill_rand(lbuf, 64);
        break;
    case 2:         /* movdiri %eax, (%rcx) */
        asm volatile(".byte 0x0f, 0x38, 0xf9, 0x01"
                     : : "a"(v), "c"(dst) : "memory");
        break;
    case 3:         /* movdiri %rax, (%rcx) */
        asm volatile(".byte 0x48, 0x0f, 0x38, 0xf9, 0x01"
                     : : "a"(v), "c"(dst) : "memory");
        break;
    }
    if (size == 64) {   /* movdir64b (%rcx), %rax */
        asm volatile(".byte 0x66, 0x0f, 0x38, 0xf8, 0x01"
                     : : "a"(dst), "c"(src) : "memory");
    }
    wrote(w, off, size);
    if (size < 64) {
        got = ldn(dst, size);
        if (got != v) {
            failure(NO_FAULT, got, v, 0);
            return;
        }
    } else {
        memcpy(lbuf2, (void *)dst, 64);
        for (int i = 0; i < 64; i++) {
            if (lbuf[i] != lbuf2[i]) {
                failure(NO_FAULT, lbuf2[i], lbuf[i], i);
                return;
            }
        }
    }
    res->count[cur_op][MKF_OUT_OK]++;
}

/* Write a value through a KeyID and read it back at once */
static void op_check(void)
{
    Slot *s = &slots[below(NSLOTS)];
    unsigned w = rand_valid_win(), size = chance(20) ? 64 : 1 << below(4);
    uint64_t off = rand_off(size), v = rnd(), got;

    begin(MKF_OP_CHECK, w, off,
          size, v);
    if (size == 64) {
        fill_rand(lbuf, 64);
        memcpy((void *)bva(w, off), lbuf, 64);
        wrote(w, off, 64);
        memcpy(lbuf2, (void *)bva(w, off), 64);
        for (int i = 0; i < 64; i++) {
            if (lbuf[i] != lbuf2[i]) {
                failure(NO_FAULT, lbuf2[i], lbuf[i], i);
                return;
            }
        }
        res->count[cur_op][MKF_OUT_OK]++;
        return;
    }
    v &= ones(size);
    stn(bva(w, off), size, v);
    wrote(w, off, size);
    got = ldn(bva(w, off), size);
    if (got != v) {
        failure(NO_FAULT, got, v, 0);
        return;
    }
    res->count[cur_op][MKF_OUT_OK]++;
    *s = (Slot) { true, w, size, off, v, gen[win_kid(w)] };
}

/* Read a value written earlier: unchanged unless its KeyID was re-keyed */
static void op_recheck(void)
{
    Slot *s = &slots[below(NSLOTS)];
    uint64_t got;

    if (!s->live) {
        op_check();
        return;
    }
    begin(MKF_OP_RECHECK, s->w, s->off,
          s->size, s->val);
    s->live = false;
    if (gen[win_kid(s->w)] != s->gen) {
        res->count[cur_op][MKF_OUT_SKIP]++;
        return;
    }
    got = ldn(bva(s->w, s->off), s->size);
    if (got != s->val) {
        failure(NO_FAULT, got, s->val, 0);
        return;
    }
    res->count[cur_op][MKF_OUT_OK]++;
}

/* mov $imm, %eax; ret written through a KeyID, called through it */
static void op_exec(void)
{
    uint32_t imm = rnd();
    uint64_t ret = 0, vec, insn = 0xccccc300000000b8ULL | (uint64_t)imm << 8;

    cur_op = MKF_OP_EXEC;
    if (code.live && gen[win_kid(code.w)] == code.gen && chance(50)) {
        stn(bva(code.w, code.off + 1), 4, imm);     /* patch the imm */
    } else {
        code = (Slot) { true, rand_valid_win(), 8, rand_off(8), 0, 0 };
        code.gen = gen[win_kid(code.w)];
        if (chance(50)) {
            stn(bva(code.w, code.off), 8, insn);
        } else {
            memcpy((void *)bva(code.w, code.off), &insn, 8);
        }
    }
    wrote(code.w, code.off, 8);
    code.live = true;
    cur[0] = code.w;
    cur[1] = code.off;
    cur[2] = imm;
    vec = g_call(bva(code.w, code.off), &ret);
    if (vec != NO_FAULT || (uint32_t)ret != imm) {
        failure(vec, ret, imm, 0);
        return;
    }
    res->count[cur_op][MKF_OUT_OK]++;
}

/* What PCONFIG must do with struct @st (leaf 0, aligned, mapped) */
static uint64_t pconfig_expect(const uint8_t *st)
{
    uint16_t keyid = st[0] | st[1] << 8;
    uint32_t ctrl = st[2] | st[3] << 8 | st[4] << 16 | (uint32_t)st[5] << 24;
    uint32_t alg = (ctrl >> 8) & 0xffff;

    if ((ctrl >> 24) || (ctrl & 0xff) > 3 || !keyid || keyid > nkeys ||
        !alg || (alg & (alg - 1)) ||
        !(((uint64_t)alg << 48) & res->activate)) {
        return GP;
    }
    return NO_FAULT;
}

/* g_pconfig_flags() (mktme-guest/boot.S): its producers, and alone */
#define FP_PRODUCERS    15
#define FP_ALONE        0x100

static void op_pconfig(void)
{
    static const uint32_t algs[] = {
        1 << 8, 1 << 8, 1 << 10, 1 << 10, 5 << 8, 0, 1 << 9, 1 << 23
    };
    uint8_t st[192];
    uint64_t rax = chance(90) ? 0 : chance(50) ? 1 + below(3) : rnd();
    uint64_t rbx, out[2] = { 0 }, vec, expect, where = below(100), mis = 0;
    uint64_t before;
    uint32_t ctrl = (chance(85) ? below(4) : 4 + below(252)) |
                    algs[below(8)] | (chance(5) ? 1u << (24 + below(8)) : 0);
    uint16_t keyid = chance(85) ? below(71) : rnd();
    unsigned w = below(64), out_kind;

    fill_rand(st, 192);
    memcpy(st, &keyid, 2);
    memcpy(st + 2, &ctrl, 4);
    if (chance(10)) {
        rax |= rnd() << 32;     /* only EAX is the leaf */
    }
    if (chance(10)) {
        mis = chance(50) ? 1 + below(255) : 16 * (1 + below(15));
    }
    if (where < 5) {
        rbx = VA_UNMAPPED + below(16) * 4096 + mis;
    } else if (where < 25) {    /* written and read through window w */
        memcpy((void *)(WIN_VA(w) + (uint64_t)pcs + mis), st, 192);
        if (win_kid(w) == INVALID) {
            memset(st, 0xff, 192);
        }
        rbx = WIN_VA(w) + (uint64_t)pcs + mis;
    } else {
        memcpy(pcs + mis, st, 192);
        rbx = (uint64_t)pcs + mis;
    }
    expect = (uint32_t)rax || mis ? GP : where < 5 ? PF : pconfig_expect(st);

    begin(MKF_OP_PCONFIG, rax, rbx, 0, 0);
    memcpy(&cur[2], st, 8);
    cur[3] = where;
    if (chance(50)) {
        vec = g_pconfig(rax, rbx, chance(90) ? 0 : 5, out);
        before = FLAGS_ALL;
    } else {
        /* One of boot.S's flag producers right before it, no popfq */
        uint64_t producer = below(FP_PRODUCERS), o[3];

        g_pconfig_flags(0, 0, producer | FP_ALONE, o);
        before = o[1];
        vec = g_pconfig_flags(rax, rbx, producer, o);
        out[0] = o[0];
        out[1] = o[1];
    }
    out_kind = fault_outcome(vec, true);
    if (out_kind == MKF_OUT_FAIL || vec != expect) {
        failure(vec, out[0], expect, out[1]);
        return;
    }
    if (vec != NO_FAULT) {
        /* RAX and the flags are unchanged; CR2 is in the struct */
        if (out[0] != rax || out[1] != before ||
            (vec == PF && read_cr2() - rbx >= 192)) {
            failure(vec, out[0], rax, out[1]);
            return;
        }
    } else if ((out[0] != 0 && out[0] != 2 && out[0] != 5) ||
               out[1] != (out[0] ? ZF : 0)) {
        failure(vec, out[0], 0, out[1]);
        return;
    } else if (out[0]) {
        out_kind = MKF_OUT_STATUS;
    } else {
        gen[keyid]++;
        mode[keyid] = ctrl & 0xff;
    }
    res->count[cur_op][out_kind]++;
}

void guest_main(void)
{
    const MkfParams *prm = (const MkfParams *)MKF_PARAMS_PA;
    uint64_t n, v[4];

    memset(res, 0, sizeof(*res));
    res->magic = MKF_MAGIC;
    setup_ring0(idt);
    res->seed = prm->seed;
    res->iterations = n = prm->iterations;
    rng = prm->seed ? prm->seed : 0x9e3779b97f4a7c15ULL;
    putlhex(res->seed, "mktme-fuzz: seed ");
    putlhex(n, " iterations ");
    puts_dbg("\n");

    if (g_rdmsr(MSR_CAP, &v[0]) != NO_FAULT ||
        g_rdmsr(MSR_ACT, &v[1]) != NO_FAULT) {
        puts_dbg("mktme-fuzz: no TME MSRs\n");
        finish(MKF_DONE_CRASH);
    }
    res->capability = v[0];
    if (!(v[1] & 1)) {
        self_activate();
    }
    for (int i = 1; i < 4; i++) {
        if (g_rdmsr(MSR_CAP + i, &v[i]) != NO_FAULT) {
            finish(MKF_DONE_CRASH);
        }
    }
    res->activate = v[1];
    res->excl_mask = v[2];
    res->excl_base = v[3];
    kbits = res->keyid_bits = (res->activate >> 32) & 0xf;
    putlhex(res->activate, "mktme-fuzz: activate ");
    putlhex(res->excl_mask, " exclude ");
    putlhex(res->excl_base, " ");
    puts_dbg("\n");
    if ((res->activate & 3) != 3 || kbits < 1 || kbits > 6) {
        finish(MKF_DONE_OK);    /* the qtest reports it */
    }
    nkeys = (1u << kbits) - 1;
    memset(mode, CMD_CLEAR, sizeof(mode));

    for (unsigned w = 0; w < 64; w++) {
        win_pdpt[w] = (uint64_t)w << 40 | 0x87;     /* 1 GiB, U W P */
    }
    boot_pml4[1] = (uint64_t)win_pdpt | 7;
    asm volatile("mov %0, %%cr3" : : "r"((uint64_t)boot_pml4) : "memory");

    for (res->iteration = 0; res->iteration < n; res->iteration++) {
        unsigned r = below(100);

        if (n >= 8 && res->iteration % (n / 8) == 0) {
            putlhex(res->iteration, "mktme-fuzz: iteration ");
            puts_dbg("\n");
        }
        if (r < 8) {
            op_msr(false);
        } else if (r < 16) {
            op_msr(true);
        } else if (r < 30) {
            op_pconfig();
        } else if (r < 48) {
            op_access(false);
        } else if (r < 64) {
            op_access(true);
        } else if (r < 74) {
            op_movsb();
        } else if (r < 82) {
            op_check();
        } else if (r < 86) {
            op_movdir();
        } else if (r < 94) {
            op_recheck();
        } else {
            op_exec();
        }
    }
    finish(MKF_DONE_OK);
}
