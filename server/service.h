/* SPDX-License-Identifier: Apache-2.0 */
/* server/service.h -- the running service: store, root key, service keys, managers and
 * settings, shared read-only by all handlers. Built by service_open (serve, admin commands). */
#ifndef DG_SERVER_SERVICE_H
#define DG_SERVER_SERVICE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "common/status.h"
#include "crypto/rootkey.h"
#include "crypto/secret.h"
#include "server/apps.h"
#include "server/compliance.h"
#include "server/http/http.h"
#include "server/inventory.h"
#include "server/keyrings.h"
#include "store/store.h"

#define SVCKEY_ROWMAC "row-mac"
#define SVCKEY_APIKEY_HASH "api-key-hash"

struct service {
    struct store *store;
    struct rootkey *root;  /* the key that opened the service keys */
    struct rootkey **keys; /* service_open_keys: every root key given (owned), else NULL */
    size_t n_keys;
    struct secret *mac_key;  /* row MACs */
    struct secret *hash_key; /* API-key hashes */
    struct keyrings *keyrings;
    struct apps *apps;
    struct op_stats *op_stats;     /* crypto operations, batches, rate limits (obs/opstats.h) */
    struct http_stats *http_stats; /* the transport's (obs/httpstats.h); serve only */
    struct tracer *tracer;         /* OTLP export (obs/trace.h); NULL when tracing is off */
    struct keymetrics *keymetrics; /* API key expiry and last use (server/keymetrics.h) */
    struct audit *audit;           /* NULL when the command does not audit */
    struct jwt_verifier *jwt; /* NULL unless --jwt-config; replaced under jwt_lock (SIGHUP): read
                               * it through service_jwt_verify once serving */
    pthread_rwlock_t jwt_lock;
    struct certs *certs;     /* the certificate inventory (serve only; NULL otherwise) */
    struct metrics *metrics; /* every module's series (server/obs/metrics.h) */
    struct http_limits limits;
    struct inventory_facts facts;  /* what serve was started with: root key file, listeners */
    struct compliance *compliance; /* serve only (server/main.c opens it); NULL elsewhere */
    atomic_bool ready;
};

struct service_paths {
    const char *data_dir;
    const char *database; /* NULL = sqlite:<data_dir>/difyguard.db */
    const char *root_key; /* NULL = <data_dir>/root.key */
};

/* Resolve defaults into owned strings (free with service_paths_free). */
void service_paths_resolve(struct service_paths *out, const char *data_dir, const char *database,
                           const char *root_key);
void service_paths_free(struct service_paths *p);

/* First-time set-up: root key, database, service keys, admin app and key. The root key file is
 * created (0600), or, when it exists already, adopted if it passes the key-file rule (*adopted
 * set: a key provisioned from outside). ST_CONFLICT when the database is initialised already.
 * admin_key gets the key text (caller wipes). */
NODISCARD enum status service_init(const struct service_paths *p, char *admin_key, size_t cap,
                                   char *root_id, size_t root_id_cap, bool *adopted, char *err,
                                   size_t err_len);

/* Open for serving or admin commands: loads and checks the root key and service keys; starts
 * the audit writer when as != NULL. */
struct audit_settings;
NODISCARD enum status service_open(struct service **out, const struct service_paths *p,
                                   const struct keyrings_settings *ks,
                                   const struct audit_settings *as, char *err, size_t err_len);
/* Open for root key rotation with several candidate root keys (keys[0..n), the array and the
 * keys owned by the service from the call on, whatever it returns): each service key opens with
 * the key its row names. No audit writer, no maintenance. */
NODISCARD enum status service_open_keys(struct service **out, const struct service_paths *p,
                                        struct rootkey **keys, size_t n, char *err, size_t err_len);
void service_close(struct service *s);

/* For serve, before the listeners start: the transport's histograms (one series set per route of
 * `routes`) and the OTLP trace exporter from the OTEL_* variables (server/obs/trace.h), both in
 * the metrics registry. ST_INVALID with one line in err for a bad OTEL_* value. */
NODISCARD enum status service_observe(struct service *s, const struct route_table *routes,
                                      char *err, size_t err_len);
/* JWT bearer tokens against the current --jwt-config (SIGHUP may replace it while requests run):
 * ST_UNAUTHENTICATED when none is configured. rate and burst get the config's limits. */
struct jwt_claims;
NODISCARD enum status service_jwt_verify(struct service *s, const char *token, size_t len,
                                         int64_t now, struct jwt_claims *out, int64_t *rate,
                                         int64_t *burst);
bool service_jwt_on(struct service *s);
/* The database answers now (SQLite: always; PostgreSQL: a ping through the pool, refused at once
 * while the circuit breaker is open). /readyz is not ready without it. */
bool service_db_ready(struct service *s);
/* Replace the JWT configuration (takes v; the old one is freed once no request uses it). */
void service_jwt_set(struct service *s, struct jwt_verifier *v);

/* A new admin key (break-glass). */
NODISCARD enum status service_admin_key(struct service *s, char *admin_key, size_t cap);

/* Rewrap every KEK and service key to `to` (one of the keys of service_open_keys) from whichever
 * of those keys each row is under: KEKs first, then every service key together with the
 * database's root key id in one transaction. Repeatable after any interruption. *count gets the
 * key versions rewrapped. */
NODISCARD enum status service_rotate_root(struct service *s, const struct rootkey *to,
                                          size_t *count, char *err, size_t err_len);

#endif
