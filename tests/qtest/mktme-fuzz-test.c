/*
 * QTest: guest-driven fuzzing of TME-MK under TCG.  A freestanding
 * guest (tests/qtest/mktme-fuzz-guest) runs a seeded random mix of TME
 * MSR accesses, PCONFIGs, memory accesses and code execution through
 * KeyID windows and checks each outcome; this test boots it, gives it
 * the seed, and checks what it reports and that QEMU survived.
 *
 *   MKTME_FUZZ_SEED=n        the reproducible run's seed (default fixed)
 *   MKTME_FUZZ_ITERATIONS=n  operations per run
 *
 * Each test also runs one random seed, printed so that a failure can be
 * replayed with MKTME_FUZZ_SEED.  The activated runs use the memory
 * controller's default shadow pool (the fast path); the self-activated
 * ones a pool of 16 pages, so that shadows are evicted and reaped all
 * the time.
 *
 * Copyright (c) 2026 The qemu-mktme authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qobject/qdict.h"
#include "libqtest.h"
#include "mktme-fuzz-guest-blob.h"
#include "mktme-fuzz-guest/results.h"

/* KeyID 0's key: data key 00..0f, tweak key 10..1f */
#define KEY0_B64 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

#define GUEST_ARGS \
    "-machine q35 -accel tcg -cpu max,vendor=GenuineIntel,phys-bits=46 " \
    "-m 256M -nodefaults -no-reboot -action reboot=reset -S "
#define MKTME_ARGS \
    "-object secret,id=s0,data=" KEY0_B64 ",format=base64 " \
    "-object mktme-guest,id=k0,guest-visible=on,key-secret=s0,keyid-bits=6"

/* AES-XTS-128 | AES-XTS-256 | bypass | 6 KeyID bits | 63 keys */
#define CAPABILITY      (0x80000005ULL | 6ULL << 32 | 63ULL << 36)
/* What the platform's reset-time activation writes, plus Lock */
#define ACTIVATE        0x0005000600000003ULL

#define DEFAULT_SEED        0x4d4b544d45ULL
#define DEFAULT_ITERATIONS  1500000
#define TIME_LIMIT_S        120

static const char *const op_names[MKF_NOPS] = {
    "rdmsr", "wrmsr", "pconfig", "read", "write", "movsb", "check",
    "recheck", "exec", "movdir",
};
static const char *const out_names[MKF_NOUTS] = {
    "ok", "#GP", "#PF", "status", "skipped", "FAILED",
};
/* Percent of the iterations each op type gets (fuzz.c), roughly */
static const unsigned op_share[MKF_NOPS] = {
    8, 8, 14, 18, 16, 10, 8, 4, 6, 4,
};

static uint64_t env_u64(const char *name, uint64_t dflt)
{
    const char *s = g_getenv(name);

    return s && *s ? g_ascii_strtoull(s, NULL, 0) : dflt;
}

static void dump_log(const char *path)
{
    g_autofree char *log = NULL;

    if (g_file_get_contents(path, &log, NULL, NULL)) {
        g_printerr("---- guest output ----\n%s---- end of guest output ----\n",
                   log);
    }
}

static void check_query(QTestState *qts)
{
    QDict *rsp = qtest_qmp(qts, "{'execute': 'query-mktme'}");
    QDict *ret = qdict_get_qdict(rsp, "return");

    g_assert_nonnull(ret);
    g_assert_true(qdict_get_bool(ret, "enabled"));
    g_assert_true(qdict_get_bool(ret, "guest-visible"));
    g_assert_cmpint(qdict_get_int(ret, "keyid-bits"), ==, 6);
    g_assert_cmpint(qdict_get_int(ret, "keys"), ==, 63);
    qobject_unref(rsp);
}

static void report(const MkfResults *r)
{
    for (int op = 0; op < MKF_NOPS; op++) {
        g_autoptr(GString) s = g_string_new(NULL);

        for (int o = 0; o < MKF_NOUTS; o++) {
            if (r->count[op][o]) {
                g_string_append_printf(s, " %s %llu", out_names[o],
                                       r->count[op][o]);
            }
        }
        g_test_message("%-8s%s", op_names[op], s->str);
    }
}

static void report_failure(const MkfResults *r)
{
    const MkfFailure *f = &r->first;

    g_printerr("FAIL: %llu failed operations; the first: %s at iteration "
               "%llu, inputs 0x%llx 0x%llx 0x%llx 0x%llx: vector 0x%llx "
               "(0xff: none) error 0x%llx, got 0x%llx, expected 0x%llx, "
               "flags 0x%llx\n", r->failures,
               f->op < MKF_NOPS ? op_names[f->op] : "?", f->iteration,
               f->in[0], f->in[1], f->in[2], f->in[3], f->vector, f->error,
               f->got, f->expected, f->flags);
}

static void fuzz_run(bool self, bool smp, uint64_t seed, uint64_t iterations)
{
    g_autofree uint8_t *img = g_malloc0(MKTME_FUZZ_GUEST_IMAGE_SIZE);
    g_autofree char *img_path = NULL, *log_path = NULL;
    size_t n = sizeof(mktme_fuzz_guest_blob);
    int64_t deadline;
    QTestState *qts;
    MkfResults r;
    uint64_t done;
    int fd;

    g_test_message("%s, seed 0x%" PRIx64 " (replay: MKTME_FUZZ_SEED=0x%"
                   PRIx64 "), %" PRIu64 " iterations",
                   self ? "activate=off" : "activated at reset", seed, seed,
                   iterations);
    memcpy(img, mktme_fuzz_guest_blob, n - 16);
    memcpy(img + MKTME_FUZZ_GUEST_IMAGE_SIZE - 16,
           mktme_fuzz_guest_blob + n - 16, 16);
    fd = g_file_open_tmp("mktme-fuzz-XXXXXX.img", &img_path, NULL);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(write(fd, img, MKTME_FUZZ_GUEST_IMAGE_SIZE), ==,
                    MKTME_FUZZ_GUEST_IMAGE_SIZE);
    close(fd);
    fd = g_file_open_tmp("mktme-fuzz-XXXXXX.log", &log_path, NULL);
    g_assert_cmpint(fd, >=, 0);
    close(fd);

    qts = qtest_initf(GUEST_ARGS "-bios %s "
                      "-device isa-debugcon,iobase=0xe9,chardev=dbg "
                      "-chardev file,id=dbg,path=%s " MKTME_ARGS "%s "
                      "-machine memory-encryption=k0 %s", img_path, log_path,
                      self ? ",activate=off,shadow-size=64K" : "",
                      smp ? "-smp 4" : "");
    qtest_writeq(qts, MKF_PARAMS_PA + offsetof(MkfParams, seed), seed);
    qtest_writeq(qts, MKF_PARAMS_PA + offsetof(MkfParams, iterations),
                 iterations);
    qtest_qmp_assert_success(qts, "{'execute': 'cont'}");

    deadline = g_get_monotonic_time() + TIME_LIMIT_S * G_TIME_SPAN_SECOND;
    for (;;) {
        if (!qtest_probe_child(qts)) {
            dump_log(log_path);
            g_error("QEMU died (seed 0x%" PRIx64 ")", seed);
        }
        done = qtest_readq(qts, MKF_RESULTS_PA + offsetof(MkfResults, done));
        if (done) {
            break;
        }
        if (g_get_monotonic_time() > deadline) {
            qtest_memread(qts, MKF_RESULTS_PA, &r, sizeof(r));
            dump_log(log_path);
            g_error("guest not done after %d s: at iteration %llu of %llu "
                    "(seed 0x%" PRIx64 ")", TIME_LIMIT_S, r.iteration,
                    r.iterations, seed);
        }
        g_usleep(50 * 1000);
    }
    qtest_memread(qts, MKF_RESULTS_PA, &r, sizeof(r));
    if (r.magic != MKF_MAGIC || done != MKF_DONE_OK) {
        dump_log(log_path);
        g_error("guest crashed at iteration %llu: exception 0x%llx error "
                "0x%llx at rip 0x%llx (cr2 0x%llx), seed 0x%" PRIx64,
                r.iteration, r.crash_vector, r.crash_error, r.crash_rip,
                r.crash_cr2, seed);
    }
    g_test_message("activate 0x%llx exclude mask 0x%llx base 0x%llx",
                   r.activate, r.excl_mask, r.excl_base);
    report(&r);
    if (r.failures) {
        report_failure(&r);
        dump_log(log_path);
    }
    g_assert_cmphex(r.seed, ==, seed);
    g_assert_cmpuint(r.iteration, ==, iterations);
    g_assert_cmphex(r.capability, ==, CAPABILITY);
    g_assert_cmpuint(r.self_activated, ==, self);
    g_assert_cmphex(r.activate & 3, ==, 3);
    if (!self) {
        g_assert_cmphex(r.activate, ==, ACTIVATE);
    }
    g_assert_cmpuint(r.failures, ==, 0);
    for (int op = 0; op < MKF_NOPS; op++) {
        uint64_t total = 0;

        for (int o = 0; o < MKF_NOUTS; o++) {
            total += r.count[op][o];
        }
        if (total < iterations * op_share[op] / 400) {
            g_error("%s ran %" PRIu64 " times, expected at least %" PRIu64,
                    op_names[op], total, iterations * op_share[op] / 400);
        }
    }
    if (iterations >= 1000) {
        g_assert_cmpuint(r.count[MKF_OP_PCONFIG][MKF_OUT_OK], >, 0);
        g_assert_cmpuint(r.count[MKF_OP_PCONFIG][MKF_OUT_GP], >, 0);
        g_assert_cmpuint(r.count[MKF_OP_WRMSR][MKF_OUT_GP], >, 0);
    }

    /* QEMU still answers, also across a reset (the guest then reruns) */
    check_query(qts);
    qtest_qmp_assert_success(qts, "{'execute': 'system_reset'}");
    check_query(qts);
    g_assert_true(qtest_probe_child(qts));
    qtest_quit(qts);
    unlink(img_path);
    unlink(log_path);
}

static void test_fuzz(const void *opaque)
{
    const char *name = opaque;
    bool self = strstr(name, "self") != NULL;
    uint64_t iterations = env_u64("MKTME_FUZZ_ITERATIONS",
                                  DEFAULT_ITERATIONS);
    uint64_t seed = env_u64("MKTME_FUZZ_SEED", DEFAULT_SEED);

    if (strstr(name, "random")) {
        seed = (uint64_t)g_random_int() << 32 | g_random_int();
    }
    /* smp: MTTCG with the guest on the first of four vCPUs */
    fuzz_run(self, strstr(name, "smp4") != NULL, seed, iterations);
}

int main(int argc, char **argv)
{
    static const char *const tests[] = {
        "activated/fixed-seed", "activated/random-seed",
        "self-activated/fixed-seed", "self-activated/random-seed",
        "smp4/activated/fixed-seed", "smp4/self-activated/random-seed",
    };

    g_test_init(&argc, &argv, NULL);
    if (!qtest_has_accel("tcg")) {
        g_test_skip("TCG is not available");
        return g_test_run();
    }
    for (int i = 0; i < G_N_ELEMENTS(tests); i++) {
        g_autofree char *path = g_strdup_printf("/mktme-fuzz/tcg/%s",
                                                tests[i]);

        qtest_add_data_func(path, tests[i], test_fuzz);
    }
    return g_test_run();
}
