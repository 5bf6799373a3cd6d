/*
 * The TME-MK qtests' independent AES-XTS oracle: OpenSSL, never the
 * engine under test.
 *
 * Copyright (c) 2026 The qemu-mktme authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef MKTME_ORACLE_H
#define MKTME_ORACLE_H

#include "qemu/bswap.h"
#include <openssl/evp.h>

/*
 * Encrypt (@enc) or decrypt @len bytes at physical address @pa line by
 * line, as the emulated memory controller does: one 64-byte XTS data
 * unit per line, the tweak being the line's address as a 128-bit
 * little-endian number; @key is the data key then the tweak key
 * (@keylen 32 for AES-XTS-128, 64 for AES-XTS-256).
 */
static inline void xts_oracle(const uint8_t *key, size_t keylen, uint64_t pa,
                              uint8_t *out, const uint8_t *in, size_t len,
                              bool enc)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    const EVP_CIPHER *c = keylen == 64 ? EVP_aes_256_xts() :
                                         EVP_aes_128_xts();

    for (size_t off = 0; off < len; off += 64) {
        uint8_t iv[16] = { 0 };
        uint64_t line = cpu_to_le64(pa + off);
        int n;

        memcpy(iv, &line, 8);
        g_assert_true(EVP_CipherInit_ex(ctx, c, NULL, key, iv, enc));
        g_assert_true(EVP_CipherUpdate(ctx, out + off, &n, in + off, 64));
        g_assert_cmpint(n, ==, 64);
    }
    EVP_CIPHER_CTX_free(ctx);
}

#endif
