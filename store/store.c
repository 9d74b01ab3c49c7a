/* SPDX-License-Identifier: Apache-2.0 */
/* store/store.c -- picks a backend from the database URL and forwards every call through
 * its ops table, after checking arguments and setting out-params. Never touches SQL itself. */
#include "store/store.h"

#include <assert.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/private/ops.h"

const struct store_audit_row store_audit_refused = {.line = NULL};

/* An admin change whose audit event could not be made is refused before anything is written. */
#define EV_REFUSED(ev) ((ev) == &store_audit_refused)

/* --- argument checks: fixed-size fields must be NUL-terminated, lengths within bounds --- */

static bool
str_ok(const char *s, size_t cap)
{
    return strnlen(s, cap) < cap;
}

static bool
name_ok(const char *s, size_t cap)
{
    return s[0] != '\0' && str_ok(s, cap);
}

static bool
keyring_ok(const struct store_keyring *kr)
{
    return name_ok(kr->name, sizeof kr->name) && name_ok(kr->algorithm, sizeof kr->algorithm);
}

static bool
version_ok(const struct store_version *v)
{
    return str_ok(v->root_key_id, sizeof v->root_key_id) && v->wrapped_len <= sizeof v->wrapped;
}

static bool
svckey_ok(const struct store_svckey *k)
{
    return name_ok(k->purpose, sizeof k->purpose) &&
           str_ok(k->root_key_id, sizeof k->root_key_id) && k->wrapped_len <= sizeof k->wrapped;
}

static bool
apikey_ok(const struct store_apikey *k)
{
    return name_ok(k->id, sizeof k->id) && str_ok(k->scopes, sizeof k->scopes) &&
           str_ok(k->keyrings, sizeof k->keyrings);
}

/* A list call either returns an array (NULL when n is 0) or nothing at all. */
#define STORE_LIST_CALL(call, out, n)                                                              \
    do {                                                                                           \
        enum status st_ = (call);                                                                  \
        if (st_ != ST_OK) {                                                                        \
            free(*(out));                                                                          \
            *(out) = NULL;                                                                         \
            *(n) = 0;                                                                              \
        }                                                                                          \
        return st_;                                                                                \
    } while (0)

/* --- open / close --- */

static bool
has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* "name://" with an RFC 3986 scheme name: a URL for a backend we do not know. */
static size_t
url_scheme_len(const char *url)
{
    size_t i = 0;

    if (!((url[0] >= 'a' && url[0] <= 'z') || (url[0] >= 'A' && url[0] <= 'Z')))
        return 0;
    while (url[i] != '\0' && strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                    "0123456789+.-",
                                    url[i]) != NULL)
        i++;
    return strncmp(url + i, "://", 3) == 0 ? i : 0;
}

/* A PostgreSQL URL, or a libpq key=value conninfo string ("host=... dbname=..."): it starts with
 * a keyword of lower-case letters and underscores followed by '='. A path never does in
 * practice; "sqlite:" forces SQLite for one that would. */
static bool
is_postgres(const char *url)
{
    size_t i = 0;

    /* "postgres:" without "//" too: libpq refuses it without echoing it, where a SQLite path
     * error would show the password. */
    if (has_prefix(url, "postgres:") || has_prefix(url, "postgresql:"))
        return true;
    while ((url[i] >= 'a' && url[i] <= 'z') || url[i] == '_')
        i++;
    while (i > 0 && url[i] == ' ')
        i++;
    return i > 0 && url[i] == '=';
}

/* The SQLite file of url into *path (a pointer into url), or ST_INVALID with err set. */
static enum status
sqlite_path_of(const char *url, const char **path, char *err, size_t err_len)
{
    size_t scheme_len;

    *path = url;
    /* Never echo the URL in err: a PostgreSQL URL may carry a password. */
    if (is_postgres(url)) {
        snprintf(err, err_len, "not a SQLite database: PostgreSQL");
        return ST_INVALID;
    }
    if (has_prefix(url, "sqlite://"))
        *path = url + strlen("sqlite://");
    else if (has_prefix(url, "sqlite:"))
        *path = url + strlen("sqlite:");
    else if ((scheme_len = url_scheme_len(url)) > 0) {
        snprintf(err, err_len, "unsupported database URL scheme '%.*s' (want sqlite: or a path)",
                 (int)(scheme_len > 32 ? 32 : scheme_len), url);
        return ST_INVALID;
    }
    if ((*path)[0] == '\0') {
        snprintf(err, err_len, "empty database path");
        return ST_INVALID;
    }
    return ST_OK;
}

enum status
store_open(struct store **out, const char *url, char *err, size_t err_len)
{
    const char *path = url;
    enum status st;

    assert(out != NULL && url != NULL && (err != NULL || err_len == 0));
    *out = NULL;
    if (err_len > 0)
        err[0] = '\0';
    if (is_postgres(url))
        return store_postgres_open(out, url, err, err_len);
    if ((st = sqlite_path_of(url, &path, err, err_len)) != ST_OK)
        return st;
    return store_sqlite_open(out, path, err, err_len);
}

enum status
store_file_path(const char *url, char *out, size_t cap)
{
    const char *path = NULL;
    char err[128];

    assert(url != NULL && out != NULL && cap > 0);
    out[0] = '\0';
    if (sqlite_path_of(url, &path, err, sizeof err) != ST_OK)
        return ST_INVALID;
    if (strcmp(path, ":memory:") == 0)
        return ST_NOT_FOUND;
    if (strlen(path) >= cap)
        return ST_INVALID;
    snprintf(out, cap, "%s", path);
    return ST_OK;
}

void
store_close(struct store *s)
{
    if (s != NULL)
        s->ops->close(s);
}

void
store_library_versions(char *out, size_t cap)
{
    int pq = store_postgres_library_version();

    snprintf(out, cap, "SQLite %s, libpq %d.%d", store_sqlite_library_version(), pq / 10000,
             pq % 10000);
}

const char *
store_backend(const struct store *s)
{
    assert(s != NULL);
    return s->ops->name;
}

void
store_pool_stats(const struct store *s, struct store_pool_stats *out)
{
    assert(s != NULL && out != NULL);
    memset(out, 0, sizeof *out);
    if (s->ops->pool_stats != NULL)
        s->ops->pool_stats(s, out);
}

void
store_watch(struct store *s, store_change_fn cb, void *arg)
{
    assert(s != NULL);
    if (s->ops->watch != NULL)
        s->ops->watch(s, cb, arg);
}

enum status
store_ping(struct store *s)
{
    assert(s != NULL);
    return s->ops->ping != NULL ? s->ops->ping(s) : ST_OK;
}

void
store_url_display(const char *url, char *out, size_t cap)
{
    assert(url != NULL && out != NULL && cap > 0);
    if (is_postgres(url))
        store_postgres_display(url, out, cap);
    else
        snprintf(out, cap, "%s", url);
}

int
store_schema_version(struct store *s)
{
    assert(s != NULL);
    return s->ops->schema_version(s);
}

/* --- meta --- */

enum status
store_meta_get(struct store *s, const char *key, char *val, size_t val_cap)
{
    enum status st;

    assert(s != NULL && key != NULL && val != NULL && val_cap > 0);
    val[0] = '\0';
    if (key[0] == '\0')
        return ST_INVALID;
    if ((st = s->ops->meta_get(s, key, val, val_cap)) != ST_OK)
        val[0] = '\0';
    return st;
}

enum status
store_meta_set(struct store *s, const char *key, const char *val)
{
    assert(s != NULL && key != NULL && val != NULL);
    if (key[0] == '\0')
        return ST_INVALID;
    return s->ops->meta_set(s, key, val);
}

/* --- service keys --- */

enum status
store_svckey_get(struct store *s, const char *purpose, struct store_svckey *out)
{
    enum status st;

    assert(s != NULL && purpose != NULL && out != NULL);
    memset(out, 0, sizeof *out);
    if (!name_ok(purpose, sizeof out->purpose))
        return ST_INVALID;
    if ((st = s->ops->svckey_get(s, purpose, out)) != ST_OK)
        memset(out, 0, sizeof *out);
    return st;
}

enum status
store_svckey_put(struct store *s, const struct store_svckey *k)
{
    assert(s != NULL && k != NULL);
    if (!svckey_ok(k))
        return ST_INVALID;
    return s->ops->svckey_put(s, k);
}

enum status
store_svckey_add(struct store *s, const struct store_svckey *k)
{
    assert(s != NULL && k != NULL);
    if (!svckey_ok(k))
        return ST_INVALID;
    return s->ops->svckey_add(s, k);
}

enum status
store_svckey_put_all(struct store *s, const struct store_svckey *keys, size_t n,
                     const char *root_key_id)
{
    assert(s != NULL && (keys != NULL || n == 0));
    for (size_t i = 0; i < n; i++)
        if (!svckey_ok(&keys[i]))
            return ST_INVALID;
    if (root_key_id != NULL && (root_key_id[0] == '\0' || !str_ok(root_key_id, STORE_ROOT_ID_MAX)))
        return ST_INVALID;
    return s->ops->svckey_put_all(s, keys, n, root_key_id);
}

enum status
store_svckey_list(struct store *s, struct store_svckey **out, size_t *n)
{
    assert(s != NULL && out != NULL && n != NULL);
    *out = NULL;
    *n = 0;
    STORE_LIST_CALL(s->ops->svckey_list(s, out, n), out, n);
}

/* --- keyrings and versions --- */

enum status
store_keyring_create(struct store *s, struct store_keyring *kr, struct store_version *v1,
                     const struct store_audit_row *ev)
{
    assert(s != NULL && kr != NULL && v1 != NULL);
    if (EV_REFUSED(ev))
        return ST_UNAVAILABLE;
    if (!keyring_ok(kr) || !version_ok(v1))
        return ST_INVALID;
    return s->ops->keyring_create(s, kr, v1, ev);
}

enum status
store_keyring_get(struct store *s, const char *name, struct store_keyring *out)
{
    enum status st;

    assert(s != NULL && name != NULL && out != NULL);
    memset(out, 0, sizeof *out);
    if (!name_ok(name, sizeof out->name))
        return ST_NOT_FOUND; /* no stored name can be this long */
    if ((st = s->ops->keyring_get(s, name, out)) != ST_OK)
        memset(out, 0, sizeof *out);
    return st;
}

enum status
store_keyring_list(struct store *s, struct store_keyring **out, size_t *n)
{
    assert(s != NULL && out != NULL && n != NULL);
    *out = NULL;
    *n = 0;
    STORE_LIST_CALL(s->ops->keyring_list(s, out, n), out, n);
}

enum status
store_keyring_update(struct store *s, const struct store_keyring *kr,
                     const struct store_audit_row *ev)
{
    assert(s != NULL && kr != NULL);
    if (EV_REFUSED(ev))
        return ST_UNAVAILABLE;
    if (!keyring_ok(kr))
        return ST_INVALID;
    return s->ops->keyring_update(s, kr, ev);
}

enum status
store_keyring_rotate(struct store *s, const struct store_keyring *kr, const struct store_version *v,
                     uint32_t prev_latest, const struct store_audit_row *ev)
{
    assert(s != NULL && kr != NULL && v != NULL);
    if (EV_REFUSED(ev))
        return ST_UNAVAILABLE;
    if (!keyring_ok(kr) || !version_ok(v) || v->keyring_id != kr->id)
        return ST_INVALID;
    return s->ops->keyring_rotate(s, kr, v, prev_latest, ev);
}

enum status
store_keyring_delete(struct store *s, int64_t keyring_id, const struct store_audit_row *ev)
{
    assert(s != NULL);
    if (EV_REFUSED(ev))
        return ST_UNAVAILABLE;
    return s->ops->keyring_delete(s, keyring_id, ev);
}

enum status
store_shred_flush(struct store *s)
{
    assert(s != NULL);
    return s->ops->shred_flush(s);
}

enum status
store_version_list(struct store *s, int64_t keyring_id, struct store_version **out, size_t *n)
{
    assert(s != NULL && out != NULL && n != NULL);
    *out = NULL;
    *n = 0;
    STORE_LIST_CALL(s->ops->version_list(s, keyring_id, out, n), out, n);
}

enum status
store_version_get(struct store *s, int64_t keyring_id, uint32_t version, struct store_version *out)
{
    enum status st;

    assert(s != NULL && out != NULL);
    memset(out, 0, sizeof *out);
    if ((st = s->ops->version_get(s, keyring_id, version, out)) != ST_OK)
        memset(out, 0, sizeof *out);
    return st;
}

enum status
store_version_reserve(struct store *s, int64_t keyring_id, uint32_t version, int64_t reserved,
                      const uint8_t mac[static STORE_MAC_BYTES])
{
    assert(s != NULL && mac != NULL);
    return s->ops->version_reserve(s, keyring_id, version, reserved, mac);
}

enum status
store_version_reserve_from(struct store *s, int64_t keyring_id, uint32_t version, int64_t expected,
                           int64_t reserved, const uint8_t mac[static STORE_MAC_BYTES])
{
    assert(s != NULL && mac != NULL);
    if (reserved <= expected)
        return ST_INVALID;
    return s->ops->version_reserve_from(s, keyring_id, version, expected, reserved, mac);
}

enum status
store_version_rewrap(struct store *s, const struct store_version *v)
{
    assert(s != NULL && v != NULL);
    if (!version_ok(v))
        return ST_INVALID;
    return s->ops->version_rewrap(s, v);
}

enum status
store_version_list_all(struct store *s, struct store_version **out, size_t *n)
{
    assert(s != NULL && out != NULL && n != NULL);
    *out = NULL;
    *n = 0;
    STORE_LIST_CALL(s->ops->version_list_all(s, out, n), out, n);
}

/* --- apps and API keys --- */

enum status
store_app_create(struct store *s, struct store_app *app, store_app_seal_fn seal, void *arg,
                 const struct store_audit_row *ev)
{
    assert(s != NULL && app != NULL);
    if (EV_REFUSED(ev))
        return ST_UNAVAILABLE;
    if (!name_ok(app->name, sizeof app->name) || !str_ok(app->description, sizeof app->description))
        return ST_INVALID;
    return s->ops->app_create(s, app, seal, arg, ev);
}

enum status
store_app_seal(struct store *s, const struct store_app *app)
{
    assert(s != NULL && app != NULL);
    if (!name_ok(app->name, sizeof app->name) || !app->has_mac)
        return ST_INVALID;
    return s->ops->app_seal(s, app);
}

enum status
store_app_get(struct store *s, const char *name, struct store_app *out)
{
    enum status st;

    assert(s != NULL && name != NULL && out != NULL);
    memset(out, 0, sizeof *out);
    if (!name_ok(name, sizeof out->name))
        return ST_NOT_FOUND;
    if ((st = s->ops->app_get(s, name, out)) != ST_OK)
        memset(out, 0, sizeof *out);
    return st;
}

enum status
store_app_list(struct store *s, struct store_app **out, size_t *n)
{
    assert(s != NULL && out != NULL && n != NULL);
    *out = NULL;
    *n = 0;
    STORE_LIST_CALL(s->ops->app_list(s, out, n), out, n);
}

enum status
store_apikey_create(struct store *s, const struct store_apikey *k, const struct store_audit_row *ev)
{
    assert(s != NULL && k != NULL);
    if (EV_REFUSED(ev))
        return ST_UNAVAILABLE;
    if (!apikey_ok(k))
        return ST_INVALID;
    return s->ops->apikey_create(s, k, ev);
}

enum status
store_apikey_get(struct store *s, const char *id, struct store_apikey *out)
{
    enum status st;

    assert(s != NULL && id != NULL && out != NULL);
    memset(out, 0, sizeof *out);
    if (!name_ok(id, sizeof out->id))
        return ST_NOT_FOUND;
    if ((st = s->ops->apikey_get(s, id, out)) != ST_OK)
        memset(out, 0, sizeof *out);
    return st;
}

enum status
store_apikey_list(struct store *s, int64_t app_id, struct store_apikey **out, size_t *n)
{
    assert(s != NULL && out != NULL && n != NULL);
    *out = NULL;
    *n = 0;
    STORE_LIST_CALL(s->ops->apikey_list(s, app_id, out, n), out, n);
}

enum status
store_apikey_revoke(struct store *s, const char *id, int64_t revoked_at,
                    const uint8_t mac[static STORE_MAC_BYTES], const struct store_audit_row *ev)
{
    assert(s != NULL && id != NULL && mac != NULL);
    if (EV_REFUSED(ev))
        return ST_UNAVAILABLE;
    if (!name_ok(id, STORE_KEY_ID_MAX))
        return ST_NOT_FOUND;
    return s->ops->apikey_revoke(s, id, revoked_at, mac, ev);
}

/* --- API key state and the audit trail: thin checks, then the backend --- */

enum status
store_apikey_update(struct store *s, const struct store_apikey *k, const struct store_audit_row *ev)
{
    assert(s != NULL && k != NULL);
    if (EV_REFUSED(ev))
        return ST_UNAVAILABLE;
    if (!name_ok(k->id, STORE_KEY_ID_MAX))
        return ST_NOT_FOUND;
    return s->ops->apikey_update(s, k, ev);
}

enum status
store_apikey_ids_since(struct store *s, int64_t since, char (**out)[STORE_KEY_ID_MAX], size_t *n)
{
    assert(s != NULL && out != NULL && n != NULL);
    *out = NULL;
    *n = 0;
    STORE_LIST_CALL(s->ops->apikey_ids_since(s, since, out, n), out, n);
}

enum status
store_apikey_rotate(struct store *s, const struct store_apikey *fresh,
                    const struct store_apikey *old, const struct store_audit_row *ev)
{
    assert(s != NULL && fresh != NULL && old != NULL);
    if (EV_REFUSED(ev))
        return ST_UNAVAILABLE;
    if (!apikey_ok(fresh))
        return ST_INVALID;
    if (!name_ok(old->id, STORE_KEY_ID_MAX))
        return ST_NOT_FOUND;
    return s->ops->apikey_rotate(s, fresh, old, ev);
}

enum status
store_apikey_touch(struct store *s, const char *id, int64_t last_used_at)
{
    assert(s != NULL && id != NULL);
    return name_ok(id, STORE_KEY_ID_MAX) ? s->ops->apikey_touch(s, id, last_used_at) : ST_OK;
}

enum status
store_audit_append(struct store *s, const struct store_audit_row *rows, size_t n,
                   const struct store_usage *usage, size_t nu)
{
    assert(s != NULL && (rows != NULL || n == 0) && (usage != NULL || nu == 0));
    if (n == 0 && nu == 0)
        return ST_OK;
    return s->ops->audit_append(s, rows, n, usage, nu);
}

enum status
store_audit_head(struct store *s, const char *chain_id, uint64_t *seq, uint8_t hash[static 32])
{
    assert(s != NULL && chain_id != NULL && seq != NULL);
    *seq = 0;
    memset(hash, 0, 32);
    return s->ops->audit_head(s, chain_id, seq, hash);
}

enum status
store_audit_checkpoint_add(struct store *s, const char *chain_id, uint64_t seq, const char *kind,
                           int64_t time_ms, const char *line)
{
    assert(s != NULL && chain_id != NULL && kind != NULL && line != NULL);
    return s->ops->audit_checkpoint_add(s, chain_id, seq, kind, time_ms, line);
}

enum status
store_audit_checkpoint_last(struct store *s, const char *chain_id, const char *kind, char **line,
                            uint64_t *seq)
{
    assert(s != NULL && chain_id != NULL && line != NULL && seq != NULL);
    *line = NULL;
    *seq = 0;
    return s->ops->audit_checkpoint_last(s, chain_id, kind, line, seq);
}

enum status
store_audit_list(struct store *s, const struct store_audit_filter *f, struct store_audit_row **out,
                 size_t *n)
{
    assert(s != NULL && f != NULL && out != NULL && n != NULL);
    *out = NULL;
    *n = 0;
    return s->ops->audit_list(s, f, out, n);
}

void
store_audit_rows_free(struct store_audit_row *rows, size_t n)
{
    for (size_t i = 0; rows != NULL && i < n; i++)
        free(rows[i].line);
    free(rows);
}

enum status
store_audit_lines(struct store *s, const char *chain_id, uint64_t after_seq, uint64_t upto_seq,
                  store_line_cb cb, void *arg)
{
    assert(s != NULL && chain_id != NULL && cb != NULL);
    return s->ops->audit_lines(s, chain_id, after_seq, upto_seq, cb, arg);
}

enum status
store_audit_chains(struct store *s, char (**out)[STORE_CHAIN_ID_MAX], size_t *n)
{
    assert(s != NULL && out != NULL && n != NULL);
    *out = NULL;
    *n = 0;
    return s->ops->audit_chains(s, out, n);
}

enum status
store_audit_prune(struct store *s, const char *chain_id, uint64_t upto)
{
    assert(s != NULL && chain_id != NULL);
    return s->ops->audit_prune(s, chain_id, upto);
}

enum status
store_audit_seq_before(struct store *s, const char *chain_id, int64_t time_ms, uint64_t *seq,
                       uint8_t hash[static 32])
{
    assert(s != NULL && chain_id != NULL && seq != NULL);
    *seq = 0;
    memset(hash, 0, 32);
    return s->ops->audit_seq_before(s, chain_id, time_ms, seq, hash);
}

enum status
store_usage_list(struct store *s, const char *app, const char *from_day, const char *to_day,
                 struct store_usage **out, size_t *n)
{
    assert(s != NULL && app != NULL && from_day != NULL && to_day != NULL);
    *out = NULL;
    *n = 0;
    return s->ops->usage_list(s, app, from_day, to_day, out, n);
}

/* --- certificates (issue 9) --- */

static bool
cert_source_ok(const struct store_cert_source *c)
{
    size_t pem_len = c->pem != NULL ? strnlen(c->pem, STORE_CERT_PEM_MAX + 1) : 0;
    return name_ok(c->id, sizeof c->id) && name_ok(c->kind, sizeof c->kind) &&
           str_ok(c->target, sizeof c->target) && str_ok(c->server_name, sizeof c->server_name) &&
           pem_len <= STORE_CERT_PEM_MAX && c->renew_before >= 0 && c->warning >= 0 &&
           c->critical >= 0;
}

static bool
cert_seen_ok(const struct store_cert_seen *c)
{
    return name_ok(c->source_id, sizeof c->source_id) && name_ok(c->slot, sizeof c->slot) &&
           name_ok(c->fingerprint, sizeof c->fingerprint) &&
           str_ok(c->subject, sizeof c->subject) && str_ok(c->issuer, sizeof c->issuer) &&
           str_ok(c->serial, sizeof c->serial);
}

enum status
store_cert_source_create(struct store *s, const struct store_cert_source *c,
                         const struct store_audit_row *ev)
{
    assert(s != NULL && c != NULL);
    if (EV_REFUSED(ev))
        return ST_UNAVAILABLE;
    if (!cert_source_ok(c))
        return ST_INVALID;
    return s->ops->cert_source_create(s, c, ev);
}

enum status
store_cert_source_list(struct store *s, struct store_cert_source **out, size_t *n)
{
    enum status st;

    assert(s != NULL && out != NULL && n != NULL);
    *out = NULL;
    *n = 0;
    if ((st = s->ops->cert_source_list(s, out, n)) != ST_OK) {
        store_cert_sources_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return st;
}

void
store_cert_sources_free(struct store_cert_source *v, size_t n)
{
    for (size_t i = 0; v != NULL && i < n; i++)
        free(v[i].pem);
    free(v);
}

enum status
store_cert_source_delete(struct store *s, const char *id, const struct store_audit_row *ev)
{
    assert(s != NULL && id != NULL);
    if (EV_REFUSED(ev))
        return ST_UNAVAILABLE;
    if (!name_ok(id, STORE_NAME_MAX))
        return ST_NOT_FOUND;
    return s->ops->cert_source_delete(s, id, ev);
}

enum status
store_cert_seen_add(struct store *s, struct store_cert_seen *c, const struct store_audit_row *ev)
{
    assert(s != NULL && c != NULL);
    if (EV_REFUSED(ev))
        return ST_UNAVAILABLE;
    if (!cert_seen_ok(c))
        return ST_INVALID;
    return s->ops->cert_seen_add(s, c, ev);
}

enum status
store_cert_seen_list(struct store *s, const char *source_id, struct store_cert_seen **out,
                     size_t *n)
{
    assert(s != NULL && out != NULL && n != NULL);
    *out = NULL;
    *n = 0;
    if (source_id != NULL && !name_ok(source_id, STORE_NAME_MAX))
        return ST_OK; /* no stored source has such an id */
    STORE_LIST_CALL(s->ops->cert_seen_list(s, source_id, out, n), out, n);
}
