/*
 * Which RAM blocks are guest DRAM that mktme-guest encrypts: the table
 * the memory controller asks (from any thread) and KVM's marking of each
 * block, hot-plugged ones too.
 *
 * Copyright (c) 2026 The qemu-mktme authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/error-report.h"
#include "mktme-compat.h"
#include "exec/ramlist.h"
#include "mktme.h"
#include "trace.h"

/* Mark one RAM block (TCG: for the memory controller; KVM: in the EPT). */
static void mktme_ram_block_added(RAMBlockNotifier *n, void *host,
                                  size_t size, size_t max_size)
{
    MktmeGuest *mg = container_of(n, MktmeGuest, ram_notifier);
    ram_addr_t offset;
    RAMBlock *rb = qemu_ram_block_from_host(host, false, &offset);
    Error *err = NULL;

    if (!rb || memory_region_is_ram_device(rb->mr) || rb->mr->rom_device) {
        /* Device BARs (VFIO and the like), the shadow pool: not DRAM */
        return;
    }
    if (mg->accel == MKTME_ACCEL_KVM &&
        mktme_kvm_mark_ram(mg, host, max_size, &err) < 0) {
        /* The kernel accepted the key but refused a mapping. */
        error_report_err(err);
        exit(1);
    }
    qemu_mutex_lock(&mg->ram_lock);
    g_hash_table_insert(mg->ram_blocks, rb, GSIZE_TO_POINTER(max_size));
    qatomic_inc(&mg->ram_gen);
    qemu_mutex_unlock(&mg->ram_lock);
    trace_mktme_ram_mark(qemu_ram_get_idstr(rb), max_size);
}

static void mktme_ram_block_removed(RAMBlockNotifier *n, void *host,
                                    size_t size, size_t max_size)
{
    MktmeGuest *mg = container_of(n, MktmeGuest, ram_notifier);
    ram_addr_t offset;
    RAMBlock *rb = qemu_ram_block_from_host(host, false, &offset);

    bool found;

    if (mg->mc && rb) {
        /* Slots of its pages write into it: none may outlive it. */
        mktme_shadow_drop_ram(mg->mc->shadow, rb->offset, rb->max_length);
    } else if (mg->mc) {
        mktme_shadow_drop_all(mg->mc->shadow);
    }
    qemu_mutex_lock(&mg->ram_lock);
    found = rb && g_hash_table_remove(mg->ram_blocks, rb);
    qatomic_inc(&mg->ram_gen);
    qemu_mutex_unlock(&mg->ram_lock);
    if (found) {
        trace_mktme_ram_unmark(qemu_ram_get_idstr(rb), max_size);
    }
}

bool mktme_ram_block_encrypted(MktmeGuest *mg, RAMBlock *rb)
{
    /* The last answer of this thread, while the table stays the same */
    static __thread RAMBlock *last_rb;
    static __thread uint32_t last_gen;
    static __thread bool last_marked;
    uint32_t gen = qatomic_load_acquire(&mg->ram_gen);
    bool marked;

    if (rb == last_rb && gen == last_gen) {
        marked = last_marked;
    } else {
        /* The memory controller asks from any thread; hot-plug inserts. */
        qemu_mutex_lock(&mg->ram_lock);
        marked = g_hash_table_contains(mg->ram_blocks, rb);
        gen = mg->ram_gen;
        qemu_mutex_unlock(&mg->ram_lock);
        last_rb = rb;
        last_gen = gen;
        last_marked = marked;
    }
    /* Firmware images and fw_cfg blobs are ROM, not DRAM. */
    return marked && !rb->mr->readonly && !memory_region_is_rom(rb->mr);
}

uint64_t mktme_encrypted_memory(MktmeGuest *mg)
{
    GHashTableIter it;
    gpointer rb, size;
    uint64_t total = 0;

    /* Under the BQL, which every change of the table holds too. */
    g_hash_table_iter_init(&it, mg->ram_blocks);
    while (g_hash_table_iter_next(&it, &rb, &size)) {
        if (mktme_ram_block_encrypted(mg, rb)) {
            total += GPOINTER_TO_SIZE(size);
        }
    }
    return total;
}

void mktme_start_marking(MktmeGuest *mg)
{
    mg->ram_notifier.ram_block_added = mktme_ram_block_added;
    mg->ram_notifier.ram_block_removed = mktme_ram_block_removed;
    /* Replays every existing block, then follows hot-plug. */
    ram_block_notifier_add(&mg->ram_notifier);
}
