/*
 * The emulated TME-MK memory controller (TCG and qtest).
 *
 * Memory model (docs/system/i386/mktme.rst):
 *   R      guest RAM as QEMU's RAM blocks hold it: memory as read through
 *          KeyID 0, the hypervisor's view;
 *   E_0(R) the DRAM image: every 64-byte line of a marked RAM block
 *          AES-XTS-encrypted with KeyID 0's key (the VM's key), the
 *          tweak being the line's physical address.
 * KeyID 0 accesses are plain RAM accesses and cost nothing.
 *
 * Copyright (c) 2026 The qemu-mktme authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "exec/address-spaces.h"
#include "exec/memory.h"
#include "exec/ramblock.h"
#include "system/memory.h"
#include "mktme.h"
#include "trace.h"

bool mktme_mc_init(MktmeGuest *mg, Error **errp)
{
    size_t len = mktme_algorithm_key_len(mg->algorithm);
    MktmeXtsAlg alg = mg->algorithm == MKTME_ALGORITHM_AES_XTS_256 ?
                      MKTME_XTS_AES_256 : MKTME_XTS_AES_128;

    mg->xts0 = mktme_xts_key_new(alg, MKTME_XTS_IMPL_AUTO, mg->vm_key,
                                 mg->vm_key + len);
    if (!mg->xts0) {
        error_setg(errp, "mktme-guest: cannot set up the %s engine",
                   MktmeAlgorithm_str(mg->algorithm));
        return false;
    }
    return true;
}

void mktme_mc_cleanup(MktmeGuest *mg)
{
    mktme_xts_key_free(mg->xts0);
    mg->xts0 = NULL;
}

/* Is the line at @pa in a RAM block the controller encrypts? */
static bool mktme_mc_line_encrypted(MktmeGuest *mg, hwaddr pa)
{
    MemoryRegionSection s = memory_region_find(get_system_memory(), pa, 1);
    bool enc = false;

    if (s.mr) {
        enc = memory_region_is_ram(s.mr) && s.mr->ram_block &&
              g_hash_table_contains(mg->ram_blocks, s.mr->ram_block);
        memory_region_unref(s.mr);
    }
    return enc;
}

bool mktme_mc_dram_read(MktmeGuest *mg, hwaddr pa, uint8_t *buf,
                        size_t len, Error **errp)
{
    assert(QEMU_IS_ALIGNED(pa | len, MKTME_LINE_SIZE));
    for (size_t off = 0; off < len; off += TARGET_PAGE_SIZE) {
        size_t n = MIN(len - off, TARGET_PAGE_SIZE - ((pa + off) &
                                                     ~TARGET_PAGE_MASK));
        MemTxResult r;

        r = address_space_read(&address_space_memory, pa + off,
                               MEMTXATTRS_UNSPECIFIED, buf + off, n);
        if (r != MEMTX_OK) {
            error_setg(errp, "mktme: cannot read guest memory at 0x%"
                       HWADDR_PRIx, pa + off);
            return false;
        }
        if (mg->xts0 && mktme_mc_line_encrypted(mg, pa + off)) {
            mktme_xts_encrypt_lines(mg->xts0, pa + off, buf + off,
                                    buf + off, n / MKTME_LINE_SIZE);
        }
    }
    return true;
}
