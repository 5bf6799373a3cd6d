/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Intel TME-MK platform model.  See mktme-model.h and
 * docs/tme-mk-facts.md sections 2-4 for the architecture.
 *
 * Choices where the specification is ambiguous:
 *  - WRMSR to a locked IA32_TME_ACTIVATE raises #GP (the WRMSR response
 *    table), not "ignored" (the prose).  The exclusion MSRs follow it.
 *  - ACTIVATE bit 3 (save key for standby) is unsupported: we have no
 *    standby key storage, so it behaves as a reserved bit (#GP).
 *  - ACTIVATE bit 8 and bits 39:36 (TDX) are reserved: no TDX.
 *  - CRYPTO_ALGS bits other than 48 and 50 are reserved (#GP); 48 and 50
 *    #GP unless enumerated in CAPABILITY.  KeyID bits > 0 with
 *    CRYPTO_ALGS = 0 raises #GP: such an activation could never program
 *    a key.
 *  - Key select = 1 (restore the TME key): there is no stored key, so the
 *    "zero key restored" row applies: not enabled, not locked, RDMSR
 *    returns ...100b.  A failed activation (this, or an RNG failure)
 *    keeps the written value minus Lock, Enable, KeyID bits and
 *    CRYPTO_ALGS (the MKTME part is "not committed").
 *  - The exclusion range applies to KeyID 0 whenever TMEEMASK.Enable is
 *    set (also before activation); TMEEMASK contiguity is checked only
 *    when Enable is set.
 *  - MK_TME_CORE_ACTIVATE: reads the package KeyID bits at [35:32]; only
 *    a write of 0 is accepted; #GP if MKTME is not enumerated.
 */

#include <string.h>
#include <glib.h>
#include "mktme-model.h"

#define ACT_RESERVED    (0x7fffff00ULL | (0xfffULL << 36))
#define ACT_ALGS_KNOWN  (MKTME_ACT_ALG_AES_XTS_128 | MKTME_ACT_ALG_AES_XTS_256)
#define PAGE_MASK_4K    0xfffULL

/* Zero key material in a way the compiler cannot drop before a free. */
void mktme_wipe(void *ptr, size_t len)
{
    memset(ptr, 0, len);
    /* The compiler must assume the zeroes are read: no dead store. */
    __asm__ __volatile__("" : : "r"(ptr) : "memory");
}

static void key_entry_clear(MktmeKeyEntry *e, MktmeKeyMode mode)
{
    mktme_wipe(e->data_key, sizeof(e->data_key));
    mktme_wipe(e->tweak_key, sizeof(e->tweak_key));
    e->mode = mode;
    e->alg = MKTME_ALG_AES_XTS_128;
}

static uint64_t pa_mask(unsigned phys_bits)
{
    return (1ULL << phys_bits) - 1;
}

const char *mktme_fault_name(MktmeFault f)
{
    static const char *const names[MKTME_FAULT__MAX] = {
        [MKTME_FAULT_NONE] = "none",
        [MKTME_FAULT_READ_ONLY] = "read-only MSR",
        [MKTME_FAULT_LOCKED] = "TME activation locked",
        [MKTME_FAULT_RESERVED] = "reserved bit set",
        [MKTME_FAULT_SAVE_KEY] = "save-key-for-standby unsupported",
        [MKTME_FAULT_POLICY] = "TME policy not enumerated",
        [MKTME_FAULT_KEYID_BITS] = "KeyID bits above maximum",
        [MKTME_FAULT_MK_WITHOUT_TME] = "KeyID bits without TME enable",
        [MKTME_FAULT_ALGS] = "crypto algorithm not supported",
        [MKTME_FAULT_NO_ALGS] = "KeyID bits without crypto algorithm",
        [MKTME_FAULT_ABOVE_MAXPA] = "bit above MAXPHYADDR",
        [MKTME_FAULT_NOT_CONTIGUOUS] = "exclusion mask not contiguous",
        [MKTME_FAULT_NO_MKTME] = "MKTME not supported",
        [MKTME_FAULT_LEAF] = "PCONFIG leaf not supported",
        [MKTME_FAULT_NOT_ACTIVE] = "TME-MK not activated",
        [MKTME_FAULT_ALIGN] = "PCONFIG struct misaligned",
        [MKTME_FAULT_CTRL_RESERVED] = "KEYID_CTRL reserved bits set",
        [MKTME_FAULT_COMMAND] = "PCONFIG command invalid",
        [MKTME_FAULT_KEYID] = "KeyID invalid",
        [MKTME_FAULT_ENC_ALG] = "ENC_ALG invalid",
    };

    return (unsigned)f < MKTME_FAULT__MAX ? names[f] : "unknown";
}

bool mktme_config_check(const MktmeConfig *cfg, uint64_t ram_top,
                        char **errmsg)
{
    char *msg = NULL;

    if (cfg->max_keyid_bits > 15) {
        msg = g_strdup_printf("max KeyID bits %u exceeds 15",
                              cfg->max_keyid_bits);
    } else if (cfg->max_keys > 32767) {
        msg = g_strdup_printf("max keys %u exceeds 32767", cfg->max_keys);
    } else if (cfg->max_keyid_bits && !cfg->max_keys) {
        msg = g_strdup_printf("%u KeyID bits but no keys",
                              cfg->max_keyid_bits);
    } else if (cfg->max_keys && !cfg->max_keyid_bits) {
        msg = g_strdup_printf("%u keys but no KeyID bits", cfg->max_keys);
    } else if (cfg->max_keys > (1u << cfg->max_keyid_bits) - 1) {
        msg = g_strdup_printf("%u keys do not fit in %u KeyID bits "
                              "(at most %u)", cfg->max_keys,
                              cfg->max_keyid_bits,
                              (1u << cfg->max_keyid_bits) - 1);
    } else if (!cfg->aes_xts_128 && !cfg->aes_xts_256) {
        msg = g_strdup("no encryption algorithm enabled");
    } else if (cfg->phys_bits < 36 || cfg->phys_bits > 52) {
        msg = g_strdup_printf("physical address bits %u outside 36..52",
                              cfg->phys_bits);
    } else if (ram_top > 1ULL << (cfg->phys_bits - cfg->max_keyid_bits)) {
        msg = g_strdup_printf("RAM top 0x%" G_GINT64_MODIFIER "x does not "
                              "fit below 2^%u (%u physical address bits "
                              "minus %u KeyID bits)", ram_top,
                              cfg->phys_bits - cfg->max_keyid_bits,
                              cfg->phys_bits, cfg->max_keyid_bits);
    }
    if (msg) {
        if (errmsg) {
            *errmsg = msg;
        } else {
            g_free(msg);
        }
        return false;
    }
    return true;
}

MktmePlatform *mktme_platform_new(const MktmeConfig *cfg)
{
    MktmePlatform *p = g_new0(MktmePlatform, 1);

    p->cfg = *cfg;
    p->keys = g_new0(MktmeKeyEntry, cfg->max_keys + 1);
    p->nr_entries = cfg->max_keys + 1;
    mktme_platform_reset(p);
    return p;
}

void mktme_platform_wipe_keys(MktmePlatform *p)
{
    unsigned i;

    for (i = 0; i <= p->cfg.max_keys; i++) {
        key_entry_clear(&p->keys[i], MKTME_KEY_TME);
    }
}

void mktme_platform_free(MktmePlatform *p)
{
    if (!p) {
        return;
    }
    mktme_platform_wipe_keys(p);
    g_free(p->keys);
    g_free(p);
}

void mktme_platform_reset(MktmePlatform *p)
{
    unsigned i;

    p->activate = 0;
    p->exclude_mask = 0;
    p->exclude_base = 0;
    mktme_platform_wipe_keys(p);
    for (i = 0; i <= p->cfg.max_keys; i++) {
        p->keys[i].generation++;
    }
    p->generation++;
    p->last_fault = MKTME_FAULT_NONE;
}

uint64_t mktme_capability(const MktmePlatform *p)
{
    const MktmeConfig *c = &p->cfg;

    return (c->aes_xts_128 ? MKTME_CAP_AES_XTS_128 : 0) |
           (c->aes_xts_256 ? MKTME_CAP_AES_XTS_256 : 0) |
           (c->bypass ? MKTME_CAP_BYPASS : 0) |
           ((uint64_t)c->max_keyid_bits << MKTME_CAP_MAX_KEYID_SHIFT) |
           ((uint64_t)c->max_keys << MKTME_CAP_MAX_KEYS_SHIFT);
}

static uint64_t cap_algs(const MktmeConfig *c)
{
    return (c->aes_xts_128 ? MKTME_ACT_ALG_AES_XTS_128 : 0) |
           (c->aes_xts_256 ? MKTME_ACT_ALG_AES_XTS_256 : 0);
}

/* Checks of an ACTIVATE value that do not depend on the lock. */
static MktmeFault activate_value_fault(const MktmeConfig *c, uint64_t val)
{
    unsigned policy = (val & MKTME_ACT_POLICY_MASK) >> MKTME_ACT_POLICY_SHIFT;
    unsigned k = (val & MKTME_ACT_KEYID_BITS_MASK) >>
                 MKTME_ACT_KEYID_BITS_SHIFT;
    uint64_t algs = val & MKTME_ACT_ALGS_MASK;

    if ((val & ACT_RESERVED) || ((val & MKTME_ACT_BYPASS) && !c->bypass)) {
        return MKTME_FAULT_RESERVED;
    }
    if (val & MKTME_ACT_SAVE_KEY) {
        return MKTME_FAULT_SAVE_KEY;
    }
    if (!(policy == MKTME_POLICY_AES_XTS_128 && c->aes_xts_128) &&
        !(policy == MKTME_POLICY_AES_XTS_256 && c->aes_xts_256)) {
        return MKTME_FAULT_POLICY;
    }
    if (k > c->max_keyid_bits) {
        return MKTME_FAULT_KEYID_BITS;
    }
    if (k && !(val & MKTME_ACT_ENABLE)) {
        return MKTME_FAULT_MK_WITHOUT_TME;
    }
    if (algs & ~cap_algs(c)) {
        return MKTME_FAULT_ALGS;
    }
    if (k && !algs) {
        return MKTME_FAULT_NO_ALGS;
    }
    return MKTME_FAULT_NONE;
}

static void activate_write(MktmePlatform *p, uint64_t val)
{
    bool failed;

    val &= ~MKTME_ACT_LOCK;
    if (!(val & MKTME_ACT_ENABLE)) {
        failed = false;                        /* TME disabled, locked */
    } else if (val & MKTME_ACT_KEY_SELECT) {
        failed = true;                         /* no key to restore */
    } else {
        failed = p->test_rng_fail;
    }
    if (failed) {
        p->activate = val & ~(MKTME_ACT_ENABLE | MKTME_ACT_KEYID_BITS_MASK |
                              MKTME_ACT_ALGS_MASK);
    } else {
        p->activate = val | MKTME_ACT_LOCK;
    }
}

static MktmeFault exclude_value_fault(const MktmeConfig *c, uint32_t msr,
                                      uint64_t val)
{
    uint64_t field, inv;

    if (val & ~pa_mask(c->phys_bits)) {
        return MKTME_FAULT_ABOVE_MAXPA;
    }
    if (msr == MSR_IA32_TME_EXCLUDE_BASE) {
        return (val & PAGE_MASK_4K) ? MKTME_FAULT_RESERVED : MKTME_FAULT_NONE;
    }
    if (val & (PAGE_MASK_4K & ~MKTME_EXCL_ENABLE)) {
        return MKTME_FAULT_RESERVED;
    }
    if (val & MKTME_EXCL_ENABLE) {
        /* Bits [phys_bits-1:12]: a run of ones at the top, then zeros. */
        field = val >> 12;
        inv = ~field & pa_mask(c->phys_bits - 12);
        if (inv & (inv + 1)) {
            return MKTME_FAULT_NOT_CONTIGUOUS;
        }
    }
    return MKTME_FAULT_NONE;
}

int mktme_msr_read(const MktmePlatform *p, uint32_t msr, uint64_t *val)
{
    switch (msr) {
    case MSR_IA32_TME_CAPABILITY:
        *val = mktme_capability(p);
        return 0;
    case MSR_IA32_TME_ACTIVATE:
        *val = p->activate;
        return 0;
    case MSR_IA32_TME_EXCLUDE_MASK:
        *val = p->exclude_mask;
        return 0;
    case MSR_IA32_TME_EXCLUDE_BASE:
        *val = p->exclude_base;
        return 0;
    case MSR_IA32_MKTME_CORE_ACTIVATE:
        if (!p->cfg.max_keyid_bits) {
            return MKTME_EXC_GP;
        }
        *val = (uint64_t)mktme_keyid_bits(p) << MKTME_ACT_KEYID_BITS_SHIFT;
        return 0;
    default:
        return MKTME_MSR_NOT_MINE;
    }
}

int mktme_msr_write(MktmePlatform *p, uint32_t msr, uint64_t val)
{
    bool locked = p->activate & MKTME_ACT_LOCK;
    MktmeFault f;

    switch (msr) {
    case MSR_IA32_TME_CAPABILITY:
        f = MKTME_FAULT_READ_ONLY;
        break;
    case MSR_IA32_TME_ACTIVATE:
        f = locked ? MKTME_FAULT_LOCKED : activate_value_fault(&p->cfg, val);
        if (!f) {
            activate_write(p, val);
        }
        break;
    case MSR_IA32_TME_EXCLUDE_MASK:
    case MSR_IA32_TME_EXCLUDE_BASE:
        f = locked ? MKTME_FAULT_LOCKED : exclude_value_fault(&p->cfg, msr,
                                                              val);
        if (!f) {
            if (msr == MSR_IA32_TME_EXCLUDE_MASK) {
                p->exclude_mask = val;
            } else {
                p->exclude_base = val;
            }
        }
        break;
    case MSR_IA32_MKTME_CORE_ACTIVATE:
        /* [35:32] read-only, everything else reserved: only 0 accepted */
        f = !p->cfg.max_keyid_bits ? MKTME_FAULT_NO_MKTME :
            val ? MKTME_FAULT_RESERVED : MKTME_FAULT_NONE;
        break;
    default:
        return MKTME_MSR_NOT_MINE;
    }
    p->last_fault = f;
    if (f) {
        return MKTME_EXC_GP;
    }
    if (msr != MSR_IA32_MKTME_CORE_ACTIVATE) {
        p->generation++;
    }
    return 0;
}

void mktme_platform_activate_default(MktmePlatform *p, unsigned keyid_bits)
{
    const MktmeConfig *c = &p->cfg;
    unsigned k = MIN(keyid_bits, c->max_keyid_bits);
    uint64_t val;
    int ret;

    if (p->activate & MKTME_ACT_LOCK) {
        return;                   /* firmware already ran since reset */
    }
    val = MKTME_ACT_ENABLE | cap_algs(c) |
          ((uint64_t)(c->aes_xts_128 ? MKTME_POLICY_AES_XTS_128 :
                      MKTME_POLICY_AES_XTS_256) << MKTME_ACT_POLICY_SHIFT) |
          ((uint64_t)k << MKTME_ACT_KEYID_BITS_SHIFT);
    ret = mktme_msr_write(p, MSR_IA32_TME_ACTIVATE, val);
    g_assert(ret == 0);
}

bool mktme_tme_enabled(const MktmePlatform *p)
{
    return (p->activate & (MKTME_ACT_LOCK | MKTME_ACT_ENABLE)) ==
           (MKTME_ACT_LOCK | MKTME_ACT_ENABLE);
}

bool mktme_bypass_active(const MktmePlatform *p)
{
    return mktme_tme_enabled(p) && (p->activate & MKTME_ACT_BYPASS);
}

unsigned mktme_keyid_bits(const MktmePlatform *p)
{
    if (!mktme_tme_enabled(p)) {
        return 0;
    }
    return (p->activate & MKTME_ACT_KEYID_BITS_MASK) >>
           MKTME_ACT_KEYID_BITS_SHIFT;
}

unsigned mktme_keyid_shift(const MktmePlatform *p)
{
    return p->cfg.phys_bits - mktme_keyid_bits(p);
}

unsigned mktme_nr_keyids(const MktmePlatform *p)
{
    return MIN(p->cfg.max_keys, (1u << mktme_keyid_bits(p)) - 1);
}

uint16_t mktme_pa_keyid(const MktmePlatform *p, uint64_t pa)
{
    unsigned k = mktme_keyid_bits(p);

    return (pa >> mktme_keyid_shift(p)) & ((1u << k) - 1);
}

uint64_t mktme_pa_strip(const MktmePlatform *p, uint64_t pa)
{
    uint64_t m = (uint64_t)((1u << mktme_keyid_bits(p)) - 1);

    return pa & ~(m << mktme_keyid_shift(p));
}

MktmeXform mktme_keyid_xform(const MktmePlatform *p, uint16_t keyid,
                             uint64_t stripped_pa)
{
    uint64_t m;

    if (keyid == 0) {
        if (mktme_bypass_active(p)) {
            return MKTME_XFORM_PLAIN;
        }
        if (p->exclude_mask & MKTME_EXCL_ENABLE) {
            m = p->exclude_mask & pa_mask(p->cfg.phys_bits) & ~PAGE_MASK_4K;
            if ((stripped_pa & m) == (p->exclude_base & m)) {
                return MKTME_XFORM_PLAIN;
            }
        }
        return MKTME_XFORM_VM_KEY;
    }
    if (keyid > mktme_nr_keyids(p)) {
        return MKTME_XFORM_INVALID;
    }
    switch (p->keys[keyid].mode) {
    case MKTME_KEY_ENCRYPT:
        return MKTME_XFORM_KEY;
    case MKTME_KEY_NO_ENCRYPT:
        return MKTME_XFORM_PLAIN;
    default:
        return mktme_bypass_active(p) ? MKTME_XFORM_PLAIN : MKTME_XFORM_VM_KEY;
    }
}

const MktmeKeyEntry *mktme_key_entry(const MktmePlatform *p, uint16_t keyid)
{
    return keyid <= p->cfg.max_keys ? &p->keys[keyid] : NULL;
}

MktmeFault mktme_pconfig_precheck_fault(const MktmePlatform *p,
                                        uint64_t leaf, uint64_t rbx)
{
    if (leaf != MKTME_PCONFIG_LEAF_KEY_PROGRAM) {
        return MKTME_FAULT_LEAF;
    }
    if (!mktme_keyid_bits(p)) {
        return MKTME_FAULT_NOT_ACTIVE;
    }
    if (rbx & (MKTME_KEY_PROGRAM_ALIGN - 1)) {
        return MKTME_FAULT_ALIGN;
    }
    return MKTME_FAULT_NONE;
}

int mktme_pconfig_precheck(const MktmePlatform *p, uint64_t leaf,
                           uint64_t rbx)
{
    return mktme_pconfig_precheck_fault(p, leaf, rbx) ? MKTME_EXC_GP : 0;
}

static MktmeFault key_program_fault(const MktmePlatform *p, uint16_t keyid,
                                    uint32_t ctrl)
{
    unsigned cmd = ctrl & 0xff;
    uint32_t enc_alg = (ctrl >> 8) & 0xffff;

    if (ctrl >> 24) {
        return MKTME_FAULT_CTRL_RESERVED;
    }
    if (cmd > MKTME_CMD_NO_ENCRYPT) {
        return MKTME_FAULT_COMMAND;
    }
    if (keyid == 0 || keyid > mktme_nr_keyids(p) ||
        keyid >> mktme_keyid_bits(p)) {
        return MKTME_FAULT_KEYID;
    }
    if (!enc_alg || (enc_alg & (enc_alg - 1)) ||
        !(((uint64_t)enc_alg << MKTME_ACT_ALGS_SHIFT) & p->activate)) {
        return MKTME_FAULT_ENC_ALG;
    }
    return MKTME_FAULT_NONE;
}

int mktme_pconfig_key_program(MktmePlatform *p,
                              const uint8_t st[MKTME_KEY_PROGRAM_STRUCT_SIZE],
                              const uint8_t entropy[64], bool entropy_ok,
                              uint64_t *status)
{
    uint16_t keyid = st[0] | (st[1] << 8);
    uint32_t ctrl = st[2] | (st[3] << 8) | (st[4] << 16) |
                    ((uint32_t)st[5] << 24);
    unsigned cmd = ctrl & 0xff;
    const uint8_t *f1 = st + 64, *f2 = st + 128;
    MktmeKeyEntry *e;
    unsigned alg, len, i;

    p->last_fault = key_program_fault(p, keyid, ctrl);
    if (p->last_fault) {
        return MKTME_EXC_GP;
    }
    if (p->test_busy || (p->test_busy_keyid && keyid == p->test_busy_keyid)) {
        *status = MKTME_PCONFIG_DEVICE_BUSY;
        return 0;
    }
    if (cmd == MKTME_CMD_SET_KEY_RANDOM && !entropy_ok) {
        *status = MKTME_PCONFIG_ENTROPY_ERROR;
        return 0;
    }

    e = &p->keys[keyid];
    alg = (ctrl & (1u << 10)) ? MKTME_ALG_AES_XTS_256 : MKTME_ALG_AES_XTS_128;
    len = alg == MKTME_ALG_AES_XTS_256 ? 32 : 16;
    switch (cmd) {
    case MKTME_CMD_SET_KEY_DIRECT:
    case MKTME_CMD_SET_KEY_RANDOM:
        key_entry_clear(e, MKTME_KEY_ENCRYPT);
        e->alg = alg;
        for (i = 0; i < len; i++) {
            e->data_key[i] = f1[i];
            e->tweak_key[i] = f2[i];
            if (cmd == MKTME_CMD_SET_KEY_RANDOM) {
                e->data_key[i] ^= entropy[i];
                e->tweak_key[i] ^= entropy[32 + i];
            }
        }
        break;
    case MKTME_CMD_CLEAR_KEY:
        key_entry_clear(e, MKTME_KEY_TME);
        break;
    default:
        key_entry_clear(e, MKTME_KEY_NO_ENCRYPT);
        break;
    }
    e->generation++;
    p->generation++;
    *status = MKTME_PCONFIG_SUCCESS;
    return 0;
}

static bool all_zero(const uint8_t *b, size_t len)
{
    while (len--) {
        if (*b++) {
            return false;
        }
    }
    return true;
}

bool mktme_platform_post_load_check(const MktmePlatform *p, char **err)
{
    const MktmeConfig *c = &p->cfg;
    uint64_t a = p->activate;
    unsigned nr = mktme_nr_keyids(p), i;
    const MktmeKeyEntry *e;
    const char *why = NULL;

    if (a && activate_value_fault(c, a & ~MKTME_ACT_LOCK)) {
        why = "IA32_TME_ACTIVATE invalid for this CPU";
    } else if ((a & MKTME_ACT_LOCK) && (a & MKTME_ACT_ENABLE) &&
               (a & MKTME_ACT_KEY_SELECT)) {
        why = "IA32_TME_ACTIVATE locked with a restored key";
    } else if (!(a & MKTME_ACT_LOCK) &&
               (a & (MKTME_ACT_ENABLE | MKTME_ACT_KEYID_BITS_MASK |
                     MKTME_ACT_ALGS_MASK))) {
        why = "IA32_TME_ACTIVATE enabled without lock";
    } else if (exclude_value_fault(c, MSR_IA32_TME_EXCLUDE_MASK,
                                   p->exclude_mask) ||
               exclude_value_fault(c, MSR_IA32_TME_EXCLUDE_BASE,
                                   p->exclude_base)) {
        why = "IA32_TME_EXCLUDE_MASK/BASE invalid";
    }
    for (i = 0; !why && i <= c->max_keys; i++) {
        e = &p->keys[i];
        if (e->mode >= MKTME_KEY_MODE__MAX ||
            e->alg > MKTME_ALG_AES_XTS_256) {
            why = "key table entry mode or algorithm out of range";
        } else if (e->mode != MKTME_KEY_TME && (i == 0 || i > nr)) {
            why = "key table entry programmed outside the KeyID range";
        } else if (e->mode == MKTME_KEY_ENCRYPT) {
            if (!(a & (e->alg == MKTME_ALG_AES_XTS_256 ?
                       MKTME_ACT_ALG_AES_XTS_256 :
                       MKTME_ACT_ALG_AES_XTS_128))) {
                why = "key table entry uses an algorithm not activated";
            } else if (e->alg == MKTME_ALG_AES_XTS_128 &&
                       (!all_zero(e->data_key + 16, 16) ||
                        !all_zero(e->tweak_key + 16, 16))) {
                why = "key table entry has excess key bytes";
            }
        } else if (e->alg != MKTME_ALG_AES_XTS_128 ||
                   !all_zero(e->data_key, 32) ||
                   !all_zero(e->tweak_key, 32)) {
            why = "key table entry holds a key but does not encrypt";
        }
    }
    if (why) {
        if (err) {
            *err = i ? g_strdup_printf("mktme: KeyID %u: %s", i - 1, why) :
                       g_strdup_printf("mktme: %s", why);
        }
        return false;
    }
    return true;
}
