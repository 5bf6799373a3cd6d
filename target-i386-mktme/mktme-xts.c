/*
 * TME-MK AES-XTS line engine: API, portable path (nettle) and run-time
 * dispatch to the x86-64 AES-NI / VAES paths (mktme-xts-aesni.c,
 * mktme-xts-vaes256.c).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__)
#include <emmintrin.h>    /* SSE2: non-temporal stores */
#endif
#include <nettle/aes.h>
#include <nettle/xts.h>

#include "mktme-xts.h"
#include "mktme-xts-x86.h"

typedef union MktmeAesCtx {
    struct aes128_ctx a128;
    struct aes256_ctx a256;
} MktmeAesCtx;

struct MktmeXtsKey {
    MktmeXtsAlg alg;
    MktmeXtsImpl impl;
    union {
        struct {
            MktmeAesCtx enc, dec, twk;
        } nettle;
        MktmeXtsSched sched;
    } u;
};

static void aes128_enc_fn(const void *ctx, size_t len, uint8_t *dst,
                          const uint8_t *src)
{
    aes128_encrypt(ctx, len, dst, src);
}

static void aes128_dec_fn(const void *ctx, size_t len, uint8_t *dst,
                          const uint8_t *src)
{
    aes128_decrypt(ctx, len, dst, src);
}

static void aes256_enc_fn(const void *ctx, size_t len, uint8_t *dst,
                          const uint8_t *src)
{
    aes256_encrypt(ctx, len, dst, src);
}

static void aes256_dec_fn(const void *ctx, size_t len, uint8_t *dst,
                          const uint8_t *src)
{
    aes256_decrypt(ctx, len, dst, src);
}

size_t mktme_xts_key_len(MktmeXtsAlg alg)
{
    return alg == MKTME_XTS_AES_256 ? 32 : 16;
}

bool mktme_xts_impl_available(MktmeXtsImpl impl)
{
    switch (impl) {
    case MKTME_XTS_IMPL_AUTO:
    case MKTME_XTS_IMPL_PORTABLE:
        return true;
    case MKTME_XTS_IMPL_AESNI:
        return mktme_xts_x86_has_aesni();
    case MKTME_XTS_IMPL_VAES:
        return mktme_xts_x86_has_vaes();
    case MKTME_XTS_IMPL_VAES256:
        return mktme_xts_x86_has_vaes256();
    default:
        return false;
    }
}

const char *mktme_xts_impl_name(MktmeXtsImpl impl)
{
    switch (impl) {
    case MKTME_XTS_IMPL_AUTO:
        return "auto";
    case MKTME_XTS_IMPL_PORTABLE:
        return "portable";
    case MKTME_XTS_IMPL_AESNI:
        return "aes-ni";
    case MKTME_XTS_IMPL_VAES:
        return "vaes";
    case MKTME_XTS_IMPL_VAES256:
        return "vaes-avx2";
    default:
        return "?";
    }
}

MktmeXtsKey *mktme_xts_key_new(MktmeXtsAlg alg, MktmeXtsImpl impl,
                               const uint8_t *data_key,
                               const uint8_t *tweak_key)
{
    MktmeXtsKey *key;

    if (alg != MKTME_XTS_AES_128 && alg != MKTME_XTS_AES_256) {
        return NULL;
    }
    if (impl == MKTME_XTS_IMPL_AUTO) {
        if (mktme_xts_impl_available(MKTME_XTS_IMPL_VAES)) {
            impl = MKTME_XTS_IMPL_VAES;
        } else if (mktme_xts_impl_available(MKTME_XTS_IMPL_VAES256)) {
            impl = MKTME_XTS_IMPL_VAES256;
        } else if (mktme_xts_impl_available(MKTME_XTS_IMPL_AESNI)) {
            impl = MKTME_XTS_IMPL_AESNI;
        } else {
            impl = MKTME_XTS_IMPL_PORTABLE;
        }
    }
    if (!mktme_xts_impl_available(impl)) {
        return NULL;
    }
    key = calloc(1, sizeof(*key));
    if (!key) {
        return NULL;
    }
    key->alg = alg;
    key->impl = impl;
#if defined(__x86_64__)
    if (impl != MKTME_XTS_IMPL_PORTABLE) {
        mktme_xts_aesni_setkey(&key->u.sched, mktme_xts_key_len(alg),
                               data_key, tweak_key);
        return key;
    }
#endif
    if (alg == MKTME_XTS_AES_128) {
        aes128_set_encrypt_key(&key->u.nettle.enc.a128, data_key);
        aes128_set_decrypt_key(&key->u.nettle.dec.a128, data_key);
        aes128_set_encrypt_key(&key->u.nettle.twk.a128, tweak_key);
    } else {
        aes256_set_encrypt_key(&key->u.nettle.enc.a256, data_key);
        aes256_set_decrypt_key(&key->u.nettle.dec.a256, data_key);
        aes256_set_encrypt_key(&key->u.nettle.twk.a256, tweak_key);
    }
    return key;
}

size_t mktme_xts_key_sizeof(void)
{
    return sizeof(MktmeXtsKey);
}

static void wipe(void *buf, size_t len)
{
    /* volatile: the stores must not be elided before free() or return */
    volatile uint8_t *p = buf;
    size_t i;

    for (i = 0; i < len; i++) {
        p[i] = 0;
    }
}

void mktme_xts_key_wipe(MktmeXtsKey *key)
{
    wipe(key, sizeof(*key));
}

void mktme_xts_key_free(MktmeXtsKey *key)
{
    if (key) {
        mktme_xts_key_wipe(key);
        free(key);
    }
}

MktmeXtsImpl mktme_xts_key_impl(const MktmeXtsKey *key)
{
    return key->impl;
}

MktmeXtsAlg mktme_xts_key_alg(const MktmeXtsKey *key)
{
    return key->alg;
}

/* Portable path: nettle's generic XTS, one message per data unit. */
static void portable_unit(const MktmeXtsKey *key, bool enc,
                          const uint8_t tweak[16], uint8_t *dst,
                          const uint8_t *src, size_t len)
{
    bool a128 = key->alg == MKTME_XTS_AES_128;
    nettle_cipher_func *encf = a128 ? aes128_enc_fn : aes256_enc_fn;

    if (enc) {
        xts_encrypt_message(&key->u.nettle.enc, &key->u.nettle.twk, encf,
                            tweak, len, dst, src);
    } else {
        xts_decrypt_message(&key->u.nettle.dec, &key->u.nettle.twk,
                            a128 ? aes128_dec_fn : aes256_dec_fn, encf,
                            tweak, len, dst, src);
    }
}

/* T * alpha in GF(2^128), IEEE 1619 little-endian convention */
static void mul_alpha(uint8_t t[16])
{
    uint8_t carry = 0, c;
    int i;

    for (i = 0; i < 16; i++) {
        c = t[i] >> 7;
        t[i] = (t[i] << 1) | carry;
        carry = c;
    }
    t[0] ^= carry ? 0x87 : 0;
}

#define PORTABLE_BATCH 16   /* lines per nettle call */

/*
 * Portable lines: nettle AES on whole batches (nettle picks AES-NI /
 * ARMv8-CE itself where available) plus our own tweak sequence.
 */
static void portable_lines(const MktmeXtsKey *key, bool enc, uint64_t pa,
                           uint8_t *dst, const uint8_t *src, size_t nlines)
{
    bool a128 = key->alg == MKTME_XTS_AES_128;
    nettle_cipher_func *twkf = a128 ? aes128_enc_fn : aes256_enc_fn;
    nettle_cipher_func *f = enc ? twkf : a128 ? aes128_dec_fn : aes256_dec_fn;
    const void *ctx = enc ? &key->u.nettle.enc : &key->u.nettle.dec;
    uint8_t tw[PORTABLE_BATCH * MKTME_LINE_SIZE];
    uint8_t buf[PORTABLE_BATCH * MKTME_LINE_SIZE];

    while (nlines) {
        size_t n = nlines < PORTABLE_BATCH ? nlines : PORTABLE_BATCH;
        size_t len = n * MKTME_LINE_SIZE, i;
        int b, j;

        memset(buf, 0, n * 16);
        for (i = 0; i < n; i++) {
            for (b = 0; b < 8; b++) {
                buf[i * 16 + b] = (pa + i * MKTME_LINE_SIZE) >> (8 * b);
            }
        }
        twkf(&key->u.nettle.twk, n * 16, buf, buf);
        for (i = 0; i < n; i++) {
            uint8_t *t = &tw[i * MKTME_LINE_SIZE];

            memcpy(t, &buf[i * 16], 16);
            for (j = 1; j < 4; j++) {
                memcpy(t + 16 * j, t + 16 * (j - 1), 16);
                mul_alpha(t + 16 * j);
            }
        }
        for (i = 0; i < len; i++) {
            buf[i] = src[i] ^ tw[i];
        }
        f(ctx, len, buf, buf);
        for (i = 0; i < len; i++) {
            dst[i] = buf[i] ^ tw[i];
        }
        pa += len;
        src += len;
        dst += len;
        nlines -= n;
    }
}

static void crypt_lines(const MktmeXtsKey *key, bool enc, uint64_t pa,
                        uint8_t *dst, const uint8_t *src, size_t nlines)
{
#if defined(__x86_64__)
    if (key->impl == MKTME_XTS_IMPL_VAES) {
        mktme_xts_vaes_lines(&key->u.sched, enc, pa, dst, src, nlines);
        return;
    } else if (key->impl == MKTME_XTS_IMPL_VAES256) {
        mktme_xts_vaes256_lines(&key->u.sched, enc, pa, dst, src, nlines);
        return;
    } else if (key->impl == MKTME_XTS_IMPL_AESNI) {
        mktme_xts_aesni_lines(&key->u.sched, enc, pa, dst, src, nlines);
        return;
    }
#endif
    portable_lines(key, enc, pa, dst, src, nlines);
}

void mktme_xts_encrypt_lines(const MktmeXtsKey *key, uint64_t pa,
                             uint8_t *dst, const uint8_t *src, size_t nlines)
{
    crypt_lines(key, true, pa, dst, src, nlines);
}

void mktme_xts_decrypt_lines(const MktmeXtsKey *key, uint64_t pa,
                             uint8_t *dst, const uint8_t *src, size_t nlines)
{
    crypt_lines(key, false, pa, dst, src, nlines);
}

#define RECRYPT_BATCH TWEAK_LINES    /* lines per buffered step */

static bool is_vaes(const MktmeXtsKey *key)
{
    return key->impl == MKTME_XTS_IMPL_VAES ||
           key->impl == MKTME_XTS_IMPL_VAES256;
}

/* @len bytes from @src to 64-byte aligned @dst, bypassing the caches */
static void copy_stream(uint8_t *dst, const uint8_t *src, size_t len)
{
#if defined(__x86_64__)
    for (size_t i = 0; i < len; i += 16) {
        _mm_stream_si128((__m128i *)(dst + i),
                         _mm_loadu_si128((const __m128i *)(src + i)));
    }
    _mm_sfence();
#else
    memcpy(dst, src, len);
#endif
}

void mktme_xts_recrypt_lines_copy(const MktmeXtsKey *enc,
                                  const MktmeXtsKey *dec, uint64_t pa,
                                  uint8_t *dst, uint8_t *copy,
                                  const uint8_t *src, size_t nlines)
{
    /* Only ever E_enc(src), the DRAM image: not secret, not wiped */
    uint8_t tmp[RECRYPT_BATCH * MKTME_LINE_SIZE] NO_AUTO_INIT;

    assert(!((uintptr_t)copy & (MKTME_LINE_SIZE - 1)));
    if (!enc || !dec) {
        if (enc || dec) {
            crypt_lines(enc ? enc : dec, enc != NULL, pa, dst, src, nlines);
        } else if (dst != src) {
            memcpy(dst, src, nlines * MKTME_LINE_SIZE);
        }
        if (copy) {
            copy_stream(copy, dst, nlines * MKTME_LINE_SIZE);
        }
        return;
    }
#if defined(__x86_64__)
    /*
     * Both schedules are MktmeXtsSched; AVX-512 VAES implies VAES on
     * YMMs.  The fused kernels stream @copy from their registers.
     */
    if (is_vaes(enc) && is_vaes(dec)) {
        if (enc->impl == MKTME_XTS_IMPL_VAES &&
            dec->impl == MKTME_XTS_IMPL_VAES) {
            mktme_xts_vaes_recrypt(&enc->u.sched, &dec->u.sched, pa, dst,
                                   copy, src, nlines);
        } else {
            mktme_xts_vaes256_recrypt(&enc->u.sched, &dec->u.sched, pa, dst,
                                      copy, src, nlines);
        }
        return;
    }
#endif
    while (nlines) {
        size_t n = nlines < RECRYPT_BATCH ? nlines : RECRYPT_BATCH;
        size_t len = n * MKTME_LINE_SIZE;

        crypt_lines(enc, true, pa, tmp, src, n);
        crypt_lines(dec, false, pa, dst, tmp, n);
        if (copy) {
            copy_stream(copy, dst, len);
            copy += len;
        }
        pa += len;
        src += len;
        dst += len;
        nlines -= n;
    }
}

void mktme_xts_recrypt_lines(const MktmeXtsKey *enc, const MktmeXtsKey *dec,
                             uint64_t pa, uint8_t *dst, const uint8_t *src,
                             size_t nlines)
{
    mktme_xts_recrypt_lines_copy(enc, dec, pa, dst, NULL, src, nlines);
}

static void crypt_unit(const MktmeXtsKey *key, bool enc,
                       const uint8_t tweak[16], uint8_t *dst,
                       const uint8_t *src, size_t len)
{
    len &= ~(size_t)15;
    if (!len) {
        return;
    }
#if defined(__x86_64__)
    if (key->impl == MKTME_XTS_IMPL_VAES) {
        mktme_xts_vaes_unit(&key->u.sched, enc, tweak, dst, src, len);
        return;
    } else if (key->impl == MKTME_XTS_IMPL_VAES256) {
        mktme_xts_vaes256_unit(&key->u.sched, enc, tweak, dst, src, len);
        return;
    } else if (key->impl == MKTME_XTS_IMPL_AESNI) {
        mktme_xts_aesni_unit(&key->u.sched, enc, tweak, dst, src, len);
        return;
    }
#endif
    portable_unit(key, enc, tweak, dst, src, len);
}

void mktme_xts_encrypt_unit(const MktmeXtsKey *key, const uint8_t tweak[16],
                            uint8_t *dst, const uint8_t *src, size_t len)
{
    crypt_unit(key, true, tweak, dst, src, len);
}

void mktme_xts_decrypt_unit(const MktmeXtsKey *key, const uint8_t tweak[16],
                            uint8_t *dst, const uint8_t *src, size_t len)
{
    crypt_unit(key, false, tweak, dst, src, len);
}
