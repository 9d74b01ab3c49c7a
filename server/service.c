/* SPDX-License-Identifier: Apache-2.0 */
/* server/service.c -- bootstrapping: data dir, root key, service keys wrapped by the root key,
 * the admin app; and root key rotation. Errors name files and ids, never key bytes. */
#include "server/service.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "common/clock.h"
#include "common/json/jsonx.h"
#include "common/log.h"
#include "common/xmem.h"
#include "crypto/apikey.h"
#include "server/audit/audit.h"
#include "server/auth/jwt.h"
#include "server/certs.h"
#include "server/keymetrics.h"
#include "server/obs/httpstats.h"
#include "server/obs/metrics.h"
#include "server/obs/opstats.h"
#include "server/obs/process.h"
#include "server/obs/trace.h"
#include "server/svckey.h"

#define SVCKEY_BYTES 32

void
service_paths_resolve(struct service_paths *out, const char *data_dir, const char *database,
                      const char *root_key)
{
    char buf[4096];
    const char *dir = data_dir != NULL ? data_dir : "./data";
    out->data_dir = xstrdup(dir);
    if (database != NULL) {
        out->database = xstrdup(database);
    } else {
        snprintf(buf, sizeof buf, "sqlite:%s/difyguard.db", dir);
        out->database = xstrdup(buf);
    }
    if (root_key != NULL) {
        out->root_key = xstrdup(root_key);
    } else {
        snprintf(buf, sizeof buf, "%s/root.key", dir);
        out->root_key = xstrdup(buf);
    }
}

void
service_paths_free(struct service_paths *p)
{
    free((char *)p->data_dir);
    free((char *)p->database);
    free((char *)p->root_key);
    memset(p, 0, sizeof *p);
}

static enum status
svckey_create(struct store *st, const struct rootkey *rk, const char *purpose)
{
    uint8_t key[SVCKEY_BYTES];
    randombytes_buf(key, sizeof key);
    enum status s = svckey_put(st, rk, purpose, key, sizeof key);
    sodium_memzero(key, sizeof key);
    return s;
}

static enum status
svckey_require(struct store *st, const struct rootkey *rk, const char *purpose, struct secret **out,
               char *err, size_t err_len)
{
    enum status s = svckey_load(st, rk, purpose, out, NULL, err, err_len);
    return s == ST_NOT_FOUND ? ST_INVALID : s;
}

static enum status
mint_admin_key(struct apps *apps, char *admin_key, size_t cap)
{
    struct apikey_issued k;
    struct key_spec ks = {.scopes = SCOPE__ALL, .lifetime = APPS_MAX_KEY_LIFETIME};
    enum status st = apps_key_create(apps, "admin", &ks, &k, NULL);
    if (st == ST_OK && strlen(k.key) >= cap)
        st = ST_INTERNAL;
    if (st == ST_OK)
        snprintf(admin_key, cap, "%s", k.key);
    apikey_issued_wipe(&k);
    return st;
}

static enum status
init_database(const struct service_paths *p, struct rootkey *rk, char *admin_key, size_t cap,
              char *err, size_t err_len)
{
    struct service *svc = NULL;
    struct store *st = NULL;
    struct app_info app;
    char marker[64];
    enum status s;

    if ((s = store_open(&st, p->database, err, err_len)) != ST_OK)
        return s;
    if (store_meta_get(st, "initialized_at", marker, sizeof marker) == ST_OK) {
        char shown[512];
        store_url_display(p->database, shown, sizeof shown);
        snprintf(err, err_len, "database %s is already initialised", shown);
        store_close(st);
        return ST_CONFLICT;
    }
    if ((s = svckey_create(st, rk, SVCKEY_ROWMAC)) != ST_OK ||
        (s = svckey_create(st, rk, SVCKEY_APIKEY_HASH)) != ST_OK ||
        (s = audit_keys_ensure(st, rk)) != ST_OK ||
        (s = store_meta_set(st, "root_key_id", rootkey_id(rk))) != ST_OK) {
        snprintf(err, err_len, "could not store service keys");
        store_close(st);
        return s;
    }
    store_close(st);
    struct keyrings_settings ks = {0};
    if ((s = service_open(&svc, p, &ks, NULL, err, err_len)) != ST_OK)
        return s;
    if ((s = apps_create(svc->apps, "admin", "difyguard administrators", &app, NULL)) != ST_OK ||
        (s = mint_admin_key(svc->apps, admin_key, cap)) != ST_OK) {
        snprintf(err, err_len, "could not create the admin app and key");
        goto out;
    }
    snprintf(marker, sizeof marker, "%lld", (long long)clock_now_s());
    if ((s = store_meta_set(svc->store, "initialized_at", marker)) != ST_OK)
        snprintf(err, err_len, "could not record initialisation");
out:
    service_close(svc);
    return s;
}

enum status
service_init(const struct service_paths *p, char *admin_key, size_t cap, char *root_id,
             size_t root_id_cap, bool *adopted, char *err, size_t err_len)
{
    struct rootkey *rk = NULL;
    enum status s;

    *adopted = false;
    if (mkdir(p->data_dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, err_len, "cannot create data dir %s: %s", p->data_dir, strerror(errno));
        return ST_IO;
    }
    /* A root key provisioned from outside (a Kubernetes Secret, SOPS, an agent) is adopted when
     * it passes the key-file rule; the database must still be uninitialised (init_database). */
    s = rootkey_create(p->root_key, err, err_len);
    if (s == ST_CONFLICT) {
        *adopted = true;
        s = ST_OK;
    }
    if (s != ST_OK)
        return s;
    if ((s = rootkey_load(&rk, p->root_key, err, err_len)) != ST_OK)
        goto fail;
    snprintf(root_id, root_id_cap, "%s", rootkey_id(rk));
    if ((s = init_database(p, rk, admin_key, cap, err, err_len)) != ST_OK)
        goto fail;
    rootkey_free(rk);
    return ST_OK;
fail:
    /* Only a file this call created: a failed init leaves no root key behind, and never
     * removes one it was given. */
    rootkey_free(rk);
    if (!*adopted)
        unlink(p->root_key);
    return s;
}

/* The database records the id of its root key (meta root_key_id: init, rotate-root-key); new
 * key versions are wrapped only under that key (keyrings.c). Databases that lack it get the id of
 * the key that just opened their service keys. */
static enum status
root_key_record(struct store *st, const struct rootkey *rk)
{
    char id[STORE_ROOT_ID_MAX + 16];
    enum status s = store_meta_get(st, "root_key_id", id, sizeof id);

    if (s != ST_NOT_FOUND)
        return s == ST_INTERNAL ? ST_OK : s; /* a mismatch is for keyrings.c to refuse */
    log_msg(LOG_WARN, "root_key_id_recorded", "root_key_id", rootkey_id(rk), LOG_END);
    return store_meta_set(st, "root_key_id", rootkey_id(rk));
}

/* The row-MAC and API-key-hash keys: under s->root, or (rotation) under whichever of s->keys
 * each row names; s->root is then the key that opened the row-MAC key (borrowed from s->keys). */
static enum status
service_keys_load(struct service *s, char *err, size_t err_len)
{
    const struct rootkey *const *keys = (const struct rootkey *const *)s->keys;
    const struct rootkey *used = NULL;
    enum status st;

    if (s->keys == NULL) {
        if ((st = svckey_require(s->store, s->root, SVCKEY_ROWMAC, &s->mac_key, err, err_len)) ==
            ST_OK)
            st = svckey_require(s->store, s->root, SVCKEY_APIKEY_HASH, &s->hash_key, err, err_len);
        return st;
    }
    if ((st = svckey_load_any(s->store, keys, s->n_keys, SVCKEY_ROWMAC, &s->mac_key, &used, err,
                              err_len)) == ST_OK)
        st = svckey_load_any(s->store, keys, s->n_keys, SVCKEY_APIKEY_HASH, &s->hash_key, NULL, err,
                             err_len);
    for (size_t i = 0; st == ST_OK && i < s->n_keys; i++)
        if (s->keys[i] == used)
            s->root = s->keys[i];
    return st == ST_NOT_FOUND ? ST_INVALID : st;
}

/* The store's connection pool (store_pool_stats reads counters only: never waits for the audit
 * writer, which holds the SQLite connection during a group commit). */
static void
store_metrics(const void *self, struct metrics_out *o)
{
    const struct store *st = self;
    struct store_pool_stats p;
    const char *b = store_backend(st);

    store_pool_stats(st, &p);
    metrics_family(o, "difyguard_db_pool_connections", "gauge",
                   "Database connections the pool holds or may open (SQLite: 1).");
    metrics_sample1(o, "difyguard_db_pool_connections", "backend", b, (double)p.size);
    metrics_family(o, "difyguard_db_pool_in_use", "gauge",
                   "Database connections held by an operation now.");
    metrics_sample1(o, "difyguard_db_pool_in_use", "backend", b, (double)p.in_use);
    metrics_family(o, "difyguard_db_pool_waiting", "gauge",
                   "Operations waiting for a database connection now.");
    metrics_sample1(o, "difyguard_db_pool_waiting", "backend", b, (double)p.waiting);
    metrics_family(o, "difyguard_db_pool_waits_total", "counter",
                   "Operations that had to wait for a database connection.");
    metrics_sample1(o, "difyguard_db_pool_waits_total", "backend", b, (double)p.waits_total);
    metrics_family(o, "difyguard_db_pool_wait_seconds_total", "counter",
                   "Time operations spent waiting for a database connection.");
    metrics_sample1(o, "difyguard_db_pool_wait_seconds_total", "backend", b,
                    (double)p.wait_ns_total / 1e9);
    metrics_family(o, "difyguard_db_circuit_open", "gauge",
                   "1 while the circuit breaker refuses database operations (PostgreSQL).");
    metrics_sample1(o, "difyguard_db_circuit_open", "backend", b, (double)p.breaker_open);
    metrics_family(o, "difyguard_db_errors_total", "counter",
                   "Database operations that failed on a database error.");
    metrics_sample1(o, "difyguard_db_errors_total", "backend", b, (double)p.errors_total);
}

/* Each module's series in the metrics registry: GET /metrics walks them. */
static void
metrics_sources(struct service *s)
{
    s->op_stats = op_stats_new();
    s->keymetrics = keymetrics_new(s->store);
    const struct metrics_source src[] = {
        {"process", process_metrics, s}, /* self unused, but registered only when not NULL */
        {"apps", apps_metrics, s->apps},
        {"api_keys", keymetrics_metrics, s->keymetrics},
        {"keyrings", keyrings_metrics, s->keyrings},
        {"crypto", op_stats_metrics, s->op_stats},
        {"audit", audit_metrics, s->audit},
        {"store", store_metrics, s->store},
    };
    s->metrics = metrics_new();
    for (size_t i = 0; i < sizeof src / sizeof src[0]; i++) {
        if (src[i].self != NULL)
            metrics_register(s->metrics, &src[i]);
    }
}

/* Everything after the root key(s): store, service keys, managers, audit writer (as != NULL). */
static enum status
service_start(struct service *s, const struct service_paths *p, const struct keyrings_settings *ks,
              const struct audit_settings *as, char *err, size_t err_len)
{
    enum status st;

    char shown[512]; /* the database as logs may show it: never a password */

    store_url_display(p->database, shown, sizeof shown);
    if ((st = store_open(&s->store, p->database, err, err_len)) != ST_OK ||
        (st = service_keys_load(s, err, err_len)) != ST_OK)
        return st;
    if ((st = root_key_record(s->store, s->root)) != ST_OK) {
        snprintf(err, err_len, "cannot record the root key id in %s", shown);
        return st;
    }
    if ((st = keyrings_open(&s->keyrings, s->store, s->root, s->mac_key, ks)) != ST_OK) {
        snprintf(err, err_len, "cannot load keyrings from %s", shown);
        return st;
    }
    if ((st = apps_open(&s->apps, s->store, s->mac_key, s->hash_key)) != ST_OK) {
        snprintf(err, err_len, "cannot load apps and API keys from %s", shown);
        return st;
    }
    struct audit_settings aset;
    if (as != NULL) {
        /* Several replicas share a PostgreSQL database: each process writes a chain of its own
         * (SQLite has one serve per database, which continues its chain). */
        aset = *as;
        aset.chain_per_process =
            aset.chain_per_process || strcmp(store_backend(s->store), "postgres") == 0;
        if ((st = audit_open(&s->audit, s->store, s->root, s->mac_key, &aset, err, err_len)) !=
            ST_OK)
            return st;
    }
    keyrings_set_audit(s->keyrings, s->audit);
    metrics_sources(s);
    return ST_OK;
}

enum status
service_open(struct service **out, const struct service_paths *p,
             const struct keyrings_settings *ks, const struct audit_settings *as, char *err,
             size_t err_len)
{
    struct service *s = xcalloc(1, sizeof *s);
    enum status st;

    *out = NULL;
    pthread_rwlock_init(&s->jwt_lock, NULL);
    if ((st = rootkey_load(&s->root, p->root_key, err, err_len)) != ST_OK ||
        (st = service_start(s, p, ks, as, err, err_len)) != ST_OK) {
        service_close(s);
        return st;
    }
    *out = s;
    return ST_OK;
}

enum status
service_observe(struct service *s, const struct route_table *routes, char *err, size_t err_len)
{
    const char **methods = xcalloc(routes->n + 1, sizeof *methods);
    const char **paths = xcalloc(routes->n + 1, sizeof *paths);
    struct trace_config tc;
    enum status st;

    for (size_t i = 0; i < routes->n; i++) {
        methods[i] = routes->v[i].method;
        paths[i] = routes->v[i].path;
    }
    s->http_stats = http_stats_new(methods, paths, routes->n);
    free(methods);
    free(paths);
    const struct metrics_source http = {"http", http_stats_metrics, s->http_stats};
    metrics_register(s->metrics, &http);
    if ((st = trace_config_from_env(&tc, NULL, err, err_len)) != ST_OK ||
        (st = tracer_start(&s->tracer, &tc, err, err_len)) != ST_OK)
        return st;
    if (s->tracer != NULL) {
        const struct metrics_source tr = {"trace", tracer_metrics, s->tracer};
        metrics_register(s->metrics, &tr);
    }
    return ST_OK;
}

enum status
service_open_keys(struct service **out, const struct service_paths *p, struct rootkey **keys,
                  size_t n, char *err, size_t err_len)
{
    struct service *s = xcalloc(1, sizeof *s);
    struct keyrings_settings ks = {0};
    enum status st;

    *out = NULL;
    pthread_rwlock_init(&s->jwt_lock, NULL);
    s->keys = keys;
    s->n_keys = n;
    if ((st = service_start(s, p, &ks, NULL, err, err_len)) != ST_OK) {
        service_close(s);
        return st;
    }
    *out = s;
    return ST_OK;
}

void
service_close(struct service *s)
{
    if (s == NULL)
        return;
    compliance_close(s->compliance); /* it reads the inventories and queues audit events */
    certs_close(s->certs); /* its prober may still record a rotation: before the audit writer */
    metrics_free(s->metrics);
    audit_close(s->audit); /* drains the queue first */
    tracer_stop(s->tracer);
    http_stats_free(s->http_stats);
    op_stats_free(s->op_stats);
    keymetrics_free(s->keymetrics);
    jwt_verifier_free(s->jwt);
    pthread_rwlock_destroy(&s->jwt_lock);
    keyrings_close(s->keyrings);
    apps_close(s->apps);
    secret_free(s->mac_key);
    secret_free(s->hash_key);
    store_close(s->store);
    if (s->keys != NULL) {
        for (size_t i = 0; i < s->n_keys; i++)
            rootkey_free(s->keys[i]);
        free(s->keys);
    } else {
        rootkey_free(s->root);
    }
    free(s);
}

enum status
service_jwt_verify(struct service *s, const char *token, size_t len, int64_t now,
                   struct jwt_claims *out, int64_t *rate, int64_t *burst)
{
    enum status st = ST_UNAUTHENTICATED;

    *rate = *burst = 0;
    pthread_rwlock_rdlock(&s->jwt_lock);
    if (s->jwt != NULL) {
        st = jwt_verify(s->jwt, token, len, now, out);
        jwt_verifier_rate(s->jwt, rate, burst);
    } else {
        memset(out, 0, sizeof *out);
    }
    pthread_rwlock_unlock(&s->jwt_lock);
    return st;
}

bool
service_jwt_on(struct service *s)
{
    pthread_rwlock_rdlock(&s->jwt_lock);
    bool on = s->jwt != NULL;
    pthread_rwlock_unlock(&s->jwt_lock);
    return on;
}

void
service_jwt_set(struct service *s, struct jwt_verifier *v)
{
    pthread_rwlock_wrlock(&s->jwt_lock);
    struct jwt_verifier *old = s->jwt;
    s->jwt = v;
    pthread_rwlock_unlock(&s->jwt_lock);
    jwt_verifier_free(old);
}

/* The trail's record of a break-glass key (op admin_key.break_glass, method CLI). */
static struct audit_rec *
break_glass_rec(const char *key_id, unsigned status)
{
    struct audit_rec *rec = audit_rec_new();
    rec->op = "admin_key.break_glass";
    snprintf(rec->method, sizeof rec->method, "CLI");
    rec->route = "difyguard admin-key";
    rec->status = status;
    snprintf(rec->app, sizeof rec->app, "admin");
    snprintf(rec->key_id, sizeof rec->key_id, "%s", key_id);
    return rec;
}

enum status
service_admin_key(struct service *s, char *admin_key, size_t cap)
{
    struct key_spec ks = {.scopes = SCOPE__ALL, .lifetime = APPS_MAX_KEY_LIFETIME};
    char text[APIKEY_TEXT_CHARS + 1], id[APIKEY_ID_CHARS + 1];
    struct audit_rec *rec = NULL;
    struct audit_txn txn;
    struct apikey_issued k;
    enum status st = ST_INTERNAL;

    if (cap > 0)
        admin_key[0] = '\0';
    if (s->audit == NULL || cap <= APIKEY_TEXT_CHARS)
        return ST_INTERNAL; /* break-glass is never unaudited */
    /* Fail closed: the key row and its audit event commit in one transaction, or neither does
     * and no key is shown. The id is known first so the event can name the key. */
    apikey_generate(text, id);
    rec = break_glass_rec(id, 201);
    if ((st = audit_txn_begin(s->audit, &txn, rec)) == ST_OK) {
        st = apps_key_create_text(s->apps, "admin", &ks, text, &k, &txn.row);
        audit_txn_end(&txn, st == ST_OK);
    }
    free(rec);
    if (st == ST_OK) {
        snprintf(admin_key, cap, "%s", text);
        log_msg(LOG_WARN, "break_glass_admin_key", "app", "admin", "key_id", id, "detail",
                "a new admin key was minted locally with the root key", LOG_END);
    } else {
        log_msg(LOG_ERROR, "break_glass_refused", "app", "admin", "error", status_name(st),
                "detail",
                "no key was issued: the key and its audit event are written together "
                "or not at all",
                LOG_END);
        audit_submit(s->audit, break_glass_rec("", 500)); /* the attempt, if it can be */
    }
    sodium_memzero(text, sizeof text);
    apikey_issued_wipe(&k);
    return st;
}

enum status
service_rotate_root(struct service *s, const struct rootkey *to, size_t *count, char *err,
                    size_t err_len)
{
    const struct rootkey *const *from = (const struct rootkey *const *)s->keys;
    char n[32];
    enum status st;

    *count = 0;
    if (s->keys == NULL)
        return ST_INTERNAL; /* opened by service_open_keys only */
    /* KEKs first, each row recording its root key; then the service keys and the database's root
     * key id at once. Until that commit the database opens with the keys it opened with now, and
     * after it with `to`: a repeated run finds every row under a key it is given. */
    if ((st = keyrings_rewrap_all(s->keyrings, from, s->n_keys, to, count, err, err_len)) !=
            ST_OK ||
        (st = svckey_rewrap_all(s->store, from, s->n_keys, to, err, err_len)) != ST_OK)
        return st;
    snprintf(n, sizeof n, "%zu", *count);
    log_msg(LOG_WARN, "root_key_rotated", "from", rootkey_id(s->root), "to", rootkey_id(to),
            "#key_versions", n, LOG_END);
    return ST_OK;
}

bool
service_db_ready(struct service *s)
{
    return s->store == NULL || store_ping(s->store) == ST_OK;
}
