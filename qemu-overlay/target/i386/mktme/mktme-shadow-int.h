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
 *   mktme-pages.c    the records of the guest pages that have slots.
 *
 *   mktme-verify.c   under MTTCG, first slots checked against R once the
 *                    stores under way at their fill have landed.
 *
 *   mktme-writeback.c  write-back slots: stores straight into the slot,
 *                    R brought up to date before anyone else reads it;
 *   mktme-demote.c   which TLBs map R of a page (rmap), and taking pages
 *                    out of write-back mode.
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
#include "qemu/qht.h"
#include "exec/ramlist.h"
#include "mktme-compat.h"
#include "hw/core/cpu.h"
#include "system/runstate.h"
#include "mktme.h"

#define SHADOW_PAGE     4096
#define SHADOW_STRIPES  64
#define SHADOW_MARKS    4       /* pages a vCPU's store may be under way to */

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
    bool wb;                    /* write-back: mapped as RAM, R may lag */
    MktmePage *page;            /* its R page, while LIVE or DEAD */
    const MktmeXtsKey *c0;      /* KeyID 0's cipher at pa, or NULL */
    const MktmeXtsKey *ck;      /* the KeyID's cipher, or NULL */
    int32_t next;               /* next slot of the same page, or -1 */
} MktmeSlot;

/* Free slots a vCPU took for its next fills (mktme-epoch.c) */
#define SHADOW_BATCH    64
typedef struct MktmeSlotBatch {
    uint32_t slot[SHADOW_BATCH];
    uint32_t pos, len;          /* slot[pos..len) are still free */
} MktmeSlotBatch;

/* A guest RAM page that has slots (live or dead). */
struct MktmePage {
    ram_addr_t ram;             /* its ram_addr */
    uint8_t *r;                 /* its host address */
    hwaddr pa;
    bool r_code;                /* R may hold TBs: keep it protected */
    bool frozen;                /* a KeyID-0 store is landing: no fills */
    bool gone;                  /* its RAM block is going: R is no more */
    bool used;                  /* a page has the record (mktme-pages.c) */
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

    /* Write-back slots (mktme-writeback.c) */
    bool wb_on;                 /* the object allows them */
    MemoryRegion pool_rw;       /* the pool again, as RAM, right above */
    ram_addr_t pool_rw_ram;
    uint8_t *snap;              /* per slot: the view R holds now */
    uint16_t *rmap;             /* per R page: whose TLBs may map it */
    uint64_t *rwhere;           /* per R page: where that one TLB has it */
    uint8_t rmap_gen;           /* epoch number in rmap, nowb entries */
    unsigned long *wb;          /* per R page: it has a write-back slot */
    uint8_t *nowb;              /* per R page: none until the next epoch */
    GArray *demote;             /* R pages to demote at the next epoch */
    uint32_t wb_slots;          /* slots in write-back mode */
    uint32_t wb_refusals;       /* fills refused it since the epoch */
    int midaccess;              /* vCPUs stopped halfway through an access */
    uint32_t nr_slots;
    MktmeSlot *slots;
    uint32_t *free;             /* stack of free slot indexes */
    uint32_t nr_free;
    MktmeSlotBatch *batches;    /* per vCPU (cpu_index < nr_batches) */
    unsigned nr_batches;
    uint32_t resv_batch;        /* slots a batch takes */
    uint32_t resv_total;        /* free slots in batches */
    uint32_t touched;           /* slots below this one were ever filled */
    bool prefaulting;           /* @prefault was started */
    QemuThread prefault;        /* faults the pool in (mktme_shadow_prefault) */
    uint32_t hand;              /* eviction clock */
    uint32_t live;              /* LIVE slots */
    uint32_t dead;              /* DEAD slots */

    struct qht index;           /* (pa, keyid) -> LIVE slot; RCU lookups */
    uint64_t **near;            /* per page: newest slot (near_entry) */
    /* Page records by ram_addr (mktme-pages.c) */
    MktmePage *recs;            /* nr_slots of them */
    uint32_t *recs_free;        /* stack of free record indexes */
    uint32_t recs_nr_free;
    uint32_t recs_touched;      /* records below this one were ever used */
    uint32_t **tab;             /* per GiB of ram_addr space: per page, */
    size_t tab_len;             /* its record's index + 1, or 0 */

    /* Pages some TLB may write directly (bit per ram page) */
    unsigned long *writable;
    uint64_t writable_pages;
    bool armed;                 /* the TLB hooks are on (shadow_arm_work) */
    bool arm_pending;           /* their switch-on is queued */

    /*
     * Per vCPU (and a group for cpu_indexes past max_cpus), SHADOW_MARKS
     * entries: the pages, | 1, of its last stores that called the
     * cpu_write hook (watch_cpu_write()), which may still be landing; 0
     * after an epoch.  @unseen_next: which entry is next.
     */
    uint64_t *unseen;
    unsigned *unseen_next;
    unsigned nr_unseen;         /* entries: SHADOW_MARKS per vCPU */

    /* First fills under MTTCG, to compare with R later (mktme-verify.c) */
    QemuThread verify;
    QemuCond verify_cond;       /* with sh->lock: pages queued, closing */
    GArray *verify_next;        /* pages queued for the next grace period */
    bool verify_all;            /* the queue overflowed: every page */
    bool verify_started;        /* @verify runs */
    bool verify_closing;        /* it must stop */

    uint32_t gen;               /* bumped when every slot is dropped */
    bool epoch_pending;         /* an epoch is queued */
    bool map_changed;           /* the memory map changed (listener) */
    char *off;                  /* set: the fast path is off, and why */

    MemoryListener listener;
    VMChangeStateEntry *vmstate;

    /* counters for query-mktme */
    uint64_t fills, writes, refreshes, evictions;
    uint64_t write_backs, demotions;
};

/* What the index looks up: a guest page through a KeyID */
typedef struct MktmeIndexKey {
    hwaddr pa;                  /* page aligned */
    uint16_t keyid;
} MktmeIndexKey;

/* index_cmp() compares a slot being inserted as a key */
QEMU_BUILD_BUG_ON(offsetof(MktmeSlot, pa) != offsetof(MktmeIndexKey, pa));
QEMU_BUILD_BUG_ON(offsetof(MktmeSlot, keyid) !=
                  offsetof(MktmeIndexKey, keyid));

static inline uint32_t index_hash(hwaddr pa, uint16_t keyid)
{
    uint64_t v = (pa >> TARGET_PAGE_BITS) << 16 | keyid;

    return (v * 0x9e3779b97f4a7c15ULL) >> 32;
}

/*
 * The index's fast lane, for TLB fills: per guest page below NEAR_LIMIT,
 * the page's newest LIVE slot and its KeyID, in chunks of NEAR_CHUNK
 * bytes of guest memory allocated at the first fill in them.  A pass
 * over guest memory reads it in address order, where the hash table's
 * buckets, at random, each cost a cache miss: qht_lookup() was the
 * largest cost of a KeyID-1 TLB fill.  Written under sh->lock where
 * the index is (fill, kill); read with no lock, as the index is.
 */
#define NEAR_LIMIT  (1ULL << 46)
#define NEAR_CHUNK  (1ULL << 30)
#define NEAR_PAGES  (NEAR_CHUNK >> TARGET_PAGE_BITS)

/*
 * An entry: 0, the page has no LIVE slot (so a lookup needs no hash);
 * near_entry(), its newest slot, and maybe others; NEAR_OTHERS, it may
 * have LIVE slots, none of them that one.
 */
#define NEAR_OTHERS (1ULL << 48)

static inline uint64_t near_entry(uint32_t slot, uint16_t keyid)
{
    return (uint64_t)keyid << 32 | (slot + 1);
}

/* @pa's entry, or NULL if it has no chunk (and @alloc is false) */
static inline uint64_t *shadow_near(MktmeShadow *sh, hwaddr pa, bool alloc)
{
    uint64_t *chunk;

    if (pa >= NEAR_LIMIT) {
        return NULL;
    }
    chunk = qatomic_load_acquire(&sh->near[pa / NEAR_CHUNK]);
    if (!chunk && alloc) {
        chunk = g_new0(uint64_t, NEAR_PAGES);
        qatomic_store_release(&sh->near[pa / NEAR_CHUNK], chunk);
    }
    return chunk ? &chunk[(pa % NEAR_CHUNK) >> TARGET_PAGE_BITS] : NULL;
}

static inline QemuRecMutex *shadow_stripe(MktmeShadow *sh, hwaddr pa)
{
    return &sh->stripe[(pa / SHADOW_PAGE) % SHADOW_STRIPES];
}

static inline uint8_t *slot_host(MktmeShadow *sh, uint32_t i)
{
    return sh->pool_host + (size_t)i * SHADOW_PAGE;
}

/*
 * The slot of pool page @ram in either view (ROM device or RAM), or -1.
 * TCG finds the page of a TB from its host address, which the two views
 * share: a slot's TBs may be filed under either.
 */
static inline int64_t pool_slot_of(MktmeShadow *sh, ram_addr_t ram)
{
    ram_addr_t size = (ram_addr_t)sh->nr_slots * SHADOW_PAGE;

    if (ram >= sh->pool_ram && ram - sh->pool_ram < size) {
        return (ram - sh->pool_ram) / SHADOW_PAGE;
    }
    if (sh->wb_on && ram >= sh->pool_rw_ram && ram - sh->pool_rw_ram < size) {
        return (ram - sh->pool_rw_ram) / SHADOW_PAGE;
    }
    return -1;
}

/* Drop the TBs of [@off, +@len) of slot @i, in both views */
static inline void slot_drop_tbs(MktmeShadow *sh, uint32_t i, unsigned off,
                                 unsigned len)
{
    ram_addr_t o = (ram_addr_t)i * SHADOW_PAGE + off;

    tb_invalidate_phys_range(sh->pool_ram + o, sh->pool_ram + o + len - 1);
    if (sh->wb_on) {
        tb_invalidate_phys_range(sh->pool_rw_ram + o,
                                 sh->pool_rw_ram + o + len - 1);
    }
}

static inline uint8_t *slot_snap(MktmeShadow *sh, uint32_t i)
{
    return sh->snap + (size_t)i * SHADOW_PAGE;
}

static inline uint64_t ld_atomic(const uint8_t *p)
{
    return qatomic_read((const uint64_t *)p);
}

/* 8-byte stores: a concurrent aligned load sees old or new, never both */
static inline void copy_line(uint8_t *dst, const uint8_t *src, unsigned len)
{
    for (unsigned i = 0; i < len; i += 8) {
        qatomic_set((uint64_t *)(dst + i), *(const uint64_t *)(src + i));
    }
}

static inline void read_line(uint8_t *dst, const uint8_t *src, unsigned len)
{
    for (unsigned i = 0; i < len; i += 8) {
        *(uint64_t *)(dst + i) = ld_atomic(src + i);
    }
}

/* Has R page @ram a write-back slot (live, or DEAD and maybe mapped)? */
static inline bool shadow_page_is_wb(MktmeShadow *sh, ram_addr_t ram)
{
    uint64_t page = ram >> TARGET_PAGE_BITS;

    return sh->wb_on && page < sh->writable_pages && test_bit(page, sh->wb);
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
/*
 * sh->lock held: is a free slot left for this vCPU's next fill; take it
 * (only if so); give back the slot just taken.
 */
bool shadow_slot_available(MktmeShadow *sh);
uint32_t shadow_slot_take(MktmeShadow *sh);
void shadow_slot_untake(MktmeShadow *sh, uint32_t i);
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

/* mktme-writeback.c */
void shadow_wb_init(MktmeShadow *sh);
void shadow_wb_cleanup(MktmeShadow *sh);
/*
 * May the slot being filled for the new page @pg (of block @rb) be a
 * write-back slot?  Stripe held.  If so, the page's wb bit is set.
 */
bool shadow_wb_choose(MktmeShadow *sh, MktmePage *pg, RAMBlock *rb);
/* Bring R up to date with @pg's write-back slots (stripe held) */
void shadow_wb_sync_page_locked(MktmeShadow *sh, MktmePage *pg);
/* The same for every page; @stripes_held: all of them, else none */
void shadow_wb_sync_all(MktmeShadow *sh, bool stripes_held);
/*
 * Slot @s of @pg leaves write-back mode (its last stores written back,
 * or of no use): the page's wb bit goes with its last such slot.
 */
void shadow_wb_slot_done(MktmeShadow *sh, MktmePage *pg, MktmeSlot *s);

/* mktme-demote.c */
/*
 * Epoch part (every vCPU stopped, every stripe held, sh->lock not):
 * demote what waits for it, write back and leave write-back mode for
 * DEAD slots, drop guest RAM from every TLB and forget who mapped it.
 */
void shadow_wb_epoch_locked(MktmeShadow *sh);
/* RAMWatchOps members */
void shadow_wb_installing(CPUState *cs, vaddr addr, int mmu_idx,
                          ram_addr_t ram, bool may_wait, uintptr_t ra);
/*
 * Give TLB_NOTDIRTY to every TLB entry that may write R page @ram at
 * @host: only those sh->rmap and sh->rwhere name, where they can tell.
 */
void shadow_wb_reset_dirty(MktmeShadow *sh, ram_addr_t ram, void *host);
void shadow_wb_accessing(ram_addr_t ram, ram_addr_t len);

/* mktme-pages.c: page records, all under sh->lock */
void shadow_pages_init(MktmeShadow *sh);
void shadow_pages_cleanup(MktmeShadow *sh);
/* The record of R page @ram, or NULL */
MktmePage *shadow_page_of(MktmeShadow *sh, ram_addr_t ram);
/* A new record for R page @ram (none yet), or NULL if none is left */
MktmePage *shadow_page_new(MktmeShadow *sh, ram_addr_t ram, uint8_t *r,
                           hwaddr pa);
void shadow_page_free(MktmeShadow *sh, MktmePage *pg);
/*
 * The record in use after @pg (the first if NULL), or NULL: records
 * freed meanwhile, @pg too, are skipped.
 */
MktmePage *shadow_page_next(MktmeShadow *sh, MktmePage *pg);

/* mktme-verify.c */
void shadow_verify_init(MktmeShadow *sh);
/* Stops the thread; no vCPU runs */
void shadow_verify_cleanup(MktmeShadow *sh);
/*
 * @pg got its first slot (sh->lock held): under MTTCG, compare its
 * slots with R once every store under way now has landed.
 */
void shadow_verify_later(MktmeShadow *sh, MktmePage *pg);

/* mktme-watch.c */
/* The fast path that watches guest RAM, or NULL */
MktmeShadow *shadow_watched(void);
/*
 * The record of R page @ram with its stripe (*@stripe) held, or NULL if
 * the page has none.
 */
MktmePage *shadow_lock_page_of(MktmeShadow *sh, ram_addr_t ram,
                               QemuRecMutex **stripe);
void shadow_watch_init(MktmeShadow *sh);
/*
 * The first fill: switch the TLB hooks on in exclusive work queued on
 * the calling vCPU, which fills nothing until then.
 */
void shadow_request_arm(MktmeShadow *sh);
void shadow_watch_cleanup(MktmeShadow *sh);
/*
 * Protect R page @ram, at host address @r, against unnoticed writes (a
 * page's first slot)
 */
bool shadow_watch_page(MktmeShadow *sh, ram_addr_t ram, void *r);
/*
 * Under sh->lock: a store to @ram that saw no page record may still be
 * landing on another vCPU (watch_cpu_write()), so a fill must not copy
 * R yet.
 */
bool shadow_store_unseen(MktmeShadow *sh, ram_addr_t ram);

#endif
