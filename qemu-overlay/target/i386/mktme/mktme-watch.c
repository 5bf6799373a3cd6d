/*
 * The TME-MK fast path's view of the rest of QEMU: who else writes the
 * guest RAM that slots shadow, and when the memory map changes.
 *
 * Slots shadow R pages whose DIRTY_MEMORY_CODE bit is kept clean (as
 * TCG keeps it for pages with code, and with TCG's help: RAMWatchOps,
 * include/exec/cputlb.h), so that every write to them is seen:
 *
 * - a vCPU store through KeyID 0 (or any mapping of R) traps before it
 *   lands: the instruction runs again in an exclusive section, where the
 *   page's slots leave the index and every TLB before the store lands,
 *   so that no vCPU reads a slot that lacks it; later uses through the
 *   KeyID fill a new slot (watch_cpu_write());
 * - DMA, address_space_write() and friends, and discards (balloon,
 *   virtio-mem) are reported after the fact: the slots' lines are
 *   refreshed from R, D_k(E_0(R)), before the device completes the
 *   request;
 * - translated code on an R page (the page stays protected when its last
 *   TB goes) or on a slot (its TBs are invalidated when it changes).
 *
 * The DIRTY_MEMORY_CODE bit of a page is cleared without walking every
 * TLB when no TLB can write the page directly: @writable records the
 * pages a TLB entry has mapped writable since the TLB hooks came on.
 *
 * Those hooks (writable, installing: rmap) run at every TLB fill of
 * guest RAM, and cost a KeyID-0 guest about 5% of its time; with no slot
 * they have nothing to do.  So they come on at the first fill, when
 * every TLB is emptied of guest RAM (shadow_arm_work()); until then
 * watch_ops_idle is registered: the same hooks without those two (its
 * access hook keeps MemoryRegionCaches made meanwhile, virtio rings,
 * off direct pointers).
 *
 * vhost and VFIO write guest RAM from outside QEMU, unseen: with either
 * present the fast path turns itself off (the crypto region, which
 * reads R on every access, stays exact).  Other processes sharing a RAM
 * backend file are as unseen as they are by TCG's translated code.
 *
 * Copyright (c) 2026 The qemu-mktme authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/bitops.h"
#include "qemu/main-loop.h"
#include "qemu/rcu.h"
#include "qemu/units.h"
#include "mktme-compat.h"
#include "exec/cputlb.h"
#include "exec/translation-block.h"
#include "hw/core/cpu.h"
#include "mktme-shadow-int.h"
#include "trace.h"

/* The one watcher: RAMWatchOps carry no opaque. */
static MktmeShadow *watched;

MktmeShadow *shadow_watched(void)
{
    return qatomic_read(&watched);
}

#define page_of shadow_page_of

static bool page_watched(MktmeShadow *sh, ram_addr_t ram, hwaddr *pa)
{
    MktmePage *pg;

    qemu_mutex_lock(&sh->lock);
    pg = page_of(sh, ram);
    if (pg) {
        *pa = pg->pa;
    }
    qemu_mutex_unlock(&sh->lock);
    return pg != NULL;
}

MktmePage *shadow_lock_page_of(MktmeShadow *sh, ram_addr_t ram,
                               QemuRecMutex **stripe)
{
    MktmePage *pg;
    hwaddr pa;

    if (!page_watched(sh, ram, &pa)) {
        return NULL;
    }
    *stripe = shadow_stripe(sh, pa);
    qemu_rec_mutex_lock(*stripe);
    qemu_mutex_lock(&sh->lock);
    pg = page_of(sh, ram);
    qemu_mutex_unlock(&sh->lock);
    if (pg && pg->pa == pa) {
        /* The record cannot go while its stripe is held. */
        return pg;
    }
    /* Gone, or another page now, under another stripe */
    qemu_rec_mutex_unlock(*stripe);
    return NULL;
}

/* Take @ram's slots away and out of every TLB: the vCPUs are stopped. */
static void kill_now(MktmeShadow *sh, ram_addr_t ram, hwaddr pa)
{
    QemuRecMutex *stripe = shadow_stripe(sh, pa);
    MktmePage *pg;

    qemu_rec_mutex_lock(stripe);
    qemu_mutex_lock(&sh->lock);
    pg = page_of(sh, ram);
    qemu_mutex_unlock(&sh->lock);
    if (pg) {
        /* (R has no TLB entry while a slot is write-back: defensive) */
        shadow_wb_sync_page_locked(sh, pg);
        qemu_mutex_lock(&sh->lock);
        shadow_kill_page_locked(sh, pg);
        qemu_mutex_unlock(&sh->lock);
    }
    if (pg) {
        CPUState *cs;

        for (int32_t j = pg->slots; j >= 0; j = sh->slots[j].next) {
            CPU_FOREACH(cs) {
                tlb_flush_host_range(cs, slot_host(sh, j), SHADOW_PAGE);
            }
        }
        if (!qatomic_read(&sh->midaccess)) {
            /* (else a vCPU stopped mid-access may use one: the epoch's) */
            shadow_recycle_page_locked(sh, pg);
        }
    }
    qemu_rec_mutex_unlock(stripe);
}

/*
 * A vCPU is about to store @size bytes at @ram through a direct mapping.
 * The slots must go, and none be refilled from R before the store lands:
 * the instruction is run again alone (cpu_exec_step_atomic()), every
 * other vCPU stopped, and the slots go then.  Where it cannot be rerun
 * (no return address, or the BQL held: interrupt and exception delivery
 * push frames with it), the page is frozen (no fills) until an epoch
 * that runs before this vCPU's next instruction.
 */
static void watch_cpu_write(CPUState *cs, ram_addr_t ram, unsigned size,
                            uintptr_t ra)
{
    MktmeShadow *sh = qatomic_read(&watched);
    hwaddr pa;

    if (sh && sh->wb_on && ram >= sh->pool_rw_ram &&
        ram - sh->pool_rw_ram < (ram_addr_t)sh->nr_slots * SHADOW_PAGE) {
        /*
         * A store into a write-back slot with TBs (watch_code()): TCG
         * drops those filed under the RAM view, these under the other.
         */
        ram_addr_t romd = sh->pool_ram + (ram - sh->pool_rw_ram);

        tb_invalidate_phys_range(romd, romd + size - 1);
        return;
    }
    if (!sh) {
        return;
    }
    if ((cs->tcg_cflags & CF_PARALLEL) && !cpu_in_exclusive_context(cs)) {
        /*
         * Say first that a store to the page may be landing, then look
         * for its record, both ordered by sh->lock with a fill's record
         * and its look at the marks: either the fill sees the mark and
         * copies nothing, or this store sees the record and takes the
         * slots away.  SHADOW_MARKS marks a vCPU: a store across two
         * pages calls here for both before either lands, a task switch
         * for up to four.  (Where no other vCPU runs, none fills
         * meanwhile.)
         */
        unsigned v = MIN((unsigned)cs->cpu_index,
                         sh->nr_unseen / SHADOW_MARKS - 1);
        unsigned n = qatomic_fetch_inc(&sh->unseen_next[v]) % SHADOW_MARKS;

        qatomic_set(&sh->unseen[SHADOW_MARKS * v + n],
                    (ram & TARGET_PAGE_MASK) | 1);
    }
    if (!page_watched(sh, ram, &pa)) {
        return;
    }
    trace_mktme_shadow_cpu_write(pa, ram);
    if (!(cs->tcg_cflags & CF_PARALLEL) || cpu_in_exclusive_context(cs)) {
        /* No other vCPU runs now (one vCPU, round-robin, exclusive) */
        kill_now(sh, ram, pa);
    } else if (ra && !bql_locked()) {
        cpu_loop_exit_atomic(cs, ra);
    } else {
        QemuRecMutex *stripe = shadow_stripe(sh, pa);
        MktmePage *pg;

        qemu_rec_mutex_lock(stripe);
        qemu_mutex_lock(&sh->lock);
        pg = page_of(sh, ram);
        if (pg) {
            pg->frozen = true;
            shadow_kill_page_locked(sh, pg);
            for (int32_t j = pg->slots; j >= 0; j = sh->slots[j].next) {
                tlb_flush_host_range(cs, slot_host(sh, j), SHADOW_PAGE);
            }
        }
        qemu_mutex_unlock(&sh->lock);
        qemu_rec_mutex_unlock(stripe);
        /* The other vCPUs' TLBs, before this one runs again. */
        async_safe_run_on_cpu(cs, shadow_epoch_work,
                              RUN_ON_CPU_HOST_PTR(sh));
    }
}

/*
 * The filling vCPU's own marks are old: it runs another access now, so
 * its stores have landed.  (Not quite always: a task switch probes the
 * old TSS for its stores, reads the new one, then stores; both in one
 * page, through two KeyIDs, of a page with TBs and no slot yet, would
 * fill from R before the store; under MTTCG mktme-verify.c mends that
 * slot one grace period later, for vCPUs on one thread nothing does.)
 * The last group is shared (hot-plugged vCPUs past max_cpus), and never
 * one's own.  An epoch, with every vCPU out of its access, clears the
 * marks.  vCPUs that take turns on one thread mark nothing.
 */
bool shadow_store_unseen(MktmeShadow *sh, ram_addr_t ram)
{
    uint64_t mark = (ram & TARGET_PAGE_MASK) | 1;
    unsigned last = sh->nr_unseen / SHADOW_MARKS - 1, self = UINT_MAX;

    if (current_cpu) {
        if (!(current_cpu->tcg_cflags & CF_PARALLEL)) {
            return false;
        }
        self = current_cpu->cpu_index;
    }
    for (unsigned i = 0; i < sh->nr_unseen; i++) {
        if ((i / SHADOW_MARKS != self || i / SHADOW_MARKS == last) &&
            qatomic_read(&sh->unseen[i]) == mark) {
            return true;
        }
    }
    return false;
}

/* [@ram, +@len) was written (after the fact), or discarded (@zero) */
static void watch_range(ram_addr_t ram, ram_addr_t len, bool zero)
{
    MktmeShadow *sh = qatomic_read(&watched);
    ram_addr_t end = ram + len;

    if (!sh || (!qatomic_read(&sh->live) && !qatomic_read(&sh->dead))) {
        return;
    }
    RCU_READ_LOCK_GUARD();      /* the slots' ciphers */
    for (ram_addr_t page = ram & TARGET_PAGE_MASK; page < end;
         page += SHADOW_PAGE) {
        ram_addr_t lo = MAX(page, ram), hi = MIN(page + SHADOW_PAGE, end);
        unsigned off = QEMU_ALIGN_DOWN(lo - page, MKTME_LINE_SIZE);
        unsigned n = QEMU_ALIGN_UP(hi - page, MKTME_LINE_SIZE) - off;
        QemuRecMutex *stripe;
        MktmePage *pg = shadow_lock_page_of(sh, page, &stripe);

        if (!pg) {
            continue;
        }
        /* DEAD slots too: some TLB may map them until the epoch. */
        for (int32_t j = pg->slots; j >= 0; j = sh->slots[j].next) {
            shadow_refresh(sh, &sh->slots[j], off, n, zero);
        }
        qemu_rec_mutex_unlock(stripe);
    }
}

static void watch_written(ram_addr_t ram, ram_addr_t len)
{
    watch_range(ram, len, false);
}

/* Discarded R reads as zeroes: do not read it (that would refault it). */
static void watch_discarded(ram_addr_t ram, ram_addr_t len)
{
    watch_range(ram, len, true);
}

/* TCG's page lock is held: sh->lock only. */
static void watch_code(ram_addr_t ram)
{
    MktmeShadow *sh = qatomic_read(&watched);
    MktmePage *pg;
    int64_t slot;

    if (!sh) {
        return;
    }
    slot = pool_slot_of(sh, ram);
    if (slot >= 0) {
        qatomic_set(&sh->slots[slot].has_code, true);
        if (sh->wb_on) {
            /*
             * The TB may be filed under the ROM device view: stores
             * through the RAM view must trap all the same, until the
             * slot is recycled (watch_keep_protected()).
             */
            cpu_physical_memory_test_and_clear_dirty(
                sh->pool_rw_ram + (ram_addr_t)slot * SHADOW_PAGE,
                SHADOW_PAGE, DIRTY_MEMORY_CODE);
        }
        return;
    }
    qemu_mutex_lock(&sh->lock);
    pg = page_of(sh, ram);
    if (pg) {
        pg->r_code = true;
    }
    qemu_mutex_unlock(&sh->lock);
}

/*
 * The last TB of the page at @ram went.  A slot that had TBs stays
 * protected until it is recycled (watch_code()), and so does an R page
 * with slots.  An R page without is unprotected here, under sh->lock,
 * rather than by the caller after the return: a fill that records the
 * page meanwhile (under the same lock) clears the bit after that, not
 * before (shadow_watch_page()), so its slot never shadows a page stores
 * reach directly.  Returns false only where the caller unprotects.
 */
static bool watch_keep_protected(ram_addr_t ram)
{
    MktmeShadow *sh = qatomic_read(&watched);
    int64_t slot;

    if (!sh) {
        return false;
    }
    slot = pool_slot_of(sh, ram);
    if (slot >= 0) {
        return qatomic_read(&sh->slots[slot].has_code);
    }
    qemu_mutex_lock(&sh->lock);
    if (!page_of(sh, ram)) {
        cpu_physical_memory_set_dirty_flag(ram, DIRTY_MEMORY_CODE);
    }
    qemu_mutex_unlock(&sh->lock);
    return true;
}

/* Under the installing vCPU's TLB lock */
static void watch_writable(ram_addr_t ram)
{
    MktmeShadow *sh = qatomic_read(&watched);
    uint64_t page = ram >> TARGET_PAGE_BITS;

    if (sh && page < sh->writable_pages && !test_bit(page, sh->writable)) {
        /* An atomic RMW: ordered before the caller's dirty-bit check. */
        set_bit_atomic(page, sh->writable);
    }
}

static const RAMWatchOps watch_ops = {
    .cpu_write = watch_cpu_write,
    .written = watch_written,
    .discarded = watch_discarded,
    .code = watch_code,
    .keep_protected = watch_keep_protected,
    .writable = watch_writable,
    .installing = shadow_wb_installing,
    .accessing = shadow_wb_accessing,
};

/*
 * Until the first fill (see the head of this file): all but the hooks of
 * a vCPU's TLB fill, so that threads other than the vCPUs (which the
 * swap in shadow_arm_work() does not stop) see the same hooks before
 * and after it.
 */
static const RAMWatchOps watch_ops_idle = {
    .cpu_write = watch_cpu_write,
    .written = watch_written,
    .discarded = watch_discarded,
    .code = watch_code,
    .keep_protected = watch_keep_protected,
    .accessing = shadow_wb_accessing,
};

/* Queued by shadow_arm_work(): runs on @cpu, outside any access. */
static void shadow_arm_flush_work(CPUState *cpu, run_on_cpu_data data)
{
    tlb_flush(cpu);
}

/* Exclusive work: no vCPU runs, none has a slot yet (no fill ran). */
static void shadow_arm_work(CPUState *cpu, run_on_cpu_data data)
{
    MktmeShadow *sh = data.host_ptr;
    CPUState *cs;

    if (!qatomic_read(&sh->armed) && !qatomic_read(&sh->off)) {
        /*
         * The same watcher with more hooks: swapped in place, never
         * through NULL (address_space_cache_init() reads it twice).
         */
        qatomic_set(&ram_watch_ops, &watch_ops);
        /*
         * No entry of guest RAM made before is left unrecorded: gone
         * now, in place (not tlb_flush(): that may resize, free, the
         * TLB of a vCPU that waits for the exclusive section halfway
         * through an access).  The crypto region's entries of the pages
         * that asked for fills meanwhile are exact, and go at each
         * vCPU's next look at its work queue, so that they fill slots.
         */
        CPU_FOREACH(cs) {
            tlb_flush_host_range(cs, NULL, SIZE_MAX);
            async_run_on_cpu(cs, shadow_arm_flush_work, RUN_ON_CPU_NULL);
        }
        qatomic_store_release(&sh->armed, true);
        trace_mktme_shadow_arm();
    }
    qatomic_set(&sh->arm_pending, false);
}

void shadow_request_arm(MktmeShadow *sh)
{
    /* Fills run on vCPU threads; no fill, no slot to arm for. */
    assert(current_cpu);
    if (!qatomic_xchg(&sh->arm_pending, true)) {
        async_safe_run_on_cpu(current_cpu, shadow_arm_work,
                              RUN_ON_CPU_HOST_PTR(sh));
    }
}

bool shadow_watch_page(MktmeShadow *sh, ram_addr_t ram, void *r)
{
    uint64_t page = ram >> TARGET_PAGE_BITS;
    DirtyMemoryBlocks *blocks;
    bool dirty;

    WITH_RCU_READ_LOCK_GUARD() {
        blocks = qatomic_rcu_read(&ram_list.dirty_memory[DIRTY_MEMORY_CODE]);
        dirty = bitmap_test_and_clear_atomic(
            blocks->blocks[page / DIRTY_MEMORY_BLOCK_SIZE],
            page % DIRTY_MEMORY_BLOCK_SIZE, 1);
    }
    /*
     * A TLB entry made before the bit was cleared may write the page
     * without noticing: give such entries TLB_NOTDIRTY.  An entry being
     * installed now either saw the bit clear or set its @writable bit,
     * both under its TLB lock, which tlb_reset_dirty() takes too.
     */
    if (dirty && (page >= sh->writable_pages ||
                  test_bit(page, sh->writable))) {
        shadow_wb_reset_dirty(sh, ram, r);
    }
    return dirty;
}

/* vhost and VFIO write guest RAM behind QEMU's back. */
static const char *foreign_writer(void)
{
    MemoryListener *l;

    QTAILQ_FOREACH(l, &address_space_memory.listeners, link_as) {
        if (l->name && (!strcmp(l->name, "vhost") ||
                        !strncmp(l->name, "vfio", 4))) {
            return l->name;
        }
    }
    return NULL;
}

static void watch_region_change(MemoryListener *l, MemoryRegionSection *sec)
{
    MktmeShadow *sh = container_of(l, MktmeShadow, listener);

    sh->map_changed = true;
}

static void watch_commit(MemoryListener *l)
{
    MktmeShadow *sh = container_of(l, MktmeShadow, listener);
    const char *who;

    if (!sh->map_changed) {
        return;
    }
    sh->map_changed = false;
    who = foreign_writer();
    if (who) {
        g_autofree char *why = g_strdup_printf(
            "%s writes guest memory outside QEMU", who);

        shadow_turn_off(sh, why);
        return;
    }
    /* A slot's guest page may now be elsewhere, or not RAM. */
    if (qatomic_read(&sh->live)) {
        mktme_shadow_drop_all(sh);
    }
}

/*
 * A dirty bitmap sync (migration, dirty rate): what write-back slots
 * hold goes to R, and is marked dirty there, before the bitmap is read.
 * Display updates sync bitmaps too, with no global tracking: not for them.
 */
static void watch_log_sync(MemoryListener *l, bool last_stage)
{
    MktmeShadow *sh = container_of(l, MktmeShadow, listener);

    if (qatomic_read(&global_dirty_tracking)) {
        shadow_wb_sync_all(sh, false);
    }
}

void shadow_watch_init(MktmeShadow *sh)
{
    ram_addr_t top = 0;
    RAMBlock *rb;

    WITH_RCU_READ_LOCK_GUARD() {
        RAMBLOCK_FOREACH(rb) {
            top = MAX(top, rb->offset + rb->max_length);
        }
    }
    /* Room for some hot-plugged memory; pages above always walk TLBs. */
    sh->writable_pages = (top + 16 * GiB) >> TARGET_PAGE_BITS;
    sh->writable = bitmap_new(sh->writable_pages);
    sh->listener = (MemoryListener) {
        .name = "mktme-shadow",
        .region_add = watch_region_change,
        .region_del = watch_region_change,
        .commit = watch_commit,
        .log_sync_global = watch_log_sync,
        .priority = MEMORY_LISTENER_PRIORITY_MIN,
    };
    memory_listener_register(&sh->listener, &address_space_memory);
    qatomic_set(&watched, sh);
    ram_watch_register(&watch_ops_idle);
}

static void shadow_drain_work(CPUState *cpu, run_on_cpu_data data)
{
}

void shadow_watch_cleanup(MktmeShadow *sh)
{
    CPUState *cs;

    /*
     * No hook queues work for @sh from here on, nor the listener (its
     * commit may drop every slot, which may queue an epoch).
     */
    qatomic_set(&watched, NULL);
    memory_listener_unregister(&sh->listener);
    /*
     * Arm and epoch work still queued on a vCPU holds @sh: let it run
     * before @sh goes.  At exit the vCPUs are paused, and a paused vCPU
     * still runs its queue.  (Arm work queues more, which holds no @sh.)
     * The hooks go after it, as arm work swaps them.
     */
    if (bql_locked() && !current_cpu) {
        CPU_FOREACH(cs) {
            if (cs->created) {
                run_on_cpu(cs, shadow_drain_work, RUN_ON_CPU_NULL);
            }
        }
    }
    ram_watch_register(NULL);
    g_free(sh->writable);
}
