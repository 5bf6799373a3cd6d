/*
 * Benchmark of the TME-MK AES-XTS line engine against OpenSSL EVP
 * aes-xts (per 64-byte unit and per 4 KiB unit).  BENCH_QUICK=1: short run.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/evp.h>

#include "mktme-xts.h"

#define BUF_SIZE (16u << 20)
#define PAGE 4096
#define BASE_PA 0x100000000ULL

typedef struct BenchCtx {
    MktmeXtsKey *key;
    MktmeXtsKey *key2;      /* recrypt: decrypt with this one */
    EVP_CIPHER_CTX *ossl;
    size_t unit;            /* OpenSSL unit size */
    bool enc;
} BenchCtx;

static uint8_t *src, *dst;
static int runs = 5;
static double run_secs = 0.2;

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void pass_engine(BenchCtx *c)
{
    size_t off;

    for (off = 0; off < BUF_SIZE; off += PAGE) {
        if (c->enc) {
            mktme_xts_encrypt_lines(c->key, BASE_PA + off, dst + off,
                                    src + off, PAGE / MKTME_LINE_SIZE);
        } else {
            mktme_xts_decrypt_lines(c->key, BASE_PA + off, dst + off,
                                    src + off, PAGE / MKTME_LINE_SIZE);
        }
    }
}

/* recrypt, fused: mktme_xts_recrypt_lines() page by page */
static void pass_recrypt(BenchCtx *c)
{
    for (size_t off = 0; off < BUF_SIZE; off += PAGE) {
        mktme_xts_recrypt_lines(c->key, c->key2, BASE_PA + off, dst + off,
                                src + off, PAGE / MKTME_LINE_SIZE);
    }
}

/* The same as two passes per page: encrypt, then decrypt in place */
static void pass_recrypt2(BenchCtx *c)
{
    for (size_t off = 0; off < BUF_SIZE; off += PAGE) {
        mktme_xts_encrypt_lines(c->key, BASE_PA + off, dst + off, src + off,
                                PAGE / MKTME_LINE_SIZE);
        mktme_xts_decrypt_lines(c->key2, BASE_PA + off, dst + off, dst + off,
                                PAGE / MKTME_LINE_SIZE);
    }
}

static void pass_ossl(BenchCtx *c)
{
    uint8_t iv[16] = { 0 };
    uint64_t pa;
    size_t off;
    int outl, i;

    for (off = 0; off < BUF_SIZE; off += c->unit) {
        pa = BASE_PA + off;
        for (i = 0; i < 8; i++) {
            iv[i] = pa >> (8 * i);
        }
        if (c->enc) {
            EVP_EncryptInit_ex(c->ossl, NULL, NULL, NULL, iv);
            EVP_EncryptUpdate(c->ossl, dst + off, &outl, src + off, c->unit);
        } else {
            EVP_DecryptInit_ex(c->ossl, NULL, NULL, NULL, iv);
            EVP_DecryptUpdate(c->ossl, dst + off, &outl, src + off, c->unit);
        }
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* One run of >= run_secs: MB/s (1 MB = 10^6 bytes). */
static double one_run(void (*pass)(BenchCtx *), BenchCtx *c)
{
    double t0 = now(), t;
    int n = 0;

    do {
        pass(c);
        n++;
        t = now() - t0;
    } while (t < run_secs);
    return (double)n * BUF_SIZE / t / 1e6;
}

static double median(double *r, int n)
{
    qsort(r, n, sizeof(r[0]), cmp_double);
    return r[n / 2];
}

static BenchCtx engine_ctx(MktmeXtsAlg alg, MktmeXtsImpl impl, bool enc,
                           const uint8_t *k1, const uint8_t *k2)
{
    BenchCtx c = { .enc = enc };

    c.key = mktme_xts_key_new(alg, impl, k1, k2);
    return c;
}

static BenchCtx ossl_ctx(MktmeXtsAlg alg, size_t unit, bool enc,
                         const uint8_t *k1, const uint8_t *k2)
{
    const EVP_CIPHER *cipher = alg == MKTME_XTS_AES_128 ? EVP_aes_128_xts()
                                                       : EVP_aes_256_xts();
    size_t kl = mktme_xts_key_len(alg);
    BenchCtx c = { .unit = unit, .enc = enc };
    uint8_t key[64];

    memcpy(key, k1, kl);
    memcpy(key + kl, k2, kl);
    c.ossl = EVP_CIPHER_CTX_new();
    if (!EVP_CipherInit_ex(c.ossl, cipher, NULL, key, NULL, enc)) {
        fprintf(stderr, "OpenSSL init failed\n");
        exit(1);
    }
    memset(key, 0, sizeof(key));
    return c;
}

static void ctx_free(BenchCtx *c)
{
    mktme_xts_key_free(c->key);
    mktme_xts_key_free(c->key2);
    EVP_CIPHER_CTX_free(c->ossl);
}

/*
 * Engine (4 KiB pages) vs OpenSSL per-64B and per-4K, passes interleaved
 * so that load changes on the host hit all three alike.  Prints medians of
 * MB/s; returns the medians of the per-run ratios in r64/r4k.
 */
static void compare(MktmeXtsAlg alg, bool enc, const uint8_t *k1,
                    const uint8_t *k2, double *r64, double *r4k)
{
    BenchCtx c[3] = {
        engine_ctx(alg, MKTME_XTS_IMPL_AUTO, enc, k1, k2),
        ossl_ctx(alg, 64, enc, k1, k2),
        ossl_ctx(alg, PAGE, enc, k1, k2),
    };
    double v[3][16], ra[16], rb[16];
    int i, j;

    for (j = 0; j < 3; j++) {
        (j ? pass_ossl : pass_engine)(&c[j]);     /* warm up */
    }
    for (i = 0; i < runs; i++) {
        double t[3] = { 0 }, t0;
        int n[3] = { 0 };
        bool more = true;

        /* alternate single passes until each has run >= run_secs */
        while (more) {
            more = false;
            for (j = 0; j < 3; j++) {
                if (t[j] < run_secs) {
                    t0 = now();
                    (j ? pass_ossl : pass_engine)(&c[j]);
                    t[j] += now() - t0;
                    n[j]++;
                    more = true;
                }
            }
        }
        for (j = 0; j < 3; j++) {
            v[j][i] = (double)n[j] * BUF_SIZE / t[j] / 1e6;
        }
        ra[i] = v[0][i] / v[1][i];
        rb[i] = v[0][i] / v[2][i];
    }
    printf("%s %s: engine-auto %9.1f  openssl-per-64B %9.1f  "
           "openssl-per-4K %9.1f\n", alg == MKTME_XTS_AES_128 ? "aes-128"
           : "aes-256", enc ? "enc" : "dec", median(v[0], runs),
           median(v[1], runs), median(v[2], runs));
    *r64 = median(ra, runs);
    *r4k = median(rb, runs);
    for (j = 0; j < 3; j++) {
        ctx_free(&c[j]);
    }
}

static double bench_engine(MktmeXtsAlg alg, MktmeXtsImpl impl, bool enc,
                           const uint8_t *k1, const uint8_t *k2)
{
    BenchCtx c = engine_ctx(alg, impl, enc, k1, k2);
    double r[16];
    int i;

    pass_engine(&c);
    for (i = 0; i < runs; i++) {
        r[i] = one_run(pass_engine, &c);
    }
    ctx_free(&c);
    return median(r, runs);
}

/*
 * One key's page as another reads it (AES-128 both, on path @impl): the
 * fused recrypt vs encrypt + decrypt, interleaved, after a warm-up of
 * each; medians of MB/s of the data moved.
 */
static void bench_recrypt(MktmeXtsImpl impl, const uint8_t *k1,
                          const uint8_t *k2)
{
    BenchCtx c;
    double f[16], t[16], r[16];
    int i;

    if (!mktme_xts_impl_available(impl)) {
        return;
    }
    c = engine_ctx(MKTME_XTS_AES_128, impl, true, k1, k2);
    c.key2 = mktme_xts_key_new(MKTME_XTS_AES_128, impl, k2, k1);
    if (!c.key || !c.key2) {
        fprintf(stderr, "bench-xts: no %s key\n", mktme_xts_impl_name(impl));
        exit(1);
    }
    pass_recrypt(&c);
    pass_recrypt2(&c);
    for (i = 0; i < runs; i++) {
        f[i] = one_run(pass_recrypt, &c);
        t[i] = one_run(pass_recrypt2, &c);
        r[i] = f[i] / t[i];
    }
    printf("info recrypt aes-128 %s (encrypt with one key, decrypt with "
           "another): one call %.1f MB/s, two passes %.1f MB/s, "
           "one/two %.2f\n", mktme_xts_impl_name(impl), median(f, runs),
           median(t, runs), median(r, runs));
    ctx_free(&c);
}

int main(void)
{
    static const MktmeXtsImpl impls[] = {
        MKTME_XTS_IMPL_PORTABLE, MKTME_XTS_IMPL_AESNI, MKTME_XTS_IMPL_VAES,
        MKTME_XTS_IMPL_VAES256,
    };
    uint8_t k1[32], k2[32];
    double e64, e4k, d64, d4k, x64, x4k;
    MktmeXtsKey *key;
    size_t i;
    int a;

    if (getenv("BENCH_QUICK")) {
        runs = 3;
        run_secs = 0.05;
    }
    src = malloc(BUF_SIZE);
    dst = malloc(BUF_SIZE);
    for (i = 0; i < BUF_SIZE; i++) {
        src[i] = i * 131 + (i >> 12);
    }
    for (i = 0; i < 32; i++) {
        k1[i] = i * 7 + 1;
        k2[i] = i * 13 + 5;
    }
    key = mktme_xts_key_new(MKTME_XTS_AES_128, MKTME_XTS_IMPL_AUTO, k1, k2);
    printf("bench-xts: 16 MiB of 4 KiB pages, median of %d runs x %.2f s, "
           "MB/s (10^6 B/s); auto = %s\n", runs, run_secs,
           mktme_xts_impl_name(mktme_xts_key_impl(key)));
    mktme_xts_key_free(key);

    for (a = MKTME_XTS_AES_128; a <= MKTME_XTS_AES_256; a++) {
        const char *an = a == MKTME_XTS_AES_128 ? "aes-128" : "aes-256";

        for (i = 0; i < sizeof(impls) / sizeof(impls[0]); i++) {
            if (!mktme_xts_impl_available(impls[i])) {
                printf("%s engine %-9s unavailable\n", an,
                       mktme_xts_impl_name(impls[i]));
                continue;
            }
            printf("%s engine %-9s enc %9.1f  dec %9.1f\n", an,
                   mktme_xts_impl_name(impls[i]),
                   bench_engine(a, impls[i], true, k1, k2),
                   bench_engine(a, impls[i], false, k1, k2));
        }
    }
    for (i = 0; i < sizeof(impls) / sizeof(impls[0]); i++) {
        bench_recrypt(impls[i], k1, k2);
    }
    compare(MKTME_XTS_AES_128, true, k1, k2, &e64, &e4k);
    compare(MKTME_XTS_AES_128, false, k1, k2, &d64, &d4k);
    compare(MKTME_XTS_AES_256, true, k1, k2, &x64, &x4k);
    printf("info aes-128 decrypt: page-vs-openssl-64B %.2f  "
           "page-vs-openssl-4K %.2f\n", d64, d4k);
    printf("info aes-256 encrypt: page-vs-openssl-64B %.2f  "
           "page-vs-openssl-4K %.2f\n", x64, x4k);
    printf("ratio xts-page-vs-openssl-64B %.2f\n", e64);
    printf("ratio xts-page-vs-openssl-4K %.2f\n", e4k);
    free(src);
    free(dst);
    return 0;
}
