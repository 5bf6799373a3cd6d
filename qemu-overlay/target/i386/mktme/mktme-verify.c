/*
 * The TME-MK fast path under MTTCG: stores that were under way when a
 * page got its first slot.
 *
 * A page's first fill protects R (its DIRTY_MEMORY_CODE bit cleared,
 * TLB entries that may write it given TLB_NOTDIRTY), then copies it.  A
 * KeyID-0 store on another vCPU that had looked its TLB entry up before
 * (or passed TCG's dirty check) still lands in R, maybe after the copy,
 * and nothing tells the slot.  Such a store runs inside its vCPU's
 * cpu_exec(), an RCU read-side critical section: once a grace period
 * has passed since the fill, it has landed.  So each such fill queues
 * its page, and a thread of its own (not a call_rcu() callback, which
 * would hold the BQL for the whole batch) waits for the grace period,
 * then compares every LIVE slot of the page with what R holds: a
 * write-through slot takes the lines R changed (both are under the
 * page's stripe), a write-back slot, which vCPUs store to directly,
 * leaves the index with its page's others and is written back and
 * refilled at the epoch it asks for.  Slots the page got meanwhile
 * through other KeyIDs are compared too.
 *
 * One vCPU, or vCPUs that take turns on one thread, queue nothing (and
 * the thread exists only where a machine may have more than one).
 *
 * Copyright (c) 2026 The qemu-mktme authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/rcu.h"
#include "mktme-compat.h"
#include "exec/translation-block.h"
#include "hw/boards.h"
#include "hw/core/cpu.h"
#include "mktme-shadow-int.h"
#include "trace.h"

typedef struct MktmeVerify {
    ram_addr_t ram;
    hwaddr pa;
} MktmeVerify;

/* Past this many queued pages, the thread looks at every page instead */
#define VERIFY_QUEUE_MAX(sh) (2 * (sh)->nr_slots)

/* LIVE slot @s (stripe held): lines R changed, or -1: drop its page */
static int verify_slot(MktmeShadow *sh, MktmeSlot *s)
{
    uint32_t i = s - sh->slots;
    const uint8_t *was = s->wb ? slot_snap(sh, i) : slot_host(sh, i);
    uint8_t buf[SHADOW_PAGE] QEMU_UNINITIALIZED;
    int n = 0;

    read_line(buf, s->page->r, SHADOW_PAGE);
    mktme_xts_recrypt_lines(s->c0, s->ck, s->pa, buf, buf,
                            SHADOW_PAGE / MKTME_LINE_SIZE);
    for (unsigned off = 0; off < SHADOW_PAGE; off += MKTME_LINE_SIZE) {
        if (memcmp(buf + off, was + off, MKTME_LINE_SIZE)) {
            if (s->wb) {
                n = -1;
                break;
            }
            shadow_refresh(sh, s, off, MKTME_LINE_SIZE, false);
            n++;
        }
    }
    mktme_wipe(buf, sizeof(buf));
    return n;
}

/* Every LIVE slot of the page, if it is still the one queued */
static void verify_page(MktmeShadow *sh, const MktmeVerify *v)
{
    QemuRecMutex *stripe = shadow_stripe(sh, v->pa);
    bool kill = false;
    MktmePage *pg;

    qemu_rec_mutex_lock(stripe);
    qemu_mutex_lock(&sh->lock);
    pg = shadow_page_of(sh, v->ram);
    if (pg && (pg->pa != v->pa || qatomic_read(&pg->gone))) {
        pg = NULL;
    }
    qemu_mutex_unlock(&sh->lock);
    /* Slots are killed with the stripe held: they stay LIVE meanwhile. */
    for (int32_t j = pg ? pg->slots : -1; j >= 0 && !kill;
         j = sh->slots[j].next) {
        MktmeSlot *s = &sh->slots[j];
        int n;

        if (s->state != SLOT_LIVE) {
            continue;
        }
        WITH_RCU_READ_LOCK_GUARD() {    /* the slot's ciphers */
            n = verify_slot(sh, s);
        }
        if (n) {
            trace_mktme_shadow_verify(s->pa, s->keyid, n);
        }
        kill = n < 0;
    }
    if (kill) {
        qemu_mutex_lock(&sh->lock);
        shadow_kill_page_locked(sh, pg);
        qemu_mutex_unlock(&sh->lock);
        shadow_request_epoch(sh);
    }
    qemu_rec_mutex_unlock(stripe);
}

/* The queue overflowed: every page that has a record now (sh->lock) */
static void verify_queue_all(MktmeShadow *sh, GArray *q)
{
    for (MktmePage *pg = shadow_page_next(sh, NULL); pg;
         pg = shadow_page_next(sh, pg)) {
        MktmeVerify v = { .ram = pg->ram, .pa = pg->pa };

        g_array_append_val(q, v);
    }
}

static void *verify_thread(void *opaque)
{
    MktmeShadow *sh = opaque;
    GArray *wait = g_array_new(false, false, sizeof(MktmeVerify));

    rcu_register_thread();
    qemu_mutex_lock(&sh->lock);
    for (;;) {
        GArray *t;

        while (!sh->verify_next->len && !sh->verify_all &&
               !sh->verify_closing) {
            qemu_cond_wait(&sh->verify_cond, &sh->lock);
        }
        if (sh->verify_closing) {
            break;
        }
        /*
         * Let a millisecond of fills gather: each grace period makes
         * every vCPU leave its translated code once.
         */
        qemu_mutex_unlock(&sh->lock);
        g_usleep(1000);
        qemu_mutex_lock(&sh->lock);
        t = sh->verify_next;
        sh->verify_next = wait;
        wait = t;
        if (sh->verify_all) {
            sh->verify_all = false;
            g_array_set_size(wait, 0);
            verify_queue_all(sh, wait);
        }
        qemu_mutex_unlock(&sh->lock);
        /*
         * Every store under way at those fills has landed after this.
         * A vCPU leaves its read section only when it leaves cpu_exec():
         * make each do so once (it goes straight back).
         */
        WITH_RCU_READ_LOCK_GUARD() {
            CPUState *cs;

            CPU_FOREACH(cs) {
                cpu_exit(cs);
            }
        }
        synchronize_rcu();
        trace_mktme_shadow_verify_batch(wait->len);
        for (guint n = 0; n < wait->len && !qatomic_read(&sh->verify_closing);
             n++) {
            verify_page(sh, &g_array_index(wait, MktmeVerify, n));
        }
        g_array_set_size(wait, 0);
        qemu_mutex_lock(&sh->lock);
    }
    qemu_mutex_unlock(&sh->lock);
    g_array_free(wait, true);
    rcu_unregister_thread();
    return NULL;
}

void shadow_verify_init(MktmeShadow *sh)
{
    sh->verify_next = g_array_new(false, false, sizeof(MktmeVerify));
    qemu_cond_init(&sh->verify_cond);
    /*
     * Here, not at the first fill: a thread inherits its creator's
     * affinity, scheduling policy and cgroup, which for a vCPU may be
     * pinned or real-time.
     */
    if (MACHINE(qdev_get_machine())->smp.max_cpus > 1) {
        sh->verify_started = true;
        qemu_thread_create(&sh->verify, "mktme-verify", verify_thread, sh,
                           QEMU_THREAD_JOINABLE);
    }
}

/*
 * Before the hooks go (no vCPU runs): an epoch the thread asks for is
 * then still run, or drained, before the shadow goes.
 */
void shadow_verify_cleanup(MktmeShadow *sh)
{
    qemu_mutex_lock(&sh->lock);
    qatomic_set(&sh->verify_closing, true);
    qemu_cond_signal(&sh->verify_cond);
    qemu_mutex_unlock(&sh->lock);
    if (sh->verify_started) {
        qemu_thread_join(&sh->verify);
    }
    qemu_cond_destroy(&sh->verify_cond);
    g_array_free(sh->verify_next, true);
}

void shadow_verify_later(MktmeShadow *sh, MktmePage *pg)
{
    MktmeVerify v = { .ram = pg->ram, .pa = pg->pa };

    if (!current_cpu || !(current_cpu->tcg_cflags & CF_PARALLEL) ||
        !sh->verify_started || sh->verify_closing || sh->verify_all) {
        return;
    }
    if (sh->verify_next->len >= VERIFY_QUEUE_MAX(sh)) {
        sh->verify_all = true;
        g_array_set_size(sh->verify_next, 0);
    } else {
        g_array_append_val(sh->verify_next, v);
        if (sh->verify_next->len > 1) {
            return;     /* the thread was told at the first */
        }
    }
    qemu_cond_signal(&sh->verify_cond);
}
