/*
 * QTest for TME-MK as a guest sees it under TCG: CPUID, the TME MSRs,
 * PCONFIG and KeyID aliasing, run by a freestanding guest
 * (tests/qtest/mktme-guest) whose results are checked byte for byte
 * against OpenSSL's AES-XTS.
 *
 * Copyright (c) 2026 The qemu-mktme authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <sys/mount.h>
#include "qobject/qdict.h"
#include "qobject/qjson.h"
#include "libqtest.h"
#include "qemu/bswap.h"
#include "mktme-oracle.h"
#include "mktme-guest-blob.h"
#include "mktme-guest/results.h"

/* KeyID 0's key: data key 00..0f, tweak key 10..1f */
#define KEY0_B64 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

#define GUEST_ARGS \
    "-machine q35 -accel tcg -cpu max,vendor=GenuineIntel,phys-bits=46 " \
    "-m 256M -nodefaults -no-reboot "
#define MKTME_ARGS \
    "-object secret,id=s0,data=" KEY0_B64 ",format=base64 " \
    "-object mktme-guest,id=k0,guest-visible=on,key-secret=s0,keyid-bits=6," \
    "x-pconfig-busy-keyid=13,x-pconfig-no-entropy-keyid=14"

/* AES-XTS-128 | AES-XTS-256 | bypass | 6 KeyID bits | 63 keys */
#define CAPABILITY      (0x80000005ULL | 6ULL << 32 | 63ULL << 36)
#define GP              13
#define UD              6
#define PF              14

/* AES-XTS key: data key then tweak key; 32 or 64 bytes */
typedef struct Key {
    uint8_t k[64];
    size_t len;
    bool kid0;          /* KeyID 0's key: the exclusion range applies */
} Key;

typedef struct Guest {
    QTestState *qts;
    char *img_path, *log_path;
    MkgResults r;
    bool excl;          /* the guest set up the TME exclusion range */
    int failures;
} Guest;

static Key key_of(const MkgKey *mk)
{
    Key k = { .len = mk->len * 2 };

    for (int i = 0; i < mk->len; i++) {
        k.k[i] = mk->d0 + i;
        k.k[mk->len + i] = mk->t0 + i;
    }
    return k;
}

static Key key0(void)
{
    static const MkgKey mk0 = { 0x00, 0x10, 16 };
    Key k = key_of(&mk0);

    k.kid0 = true;
    return k;
}

static bool in_excl(Guest *g, uint64_t pa)
{
    return g->excl && (pa & MKG_EXCL_MASK & ~0xfffULL) == MKG_EXCL_BASE;
}

/* E_k / D_k of @len bytes at @pa; KeyID 0 is the identity if excluded */
static void enc(Guest *g, const Key *k, uint64_t pa, uint8_t *out,
                const uint8_t *in, size_t len)
{
    if (k->kid0 && in_excl(g, pa)) {
        memmove(out, in, len);
        return;
    }
    xts_oracle(k->k, k->len, pa, out, in, len, true);
}

static void dec(Guest *g, const Key *k, uint64_t pa, uint8_t *out,
                const uint8_t *in, size_t len)
{
    if (k->kid0 && in_excl(g, pa)) {
        memmove(out, in, len);
        return;
    }
    xts_oracle(k->k, k->len, pa, out, in, len, false);
}

/* R after writing @p through a KeyID with key @k: D_0(E_k(P)) */
static void r_of_write(Guest *g, const Key *k, uint64_t pa, uint8_t *r,
                       const uint8_t *p, size_t len)
{
    Key k0 = key0();
    g_autofree uint8_t *t = g_malloc(len);

    enc(g, k, pa, t, p, len);
    dec(g, &k0, pa, r, t, len);
}

/* What a read through a KeyID with key @k returns: D_k(E_0(R)) */
static void read_of_r(Guest *g, const Key *k, uint64_t pa, uint8_t *out,
                      const uint8_t *r, size_t len)
{
    Key k0 = key0();
    g_autofree uint8_t *t = g_malloc(len);

    enc(g, &k0, pa, t, r, len);
    dec(g, k, pa, out, t, len);
}

/* E_0(R): what a NO_ENCRYPT KeyID reads */
static void dram_of_r(Guest *g, uint64_t pa, uint8_t *out, const uint8_t *r,
                      size_t len)
{
    Key k0 = key0();

    enc(g, &k0, pa, out, r, len);
}

static void pattern(uint8_t *buf, unsigned which, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        buf[i] = mkg_pattern(which, i);
    }
}

static void dump_log(Guest *g)
{
    g_autofree char *log = NULL;

    if (g_file_get_contents(g->log_path, &log, NULL, NULL)) {
        g_printerr("---- guest debug output ----\n%s"
                   "---- end of guest output ----\n", log);
    }
}

static void fail(Guest *g, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static void fail(Guest *g, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_printerr("FAIL: %s\n", msg);
    g->failures++;
}

static void check_u64(Guest *g, const char *what, uint64_t got,
                      uint64_t expected)
{
    if (got != expected) {
        fail(g, "%s: 0x%" PRIx64 ", expected 0x%" PRIx64, what, got,
             expected);
    }
}

static void check_mem(Guest *g, const char *what, const uint8_t *got,
                      const uint8_t *expected, size_t len)
{
    if (memcmp(got, expected, len)) {
        g_autofree char *a = g_strdup("");
        g_autofree char *b = g_strdup("");
        size_t i = 0;

        while (i < len && got[i] == expected[i]) {
            i++;
        }
        for (size_t j = i; j < len && j < i + 16; j++) {
            char *t = g_strdup_printf("%s %02x", a, got[j]);
            char *u = g_strdup_printf("%s %02x", b, expected[j]);

            g_free(a);
            g_free(b);
            a = t;
            b = u;
        }
        fail(g, "%s: differs from byte %zu\n  got:     %s\n  expected:%s",
             what, i, a, b);
    }
}

static void check_ram(Guest *g, const char *what, uint64_t pa,
                      const uint8_t *expected, size_t len)
{
    g_autofree uint8_t *r = g_malloc(len);

    qtest_memread(g->qts, pa, r, len);
    check_mem(g, what, r, expected, len);
}

static void check_op(Guest *g, const char *what, const MkgOp *op,
                     uint64_t vector)
{
    if (op->vector != vector) {
        fail(g, "%s: vector 0x%" PRIx64 ", expected 0x%" PRIx64
             " (0xff: none, 0x1ff: not run)", what, (uint64_t)op->vector,
             vector);
    }
}

/*
 * Boot the guest with @args and wait (at most 120 s) for it to report
 * that it is done; it then halts and the results can be read.
 */
static void guest_run(Guest *g, const char *args)
{
    g_autofree uint8_t *img = g_malloc0(MKTME_GUEST_IMAGE_SIZE);
    size_t n = sizeof(mktme_guest_blob);
    int64_t deadline = g_get_monotonic_time() + 120 * G_TIME_SPAN_SECOND;
    uint64_t done;
    int fd;

    memcpy(img, mktme_guest_blob, n - 16);
    memcpy(img + MKTME_GUEST_IMAGE_SIZE - 16, mktme_guest_blob + n - 16, 16);
    fd = g_file_open_tmp("mktme-guest-XXXXXX.img", &g->img_path, NULL);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(write(fd, img, MKTME_GUEST_IMAGE_SIZE), ==,
                    MKTME_GUEST_IMAGE_SIZE);
    close(fd);
    fd = g_file_open_tmp("mktme-guest-XXXXXX.log", &g->log_path, NULL);
    g_assert_cmpint(fd, >=, 0);
    close(fd);

    g->qts = qtest_initf(GUEST_ARGS "-bios %s "
                         "-device isa-debug-exit,iobase=0xf4,iosize=4 "
                         "-device isa-debugcon,iobase=0xe9,chardev=dbg "
                         "-chardev file,id=dbg,path=%s %s",
                         g->img_path, g->log_path, args);
    for (;;) {
        if (!qtest_probe_child(g->qts)) {
            dump_log(g);
            g_error("QEMU exited before the guest was done");
        }
        done = qtest_readq(g->qts, MKG_RESULTS_PA +
                           offsetof(MkgResults, done));
        if (done) {
            break;
        }
        if (g_get_monotonic_time() > deadline) {
            dump_log(g);
            g_error("guest not done after 120 s");
        }
        g_usleep(20 * 1000);
    }
    qtest_memread(g->qts, MKG_RESULTS_PA, &g->r, sizeof(g->r));
    if (g->r.magic != MKG_MAGIC || done != MKG_DONE_OK) {
        dump_log(g);
        g_error("guest failed: magic 0x%llx done 0x%" PRIx64 " stage %llu: "
                "exception 0x%llx error 0x%llx at rip 0x%llx (cr2 0x%llx)",
                g->r.magic, done, g->r.stage, g->r.crash_vector,
                g->r.crash_error, g->r.crash_rip, g->r.crash_cr2);
    }
}

static void guest_finish(Guest *g)
{
    if (g->failures) {
        dump_log(g);
    }
    qtest_quit(g->qts);
    unlink(g->img_path);
    unlink(g->log_path);
    g_free(g->img_path);
    g_free(g->log_path);
    g_assert_cmpint(g->failures, ==, 0);
}

static void check_enumeration(Guest *g, bool self)
{
    MkgResults *r = &g->r;
    static const char *names[4] = {
        "IA32_TME_CAPABILITY", "IA32_TME_ACTIVATE", "IA32_TME_EXCLUDE_MASK",
        "IA32_TME_EXCLUDE_BASE"
    };
    uint64_t at_start[4] = { CAPABILITY, self ? 0 : MKG_ACTIVATE, 0, 0 };
    uint64_t after[4] = { CAPABILITY, MKG_ACTIVATE,
                          self ? MKG_EXCL_MASK : 0, self ? MKG_EXCL_BASE : 0 };

    check_u64(g, "path", r->path, self ? MKG_PATH_SELF : MKG_PATH_ACTIVE);
    check_u64(g, "CPUID.7.0:ECX[13] (TME)", r->cpuid7_ecx >> 13 & 1, 1);
    check_u64(g, "CPUID.7.0:EDX[18] (PCONFIG)", r->cpuid7_edx >> 18 & 1, 1);
    for (int i = 0; i < 4; i++) {
        check_u64(g, "CPUID.1B.0", r->cpuid1b[0][i], i < 2);
        check_u64(g, "CPUID.1B.1", r->cpuid1b[1][i], 0);
    }
    check_u64(g, "CPUID.80000008:EAX[7:0]", r->cpuid80000008_eax & 0xff, 46);
    for (int i = 0; i < 4; i++) {
        g_autofree char *s = g_strdup_printf("RDMSR %s", names[i]);
        g_autofree char *a = g_strdup_printf("RDMSR %s at the end", names[i]);

        check_op(g, s, &r->msr[i], MKG_NO_FAULT);
        check_u64(g, s, r->msr[i].value, at_start[i]);
        check_op(g, a, &r->msr_after[i], MKG_NO_FAULT);
        check_u64(g, a, r->msr_after[i].value, after[i]);
    }

    for (int i = 0; i < MKG_NWR; i++) {
        g_autofree char *s = g_strdup_printf("WRMSR case %d (value 0x%llx)",
                                             i, r->wr[i].value);
        uint64_t vec = GP;

        if (i < MKG_WR_ACT_AGAIN) {
            vec = !self ? MKG_NOT_RUN :
                  i >= MKG_WR_EMASK ? MKG_NO_FAULT : GP;
        }
        check_op(g, s, &r->wr[i], vec);
    }
    check_op(g, "PCONFIG before activation", &r->pc[MKG_PC_BEFORE_ACT],
             self ? GP : MKG_NOT_RUN);
}

/* What setcc and jz read (g_pconfig_flags) when RFLAGS is @fl */
static uint64_t setcc_of(uint64_t fl)
{
    return !!(fl & 0x40) | !!(fl & 0x1) << 1 | !!(fl & 0x80) << 2 |
           !!(fl & 0x800) << 3 | !!(fl & 0x4) << 4 | !!(fl & 0x40) << 5;
}

/*
 * PCONFIG's RFLAGS, whatever the instruction before it: success clears
 * all six, a fault leaves the producer's; setcc and jcc read the same.
 */
static void check_pconfig_flags(Guest *g)
{
    MkgResults *r = &g->r;
    unsigned nonzero = 0;

    for (unsigned p = 0; p < MKG_NFP; p++) {
        const MkgFlags *a = &r->fp_alone[p], *ok = &r->fp_ok[p];
        const MkgFlags *gp = &r->fp_gp[p];
        const MkgFlags *busy = &r->fp_busy[p], *noent = &r->fp_noent[p];
        g_autofree char *sa = g_strdup_printf("flag producer %u alone", p);
        g_autofree char *so = g_strdup_printf("PCONFIG after producer %u", p);
        g_autofree char *sg = g_strdup_printf("PCONFIG #GP after producer %u",
                                              p);

        check_u64(g, sa, a->vector, MKG_NO_FAULT);
        check_u64(g, sa, a->setcc, setcc_of(a->rflags));
        nonzero += a->rflags != 0;

        check_u64(g, so, ok->vector, MKG_NO_FAULT);
        check_u64(g, so, ok->rax, 0);
        check_u64(g, so, ok->rflags, 0);
        check_u64(g, so, ok->setcc, 0);

        check_u64(g, sg, gp->vector, GP);
        check_u64(g, sg, gp->rax, 1);
        check_u64(g, sg, gp->rflags, a->rflags);
        check_u64(g, sg, gp->setcc, a->setcc);

        /* A status: RAX, ZF alone, setz 1 and jz taken */
        check_u64(g, so, busy->vector, MKG_NO_FAULT);
        check_u64(g, so, busy->rax, 5);
        check_u64(g, so, busy->rflags, 0x40);
        check_u64(g, so, busy->setcc, 0x21);
        check_u64(g, so, noent->vector, MKG_NO_FAULT);
        check_u64(g, so, noent->rax, 2);
        check_u64(g, so, noent->rflags, 0x40);
        check_u64(g, so, noent->setcc, 0x21);
    }
    /* The producers set flags (all but popf-clear): the checks can fail */
    check_u64(g, "flag producers leaving some flag set", nonzero,
              MKG_NFP - 1);

    check_op(g, "PCONFIG with a DS base in 64-bit mode", &r->pc_ds,
             MKG_NO_FAULT);
    check_u64(g, "PCONFIG with a DS base in 64-bit mode", r->pc_ds.value, 0);
    check_u64(g, "PCONFIG with a DS base in 64-bit mode", r->pc_ds.rflags,
              0);
    check_op(g, "PCONFIG with a DS base in compatibility mode", &r->pc_ds32,
             MKG_NO_FAULT);
    check_u64(g, "PCONFIG with a DS base in compatibility mode",
              r->pc_ds32.value, 0);
    check_u64(g, "PCONFIG with a DS base in compatibility mode",
              r->pc_ds32.rflags, 0);
}

static void check_pconfig(Guest *g)
{
    MkgResults *r = &g->r;
    static const uint8_t ok[] = {
        MKG_PC_K1, MKG_PC_K2, MKG_PC_K3, MKG_PC_K5_SET, MKG_PC_K5_CLEAR,
        MKG_PC_K6_RANDOM, MKG_PC_K7_RANDOM, MKG_PC_K8_NOENC, MKG_PC_K9_SET,
        MKG_PC_K9_CLEAR, MKG_PC_K10_REXW, MKG_PC_K11_RAXHI, MKG_PC_K1_REKEY,
    };
    static const uint8_t gp[] = {
        MKG_PC_LEAF1, MKG_PC_LEAF2, MKG_PC_MISALIGNED,
        MKG_PC_MISALIGNED_UNMAPPED, MKG_PC_CTRL_RESERVED, MKG_PC_CMD4,
        MKG_PC_KEYID0, MKG_PC_KEYID64, MKG_PC_KEYID_8001, MKG_PC_ALG0,
        MKG_PC_ALG_TWO, MKG_PC_ALG_BIT9, MKG_PC_CLEAR_ALG0,
        MKG_PC_NOENC_ALG0,
    };
    static const uint8_t ud[] = {
        MKG_PC_LOCK, MKG_PC_REP, MKG_PC_REPNE, MKG_PC_OPSIZE,
    };
    const MkgOp *op;

    for (size_t i = 0; i < G_N_ELEMENTS(ok); i++) {
        g_autofree char *s = g_strdup_printf("PCONFIG case %d", ok[i]);

        op = &r->pc[ok[i]];
        check_op(g, s, op, MKG_NO_FAULT);
        check_u64(g, s, op->value, 0);
        check_u64(g, s, op->rflags, 0);
    }
    for (size_t i = 0; i < G_N_ELEMENTS(gp); i++) {
        g_autofree char *s = g_strdup_printf("PCONFIG case %d", gp[i]);

        op = &r->pc[gp[i]];
        check_op(g, s, op, GP);
        check_u64(g, s, op->value, gp[i] == MKG_PC_LEAF1 ? 1 :
                  gp[i] == MKG_PC_LEAF2 ? 2 : 0);
        check_u64(g, s, op->rflags, MKG_FLAGS_MASK);
    }
    for (size_t i = 0; i < G_N_ELEMENTS(ud); i++) {
        g_autofree char *s = g_strdup_printf("PCONFIG case %d", ud[i]);

        check_op(g, s, &r->pc[ud[i]], UD);
    }
    op = &r->pc[MKG_PC_UNMAPPED];
    check_op(g, "PCONFIG struct unmapped", op, PF);
    if (op->aux - 0x7f0000000000ULL >= 192) {
        fail(g, "PCONFIG struct unmapped: CR2 0x%llx", op->aux);
    }
    op = &r->pc[MKG_PC_CPL3];
    check_op(g, "PCONFIG at CPL 3", op, UD);
    check_u64(g, "PCONFIG at CPL 3: CS of the #UD", op->value, 0x2b);
    check_u64(g, "PCONFIG at CPL 3 returned", op->aux, 0);
    check_op(g, "PCONFIG without TME", &r->pc[MKG_PC_NO_TME], MKG_NOT_RUN);
}

static void check_aliasing(Guest *g)
{
    MkgResults *r = &g->r;
    Key k1 = key_of(&mkg_key1), k2 = key_of(&mkg_key2);
    Key k5 = key_of(&mkg_key5), k1b = key_of(&mkg_key1b), k0 = key0();
    /* Large enough for every buffer: A is 256 bytes, D 192 */
    uint8_t p[MKG_LEN_A], ram[MKG_LEN_A], exp[MKG_LEN_A], t[MKG_LEN_A];

    /* F, then F', through KeyID 0 around the first fill */
    pattern(p, 7, MKG_LEN_F);
    read_of_r(g, &k1, MKG_PA_F, exp, p, MKG_LEN_F);
    check_mem(g, "F via KeyID 1 = D_1(E_0(F)) (first fill)", r->f_read1[0],
              exp, MKG_LEN_F);
    pattern(p, 8, MKG_LEN_F);
    check_ram(g, "F: RAM = F' (stored through KeyID 0 after the fill)",
              MKG_PA_F, p, MKG_LEN_F);
    read_of_r(g, &k1, MKG_PA_F, exp, p, MKG_LEN_F);
    check_mem(g, "F' via KeyID 1 = D_1(E_0(F'))", r->f_read1[1], exp,
              MKG_LEN_F);

    /* P_A through KeyID 1 */
    pattern(p, 1, MKG_LEN_A);
    r_of_write(g, &k1, MKG_PA_A, ram, p, MKG_LEN_A);
    check_ram(g, "A: RAM (KeyID 0 view) = D_0(E_1(P))", MKG_PA_A, ram,
              MKG_LEN_A);
    check_mem(g, "A via KeyID 0 = R", r->a_read[0], ram, MKG_LEN_A);
    check_mem(g, "A via KeyID 1 = P", r->a_read[1], p, MKG_LEN_A);
    read_of_r(g, &k2, MKG_PA_A, exp, ram, MKG_LEN_A);
    check_mem(g, "A via KeyID 2 = D_2(E_0(R))", r->a_read[2], exp,
              MKG_LEN_A);
    dram_of_r(g, MKG_PA_A, t, ram, MKG_LEN_A);
    check_mem(g, "A via KeyID 3 (no-encrypt) = E_0(R)", r->a_read[3], t,
              MKG_LEN_A);
    check_mem(g, "A via KeyID 4 (never programmed) = R", r->a_read[4], ram,
              MKG_LEN_A);
    read_of_r(g, &k5, MKG_PA_A, exp, ram, MKG_LEN_A);
    check_mem(g, "A via KeyID 5 before CLEAR_KEY", r->a_read5_set, exp,
              MKG_LEN_A);
    check_mem(g, "A via KeyID 5 (cleared) = R", r->a_read[5], ram,
              MKG_LEN_A);
    check_mem(g, "A via KeyID 6 (random key), twice", r->a_read6_again,
              r->a_read[6], MKG_LEN_A);
    for (int k = 6; k <= 7; k++) {
        if (!memcmp(r->a_read[k], ram, 64) || !memcmp(r->a_read[k], p, 64) ||
            !memcmp(r->a_read[k], t, 64)) {
            fail(g, "A via KeyID %d (random key) reads a known view", k);
        }
    }
    if (!memcmp(r->a_read[6], r->a_read[7], 64)) {
        fail(g, "KeyIDs 6 and 7 (random keys) read the same");
    }
    check_mem(g, "A via KeyID 8 (no-encrypt, AES-XTS-256)", r->a_read[8], t,
              MKG_LEN_A);
    check_mem(g, "A via KeyID 9 (cleared) = R", r->a_read[9], ram,
              MKG_LEN_A);
    check_mem(g, "A via KeyID 10 (no-encrypt, REX.W)", r->a_read[10], t,
              MKG_LEN_A);
    check_mem(g, "A via KeyID 11 (key of KeyID 1)", r->a_read[11], p,
              MKG_LEN_A);
    read_of_r(g, &k1b, MKG_PA_A, exp, ram, MKG_LEN_A);
    check_mem(g, "A via KeyID 1 after re-keying", r->a_read1_rekey, exp,
              MKG_LEN_A);

    /* Q through KeyID 0 */
    pattern(p, 2, MKG_LEN_B);
    check_ram(g, "B: RAM = Q", MKG_PA_B, p, MKG_LEN_B);
    read_of_r(g, &k1, MKG_PA_B, exp, p, MKG_LEN_B);
    check_mem(g, "B via KeyID 1 = D_1(E_0(Q))", r->b_read1, exp, MKG_LEN_B);
    dram_of_r(g, MKG_PA_B, exp, p, MKG_LEN_B);
    check_mem(g, "B via KeyID 3 = E_0(Q)", r->b_read3, exp, MKG_LEN_B);

    /* S through KeyID 3 (no-encrypt): R = D_0(S) */
    pattern(p, 3, MKG_LEN_C);
    dec(g, &k0, MKG_PA_C, ram, p, MKG_LEN_C);
    check_ram(g, "C: RAM = D_0(S)", MKG_PA_C, ram, MKG_LEN_C);
    check_mem(g, "C via KeyID 0", r->c_read0, ram, MKG_LEN_C);
    dec(g, &k1, MKG_PA_C, exp, p, MKG_LEN_C);
    check_mem(g, "C via KeyID 1 = D_1(S)", r->c_read1, exp, MKG_LEN_C);
    check_mem(g, "C via KeyID 3 = S", r->c_read3, p, MKG_LEN_C);

    /* T through KeyID 2 (AES-XTS-256) */
    pattern(p, 4, MKG_LEN_C);
    r_of_write(g, &k2, MKG_PA_C2, ram, p, MKG_LEN_C);
    check_ram(g, "C2: RAM = D_0(E_2(T))", MKG_PA_C2, ram, MKG_LEN_C);
    check_mem(g, "C2 via KeyID 0", r->c2_read0, ram, MKG_LEN_C);
    check_mem(g, "C2 via KeyID 2 = T", r->c2_read2, p, MKG_LEN_C);

    /* P_D through KeyID 1, partial writes, one byte through KeyID 0 */
    pattern(p, 5, MKG_LEN_D);
    for (size_t i = 0; i < G_N_ELEMENTS(mkg_pokes); i++) {
        for (int b = 0; b < mkg_pokes[i].size; b++) {
            p[mkg_pokes[i].off + b] = mkg_pokes[i].val >> (8 * b);
        }
    }
    r_of_write(g, &k1, MKG_PA_D, ram, p, MKG_LEN_D);
    ram[MKG_D_KID0_OFF] = MKG_D_KID0_VAL;
    check_ram(g, "D: RAM after partial writes", MKG_PA_D, ram, MKG_LEN_D);
    read_of_r(g, &k1, MKG_PA_D, exp, ram, MKG_LEN_D);
    check_mem(g, "D via KeyID 1", r->d_read1, exp, MKG_LEN_D);
    check_mem(g, "D via KeyID 1, lines 0-1 = P'", r->d_read1, p, 128);

    /* U through KeyID 0, inside the exclusion range if it is set */
    pattern(p, 6, MKG_LEN_E);
    check_ram(g, "E: RAM = U", MKG_PA_E, p, MKG_LEN_E);
    dram_of_r(g, MKG_PA_E, t, p, MKG_LEN_E);
    check_mem(g, g->excl ? "E via KeyID 3 = U (excluded)" :
              "E via KeyID 3 = E_0(U)", r->e_read3, t, MKG_LEN_E);
    dec(g, &k1, MKG_PA_E, exp, t, MKG_LEN_E);
    check_mem(g, "E via KeyID 1", r->e_read1, exp, MKG_LEN_E);
}

static void check_fetch(Guest *g)
{
    MkgResults *r = &g->r;
    Key k0 = key0(), k1 = key_of(&mkg_key1);
    uint8_t code[64], ram[64], line[64] = { 0 };
    uint64_t pde = (3ULL << 40) | MKG_PA_PT_F | 7;
    uint64_t pte = (1ULL << 40) | MKG_PA_X | 7;
    static const uint64_t ret[3] = {
        MKG_CODE_IMM1, MKG_CODE_IMM2, MKG_CODE_IMM2
    };

    for (int i = 0; i < 3; i++) {
        g_autofree char *s = g_strdup_printf("call %d through KeyID 1", i);

        check_op(g, s, &r->exec[i], MKG_NO_FAULT);
        check_u64(g, s, r->exec[i].value, ret[i]);
    }
    memset(code, 0xcc, sizeof(code));
    code[0] = 0xb8;
    code[1] = MKG_CODE_IMM2 & 0xff;
    code[2] = MKG_CODE_IMM2 >> 8;
    code[3] = code[4] = 0;
    code[5] = 0xc3;
    r_of_write(g, &k1, MKG_PA_X, ram, code, 64);
    check_ram(g, "code: RAM = D_0(E_1(code))", MKG_PA_X, ram, 64);
    check_mem(g, "code via KeyID 0", r->x_read0, ram, 64);

    /* Paging structures: A bits set through KeyIDs 1 and 3 */
    check_u64(g, "PDE via KeyID 1", r->pd_f_before, pde);
    check_u64(g, "PDE via KeyID 1 after the walk", r->pd_f_after, pde | 0x20);
    check_u64(g, "PTE via KeyID 3", r->pt_f_before, pte);
    check_u64(g, "PTE via KeyID 3 after the walk", r->pt_f_after, pte | 0x20);
    pde = cpu_to_le64(pde | 0x20);
    memcpy(line + 16, &pde, 8);
    r_of_write(g, &k1, MKG_PA_PD_F, ram, line, 64);
    check_ram(g, "PD page: RAM = D_0(E_1(PD))", MKG_PA_PD_F, ram, 64);
    memset(line, 0, sizeof(line));
    pte = cpu_to_le64(pte | 0x20);
    memcpy(line, &pte, 8);
    dec(g, &k0, MKG_PA_PT_F + 0x800, ram, line, 64);
    check_ram(g, "PT page: RAM = D_0(PT)", MKG_PA_PT_F + 0x800, ram, 64);
}

/*
 * One run of the guest.  @shadow is the mktme-guest shadow-size (NULL:
 * the default); @fast_path_off the off-reason query-mktme must give, or
 * NULL if the fast path must have run: shadows filled and written to.
 */
typedef struct GuestCase {
    bool self;
    const char *shadow;
    const char *fast_path_off;
    const char *extra;          /* more QEMU arguments, or NULL */
    const char *props;          /* more mktme-guest properties, or NULL */
    int wb;                     /* WB_ANY, WB_USED or WB_NONE */
} GuestCase;

/* Write-back slots must have taken stores (WB_USED) or none (WB_NONE) */
enum { WB_ANY, WB_USED, WB_NONE };

/*
 * MOVDIR64B writes the whole line: R := D_0(E_k(P)), whatever the line
 * held (no read of it); MOVDIRI stores into the line as any store does.
 * Faults come before any byte is written.
 */
static void check_movdir(Guest *g)
{
    MkgResults *r = &g->r;
    static const struct {
        uint64_t vector, cr2, err;
    } f[MKG_NMVF] = {
        [MKG_MVF_MISALIGNED] = { GP, 0, 0 },
        [MKG_MVF_DEST_UNMAPPED] = { PF, 0x7f0000000000ULL, 2 },
        [MKG_MVF_SRC_UNMAPPED] = { PF, 0x7f0000000005ULL, 0 },
        [MKG_MVF_SRC_CROSS] = { PF, MKG_MVF_SRC_CROSS_AT, 0 },
        [MKG_MVF_DEST_RO] = { PF, (22ULL << 39) + MKG_PA_MVF +
                              MKG_MVF_DEST_RO * 0x100, 3 },
        [MKG_MVF_REG] = { UD },
        [MKG_MVF_LOCK] = { UD },
        [MKG_MVF_DIRI_REG] = { UD },
    };
    uint8_t fill[64];

    check_u64(g, "CPUID.7.0:ECX[27] (MOVDIRI)", r->cpuid7_ecx >> 27 & 1, 1);
    check_u64(g, "CPUID.7.0:ECX[28] (MOVDIR64B)", r->cpuid7_ecx >> 28 & 1,
              1);
    for (unsigned i = 0; i < MKG_NMV; i++) {
        const MkgMv *m = &mkg_mv[i];
        uint64_t pa = mkg_mv_dest(i);
        Key k = m->keyid == 1 ? key_of(&mkg_key1) :
                m->keyid == 2 ? key_of(&mkg_key2) : key0();
        g_autofree char *s = g_strdup_printf("MOVDIR case %u (KeyID %u)", i,
                                             m->keyid);
        g_autofree char *sk = g_strdup_printf("%s: the line through its "
                                              "KeyID = P", s);
        g_autofree char *s0 = g_strdup_printf("%s: the line through KeyID "
                                              "0 = R", s);
        g_autofree char *sr = g_strdup_printf("%s: RAM = R", s);
        uint8_t p[64], ram[64];

        check_u64(g, s, r->mv_vector[i], MKG_NO_FAULT);
        pattern(p, MKG_MV_PATTERN + i, 64);
        if (i == MKG_MV_DIRI32) {
            stl_le_p(p + MKG_MV_DIRI_OFF, MKG_MV_VAL32);
        } else if (i == MKG_MV_DIRI64) {
            stq_le_p(p + MKG_MV_DIRI_OFF, MKG_MV_VAL64);
        }
        switch (m->keyid) {
        case 1:
        case 2:
            r_of_write(g, &k, pa, ram, p, 64);
            break;
        case 3:
            dec(g, &k, pa, ram, p, 64);     /* no-encrypt: D_0(P) */
            break;
        default:
            memcpy(ram, p, 64);     /* KeyID 0, and cleared KeyIDs */
            break;
        }
        check_mem(g, sk, r->mv_readk[i], p, 64);
        check_mem(g, s0, r->mv_read0[i], ram, 64);
        check_ram(g, sr, pa, ram, 64);
    }
    memset(fill, MKG_MV_FILL, 64);
    for (unsigned i = 0; i < MKG_NMVF; i++) {
        g_autofree char *s = g_strdup_printf("MOVDIR fault case %u", i);
        g_autofree char *sl = g_strdup_printf("MOVDIR fault case %u: the "
                                              "line is as it was", i);

        check_op(g, s, &r->mvf[i], f[i].vector);
        if (f[i].vector == PF) {
            check_u64(g, s, r->mvf[i].value, f[i].cr2);
        }
        if (f[i].vector != UD) {
            check_u64(g, s, r->mvf[i].aux, f[i].err);
        }
        check_mem(g, sl, r->mvf_line[i], fill, 64);
        check_ram(g, sl, MKG_PA_MVF + i * 0x100, fill, 64);
    }
    /* Destinations in RDX and R9 took nothing from RAX */
    check_mem(g, "MOVDIR64B: the line RAX pointed to is as it was",
              r->mv_decoy, fill, 64);
}

static void check_fast_path(Guest *g, const GuestCase *c)
{
    QDict *rsp = qtest_qmp(g->qts, "{'execute': 'query-mktme'}");
    QDict *fp = qdict_get_qdict(qdict_get_qdict(rsp, "return"), "fast-path");

    g_assert(fp);
    if (c->fast_path_off) {
        g_assert_cmpstr(qdict_get_try_str(fp, "off-reason"), ==,
                        c->fast_path_off);
        g_assert_cmpint(qdict_get_int(fp, "slots"), ==, 0);
        g_assert_cmpint(qdict_get_int(fp, "fills"), ==, 0);
    } else {
        g_assert_null(qdict_get_try_str(fp, "off-reason"));
        g_assert_cmpint(qdict_get_int(fp, "slots"), >, 0);
        g_assert_cmpint(qdict_get_int(fp, "fills"), >, 0);
        /* Stores went through to RAM, or were written back */
        g_assert_cmpint(qdict_get_int(fp, "writes") +
                        qdict_get_int(fp, "write-backs"), >, 0);
        if (c->wb == WB_USED) {
            /* The checks read R: written back, and demoted (KeyID 0) */
            g_assert_cmpint(qdict_get_int(fp, "write-backs"), >, 0);
            g_assert_cmpint(qdict_get_int(fp, "demotions"), >, 0);
        } else if (c->wb == WB_NONE) {
            g_assert_cmpint(qdict_get_int(fp, "write-backs"), ==, 0);
            g_assert_cmpint(qdict_get_int(fp, "write-back-slots"), ==, 0);
            g_assert_cmpint(qdict_get_int(fp, "writes"), >, 0);
        }
        g_test_message("fast path: %" PRId64 " writes through, %" PRId64
                       " lines written back, %" PRId64 " demotions",
                       qdict_get_int(fp, "writes"),
                       qdict_get_int(fp, "write-backs"),
                       qdict_get_int(fp, "demotions"));
        g_assert_cmpint(qdict_get_int(fp, "in-use"), <=,
                        qdict_get_int(fp, "slots"));
        g_test_message("fast path: %" PRId64 " slots in use at the end",
                       qdict_get_int(fp, "in-use"));
    }
    qobject_unref(rsp);
}

/*
 * dump-guest-memory writes guest RAM out with system calls: it must
 * succeed with shadows live, and stopping the VM for it drops them
 * (loadvm and incoming migration write RAM unseen).
 */
static void check_dump(Guest *g)
{
    g_autofree char *path = NULL;
    g_autofree char *proto = NULL;
    QDict *rsp, *fp;
    struct stat st;
    int fd = g_file_open_tmp("mktme-dump-XXXXXX", &path, NULL);

    g_assert_cmpint(fd, >=, 0);
    close(fd);
    proto = g_strdup_printf("file:%s", path);
    qtest_qmp_assert_success(g->qts, "{'execute': 'dump-guest-memory', "
                             "'arguments': {'paging': false, "
                             "'protocol': %s}}", proto);
    g_assert_cmpint(stat(path, &st), ==, 0);
    g_assert_cmpint(st.st_size, >, 256 * 1024 * 1024);
    unlink(path);
    rsp = qtest_qmp(g->qts, "{'execute': 'query-mktme'}");
    fp = qdict_get_qdict(qdict_get_qdict(rsp, "return"), "fast-path");
    g_assert_cmpint(qdict_get_int(fp, "in-use"), ==, 0);
    qobject_unref(rsp);
}

static void test_guest(const void *opaque)
{
    const GuestCase *c = opaque;
    Guest g = { .excl = c->self };
    g_autofree char *args = g_strdup_printf(
        MKTME_ARGS "%s%s%s%s -machine memory-encryption=k0 %s",
        c->self ? ",activate=off" : "", c->shadow ? ",shadow-size=" : "",
        c->shadow ?: "", c->props ?: "", c->extra ?: "");

    guest_run(&g, args);
    check_enumeration(&g, c->self);
    if (g.r.path == (c->self ? MKG_PATH_SELF : MKG_PATH_ACTIVE)) {
        check_pconfig(&g);
        check_pconfig_flags(&g);
        check_aliasing(&g);
        check_fetch(&g);
        check_movdir(&g);
        check_fast_path(&g, c);
        check_dump(&g);
    }
    guest_finish(&g);
}

/* Does @hay hold the first 12 bytes of @key, raw or as hex text? */
static bool holds_key(const char *what, const uint8_t *hay, size_t len,
                      const uint8_t *key)
{
    g_autoptr(GString) lo = g_string_new(NULL), up = g_string_new(NULL);
    g_autoptr(GString) sp = g_string_new(NULL);

    for (int i = 0; i < 12; i++) {
        g_string_append_printf(lo, "%02x", key[i]);
        g_string_append_printf(up, "%02X", key[i]);
        g_string_append_printf(sp, "%s%02x", i ? " " : "", key[i]);
    }
    if (memmem(hay, len, key, 12) || memmem(hay, len, lo->str, lo->len) ||
        memmem(hay, len, up->str, up->len) ||
        memmem(hay, len, sp->str, sp->len)) {
        g_printerr("FAIL: key bytes %s... found in %s\n", lo->str, what);
        return true;
    }
    return false;
}

/*
 * Key hygiene: with every mktme trace event on, after the guest has
 * programmed its keys and after a reset, no key byte appears in the
 * trace log, in QMP or HMP replies.
 */
static void test_key_hygiene(void)
{
    static const MkgKey *keys[] = {
        &mkg_key1, &mkg_key2, &mkg_key5, &mkg_key9, &mkg_key1b,
    };
    Guest g = { 0 };
    g_autofree char *trace = NULL, *text = NULL, *args = NULL;
    g_autoptr(GString) out = g_string_new(NULL);
    const char *hmp[] = { "info mktme", "info mtree", "info qtree" };
    uint8_t key[32];
    size_t len;
    int fd, found = 0;

    fd = g_file_open_tmp("mktme-trace-XXXXXX.log", &trace, NULL);
    g_assert_cmpint(fd, >=, 0);
    close(fd);
    /* -action reboot=reset: system_reset resets despite -no-reboot */
    args = g_strdup_printf(MKTME_ARGS " -machine memory-encryption=k0 "
                           "-action reboot=reset "
                           "-trace enable=mktme_*,file=%s", trace);
    guest_run(&g, args);
    g_assert_cmpint(g.r.path, ==, MKG_PATH_ACTIVE);
    for (int round = 0; round < 2; round++) {
        QDict *rsp = qtest_qmp(g.qts, "{'execute': 'query-mktme'}");
        g_autoptr(GString) json = qobject_to_json(QOBJECT(rsp));

        g_string_append(out, json->str);
        qobject_unref(rsp);
        for (int i = 0; i < G_N_ELEMENTS(hmp); i++) {
            g_autofree char *r = qtest_hmp(g.qts, "%s", hmp[i]);

            g_string_append(out, r);
        }
        qtest_qmp_assert_success(g.qts, "{'execute': 'system_reset'}");
    }
    qtest_quit(g.qts);
    g.qts = NULL;
    g_assert_true(g_file_get_contents(trace, &text, &len, NULL));
    unlink(trace);
    /* The trace really ran: it saw the guest's PCONFIGs. */
    g_assert_nonnull(strstr(text, "mktme_pconfig"));

    for (int i = 0; i < G_N_ELEMENTS(keys); i++) {
        for (int j = 0; j < keys[i]->len; j++) {
            key[j] = keys[i]->d0 + j;
        }
        found += holds_key("the trace log", (uint8_t *)text, len, key);
        found += holds_key("QMP/HMP replies", (uint8_t *)out->str, out->len,
                           key);
        for (int j = 0; j < keys[i]->len; j++) {
            key[j] = keys[i]->t0 + j;
        }
        found += holds_key("the trace log", (uint8_t *)text, len, key);
        found += holds_key("QMP/HMP replies", (uint8_t *)out->str, out->len,
                           key);
    }
    /* The VM key (key-secret): 00 01 02 ... 1f */
    for (int j = 0; j < 32; j++) {
        key[j] = j;
    }
    found += holds_key("the trace log", (uint8_t *)text, len, key);
    found += holds_key("the trace log", (uint8_t *)text, len, key + 16);
    found += holds_key("QMP/HMP replies", (uint8_t *)out->str, out->len,
                       key);
    g_assert_cmpint(found, ==, 0);
    unlink(g.img_path);
    unlink(g.log_path);
    g_free(g.img_path);
    g_free(g.log_path);
}

/* Without mktme-guest: no CPUID bits, PCONFIG #UD, the MSRs #GP */
static void test_absent(void)
{
    Guest g = { 0 };
    MkgResults *r = &g.r;

    guest_run(&g, "");
    check_u64(&g, "path", r->path, MKG_PATH_NO_TME);
    check_u64(&g, "CPUID.7.0:ECX[13] (TME)", r->cpuid7_ecx >> 13 & 1, 0);
    check_u64(&g, "CPUID.7.0:EDX[18] (PCONFIG)", r->cpuid7_edx >> 18 & 1, 0);
    for (int i = 0; i < 4; i++) {
        check_op(&g, "RDMSR", &r->msr[i], GP);
        check_op(&g, "RDMSR at the end", &r->msr_after[i], GP);
    }
    check_op(&g, "PCONFIG", &r->pc[MKG_PC_NO_TME], UD);
    check_u64(&g, "PCONFIG: RAX", r->pc[MKG_PC_NO_TME].value, 0);
    check_u64(&g, "PCONFIG: flags", r->pc[MKG_PC_NO_TME].rflags,
              MKG_FLAGS_MASK);
    for (int i = 0; i < MKG_NWR; i++) {
        check_op(&g, "WRMSR", &r->wr[i],
                 i == MKG_WR_ACT || i == MKG_WR_CAP ? GP : MKG_NOT_RUN);
    }
    check_op(&g, "PCONFIG case 2", &r->pc[MKG_PC_K1], MKG_NOT_RUN);
    /* -cpu max offers MOVDIRI and MOVDIR64B under TCG */
    check_u64(&g, "CPUID.7.0:ECX[28:27] (MOVDIR64B, MOVDIRI)",
              r->cpuid7_ecx >> 27 & 3, 3);
    guest_finish(&g);
}

/* A CPU without MOVDIRI and MOVDIR64B: both #UD */
static void test_no_movdir(void)
{
    Guest g = { 0 };
    MkgResults *r = &g.r;

    guest_run(&g, "-cpu max,vendor=GenuineIntel,phys-bits=46,-movdiri,"
              "-movdir64b");
    check_u64(&g, "path", r->path, MKG_PATH_NO_TME);
    check_u64(&g, "CPUID.7.0:ECX[28:27] (MOVDIR64B, MOVDIRI)",
              r->cpuid7_ecx >> 27 & 3, 0);
    check_op(&g, "MOVDIR64B", &r->mv_noenum[0], UD);
    check_op(&g, "MOVDIRI", &r->mv_noenum[1], UD);
    check_ram(&g, "MOVDIR64B, MOVDIRI: the line as it was", MKG_PA_MVF,
              (const uint8_t[64]) { 0 }, 64);
    guest_finish(&g);
}

/*
 * hugetlbfs: 2 MiB pages the host reserves and a hugetlbfs mount, made
 * by this (parent) process as root and undone however the case ends;
 * the case itself runs in a subprocess, which finds the mount in
 * $MKTME_HUGETLBFS.
 */
#define NR_HUGEPAGES    "/proc/sys/vm/nr_hugepages"
#define HUGE_PAGES      160     /* 256 MiB of guest RAM, and spare */

static bool write_proc(const char *path, const char *v)
{
    int fd = open(path, O_WRONLY);
    bool ok = fd >= 0 && write(fd, v, strlen(v)) == strlen(v);

    if (fd >= 0) {
        close(fd);
    }
    return ok;
}

static uint64_t meminfo(const char *field)
{
    g_autofree char *mi = NULL;
    const char *at;

    g_assert_true(g_file_get_contents("/proc/meminfo", &mi, NULL, NULL));
    at = strstr(mi, field);
    return at ? g_ascii_strtoull(at + strlen(field), NULL, 10) : 0;
}

static void test_guest_hugetlbfs(const void *opaque)
{
    g_autofree char *saved = NULL, *want = NULL, *dir = NULL;
    uint64_t total = meminfo("HugePages_Total:");
    uint64_t free_pages = meminfo("HugePages_Free:") -
                          meminfo("HugePages_Rsvd:");

    if (g_test_subprocess()) {
        test_guest(opaque);
        return;
    }
    if (meminfo("Hugepagesize:") != 2048 || access(NR_HUGEPAGES, W_OK) ||
        !g_file_get_contents(NR_HUGEPAGES, &saved, NULL, NULL)) {
        g_test_skip("cannot reserve 2 MiB huge pages (not root?)");
        return;
    }
    want = g_strdup_printf("%" PRIu64 "\n",
                           total + MAX(HUGE_PAGES, free_pages) - free_pages);
    dir = g_dir_make_tmp("mktme-hugetlbfs-XXXXXX", NULL);
    g_assert_nonnull(dir);
    if (!write_proc(NR_HUGEPAGES, want) ||
        meminfo("HugePages_Free:") - meminfo("HugePages_Rsvd:") <
        HUGE_PAGES ||
        mount("none", dir, "hugetlbfs", 0, "pagesize=2M")) {
        write_proc(NR_HUGEPAGES, saved);
        rmdir(dir);
        g_test_skip("the host gave no 2 MiB huge pages or hugetlbfs mount");
        return;
    }
    g_setenv("MKTME_HUGETLBFS", dir, true);
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_INHERIT_STDERR);
    /* Put the host back first (lazily, if a QEMU still holds the mount) */
    umount2(dir, MNT_DETACH);
    rmdir(dir);
    g_assert_true(write_proc(NR_HUGEPAGES, saved));
    g_test_trap_assert_passed();
}

int main(int argc, char **argv)
{
    const char *huge = g_getenv("MKTME_HUGETLBFS") ?: "/nonexistent";
    g_autofree char *huge_private = g_strdup_printf(
        "-machine memory-backend=m0 "
        "-object memory-backend-file,id=m0,size=256M,share=off,"
        "mem-path=%s", huge);
    g_autofree char *huge_shared = g_strdup_printf(
        "-machine memory-backend=m0 "
        "-object memory-backend-file,id=m0,size=256M,share=on,"
        "mem-path=%s", huge);

    g_test_init(&argc, &argv, NULL);
    if (!qtest_has_accel("tcg")) {
        g_test_skip("TCG is not available");
        return g_test_run();
    }
    static const GuestCase activated = { .wb = WB_USED };
    /* Every store written through, as with shared RAM */
    static const GuestCase write_through = {
        .props = ",shadow-write-back=off", .wb = WB_NONE,
    };
    static const GuestCase smp4_write_through = {
        .props = ",shadow-write-back=off", .wb = WB_NONE, .extra = "-smp 4",
    };
    static const GuestCase self = { true, NULL, NULL };
    /* The line-by-line crypto region only */
    static const GuestCase no_fast = { false, "0", "shadow-size=0" };
    /* Four slots: shadows are evicted and reaped all the time */
    static const GuestCase tiny = { false, "16K", NULL };
    /* Shared-memory RAM backends (vhost-user, virtiofs, libvirt) */
    static const GuestCase memfd = {
        false, NULL, NULL,
        "-machine memory-backend=m0 "
        "-object memory-backend-memfd,id=m0,size=256M,share=on",
        .wb = WB_NONE,
    };
    static const GuestCase file_shared = {
        false, "16K", NULL,
        "-machine memory-backend=m0 "
        "-object memory-backend-file,id=m0,size=256M,share=on,"
        "mem-path=/dev/shm",
        .wb = WB_NONE,
    };
    static const GuestCase file_private = {
        false, NULL, NULL,
        "-machine memory-backend=m0 "
        "-object memory-backend-file,id=m0,size=256M,share=off,"
        "mem-path=/dev/shm",
        .wb = WB_USED,
    };
    /* MTTCG: the guest runs on the first vCPU, the others idle */
    static const GuestCase smp4 = { false, NULL, NULL, "-smp 4",
                                    .wb = WB_USED };
    static const GuestCase smp4_tiny = { true, "16K", NULL, "-smp 4" };
    /* hugetlbfs, private and shared (2 MiB host pages) */
    const GuestCase hugetlbfs_private = {
        false, NULL, NULL, huge_private, .wb = WB_USED,
    };
    const GuestCase hugetlbfs_shared = {
        false, NULL, NULL, huge_shared, .wb = WB_NONE,
    };

    qtest_add_data_func("/mktme-pconfig/tcg/activated", &activated,
                        test_guest);
    qtest_add_data_func("/mktme-pconfig/tcg/self-activated", &self,
                        test_guest);
    qtest_add_data_func("/mktme-pconfig/tcg/no-fast-path", &no_fast,
                        test_guest);
    qtest_add_data_func("/mktme-pconfig/tcg/write-through", &write_through,
                        test_guest);
    qtest_add_data_func("/mktme-pconfig/tcg/smp4-write-through",
                        &smp4_write_through, test_guest);
    qtest_add_data_func("/mktme-pconfig/tcg/tiny-shadow-pool", &tiny,
                        test_guest);
    qtest_add_data_func("/mktme-pconfig/tcg/memfd-shared", &memfd,
                        test_guest);
    qtest_add_data_func("/mktme-pconfig/tcg/file-shared-tiny-pool",
                        &file_shared, test_guest);
    qtest_add_data_func("/mktme-pconfig/tcg/file-private", &file_private,
                        test_guest);
    qtest_add_data_func("/mktme-pconfig/tcg/smp4", &smp4, test_guest);
    qtest_add_data_func("/mktme-pconfig/tcg/smp4-self-tiny-pool", &smp4_tiny,
                        test_guest);
    qtest_add_data_func("/mktme-pconfig/tcg/hugetlbfs-private",
                        &hugetlbfs_private, test_guest_hugetlbfs);
    qtest_add_data_func("/mktme-pconfig/tcg/hugetlbfs-shared",
                        &hugetlbfs_shared, test_guest_hugetlbfs);
    qtest_add_func("/mktme-pconfig/tcg/absent", test_absent);
    qtest_add_func("/mktme-pconfig/tcg/no-movdir", test_no_movdir);
    qtest_add_func("/mktme-pconfig/tcg/key-hygiene", test_key_hygiene);
    return g_test_run();
}
