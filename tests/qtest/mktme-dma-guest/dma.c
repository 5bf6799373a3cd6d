/*
 * TME-MK DMA guest: device I/O into and out of pages used through
 * KeyID 1, for mktme-dma-test.c.  It programs KeyID 1 with PCONFIG,
 * finds a legacy (transitional) virtio-blk and/or virtio-net PCI
 * function and a virtio-balloon one by scanning configuration space,
 * gives it an I/O BAR, drives one virtqueue by polling (no interrupts),
 * and runs the scenarios of results.h, recording what it sees in
 * MkdResults at MKD_RESULTS_PA.  It also ejects a DIMM, and unplugs a
 * virtio-mem block (vmem.c).
 * Runs in long mode, ring 0, identity-mapped 0..1 GiB (boot.S); the
 * KeyID 1 window at WIN1 maps 0..1 GiB to (1 << 40) | pa.
 *
 * Copyright (c) 2026 The qemu-mktme authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "dma.h"
#include "guest-lib.h"

_Static_assert(MKD_NSCEN <= MKD_NSCEN_MAX, "too many scenarios");
_Static_assert(sizeof(MkdResults) <= MKD_BLK_RING_PA - MKD_RESULTS_PA,
               "results overlap the rings");

#define MSR_TME_ACTIVATE    0x982

#define CMD_DIRECT  0
#define ALG128      (1u << 8)

/* PCI configuration mechanism #1 */
#define PCI_ADDR    0xcf8
#define PCI_DATA    0xcfc
#define PCI_DEV_VIRTIO_NET  0x1000  /* transitional (legacy) IDs */
#define PCI_DEV_VIRTIO_BLK  0x1001
#define PCI_DEV_VIRTIO_BALLOON  0x1002

/* Legacy virtio PCI registers (virtio 0.9.5), offsets in BAR0 */
#define VP_HOST_FEATURES    0x00
#define VP_GUEST_FEATURES   0x04
#define VP_QUEUE_PFN        0x08
#define VP_QUEUE_NUM        0x0c
#define VP_QUEUE_SEL        0x0e
#define VP_QUEUE_NOTIFY     0x10
#define VP_STATUS           0x12
#define VP_CONFIG           0x14    /* without MSI-X */

#define VIRTIO_BLK_T_IN     0
#define VIRTIO_BLK_T_OUT    1
#define NET_TX_QUEUE        1
#define BALLOON_INFLATE_QUEUE   0
#define NET_HDR_LEN         10      /* struct virtio_net_hdr, no features */

typedef struct BlkReqHdr {
    uint32_t type, ioprio;
    uint64_t sector;
} BlkReqHdr;

static IdtEntry idt[32] __attribute__((aligned(16)));
static uint8_t pcs[256] __attribute__((aligned(256)));  /* PCONFIG struct */
static uint64_t win_pdpt[512] __attribute__((aligned(4096)));
static uint64_t win_pd[512] __attribute__((aligned(4096)));
static uint64_t dimm_pd[512] __attribute__((aligned(4096)));
static uint64_t dimm_win_pd[512] __attribute__((aligned(4096)));
static uint8_t pbuf[MKD_MAX_PAGES * MKD_PAGE];
static Vq blk_vq, net_vq, balloon_vq;

static inline uint8_t inb(uint16_t port)
{
    uint8_t v;

    asm volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

static inline uint16_t inw(uint16_t port)
{
    uint16_t v;

    asm volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

static inline uint32_t inl(uint16_t port)
{
    uint32_t v;

    asm volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

static inline void outw(uint16_t port, uint16_t v)
{
    asm volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}

void note(const char *what, uint64_t v)
{
    puts_dbg("  ");
    puts_dbg(what);
    puts_dbg(" ");
    puthex(v);
    puts_dbg("\n");
}

void stage(const char *name)
{
    res->stage++;
    puts_dbg("mktme-dma-guest: ");
    puts_dbg(name);
    puts_dbg("\n");
}

static void finish(uint64_t code)
{
    asm volatile("" : : : "memory");
    res->done = code;
    puts_dbg(code == MKD_DONE_OK ? "mktme-dma-guest: done\n" :
             "mktme-dma-guest: CRASHED\n");
    for (;;) {
        asm volatile("cli; hlt");
    }
}

/* An exception nobody expected: record it and stop. */
void fatal_fault(uint64_t *frame)
{
    res->crash_vector = frame[1];
    res->crash_error = frame[2];
    res->crash_rip = frame[3];
    res->crash_cr2 = read_cr2();
    puts_dbg("mktme-dma-guest: unexpected exception ");
    puthex(frame[1]);
    puts_dbg(" error ");
    puthex(frame[2]);
    puts_dbg(" rip ");
    puthex(frame[3]);
    puts_dbg(" cr2 ");
    puthex(res->crash_cr2);
    puts_dbg("\n");
    finish(MKD_DONE_CRASH);
}

/* PML4[1] -> PDPT -> PD of 2 MiB pages at KeyID 1 */
static void map_kid1_window(void)
{
    win_pdpt[0] = (uint64_t)win_pd | PG_PRW;
    for (uint64_t i = 0; i < 512; i++) {
        win_pd[i] = KID1 | (i << 21) | PG_PS | PG_PRW;
    }
    boot_pml4[1] = (uint64_t)win_pdpt | PG_PRW;
    asm volatile("mov %0, %%cr3" : : "r"((uint64_t)boot_pml4) : "memory");
}

void map_gib(uint64_t pa, uint64_t pd[512], uint64_t win_pd[512])
{
    uint64_t *pdpt = (uint64_t *)(boot_pml4[0] & ~0xfffULL);
    uint64_t gib = pa & ~((1ULL << 30) - 1);

    for (uint64_t i = 0; i < 512; i++) {
        pd[i] = (gib + (i << 21)) | PG_PS | PG_PRW;
        win_pd[i] = KID1 | (gib + (i << 21)) | PG_PS | PG_PRW;
    }
    pdpt[gib >> 30] = (uint64_t)pd | PG_PRW;
    win_pdpt[gib >> 30] = (uint64_t)win_pd | PG_PRW;
    asm volatile("mov %0, %%cr3" : : "r"((uint64_t)boot_pml4) : "memory");
}

/* PCONFIG leaf 0: KeyID 1, SET_KEY_DIRECT, AES-XTS-128 */
static void program_kid1(void)
{
    uint32_t ctrl = CMD_DIRECT | ALG128;
    uint16_t keyid = 1;
    uint64_t out[2] = { 0, 0 };

    memset(pcs, 0, sizeof(pcs));
    memcpy(pcs, &keyid, 2);
    memcpy(pcs + 2, &ctrl, 4);
    for (int i = 0; i < MKD_KEY1_LEN; i++) {
        pcs[64 + i] = MKD_KEY1_DATA + i;
        pcs[128 + i] = MKD_KEY1_TWEAK + i;
    }
    res->pconfig_vector = g_pconfig(0, (uint64_t)pcs, 0, out);
    res->pconfig_rax = out[0];
}

static uint32_t pci_addr(uint32_t bdf, uint32_t off)
{
    return 0x80000000u | bdf << 8 | (off & 0xfc);
}

uint32_t pci_read32(uint32_t bdf, uint32_t off)
{
    outl(PCI_ADDR, pci_addr(bdf, off));
    return inl(PCI_DATA);
}

void pci_write32(uint32_t bdf, uint32_t off, uint32_t v)
{
    outl(PCI_ADDR, pci_addr(bdf, off));
    outl(PCI_DATA, v);
}

void pci_write16(uint32_t bdf, uint32_t off, uint16_t v)
{
    outl(PCI_ADDR, pci_addr(bdf, off));
    outw(PCI_DATA + (off & 2), v);
}

/* Bus 0, function 0 of each slot: the BDF of @dev, or MKD_NO_DEV */
uint32_t pci_find(uint16_t dev)
{
    for (uint32_t slot = 0; slot < 32; slot++) {
        uint32_t id = pci_read32(slot << 3, 0);

        if (id == (PCI_VENDOR_VIRTIO | (uint32_t)dev << 16)) {
            return slot << 3;
        }
    }
    return MKD_NO_DEV;
}

/* BAR0 := @io, I/O decoding and bus mastering on; BAR0 read back */
static uint32_t pci_enable(uint32_t bdf, uint16_t io)
{
    pci_write32(bdf, 0x10, io);
    pci_write16(bdf, 0x04, PCI_COMMAND_IO | PCI_COMMAND_MASTER);
    return pci_read32(bdf, 0x10);
}

/*
 * Reset the device, acknowledge it, take no features, set up queue
 * @index at @ring and set DRIVER_OK.  *@num is the queue's size; false
 * if that does not fit in MKD_RING_PAGES.
 */
static bool vp_init(Vq *vq, uint16_t io, uint16_t index, uint64_t ring,
                    unsigned long long *features, unsigned long long *num)
{
    uint16_t n;
    uint64_t used;

    outb(io + VP_STATUS, 0);
    outb(io + VP_STATUS, VS_ACK);
    outb(io + VP_STATUS, VS_ACK | VS_DRIVER);
    *features = inl(io + VP_HOST_FEATURES);
    outl(io + VP_GUEST_FEATURES, 0);
    outw(io + VP_QUEUE_SEL, index);
    *num = n = inw(io + VP_QUEUE_NUM);
    puts_dbg("  queue ");
    putdec(index);
    puts_dbg(": ");
    putdec(n);
    puts_dbg(" entries\n");
    if (n < 4 || n > MKD_RING_MAX || (n & (n - 1))) {
        return false;
    }
    memset((void *)ring, 0, MKD_RING_PAGES * MKD_PAGE);
    used = (ring + 16 * n + 6 + 2 * n + MKD_PAGE - 1) & ~(MKD_PAGE - 1ULL);
    *vq = (Vq) {
        .io = io, .index = index, .size = n,
        .desc = (VringDesc *)ring,
        .avail = (uint16_t *)(ring + 16 * n),
        .used = (uint16_t *)used,
    };
    vq->avail[0] = VRING_AVAIL_F_NO_INTERRUPT;
    outl(io + VP_QUEUE_PFN, ring >> 12);
    outb(io + VP_STATUS, VS_ACK | VS_DRIVER | VS_DRIVER_OK);
    return true;
}

void vq_desc(Vq *vq, unsigned i, uint64_t pa, uint32_t len, uint16_t flags)
{
    vq->desc[i] = (VringDesc) {
        .addr = pa, .len = len, .flags = flags, .next = i + 1,
    };
}

/*
 * Make the chain at descriptor 0 available, notify, poll the used ring.
 * Returns false on a timeout.
 */
bool vq_run(Vq *vq, MkdScenResult *r)
{
    uint64_t used_idx = (uint64_t)&vq->used[1];
    VringUsedElem *ue;
    uint64_t t0;

    vq->avail[2 + vq->avail_idx % vq->size] = 0;
    mb();
    vq->avail_idx++;
    vq->avail[1] = vq->avail_idx;
    mb();
    t0 = rdtsc();
    if (vq->notify) {
        stn(vq->notify, 2, vq->index);
    } else {
        outw(vq->io + VP_QUEUE_NOTIFY, vq->index);
    }
    while (ldn(used_idx, 2) == vq->used_idx) {
        if (rdtsc() - t0 > IO_TIMEOUT_CYCLES) {
            r->cycles = rdtsc() - t0;
            return false;
        }
        asm volatile("pause" : : : "memory");
    }
    r->cycles = rdtsc() - t0;
    mb();
    ue = (VringUsedElem *)&vq->used[2] + vq->used_idx % vq->size;
    r->used_id = ue->id;
    r->used_len = ue->len;
    vq->used_idx++;
    return true;
}

static uint64_t pa_of(const MkdScenario *s, unsigned kid1)
{
    return (kid1 ? WIN1 : 0) + s->page;
}

/*
 * P through KeyID 1 (read back through it: the fast path's shadow) or,
 * for a control, through KeyID 0.
 */
static void prepare(unsigned si, const MkdScenario *s, MkdScenResult *r)
{
    size_t len = s->npages * MKD_PAGE;
    uint64_t va = pa_of(s, s->kid1);

    for (size_t i = 0; i < len; i++) {
        pbuf[i] = mkd_pattern(si, i);
    }
    memcpy((void *)va, pbuf, len);
    for (size_t i = 0; i < len; i++) {
        r->mismatch += ldn(va + i, 1) != pbuf[i];
    }
}

/* The pages after the I/O: through KeyID 1, KeyID 0, KeyID 1 again */
static void read_views(unsigned si, const MkdScenario *s)
{
    size_t len = s->npages * MKD_PAGE;

    if (s->kid1) {
        memcpy(res->view[si][MKD_VIEW_K1], (void *)pa_of(s, 1), len);
    }
    memcpy(res->view[si][MKD_VIEW_K0], (void *)pa_of(s, 0), len);
    if (s->kid1) {
        memcpy(res->view[si][MKD_VIEW_K1_AGAIN], (void *)pa_of(s, 1), len);
    }
}

static void run_blk(const MkdScenario *s, MkdScenResult *r)
{
    BlkReqHdr *hdr = (BlkReqHdr *)MKD_REQ_PA;
    uint64_t status = MKD_REQ_PA + 0x100;
    uint16_t dflags = VRING_DESC_F_NEXT;
    unsigned i;

    *hdr = (BlkReqHdr) {
        .type = s->type == MKD_BLK_READ ? VIRTIO_BLK_T_IN : VIRTIO_BLK_T_OUT,
        .sector = s->sector,
    };
    stn(status, 1, 0xff);
    if (s->type == MKD_BLK_READ) {
        dflags |= VRING_DESC_F_WRITE;
    }
    vq_desc(&blk_vq, 0, MKD_REQ_PA, sizeof(*hdr), VRING_DESC_F_NEXT);
    for (i = 0; i < s->ndesc; i++) {
        vq_desc(&blk_vq, i + 1, s->desc[i].pa, s->desc[i].len, dflags);
    }
    vq_desc(&blk_vq, i + 1, status, 1, VRING_DESC_F_WRITE);
    r->status = vq_run(&blk_vq, r) ? ldn(status, 1) : MKD_TIMEOUT;
}

static void run_net(const MkdScenario *s, MkdScenResult *r)
{
    memset((void *)(MKD_REQ_PA + 0x200), 0, NET_HDR_LEN);
    vq_desc(&net_vq, 0, MKD_REQ_PA + 0x200, NET_HDR_LEN, VRING_DESC_F_NEXT);
    vq_desc(&net_vq, 1, s->desc[0].pa, s->desc[0].len, 0);
    r->status = vq_run(&net_vq, r) ? 0 : MKD_TIMEOUT;
}

/* The page frame numbers of the pages of @s's descriptors */
static void run_balloon(const MkdScenario *s, MkdScenResult *r)
{
    uint32_t *pfn = (uint32_t *)MKD_PFNS_PA;

    for (unsigned i = 0; i < s->ndesc; i++) {
        pfn[i] = s->desc[i].pa >> 12;
    }
    vq_desc(&balloon_vq, 0, MKD_PFNS_PA, 4 * s->ndesc, 0);
    r->status = vq_run(&balloon_vq, r) ? 0 : MKD_TIMEOUT;
}

static void run_scenario(unsigned si)
{
    const MkdScenario *s = &mkd_scen[si];
    MkdScenResult *r = &res->scen[si];

    stage(s->name);
    prepare(si, s, r);
    if (s->type == MKD_NET_TX) {
        run_net(s, r);
    } else if (s->type == MKD_BALLOON) {
        run_balloon(s, r);
    } else {
        run_blk(s, r);
    }
    r->ran = 1;
    puts_dbg("  status ");
    puthex(r->status);
    puts_dbg(" used len ");
    putdec(r->used_len);
    puts_dbg(" cycles ");
    putdec(r->cycles);
    puts_dbg(" readback mismatches ");
    putdec(r->mismatch);
    puts_dbg("\n");
    read_views(si, s);
}

static void blk_tests(void)
{
    uint32_t bdf = res->blk_bdf;
    unsigned long long feat, num;
    bool ok;

    stage("virtio-blk: BAR0, reset, queue 0");
    res->blk_bar0 = pci_enable(bdf, MKD_BLK_IO);
    ok = vp_init(&blk_vq, MKD_BLK_IO, 0, MKD_BLK_RING_PA, &feat, &num);
    res->blk_features = feat;
    res->blk_queue_size = num;
    res->blk_status = inb(MKD_BLK_IO + VP_STATUS);
    res->blk_capacity = inl(MKD_BLK_IO + VP_CONFIG) |
                        (uint64_t)inl(MKD_BLK_IO + VP_CONFIG + 4) << 32;
    if (!ok) {
        return;
    }
    for (unsigned i = 0; i < MKD_NSCEN; i++) {
        if (mkd_scen[i].type == MKD_BLK_READ ||
            mkd_scen[i].type == MKD_BLK_WRITE) {
            run_scenario(i);
        }
    }
}

static void net_tests(void)
{
    uint32_t bdf = res->net_bdf;
    unsigned long long feat, num;
    bool ok;

    stage("virtio-net: BAR0, reset, TX queue");
    res->net_bar0 = pci_enable(bdf, MKD_NET_IO);
    ok = vp_init(&net_vq, MKD_NET_IO, NET_TX_QUEUE, MKD_NET_RING_PA, &feat,
                 &num);
    res->net_features = feat;
    res->net_queue_size = num;
    res->net_status = inb(MKD_NET_IO + VP_STATUS);
    if (!ok) {
        return;
    }
    for (unsigned i = 0; i < MKD_NSCEN; i++) {
        if (mkd_scen[i].type == MKD_NET_TX) {
            run_scenario(i);
        }
    }
}

static void balloon_tests(void)
{
    uint32_t bdf = res->balloon_bdf;
    unsigned long long feat, num;
    bool ok;

    stage("virtio-balloon: BAR0, reset, inflate queue");
    res->balloon_bar0 = pci_enable(bdf, MKD_BALLOON_IO);
    ok = vp_init(&balloon_vq, MKD_BALLOON_IO, BALLOON_INFLATE_QUEUE,
                 MKD_BALLOON_RING_PA, &feat, &num);
    res->balloon_features = feat;
    res->balloon_queue_size = num;
    res->balloon_status = inb(MKD_BALLOON_IO + VP_STATUS);
    if (!ok) {
        return;
    }
    for (unsigned i = 0; i < MKD_NSCEN; i++) {
        if (mkd_scen[i].type == MKD_BALLOON) {
            run_scenario(i);
        }
    }
}

/* Wait for the test to set dimm_go to @v; false on a timeout */
static bool dimm_wait(uint64_t v)
{
    uint64_t t0 = rdtsc();

    while (ldn((uint64_t)&res->dimm_go, 8) < v) {
        if (rdtsc() - t0 > IO_TIMEOUT_CYCLES) {
            res->dimm_timeout = v;
            return false;
        }
        asm volatile("pause" : : : "memory");
    }
    return true;
}

static void dimm_tests(void)
{
    uint64_t pa = MKD_DIMM_PA + MKD_DIMM_OFF;
    size_t len = MKD_DIMM_PAGES * MKD_PAGE;

    outl(MKD_MHP_BASE, 0);
    res->dimm_flags = inb(MKD_MHP_BASE + 0x14);
    res->dimm_addr_lo = inl(MKD_MHP_BASE);
    res->dimm_addr_hi = inl(MKD_MHP_BASE + 4);
    /* No DIMM in slot 0, or no hotplug registers (they read ones) */
    if (res->dimm_flags != 1 ||
        (res->dimm_addr_lo | res->dimm_addr_hi << 32) != MKD_DIMM_PA) {
        return;
    }
    stage("DIMM: pages through KeyID 1 and KeyID 0");
    /* 4..5 GiB: identity, and at WIN1 + 4 GiB through KeyID 1 */
    map_gib(MKD_DIMM_PA, dimm_pd, dimm_win_pd);
    for (size_t i = 0; i < len; i++) {
        unsigned kid1 = i < MKD_DIMM_KID1_PAGES * MKD_PAGE;
        uint64_t va = (kid1 ? WIN1 : 0) + pa + i;

        stn(va, 1, mkd_pattern(kid1 ? MKD_DIMM_SCEN : MKD_DIMM_SCEN2, i));
    }
    for (size_t i = 0; i < len; i++) {
        unsigned kid1 = i < MKD_DIMM_KID1_PAGES * MKD_PAGE;
        uint64_t va = (kid1 ? WIN1 : 0) + pa + i;

        res->dimm_mismatch += ldn(va, 1) !=
            mkd_pattern(kid1 ? MKD_DIMM_SCEN : MKD_DIMM_SCEN2, i);
    }
    mb();
    res->dimm_stage = 1;
    if (!dimm_wait(1)) {
        return;
    }
    stage("DIMM: eject (ACPI memory hotplug), then where it was");
    outl(MKD_MHP_BASE, 0);
    outb(MKD_MHP_BASE + 0x14, 8);
    res->dimm_flags_ejected = inb(MKD_MHP_BASE + 0x14);
    stn(WIN1 + pa, 8, MKD_GONE_WORD);
    res->dimm_gone_k1 = ldn(WIN1 + pa, 8);
    res->dimm_gone_k0 = ldn(pa, 8);
    mb();
    res->dimm_stage = 2;
    if (!dimm_wait(2)) {
        return;
    }
    stage("DIMM: the new DIMM at the same address");
    memcpy(res->dimm_view[0], (void *)(WIN1 + pa), len);
    memcpy(res->dimm_view[1], (void *)pa, len);
    for (size_t i = 0; i < MKD_PAGE; i++) {
        stn(WIN1 + pa + i, 1, mkd_pattern(MKD_DIMM_SCEN2, i));
    }
    for (size_t i = 0; i < MKD_PAGE; i++) {
        res->dimm_mismatch2 += ldn(WIN1 + pa + i, 1) !=
                               mkd_pattern(MKD_DIMM_SCEN2, i);
    }
    res->dimm_stage = 3;
}

void guest_main(void)
{
    uint64_t act = 0;

    memset(res, 0, sizeof(*res));
    for (unsigned i = 0; i < MKD_NSCEN_MAX; i++) {
        res->scen[i].status = MKD_NOT_RUN;
    }
    for (unsigned i = 0; i < MKD_VMEM_NREQ; i++) {
        res->vmem_resp[i] = MKD_NOT_RUN;
    }
    res->magic = MKD_MAGIC;
    setup_ring0(idt);
    stage("long mode, IDT, TSS ok; TME-MK and KeyID 1");

    res->activate_vector = g_rdmsr(MSR_TME_ACTIVATE, &act);
    res->activate = act;
    if (res->activate_vector != MKD_NO_FAULT || (res->activate & 3) != 3 ||
        ((res->activate >> 32) & 0xf) < 1) {
        res->path = MKD_PATH_NO_TME;
        finish(MKD_DONE_OK);
    }
    map_kid1_window();
    program_kid1();
    if (res->pconfig_vector != MKD_NO_FAULT || res->pconfig_rax) {
        res->path = MKD_PATH_PCONFIG;
        finish(MKD_DONE_OK);
    }
    res->path = MKD_PATH_RAN;

    stage("PCI: looking for legacy virtio-blk, virtio-net, virtio-balloon");
    res->blk_bdf = pci_find(PCI_DEV_VIRTIO_BLK);
    res->net_bdf = pci_find(PCI_DEV_VIRTIO_NET);
    res->balloon_bdf = pci_find(PCI_DEV_VIRTIO_BALLOON);
    dimm_tests();
    vmem_tests();
    /* The balloon first: later I/O must not bring its pages back */
    if (res->balloon_bdf != MKD_NO_DEV) {
        balloon_tests();
    }
    if (res->blk_bdf != MKD_NO_DEV) {
        blk_tests();
    }
    if (res->net_bdf != MKD_NO_DEV) {
        net_tests();
    }
    finish(MKD_DONE_OK);
}
