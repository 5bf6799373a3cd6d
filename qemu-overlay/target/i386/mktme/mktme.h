/*
 * Intel TME-MK (multi-key total memory encryption): QEMU-side interfaces
 *
 * The engine (AES-XTS lines, MSR and PCONFIG model) lives beside this
 * file in mktme-xts.[ch] and mktme-model.[ch] and knows nothing of QEMU.
 * This header ties it to QEMU:
 *   mktme-guest.c  the mktme-guest object, its properties
 *   mktme-guest-setup.c  its start: policy, keys, platform, migration
 *   mktme-ram.c    which RAM blocks are guest DRAM (and KVM's marking)
 *   mktme-kvm.c    the host kernel interface (probe, keys, RAM marking)
 *   mktme-mc.c     the emulated memory controller (TCG)
 *   mktme-mc-crypto.c  its ciphers and crypto region
 *   mktme-shadow.c, mktme-epoch.c, mktme-pages.c, mktme-verify.c,
 *   mktme-watch.c, mktme-writeback.c, mktme-demote.c  its fast path
 *   mktme-qmp.c    QMP and HMP
 *
 * Copyright (c) 2026 The qemu-mktme authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef TARGET_I386_MKTME_H
#define TARGET_I386_MKTME_H

#include "qom/object.h"
#include "qemu/notify.h"
#include "qapi/qapi-types-migration.h"
#include "exec/hwaddr.h"
#include "mktme-compat.h"
#include "exec/ramlist.h"
#include "qapi/qapi-types-mktme-target.h"
#include "target/i386/confidential-guest.h"
#include "mktme-xts.h"
#include "mktme-model.h"

#define TYPE_MKTME_GUEST "mktme-guest"
#define TYPE_MKTME_IOMMU_MEMORY_REGION "mktme-iommu-memory-region"
OBJECT_DECLARE_SIMPLE_TYPE(MktmeGuest, MKTME_GUEST)

/*
 * The emulated memory controller (TCG, guest-visible=on): KeyIDs 1..n
 * of every physical address, i.e. [1 << shift, 1 << phys_bits), are an
 * IOMMU region in system memory that sends each page either straight to
 * RAM (where the KeyID reads what KeyID 0 reads) or to the crypto region,
 * which decrypts and encrypts line by line.  The crypto region sits above
 * every guest-reachable address (2^52 is beyond the largest MAXPHYADDR),
 * its offsets being full KeyID-tagged addresses, in the vCPUs' memory
 * only (mktme-cpumem.c).
 */
#define MKTME_MC_CRYPTO_WINDOW (1ULL << 52)
/* The plaintext shadow pool (mktme-shadow.c), as far out, as private. */
#define MKTME_SHADOW_WINDOW (1ULL << 53)
typedef struct MktmeShadow MktmeShadow;
typedef struct MktmeAddrMap MktmeAddrMap;
typedef struct MktmeCipher MktmeCipher;
typedef struct MktmeMc {
    IOMMUMemoryRegion iommu;
    MktmeGuest *mg;
    MemoryRegion crypto_mr;     /* at MKTME_MC_CRYPTO_WINDOW */
    hwaddr base;                /* 1 << (phys_bits - max KeyID bits) */
    MktmeCipher **ciphers;      /* per KeyID, built from the key table (RCU) */
    QemuMutex lock;             /* building ciphers; key table changes */
    MktmeShadow *shadow;        /* the fast path, or NULL */
    char *shadow_off;           /* why there is none */
} MktmeMc;

/* Largest VM key: data key and tweak key of AES-XTS-256. */
#define MKTME_VM_KEY_MAX 64

struct MktmeGuest {
    X86ConfidentialGuest parent_obj;

    /* Properties */
    MktmePolicy policy;
    MktmeAlgorithm algorithm;
    char *key_secret;
    bool has_handle;
    uint32_t handle;
    uint32_t encrypt_mprotect_nr;
    bool guest_visible;
    uint8_t keyid_bits;
    uint16_t max_keys;
    uint16_t x_busy_keyid;      /* tests: PCONFIG DEVICE_BUSY on it */
    uint16_t x_noentropy_keyid; /* tests: PCONFIG ENTROPY_ERROR on it */
    bool activate;
    bool cap_aes_xts_128;
    bool cap_aes_xts_256;
    bool cap_bypass;
    uint64_t shadow_size;
    bool shadow_write_back;
    MktmePlainChannel plain_channel;

    /* State */
    bool enabled;
    char *reason;               /* why not enabled */
    MktmeAccel accel;
    MktmeKeySource key_source;
    int32_t kernel_key;         /* KVM: serial of the key in use, or 0 */
    uint8_t vm_key[MKTME_VM_KEY_MAX];  /* TCG: KeyID 0's key */
    uint32_t key_len;           /* bytes of vm_key in use */
    MktmeXtsKey *xts0;          /* TCG: KeyID 0's cipher */
    GHashTable *ram_blocks;     /* marked RAMBlock -> its max size */
    QemuMutex ram_lock;         /* ram_blocks: changed under the BQL too */
    uint32_t ram_gen;           /* bumped when ram_blocks changes */
    RAMBlockNotifier ram_notifier;
    Notifier machine_done;
    Error *migration_blocker;
    NotifierWithReturn wire_notifier[MIG_MODE__MAX];    /* mktme-wire.c */
    bool migrating;             /* a migration judged by wire_notifier */
    bool plain_warned;

    /* guest-visible=on: the emulated platform and memory controller */
    MktmePlatform *platform;
    MktmeMc *mc;
    MktmeAddrMap *addrmap;
};

/*
 * mktme-wire.c: the VM key on the wire (the plain-channel property).
 * mktme_wire_pre_save(): 0, or -EPERM (reported) to fail the save.
 */
void mktme_wire_init(MktmeGuest *mg);
void mktme_wire_cleanup(MktmeGuest *mg);
int mktme_wire_pre_save(MktmeGuest *mg);

/* The machine's mktme-guest, or NULL. */
MktmeGuest *mktme_guest_get(void);

/*
 * mktme-guest-setup.c, for mktme-guest.c: the object's
 * ConfidentialGuestSupportClass.kvm_init, its machine-init-done
 * notifier (TCG and qtest), the platform's reset handler, and its
 * migration state.
 */
int mktme_kvm_init(ConfidentialGuestSupport *cgs, Error **errp);
void mktme_machine_done(Notifier *n, void *unused);
void mktme_platform_reset_handler(void *opaque);
extern const VMStateDescription vmstate_mktme;

/* mktme-ram.c: the guest's DRAM blocks */
/* Follow RAM blocks (hot-plug too): the table, and KVM's marking */
void mktme_start_marking(MktmeGuest *mg);
/* Is @rb guest DRAM that this object encrypts?  Any thread. */
bool mktme_ram_block_encrypted(MktmeGuest *mg, RAMBlock *rb);
/* Bytes of guest DRAM this object encrypts */
uint64_t mktme_encrypted_memory(MktmeGuest *mg);

/*
 * Length of each of the two keys of @alg, in bytes (here, not in the
 * object's file: the memory controller needs it too).
 */
static inline size_t mktme_algorithm_key_len(MktmeAlgorithm alg)
{
    return alg == MKTME_ALGORITHM_AES_XTS_256 ? 32 : 16;
}

/*
 * mktme-addrmap.c: the platform's address map.  Refuse (NULL, @errp) a
 * machine whose fixed map does not fit below 2^(@phys_bits -
 * @keyid_bits); tell firmware that width when TME-MK is @activated at
 * reset; report BARs the guest maps above the limit of the KeyID bits
 * @p has activated.
 */
MktmeAddrMap *mktme_addrmap_new(const MktmePlatform *p, unsigned phys_bits,
                                unsigned keyid_bits, bool activated,
                                Error **errp);
void mktme_addrmap_free(MktmeAddrMap *am);
MktmeAddressMap *mktme_addrmap_info(MktmeAddrMap *am);

/* mktme-kvm.c: the host kernel interface */
typedef struct MktmeHostCaps {
    bool cpu_tme;               /* CPUID.7.0:ECX[13] */
    bool msr_readable;          /* /dev/cpu/0/msr gave us 0x981/0x982 */
    uint64_t capability;        /* IA32_TME_CAPABILITY, if readable */
    uint64_t activate;          /* IA32_TME_ACTIVATE, if readable */
    bool kernel_key_type;       /* the "mktme" key type is registered */
} MktmeHostCaps;

void mktme_host_probe(MktmeHostCaps *caps);
/*
 * Check what KVM encryption needs; on failure return false and set
 * *reason to a sentence naming the missing piece.
 */
bool mktme_host_can_encrypt(const MktmeHostCaps *caps,
                            uint32_t encrypt_mprotect_nr, char **reason);
int mktme_kvm_get_key(MktmeGuest *mg, Error **errp);
int mktme_kvm_mark_ram(MktmeGuest *mg, void *host, size_t size,
                       Error **errp);
void mktme_kvm_put_key(MktmeGuest *mg);

/* mktme-mc.c: the emulated memory controller */
/*
 * mktme-cpumem.c: the vCPUs' memory, system memory plus the windows above
 * that only vCPUs reach, and its address space (the IOMMU's target).
 */
MemoryRegion *mktme_cpu_memory(void);
AddressSpace *mktme_cpu_as(void);

bool mktme_mc_init(MktmeGuest *mg, Error **errp);
void mktme_mc_cleanup(MktmeGuest *mg);
/* The VM key or key table was replaced (migration): rebuild ciphers. */
bool mktme_mc_rekey(MktmeGuest *mg, Error **errp);
/* The key table or activation changed: remap KeyIDs, flush TLBs. */
void mktme_mc_update(MktmeGuest *mg);
/* A KeyID was programmed (PCONFIG): KeyID accesses are coming */
void mktme_mc_key_programmed(MktmeGuest *mg);
/* Held around changes of the key table (PCONFIG) */
void mktme_mc_lock(MktmeGuest *mg);
void mktme_mc_unlock(MktmeGuest *mg);
/*
 * A 64-byte line written whole through the KeyID in @addr's KeyID bits
 * (MOVDIR64B): R := D_0(E_k(P)), no read of the old line.  False for
 * KeyID 0 and for lines that are not RAM (the caller stores them).
 */
bool mktme_mc_write_line(MktmeGuest *mg, hwaddr addr, const uint64_t *line);
/* Read @len bytes of the DRAM image E_0(R) at @pa (64-byte aligned). */
bool mktme_mc_dram_read(MktmeGuest *mg, hwaddr pa, uint8_t *buf,
                        size_t len, Error **errp);
/*
 * mktme-mc-crypto.c, for mktme-mc.c: KeyID 0's transform at @pa (*@ram:
 * whether @pa is RAM at all), the crypto region's ops, the fast path's
 * ciphers (an MktmeShadowCipherFn), and freeing a KeyID's cipher.
 */
MktmeXform mktme_mc_xform0(MktmeGuest *mg, hwaddr pa, bool *ram);
extern const MemoryRegionOps mktme_mc_crypto_ops;
void mktme_mc_shadow_ciphers(void *opaque, hwaddr pa, uint16_t keyid,
                             const MktmeXtsKey **c0, const MktmeXtsKey **ck);
void mktme_cipher_free(MktmeCipher *c);

/*
 * mktme-shadow.c, mktme-watch.c: the fast path.  A page the vCPUs use
 * through a KeyID whose view differs from KeyID 0's gets a slot: a host
 * page holding its plaintext D_k(E_0(R)), which the TLB maps as a ROM
 * device (loads and fetches direct, stores written through to R).
 */
#define MKTME_SHADOW_SIZE_DEFAULT (96 * 1024 * 1024)
/*
 * The ciphers of the view of @pa through @keyid: KeyID 0's (*c0) and the
 * KeyID's (*ck), NULL for a plaintext transform.  Called within an RCU
 * read-side critical section; the ciphers stay valid until it ends.
 */
typedef void MktmeShadowCipherFn(void *opaque, hwaddr pa, uint16_t keyid,
                                 const MktmeXtsKey **c0,
                                 const MktmeXtsKey **ck);
#ifdef CONFIG_TCG
/* NULL, with *why set, if the fast path cannot run here. */
/* @write_back: pages used through one KeyID may take stores directly */
MktmeShadow *mktme_shadow_new(uint64_t size, bool write_back,
                              MktmeShadowCipherFn *ciphers,
                              void *opaque, char **why);
void mktme_shadow_free(MktmeShadow *sh);
/* Fault the pool in, in the background: a key was programmed */
void mktme_shadow_prefault(MktmeShadow *sh);
/*
 * Drop every slot (key, activation or memory map change, reset): at
 * once if no vCPU runs, else before the calling vCPU's next instruction
 * (before every vCPU's next TB when called from another thread).
 */
void mktme_shadow_drop_all(MktmeShadow *sh);
/* The same, RAM [@start, +@len) being unplugged: leave it alone now */
void mktme_shadow_drop_ram(MktmeShadow *sh, ram_addr_t start,
                           ram_addr_t len);
/* May this translation (a TCG TLB fill) use a slot? */
bool mktme_shadow_usable(MktmeShadow *sh, IOMMUAccessFlags flag);
/* The slot of @pa through @keyid, or -1 (no allocation). */
int64_t mktme_shadow_find(MktmeShadow *sh, hwaddr pa, uint16_t keyid);
/*
 * Lock guest page @pa against the fast path's stores (recursive), or
 * return NULL if there is no fast path.
 */
QemuRecMutex *mktme_shadow_lock_page(MktmeShadow *sh, hwaddr pa);
/* Find or make the slot of RAM page @pa through @keyid, or -1. */
int64_t mktme_shadow_get(MktmeShadow *sh, hwaddr pa, uint16_t keyid);
/* Where the TLB maps slot @slot (from _find or _get) */
hwaddr mktme_shadow_slot_addr(MktmeShadow *sh, int64_t slot);
/*
 * Write what write-back slots hold back to guest RAM, with the keys they
 * were made with: before a key table or activation change.
 */
void mktme_shadow_sync_all(MktmeShadow *sh);
/* Fill in @fp (off_reason too). */
void mktme_shadow_info(MktmeShadow *sh, MktmeFastPath *fp);
#else
static inline MktmeShadow *mktme_shadow_new(uint64_t size, bool write_back,
                                            MktmeShadowCipherFn *ciphers,
                                            void *opaque, char **why)
{
    *why = g_strdup("no TCG");
    return NULL;
}
static inline void mktme_shadow_free(MktmeShadow *sh) {}
static inline void mktme_shadow_prefault(MktmeShadow *sh) {}
static inline void mktme_shadow_drop_all(MktmeShadow *sh) {}
static inline void mktme_shadow_drop_ram(MktmeShadow *sh, ram_addr_t start,
                                         ram_addr_t len) {}
static inline bool mktme_shadow_usable(MktmeShadow *sh, IOMMUAccessFlags f)
{
    return false;
}
static inline int64_t mktme_shadow_find(MktmeShadow *sh, hwaddr pa,
                                        uint16_t keyid)
{
    return -1;
}
static inline QemuRecMutex *mktme_shadow_lock_page(MktmeShadow *sh,
                                                   hwaddr pa)
{
    return NULL;
}
static inline int64_t mktme_shadow_get(MktmeShadow *sh, hwaddr pa,
                                       uint16_t keyid)
{
    return -1;
}
static inline hwaddr mktme_shadow_slot_addr(MktmeShadow *sh, int64_t slot)
{
    g_assert_not_reached();
}
static inline void mktme_shadow_sync_all(MktmeShadow *sh) {}
static inline void mktme_shadow_info(MktmeShadow *sh, MktmeFastPath *fp) {}
#endif

#endif
