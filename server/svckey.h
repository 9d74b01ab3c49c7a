/* SPDX-License-Identifier: Apache-2.0 */
/* server/svckey.h -- service keys: random keys (row MAC, API-key hash, audit signing and HMAC)
 * stored wrapped by the root key with AAD "difyguard/v1/svckey/<purpose>". The one place that
 * wraps, stores, loads and rewraps them. Key bytes only ever live in struct secret. */
#ifndef DG_SERVER_SVCKEY_H
#define DG_SERVER_SVCKEY_H

#include <stddef.h>
#include <stdint.h>

#include "common/status.h"
#include "crypto/rootkey.h"
#include "crypto/secret.h"
#include "store/store.h"

/* Wrap key under the root key and store it (replacing any key of that purpose). */
NODISCARD enum status svckey_put(struct store *st, const struct rootkey *rk, const char *purpose,
                                 const uint8_t *key, size_t len);
/* As svckey_put, but only when the purpose has no key yet: ST_CONFLICT when another process
 * stored one first (load that one). */
NODISCARD enum status svckey_add(struct store *st, const struct rootkey *rk, const char *purpose,
                                 const uint8_t *key, size_t len);

/* Load and unwrap. ST_NOT_FOUND when absent; ST_AUTH when it is wrapped under another root key
 * or does not open. created_at may be NULL. err (may be NULL) gets one line naming the purpose
 * and root key ids, never key bytes. */
NODISCARD enum status svckey_load(struct store *st, const struct rootkey *rk, const char *purpose,
                                  struct secret **out, int64_t *created_at, char *err,
                                  size_t err_len);

/* svckey_load with whichever of keys[0..n) the stored row names (its root_key_id): root key
 * rotation and its recovery, where rows may be under any of the keys the operator supplied.
 * *used (may be NULL) gets the key that opened it. ST_AUTH (err names the purpose and the
 * missing root key id) when none of them is that key. */
NODISCARD enum status svckey_load_any(struct store *st, const struct rootkey *const *keys, size_t n,
                                      const char *purpose, struct secret **out,
                                      const struct rootkey **used, char *err, size_t err_len);

/* Rewrap every service key to `to` from whichever of from[0..n) it is under (rows already under
 * `to` are kept), and record `to` as the database's root key (meta root_key_id), all in ONE
 * transaction: an interrupted rotation leaves the service keys wholly under one root key, and
 * running it again with the same keys finishes it. */
NODISCARD enum status svckey_rewrap_all(struct store *st, const struct rootkey *const *from,
                                        size_t n, const struct rootkey *to, char *err,
                                        size_t err_len);

#endif
