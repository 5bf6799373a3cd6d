/*
 * TME-MK DMA guest: what dma.c gives vmem.c (guest-lib.h, which defines
 * memcpy() and memset(), goes into dma.c alone).
 *
 * Copyright (c) 2026 The qemu-mktme authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef MKTME_DMA_GUEST_DMA_H
#define MKTME_DMA_GUEST_DMA_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include "results.h"
#include "boot.h"

#define PG_PRW  7ULL            /* present, writable, user */
#define PG_PS   0x80ULL
#define KID1    (1ULL << 40)
#define WIN1    (1ULL << 39)    /* PML4[1]: KeyID 1 view of 0..1 GiB */

#define PCI_VENDOR_VIRTIO   0x1af4
#define PCI_COMMAND_IO      1
#define PCI_COMMAND_MEMORY  2
#define PCI_COMMAND_MASTER  4

/* Device status bits */
#define VS_ACK          1
#define VS_DRIVER       2
#define VS_DRIVER_OK    4
#define VS_FEATURES_OK  8

#define VRING_DESC_F_NEXT       1
#define VRING_DESC_F_WRITE      2
#define VRING_AVAIL_F_NO_INTERRUPT  1

/* Polling gives up after this many TSC cycles (seconds on any host) */
#define IO_TIMEOUT_CYCLES   (1ULL << 35)

typedef struct VringDesc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags, next;
} VringDesc;

typedef struct VringUsedElem {
    uint32_t id, len;
} VringUsedElem;

/*
 * One split virtqueue.  Notified at I/O port @io + VP_QUEUE_NOTIFY
 * (legacy), or, if @notify is not 0, by a 16-bit store of @index there
 * (modern).
 */
typedef struct Vq {
    uint16_t io, index, size, avail_idx, used_idx;
    uint64_t notify;
    VringDesc *desc;
    uint16_t *avail;            /* flags, idx, ring[size], used_event */
    uint16_t *used;             /* flags, idx, then VringUsedElem[size] */
} Vq;

static MkdResults *const res = (MkdResults *)MKD_RESULTS_PA;

static inline uint64_t rdtsc(void)
{
    uint32_t lo, hi;

    asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return (uint64_t)hi << 32 | lo;
}

static inline void mb(void)
{
    asm volatile("mfence" : : : "memory");
}

void *memcpy(void *d, const void *s, size_t n);
void *memset(void *d, int c, size_t n);

/* Debug output: "  @what @v (hex)" */
void note(const char *what, uint64_t v);
void stage(const char *name);

uint32_t pci_read32(uint32_t bdf, uint32_t off);
void pci_write32(uint32_t bdf, uint32_t off, uint32_t v);
void pci_write16(uint32_t bdf, uint32_t off, uint16_t v);
uint32_t pci_find(uint16_t dev);

void vq_desc(Vq *vq, unsigned i, uint64_t pa, uint32_t len, uint16_t flags);
bool vq_run(Vq *vq, MkdScenResult *r);

/* The GiB at @pa (below 512 GiB): identity, and through KeyID 1 at WIN1 */
void map_gib(uint64_t pa, uint64_t pd[512], uint64_t win_pd[512]);

void vmem_tests(void);

#endif
