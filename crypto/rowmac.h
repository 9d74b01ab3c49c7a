/* SPDX-License-Identifier: Apache-2.0 */
/* crypto/rowmac.h -- HMAC-SHA256 over a security-relevant database row, keyed with the row-MAC
 * service key (random, wrapped by the root key). Fields are length-prefixed so no two rows
 * serialise alike. The state holds key-derived bytes: always finish with _final or _check. */
#ifndef DG_CRYPTO_ROWMAC_H
#define DG_CRYPTO_ROWMAC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#include "crypto/secret.h"

#define ROWMAC_BYTES 32

struct rowmac {
    crypto_auth_hmacsha256_state st;
};

/* key: a 32-byte secret. table: a domain label such as "keyrings". */
void rowmac_init(struct rowmac *m, const struct secret *key, const char *table);
void rowmac_str(struct rowmac *m, const char *s);                /* NULL and "" differ */
void rowmac_bytes(struct rowmac *m, const uint8_t *p, size_t n); /* NULL and empty differ */
void rowmac_i64(struct rowmac *m, int64_t v);
void rowmac_final(struct rowmac *m, uint8_t out[static ROWMAC_BYTES]);
/* Constant-time comparison with the stored MAC; false also when len != ROWMAC_BYTES. */
bool rowmac_check(struct rowmac *m, const uint8_t *stored, size_t stored_len);

#endif
