/*
 * TME-MK AES-XTS line engine: encrypts/decrypts 64-byte memory lines with
 * AES-XTS-128/256, tweak = physical address (128-bit little endian).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef MKTME_XTS_H
#define MKTME_XTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum MktmeXtsAlg {
    MKTME_XTS_AES_128,
    MKTME_XTS_AES_256,
} MktmeXtsAlg;

typedef enum MktmeXtsImpl {
    MKTME_XTS_IMPL_AUTO,
    MKTME_XTS_IMPL_PORTABLE,    /* nettle */
    MKTME_XTS_IMPL_AESNI,       /* x86-64 AES-NI, 128-bit */
    MKTME_XTS_IMPL_VAES,        /* x86-64 AVX-512 VAES, one line per ZMM */
    MKTME_XTS_IMPL_VAES256,     /* x86-64 AVX2 VAES, half a line per YMM */
    MKTME_XTS_IMPL__MAX,
} MktmeXtsImpl;

#define MKTME_LINE_SIZE 64

typedef struct MktmeXtsKey MktmeXtsKey;

/* Length of EACH of the two keys (data key, tweak key): 16 or 32. */
size_t mktme_xts_key_len(MktmeXtsAlg alg);

/*
 * Returns NULL if @impl is unavailable on this CPU (or @alg is invalid);
 * AUTO picks the fastest available implementation.
 * The key may be used concurrently from several threads.
 */
MktmeXtsKey *mktme_xts_key_new(MktmeXtsAlg alg, MktmeXtsImpl impl,
                               const uint8_t *data_key,
                               const uint8_t *tweak_key);
/* Zeroes all key material, then frees. NULL is ok. */
void mktme_xts_key_free(MktmeXtsKey *key);
MktmeXtsImpl mktme_xts_key_impl(const MktmeXtsKey *key);
MktmeXtsAlg mktme_xts_key_alg(const MktmeXtsKey *key);

bool mktme_xts_impl_available(MktmeXtsImpl impl);
/* "auto", "portable", "aes-ni", "vaes", "vaes-avx2" */
const char *mktme_xts_impl_name(MktmeXtsImpl impl);

/*
 * @nlines consecutive lines starting at @pa (64-byte aligned); line i uses
 * the tweak pa + 64 * i.  @dst == @src is allowed; otherwise the buffers
 * must not overlap.  nlines == 64 (a 4 KiB page) is the fast batched case.
 */
void mktme_xts_encrypt_lines(const MktmeXtsKey *key, uint64_t pa,
                             uint8_t *dst, const uint8_t *src, size_t nlines);
void mktme_xts_decrypt_lines(const MktmeXtsKey *key, uint64_t pa,
                             uint8_t *dst, const uint8_t *src, size_t nlines);

/*
 * What memory that reads as @src through one KeyID reads as through
 * another: each line encrypted with @enc, then decrypted with @dec, the
 * same tweaks as above (NULL: that step is skipped, a plaintext KeyID).
 * No intermediate byte is ever stored to @dst: each line of @dst is
 * stored once, with its final bytes (in several stores, so a reader
 * meanwhile may see a line part old, part new).  Where both keys have a
 * VAES path the two steps are fused (one pass over the data, in
 * registers); otherwise they go through a small buffer on the stack,
 * which only ever holds E_enc(@src), the DRAM image.  @dst and @src are
 * the same buffer or do not overlap.
 */
void mktme_xts_recrypt_lines(const MktmeXtsKey *enc, const MktmeXtsKey *dec,
                             uint64_t pa, uint8_t *dst, const uint8_t *src,
                             size_t nlines);

/*
 * The same, and the same bytes to @copy as well (64-byte aligned, not
 * overlapping the others; NULL: none).  @copy is written with
 * non-temporal stores where the CPU has them, from the registers of the
 * fused paths, and those stores are complete (SFENCE) on return: a
 * snapshot that is read much later, kept out of the caches.
 */
void mktme_xts_recrypt_lines_copy(const MktmeXtsKey *enc,
                                  const MktmeXtsKey *dec, uint64_t pa,
                                  uint8_t *dst, uint8_t *copy,
                                  const uint8_t *src, size_t nlines);

/*
 * Generic XTS on one data unit of @len bytes (multiple of 16, no ciphertext
 * stealing) with an arbitrary 16-byte tweak.  For tests (IEEE 1619 vectors).
 */
void mktme_xts_encrypt_unit(const MktmeXtsKey *key, const uint8_t tweak[16],
                            uint8_t *dst, const uint8_t *src, size_t len);
void mktme_xts_decrypt_unit(const MktmeXtsKey *key, const uint8_t tweak[16],
                            uint8_t *dst, const uint8_t *src, size_t len);

/*
 * Test hooks: size of the key object, and the wipe that key_free performs
 * before releasing the memory (afterwards the key is unusable).
 */
size_t mktme_xts_key_sizeof(void);
void mktme_xts_key_wipe(MktmeXtsKey *key);

/*
 * Internal: shared between mktme-xts.c, mktme-xts-aesni.c and
 * mktme-xts-vaes256.c.
 * Round keys: enc/twk in encryption order, dec in aesdec order
 * (InvMixColumns applied to the middle ones).  16-byte aligned.
 */
typedef struct MktmeXtsSched {
    uint8_t enc[15][16] __attribute__((aligned(16)));
    uint8_t dec[15][16];
    uint8_t twk[15][16];
    unsigned rounds;            /* 10 or 14 */
} MktmeXtsSched;

bool mktme_xts_x86_has_aesni(void);
bool mktme_xts_x86_has_vaes(void);
bool mktme_xts_x86_has_vaes256(void);
void mktme_xts_aesni_setkey(MktmeXtsSched *s, unsigned keylen,
                            const uint8_t *data_key, const uint8_t *tweak_key);
void mktme_xts_aesni_lines(const MktmeXtsSched *s, bool enc, uint64_t pa,
                           uint8_t *dst, const uint8_t *src, size_t nlines);
void mktme_xts_aesni_unit(const MktmeXtsSched *s, bool enc,
                          const uint8_t tweak[16], uint8_t *dst,
                          const uint8_t *src, size_t len);
void mktme_xts_vaes_lines(const MktmeXtsSched *s, bool enc, uint64_t pa,
                          uint8_t *dst, const uint8_t *src, size_t nlines);
void mktme_xts_vaes_recrypt(const MktmeXtsSched *a, const MktmeXtsSched *b,
                            uint64_t pa, uint8_t *dst, uint8_t *copy,
                            const uint8_t *src, size_t nlines);
void mktme_xts_vaes_unit(const MktmeXtsSched *s, bool enc,
                         const uint8_t tweak[16], uint8_t *dst,
                         const uint8_t *src, size_t len);
void mktme_xts_vaes256_lines(const MktmeXtsSched *s, bool enc, uint64_t pa,
                             uint8_t *dst, const uint8_t *src, size_t nlines);
void mktme_xts_vaes256_recrypt(const MktmeXtsSched *a, const MktmeXtsSched *b,
                               uint64_t pa, uint8_t *dst, uint8_t *copy,
                               const uint8_t *src, size_t nlines);
void mktme_xts_vaes256_unit(const MktmeXtsSched *s, bool enc,
                            const uint8_t tweak[16], uint8_t *dst,
                            const uint8_t *src, size_t len);

#endif /* MKTME_XTS_H */
