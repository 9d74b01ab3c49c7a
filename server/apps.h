/* SPDX-License-Identifier: Apache-2.0 */
/* server/apps.h -- Dify apps/components and their API keys: creation, listing, revocation and
 * authentication of bearer keys. Key rows carry a row MAC; a key whose row fails it is refused.
 * Holds a cache of verified keys (thread-safe). Never stores or logs a key's secret part. */
#ifndef DG_SERVER_APPS_H
#define DG_SERVER_APPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/status.h"
#include "crypto/apikey.h"
#include "crypto/secret.h"
#include "server/auth/principal.h"
#include "store/store.h"

#define APPS_MAX_KEY_LIFETIME (365 * 86400)

struct apps;

NODISCARD enum status apps_open(struct apps **out, struct store *st, const struct secret *mac_key,
                                const struct secret *hash_key);
void apps_close(struct apps *a);
/* How long a key row read from the store is trusted before it is read again (default 10 s): the
 * bound within which a revocation or rotation through another replica is enforced here. */
void apps_set_cache_ttl(struct apps *a, int64_t seconds);
/* Drop every cached key row (another replica changed keys: LISTEN/NOTIFY). Thread-safe. */
void apps_forget_all(struct apps *a);

/* An app (a Dify component that calls difyguard), as seen from outside. */
struct app_info {
    char name[STORE_NAME_MAX];
    char description[STORE_DESC_MAX];
    int64_t created_at;
};

/* An API key as seen from outside: never its secret. Times are unix seconds, 0 = none. */
struct apikey_info {
    char id[STORE_KEY_ID_MAX];
    char app[STORE_NAME_MAX];
    char scopes[STORE_SCOPES_MAX];     /* space-separated names */
    char keyrings[STORE_KEYRINGS_MAX]; /* space-separated allow-list; "" = every keyring */
    int64_t created_at, expires_at, revoked_at, grace_until, last_used_at;
    int64_t rate, burst;
};

/* A key just issued: its text is shown once, then wiped by the caller (apikey_issued_wipe). */
struct apikey_issued {
    struct apikey_info info;
    char key[APIKEY_TEXT_CHARS + 1];
};
void apikey_issued_wipe(struct apikey_issued *k);

/* Changes take `ev` (may be NULL): the request's audit event, committed with the change. */
NODISCARD enum status apps_create(struct apps *a, const char *name, const char *description,
                                  struct app_info *out, const struct store_audit_row *ev);
NODISCARD enum status apps_get(struct apps *a, const char *name, struct app_info *out);
/* Every app whose row passes its MAC (a refused one is logged and left out); *out malloc'd. */
NODISCARD enum status apps_list(struct apps *a, struct app_info **out, size_t *n);
/* The daily usage roll-ups of an existing app between two days (YYYY-MM-DD, inclusive); *out
 * malloc'd. ST_NOT_FOUND for no such app. */
NODISCARD enum status apps_usage(struct apps *a, const char *app, const char *from_day,
                                 const char *to_day, struct store_usage **out, size_t *n);

struct key_spec {
    uint32_t scopes;
    const char *keyrings; /* space-separated names, NULL = all */
    int64_t lifetime;     /* seconds, 1 .. APPS_MAX_KEY_LIFETIME */
    int64_t rate, burst;  /* requests per second and burst, 0 = unlimited */
};

/* Issue a key on behalf of `by` (the caller over the API): ST_FORBIDDEN, with *why set to a
 * grant_refusal_text, when principal_may_grant refuses. *out gets the key and its text (the
 * only time it is shown): the caller wipes it (apikey_issued_wipe). */
NODISCARD enum status apps_key_grant(struct apps *a, const char *app, const struct key_spec *ks,
                                     const struct principal *by, const char **why,
                                     struct apikey_issued *out, const struct store_audit_row *ev);
/* The same for local callers holding the root key (init, admin-key): no grantor, no bound. */
NODISCARD enum status apps_key_create(struct apps *a, const char *app, const struct key_spec *ks,
                                      struct apikey_issued *out, const struct store_audit_row *ev);
/* apps_key_create with key text the caller made with apikey_generate, so that its id can go in
 * an audit event chained before the key row is written (break-glass). The text is not kept. */
NODISCARD enum status apps_key_create_text(struct apps *a, const char *app,
                                           const struct key_spec *ks, const char *text,
                                           struct apikey_issued *out,
                                           const struct store_audit_row *ev);
/* Rotate: a new key with the same scopes, keyrings, limits and lifetime; the old one keeps
 * working for grace seconds (0 .. 30 days), then is refused. Bounded like apps_key_grant: `by`
 * must be allowed to issue the new key (ST_FORBIDDEN, *why set). */
#define APPS_MAX_GRACE (30 * 86400)
NODISCARD enum status apps_key_rotate(struct apps *a, const char *app, const char *key_id,
                                      int64_t grace, const struct principal *by, const char **why,
                                      struct apikey_issued *out, const struct store_audit_row *ev);
/* The app's keys (*out malloc'd). */
NODISCARD enum status apps_key_list(struct apps *a, const char *app, struct apikey_info **out,
                                    size_t *n);
/* Revoke at once. `by` may revoke only keys whose scopes and allow-list it could grant
 * (ST_FORBIDDEN, *why set): a restricted admin key cannot lock out a more powerful one. */
NODISCARD enum status apps_key_revoke(struct apps *a, const char *app, const char *key_id,
                                      const struct principal *by, const char **why,
                                      const struct store_audit_row *ev);

/* Why authentications fail, counted for metrics. */
enum auth_fail {
    AUTH_FAIL_MALFORMED,
    AUTH_FAIL_UNKNOWN,
    AUTH_FAIL_BAD_SECRET,
    AUTH_FAIL_REVOKED,
    AUTH_FAIL_EXPIRED,
    AUTH_FAIL_INTEGRITY,
    AUTH_FAIL_RATE_LIMITED,
    AUTH_FAIL_JWT,
    AUTH_FAIL__COUNT
};
const char *auth_fail_name(enum auth_fail f);
uint64_t apps_auth_failures(const struct apps *a, enum auth_fail f);
void apps_count_failure(struct apps *a, enum auth_fail f);
/* The apps' series for the metrics registry (server/obs/metrics.h): refused authentications by
 * reason. Reads atomics only. */
struct metrics_out;
void apps_metrics(const void *self, struct metrics_out *o);

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
