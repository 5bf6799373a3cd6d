/*
 * TME-MK AES-XTS line engine: x86-64 VAES on 256-bit vectors (AVX2 hosts
 * with VAES and without AVX-512, e.g. AMD Zen 3 and Zen 4's 256-bit
 * units, Intel Alder Lake clients): half a line (two blocks) per YMM,
 * eight YMMs (four lines) in flight.  Selected at run time like the
 * AES-NI path; the key schedule is that path's (mktme-xts-aesni.c).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdlib.h>
#include <string.h>

#include "mktme-xts.h"
#include "mktme-xts-x86.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define V256_TARGET __attribute__((target("aes,sse4.1,avx,avx2,vaes")))
#define V256_INLINE __attribute__((always_inline)) V256_TARGET

/*
 * Round keys are broadcast from the key object where they are used,
 * never copied to the stack, so that key_free's wipe covers them.
 */
#define RK256(r) _mm256_broadcastsi128_si256( \
                     _mm_load_si128((const __m128i *)rk[r]))

/* Each 128-bit lane times alpha in GF(2^128), IEEE 1619 convention */
static inline V256_INLINE __m256i mul_alpha2(__m256i t)
{
    __m256i m = _mm256_srai_epi32(t, 31);

    m = _mm256_and_si256(_mm256_shuffle_epi32(m, _MM_SHUFFLE(0, 1, 0, 3)),
                         _mm256_set_epi32(0, 1, 0, 0x87, 0, 1, 0, 0x87));
    return _mm256_xor_si256(_mm256_add_epi64(t, t), m);
}

/* Encrypt (enc) or decrypt n YMMs (2n blocks) in parallel */
static inline V256_INLINE void aes256_n(__m256i *b, int n, RoundKeys rk,
                                        unsigned nr, bool enc)
{
    unsigned r;
    int j;

#pragma GCC unroll 8
    for (j = 0; j < n; j++) {
        b[j] = _mm256_xor_si256(b[j], RK256(0));
    }
    if (enc) {
        for (r = 1; r < nr; r++) {
            __m256i k = RK256(r);
#pragma GCC unroll 8
            for (j = 0; j < n; j++) {
                b[j] = _mm256_aesenc_epi128(b[j], k);
            }
        }
#pragma GCC unroll 8
        for (j = 0; j < n; j++) {
            b[j] = _mm256_aesenclast_epi128(b[j], RK256(nr));
        }
    } else {
        for (r = 1; r < nr; r++) {
            __m256i k = RK256(r);
#pragma GCC unroll 8
            for (j = 0; j < n; j++) {
                b[j] = _mm256_aesdec_epi128(b[j], k);
            }
        }
#pragma GCC unroll 8
        for (j = 0; j < n; j++) {
            b[j] = _mm256_aesdeclast_epi128(b[j], RK256(nr));
        }
    }
}

/* XTS on n consecutive half-lines (n YMMs) with their tweaks tw[0..n-1] */
static inline V256_INLINE void xts256_n(uint8_t *dst, const uint8_t *src,
                                        const __m256i *tw, int n,
                                        RoundKeys rk, unsigned nr, bool enc)
{
    __m256i b[8];
    int j;

#pragma GCC unroll 8
    for (j = 0; j < n; j++) {
        b[j] = _mm256_xor_si256(
            _mm256_loadu_si256((const __m256i *)(src + 32 * j)), tw[j]);
    }
    aes256_n(b, n, rk, nr, enc);
#pragma GCC unroll 8
    for (j = 0; j < n; j++) {
        _mm256_storeu_si256((__m256i *)(dst + 32 * j),
                            _mm256_xor_si256(b[j], tw[j]));
    }
}

/*
 * a holds T_0 of two lines (one per lane): store line 0's [T_0, T_1],
 * [T_2, T_3] to tw[0..1] and line 1's to tw[2..3].
 */
static inline V256_INLINE void line_tweaks2(__m256i *tw, __m256i a)
{
    __m256i b = mul_alpha2(a), c = mul_alpha2(b), d = mul_alpha2(c);

    tw[0] = _mm256_permute2x128_si256(a, b, 0x20);
    tw[1] = _mm256_permute2x128_si256(c, d, 0x20);
    tw[2] = _mm256_permute2x128_si256(a, b, 0x31);
    tw[3] = _mm256_permute2x128_si256(c, d, 0x31);
}

static inline V256_INLINE __m256i pa_x2(uint64_t pa)
{
    return _mm256_set_epi64x(0, pa + MKTME_LINE_SIZE, 0, pa);
}

/*
 * T_0 of @n lines (at most TWEAK_LINES) from @pa on, with tweak key @tk:
 * line l's four tweaks in tw[2 * l] and tw[2 * l + 1].
 */
static inline V256_INLINE void tweaks256(__m256i *tw, RoundKeys tk,
                                         unsigned nr, uint64_t pa, size_t n)
{
    size_t np = (n + 1) / 2, p;

    /* T_0 for 2 lines per YMM, 8 YMMs at a time (a tail: extras) */
    for (p = 0; p < np; p += 8) {
        __m256i b[8];
        int j;

        for (j = 0; j < 8; j++) {
            b[j] = pa_x2(pa + (p + j) * 2 * MKTME_LINE_SIZE);
        }
        if (np - p >= 8) {
            aes256_n(b, 8, tk, nr, true);
        } else {
            for (j = 0; j < (int)(np - p); j++) {
                aes256_n(&b[j], 1, tk, nr, true);
            }
        }
        for (j = 0; j < 8 && p + j < np; j++) {
            line_tweaks2(&tw[(p + j) * 4], b[j]);
        }
    }
}

V256_TARGET
void mktme_xts_vaes256_lines(const MktmeXtsSched *s, bool enc, uint64_t pa,
                             uint8_t *dst, const uint8_t *src, size_t nlines)
{
    RoundKeys rk = enc ? s->enc : s->dec;
    __m256i tw[TWEAK_LINES * 2] NO_AUTO_INIT;
    unsigned nr = s->rounds;

    while (nlines) {
        size_t n = nlines < TWEAK_LINES ? nlines : TWEAK_LINES, k;

        tweaks256(tw, s->twk, nr, pa, n);
        /* 4 lines (8 YMMs) at a time, then a line at a time */
        for (k = 0; k + 4 <= n; k += 4) {
            xts256_n(dst + k * 64, src + k * 64, &tw[k * 2], 8, rk, nr, enc);
        }
        for (; k < n; k++) {
            xts256_n(dst + k * 64, src + k * 64, &tw[k * 2], 2, rk, nr, enc);
        }
        pa += n * MKTME_LINE_SIZE;
        src += n * MKTME_LINE_SIZE;
        dst += n * MKTME_LINE_SIZE;
        nlines -= n;
    }
}

/*
 * n half-lines: XTS-encrypt with @a (tweaks ta), then XTS-decrypt with
 * @b (tweaks tb), in registers; each byte of @dst is stored once.
 */
static inline V256_INLINE void recrypt256_n(uint8_t *dst, uint8_t *copy,
                                            const uint8_t *src,
                                            const __m256i *ta,
                                            const __m256i *tb, int n,
                                            RoundKeys ra, unsigned nra,
                                            RoundKeys rb, unsigned nrb)
{
    __m256i b[8];
    int j;

#pragma GCC unroll 8
    for (j = 0; j < n; j++) {
        b[j] = _mm256_xor_si256(
            _mm256_loadu_si256((const __m256i *)(src + 32 * j)), ta[j]);
    }
    aes256_n(b, n, ra, nra, true);
#pragma GCC unroll 8
    for (j = 0; j < n; j++) {
        b[j] = _mm256_xor_si256(b[j], _mm256_xor_si256(ta[j], tb[j]));
    }
    aes256_n(b, n, rb, nrb, false);
#pragma GCC unroll 8
    for (j = 0; j < n; j++) {
        b[j] = _mm256_xor_si256(b[j], tb[j]);
        _mm256_storeu_si256((__m256i *)(dst + 32 * j), b[j]);
    }
    if (copy) {
#pragma GCC unroll 8
        for (j = 0; j < n; j++) {
            _mm256_stream_si256((__m256i *)(copy + 32 * j), b[j]);
        }
    }
}

V256_TARGET
void mktme_xts_vaes256_recrypt(const MktmeXtsSched *a, const MktmeXtsSched *b,
                               uint64_t pa, uint8_t *dst, uint8_t *copy,
                               const uint8_t *src, size_t nlines)
{
    __m256i ta[TWEAK_LINES * 2] NO_AUTO_INIT, tb[TWEAK_LINES * 2] NO_AUTO_INIT;

    while (nlines) {
        size_t n = nlines < TWEAK_LINES ? nlines : TWEAK_LINES, k;

        tweaks256(ta, a->twk, a->rounds, pa, n);
        tweaks256(tb, b->twk, b->rounds, pa, n);
        for (k = 0; k + 4 <= n; k += 4) {
            recrypt256_n(dst + k * 64, copy ? copy + k * 64 : NULL,
                         src + k * 64, &ta[k * 2], &tb[k * 2], 8,
                         a->enc, a->rounds, b->dec, b->rounds);
        }
        for (; k < n; k++) {
            recrypt256_n(dst + k * 64, copy ? copy + k * 64 : NULL,
                         src + k * 64, &ta[k * 2], &tb[k * 2], 2,
                         a->enc, a->rounds, b->dec, b->rounds);
        }
        pa += n * MKTME_LINE_SIZE;
        src += n * MKTME_LINE_SIZE;
        dst += n * MKTME_LINE_SIZE;
        copy = copy ? copy + n * MKTME_LINE_SIZE : NULL;
        nlines -= n;
    }
    if (copy) {
        _mm_sfence();   /* the streamed copy before any later store */
    }
}

V256_TARGET
void mktme_xts_vaes256_unit(const MktmeXtsSched *s, bool enc,
                            const uint8_t tweak[16], uint8_t *dst,
                            const uint8_t *src, size_t len)
{
    RoundKeys rk = enc ? s->enc : s->dec, tk = s->twk;
    __m256i tw;
    unsigned nr = s->rounds;
    size_t nb = len / 16, k;

    /* both lanes T_0, then the high one times alpha: lanes T_0, T_1 */
    tw = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)tweak));
    aes256_n(&tw, 1, tk, nr, true);
    tw = _mm256_blend_epi32(tw, mul_alpha2(tw), 0xf0);
    for (k = 0; k + 2 <= nb; k += 2) {
        xts256_n(dst + k * 16, src + k * 16, &tw, 1, rk, nr, enc);
        tw = mul_alpha2(mul_alpha2(tw));
    }
    if (k < nb) {
        /* one block left: the low lane's tweak, in a whole YMM */
        uint8_t in[32] = { 0 }, out[32];

        memcpy(in, src + k * 16, 16);
        xts256_n(out, in, &tw, 1, rk, nr, enc);
        memcpy(dst + k * 16, out, 16);
        memset(out, 0, sizeof(out));
        memset(in, 0, sizeof(in));
        __asm__ volatile("" : : "r"(in), "r"(out) : "memory");
    }
}

#endif
