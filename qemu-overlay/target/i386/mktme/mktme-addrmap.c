/*
 * The platform's address map under guest-visible TME-MK.
 *
 * Once TME-MK is activated with k KeyID bits, the top k bits of every
 * physical address select a KeyID: only [0, 2^(phys-bits - k)) is
 * addressable as such, and an address above it is KeyID n of the
 * address below (mktme-mc.c), RAM included.  Hardware whose firmware
 * activated TME-MK keeps every MMIO window and BAR below that limit.
 * QEMU plays that firmware here, so at start it
 *
 * - refuses a machine whose fixed map does not fit below the limit
 *   (RAM and hot-plug memory: mktme_config_check(); the I/O and firmware
 *   region below 4 GiB; the PCI host's 64-bit window, as sized by its
 *   pci-hole64-size property), with one line naming what does not fit;
 *   a q35 window of the default size is made to fit instead (with
 *   phys-bits=40 and 6 KeyID bits only 16 GiB are usable);
 * - tells the firmware proper (SeaBIOS, OVMF) the usable width: with
 *   activation at reset, CPUID 0x80000008 EAX[23:16] (guest physical
 *   address bits, the field KVM uses for the same purpose) becomes
 *   phys-bits - k when that is 36 or more, and OVMF (edk2-stable202405
 *   and later) places its 64-bit PCI window below 2^(phys-bits - k);
 *   SeaBIOS stays below it anyway.  CPUID's MAXPHYADDR itself stays
 *   phys-bits, as on hardware, where the OS subtracts the KeyID bits it
 *   reads in IA32_TME_ACTIVATE;
 *
 * and while the guest runs with TME-MK activated it watches the PCI
 * memory space (the limit there is the activated KeyID bits'): firmware
 * that ignores that field (OVMF before edk2-stable202405: Debian 12's)
 * may map a BAR inside the KeyID range.  There the BAR is unreachable,
 * as on hardware: its addresses are KeyID-tagged addresses of RAM.
 * QEMU says so (one warning, and each region in query-mktme's
 * address-map),
 * and the OS, which sees the reduced width, moves it.
 *
 * Copyright (c) 2026 The qemu-mktme authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/error-report.h"
#include "qapi/error.h"
#include "qom/object.h"
#include "mktme-compat.h"
#include "hw/boards.h"
#include "hw/pci/pci_host.h"
#include "hw/pci/pci_bus.h"
#include "hw/i386/pc.h"
#include "hw/pci-host/q35.h"
#include "qemu/units.h"
#include "hw/core/cpu.h"
#include "cpu.h"
#include "mktme.h"
#include "trace.h"

/* Misplaced regions kept for query-mktme */
#define ADDRMAP_MISPLACED_MAX 16
/* The least MAXPHYADDR of a 64-bit CPU, what firmware can be told */
#define ADDRMAP_MIN_FIRMWARE_BITS 36
/* q35's pci-hole64-size default (Q35_PCI_HOST_HOLE64_SIZE_DEFAULT) */
#define ADDRMAP_Q35_HOLE64_DEFAULT (32 * GiB)

/* Freed after the RCU callback that address_space_destroy() queues */
typedef struct AddrMapAs {
    struct rcu_head rcu;        /* first: g_free_rcu() */
    AddressSpace as;
} AddrMapAs;

struct MktmeAddrMap {
    unsigned phys_bits;
    unsigned usable_bits;       /* phys-bits - KeyID bits */
    unsigned told_bits;         /* GuestPhysBits given to firmware, or 0 */
    const MktmePlatform *platform;  /* activated KeyID bits */
    AddrMapAs *pci_as;          /* the PCI host's memory space */
    MemoryListener listener;
    bool watching;
    bool warned;                /* one warning per run: a BAR has several */
    QemuMutex lock;             /* misplaced (listener vs. QMP) */
    GPtrArray *misplaced;       /* "name at 0x..." */
};

static void addrmap_region_add(MemoryListener *l, MemoryRegionSection *s)
{
    MktmeAddrMap *am = container_of(l, MktmeAddrMap, listener);
    uint64_t start = s->offset_within_address_space;
    uint64_t end = start + int128_get64(int128_sub(s->size, int128_one()));
    unsigned keyid_bits = mktme_keyid_bits(am->platform);
    uint64_t limit = 1ULL << (am->phys_bits - keyid_bits);
    const char *name = memory_region_name(s->mr);
    g_autofree char *what = NULL;
    bool known = false;

    /* (before activation every address is an address) */
    if (!keyid_bits || end < limit) {
        return;
    }
    what = g_strdup_printf("%s at 0x%" PRIx64, name, start);
    qemu_mutex_lock(&am->lock);
    for (guint i = 0; i < am->misplaced->len; i++) {
        known |= !strcmp(g_ptr_array_index(am->misplaced, i), what);
    }
    if (!known && am->misplaced->len < ADDRMAP_MISPLACED_MAX) {
        g_ptr_array_add(am->misplaced, g_strdup(what));
    }
    qemu_mutex_unlock(&am->lock);
    if (!known) {
        trace_mktme_addrmap_misplaced(name, start, end);
    }
    if (!known && !am->warned) {
        am->warned = true;
        if (am->told_bits) {
            warn_report("mktme-guest: the guest mapped %s inside the KeyID "
                        "range (addresses from 0x%" PRIx64 " carry KeyIDs): "
                        "it is unreachable there; the firmware ignores "
                        "CPUID 0x80000008 EAX[23:16] = %u (OVMF needs "
                        "edk2-stable202405 or later)", what, limit,
                        am->told_bits);
        } else {
            warn_report("mktme-guest: the guest mapped %s inside the KeyID "
                        "range (addresses from 0x%" PRIx64 " carry KeyIDs, "
                        "%u activated): it is unreachable there", what,
                        limit, keyid_bits);
        }
    }
}

/* The host bridge of the PC's main PCI bus (pxb ones add others) */
static PCIHostState *addrmap_pci_host(void)
{
    Object *m = qdev_get_machine();
    PCMachineState *pcms = (PCMachineState *)
        object_dynamic_cast(m, TYPE_PC_MACHINE);
    Object *o;

    if (!pcms || !pcms->pcibus || !BUS(pcms->pcibus)->parent) {
        return NULL;
    }
    o = object_dynamic_cast(OBJECT(BUS(pcms->pcibus)->parent),
                            TYPE_PCI_HOST_BRIDGE);
    return o ? PCI_HOST_BRIDGE(o) : NULL;
}

static uint64_t addrmap_prop(PCIHostState *phb, const char *name)
{
    return object_property_get_uint(OBJECT(phb), name, &error_abort);
}

/*
 * Does the PCI host's 64-bit window end at or below @limit?  A q35
 * window of the default size that does not is shrunk to fit.
 */
static bool addrmap_hole64_fits(PCIHostState *phb, uint64_t limit,
                                uint64_t *end)
{
    Q35PCIHost *q35 = (Q35PCIHost *)
        object_dynamic_cast(OBJECT(phb), TYPE_Q35_HOST_DEVICE);
    uint64_t start;

    *end = addrmap_prop(phb, PCI_HOST_PROP_PCI_HOLE64_END);
    if (*end <= limit) {
        return true;
    }
    start = addrmap_prop(phb, PCI_HOST_PROP_PCI_HOLE64_START);
    if (!q35 || q35->mch.pci_hole64_size != ADDRMAP_Q35_HOLE64_DEFAULT ||
        start >= limit || limit - start < GiB) {
        return false;
    }
    q35->mch.pci_hole64_size = QEMU_ALIGN_DOWN(limit - start, GiB);
    *end = addrmap_prop(phb, PCI_HOST_PROP_PCI_HOLE64_END);
    trace_mktme_addrmap_hole64(q35->mch.pci_hole64_size, *end);
    return *end <= limit;
}

MktmeAddrMap *mktme_addrmap_new(const MktmePlatform *p, unsigned phys_bits,
                                unsigned keyid_bits, bool activated,
                                Error **errp)
{
    unsigned usable = phys_bits - keyid_bits;
    uint64_t limit = 1ULL << usable, end;
    PCIHostState *phb = addrmap_pci_host();
    MktmeAddrMap *am;
    CPUState *cs;

    if (usable < 32) {
        error_setg(errp, "mktme-guest: %u KeyID bits leave %u of the %u "
                   "physical address bits: the I/O and firmware region "
                   "below 4 GiB would carry KeyIDs (at most %u KeyID bits "
                   "here)", keyid_bits, usable, phys_bits, phys_bits - 32);
        return NULL;
    }
    if (phb &&
        object_property_find(OBJECT(phb), PCI_HOST_PROP_PCI_HOLE64_END) &&
        object_property_find(OBJECT(phb), PCI_HOST_PROP_PCI_HOLE64_START)) {
        if (!addrmap_hole64_fits(phb, limit, &end)) {
            error_setg(errp, "mktme-guest: the 64-bit PCI window ends at "
                       "0x%" PRIx64 ", above 2^%u (%u physical address "
                       "bits minus %u KeyID bits): lower the PCI host's "
                       "pci-hole64-size (-global %s.pci-hole64-size=...) "
                       "or the KeyID bits", end, usable, phys_bits,
                       keyid_bits, object_get_typename(OBJECT(phb)));
            return NULL;
        }
    }

    am = g_new0(MktmeAddrMap, 1);
    am->phys_bits = phys_bits;
    am->usable_bits = usable;
    am->platform = p;
    qemu_mutex_init(&am->lock);
    am->misplaced = g_ptr_array_new_with_free_func(g_free);
    /*
     * Firmware runs with TME-MK on: tell it what it may use.  Not below
     * 36 bits, the least a 64-bit CPU has (OVMF 2025.02 hangs at reset
     * when told 34); there the PCI watch reports what firmware puts in
     * the KeyID range.
     */
    if (activated && usable >= ADDRMAP_MIN_FIRMWARE_BITS) {
        CPU_FOREACH(cs) {
            X86CPU *cpu = X86_CPU(cs);

            if (!cpu->guest_phys_bits || cpu->guest_phys_bits > usable) {
                cpu->guest_phys_bits = usable;
            }
            /* (a lower guest-phys-bits the user chose stays) */
            am->told_bits = cpu->guest_phys_bits;
        }
    }
    if (phb && phb->bus && phb->bus->address_space_mem) {
        am->pci_as = g_new0(AddrMapAs, 1);
        address_space_init(&am->pci_as->as, phb->bus->address_space_mem,
                           "mktme-pci-watch");
        am->listener = (MemoryListener) {
            .name = "mktme-addrmap",
            .region_add = addrmap_region_add,
            .priority = MEMORY_LISTENER_PRIORITY_MIN,
        };
        memory_listener_register(&am->listener, &am->pci_as->as);
        am->watching = true;
    }
    return am;
}

void mktme_addrmap_free(MktmeAddrMap *am)
{
    if (!am) {
        return;
    }
    if (am->watching) {
        memory_listener_unregister(&am->listener);
        address_space_destroy(&am->pci_as->as);
        /* after the destruction's own RCU callback (they run in order) */
        g_free_rcu(am->pci_as, rcu);
    }
    g_ptr_array_free(am->misplaced, true);
    qemu_mutex_destroy(&am->lock);
    g_free(am);
}

MktmeAddressMap *mktme_addrmap_info(MktmeAddrMap *am)
{
    MktmeAddressMap *info = g_new0(MktmeAddressMap, 1);
    strList **tail = &info->misplaced;

    info->usable_phys_bits = am->usable_bits;
    info->firmware_phys_bits = am->told_bits;
    qemu_mutex_lock(&am->lock);
    for (guint i = 0; i < am->misplaced->len; i++) {
        QAPI_LIST_APPEND(tail, g_strdup(g_ptr_array_index(am->misplaced, i)));
    }
    qemu_mutex_unlock(&am->lock);
    return info;
}
