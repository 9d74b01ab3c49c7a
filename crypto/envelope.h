/* SPDX-License-Identifier: Apache-2.0 */
/* crypto/envelope.h -- the permanent ciphertext format (DESIGN.md, SECURITY.md):
 *   text: "dg:v<N>:" base64url-no-padding(blob), N decimal without leading zeros
 *   blob: u8 format || u32be version || body
 *     0x01 aes-256-gcm          body = salt(32) || ct || tag(16)    DEK = HKDF(KEK, salt)
 *     0x02 xchacha20-poly1305   body = salt(32) || ct || tag(16)    DEK = HKDF(KEK, salt)
 *     0x03 aes-256-siv (det.)   body = siv(16) || ct                key = HKDF(KEK, context)
 *   AAD = the 5 header bytes || canonical context. Overhead 53 (random) or 21 (SIV) <= 64. */
#ifndef DG_CRYPTO_ENVELOPE_H
#define DG_CRYPTO_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include "common/status.h"
#include "crypto/kek.h"

enum envelope_format {
    ENVELOPE_AES256GCM = 0x01,
    ENVELOPE_XCHACHA20POLY1305 = 0x02,
    ENVELOPE_AES256SIV = 0x03,
};

#define ENVELOPE_HEADER_BYTES 5
#define ENVELOPE_SALT_BYTES 32
#define ENVELOPE_MAX_OVERHEAD 64
#define ENVELOPE_TEXT_PREFIX "dg:v"

/* A parsed, not yet authenticated view of a blob; points into the caller's buffer. */
struct envelope {
    enum envelope_format format;
    uint32_t version;
    const uint8_t *blob;
    size_t blob_len;
};

/* Blob bytes for a plaintext of pt_len; text chars (no NUL) for a blob of blob_len. */
size_t envelope_blob_len(enum envelope_format fmt, size_t pt_len);
size_t envelope_text_len(uint32_t version, size_t blob_len);

/* Seal pt under kek (its version goes in the header) into blob (capacity blob_cap >=
 * envelope_blob_len). Per-value keys live in the thread's guarded scratch and are wiped. */
NODISCARD enum status envelope_seal(uint8_t *blob, size_t blob_cap, size_t *blob_len,
                                    enum envelope_format fmt, const struct kek *kek,
                                    const uint8_t *ctx, size_t ctx_len, const uint8_t *pt,
                                    size_t pt_len);

/* Parse the text form into blob (capacity >= b64_decoded_max(text_len)) and a view of it.
 * ST_MALFORMED_CT for a bad prefix, version, base64url (non-canonical included), unknown
 * format byte, short blob, or a prefix version that differs from the blob's. */
NODISCARD enum status envelope_parse_text(struct envelope *env, uint8_t *blob, size_t blob_cap,
                                          const char *text, size_t text_len);

/* Parse a binary blob (fuzzed; used by envelope_parse_text). */
NODISCARD enum status envelope_parse_blob(struct envelope *env, const uint8_t *blob,
                                          size_t blob_len);

/* Plaintext bytes the envelope will yield (0 for a malformed view). */
size_t envelope_plaintext_len(const struct envelope *env);

/* Verify and decrypt. kek must be the version env->version names. pt capacity >=
 * envelope_plaintext_len. ST_AUTH on any wrong key, context or byte; pt zeroed on failure. */
NODISCARD enum status envelope_open(uint8_t *pt, size_t pt_cap, size_t *pt_len,
                                    const struct envelope *env, const struct kek *kek,
                                    const uint8_t *ctx, size_t ctx_len);

/* Write the text form into out (cap >= envelope_text_len + 1, NUL-terminated). Returns length. */
size_t envelope_format_text(char *out, size_t out_cap, uint32_t version, const uint8_t *blob,
                            size_t blob_len);

#endif
