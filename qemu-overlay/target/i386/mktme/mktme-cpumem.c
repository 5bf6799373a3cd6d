/*
 * TME-MK: the memory the vCPUs see.
 *
 * The memory controller's crypto region and the shadow pool
 * (MKTME_MC_CRYPTO_WINDOW, MKTME_SHADOW_WINDOW) are targets of its
 * IOMMU region, for the vCPUs only: a device's DMA to those addresses
 * must reach nothing (on hardware they are beyond MAXPHYADDR), never
 * plaintext of another KeyID or a slot behind the shadows' back.  So
 * they live in a container of their own, "mktme-cpu-memory", beside an
 * alias of system memory; the TCG vCPUs of a machine with a mktme-guest
 * use it as their memory (mktme_tcg_cpu_memory(), at realize), and the
 * IOMMU region translates into its address space, or for a vCPU into
 * the vCPU's own (normal or SMM, whose root aliases this one): TCG
 * resolves the section of a translation in the vCPU's address space.
 * Devices keep system memory.
 *
 * Copyright (c) 2026 The qemu-mktme authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "mktme-compat.h"
#include "mktme.h"

static MemoryRegion cpu_root, cpu_sysmem;
static AddressSpace cpu_as;
static bool cpu_as_ready;

static void cpu_memory_init(void)
{
    if (cpu_as_ready) {
        return;
    }
    memory_region_init(&cpu_root, NULL, "mktme-cpu-memory", UINT64_MAX);
    memory_region_init_alias(&cpu_sysmem, NULL, "mktme-system-memory",
                             get_system_memory(), 0, UINT64_MAX);
    memory_region_add_subregion_overlap(&cpu_root, 0, &cpu_sysmem, 0);
    address_space_init(&cpu_as, &cpu_root, "mktme-cpu-memory");
    cpu_as_ready = true;
}

MemoryRegion *mktme_cpu_memory(void)
{
    cpu_memory_init();
    return &cpu_root;
}

AddressSpace *mktme_cpu_as(void)
{
    cpu_memory_init();
    return &cpu_as;
}
