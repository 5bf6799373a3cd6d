/*
 * The emulated TME-MK memory controller's fast path: plaintext shadows.
 *
 * A page of guest RAM that a vCPU uses through a KeyID whose view differs
 * from KeyID 0's gets a slot: a host page in a pool holding its plaintext
 * P = D_k(E_0(R)).  The pool is a ROM device at MKTME_SHADOW_WINDOW, out
 * of the guest's reach, and the IOMMU translate callback of the KeyID
 * range hands slots to TCG's TLB fills: loads and instruction fetches
 * read the slot directly, stores come to slot_write() below, which
 * writes the line through to R (R := D_0(E_k(P))) and updates the slot
 * and every other slot of the page.  R is therefore always current: DMA,
 * system calls on mapped guest memory (block I/O, tap), migration, dumps
 * and vhost read it as they would without the fast path, whatever the
 * RAM backend.
 *
 * What writes R other than slot_write() must bring the slots up to date
 * (mktme-watch.c): a slot's R page is write-protected through TCG's
 * DIRTY_MEMORY_CODE bitmap, as a page with code is.  DMA and other
 * address_space_*() writes and discards refresh the slots' lines after
 * the write; a vCPU store through KeyID 0 takes the page's slots away
 * before it lands, in an exclusive section, so that no vCPU can read a
 * slot that misses it.
 *
 * A slot leaves the index (DEAD) when its view may have changed (key or
 * activation change, memory map change, reset, a KeyID-0 store, a RAM
 * block going) or when the pool is full; an epoch (exclusive work, the
 * vCPUs stopped) then flushes every TLB and puts dead slots back on the
 * free list.  Epochs evict the oldest eighth of the pool when it is full.
 *
 * Copyright (c) 2026 The qemu-mktme authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/error-report.h"
#include "qemu/main-loop.h"
#include "qemu/rcu.h"
#include "qemu/timer.h"
#include "qemu/units.h"
#include "qapi/error.h"
#include "mktme-compat.h"
#include "exec/cputlb.h"
#include "hw/boards.h"
#include "hw/core/cpu.h"
#include "system/cpus.h"
#include "system/runstate.h"
#include "mktme-shadow-int.h"
#include "trace.h"

/* R (KeyID 0's view) -> what the KeyID reads, in place */
static void view_of_r(const MktmeXtsKey *c0, const MktmeXtsKey *ck,
                      hwaddr pa, uint8_t *buf, unsigned lines)
{
    mktme_xts_recrypt_lines(c0, ck, pa, buf, buf, lines);
}

static void slot_code_changed(MktmeShadow *sh, uint32_t i, unsigned off,
                              unsigned len)
{
    if (qatomic_read(&sh->slots[i].has_code)) {
        slot_drop_tbs(sh, i, off, len);
    }
}

void shadow_refresh(MktmeShadow *sh, MktmeSlot *s, unsigned off,
                    unsigned len, bool zero)
{
    uint32_t i = s - sh->slots;
    const MktmeXtsKey *c0 = s->c0, *ck = s->ck;
    uint8_t buf[SHADOW_PAGE] QEMU_UNINITIALIZED;

    assert(QEMU_IS_ALIGNED(off | len, MKTME_LINE_SIZE));
    if (s->state == SLOT_DEAD) {
        /* Maybe dropped for a re-key: the current keys. */
        sh->ciphers(sh->opaque, s->pa, s->keyid, &c0, &ck);
    }
    if (zero || qatomic_read(&s->page->gone)) {
        memset(buf, 0, len);
    } else {
        read_line(buf, s->page->r + off, len);
    }
    view_of_r(c0, ck, s->pa + off, buf, len / MKTME_LINE_SIZE);
    copy_line(slot_host(sh, i) + off, buf, len);
    if (s->wb) {
        /* What R holds now: nothing of these lines to write back */
        memcpy(slot_snap(sh, i) + off, buf, len);
    }
    mktme_wipe(buf, len);
    slot_code_changed(sh, i, off, len);
    qatomic_add(&sh->refreshes, len / MKTME_LINE_SIZE);
}

/*
 * A store of @size bytes at @addr in the pool, from a vCPU (the pool is
 * a ROM device: reads never come here).  Accesses never cross a line.
 */
static MemTxResult slot_write(void *opaque, hwaddr addr, uint64_t data,
                              unsigned size, MemTxAttrs attrs)
{
    MktmeShadow *sh = opaque;
    uint32_t i = addr / SHADOW_PAGE;
    unsigned off = addr % SHADOW_PAGE & ~(MKTME_LINE_SIZE - 1);
    MktmeSlot *s = &sh->slots[i];
    const MktmeXtsKey *c0, *ck;
    uint8_t p[MKTME_LINE_SIZE], r[MKTME_LINE_SIZE];
    QemuRecMutex *stripe;
    MktmePage *pg;
    hwaddr pa;

    if (!current_cpu || i >= sh->nr_slots) {
        /* Not a vCPU (the monitor, a device): the pool is not memory. */
        return MEMTX_OK;
    }
    /* Slots are recycled only by epochs, which this vCPU holds off. */
    pa = qatomic_read(&s->pa);
    stripe = shadow_stripe(sh, pa);
    qemu_rec_mutex_lock(stripe);
    if ((s->state != SLOT_LIVE && s->state != SLOT_DEAD) || s->pa != pa) {
        qemu_rec_mutex_unlock(stripe);
        return MEMTX_OK;
    }
    pg = s->page;
    if (qatomic_read(&pg->gone)) {
        /* Its RAM block is being unplugged: the store goes nowhere. */
        qemu_rec_mutex_unlock(stripe);
        return MEMTX_OK;
    }
    if (s->state == SLOT_LIVE) {
        c0 = s->c0;
        ck = s->ck;
        read_line(p, slot_host(sh, i) + off, MKTME_LINE_SIZE);
    } else {
        /* Its view may be stale (a re-key): start from R, current keys. */
        sh->ciphers(sh->opaque, pa, s->keyid, &c0, &ck);
        read_line(p, pg->r + off, MKTME_LINE_SIZE);
        view_of_r(c0, ck, pa + off, p, 1);
    }
    stn_le_p(p + addr % MKTME_LINE_SIZE, size, data);
    memcpy(r, p, sizeof(r));
    mktme_xts_recrypt_lines(ck, c0, pa + off, r, r, 1);
    copy_line(pg->r + off, r, MKTME_LINE_SIZE);
    /* DEAD slots may still be in TLBs (until the epoch): keep them too. */
    copy_line(slot_host(sh, i) + off, p, MKTME_LINE_SIZE);
    slot_code_changed(sh, i, off, MKTME_LINE_SIZE);
    for (int32_t j = pg->slots; j >= 0; j = sh->slots[j].next) {
        if (j != i) {
            shadow_refresh(sh, &sh->slots[j], off, MKTME_LINE_SIZE, false);
        }
    }
    /* R changed behind TCG: its code, migration and display must know. */
    if (pg->r_code) {
        tb_invalidate_phys_range(pg->ram + off,
                                 pg->ram + off + MKTME_LINE_SIZE - 1);
    }
    cpu_physical_memory_set_dirty_range(pg->ram + off, MKTME_LINE_SIZE,
                                        DIRTY_CLIENTS_NOCODE);
    qemu_rec_mutex_unlock(stripe);
    mktme_wipe(p, sizeof(p));
    mktme_wipe(r, sizeof(r));
    qatomic_add(&sh->writes, 1);
    return MEMTX_OK;
}

static MemTxResult slot_read(void *opaque, hwaddr addr, uint64_t *data,
                             unsigned size, MemTxAttrs attrs)
{
    MktmeShadow *sh = opaque;

    /* Only reached with ROMD mode off, which never happens. */
    *data = ldn_le_p(sh->pool_host + addr, size);
    return MEMTX_OK;
}

QemuRecMutex *mktme_shadow_lock_page(MktmeShadow *sh, hwaddr pa)
{
    QemuRecMutex *stripe;

    if (!sh) {
        return NULL;
    }
    stripe = shadow_stripe(sh, pa);
    qemu_rec_mutex_lock(stripe);
    return stripe;
}

static const MemoryRegionOps slot_ops = {
    .read_with_attrs = slot_read,
    .write_with_attrs = slot_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = { .min_access_size = 1, .max_access_size = 8,
               .unaligned = true },
    .impl = { .min_access_size = 1, .max_access_size = 8,
              .unaligned = false },
};

static bool index_cmp(const void *p, const void *userp)
{
    const MktmeSlot *s = p;
    const MktmeIndexKey *k = userp;

    return qatomic_read(&s->pa) == k->pa && qatomic_read(&s->keyid) == k->keyid;
}

/*
 * The LIVE slot of @pa's page through @keyid, or NULL; any lock or none.
 * The near table answers first: a page without a LIVE slot (every
 * first-pass fill) or whose newest slot is the one costs no hash lookup.
 * Every fill below NEAR_LIMIT writes its entry (and allocates its chunk).
 */
static MktmeSlot *index_lookup(MktmeShadow *sh, hwaddr pa, uint16_t keyid)
{
    MktmeIndexKey k = { .pa = pa & TARGET_PAGE_MASK, .keyid = keyid };

    if (pa < NEAR_LIMIT) {
        uint64_t *near = shadow_near(sh, pa, false);
        uint64_t e = near ? qatomic_load_acquire(near) : 0;

        if (!e) {
            return NULL;
        }
        if (e >> 32 == keyid && (uint32_t)e) {
            return &sh->slots[(uint32_t)e - 1];
        }
    }
    RCU_READ_LOCK_GUARD();
    return qht_lookup(&sh->index, &k, index_hash(k.pa, keyid));
}

int64_t mktme_shadow_find(MktmeShadow *sh, hwaddr pa, uint16_t keyid)
{
    MktmeSlot *s;

    if (!qatomic_read(&sh->live)) {
        return -1;
    }
    /* Without a lock: every vCPU's TLB fills come here. */
    s = index_lookup(sh, pa, keyid);
    return s ? s - sh->slots : -1;
}

bool mktme_shadow_usable(MktmeShadow *sh, IOMMUAccessFlags flag)
{
    /*
     * TCG's TLB fills ask with IOMMU_NONE; anything else (DMA, monitor,
     * address_space_map) gets the crypto region.
     */
    return sh && !qatomic_read(&sh->off) && flag == IOMMU_NONE &&
           current_cpu;
}

/* Is @pa a page of guest RAM a slot can shadow?  Fill in @ram, @r, @rb. */
static bool shadow_ram_page(hwaddr pa, ram_addr_t *ram, uint8_t **r,
                            RAMBlock **rb)
{
    hwaddr xlat, len = SHADOW_PAGE;
    MemoryRegion *mr;

    /* No reference taken: every vCPU's fills come here at once. */
    RCU_READ_LOCK_GUARD();
    mr = address_space_translate(&address_space_memory, pa, &xlat, &len,
                                 false, MEMTXATTRS_UNSPECIFIED);
    if (len < SHADOW_PAGE || !memory_region_is_ram(mr) ||
        memory_region_is_ram_device(mr) || mr->readonly ||
        memory_region_is_rom(mr) || !mr->ram_block) {
        return false;
    }
    *r = (uint8_t *)memory_region_get_ram_ptr(mr) + xlat;
    *ram = memory_region_get_ram_addr(mr) + xlat;
    *rb = mr->ram_block;
    return true;
}

int64_t mktme_shadow_get(MktmeShadow *sh, hwaddr pa, uint16_t keyid)
{
    QemuRecMutex *stripe = shadow_stripe(sh, pa);
    const MktmeXtsKey *c0, *ck;
    MktmePage *pg;
    MktmeSlot *s;
    ram_addr_t ram;
    uint8_t *r, *host;
    RAMBlock *rb;
    gpointer v;
    uint64_t *near;
    uint32_t i;
    bool watch = false, wb = false;
    uint32_t gen = qatomic_load_acquire(&sh->gen);

    if (unlikely(!qatomic_load_acquire(&sh->armed))) {
        /* The crypto region serves until the TLB hooks are on. */
        shadow_request_arm(sh);
        return -1;
    }
    pa &= TARGET_PAGE_MASK;
    if (!shadow_ram_page(pa, &ram, &r, &rb)) {
        return -1;
    }
    sh->ciphers(sh->opaque, pa, keyid, &c0, &ck);

    /*
     * A TLB fill for code runs with a TCG page lock held, which holders
     * of the stripe may wait for (TB invalidation): only try it.
     */
    if (qemu_rec_mutex_trylock(stripe) != 0) {
        return -1;
    }
    qemu_mutex_lock(&sh->lock);
    pg = shadow_page_of(sh, ram);
    v = index_lookup(sh, pa, keyid);
    if (sh->gen != gen || (pg && pg->frozen) ||
        (!v && pg && shadow_page_is_wb(sh, ram))) {
        /*
         * Keys or the map changed since the lookups, or a store lands;
         * or a write-back slot has the page: the crypto region, which
         * syncs it, serves the other KeyIDs.
         */
        qemu_mutex_unlock(&sh->lock);
        qemu_rec_mutex_unlock(stripe);
        return -1;
    }
    if (v || sh->off || !shadow_slot_available(sh)) {
        bool full = !v && !sh->off;

        qemu_mutex_unlock(&sh->lock);
        qemu_rec_mutex_unlock(stripe);
        if (full) {
            /* This access takes the crypto region; the epoch evicts. */
            shadow_request_epoch(sh);
        }
        return v ? (MktmeSlot *)v - sh->slots : -1;
    }
    if (shadow_store_unseen(sh, ram)) {
        /* A store unseen by the hooks may land after the copy: later. */
        qemu_mutex_unlock(&sh->lock);
        qemu_rec_mutex_unlock(stripe);
        trace_mktme_shadow_fill_unseen(pa, keyid);
        shadow_request_epoch(sh);
        return -1;
    }
    i = shadow_slot_take(sh);
    sh->touched = MAX(sh->touched, i + 1);
    s = &sh->slots[i];
    s->state = SLOT_FILLING;
    if (!pg) {
        /* (Never NULL: fewer records than slots in use, this one aside) */
        pg = shadow_page_new(sh, ram, r, pa);
        watch = true;
    }
    if (!pg || pg->pa != pa) {
        /*
         * The same RAM at a second address (an alias, or the map moved
         * and the epoch has not run yet): the crypto region serves it.
         */
        s->state = SLOT_FREE;
        shadow_slot_untake(sh, i);
        qemu_mutex_unlock(&sh->lock);
        qemu_rec_mutex_unlock(stripe);
        return -1;
    }
    qemu_mutex_unlock(&sh->lock);

    if (watch && !shadow_watch_page(sh, ram, r)) {
        qemu_mutex_lock(&sh->lock);
        pg->r_code = true;
        qemu_mutex_unlock(&sh->lock);
    }
    /* A new page, used through one KeyID so far: stores may go straight */
    wb = watch && shadow_wb_choose(sh, pg, rb);
    host = slot_host(sh, i);
    /*
     * Straight from R: a write to it meanwhile refreshes the slot.  A
     * write-back slot's snapshot streams from the same registers.  With
     * no cipher, R is read with 8-byte loads and the engine only copies.
     */
    if (!c0 && !ck) {
        read_line(host, r, SHADOW_PAGE);
    }
    mktme_xts_recrypt_lines_copy(c0, ck, pa, host,
                                 wb ? slot_snap(sh, i) : NULL,
                                 c0 || ck ? r : host,
                                 SHADOW_PAGE / MKTME_LINE_SIZE);

    qemu_mutex_lock(&sh->lock);
    *s = (MktmeSlot) {
        .pa = pa, .keyid = keyid, .state = SLOT_LIVE, .page = pg,
        .c0 = c0, .ck = ck, .next = pg->slots, .wb = wb,
    };
    if (wb) {
        qatomic_set(&sh->wb_slots, sh->wb_slots + 1);
    }
    pg->slots = i;
    /*
     * Refused only for a second slot of (pa, KeyID): while a map change
     * waits for its commit, two records may have one pa.  The near entry
     * then finds the new slot, and the commit drops both.
     */
    qht_insert(&sh->index, s, index_hash(pa, keyid), NULL);
    near = shadow_near(sh, pa, true);
    if (near) {
        qatomic_store_release(near, near_entry(i, keyid));
    }
    qatomic_set(&sh->live, sh->live + 1);
    sh->fills++;
    if (watch) {
        shadow_verify_later(sh, pg);
    }
    qemu_mutex_unlock(&sh->lock);
    qemu_rec_mutex_unlock(stripe);
    trace_mktme_shadow_fill(pa, keyid, i, wb);
    return i;
}

hwaddr mktme_shadow_slot_addr(MktmeShadow *sh, int64_t slot)
{
    /* Write-back slots are in the RAM view of the pool, right above it */
    hwaddr base = qatomic_read(&sh->slots[slot].wb) ?
                  (hwaddr)sh->nr_slots * SHADOW_PAGE : 0;

    return MKTME_SHADOW_WINDOW + base + slot * SHADOW_PAGE;
}

MktmeShadow *mktme_shadow_new(uint64_t size, bool write_back,
                              MktmeShadowCipherFn *ciphers,
                              void *opaque, char **why)
{
    uint32_t slots = size / SHADOW_PAGE;
    unsigned cpus = MAX(MACHINE(qdev_get_machine())->smp.max_cpus, 1);
    Error *err = NULL;
    MktmeShadow *sh;

    if (!slots) {
        *why = g_strdup("shadow-size=0");
        return NULL;
    }
    sh = g_new0(MktmeShadow, 1);
    if (!memory_region_init_rom_device_nomigrate(&sh->pool, NULL, &slot_ops,
                                                 sh, "mktme-shadow",
                                                 (uint64_t)slots * SHADOW_PAGE,
                                                 &err)) {
        *why = g_strdup_printf("no memory for the shadow pool: %s",
                               error_get_pretty(err));
        error_free(err);
        g_free(sh);
        return NULL;
    }
    /* Stores through slots: every vCPU at once, from any instruction */
    memory_region_enable_lockless_anywhere(&sh->pool);
    sh->pool_host = memory_region_get_ram_ptr(&sh->pool);
    /*
     * Not faulted in yet: a guest that never programs a key costs no
     * host memory for it (mktme_shadow_prefault()).
     */
    sh->pool_ram = memory_region_get_ram_addr(&sh->pool);
    sh->ciphers = ciphers;
    sh->opaque = opaque;
    sh->wb_on = write_back;
    sh->nr_slots = slots;
    sh->slots = g_new0(MktmeSlot, slots);
    sh->free = g_new(uint32_t, slots);
    for (uint32_t i = 0; i < slots; i++) {
        sh->slots[i].next = -1;
        sh->free[i] = slots - 1 - i;
    }
    sh->nr_free = slots;
    /* SHADOW_MARKS per possible vCPU, and as many for any other */
    sh->nr_unseen = SHADOW_MARKS * (cpus + 1);
    sh->unseen = g_new0(uint64_t, sh->nr_unseen);
    sh->unseen_next = g_new0(unsigned, cpus + 1);
    /* A batch of free slots per vCPU: at most 1/16 of the pool in all */
    sh->nr_batches = cpus;
    sh->resv_batch = MIN(SHADOW_BATCH, slots / (16 * sh->nr_batches));
    sh->batches = g_new0(MktmeSlotBatch, sh->nr_batches);
    qht_init(&sh->index, index_cmp, slots, QHT_MODE_AUTO_RESIZE);
    /* (virtual memory: the pages of it that fills touch) */
    sh->near = g_new0(uint64_t *, NEAR_LIMIT / NEAR_CHUNK);
    shadow_pages_init(sh);
    qemu_mutex_init(&sh->lock);
    for (int i = 0; i < SHADOW_STRIPES; i++) {
        qemu_rec_mutex_init(&sh->stripe[i]);
    }
    memory_region_add_subregion_overlap(mktme_cpu_memory(),
                                        MKTME_SHADOW_WINDOW, &sh->pool, 1);
    sh->vmstate = qemu_add_vm_change_state_handler(shadow_vm_state, sh);
    shadow_watch_init(sh);
    shadow_wb_init(sh);
    shadow_verify_init(sh);
    trace_mktme_shadow_init(slots, (uint64_t)slots * SHADOW_PAGE);
    return sh;
}

/*
 * Fault [@p, +@len) in writable, its bytes unchanged: an atomic add of 0
 * per page, as fills and vCPUs may store there meanwhile.  (Faster than
 * MADV_POPULATE_WRITE, which took 30 times as long on huge pages.)
 */
static void shadow_touch(uint8_t *p, size_t len)
{
    for (size_t off = 0; off < len; off += SHADOW_PAGE) {
        qatomic_fetch_add(p + off, 0);
    }
}

static void *shadow_prefault_thread(void *opaque)
{
    MktmeShadow *sh = opaque;
    size_t size = (size_t)sh->nr_slots * SHADOW_PAGE;
    int64_t t0 = get_clock();

    shadow_touch(sh->pool_host, size);
    if (sh->snap) {
        shadow_touch(sh->snap, size);
    }
    trace_mktme_shadow_prefault((uint64_t)size * (sh->snap ? 2 : 1),
                                (get_clock() - t0) / 1000);
    return NULL;
}

void mktme_shadow_prefault(MktmeShadow *sh)
{
    /*
     * The host zeroing the pool's pages would cost the first fills more
     * than their crypto: fault them in ahead, off the vCPUs' threads.
     * shadow-size is the budget the user gave.
     */
    if (sh && !sh->prefaulting) {
        sh->prefaulting = true;
        qemu_thread_create(&sh->prefault, "mktme-prefault",
                           shadow_prefault_thread, sh, QEMU_THREAD_JOINABLE);
    }
}

/*
 * At exit or on a failed start only (an mktme-guest in use cannot be
 * deleted).  Arm or epoch work still queued on a vCPU runs first
 * (shadow_watch_cleanup()).
 */
void mktme_shadow_free(MktmeShadow *sh)
{
    if (!sh) {
        return;
    }
    if (sh->prefaulting) {
        qemu_thread_join(&sh->prefault);
    }
    shadow_verify_cleanup(sh);
    shadow_watch_cleanup(sh);
    shadow_wb_cleanup(sh);
    qemu_del_vm_change_state_handler(sh->vmstate);
    memory_region_del_subregion(mktme_cpu_memory(), &sh->pool);
    object_unparent(OBJECT(&sh->pool));
    /* Plaintext of guest pages: wipe before the pool goes. */
    mktme_wipe(sh->pool_host, (size_t)sh->touched * SHADOW_PAGE);
    qht_destroy(&sh->index);
    for (size_t c = 0; c < NEAR_LIMIT / NEAR_CHUNK; c++) {
        g_free(sh->near[c]);
    }
    g_free(sh->near);
    shadow_pages_cleanup(sh);
    g_free(sh->slots);
    g_free(sh->free);
    g_free(sh->unseen);
    g_free(sh->unseen_next);
    g_free(sh->batches);
    g_free(sh->off);
    g_free(sh);
}

void mktme_shadow_info(MktmeShadow *sh, MktmeFastPath *fp)
{
    if (!sh) {
        return;
    }
    qemu_mutex_lock(&sh->lock);
    fp->slots = sh->nr_slots;
    fp->in_use = sh->nr_slots - sh->nr_free - sh->resv_total;
    fp->fills = sh->fills;
    fp->writes = qatomic_read(&sh->writes);
    fp->refreshes = qatomic_read(&sh->refreshes);
    fp->evictions = sh->evictions;
    fp->write_back_slots = qatomic_read(&sh->wb_slots);
    fp->write_backs = qatomic_read(&sh->write_backs);
    fp->demotions = qatomic_read(&sh->demotions);
    if (sh->off) {
        fp->off_reason = g_strdup(sh->off);
    }
    qemu_mutex_unlock(&sh->lock);
}
