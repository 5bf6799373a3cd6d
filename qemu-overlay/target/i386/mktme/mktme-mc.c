/*
 * The emulated TME-MK memory controller (TCG and qtest).
 *
 * Memory model (docs/system/i386/mktme.rst):
 *   R        guest RAM as QEMU's RAM blocks hold it: memory as read
 *            through KeyID 0, the hypervisor's view;
 *   E_k/D_k  AES-XTS encryption/decryption with KeyID k's key, per 64-byte
 *            line, the tweak being the line's physical address without
 *            KeyID bits; identity for plaintext KeyIDs;
 *   E_0(R)   the DRAM image.
 * A read through KeyID k returns D_k(E_0(R)); a write of P through KeyID
 * k stores R := D_0(E_k(P)).  KeyID 0 accesses are plain RAM accesses,
 * and so are accesses through KeyIDs that read what KeyID 0 reads.  The
 * vCPU's accesses through other KeyIDs go to plaintext shadows of their
 * pages, mapped by the TLB (mktme-shadow.c); the rest, and every page
 * the shadows cannot take, go through the crypto region, line by line
 * (mktme-mc-crypto.c).
 *
 * This file: the IOMMU region of KeyIDs 1..n, which sends each page to
 * RAM, to its shadow or to the crypto region; setting the controller
 * up, key table and activation changes, and its teardown.
 *
 * Copyright (c) 2026 The qemu-mktme authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "cpu.h"
#include "mktme-compat.h"
#include "exec/cputlb.h"
#include "hw/core/cpu.h"
#include "system/tcg.h"
#include "qemu/main-loop.h"
#include "mktme.h"
#include "trace.h"

/*
 * Where a translation continues.  TCG (IOMMU_NONE, on the vCPU's own
 * thread) resolves the section in the vCPU's address space of
 * @iommu_idx (0 normal, 1 SMM), so it must be that one: both hold the
 * windows (mktme-cpumem.c).  Everything else follows target_as itself.
 */
static AddressSpace *mktme_mc_target_as(IOMMUAccessFlags flag, int iommu_idx)
{
    if (flag == IOMMU_NONE && current_cpu) {
        return cpu_get_address_space(current_cpu, iommu_idx);
    }
    return mktme_cpu_as();
}

static IOMMUTLBEntry mktme_mc_translate(IOMMUMemoryRegion *iommu,
                                        hwaddr addr, IOMMUAccessFlags flag,
                                        int iommu_idx)
{
    MktmeMc *mc = container_of(iommu, MktmeMc, iommu);
    MktmeGuest *mg = mc->mg;
    MktmePlatform *p = mg->platform;
    MktmeShadow *sh = mc->shadow;
    hwaddr gpa = mc->base + addr;
    uint16_t keyid = mktme_pa_keyid(p, gpa);
    hwaddr pa = mktme_pa_strip(p, gpa);
    bool fast = keyid != 0 && mktme_shadow_usable(sh, flag);
    int64_t slot = fast ? mktme_shadow_find(sh, pa, keyid) : -1;
    MktmeXform x, x0;
    bool ram;
    IOMMUTLBEntry e = {
        .target_as = mktme_mc_target_as(flag, iommu_idx),
        .iova = addr & TARGET_PAGE_MASK,
        .translated_addr = (MKTME_MC_CRYPTO_WINDOW + gpa) & TARGET_PAGE_MASK,
        .addr_mask = ~TARGET_PAGE_MASK,
        .perm = IOMMU_RW,
    };

    /*
     * Targets stay in the vCPUs' memory (mktme-cpumem.c): TCG resolves
     * the section of an IOMMU translation in the CPU's own address
     * space.  A page with a
     * shadow (the common case of a TLB fill) needs no more: key and
     * activation changes drop every shadow.
     */
    if (slot < 0) {
        x = mktme_keyid_xform(p, keyid, pa);
        if (keyid == 0 || x == MKTME_XFORM_INVALID) {
            return e;
        }
        x0 = mktme_mc_xform0(mg, pa, &ram);
        if (x != MKTME_XFORM_KEY && x == x0) {
            /* This KeyID reads what KeyID 0 reads: plain RAM, full speed. */
            e.translated_addr = pa & TARGET_PAGE_MASK;
            return e;
        }
        if (fast && ram) {
            slot = mktme_shadow_get(sh, pa, keyid);
        }
    }
    if (slot >= 0) {
        /* A plaintext shadow of the page, mapped straight. */
        e.translated_addr = mktme_shadow_slot_addr(sh, slot);
    }
    return e;
}

/*
 * Nothing outside TCG may map KeyIDs (VFIO would replay all 2^40 pages
 * of them): no replay.
 */
static void mktme_mc_replay(IOMMUMemoryRegion *iommu, IOMMUNotifier *n)
{
}

/*
 * The KeyID is in the address, not in the attributes; the index is the
 * vCPU's address space (X86ASIdx_MEM, or X86ASIdx_SMM in SMM).
 */
static int mktme_mc_attrs_to_index(IOMMUMemoryRegion *iommu, MemTxAttrs attrs)
{
    return attrs.secure ? X86ASIdx_SMM : X86ASIdx_MEM;
}

static int mktme_mc_num_indexes(IOMMUMemoryRegion *iommu)
{
    return 2;
}

static void mktme_iommu_memory_region_class_init(ObjectClass *klass,
                                                 MktmeClassData data)
{
    IOMMUMemoryRegionClass *imrc = IOMMU_MEMORY_REGION_CLASS(klass);

    imrc->translate = mktme_mc_translate;
    imrc->replay = mktme_mc_replay;
    imrc->attrs_to_index = mktme_mc_attrs_to_index;
    imrc->num_indexes = mktme_mc_num_indexes;
}

static const TypeInfo mktme_iommu_memory_region_info = {
    .name = TYPE_MKTME_IOMMU_MEMORY_REGION,
    .parent = TYPE_IOMMU_MEMORY_REGION,
    .class_init = mktme_iommu_memory_region_class_init,
};

static void mktme_mc_register_types(void)
{
    type_register_static(&mktme_iommu_memory_region_info);
}

type_init(mktme_mc_register_types)

bool mktme_mc_init(MktmeGuest *mg, Error **errp)
{
    MktmePlatform *p = mg->platform;
    MktmeMc *mc;
    hwaddr top;

    if (!mktme_mc_rekey(mg, errp) || !p) {
        return mg->xts0 != NULL;
    }
    mc = mg->mc = g_new0(MktmeMc, 1);
    mc->mg = mg;
    mc->ciphers = g_new0(MktmeCipher *, p->cfg.max_keys + 1);
    qemu_mutex_init(&mc->lock);
    mc->base = 1ULL << (p->cfg.phys_bits - p->cfg.max_keyid_bits);
    top = 1ULL << p->cfg.phys_bits;

    memory_region_init_io(&mc->crypto_mr, OBJECT(mg), &mktme_mc_crypto_ops,
                          mg, "mktme-crypto", top);
    /*
     * Not lockless: its pass-through to devices needs the BQL and the
     * vCPU's state (icount).  The BQL serialises its line updates; the
     * page's stripe orders them with the fast path's.
     */
    memory_region_add_subregion_overlap(mktme_cpu_memory(),
                                        MKTME_MC_CRYPTO_WINDOW,
                                        &mc->crypto_mr, 1);
    memory_region_init_iommu(&mc->iommu, sizeof(mc->iommu),
                             TYPE_MKTME_IOMMU_MEMORY_REGION, OBJECT(mg),
                             "mktme-keyids", top - mc->base);
    memory_region_set_enabled(MEMORY_REGION(&mc->iommu), false);
    memory_region_add_subregion_overlap(get_system_memory(), mc->base,
                                        MEMORY_REGION(&mc->iommu), 1);
    if (tcg_enabled()) {
        mc->shadow = mktme_shadow_new(mg->shadow_size, mg->shadow_write_back,
                                      mktme_mc_shadow_ciphers, mg,
                                      &mc->shadow_off);
    } else {
        mc->shadow_off = g_strdup("not TCG");
    }
    return true;
}

void mktme_mc_update(MktmeGuest *mg)
{
    MktmeMc *mc = mg->mc;
    CPUState *cs;
    unsigned bits;

    if (!mc) {
        return;
    }
    bits = mktme_keyid_bits(mg->platform);
    if (MEMORY_REGION(&mc->iommu)->enabled != !!bits) {
        trace_mktme_mc_map(bits, mktme_keyid_shift(mg->platform),
                           mktme_nr_keyids(mg->platform));
        memory_region_set_enabled(MEMORY_REGION(&mc->iommu), bits);
    }
    /*
     * Slots were made with the old keys and activation, and TLBs map
     * KeyIDs straight to RAM that may not any more.  From a vCPU (PCONFIG,
     * WRMSR: the helper ends the TB), every vCPU's TLB is flushed before
     * this one runs its next instruction.
     */
    mktme_shadow_drop_all(mc->shadow);
    if (current_cpu) {
        tlb_flush_all_cpus_synced(current_cpu);
    } else {
        CPU_FOREACH(cs) {
            tlb_flush(cs);
        }
    }
    trace_mktme_mc_update(mg->platform->generation);
}

void mktme_mc_key_programmed(MktmeGuest *mg)
{
    if (mg->mc) {
        mktme_shadow_prefault(mg->mc->shadow);
    }
}

void mktme_mc_cleanup(MktmeGuest *mg)
{
    MktmeMc *mc = mg->mc;

    if (mc) {
        mktme_shadow_free(mc->shadow);
        g_free(mc->shadow_off);
        for (unsigned i = 0; i < mg->platform->nr_entries; i++) {
            if (mc->ciphers[i]) {
                mktme_cipher_free(mc->ciphers[i]);
            }
        }
        g_free(mc->ciphers);
        qemu_mutex_destroy(&mc->lock);
        /* The regions belong to the object and go with it. */
        g_free(mc);
        mg->mc = NULL;
    }
    mktme_xts_key_free(mg->xts0);
    mg->xts0 = NULL;
}
