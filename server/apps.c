/* SPDX-License-Identifier: Apache-2.0 */
/* server/apps.c -- apps, API keys and bearer authentication. Stores only keyed hashes of keys;
 * every key row carries a MAC so scopes or expiry edited in the database are refused. */
#include "server/apps.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/checked.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/names.h"
#include "common/xmem.h"
#include "crypto/apikey.h"
#include "crypto/rowmac.h"
#include "server/auth/bloom.h"
#include "server/auth/ratelimit.h"
#include "server/obs/metrics.h"
#include "server/keyrings.h"

#define CACHE_SLOTS 4096
#define CACHE_TTL 10 /* seconds before a cached key row is read again (apps_set_cache_ttl) */

struct cached_key {
    bool used;
    int64_t loaded_at;
    int64_t touched_at; /* last_used_at written to the store */
    struct store_apikey row;
};

struct apps {
    struct store *store;
    const struct secret *mac_key;
    const struct secret *hash_key;
    pthread_mutex_t mu;
    struct cached_key *cache;        /* direct-mapped by a hash of the key id */
    struct bloom *live;              /* ids of keys that exist: unknown ids stop here */
    _Atomic int64_t refresh_due_ns;  /* monotonic: when a filter miss may next read new ids */
    _Atomic int64_t refreshed_since; /* wall seconds: the last read (or load) began then */
    struct ratelimit *limits;
    atomic_uint_fast64_t failures[AUTH_FAIL__COUNT];
    _Atomic int64_t cache_ttl; /* seconds */
};

#define LAST_USED_EVERY 10 /* seconds between last_used_at writes per key */
/* Keys minted by another process reach the filter by a refresh: at most one store read per
 * REFRESH_EVERY_NS for all threads, of the ids created since the last one began (less
 * REFRESH_OVERLAP seconds, for a creation stamped before a commit that waited for the lock). */
#define REFRESH_EVERY_NS (2 * 1000000000LL)
#define REFRESH_OVERLAP 60

static void
apikey_mac(const struct apps *a, const struct store_apikey *k, uint8_t out[static ROWMAC_BYTES])
{
    struct rowmac m;
    rowmac_init(&m, a->mac_key, "api_keys");
    rowmac_str(&m, k->id);
    rowmac_i64(&m, k->app_id);
    rowmac_bytes(&m, k->hash, sizeof k->hash);
    rowmac_str(&m, k->scopes);
    rowmac_str(&m, k->keyrings);
    rowmac_i64(&m, k->created_at);
    rowmac_i64(&m, k->expires_at);
    rowmac_i64(&m, k->revoked_at);
    rowmac_i64(&m, k->rate);
    rowmac_i64(&m, k->burst);
    rowmac_i64(&m, k->grace_until);
    rowmac_final(&m, out);
}

/* --- app rows: MAC over id, name and created_at (keys refer to the id; callers see the name) --- */

static void
app_mac(const struct apps *a, int64_t id, const char *name, int64_t created_at,
        uint8_t out[static ROWMAC_BYTES])
{
    struct rowmac m;
    rowmac_init(&m, a->mac_key, "apps");
    rowmac_i64(&m, id);
    rowmac_str(&m, name);
    rowmac_i64(&m, created_at);
    rowmac_final(&m, out);
}

/* store_app_create's seal: the MAC of a new row, once the database gave it its id. */
static void
app_seal(void *arg, struct store_app *app)
{
    app_mac(arg, app->id, app->name, app->created_at, app->mac);
    app->has_mac = true;
}

/* An app row (or the app columns joined to a key row) is used only if its MAC holds. A row
 * without a MAC is refused too: those from before migration 0003 got theirs at apps_open. */
static bool
app_row_ok(const struct apps *a, int64_t id, const char *name, int64_t created_at,
           const uint8_t mac[static ROWMAC_BYTES], bool has_mac)
{
    uint8_t want[ROWMAC_BYTES];
    bool ok;

    app_mac(a, id, name, created_at, want);
    ok = has_mac && sodium_memcmp(want, mac, sizeof want) == 0;
    if (!ok)
        log_msg(LOG_ERROR, "app_integrity_failure", "app", name, "detail",
                "an app row does not match its MAC; refusing it", LOG_END);
    return ok;
}

static bool
app_ok(const struct apps *a, const struct store_app *app)
{
    return app_row_ok(a, app->id, app->name, app->created_at, app->mac, app->has_mac);
}

static bool
key_app_ok(const struct apps *a, const struct store_apikey *k)
{
    return app_row_ok(a, k->app_id, k->app_name, k->app_created_at, k->app_mac, k->app_has_mac);
}

/* Rows from before migration 0003 get their MAC on the first start after it (logged). From
 * then on (meta apps_mac_since) a row without a MAC is an integrity failure, not a candidate. */
static enum status
seal_legacy_apps(struct apps *a)
{
    struct store_app *apps = NULL;
    char since[32];
    size_t n = 0;
    enum status st = store_meta_get(a->store, "apps_mac_since", since, sizeof since);
    bool sealed = st == ST_OK;

    if ((st != ST_OK && st != ST_NOT_FOUND) || (st = store_app_list(a->store, &apps, &n)) != ST_OK)
        return st;
    for (size_t i = 0; i < n && st == ST_OK; i++) {
        if (apps[i].has_mac || sealed)
            continue; /* checked where used */
        app_seal(a, &apps[i]);
        if ((st = store_app_seal(a->store, &apps[i])) == ST_OK)
            log_msg(LOG_WARN, "app_mac_added", "app", apps[i].name, "detail",
                    "an app row from before migration 0003 got its MAC", LOG_END);
        else if (st == ST_NOT_FOUND)
            st = ST_OK; /* another process sealed or changed it meanwhile */
    }
    free(apps);
    if (st == ST_OK && !sealed) {
        snprintf(since, sizeof since, "%lld", (long long)clock_now_s());
        st = store_meta_set(a->store, "apps_mac_since", since);
    }
    return st;
}

/* Every stored key id goes in the filter; revoked ones too (the lookup refuses them), so the
 * filter only ever grows between restarts. */
static int64_t
mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static enum status
load_bloom(struct apps *a)
{
    struct store_apikey *keys = NULL;
    size_t n = 0;
    enum status st;

    atomic_store(&a->refreshed_since, clock_now_s());
    atomic_store(&a->refresh_due_ns, mono_ns() + REFRESH_EVERY_NS);
    st = store_apikey_list(a->store, 0, &keys, &n);

    if (st == ST_OK)
        st = bloom_new(&a->live, n + 100000, 0.001);
    for (size_t i = 0; i < n && st == ST_OK; i++)
        bloom_add(a->live, keys[i].id, strlen(keys[i].id));
    free(keys);
    return st;
}

enum status
apps_open(struct apps **out, struct store *st, const struct secret *mac_key,
          const struct secret *hash_key)
{
    struct apps *a = xcalloc(1, sizeof *a);
    a->store = st;
    atomic_init(&a->cache_ttl, CACHE_TTL);
    a->mac_key = mac_key;
    a->hash_key = hash_key;
    a->cache = xcalloc(CACHE_SLOTS, sizeof *a->cache);
    pthread_mutex_init(&a->mu, NULL);
    a->limits = ratelimit_new(RATELIMIT_DEFAULT_KEYS);
    *out = a;
    enum status s = seal_legacy_apps(a);
    return s == ST_OK ? load_bloom(a) : s;
}

void
apps_forget_all(struct apps *a)
{
    pthread_mutex_lock(&a->mu);
    for (size_t i = 0; i < CACHE_SLOTS; i++)
        a->cache[i].used = false;
    pthread_mutex_unlock(&a->mu);
}

void
apps_set_cache_ttl(struct apps *a, int64_t seconds)
{
    atomic_store(&a->cache_ttl, seconds);
}

void
apps_close(struct apps *a)
{
    if (a == NULL)
        return;
    sodium_memzero(a->cache, CACHE_SLOTS * sizeof *a->cache);
    free(a->cache);
    bloom_free(a->live);
    ratelimit_free(a->limits);
    pthread_mutex_destroy(&a->mu);
    free(a);
}

static void
app_info_of(struct app_info *out, const struct store_app *app)
{
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", app->name);
    snprintf(out->description, sizeof out->description, "%s", app->description);
    out->created_at = app->created_at;
}

enum status
apps_create(struct apps *a, const char *name, const char *description, struct app_info *out,
            const struct store_audit_row *ev)
{
    struct store_app app = {0};
    enum status st;

    memset(out, 0, sizeof *out);
    if (!names_valid(name) || strlen(description) >= sizeof app.description)
        return ST_INVALID;
    snprintf(app.name, sizeof app.name, "%s", name);
    snprintf(app.description, sizeof app.description, "%s", description);
    app.created_at = clock_now_s();
    if ((st = store_app_create(a->store, &app, app_seal, a, ev)) != ST_OK)
        return st;
    log_msg(LOG_INFO, "app_created", "app", name, LOG_END);
    app_info_of(out, &app);
    return ST_OK;
}

enum status
apps_get(struct apps *a, const char *name, struct app_info *out)
{
    struct store_app app;
    enum status st;

    memset(out, 0, sizeof *out);
    if (!names_valid(name))
        return ST_NOT_FOUND;
    if ((st = store_app_get(a->store, name, &app)) != ST_OK)
        return st;
    if (!app_ok(a, &app))
        return ST_INTEGRITY;
    app_info_of(out, &app);
    return ST_OK;
}

enum status
apps_list(struct apps *a, struct app_info **out, size_t *n)
{
    struct store_app *apps = NULL;
    size_t m = 0;
    enum status st;

    *out = NULL;
    *n = 0;
    if ((st = store_app_list(a->store, &apps, &m)) != ST_OK)
        return st;
    *out = xcalloc(m ? m : 1, sizeof **out);
    for (size_t i = 0; i < m; i++)
        if (app_ok(a, &apps[i])) /* a refused row is logged and left out */
            app_info_of(&(*out)[(*n)++], &apps[i]);
    free(apps);
    return ST_OK;
}

enum status
apps_usage(struct apps *a, const char *app, const char *from_day, const char *to_day,
           struct store_usage **out, size_t *n)
{
    struct app_info info;
    enum status st = apps_get(a, app, &info);

    *out = NULL;
    *n = 0;
    return st == ST_OK ? store_usage_list(a->store, app, from_day, to_day, out, n) : st;
}

static void
key_info_of(struct apikey_info *out, const struct store_apikey *k)
{
    memset(out, 0, sizeof *out);
    snprintf(out->id, sizeof out->id, "%s", k->id);
    snprintf(out->app, sizeof out->app, "%s", k->app_name);
    snprintf(out->scopes, sizeof out->scopes, "%s", k->scopes);
    snprintf(out->keyrings, sizeof out->keyrings, "%s", k->keyrings);
    out->created_at = k->created_at;
    out->expires_at = k->expires_at;
    out->revoked_at = k->revoked_at;
    out->grace_until = k->grace_until;
    out->last_used_at = k->last_used_at;
    out->rate = k->rate;
    out->burst = k->burst;
}

void
apikey_issued_wipe(struct apikey_issued *k)
{
    sodium_memzero(k, sizeof *k);
}

static enum status
insert_key(struct apps *a, struct store_apikey *k, const char *given,
           const struct store_apikey *old, struct apikey_issued *out,
           const struct store_audit_row *ev)
{
    char text[APIKEY_TEXT_CHARS + 1];
    enum status st;

    if (given == NULL)
        apikey_generate(text, k->id);
    else if (strlen(given) != APIKEY_TEXT_CHARS ||
             apikey_parse(k->id, given, APIKEY_TEXT_CHARS) != ST_OK)
        return ST_INVALID;
    else
        memcpy(text, given, sizeof text);
    apikey_hash(k->hash, a->hash_key, text, APIKEY_TEXT_CHARS);
    apikey_mac(a, k, k->mac);
    st = old == NULL ? store_apikey_create(a->store, k, ev)
                     : store_apikey_rotate(a->store, k, old, ev);
    if (st == ST_OK) {
        bloom_add(a->live, k->id, strlen(k->id));
        key_info_of(&out->info, k);
        memcpy(out->key, text, sizeof out->key);
        log_msg(LOG_INFO, "api_key_created", "app", k->app_name, "key_id", k->id, "scopes",
                k->scopes, LOG_END);
    }
    sodium_memzero(text, sizeof text);
    return st;
}

/* May `by` (NULL: a local caller) issue key k? ST_FORBIDDEN with *why set when not. */
static enum status
grant_check(const struct principal *by, const struct store_apikey *k, const char **why)
{
    enum grant_refusal g;

    if (by == NULL)
        return ST_OK;
    g = principal_may_grant(by, scopes_from_text(k->scopes), k->keyrings, k->expires_at);
    if (g == GRANT_OK)
        return ST_OK;
    if (why != NULL)
        *why = grant_refusal_text(g);
    return ST_FORBIDDEN;
}

/* A new key for app, bounded by `by` (NULL: a local caller); text: the key text to use (NULL:
 * a fresh one). */
static enum status
key_create(struct apps *a, const char *app, const struct key_spec *ks, const struct principal *by,
           const char **why, const char *text, struct apikey_issued *out,
           const struct store_audit_row *ev)
{
    struct store_app ap;
    struct store_apikey k = {0};
    enum status st;

    memset(out, 0, sizeof *out);
    if (ks->scopes == 0 || (ks->scopes & ~(uint32_t)SCOPE__ALL) != 0 || ks->lifetime < 1 ||
        ks->lifetime > APPS_MAX_KEY_LIFETIME || ks->rate < 0 || ks->burst < 0 ||
        (ks->keyrings != NULL && strlen(ks->keyrings) >= sizeof k.keyrings))
        return ST_INVALID;
    scopes_to_text(k.scopes, ks->scopes);
    snprintf(k.keyrings, sizeof k.keyrings, "%s", ks->keyrings != NULL ? ks->keyrings : "");
    k.created_at = clock_now_s();
    k.expires_at = checked_time_add(k.created_at, ks->lifetime);
    if ((st = grant_check(by, &k, why)) != ST_OK)
        return st;
    if (!names_valid(app))
        return ST_NOT_FOUND;
    if ((st = store_app_get(a->store, app, &ap)) != ST_OK)
        return st;
    if (!app_ok(a, &ap))
        return ST_INTEGRITY;
    k.app_id = ap.id;
    snprintf(k.app_name, sizeof k.app_name, "%s", ap.name);
    k.rate = ks->rate;
    k.burst = ks->rate > 0 && ks->burst == 0 ? ks->rate : ks->burst;
    return insert_key(a, &k, text, NULL, out, ev);
}

enum status
apps_key_grant(struct apps *a, const char *app, const struct key_spec *ks,
               const struct principal *by, const char **why, struct apikey_issued *out,
               const struct store_audit_row *ev)
{
    return key_create(a, app, ks, by, why, NULL, out, ev);
}

enum status
apps_key_create(struct apps *a, const char *app, const struct key_spec *ks,
                struct apikey_issued *out, const struct store_audit_row *ev)
{
    return key_create(a, app, ks, NULL, NULL, NULL, out, ev);
}

enum status
apps_key_create_text(struct apps *a, const char *app, const struct key_spec *ks, const char *text,
                     struct apikey_issued *out, const struct store_audit_row *ev)
{
    return key_create(a, app, ks, NULL, NULL, text, out, ev);
}

static void forget_cached(struct apps *a, const char *key_id);

enum status
apps_key_rotate(struct apps *a, const char *app, const char *key_id, int64_t grace,
                const struct principal *by, const char **why, struct apikey_issued *out,
                const struct store_audit_row *ev)
{
    struct store_apikey old, k;
    uint8_t mac[ROWMAC_BYTES];
    int64_t now = clock_now_s();
    enum status st;

    memset(out, 0, sizeof *out);
    if (grace < 0 || grace > APPS_MAX_GRACE)
        return ST_INVALID;
    if (strlen(key_id) != APIKEY_ID_CHARS)
        return ST_NOT_FOUND;
    if ((st = store_apikey_get(a->store, key_id, &old)) != ST_OK)
        return st;
    apikey_mac(a, &old, mac);
    if (sodium_memcmp(mac, old.mac, sizeof mac) != 0 || !key_app_ok(a, &old))
        return ST_INTEGRITY;
    if (strcmp(old.app_name, app) != 0)
        return ST_NOT_FOUND;
    if (old.revoked_at != 0 || old.expires_at <= now ||
        (old.grace_until != 0 && old.grace_until <= now))
        return ST_CONFLICT;
    k = old;
    k.created_at = now;
    k.expires_at = checked_time_add(now, old.expires_at - old.created_at);
    k.grace_until = 0;
    k.last_used_at = 0;
    if ((st = grant_check(by, &k, why)) != ST_OK)
        return st;
    old.grace_until = checked_time_add(now, grace);
    apikey_mac(a, &old, old.mac);
    /* The new key, the old key's grace and the event commit together: no live key without its
     * event, and no key text shown unless all of it was written. */
    if ((st = insert_key(a, &k, NULL, &old, out, ev)) != ST_OK)
        return st;
    forget_cached(a, key_id);
    log_msg(LOG_INFO, "api_key_rotated", "app", app, "old_key_id", key_id, "key_id", k.id, LOG_END);
    return ST_OK;
}

enum status
apps_key_list(struct apps *a, const char *app, struct apikey_info **out, size_t *n)
{
    struct store_app ap;
    struct store_apikey *keys = NULL;
    size_t m = 0;
    enum status st;

    *out = NULL;
    *n = 0;
    if (!names_valid(app))
        return ST_NOT_FOUND;
    if ((st = store_app_get(a->store, app, &ap)) != ST_OK)
        return st;
    if (!app_ok(a, &ap))
        return ST_INTEGRITY;
    if ((st = store_apikey_list(a->store, ap.id, &keys, &m)) != ST_OK)
        return st;
    *out = xcalloc(m ? m : 1, sizeof **out);
    for (size_t i = 0; i < m; i++)
        key_info_of(&(*out)[i], &keys[i]);
    *n = m;
    sodium_memzero(keys, m * sizeof *keys);
    free(keys);
    return ST_OK;
}

static struct cached_key *
slot_of(struct apps *a, const char *id)
{
    uint32_t h = 2166136261u;
    for (const char *p = id; *p != '\0'; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    return &a->cache[h % CACHE_SLOTS];
}

static void
forget_cached(struct apps *a, const char *key_id)
{
    pthread_mutex_lock(&a->mu);
    struct cached_key *c = slot_of(a, key_id);
    if (c->used && strcmp(c->row.id, key_id) == 0)
        c->used = false;
    pthread_mutex_unlock(&a->mu);
}

enum status
apps_key_revoke(struct apps *a, const char *app, const char *key_id, const struct principal *by,
                const char **why, const struct store_audit_row *ev)
{
    struct store_apikey k, bound;
    enum status st;

    if (strlen(key_id) != APIKEY_ID_CHARS)
        return ST_NOT_FOUND;
    if ((st = store_apikey_get(a->store, key_id, &k)) != ST_OK)
        return st;
    if (!key_app_ok(a, &k))
        return ST_INTEGRITY; /* whose key it is cannot be told */
    if (strcmp(k.app_name, app) != 0)
        return ST_NOT_FOUND;
    bound = k;
    bound.expires_at = 0; /* revoking never extends a lifetime: no expiry bound */
    if ((st = grant_check(by, &bound, why)) != ST_OK)
        return st;
    if (k.revoked_at == 0) {
        k.revoked_at = clock_now_s();
        apikey_mac(a, &k, k.mac);
        if ((st = store_apikey_revoke(a->store, key_id, k.revoked_at, k.mac, ev)) != ST_OK)
            return st;
    }
    forget_cached(a, key_id);
    log_msg(LOG_INFO, "api_key_revoked", "app", app, "key_id", key_id, LOG_END);
    return ST_OK;
}

/* The key row for id, from the cache or the store (MAC-checked before it is cached). */
static enum status
key_row(struct apps *a, const char *id, struct store_apikey *out)
{
    int64_t now = clock_now_s();
    uint8_t mac[ROWMAC_BYTES];
    enum status st;

    pthread_mutex_lock(&a->mu);
    struct cached_key *c = slot_of(a, id);
    bool hit =
        c->used && strcmp(c->row.id, id) == 0 && now - c->loaded_at < atomic_load(&a->cache_ttl);
    if (hit)
        *out = c->row;
    pthread_mutex_unlock(&a->mu);
    if (hit)
        return ST_OK;
    if ((st = store_apikey_get(a->store, id, out)) != ST_OK)
        return st == ST_NOT_FOUND ? ST_UNAUTHENTICATED : st;
    apikey_mac(a, out, mac);
    if (sodium_memcmp(mac, out->mac, sizeof mac) != 0) {
        log_msg(LOG_ERROR, "api_key_integrity_failure", "key_id", id, "detail",
                "an API key row does not match its MAC; refusing it", LOG_END);
        return ST_INTEGRITY;
    }
    if (!key_app_ok(a, out))
        return ST_INTEGRITY; /* the app it names is not the app it belongs to */
    pthread_mutex_lock(&a->mu);
    c = slot_of(a, id);
    c->used = true;
    c->loaded_at = now;
    c->row = *out;
    pthread_mutex_unlock(&a->mu);
    return ST_OK;
}

static const char *const fail_names[AUTH_FAIL__COUNT] = {
    "malformed", "unknown_key", "bad_secret",   "revoked",
    "expired",   "integrity",   "rate_limited", "jwt",
};

const char *
auth_fail_name(enum auth_fail f)
{
    return (unsigned)f < AUTH_FAIL__COUNT ? fail_names[f] : "unknown";
}

uint64_t
apps_auth_failures(const struct apps *a, enum auth_fail f)
{
    return (unsigned)f < AUTH_FAIL__COUNT ? atomic_load(&a->failures[f]) : 0;
}

void
apps_count_failure(struct apps *a, enum auth_fail f)
{
    if ((unsigned)f < AUTH_FAIL__COUNT)
        atomic_fetch_add(&a->failures[f], 1);
}

enum status
apps_rate_check(struct apps *a, const char *bucket, int64_t rate, int64_t burst,
                unsigned *retry_after)
{
    struct timespec ts;
    double wait = 0;

    if (rate <= 0)
        return ST_OK;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t now_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    if (ratelimit_take(a->limits, bucket, (double)rate, (double)(burst > 0 ? burst : rate), now_ns,
                       &wait))
        return ST_OK;
    *retry_after = wait < 1 ? 1 : (unsigned)ceil(wait);
    apps_count_failure(a, AUTH_FAIL_RATE_LIMITED);
    return ST_RATE_LIMITED;
}

/* Record use in the store at most every LAST_USED_EVERY seconds per key. */
static void
touch(struct apps *a, const char *id, int64_t now)
{
    bool due = false;
    pthread_mutex_lock(&a->mu);
    struct cached_key *c = slot_of(a, id);
    if (c->used && strcmp(c->row.id, id) == 0 && now - c->touched_at >= LAST_USED_EVERY) {
        c->touched_at = now;
        due = true;
    }
    pthread_mutex_unlock(&a->mu);
    if (due && store_apikey_touch(a->store, id, now) != ST_OK)
        log_msg(LOG_WARN, "last_used_write_failed", "key_id", id, LOG_END);
}

/* Keys minted by another process (the admin-key command, another replica) are not in this
 * process's filter until the next refresh: on a filter miss, the first thread after the interval
 * reads the ids created since the last refresh into the filter. A flood of unknown ids then costs
 * one cheap query per interval, and never keeps a new key out for longer than that. */
static void
refresh_filter(struct apps *a)
{
    int64_t now = mono_ns(), due = atomic_load(&a->refresh_due_ns), began = clock_now_s();
    char(*ids)[STORE_KEY_ID_MAX] = NULL;
    size_t n = 0;

    if (now < due ||
        !atomic_compare_exchange_strong(&a->refresh_due_ns, &due, now + REFRESH_EVERY_NS))
        return; /* not yet, or another thread is at it */
    if (store_apikey_ids_since(a->store, atomic_load(&a->refreshed_since) - REFRESH_OVERLAP, &ids,
                               &n) != ST_OK) {
        log_msg(LOG_WARN, "key_filter_refresh_failed", LOG_END);
        return;
    }
    for (size_t i = 0; i < n; i++)
        if (!bloom_maybe_contains(a->live, ids[i], strlen(ids[i])))
            bloom_add(a->live, ids[i], strlen(ids[i]));
    atomic_store(&a->refreshed_since, began);
    free(ids);
}

/* Besides the refresh, a few direct store lookups a second (a token bucket of MISS_RATE, shared)
 * for ids the filter lacks: a key minted a moment ago may work before the next refresh. */
#define MISS_RATE 10.0
static bool
miss_budget(struct apps *a)
{
    struct timespec ts;
    double wait = 0;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ratelimit_take(a->limits, "\001filter-miss", MISS_RATE, MISS_RATE,
                          (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec, &wait);
}

static enum auth_fail
check_key(const struct store_apikey *k, const uint8_t hash[static APIKEY_HASH_BYTES], int64_t now)
{
    if (!apikey_hash_equal(hash, k->hash))
        return AUTH_FAIL_BAD_SECRET;
    if (k->revoked_at != 0)
        return AUTH_FAIL_REVOKED;
    if (k->expires_at <= now || (k->grace_until != 0 && k->grace_until <= now))
        return AUTH_FAIL_EXPIRED;
    return AUTH_FAIL__COUNT; /* no failure */
}

enum status
apps_authenticate(struct apps *a, const char *token, size_t len, struct principal *p,
                  unsigned *retry_after)
{
    char id[APIKEY_ID_CHARS + 1];
    uint8_t hash[APIKEY_HASH_BYTES];
    struct store_apikey k;
    int64_t now = clock_now_s();
    enum auth_fail why;
    enum status st;

    memset(p, 0, sizeof *p);
    if (apikey_parse(id, token, len) != ST_OK) {
        apps_count_failure(a, AUTH_FAIL_MALFORMED);
        return ST_UNAUTHENTICATED;
    }
    bool in_filter = bloom_maybe_contains(a->live, id, strlen(id));
    if (!in_filter) {
        refresh_filter(a);
        in_filter = bloom_maybe_contains(a->live, id, strlen(id));
    }
    if (!in_filter && !miss_budget(a)) {
        apps_count_failure(a, AUTH_FAIL_UNKNOWN);
        return ST_UNAUTHENTICATED;
    }
    if ((st = key_row(a, id, &k)) != ST_OK) {
        apps_count_failure(a, st == ST_INTEGRITY ? AUTH_FAIL_INTEGRITY : AUTH_FAIL_UNKNOWN);
        return st;
    }
    if (!in_filter)
        bloom_add(a->live, id, strlen(id)); /* minted elsewhere: known from now on */
    apikey_hash(hash, a->hash_key, token, len);
    why = check_key(&k, hash, now);
    sodium_memzero(hash, sizeof hash);
    if (why != AUTH_FAIL__COUNT) {
        /* A known key (revoked, expired, wrong secret): the trail names it; no scopes granted. */
        apps_count_failure(a, why);
        snprintf(p->app, sizeof p->app, "%s", k.app_name);
        snprintf(p->key_id, sizeof p->key_id, "%s", k.id);
        return ST_UNAUTHENTICATED;
    }
    snprintf(p->app, sizeof p->app, "%s", k.app_name);
    snprintf(p->key_id, sizeof p->key_id, "%s", k.id);
    p->scopes = scopes_from_text(k.scopes);
    snprintf(p->keyrings, sizeof p->keyrings, "%s", k.keyrings);
    p->expires_at =
        k.grace_until != 0 && k.grace_until < k.expires_at ? k.grace_until : k.expires_at;
    touch(a, id, now);
    return apps_rate_check(a, k.id, k.rate, k.burst, retry_after);
}

void
apps_metrics(const void *self, struct metrics_out *o)
{
    const struct apps *a = self;

    metrics_family(o, "difyguard_auth_failures_total", "counter",
                   "Refused authentications, by reason.");
    for (int f = 0; f < AUTH_FAIL__COUNT; f++)
        metrics_sample1(o, "difyguard_auth_failures_total", "reason",
                        auth_fail_name((enum auth_fail)f), (double)atomic_load(&a->failures[f]));
}
