/*
 * TME-MK test guest: what boot.S provides to guest.c.
 *
 * Copyright (c) 2026 The qemu-mktme authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef MKTME_GUEST_BOOT_H
#define MKTME_GUEST_BOOT_H

#include <stdint.h>

extern uint64_t boot_pml4[512];         /* CR3; [0] maps 0..1 GiB */
extern uint64_t gdt[];                  /* [6], [7]: the TSS descriptor */
extern const uint64_t isr_table[32];    /* exception stubs */
extern uint64_t user_returned;          /* set by ring 3 after PCONFIG */
extern uint64_t fault_cs;               /* CS of the last caught fault */
extern uint64_t fault_err;              /* error code of the last fault */
extern char int_stack_top[], df_stack_top[];

/*
 * Each returns the vector of the exception it caught, or MKG_NO_FAULT.
 * g_pconfig: form 0 plain, 1 F0, 2 F3, 3 F2, 4 66, 5 REX.W prefix; runs
 * with CF PF AF ZF SF OF set; out = { RAX, RFLAGS & 0x8d5 } afterwards.
 */
uint64_t g_rdmsr(uint32_t msr, uint64_t *val);
uint64_t g_wrmsr(uint32_t msr, uint64_t val);
uint64_t g_pconfig(uint64_t rax, uint64_t rbx, uint64_t form, uint64_t *out);
uint64_t g_call(uint64_t fn, uint64_t *ret);
uint64_t g_pconfig_flags(uint64_t rax, uint64_t rbx, uint64_t producer,
                         uint64_t *out);
void g_load_ds(uint16_t sel);
uint64_t g_pconfig_compat(uint64_t eax, uint64_t ebx, uint16_t ds,
                          uint64_t out[2]);
uint64_t g_user_pconfig(uint64_t rbx);
uint64_t g_compat_call(uint32_t fn, uint16_t es);

/* Called by boot.S */
void guest_main(void);
void fatal_fault(uint64_t *frame);

#endif
