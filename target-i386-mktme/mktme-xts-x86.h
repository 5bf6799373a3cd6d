/*
 * TME-MK AES-XTS line engine: what the x86-64 paths share
 * (mktme-xts-aesni.c, mktme-xts-vaes256.c; mktme-xts.c batches as they
 * do).  Internal.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef MKTME_XTS_X86_H
#define MKTME_XTS_X86_H

#include <stdint.h>

#define TWEAK_LINES 32    /* lines whose tweaks are computed per batch */

/* Tweak scratch arrays: skip -ftrivial-auto-var-init zeroing (QEMU) */
#if defined(__has_attribute)
#if __has_attribute(uninitialized)
#define NO_AUTO_INIT __attribute__((uninitialized))
#endif
#endif
#ifndef NO_AUTO_INIT
#define NO_AUTO_INIT
#endif

/* Round keys of an MktmeXtsSched: enc, dec or twk */
typedef const uint8_t (*RoundKeys)[16];

#endif /* MKTME_XTS_X86_H */
