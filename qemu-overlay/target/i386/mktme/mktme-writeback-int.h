/*
 * The TME-MK fast path's write-back slots: what their two files share.
 *
 *   mktme-writeback.c  the slots: setting them up, choosing write-back
 *                      at a fill, bringing R up to date (syncing);
 *   mktme-demote.c     demotion, what TLB fills record in sh->rmap and
 *                      sh->rwhere (shadow_wb_installing()), and the
 *                      epoch's part (shadow_wb_epoch_locked()), both
 *                      declared in mktme-shadow-int.h.
 *
 * Copyright (c) 2026 The qemu-mktme authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef TARGET_I386_MKTME_WRITEBACK_INT_H
#define TARGET_I386_MKTME_WRITEBACK_INT_H

#include "mktme-shadow-int.h"

#define RMAP_NONE   0
#define RMAP_MANY   0xff

static inline uint8_t rmap_of(CPUState *cs)
{
    return cs->cpu_index < RMAP_MANY - 1 ? cs->cpu_index + 1 : RMAP_MANY;
}

/* Who may map R page @page, as of this epoch */
static inline uint8_t rmap_get(MktmeShadow *sh, uint64_t page, uint16_t *raw)
{
    uint16_t v = qatomic_read(&sh->rmap[page]);

    *raw = v;
    return v >> 8 == qatomic_read(&sh->rmap_gen) ? v & 0xff : RMAP_NONE;
}

/* Is some slot of @pg in write-back mode?  Stripe held. */
static inline bool page_has_wb(MktmeShadow *sh, MktmePage *pg)
{
    for (int32_t j = pg->slots; j >= 0; j = sh->slots[j].next) {
        if (sh->slots[j].wb) {
            return true;
        }
    }
    return false;
}

/*
 * mktme-writeback.c: write back what slot @s of @pg holds and R lacks
 * (stripe, RCU read lock held; @last: the slot is recycled next, in an
 * epoch).
 */
void shadow_wb_sync_slot(MktmeShadow *sh, MktmePage *pg, MktmeSlot *s,
                         bool last);
/* Sync R page @page, if it has a write-back slot.  Stripes not held. */
void shadow_wb_sync_page(MktmeShadow *sh, uint64_t page);

#endif
