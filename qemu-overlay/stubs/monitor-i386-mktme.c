/*
 * TME-MK QMP commands for emulators that have no mktme-guest (every
 * target but x86)
 *
 * Copyright (c) 2026 The qemu-mktme authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-commands-mktme-target.h"

MktmeInfo *qmp_query_mktme(Error **errp)
{
    error_setg(errp, "MKTME is not available in this QEMU");
    return NULL;
}

MktmeCapability *qmp_query_mktme_capabilities(Error **errp)
{
    /* Nothing to offer: no host check, no emulation, no algorithm */
    return g_new0(MktmeCapability, 1);
}

void qmp_x_mktme_dram_save(uint64_t val, uint64_t size, const char *filename,
                           Error **errp)
{
    error_setg(errp, "MKTME is not available in this QEMU");
}
