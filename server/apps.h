/* SPDX-License-Identifier: Apache-2.0 */
/* server/apps.h -- Dify apps/components and their API keys: creation, listing, revocation and
 * authentication of bearer keys. Key rows carry a row MAC; a key whose row fails it is refused.
 * Holds a cache of verified keys (thread-safe). Never stores or logs a key's secret part. */
#ifndef DG_SERVER_APPS_H
#define DG_SERVER_APPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/status.h"
#include "crypto/secret.h"
#include "server/auth/principal.h"
#include "store/store.h"

#define APPS_MAX_KEY_LIFETIME (365 * 86400)

struct apps;

NODISCARD enum status apps_open(struct apps **out, struct store *st, const struct secret *mac_key,
                                const struct secret *hash_key);
void apps_close(struct apps *a);

/* Changes take `ev` (may be NULL): the request's audit event, committed with the change. */
NODISCARD enum status apps_create(struct apps *a, const char *name, const char *description,
                                  json_t **out, const struct store_audit_row *ev);
NODISCARD enum status apps_get(struct apps *a, const char *name, json_t **out);
NODISCARD enum status apps_list(struct apps *a, json_t **out);

struct key_spec {
    uint32_t scopes;
    const char *keyrings;              /* space-separated names, NULL = all */
    int64_t lifetime;                  /* seconds, 1 .. APPS_MAX_KEY_LIFETIME */
    int64_t rate, burst;               /* requests per second and burst, 0 = unlimited */
};

/* Issue a key on behalf of `by` (the caller over the API): ST_FORBIDDEN, with *why set to a
 * grant_refusal_text, when principal_may_grant refuses. *out gets the key object including
 * "key" (the only time it is shown); the caller wipes that string before freeing (json_decref
 * does, via the wiping allocator). */
NODISCARD enum status apps_key_grant(struct apps *a, const char *app, const struct key_spec *ks,
                                     const struct principal *by, const char **why, json_t **out,
                                     const struct store_audit_row *ev);
/* The same for local callers holding the root key (init, admin-key): no grantor, no bound. */
NODISCARD enum status apps_key_create(struct apps *a, const char *app, const struct key_spec *ks,
                                      json_t **out, const struct store_audit_row *ev);
/* apps_key_create with key text the caller made with apikey_generate, so that its id can go in
 * an audit event chained before the key row is written (break-glass). The text is not kept. */
NODISCARD enum status apps_key_create_text(struct apps *a, const char *app,
                                           const struct key_spec *ks, const char *text,
                                           json_t **out, const struct store_audit_row *ev);
/* Rotate: a new key with the same scopes, keyrings, limits and lifetime; the old one keeps
 * working for grace seconds (0 .. 30 days), then is refused. Bounded like apps_key_grant: `by`
 * must be allowed to issue the new key (ST_FORBIDDEN, *why set). */
#define APPS_MAX_GRACE (30 * 86400)
NODISCARD enum status apps_key_rotate(struct apps *a, const char *app, const char *key_id,
                                      int64_t grace, const struct principal *by,
                                      const char **why, json_t **out,
                                      const struct store_audit_row *ev);
NODISCARD enum status apps_key_list(struct apps *a, const char *app, json_t **out);
/* Revoke at once. `by` may revoke only keys whose scopes and allow-list it could grant
 * (ST_FORBIDDEN, *why set): a restricted admin key cannot lock out a more powerful one. */
NODISCARD enum status apps_key_revoke(struct apps *a, const char *app, const char *key_id,
                                      const struct principal *by, const char **why,
                                      const struct store_audit_row *ev);

/* Why authentications fail, counted for metrics. */
enum auth_fail {
    AUTH_FAIL_MALFORMED, AUTH_FAIL_UNKNOWN, AUTH_FAIL_BAD_SECRET, AUTH_FAIL_REVOKED,
    AUTH_FAIL_EXPIRED, AUTH_FAIL_INTEGRITY, AUTH_FAIL_RATE_LIMITED, AUTH_FAIL_JWT,
    AUTH_FAIL__COUNT
};
const char *auth_fail_name(enum auth_fail f);
uint64_t apps_auth_failures(const struct apps *a, enum auth_fail f);
void apps_count_failure(struct apps *a, enum auth_fail f);

/* Authenticate an API key: ST_OK with *p filled, or ST_UNAUTHENTICATED (malformed, checksum,
 * unknown; or a known key that is revoked, expired or past its grace: then only p->app and
 * p->key_id are set, for the audit trail, and no scopes),
 * or ST_INTEGRITY (row MAC failed; logged),
 * or ST_RATE_LIMITED with *retry_after (seconds) set. Unknown ids are refused by a Bloom filter
 * before any lookup; last_used_at is written at most every 10 s per key. */
NODISCARD enum status apps_authenticate(struct apps *a, const char *token, size_t len,
                                        struct principal *p, unsigned *retry_after);
/* Apply a key's token bucket (also used for JWT principals, one bucket per (iss, sub):
 * jwt_bucket). */
NODISCARD enum status apps_rate_check(struct apps *a, const char *bucket, int64_t rate,
                                      int64_t burst, unsigned *retry_after);

#endif
