/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * libFuzzer target for the TME-MK AES-XTS line engine (mktme-xts*.c).
 *
 * Input: [flags] [count] [data key 32] [tweak key 32] [pa 8] [tweak 16]
 * [data...]; short inputs are padded with zeros.
 *   flags bit 0: AES-XTS-256 (else 128)
 *   flags bit 1: unit mode (mktme_xts_*_unit, arbitrary tweak, count =
 *                0..32 blocks); else line mode (count = 0..8 lines at pa)
 *   flags bit 2: tweak key := data key (OpenSSL refuses such keys)
 *   flags bit 3: line mode up to a whole page (0..64 lines): reaches the
 *                batched paths (nettle: 16 lines, AES-NI/VAES tweaks: 32
 *                lines, VAES: 8 ZMMs of 4 lines)
 *
 * Checks, for every implementation available on this CPU (and AUTO):
 * the key object is created iff the implementation is available; all
 * implementations produce identical ciphertext; decryption round-trips;
 * in-place operation matches out-of-place; count 0 writes nothing; each
 * line equals a one-unit encryption with the line's tweak; and, unless
 * both keys are equal, OpenSSL's EVP AES-XTS agrees per line (the oracle).
 * Buffers are allocated to the exact size so ASan sees any overrun.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include "mktme-xts.h"

#define MAX_LINES  8
#define PAGE_LINES 64
#define MAX_BLOCKS 32

static const char *ctx_what = "";
static MktmeXtsAlg ctx_alg;
static MktmeXtsImpl ctx_impl;

static void __attribute__((noreturn)) violation(int line, const char *what)
{
    fprintf(stderr, "\nfuzz-xts: CHECK FAILED (fuzz-xts.c:%d): %s\n"
            "  %s, alg %s, impl %s\n", line, what, ctx_what,
            ctx_alg == MKTME_XTS_AES_256 ? "AES-XTS-256" : "AES-XTS-128",
            mktme_xts_impl_name(ctx_impl));
    abort();
}

#define CHECK(cond)                                                     \
    do {                                                                \
        if (__builtin_expect(!(cond), 0)) {                             \
            violation(__LINE__, #cond);                                 \
        }                                                               \
    } while (0)

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);

    if (!p) {
        abort();
    }
    return p;
}

static void le128(uint8_t t[16], uint64_t v)
{
    int i;

    memset(t, 0, 16);
    for (i = 0; i < 8; i++) {
        t[i] = v >> (8 * i);
    }
}

/* OpenSSL AES-XTS of one data unit; keys must differ. */
static void ossl_xts(EVP_CIPHER_CTX *c, MktmeXtsAlg alg, const uint8_t *dk,
                     const uint8_t *tk, const uint8_t tweak[16], bool enc,
                     uint8_t *dst, const uint8_t *src, size_t len)
{
    size_t klen = mktme_xts_key_len(alg);
    uint8_t key[64];
    int outl = 0, finl = 0;

    memcpy(key, dk, klen);
    memcpy(key + klen, tk, klen);
    CHECK(EVP_CipherInit_ex(c, alg == MKTME_XTS_AES_256 ? EVP_aes_256_xts() :
                            EVP_aes_128_xts(), NULL, key, tweak, enc) == 1);
    CHECK(EVP_CipherUpdate(c, dst, &outl, src, (int)len) == 1);
    CHECK(EVP_CipherFinal_ex(c, dst + outl, &finl) == 1);
    CHECK((size_t)(outl + finl) == len);
}

static MktmeXtsKey *new_key(MktmeXtsAlg alg, MktmeXtsImpl impl,
                            const uint8_t *dk, const uint8_t *tk)
{
    MktmeXtsKey *k = mktme_xts_key_new(alg, impl, dk, tk);

    ctx_impl = impl;
    CHECK((k != NULL) == mktme_xts_impl_available(impl));
    if (k) {
        CHECK(mktme_xts_key_alg(k) == alg);
        CHECK(impl == MKTME_XTS_IMPL_AUTO ?
              mktme_xts_key_impl(k) != MKTME_XTS_IMPL_AUTO :
              mktme_xts_key_impl(k) == impl);
    }
    return k;
}

/* Line mode: @n lines at @pa. */
static void fuzz_lines(EVP_CIPHER_CTX *c, MktmeXtsAlg alg, const uint8_t *dk,
                       const uint8_t *tk, bool oracle, uint64_t pa,
                       const uint8_t *src, size_t n)
{
    size_t len = n * MKTME_LINE_SIZE, i;
    uint8_t *ref = xmalloc(len), *out = xmalloc(len), *buf = xmalloc(len);
    uint8_t *line = xmalloc(MKTME_LINE_SIZE), tweak[16];
    MktmeXtsImpl impl;
    MktmeXtsKey *k;

    /* The reference: the portable (nettle) implementation */
    ctx_what = "lines: portable reference";
    k = new_key(alg, MKTME_XTS_IMPL_PORTABLE, dk, tk);
    mktme_xts_encrypt_lines(k, pa, ref, src, n);
    mktme_xts_key_free(k);

    /* The oracle: OpenSSL, line by line */
    ctx_what = "lines: OpenSSL oracle";
    for (i = 0; oracle && i < n; i++) {
        le128(tweak, pa + i * MKTME_LINE_SIZE);
        ossl_xts(c, alg, dk, tk, tweak, true, line, src + i * 64, 64);
        CHECK(memcmp(line, ref + i * 64, 64) == 0);
        ossl_xts(c, alg, dk, tk, tweak, false, line, ref + i * 64, 64);
        CHECK(memcmp(line, src + i * 64, 64) == 0);
    }

    for (impl = MKTME_XTS_IMPL_AUTO; impl < MKTME_XTS_IMPL__MAX; impl++) {
        k = new_key(alg, impl, dk, tk);
        if (!k) {
            continue;
        }
        ctx_what = "lines: encrypt matches reference";
        memset(out, 0xcc, len);
        mktme_xts_encrypt_lines(k, pa, out, src, n);
        CHECK(memcmp(out, ref, len) == 0);

        ctx_what = "lines: decrypt round-trips";
        memset(buf, 0x33, len);
        mktme_xts_decrypt_lines(k, pa, buf, ref, n);
        CHECK(memcmp(buf, src, len) == 0);

        ctx_what = "lines: in place";
        memcpy(buf, src, len);
        mktme_xts_encrypt_lines(k, pa, buf, buf, n);
        CHECK(memcmp(buf, ref, len) == 0);
        mktme_xts_decrypt_lines(k, pa, buf, buf, n);
        CHECK(memcmp(buf, src, len) == 0);

        ctx_what = "lines: each line = one unit with the line's tweak";
        for (i = 0; i < n; i++) {
            le128(tweak, pa + i * MKTME_LINE_SIZE);
            mktme_xts_encrypt_unit(k, tweak, line, src + i * 64, 64);
            CHECK(memcmp(line, ref + i * 64, 64) == 0);
            mktme_xts_decrypt_unit(k, tweak, line, ref + i * 64, 64);
            CHECK(memcmp(line, src + i * 64, 64) == 0);
        }

        ctx_what = "lines: single-line calls match the batch";
        for (i = 0; i < n; i++) {
            mktme_xts_encrypt_lines(k, pa + i * 64, line, src + i * 64, 1);
            CHECK(memcmp(line, ref + i * 64, 64) == 0);
        }

        ctx_what = "lines: zero lines write nothing";
        memset(line, 0x5a, MKTME_LINE_SIZE);
        mktme_xts_encrypt_lines(k, pa, line, src, 0);
        mktme_xts_decrypt_lines(k, pa, line, src, 0);
        for (i = 0; i < MKTME_LINE_SIZE; i++) {
            CHECK(line[i] == 0x5a);
        }
        mktme_xts_key_free(k);
    }
    free(ref);
    free(out);
    free(buf);
    free(line);
}

/* Unit mode: @len bytes (multiple of 16) with an arbitrary tweak. */
static void fuzz_unit(EVP_CIPHER_CTX *c, MktmeXtsAlg alg, const uint8_t *dk,
                      const uint8_t *tk, bool oracle, const uint8_t tweak[16],
                      const uint8_t *src, size_t len)
{
    uint8_t *ref = xmalloc(len), *out = xmalloc(len), *buf = xmalloc(len);
    uint8_t zero[16];
    MktmeXtsImpl impl;
    MktmeXtsKey *k;
    size_t i;

    ctx_what = "unit: portable reference";
    k = new_key(alg, MKTME_XTS_IMPL_PORTABLE, dk, tk);
    memset(ref, 0x77, len);
    mktme_xts_encrypt_unit(k, tweak, ref, src, len);
    mktme_xts_key_free(k);

    if (oracle && len) {
        ctx_what = "unit: OpenSSL oracle";
        ossl_xts(c, alg, dk, tk, tweak, true, out, src, len);
        CHECK(memcmp(out, ref, len) == 0);
    }

    for (impl = MKTME_XTS_IMPL_AUTO; impl < MKTME_XTS_IMPL__MAX; impl++) {
        k = new_key(alg, impl, dk, tk);
        if (!k) {
            continue;
        }
        ctx_what = "unit: encrypt matches reference";
        memset(out, 0x77, len);
        mktme_xts_encrypt_unit(k, tweak, out, src, len);
        CHECK(memcmp(out, ref, len) == 0);

        ctx_what = "unit: decrypt round-trips";
        memset(buf, 0x77, len);
        mktme_xts_decrypt_unit(k, tweak, buf, ref, len);
        CHECK(memcmp(buf, src, len) == 0);

        ctx_what = "unit: zero length writes nothing";
        memset(zero, 0x77, sizeof(zero));
        mktme_xts_encrypt_unit(k, tweak, zero, src, 0);
        mktme_xts_decrypt_unit(k, tweak, zero, src, 0);
        for (i = 0; i < sizeof(zero); i++) {
            CHECK(zero[i] == 0x77);
        }

        ctx_what = "unit: in place";
        memcpy(buf, src, len);
        mktme_xts_encrypt_unit(k, tweak, buf, buf, len);
        CHECK(memcmp(buf, ref, len) == 0);
        mktme_xts_decrypt_unit(k, tweak, buf, buf, len);
        CHECK(memcmp(buf, src, len) == 0);

        /* The wipe that key_free performs clears the whole object */
        ctx_what = "key wipe";
        mktme_xts_key_wipe(k);
        for (i = 0; i < mktme_xts_key_sizeof(); i++) {
            CHECK(((const uint8_t *)k)[i] == 0);
        }
        mktme_xts_key_free(k);
    }
    free(ref);
    free(out);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static EVP_CIPHER_CTX *ossl;
    uint8_t hdr[2 + 32 + 32 + 8 + 16], dk[32], tk[32], tweak[16];
    size_t hlen = size < sizeof(hdr) ? size : sizeof(hdr), n, len, avail;
    MktmeXtsAlg alg;
    uint64_t pa = 0;
    uint8_t *src;
    bool oracle;
    int i;

    if (!ossl) {
        ossl = EVP_CIPHER_CTX_new();
        if (!ossl) {
            abort();
        }
    }
    memset(hdr, 0, sizeof(hdr));
    if (hlen) {
        memcpy(hdr, data, hlen);
    }
    alg = (hdr[0] & 1) ? MKTME_XTS_AES_256 : MKTME_XTS_AES_128;
    memcpy(dk, hdr + 2, 32);
    memcpy(tk, (hdr[0] & 4) ? hdr + 2 : hdr + 34, 32);
    for (i = 0; i < 8; i++) {
        pa |= (uint64_t)hdr[66 + i] << (8 * i);
    }
    pa &= ~(uint64_t)(MKTME_LINE_SIZE - 1);
    memcpy(tweak, hdr + 74, 16);
    /* OpenSSL rejects AES-XTS keys whose two halves are equal */
    oracle = memcmp(dk, tk, mktme_xts_key_len(alg)) != 0;

    if (hdr[0] & 2) {
        len = (hdr[1] % (MAX_BLOCKS + 1)) * 16;
        n = 0;
    } else {
        n = hdr[1] % ((hdr[0] & 8) ? PAGE_LINES + 1 : MAX_LINES + 1);
        len = n * MKTME_LINE_SIZE;
    }
    src = xmalloc(len);
    avail = size - hlen < len ? size - hlen : len;
    if (avail) {
        memcpy(src, data + hlen, avail);
    }
    memset(src + avail, 0, len - avail);

    ctx_alg = alg;
    ctx_what = "invalid algorithm or implementation";
    CHECK(!mktme_xts_key_new((MktmeXtsAlg)(MKTME_XTS_AES_256 + 1 + hdr[1]),
                             MKTME_XTS_IMPL_PORTABLE, dk, tk));
    CHECK(!mktme_xts_key_new(alg, MKTME_XTS_IMPL__MAX, dk, tk));
    CHECK(!mktme_xts_impl_available(MKTME_XTS_IMPL__MAX));

    if (hdr[0] & 2) {
        fuzz_unit(ossl, alg, dk, tk, oracle, tweak, src, len);
    } else {
        fuzz_lines(ossl, alg, dk, tk, oracle, pa, src, n);
    }
    free(src);
    return 0;
}
