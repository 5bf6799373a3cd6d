/*
 * The TME-MK fast path's page records (MktmePage): one per guest RAM
 * page that has slots, found by its ram_addr.
 *
 * A record lives while its page has a slot (FILLING, LIVE or DEAD), so
 * there are never more records than slots: they come from a pool of
 * nr_slots records, handed out from a stack (the lowest first, so that
 * walks over them look at few), and never move while in use (slots and
 * stripe holders keep pointers to them).  A two-level table maps a RAM
 * page to its record's index + 1: per GiB of ram_addr space a chunk of
 * 2^18 entries, allocated at its first record.  A fill's lookup and
 * insert are then a few loads and stores, where a GHashTable cost a
 * malloc, a hash and a probe (3% of a first pass through a KeyID).
 *
 * Everything here runs under sh->lock.
 *
 * Copyright (c) 2026 The qemu-mktme authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/units.h"
#include "mktme-compat.h"
#include "mktme-shadow-int.h"

#define TAB_CHUNK_BITS  (30 - TARGET_PAGE_BITS)
#define TAB_CHUNK       (1u << TAB_CHUNK_BITS)

void shadow_pages_init(MktmeShadow *sh)
{
    sh->recs = g_new0(MktmePage, sh->nr_slots);
    sh->recs_free = g_new(uint32_t, sh->nr_slots);
    for (uint32_t i = 0; i < sh->nr_slots; i++) {
        sh->recs_free[i] = sh->nr_slots - 1 - i;
    }
    sh->recs_nr_free = sh->nr_slots;
}

void shadow_pages_cleanup(MktmeShadow *sh)
{
    for (size_t c = 0; c < sh->tab_len; c++) {
        g_free(sh->tab[c]);
    }
    g_free(sh->tab);
    g_free(sh->recs_free);
    g_free(sh->recs);
}

/* @ram's table entry, or NULL if it has no chunk (and @alloc is false) */
static uint32_t *tab_entry(MktmeShadow *sh, ram_addr_t ram, bool alloc)
{
    uint64_t page = ram >> TARGET_PAGE_BITS;
    size_t c = page >> TAB_CHUNK_BITS;

    if (c >= sh->tab_len) {
        if (!alloc) {
            return NULL;
        }
        sh->tab = g_renew(uint32_t *, sh->tab, c + 1);
        memset(sh->tab + sh->tab_len, 0,
               (c + 1 - sh->tab_len) * sizeof(*sh->tab));
        sh->tab_len = c + 1;
    }
    if (!sh->tab[c]) {
        if (!alloc) {
            return NULL;
        }
        sh->tab[c] = g_new0(uint32_t, TAB_CHUNK);
    }
    return &sh->tab[c][page & (TAB_CHUNK - 1)];
}

MktmePage *shadow_page_of(MktmeShadow *sh, ram_addr_t ram)
{
    uint32_t *e = tab_entry(sh, ram, false);

    return e && *e ? &sh->recs[*e - 1] : NULL;
}

MktmePage *shadow_page_new(MktmeShadow *sh, ram_addr_t ram, uint8_t *r,
                           hwaddr pa)
{
    uint32_t *e, i;
    MktmePage *pg;

    if (!sh->recs_nr_free) {
        return NULL;
    }
    e = tab_entry(sh, ram, true);
    assert(!*e);
    i = sh->recs_free[--sh->recs_nr_free];
    sh->recs_touched = MAX(sh->recs_touched, i + 1);
    pg = &sh->recs[i];
    *pg = (MktmePage) {
        .ram = ram & TARGET_PAGE_MASK, .r = r, .pa = pa, .slots = -1,
        .used = true,
    };
    *e = i + 1;
    return pg;
}

void shadow_page_free(MktmeShadow *sh, MktmePage *pg)
{
    uint32_t *e = tab_entry(sh, pg->ram, false);
    uint32_t i = pg - sh->recs;

    assert(pg->used && e && *e == i + 1);
    *e = 0;
    *pg = (MktmePage) { .slots = -1 };
    sh->recs_free[sh->recs_nr_free++] = i;
    if (sh->recs_nr_free == sh->nr_slots) {
        /* All free (a key change, reset): the lowest first again */
        for (i = 0; i < sh->nr_slots; i++) {
            sh->recs_free[i] = sh->nr_slots - 1 - i;
        }
        sh->recs_touched = 0;
    }
}

MktmePage *shadow_page_next(MktmeShadow *sh, MktmePage *pg)
{
    MktmePage *end = sh->recs + sh->recs_touched;

    for (pg = pg ? pg + 1 : sh->recs; pg < end; pg++) {
        if (pg->used) {
            return pg;
        }
    }
    return NULL;
}
