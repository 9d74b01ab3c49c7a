/* SPDX-License-Identifier: Apache-2.0 */
/* crypto/secret.h -- guarded memory for key material (sodium_malloc: guard pages, mlock,
 * excluded from core dumps). Never logs contents. */
#ifndef DG_CRYPTO_SECRET_H
#define DG_CRYPTO_SECRET_H

#include <stddef.h>
#include <stdint.h>

#include "common/status.h"

/* A fixed-size buffer in sodium_malloc memory. Allocation failure aborts (OOM is fatal).
 * secret_free wipes and is NULL-safe. Not thread-safe to write; read-only sharing is fine. */
struct secret;

struct secret *secret_new(size_t len);
void secret_free(struct secret *s);
uint8_t *secret_rw(struct secret *s);
const uint8_t *secret_ro(const struct secret *s);
size_t secret_len(const struct secret *s);

/* This thread's guarded scratch area of SECRET_SCRATCH_BYTES for per-value keys (one
 * sodium_malloc per thread, freed at thread exit). Callers wipe what they used with
 * sodium_memzero before returning. Never NULL. */
#define SECRET_SCRATCH_BYTES 256
uint8_t *secret_scratch(void);

#endif
