/*
 * TME-MK multi-vCPU guest: what ap.S provides to smp.c.
 *
 * Copyright (c) 2026 The qemu-mktme authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef MKTME_SMP_AP_H
#define MKTME_SMP_AP_H

#include <stdint.h>

extern char ap_tramp[];     /* real-mode entry, 4 KiB aligned, < 1 MiB */
extern uint64_t ap_cr3;     /* the page tables the APs start on */

/* Called by ap.S on each AP, @idx = 1, 2, ... in the order they arrive */
void ap_main(unsigned idx);

#endif
