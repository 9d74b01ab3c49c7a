/* SPDX-License-Identifier: Apache-2.0 */
/* crypto/apikey.h -- API key text (permanent, DESIGN.md "API keys"):
 *   "dgk_" || id (16 base62) || secret (43 base62, > 256 bits) || crc (6 base62 of the CRC-32
 *   of everything before it, big-endian digits, alphabet 0-9A-Za-z)
 * Keys are stored only as a keyed BLAKE2b-256 hash and compared in constant time. */
#ifndef DG_CRYPTO_APIKEY_H
#define DG_CRYPTO_APIKEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/status.h"
#include "crypto/secret.h"

#define APIKEY_PREFIX "dgk_"
#define APIKEY_ID_CHARS 16
#define APIKEY_SECRET_CHARS 43
#define APIKEY_CRC_CHARS 6
#define APIKEY_TEXT_CHARS (4 + APIKEY_ID_CHARS + APIKEY_SECRET_CHARS + APIKEY_CRC_CHARS)
#define APIKEY_HASH_BYTES 32
#define APIKEY_HASH_KEY_BYTES 32

/* A new key: text (NUL-terminated; a secret, the caller wipes it) and its public id. */
void apikey_generate(char text[static APIKEY_TEXT_CHARS + 1], char id[static APIKEY_ID_CHARS + 1]);

/* Check shape, alphabet and checksum without any lookup. ST_UNAUTHENTICATED when malformed.
 * id gets the public id on success (NUL-terminated), empty on failure. */
NODISCARD enum status apikey_parse(char id[static APIKEY_ID_CHARS + 1], const char *text,
                                   size_t len);

/* Keyed hash of the whole key text. */
void apikey_hash(uint8_t out[static APIKEY_HASH_BYTES], const struct secret *hash_key,
                 const char *text, size_t len);
bool apikey_hash_equal(const uint8_t a[static APIKEY_HASH_BYTES],
                       const uint8_t b[static APIKEY_HASH_BYTES]);

/* CRC-32 (IEEE 802.3, as zlib) for the checksum; exposed for tests and scanners. */
uint32_t apikey_crc32(const uint8_t *p, size_t n);

#endif
