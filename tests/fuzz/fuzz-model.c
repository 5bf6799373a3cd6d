/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * libFuzzer target for the TME-MK platform model (mktme-model.c).
 *
 * The input is a program.  Byte 0 selects the mode:
 *   even: API mode.  A configuration, then a sequence of operations
 *         (WRMSR, RDMSR, PCONFIG, reset, activate_default, KeyID/PA
 *         decode queries) made through the public API only.
 *   odd:  migration mode.  A configuration, then ACTIVATE, the exclusion
 *         MSRs and key-table entries overwritten from the input as a
 *         migration stream would; if mktme_platform_post_load_check()
 *         accepts that state, the same operation sequence follows.
 *
 * After every operation the invariants below are checked; a violation
 * prints what broke and abort()s, so libFuzzer records the input.  Key
 * tables of more than BIG_TABLE entries are checked in full (all entries,
 * post_load_check) only before the first and after the last operation,
 * and in between around the KeyID boundaries and at the entry PCONFIG
 * touched: the full checks are linear in the table size.
 * The invariants:
 *   (a) ACTIVATE, once locked, changes only through reset;
 *   (b) WRMSR to 0x981 always, and to 0x982-0x984 after lock, is #GP;
 *   (c) PCONFIG succeeds only when TME-MK is activated, for a KeyID in
 *       1..nr_keyids with a valid command and algorithm, and then sets
 *       exactly that entry; a #GP, busy or entropy-failed PCONFIG (and
 *       every other operation but reset) changes no entry.  A shadow key
 *       table predicts every entry (including its generation) exactly;
 *   (d) keyid_xform: KeyID 0 is never KEY or INVALID, KeyIDs 1..nr are
 *       never INVALID, KEY iff the entry is in ENCRYPT mode, INVALID for
 *       KeyIDs above nr;
 *   (e) mktme_platform_post_load_check() accepts every reachable state;
 *   (f) key hygiene: entries not in ENCRYPT mode hold no key bytes, and
 *       AES-XTS-128 entries nothing beyond byte 15.
 * plus WRMSR/RDMSR consistency (accepted values are architecturally
 * valid, read-back, faults change nothing, generation counters move on
 * every visible change) and PA decode consistency.
 */

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <glib.h>
#include "mktme-model.h"

#define ACT_RESERVED_BITS  (0x7fffff00ULL | (0xfffULL << 36))
#define ACT_ALGS_KNOWN     (MKTME_ACT_ALG_AES_XTS_128 | \
                            MKTME_ACT_ALG_AES_XTS_256)
#define MAX_OPS            256
#define BIG_TABLE          16      /* entries: full checks only at the end */

/* ---- input reader: reads past the end yield zeros ---- */

typedef struct Input {
    const uint8_t *data;
    size_t len;
    size_t pos;
} Input;

static bool in_empty(const Input *in)
{
    return in->pos >= in->len;
}

static uint8_t in_u8(Input *in)
{
    return in->pos < in->len ? in->data[in->pos++] : 0;
}

static uint16_t in_u16(Input *in)
{
    uint16_t v = in_u8(in);

    return v | (uint16_t)in_u8(in) << 8;
}

static uint32_t in_u32(Input *in)
{
    uint32_t v = in_u16(in);

    return v | (uint32_t)in_u16(in) << 16;
}

static uint64_t in_u64(Input *in)
{
    uint64_t v = in_u32(in);

    return v | (uint64_t)in_u32(in) << 32;
}

static void in_bytes(Input *in, uint8_t *dst, size_t n)
{
    size_t avail = in->pos < in->len ? in->len - in->pos : 0;
    size_t k = n < avail ? n : avail;

    memcpy(dst, in->data + in->pos, k);
    memset(dst + k, 0, n - k);
    in->pos += k;
}

/* ---- fuzzer state and the violation report ---- */

typedef struct Fuzz {
    MktmePlatform *p;
    MktmeKeyEntry *shadow;       /* expected key table */
    bool latched;                /* ACTIVATE seen locked since reset/load */
    uint64_t latched_activate;
    bool migrated;
    unsigned touched;            /* KeyID of the last PCONFIG */
    unsigned op;
    const char *opname;
    char detail[160];            /* the operation's arguments */
    char xdetail[96];            /* the key entry being checked */
    bool x_active;               /* an xform query is being checked: */
    uint16_t x_keyid;
    uint64_t x_pa;
    int x_result;
} Fuzz;

/* Platform state visible through the API, compared across operations. */
typedef struct Snap {
    uint64_t activate;
    uint64_t exclude_mask;
    uint64_t exclude_base;
    uint32_t generation;
} Snap;

static Fuzz *cur;

static void G_GNUC_NORETURN violation(int line, const char *what)
{
    const MktmePlatform *p = cur ? cur->p : NULL;

    fprintf(stderr, "\nfuzz-model: INVARIANT VIOLATED (fuzz-model.c:%d): "
            "%s\n", line, what);
    if (cur && cur->x_active) {
        snprintf(cur->xdetail, sizeof(cur->xdetail),
                 "[xform keyid %u pa 0x%llx -> %d]", cur->x_keyid,
                 (unsigned long long)cur->x_pa, cur->x_result);
    }
    if (cur) {
        fprintf(stderr, "  mode %s, op #%u %s %s %s\n",
                cur->migrated ? "migration" : "api", cur->op,
                cur->opname ? cur->opname : "(setup)", cur->detail,
                cur->xdetail);
    }
    if (p) {
        fprintf(stderr, "  cfg phys_bits %u max_keyid_bits %u max_keys %u "
                "xts128 %d xts256 %d bypass %d\n", p->cfg.phys_bits,
                p->cfg.max_keyid_bits, p->cfg.max_keys, p->cfg.aes_xts_128,
                p->cfg.aes_xts_256, p->cfg.bypass);
        fprintf(stderr, "  activate 0x%016llx exclude mask 0x%016llx base "
                "0x%016llx last_fault %s\n",
                (unsigned long long)p->activate,
                (unsigned long long)p->exclude_mask,
                (unsigned long long)p->exclude_base,
                mktme_fault_name(p->last_fault));
    }
    abort();
}

#define CHECK(cond)                                                     \
    do {                                                                \
        if (G_UNLIKELY(!(cond))) {                                      \
            violation(__LINE__, #cond);                                 \
        }                                                               \
    } while (0)

static uint64_t pa_mask(unsigned phys_bits)
{
    return (1ULL << phys_bits) - 1;
}

static bool all_zero(const uint8_t *b, size_t len)
{
    static const uint8_t zero[32];

    g_assert(len <= sizeof(zero));
    return !memcmp(b, zero, len);   /* one call, not a traced byte loop */
}

static Snap snap(const MktmePlatform *p)
{
    return (Snap) {
        .activate = p->activate,
        .exclude_mask = p->exclude_mask,
        .exclude_base = p->exclude_base,
        .generation = p->generation,
    };
}

static bool snap_same_msrs(const Snap *a, const Snap *b)
{
    return a->activate == b->activate && a->exclude_mask == b->exclude_mask &&
           a->exclude_base == b->exclude_base;
}

static bool entry_equal(const MktmeKeyEntry *a, const MktmeKeyEntry *b)
{
    return a->mode == b->mode && a->alg == b->alg &&
           !memcmp(a->data_key, b->data_key, sizeof(a->data_key)) &&
           !memcmp(a->tweak_key, b->tweak_key, sizeof(a->tweak_key)) &&
           a->generation == b->generation;
}

static void shadow_clear(MktmeKeyEntry *e, uint8_t mode)
{
    memset(e->data_key, 0, sizeof(e->data_key));
    memset(e->tweak_key, 0, sizeof(e->tweak_key));
    e->mode = mode;
    e->alg = MKTME_ALG_AES_XTS_128;
}

/* ---- invariant checks ---- */

/* (d), for one KeyID and an already stripped PA. */
static void check_xform(Fuzz *f, uint16_t keyid, uint64_t pa)
{
    const MktmePlatform *p = f->p;
    unsigned nr = mktme_nr_keyids(p);
    MktmeXform x = mktme_keyid_xform(p, keyid, pa);
    const MktmeKeyEntry *e = mktme_key_entry(p, keyid);

    f->x_active = true;                 /* formatted only on a violation */
    f->x_keyid = keyid;
    f->x_pa = pa;
    f->x_result = x;
    CHECK(x == MKTME_XFORM_PLAIN || x == MKTME_XFORM_VM_KEY ||
          x == MKTME_XFORM_KEY || x == MKTME_XFORM_INVALID);
    CHECK(e == (keyid <= p->cfg.max_keys ? &p->keys[keyid] : NULL));
    if (keyid == 0) {
        CHECK(x != MKTME_XFORM_KEY);
        CHECK(x != MKTME_XFORM_INVALID);
        if (mktme_bypass_active(p)) {
            CHECK(x == MKTME_XFORM_PLAIN);
        }
    } else if (keyid <= nr) {
        CHECK(x != MKTME_XFORM_INVALID);
        CHECK((x == MKTME_XFORM_KEY) == (e->mode == MKTME_KEY_ENCRYPT));
        if (e->mode == MKTME_KEY_NO_ENCRYPT) {
            CHECK(x == MKTME_XFORM_PLAIN);
        }
    } else {
        CHECK(x == MKTME_XFORM_INVALID);
    }
    f->x_active = false;
}

/* PA decode: KeyID field and stripped address recombine to the PA. */
static void check_pa(Fuzz *f, uint64_t pa)
{
    const MktmePlatform *p = f->p;
    unsigned k = mktme_keyid_bits(p);
    uint16_t keyid = mktme_pa_keyid(p, pa);
    uint64_t stripped = mktme_pa_strip(p, pa);

    CHECK(keyid < (1u << k));
    CHECK(mktme_pa_keyid(p, stripped) == 0);
    CHECK((stripped | ((uint64_t)keyid << mktme_keyid_shift(p))) == pa);
    check_xform(f, keyid, stripped);
}

/* (c)/(f) for one entry: the shadow table and key hygiene */
static void check_entry(Fuzz *f, unsigned i, unsigned nr)
{
    const MktmeKeyEntry *e = &f->p->keys[i];

    if (!entry_equal(e, &f->shadow[i])) {
        snprintf(f->xdetail, sizeof(f->xdetail),
                 "[KeyID %u: mode %u/%u alg %u/%u gen %u/%u "
                 "(actual/expected)]", i, e->mode, f->shadow[i].mode,
                 e->alg, f->shadow[i].alg, e->generation,
                 f->shadow[i].generation);
        violation(__LINE__, "key table entry differs from the shadow");
    }
    CHECK(e->mode < MKTME_KEY_MODE__MAX);
    CHECK(e->alg <= MKTME_ALG_AES_XTS_256);
    if (e->mode != MKTME_KEY_ENCRYPT) {
        CHECK(all_zero(e->data_key, sizeof(e->data_key)));
        CHECK(all_zero(e->tweak_key, sizeof(e->tweak_key)));
    } else if (e->alg == MKTME_ALG_AES_XTS_128) {
        CHECK(all_zero(e->data_key + 16, 16));
        CHECK(all_zero(e->tweak_key + 16, 16));
    }
    if (i == 0 || i > nr) {
        CHECK(e->mode == MKTME_KEY_TME);
    }
}

/*
 * Everything that must hold between operations.  @full: the whole key
 * table and post_load_check; otherwise (big tables, between operations)
 * only the entries around the boundaries and the one PCONFIG touched.
 */
static void check_state(Fuzz *f, bool full)
{
    const MktmePlatform *p = f->p;
    const MktmeConfig *c = &p->cfg;
    unsigned nr = mktme_nr_keyids(p), k = mktme_keyid_bits(p), i;
    char *err = NULL;
    uint16_t probe[8];

    /* (e) */
    if (full && !mktme_platform_post_load_check(p, &err)) {
        snprintf(f->xdetail, sizeof(f->xdetail), "[post_load_check: %s]",
                 err ? err : "(no message)");
        g_free(err);
        violation(__LINE__, "post_load_check rejects a reachable state");
    }
    CHECK(err == NULL);

    /* (a) */
    if (f->latched) {
        CHECK(p->activate == f->latched_activate);
    } else if (p->activate & MKTME_ACT_LOCK) {
        f->latched = true;
        f->latched_activate = p->activate;
    }

    /* Decode parameters */
    CHECK(p->nr_entries == c->max_keys + 1);
    CHECK(k <= c->max_keyid_bits);
    CHECK(k == 0 || mktme_tme_enabled(p));
    CHECK(nr <= c->max_keys);
    CHECK(nr <= (1u << k) - 1);
    CHECK(mktme_keyid_shift(p) == c->phys_bits - k);
    CHECK(!mktme_bypass_active(p) || c->bypass);

    /* (c)/(f) */
    if (full) {
        for (i = 0; i <= c->max_keys; i++) {
            check_entry(f, i, nr);
        }
    } else {
        for (i = 0; i <= MIN(c->max_keys, 64u); i++) {
            check_entry(f, i, nr);
        }
        for (i = nr > 0 ? nr - 1 : 0; i <= MIN(c->max_keys, nr + 1); i++) {
            check_entry(f, i, nr);
        }
        if (f->touched <= c->max_keys) {
            check_entry(f, f->touched, nr);
        }
    }

    /* (d) on a few KeyIDs around the interesting boundaries */
    probe[0] = 0;
    probe[1] = 1;
    probe[2] = nr;
    probe[3] = nr + 1;
    probe[4] = c->max_keys;
    probe[5] = c->max_keys + 1;
    probe[6] = (1u << k) - 1;
    probe[7] = 0xffff;
    for (i = 0; i < G_N_ELEMENTS(probe); i++) {
        check_xform(f, probe[i], 0);
    }
}

/* ---- value builders: mostly well-formed, sometimes raw ---- */

static uint64_t build_activate(Input *in)
{
    uint8_t a = in_u8(in), b, c;
    uint64_t v = 0;

    if (a == 0xff) {
        return in_u64(in);
    }
    b = in_u8(in);
    c = in_u8(in);
    v |= (a & 1) ? MKTME_ACT_LOCK : 0;
    v |= (a & 2) ? MKTME_ACT_ENABLE : 0;
    v |= (a & 4) ? MKTME_ACT_KEY_SELECT : 0;
    v |= (a & 8) ? MKTME_ACT_SAVE_KEY : 0;
    switch ((a >> 4) & 3) {
    case 0:
        v |= (uint64_t)MKTME_POLICY_AES_XTS_128 << MKTME_ACT_POLICY_SHIFT;
        break;
    case 1:
        v |= (uint64_t)MKTME_POLICY_AES_XTS_256 << MKTME_ACT_POLICY_SHIFT;
        break;
    default:
        v |= (uint64_t)(b >> 4) << MKTME_ACT_POLICY_SHIFT;
        break;
    }
    v |= (a & 0x40) ? MKTME_ACT_BYPASS : 0;
    v |= (uint64_t)(b & 15) << MKTME_ACT_KEYID_BITS_SHIFT;
    if (a & 0x80) {
        v |= (uint64_t)in_u16(in) << MKTME_ACT_ALGS_SHIFT;
    } else {
        v |= (c & 1) ? MKTME_ACT_ALG_AES_XTS_128 : 0;
        v |= (c & 2) ? MKTME_ACT_ALG_AES_XTS_256 : 0;
    }
    if (c & 0x80) {
        v |= 1ULL << (c & 63);          /* maybe a reserved bit */
    }
    return v;
}

static uint64_t build_exclude_mask(Input *in, unsigned phys_bits)
{
    uint8_t a = in_u8(in);
    unsigned z;
    uint64_t m;

    if (a & 0x80) {
        return in_u64(in);
    }
    /* ones from bit phys_bits - 1 down to bit 12 + z */
    z = in_u8(in) % (phys_bits - 12 + 1);
    m = (pa_mask(phys_bits) >> (12 + z)) << (12 + z);
    if (a & 1) {
        m |= MKTME_EXCL_ENABLE;
    }
    if (a & 2) {
        m ^= 1ULL << (12 + in_u8(in) % (phys_bits - 12));
    }
    if (a & 4) {
        m |= 1ULL << (in_u8(in) & 63);
    }
    return m;
}

static uint64_t build_exclude_base(Input *in, unsigned phys_bits)
{
    uint8_t a = in_u8(in);
    uint64_t v = in_u64(in);

    return (a & 0x80) ? v : v & pa_mask(phys_bits) & ~0xfffULL;
}

static uint32_t pick_msr(Input *in)
{
    static const uint32_t msrs[] = {
        MSR_IA32_TME_CAPABILITY, MSR_IA32_TME_ACTIVATE,
        MSR_IA32_TME_EXCLUDE_MASK, MSR_IA32_TME_EXCLUDE_BASE,
        MSR_IA32_MKTME_CORE_ACTIVATE,
    };
    uint8_t b = in_u8(in);

    return b < 250 ? msrs[b % G_N_ELEMENTS(msrs)] : in_u32(in);
}

static bool tme_msr(uint32_t msr)
{
    return (msr >= MSR_IA32_TME_CAPABILITY &&
            msr <= MSR_IA32_TME_EXCLUDE_BASE) ||
           msr == MSR_IA32_MKTME_CORE_ACTIVATE;
}

/* ---- operations ---- */

/* Is @val a value WRMSR(@msr) may accept on an unlocked platform? */
static bool msr_value_valid(const MktmeConfig *c, uint32_t msr, uint64_t val)
{
    unsigned policy, k;
    uint64_t algs, field, inv;

    switch (msr) {
    case MSR_IA32_TME_ACTIVATE:
        policy = (val & MKTME_ACT_POLICY_MASK) >> MKTME_ACT_POLICY_SHIFT;
        k = (val & MKTME_ACT_KEYID_BITS_MASK) >> MKTME_ACT_KEYID_BITS_SHIFT;
        algs = val & MKTME_ACT_ALGS_MASK;
        return !(val & ACT_RESERVED_BITS) && !(val & MKTME_ACT_SAVE_KEY) &&
               (!(val & MKTME_ACT_BYPASS) || c->bypass) &&
               ((policy == MKTME_POLICY_AES_XTS_128 && c->aes_xts_128) ||
                (policy == MKTME_POLICY_AES_XTS_256 && c->aes_xts_256)) &&
               k <= c->max_keyid_bits &&
               (!k || (val & MKTME_ACT_ENABLE)) &&
               !(algs & ~((c->aes_xts_128 ? MKTME_ACT_ALG_AES_XTS_128 : 0) |
                          (c->aes_xts_256 ? MKTME_ACT_ALG_AES_XTS_256 : 0))) &&
               (!k || algs);
    case MSR_IA32_TME_EXCLUDE_MASK:
        if ((val & ~pa_mask(c->phys_bits)) || (val & 0x7ff)) {
            return false;
        }
        if (!(val & MKTME_EXCL_ENABLE)) {
            return true;
        }
        field = val >> 12;
        inv = ~field & pa_mask(c->phys_bits - 12);
        return !(inv & (inv + 1));
    case MSR_IA32_TME_EXCLUDE_BASE:
        return !(val & ~pa_mask(c->phys_bits)) && !(val & 0xfff);
    default:
        return false;
    }
}

static void op_msr_write(Fuzz *f, Input *in)
{
    MktmePlatform *p = f->p;
    uint32_t msr = pick_msr(in);
    uint8_t flags = in_u8(in);
    bool rng_fail = flags & 1;
    MktmeFault before_fault = p->last_fault;
    Snap s0 = snap(p), s1;
    uint64_t val;
    int ret;

    switch (msr) {
    case MSR_IA32_TME_ACTIVATE:
        val = build_activate(in);
        break;
    case MSR_IA32_TME_EXCLUDE_MASK:
        val = build_exclude_mask(in, p->cfg.phys_bits);
        break;
    case MSR_IA32_TME_EXCLUDE_BASE:
        val = build_exclude_base(in, p->cfg.phys_bits);
        break;
    default:
        val = (flags & 2) ? in_u64(in) : 0;
        break;
    }
    snprintf(f->detail, sizeof(f->detail), "[wrmsr 0x%x 0x%016llx%s]", msr,
             (unsigned long long)val, rng_fail ? " rng_fail" : "");

    p->test_rng_fail = rng_fail;
    ret = mktme_msr_write(p, msr, val);
    p->test_rng_fail = false;
    s1 = snap(p);

    if (!tme_msr(msr)) {
        CHECK(ret == MKTME_MSR_NOT_MINE);
        CHECK(snap_same_msrs(&s0, &s1) && s0.generation == s1.generation);
        CHECK(p->last_fault == before_fault);
        return;
    }
    CHECK(ret == 0 || ret == MKTME_EXC_GP);
    CHECK((ret == MKTME_EXC_GP) == (p->last_fault != MKTME_FAULT_NONE));
    if (msr == MSR_IA32_TME_CAPABILITY) {
        CHECK(ret == MKTME_EXC_GP);                          /* (b) */
    } else if (msr == MSR_IA32_MKTME_CORE_ACTIVATE) {
        CHECK(ret == ((p->cfg.max_keyid_bits && !val) ? 0 : MKTME_EXC_GP));
    } else if (s0.activate & MKTME_ACT_LOCK) {
        CHECK(ret == MKTME_EXC_GP);                          /* (b) */
        CHECK(p->last_fault == MKTME_FAULT_LOCKED);
    } else {
        /* unlocked 0x982-0x984: accepted iff architecturally valid */
        CHECK((ret == 0) == msr_value_valid(&p->cfg, msr, val));
    }

    if (ret || msr == MSR_IA32_TME_CAPABILITY ||
        msr == MSR_IA32_MKTME_CORE_ACTIVATE) {
        CHECK(snap_same_msrs(&s0, &s1));
        CHECK(s0.generation == s1.generation);
        return;
    }
    CHECK(s1.generation != s0.generation);
    switch (msr) {
    case MSR_IA32_TME_ACTIVATE:
        CHECK(s1.exclude_mask == s0.exclude_mask);
        CHECK(s1.exclude_base == s0.exclude_base);
        if (!(val & MKTME_ACT_ENABLE)) {
            CHECK(s1.activate == (val | MKTME_ACT_LOCK));
            CHECK(!mktme_tme_enabled(p));
        } else if ((val & MKTME_ACT_KEY_SELECT) || rng_fail) {
            /* failed activation: unlocked, MKTME part not committed */
            CHECK(s1.activate == (val & ~(MKTME_ACT_LOCK | MKTME_ACT_ENABLE |
                                          MKTME_ACT_KEYID_BITS_MASK |
                                          MKTME_ACT_ALGS_MASK)));
        } else {
            CHECK(s1.activate == (val | MKTME_ACT_LOCK));
            CHECK(mktme_tme_enabled(p));
            CHECK(mktme_keyid_bits(p) ==
                  ((val & MKTME_ACT_KEYID_BITS_MASK) >>
                   MKTME_ACT_KEYID_BITS_SHIFT));
        }
        break;
    case MSR_IA32_TME_EXCLUDE_MASK:
        CHECK(s1.activate == s0.activate);
        CHECK(s1.exclude_mask == val && s1.exclude_base == s0.exclude_base);
        break;
    case MSR_IA32_TME_EXCLUDE_BASE:
        CHECK(s1.activate == s0.activate);
        CHECK(s1.exclude_base == val && s1.exclude_mask == s0.exclude_mask);
        break;
    }
}

static void op_msr_read(Fuzz *f, Input *in)
{
    const MktmePlatform *p = f->p;
    const MktmeConfig *c = &p->cfg;
    uint32_t msr = pick_msr(in);
    uint64_t v = 0x5a5a5a5a5a5a5a5aULL, cap;
    Snap s0 = snap(p), s1;
    int ret;

    snprintf(f->detail, sizeof(f->detail), "[rdmsr 0x%x]", msr);
    ret = mktme_msr_read(p, msr, &v);
    s1 = snap(p);
    CHECK(snap_same_msrs(&s0, &s1) && s0.generation == s1.generation);
    switch (msr) {
    case MSR_IA32_TME_CAPABILITY:
        cap = (c->aes_xts_128 ? 1ULL : 0) | (c->aes_xts_256 ? 4ULL : 0) |
              (c->bypass ? 1ULL << 31 : 0) |
              ((uint64_t)c->max_keyid_bits << 32) |
              ((uint64_t)c->max_keys << 36);
        CHECK(ret == 0 && v == cap && v == mktme_capability(p));
        break;
    case MSR_IA32_TME_ACTIVATE:
        CHECK(ret == 0 && v == p->activate);
        break;
    case MSR_IA32_TME_EXCLUDE_MASK:
        CHECK(ret == 0 && v == p->exclude_mask);
        break;
    case MSR_IA32_TME_EXCLUDE_BASE:
        CHECK(ret == 0 && v == p->exclude_base);
        break;
    case MSR_IA32_MKTME_CORE_ACTIVATE:
        if (!c->max_keyid_bits) {
            CHECK(ret == MKTME_EXC_GP);
        } else {
            CHECK(ret == 0);
            CHECK(v == (uint64_t)mktme_keyid_bits(p) << 32);
        }
        break;
    default:
        CHECK(ret == MKTME_MSR_NOT_MINE);
        CHECK(v == 0x5a5a5a5a5a5a5a5aULL);
        break;
    }
}

static void op_pconfig(Fuzz *f, Input *in)
{
    MktmePlatform *p = f->p;
    uint8_t flags = in_u8(in), sel = in_u8(in), fill = in_u8(in);
    bool entropy_ok = !(flags & 1), busy = flags & 2, direct = flags & 4;
    uint64_t leaf = (flags & 8) ? in_u32(in) : MKTME_PCONFIG_LEAF_KEY_PROGRAM;
    uint64_t rbx = in_u64(in), status = 0xdead;
    uint8_t st[MKTME_KEY_PROGRAM_STRUCT_SIZE], entropy[64];
    unsigned nr = mktme_nr_keyids(p), cmd, i;
    uint32_t ctrl, enc_alg;
    uint16_t keyid;
    bool pre_gp, spec_gp;
    Snap s0 = snap(p), s1;
    MktmeKeyEntry *e;
    int pre, ret;

    if (!(flags & 16)) {
        rbx &= ~(uint64_t)(MKTME_KEY_PROGRAM_ALIGN - 1);
    }
    /* The struct: a byte pattern, the whole thing raw, or key fields raw */
    for (i = 0; i < sizeof(st); i++) {
        st[i] = (fill & 0x80) ? 0 : (uint8_t)(fill * (i + 1));
    }
    if (flags & 32) {
        in_bytes(in, st, sizeof(st));
    } else {
        keyid = (sel & 0x80) ? in_u16(in) : in_u8(in) % (nr + 2);
        switch ((sel >> 4) & 7) {
        case 0:
            ctrl = in_u32(in);
            break;
        default:
            /* command 0..4 (4 invalid), ENC_ALG 1, 4, or raw */
            ctrl = sel % 5;
            enc_alg = (sel & 0x40) ? in_u16(in) : (sel & 0x10) ? 4 : 1;
            ctrl |= enc_alg << 8;
            break;
        }
        st[0] = keyid;
        st[1] = keyid >> 8;
        st[2] = ctrl;
        st[3] = ctrl >> 8;
        st[4] = ctrl >> 16;
        st[5] = ctrl >> 24;
        if (flags & 64) {
            in_bytes(in, st + 64, 32);
            in_bytes(in, st + 128, 32);
        }
    }
    for (i = 0; i < sizeof(entropy); i++) {
        entropy[i] = (uint8_t)(0xa5 ^ (i * 37) ^ flags);
    }
    keyid = st[0] | st[1] << 8;
    ctrl = st[2] | st[3] << 8 | st[4] << 16 | (uint32_t)st[5] << 24;
    cmd = ctrl & 0xff;
    enc_alg = (ctrl >> 8) & 0xffff;
    f->touched = keyid;
    snprintf(f->detail, sizeof(f->detail), "[pconfig leaf %llu rbx 0x%llx "
             "keyid %u ctrl 0x%08x entropy_ok %d busy %d direct %d]",
             (unsigned long long)leaf, (unsigned long long)rbx, keyid, ctrl,
             entropy_ok, busy, direct);

    pre = mktme_pconfig_precheck(p, leaf, rbx);
    pre_gp = leaf != MKTME_PCONFIG_LEAF_KEY_PROGRAM ||
             !mktme_keyid_bits(p) || (rbx & (MKTME_KEY_PROGRAM_ALIGN - 1));
    CHECK(pre == 0 || pre == MKTME_EXC_GP);
    CHECK((pre == MKTME_EXC_GP) == pre_gp);
    CHECK((mktme_pconfig_precheck_fault(p, leaf, rbx) != MKTME_FAULT_NONE) ==
          pre_gp);
    if (pre && !direct) {
        return;
    }

    /* direct: call key_program even after a failed precheck */
    p->test_busy = busy;
    ret = mktme_pconfig_key_program(p, st, entropy, entropy_ok, &status);
    p->test_busy = false;
    s1 = snap(p);
    CHECK(snap_same_msrs(&s0, &s1));

    spec_gp = (ctrl >> 24) || cmd > MKTME_CMD_NO_ENCRYPT ||
              keyid == 0 || keyid > nr ||
              !enc_alg || (enc_alg & (enc_alg - 1)) ||
              !(((uint64_t)enc_alg << MKTME_ACT_ALGS_SHIFT) & p->activate &
                ACT_ALGS_KNOWN);
    CHECK(ret == 0 || ret == MKTME_EXC_GP);
    CHECK((ret == MKTME_EXC_GP) == spec_gp);
    if (ret) {
        CHECK(p->last_fault != MKTME_FAULT_NONE);
        CHECK(s1.generation == s0.generation);
        return;                               /* shadow: nothing changes */
    }
    CHECK(p->last_fault == MKTME_FAULT_NONE);
    CHECK(status == MKTME_PCONFIG_SUCCESS ||
          status == MKTME_PCONFIG_ENTROPY_ERROR ||
          status == MKTME_PCONFIG_DEVICE_BUSY);
    if (status == MKTME_PCONFIG_DEVICE_BUSY) {
        CHECK(busy);
    }
    if (status == MKTME_PCONFIG_ENTROPY_ERROR) {
        CHECK(cmd == MKTME_CMD_SET_KEY_RANDOM && !entropy_ok);
    }
    if (status != MKTME_PCONFIG_SUCCESS) {
        CHECK(s1.generation == s0.generation);
        return;
    }

    /* (c): success */
    CHECK(!busy);
    CHECK(entropy_ok || cmd != MKTME_CMD_SET_KEY_RANDOM);
    CHECK(mktme_tme_enabled(p) && mktme_keyid_bits(p) > 0);
    CHECK(keyid >= 1 && keyid <= nr);
    CHECK(enc_alg == 1 || enc_alg == 4);
    CHECK(s1.generation != s0.generation);

    e = &f->shadow[keyid];
    switch (cmd) {
    case MKTME_CMD_SET_KEY_DIRECT:
    case MKTME_CMD_SET_KEY_RANDOM:
        shadow_clear(e, MKTME_KEY_ENCRYPT);
        e->alg = enc_alg == 4 ? MKTME_ALG_AES_XTS_256 : MKTME_ALG_AES_XTS_128;
        for (i = 0; i < (enc_alg == 4 ? 32u : 16u); i++) {
            e->data_key[i] = st[64 + i];
            e->tweak_key[i] = st[128 + i];
            if (cmd == MKTME_CMD_SET_KEY_RANDOM) {
                e->data_key[i] ^= entropy[i];
                e->tweak_key[i] ^= entropy[32 + i];
            }
        }
        break;
    case MKTME_CMD_CLEAR_KEY:
        shadow_clear(e, MKTME_KEY_TME);
        break;
    default:
        shadow_clear(e, MKTME_KEY_NO_ENCRYPT);
        break;
    }
    e->generation++;
    check_xform(f, keyid, 0);
}

static void op_reset(Fuzz *f)
{
    MktmePlatform *p = f->p;
    uint32_t gen = p->generation;
    unsigned i;

    mktme_platform_reset(p);
    CHECK(p->activate == 0 && p->exclude_mask == 0 && p->exclude_base == 0);
    CHECK(p->generation != gen);
    CHECK(p->last_fault == MKTME_FAULT_NONE);
    CHECK(!mktme_tme_enabled(p) && mktme_nr_keyids(p) == 0);
    for (i = 0; i <= p->cfg.max_keys; i++) {
        shadow_clear(&f->shadow[i], MKTME_KEY_TME);
        f->shadow[i].generation++;
    }
    f->latched = false;
}

static void op_activate_default(Fuzz *f, Input *in)
{
    MktmePlatform *p = f->p;
    const MktmeConfig *c = &p->cfg;
    unsigned kb = in_u8(in) % 20;
    bool rng_fail = (kb & 1) && (in_u8(in) & 1);
    Snap s0 = snap(p), s1;
    uint64_t algs = (c->aes_xts_128 ? MKTME_ACT_ALG_AES_XTS_128 : 0) |
                    (c->aes_xts_256 ? MKTME_ACT_ALG_AES_XTS_256 : 0);

    snprintf(f->detail, sizeof(f->detail), "[keyid_bits %u rng_fail %d]",
             kb, rng_fail);
    p->test_rng_fail = rng_fail;
    mktme_platform_activate_default(p, kb);
    p->test_rng_fail = false;
    s1 = snap(p);
    CHECK(s1.exclude_mask == s0.exclude_mask);
    CHECK(s1.exclude_base == s0.exclude_base);
    if (s0.activate & MKTME_ACT_LOCK) {
        CHECK(s1.activate == s0.activate && s1.generation == s0.generation);
    } else if (rng_fail) {
        CHECK(!(s1.activate & MKTME_ACT_LOCK));
        CHECK(!mktme_tme_enabled(p));
    } else {
        CHECK(mktme_tme_enabled(p));
        CHECK(mktme_keyid_bits(p) == MIN(kb, c->max_keyid_bits));
        CHECK((s1.activate & MKTME_ACT_ALGS_MASK) == algs);
        CHECK(!(s1.activate & MKTME_ACT_BYPASS));
    }
}

static void op_query(Fuzz *f, Input *in)
{
    const MktmePlatform *p = f->p;
    uint8_t sel = in_u8(in);
    unsigned nr = mktme_nr_keyids(p);
    uint64_t pa = in_u64(in), m;
    uint16_t keyid;

    if (sel & 1) {
        /* near the exclusion range */
        m = p->exclude_mask & pa_mask(p->cfg.phys_bits) & ~0xfffULL;
        pa = (p->exclude_base & m) | (pa & ~m & pa_mask(p->cfg.phys_bits));
    } else if (sel & 2) {
        pa &= pa_mask(p->cfg.phys_bits);
    }
    snprintf(f->detail, sizeof(f->detail), "[query pa 0x%llx]",
             (unsigned long long)pa);
    check_pa(f, pa);
    keyid = (sel & 4) ? in_u16(in) : in_u8(in) % (nr + 2);
    check_xform(f, keyid, (sel & 8) ? pa : mktme_pa_strip(p, pa));
}

static void run_ops(Fuzz *f, Input *in)
{
    bool big = f->p->nr_entries > BIG_TABLE;
    static const char *const names[] = {
        "wrmsr", "rdmsr", "pconfig", "reset", "activate_default", "query",
        "wrmsr", "pconfig",
    };
    uint8_t op;

    for (f->op = 1; !in_empty(in) && f->op <= MAX_OPS; f->op++) {
        op = in_u8(in) % G_N_ELEMENTS(names);
        f->opname = names[op];
        f->detail[0] = 0;
        switch (op) {
        case 0:
        case 6:
            op_msr_write(f, in);
            break;
        case 1:
            op_msr_read(f, in);
            break;
        case 2:
        case 7:
            op_pconfig(f, in);
            break;
        case 3:
            op_reset(f);
            break;
        case 4:
            op_activate_default(f, in);
            break;
        default:
            op_query(f, in);
            break;
        }
        check_state(f, !big || in_empty(in) || f->op == MAX_OPS);
    }
}

/* ---- configuration and migration-loaded state ---- */

static bool pick_config(Input *in, MktmeConfig *c)
{
    uint8_t pb = in_u8(in), kb = in_u8(in), ks = in_u8(in);
    uint16_t keys = in_u16(in);
    uint64_t ram_top = (uint64_t)in_u8(in) << 30;
    unsigned room;
    char *err = NULL;
    bool ok;

    memset(c, 0, sizeof(*c));
    c->phys_bits = (pb & 0x80) ? (pb & 0x7f) : 36 + pb % 17;
    c->max_keyid_bits = (kb & 0x80) ? (kb & 0x7f) : kb % 16;
    room = c->max_keyid_bits < 16 ? (1u << c->max_keyid_bits) - 1 : 0;
    switch ((ks >> 4) & 3) {
    case 0:
        /*
         * Full range; tables beyond 1023 entries (up to 32767) are slow
         * to check, so they need a marker byte.
         */
        c->max_keys = (keys >> 8) == 0xff ? room : MIN(room, 1023u);
        break;
    case 1:
        c->max_keys = keys;                 /* raw: config_check decides */
        break;
    case 2:
        c->max_keys = room ? 1 + keys % MIN(room, 15u) : 0;   /* fast */
        break;
    default:
        c->max_keys = room ? 1 + keys % MIN(room, 1023u) : 0;
        break;
    }
    c->aes_xts_128 = ks & 1;
    c->aes_xts_256 = ks & 2;
    c->bypass = ks & 4;

    ok = mktme_config_check(c, ram_top, &err);
    CHECK(ok == (err == NULL));
    g_free(err);
    if (ok) {
        /* anything accepted must be safe to build a platform on */
        CHECK(c->phys_bits >= 36 && c->phys_bits <= 52);
        CHECK(c->max_keyid_bits <= 15);
        CHECK(c->max_keys <= (1u << c->max_keyid_bits) - 1);
        CHECK(!c->max_keys == !c->max_keyid_bits);
        CHECK(c->aes_xts_128 || c->aes_xts_256);
        CHECK(ram_top <= 1ULL << (c->phys_bits - c->max_keyid_bits));
    }
    return ok;
}

/*
 * Overwrite the migrated fields (ACTIVATE, exclusion MSRs, key entries'
 * mode/alg/keys; generations are not migrated) from the input.
 */
static void load_migrated(Fuzz *f, Input *in)
{
    MktmePlatform *p = f->p;
    unsigned n = in_u16(in), first = in_u8(in) & 1, i, len;
    uint8_t b;

    p->activate = build_activate(in);
    p->exclude_mask = build_exclude_mask(in, p->cfg.phys_bits);
    p->exclude_base = build_exclude_base(in, p->cfg.phys_bits);
    n = MIN(n, p->cfg.max_keys + 1);
    for (i = first; i < n && !in_empty(in); i++) {
        MktmeKeyEntry *e = &p->keys[i];

        b = in_u8(in);
        e->mode = (b & 0x80) ? in_u8(in) : (b & 3) % 3;
        e->alg = (b & 0x40) ? in_u8(in) : (b >> 2) & 1;
        switch ((b >> 3) & 3) {
        case 0:
            break;                              /* zero keys */
        case 1:
            len = e->alg == MKTME_ALG_AES_XTS_256 ? 32 : 16;
            in_bytes(in, e->data_key, len);
            in_bytes(in, e->tweak_key, len);
            break;
        case 2:
            in_bytes(in, e->data_key, 32);
            in_bytes(in, e->tweak_key, 32);
            break;
        default:
            len = in_u8(in) & 31;               /* one stray key byte */
            e->data_key[len] = in_u8(in) | 1;
            break;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Input in = { .data = data, .len = size };
    Fuzz f = { 0 };
    MktmeConfig cfg;
    bool migrate;
    char *err = NULL;

    if (size < 2) {
        return 0;
    }
    cur = &f;
    migrate = in_u8(&in) & 1;
    if (!pick_config(&in, &cfg)) {
        cur = NULL;
        return 0;
    }
    f.p = mktme_platform_new(&cfg);
    f.shadow = g_new(MktmeKeyEntry, cfg.max_keys + 1);
    f.migrated = migrate;

    if (migrate) {
        f.opname = "load";
        load_migrated(&f, &in);
        if (!mktme_platform_post_load_check(f.p, &err)) {
            /* rejected: the destination refuses the stream; done */
            CHECK(err != NULL);
            g_free(err);
            goto out;
        }
        CHECK(err == NULL);
    }
    memcpy(f.shadow, f.p->keys, sizeof(MktmeKeyEntry) * (cfg.max_keys + 1));
    f.op = 0;
    f.touched = UINT_MAX;
    check_state(&f, f.p->nr_entries <= BIG_TABLE);
    run_ops(&f, &in);

out:
    mktme_platform_free(f.p);
    g_free(f.shadow);
    cur = NULL;
    return 0;
}
