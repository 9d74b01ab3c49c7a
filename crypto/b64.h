/* SPDX-License-Identifier: Apache-2.0 */
/* crypto/b64.h -- strict base64 (standard, padded) and base64url (no padding).
 * Decoders reject anything non-canonical: wrong alphabet, whitespace, bad padding,
 * non-zero trailing bits. Built on libsodium's codecs. */
#ifndef DG_CRYPTO_B64_H
#define DG_CRYPTO_B64_H

#include <stddef.h>
#include <stdint.h>

#include "common/status.h"

/* Encoded length (without NUL) of n bytes. */
size_t b64_std_len(size_t n);
size_t b64_url_len(size_t n);
/* Upper bound of decoded bytes for an encoded text of n chars. */
size_t b64_decoded_max(size_t n);

/* Encode into out (capacity out_cap, must hold the encoded length + 1 for NUL). Returns the
 * encoded length. Aborts if out_cap is too small (caller contract). */
size_t b64_std_encode(char *out, size_t out_cap, const uint8_t *in, size_t in_len);
size_t b64_url_encode(char *out, size_t out_cap, const uint8_t *in, size_t in_len);

/* Table-driven base64url for public data (ciphertexts): several times faster than the
 * constant-time encoders above, and NOT constant-time: never pass secrets. Same output. */
size_t b64_url_encode_public(char *out, size_t out_cap, const uint8_t *in, size_t in_len);

/* Decode text (not NUL-terminated) into out. Returns ST_OK or ST_INVALID (non-canonical,
 * or more than out_cap bytes). *out_len is set on entry. */
NODISCARD enum status b64_std_decode(uint8_t *out, size_t out_cap, size_t *out_len,
                                     const char *text, size_t text_len);
NODISCARD enum status b64_url_decode(uint8_t *out, size_t out_cap, size_t *out_len,
                                     const char *text, size_t text_len);

#endif
