/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Intel TME-MK platform model: the TME MSRs (0x981-0x984, 0x9ff), the
 * PCONFIG MKTME_KEY_PROGRAM leaf, the key table and physical address
 * decode.  QEMU-independent (glib only); the QEMU object owns one
 * MktmePlatform per emulated package and turns key bytes into ciphers.
 *
 * Key bytes are secrets: nothing here logs or prints them, and every
 * path that drops key material zeroes it.
 */

#ifndef MKTME_MODEL_H
#define MKTME_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MSR_IA32_TME_CAPABILITY      0x981
#define MSR_IA32_TME_ACTIVATE        0x982
#define MSR_IA32_TME_EXCLUDE_MASK    0x983
#define MSR_IA32_TME_EXCLUDE_BASE    0x984
#define MSR_IA32_MKTME_CORE_ACTIVATE 0x9ff

/* IA32_TME_CAPABILITY */
#define MKTME_CAP_AES_XTS_128        (1ULL << 0)
#define MKTME_CAP_AES_XTS_256        (1ULL << 2)
#define MKTME_CAP_BYPASS             (1ULL << 31)
#define MKTME_CAP_MAX_KEYID_SHIFT    32
#define MKTME_CAP_MAX_KEYS_SHIFT     36

/* IA32_TME_ACTIVATE */
#define MKTME_ACT_LOCK               (1ULL << 0)
#define MKTME_ACT_ENABLE             (1ULL << 1)
#define MKTME_ACT_KEY_SELECT         (1ULL << 2)
#define MKTME_ACT_SAVE_KEY           (1ULL << 3)
#define MKTME_ACT_POLICY_SHIFT       4
#define MKTME_ACT_POLICY_MASK        (0xfULL << 4)
#define MKTME_ACT_BYPASS             (1ULL << 31)
#define MKTME_ACT_KEYID_BITS_SHIFT   32
#define MKTME_ACT_KEYID_BITS_MASK    (0xfULL << 32)
#define MKTME_ACT_ALGS_SHIFT         48
#define MKTME_ACT_ALGS_MASK          (0xffffULL << 48)
#define MKTME_ACT_ALG_AES_XTS_128    (1ULL << 48)
#define MKTME_ACT_ALG_AES_XTS_256    (1ULL << 50)
#define MKTME_POLICY_AES_XTS_128     0
#define MKTME_POLICY_AES_XTS_256     2

/* IA32_TME_EXCLUDE_MASK / _BASE */
#define MKTME_EXCL_ENABLE            (1ULL << 11)

/* Return values of the MSR and PCONFIG entry points */
#define MKTME_EXC_GP                 (-1)   /* caller raises #GP(0) */
#define MKTME_MSR_NOT_MINE           (-2)   /* not a TME MSR */

/*
 * Why a fault was raised.  Callers treat every reason as #GP(0); the
 * reason is for tests, fuzzers and trace points.
 */
typedef enum MktmeFault {
    MKTME_FAULT_NONE = 0,
    MKTME_FAULT_READ_ONLY,       /* WRMSR to IA32_TME_CAPABILITY */
    MKTME_FAULT_LOCKED,          /* WRMSR 0x982-0x984 after ACTIVATE.Lock */
    MKTME_FAULT_RESERVED,        /* reserved bit set */
    MKTME_FAULT_SAVE_KEY,        /* ACTIVATE bit 3: no standby key storage */
    MKTME_FAULT_POLICY,          /* TME policy not enumerated */
    MKTME_FAULT_KEYID_BITS,      /* MK_TME_KEYID_BITS > MAX_KEYID_BITS */
    MKTME_FAULT_MK_WITHOUT_TME,  /* KeyID bits > 0 with enable = 0 */
    MKTME_FAULT_ALGS,            /* CRYPTO_ALGS reserved/not enumerated */
    MKTME_FAULT_NO_ALGS,         /* KeyID bits > 0 with CRYPTO_ALGS = 0 */
    MKTME_FAULT_ABOVE_MAXPA,     /* exclusion MSR bit >= MAXPHYADDR */
    MKTME_FAULT_NOT_CONTIGUOUS,  /* TMEEMASK not contiguous */
    MKTME_FAULT_NO_MKTME,        /* 0x9ff without MKTME enumerated */
    MKTME_FAULT_LEAF,            /* PCONFIG leaf != 0 */
    MKTME_FAULT_NOT_ACTIVE,      /* PCONFIG with TME-MK not activated */
    MKTME_FAULT_ALIGN,           /* PCONFIG struct not 256-byte aligned */
    MKTME_FAULT_CTRL_RESERVED,   /* KEYID_CTRL[31:24] != 0 */
    MKTME_FAULT_COMMAND,         /* command > 3 */
    MKTME_FAULT_KEYID,           /* KeyID 0 or beyond the range */
    MKTME_FAULT_ENC_ALG,         /* ENC_ALG not one-hot or not activated */
    MKTME_FAULT__MAX,
} MktmeFault;

typedef enum MktmeKeyMode {
    MKTME_KEY_TME = 0,   /* cleared/never programmed: KeyID 0 minus exclusion */
    MKTME_KEY_ENCRYPT,
    MKTME_KEY_NO_ENCRYPT,
    MKTME_KEY_MODE__MAX,
} MktmeKeyMode;

#define MKTME_ALG_AES_XTS_128        0
#define MKTME_ALG_AES_XTS_256        1

/*
 * One key-table entry.  Plain fixed-size fields so a vmstate can describe
 * it: mode holds a MktmeKeyMode, alg an MKTME_ALG_* value.  For
 * AES-XTS-128 only bytes 0..15 of each key are used (the rest are zero).
 */
typedef struct MktmeKeyEntry {
    uint8_t mode;
    uint8_t alg;
    uint8_t data_key[32];
    uint8_t tweak_key[32];
    uint32_t generation;         /* bumped on every change of this entry */
} MktmeKeyEntry;

/* The platform's fixed capabilities, chosen by the QEMU object. */
typedef struct MktmeConfig {
    unsigned phys_bits;          /* MAXPHYADDR, 36..52 */
    unsigned max_keyid_bits;     /* 0..15: CAPABILITY[35:32] */
    unsigned max_keys;           /* 0..32767: CAPABILITY[50:36] */
    bool aes_xts_128;            /* CAPABILITY bit 0 */
    bool aes_xts_256;            /* CAPABILITY bit 2 */
    bool bypass;                 /* CAPABILITY bit 31 */
} MktmeConfig;

typedef struct MktmePlatform {
    MktmeConfig cfg;
    /* Architectural state (migrated) */
    uint64_t activate;
    uint64_t exclude_mask;
    uint64_t exclude_base;
    MktmeKeyEntry *keys;         /* cfg.max_keys + 1 entries, [0] unused */
    uint32_t nr_entries;         /* cfg.max_keys + 1, for migration */
    /* Derived / diagnostic state (not migrated) */
    uint32_t generation;         /* bumped on any change visible to a read */
    MktmeFault last_fault;       /* reason of the last msr_write/key_program */
    /* Failure injection for tests and fuzzers (not migrated) */
    bool test_busy;              /* PCONFIG: key table lock is taken */
    uint16_t test_busy_keyid;    /* ... for this KeyID only (0: none) */
    bool test_rng_fail;          /* ACTIVATE: TME key generation fails */
} MktmePlatform;

/* PCONFIG */
#define MKTME_PCONFIG_LEAF_KEY_PROGRAM  0
#define MKTME_KEY_PROGRAM_STRUCT_SIZE   192   /* bytes read by the insn */
#define MKTME_KEY_PROGRAM_ALIGN         256
#define MKTME_CMD_SET_KEY_DIRECT        0
#define MKTME_CMD_SET_KEY_RANDOM        1
#define MKTME_CMD_CLEAR_KEY             2
#define MKTME_CMD_NO_ENCRYPT            3
#define MKTME_PCONFIG_SUCCESS           0
#define MKTME_PCONFIG_ENTROPY_ERROR     2
#define MKTME_PCONFIG_DEVICE_BUSY       5

/* How the memory controller treats an access with a given KeyID */
typedef enum MktmeXform {
    MKTME_XFORM_PLAIN,           /* no encryption */
    MKTME_XFORM_VM_KEY,          /* KeyID 0's key, held by the QEMU object */
    MKTME_XFORM_KEY,             /* keys[keyid] */
    MKTME_XFORM_INVALID,         /* KeyID beyond the configured range */
} MktmeXform;

/* Zero @len bytes of key material; never optimised away */
void mktme_wipe(void *ptr, size_t len);

/* Configuration and lifetime */
bool mktme_config_check(const MktmeConfig *cfg, uint64_t ram_top,
                        char **errmsg);
MktmePlatform *mktme_platform_new(const MktmeConfig *cfg);
void mktme_platform_free(MktmePlatform *p);
void mktme_platform_wipe_keys(MktmePlatform *p);
void mktme_platform_reset(MktmePlatform *p);
void mktme_platform_activate_default(MktmePlatform *p, unsigned keyid_bits);
bool mktme_platform_post_load_check(const MktmePlatform *p, char **err);

/* MSRs: return 0, MKTME_EXC_GP or MKTME_MSR_NOT_MINE */
uint64_t mktme_capability(const MktmePlatform *p);
int mktme_msr_read(const MktmePlatform *p, uint32_t msr, uint64_t *val);
int mktme_msr_write(MktmePlatform *p, uint32_t msr, uint64_t val);

/* Address decode */
bool mktme_tme_enabled(const MktmePlatform *p);
bool mktme_bypass_active(const MktmePlatform *p);
unsigned mktme_keyid_bits(const MktmePlatform *p);
unsigned mktme_keyid_shift(const MktmePlatform *p);
unsigned mktme_nr_keyids(const MktmePlatform *p);
uint16_t mktme_pa_keyid(const MktmePlatform *p, uint64_t pa);
uint64_t mktme_pa_strip(const MktmePlatform *p, uint64_t pa);
MktmeXform mktme_keyid_xform(const MktmePlatform *p, uint16_t keyid,
                             uint64_t stripped_pa);
const MktmeKeyEntry *mktme_key_entry(const MktmePlatform *p, uint16_t keyid);

/*
 * PCONFIG, split around the guest-memory load of the struct.
 * mktme_pconfig_precheck: checks made before the load; 0 or MKTME_EXC_GP.
 * mktme_pconfig_key_program: checks the loaded struct and programs the
 * key table.  entropy: 64 bytes of CPU randomness (0..31 data key,
 * 32..63 tweak key); entropy_ok = false simulates an RNG failure.
 * Returns MKTME_EXC_GP, or 0 with *status = the value for RAX.
 */
MktmeFault mktme_pconfig_precheck_fault(const MktmePlatform *p,
                                        uint64_t leaf, uint64_t rbx);
int mktme_pconfig_precheck(const MktmePlatform *p, uint64_t leaf,
                           uint64_t rbx);
int mktme_pconfig_key_program(MktmePlatform *p,
                              const uint8_t st[MKTME_KEY_PROGRAM_STRUCT_SIZE],
                              const uint8_t entropy[64], bool entropy_ok,
                              uint64_t *status);

const char *mktme_fault_name(MktmeFault f);

#endif
