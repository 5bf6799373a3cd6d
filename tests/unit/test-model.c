/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Unit tests for the TME-MK platform model.
 */

#include <string.h>
#include <glib.h>
#include "mktme-model.h"

#define GP MKTME_EXC_GP
#define ACT MSR_IA32_TME_ACTIVATE
#define EMASK MSR_IA32_TME_EXCLUDE_MASK
#define EBASE MSR_IA32_TME_EXCLUDE_BASE
/* lock|enable, policy 0, k = 6, CRYPTO_ALGS = AES-XTS-128 | AES-XTS-256 */
#define ACT_DEFAULT_46_6 0x0005000600000003ULL

static const MktmeConfig cfg46 = {
    .phys_bits = 46, .max_keyid_bits = 6, .max_keys = 63,
    .aes_xts_128 = true, .aes_xts_256 = true, .bypass = true,
};

static MktmePlatform *new_active(void)
{
    MktmePlatform *p = mktme_platform_new(&cfg46);

    mktme_platform_activate_default(p, 6);
    return p;
}

/* Write and check the fault reason (NONE = success). */
static void wr(MktmePlatform *p, uint32_t msr, uint64_t v, MktmeFault want)
{
    int ret = mktme_msr_write(p, msr, v);

    g_assert_cmpstr(mktme_fault_name(p->last_fault), ==,
                    mktme_fault_name(want));
    g_assert_cmpint(ret, ==, want ? GP : 0);
}

static uint64_t rd(const MktmePlatform *p, uint32_t msr)
{
    uint64_t v = 0xdeadbeef;

    g_assert_cmpint(mktme_msr_read(p, msr, &v), ==, 0);
    return v;
}

static void test_capability(void)
{
    MktmeConfig c = { 52, 15, 32767, true, false, false };
    MktmePlatform *p = mktme_platform_new(&cfg46);

    g_assert_cmphex(mktme_capability(p), ==, 0x000003F680000005ULL);
    g_assert_cmphex(rd(p, MSR_IA32_TME_CAPABILITY), ==, 0x000003F680000005ULL);
    wr(p, MSR_IA32_TME_CAPABILITY, 0, MKTME_FAULT_READ_ONLY);
    mktme_platform_free(p);
    p = mktme_platform_new(&c);
    g_assert_cmphex(mktme_capability(p), ==, 0x0007FFFF00000001ULL);
    mktme_platform_free(p);
}

static void check_cfg(MktmeConfig c, uint64_t ram_top, const char *want)
{
    char *msg = NULL;
    bool ok = mktme_config_check(&c, ram_top, &msg);

    if (!want) {
        g_assert_true(ok);
        g_assert_null(msg);
        return;
    }
    g_assert_false(ok);
    g_assert_nonnull(msg);
    if (!strstr(msg, want)) {
        g_error("message '%s' lacks '%s'", msg, want);
    }
    g_free(msg);
}

static void test_config_check(void)
{
    MktmeConfig c = cfg46;

    check_cfg(c, 1ULL << 40, NULL);
    check_cfg(c, (1ULL << 40) + 1, "fit below 2^40 (46 physical address "
              "bits minus 6 KeyID bits)");
    c.max_keyid_bits = 16;
    check_cfg(c, 0, "max KeyID bits 16 exceeds 15");
    c = cfg46;
    c.max_keys = 32768;
    check_cfg(c, 0, "max keys 32768 exceeds 32767");
    c = cfg46;
    c.max_keys = 0;
    check_cfg(c, 0, "6 KeyID bits but no keys");
    c = cfg46;
    c.max_keyid_bits = 0;
    check_cfg(c, 0, "63 keys but no KeyID bits");
    c = cfg46;
    c.max_keys = 64;
    check_cfg(c, 0, "64 keys do not fit in 6 KeyID bits (at most 63)");
    c = cfg46;
    c.aes_xts_128 = c.aes_xts_256 = false;
    check_cfg(c, 0, "no encryption algorithm");
    c = cfg46;
    c.phys_bits = 35;
    check_cfg(c, 0, "physical address bits 35 outside 36..52");
    c.phys_bits = 53;
    check_cfg(c, 0, "physical address bits 53 outside 36..52");
    c = (MktmeConfig){ 36, 0, 0, true, false, false };
    check_cfg(c, 1ULL << 36, NULL);
    g_assert_false(mktme_config_check(&c, (1ULL << 36) + 1, NULL));
}

static void test_activate_default(void)
{
    MktmeConfig c = cfg46;
    MktmePlatform *p = new_active();
    uint64_t v = rd(p, ACT);

    g_assert_cmphex(v, ==, ACT_DEFAULT_46_6);
    /* What Linux 6.1 detect_tme() decodes */
    g_assert_cmpint(v & 3, ==, 3);                   /* locked, enabled */
    g_assert_cmpint((v >> 4) & 0xf, ==, 0);          /* known policy */
    g_assert_cmpint((v >> 48) & 1, ==, 1);           /* AES-XTS-128 */
    g_assert_cmpint((1u << ((v >> 32) & 0xf)) - 1, ==, 63);
    g_assert_cmpint(mktme_nr_keyids(p), ==, 63);
    g_assert_cmpint(mktme_keyid_shift(p), ==, 40);
    mktme_platform_activate_default(p, 2);           /* locked: no-op */
    g_assert_cmphex(rd(p, ACT), ==, ACT_DEFAULT_46_6);
    mktme_platform_reset(p);
    mktme_platform_activate_default(p, 10);          /* clamped to 6 */
    g_assert_cmphex(rd(p, ACT), ==, ACT_DEFAULT_46_6);
    mktme_platform_free(p);

    c.aes_xts_128 = false;
    c.max_keys = 20;
    p = mktme_platform_new(&c);
    mktme_platform_activate_default(p, 6);
    g_assert_cmphex(rd(p, ACT), ==, 0x0004000600000023ULL);
    g_assert_cmpint(mktme_nr_keyids(p), ==, 20);
    mktme_platform_free(p);

    c = (MktmeConfig){ 46, 0, 0, true, false, false };
    p = mktme_platform_new(&c);
    mktme_platform_activate_default(p, 6);
    g_assert_cmphex(rd(p, ACT), ==, 0x0001000000000003ULL);
    g_assert_cmpint(mktme_nr_keyids(p), ==, 0);
    mktme_platform_free(p);
}

static void test_activate_rows(void)
{
    MktmeConfig nobyp = cfg46;
    MktmePlatform *p = mktme_platform_new(&cfg46);
    const uint64_t k6 = 6ULL << 32, a128 = MKTME_ACT_ALG_AES_XTS_128;

    /* Reserved bits, save-key, policy, KeyID bits, algorithms */
    wr(p, ACT, 3 | (1ULL << 8), MKTME_FAULT_RESERVED);
    wr(p, ACT, 3 | (1ULL << 30), MKTME_FAULT_RESERVED);
    wr(p, ACT, 3 | (1ULL << 36), MKTME_FAULT_RESERVED);   /* TDX bits */
    wr(p, ACT, 3 | (1ULL << 47), MKTME_FAULT_RESERVED);
    wr(p, ACT, 3 | MKTME_ACT_SAVE_KEY, MKTME_FAULT_SAVE_KEY);
    wr(p, ACT, 3 | (1 << 4), MKTME_FAULT_POLICY);
    wr(p, ACT, 3 | (0xf << 4), MKTME_FAULT_POLICY);
    wr(p, ACT, 3 | (7ULL << 32) | a128, MKTME_FAULT_KEYID_BITS);
    wr(p, ACT, 1 | k6 | a128, MKTME_FAULT_MK_WITHOUT_TME);
    wr(p, ACT, 3 | k6 | (1ULL << 49), MKTME_FAULT_ALGS);
    wr(p, ACT, 3 | k6 | a128 | (1ULL << 63), MKTME_FAULT_ALGS);
    wr(p, ACT, 3 | k6, MKTME_FAULT_NO_ALGS);
    g_assert_cmphex(rd(p, ACT), ==, 0);
    /* RNG failure: not enabled, not locked, MKTME part not committed */
    p->test_rng_fail = true;
    wr(p, ACT, 2 | k6 | a128, MKTME_FAULT_NONE);
    g_assert_cmphex(rd(p, ACT), ==, 0);
    p->test_rng_fail = false;
    /* Key select = 1: zero key restored, ...100b */
    wr(p, ACT, 7 | k6 | a128, MKTME_FAULT_NONE);
    g_assert_cmphex(rd(p, ACT), ==, 4);
    g_assert_cmpint(mktme_keyid_bits(p), ==, 0);
    /* enable = 0: TME disabled, locked, ...01b */
    wr(p, ACT, 0, MKTME_FAULT_NONE);
    g_assert_cmphex(rd(p, ACT), ==, 1);
    g_assert_false(mktme_tme_enabled(p));
    wr(p, ACT, 0, MKTME_FAULT_LOCKED);
    /* enable = 1, key select = 0: ...011b, value kept, bit 0 ignored */
    mktme_platform_reset(p);
    wr(p, ACT, 2 | MKTME_ACT_BYPASS | (2 << 4) | k6 | a128, MKTME_FAULT_NONE);
    g_assert_cmphex(rd(p, ACT), ==,
                    3 | MKTME_ACT_BYPASS | (2 << 4) | k6 | a128);
    g_assert_true(mktme_bypass_active(p));
    wr(p, ACT, 3 | k6 | a128, MKTME_FAULT_LOCKED);
    mktme_platform_free(p);

    /* Bypass and AES-XTS-256 not enumerated */
    nobyp.bypass = false;
    nobyp.aes_xts_256 = false;
    p = mktme_platform_new(&nobyp);
    wr(p, ACT, 3 | MKTME_ACT_BYPASS, MKTME_FAULT_RESERVED);
    wr(p, ACT, 3 | (2 << 4), MKTME_FAULT_POLICY);
    wr(p, ACT, 3 | k6 | MKTME_ACT_ALG_AES_XTS_256, MKTME_FAULT_ALGS);
    nobyp.aes_xts_128 = false;
    nobyp.aes_xts_256 = true;
    mktme_platform_free(p);
    p = mktme_platform_new(&nobyp);
    wr(p, ACT, 3, MKTME_FAULT_POLICY);
    mktme_platform_free(p);
}

static void test_exclusion_msrs(void)
{
    MktmePlatform *p = mktme_platform_new(&cfg46);
    const uint64_t top = 0x3fffc0000000ULL;      /* bits 45:30 */

    wr(p, EMASK, top | 1, MKTME_FAULT_RESERVED);
    wr(p, EMASK, top | (1 << 10), MKTME_FAULT_RESERVED);
    wr(p, EBASE, 0x40000000ULL | (1 << 11), MKTME_FAULT_RESERVED);
    wr(p, EBASE, 1ULL << 46, MKTME_FAULT_ABOVE_MAXPA);
    wr(p, EMASK, (1ULL << 46) | MKTME_EXCL_ENABLE, MKTME_FAULT_ABOVE_MAXPA);
    wr(p, EMASK, (top & ~(1ULL << 40)) | MKTME_EXCL_ENABLE,
       MKTME_FAULT_NOT_CONTIGUOUS);
    wr(p, EMASK, (1ULL << 44) | MKTME_EXCL_ENABLE, MKTME_FAULT_NOT_CONTIGUOUS);
    wr(p, EMASK, 1ULL << 44, MKTME_FAULT_NONE);  /* not enabled: unchecked */
    wr(p, EMASK, MKTME_EXCL_ENABLE, MKTME_FAULT_NONE);  /* all memory */
    wr(p, EMASK, 0x3ffffffff000ULL | MKTME_EXCL_ENABLE, MKTME_FAULT_NONE);
    wr(p, EMASK, top | MKTME_EXCL_ENABLE, MKTME_FAULT_NONE);
    wr(p, EBASE, 0x40000000ULL, MKTME_FAULT_NONE);
    g_assert_cmphex(rd(p, EMASK), ==, top | MKTME_EXCL_ENABLE);
    g_assert_cmphex(rd(p, EBASE), ==, 0x40000000ULL);
    mktme_platform_activate_default(p, 6);
    wr(p, EMASK, top | MKTME_EXCL_ENABLE, MKTME_FAULT_LOCKED);
    wr(p, EBASE, 0, MKTME_FAULT_LOCKED);
    g_assert_cmphex(rd(p, EBASE), ==, 0x40000000ULL);
    mktme_platform_free(p);
}

static void test_other_msrs(void)
{
    MktmeConfig tme_only = { 46, 0, 0, true, false, false };
    MktmePlatform *p = mktme_platform_new(&cfg46);
    uint64_t v;

    g_assert_cmphex(rd(p, MSR_IA32_MKTME_CORE_ACTIVATE), ==, 0);
    mktme_platform_activate_default(p, 6);
    g_assert_cmphex(rd(p, MSR_IA32_MKTME_CORE_ACTIVATE), ==, 6ULL << 32);
    wr(p, MSR_IA32_MKTME_CORE_ACTIVATE, 0, MKTME_FAULT_NONE);
    wr(p, MSR_IA32_MKTME_CORE_ACTIVATE, 6ULL << 32, MKTME_FAULT_RESERVED);
    g_assert_cmpint(mktme_msr_read(p, 0x980, &v), ==, MKTME_MSR_NOT_MINE);
    g_assert_cmpint(mktme_msr_write(p, 0x985, 0), ==, MKTME_MSR_NOT_MINE);
    g_assert_cmpint(mktme_msr_read(p, 0x87, &v), ==, MKTME_MSR_NOT_MINE);
    mktme_platform_free(p);
    p = mktme_platform_new(&tme_only);
    g_assert_cmpint(mktme_msr_read(p, MSR_IA32_MKTME_CORE_ACTIVATE, &v), ==,
                    GP);
    wr(p, MSR_IA32_MKTME_CORE_ACTIVATE, 0, MKTME_FAULT_NO_MKTME);
    mktme_platform_free(p);
}

static void test_decode(void)
{
    MktmePlatform *p = mktme_platform_new(&cfg46);
    uint64_t pa = (0x2aULL << 40) | 0x12345678ULL;

    g_assert_cmpint(mktme_keyid_bits(p), ==, 0);
    g_assert_cmpint(mktme_nr_keyids(p), ==, 0);
    g_assert_cmpint(mktme_pa_keyid(p, pa), ==, 0);
    g_assert_cmphex(mktme_pa_strip(p, pa), ==, pa);
    mktme_platform_activate_default(p, 6);
    g_assert_cmpint(mktme_keyid_bits(p), ==, 6);
    g_assert_cmpint(mktme_pa_keyid(p, pa), ==, 0x2a);
    g_assert_cmpint(mktme_pa_keyid(p, 0x3fffffffffffULL), ==, 63);
    g_assert_cmpint(mktme_pa_keyid(p, (1ULL << 46) | (5ULL << 40)), ==, 5);
    g_assert_cmphex(mktme_pa_strip(p, pa), ==, 0x12345678ULL);
    g_assert_cmphex(mktme_pa_strip(p, 0x3fffffffffffULL), ==,
                    0xffffffffffULL);
    mktme_platform_free(p);
}

static void test_pconfig_precheck(void)
{
    MktmeConfig tme_only = { 46, 0, 0, true, false, false };
    MktmePlatform *p = mktme_platform_new(&cfg46);

    g_assert_cmpint(mktme_pconfig_precheck_fault(p, 1, 0x10), ==,
                    MKTME_FAULT_LEAF);
    g_assert_cmpint(mktme_pconfig_precheck_fault(p, 0, 0x10), ==,
                    MKTME_FAULT_NOT_ACTIVE);
    g_assert_cmpint(mktme_pconfig_precheck(p, 0, 0x1000), ==, GP);
    mktme_platform_activate_default(p, 6);
    g_assert_cmpint(mktme_pconfig_precheck_fault(p, 2, 0x10), ==,
                    MKTME_FAULT_LEAF);
    g_assert_cmpint(mktme_pconfig_precheck_fault(p, 1ULL << 32, 0), ==,
                    MKTME_FAULT_LEAF);
    g_assert_cmpint(mktme_pconfig_precheck_fault(p, 0, 0x1080), ==,
                    MKTME_FAULT_ALIGN);
    g_assert_cmpint(mktme_pconfig_precheck(p, 0, 0x1080), ==, GP);
    g_assert_cmpint(mktme_pconfig_precheck(p, 0, 0x1100), ==, 0);
    mktme_platform_free(p);
    /* TME active but k = 0 */
    p = mktme_platform_new(&tme_only);
    mktme_platform_activate_default(p, 0);
    g_assert_cmpint(mktme_pconfig_precheck_fault(p, 0, 0), ==,
                    MKTME_FAULT_NOT_ACTIVE);
    mktme_platform_free(p);
}

static void mkstruct(uint8_t *st, uint16_t keyid, uint32_t ctrl)
{
    unsigned i;

    for (i = 0; i < MKTME_KEY_PROGRAM_STRUCT_SIZE; i++) {
        st[i] = i >= 64 ? (uint8_t)(i * 7 + 1) : 0xee;  /* junk in 6..63 */
    }
    st[0] = keyid;
    st[1] = keyid >> 8;
    st[2] = ctrl;
    st[3] = ctrl >> 8;
    st[4] = ctrl >> 16;
    st[5] = ctrl >> 24;
}

/* Program and return the status, or -1 with the fault checked. */
static int64_t prog(MktmePlatform *p, uint16_t keyid, uint32_t ctrl,
                    bool entropy_ok, MktmeFault want)
{
    uint8_t st[MKTME_KEY_PROGRAM_STRUCT_SIZE], ent[64];
    uint64_t status = 99;
    int ret;

    for (ret = 0; ret < 64; ret++) {
        ent[ret] = 0xa0 ^ ret;
    }
    mkstruct(st, keyid, ctrl);
    ret = mktme_pconfig_key_program(p, st, ent, entropy_ok, &status);
    g_assert_cmpstr(mktme_fault_name(p->last_fault), ==,
                    mktme_fault_name(want));
    g_assert_cmpint(ret, ==, want ? GP : 0);
    return ret ? -1 : (int64_t)status;
}

#define ALG128 (1u << 8)
#define ALG256 (1u << 10)

static void test_pconfig_struct_checks(void)
{
    MktmeConfig c = cfg46;
    MktmePlatform *p;

    c.max_keys = 20;
    p = mktme_platform_new(&c);
    /* Not activated: no KeyID is valid */
    prog(p, 1, ALG128, true, MKTME_FAULT_KEYID);
    mktme_platform_activate_default(p, 6);
    prog(p, 0, (1u << 24) | 9, true, MKTME_FAULT_CTRL_RESERVED);
    prog(p, 1, 0x80000000u | ALG128, true, MKTME_FAULT_CTRL_RESERVED);
    prog(p, 0, 4, true, MKTME_FAULT_COMMAND);
    prog(p, 1, ALG128 | 0xff, true, MKTME_FAULT_COMMAND);
    prog(p, 0, 0, true, MKTME_FAULT_KEYID);
    prog(p, 21, ALG128, true, MKTME_FAULT_KEYID);  /* < 2^k, > max_keys */
    prog(p, 64, ALG128, true, MKTME_FAULT_KEYID);
    prog(p, 0x8001, ALG128, true, MKTME_FAULT_KEYID);
    prog(p, 20, 0, true, MKTME_FAULT_ENC_ALG);
    prog(p, 20, ALG128 | ALG256, true, MKTME_FAULT_ENC_ALG);
    prog(p, 20, 1u << 9, true, MKTME_FAULT_ENC_ALG);
    prog(p, 20, 1u << 23, true, MKTME_FAULT_ENC_ALG);
    prog(p, 20, MKTME_CMD_CLEAR_KEY, true, MKTME_FAULT_ENC_ALG);
    prog(p, 20, MKTME_CMD_NO_ENCRYPT | (1u << 11), true, MKTME_FAULT_ENC_ALG);
    g_assert_cmpint(prog(p, 20, ALG256, true, MKTME_FAULT_NONE), ==, 0);
    mktme_platform_free(p);

    /* ENC_ALG must be in ACTIVATE[63:48], not just in CAPABILITY */
    p = mktme_platform_new(&cfg46);
    wr(p, ACT, 3 | (6ULL << 32) | MKTME_ACT_ALG_AES_XTS_128,
       MKTME_FAULT_NONE);
    prog(p, 1, ALG256, true, MKTME_FAULT_ENC_ALG);
    g_assert_cmpint(prog(p, 1, ALG128, true, MKTME_FAULT_NONE), ==, 0);
    mktme_platform_free(p);
}

static void test_pconfig_commands(void)
{
    MktmePlatform *p = new_active();
    const MktmeKeyEntry *e = mktme_key_entry(p, 5);
    uint8_t zero[32] = { 0 };
    uint32_t pg, eg;
    unsigned i;

    g_assert_cmpint(mktme_keyid_xform(p, 5, 0), ==, MKTME_XFORM_VM_KEY);
    pg = p->generation;
    eg = e->generation;
    g_assert_cmpint(prog(p, 5, ALG128 | MKTME_CMD_SET_KEY_DIRECT, false,
                         MKTME_FAULT_NONE), ==, MKTME_PCONFIG_SUCCESS);
    g_assert_cmpint(p->generation, ==, pg + 1);
    g_assert_cmpint(e->generation, ==, eg + 1);
    g_assert_cmpint(e->mode, ==, MKTME_KEY_ENCRYPT);
    g_assert_cmpint(e->alg, ==, MKTME_ALG_AES_XTS_128);
    for (i = 0; i < 16; i++) {
        g_assert_cmpint(e->data_key[i], ==, (uint8_t)((64 + i) * 7 + 1));
        g_assert_cmpint(e->tweak_key[i], ==, (uint8_t)((128 + i) * 7 + 1));
    }
    g_assert_cmpmem(e->data_key + 16, 16, zero, 16);
    g_assert_cmpmem(e->tweak_key + 16, 16, zero, 16);
    g_assert_cmpint(mktme_keyid_xform(p, 5, 0), ==, MKTME_XFORM_KEY);

    prog(p, 5, ALG256 | MKTME_CMD_SET_KEY_DIRECT, true, MKTME_FAULT_NONE);
    g_assert_cmpint(e->alg, ==, MKTME_ALG_AES_XTS_256);
    g_assert_cmpint(e->data_key[31], ==, (uint8_t)(95 * 7 + 1));
    g_assert_cmpint(e->tweak_key[31], ==, (uint8_t)(159 * 7 + 1));

    prog(p, 5, ALG256 | MKTME_CMD_SET_KEY_RANDOM, true, MKTME_FAULT_NONE);
    for (i = 0; i < 32; i++) {
        g_assert_cmpint(e->data_key[i], ==,
                        (uint8_t)((64 + i) * 7 + 1) ^ (0xa0 ^ i));
        g_assert_cmpint(e->tweak_key[i], ==,
                        (uint8_t)((128 + i) * 7 + 1) ^ (0xa0 ^ (32 + i)));
    }
    g_assert_cmpint(e->generation, ==, eg + 3);

    /* Injected failures: status only, table unchanged */
    pg = p->generation;
    g_assert_cmpint(prog(p, 5, ALG128 | MKTME_CMD_SET_KEY_RANDOM, false,
                         MKTME_FAULT_NONE), ==, MKTME_PCONFIG_ENTROPY_ERROR);
    p->test_busy = true;
    g_assert_cmpint(prog(p, 5, ALG128 | MKTME_CMD_CLEAR_KEY, true,
                         MKTME_FAULT_NONE), ==, MKTME_PCONFIG_DEVICE_BUSY);
    prog(p, 0, ALG128, true, MKTME_FAULT_KEYID);    /* faults come first */
    p->test_busy = false;
    g_assert_cmpint(p->generation, ==, pg);
    g_assert_cmpint(e->alg, ==, MKTME_ALG_AES_XTS_256);

    prog(p, 5, ALG128 | MKTME_CMD_NO_ENCRYPT, true, MKTME_FAULT_NONE);
    g_assert_cmpint(e->mode, ==, MKTME_KEY_NO_ENCRYPT);
    g_assert_cmpmem(e->data_key, 32, zero, 32);
    g_assert_cmpmem(e->tweak_key, 32, zero, 32);
    g_assert_cmpint(mktme_keyid_xform(p, 5, 0), ==, MKTME_XFORM_PLAIN);

    prog(p, 5, ALG256 | MKTME_CMD_SET_KEY_DIRECT, true, MKTME_FAULT_NONE);
    prog(p, 5, ALG128 | MKTME_CMD_CLEAR_KEY, true, MKTME_FAULT_NONE);
    g_assert_cmpint(e->mode, ==, MKTME_KEY_TME);
    g_assert_cmpmem(e->data_key, 32, zero, 32);
    g_assert_cmpmem(e->tweak_key, 32, zero, 32);
    g_assert_cmpint(mktme_keyid_xform(p, 5, 0), ==, MKTME_XFORM_VM_KEY);
    g_assert_cmpint(p->generation, ==, pg + 3);
    g_assert_true(mktme_platform_post_load_check(p, NULL));
    mktme_platform_free(p);
}

static void test_xform(void)
{
    MktmePlatform *p = mktme_platform_new(&cfg46);
    const uint64_t in = 0x40001000ULL, out = 0x80000000ULL;

    g_assert_cmpint(mktme_keyid_xform(p, 0, in), ==, MKTME_XFORM_VM_KEY);
    g_assert_cmpint(mktme_keyid_xform(p, 1, in), ==, MKTME_XFORM_INVALID);
    wr(p, EMASK, 0x3fffc0000000ULL | MKTME_EXCL_ENABLE, MKTME_FAULT_NONE);
    wr(p, EBASE, 0x40000000ULL, MKTME_FAULT_NONE);
    mktme_platform_activate_default(p, 6);
    g_assert_cmpint(mktme_keyid_xform(p, 0, in), ==, MKTME_XFORM_PLAIN);
    g_assert_cmpint(mktme_keyid_xform(p, 0, 0x7ffff000ULL), ==,
                    MKTME_XFORM_PLAIN);
    g_assert_cmpint(mktme_keyid_xform(p, 0, out), ==, MKTME_XFORM_VM_KEY);
    g_assert_cmpint(mktme_keyid_xform(p, 0, 0x3fffff000ULL), ==,
                    MKTME_XFORM_VM_KEY);
    /* The exclusion range never applies to KeyIDs != 0 */
    g_assert_cmpint(mktme_keyid_xform(p, 1, in), ==, MKTME_XFORM_VM_KEY);
    g_assert_cmpint(mktme_keyid_xform(p, 63, in), ==, MKTME_XFORM_VM_KEY);
    prog(p, 2, ALG128 | MKTME_CMD_SET_KEY_DIRECT, true, MKTME_FAULT_NONE);
    g_assert_cmpint(mktme_keyid_xform(p, 2, in), ==, MKTME_XFORM_KEY);
    g_assert_cmpint(mktme_keyid_xform(p, 64, in), ==, MKTME_XFORM_INVALID);
    g_assert_cmpint(mktme_keyid_xform(p, 0xffff, in), ==, MKTME_XFORM_INVALID);

    /* Bypass: KeyID 0 and TME-mode KeyIDs plain, programmed keys kept */
    mktme_platform_reset(p);
    wr(p, ACT, MKTME_ACT_ENABLE | MKTME_ACT_BYPASS | (6ULL << 32) |
       MKTME_ACT_ALG_AES_XTS_128, MKTME_FAULT_NONE);
    prog(p, 2, ALG128 | MKTME_CMD_SET_KEY_DIRECT, true, MKTME_FAULT_NONE);
    g_assert_cmpint(mktme_keyid_xform(p, 0, out), ==, MKTME_XFORM_PLAIN);
    g_assert_cmpint(mktme_keyid_xform(p, 1, out), ==, MKTME_XFORM_PLAIN);
    g_assert_cmpint(mktme_keyid_xform(p, 2, out), ==, MKTME_XFORM_KEY);

    /* TME disabled by firmware: bypass bit has no effect */
    mktme_platform_reset(p);
    wr(p, ACT, MKTME_ACT_BYPASS, MKTME_FAULT_NONE);
    g_assert_false(mktme_bypass_active(p));
    g_assert_cmpint(mktme_keyid_xform(p, 0, out), ==, MKTME_XFORM_VM_KEY);
    mktme_platform_free(p);
}

static void test_generation(void)
{
    MktmePlatform *p = mktme_platform_new(&cfg46);
    uint32_t g = p->generation;

    wr(p, EMASK, MKTME_EXCL_ENABLE, MKTME_FAULT_NONE);
    g_assert_cmpint(p->generation, ==, g + 1);
    wr(p, EBASE, 1, MKTME_FAULT_RESERVED);
    g_assert_cmpint(p->generation, ==, g + 1);
    mktme_platform_activate_default(p, 6);
    g_assert_cmpint(p->generation, ==, g + 2);
    wr(p, ACT, 0, MKTME_FAULT_LOCKED);
    g_assert_cmpint(p->generation, ==, g + 2);
    mktme_platform_reset(p);
    g_assert_cmpint(p->generation, ==, g + 3);
    mktme_platform_free(p);
}

static void test_reset_and_wipe(void)
{
    MktmePlatform *p = new_active();
    const MktmeKeyEntry *e = mktme_key_entry(p, 63);
    uint8_t zero[32] = { 0 };
    uint32_t eg;

    prog(p, 63, ALG256 | MKTME_CMD_SET_KEY_DIRECT, true, MKTME_FAULT_NONE);
    prog(p, 62, ALG128 | MKTME_CMD_NO_ENCRYPT, true, MKTME_FAULT_NONE);
    eg = e->generation;
    mktme_platform_reset(p);
    g_assert_cmphex(rd(p, ACT), ==, 0);
    g_assert_cmphex(rd(p, EMASK), ==, 0);
    g_assert_cmphex(rd(p, EBASE), ==, 0);
    g_assert_cmpint(mktme_nr_keyids(p), ==, 0);
    g_assert_cmpint(e->mode, ==, MKTME_KEY_TME);
    g_assert_cmpint(mktme_key_entry(p, 62)->mode, ==, MKTME_KEY_TME);
    g_assert_cmpint(e->generation, ==, eg + 1);
    g_assert_cmpmem(e->data_key, 32, zero, 32);
    g_assert_cmpmem(e->tweak_key, 32, zero, 32);
    /* Reactivated: every KeyID starts in TME mode */
    mktme_platform_activate_default(p, 6);
    g_assert_cmpint(mktme_keyid_xform(p, 63, 0), ==, MKTME_XFORM_VM_KEY);
    /* The wipe used by mktme_platform_free() */
    prog(p, 63, ALG256 | MKTME_CMD_SET_KEY_RANDOM, true, MKTME_FAULT_NONE);
    g_assert_cmpint(e->data_key[0] | e->tweak_key[0], !=, 0);
    mktme_platform_wipe_keys(p);
    g_assert_cmpmem(e->data_key, 32, zero, 32);
    g_assert_cmpmem(e->tweak_key, 32, zero, 32);
    g_assert_null(mktme_key_entry(p, 64));
    mktme_platform_free(p);
    mktme_platform_free(NULL);
}

static void expect_bad_load(MktmePlatform *p, const char *want)
{
    char *err = NULL;

    g_assert_false(mktme_platform_post_load_check(p, &err));
    if (!strstr(err, want)) {
        g_error("error '%s' lacks '%s'", err, want);
    }
    g_free(err);
}

static void test_post_load(void)
{
    MktmeConfig c256 = { 46, 6, 63, false, true, false };
    MktmePlatform *p = mktme_platform_new(&c256);
    MktmeKeyEntry *e;

    g_assert_true(mktme_platform_post_load_check(p, NULL));  /* reset */
    mktme_platform_free(p);
    p = new_active();
    e = &p->keys[7];
    prog(p, 7, ALG128 | MKTME_CMD_SET_KEY_DIRECT, true, MKTME_FAULT_NONE);
    g_assert_true(mktme_platform_post_load_check(p, NULL));

    e->mode = MKTME_KEY_MODE__MAX;
    expect_bad_load(p, "KeyID 7: key table entry mode or algorithm");
    e->mode = MKTME_KEY_ENCRYPT;
    e->alg = 2;
    expect_bad_load(p, "KeyID 7: key table entry mode or algorithm");
    e->alg = MKTME_ALG_AES_XTS_128;
    e->data_key[20] = 1;
    expect_bad_load(p, "KeyID 7: key table entry has excess key bytes");
    e->data_key[20] = 0;
    e->mode = MKTME_KEY_NO_ENCRYPT;
    expect_bad_load(p, "KeyID 7: key table entry holds a key");
    e->mode = MKTME_KEY_ENCRYPT;
    p->keys[0].mode = MKTME_KEY_NO_ENCRYPT;
    expect_bad_load(p, "KeyID 0: key table entry programmed outside");
    p->keys[0].mode = MKTME_KEY_TME;

    p->activate = 0x0001000600000003ULL;        /* AES-XTS-128 only */
    e->alg = MKTME_ALG_AES_XTS_256;
    expect_bad_load(p, "KeyID 7: key table entry uses an algorithm");
    e->alg = MKTME_ALG_AES_XTS_128;
    p->activate = 0x0005000300000003ULL;        /* k = 3: 7 KeyIDs */
    g_assert_true(mktme_platform_post_load_check(p, NULL));
    p->activate = 0x0005000200000003ULL;        /* k = 2: 3 KeyIDs */
    expect_bad_load(p, "KeyID 7: key table entry programmed outside");
    p->activate = ACT_DEFAULT_46_6 | (1ULL << 20);
    expect_bad_load(p, "IA32_TME_ACTIVATE invalid");
    p->activate = 0x0005000700000003ULL;        /* k = 7 > max */
    expect_bad_load(p, "IA32_TME_ACTIVATE invalid");
    p->activate = ACT_DEFAULT_46_6 | MKTME_ACT_KEY_SELECT;
    expect_bad_load(p, "locked with a restored key");
    p->activate = ACT_DEFAULT_46_6 & ~MKTME_ACT_LOCK;
    expect_bad_load(p, "enabled without lock");
    p->activate = ACT_DEFAULT_46_6;
    p->exclude_mask = (1ULL << 44) | MKTME_EXCL_ENABLE;
    expect_bad_load(p, "EXCLUDE_MASK/BASE invalid");
    p->exclude_mask = 0;
    p->exclude_base = 1ULL << 50;
    expect_bad_load(p, "EXCLUDE_MASK/BASE invalid");
    p->exclude_base = 0;
    g_assert_true(mktme_platform_post_load_check(p, NULL));
    mktme_platform_free(p);
}

static void test_fault_names(void)
{
    GHashTable *seen = g_hash_table_new(g_str_hash, g_str_equal);
    unsigned i;

    for (i = 0; i < MKTME_FAULT__MAX; i++) {
        g_assert_nonnull(mktme_fault_name(i));
        g_assert_false(g_hash_table_contains(seen, mktme_fault_name(i)));
        g_hash_table_add(seen, (gpointer)mktme_fault_name(i));
    }
    g_assert_cmpstr(mktme_fault_name(MKTME_FAULT__MAX), ==, "unknown");
    g_hash_table_destroy(seen);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/model/capability", test_capability);
    g_test_add_func("/model/config-check", test_config_check);
    g_test_add_func("/model/activate-default", test_activate_default);
    g_test_add_func("/model/activate-rows", test_activate_rows);
    g_test_add_func("/model/exclusion-msrs", test_exclusion_msrs);
    g_test_add_func("/model/other-msrs", test_other_msrs);
    g_test_add_func("/model/decode", test_decode);
    g_test_add_func("/model/pconfig-precheck", test_pconfig_precheck);
    g_test_add_func("/model/pconfig-struct", test_pconfig_struct_checks);
    g_test_add_func("/model/pconfig-commands", test_pconfig_commands);
    g_test_add_func("/model/xform", test_xform);
    g_test_add_func("/model/generation", test_generation);
    g_test_add_func("/model/reset-wipe", test_reset_and_wipe);
    g_test_add_func("/model/post-load", test_post_load);
    g_test_add_func("/model/fault-names", test_fault_names);
    return g_test_run();
}
