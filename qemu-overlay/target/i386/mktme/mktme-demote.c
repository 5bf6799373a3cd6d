/*
 * The TME-MK fast path's write-back slots: demotion and the reverse map.
 *
 * A TLB fill about to map R of a guest page (RAMWatchOps.installing)
 * records its vCPU in sh->rmap (and, while that vCPU is the only one,
 * where its entry is in sh->rwhere); if the page has a write-back slot,
 * it first demotes the page: R brought up to date, its write-back slots
 * DEAD and out of every TLB, the page write-through until the next
 * epoch.  The epoch's part: the last stores of DEAD write-back slots,
 * guest RAM out of every TLB, rmap forgotten by counting, the pages
 * that waited demoted.  The design is described in mktme-writeback.c.
 *
 * Copyright (c) 2026 The qemu-mktme authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/bitops.h"
#include "qemu/main-loop.h"
#include "qemu/rcu.h"
#include "mktme-compat.h"
#include "exec/cputlb.h"
#include "exec/translation-block.h"
#include "hw/core/cpu.h"
#include "mktme-writeback-int.h"
#include "trace.h"

/* sh->rwhere: MMU index bits below the page address; 0: not known */
#define RWHERE_IDX_BITS 12
QEMU_BUILD_BUG_ON(TARGET_PAGE_BITS < RWHERE_IDX_BITS);

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
        shadow_wb_sync_page(sh, page);
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
                shadow_wb_sync_slot(sh, pg, s, true);
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
