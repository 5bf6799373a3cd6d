/*
 * The TME-MK fast path's slot life cycle: taking slots out of the index
 * (DEAD), recycling them once no TLB can map them, epochs (exclusive
 * work that evicts from a full pool, recycles and flushes every TLB),
 * and dropping every slot (key, activation and memory map changes,
 * reset, VM stop).
 *
 * Copyright (c) 2026 The qemu-mktme authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/error-report.h"
#include "qemu/main-loop.h"
#include "exec/cputlb.h"
#include "mktme-compat.h"
#include "hw/core/cpu.h"
#include "system/cpus.h"
#include "mktme-shadow-int.h"
#include "trace.h"

/*
 * Free slots for fills, a batch per vCPU: several vCPUs filling pages at
 * once would otherwise interleave their slots in the pool, and a pass
 * over a vCPU's pages then strides through host memory (half the speed
 * of slots one after the other, which host caches prefetch).  At most
 * resv_batch slots wait in each vCPU's batch; epochs give them back.
 * sh->lock held.
 */
static MktmeSlotBatch *slot_batch(MktmeShadow *sh)
{
    unsigned v = current_cpu ? current_cpu->cpu_index : UINT_MAX;

    return v < sh->nr_batches && sh->resv_batch > 1 ? &sh->batches[v] : NULL;
}

bool shadow_slot_available(MktmeShadow *sh)
{
    MktmeSlotBatch *b = slot_batch(sh);

    return sh->nr_free || (b && b->pos < b->len);
}

uint32_t shadow_slot_take(MktmeShadow *sh)
{
    MktmeSlotBatch *b = slot_batch(sh);

    /* (Not the last few: other vCPUs would find the pool full.) */
    if (b && b->pos == b->len && sh->nr_free > 2 * sh->resv_batch) {
        b->len = sh->resv_batch;
        b->pos = 0;
        for (uint32_t j = 0; j < b->len; j++) {
            b->slot[j] = sh->free[--sh->nr_free];
        }
        sh->resv_total += b->len;
    }
    if (b && b->pos < b->len) {
        sh->resv_total--;
        return b->slot[b->pos++];
    }
    return sh->free[--sh->nr_free];
}

void shadow_slot_untake(MktmeShadow *sh, uint32_t i)
{
    MktmeSlotBatch *b = slot_batch(sh);

    if (b && b->pos && b->slot[b->pos - 1] == i) {
        b->pos--;
        sh->resv_total++;
    } else {
        sh->free[sh->nr_free++] = i;
    }
}

/* Every batch back on the free stack, in the order it was taken */
static void slot_batches_return(MktmeShadow *sh)
{
    for (unsigned v = 0; sh->resv_total && v < sh->nr_batches; v++) {
        MktmeSlotBatch *b = &sh->batches[v];

        while (b->len > b->pos) {
            sh->free[sh->nr_free++] = b->slot[--b->len];
            sh->resv_total--;
        }
        b->len = b->pos = 0;
    }
}

/* Has @s's page a LIVE slot other than @s?  sh->lock held. */
static bool page_has_other_live(MktmeShadow *sh, MktmeSlot *s)
{
    for (int32_t j = s->page->slots; j >= 0; j = sh->slots[j].next) {
        if (&sh->slots[j] != s && sh->slots[j].state == SLOT_LIVE) {
            return true;
        }
    }
    return false;
}

/* sh->lock held */
static void shadow_kill_slot(MktmeShadow *sh, MktmeSlot *s)
{
    if (s->state == SLOT_LIVE) {
        uint64_t *near = shadow_near(sh, s->pa, false);
        uint64_t e = near ? qatomic_read(near) : 0;

        qht_remove(&sh->index, s, index_hash(s->pa, s->keyid));
        if (e == near_entry(s - sh->slots, s->keyid) || e == NEAR_OTHERS) {
            qatomic_set(near, page_has_other_live(sh, s) ? NEAR_OTHERS : 0);
        }
        s->state = SLOT_DEAD;
        qatomic_set(&sh->live, sh->live - 1);
        sh->dead++;
    }
}

void shadow_kill_page_locked(MktmeShadow *sh, MktmePage *pg)
{
    for (int32_t j = pg->slots; j >= 0; j = sh->slots[j].next) {
        shadow_kill_slot(sh, &sh->slots[j]);
    }
}

/*
 * Put the DEAD slots of @pg on the free list and, if it has none left,
 * forget the page.  Stripe and sh->lock held; no TLB may map those slots.
 * Slots that held code are added to @code: their TBs must go before the
 * stripe lock is dropped, but not under sh->lock (TB invalidation calls
 * back into mktme-watch.c, which takes it).
 */
static void shadow_recycle_locked(MktmeShadow *sh, MktmePage *pg,
                                  GArray *code)
{
    int32_t *link = &pg->slots;

    while (*link >= 0) {
        uint32_t i = *link;
        MktmeSlot *s = &sh->slots[i];

        if (s->state != SLOT_DEAD) {
            link = &s->next;
            continue;
        }
        *link = s->next;
        if (s->wb) {
            /* Synced by the caller: the vCPUs are stopped. */
            shadow_wb_slot_done(sh, pg, s);
        }
        if (s->has_code) {
            g_array_append_val(code, i);
        }
        *s = (MktmeSlot) { .state = SLOT_FREE, .next = -1 };
        sh->free[sh->nr_free++] = i;
        sh->dead--;
    }
    if (pg->slots < 0) {
        if (!pg->r_code) {
            /* No TB on it: stores through KeyID 0 go fast again. */
            cpu_physical_memory_set_dirty_flag(pg->ram, DIRTY_MEMORY_CODE);
        }
        shadow_page_free(sh, pg);
    }
}

/* Drop the TBs of the slots in @code (sh->lock not held) */
static void shadow_drop_code(MktmeShadow *sh, GArray *code)
{
    for (guint n = 0; n < code->len; n++) {
        uint32_t i = g_array_index(code, uint32_t, n);

        slot_drop_tbs(sh, i, 0, SHADOW_PAGE);
        if (sh->wb_on) {
            /* Stores through the RAM view go straight again. */
            cpu_physical_memory_set_dirty_flag(sh->pool_rw_ram +
                                               (ram_addr_t)i * SHADOW_PAGE,
                                               DIRTY_MEMORY_CODE);
        }
    }
    g_array_free(code, true);
}

void shadow_recycle_page_locked(MktmeShadow *sh, MktmePage *pg)
{
    GArray *code = g_array_new(false, false, sizeof(uint32_t));

    qemu_mutex_lock(&sh->lock);
    shadow_recycle_locked(sh, pg, code);
    qemu_mutex_unlock(&sh->lock);
    shadow_drop_code(sh, code);
}

static void lock_stripes(MktmeShadow *sh)
{
    for (int i = 0; i < SHADOW_STRIPES; i++) {
        qemu_rec_mutex_lock(&sh->stripe[i]);
    }
}

static void lock_all(MktmeShadow *sh)
{
    lock_stripes(sh);
    qemu_mutex_lock(&sh->lock);
}

static void unlock_stripes(MktmeShadow *sh)
{
    for (int i = SHADOW_STRIPES - 1; i >= 0; i--) {
        qemu_rec_mutex_unlock(&sh->stripe[i]);
    }
}

static void unlock_all(MktmeShadow *sh)
{
    qemu_mutex_unlock(&sh->lock);
    unlock_stripes(sh);
}

/*
 * All locks held, no vCPU running: kill @evict LIVE slots from the
 * clock hand on, recycle every DEAD slot, drop the pool from every TLB.
 * Returns with the stripes held and sh->lock dropped.
 */
static void shadow_collect(MktmeShadow *sh, uint32_t evict)
{
    MktmePage *pg;
    GArray *code = g_array_new(false, false, sizeof(uint32_t));
    CPUState *cs;

    slot_batches_return(sh);

    /*
     * Every store that saw no record has landed (shadow_store_unseen()),
     * unless a vCPU stopped halfway through an access that crosses pages.
     */
    if (!qatomic_read(&sh->midaccess)) {
        memset(sh->unseen, 0, sh->nr_unseen * sizeof(*sh->unseen));
    }
    for (uint32_t n = 0; evict && n < sh->nr_slots; n++) {
        MktmeSlot *s = &sh->slots[sh->hand];

        sh->hand = (sh->hand + 1) % sh->nr_slots;
        if (s->state == SLOT_LIVE) {
            shadow_kill_slot(sh, s);
            sh->evictions++;
            evict--;
        }
    }
    /* The last stores into DEAD write-back slots (crypto: no sh->lock) */
    qemu_mutex_unlock(&sh->lock);
    shadow_wb_epoch_locked(sh);
    qemu_mutex_lock(&sh->lock);
    /*
     * A vCPU stopped halfway through an access may still use a slot it
     * looked up: leave DEAD slots to the next epoch.
     */
    for (pg = shadow_page_next(sh, NULL);
         pg && !qatomic_read(&sh->midaccess); pg = shadow_page_next(sh, pg)) {
        shadow_recycle_locked(sh, pg, code);
    }
    if (sh->nr_free == sh->nr_slots) {
        /*
         * All free (a key change, reset): hand them out in address order
         * again, as at the start.  Pages filled one after the other then
         * have slots one after the other, which host caches prefetch;
         * a pass over slots in recycling order ran at half the speed.
         */
        for (uint32_t i = 0; i < sh->nr_slots; i++) {
            sh->free[i] = sh->nr_slots - 1 - i;
        }
        sh->hand = 0;
    }
    qemu_mutex_unlock(&sh->lock);
    shadow_drop_code(sh, code);
    /*
     * The pool out of every TLB, the vCPUs being stopped.  Not
     * tlb_flush(): that may resize (free) the TLB of a vCPU that waits
     * for the exclusive section halfway through an access.
     */
    CPU_FOREACH(cs) {
        tlb_flush_host_range(cs, sh->pool_host,
                             (size_t)sh->nr_slots * SHADOW_PAGE);
    }
}

void shadow_epoch_work(CPUState *cpu, run_on_cpu_data data)
{
    MktmeShadow *sh = data.host_ptr;
    uint32_t evict;

    qatomic_set(&sh->epoch_pending, false);
    lock_all(sh);
    slot_batches_return(sh);
    evict = sh->nr_free ? 0 : MAX(sh->nr_slots / 8, 1);
    shadow_collect(sh, evict);
    unlock_stripes(sh);
    trace_mktme_shadow_epoch(evict, sh->live, sh->nr_free);
}

void shadow_request_epoch(MktmeShadow *sh)
{
    CPUState *cs = current_cpu ?: first_cpu;

    if (cs && !qatomic_xchg(&sh->epoch_pending, true)) {
        async_safe_run_on_cpu(cs, shadow_epoch_work, RUN_ON_CPU_HOST_PTR(sh));
    }
}

/*
 * Every vCPU out of cpu_exec (BQL held).  Not cpu_is_stopped(): that is
 * true as soon as the run state leaves RUNNING, while vm_stop() still
 * waits (BQL dropped) for the vCPUs to stop.
 */
static bool vcpus_stopped(void)
{
    CPUState *cs;

    CPU_FOREACH(cs) {
        if (!cs->stopped) {
            return false;
        }
    }
    return true;
}

void mktme_shadow_drop_all(MktmeShadow *sh)
{
    MktmePage *pg;
    bool now;

    if (!sh) {
        return;
    }
    now = !current_cpu && vcpus_stopped();
    lock_stripes(sh);
    /* R current: with the keys the slots were made with */
    shadow_wb_sync_all(sh, true);
    qemu_mutex_lock(&sh->lock);
    /* Fills that looked up RAM or keys before this must not publish. */
    qatomic_store_release(&sh->gen, sh->gen + 1);
    for (pg = shadow_page_next(sh, NULL); pg; pg = shadow_page_next(sh, pg)) {
        shadow_kill_page_locked(sh, pg);
    }
    if (now) {
        shadow_collect(sh, 0);
        unlock_stripes(sh);
    } else {
        unlock_all(sh);
    }
    if (!now && current_cpu) {
        /* Before this vCPU's next instruction (the helper ends the TB). */
        async_safe_run_on_cpu(current_cpu, shadow_epoch_work,
                              RUN_ON_CPU_HOST_PTR(sh));
    } else if (!now) {
        shadow_request_epoch(sh);
    }
}

void mktme_shadow_drop_ram(MktmeShadow *sh, ram_addr_t start,
                           ram_addr_t len)
{
    MktmePage *pg;

    if (!sh) {
        return;
    }
    /*
     * The block's memory goes after an RCU grace period, which DEAD slots
     * (until the epoch) may outlive: none of them touches it from now on.
     */
    lock_all(sh);
    for (pg = shadow_page_next(sh, NULL); pg; pg = shadow_page_next(sh, pg)) {
        if (pg->ram - start < len) {
            qatomic_set(&pg->gone, true);
        }
    }
    unlock_all(sh);
    mktme_shadow_drop_all(sh);
}

void shadow_turn_off(MktmeShadow *sh, const char *why)
{
    if (!sh->off) {
        warn_report("mktme-guest: fast path off: %s", why);
        qatomic_set(&sh->off, g_strdup(why));
        mktme_shadow_drop_all(sh);
    }
}

void shadow_vm_state(void *opaque, bool running, RunState state)
{
    if (!running) {
        /* loadvm and incoming migration write R without telling us. */
        mktme_shadow_drop_all(opaque);
    }
}

