/*
 * TME-MK: the QEMU API differences between the lines the overlay builds
 * on, 10.0 and 10.2, in one place.  The overlay is written against 10.0's
 * names; on 10.1 and later this header maps them to the new ones:
 *
 * - the memory API headers moved from exec/ to system/ (memory.h,
 *   address-spaces.h, ramblock.h, ram_addr.h);
 * - exec/exec-all.h is gone, split into accel/tcg/probe.h, getpc.h,
 *   exec/cputlb.h and exec/translation-block.h; exec/cpu_ldst.h became
 *   accel/tcg/cpu-ldst.h, and the TLB flags left exec/cpu-all.h for
 *   exec/tlb-flags.h;
 * - the dirty-bitmap helpers cpu_physical_memory_*() became
 *   physical_memory_*(), declared in system/physmem.h;
 * - tb_invalidate_phys_range() takes the CPU that invalidates (NULL for
 *   none, which is what the 10.0 function did);
 * - QOM class_init functions take const class data.
 *
 * Copyright (c) 2026 The qemu-mktme authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef MKTME_COMPAT_H
#define MKTME_COMPAT_H

/* From config-host.h, which qemu/osdep.h includes first */
#define MKTME_QEMU_AT_LEAST(major, minor) \
    (QEMU_VERSION_MAJOR > (major) || \
     (QEMU_VERSION_MAJOR == (major) && QEMU_VERSION_MINOR >= (minor)))

#if MKTME_QEMU_AT_LEAST(10, 1)

#include "system/memory.h"
#include "system/address-spaces.h"
#include "system/ramblock.h"
#include "system/ram_addr.h"
#include "system/physmem.h"
#include "exec/cputlb.h"
#include "exec/translation-block.h"
#ifdef CONFIG_TCG
#include "accel/tcg/cpu-ldst.h"
#include "accel/tcg/getpc.h"
#include "accel/tcg/probe.h"
#include "exec/tlb-flags.h"
#endif

#define cpu_physical_memory_set_dirty_flag physical_memory_set_dirty_flag
#define cpu_physical_memory_set_dirty_range physical_memory_set_dirty_range
#define cpu_physical_memory_test_and_clear_dirty \
    physical_memory_test_and_clear_dirty

/* Not expanded again inside its own expansion: calls the function */
#define tb_invalidate_phys_range(start, last) \
    tb_invalidate_phys_range(NULL, start, last)

typedef const void *MktmeClassData;

#else /* QEMU 10.0 */

#include "exec/memory.h"
#include "exec/address-spaces.h"
#include "exec/ramblock.h"
#include "exec/ram_addr.h"
#include "exec/exec-all.h"
#ifdef CONFIG_TCG
#include "exec/cpu_ldst.h"
#endif

typedef void *MktmeClassData;

#endif

/* qemu/compiler.h has it since 10.1: no -ftrivial-auto-var-init zeroing */
#ifndef QEMU_UNINITIALIZED
#if __has_attribute(uninitialized)
#define QEMU_UNINITIALIZED __attribute__((uninitialized))
#else
#define QEMU_UNINITIALIZED
#endif
#endif

#endif
