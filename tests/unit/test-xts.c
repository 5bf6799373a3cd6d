/*
 * Unit tests for the TME-MK AES-XTS line engine: IEEE 1619 vectors,
 * OpenSSL EVP aes-{128,256}-xts as oracle, cross-implementation agreement,
 * key wiping.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <glib.h>
#include <string.h>
#include <openssl/evp.h>

#include "mktme-xts.h"

static const MktmeXtsImpl impls[] = {
    MKTME_XTS_IMPL_PORTABLE, MKTME_XTS_IMPL_AESNI, MKTME_XTS_IMPL_VAES,
    MKTME_XTS_IMPL_VAES256,
};
static const MktmeXtsAlg algs[] = { MKTME_XTS_AES_128, MKTME_XTS_AES_256 };

/* OpenSSL reference: one XTS data unit; key = k1 || k2. */
static void ossl_xts(MktmeXtsAlg alg, const uint8_t *k1, const uint8_t *k2,
                     bool enc, const uint8_t iv[16], uint8_t *out,
                     const uint8_t *in, size_t len)
{
    size_t kl = mktme_xts_key_len(alg);
    const EVP_CIPHER *c = alg == MKTME_XTS_AES_128 ? EVP_aes_128_xts()
                                                  : EVP_aes_256_xts();
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    uint8_t key[64];
    int outl = 0;

    memcpy(key, k1, kl);
    memcpy(key + kl, k2, kl);
    g_assert_nonnull(ctx);
    g_assert_cmpint(EVP_CipherInit_ex(ctx, c, NULL, key, iv, enc), ==, 1);
    g_assert_cmpint(EVP_CipherUpdate(ctx, out, &outl, in, len), ==, 1);
    g_assert_cmpint(outl, ==, len);
    EVP_CIPHER_CTX_free(ctx);
}

static void pa_iv(uint8_t iv[16], uint64_t pa)
{
    int i;

    memset(iv, 0, 16);
    for (i = 0; i < 8; i++) {
        iv[i] = pa >> (8 * i);
    }
}

static void rand_bytes(uint8_t *p, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        p[i] = g_test_rand_int();
    }
}

static uint8_t *hex(const char *s, size_t *len)
{
    size_t n = strlen(s) / 2, i;
    uint8_t *p = g_malloc(n ? n : 1);

    for (i = 0; i < n; i++) {
        p[i] = g_ascii_xdigit_value(s[2 * i]) << 4 |
               g_ascii_xdigit_value(s[2 * i + 1]);
    }
    *len = n;
    return p;
}

typedef struct XtsVector {
    int num;
    MktmeXtsAlg alg;
    const char *k1, *k2;
    uint64_t dsn;       /* data unit sequence number = tweak (LE) */
    const char *pt;     /* NULL: 00 01 .. ff twice (512 bytes) */
    const char *ct;
} XtsVector;

/* IEEE Std 1619-2007 Annex B */
static const XtsVector vectors[] = {
    { 1, MKTME_XTS_AES_128,
      "00000000000000000000000000000000", "00000000000000000000000000000000",
      0, "0000000000000000000000000000000000000000000000000000000000000000",
      "917cf69ebd68b2ec9b9fe9a3eadda692cd43d2f59598ed858c02c2652fbf922e" },
    { 2, MKTME_XTS_AES_128,
      "11111111111111111111111111111111", "22222222222222222222222222222222",
      0x3333333333ULL,
      "4444444444444444444444444444444444444444444444444444444444444444",
      "c454185e6a16936e39334038acef838bfb186fff7480adc4289382ecd6d394f0" },
    { 3, MKTME_XTS_AES_128,
      "fffefdfcfbfaf9f8f7f6f5f4f3f2f1f0", "22222222222222222222222222222222",
      0x3333333333ULL,
      "4444444444444444444444444444444444444444444444444444444444444444",
      "af85336b597afc1a900b2eb21ec949d292df4c047e0b21532186a5971a227a89" },
    { 4, MKTME_XTS_AES_128,
      "27182818284590452353602874713526", "31415926535897932384626433832795",
      0, NULL,
      "27a7479befa1d476489f308cd4cfa6e2a96e4bbe3208ff25287dd3819616e89c"
      "c78cf7f5e543445f8333d8fa7f56000005279fa5d8b5e4ad40e736ddb4d35412"
      "328063fd2aab53e5ea1e0a9f332500a5df9487d07a5c92cc512c8866c7e860ce"
      "93fdf166a24912b422976146ae20ce846bb7dc9ba94a767aaef20c0d61ad0265"
      "5ea92dc4c4e41a8952c651d33174be51a10c421110e6d81588ede82103a252d8"
      "a750e8768defffed9122810aaeb99f9172af82b604dc4b8e51bcb08235a6f434"
      "1332e4ca60482a4ba1a03b3e65008fc5da76b70bf1690db4eae29c5f1badd03c"
      "5ccf2a55d705ddcd86d449511ceb7ec30bf12b1fa35b913f9f747a8afd1b130e"
      "94bff94effd01a91735ca1726acd0b197c4e5b03393697e126826fb6bbde8ecc"
      "1e08298516e2c9ed03ff3c1b7860f6de76d4cecd94c8119855ef5297ca67e9f3"
      "e7ff72b1e99785ca0a7e7720c5b36dc6d72cac9574c8cbbc2f801e23e56fd344"
      "b07f22154beba0f08ce8891e643ed995c94d9a69c9f1b5f499027a78572aeebd"
      "74d20cc39881c213ee770b1010e4bea718846977ae119f7a023ab58cca0ad752"
      "afe656bb3c17256a9f6e9bf19fdd5a38fc82bbe872c5539edb609ef4f79c203e"
      "bb140f2e583cb2ad15b4aa5b655016a8449277dbd477ef2c8d6c017db738b18d"
      "eb4a427d1923ce3ff262735779a418f20a282df920147beabe421ee5319d0568" },
    { 10, MKTME_XTS_AES_256,
      "2718281828459045235360287471352662497757247093699959574966967627",
      "3141592653589793238462643383279502884197169399375105820974944592",
      0xff, NULL,
      "1c3b3a102f770386e4836c99e370cf9bea00803f5e482357a4ae12d414a3e63b"
      "5d31e276f8fe4a8d66b317f9ac683f44680a86ac35adfc3345befecb4bb188fd"
      "5776926c49a3095eb108fd1098baec70aaa66999a72a82f27d848b21d4a741b0"
      "c5cd4d5fff9dac89aeba122961d03a757123e9870f8acf1000020887891429ca"
      "2a3e7a7d7df7b10355165c8b9a6d0a7de8b062c4500dc4cd120c0f7418dae3d0"
      "b5781c34803fa75421c790dfe1de1834f280d7667b327f6c8cd7557e12ac3a0f"
      "93ec05c52e0493ef31a12d3d9260f79a289d6a379bc70c50841473d1a8cc81ec"
      "583e9645e07b8d9670655ba5bbcfecc6dc3966380ad8fecb17b6ba02469a020a"
      "84e18e8f84252070c13e9f1f289be54fbc481457778f616015e1327a02b140f1"
      "505eb309326d68378f8374595c849d84f4c333ec4423885143cb47bd71c5edae"
      "9be69a2ffeceb1bec9de244fbe15992b11b77c040f12bd8f6a975a44a0f90c29"
      "a9abc3d4d893927284c58754cce294529f8614dcd2aba991925fedc4ae74ffac"
      "6e333b93eb4aff0479da9a410e4450e0dd7ae4c6e2910900575da401fc07059f"
      "645e8b7e9bfdef33943054ff84011493c27b3429eaedb4ed5376441a77ed4385"
      "1ad77f16f541dfd269d50d6a5f14fb0aab1cbb4c1550be97f7ab4066193c4caa"
      "773dad38014bd2092fa755c824bb5e54c4f36ffda9fcea70b9c6e693e148c151" },
};

static void test_ieee1619(void)
{
    size_t v, i, len, n;

    for (v = 0; v < G_N_ELEMENTS(vectors); v++) {
        const XtsVector *tv = &vectors[v];
        uint8_t *k1 = hex(tv->k1, &n), *k2 = hex(tv->k2, &n);
        uint8_t *ct = hex(tv->ct, &len), *pt, *buf = g_malloc(len);
        uint8_t tweak[16];

        g_assert_cmpuint(n, ==, mktme_xts_key_len(tv->alg));
        if (tv->pt) {
            pt = hex(tv->pt, &n);
            g_assert_cmpuint(n, ==, len);
        } else {
            g_assert_cmpuint(len, ==, 512);
            pt = g_malloc(len);
            for (i = 0; i < len; i++) {
                pt[i] = i;
            }
        }
        pa_iv(tweak, tv->dsn);
        /* catch typos in the copied vectors (OpenSSL rejects k1 == k2) */
        if (memcmp(k1, k2, mktme_xts_key_len(tv->alg))) {
            ossl_xts(tv->alg, k1, k2, true, tweak, buf, pt, len);
            g_assert_cmpmem(buf, len, ct, len);
        }
        for (i = 0; i < G_N_ELEMENTS(impls); i++) {
            MktmeXtsKey *key = mktme_xts_key_new(tv->alg, impls[i], k1, k2);

            if (!key) {
                continue;
            }
            if (g_test_verbose()) {
                g_test_message("vector %d impl %s", tv->num,
                               mktme_xts_impl_name(impls[i]));
            }
            mktme_xts_encrypt_unit(key, tweak, buf, pt, len);
            g_assert_cmpmem(buf, len, ct, len);
            mktme_xts_decrypt_unit(key, tweak, buf, buf, len);
            g_assert_cmpmem(buf, len, pt, len);
            memcpy(buf, pt, len);
            mktme_xts_encrypt_unit(key, tweak, buf, buf, len);
            g_assert_cmpmem(buf, len, ct, len);
            mktme_xts_key_free(key);
        }
        g_free(k1);
        g_free(k2);
        g_free(pt);
        g_free(ct);
        g_free(buf);
    }
}

#define MAX_LINES 128
#define BUF_SIZE (MAX_LINES * MKTME_LINE_SIZE)

static void test_random_oracle(void)
{
    uint8_t *pt = g_malloc(BUF_SIZE), *ct = g_malloc(BUF_SIZE);
    uint8_t *ref = g_malloc(BUF_SIZE), *tmp = g_malloc(BUF_SIZE);
    int iters = g_test_thorough() ? 2000 : 200;
    size_t i, a, l;
    int it;

    for (i = 0; i < G_N_ELEMENTS(impls); i++) {
        if (!mktme_xts_impl_available(impls[i])) {
            g_test_message("%s unavailable", mktme_xts_impl_name(impls[i]));
            continue;
        }
        for (a = 0; a < G_N_ELEMENTS(algs); a++) {
            for (it = 0; it < iters; it++) {
                uint8_t k1[32], k2[32], iv[16];
                size_t kl = mktme_xts_key_len(algs[a]);
                size_t nl = it % 4 == 0 ? 64 : 1 + g_test_rand_int_range(0,
                                                                 MAX_LINES);
                uint64_t pa = ((uint64_t)g_test_rand_int() << 32 |
                               (uint32_t)g_test_rand_int()) &
                              ((1ULL << 52) - 64);
                MktmeXtsKey *key;

                rand_bytes(k1, kl);
                rand_bytes(k2, kl);
                rand_bytes(pt, nl * 64);
                key = mktme_xts_key_new(algs[a], impls[i], k1, k2);
                g_assert_nonnull(key);
                g_assert_cmpint(mktme_xts_key_impl(key), ==, impls[i]);
                for (l = 0; l < nl; l++) {
                    pa_iv(iv, pa + 64 * l);
                    ossl_xts(algs[a], k1, k2, true, iv, ref + 64 * l,
                             pt + 64 * l, 64);
                }
                mktme_xts_encrypt_lines(key, pa, ct, pt, nl);
                g_assert_cmpmem(ct, nl * 64, ref, nl * 64);
                mktme_xts_decrypt_lines(key, pa, tmp, ct, nl);
                g_assert_cmpmem(tmp, nl * 64, pt, nl * 64);
                /* in place, both directions */
                mktme_xts_encrypt_lines(key, pa, tmp, tmp, nl);
                g_assert_cmpmem(tmp, nl * 64, ref, nl * 64);
                mktme_xts_decrypt_lines(key, pa, tmp, tmp, nl);
                g_assert_cmpmem(tmp, nl * 64, pt, nl * 64);
                /* the OpenSSL decrypt of our ciphertext, one line */
                l = g_test_rand_int_range(0, nl);
                pa_iv(iv, pa + 64 * l);
                ossl_xts(algs[a], k1, k2, false, iv, tmp, ct + 64 * l, 64);
                g_assert_cmpmem(tmp, 64, pt + 64 * l, 64);
                mktme_xts_key_free(key);
            }
        }
    }
    g_free(pt);
    g_free(ct);
    g_free(ref);
    g_free(tmp);
}

/*
 * recrypt: OpenSSL's decrypt with key B of OpenSSL's encrypt with key A,
 * per line; keys of either algorithm, either one absent, the two on the
 * same path (fused where both have a VAES path) or on different ones
 * (the buffered step), in place and not, buffers aligned and not,
 * against line counts from 0 to MAX_LINES across the tweak batches, with
 * and without a streamed copy; the bytes around the destination and the
 * copy stay untouched.
 */
static void test_recrypt_oracle(void)
{
    uint8_t *ptbuf = g_malloc(BUF_SIZE + 64), *ref = g_malloc(BUF_SIZE);
    uint8_t *out = g_malloc(BUF_SIZE + 3 * 64);
    /* 64-byte aligned, as the non-temporal stores of the copy want */
    uint8_t *cbuf = aligned_alloc(64, BUF_SIZE + 2 * 64);
    int iters = g_test_thorough() ? 1000 : 120;

    for (size_t ia = 0; ia < G_N_ELEMENTS(impls); ia++) {
        for (size_t ib = 0; ib < G_N_ELEMENTS(impls); ib++) {
            if (!mktme_xts_impl_available(impls[ia]) ||
                !mktme_xts_impl_available(impls[ib])) {
                continue;
            }
            for (int it = 0; it < iters; it++) {
                MktmeXtsAlg aa = algs[it % 2], ab = algs[it / 2 % 2];
                uint8_t ka1[32], ka2[32], kb1[32], kb2[32], iv[16];
                size_t nl = it % 11 == 4 ? 0 : it % 5 == 0 ? 64 :
                            1 + g_test_rand_int_range(0, MAX_LINES);
                /* misaligned by up to 63 bytes every fourth time */
                uint8_t *d = out + 64 + (it % 4 == 1 ? 1 + it % 63 : 0);
                uint8_t *pt = ptbuf + (it % 4 == 2 ? 1 + it % 63 : 0);
                uint64_t pa = ((uint64_t)g_test_rand_int() << 32 |
                               (uint32_t)g_test_rand_int()) &
                              ((1ULL << 52) - 64);
                /* it % 7: 0 no A, 1 no B, 2 neither */
                bool use_a = it % 7 != 0 && it % 7 != 2;
                bool use_b = it % 7 != 1 && it % 7 != 2;
                bool inplace = it % 3 == 0;
                /* with a copy (recrypt_lines_copy) half the time */
                bool with_copy = it / 4 % 2 == 1;
                MktmeXtsKey *a = NULL, *b = NULL;

                rand_bytes(ka1, sizeof(ka1));
                rand_bytes(ka2, sizeof(ka2));
                rand_bytes(kb1, sizeof(kb1));
                rand_bytes(kb2, sizeof(kb2));
                rand_bytes(pt, nl * 64);
                memcpy(ref, pt, nl * 64);
                for (size_t l = 0; l < nl; l++) {
                    pa_iv(iv, pa + 64 * l);
                    if (use_a) {
                        ossl_xts(aa, ka1, ka2, true, iv, ref + 64 * l,
                                 ref + 64 * l, 64);
                    }
                    if (use_b) {
                        ossl_xts(ab, kb1, kb2, false, iv, ref + 64 * l,
                                 ref + 64 * l, 64);
                    }
                }
                if (use_a) {
                    a = mktme_xts_key_new(aa, impls[ia], ka1, ka2);
                    g_assert_nonnull(a);
                }
                if (use_b) {
                    b = mktme_xts_key_new(ab, impls[ib], kb1, kb2);
                    g_assert_nonnull(b);
                }
                /* guard bytes around dst and the copy: never written */
                memset(out, 0xa5, BUF_SIZE + 3 * 64);
                memset(cbuf, 0x5a, BUF_SIZE + 2 * 64);
                if (inplace) {
                    memcpy(d, pt, nl * 64);
                }
                if (with_copy) {
                    mktme_xts_recrypt_lines_copy(a, b, pa, d, cbuf + 64,
                                                 inplace ? d : pt, nl);
                } else {
                    mktme_xts_recrypt_lines(a, b, pa, d, inplace ? d : pt,
                                            nl);
                }
                g_assert_cmpmem(d, nl * 64, ref, nl * 64);
                if (with_copy) {
                    g_assert_cmpmem(cbuf + 64, nl * 64, ref, nl * 64);
                }
                for (int g = 0; g < 64; g++) {
                    g_assert_cmpint(cbuf[g], ==, 0x5a);
                    g_assert_cmpint(cbuf[64 + nl * 64 + g], ==, 0x5a);
                }
                for (uint8_t *g = out; g < d; g++) {
                    g_assert_cmpint(*g, ==, 0xa5);
                }
                for (int g = 0; g < 64; g++) {
                    g_assert_cmpint(d[nl * 64 + g], ==, 0xa5);
                }
                mktme_xts_key_free(a);
                mktme_xts_key_free(b);
            }
        }
    }
    g_free(ptbuf);
    g_free(ref);
    g_free(out);
    free(cbuf);
}

static void test_impls_agree(void)
{
    uint8_t *pt = g_malloc(BUF_SIZE), *out[G_N_ELEMENTS(impls)];
    size_t i, a, n;
    int it;

    for (i = 0; i < G_N_ELEMENTS(impls); i++) {
        out[i] = g_malloc(BUF_SIZE + 2 * 1024);
    }
    for (a = 0; a < G_N_ELEMENTS(algs); a++) {
        for (it = 0; it < 100; it++) {
            uint8_t k1[32], k2[32], tweak[16];
            size_t nl = 1 + g_test_rand_int_range(0, MAX_LINES);
            size_t ulen = 16 * (1 + g_test_rand_int_range(0, 64));
            uint64_t pa = (uint64_t)g_test_rand_int() << 6;

            rand_bytes(k1, sizeof(k1));
            rand_bytes(k2, sizeof(k2));
            rand_bytes(tweak, sizeof(tweak));
            rand_bytes(pt, BUF_SIZE);
            for (n = 0, i = 0; i < G_N_ELEMENTS(impls); i++) {
                MktmeXtsKey *key = mktme_xts_key_new(algs[a], impls[i],
                                                     k1, k2);
                if (!key) {
                    continue;
                }
                mktme_xts_encrypt_lines(key, pa, out[n], pt, nl);
                mktme_xts_encrypt_unit(key, tweak, out[n] + nl * 64, pt,
                                       ulen);
                mktme_xts_decrypt_unit(key, tweak, out[n] + nl * 64 + ulen,
                                       pt, ulen);
                if (n) {
                    g_assert_cmpmem(out[n], nl * 64 + 2 * ulen,
                                    out[0], nl * 64 + 2 * ulen);
                }
                n++;
                mktme_xts_key_free(key);
            }
            g_assert_cmpuint(n, >=, 1);
        }
    }
    for (i = 0; i < G_N_ELEMENTS(impls); i++) {
        g_free(out[i]);
    }
    g_free(pt);
}

static void test_key_wipe(void)
{
    size_t i, a, j, sz = mktme_xts_key_sizeof();

    for (i = 0; i < G_N_ELEMENTS(impls); i++) {
        for (a = 0; a < G_N_ELEMENTS(algs); a++) {
            size_t kl = mktme_xts_key_len(algs[a]);
            uint8_t k1[32], k2[32];
            MktmeXtsKey *key;
            const uint8_t *p;

            rand_bytes(k1, kl);
            rand_bytes(k2, kl);
            key = mktme_xts_key_new(algs[a], impls[i], k1, k2);
            if (!key) {
                continue;
            }
            p = (const uint8_t *)key;
#if G_BYTE_ORDER == G_LITTLE_ENDIAN
            /* round key 0 is the raw key: the storage really holds it */
            g_assert_nonnull(memmem(p, sz, k1, 16));
            g_assert_nonnull(memmem(p, sz, k2, 16));
#endif
            mktme_xts_key_wipe(key);
            for (j = 0; j < sz; j++) {
                g_assert_cmpuint(p[j], ==, 0);
            }
            mktme_xts_key_free(key);        /* wipes again, then frees */
        }
    }
    mktme_xts_key_free(NULL);
}

static void test_tweak_inputs(void)
{
    size_t i, a;

    for (i = 0; i < G_N_ELEMENTS(impls); i++) {
        for (a = 0; a < G_N_ELEMENTS(algs); a++) {
            uint8_t k1[32], k2[32], pt[128], c0[128], c1[128], c2[128];
            uint64_t pa = 0x123456789000ULL;
            MktmeXtsKey *key, *key2;

            rand_bytes(k1, sizeof(k1));
            rand_bytes(k2, sizeof(k2));
            memset(pt, 0x5a, sizeof(pt));
            key = mktme_xts_key_new(algs[a], impls[i], k1, k2);
            if (!key) {
                continue;
            }
            mktme_xts_encrypt_lines(key, pa, c0, pt, 2);
            /* same plaintext in both lines, different pa: differ */
            g_assert_cmpint(memcmp(c0, c0 + 64, 64), !=, 0);
            mktme_xts_encrypt_lines(key, pa + 64, c1, pt, 1);
            g_assert_cmpmem(c1, 64, c0 + 64, 64);
            mktme_xts_encrypt_lines(key, pa ^ (1ULL << 51), c1, pt, 1);
            g_assert_cmpint(memcmp(c1, c0, 64), !=, 0);
            /* only the tweak key changes: output changes */
            k2[0] ^= 1;
            key2 = mktme_xts_key_new(algs[a], impls[i], k1, k2);
            mktme_xts_encrypt_lines(key2, pa, c2, pt, 2);
            g_assert_cmpint(memcmp(c2, c0, 64), !=, 0);
            g_assert_cmpint(memcmp(c2 + 64, c0 + 64, 64), !=, 0);
            mktme_xts_key_free(key2);
            mktme_xts_key_free(key);
        }
    }
}

static void test_api(void)
{
    uint8_t k[32] = { 1 }, k2[32] = { 2 };
    MktmeXtsKey *key;

    g_assert_cmpuint(mktme_xts_key_len(MKTME_XTS_AES_128), ==, 16);
    g_assert_cmpuint(mktme_xts_key_len(MKTME_XTS_AES_256), ==, 32);
    g_assert_cmpstr(mktme_xts_impl_name(MKTME_XTS_IMPL_PORTABLE), ==,
                    "portable");
    g_assert_cmpstr(mktme_xts_impl_name(MKTME_XTS_IMPL_AESNI), ==, "aes-ni");
    g_assert_cmpstr(mktme_xts_impl_name(MKTME_XTS_IMPL_VAES), ==, "vaes");
    g_assert_cmpstr(mktme_xts_impl_name(MKTME_XTS_IMPL_VAES256), ==,
                    "vaes-avx2");
    g_assert_true(mktme_xts_impl_available(MKTME_XTS_IMPL_PORTABLE));
    g_assert_null(mktme_xts_key_new(MKTME_XTS_AES_128, MKTME_XTS_IMPL__MAX,
                                    k, k2));
    g_assert_null(mktme_xts_key_new((MktmeXtsAlg)7, MKTME_XTS_IMPL_AUTO,
                                    k, k2));
    key = mktme_xts_key_new(MKTME_XTS_AES_256, MKTME_XTS_IMPL_AUTO, k, k2);
    g_assert_nonnull(key);
    g_assert_cmpint(mktme_xts_key_alg(key), ==, MKTME_XTS_AES_256);
    g_assert_cmpint(mktme_xts_key_impl(key), !=, MKTME_XTS_IMPL_AUTO);
    if (mktme_xts_impl_available(MKTME_XTS_IMPL_VAES)) {
        g_assert_cmpint(mktme_xts_key_impl(key), ==, MKTME_XTS_IMPL_VAES);
    } else if (mktme_xts_impl_available(MKTME_XTS_IMPL_VAES256)) {
        g_assert_cmpint(mktme_xts_key_impl(key), ==, MKTME_XTS_IMPL_VAES256);
    }
    g_test_message("auto = %s",
                   mktme_xts_impl_name(mktme_xts_key_impl(key)));
    mktme_xts_key_free(key);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/xts/api", test_api);
    g_test_add_func("/xts/ieee1619", test_ieee1619);
    g_test_add_func("/xts/random-oracle", test_random_oracle);
    g_test_add_func("/xts/impls-agree", test_impls_agree);
    g_test_add_func("/xts/recrypt-oracle", test_recrypt_oracle);
    g_test_add_func("/xts/key-wipe", test_key_wipe);
    g_test_add_func("/xts/tweak-inputs", test_tweak_inputs);
    return g_test_run();
}
