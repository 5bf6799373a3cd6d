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
 * its slot, and after the grace period the slot is compared with what
 * R holds then: a write-through slot takes the lines R changed (both
 * are under the page's stripe), a write-back slot, which vCPUs store to
 * directly, leaves the index and is written back and refilled at the
 * epoch it asks for.
 *
 * One vCPU, or vCPUs that take turns on one thread, queue nothing.
 *
 * Copyright (c) 2026 The qemu-mktme authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/rcu.h"
#include "mktme-compat.h"
#include "exec/translation-block.h"
#include "hw/core/cpu.h"
#include "mktme-shadow-int.h"
#include "trace.h"

typedef struct MktmeVerify {
    hwaddr pa;
    uint32_t slot;
    uint16_t keyid;
} MktmeVerify;

void shadow_verify_init(MktmeShadow *sh)
{
    sh->verify_next = g_array_new(false, false, sizeof(MktmeVerify));
    sh->verify_wait = g_array_new(false, false, sizeof(MktmeVerify));
}

void shadow_verify_cleanup(MktmeShadow *sh)
{
    bool pending;

    qemu_mutex_lock(&sh->lock);
    pending = sh->verify_pending;
    qemu_mutex_unlock(&sh->lock);
    if (pending) {
        drain_call_rcu();
    }
    g_array_free(sh->verify_next, true);
    g_array_free(sh->verify_wait, true);
}

/* Slot @i of @pa through @keyid (LIVE): lines R changed, or -1 to kill */
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

static void verify_one(MktmeShadow *sh, const MktmeVerify *v)
{
    QemuRecMutex *stripe = shadow_stripe(sh, v->pa);
    MktmeSlot *s = &sh->slots[v->slot];
    bool live;
    int n;

    qemu_rec_mutex_lock(stripe);
    qemu_mutex_lock(&sh->lock);
    live = s->state == SLOT_LIVE && s->pa == v->pa && s->keyid == v->keyid &&
           !qatomic_read(&s->page->gone);
    qemu_mutex_unlock(&sh->lock);
    if (live) {
        WITH_RCU_READ_LOCK_GUARD() {    /* the slot's ciphers */
            n = verify_slot(sh, s);
        }
        if (n) {
            trace_mktme_shadow_verify(v->pa, v->keyid, n);
        }
        if (n < 0) {
            qemu_mutex_lock(&sh->lock);
            shadow_kill_page_locked(sh, s->page);
            qemu_mutex_unlock(&sh->lock);
            shadow_request_epoch(sh);
        }
    }
    qemu_rec_mutex_unlock(stripe);
}

/* Swap the queues and wait for a grace period; sh->lock held */
static void verify_start(MktmeShadow *sh);

static void shadow_verify_rcu(struct rcu_head *head)
{
    MktmeShadow *sh = container_of(head, MktmeShadow, verify_rcu);

    /* Only this callback touches @verify_wait while one is pending. */
    trace_mktme_shadow_verify_batch(sh->verify_wait->len);
    for (guint n = 0; n < sh->verify_wait->len; n++) {
        verify_one(sh, &g_array_index(sh->verify_wait, MktmeVerify, n));
    }
    g_array_set_size(sh->verify_wait, 0);
    qemu_mutex_lock(&sh->lock);
    if (sh->verify_next->len) {
        verify_start(sh);
    } else {
        sh->verify_pending = false;
    }
    qemu_mutex_unlock(&sh->lock);
}

static void verify_start(MktmeShadow *sh)
{
    GArray *t = sh->verify_wait;

    sh->verify_wait = sh->verify_next;
    sh->verify_next = t;
    sh->verify_pending = true;
    call_rcu1(&sh->verify_rcu, shadow_verify_rcu);
}

void shadow_verify_later(MktmeShadow *sh, uint32_t i)
{
    MktmeSlot *s = &sh->slots[i];
    MktmeVerify v = { .pa = s->pa, .slot = i, .keyid = s->keyid };

    if (!current_cpu || !(current_cpu->tcg_cflags & CF_PARALLEL)) {
        return;
    }
    g_array_append_val(sh->verify_next, v);
    if (!sh->verify_pending) {
        verify_start(sh);
    }
}
