/*
 * TME-MK DMA guest: unplug a virtio-mem block whose pages have live
 * shadows, plug it again and look at it (see MKD_VMEM_PA in results.h).
 * virtio-mem has no legacy interface: a minimal modern (virtio 1.0) PCI
 * driver, one split virtqueue, polled.
 *
 * Copyright (c) 2026 The qemu-mktme authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "dma.h"

#define PCI_DEV_VIRTIO_MEM  0x1058      /* 0x1040 + VIRTIO_ID_MEM (24) */
#define PCI_STATUS_CAP_LIST 0x10
#define PCI_CAP_ID_VNDR     0x09

/* struct virtio_pci_cap's cfg_type */
#define VPCI_CAP_COMMON     1
#define VPCI_CAP_NOTIFY     2
#define VPCI_CAP_DEVICE     4
#define VPCI_CAPS_NEEDED    (1 << VPCI_CAP_COMMON | 1 << VPCI_CAP_NOTIFY | \
                             1 << VPCI_CAP_DEVICE)

/* struct virtio_pci_common_cfg */
#define VC_DFSELECT     0x00
#define VC_DF           0x04
#define VC_GFSELECT     0x08
#define VC_GF           0x0c
#define VC_STATUS       0x14
#define VC_Q_SELECT     0x16
#define VC_Q_SIZE       0x18
#define VC_Q_ENABLE     0x1c
#define VC_Q_NOTIFY_OFF 0x1e
#define VC_Q_DESC       0x20
#define VC_Q_DRIVER     0x28
#define VC_Q_DEVICE     0x30

/* struct virtio_mem_config */
#define VMC_BLOCK_SIZE      0
#define VMC_ADDR            16
#define VMC_REGION_SIZE     24
#define VMC_USABLE_SIZE     32
#define VMC_PLUGGED_SIZE    40
#define VMC_REQUESTED_SIZE  48

#define VIRTIO_F_VERSION_1          32
#define VIRTIO_F_ACCESS_PLATFORM    33
#define VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE 1

#define VIRTIO_MEM_REQ_PLUG     0
#define VIRTIO_MEM_REQ_UNPLUG   1
#define VIRTIO_MEM_RESP_ACK     0

/* struct virtio_mem_req (plug, unplug) and struct virtio_mem_resp */
typedef struct VmemReq {
    uint16_t type, padding[3];
    uint64_t addr;
    uint16_t nb_blocks, padding2[3];
} VmemReq;

typedef struct VmemResp {
    uint16_t type, padding[3];
    uint16_t state;
} VmemResp;

_Static_assert(sizeof(VmemReq) == 24, "struct virtio_mem_req");
_Static_assert(sizeof(VmemResp) == 10, "struct virtio_mem_resp");

static uint64_t vmem_pd[512] __attribute__((aligned(4096)));
static uint64_t vmem_win_pd[512] __attribute__((aligned(4096)));
static uint64_t common_cfg, dev_cfg;
static Vq vmem_vq;

/*
 * Exactly one access of the width of the type (guest-lib.h's ldn() and
 * stn(), which only dma.c may include): to MMIO registers, to the
 * pages through a KeyID, to what the test writes.
 */
static inline uint8_t rd8(uint64_t a)
{
    return *(volatile uint8_t *)a;          /* one load */
}

static inline uint16_t rd16(uint64_t a)
{
    return *(volatile uint16_t *)a;         /* one load */
}

static inline uint32_t rd32(uint64_t a)
{
    return *(volatile uint32_t *)a;         /* one load */
}

static inline uint64_t rd64(uint64_t a)
{
    return *(volatile uint64_t *)a;         /* one load */
}

static inline void wr8(uint64_t a, uint8_t v)
{
    *(volatile uint8_t *)a = v;             /* one store */
}

static inline void wr16(uint64_t a, uint16_t v)
{
    *(volatile uint16_t *)a = v;            /* one store */
}

static inline void wr32(uint64_t a, uint32_t v)
{
    *(volatile uint32_t *)a = v;            /* one store */
}

/* A 64-bit field of the virtio-pci regions: two 32-bit halves, low first */
static uint64_t cfg_rd64(uint64_t a)
{
    uint64_t lo = rd32(a);

    return lo | (uint64_t)rd32(a + 4) << 32;
}

static void cfg_wr64(uint64_t a, uint64_t v)
{
    wr32(a, v);
    wr32(a + 4, v >> 32);
}

static uint8_t pci_read8(uint32_t bdf, uint32_t off)
{
    return pci_read32(bdf, off) >> 8 * (off & 3);
}

/*
 * The common, notify and device configuration capabilities: the BAR
 * they are in (res->vmem_bar, 0xff if not all in one) and their offsets
 * there.  False if one is missing or they are in different BARs.
 */
static bool find_caps(uint32_t bdf, uint32_t off[5], uint32_t *notify_mult)
{
    unsigned seen = 0;
    bool one_bar = true;

    if (!(pci_read32(bdf, 0x04) >> 16 & PCI_STATUS_CAP_LIST)) {
        return false;
    }
    for (uint32_t cap = pci_read8(bdf, 0x34) & 0xfc, n = 0; cap && n < 48;
         cap = pci_read8(bdf, cap + 1) & 0xfc, n++) {
        uint8_t type = pci_read8(bdf, cap + 3), bar = pci_read8(bdf, cap + 4);

        if (pci_read8(bdf, cap) != PCI_CAP_ID_VNDR || type > 4 ||
            !(VPCI_CAPS_NEEDED & 1 << type) || seen & 1 << type) {
            continue;
        }
        one_bar &= !seen || bar == res->vmem_bar;
        seen |= 1 << type;
        res->vmem_bar = bar;
        off[type] = pci_read32(bdf, cap + 8);
        if (type == VPCI_CAP_NOTIFY) {
            *notify_mult = pci_read32(bdf, cap + 16);
        }
    }
    res->vmem_caps = seen;
    if (!one_bar) {
        res->vmem_bar = 0xff;
    }
    return seen == VPCI_CAPS_NEEDED && res->vmem_bar < 6;
}

/*
 * BAR := MKD_VMEM_BAR (a 64-bit one: both halves), memory decoding and
 * bus mastering on; BAR read back.
 */
static uint64_t enable_bar(uint32_t bdf, unsigned bar)
{
    uint32_t reg = 0x10 + 4 * bar;
    bool is64 = (pci_read32(bdf, reg) & 7) == 4;
    uint64_t addr;

    pci_write32(bdf, reg, MKD_VMEM_BAR);
    if (is64) {
        pci_write32(bdf, reg + 4, MKD_VMEM_BAR >> 32);
    }
    pci_write16(bdf, 0x04, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    addr = pci_read32(bdf, reg) & ~0xfULL;
    if (is64) {
        addr |= (uint64_t)pci_read32(bdf, reg + 4) << 32;
    }
    return addr;
}

/*
 * Reset the device, acknowledge it, take VERSION_1, ACCESS_PLATFORM and
 * UNPLUGGED_INACCESSIBLE (whichever it offers), set up queue 0 at
 * MKD_VMEM_RING_PA, set DRIVER_OK and read the configuration.
 */
static bool vmem_init(uint32_t bdf)
{
    uint32_t off[5] = { 0 }, mult = 0;
    uint64_t want, ring = MKD_VMEM_RING_PA, used;
    uint16_t n;

    if (!find_caps(bdf, off, &mult)) {
        return false;
    }
    res->vmem_bar_addr = enable_bar(bdf, res->vmem_bar);
    if (res->vmem_bar_addr != MKD_VMEM_BAR) {
        return false;
    }
    common_cfg = MKD_VMEM_BAR + off[VPCI_CAP_COMMON];
    dev_cfg = MKD_VMEM_BAR + off[VPCI_CAP_DEVICE];
    wr8(common_cfg + VC_STATUS, 0);
    while (rd8(common_cfg + VC_STATUS)) {
        asm volatile("pause");
    }
    wr8(common_cfg + VC_STATUS, VS_ACK);
    wr8(common_cfg + VC_STATUS, VS_ACK | VS_DRIVER);
    wr32(common_cfg + VC_DFSELECT, 0);
    res->vmem_features = rd32(common_cfg + VC_DF);
    wr32(common_cfg + VC_DFSELECT, 1);
    res->vmem_features |= (uint64_t)rd32(common_cfg + VC_DF) << 32;
    want = res->vmem_features & (1ULL << VIRTIO_F_VERSION_1 |
                                 1ULL << VIRTIO_F_ACCESS_PLATFORM |
                                 1ULL << VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE);
    res->vmem_driver_features = want;
    note("features", res->vmem_features);
    wr32(common_cfg + VC_GFSELECT, 0);
    wr32(common_cfg + VC_GF, want);
    wr32(common_cfg + VC_GFSELECT, 1);
    wr32(common_cfg + VC_GF, want >> 32);
    wr8(common_cfg + VC_STATUS, VS_ACK | VS_DRIVER | VS_FEATURES_OK);
    res->vmem_features_ok = rd8(common_cfg + VC_STATUS);
    if (!(res->vmem_features_ok & VS_FEATURES_OK)) {
        return false;
    }
    wr16(common_cfg + VC_Q_SELECT, 0);
    res->vmem_queue_size = n = rd16(common_cfg + VC_Q_SIZE);
    note("queue 0 entries", n);
    if (n < 4 || n > MKD_RING_MAX || (n & (n - 1))) {
        return false;
    }
    memset((void *)ring, 0, MKD_RING_PAGES * MKD_PAGE);
    used = (ring + 16 * n + 6 + 2 * n + MKD_PAGE - 1) & ~(MKD_PAGE - 1ULL);
    vmem_vq = (Vq) {
        .index = 0, .size = n,
        .notify = MKD_VMEM_BAR + off[VPCI_CAP_NOTIFY] +
                  (uint64_t)rd16(common_cfg + VC_Q_NOTIFY_OFF) * mult,
        .desc = (VringDesc *)ring,
        .avail = (uint16_t *)(ring + 16 * n),
        .used = (uint16_t *)used,
    };
    vmem_vq.avail[0] = VRING_AVAIL_F_NO_INTERRUPT;
    cfg_wr64(common_cfg + VC_Q_DESC, ring);
    cfg_wr64(common_cfg + VC_Q_DRIVER, ring + 16 * n);
    cfg_wr64(common_cfg + VC_Q_DEVICE, used);
    wr16(common_cfg + VC_Q_ENABLE, 1);
    wr8(common_cfg + VC_STATUS,
        VS_ACK | VS_DRIVER | VS_FEATURES_OK | VS_DRIVER_OK);
    res->vmem_status = rd8(common_cfg + VC_STATUS);
    res->vmem_block_size = cfg_rd64(dev_cfg + VMC_BLOCK_SIZE);
    res->vmem_addr = cfg_rd64(dev_cfg + VMC_ADDR);
    res->vmem_region_size = cfg_rd64(dev_cfg + VMC_REGION_SIZE);
    res->vmem_usable_size = cfg_rd64(dev_cfg + VMC_USABLE_SIZE);
    res->vmem_requested_size = cfg_rd64(dev_cfg + VMC_REQUESTED_SIZE);
    res->vmem_plugged_size = cfg_rd64(dev_cfg + VMC_PLUGGED_SIZE);
    note("region at", res->vmem_addr);
    return true;
}

/* Request @i of MKD_VMEM_NREQ for the first block; true if ACKed */
static bool vmem_request(unsigned i, uint16_t type)
{
    VmemReq *req = (VmemReq *)MKD_VMEM_REQ_PA;
    VmemResp *resp = (VmemResp *)(MKD_VMEM_REQ_PA + 0x100);
    MkdScenResult r = { 0 };

    *req = (VmemReq) { .type = type, .addr = MKD_VMEM_PA, .nb_blocks = 1 };
    memset(resp, 0xff, sizeof(*resp));
    vq_desc(&vmem_vq, 0, (uint64_t)req, sizeof(*req), VRING_DESC_F_NEXT);
    vq_desc(&vmem_vq, 1, (uint64_t)resp, sizeof(*resp), VRING_DESC_F_WRITE);
    res->vmem_resp[i] = vq_run(&vmem_vq, &r) ? resp->type : MKD_TIMEOUT;
    res->vmem_used_len[i] = r.used_len;
    res->vmem_plugged[i] = cfg_rd64(dev_cfg + VMC_PLUGGED_SIZE);
    note("response", res->vmem_resp[i]);
    return res->vmem_resp[i] == VIRTIO_MEM_RESP_ACK;
}

/* Say @stage, wait for the test to set vmem_go to it; false on a timeout */
static bool vmem_step(uint64_t stage)
{
    uint64_t t0 = rdtsc();

    mb();
    res->vmem_stage = stage;
    while (rd64((uint64_t)&res->vmem_go) < stage) {
        if (rdtsc() - t0 > IO_TIMEOUT_CYCLES) {
            res->vmem_timeout = stage;
            return false;
        }
        asm volatile("pause" : : : "memory");
    }
    return true;
}

static unsigned char vmem_pattern(size_t i)
{
    return mkd_pattern(i < MKD_VMEM_KID1_PAGES * MKD_PAGE ? MKD_VMEM_SCEN :
                       MKD_VMEM_SCEN2, i);
}

void vmem_tests(void)
{
    const uint64_t pa = MKD_VMEM_PA, len = MKD_VMEM_PAGES * MKD_PAGE;
    uint32_t bdf = pci_find(PCI_DEV_VIRTIO_MEM);

    res->vmem_bdf = bdf;
    if (bdf == MKD_NO_DEV) {
        return;
    }
    stage("virtio-mem: capabilities, BAR, features, queue 0");
    if (!vmem_init(bdf) || res->vmem_addr != MKD_VMEM_PA ||
        res->vmem_block_size != MKD_VMEM_BLOCK) {
        return;
    }
    map_gib(MKD_VMEM_PA, vmem_pd, vmem_win_pd);
    stage("virtio-mem: plug the first block");
    if (!vmem_request(MKD_VMEM_PLUG, VIRTIO_MEM_REQ_PLUG) || !vmem_step(1)) {
        return;
    }
    stage("virtio-mem: pages through KeyID 1 and KeyID 0");
    for (size_t i = 0; i < len; i++) {
        uint64_t va = (i < MKD_VMEM_KID1_PAGES * MKD_PAGE ? WIN1 : 0) + pa + i;

        wr8(va, vmem_pattern(i));
    }
    for (size_t i = 0; i < len; i++) {
        uint64_t va = (i < MKD_VMEM_KID1_PAGES * MKD_PAGE ? WIN1 : 0) + pa + i;

        res->vmem_mismatch += rd8(va) != vmem_pattern(i);
    }
    if (!vmem_step(2)) {
        return;
    }
    stage("virtio-mem: unplug the block (QEMU discards it), plug it again");
    if (!vmem_request(MKD_VMEM_UNPLUG, VIRTIO_MEM_REQ_UNPLUG) ||
        !vmem_request(MKD_VMEM_REPLUG, VIRTIO_MEM_REQ_PLUG) ||
        !vmem_step(3)) {
        return;
    }
    stage("virtio-mem: the block plugged again");
    memcpy(res->vmem_view[0], (void *)(WIN1 + pa), len);
    memcpy(res->vmem_view[1], (void *)pa, len);
    for (size_t i = 0; i < MKD_VMEM_K0_LEN; i++) {
        wr8(pa + MKD_VMEM_K0_OFF + i, mkd_pattern(MKD_VMEM_SCEN3, i));
    }
    memcpy(res->vmem_view[2], (void *)(WIN1 + pa), len);
    mb();
    res->vmem_stage = 4;
}
