/*
 * The emulated TME-MK memory controller's crypto (TCG and qtest).
 *
 * The ciphers: KeyID 0's (the VM key) and, per KeyID, one built from
 * the key table and rebuilt when its entry changes (RCU); the crypto
 * region, through which the accesses no shadow takes read D_k(E_0(R))
 * and write R := D_0(E_k(P)), line by line; whole-line writes
 * (MOVDIR64B); the ciphers of the fast path's shadows; reads of the
 * DRAM image E_0(R).  The memory model, and the IOMMU region that sends
 * accesses here: mktme-mc.c.
 *
 * Copyright (c) 2026 The qemu-mktme authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "cpu.h"
#include "mktme-compat.h"
#include "qemu/rcu.h"
#include "mktme.h"

static MktmeXtsAlg mktme_xts_alg(unsigned model_alg)
{
    return model_alg == MKTME_ALG_AES_XTS_256 ? MKTME_XTS_AES_256
                                              : MKTME_XTS_AES_128;
}

/* Is @pa plain RAM (not MMIO, not a ROM device)? */
static bool mktme_mc_is_ram(hwaddr pa, RAMBlock **rb)
{
    hwaddr xlat, len = 1;
    MemoryRegion *mr;

    /* No reference taken: TLB fills ask, on every vCPU at once. */
    RCU_READ_LOCK_GUARD();
    mr = address_space_translate(&address_space_memory, pa, &xlat, &len,
                                 false, MEMTXATTRS_UNSPECIFIED);
    if (rb) {
        *rb = mr->ram_block;
    }
    return memory_region_is_ram(mr) && !memory_region_is_ram_device(mr) &&
           mr->ram_block;
}

/*
 * KeyID 0's transform at @pa: the platform's (bypass, exclusion range),
 * except that ROM is not DRAM and is never encrypted.  *@ram says
 * whether @pa is RAM at all.
 */
MktmeXform mktme_mc_xform0(MktmeGuest *mg, hwaddr pa, bool *ram)
{
    RAMBlock *rb = NULL;

    *ram = mktme_mc_is_ram(pa, &rb);
    if (*ram && !mktme_ram_block_encrypted(mg, rb)) {
        return MKTME_XFORM_PLAIN;
    }
    return mktme_keyid_xform(mg->platform, 0, pa);
}

/* A KeyID's cipher, built from key table entry generation @gen - 1 */
struct MktmeCipher {
    struct rcu_head rcu;
    MktmeXtsKey *key;
    uint32_t gen;
};

void mktme_cipher_free(MktmeCipher *c)
{
    mktme_xts_key_free(c->key);     /* wipes the key schedule */
    g_free(c);
}

/*
 * The cipher of KeyID @keyid, for an MKTME_XFORM_KEY or _VM_KEY view.
 * Any thread, in an RCU read-side critical section: a cipher replaced
 * after a key change is freed after a grace period.
 */
static const MktmeXtsKey *mktme_mc_cipher(MktmeGuest *mg, uint16_t keyid,
                                          MktmeXform x)
{
    MktmeMc *mc = mg->mc;
    const MktmeKeyEntry *e;
    MktmeCipher *c, *old;

    if (x == MKTME_XFORM_VM_KEY) {
        /* (an opaque type: read the pointer as void *) */
        return qatomic_rcu_read((void **)&mg->xts0);
    }
    e = mktme_key_entry(mg->platform, keyid);
    c = qatomic_rcu_read(&mc->ciphers[keyid]);
    if (c && c->gen == qatomic_read(&e->generation) + 1) {
        return c->key;
    }
    /* The key table changes under mc->lock (PCONFIG): a consistent entry */
    qemu_mutex_lock(&mc->lock);
    old = mc->ciphers[keyid];
    c = old;
    if (!c || c->gen != e->generation + 1) {
        size_t len = e->alg == MKTME_ALG_AES_XTS_256 ? 32 : 16;

        c = g_new0(MktmeCipher, 1);
        c->key = mktme_xts_key_new(mktme_xts_alg(e->alg), MKTME_XTS_IMPL_AUTO,
                                   e->data_key, e->tweak_key);
        assert(len == mktme_xts_key_len(mktme_xts_alg(e->alg)));
        c->gen = e->generation + 1;
        qatomic_rcu_set(&mc->ciphers[keyid], c);
        if (old) {
            call_rcu(old, mktme_cipher_free, rcu);
        }
    }
    qemu_mutex_unlock(&mc->lock);
    return c->key;
}

void mktme_mc_lock(MktmeGuest *mg)
{
    if (mg->mc) {
        qemu_mutex_lock(&mg->mc->lock);
    }
}

void mktme_mc_unlock(MktmeGuest *mg)
{
    if (mg->mc) {
        qemu_mutex_unlock(&mg->mc->lock);
    }
}

/* View of one line through a transform: DRAM -> what the KeyID reads. */
static void mktme_mc_view(MktmeGuest *mg, uint16_t keyid, MktmeXform x,
                          hwaddr line, uint8_t *buf, bool encrypt)
{
    const MktmeXtsKey *k;

    if (x == MKTME_XFORM_PLAIN) {
        return;
    }
    k = mktme_mc_cipher(mg, keyid, x);
    if (encrypt) {
        mktme_xts_encrypt_lines(k, line, buf, buf, 1);
    } else {
        mktme_xts_decrypt_lines(k, line, buf, buf, 1);
    }
}

/*
 * The crypto region: offsets are full guest physical addresses, KeyID
 * bits included.  Accesses are at most 8 bytes and never cross a line.
 */
static MemTxResult mktme_mc_access(MktmeGuest *mg, hwaddr addr,
                                   uint64_t *data, unsigned size,
                                   bool write)
{
    MktmePlatform *p = mg->platform;
    uint16_t keyid = mktme_pa_keyid(p, addr);
    hwaddr pa = mktme_pa_strip(p, addr);
    hwaddr line = pa & ~(hwaddr)(MKTME_LINE_SIZE - 1);
    unsigned off = pa & (MKTME_LINE_SIZE - 1);
    MktmeXform x = mktme_keyid_xform(p, keyid, pa);
    uint8_t buf[MKTME_LINE_SIZE];
    QemuRecMutex *stripe;
    MktmeXform x0;
    bool ram;
    MemTxResult r;

    if (x == MKTME_XFORM_INVALID || keyid == 0) {
        /*
         * KeyIDs beyond the platform's range, and addresses between the
         * activated KeyID bits and the most the platform offers (no
         * KeyID there: beyond the reduced address width): read ones,
         * drop writes.  Never forward these, which would come back here.
         */
        if (!write) {
            *data = MAKE_64BIT_MASK(0, size * 8);
        }
        return MEMTX_OK;
    }
    x0 = mktme_mc_xform0(mg, pa, &ram);
    if (!ram) {
        /* Devices see no encryption: pass the access through. */
        return write ? address_space_write(&address_space_memory, pa,
                                           MEMTXATTRS_UNSPECIFIED, data, size)
                     : address_space_read(&address_space_memory, pa,
                                          MEMTXATTRS_UNSPECIFIED, data, size);
    }
    /*
     * Hold the page against the fast path's stores (slot_write) across
     * the read-modify-write; address_space_write() refreshes the page's
     * shadows under the same (recursive) lock.
     */
    stripe = mktme_shadow_lock_page(mg->mc->shadow, line);
    r = address_space_read(&address_space_memory, line,
                           MEMTXATTRS_UNSPECIFIED, buf, sizeof(buf));
    if (r != MEMTX_OK) {
        goto out;
    }
    mktme_mc_view(mg, 0, x0, line, buf, true);         /* R -> DRAM */
    mktme_mc_view(mg, keyid, x, line, buf, false);     /* DRAM -> P */
    if (!write) {
        *data = ldn_le_p(buf + off, size);
        goto out;
    }
    stn_le_p(buf + off, size, *data);
    mktme_mc_view(mg, keyid, x, line, buf, true);      /* P -> DRAM */
    mktme_mc_view(mg, 0, x0, line, buf, false);        /* DRAM -> R */
    r = address_space_write(&address_space_memory, line,
                            MEMTXATTRS_UNSPECIFIED, buf, sizeof(buf));
out:
    if (stripe) {
        qemu_rec_mutex_unlock(stripe);
    }
    mktme_wipe(buf, sizeof(buf));
    return r;
}

bool mktme_mc_write_line(MktmeGuest *mg, hwaddr addr, const uint64_t *line)
{
    MktmePlatform *p = mg->platform;
    uint16_t keyid = mktme_pa_keyid(p, addr);
    hwaddr pa = mktme_pa_strip(p, addr) & ~(hwaddr)(MKTME_LINE_SIZE - 1);
    MktmeXform x = mktme_keyid_xform(p, keyid, pa);
    uint8_t buf[MKTME_LINE_SIZE];
    QemuRecMutex *stripe;
    MktmeXform x0;
    bool ram;

    /* From cpu_exec_step_atomic() too, which holds no RCU read lock */
    RCU_READ_LOCK_GUARD();
    if (keyid == 0) {
        return false;
    }
    if (x == MKTME_XFORM_INVALID) {
        return true;            /* dropped, as mktme_mc_access() drops it */
    }
    x0 = mktme_mc_xform0(mg, pa, &ram);
    if (!ram) {
        return false;
    }
    for (int i = 0; i < MKTME_LINE_SIZE / 8; i++) {
        stq_le_p(buf + 8 * i, line[i]);
    }
    stripe = mktme_shadow_lock_page(mg->mc->shadow, pa);
    mktme_mc_view(mg, keyid, x, pa, buf, true);        /* P -> DRAM */
    mktme_mc_view(mg, 0, x0, pa, buf, false);          /* DRAM -> R */
    address_space_write(&address_space_memory, pa, MEMTXATTRS_UNSPECIFIED,
                        buf, sizeof(buf));
    if (stripe) {
        qemu_rec_mutex_unlock(stripe);
    }
    mktme_wipe(buf, sizeof(buf));
    return true;
}

static MemTxResult mktme_mc_read(void *opaque, hwaddr addr, uint64_t *data,
                                 unsigned size, MemTxAttrs attrs)
{
    return mktme_mc_access(opaque, addr, data, size, false);
}

static MemTxResult mktme_mc_write(void *opaque, hwaddr addr, uint64_t data,
                                  unsigned size, MemTxAttrs attrs)
{
    return mktme_mc_access(opaque, addr, &data, size, true);
}

const MemoryRegionOps mktme_mc_crypto_ops = {
    .read_with_attrs = mktme_mc_read,
    .write_with_attrs = mktme_mc_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = { .min_access_size = 1, .max_access_size = 8,
               .unaligned = true },
    .impl = { .min_access_size = 1, .max_access_size = 8,
              .unaligned = false },
};

/* The ciphers of the view of @pa through @keyid, for the fast path */
void mktme_mc_shadow_ciphers(void *opaque, hwaddr pa, uint16_t keyid,
                             const MktmeXtsKey **c0, const MktmeXtsKey **ck)
{
    MktmeGuest *mg = opaque;
    MktmeXform x = mktme_keyid_xform(mg->platform, keyid, pa);
    bool ram;
    MktmeXform x0 = mktme_mc_xform0(mg, pa, &ram);

    *c0 = x0 == MKTME_XFORM_PLAIN ? NULL : mktme_mc_cipher(mg, 0, x0);
    *ck = x == MKTME_XFORM_PLAIN ? NULL : mktme_mc_cipher(mg, keyid, x);
}

typedef struct MktmeOldKey {
    struct rcu_head rcu;
    MktmeXtsKey *key;
} MktmeOldKey;

static void mktme_old_key_free(MktmeOldKey *o)
{
    mktme_xts_key_free(o->key);
    g_free(o);
}

bool mktme_mc_rekey(MktmeGuest *mg, Error **errp)
{
    size_t len = mktme_algorithm_key_len(mg->algorithm);
    MktmeXtsAlg alg = mg->algorithm == MKTME_ALGORITHM_AES_XTS_256 ?
                      MKTME_XTS_AES_256 : MKTME_XTS_AES_128;
    MktmeXtsKey *old = mg->xts0, *k;

    if (mg->mc) {
        /* Write-back slots hold data for the old key */
        mktme_shadow_sync_all(mg->mc->shadow);
    }
    k = mktme_xts_key_new(alg, MKTME_XTS_IMPL_AUTO, mg->vm_key,
                          mg->vm_key + len);
    if (!k) {
        error_setg(errp, "mktme-guest: cannot set up the %s engine",
                   MktmeAlgorithm_str(mg->algorithm));
        return false;
    }
    qatomic_rcu_set(&mg->xts0, k);
    if (old) {
        /* Readers may still hold it: free it after a grace period. */
        MktmeOldKey *o = g_new(MktmeOldKey, 1);

        o->key = old;
        call_rcu(o, mktme_old_key_free, rcu);
    }
    if (mg->mc) {
        /* Slots hold the old ciphers. */
        mktme_shadow_drop_all(mg->mc->shadow);
        qemu_mutex_lock(&mg->mc->lock);
        for (unsigned i = 0; i < mg->platform->nr_entries; i++) {
            MktmeCipher *c = mg->mc->ciphers[i];

            qatomic_rcu_set(&mg->mc->ciphers[i], NULL);
            if (c) {
                call_rcu(c, mktme_cipher_free, rcu);
            }
        }
        qemu_mutex_unlock(&mg->mc->lock);
    }
    return true;
}

/* Is the line at @pa in DRAM that KeyID 0 encrypts? */
static bool mktme_mc_line_encrypted(MktmeGuest *mg, hwaddr pa)
{
    RAMBlock *rb = NULL;

    if (!mktme_mc_is_ram(pa, &rb) || !mktme_ram_block_encrypted(mg, rb)) {
        return false;
    }
    return !mg->platform ||
           mktme_keyid_xform(mg->platform, 0, pa) == MKTME_XFORM_VM_KEY;
}

bool mktme_mc_dram_read(MktmeGuest *mg, hwaddr pa, uint8_t *buf,
                        size_t len, Error **errp)
{
    assert(QEMU_IS_ALIGNED(pa | len, MKTME_LINE_SIZE));
    for (size_t off = 0, n; off < len; off += n) {
        MemTxResult r;

        n = MIN(len - off, TARGET_PAGE_SIZE - ((pa + off) &
                                               ~TARGET_PAGE_MASK));
        r = address_space_read(&address_space_memory, pa + off,
                               MEMTXATTRS_UNSPECIFIED, buf + off, n);
        if (r != MEMTX_OK) {
            error_setg(errp, "mktme: cannot read guest memory at 0x%"
                       HWADDR_PRIx, pa + off);
            return false;
        }
        if (mktme_mc_line_encrypted(mg, pa + off)) {
            mktme_xts_encrypt_lines(mg->xts0, pa + off, buf + off,
                                    buf + off, n / MKTME_LINE_SIZE);
        }
    }
    return true;
}
