/*
 * QTest: device I/O into and out of guest pages that the guest uses
 * through a non-zero KeyID, under TCG.  A freestanding guest
 * (tests/qtest/mktme-dma-guest) programs KeyID 1, writes pages through
 * it and reads them back (so the memory controller's fast path gives
 * them plaintext shadows), then uses the same pages, by their KeyID 0
 * address, as the buffers of legacy virtio-blk reads and writes and of
 * virtio-net transmits, and gives pages to a virtio-balloon.  QEMU moves
 * those bytes with host system calls on mapped guest memory:
 * preadv/pwritev (aio=threads), io_uring, Linux AIO with O_DIRECT,
 * send() on a UDP socket; it discards ballooned pages with madvise() or
 * fallocate().  Other variants eject a DIMM whose pages the guest used
 * through KeyID 1, or unplug such a virtio-mem block (discarded) and
 * plug it again.  Every request must
 * complete with the exact status, and every byte the guest reads back
 * through KeyID 0 and KeyID 1, every byte of RAM, of the disk image and
 * of the datagrams must be what the memory model says (checked against
 * OpenSSL's AES-XTS):
 *
 *   device DMA reads and writes R (the KeyID 0 view);
 *   a discarded page's R reads as zeroes, until it is written again;
 *   a read through KeyID k returns D_k(E_0(R));
 *   a write of P through KeyID k stores R := D_0(E_k(P)).
 *
 * Each variant runs in a subprocess, so that one whose QEMU dies does
 * not hide the others, and a failed variant does not stop the run.
 *
 * Copyright (c) 2026 The qemu-mktme authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include "qobject/qdict.h"
#include "libqtest.h"
#include "standard-headers/linux/virtio_blk.h"
#include "standard-headers/linux/virtio_mem.h"
#include "mktme-oracle.h"
#include "mktme-dma-guest-blob.h"
#include "mktme-dma-guest/results.h"

/* KeyID 0's key: data key 00..0f, tweak key 10..1f */
#define KEY0_B64 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

#define GUEST_ARGS \
    "-machine q35 -accel tcg -cpu max,vendor=GenuineIntel,phys-bits=46 " \
    "-m 256M -nodefaults -no-reboot "
#define RAM_SIZE        (256ULL << 20)  /* GUEST_ARGS' -m */
#define MKTME_ARGS \
    "-object secret,id=s0,data=" KEY0_B64 ",format=base64 " \
    "-object mktme-guest,id=k0,guest-visible=on,key-secret=s0,keyid-bits=6"

/*
 * Legacy virtio only.  A machine with confidential guest support makes
 * virtio devices modern-only with iommu_platform=on (hw/core/machine.c,
 * for SEV), which a legacy device must turn off: its DMA then goes to
 * the system address space, the same guest RAM.
 */
#define LEGACY "disable-legacy=off,disable-modern=on,iommu_platform=off"

#define DISK_SIZE       (MKD_DISK_SECTORS * MKD_SECTOR)
#define TIME_LIMIT_S    120
#define NET_WAIT_S      5       /* for datagrams after the guest is done */
#define VS_ALL          7       /* ACKNOWLEDGE | DRIVER | DRIVER_OK */
#define VS_MODERN       (VS_ALL | VIRTIO_CONFIG_S_FEATURES_OK)
#define VPCI_CAPS       0x16    /* 1 << cfg_type: common, notify, device */

/*
 * One QEMU run: virtio-blk with an aio backend, or virtio-net over a
 * UDP socket (@aio NULL); guest RAM anonymous, memfd or a file in
 * /dev/shm, both shared; the fast path on or (shadow-size=0) off.
 */
typedef struct Variant {
    const char *aio;
    const char *dimm;   /* DIMM unplug, a DIMM of this backend (@aio NULL) */
    const char *vmem;   /* virtio-mem unplug, of this backend (@aio NULL) */
    const char *mem;
    bool fast;
    bool wt;            /* fast, with shadow-write-back=off */
    char *path;         /* the test's */
} Variant;

typedef struct Run {
    const Variant *v;
    QTestState *qts;
    int log_fd, disk_fd, udp_rx;
    uint8_t *disk;              /* the image as the test wrote it */
    GPtrArray *frames;          /* GByteArray: datagrams received */
    MkdResults *r;
    int failures;
} Run;

static const uint8_t key0[32] = {
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
    0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,
    0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
};

/* KeyID 1's key as the guest gives it to PCONFIG */
static void key1(uint8_t k[32])
{
    for (int i = 0; i < MKD_KEY1_LEN; i++) {
        k[i] = MKD_KEY1_DATA + i;
        k[MKD_KEY1_LEN + i] = MKD_KEY1_TWEAK + i;
    }
}

/* R after writing @p through KeyID 1: D_0(E_1(P)) */
static void r_of_write(uint64_t pa, uint8_t *r, const uint8_t *p, size_t len)
{
    g_autofree uint8_t *t = g_malloc(len);
    uint8_t k1[32];

    key1(k1);
    xts_oracle(k1, sizeof(k1), pa, t, p, len, true);
    xts_oracle(key0, sizeof(key0), pa, r, t, len, false);
}

/* What a read through KeyID 1 returns: D_1(E_0(R)) */
static void read_of_r(uint64_t pa, uint8_t *out, const uint8_t *r, size_t len)
{
    g_autofree uint8_t *t = g_malloc(len);
    uint8_t k1[32];

    key1(k1);
    xts_oracle(key0, sizeof(key0), pa, t, r, len, true);
    xts_oracle(k1, sizeof(k1), pa, out, t, len, false);
}

static void fail(Run *run, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static void fail(Run *run, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_printerr("FAIL: %s\n", msg);
    run->failures++;
}

static void check_u64(Run *run, uint64_t got, uint64_t expected,
                      const char *fmt, ...) G_GNUC_PRINTF(4, 5);
static void check_u64(Run *run, uint64_t got, uint64_t expected,
                      const char *fmt, ...)
{
    va_list ap;

    if (got != expected) {
        va_start(ap, fmt);
        g_autofree char *what = g_strdup_vprintf(fmt, ap);
        va_end(ap);
        fail(run, "%s: 0x%" PRIx64 ", expected 0x%" PRIx64, what, got,
             expected);
    }
}

static char *hex16(const uint8_t *b, size_t n)
{
    GString *s = g_string_new(NULL);

    for (size_t i = 0; i < n && i < 16; i++) {
        g_string_append_printf(s, " %02x", b[i]);
    }
    return g_string_free(s, false);
}

/* @got against @expected: where they first differ, and how much */
static bool check_mem(Run *run, const uint8_t *got, const uint8_t *expected,
                      size_t len, const char *fmt, ...) G_GNUC_PRINTF(5, 6);
static bool check_mem(Run *run, const uint8_t *got, const uint8_t *expected,
                      size_t len, const char *fmt, ...)
{
    size_t first = len, n = 0;
    va_list ap;

    for (size_t i = 0; i < len; i++) {
        if (got[i] != expected[i]) {
            first = MIN(first, i);
            n++;
        }
    }
    if (n) {
        g_autofree char *a = hex16(got + first, len - first);
        g_autofree char *b = hex16(expected + first, len - first);

        va_start(ap, fmt);
        g_autofree char *what = g_strdup_vprintf(fmt, ap);
        va_end(ap);
        fail(run, "%s: %zu of %zu bytes differ, the first at +0x%zx\n"
             "    got:     %s\n    expected:%s", what, n, len, first, a, b);
    }
    return !n;
}

static void dump_log(Run *run)
{
    g_autofree char *log = g_malloc0(1 << 16);
    ssize_t n = pread(run->log_fd, log, (1 << 16) - 1, 0);

    if (n > 0) {
        g_printerr("---- guest debug output ----\n%s"
                   "---- end of guest output ----\n", log);
    }
}

static const char *status_name(uint64_t s)
{
    switch (s) {
    case VIRTIO_BLK_S_OK:
        return "VIRTIO_BLK_S_OK";
    case VIRTIO_BLK_S_IOERR:
        return "VIRTIO_BLK_S_IOERR";
    case VIRTIO_BLK_S_UNSUPP:
        return "VIRTIO_BLK_S_UNSUPP";
    case 0xff:
        return "status byte not written";
    case MKD_TIMEOUT:
        return "no completion: the guest timed out";
    case MKD_NOT_RUN:
        return "not run";
    }
    return "unknown";
}

/* A file in the temporary directory */
static int tmp_file(const char *tmpl, char **path)
{
    int fd = g_file_open_tmp(tmpl, path, NULL);

    g_assert(fd >= 0);
    return fd;
}

static char *make_disk(Run *run)
{
    char *path;

    run->disk = g_malloc(DISK_SIZE);
    for (size_t i = 0; i < DISK_SIZE; i += 4) {
        uint32_t v = g_test_rand_int();

        memcpy(run->disk + i, &v, 4);
    }
    run->disk_fd = tmp_file("mktme-dma-XXXXXX.img", &path);
    g_assert_cmpint(pwrite(run->disk_fd, run->disk, DISK_SIZE, 0), ==,
                    DISK_SIZE);
    return path;
}

/*
 * A connected pair of UDP sockets on the loopback: QEMU sends on the
 * returned one (-netdev dgram,local.type=fd), the test receives on
 * run->udp_rx.
 */
static int make_udp(Run *run)
{
    struct sockaddr_in a = { .sin_family = AF_INET };
    socklen_t alen = sizeof(a);
    int tx;

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    run->udp_rx = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
                         0);
    g_assert_cmpint(run->udp_rx, >=, 0);
    g_assert_cmpint(bind(run->udp_rx, (struct sockaddr *)&a, sizeof(a)), ==,
                    0);
    g_assert_cmpint(getsockname(run->udp_rx, (struct sockaddr *)&a, &alen),
                    ==, 0);
    tx = socket(AF_INET, SOCK_DGRAM, 0);
    g_assert_cmpint(tx, >=, 0);
    g_assert_cmpint(connect(tx, (struct sockaddr *)&a, sizeof(a)), ==, 0);
    run->frames = g_ptr_array_new_with_free_func(
        (GDestroyNotify)g_byte_array_unref);
    return tx;
}

static void drain_udp(Run *run)
{
    uint8_t buf[2048];
    ssize_t n;

    while ((n = recv(run->udp_rx, buf, sizeof(buf), 0)) >= 0) {
        g_ptr_array_add(run->frames, g_byte_array_append(g_byte_array_new(),
                                                         buf, n));
    }
    g_assert_cmpint(errno, ==, EAGAIN);
}

static char *qemu_args(Run *run, const char *img, const char *disk,
                       int udp_tx, const char *log)
{
    const Variant *v = run->v;
    g_autofree char *mem = NULL, *dev = NULL;

    if (!strcmp(v->mem, "memfd")) {
        mem = g_strdup("-object memory-backend-memfd,id=m0,size=256M,share=on "
                       "-machine memory-backend=m0");
    } else if (!strcmp(v->mem, "file")) {
        /* A directory: QEMU creates the file there and unlinks it */
        mem = g_strdup("-object memory-backend-file,id=m0,size=256M,"
                       "mem-path=/dev/shm,share=on -machine memory-backend=m0");
    } else {
        mem = g_strdup("");
    }
    if (v->dimm) {
        dev = g_strdup_printf("-m slots=2,maxmem=1G -object %s,id=mem1,"
                              "size=128M%s -device pc-dimm,id=dimm1,"
                              "memdev=mem1,addr=0x%llx", v->dimm,
                              strcmp(v->dimm, "memory-backend-ram") ?
                              ",share=on" : "", MKD_DIMM_PA);
    } else if (v->vmem) {
        dev = g_strdup_printf("-m maxmem=%llu -object %s,id=vmem0,size=%llu%s "
                              "-device virtio-mem-pci,id=vm0,memdev=vmem0,"
                              "requested-size=%llu,block-size=%llu,"
                              "memaddr=0x%llx", RAM_SIZE + MKD_VMEM_REGION,
                              v->vmem, MKD_VMEM_REGION,
                              !strcmp(v->vmem, "memory-backend-ram") ? "" :
                              !strcmp(v->vmem, "memory-backend-file") ?
                              ",share=on,mem-path=/dev/shm" : ",share=on",
                              MKD_VMEM_BLOCK, MKD_VMEM_BLOCK, MKD_VMEM_PA);
    } else if (v->aio) {
        dev = g_strdup_printf("-drive file=%s,if=none,id=d0,format=raw,"
                              "aio=%s%s -device virtio-blk-pci,drive=d0,"
                              LEGACY, disk, v->aio,
                              !strcmp(v->aio, "native") ?
                              ",cache.direct=on" : "");
    } else {
        dev = g_strdup_printf("-netdev dgram,id=n0,local.type=fd,"
                              "local.str=%d -device virtio-net-pci,"
                              "netdev=n0," LEGACY ",romfile=", udp_tx);
    }
    return g_strdup_printf(GUEST_ARGS "-bios %s "
                           "-device isa-debugcon,iobase=0xe9,chardev=dbg "
                           "-chardev file,id=dbg,path=%s "
                           MKTME_ARGS "%s -machine memory-encryption=k0 %s %s "
                           "-device virtio-balloon-pci," LEGACY,
                           img, log,
                           !v->fast ? ",shadow-size=0" :
                           v->wt ? ",shadow-write-back=off" : "", mem,
                           dev);
}

/* Start QEMU on the guest; every file is unlinked once QEMU has it. */
static void run_start(Run *run)
{
    g_autofree uint8_t *img = g_malloc0(MKTME_DMA_GUEST_IMAGE_SIZE);
    g_autofree char *img_path = NULL, *log_path = NULL, *disk_path = NULL;
    g_autofree char *args = NULL;
    size_t n = sizeof(mktme_dma_guest_blob);
    int fd, udp_tx = -1;

    memcpy(img, mktme_dma_guest_blob, n - 16);
    memcpy(img + MKTME_DMA_GUEST_IMAGE_SIZE - 16,
           mktme_dma_guest_blob + n - 16, 16);
    fd = tmp_file("mktme-dma-guest-XXXXXX.bin", &img_path);
    g_assert_cmpint(write(fd, img, MKTME_DMA_GUEST_IMAGE_SIZE), ==,
                    MKTME_DMA_GUEST_IMAGE_SIZE);
    close(fd);
    run->log_fd = tmp_file("mktme-dma-guest-XXXXXX.log", &log_path);
    if (run->v->aio) {
        disk_path = make_disk(run);
    } else if (!run->v->dimm && !run->v->vmem) {
        udp_tx = make_udp(run);
    }
    args = qemu_args(run, img_path, disk_path, udp_tx, log_path);
    run->qts = qtest_init(args);
    unlink(img_path);
    unlink(log_path);
    if (disk_path) {
        unlink(disk_path);
    }
    if (udp_tx >= 0) {
        close(udp_tx);
    }
}

/* Poll for the guest's done flag; false if QEMU died first. */
static bool run_wait(Run *run)
{
    int64_t deadline = g_get_monotonic_time() +
                       TIME_LIMIT_S * G_TIME_SPAN_SECOND;
    uint64_t done;

    for (;;) {
        if (!qtest_probe_child(run->qts)) {
            return false;
        }
        done = qtest_readq(run->qts, MKD_RESULTS_PA +
                           offsetof(MkdResults, done));
        if (done) {
            break;
        }
        if (run->frames) {
            drain_udp(run);
        }
        if (g_get_monotonic_time() > deadline) {
            dump_log(run);
            g_error("guest not done after %d s", TIME_LIMIT_S);
        }
        g_usleep(20 * 1000);
    }
    run->r = g_malloc(sizeof(MkdResults));
    qtest_memread(run->qts, MKD_RESULTS_PA, run->r, sizeof(MkdResults));
    if (run->r->magic != MKD_MAGIC || done != MKD_DONE_OK) {
        dump_log(run);
        g_error("guest failed: magic 0x%llx done 0x%" PRIx64 " stage %llu: "
                "exception 0x%llx error 0x%llx at rip 0x%llx (cr2 0x%llx)",
                run->r->magic, done, run->r->stage, run->r->crash_vector,
                run->r->crash_error, run->r->crash_rip, run->r->crash_cr2);
    }
    return true;
}

/* What the model says about one scenario */
typedef struct Expect {
    size_t len, io_len;
    uint8_t *p;         /* what the guest wrote into its pages */
    uint8_t *r_before;  /* R before the I/O */
    uint8_t *r_after;   /* R after it */
    uint8_t *io;        /* the bytes the I/O moved, descriptor order */
    uint8_t *k1;        /* a read through KeyID 1 after the I/O */
} Expect;

static void expect_free(Expect *e)
{
    g_free(e->p);
    g_free(e->r_before);
    g_free(e->r_after);
    g_free(e->io);
    g_free(e->k1);
}

static void expect_scen(Run *run, unsigned si, Expect *e)
{
    const MkdScenario *s = &mkd_scen[si];
    size_t off = 0;

    e->len = s->npages * MKD_PAGE;
    e->io_len = 0;
    for (unsigned d = 0; d < s->ndesc; d++) {
        e->io_len += s->desc[d].len;
    }
    e->p = g_malloc(e->len);
    e->r_before = g_malloc(e->len);
    e->io = g_malloc(e->io_len);
    e->k1 = g_malloc(e->len);
    for (size_t i = 0; i < e->len; i++) {
        e->p[i] = mkd_pattern(si, i);
    }
    if (s->kid1) {
        r_of_write(s->page, e->r_before, e->p, e->len);
    } else {
        memcpy(e->r_before, e->p, e->len);
    }
    e->r_after = g_memdup2(e->r_before, e->len);
    for (unsigned d = 0; d < s->ndesc; d++) {
        size_t at = s->desc[d].pa - s->page;

        if (s->type == MKD_BALLOON) {
            memset(e->io + off, 0, s->desc[d].len);     /* unused */
            memset(e->r_after + at, 0, s->desc[d].len);
        } else if (s->type == MKD_BLK_READ) {
            memcpy(e->io + off, run->disk + s->sector * MKD_SECTOR + off,
                   s->desc[d].len);
            memcpy(e->r_after + at, e->io + off, s->desc[d].len);
        } else {
            memcpy(e->io + off, e->r_before + at, s->desc[d].len);
        }
        off += s->desc[d].len;
    }
    read_of_r(s->page, e->k1, e->r_after, e->len);
}

/* The guest's records of scenario @si and RAM afterwards */
static void check_scen(Run *run, unsigned si, const Expect *e)
{
    const MkdScenario *s = &mkd_scen[si];
    const MkdScenResult *sr = &run->r->scen[si];
    g_autofree uint8_t *ram = g_malloc(e->len);
    uint64_t used_len = s->type == MKD_BLK_READ ? e->io_len + 1 :
                        s->type == MKD_BLK_WRITE ? 1 : 0;

    if (!sr->ran) {
        fail(run, "%s: not run", s->name);
        return;
    }
    if (sr->mismatch) {
        fail(run, "%s: %llu bytes did not read back as the guest wrote them "
             "through KeyID %d, before the I/O", s->name, sr->mismatch,
             s->kid1);
    }
    if (s->type == MKD_NET_TX || s->type == MKD_BALLOON) {
        if (sr->status) {
            fail(run, "%s: the request was not completed (%s)", s->name,
                 status_name(sr->status));
        }
    } else if (sr->status != VIRTIO_BLK_S_OK) {
        fail(run, "%s: status %llu (%s), expected %d (VIRTIO_BLK_S_OK)",
             s->name, sr->status, status_name(sr->status), VIRTIO_BLK_S_OK);
    }
    if (sr->status != MKD_TIMEOUT) {
        check_u64(run, sr->used_id, 0, "%s: used ring element id", s->name);
        check_u64(run, sr->used_len, used_len, "%s: used ring element len",
                  s->name);
    }
    check_mem(run, run->r->view[si][MKD_VIEW_K0], e->r_after, e->len,
              "%s: the pages read through KeyID 0 after the I/O", s->name);
    if (s->kid1) {
        check_mem(run, run->r->view[si][MKD_VIEW_K1], e->k1, e->len,
                  "%s: the pages read through KeyID 1 after the I/O "
                  "(D_1(E_0(R)))", s->name);
        check_mem(run, run->r->view[si][MKD_VIEW_K1_AGAIN], e->k1, e->len,
                  "%s: the pages read through KeyID 1 again, after the "
                  "KeyID 0 read", s->name);
    }
    qtest_memread(run->qts, s->page, ram, e->len);
    check_mem(run, ram, e->r_after, e->len, "%s: RAM (KeyID 0) at the end",
              s->name);
}

/* The device's choice; the guest takes powers of 2 up to MKD_RING_MAX */
static void check_queue_size(Run *run, const char *what, uint64_t n)
{
    if (n < 4 || n > MKD_RING_MAX || (n & (n - 1))) {
        fail(run, "%s: %" PRIu64 " entries, not a power of 2 in 4..%d",
             what, n, MKD_RING_MAX);
    }
}

static void check_devices(Run *run)
{
    MkdResults *r = run->r;

    check_u64(run, r->path, MKD_PATH_RAN,
              "guest path (1: ran, 2: no TME-MK, 3: PCONFIG failed)");
    check_u64(run, r->pconfig_vector, MKD_NO_FAULT,
              "PCONFIG of KeyID 1: vector");
    check_u64(run, r->pconfig_rax, 0, "PCONFIG of KeyID 1: RAX");
    if (!run->v->vmem) {
        check_u64(run, r->vmem_bdf, MKD_NO_DEV,
                  "virtio-mem found (none expected)");
    }
    if (run->v->dimm || run->v->vmem) {
        check_u64(run, r->blk_bdf, MKD_NO_DEV,
                  "virtio-blk found (none expected)");
        check_u64(run, r->net_bdf, MKD_NO_DEV,
                  "virtio-net found (none expected)");
    } else if (run->v->aio) {
        check_u64(run, r->net_bdf, MKD_NO_DEV,
                  "virtio-net found (none expected)");
        if (r->blk_bdf == MKD_NO_DEV) {
            fail(run, "no legacy virtio-blk PCI function found");
            return;
        }
        check_u64(run, r->blk_bar0, MKD_BLK_IO | 1, "virtio-blk BAR0");
        check_queue_size(run, "virtio-blk queue 0", r->blk_queue_size);
        check_u64(run, r->blk_status, VS_ALL, "virtio-blk device status");
        check_u64(run, r->blk_capacity, MKD_DISK_SECTORS,
                  "virtio-blk capacity");
    } else {
        check_u64(run, r->blk_bdf, MKD_NO_DEV,
                  "virtio-blk found (none expected)");
        if (r->net_bdf == MKD_NO_DEV) {
            fail(run, "no legacy virtio-net PCI function found");
            return;
        }
        check_u64(run, r->net_bar0, MKD_NET_IO | 1, "virtio-net BAR0");
        check_queue_size(run, "virtio-net TX queue", r->net_queue_size);
        check_u64(run, r->net_status, VS_ALL, "virtio-net device status");
    }
    if (r->balloon_bdf == MKD_NO_DEV) {
        fail(run, "no legacy virtio-balloon PCI function found");
        return;
    }
    check_u64(run, r->balloon_bar0, MKD_BALLOON_IO | 1,
              "virtio-balloon BAR0");
    check_queue_size(run, "virtio-balloon inflate queue",
                     r->balloon_queue_size);
    check_u64(run, r->balloon_status, VS_ALL, "virtio-balloon device status");
}

/*
 * The fast path ran (shadows filled) or was off, as the variant says.
 * On shared memory a fast path may also stay off with a reason (see
 * DESIGN.md, "Coherence"): reported, not checked.
 */
static void check_fast_path(Run *run)
{
    QDict *rsp = qtest_qmp(run->qts, "{'execute': 'query-mktme'}");
    QDict *fp = qdict_get_qdict(qdict_get_qdict(rsp, "return"), "fast-path");
    const char *off = qdict_get_try_str(fp, "off-reason");
    int64_t fills = qdict_get_int(fp, "fills");

    if (!run->v->fast) {
        if (g_strcmp0(off, "shadow-size=0") || fills) {
            fail(run, "fast path: off-reason \"%s\", %" PRId64 " fills; "
                 "expected \"shadow-size=0\", none", off ?: "(none)", fills);
        }
    } else if (!strcmp(run->v->mem, "anon") && (off || !fills)) {
        fail(run, "fast path: off-reason \"%s\", %" PRId64 " fills; "
             "expected on, with shadows filled", off ?: "(none)", fills);
    } else if (!strcmp(run->v->mem, "anon") && !run->v->wt &&
               g_strcmp0(run->v->dimm, "memory-backend-memfd") &&
               !run->v->vmem && !qdict_get_int(fp, "write-backs")) {
        /* Private RAM: the pages DMA read were written back first */
        fail(run, "fast path: no line written back from private RAM");
    } else if ((strcmp(run->v->mem, "anon") || run->v->wt) &&
               (qdict_get_int(fp, "write-backs") ||
                qdict_get_int(fp, "write-back-slots"))) {
        fail(run, "fast path: write-back slots on shared RAM or with "
             "shadow-write-back=off");
    }
    if (g_test_verbose() || run->failures) {
        g_printerr("fast path: %s; %" PRId64 " fills, %" PRId64
                   " writes, %" PRId64 " refreshes, %" PRId64
                   " lines written back\n", off ?: "on", fills,
                   qdict_get_try_int(fp, "writes", 0),
                   qdict_get_try_int(fp, "refreshes", 0),
                   qdict_get_try_int(fp, "write-backs", 0));
    }
    qobject_unref(rsp);
}

/* The datagrams: one per frame, each exactly the bytes of R it came from */
static void check_frames(Run *run, Expect *e)
{
    unsigned nnet = 0, last = 0;
    int64_t deadline = g_get_monotonic_time() +
                       NET_WAIT_S * G_TIME_SPAN_SECOND;

    for (unsigned si = 0; si < MKD_NSCEN; si++) {
        if (mkd_scen[si].type == MKD_NET_TX) {
            nnet++;
            last = si;
        }
    }
    /* Frames go out in order: the last one closes the list. */
    for (;;) {
        GByteArray *f;

        drain_udp(run);
        f = run->frames->len ?
            g_ptr_array_index(run->frames, run->frames->len - 1) : NULL;
        if (run->frames->len >= nnet ||
            (f && f->len == e[last].io_len &&
             !memcmp(f->data, e[last].io, f->len)) ||
            g_get_monotonic_time() > deadline) {
            break;
        }
        g_usleep(10 * 1000);
    }
    for (unsigned si = 0; si < MKD_NSCEN; si++) {
        bool found = false;

        if (mkd_scen[si].type != MKD_NET_TX) {
            continue;
        }
        for (guint i = 0; i < run->frames->len && !found; i++) {
            GByteArray *f = g_ptr_array_index(run->frames, i);

            found = f->len == e[si].io_len &&
                    !memcmp(f->data, e[si].io, f->len);
        }
        if (!found) {
            fail(run, "%s: no datagram holds the frame's %zu bytes of R",
                 mkd_scen[si].name, e[si].io_len);
        }
    }
    if (run->frames->len != nnet) {
        fail(run, "%u datagrams received, expected %u", run->frames->len,
             nnet);
    }
}

/* The image after QEMU quit: the writes' bytes of R, the rest untouched */
static void check_disk(Run *run, Expect *e)
{
    g_autofree uint8_t *got = g_malloc(DISK_SIZE);
    g_autofree uint8_t *exp = g_memdup2(run->disk, DISK_SIZE);

    g_assert_cmpint(pread(run->disk_fd, got, DISK_SIZE, 0), ==, DISK_SIZE);
    for (unsigned si = 0; si < MKD_NSCEN; si++) {
        const MkdScenario *s = &mkd_scen[si];

        if (s->type == MKD_BLK_WRITE) {
            memcpy(exp + s->sector * MKD_SECTOR, e[si].io, e[si].io_len);
            check_mem(run, got + s->sector * MKD_SECTOR, e[si].io,
                      e[si].io_len, "%s: the disk from sector %u = R of the "
                      "buffers", s->name, s->sector);
        }
    }
    check_mem(run, got, exp, DISK_SIZE, "the whole disk image");
}

/*
 * Wait for the guest's stage counter at @off in MkdResults to reach
 * @stage: false if QEMU died, the guest finished first or timed out.
 */
static bool stage_wait(Run *run, size_t off, uint64_t stage)
{
    int64_t deadline = g_get_monotonic_time() +
                       TIME_LIMIT_S * G_TIME_SPAN_SECOND;

    while (qtest_readq(run->qts, MKD_RESULTS_PA + off) < stage) {
        if (!qtest_probe_child(run->qts) ||
            qtest_readq(run->qts, MKD_RESULTS_PA +
                        offsetof(MkdResults, done)) ||
            g_get_monotonic_time() > deadline) {
            return false;
        }
        g_usleep(10 * 1000);
    }
    return true;
}

/* Wait for the guest's dimm_stage to reach @stage */
static void dimm_stage_wait(Run *run, uint64_t stage)
{
    if (!stage_wait(run, offsetof(MkdResults, dimm_stage), stage)) {
        dump_log(run);
        g_error("the guest did not reach DIMM stage %" PRIu64, stage);
    }
}

#define POOL_WINDOW (1ULL << 53)     /* mktme.h's MKTME_SHADOW_WINDOW */
#define POOL_SEARCH (1 << 20)

/*
 * The shadow pool is the vCPUs' alone: with the DIMM's first page live
 * in a slot (the guest at DIMM stage 1), the vCPUs' memory (qtest reads
 * through the first CPU's address space) holds that page's plaintext in
 * the pool's window, while system memory, what devices and pmemsave
 * reach, has nothing there (unassigned: zeroes).
 */
static void check_pool_private(Run *run)
{
    g_autofree uint8_t *cpu = g_malloc(POOL_SEARCH);
    g_autofree uint8_t *page = g_malloc(MKD_PAGE);
    g_autofree char *path = NULL;
    g_autofree gchar *sys = NULL;
    gsize len = 0;
    bool found = false;
    int fd;

    if (!run->v->fast) {
        return;
    }
    for (size_t i = 0; i < MKD_PAGE; i++) {
        page[i] = mkd_pattern(MKD_DIMM_SCEN, i);
    }
    qtest_memread(run->qts, POOL_WINDOW, cpu, POOL_SEARCH);
    for (size_t off = 0; off < POOL_SEARCH && !found; off += MKD_PAGE) {
        found = !memcmp(cpu + off, page, MKD_PAGE);
    }
    if (!found) {
        fail(run, "the vCPUs' view of the shadow pool: no slot holds the "
             "DIMM's first page through KeyID 1");
    }
    fd = tmp_file("mktme-pool-XXXXXX", &path);
    close(fd);
    qtest_qmp_assert_success(run->qts, "{'execute': 'pmemsave', "
                             "'arguments': {'val': %" PRIu64 ", "
                             "'size': %d, 'filename': %s}}",
                             (uint64_t)POOL_WINDOW, POOL_SEARCH, path);
    g_assert_true(g_file_get_contents(path, &sys, &len, NULL));
    unlink(path);
    check_u64(run, len, POOL_SEARCH, "pmemsave of the pool's window: bytes");
    for (gsize i = 0; i < len; i++) {
        if (sys[i]) {
            fail(run, "system memory reaches the shadow pool: byte 0x%zx of "
                 "its window reads 0x%x", (size_t)i, (uint8_t)sys[i]);
            break;
        }
    }
}

/*
 * Unplug the DIMM whose pages the guest uses through KeyID 1 (the guest
 * ejects it), delete its memory backend (the RAM block goes), and plug
 * a new one at the same address.
 */
static void dimm_drive(Run *run)
{
    const char *be = run->v->dimm;

    dimm_stage_wait(run, 1);
    check_pool_private(run);
    qtest_qmp_assert_success(run->qts, "{'execute': 'device_del', "
                             "'arguments': {'id': 'dimm1'}}");
    qtest_writeq(run->qts, MKD_RESULTS_PA + offsetof(MkdResults, dimm_go),
                 1);
    dimm_stage_wait(run, 2);
    qtest_qmp_eventwait(run->qts, "DEVICE_DELETED");
    qtest_qmp_assert_success(run->qts, "{'execute': 'object-del', "
                             "'arguments': {'id': 'mem1'}}");
    if (!strcmp(be, "memory-backend-ram")) {
        qtest_qmp_assert_success(run->qts, "{'execute': 'object-add', "
                                 "'arguments': {'qom-type': %s, "
                                 "'id': 'mem2', 'size': %d}}", be, 128 << 20);
    } else {
        qtest_qmp_assert_success(run->qts, "{'execute': 'object-add', "
                                 "'arguments': {'qom-type': %s, "
                                 "'id': 'mem2', 'size': %d, 'share': true}}",
                                 be, 128 << 20);
    }
    qtest_qmp_assert_success(run->qts, "{'execute': 'device_add', "
                             "'arguments': {'driver': 'pc-dimm', "
                             "'id': 'dimm2', 'memdev': 'mem2', "
                             "'addr': %" PRIu64 "}}",
                             (uint64_t)MKD_DIMM_PA);
    qtest_writeq(run->qts, MKD_RESULTS_PA + offsetof(MkdResults, dimm_go),
                 2);
}

/* What the guest saw of the DIMM, the new DIMM's RAM, query-mktme */
static void check_dimm(Run *run)
{
    const MkdResults *r = run->r;
    const size_t len = MKD_DIMM_PAGES * MKD_PAGE;
    uint64_t pa = MKD_DIMM_PA + MKD_DIMM_OFF;
    g_autofree uint8_t *zero = g_malloc0(len);
    g_autofree uint8_t *k1 = g_malloc(len);
    g_autofree uint8_t *ram = g_malloc(len);
    g_autofree uint8_t *exp = g_malloc0(len);
    g_autofree uint8_t *p2 = g_malloc(MKD_PAGE);
    QDict *rsp;

    check_u64(run, r->dimm_flags, 1, "DIMM slot 0 flags (enabled)");
    check_u64(run, r->dimm_stage, 3, "DIMM: the guest's last stage");
    check_u64(run, r->dimm_timeout, 0, "DIMM: the guest timed out waiting "
              "for step");
    check_u64(run, r->dimm_mismatch, 0, "DIMM: bytes not read back as "
              "written through KeyID 1 and KeyID 0");
    check_u64(run, r->dimm_flags_ejected & 1, 0, "DIMM slot 0 enabled "
              "after the eject");
    /* Nothing there: the store goes nowhere, the loads read nothing */
    check_u64(run, r->dimm_gone_k1, 0, "DIMM gone: a load through KeyID 1");
    check_u64(run, r->dimm_gone_k0, 0, "DIMM gone: a load through KeyID 0");
    check_mem(run, r->dimm_view[1], zero, len, "new DIMM: the pages "
              "through KeyID 0 (fresh RAM: zeroes, no old shadow)");
    read_of_r(pa, k1, zero, len);
    check_mem(run, r->dimm_view[0], k1, len, "new DIMM: the pages through "
              "KeyID 1 (D_1(E_0(0)))");
    check_u64(run, r->dimm_mismatch2, 0, "new DIMM: bytes not read back as "
              "written through KeyID 1");
    for (size_t i = 0; i < MKD_PAGE; i++) {
        p2[i] = mkd_pattern(MKD_DIMM_SCEN2, i);
    }
    r_of_write(pa, exp, p2, MKD_PAGE);
    qtest_memread(run->qts, pa, ram, len);
    check_mem(run, ram, exp, len, "new DIMM: RAM at the end (the first "
              "page D_0(E_1(P)), the others zero)");
    /*
     * The old DIMM's RAM block goes when RCU frees its memory region,
     * after the QMP commands that removed it: wait for it (10 s at most).
     */
    for (int i = 0; ; i++) {
        uint64_t enc;

        rsp = qtest_qmp(run->qts, "{'execute': 'query-mktme'}");
        enc = qdict_get_int(qdict_get_qdict(rsp, "return"),
                            "encrypted-memory");
        qobject_unref(rsp);
        if (enc == (256 + 128) << 20 || i == 200) {
            check_u64(run, enc, (256 + 128) << 20,
                      "query-mktme encrypted-memory");
            break;
        }
        g_usleep(50 * 1000);
    }
}

/* query-mktme's fast-path counters */
typedef struct FastPathCounts {
    int64_t fills, refreshes, wb_slots, write_backs;
} FastPathCounts;

static void fast_path_counts(Run *run, FastPathCounts *c)
{
    QDict *rsp = qtest_qmp(run->qts, "{'execute': 'query-mktme'}");
    QDict *fp = qdict_get_qdict(qdict_get_qdict(rsp, "return"), "fast-path");

    *c = (FastPathCounts) {
        .fills = qdict_get_int(fp, "fills"),
        .refreshes = qdict_get_int(fp, "refreshes"),
        .wb_slots = qdict_get_int(fp, "write-back-slots"),
        .write_backs = qdict_get_int(fp, "write-backs"),
    };
    qobject_unref(rsp);
}

static bool vmem_stage_wait(Run *run, uint64_t stage)
{
    if (!stage_wait(run, offsetof(MkdResults, vmem_stage), stage)) {
        fail(run, "virtio-mem: the guest did not reach stage %" PRIu64
             " (what it did see is below)", stage);
        return false;
    }
    return true;
}

static void vmem_go(Run *run, uint64_t step)
{
    qtest_writeq(run->qts, MKD_RESULTS_PA + offsetof(MkdResults, vmem_go),
                 step);
}

/*
 * The guest plugs a virtio-mem block and uses its first pages through
 * KeyID 1 (shadows: fills grew; write-back ones in private RAM only),
 * unplugs it (QEMU discards it) and plugs it again: R must then be
 * zeroes, and no write-back of a shadow of before the unplug may change
 * that.
 */
static void vmem_drive(Run *run)
{
    const size_t len = MKD_VMEM_PAGES * MKD_PAGE;
    bool shared = strcmp(run->v->vmem, "memory-backend-ram");
    g_autofree uint8_t *ram = g_malloc(len);
    g_autofree uint8_t *zero = g_malloc0(len);
    FastPathCounts c0, c1, c2, c3;

    if (!vmem_stage_wait(run, 1)) {
        return;
    }
    fast_path_counts(run, &c0);
    vmem_go(run, 1);
    if (!vmem_stage_wait(run, 2)) {
        return;
    }
    fast_path_counts(run, &c1);
    if (run->v->fast && c1.fills <= c0.fills) {
        fail(run, "virtio-mem: no shadow filled for the pages written and "
             "read back through KeyID 1 (fills: %" PRId64 " before, %"
             PRId64 " after)", c0.fills, c1.fills);
    }
    if (shared && c1.wb_slots != c0.wb_slots) {
        fail(run, "virtio-mem: write-back slots %" PRId64 " -> %" PRId64
             " for pages of shared RAM (%s), expected none", c0.wb_slots,
             c1.wb_slots, run->v->vmem);
    } else if (!shared && run->v->fast && !run->v->wt &&
               c1.wb_slots - c0.wb_slots != MKD_VMEM_KID1_PAGES) {
        /* What a write-back could undo the discard with */
        fail(run, "virtio-mem: write-back slots %" PRId64 " -> %" PRId64
             " for the %d pages of private RAM used through KeyID 1 only, "
             "expected one each", c0.wb_slots, c1.wb_slots,
             MKD_VMEM_KID1_PAGES);
    }
    /*
     * Private RAM: the pages' lines are still only in their write-back
     * shadows when the block goes, so a write-back could undo the discard.
     */
    if (!shared && c1.write_backs != c0.write_backs) {
        fail(run, "virtio-mem: %" PRId64 " lines written back before the "
             "unplug, expected none (the scenario needs dirty shadows)",
             c1.write_backs - c0.write_backs);
    }
    vmem_go(run, 2);
    if (!vmem_stage_wait(run, 3)) {
        return;
    }
    fast_path_counts(run, &c2);
    qtest_memread(run->qts, MKD_VMEM_PA, ram, len);
    check_mem(run, ram, zero, len, "virtio-mem, the block unplugged and "
              "plugged again: RAM (KeyID 0) before the guest reads it "
              "(discarded: zeroes; no shadow of before written back)");
    /*
     * The discard refreshed every line of the pages' shadows (one slot
     * each: nothing else used them), and reading R wrote back none: the
     * snapshots were brought up to date with the shadows.
     */
    fast_path_counts(run, &c3);
    check_u64(run, c2.refreshes - c1.refreshes,
              MKD_VMEM_KID1_PAGES * (MKD_PAGE / 64),
              "virtio-mem: shadow lines refreshed by the unplug and plug");
    check_u64(run, c3.write_backs - c1.write_backs, 0,
              "virtio-mem: lines written back after the discard");
    if (g_test_verbose() || run->failures) {
        g_printerr("virtio-mem: fills %" PRId64 " -> %" PRId64 " for the "
                   "pages, write-back slots %" PRId64 " -> %" PRId64
                   "; the unplug and the new plug: %" PRId64 " refreshes, %"
                   PRId64 " lines written back\n", c0.fills,
                   c1.fills, c0.wb_slots, c1.wb_slots,
                   c2.refreshes - c1.refreshes,
                   c2.write_backs - c1.write_backs);
    }
    vmem_go(run, 3);
}

static const char *vmem_resp_name(uint64_t t)
{
    switch (t) {
    case VIRTIO_MEM_RESP_ACK:
        return "VIRTIO_MEM_RESP_ACK";
    case VIRTIO_MEM_RESP_NACK:
        return "VIRTIO_MEM_RESP_NACK";
    case VIRTIO_MEM_RESP_BUSY:
        return "VIRTIO_MEM_RESP_BUSY";
    case VIRTIO_MEM_RESP_ERROR:
        return "VIRTIO_MEM_RESP_ERROR";
    case 0xffff:
        return "response not written";
    case MKD_TIMEOUT:
        return "no completion: the guest timed out";
    case MKD_NOT_RUN:
        return "not sent";
    }
    return "unknown";
}

/* The virtio-mem device as the guest found it, its requests, the block */
static void check_vmem(Run *run)
{
    static const char *const req[MKD_VMEM_NREQ] = {
        "plug of the first block", "unplug of the block",
        "plug of the block again",
    };
    static const uint64_t plugged[MKD_VMEM_NREQ] = {
        MKD_VMEM_BLOCK, 0, MKD_VMEM_BLOCK,
    };
    const MkdResults *r = run->r;
    const size_t len = MKD_VMEM_PAGES * MKD_PAGE;
    g_autofree uint8_t *zero = g_malloc0(len);
    g_autofree uint8_t *k1 = g_malloc(len);
    g_autofree uint8_t *r_end = g_malloc0(len);
    g_autofree uint8_t *ram = g_malloc(len);
    QDict *rsp;

    if (r->vmem_bdf == MKD_NO_DEV) {
        fail(run, "no virtio-mem PCI function (%04x:%04x) found",
             0x1af4, 0x1040 + VIRTIO_ID_MEM);
        return;
    }
    check_u64(run, r->vmem_caps & VPCI_CAPS, VPCI_CAPS, "virtio-mem: its "
              "vendor capabilities (1 << cfg_type: common, notify, device)");
    check_u64(run, r->vmem_bar, 4, "virtio-mem: the BAR of its capabilities "
              "(0xff: not all in one)");
    check_u64(run, r->vmem_bar_addr, MKD_VMEM_BAR, "virtio-mem: BAR%llu "
              "read back", r->vmem_bar);
    check_u64(run, r->vmem_features & 1ULL << VIRTIO_F_VERSION_1,
              1ULL << VIRTIO_F_VERSION_1, "virtio-mem: VIRTIO_F_VERSION_1 "
              "offered (features 0x%llx)", r->vmem_features);
    check_u64(run, r->vmem_features_ok, VIRTIO_CONFIG_S_ACKNOWLEDGE |
              VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK,
              "virtio-mem: device status after FEATURES_OK (features 0x%llx "
              "offered, 0x%llx taken)", r->vmem_features,
              r->vmem_driver_features);
    check_queue_size(run, "virtio-mem queue 0", r->vmem_queue_size);
    check_u64(run, r->vmem_status, VS_MODERN, "virtio-mem: device status "
              "after DRIVER_OK");
    check_u64(run, r->vmem_block_size, MKD_VMEM_BLOCK, "virtio-mem: "
              "block_size");
    check_u64(run, r->vmem_addr, MKD_VMEM_PA, "virtio-mem: addr");
    check_u64(run, r->vmem_region_size, MKD_VMEM_REGION, "virtio-mem: "
              "region_size");
    if (r->vmem_usable_size < MKD_VMEM_BLOCK ||
        r->vmem_usable_size > MKD_VMEM_REGION) {
        fail(run, "virtio-mem: usable_region_size 0x%llx, not in 0x%llx.."
             "0x%llx", r->vmem_usable_size, MKD_VMEM_BLOCK, MKD_VMEM_REGION);
    }
    check_u64(run, r->vmem_requested_size, MKD_VMEM_BLOCK, "virtio-mem: "
              "requested_size");
    check_u64(run, r->vmem_plugged_size, 0, "virtio-mem: plugged_size "
              "before the first plug");
    for (int i = 0; i < MKD_VMEM_NREQ; i++) {
        if (r->vmem_resp[i] != VIRTIO_MEM_RESP_ACK) {
            fail(run, "virtio-mem: %s: response 0x%llx (%s), expected %d "
                 "(VIRTIO_MEM_RESP_ACK)", req[i], r->vmem_resp[i],
                 vmem_resp_name(r->vmem_resp[i]), VIRTIO_MEM_RESP_ACK);
            continue;
        }
        check_u64(run, r->vmem_used_len[i], sizeof(struct virtio_mem_resp),
                  "virtio-mem: %s: used ring element len", req[i]);
        check_u64(run, r->vmem_plugged[i], plugged[i], "virtio-mem: %s: "
                  "plugged_size after it", req[i]);
    }
    check_u64(run, r->vmem_timeout, 0, "virtio-mem: the guest timed out "
              "waiting for step");
    check_u64(run, r->vmem_mismatch, 0, "virtio-mem: bytes not read back "
              "as written through KeyID 1 and KeyID 0, before the unplug");
    check_u64(run, r->vmem_stage, 4, "virtio-mem: the guest's last stage");
    if (r->vmem_stage != 4) {
        return;
    }
    check_mem(run, r->vmem_view[1], zero, len, "virtio-mem, the block "
              "plugged again: the pages through KeyID 0 (discarded: zeroes)");
    read_of_r(MKD_VMEM_PA, k1, zero, len);
    check_mem(run, r->vmem_view[0], k1, len, "virtio-mem, the block plugged "
              "again: the pages through KeyID 1 (D_1(E_0(0)), not the "
              "shadows of before the unplug)");
    for (size_t i = 0; i < MKD_VMEM_K0_LEN; i++) {
        r_end[MKD_VMEM_K0_OFF + i] = mkd_pattern(MKD_VMEM_SCEN3, i);
    }
    read_of_r(MKD_VMEM_PA, k1, r_end, len);
    check_mem(run, r->vmem_view[2], k1, len, "virtio-mem, the block plugged "
              "again: the pages through KeyID 1 after 0x%x bytes at +0x%x "
              "written through KeyID 0 (D_1(E_0(R)): shadows refreshed)",
              MKD_VMEM_K0_LEN, MKD_VMEM_K0_OFF);
    qtest_memread(run->qts, MKD_VMEM_PA, ram, len);
    check_mem(run, ram, r_end, len, "virtio-mem: RAM at the end (zeroes "
              "but for the bytes written through KeyID 0)");
    rsp = qtest_qmp(run->qts, "{'execute': 'query-mktme'}");
    check_u64(run, qdict_get_int(qdict_get_qdict(rsp, "return"),
                                 "encrypted-memory"),
              RAM_SIZE + MKD_VMEM_REGION, "query-mktme encrypted-memory");
    qobject_unref(rsp);
}

static bool for_run(const Variant *v, const MkdScenario *s)
{
    switch (s->type) {
    case MKD_BALLOON:
        return true;
    case MKD_NET_TX:
        return !v->aio && !v->dimm && !v->vmem;
    default:
        return v->aio != NULL;
    }
}

static void run_variant(const Variant *v)
{
    Run run = { .v = v, .disk_fd = -1, .udp_rx = -1 };
    Expect e[MKD_NSCEN] = { 0 };

    run_start(&run);
    if (v->dimm) {
        dimm_drive(&run);
    } else if (v->vmem) {
        vmem_drive(&run);
    }
    if (!run_wait(&run)) {
        fail(&run, "QEMU died before the guest was done (its last words "
             "are above)");
        dump_log(&run);
        qtest_quit(run.qts);    /* reports how QEMU died, and aborts */
        g_assert_not_reached();
    }
    for (unsigned si = 0; si < MKD_NSCEN; si++) {
        if (for_run(v, &mkd_scen[si])) {
            expect_scen(&run, si, &e[si]);
        }
    }
    check_devices(&run);
    for (unsigned si = 0; si < MKD_NSCEN; si++) {
        if (for_run(v, &mkd_scen[si])) {
            check_scen(&run, si, &e[si]);
        } else {
            check_u64(&run, run.r->scen[si].ran, 0,
                      "%s: ran without its device", mkd_scen[si].name);
        }
    }
    if (v->dimm) {
        check_dimm(&run);
    } else if (v->vmem) {
        check_vmem(&run);
    } else if (!v->aio) {
        check_frames(&run, e);
    }
    check_fast_path(&run);
    if (run.failures) {
        dump_log(&run);
    }
    qtest_quit(run.qts);
    if (v->aio) {
        check_disk(&run, e);
    }
    for (unsigned si = 0; si < MKD_NSCEN; si++) {
        expect_free(&e[si]);
    }
    if (run.frames) {
        g_ptr_array_unref(run.frames);
        close(run.udp_rx);
    }
    if (run.disk_fd >= 0) {
        close(run.disk_fd);
    }
    close(run.log_fd);
    g_free(run.disk);
    g_free(run.r);
    if (run.failures) {
        g_printerr("%s: %d checks failed\n", v->path, run.failures);
    }
    g_assert_cmpint(run.failures, ==, 0);
}

/*
 * NULL if QEMU can open a file with @aio (and O_DIRECT for native) in
 * the directory the test's images go to, else QEMU's error.
 */
static char *aio_unavailable(const char *aio)
{
    static GHashTable *known;
    g_autofree char *path = NULL;
    QTestState *qts;
    QDict *rsp;
    char *why = NULL;
    int fd;

    if (!known) {
        known = g_hash_table_new(g_str_hash, g_str_equal);
    }
    if (g_hash_table_contains(known, aio)) {
        return g_strdup(g_hash_table_lookup(known, aio));
    }
    fd = tmp_file("mktme-dma-probe-XXXXXX.img", &path);
    g_assert(ftruncate(fd, 65536) == 0);
    close(fd);
    qts = qtest_init("-machine none -nodefaults");
    rsp = qtest_qmp(qts, "{'execute': 'blockdev-add', 'arguments': {"
                    "'driver': 'file', 'node-name': 'probe', "
                    "'filename': %s, 'aio': %s, "
                    "'cache': {'direct': %i}}}", path, aio,
                    !strcmp(aio, "native"));
    if (qdict_haskey(rsp, "error")) {
        why = g_strdup(qdict_get_str(qdict_get_qdict(rsp, "error"), "desc"));
    }
    qobject_unref(rsp);
    qtest_quit(qts);
    unlink(path);
    g_hash_table_insert(known, (gpointer)aio, g_strdup(why));
    return why;
}

static void test_variant(const void *opaque)
{
    const Variant *v = opaque;
    g_autofree char *why = NULL;

    if (g_test_subprocess()) {
        run_variant(v);
        return;
    }
    why = v->aio ? aio_unavailable(v->aio) : NULL;
    if (why) {
        g_autofree char *msg = g_strdup_printf("aio=%s unavailable: %s",
                                               v->aio, why);

        g_test_skip(msg);
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_INHERIT_STDERR);
    if (!g_test_trap_has_passed()) {
        g_printerr("FAIL: %s (details above)\n", v->path);
        g_test_fail();
    }
}

static void variant_free(void *opaque)
{
    Variant *v = opaque;

    g_free(v->path);
    g_free(v);
}

static void add_variant(const char *aio, const char *mem, bool fast,
                        bool wt)
{
    Variant *v = g_new(Variant, 1);

    *v = (Variant) {
        .aio = aio, .mem = mem, .fast = fast, .wt = wt,
        .path = g_strdup_printf("/mktme-dma/%s/%s/%s/%s",
                                aio ? "blk" : "net", aio ? aio : "dgram", mem,
                                !fast ? "no-fast-path" :
                                wt ? "fast-path-write-through" : "fast-path"),
    };
    qtest_add_data_func_full(v->path, v, test_variant, variant_free);
}

/* DIMM unplug: a DIMM of backend type @be */
static void add_dimm_variant(const char *be, bool fast, bool wt)
{
    Variant *v = g_new(Variant, 1);

    *v = (Variant) {
        .dimm = be,
        .mem = "anon", .fast = fast, .wt = wt,
        .path = g_strdup_printf("/mktme-dma/dimm-unplug/%s/%s",
                                be + strlen("memory-backend-"),
                                !fast ? "no-fast-path" :
                                wt ? "fast-path-write-through" : "fast-path"),
    };
    qtest_add_data_func_full(v->path, v, test_variant, variant_free);
}

/* virtio-mem unplug: a region of backend type @be, the fast path on */
static void add_vmem_variant(const char *be)
{
    Variant *v = g_new(Variant, 1);

    *v = (Variant) {
        .vmem = be,
        .mem = "anon", .fast = true,
        .path = g_strdup_printf("/mktme-dma/virtio-mem/%s",
                                be + strlen("memory-backend-")),
    };
    qtest_add_data_func_full(v->path, v, test_variant, variant_free);
}

int main(int argc, char **argv)
{
    static const char *const aios[] = { "threads", "io_uring", "native" };
    static const char *const mems[] = { "anon", "memfd", "file" };

    g_test_init(&argc, &argv, NULL);
    if (!g_test_subprocess()) {
        /*
         * The parent only probes and traps the variants: let a failed
         * variant not stop the others (as -k would).
         */
        g_test_set_nonfatal_assertions();
    }
    if (!qtest_has_accel("tcg")) {
        g_test_skip("TCG is not available");
        return g_test_run();
    }
    for (int a = 0; a < G_N_ELEMENTS(aios); a++) {
        for (int m = 0; m < G_N_ELEMENTS(mems); m++) {
            add_variant(aios[a], mems[m], true, false);
            add_variant(aios[a], mems[m], false, false);
        }
        /* Private RAM takes write-back slots: also without them */
        add_variant(aios[a], "anon", true, true);
    }
    for (int m = 0; m < G_N_ELEMENTS(mems); m++) {
        add_variant(NULL, mems[m], true, false);
        add_variant(NULL, mems[m], false, false);
    }
    add_variant(NULL, "anon", true, true);
    add_dimm_variant("memory-backend-ram", true, false);
    add_dimm_variant("memory-backend-ram", false, false);
    add_dimm_variant("memory-backend-ram", true, true);
    add_dimm_variant("memory-backend-memfd", true, false);
    add_vmem_variant("memory-backend-ram");
    add_vmem_variant("memory-backend-memfd");
    add_vmem_variant("memory-backend-file");
    return g_test_run();
}
