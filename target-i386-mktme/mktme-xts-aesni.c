/*
 * TME-MK AES-XTS line engine: x86-64 AES-NI (8 blocks interleaved) and
 * AVX-512 VAES (one 64-byte line per ZMM, 8 lines interleaved) paths.
 * ISA extensions are enabled per function (target attributes), selected at
 * run time; on other hosts only stubs are built.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdlib.h>
#include <string.h>

#include "mktme-xts.h"
#include "mktme-xts-x86.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#include <wmmintrin.h>

#define AESNI_TARGET __attribute__((target("aes,sse4.1")))
#define VAES_TARGET  __attribute__((target("aes,sse4.1,avx512f,vaes")))
#define AESNI_INLINE __attribute__((always_inline)) AESNI_TARGET
#define VAES_INLINE  __attribute__((always_inline)) VAES_TARGET

/* CPUID/XGETBV directly: __builtin_cpu_supports("vaes") needs clang >= 15 */
#define FEAT_AESNI 1
#define FEAT_VAES  2
#define FEAT_VAES256 4

static int cpu_features(void)
{
    static int cached = -1;
    unsigned a, b, c, d, xcr0_lo, xcr0_hi;
    int f = __atomic_load_n(&cached, __ATOMIC_RELAXED);

    if (f >= 0) {
        return f;
    }
    f = 0;
    if (__get_cpuid(1, &a, &b, &c, &d) && (c & bit_AES) && (c & bit_SSE4_1)) {
        f |= FEAT_AESNI;
        if (c & bit_OSXSAVE) {
            __asm__("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
            /* OS saves XMM and YMM (and opmask and all of ZMM) */
            if ((xcr0_lo & 0x06) == 0x06 &&
                __get_cpuid_count(7, 0, &a, &b, &c, &d) &&
                (b & bit_AVX2) && (c & bit_VAES)) {
                f |= FEAT_VAES256;
                if ((xcr0_lo & 0xe6) == 0xe6 && (b & bit_AVX512F)) {
                    f |= FEAT_VAES;
                }
            }
        }
    }
    __atomic_store_n(&cached, f, __ATOMIC_RELAXED);
    return f;
}

bool mktme_xts_x86_has_aesni(void)
{
    return cpu_features() & FEAT_AESNI;
}

bool mktme_xts_x86_has_vaes(void)
{
    return cpu_features() & FEAT_VAES;
}

bool mktme_xts_x86_has_vaes256(void)
{
    return cpu_features() & FEAT_VAES256;
}

/* ---- key schedule ---- */

static inline AESNI_INLINE __m128i xor_shifted(__m128i k)
{
    k = _mm_xor_si128(k, _mm_slli_si128(k, 4));
    k = _mm_xor_si128(k, _mm_slli_si128(k, 4));
    return _mm_xor_si128(k, _mm_slli_si128(k, 4));
}

#define EXP128(i, rcon)                                                     \
    rk[i] = _mm_xor_si128(xor_shifted(rk[i - 1]), _mm_shuffle_epi32(        \
                          _mm_aeskeygenassist_si128(rk[i - 1], rcon), 0xff))

#define EXP256(i, rcon)                                                     \
    rk[i] = _mm_xor_si128(xor_shifted(rk[i - 2]), _mm_shuffle_epi32(        \
                          _mm_aeskeygenassist_si128(rk[i - 1], rcon), 0xff))

#define EXP256B(i)                                                          \
    rk[i] = _mm_xor_si128(xor_shifted(rk[i - 2]), _mm_shuffle_epi32(        \
                          _mm_aeskeygenassist_si128(rk[i - 1], 0), 0xaa))

AESNI_TARGET
static void expand_key(uint8_t out[15][16], unsigned keylen, const uint8_t *k)
{
    __m128i rk[15];
    int i;

    rk[0] = _mm_loadu_si128((const __m128i *)k);
    if (keylen == 16) {
        EXP128(1, 0x01); EXP128(2, 0x02); EXP128(3, 0x04); EXP128(4, 0x08);
        EXP128(5, 0x10); EXP128(6, 0x20); EXP128(7, 0x40); EXP128(8, 0x80);
        EXP128(9, 0x1b); EXP128(10, 0x36);
    } else {
        rk[1] = _mm_loadu_si128((const __m128i *)(k + 16));
        EXP256(2, 0x01); EXP256B(3); EXP256(4, 0x02); EXP256B(5);
        EXP256(6, 0x04); EXP256B(7); EXP256(8, 0x08); EXP256B(9);
        EXP256(10, 0x10); EXP256B(11); EXP256(12, 0x20); EXP256B(13);
        EXP256(14, 0x40);
    }
    for (i = 0; i <= (keylen == 16 ? 10 : 14); i++) {
        _mm_storeu_si128((__m128i *)out[i], rk[i]);
    }
    /* do not leave round keys on the stack; the barrier keeps the memset */
    memset(rk, 0, sizeof(rk));
    __asm__ volatile("" : : "r"(rk) : "memory");
}

AESNI_TARGET
void mktme_xts_aesni_setkey(MktmeXtsSched *s, unsigned keylen,
                            const uint8_t *data_key, const uint8_t *tweak_key)
{
    unsigned i, nr = keylen == 16 ? 10 : 14;

    s->rounds = nr;
    expand_key(s->enc, keylen, data_key);
    expand_key(s->twk, keylen, tweak_key);
    memcpy(s->dec[0], s->enc[nr], 16);
    for (i = 1; i < nr; i++) {
        __m128i k = _mm_loadu_si128((const __m128i *)s->enc[nr - i]);
        _mm_storeu_si128((__m128i *)s->dec[i], _mm_aesimc_si128(k));
    }
    memcpy(s->dec[nr], s->enc[0], 16);
}

/* ---- AES-NI, 128-bit ---- */

/* T * alpha in GF(2^128), IEEE 1619 (little-endian) convention */
static inline AESNI_INLINE __m128i mul_alpha(__m128i t)
{
    __m128i m = _mm_srai_epi32(t, 31);

    m = _mm_and_si128(_mm_shuffle_epi32(m, _MM_SHUFFLE(0, 1, 0, 3)),
                      _mm_set_epi32(0, 1, 0, 0x87));
    return _mm_xor_si128(_mm_add_epi64(t, t), m);
}

/*
 * Round keys are loaded from the key object where they are used, never
 * copied to the stack, so that key_free's wipe covers all key material.
 */
#define RK(r)    _mm_load_si128((const __m128i *)rk[r])
#define RK512(r) _mm512_broadcast_i32x4(RK(r))

/* Encrypt (enc) or decrypt n blocks in parallel; n is a constant. */
static inline AESNI_INLINE void aes_n(__m128i *b, int n, RoundKeys rk,
                                      unsigned nr, bool enc)
{
    unsigned r;
    int j;

#pragma GCC unroll 8
    for (j = 0; j < n; j++) {
        b[j] = _mm_xor_si128(b[j], RK(0));
    }
    if (enc) {
        for (r = 1; r < nr; r++) {
#pragma GCC unroll 8
            for (j = 0; j < n; j++) {
                b[j] = _mm_aesenc_si128(b[j], RK(r));
            }
        }
#pragma GCC unroll 8
        for (j = 0; j < n; j++) {
            b[j] = _mm_aesenclast_si128(b[j], RK(nr));
        }
    } else {
        for (r = 1; r < nr; r++) {
#pragma GCC unroll 8
            for (j = 0; j < n; j++) {
                b[j] = _mm_aesdec_si128(b[j], RK(r));
            }
        }
#pragma GCC unroll 8
        for (j = 0; j < n; j++) {
            b[j] = _mm_aesdeclast_si128(b[j], RK(nr));
        }
    }
}

/* XTS on n consecutive blocks with precomputed tweaks tw[0..n-1]. */
static inline AESNI_INLINE void xts_n(uint8_t *dst, const uint8_t *src,
                                      const __m128i *tw, int n, RoundKeys rk,
                                      unsigned nr, bool enc)
{
    __m128i b[8];
    int j;

#pragma GCC unroll 8
    for (j = 0; j < n; j++) {
        b[j] = _mm_xor_si128(_mm_loadu_si128((const __m128i *)src + j),
                             tw[j]);
    }
    aes_n(b, n, rk, nr, enc);
#pragma GCC unroll 8
    for (j = 0; j < n; j++) {
        _mm_storeu_si128((__m128i *)dst + j, _mm_xor_si128(b[j], tw[j]));
    }
}

AESNI_TARGET
void mktme_xts_aesni_lines(const MktmeXtsSched *s, bool enc, uint64_t pa,
                           uint8_t *dst, const uint8_t *src, size_t nlines)
{
    RoundKeys rk = enc ? s->enc : s->dec, tk = s->twk;
    __m128i tw[TWEAK_LINES * 4] NO_AUTO_INIT;
    unsigned nr = s->rounds;

    while (nlines) {
        size_t n = nlines < TWEAK_LINES ? nlines : TWEAK_LINES;
        size_t i, k;

        /* T_0 of 8 lines at a time; one alone for a single line */
        for (i = 0; i < n; i += 8) {
            __m128i b[8];
            int j;

            for (j = 0; j < 8; j++) {
                b[j] = _mm_set_epi64x(0, pa + (i + j) * MKTME_LINE_SIZE);
            }
            if (n == 1) {
                aes_n(b, 1, tk, nr, true);
            } else {
                aes_n(b, 8, tk, nr, true);
            }
            for (j = 0; j < 8 && i + j < n; j++) {
                __m128i *t = &tw[(i + j) * 4];
                t[0] = b[j];
                t[1] = mul_alpha(t[0]);
                t[2] = mul_alpha(t[1]);
                t[3] = mul_alpha(t[2]);
            }
        }
        for (k = 0; k + 2 <= n; k += 2) {
            xts_n(dst + k * 64, src + k * 64, &tw[k * 4], 8, rk, nr, enc);
        }
        if (k < n) {
            xts_n(dst + k * 64, src + k * 64, &tw[k * 4], 4, rk, nr, enc);
        }
        pa += n * MKTME_LINE_SIZE;
        src += n * MKTME_LINE_SIZE;
        dst += n * MKTME_LINE_SIZE;
        nlines -= n;
    }
}

AESNI_TARGET
void mktme_xts_aesni_unit(const MktmeXtsSched *s, bool enc,
                          const uint8_t tweak[16], uint8_t *dst,
                          const uint8_t *src, size_t len)
{
    RoundKeys rk = enc ? s->enc : s->dec, tk = s->twk;
    __m128i tw[8], t;
    unsigned nr = s->rounds;
    size_t nb = len / 16, k;
    int j;

    t = _mm_loadu_si128((const __m128i *)tweak);
    aes_n(&t, 1, tk, nr, true);
    for (k = 0; k + 8 <= nb; k += 8) {
        for (j = 0; j < 8; j++) {
            tw[j] = t;
            t = mul_alpha(t);
        }
        xts_n(dst + k * 16, src + k * 16, tw, 8, rk, nr, enc);
    }
    for (; k < nb; k++) {
        xts_n(dst + k * 16, src + k * 16, &t, 1, rk, nr, enc);
        t = mul_alpha(t);
    }
}

/* ---- AVX-512 VAES: four blocks (one line) per ZMM ---- */

/*
 * gcc 12's avx512fintrin.h self-initialises "undefined" vectors, which
 * -Winit-self (QEMU's flags) turns into -W[maybe-]uninitialized noise.
 */
#if !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

static inline VAES_INLINE __m512i mul_alpha_x4(__m512i t)
{
    __m512i m = _mm512_srai_epi32(t, 31);

    m = _mm512_and_si512(_mm512_shuffle_epi32(m, _MM_SHUFFLE(0, 1, 0, 3)),
                         _mm512_set4_epi32(0, 1, 0, 0x87));
    return _mm512_xor_si512(_mm512_add_epi64(t, t), m);
}

static inline VAES_INLINE void aes512_n(__m512i *b, int n, RoundKeys rk,
                                        unsigned nr, bool enc)
{
    unsigned r;
    int j;

#pragma GCC unroll 8
    for (j = 0; j < n; j++) {
        b[j] = _mm512_xor_si512(b[j], RK512(0));
    }
    if (enc) {
        for (r = 1; r < nr; r++) {
#pragma GCC unroll 8
            for (j = 0; j < n; j++) {
                b[j] = _mm512_aesenc_epi128(b[j], RK512(r));
            }
        }
#pragma GCC unroll 8
        for (j = 0; j < n; j++) {
            b[j] = _mm512_aesenclast_epi128(b[j], RK512(nr));
        }
    } else {
        for (r = 1; r < nr; r++) {
#pragma GCC unroll 8
            for (j = 0; j < n; j++) {
                b[j] = _mm512_aesdec_epi128(b[j], RK512(r));
            }
        }
#pragma GCC unroll 8
        for (j = 0; j < n; j++) {
            b[j] = _mm512_aesdeclast_epi128(b[j], RK512(nr));
        }
    }
}

/* XTS on n consecutive lines (n ZMMs) with per-line tweak vectors tw[]. */
static inline VAES_INLINE void xts512_n(uint8_t *dst, const uint8_t *src,
                                        const __m512i *tw, int n,
                                        RoundKeys rk, unsigned nr, bool enc)
{
    __m512i b[8];
    int j;

#pragma GCC unroll 8
    for (j = 0; j < n; j++) {
        b[j] = _mm512_xor_si512(_mm512_loadu_si512(src + 64 * j), tw[j]);
    }
    aes512_n(b, n, rk, nr, enc);
#pragma GCC unroll 8
    for (j = 0; j < n; j++) {
        _mm512_storeu_si512(dst + 64 * j, _mm512_xor_si512(b[j], tw[j]));
    }
}

/*
 * b holds T_0 of 4 lines (one per 128-bit lane); store each line's
 * [T_0, T_1, T_2, T_3] to tw[0..3] (4x4 transpose of 128-bit lanes).
 */
static inline VAES_INLINE void line_tweaks(__m512i *tw, __m512i a)
{
    __m512i b = mul_alpha_x4(a), c = mul_alpha_x4(b), d = mul_alpha_x4(c);
    __m512i t0 = _mm512_shuffle_i64x2(a, b, 0x44);
    __m512i t1 = _mm512_shuffle_i64x2(a, b, 0xee);
    __m512i t2 = _mm512_shuffle_i64x2(c, d, 0x44);
    __m512i t3 = _mm512_shuffle_i64x2(c, d, 0xee);

    tw[0] = _mm512_shuffle_i64x2(t0, t2, 0x88);
    tw[1] = _mm512_shuffle_i64x2(t0, t2, 0xdd);
    tw[2] = _mm512_shuffle_i64x2(t1, t3, 0x88);
    tw[3] = _mm512_shuffle_i64x2(t1, t3, 0xdd);
}

static inline VAES_INLINE __m512i pa_x4(uint64_t pa)
{
    return _mm512_set_epi64(0, pa + 192, 0, pa + 128, 0, pa + 64, 0, pa);
}

/*
 * The tweaks of lines [pa, pa + 64 n), n <= TWEAK_LINES: tw[l] holds
 * line l's T_0..T_3 (key schedule @tk); a short tail computes a few extra.
 */
static inline VAES_INLINE void tweaks512(__m512i *tw, RoundKeys tk,
                                         unsigned nr, uint64_t pa, size_t n)
{
    size_t ng = (n + 3) / 4, g;
    __m512i b[8];

    if (ng == 8) {
        for (g = 0; g < 8; g++) {
            b[g] = pa_x4(pa + g * 4 * MKTME_LINE_SIZE);
        }
        aes512_n(b, 8, tk, nr, true);
    } else {
        for (g = 0; g < ng; g++) {
            b[g] = pa_x4(pa + g * 4 * MKTME_LINE_SIZE);
            aes512_n(&b[g], 1, tk, nr, true);
        }
    }
    for (g = 0; g < ng; g++) {
        line_tweaks(&tw[g * 4], b[g]);
    }
}

VAES_TARGET
void mktme_xts_vaes_lines(const MktmeXtsSched *s, bool enc, uint64_t pa,
                          uint8_t *dst, const uint8_t *src, size_t nlines)
{
    RoundKeys rk = enc ? s->enc : s->dec;
    __m512i tw[TWEAK_LINES] NO_AUTO_INIT;
    unsigned nr = s->rounds;

    while (nlines) {
        size_t n = nlines < TWEAK_LINES ? nlines : TWEAK_LINES, k;

        tweaks512(tw, s->twk, nr, pa, n);
        for (k = 0; k + 8 <= n; k += 8) {
            xts512_n(dst + k * 64, src + k * 64, &tw[k], 8, rk, nr, enc);
        }
        for (; k < n; k++) {
            xts512_n(dst + k * 64, src + k * 64, &tw[k], 1, rk, nr, enc);
        }
        pa += n * MKTME_LINE_SIZE;
        src += n * MKTME_LINE_SIZE;
        dst += n * MKTME_LINE_SIZE;
        nlines -= n;
    }
}

/*
 * n lines from key @a's view to key @b's: E_a, then D_b, in registers
 * (the ciphertext between never leaves them); tweak vectors ta[], tb[].
 */
static inline VAES_INLINE void recrypt512_n(uint8_t *dst, uint8_t *copy,
                                            const uint8_t *src,
                                            const __m512i *ta,
                                            const __m512i *tb, int n,
                                            RoundKeys ea, unsigned na,
                                            RoundKeys db, unsigned nb)
{
    __m512i x[8];
    int j;

#pragma GCC unroll 8
    for (j = 0; j < n; j++) {
        x[j] = _mm512_xor_si512(_mm512_loadu_si512(src + 64 * j), ta[j]);
    }
    aes512_n(x, n, ea, na, true);
#pragma GCC unroll 8
    for (j = 0; j < n; j++) {
        x[j] = _mm512_ternarylogic_epi64(x[j], ta[j], tb[j], 0x96);
    }
    aes512_n(x, n, db, nb, false);
#pragma GCC unroll 8
    for (j = 0; j < n; j++) {
        x[j] = _mm512_xor_si512(x[j], tb[j]);
        _mm512_storeu_si512(dst + 64 * j, x[j]);
    }
    if (copy) {
#pragma GCC unroll 8
        for (j = 0; j < n; j++) {
            _mm512_stream_si512((void *)(copy + 64 * j), x[j]);
        }
    }
}

VAES_TARGET
void mktme_xts_vaes_recrypt(const MktmeXtsSched *a, const MktmeXtsSched *b,
                            uint64_t pa, uint8_t *dst, uint8_t *copy,
                            const uint8_t *src, size_t nlines)
{
    __m512i ta[TWEAK_LINES] NO_AUTO_INIT, tb[TWEAK_LINES] NO_AUTO_INIT;

    while (nlines) {
        size_t n = nlines < TWEAK_LINES ? nlines : TWEAK_LINES, k;

        tweaks512(ta, a->twk, a->rounds, pa, n);
        tweaks512(tb, b->twk, b->rounds, pa, n);
        for (k = 0; k + 8 <= n; k += 8) {
            recrypt512_n(dst + k * 64, copy ? copy + k * 64 : NULL,
                         src + k * 64, &ta[k], &tb[k], 8,
                         a->enc, a->rounds, b->dec, b->rounds);
        }
        for (; k < n; k++) {
            recrypt512_n(dst + k * 64, copy ? copy + k * 64 : NULL,
                         src + k * 64, &ta[k], &tb[k], 1,
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

VAES_TARGET
void mktme_xts_vaes_unit(const MktmeXtsSched *s, bool enc,
                         const uint8_t tweak[16], uint8_t *dst,
                         const uint8_t *src, size_t len)
{
    RoundKeys rk = enc ? s->enc : s->dec, tk = s->twk;
    __m512i tw, b;
    unsigned nr = s->rounds;
    size_t nb = len / 16, k;

    /* all four lanes = T_0, then lane j times alpha^j */
    tw = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)tweak));
    aes512_n(&tw, 1, tk, nr, true);
    b = mul_alpha_x4(tw);
    tw = _mm512_mask_mov_epi64(tw, 0x0c, b);
    b = mul_alpha_x4(b);
    tw = _mm512_mask_mov_epi64(tw, 0x30, b);
    tw = _mm512_mask_mov_epi64(tw, 0xc0, mul_alpha_x4(b));
    /* lanes are now T_0..T_3; chunks of 4 blocks, masked tail */
    for (k = 0; k < nb; k += 4) {
        size_t left = nb - k < 4 ? nb - k : 4;
        __mmask8 m = (__mmask8)((1u << (2 * left)) - 1);

        b = _mm512_xor_si512(_mm512_maskz_loadu_epi64(m, src + k * 16), tw);
        aes512_n(&b, 1, rk, nr, enc);
        _mm512_mask_storeu_epi64(dst + k * 16, m, _mm512_xor_si512(b, tw));
        tw = mul_alpha_x4(mul_alpha_x4(mul_alpha_x4(mul_alpha_x4(tw))));
    }
}

#if !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#else /* !__x86_64__: mktme-xts.c never calls the other entry points */

bool mktme_xts_x86_has_aesni(void)
{
    return false;
}

bool mktme_xts_x86_has_vaes(void)
{
    return false;
}

bool mktme_xts_x86_has_vaes256(void)
{
    return false;
}

#endif
