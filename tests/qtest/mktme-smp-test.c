/*
 * QTest for TME-MK with several vCPUs under MTTCG: a freestanding guest
 * (tests/qtest/mktme-smp-guest) starts every AP and runs, on all vCPUs at
 * once, writes and reads through per-vCPU KeyIDs, lines handed between
 * vCPUs through different KeyIDs, a re-key of a KeyID other vCPUs are
 * using, and page walks that set Accessed/Dirty bits in page tables
 * reached through KeyIDs.  The guest checks what it can (a KeyID reads
 * back what it wrote); this test checks the rest, and guest RAM, byte
 * for byte against OpenSSL's AES-XTS.
 *
 * Copyright (c) 2026 The qemu-mktme authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qobject/qdict.h"
#include "qemu/units.h"
#include <sys/syscall.h>
#include "libqtest.h"
#include "mktme-oracle.h"
#include "mktme-tls.h"
#include "mktme-smp-guest-blob.h"
#include "mktme-smp-guest/results.h"

/* KeyID 0's key: data key 00..0f, tweak key 10..1f */
#define KEY0_B64 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

#define GUEST_ARGS \
    "-machine q35 -accel tcg,thread=multi " \
    "-cpu max,vendor=GenuineIntel,phys-bits=46 -m 256M -nodefaults " \
    "-no-reboot "
#define MKTME_ARGS \
    "-object secret,id=s0,data=" KEY0_B64 ",format=base64 " \
    "-object mktme-guest,id=k0,guest-visible=on,key-secret=s0,keyid-bits=6"
#define MEMFD_ARGS \
    "-object memory-backend-memfd,id=m0,size=256M,share=on " \
    "-machine memory-backend=m0 "

/* Per run; the line-by-line crypto region is slow with several vCPUs */
#define TIME_LIMIT_S    300

QEMU_BUILD_BUG_ON(sizeof(MksResults) > 0x100000);

/* What a KeyID does: encrypt with a key, or read as KeyID 0, or no-encrypt */
typedef enum KeyMode { KEY_XTS, KEY_AS_KEYID0, KEY_NOENC } KeyMode;

typedef struct Key {
    KeyMode mode;
    uint8_t k[64];      /* data key then tweak key */
    size_t len;         /* 32 (AES-XTS-128) or 64 bytes */
} Key;

typedef struct SmpCase {
    int cpus;
    const char *shadow;     /* mktme-guest shadow-size, NULL: default */
    bool memfd;             /* RAM from a shared memfd backend */
    bool write_through;     /* shadow-write-back=off */
    bool migrate;           /* check on a migration destination */
    bool postcopy;          /* migrated mid-run, postcopy */
    bool low_maps;          /* vm.max_map_count just above QEMU's maps */
    MktmeTls tls;           /* a migration over TLS; else plain-channel=allow */
} SmpCase;

typedef struct Run {
    const SmpCase *c;
    QTestState *qts;
    char *args;             /* QEMU's command line */
    char *img_path, *log_path;
    MksResults *r;
    unsigned n;
    int failures;
    int64_t start;          /* when the guest was started */
    char *tls_dir;          /* postcopy over TLS: the credentials */
} Run;

static Key key_of(const MksKey *mk)
{
    Key k = { .len = mk->len * 2 };

    switch (mk->cmd) {
    case MKS_CMD_CLEAR:
        k.mode = KEY_AS_KEYID0;
        break;
    case MKS_CMD_NOENC:
        k.mode = KEY_NOENC;
        break;
    default:
        k.mode = KEY_XTS;
        for (int i = 0; i < mk->len; i++) {
            k.k[i] = mk->d0 + i;
            k.k[mk->len + i] = mk->t0 + i;
        }
        break;
    }
    return k;
}

static Key key0(void)
{
    Key k = { .mode = KEY_XTS, .len = 32 };

    for (int i = 0; i < 32; i++) {
        k.k[i] = i;
    }
    return k;
}

static Key cpu_key(unsigned cpu)
{
    MksKey mk = mks_cpu_key(cpu);

    return key_of(&mk);
}

/* E_k / D_k of @len bytes (whole lines) at @pa */
static void xts(const Key *k, uint64_t pa, uint8_t *out, const uint8_t *in,
                size_t len, bool enc)
{
    g_assert(k->mode == KEY_XTS);
    xts_oracle(k->k, k->len, pa, out, in, len, enc);
}

/* What a read through a KeyID with @k returns over R: D_k(E_0(R)) */
static void read_of_r(const Key *k, uint64_t pa, uint8_t *out,
                      const uint8_t *r, size_t len)
{
    Key k0 = key0();

    if (k->mode == KEY_AS_KEYID0) {
        memmove(out, r, len);
        return;
    }
    xts(&k0, pa, out, r, len, true);
    if (k->mode == KEY_XTS) {
        xts(k, pa, out, out, len, false);
    }
}

/* R after writing @p through a KeyID with @k: D_0(E_k(P)) */
static void r_of_write(const Key *k, uint64_t pa, uint8_t *r,
                       const uint8_t *p, size_t len)
{
    Key k0 = key0();

    if (k->mode == KEY_AS_KEYID0) {
        memmove(r, p, len);
        return;
    }
    if (k->mode == KEY_XTS) {
        xts(k, pa, r, p, len, true);
    } else {
        memmove(r, p, len);
    }
    xts(&k0, pa, r, r, len, false);
}

static void put_words(uint8_t *line, const uint64_t *w, unsigned n)
{
    for (unsigned q = 0; q < n; q++) {
        stq_le_p(line + 8 * q, w[q]);
    }
}

static void dump_log(Run *run)
{
    g_autofree char *log = NULL;

    if (g_file_get_contents(run->log_path, &log, NULL, NULL)) {
        g_printerr("---- guest debug output ----\n%s"
                   "---- end of guest output ----\n", log);
    }
}

static void fail(Run *run, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static void fail(Run *run, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    if (run->failures++ < 40) {
        g_printerr("FAIL: %s\n", msg);
    }
}

static void check_u64(Run *run, const char *what, uint64_t got,
                      uint64_t expected)
{
    if (got != expected) {
        fail(run, "%s: 0x%" PRIx64 ", expected 0x%" PRIx64, what, got,
             expected);
    }
}

static void check_mem(Run *run, const char *what, const uint8_t *got,
                      const uint8_t *expected, size_t len)
{
    size_t i = 0;
    g_autoptr(GString) a = g_string_new(NULL);
    g_autoptr(GString) b = g_string_new(NULL);

    if (!memcmp(got, expected, len)) {
        return;
    }
    while (got[i] == expected[i]) {
        i++;
    }
    for (size_t j = i; j < len && j < i + 16; j++) {
        g_string_append_printf(a, " %02x", got[j]);
        g_string_append_printf(b, " %02x", expected[j]);
    }
    fail(run, "%s: differs from byte %zu\n  got:     %s\n  expected:%s",
         what, i, a->str, b->str);
}

/* Guest RAM (KeyID 0, R) at @pa against @expected */
static void check_ram(Run *run, const char *what, uint64_t pa,
                      const uint8_t *expected, size_t len)
{
    g_autofree uint8_t *r = g_malloc(len);

    qtest_memread(run->qts, pa, r, len);
    check_mem(run, what, r, expected, len);
}

/* The DRAM image E_0(R) of [@pa, @pa + @len), through x-mktme-dram-save */
static uint8_t *dram_save(Run *run, uint64_t pa, uint64_t len)
{
    g_autofree char *path = NULL;
    uint8_t *dram;
    size_t dlen;
    int fd;

    fd = g_file_open_tmp("mktme-smp-dram-XXXXXX", &path, NULL);
    g_assert_cmpint(fd, >=, 0);
    close(fd);
    qtest_qmp_assert_success(run->qts, "{'execute': 'x-mktme-dram-save', "
                             "'arguments': {'val': %" PRIu64 ", 'size': %"
                             PRIu64 ", 'filename': %s}}", pa, len, path);
    g_assert_true(g_file_get_contents(path, (char **)&dram, &dlen, NULL));
    unlink(path);
    g_assert_cmpint(dlen, ==, len);
    return dram;
}

/* Boot the guest */
static void guest_start(Run *run)
{
    const SmpCase *c = run->c;
    g_autofree uint8_t *img = g_malloc0(MKTME_SMP_GUEST_IMAGE_SIZE);
    size_t n = sizeof(mktme_smp_guest_blob);
    int fd;

    memcpy(img, mktme_smp_guest_blob, n - 16);
    memcpy(img + MKTME_SMP_GUEST_IMAGE_SIZE - 16,
           mktme_smp_guest_blob + n - 16, 16);
    fd = g_file_open_tmp("mktme-smp-XXXXXX.img", &run->img_path, NULL);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(write(fd, img, MKTME_SMP_GUEST_IMAGE_SIZE), ==,
                    MKTME_SMP_GUEST_IMAGE_SIZE);
    close(fd);
    fd = g_file_open_tmp("mktme-smp-XXXXXX.log", &run->log_path, NULL);
    g_assert_cmpint(fd, >=, 0);
    close(fd);

    run->args = g_strdup_printf(GUEST_ARGS "-smp %d %s-bios %s "
                                "-device isa-debugcon,iobase=0xe9,chardev=dbg "
                                "-chardev file,id=dbg,path=%s "
                                MKTME_ARGS "%s%s%s%s "
                                "-machine memory-encryption=k0%s",
                                c->cpus, c->memfd ? MEMFD_ARGS : "",
                                run->img_path, run->log_path,
                                c->shadow ? ",shadow-size=" : "",
                                c->shadow ?: "",
                                c->write_through ?
                                ",shadow-write-back=off" : "",
                                c->migrate && !c->tls ?
                                ",plain-channel=allow" : "",
                                c->postcopy || c->low_maps ? " -S" : "");
    run->qts = qtest_init(run->args);
    run->start = g_get_monotonic_time();
}

/*
 * Wait (at most TIME_LIMIT_S from the start) for the guest to report
 * that it is done; it then halts every vCPU and the results can be read.
 */
static void guest_wait(Run *run)
{
    const SmpCase *c = run->c;
    int64_t start = run->start;
    int64_t deadline = start + TIME_LIMIT_S * G_TIME_SPAN_SECOND;
    uint64_t done;

    for (;;) {
        if (!qtest_probe_child(run->qts)) {
            dump_log(run);
            g_error("QEMU exited before the guest was done");
        }
        done = qtest_readq(run->qts, MKS_RESULTS_PA +
                           offsetof(MksResults, done));
        if (done) {
            break;
        }
        if (g_get_monotonic_time() > deadline) {
            run->r = g_new0(MksResults, 1);
            qtest_memread(run->qts, MKS_RESULTS_PA, run->r,
                          sizeof(*run->r));
            for (int i = 0; i < c->cpus && i < MKS_MAX_CPUS; i++) {
                g_printerr("vCPU %d: alive %llu stage %llu errors %llu "
                           "done %llu\n", i, run->r->cpu[i].alive,
                           run->r->cpu[i].stage, run->r->cpu[i].errors,
                           run->r->cpu[i].done);
            }
            dump_log(run);
            g_error("guest not done after %d s", TIME_LIMIT_S);
        }
        g_usleep(50 * 1000);
    }
    g_test_message("-smp %d%s%s%s: guest done in %.1f s", c->cpus,
                   c->shadow ? ", shadow-size=" : "", c->shadow ?: "",
                   c->memfd ? ", shared memfd RAM" : "",
                   (g_get_monotonic_time() - start) / 1e6);
    run->r = g_new0(MksResults, 1);
    qtest_memread(run->qts, MKS_RESULTS_PA, run->r, sizeof(*run->r));
    if (run->r->magic != MKS_MAGIC || done != MKS_DONE_OK) {
        dump_log(run);
        g_error("guest failed: magic 0x%llx done 0x%" PRIx64 ", vCPUs %llu "
                "(%llu checked in): exception 0x%llx error 0x%llx at rip "
                "0x%llx (cr2 0x%llx) on APIC ID 0x%llx", run->r->magic, done,
                run->r->ncpus, run->r->alive, run->r->crash_vector,
                run->r->crash_error, run->r->crash_rip, run->r->crash_cr2,
                run->r->crash_apic_id);
    }
}

static void check_cpus(Run *run)
{
    MksResults *r = run->r;
    static const char *const sc[] = {
        "?", "boot", "a", "b", "c", "d", "end",
    };

    check_u64(run, "vCPUs (fw_cfg)", r->ncpus, run->c->cpus);
    check_u64(run, "vCPUs that checked in", r->alive, run->c->cpus);
    check_u64(run, "failed PCONFIGs", r->pconfig_fail, 0);
    for (unsigned i = 0; i < run->n; i++) {
        const MksCpu *c = &r->cpu[i];
        g_autofree char *s = g_strdup_printf("vCPU %u", i);

        check_u64(run, s, c->alive, 1);
        check_u64(run, s, c->done, 1);
        for (unsigned j = 0; j < i; j++) {
            if (r->cpu[j].apic_id == c->apic_id) {
                fail(run, "vCPUs %u and %u: same APIC ID 0x%llx", j, i,
                     c->apic_id);
            }
        }
        if (c->errors) {
            fail(run, "vCPU %u: %llu failed checks in the guest; the first: "
                 "scenario %s, index %llu, address 0x%llx: got 0x%llx, "
                 "expected 0x%llx", i, c->errors,
                 c->first.scenario < G_N_ELEMENTS(sc) ?
                 sc[c->first.scenario] : "?", c->first.index,
                 c->first.addr, c->first.got, c->first.expected);
        }
        check_u64(run, "scenario a: passes", c->a_passes, MKS_A_PASSES);
        check_u64(run, "scenario a: lines of shared pages", c->a2_lines,
                  MKS_A_PASSES * ((MKS_A2_LEN / 64 - i + run->n - 1) /
                                  run->n));
        check_u64(run, "scenario b: steps", c->b_steps,
                  run->n > 1 ? 2 * MKS_B_ITERS : 0);
        check_u64(run, "scenario d: rounds", c->d_rounds, MKS_D_ROUNDS);
    }
}

/* a: each buffer holds the last pass, written through its vCPU's KeyID */
static void check_a(Run *run)
{
    g_autofree uint8_t *p = g_malloc(MKS_A_LEN);
    g_autofree uint8_t *ram = g_malloc(MKS_A_LEN);

    for (unsigned i = 0; i < run->n; i++) {
        Key k = cpu_key(i);
        uint64_t pa = MKS_A_PA(i);
        g_autofree char *s = g_strdup_printf("a: vCPU %u's buffer: RAM = "
                                             "D_0(E_%u(P))", i,
                                             MKS_KID_CPU(i));
        g_autofree char *d = g_strdup_printf("a: vCPU %u's buffer: DRAM = "
                                             "E_%u(P)", i, MKS_KID_CPU(i));
        g_autofree uint8_t *dram = NULL;
        uint8_t e[4096];

        for (uint64_t q = 0; q < MKS_A_LEN / 8; q++) {
            stq_le_p(p + 8 * q, mks_a_word(i, MKS_A_PASSES - 1, q));
        }
        r_of_write(&k, pa, ram, p, MKS_A_LEN);
        check_ram(run, s, pa, ram, MKS_A_LEN);
        dram = dram_save(run, pa, sizeof(e));
        xts(&k, pa, e, p, sizeof(e), true);
        check_mem(run, d, dram, e, sizeof(e));
    }

    /* The shared pages: line l written through vCPU l % n's KeyID */
    g_free(p);
    g_free(ram);
    p = g_malloc(MKS_A2_LEN);
    ram = g_malloc(MKS_A2_LEN);
    for (uint64_t l = 0; l < MKS_A2_LEN / 64; l++) {
        unsigned i = l % run->n;
        Key k = cpu_key(i);
        uint64_t pa = MKS_A2_PA + 64 * l;

        for (unsigned q = 0; q < 8; q++) {
            stq_le_p(p + 64 * l + 8 * q,
                     mks_a_word(i, MKS_A2_PASS(MKS_A_PASSES - 1), 8 * l + q));
        }
        r_of_write(&k, pa, ram + 64 * l, p + 64 * l, 64);
    }
    check_ram(run, "a: shared pages, line l through KeyID of vCPU l % n: RAM",
              MKS_A2_PA, ram, MKS_A2_LEN);
}

/* b: replay each channel's steps with the oracle */
static void check_b(Run *run)
{
    for (unsigned c = 0; c < run->n && run->n > 1; c++) {
        unsigned rd = (c + 1) % run->n;
        Key ka = cpu_key(c), kb = cpu_key(rd);
        const MksChannel *ch = &run->r->ch[c];
        uint64_t pa = MKS_B_PA(c), w[8];
        uint8_t ram[64], p[64], e[64];

        for (unsigned q = 0; q < 8; q++) {
            w[q] = mks_b_word(c, MKS_B_INIT, q);
        }
        put_words(ram, w, 8);
        for (unsigned t = 0; t < MKS_B_ITERS; t++) {
            unsigned s = 2 * t, m = mks_b_mask(t);
            g_autofree char *sa = g_strdup_printf(
                "b: channel %u step %u (vCPU %u wrote via KeyID %u): "
                "vCPU %u via KeyID %u", c, s, c, MKS_KID_CPU(c), rd,
                MKS_KID_CPU(c));
            g_autofree char *sb = g_strdup_printf(
                "b: channel %u step %u: vCPU %u via KeyID %u = "
                "D_%u(E_0(R))", c, s, rd, MKS_KID_CPU(rd), MKS_KID_CPU(rd));
            g_autofree char *s0 = g_strdup_printf(
                "b: channel %u step %u: vCPU %u via KeyID 0 = R", c, s, rd);
            g_autofree char *ra = g_strdup_printf(
                "b: channel %u step %u (vCPU %u wrote via KeyID 0): "
                "vCPU %u via KeyID %u = D_%u(E_0(R))", c, s + 1, c, rd,
                MKS_KID_CPU(c), MKS_KID_CPU(c));
            g_autofree char *rb = g_strdup_printf(
                "b: channel %u step %u: vCPU %u via KeyID %u", c, s + 1, rd,
                MKS_KID_CPU(rd));

            /* Step 2t: the qwords of m through KeyID a */
            read_of_r(&ka, pa, p, ram, 64);
            for (unsigned q = 0; q < 8; q++) {
                if (m & (1u << q)) {
                    stq_le_p(p + 8 * q, mks_b_word(c, s, q));
                }
            }
            r_of_write(&ka, pa, ram, p, 64);
            check_mem(run, sa, ch->fwd_a[t], p, 64);
            read_of_r(&kb, pa, e, ram, 64);
            check_mem(run, sb, ch->fwd_b[t], e, 64);
            check_mem(run, s0, ch->fwd_0[t], ram, 64);

            /* Step 2t + 1: the whole line through KeyID 0 */
            for (unsigned q = 0; q < 8; q++) {
                w[q] = mks_b_word(c, s + 1, q);
            }
            put_words(ram, w, 8);
            read_of_r(&ka, pa, e, ram, 64);
            check_mem(run, ra, ch->rev_a[t], e, 64);
            read_of_r(&kb, pa, e, ram, 64);
            check_mem(run, rb, ch->rev_b[t], e, 64);
        }
        check_ram(run, "b: the line at the end", pa, ram, 64);
    }
}

/* c: after each re-key every vCPU read the known line with the new key */
static void check_c(Run *run)
{
    Key last = key_of(mks_rekey_of_round(MKS_C_ROUNDS));
    uint64_t w[8];
    uint8_t known[64], e[64], p[64];

    for (unsigned q = 0; q < 8; q++) {
        w[q] = mks_c_known_word(q);
    }
    put_words(known, w, 8);
    check_ram(run, "c: the known line", MKS_C_KNOWN, known, 64);
    for (unsigned r = 0; r <= MKS_C_ROUNDS; r++) {
        Key k = key_of(mks_rekey_of_round(r));

        read_of_r(&k, MKS_C_KNOWN, e, known, 64);
        for (unsigned i = 0; i < run->n; i++) {
            g_autofree char *s = g_strdup_printf(
                "c: vCPU %u, the known line via KeyID %u after %s %u", i,
                MKS_KID_REKEY, r ? "re-key" : "the initial key", r);

            check_mem(run, s, run->r->cpu[i].c_known[r], e, 64);
        }
    }
    for (unsigned i = 0; i < run->n; i++) {
        const MksCpu *c = &run->r->cpu[i];
        g_autofree char *s = g_strdup_printf(
            "c: vCPU %u's line, written via KeyID %u with the last key", i,
            MKS_KID_REKEY);
        g_autoptr(GString) loops = g_string_new(NULL);

        for (unsigned q = 0; q < 8; q++) {
            w[q] = mks_c_word(i, MKS_C_ROUNDS, 1u << 30, q);
        }
        put_words(p, w, 8);
        r_of_write(&last, MKS_C_OWN(i), e, p, 64);
        check_ram(run, s, MKS_C_OWN(i), e, 64);
        if (i == 0) {
            continue;
        }
        for (unsigned r = 1; r <= MKS_C_ROUNDS; r++) {
            /* The BSP re-keys only once every AP has looped twice. */
            if (c->c_loops[r] < 2) {
                fail(run, "c: vCPU %u looped %llu times in round %u", i,
                     c->c_loops[r], r);
            }
            g_string_append_printf(loops, " %llu/%llu", c->c_loops[r],
                                   c->c_transitional[r]);
        }
        g_test_message("c: vCPU %u round trips/transitional per round:%s",
                       i, loops->str);
    }
}

/* d: A and D bits, set through KeyIDs by every vCPU's page walks */
static void check_d(Run *run)
{
    Key kpt = key_of(&mks_pt_key);
    const unsigned last = MKS_D_ROUNDS - 1;
    uint8_t pt[4096] = { 0 }, ram[4096], page[4096], zero[64] = { 0 };
    uint8_t line[64];

    for (unsigned i = 0; i < run->n; i++) {
        const MksCpu *c = &run->r->cpu[i];
        Key k = cpu_key(i);
        uint64_t kid = (uint64_t)MKS_KID_CPU(i) << MKS_KEYID_SHIFT;
        uint64_t pml4e = kid | MKS_D_PDPT(i) | MKS_PG_PRW | MKS_PG_A;
        uint64_t pdpte = kid | MKS_D_PD(i) | MKS_PG_PRW | MKS_PG_A;
        uint64_t pde = (uint64_t)MKS_KID_PT << MKS_KEYID_SHIFT | MKS_D_PT |
                       MKS_PG_PRW | MKS_PG_A;
        g_autofree char *s = g_strdup_printf("d: vCPU %u's PML4, PDPT, PD: "
                                             "RAM = D_0(E_%u(table))", i,
                                             MKS_KID_CPU(i));
        g_autofree char *se = g_strdup_printf("d: vCPU %u's PML4E, PDPTE, "
                                              "PDE via KeyID %u", i,
                                              MKS_KID_CPU(i));

        check_u64(run, se, c->d_pml4e, pml4e);
        check_u64(run, se, c->d_pdpte, pdpte);
        check_u64(run, se, c->d_pde, pde);
        for (unsigned j = 0; j < MKS_D_PAGES; j++) {
            uint64_t pte = kid | MKS_D_DATA(i, j) | MKS_PG_PRW | MKS_PG_A |
                           (mks_d_read_only(last, j) ? 0 : MKS_PG_D);
            g_autofree char *sp = g_strdup_printf("d: vCPU %u's PTE %u via "
                                                  "KeyID %u", i, j,
                                                  MKS_KID_PT);
            int wr = -1;

            check_u64(run, sp, c->d_pte[j], pte);
            stq_le_p(pt + 8 * MKS_D_PTE(i, j), pte);

            /* The data page's first line: its last write through KeyID i */
            for (unsigned r = 0; r < MKS_D_ROUNDS; r++) {
                wr = mks_d_read_only(r, j) ? wr : (int)r;
            }
            if (wr < 0) {
                check_ram(run, "d: a page never written", MKS_D_DATA(i, j),
                          zero, 64);
                continue;
            }
            read_of_r(&k, MKS_D_DATA(i, j), line, zero, 64);
            stq_le_p(line, mks_d_word(i, wr, j));
            r_of_write(&k, MKS_D_DATA(i, j), ram, line, 64);
            check_ram(run, "d: a page written through the walked tables",
                      MKS_D_DATA(i, j), ram, 64);
        }

        /* PML4 (but for line 0, entry 0 maps the guest), PDPT, PD */
        memset(page, 0, sizeof(page));
        stq_le_p(page + 8 * MKS_D_SLOT, pml4e);
        r_of_write(&k, MKS_D_PML4(i), ram, page, sizeof(page));
        check_ram(run, s, MKS_D_PML4(i) + 64, ram + 64, sizeof(page) - 64);
        memset(page, 0, sizeof(page));
        stq_le_p(page, pdpte);
        r_of_write(&k, MKS_D_PDPT(i), ram, page, sizeof(page));
        check_ram(run, s, MKS_D_PDPT(i), ram, sizeof(page));
        memset(page, 0, sizeof(page));
        stq_le_p(page, pde);
        r_of_write(&k, MKS_D_PD(i), ram, page, sizeof(page));
        check_ram(run, s, MKS_D_PD(i), ram, sizeof(page));
    }
    /* The shared PT: every vCPU's A and D updates, none lost */
    r_of_write(&kpt, MKS_D_PT, ram, pt, sizeof(pt));
    check_ram(run, "d: the shared page table: RAM = D_0(E_pt(PT))", MKS_D_PT,
              ram, sizeof(pt));
}

/* query-mktme answers after the guest is done */
static void check_query(Run *run)
{
    QDict *rsp = qtest_qmp(run->qts, "{'execute': 'query-mktme'}");
    QDict *ret = qdict_get_qdict(rsp, "return");
    QDict *fp;
    const char *off;

    g_assert_nonnull(ret);
    g_assert_true(qdict_get_bool(ret, "enabled"));
    g_assert_true(qdict_get_bool(ret, "guest-visible"));
    g_assert_cmpint(qdict_get_int(ret, "keyid-bits"), ==, 6);
    g_assert_cmpint(qdict_get_int(ret, "keys"), ==, 63);
    fp = qdict_get_qdict(ret, "fast-path");
    g_assert_nonnull(fp);
    off = qdict_get_try_str(fp, "off-reason");
    if (run->c->shadow && !strcmp(run->c->shadow, "0")) {
        g_assert_cmpstr(off, ==, "shadow-size=0");
    } else if (run->c->memfd || run->c->write_through) {
        /* Shared RAM, or the object says so: stores are written through */
        g_assert_null(off);
        g_assert_cmpint(qdict_get_int(fp, "write-backs"), ==, 0);
        g_assert_cmpint(qdict_get_int(fp, "write-back-slots"), ==, 0);
        g_assert_cmpint(qdict_get_int(fp, "writes"), >, 0);
    } else if (!run->c->migrate) {
        /* Own buffers through own KeyIDs: written back when read here */
        g_assert_null(off);
        g_assert_cmpint(qdict_get_int(fp, "write-backs"), >, 0);
    }
    g_test_message("fast path: %s; fills %" PRId64 ", writes %" PRId64
                   ", refreshes %" PRId64 ", write-back slots %" PRId64
                   ", lines written back %" PRId64 ", demotions %" PRId64,
                   off ? off : "on",
                   qdict_get_try_int(fp, "fills", 0),
                   qdict_get_try_int(fp, "writes", 0),
                   qdict_get_try_int(fp, "refreshes", 0),
                   qdict_get_try_int(fp, "write-back-slots", 0),
                   qdict_get_try_int(fp, "write-backs", 0),
                   qdict_get_try_int(fp, "demotions", 0));
    qobject_unref(rsp);
}

/* query-migrate's status on @qts; fails the test on "failed" */
static char *migrate_status(QTestState *qts)
{
    QDict *rsp = qtest_qmp_assert_success_ref(qts,
                                              "{'execute': 'query-migrate'}");
    char *status = g_strdup(qdict_get_try_str(rsp, "status") ?: "none");

    if (!strcmp(status, "failed")) {
        g_error("migration failed: %s",
                qdict_get_try_str(rsp, "error-desc") ?: "(no reason)");
    }
    qobject_unref(rsp);
    return status;
}

static void migrate_wait(QTestState *qts, const char *want)
{
    for (;;) {
        g_autofree char *status = migrate_status(qts);

        if (!strcmp(status, want)) {
            return;
        }
        g_usleep(10000);
    }
}

/* Can this process create a userfaultfd (postcopy needs one)? */
static bool have_userfaultfd(void)
{
#ifdef __NR_userfaultfd
    int fd = syscall(__NR_userfaultfd, O_CLOEXEC);

    if (fd >= 0) {
        close(fd);
        return true;
    }
#endif
    return access("/dev/userfaultfd", R_OK | W_OK) == 0;
}

/* TLS credentials for both ends, if the case migrates over TLS */
static char *migrate_tls(Run *run, QTestState *src, QTestState *dst)
{
    char *dir;

    if (!run->c->tls) {
        return NULL;
    }
    dir = mktme_tls_make(run->c->tls);
    g_assert_nonnull(dir);
    mktme_tls_use(src, run->c->tls, dir, false);
    mktme_tls_use(dst, run->c->tls, dir, true);
    return dir;
}

/*
 * Migrate the halted guest to a new QEMU and go on with that one: what
 * the vCPUs left in shadows (write-back slots hold stores that guest RAM
 * lacks until a sync) must all be in the stream.
 */
static void migrate_run(Run *run)
{
    g_autofree char *tmp = g_dir_make_tmp("mktme-smp-mig-XXXXXX", NULL);
    g_autofree char *sock = g_strdup_printf("%s/sock", tmp);
    g_autofree char *uri = g_strdup_printf("unix:%s", sock);
    QTestState *dst = qtest_initf("%s -incoming defer", run->args);
    char *tls = migrate_tls(run, run->qts, dst);
    QDict *rsp;

    qtest_qmp_assert_success(dst, "{'execute': 'migrate-incoming', "
                             "'arguments': {'uri': %s}}", uri);
    rsp = qtest_qmp(run->qts, "{'execute': 'query-mktme'}");
    g_test_message("source before migration: %" PRId64 " write-back "
                   "slots", qdict_get_int(qdict_get_qdict(
                       qdict_get_qdict(rsp, "return"), "fast-path"),
                       "write-back-slots"));
    qobject_unref(rsp);
    qtest_qmp_assert_success(run->qts, "{'execute': 'migrate', "
                             "'arguments': {'uri': %s}}", uri);
    migrate_wait(run->qts, "completed");
    qtest_qmp_eventwait(dst, "RESUME");
    qtest_quit(run->qts);
    unlink(sock);
    rmdir(tmp);
    mktme_tls_free(tls);
    run->qts = dst;
}

/*
 * Postcopy: the source, started paused, switches to postcopy before it
 * has sent a page, so the guest runs from its first instruction on the
 * destination while its RAM comes in: a page the guest touches before
 * the background stream brought it (through KeyID 0, or through a
 * shadow's fill or write-back) waits for it in userfaultfd.  Returns
 * the source, which serves pages until postcopy_finish().
 */
static QTestState *postcopy_start(Run *run, char **sock)
{
    g_autofree char *tmp = g_dir_make_tmp("mktme-smp-mig-XXXXXX", NULL);
    g_autofree char *uri = NULL;
    const char *caps = "{'execute': 'migrate-set-capabilities', "
        "'arguments': {'capabilities': [{'capability': 'postcopy-ram', "
        "'state': true}]}}";
    QTestState *src = run->qts;
    QTestState *dst = qtest_initf("%s -incoming defer", run->args);

    *sock = g_strdup_printf("%s/sock", tmp);
    uri = g_strdup_printf("unix:%s", *sock);
    run->tls_dir = migrate_tls(run, src, dst);
    qtest_qmp_assert_success(src, caps);
    qtest_qmp_assert_success(dst, caps);
    /*
     * Precopy sends next to nothing (QEMU takes < 10 bytes/s as no
     * limit); postcopy's background stream takes about a second, so that
     * the pages the destination touches first are still to come.
     */
    qtest_qmp_assert_success(src, "{'execute': 'migrate-set-parameters', "
                             "'arguments': {'max-bandwidth': 4096, "
                             "'max-postcopy-bandwidth': 1048576}}");
    qtest_qmp_assert_success(dst, "{'execute': 'migrate-incoming', "
                             "'arguments': {'uri': %s}}", uri);
    qtest_qmp_assert_success(src, "{'execute': 'migrate', "
                             "'arguments': {'uri': %s}}", uri);
    qtest_qmp_assert_success(src, "{'execute': 'migrate-start-postcopy'}");
    migrate_wait(src, "postcopy-active");
    /*
     * The last page of RAM, which the background stream (low to high)
     * brings last: the destination asks for it
     */
    qtest_readq(dst, 256 * MiB - 8);
    qtest_qmp_assert_success(dst, "{'execute': 'cont'}");
    qtest_qmp_eventwait(dst, "RESUME");
    run->start = g_get_monotonic_time();
    run->qts = dst;
    return src;
}

/* The guest is done: wait for the rest of RAM, then drop the source */
static void postcopy_finish(Run *run, QTestState *src, char *sock)
{
    g_autofree char *dir = g_path_get_dirname(sock);
    QDict *rsp, *ram;
    int64_t asked;

    migrate_wait(src, "completed");
    migrate_wait(run->qts, "completed");
    rsp = qtest_qmp_assert_success_ref(src, "{'execute': 'query-migrate'}");
    ram = qdict_get_qdict(rsp, "ram");
    g_assert_nonnull(ram);
    asked = qdict_get_int(ram, "postcopy-requests");
    g_test_message("postcopy: the destination asked for %" PRId64
                   " pages, %" PRId64 " bytes came in postcopy", asked,
                   qdict_get_int(ram, "postcopy-bytes"));
    /*
     * The background stream places most pages (zero pages) before the
     * guest gets to them; its first instructions at least are asked for.
     */
    g_assert_cmpint(asked, >, 0);
    qobject_unref(rsp);
    qtest_quit(src);
    unlink(sock);
    rmdir(dir);
    g_free(sock);
    mktme_tls_free(run->tls_dir);
}

#define MAX_MAP_COUNT   "/proc/sys/vm/max_map_count"
#define MAPS_SPARE      256     /* fewer than the guest's shadows */

/* g_file_set_contents() renames a new file into place: not for /proc */
static bool write_sysctl(const char *path, const char *v)
{
    int fd = open(path, O_WRONLY);
    bool ok = fd >= 0 && write(fd, v, strlen(v)) == strlen(v);

    if (fd >= 0) {
        close(fd);
    }
    return ok;
}

static unsigned count_maps(pid_t pid)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/maps", (int)pid);
    g_autofree char *maps = NULL;
    unsigned n = 0;

    g_assert_true(g_file_get_contents(path, &maps, NULL, NULL));
    for (const char *c = maps; *c; c++) {
        n += *c == '\n';
    }
    return n;
}

/*
 * The host's limit on mappings per process, set just above what QEMU
 * has before the guest runs: shadows take no mappings of their own and
 * split none of guest RAM's, so the guest runs as with the default.
 */
static void lower_map_count(Run *run)
{
    unsigned n = count_maps(qtest_pid(run->qts));
    g_autofree char *v = g_strdup_printf("%u\n", n + MAPS_SPARE);

    g_assert_true(write_sysctl(MAX_MAP_COUNT, v));
    g_test_message("QEMU has %u mappings; vm.max_map_count := %u", n,
                   n + MAPS_SPARE);
    qtest_qmp_assert_success(run->qts, "{'execute': 'cont'}");
    run->start = g_get_monotonic_time();
}

static void test_smp(const void *opaque)
{
    Run run = { .c = opaque, .n = ((const SmpCase *)opaque)->cpus };
    QTestState *src = NULL;
    char *sock = NULL;
    g_autofree char *certtool = g_find_program_in_path("certtool");

    if (run.c->tls == MKTME_TLS_X509 && !certtool) {
        g_test_skip("certtool (gnutls-bin) is not installed");
        return;
    }
    if (run.c->postcopy && !have_userfaultfd()) {
        g_test_skip("userfaultfd is not available to this process");
        return;
    }

    g_assert_cmpint(run.n, <=, MKS_MAX_CPUS);
    guest_start(&run);
    if (run.c->postcopy) {
        src = postcopy_start(&run, &sock);
    } else if (run.c->low_maps) {
        lower_map_count(&run);
    }
    guest_wait(&run);
    if (src) {
        postcopy_finish(&run, src, sock);
    } else if (run.c->migrate) {
        migrate_run(&run);
    }
    check_cpus(&run);
    check_a(&run);
    check_b(&run);
    check_c(&run);
    check_d(&run);
    check_query(&run);
    if (run.failures) {
        dump_log(&run);
    }
    qtest_quit(run.qts);
    unlink(run.img_path);
    unlink(run.log_path);
    g_free(run.img_path);
    g_free(run.log_path);
    g_free(run.args);
    g_free(run.r);
    g_assert_cmpint(run.failures, ==, 0);
}

/*
 * The low vm.max_map_count case runs in a subprocess; this process puts
 * the host's limit back however that ends.
 */
static void test_smp_low_maps(const void *opaque)
{
    g_autofree char *saved = NULL;

    if (g_test_subprocess()) {
        test_smp(opaque);
        return;
    }
    if (access(MAX_MAP_COUNT, W_OK) ||
        !g_file_get_contents(MAX_MAP_COUNT, &saved, NULL, NULL)) {
        g_test_skip("cannot set " MAX_MAP_COUNT " (not root?)");
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_INHERIT_STDERR);
    g_assert_true(write_sysctl(MAX_MAP_COUNT, saved));
    g_test_trap_assert_passed();
}

int main(int argc, char **argv)
{
    static const SmpCase cases[] = {
        { 1, NULL, false },
        { 1, "0", false },
        { 2, NULL, false },
        { 2, "0", false },
        { 4, NULL, false },
        { 4, "0", false },
        { 4, NULL, true },
        { 4, NULL, false, true },
        { 2, NULL, false, false, true, .tls = MKTME_TLS_PSK },
        { 4, "64K", false, false, true, .tls = MKTME_TLS_X509 },
        { 2, NULL, false, false, true },
        { 2, NULL, false, false, true, true },
        { 4, "64K", false, false, true, true, .tls = MKTME_TLS_PSK },
        { 4, NULL, false, false, false, false, true },
    };

    g_test_init(&argc, &argv, NULL);
    if (!qtest_has_accel("tcg")) {
        g_test_skip("TCG is not available");
        return g_test_run();
    }
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        const SmpCase *c = &cases[i];
        g_autofree char *name = g_strdup_printf(
            "/mktme-smp/tcg/smp%d%s%s%s%s%s", c->cpus,
            !c->shadow ? "" : !strcmp(c->shadow, "0") ? "-no-fast-path" :
            "-small-pool", c->memfd ? "-memfd" : "",
            c->write_through ? "-write-through" : "",
            c->postcopy ? "-postcopy" : c->migrate ? "-migrated" :
            c->low_maps ? "-low-max-map-count" : "",
            !c->migrate ? "" : c->tls == MKTME_TLS_PSK ? "-tls-psk" :
            c->tls == MKTME_TLS_X509 ? "-tls-x509" : "-plain");

        qtest_add_data_func(name, c, c->low_maps ? test_smp_low_maps :
                            test_smp);
    }
    return g_test_run();
}
