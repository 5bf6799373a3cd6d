/*
 * TME-MK: QMP commands (query-mktme, query-mktme-capabilities,
 * x-mktme-dram-save) and HMP "info mktme".  No reply carries key bytes.
 *
 * Copyright (c) 2026 The qemu-mktme authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/units.h"
#include "qapi/error.h"
#include "qapi/qapi-commands-mktme-target.h"
#include "monitor/monitor.h"
#include "monitor/hmp.h"
#include "qobject/qdict.h"
#include "hw/boards.h"
#include "mktme.h"

#define MKTME_DRAM_SAVE_CHUNK (64 * KiB)

MktmeInfo *qmp_query_mktme(Error **errp)
{
    MktmeGuest *mg = mktme_guest_get();
    MktmeInfo *info;

    if (!mg) {
        error_setg(errp, "MKTME is not enabled: the machine has no "
                   "mktme-guest object");
        return NULL;
    }
    info = g_new0(MktmeInfo, 1);
    info->enabled = mg->enabled;
    info->reason = g_strdup(mg->reason);
    info->policy = mg->policy;
    info->accel = mg->accel;
    info->algorithm = mg->algorithm;
    info->key_source = mg->key_source;
    info->plain_channel = mg->plain_channel;
    if (mg->kernel_key) {
        info->has_handle = true;
        info->handle = mg->kernel_key;
    }
    info->guest_visible = mg->guest_visible;
    if (mg->platform) {
        info->keyid_bits = mg->platform->cfg.max_keyid_bits;
        info->keys = mg->platform->cfg.max_keys;
    }
    info->encrypted_memory = mg->enabled ? mktme_encrypted_memory(mg) : 0;
    if (mg->mc && mg->accel == MKTME_ACCEL_TCG) {
        info->fast_path = g_new0(MktmeFastPath, 1);
        if (mg->mc->shadow) {
            mktme_shadow_info(mg->mc->shadow, info->fast_path);
        } else {
            info->fast_path->off_reason = g_strdup(mg->mc->shadow_off);
        }
    }
    if (mg->addrmap) {
        info->address_map = mktme_addrmap_info(mg->addrmap);
    }
    return info;
}

MktmeCapability *qmp_query_mktme_capabilities(Error **errp)
{
    MktmeCapability *cap = g_new0(MktmeCapability, 1);
    MktmeAlgorithmList **tail = &cap->algorithms;
    MktmeHostCaps host;
    g_autofree char *reason = NULL;

    mktme_host_probe(&host);
    cap->host_cpu = host.cpu_tme;
    if (host.msr_readable) {
        unsigned bits = (host.activate >> 32) & 0xf;

        cap->has_host_activated = true;
        cap->host_activated = (host.activate & 3) == 3;
        cap->has_host_keyid_bits = true;
        cap->host_keyid_bits = cap->host_activated ? bits : 0;
        cap->has_host_keys = true;
        cap->host_keys = MIN((host.capability >> 36) & 0x7fff,
                             cap->host_activated ? (1u << bits) - 1 : 0);
    }
    cap->kernel = host.kernel_key_type;
    /* Everything but the encrypt_mprotect number, which users supply */
    cap->kvm = mktme_host_can_encrypt(&host, UINT32_MAX, &reason);
    cap->emulation = true;
    QAPI_LIST_APPEND(tail, MKTME_ALGORITHM_AES_XTS_128);
    QAPI_LIST_APPEND(tail, MKTME_ALGORITHM_AES_XTS_256);
    cap->max_keyid_bits = 15;
    return cap;
}

void qmp_x_mktme_dram_save(uint64_t val, uint64_t size, const char *filename,
                           Error **errp)
{
    MktmeGuest *mg = mktme_guest_get();
    MachineState *ms = MACHINE(qdev_get_machine());
    g_autofree uint8_t *buf = NULL;
    FILE *f;

    if (!mg || !mg->enabled || !mg->xts0) {
        error_setg(errp, "MKTME emulation is not active: no DRAM view");
        return;
    }
    if (!QEMU_IS_ALIGNED(val | size, MKTME_LINE_SIZE)) {
        error_setg(errp, "val and size must be multiples of %d",
                   MKTME_LINE_SIZE);
        return;
    }
    if (val + size < val) {
        error_setg(errp, "val + size wraps around");
        return;
    }
    if (size > ms->maxram_size) {
        error_setg(errp, "size 0x%" PRIx64 " exceeds the machine's memory "
                   "(0x%" PRIx64 " bytes)", size, (uint64_t)ms->maxram_size);
        return;
    }
    f = fopen(filename, "wb");
    if (!f) {
        error_setg_file_open(errp, errno, filename);
        return;
    }
    buf = g_malloc(MKTME_DRAM_SAVE_CHUNK);
    while (size) {
        size_t n = MIN(size, MKTME_DRAM_SAVE_CHUNK);

        if (!mktme_mc_dram_read(mg, val, buf, n, errp)) {
            break;
        }
        if (fwrite(buf, 1, n, f) != n) {
            error_setg(errp, "writing memory to '%s' failed", filename);
            break;
        }
        val += n;
        size -= n;
    }
    fclose(f);
}

static void hmp_info_mktme(Monitor *mon, const QDict *qdict)
{
    Error *err = NULL;
    MktmeInfo *info = qmp_query_mktme(&err);

    if (!info) {
        monitor_printf(mon, "%s\n", error_get_pretty(err));
        error_free(err);
        return;
    }
    monitor_printf(mon, "MKTME %s\n", info->enabled ? "enabled" : "disabled");
    if (info->reason) {
        monitor_printf(mon, "reason: %s\n", info->reason);
    }
    monitor_printf(mon, "policy: %s\n", MktmePolicy_str(info->policy));
    monitor_printf(mon, "accelerator: %s\n", MktmeAccel_str(info->accel));
    monitor_printf(mon, "algorithm: %s\n",
                   MktmeAlgorithm_str(info->algorithm));
    monitor_printf(mon, "key source: %s\n",
                   MktmeKeySource_str(info->key_source));
    if (info->has_handle) {
        monitor_printf(mon, "kernel key handle: %" PRIu32 "\n",
                       info->handle);
    }
    monitor_printf(mon, "plain channel: %s\n",
                   MktmePlainChannel_str(info->plain_channel));
    monitor_printf(mon, "guest-visible: %s\n",
                   info->guest_visible ? "on" : "off");
    monitor_printf(mon, "KeyID bits: %u\n", info->keyid_bits);
    monitor_printf(mon, "keys: %u\n", info->keys);
    monitor_printf(mon, "encrypted memory: %" PRIu64 " bytes\n",
                   info->encrypted_memory);
    if (info->fast_path && info->fast_path->off_reason) {
        monitor_printf(mon, "fast path: off (%s)\n",
                       info->fast_path->off_reason);
    } else if (info->fast_path) {
        monitor_printf(mon, "fast path: %" PRIu32 " of %" PRIu32 " shadow "
                       "slots in use, %" PRIu64 " fills, %" PRIu64
                       " writes, %" PRIu64 " refreshes, %" PRIu64
                       " evictions\n", info->fast_path->in_use,
                       info->fast_path->slots, info->fast_path->fills,
                       info->fast_path->writes, info->fast_path->refreshes,
                       info->fast_path->evictions);
        monitor_printf(mon, "fast path write-back: %" PRIu32 " slots, %"
                       PRIu64 " lines written back, %" PRIu64
                       " demotions\n", info->fast_path->write_back_slots,
                       info->fast_path->write_backs,
                       info->fast_path->demotions);
    }
    if (info->address_map) {
        strList *l;

        monitor_printf(mon, "address map: %u usable physical address bits, "
                       "%u told to firmware\n",
                       info->address_map->usable_phys_bits,
                       info->address_map->firmware_phys_bits);
        for (l = info->address_map->misplaced; l; l = l->next) {
            monitor_printf(mon, "address map: misplaced: %s\n", l->value);
        }
    }
    qapi_free_MktmeInfo(info);
}

static void mktme_hmp_register(void)
{
    monitor_register_hmp("mktme", true, hmp_info_mktme);
}

type_init(mktme_hmp_register)
