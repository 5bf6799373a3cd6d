/*
 * Memory-bound guest workload of scripts/bench: read and write every
 * 64-byte line of a 64 MiB buffer, PASSES times.
 *   memloop PASSES [MIB]
 * Built with gcc -static -O2 into the bench initramfs.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define LINE 64

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    unsigned long passes = argc > 1 ? strtoul(argv[1], NULL, 0) : 100;
    size_t size = (argc > 2 ? strtoul(argv[2], NULL, 0) : 64) << 20;
    volatile uint64_t *buf;
    uint64_t sum = 0;
    double t0, t1;

    buf = malloc(size);
    if (!buf) {
        perror("memloop: malloc");
        return 1;
    }
    /* Fault the buffer in before timing */
    for (size_t i = 0; i < size / 8; i += 4096 / 8) {
        buf[i] = i;
    }
    t0 = now();
    for (unsigned long p = 0; p < passes; p++) {
        for (size_t i = 0; i < size / 8; i += LINE / 8) {
            buf[i] = buf[i] + p;
        }
    }
    t1 = now();
    for (size_t i = 0; i < size / 8; i += LINE / 8) {
        sum += buf[i];
    }
    printf("memloop: %lu passes over %zu MiB in %.3f s (%.2f ms/pass) "
           "sum %llx\n", passes, size >> 20, t1 - t0,
           passes ? (t1 - t0) * 1e3 / passes : 0.0,
           (unsigned long long)sum);
    return 0;
}
