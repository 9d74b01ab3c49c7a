/* SPDX-License-Identifier: Apache-2.0 */
/* crypto/aead.h -- thin AEAD wrappers: AES-256-GCM and AES-256-SIV (OpenSSL EVP, one cached
 * EVP_CIPHER_CTX per thread) and XChaCha20-Poly1305 (libsodium). No key management here. */
#ifndef DG_CRYPTO_AEAD_H
#define DG_CRYPTO_AEAD_H

#include <stddef.h>
#include <stdint.h>

#include "common/status.h"

enum aead_alg {
    AEAD_AES256GCM = 1,         /* key 32, nonce 12, tag 16 */
    AEAD_XCHACHA20POLY1305 = 2, /* key 32, nonce 24, tag 16 */
    AEAD_AES256SIV = 3,         /* key 64, no nonce (nonce_len must be 0), tag = SIV 16 */
};

#define AEAD_TAG_BYTES 16
#define AEAD_MAX_KEY_BYTES 64

/* Fetch the OpenSSL ciphers once (crypto_init calls it; seal/open also do, idempotently).
 * ST_INTERNAL when the provider lacks AES-256-GCM or AES-256-SIV. */
NODISCARD enum status aead_init(void);

size_t aead_key_bytes(enum aead_alg alg);
size_t aead_nonce_bytes(enum aead_alg alg);

/* Encrypt pt (pt_len) into ct (same length) and tag. ct may equal pt (in place). For SIV the
 * aad is always exactly one S2V component, even when empty (as Tink and Wycheproof).
 * Thread-safe: each thread keeps its own cached EVP_CIPHER_CTX.
 * Returns ST_OK, ST_INVALID (wrong key/nonce size) or ST_INTERNAL. */
NODISCARD enum status aead_seal(enum aead_alg alg, uint8_t *ct, uint8_t tag[static AEAD_TAG_BYTES],
                                const uint8_t *key, size_t key_len, const uint8_t *nonce,
                                size_t nonce_len, const uint8_t *aad, size_t aad_len,
                                const uint8_t *pt, size_t pt_len);

/* Decrypt and verify. pt may equal ct. Returns ST_OK, ST_INVALID (sizes) or ST_AUTH
 * (tag mismatch); on any failure pt[0..ct_len) is all zeroes. */
NODISCARD enum status aead_open(enum aead_alg alg, uint8_t *pt, const uint8_t *key, size_t key_len,
                                const uint8_t *nonce, size_t nonce_len, const uint8_t *aad,
                                size_t aad_len, const uint8_t *ct, size_t ct_len,
                                const uint8_t tag[static AEAD_TAG_BYTES]);

#endif
