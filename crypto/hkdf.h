/* SPDX-License-Identifier: Apache-2.0 */
/* crypto/hkdf.h -- HKDF-SHA256 (RFC 5869) composed from libsodium's HMAC-SHA256.
 * Stateless and thread-safe; wipes its intermediate state. */
#ifndef DG_CRYPTO_HKDF_H
#define DG_CRYPTO_HKDF_H

#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#include "common/status.h"

#define HKDF_SHA256_PRK_BYTES 32
#define HKDF_SHA256_MAX_OUT ((size_t)255 * 32)

void hkdf_sha256_extract(uint8_t prk[static HKDF_SHA256_PRK_BYTES], const uint8_t *salt,
                         size_t salt_len, const uint8_t *ikm, size_t ikm_len);

/* out_len <= 255 * 32, else ST_INVALID (out is zeroed). An empty info is allowed. */
NODISCARD enum status hkdf_sha256_expand(uint8_t *out, size_t out_len, const uint8_t *prk,
                                         size_t prk_len, const uint8_t *info, size_t info_len);

/* Expand with an HMAC state already keyed with the PRK (kek_derive keeps one per KEK so no
 * per-call key setup is needed). The state is copied, never modified. Aborts when out_len >
 * HKDF_SHA256_MAX_OUT (caller contract). */
void hkdf_sha256_expand_state(uint8_t *out, size_t out_len,
                              const crypto_auth_hmacsha256_state *keyed, const uint8_t *info,
                              size_t info_len);

#endif
