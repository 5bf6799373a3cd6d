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
#include "mktme-shadow-int.h"
#include "trace.h"

#define RMAP_NONE   0
#define RMAP_MANY   0xff

/* sh->rwhere: MMU index bits below the page address; 0: not known */
#define RWHERE_IDX_BITS 12
QEMU_BUILD_BUG_ON(TARGET_PAGE_BITS < RWHERE_IDX_BITS);

/* Fills refused write-back because some TLB maps R, between epochs */
#define WB_REFUSALS_PER_EPOCH 256

static uint8_t rmap_of(CPUState *cs)
{
    return cs->cpu_index < RMAP_MANY - 1 ? cs->cpu_index + 1 : RMAP_MANY;
}

/* Who may map R page @page, as of this epoch */
static uint8_t rmap_get(MktmeShadow *sh, uint64_t page, uint16_t *raw)
{
    uint16_t v = qatomic_read(&sh->rmap[page]);

    *raw = v;
    return v >> 8 == qatomic_read(&sh->rmap_gen) ? v & 0xff : RMAP_NONE;
}

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

/* Is some slot of @pg in write-back mode?  Stripe held. */
static bool page_has_wb(MktmeShadow *sh, MktmePage *pg)
{
    for (int32_t j = pg->slots; j >= 0; j = sh->slots[j].next) {
        if (sh->slots[j].wb) {
            return true;
        }
    }
    return false;
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
 * the slot straight to R, and its snapshot needs no update.  Otherwise vCPUs may
 * be storing to the slot meanwhile: each changed line is copied once,
 * and that copy is both what goes to R and what the snapshot says.
 */
static void sync_slot(MktmeShadow *sh, MktmePage *pg, MktmeSlot *s,
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
            sync_slot(sh, pg, &sh->slots[j], false);
        }
    }
}

/* Sync R page @page, if it has a write-back slot.  Stripes not held. */
static void sync_page(MktmeShadow *sh, uint64_t page)
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
            sync_page(sh, page);
        }
    }
}

void shadow_wb_sync_all(MktmeShadow *sh, bool stripes_held)
{
    GArray *pages;
    GHashTableIter it;
    gpointer key, val;

    if (!sh || !sh->wb_on || !qatomic_read(&sh->wb_slots)) {
        return;
    }
    /* The pages with a write-back slot, then each with its stripe */
    pages = g_array_new(false, false, sizeof(ram_addr_t));
    qemu_mutex_lock(&sh->lock);
    g_hash_table_iter_init(&it, sh->pages);
    while (g_hash_table_iter_next(&it, &key, &val)) {
        ram_addr_t ram = ((MktmePage *)val)->ram;

        if (shadow_page_is_wb(sh, ram)) {
            g_array_append_val(pages, ram);
        }
    }
    qemu_mutex_unlock(&sh->lock);
    for (guint n = 0; n < pages->len; n++) {
        ram_addr_t ram = g_array_index(pages, ram_addr_t, n);
        MktmePage *pg;

        if (!stripes_held) {
            sync_page(sh, ram >> TARGET_PAGE_BITS);
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

/*
 * Take @pg out of write-back mode: R current, its write-back slots DEAD
 * (recycled by the next epoch) and out of every TLB.  No other vCPU
 * runs; stripe held.
 */
static void demote_locked(MktmeShadow *sh, MktmePage *pg, bool now)
{
    uint64_t page = pg->ram >> TARGET_PAGE_BITS;

    shadow_wb_sync_page_locked(sh, pg);
    qemu_mutex_lock(&sh->lock);
    shadow_kill_page_locked(sh, pg);
    qemu_mutex_unlock(&sh->lock);
    for (int32_t j = pg->slots; j >= 0; j = sh->slots[j].next) {
        MktmeSlot *s = &sh->slots[j];
        CPUState *cs;

        if (s->wb) {
            CPU_FOREACH(cs) {
                tlb_flush_host_range(cs, slot_host(sh, j), SHADOW_PAGE);
            }
            shadow_wb_slot_done(sh, pg, s);
        }
    }
    qatomic_set(&sh->nowb[page], sh->rmap_gen);
    qatomic_inc(&sh->demotions);
    trace_mktme_shadow_demote(pg->pa, now);
}

/* Demote R page @page now: no other vCPU runs, no stripe held. */
static void demote_now(MktmeShadow *sh, uint64_t page)
{
    ram_addr_t ram = page << TARGET_PAGE_BITS;
    QemuRecMutex *stripe;
    MktmePage *pg;

    qemu_mutex_lock(&sh->lock);
    pg = shadow_page_of(sh, ram);
    qemu_mutex_unlock(&sh->lock);
    if (!pg) {
        /* No fill runs now: a bit without a slot is stale (defensive) */
        clear_bit_atomic(page, sh->wb);
        return;
    }
    stripe = shadow_stripe(sh, pg->pa);
    qemu_rec_mutex_lock(stripe);
    if (page_has_wb(sh, pg)) {
        demote_locked(sh, pg, true);
    } else {
        clear_bit_atomic(page, sh->wb);
    }
    qemu_rec_mutex_unlock(stripe);
}

/* Demote @page in an epoch that runs before @cs's next TB */
static void demote_later(MktmeShadow *sh, CPUState *cs, uint64_t page)
{
    qemu_mutex_lock(&sh->lock);
    g_array_append_val(sh->demote, page);
    qemu_mutex_unlock(&sh->lock);
    async_safe_run_on_cpu(cs, shadow_epoch_work, RUN_ON_CPU_HOST_PTR(sh));
}

/*
 * A TLB entry of @cs is about to map R page @page, which has a
 * write-back slot: demote it first.  Returns false if the entry may be
 * installed with the page still in write-back mode.
 */
static bool demote(MktmeShadow *sh, CPUState *cs, uint64_t page,
                   bool may_wait, uintptr_t ra)
{
    bool locked;

    if (!(cs->tcg_cflags & CF_PARALLEL) || cpu_in_exclusive_context(cs)) {
        /* No other vCPU runs */
        demote_now(sh, page);
        return true;
    }
    if (!cs->running) {
        /* (Not from generated code or a helper: no caller does this.) */
        sync_page(sh, page);
        demote_later(sh, cs, page);
        return false;
    }
    if (!may_wait) {
        /*
         * A TB is being translated and may hold page locks, which the
         * other vCPUs (and holders of the page's stripe) may wait for:
         * give the translation up, demote, translate again.
         */
        demote_later(sh, cs, page);
        cpu_loop_exit(cs);
    }
    if (ra && !bql_locked()) {
        /*
         * From generated code or a helper: run the instruction again
         * after the demotion, so that nothing of this access (a page it
         * crossed, a host pointer) outlives the exclusive section.
         */
        demote_later(sh, cs, page);
        cpu_loop_exit_restore(cs, ra);
    }
    /*
     * No return address (TB lookup, interrupt and exception delivery,
     * with the BQL, which another vCPU may wait for): demote here, as
     * ptw_setl_slow() does; the epochs meanwhile leave alone what this
     * access may already use (@midaccess).
     */
    locked = bql_locked();
    qatomic_inc(&sh->midaccess);
    cpu_exec_end(cs);
    if (locked) {
        bql_unlock();
    }
    start_exclusive();
    demote_now(sh, page);
    end_exclusive();
    cpu_exec_start(cs);
    if (locked) {
        bql_lock();
    }
    qatomic_dec(&sh->midaccess);
    return true;
}

/* Record that @cs's TLB gets an entry for @addr, @mmu_idx of R @page */
static void rwhere_add(MktmeShadow *sh, uint64_t page, bool first,
                       vaddr addr, int mmu_idx)
{
    uint64_t old = qatomic_read(&sh->rwhere[page]), n;

    if (mmu_idx >= RWHERE_IDX_BITS) {
        n = 0;
    } else if (first) {
        n = addr | 1u << mmu_idx;
    } else if (old && (old & TARGET_PAGE_MASK) == addr) {
        n = old | 1u << mmu_idx;
    } else {
        n = 0;
    }
    if (n != old) {
        qatomic_set(&sh->rwhere[page], n);
    }
}

void shadow_wb_installing(CPUState *cs, vaddr addr, int mmu_idx,
                          ram_addr_t ram, bool may_wait, uintptr_t ra)
{
    MktmeShadow *sh = shadow_watched();
    uint64_t page = ram >> TARGET_PAGE_BITS;
    uint8_t me;

    if (!sh || !sh->wb_on || page >= sh->writable_pages) {
        return;
    }
    me = rmap_of(cs);
    for (;;) {
        uint16_t raw;
        uint8_t v = rmap_get(sh, page, &raw);

        if (v != me && v != RMAP_MANY) {
            /* Record this TLB, then look for a write-back slot. */
            uint16_t gen = (uint16_t)qatomic_read(&sh->rmap_gen) << 8;

            while (v != me && v != RMAP_MANY) {
                uint16_t n = gen | (v == RMAP_NONE ? me : RMAP_MANY);
                uint16_t o = qatomic_cmpxchg(&sh->rmap[page], raw, n);

                if (o == raw) {
                    if (v == RMAP_NONE) {
                        /* (only the vCPU rmap names writes rwhere) */
                        rwhere_add(sh, page, true, addr, mmu_idx);
                    }
                    break;
                }
                v = rmap_get(sh, page, &raw);
            }
            smp_mb();   /* rmap, then wb bit: pairs with shadow_wb_choose() */
        } else if (v == me) {
            rwhere_add(sh, page, false, addr, mmu_idx);
        }
        if (likely(!test_bit(page, sh->wb))) {
            return;
        }
        if (!demote(sh, cs, page, may_wait, ra)) {
            return;
        }
        /* An epoch may have run meanwhile and forgotten this TLB. */
    }
}

void shadow_wb_epoch_locked(MktmeShadow *sh)
{
    GArray *pages;
    CPUState *cs;

    if (!sh->wb_on) {
        return;
    }
    if (qatomic_read(&sh->midaccess)) {
        /*
         * A vCPU stopped halfway through an access may hold a host
         * pointer into a slot or map R: change nothing it may use.
         * DEAD write-back slots stay so (synced by whoever reads R).
         */
        return;
    }

    /* DEAD write-back slots: the last stores, then write-through mode */
    for (uint32_t i = 0; i < sh->nr_slots; i++) {
        MktmeSlot *s = &sh->slots[i];

        if (s->wb && s->state == SLOT_DEAD) {
            MktmePage *pg = s->page;

            WITH_RCU_READ_LOCK_GUARD() {
                sync_slot(sh, pg, s, true);
            }
            shadow_wb_slot_done(sh, pg, s);
        }
    }

    /*
     * Forget which TLBs map guest RAM: drop it from all of them.  The
     * host range of everything: RAM and ROM devices, not MMIO.
     */
    CPU_FOREACH(cs) {
        tlb_flush_host_range(cs, NULL, SIZE_MAX);
    }
    qatomic_set(&sh->rmap_gen, sh->rmap_gen + 1);
    if (sh->rmap_gen == 0) {
        /* Numbers wrapped: forget the old ones for real */
        memset(sh->rmap, 0, sh->writable_pages * sizeof(*sh->rmap));
        memset(sh->nowb, 0, sh->writable_pages);
        sh->rmap_gen = 1;
    }
    qatomic_set(&sh->wb_refusals, 0);

    /*
     * Pages a vCPU waits to map otherwise: after the count, so that they
     * stay write-through until the next epoch.
     */
    qemu_mutex_lock(&sh->lock);
    pages = sh->demote;
    sh->demote = g_array_new(false, false, sizeof(uint64_t));
    qemu_mutex_unlock(&sh->lock);
    for (guint n = 0; n < pages->len; n++) {
        demote_now(sh, g_array_index(pages, uint64_t, n));
    }
    g_array_free(pages, true);
}
