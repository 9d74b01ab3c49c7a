/* SPDX-License-Identifier: Apache-2.0 */
/* crypto/kek.h -- one version of one keyring's key-encryption key. Only kek.c holds KEK bytes;
 * everything else derives per-value keys through kek_derive(). A struct kek is immutable once
 * made, so any number of threads may use it at once. */
#ifndef DG_CRYPTO_KEK_H
#define DG_CRYPTO_KEK_H

#include <stddef.h>
#include <stdint.h>

#include "common/status.h"
#include "crypto/rootkey.h"

#define KEK_BYTES 32
#define KEK_WRAPPED_BYTES (KEK_BYTES + ROOTKEY_WRAP_OVERHEAD)

struct kek;

/* A fresh random KEK for (keyring, version), and its wrapping under the root key with
 * AAD = "difyguard/v1/kek" || u32be(len) keyring || u32be(version) || root key id.
 * ST_INVALID for version 0. On failure *out is NULL and wrapped is zeroed. */
NODISCARD enum status kek_generate(struct kek **out, uint8_t wrapped[static KEK_WRAPPED_BYTES],
                                   const struct rootkey *rk, const char *keyring, uint32_t version);

/* Unwrap a stored KEK. ST_AUTH when the root key, keyring name, version or bytes are wrong;
 * ST_INVALID when wrapped_len is not KEK_WRAPPED_BYTES. */
NODISCARD enum status kek_unwrap(struct kek **out, const struct rootkey *rk, const char *keyring,
                                 uint32_t version, const uint8_t *wrapped, size_t wrapped_len);

/* Rewrap a stored KEK from one root key to another without exposing it outside this module. */
NODISCARD enum status kek_rewrap(uint8_t out[static KEK_WRAPPED_BYTES], const struct rootkey *from,
                                 const struct rootkey *to, const char *keyring, uint32_t version,
                                 const uint8_t *wrapped, size_t wrapped_len);

void kek_free(struct kek *k);
uint32_t kek_version(const struct kek *k);

/* HKDF-SHA256-Expand with PRK = the KEK (uniformly random, so Extract is skipped, RFC 5869
 * section 3.3). out_len <= 255*32 (else abort). Uses a precomputed keyed HMAC state: no
 * allocation. Equals hkdf_sha256_expand(out, out_len, KEK, 32, info, info_len). */
void kek_derive(const struct kek *k, uint8_t *out, size_t out_len, const uint8_t *info,
                size_t info_len);

#endif
