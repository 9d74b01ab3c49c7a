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
#include "server/store/store.h"

/* Wrap key under the root key and store it (replacing any key of that purpose). */
NODISCARD enum status svckey_put(struct store *st, const struct rootkey *rk, const char *purpose,
                                 const uint8_t *key, size_t len);

/* Load and unwrap. ST_NOT_FOUND when absent; ST_AUTH when it is wrapped under another root key
 * or does not open. created_at may be NULL. err (may be NULL) gets one line naming the purpose
 * and root key ids, never key bytes. */
NODISCARD enum status svckey_load(struct store *st, const struct rootkey *rk, const char *purpose,
                                  struct secret **out, int64_t *created_at, char *err,
                                  size_t err_len);

/* Rewrap every service key from `from` to `to`, skipping those already under `to` (so an
 * interrupted root key rotation can be repeated). */
NODISCARD enum status svckey_rewrap_all(struct store *st, const struct rootkey *from,
                                        const struct rootkey *to);

#endif
