/* SPDX-License-Identifier: Apache-2.0 */
/* server/apps.c -- apps, API keys and bearer authentication. Stores only keyed hashes of keys;
 * every key row carries a MAC so scopes or expiry edited in the database are refused. */
#include "server/apps.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/xmem.h"
#include "crypto/apikey.h"
#include "crypto/rowmac.h"
#include "server/jsonx.h"
#include "server/keyrings.h"
#include "server/log.h"

#define CACHE_SLOTS 4096
#define CACHE_TTL 10            /* seconds before a cached key row is read again */

static const char *const scope_names[] = {
    "encrypt", "decrypt", "rewrap", "datakey", "datakey:plaintext", "keyrings:admin",
    "apps:admin", "audit:read", "certs:read", "certs:write", "compliance:read",
};
#define N_SCOPES (sizeof scope_names / sizeof scope_names[0])

struct cached_key {
    bool used;
    int64_t loaded_at;
    struct store_apikey row;
};

struct apps {
    struct store *store;
    const struct secret *mac_key;
    const struct secret *hash_key;
    pthread_mutex_t mu;
    struct cached_key *cache;      /* direct-mapped by a hash of the key id */
};

uint32_t
scope_parse(const char *name, size_t len)
{
    for (size_t i = 0; i < N_SCOPES; i++)
        if (strlen(scope_names[i]) == len && memcmp(scope_names[i], name, len) == 0)
            return 1u << i;
    return 0;
}

const char *
scope_name(uint32_t bit)
{
    for (size_t i = 0; i < N_SCOPES; i++)
        if (bit == 1u << i)
            return scope_names[i];
    return "unknown";
}

static uint32_t
scopes_from_text(const char *text)
{
    uint32_t s = 0;
    for (const char *p = text; *p != '\0';) {
        size_t n = strcspn(p, " ");
        s |= scope_parse(p, n);
        p += n;
        p += strspn(p, " ");
    }
    return s;
}

static void
scopes_to_text(char out[static STORE_SCOPES_MAX], uint32_t scopes)
{
    out[0] = '\0';
    for (size_t i = 0; i < N_SCOPES; i++) {
        if (!(scopes & (1u << i)))
            continue;
        if (out[0] != '\0')
            strcat(out, " ");
        strcat(out, scope_names[i]);
    }
}

bool
principal_allows(const struct principal *p, uint32_t scopes, const char *keyring)
{
    if ((p->scopes & scopes) != scopes)
        return false;
    if (keyring == NULL || p->keyrings[0] == '\0')
        return true;
    size_t kl = strlen(keyring);
    for (const char *s = p->keyrings; *s != '\0';) {
        size_t n = strcspn(s, " ");
        if (n == kl && memcmp(s, keyring, n) == 0)
            return true;
        s += n;
        s += strspn(s, " ");
    }
    return false;
}

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
    rowmac_final(&m, out);
}

enum status
apps_open(struct apps **out, struct store *st, const struct secret *mac_key,
          const struct secret *hash_key)
{
    struct apps *a = xcalloc(1, sizeof *a);
    a->store = st;
    a->mac_key = mac_key;
    a->hash_key = hash_key;
    a->cache = xcalloc(CACHE_SLOTS, sizeof *a->cache);
    pthread_mutex_init(&a->mu, NULL);
    *out = a;
    return ST_OK;
}

void
apps_close(struct apps *a)
{
    if (a == NULL)
        return;
    sodium_memzero(a->cache, CACHE_SLOTS * sizeof *a->cache);
    free(a->cache);
    pthread_mutex_destroy(&a->mu);
    free(a);
}

static json_t *
app_json(const struct store_app *app)
{
    return json_pack("{s:s, s:s, s:o}", "name", app->name, "description", app->description,
                     "created_at", jx_time(app->created_at));
}

enum status
apps_create(struct apps *a, const char *name, const char *description, json_t **out)
{
    struct store_app app = {0};
    enum status st;

    *out = NULL;
    if (!name_valid(name) || strlen(description) >= sizeof app.description)
        return ST_INVALID;
    snprintf(app.name, sizeof app.name, "%s", name);
    snprintf(app.description, sizeof app.description, "%s", description);
    app.created_at = now_s();
    if ((st = store_app_create(a->store, &app)) != ST_OK)
        return st;
    log_msg(LOG_INFO, "app_created", "app", name, LOG_END);
    *out = app_json(&app);
    return ST_OK;
}

enum status
apps_get(struct apps *a, const char *name, json_t **out)
{
    struct store_app app;
    enum status st;

    *out = NULL;
    if (!name_valid(name))
        return ST_NOT_FOUND;
    if ((st = store_app_get(a->store, name, &app)) == ST_OK)
        *out = app_json(&app);
    return st;
}

enum status
apps_list(struct apps *a, json_t **out)
{
    struct store_app *apps = NULL;
    size_t n = 0;
    enum status st;

    *out = NULL;
    if ((st = store_app_list(a->store, &apps, &n)) != ST_OK)
        return st;
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, app_json(&apps[i]));
    free(apps);
    *out = json_pack("{s:o}", "apps", arr);
    return ST_OK;
}

static json_t *
strlist_json(const char *text, bool null_when_empty)
{
    if (text[0] == '\0' && null_when_empty)
        return json_null();
    json_t *arr = json_array();
    for (const char *p = text; *p != '\0';) {
        size_t n = strcspn(p, " ");
        json_array_append_new(arr, json_stringn(p, n));
        p += n;
        p += strspn(p, " ");
    }
    return arr;
}

static json_t *
key_json(const struct store_apikey *k)
{
    return json_pack("{s:s, s:s, s:o, s:o, s:o, s:o, s:o}",
        "id", k->id, "app", k->app_name,
        "scopes", strlist_json(k->scopes, false),
        "keyrings", strlist_json(k->keyrings, true),
        "created_at", jx_time(k->created_at),
        "expires_at", jx_time(k->expires_at),
        "revoked_at", jx_time(k->revoked_at));
}

enum status
apps_key_create(struct apps *a, const char *app, uint32_t scopes, const char *keyrings,
                int64_t lifetime, json_t **out)
{
    struct store_app ap;
    struct store_apikey k = {0};
    char text[APIKEY_TEXT_CHARS + 1];
    enum status st;

    *out = NULL;
    if (scopes == 0 || (scopes & ~(uint32_t)SCOPE__ALL) != 0 || lifetime < 1 ||
        lifetime > APPS_MAX_KEY_LIFETIME ||
        (keyrings != NULL && strlen(keyrings) >= sizeof k.keyrings))
        return ST_INVALID;
    if (!name_valid(app))
        return ST_NOT_FOUND;
    if ((st = store_app_get(a->store, app, &ap)) != ST_OK)
        return st;
    apikey_generate(text, k.id);
    k.app_id = ap.id;
    snprintf(k.app_name, sizeof k.app_name, "%s", ap.name);
    apikey_hash(k.hash, a->hash_key, text, APIKEY_TEXT_CHARS);
    scopes_to_text(k.scopes, scopes);
    snprintf(k.keyrings, sizeof k.keyrings, "%s", keyrings != NULL ? keyrings : "");
    k.created_at = now_s();
    k.expires_at = k.created_at + lifetime;
    apikey_mac(a, &k, k.mac);
    if ((st = store_apikey_create(a->store, &k)) == ST_OK) {
        *out = key_json(&k);
        json_object_set_new(*out, "key", json_string(text));
        log_msg(LOG_INFO, "api_key_created", "app", ap.name, "key_id", k.id, "scopes", k.scopes,
                LOG_END);
    }
    sodium_memzero(text, sizeof text);
    return st;
}

enum status
apps_key_list(struct apps *a, const char *app, json_t **out)
{
    struct store_app ap;
    struct store_apikey *keys = NULL;
    size_t n = 0;
    enum status st;

    *out = NULL;
    if (!name_valid(app))
        return ST_NOT_FOUND;
    if ((st = store_app_get(a->store, app, &ap)) != ST_OK ||
        (st = store_apikey_list(a->store, ap.id, &keys, &n)) != ST_OK)
        return st;
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, key_json(&keys[i]));
    free(keys);
    *out = json_pack("{s:o}", "keys", arr);
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

enum status
apps_key_revoke(struct apps *a, const char *app, const char *key_id)
{
    struct store_apikey k;
    enum status st;

    if (strlen(key_id) != APIKEY_ID_CHARS)
        return ST_NOT_FOUND;
    if ((st = store_apikey_get(a->store, key_id, &k)) != ST_OK)
        return st;
    if (strcmp(k.app_name, app) != 0)
        return ST_NOT_FOUND;
    if (k.revoked_at == 0) {
        k.revoked_at = now_s();
        apikey_mac(a, &k, k.mac);
        if ((st = store_apikey_revoke(a->store, key_id, k.revoked_at, k.mac)) != ST_OK)
            return st;
    }
    pthread_mutex_lock(&a->mu);
    struct cached_key *c = slot_of(a, key_id);
    if (c->used && strcmp(c->row.id, key_id) == 0)
        c->used = false;
    pthread_mutex_unlock(&a->mu);
    log_msg(LOG_INFO, "api_key_revoked", "app", app, "key_id", key_id, LOG_END);
    return ST_OK;
}

/* The key row for id, from the cache or the store (MAC-checked before it is cached). */
static enum status
key_row(struct apps *a, const char *id, struct store_apikey *out)
{
    int64_t now = now_s();
    uint8_t mac[ROWMAC_BYTES];
    enum status st;

    pthread_mutex_lock(&a->mu);
    struct cached_key *c = slot_of(a, id);
    bool hit = c->used && strcmp(c->row.id, id) == 0 && now - c->loaded_at < CACHE_TTL;
    if (hit)
        *out = c->row;
    pthread_mutex_unlock(&a->mu);
    if (hit)
        return ST_OK;
    if ((st = store_apikey_get(a->store, id, out)) != ST_OK)
        return st == ST_NOT_FOUND ? ST_UNAUTHENTICATED : st;
    apikey_mac(a, out, mac);
    if (sodium_memcmp(mac, out->mac, sizeof mac) != 0) {
        log_msg(LOG_ERROR, "api_key_integrity_failure", "key_id", id,
                "detail", "an API key row does not match its MAC; refusing it", LOG_END);
        return ST_INTEGRITY;
    }
    pthread_mutex_lock(&a->mu);
    c = slot_of(a, id);
    c->used = true;
    c->loaded_at = now;
    c->row = *out;
    pthread_mutex_unlock(&a->mu);
    return ST_OK;
}

enum status
apps_authenticate(struct apps *a, const char *token, size_t len, struct principal *p)
{
    char id[APIKEY_ID_CHARS + 1];
    uint8_t hash[APIKEY_HASH_BYTES];
    struct store_apikey k;
    enum status st;

    memset(p, 0, sizeof *p);
    if ((st = apikey_parse(id, token, len)) != ST_OK)
        return ST_UNAUTHENTICATED;
    if ((st = key_row(a, id, &k)) != ST_OK)
        return st;
    apikey_hash(hash, a->hash_key, token, len);
    if (!apikey_hash_equal(hash, k.hash) || k.revoked_at != 0 || k.expires_at <= now_s()) {
        st = ST_UNAUTHENTICATED;
        goto out;
    }
    snprintf(p->app, sizeof p->app, "%s", k.app_name);
    snprintf(p->key_id, sizeof p->key_id, "%s", k.id);
    p->scopes = scopes_from_text(k.scopes);
    snprintf(p->keyrings, sizeof p->keyrings, "%s", k.keyrings);
out:
    sodium_memzero(hash, sizeof hash);
    return st;
}
