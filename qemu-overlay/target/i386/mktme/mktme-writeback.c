/*
 * The TME-MK fast path's write-back slots.
 *
 * A write-through slot (mktme-shadow.c) sends every store to
 * slot_write(), which updates R at once: exact, but a store then costs
 * two AES line transforms and an MMIO dispatch.  A page used through one
 * KeyID only, in private RAM, gets a write-back slot instead: the pool
 * is mapped a second time, as RAM, right above the ROM device view, and
 * TCG stores into the slot directly.  R then lags the slot, and whatever
 * reads R other than through the slot first brings it up to date
 * ("syncs" the page):
 *
 * - accesses of the memory core (DMA, address_space_*(), ld/st*_phys,
 *   address_space_map(), MemoryRegionCache, which maps no RAM directly
 *   while a watcher is installed) sync the pages they touch, before they
 *   touch them (RAMWatchOps.accessing);
 * - migration syncs every write-back slot at each dirty bitmap sync and
 *   marks what it wrote dirty (mktme-watch.c); a VM that stops syncs
 *   everything (savevm, dumps, the last stage of migration), and so do
 *   key and activation changes, before the keys change;
 * - a vCPU TLB entry must never map R of a page with a write-back slot.
 *   A fill that would (RAMWatchOps.installing: KeyID 0, a KeyID that
 *   reads what KeyID 0 reads) first demotes the page in an exclusive
 *   section: sync, the slot out of the index and out of every TLB; the
 *   page gets write-through slots until the next epoch.  A fill for a
 *   second KeyID of the page gets the crypto region, which syncs.
 *
 * A sync compares each line of the slot with a snapshot of the view R
 * holds (sh->snap) and writes back the lines that differ, R :=
 * D_0(E_k(P)), updating the snapshot.  vCPUs may store into the slot
 * meanwhile: a store a sync misses differs from the snapshot at the next
 * one.  So a sync never waits for vCPUs, and DMA that wrote some lines
 * of a page (refreshing slot and snapshot) is never undone by a later
 * sync of the others.
 *
 * Which TLBs may map R of a page: sh->rmap, per RAM page: 0 none since
 * the last epoch (which drops guest RAM from every TLB), cpu + 1 that
 * vCPU only, RMAP_MANY several; tagged with the epoch's number, so that
 * an epoch forgets them all by counting (sh->rmap_gen).  A fill picks
 * write-back only when no other vCPU may map R (and drops its own
 * entries).  It sets the page's wb bit, then reads rmap; an installing
 * vCPU writes rmap, then reads the wb bit, with full barriers between:
 * one sees the other.
 *
 * Where that one vCPU's TLB has R: sh->rwhere, per RAM page, the page's
 * virtual address and a bitmap of MMU indexes (low bits), or 0 for "not
 * one address" (valid while rmap names one vCPU).  With it, dropping the
 * entries of R (a fill that picks write-back) or write-protecting them
 * (a page's first slot) looks at a few TLB entries, not at all of them
 * in every MMU index: R pages written through KeyID 0 before their
 * first KeyID-k fill cost about what the crypto does, not 4x more.
 *
 * Demotion, and what TLB fills record in rmap and rwhere, are in
 * mktme-demote.c.
 *
 * Copyright (c) 2026 The qemu-mktme authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/bitops.h"
#include "qemu/madvise.h"
#include "qemu/main-loop.h"
#include "qemu/memalign.h"
#include "qemu/rcu.h"
#include "mktme-compat.h"
#include "exec/cputlb.h"
#include "exec/translation-block.h"
#include "hw/core/cpu.h"
#include "mktme-writeback-int.h"
#include "trace.h"

/* Fills refused write-back because some TLB maps R, between epochs */
#define WB_REFUSALS_PER_EPOCH 256

static bool nowb(MktmeShadow *sh, uint64_t page)
{
    return qatomic_read(&sh->nowb[page]) == qatomic_read(&sh->rmap_gen);
}

void shadow_wb_init(MktmeShadow *sh)
{
    size_t size = (size_t)sh->nr_slots * SHADOW_PAGE;

    sh->demote = g_array_new(false, false, sizeof(uint64_t));
    if (!sh->wb_on) {
        return;
    }
    /*
     * A RAM device: dumps and guest memory maps leave it out, migration
     * does not send it; TCG maps it like RAM.
     */
    memory_region_init_ram_device_ptr(&sh->pool_rw, NULL, "mktme-shadow-rw",
                                      size, sh->pool_host);
    sh->pool_rw_ram = memory_region_get_ram_addr(&sh->pool_rw);
    /*
     * Huge pages where the host has them, as the pool: fills stream to
     * it.  Faulted in with the pool (mktme_shadow_prefault()).
     */
    sh->snap = qemu_memalign(QEMU_VMALLOC_ALIGN, size);
    qemu_madvise(sh->snap, size, QEMU_MADV_HUGEPAGE);
    sh->rmap = g_new0(uint16_t, sh->writable_pages);
    /* (the host allocates the pages of it that entries are recorded in) */
    sh->rwhere = g_new0(uint64_t, sh->writable_pages);
    sh->rmap_gen = 1;
    sh->wb = bitmap_new(sh->writable_pages);
    sh->nowb = g_malloc0(sh->writable_pages);
    memory_region_add_subregion_overlap(mktme_cpu_memory(),
                                        MKTME_SHADOW_WINDOW + size,
                                        &sh->pool_rw, 1);
}

void shadow_wb_cleanup(MktmeShadow *sh)
{
    g_array_free(sh->demote, true);
    if (!sh->wb_on) {
        return;
    }
    /* (RAM block notifiers run as the view goes: nothing to sync then) */
    qatomic_set(&sh->wb_slots, 0);
    qatomic_set(&sh->wb_on, false);
    memory_region_del_subregion(mktme_cpu_memory(), &sh->pool_rw);
    object_unparent(OBJECT(&sh->pool_rw));
    /* Plaintext of guest pages */
    mktme_wipe(sh->snap, (size_t)sh->touched * SHADOW_PAGE);
    qemu_vfree(sh->snap);
    g_free(sh->rmap);
    g_free(sh->rwhere);
    g_free(sh->wb);
    g_free(sh->nowb);
}

bool shadow_wb_choose(MktmeShadow *sh, MktmePage *pg, RAMBlock *rb)
{
    uint64_t page = pg->ram >> TARGET_PAGE_BITS;
    uint8_t me, v;
    uint16_t raw;

    /*
     * Shared RAM: other processes read it as it is.  Code on R: TCG
     * translated it through KeyID 0.  @nowb: demoted since the epoch.
     */
    if (!sh->wb_on || qatomic_read(&sh->off) || pg->r_code ||
        page >= sh->writable_pages || qemu_ram_is_shared(rb) ||
        nowb(sh, page)) {
        return false;
    }
    me = rmap_of(current_cpu);
    if (me == RMAP_MANY) {
        return false;   /* (the 255th vCPU and up cannot say "only me") */
    }
    set_bit_atomic(page, sh->wb);
    smp_mb();   /* wb bit, then rmap: pairs with shadow_wb_installing() */
    v = rmap_get(sh, page, &raw);
    if (v != RMAP_NONE && v != me) {
        /* Another vCPU's TLB may map R: an epoch will forget it. */
        clear_bit_atomic(page, sh->wb);
        if (qatomic_fetch_inc(&sh->wb_refusals) + 1 ==
            WB_REFUSALS_PER_EPOCH) {
            shadow_request_epoch(sh);
        }
        return false;
    }
    if (v == me) {
        /* Our own entries of R go now (none of them is in use). */
        uint64_t where = qatomic_read(&sh->rwhere[page]);

        if (where) {
            tlb_flush_host_range_at(current_cpu, where & TARGET_PAGE_MASK,
                                    where & ~TARGET_PAGE_MASK, pg->r,
                                    SHADOW_PAGE);
        } else {
            tlb_flush_host_range(current_cpu, pg->r, SHADOW_PAGE);
        }
    }
    return true;
}

void shadow_wb_reset_dirty(MktmeShadow *sh, ram_addr_t ram, void *host)
{
    uint64_t page = ram >> TARGET_PAGE_BITS, where;
    uint16_t raw;
    uint8_t v;
    CPUState *cs;

    if (!sh->wb_on || page >= sh->writable_pages) {
        tlb_reset_dirty_range_all(ram & TARGET_PAGE_MASK, SHADOW_PAGE);
        return;
    }
    /*
     * The caller cleared the page's DIRTY_MEMORY_CODE bit (a full
     * barrier).  A vCPU that records itself in rmap (NONE -> it) has a
     * full barrier before it checks that bit: if we read NONE here, it
     * sees the bit clear and makes its entry TLB_NOTDIRTY itself.  Later
     * changes of rwhere by that vCPU precede its TLB lock, in which it
     * checks the bit again: the re-check below, after we took that lock,
     * sees them, or the vCPU saw the bit clear.
     */
    v = rmap_get(sh, page, &raw);
    if (v == RMAP_NONE) {
        return;     /* no TLB has mapped R since the last epoch */
    }
    where = qatomic_read(&sh->rwhere[page]);
    if (v != RMAP_MANY && where) {
        CPU_FOREACH(cs) {
            if (rmap_of(cs) != v) {
                continue;
            }
            tlb_reset_dirty_at(cs, where & TARGET_PAGE_MASK,
                               where & ~TARGET_PAGE_MASK, host, SHADOW_PAGE);
            /*
             * An entry installed before we took its TLB lock recorded
             * itself before that: if rmap and rwhere still say what they
             * said, we looked at every entry there is.  A later one saw
             * the bit clear.
             */
            if (qatomic_read(&sh->rmap[page]) == raw &&
                qatomic_read(&sh->rwhere[page]) == where) {
                return;
            }
            break;
        }
    }
    tlb_reset_dirty_range_all(ram & TARGET_PAGE_MASK, SHADOW_PAGE);
}

/*
 * Write lines [first, first + n) of slot @s's view @view to R, each line
 * stored once with its final bytes.  No TLB maps R of a write-back page
 * (shadow_wb_installing demotes it first), and DMA and migration copy R
 * with plain memcpy, so nothing needs copy_line's 8-byte stores here.
 */
static void write_back_run(MktmeShadow *sh, MktmePage *pg, MktmeSlot *s,
                           const MktmeXtsKey *c0, const MktmeXtsKey *ck,
                           const uint8_t *view, unsigned first, unsigned n)
{
    unsigned off = first * MKTME_LINE_SIZE, len = n * MKTME_LINE_SIZE;
    uint32_t i = s - sh->slots;

    if (c0 || ck) {
        mktme_xts_recrypt_lines(ck, c0, pg->pa + off, pg->r + off,
                                view + off, n);
    } else {
        copy_line(pg->r + off, view + off, len);
    }
    /* The page's other slots (DEAD ones, or write-through) */
    for (int32_t j = pg->slots; j >= 0; j = sh->slots[j].next) {
        if (j != i) {
            shadow_refresh(sh, &sh->slots[j], off, len, false);
        }
    }
    if (pg->r_code) {
        tb_invalidate_phys_range(pg->ram + off, pg->ram + off + len - 1);
    }
    cpu_physical_memory_set_dirty_range(pg->ram + off, len,
                                        DIRTY_CLIENTS_NOCODE);
}

/*
 * Write back what slot @s holds and R lacks.  Stripe, RCU read lock
 * held.  @last: the slot is recycled next, in an epoch (exclusive work,
 * or every vCPU stopped: no vCPU stores to the slot): its lines go from
 * the slot straight to R, and its snapshot needs no update.  Otherwise
 * vCPUs may be storing to the slot meanwhile: each changed line is
 * copied once, and that copy is both what goes to R and what the
 * snapshot says.
 */
void shadow_wb_sync_slot(MktmeShadow *sh, MktmePage *pg, MktmeSlot *s,
                         bool last)
{
    uint32_t i = s - sh->slots;
    const uint8_t *host = slot_host(sh, i);
    uint8_t *snap = slot_snap(sh, i);
    const MktmeXtsKey *c0 = s->c0, *ck = s->ck;
    uint8_t buf[SHADOW_PAGE] QEMU_UNINITIALIZED;
    const uint8_t *view = last ? host : buf;
    unsigned lines = SHADOW_PAGE / MKTME_LINE_SIZE, first = 0, n = 0;
    unsigned total = 0;

    if (qatomic_read(&pg->gone) || !memcmp(host, snap, SHADOW_PAGE)) {
        /* (R's block is being unplugged; a racing store: the next sync) */
        return;
    }
    if (s->state == SLOT_DEAD) {
        /* Stores that raced a key change: the keys now in force */
        sh->ciphers(sh->opaque, s->pa, s->keyid, &c0, &ck);
    }
    for (unsigned l = 0; l <= lines; l++) {
        unsigned off = l * MKTME_LINE_SIZE;
        bool changed = false;

        if (l < lines &&
            memcmp(host + off, snap + off, MKTME_LINE_SIZE) != 0) {
            if (!last) {
                read_line(buf + off, host + off, MKTME_LINE_SIZE);
                memcpy(snap + off, buf + off, MKTME_LINE_SIZE);
            }
            changed = true;
        }
        if (changed) {
            if (!n) {
                first = l;
            }
            n++;
        } else if (n) {
            write_back_run(sh, pg, s, c0, ck, view, first, n);
            total += n;
            n = 0;
        }
    }
    if (!last) {
        mktme_wipe(buf, sizeof(buf));
    }
    if (total) {
        qatomic_add(&sh->write_backs, total);
        trace_mktme_shadow_write_back(pg->pa, total);
    }
}

void shadow_wb_sync_page_locked(MktmeShadow *sh, MktmePage *pg)
{
    RCU_READ_LOCK_GUARD();      /* the ciphers of DEAD slots */
    for (int32_t j = pg->slots; j >= 0; j = sh->slots[j].next) {
        if (sh->slots[j].wb) {
            shadow_wb_sync_slot(sh, pg, &sh->slots[j], false);
        }
    }
}

/* Sync R page @page, if it has a write-back slot.  Stripes not held. */
void shadow_wb_sync_page(MktmeShadow *sh, uint64_t page)
{
    QemuRecMutex *stripe;
    MktmePage *pg = shadow_lock_page_of(sh, page << TARGET_PAGE_BITS, &stripe);

    if (pg) {
        shadow_wb_sync_page_locked(sh, pg);
        qemu_rec_mutex_unlock(stripe);
    }
}

void shadow_wb_accessing(ram_addr_t ram, ram_addr_t len)
{
    MktmeShadow *sh = shadow_watched();
    ram_addr_t end = ram + len;

    if (!sh || !sh->wb_on || !qatomic_read(&sh->wb_slots)) {
        return;
    }
    for (ram_addr_t a = ram & TARGET_PAGE_MASK; a < end; a += SHADOW_PAGE) {
        uint64_t page = a >> TARGET_PAGE_BITS;

        if (page < sh->writable_pages && test_bit(page, sh->wb)) {
            shadow_wb_sync_page(sh, page);
        }
    }
}

void shadow_wb_sync_all(MktmeShadow *sh, bool stripes_held)
{
    GArray *pages;
    MktmePage *pg;

    if (!sh || !sh->wb_on || !qatomic_read(&sh->wb_slots)) {
        return;
    }
    /* The pages with a write-back slot, then each with its stripe */
    pages = g_array_new(false, false, sizeof(ram_addr_t));
    qemu_mutex_lock(&sh->lock);
    for (pg = shadow_page_next(sh, NULL); pg; pg = shadow_page_next(sh, pg)) {
        if (shadow_page_is_wb(sh, pg->ram)) {
            g_array_append_val(pages, pg->ram);
        }
    }
    qemu_mutex_unlock(&sh->lock);
    for (guint n = 0; n < pages->len; n++) {
        ram_addr_t ram = g_array_index(pages, ram_addr_t, n);

        if (!stripes_held) {
            shadow_wb_sync_page(sh, ram >> TARGET_PAGE_BITS);
            continue;
        }
        qemu_mutex_lock(&sh->lock);
        pg = shadow_page_of(sh, ram);
        qemu_mutex_unlock(&sh->lock);
        if (pg) {
            shadow_wb_sync_page_locked(sh, pg);
        }
    }
    g_array_free(pages, true);
}

void mktme_shadow_sync_all(MktmeShadow *sh)
{
    shadow_wb_sync_all(sh, false);
}

void shadow_wb_slot_done(MktmeShadow *sh, MktmePage *pg, MktmeSlot *s)
{
    qatomic_set(&s->wb, false);
    qatomic_dec(&sh->wb_slots);
    if (!page_has_wb(sh, pg)) {
        clear_bit_atomic(pg->ram >> TARGET_PAGE_BITS, sh->wb);
    }
}
