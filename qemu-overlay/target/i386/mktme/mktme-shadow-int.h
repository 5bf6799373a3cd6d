/*
 * The TME-MK fast path: state shared by its files.
 *
 *   mktme-shadow.c   the pool, the slot index, filling, the store path
 *                    and eviction (epochs);
 *   mktme-watch.c    what TCG and the memory core tell it: writes to
 *                    guest RAM by vCPUs through KeyID 0, DMA and
 *                    discards, pages getting code, memory map changes.
 *
 *   mktme-epoch.c    the slot life cycle: killing, recycling, epochs.
 *
 * Locks, outermost first (never take one while holding a later one):
 *   stripe[pa]  one of SHADOW_STRIPES recursive mutexes chosen by the
 *               guest page: the contents of that page's slots and every
 *               read-modify-write of its R lines (slot_write(), the
 *               crypto region, which writes R with address_space_write()
 *               and so comes back to watch_written() holding it);
 *   TCG's page locks (tb_invalidate_phys_range()); TLB fills for code
 *               run with one held, so fills only try the stripe;
 *   sh->lock    the index, the page table, slot states, the free list,
 *               the counters.  Held for lookups only: no crypto, no TCG.
 *
 * Copyright (c) 2026 The qemu-mktme authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef TARGET_I386_MKTME_SHADOW_INT_H
#define TARGET_I386_MKTME_SHADOW_INT_H

#include "qemu/thread.h"
#include "exec/ramlist.h"
#include "exec/ramblock.h"
#include "hw/core/cpu.h"
#include "system/runstate.h"
#include "mktme.h"

#define SHADOW_PAGE     4096
#define SHADOW_STRIPES  64

typedef enum {
    SLOT_FREE,          /* on the free list */
    SLOT_FILLING,       /* taken by a fill, not in the index yet */
    SLOT_LIVE,          /* in the index: P = D_k(E_0(R)), kept current */
    SLOT_DEAD,          /* out of the index, maybe still in some TLB */
} MktmeSlotState;

typedef struct MktmePage MktmePage;

typedef struct MktmeSlot {
    hwaddr pa;                  /* guest page, KeyID bits clear */
    uint16_t keyid;
    uint8_t state;              /* MktmeSlotState */
    bool has_code;              /* TBs were translated from the slot */
    MktmePage *page;            /* its R page, while LIVE or DEAD */
    const MktmeXtsKey *c0;      /* KeyID 0's cipher at pa, or NULL */
    const MktmeXtsKey *ck;      /* the KeyID's cipher, or NULL */
    int32_t next;               /* next slot of the same page, or -1 */
} MktmeSlot;

/* A guest RAM page that has slots (live or dead). */
struct MktmePage {
    ram_addr_t ram;             /* its ram_addr */
    uint8_t *r;                 /* its host address */
    hwaddr pa;
    bool r_code;                /* R may hold TBs: keep it protected */
    bool frozen;                /* a KeyID-0 store is landing: no fills */
    int32_t slots;              /* first slot, or -1 */
};

struct MktmeShadow {
    QemuMutex lock;
    QemuRecMutex stripe[SHADOW_STRIPES];

    MktmeShadowCipherFn *ciphers;
    void *opaque;

    MemoryRegion pool;          /* ROM device at MKTME_SHADOW_WINDOW */
    uint8_t *pool_host;
    ram_addr_t pool_ram;
    uint32_t nr_slots;
    MktmeSlot *slots;
    uint32_t *free;             /* stack of free slot indexes */
    uint32_t nr_free;
    uint32_t hand;              /* eviction clock */
    uint32_t live;              /* LIVE slots */
    uint32_t dead;              /* DEAD slots */

    GHashTable *index;          /* pa | keyid -> slot index + 1 */
    GHashTable *pages;          /* ram_addr -> MktmePage */

    /* Pages some TLB may write directly (bit per ram page) */
    unsigned long *writable;
    uint64_t writable_pages;

    uint32_t gen;               /* bumped when every slot is dropped */
    bool epoch_pending;         /* an epoch is queued */
    bool map_changed;           /* the memory map changed (listener) */
    char *off;                  /* set: the fast path is off, and why */

    MemoryListener listener;
    VMChangeStateEntry *vmstate;

    /* counters for query-mktme */
    uint64_t fills, writes, refreshes, evictions;
};

/* The index key of @pa's page through @keyid (KeyIDs have 15 bits) */
#define INDEX_KEY(pa, keyid) \
    GSIZE_TO_POINTER((gsize)((pa) >> TARGET_PAGE_BITS) << 16 | (keyid))

static inline QemuRecMutex *shadow_stripe(MktmeShadow *sh, hwaddr pa)
{
    return &sh->stripe[(pa / SHADOW_PAGE) % SHADOW_STRIPES];
}

static inline uint8_t *slot_host(MktmeShadow *sh, uint32_t i)
{
    return sh->pool_host + (size_t)i * SHADOW_PAGE;
}

/* mktme-shadow.c, mktme-epoch.c */
/*
 * Bring a slot's lines [off, off + len) up to date with R (@zero: with
 * zeroes, R having been discarded); stripe held.
 */
void shadow_refresh(MktmeShadow *sh, MktmeSlot *s, unsigned off,
                    unsigned len, bool zero);
/* Take every slot of @pg out of the index (stripe held) */
void shadow_kill_page_locked(MktmeShadow *sh, MktmePage *pg);
/* Recycle DEAD slots of @pg now: every vCPU is stopped, or the caller */
void shadow_recycle_page_locked(MktmeShadow *sh, MktmePage *pg);
/*
 * An epoch (exclusive work: every vCPU stopped): evict from a full pool,
 * recycle DEAD slots, drop the pool from every TLB.
 * shadow_request_epoch() queues one on the calling vCPU (or the first),
 * unless one is queued.
 */
void shadow_epoch_work(CPUState *cpu, run_on_cpu_data data);
void shadow_request_epoch(MktmeShadow *sh);
/* Turn the fast path off for good with @why. */
void shadow_turn_off(MktmeShadow *sh, const char *why);
/* VM state change handler: a stopped VM loses its slots */
void shadow_vm_state(void *opaque, bool running, RunState state);

/* mktme-watch.c */
void shadow_watch_init(MktmeShadow *sh);
void shadow_watch_cleanup(MktmeShadow *sh);
/* Protect R page @ram against unnoticed writes (a page's first slot) */
bool shadow_watch_page(MktmeShadow *sh, ram_addr_t ram);

#endif
