/*
 * TME-MK DMA guest: the scenarios, the results area and the test data,
 * shared by the freestanding guest (dma.c) and the qtest
 * (mktme-dma-test.c).
 *
 * Copyright (c) 2026 The qemu-mktme authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef MKTME_DMA_RESULTS_H
#define MKTME_DMA_RESULTS_H

/* The guest writes MkdResults here through KeyID 0. */
#define MKD_RESULTS_PA      0x100000ULL
#define MKD_MAGIC           0x31414d44474b4d4dULL   /* "MMKGDMA1" */
#define MKD_DONE_OK         0x600dULL
#define MKD_DONE_CRASH      0xdeadULL

/* MkdResults.path */
#define MKD_PATH_RAN        1   /* TME-MK active, KeyID 1 programmed */
#define MKD_PATH_NO_TME     2   /* IA32_TME_ACTIVATE not locked/enabled */
#define MKD_PATH_PCONFIG    3   /* PCONFIG of KeyID 1 failed */

#define MKD_NO_FAULT        0xffULL     /* no exception */
#define MKD_NO_DEV          0xffffffffULL
#define MKD_NOT_RUN         0x1ffULL    /* MkdScenResult.status */
#define MKD_TIMEOUT         0x2ffULL    /* MkdScenResult.status */

/* The legacy virtio PCI functions' BAR0, as the guest programs it */
#define MKD_BLK_IO          0xc000
#define MKD_NET_IO          0xc100
#define MKD_BALLOON_IO      0xc200

/* Guest physical layout (KeyID bits clear) */
#define MKD_BLK_RING_PA     0x200000ULL     /* 8 pages: up to 1024 entries */
#define MKD_NET_RING_PA     0x208000ULL
#define MKD_RING_PAGES      8
#define MKD_RING_MAX        1024
#define MKD_REQ_PA          0x210000ULL     /* request header, status */
#define MKD_PFNS_PA         (MKD_REQ_PA + 0x400)    /* balloon PFNs */
#define MKD_BALLOON_RING_PA 0x218000ULL

/* The disk image: MKD_DISK_SECTORS of random bytes the qtest wrote */
#define MKD_SECTOR          512
#define MKD_DISK_SECTORS    2048

#define MKD_PAGE            4096
#define MKD_MAX_PAGES       3
#define MKD_MAX_DESC        3

/* The key PCONFIG gives KeyID 1 (AES-XTS-128): data 0xa0.., tweak 0xb0.. */
#define MKD_KEY1_DATA       0xa0
#define MKD_KEY1_TWEAK      0xb0
#define MKD_KEY1_LEN        16

enum {
    MKD_BLK_READ,       /* VIRTIO_BLK_T_IN into the buffers */
    MKD_BLK_WRITE,      /* VIRTIO_BLK_T_OUT from the buffers */
    MKD_NET_TX,         /* one frame out of the buffers */
    MKD_BALLOON,        /* the buffers' pages into the balloon (inflate) */
};

typedef struct MkdDesc {
    unsigned int pa, len;
} MkdDesc;

/*
 * One I/O.  The guest first writes P = mkd_pattern(scenario, offset
 * from .page) into the .npages pages from .page: through KeyID 1 and
 * reads it back through KeyID 1 (.kid1: the fast path gives each page
 * a shadow), or through KeyID 0 (a control).  Then it runs the I/O
 * with one data descriptor per .desc entry, in order (the disk range
 * starts at .sector), and reads the pages back (MkdResults.view).  A
 * balloon inflate gives the device the page frame number of each .desc
 * entry (a whole page): QEMU discards those pages, which then read as
 * zeroes through KeyID 0.
 */
typedef struct MkdScenario {
    const char *name;
    unsigned char type, kid1, ndesc;
    unsigned int page, npages, sector;
    MkdDesc desc[MKD_MAX_DESC];
} MkdScenario;

static const MkdScenario mkd_scen[] = {
    { "blk read into a page used through KeyID 0 only (control)",
      MKD_BLK_READ, 0, 1, 0x300000, 1, 8, { { 0x300000, 0x1000 } } },
    { "a: blk read of 8 sectors into a page used through KeyID 1",
      MKD_BLK_READ, 1, 1, 0x400000, 1, 16, { { 0x400000, 0x1000 } } },
    { "b: blk read, 3 descriptors (mid-page; across two pages) into "
      "pages used through KeyID 1",
      MKD_BLK_READ, 1, 3, 0x401000, 3, 32,
      { { 0x401200, 0x400 }, { 0x401a00, 0xc00 }, { 0x403400, 0x800 } } },
    { "b2: blk read, descriptors at unaligned offsets into a page used "
      "through KeyID 1",
      MKD_BLK_READ, 1, 2, 0x404000, 1, 48,
      { { 0x404130, 0x300 }, { 0x4047f0, 0x500 } } },
    { "c: blk write of 8 sectors from a page written through KeyID 1",
      MKD_BLK_WRITE, 1, 1, 0x405000, 1, 64, { { 0x405000, 0x1000 } } },
    { "c2: blk write, 2 descriptors (one across two pages) from pages "
      "written through KeyID 1",
      MKD_BLK_WRITE, 1, 2, 0x406000, 2, 80,
      { { 0x406800, 0x1000 }, { 0x406100, 0x200 } } },
    { "blk write from a page written through KeyID 0 only (control)",
      MKD_BLK_WRITE, 0, 1, 0x301000, 1, 96, { { 0x301000, 0x1000 } } },
    { "net tx of a frame in a page used through KeyID 0 only (control)",
      MKD_NET_TX, 0, 1, 0x302000, 1, 0, { { 0x302020, 300 } } },
    { "d: net tx of a frame in a page written through KeyID 1",
      MKD_NET_TX, 1, 1, 0x408000, 1, 0, { { 0x408010, 300 } } },
    { "net tx of a frame in a page used through KeyID 0 only (last)",
      MKD_NET_TX, 0, 1, 0x303000, 1, 0, { { 0x303200, 200 } } },
    { "e: balloon inflate of two pages used through KeyID 1",
      MKD_BALLOON, 1, 2, 0x409000, 2, 0,
      { { 0x409000, 0x1000 }, { 0x40a000, 0x1000 } } },
    { "balloon inflate of a page used through KeyID 0 only (control)",
      MKD_BALLOON, 0, 1, 0x304000, 1, 0, { { 0x304000, 0x1000 } } },
};
#define MKD_NSCEN   (sizeof(mkd_scen) / sizeof(mkd_scen[0]))
#define MKD_NSCEN_MAX 12

/*
 * DIMM unplug with live shadows (a variant with a pc-dimm at 4 GiB and
 * no other device but the balloon).  The guest writes MKD_DIMM_PAGES
 * pages at MKD_DIMM_OFF in the DIMM: the first ones through KeyID 1 and
 * reads them back (shadows), the last through KeyID 0, and says so
 * (dimm_stage 1).  Once the test has asked to unplug the DIMM
 * (dimm_go 1), the guest ejects it through the ACPI memory hotplug
 * registers, as OSPM's _EJ0 does, stores and loads through KeyID 1 and
 * KeyID 0 where it was (dimm_stage 2).  The test then deletes the
 * memory backend, plugs a new DIMM at the same address (dimm_go 2), and
 * the guest reads the pages through KeyID 1 and KeyID 0 (dimm_view),
 * writes the first one through KeyID 1 again and reads it back.
 */
#define MKD_DIMM_PA         0x100000000ULL
#define MKD_DIMM_OFF        0x10000ULL
#define MKD_DIMM_PAGES      3
#define MKD_DIMM_KID1_PAGES 2
#define MKD_DIMM_SCEN       20      /* mkd_pattern()'s scenario numbers */
#define MKD_DIMM_SCEN2      21
#define MKD_MHP_BASE        0xa00   /* ACPI memory hotplug registers */
#define MKD_GONE_WORD       0x5eedf00dcafe1234ULL

/*
 * virtio-mem unplug with live shadows (a variant with a virtio-mem-pci
 * device of MKD_VMEM_REGION bytes at MKD_VMEM_PA, blocks of
 * MKD_VMEM_BLOCK, one block requested, and no other device but the
 * balloon).  virtio-mem has no legacy interface: the guest drives it as
 * a modern (virtio 1.0) PCI function, its BAR at MKD_VMEM_BAR, and
 * plugs the region's first block (vmem_stage 1).  Once the test has
 * counted the shadows (vmem_go 1), the guest writes MKD_VMEM_PAGES
 * pages at the start of the block: the first ones through KeyID 1 and
 * reads them back (shadows), the last through KeyID 0 (vmem_stage 2).
 * Then (vmem_go 2) it unplugs the block, which QEMU discards, and plugs
 * it again (vmem_stage 3): the test reads R.  Then (vmem_go 3) the
 * guest reads the pages through KeyID 1 and KeyID 0 (vmem_view[0],
 * [1]), writes MKD_VMEM_K0_LEN bytes at MKD_VMEM_K0_OFF through KeyID
 * 0 and reads the pages through KeyID 1 again (vmem_view[2]).
 */
#define MKD_VMEM_PA         0x100000000ULL
#define MKD_VMEM_REGION     (64ULL << 20)
#define MKD_VMEM_BLOCK      (2ULL << 20)
#define MKD_VMEM_BAR        0x20000000ULL   /* above RAM, in the 1:1 map */
#define MKD_VMEM_RING_PA    0x220000ULL     /* after the balloon's ring */
#define MKD_VMEM_REQ_PA     (MKD_VMEM_RING_PA + MKD_RING_PAGES * MKD_PAGE)
#define MKD_VMEM_PAGES      3
#define MKD_VMEM_KID1_PAGES 2
#define MKD_VMEM_SCEN       22      /* mkd_pattern()'s scenario numbers */
#define MKD_VMEM_SCEN2      23
#define MKD_VMEM_SCEN3      24
#define MKD_VMEM_K0_OFF     0xf90   /* pages 0 and 1, partial lines */
#define MKD_VMEM_K0_LEN     0x150

/* MkdResults.vmem_resp[], vmem_used_len[], vmem_plugged[] */
enum {
    MKD_VMEM_PLUG,      /* the first block */
    MKD_VMEM_UNPLUG,    /* it, with the shadows live */
    MKD_VMEM_REPLUG,    /* it again */
    MKD_VMEM_NREQ
};

/* MkdResults.view[][v]: the pages read back after the I/O */
enum {
    MKD_VIEW_K1,        /* through KeyID 1 (not for controls) */
    MKD_VIEW_K0,        /* then through KeyID 0 */
    MKD_VIEW_K1_AGAIN,  /* then through KeyID 1 again (not for controls) */
    MKD_NVIEWS
};

/* Byte @i of scenario @s's pages, as the guest writes it */
static inline unsigned char mkd_pattern(unsigned s, unsigned i)
{
    return (unsigned char)(i * 13 + s * 0x45 + (i >> 8) * 3 + 0x5a);
}

typedef struct MkdScenResult {
    unsigned long long ran;         /* 1: the scenario ran */
    unsigned long long status;      /* blk status byte, MKD_TIMEOUT, ... */
    unsigned long long used_id, used_len;   /* the used ring's element */
    unsigned long long mismatch;    /* bytes not read back as written */
    unsigned long long cycles;      /* TSC cycles to completion */
} MkdScenResult;

typedef struct MkdResults {
    unsigned long long magic;
    unsigned long long done;    /* 0 while running, MKD_DONE_* at the end */
    unsigned long long path;    /* MKD_PATH_* */
    unsigned long long stage;   /* last stage started (for diagnostics) */
    unsigned long long crash_vector, crash_error, crash_rip, crash_cr2;
    unsigned long long activate, activate_vector;
    unsigned long long pconfig_vector, pconfig_rax;
    unsigned long long blk_bdf, net_bdf;        /* MKD_NO_DEV: absent */
    unsigned long long blk_bar0, net_bar0;      /* read back */
    unsigned long long blk_features, net_features;
    unsigned long long blk_queue_size, net_queue_size;  /* QUEUE_NUM */
    unsigned long long blk_status, net_status;  /* after DRIVER_OK */
    unsigned long long blk_capacity;            /* sectors */
    unsigned long long balloon_bdf, balloon_bar0, balloon_features;
    unsigned long long balloon_queue_size, balloon_status;
    unsigned long long dimm_stage, dimm_go;     /* see MKD_DIMM_PA */
    unsigned long long dimm_flags, dimm_flags_ejected;  /* slot 0 */
    unsigned long long dimm_addr_lo, dimm_addr_hi;
    unsigned long long dimm_mismatch, dimm_mismatch2, dimm_timeout;
    unsigned long long dimm_gone_k1, dimm_gone_k0;
    unsigned long long vmem_bdf;                /* MKD_NO_DEV: absent */
    unsigned long long vmem_caps;   /* 1 << cfg_type of each vendor cap */
    unsigned long long vmem_bar, vmem_bar_addr; /* its BAR: index, read back */
    unsigned long long vmem_features, vmem_driver_features;
    unsigned long long vmem_features_ok;        /* status after FEATURES_OK */
    unsigned long long vmem_queue_size, vmem_status;    /* after DRIVER_OK */
    unsigned long long vmem_block_size, vmem_addr, vmem_region_size;
    unsigned long long vmem_usable_size, vmem_requested_size;
    unsigned long long vmem_plugged_size;       /* before the first plug */
    unsigned long long vmem_resp[MKD_VMEM_NREQ];    /* response type */
    unsigned long long vmem_used_len[MKD_VMEM_NREQ];
    unsigned long long vmem_plugged[MKD_VMEM_NREQ]; /* plugged_size after */
    unsigned long long vmem_stage, vmem_go;     /* see MKD_VMEM_PA */
    unsigned long long vmem_mismatch, vmem_timeout;
    MkdScenResult scen[MKD_NSCEN_MAX];
    unsigned char view[MKD_NSCEN_MAX][MKD_NVIEWS][MKD_MAX_PAGES * MKD_PAGE];
    unsigned char dimm_view[2][MKD_DIMM_PAGES * MKD_PAGE];  /* K1, K0 */
    unsigned char vmem_view[3][MKD_VMEM_PAGES * MKD_PAGE];  /* K1, K0, K1 */
} MkdResults;

#endif
