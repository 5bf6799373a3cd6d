/*
 * TME-MK under TCG: the hooks QEMU's x86 TCG code calls
 *
 * Copyright (c) 2026 The qemu-mktme authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef TARGET_I386_MKTME_TCG_H
#define TARGET_I386_MKTME_TCG_H

/*
 * RDMSR/WRMSR of IA32_TME_CAPABILITY, IA32_TME_ACTIVATE,
 * IA32_TME_EXCLUDE_MASK/BASE and MK_TME_CORE_ACTIVATE.  Return false
 * if @msr is none of them; raise #GP (through @ra) where the TME-MK
 * specification says so.
 */
bool mktme_tcg_rdmsr(CPUX86State *env, uint32_t msr, uint64_t *val,
                     uintptr_t ra);
bool mktme_tcg_wrmsr(CPUX86State *env, uint32_t msr, uint64_t val,
                     uintptr_t ra);

/*
 * MOVDIR64B's 64-byte @line to @dest (linear, aligned, probed for a
 * store), when the TLB maps it to no host RAM: true if the memory
 * controller took the line whole (through a KeyID other than 0).
 */
bool mktme_tcg_write_line(CPUX86State *env, target_ulong dest,
                          const uint64_t *line, uintptr_t ra);

/*
 * The memory of a TCG vCPU being realized, @mr (system memory unless the
 * board chose another): with a mktme-guest, the vCPUs' memory of
 * mktme-cpumem.c, system memory plus what only vCPUs reach; else @mr.
 */
MemoryRegion *mktme_tcg_cpu_memory(MemoryRegion *mr);

#endif
