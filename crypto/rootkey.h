/* SPDX-License-Identifier: Apache-2.0 */
/* crypto/rootkey.h -- the 256-bit root key: file rules, id, and wrapping of the keys below it
 * (KEKs, service keys). The root key itself never leaves this module and is never stored in
 * the database. File format: the standard base64 of 32 random bytes and a newline. */
#ifndef DG_CRYPTO_ROOTKEY_H
#define DG_CRYPTO_ROOTKEY_H

#include <stddef.h>
#include <stdint.h>

#include "common/status.h"
#include "crypto/secret.h"

#define ROOTKEY_BYTES 32
#define ROOTKEY_ID_CHARS 16 /* lowercase hex of the first 8 bytes of a keyed digest */
/* wrapped = u8 format(1) || nonce(24) || ciphertext(len) || tag(16), XChaCha20-Poly1305 */
#define ROOTKEY_WRAP_OVERHEAD (1 + 24 + 16)

struct rootkey;

/* Create a new root key file with mode 0600 (O_EXCL: never overwrites; ST_CONFLICT if it
 * exists). The file is fsync'd, as is its directory; on failure nothing is left behind. */
NODISCARD enum status rootkey_create(const char *path, char *err, size_t err_len);

/* Load a root key file. The path may be a symlink (Kubernetes secret mounts); the target is
 * refused (ST_FORBIDDEN) when readable or writable by others or writable by its group.
 * ST_IO when unreadable, ST_INVALID when the content is not a root key. err gets one line
 * without secret bytes. */
NODISCARD enum status rootkey_load(struct rootkey **out, const char *path, char *err,
                                   size_t err_len);
void rootkey_free(struct rootkey *rk);

/* A root key from raw bytes (copied into guarded memory; the caller wipes its copy). For
 * tests, fuzzers and key import; production loads files. Never NULL (OOM aborts). */
struct rootkey *rootkey_from_bytes(const uint8_t key[static ROOTKEY_BYTES]);

/* NUL-terminated id, ROOTKEY_ID_CHARS long. Stable for a key, reveals nothing of it. */
const char *rootkey_id(const struct rootkey *rk);

/* Wrap key bytes under the root key with AAD (random nonce). out_cap >= key_len +
 * ROOTKEY_WRAP_OVERHEAD, else abort (caller contract). *out_len is set on entry. */
NODISCARD enum status rootkey_wrap(const struct rootkey *rk, uint8_t *out, size_t out_cap,
                                   size_t *out_len, const uint8_t *key, size_t key_len,
                                   const uint8_t *aad, size_t aad_len);

/* Unwrap into a new secret (ST_AUTH on wrong root key, AAD or bytes; ST_INVALID if short). */
NODISCARD enum status rootkey_unwrap(const struct rootkey *rk, struct secret **out,
                                     const uint8_t *wrapped, size_t wrapped_len, const uint8_t *aad,
                                     size_t aad_len);

#endif
