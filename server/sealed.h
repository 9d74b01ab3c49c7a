/* SPDX-License-Identifier: Apache-2.0 */
/* server/sealed.h -- settings rows (store meta) with security meaning, sealed with the row-MAC
 * key: stored as "v1:<64 hex HMAC>:<value>", the HMAC over the meta key and the value. A value
 * edited, injected or moved to another key in the database fails its seal. A seal does not stop
 * a whole row being rolled back to an earlier sealed value (SECURITY.md). Thread-safe. */
#ifndef DG_SERVER_SEALED_H
#define DG_SERVER_SEALED_H

#include <stddef.h>

#include "common/status.h"
#include "crypto/secret.h"
#include "store/store.h"

#define SEALED_OVERHEAD 68 /* "v1:" + 64 hex + ":" */

/* Read key's value into val[cap]. ST_OK (sealed and intact), ST_NOT_FOUND, ST_INTEGRITY (the
 * seal does not match: val is emptied), ST_INVALID (an unsealed value from before seals: val
 * holds it, for the caller to seal once), or the store's error. */
NODISCARD enum status sealed_get(struct store *st, const struct secret *mac_key, const char *key,
                                 char *val, size_t cap);
/* Seal and store value under key. */
NODISCARD enum status sealed_put(struct store *st, const struct secret *mac_key, const char *key,
                                 const char *value);
/* The stored text of a sealed value (for a store call that writes it in another transaction):
 * out needs strlen(value) + SEALED_OVERHEAD + 1 bytes; truncation is a caller bug (asserted). */
void sealed_text(char *out, size_t cap, const struct secret *mac_key, const char *key,
                 const char *value);

#endif
