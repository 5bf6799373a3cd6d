/*
 * Key hygiene: an instrumented free() for QEMU, loaded with LD_PRELOAD.
 * Every block handed to free() is scanned for the key patterns named in
 * MKTME_FREECHECK_KEYS (comma-separated hex strings, 12 bytes or more
 * each); a block that still holds one aborts the process, so a key that
 * was freed without being zeroed fails the test that runs QEMU.
 *
 * Copyright (c) 2026 The qemu-mktme authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#define _GNU_SOURCE
#include <dlfcn.h>
#include <execinfo.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_KEYS 16
#define MAX_LEN 64

static unsigned char keys[MAX_KEYS][MAX_LEN];
static size_t key_len[MAX_KEYS];
static int nkeys = -1;
static unsigned long scanned;

static void parse_keys(void)
{
    const char *s = getenv("MKTME_FREECHECK_KEYS");

    nkeys = 0;
    while (s && *s && nkeys < MAX_KEYS) {
        size_t n = 0;

        while (*s && *s != ',' && n < MAX_LEN) {
            unsigned v;

            if (sscanf(s, "%2x", &v) != 1) {
                break;
            }
            keys[nkeys][n++] = v;
            s += 2;
        }
        if (n >= 12) {
            key_len[nkeys++] = n;
        }
        while (*s && *s != ',') {
            s++;
        }
        if (*s == ',') {
            s++;
        }
    }
}

static void report_stats(void)
{
    char msg[96];
    int n = snprintf(msg, sizeof(msg), "freecheck: %lu freed blocks "
                     "scanned, no key found\n", scanned);

    if (getenv("MKTME_FREECHECK_STATS") && write(2, msg, n) < 0) {
        _exit(1);
    }
}

void free(void *ptr)
{
    static void (*real_free)(void *);

    if (!real_free) {
        real_free = (void (*)(void *))dlsym(RTLD_NEXT, "free");
    }
    if (nkeys < 0) {
        parse_keys();
        atexit(report_stats);
    }
    if (ptr) {
        size_t size = malloc_usable_size(ptr);

        scanned++;
        for (int i = 0; i < nkeys; i++) {
            if (size >= key_len[i] && memmem(ptr, size, keys[i], key_len[i])) {
                static const char msg[] = "freecheck: a freed block still "
                                          "holds a key\n";

                void *bt[32];

                if (write(2, msg, sizeof(msg) - 1) < 0) {
                    _exit(1);
                }
                backtrace_symbols_fd(bt, backtrace(bt, 32), 2);
                abort();
            }
        }
    }
    real_free(ptr);
}
