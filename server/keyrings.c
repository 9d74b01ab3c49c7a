/* SPDX-License-Identifier: Apache-2.0 */
/* server/keyrings.c -- keyring cache, versions, rotation and durable encryption counts.
 * Holds no KEK bytes itself: struct kek (crypto/kek.c) does. Never logs key material. */
#include "server/keyrings.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/checked.h"
#include "common/xmem.h"
#include "crypto/rowmac.h"
#include "server/audit.h"
#include "server/jsonx.h"
#include "server/log.h"

struct kver {
    struct store_version row;
    struct kek *_Atomic kek;        /* unwrapped on first use, under kr->mu */
    _Atomic int64_t used;           /* encryptions counted since load (starts at reserved) */
    _Atomic int64_t reserved;       /* durable upper bound */
};

struct keyring {
    struct store_keyring row;
    enum envelope_format fmt;
    struct kver *v;                 /* v[i].row.version == i + 1 */
    size_t nv;
    pthread_mutex_t mu;             /* KEK unwrap and reservations */
    bool integrity_failed;
    atomic_bool rotate_wanted;
};

struct krm {
    struct store *store;
    const struct rootkey *rk;
    const struct secret *mac_key;
    struct krm_settings set;
    pthread_rwlock_t lock;          /* guards items and every row */
    struct keyring **items;         /* sorted by name */
    size_t n, cap;
    struct audit *audit;                    /* events of automatic rotations; may be NULL */
    int64_t (*clock)(void);                 /* unix seconds; NULL = now_s() (see krm_set_clock) */
    atomic_uint_fast64_t shred_failures;   /* store_shred_flush calls that failed */
    atomic_bool shred_pending;              /* a flush is still owed: maintenance retries it */
    pthread_t thread;
    bool thread_started, stopping;
    int interval;
    pthread_mutex_t wake_mu;
    pthread_cond_t wake;
};

bool
name_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-')))
            return false;
    }
    return true;
}

static enum envelope_format
format_of(const char *alg)
{
    if (strcmp(alg, "xchacha20-poly1305") == 0)
        return ENVELOPE_XCHACHA20POLY1305;
    if (strcmp(alg, "aes-256-siv") == 0)
        return ENVELOPE_AES256SIV;
    return ENVELOPE_AES256GCM;
}

/* The time stamps of rows and the rotation schedule read this clock: the wall clock unless a
 * unit test set another (krm_set_clock). */
static int64_t
krm_now(const struct krm *k)
{
    return k->clock != NULL ? k->clock() : now_s();
}

void
krm_set_clock(struct krm *k, int64_t (*clock)(void))
{
    k->clock = clock;
}

/* --- row MACs --- */

static void
keyring_mac(const struct krm *k, const struct store_keyring *r, uint8_t out[static ROWMAC_BYTES])
{
    struct rowmac m;
    /* The name, not the database id, binds the row: ids are assigned by the database. */
    rowmac_init(&m, k->mac_key, "keyrings");
    rowmac_str(&m, r->name);
    rowmac_str(&m, r->algorithm);
    rowmac_i64(&m, r->deterministic);
    rowmac_i64(&m, r->rotation_period);
    rowmac_i64(&m, r->deletion_allowed);
    rowmac_i64(&m, r->latest_version);
    rowmac_i64(&m, r->min_decryption_version);
    rowmac_i64(&m, r->min_encryption_version);
    rowmac_i64(&m, r->created_at);
    rowmac_i64(&m, r->updated_at);
    rowmac_i64(&m, r->rotated_at);
    rowmac_final(&m, out);
}

static void
version_mac(const struct krm *k, const char *keyring, const struct store_version *v,
            uint8_t out[static ROWMAC_BYTES])
{
    struct rowmac m;
    rowmac_init(&m, k->mac_key, "key_versions");
    rowmac_str(&m, keyring);
    rowmac_i64(&m, v->version);
    rowmac_str(&m, v->root_key_id);
    rowmac_bytes(&m, v->wrapped, v->wrapped_len);
    rowmac_i64(&m, v->created_at);
    rowmac_i64(&m, v->encryptions_reserved);
    rowmac_final(&m, out);
}

static bool
mac_ok(const uint8_t a[static ROWMAC_BYTES], const uint8_t b[static ROWMAC_BYTES])
{
    return sodium_memcmp(a, b, ROWMAC_BYTES) == 0;
}

/* --- cache entries --- */

static void
keyring_free(struct keyring *kr)
{
    if (kr == NULL)
        return;
    for (size_t i = 0; i < kr->nv; i++)
        kek_free(atomic_load(&kr->v[i].kek));
    free(kr->v);
    pthread_mutex_destroy(&kr->mu);
    free(kr);
}

static void
kver_set(struct kver *kv, const struct store_version *row)
{
    kv->row = *row;
    atomic_store(&kv->kek, NULL);
    atomic_store(&kv->used, row->encryptions_reserved);
    atomic_store(&kv->reserved, row->encryptions_reserved);
}

/* Build a cache entry from the store, checking every MAC. Never fails on a MAC mismatch: the
 * entry is marked and refused at use, so one bad row does not take the service down. */
static enum status
keyring_load(struct krm *k, const struct store_keyring *row, struct keyring **out)
{
    struct store_version *vs = NULL;
    size_t n = 0;
    uint8_t mac[ROWMAC_BYTES];
    struct keyring *kr = xcalloc(1, sizeof *kr);
    enum status st;

    *out = NULL;
    kr->row = *row;
    kr->fmt = format_of(row->algorithm);
    pthread_mutex_init(&kr->mu, NULL);
    keyring_mac(k, row, mac);
    kr->integrity_failed = !mac_ok(mac, row->mac);
    if ((st = store_version_list(k->store, row->id, &vs, &n)) != ST_OK) {
        keyring_free(kr);
        return st;
    }
    kr->v = xcalloc(n ? n : 1, sizeof *kr->v);
    kr->nv = n;
    for (size_t i = 0; i < n; i++) {
        version_mac(k, row->name, &vs[i], mac);
        if (!mac_ok(mac, vs[i].mac) || vs[i].version != i + 1)
            kr->integrity_failed = true;
        kver_set(&kr->v[i], &vs[i]);
    }
    if (n != row->latest_version)
        kr->integrity_failed = true;
    if (kr->integrity_failed)
        log_msg(LOG_ERROR, "keyring_integrity_failure", "keyring", row->name,
                "detail", "a keyring or key version row does not match its MAC; refusing it", LOG_END);
    sodium_memzero(vs, n * sizeof *vs);
    free(vs);
    *out = kr;
    return ST_OK;
}

static int
cmp_name(const void *key, const void *elem)
{
    return strcmp((const char *)key, (*(struct keyring *const *)elem)->row.name);
}

static struct keyring *
find(const struct krm *k, const char *name, size_t *pos)
{
    size_t lo = 0, hi = k->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = cmp_name(name, &k->items[mid]);
        if (c == 0) {
            if (pos != NULL)
                *pos = mid;
            return k->items[mid];
        }
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    if (pos != NULL)
        *pos = lo;
    return NULL;
}

static void
insert(struct krm *k, struct keyring *kr)
{
    size_t pos;
    if (find(k, kr->row.name, &pos) != NULL)
        return;
    if (k->n == k->cap) {
        k->cap = k->cap ? k->cap * 2 : 16;
        k->items = xrealloc(k->items, k->cap * sizeof *k->items);
    }
    memmove(&k->items[pos + 1], &k->items[pos], (k->n - pos) * sizeof *k->items);
    k->items[pos] = kr;
    k->n++;
}

static void
remove_at(struct krm *k, size_t pos)
{
    keyring_free(k->items[pos]);
    memmove(&k->items[pos], &k->items[pos + 1], (k->n - pos - 1) * sizeof *k->items);
    k->n--;
}

enum status
krm_open(struct krm **out, struct store *st, const struct rootkey *rk,
         const struct secret *mac_key, const struct krm_settings *set)
{
    struct store_keyring *rows = NULL;
    size_t n = 0;
    enum status s;
    struct krm *k = xcalloc(1, sizeof *k);

    *out = NULL;
    k->store = st;
    k->rk = rk;
    k->mac_key = mac_key;
    k->set = *set;
    if (k->set.kek_limit == 0)
        k->set.kek_limit = UINT64_C(1) << 32;
    if (k->set.reserve_block <= 0)
        k->set.reserve_block = 4096;
    pthread_rwlock_init(&k->lock, NULL);
    pthread_mutex_init(&k->wake_mu, NULL);
    pthread_cond_init(&k->wake, NULL);
    if ((s = store_keyring_list(st, &rows, &n)) != ST_OK)
        goto out;
    for (size_t i = 0; i < n; i++) {
        struct keyring *kr;
        if ((s = keyring_load(k, &rows[i], &kr)) != ST_OK)
            goto out;
        insert(k, kr);
    }
    *out = k;
out:
    free(rows);
    if (*out == NULL)
        krm_close(k);
    return s;
}

void
krm_close(struct krm *k)
{
    if (k == NULL)
        return;
    if (k->thread_started) {
        pthread_mutex_lock(&k->wake_mu);
        k->stopping = true;
        pthread_cond_signal(&k->wake);
        pthread_mutex_unlock(&k->wake_mu);
        pthread_join(k->thread, NULL);
    }
    for (size_t i = 0; i < k->n; i++)
        keyring_free(k->items[i]);
    free(k->items);
    pthread_rwlock_destroy(&k->lock);
    pthread_mutex_destroy(&k->wake_mu);
    pthread_cond_destroy(&k->wake);
    free(k);
}

#define ROTATION_MSG "rotation_period must be 0 (off) or from 1h to 3650d"

/* --- metadata --- */

/* When the period next rotates the keyring. Checked: a row written before periods were
 * bounded may hold a huge one, which means "not for a very long time", never "now". */
static int64_t
next_rotation(const struct store_keyring *r)
{
    return checked_time_add(r->rotated_at, r->rotation_period);
}

static json_t *
describe(const struct krm *k, const struct keyring *kr)
{
    const struct store_keyring *r = &kr->row;
    json_t *vers = json_array();
    for (size_t i = 0; i < kr->nv; i++) {
        const struct kver *kv = &kr->v[i];
        json_array_append_new(vers, json_pack("{s:I, s:o, s:I, s:I, s:s}",
            "version", (json_int_t)kv->row.version,
            "created_at", jx_time(kv->row.created_at),
            "encryptions", (json_int_t)atomic_load(&kv->used),
            "encryption_limit", (json_int_t)k->set.kek_limit,
            "root_key_id", kv->row.root_key_id));
    }
    return json_pack("{s:s, s:s, s:b, s:I, s:b, s:I, s:I, s:I, s:o, s:o, s:o, s:o}",
        "name", r->name,
        "algorithm", r->algorithm,
        "deterministic", r->deterministic,
        "rotation_period", (json_int_t)r->rotation_period,
        "deletion_allowed", r->deletion_allowed,
        "latest_version", (json_int_t)r->latest_version,
        "min_decryption_version", (json_int_t)r->min_decryption_version,
        "min_encryption_version", (json_int_t)r->min_encryption_version,
        "created_at", jx_time(r->created_at),
        "updated_at", jx_time(r->updated_at),
        "next_rotation_at", r->rotation_period ? jx_time(next_rotation(r)) : json_null(),
        "versions", vers);
}

/* Find in the cache, else load from the store (another process may have created it).
 * Called without the lock; returns with the read lock held on ST_OK. */
static enum status
acquire_read(struct krm *k, const char *name, struct keyring **out)
{
    struct store_keyring row;
    struct keyring *kr;
    enum status st;

    *out = NULL;
    pthread_rwlock_rdlock(&k->lock);
    if ((*out = find(k, name, NULL)) != NULL)
        return ST_OK;
    pthread_rwlock_unlock(&k->lock);
    if (!name_valid(name))
        return ST_NOT_FOUND;
    if ((st = store_keyring_get(k->store, name, &row)) != ST_OK)
        return st;
    if ((st = keyring_load(k, &row, &kr)) != ST_OK)
        return st;
    pthread_rwlock_wrlock(&k->lock);
    if (find(k, name, NULL) == NULL)
        insert(k, kr);
    else
        keyring_free(kr);
    pthread_rwlock_unlock(&k->lock);
    pthread_rwlock_rdlock(&k->lock);
    if ((*out = find(k, name, NULL)) != NULL)
        return ST_OK;
    pthread_rwlock_unlock(&k->lock);
    return ST_NOT_FOUND;
}

enum status
krm_get(struct krm *k, const char *name, json_t **out)
{
    struct keyring *kr;
    enum status st;

    *out = NULL;
    if ((st = acquire_read(k, name, &kr)) != ST_OK)
        return st;
    if (kr->integrity_failed)
        st = ST_INTEGRITY;
    else
        *out = describe(k, kr);
    pthread_rwlock_unlock(&k->lock);
    return st;
}

bool
krm_known(struct krm *k, const char *name)
{
    if (k == NULL)
        return false;
    pthread_rwlock_rdlock(&k->lock);
    bool known = find(k, name, NULL) != NULL;
    pthread_rwlock_unlock(&k->lock);
    return known;
}

enum status
krm_list(struct krm *k, bool (*visible)(const void *arg, const char *name), const void *arg,
         json_t **out)
{
    json_t *arr = json_array();
    pthread_rwlock_rdlock(&k->lock);
    for (size_t i = 0; i < k->n; i++)
        if (!k->items[i]->integrity_failed &&
            (visible == NULL || visible(arg, k->items[i]->row.name)))
            json_array_append_new(arr, describe(k, k->items[i]));
    pthread_rwlock_unlock(&k->lock);
    *out = json_pack("{s:o}", "keyrings", arr);
    return ST_OK;
}

/* --- changes --- */

/* Wrap new KEKs only under the root key the database expects (meta root_key_id, recorded by init
 * and by rotate-root-key): a process still holding a replaced root key must not add versions that
 * no later start can open. ST_CONFLICT (logged) when the database moved on. */
static enum status
root_key_current(const struct krm *k, const char *keyring)
{
    char id[STORE_ROOT_ID_MAX + 16];
    enum status st = store_meta_get(k->store, "root_key_id", id, sizeof id);

    if (st == ST_OK && strcmp(id, rootkey_id(k->rk)) == 0)
        return ST_OK;
    if (st != ST_OK && st != ST_NOT_FOUND && st != ST_INTERNAL)
        return st;
    log_msg(LOG_ERROR, "root_key_mismatch", "keyring", keyring, "root_key_id", rootkey_id(k->rk),
            "database_root_key_id", st == ST_OK ? id : "",
            "detail", "the database expects another root key (rotated since this process "
            "started?); refusing to wrap a new key version: restart difyguard", LOG_END);
    return ST_CONFLICT;
}

static enum status
new_version(struct krm *k, const char *name, uint32_t version, struct store_version *v)
{
    struct kek *kek = NULL;
    uint8_t wrapped[KEK_WRAPPED_BYTES];
    enum status st;

    memset(v, 0, sizeof *v);
    if ((st = root_key_current(k, name)) != ST_OK)
        return st;
    if ((st = kek_generate(&kek, wrapped, k->rk, name, version)) != ST_OK)
        return st;
    kek_free(kek);          /* unwrapped again on first use, from the stored row */
    v->version = version;
    snprintf(v->root_key_id, sizeof v->root_key_id, "%s", rootkey_id(k->rk));
    memcpy(v->wrapped, wrapped, sizeof wrapped);
    v->wrapped_len = sizeof wrapped;
    v->created_at = krm_now(k);
    v->encryptions_reserved = 0;
    version_mac(k, name, v, v->mac);
    return ST_OK;
}

static enum status
check_create(const struct krm_create *c, int64_t now, struct store_keyring *r, const char **msg)
{
    const char *alg = c->algorithm;
    bool det = c->deterministic == 1 || (alg != NULL && strcmp(alg, "aes-256-siv") == 0);

    if (!name_valid(c->name)) {
        *msg = "name must match [a-z0-9][a-z0-9._-]{0,62}";
        return ST_INVALID;
    }
    if (alg == NULL)
        alg = det ? "aes-256-siv" : "aes-256-gcm";
    if (strcmp(alg, "aes-256-gcm") != 0 && strcmp(alg, "xchacha20-poly1305") != 0 &&
        strcmp(alg, "aes-256-siv") != 0) {
        *msg = "algorithm must be aes-256-gcm, xchacha20-poly1305 or aes-256-siv";
        return ST_INVALID;
    }
    if (det != (strcmp(alg, "aes-256-siv") == 0) || (c->deterministic == 0 && det)) {
        *msg = "deterministic keyrings use aes-256-siv, and only they do";
        return ST_INVALID;
    }
    int64_t period = c->rotation_period >= 0 ? c->rotation_period : (det ? 0 : 90 * 86400);
    if (period != 0 && (period < KEYRING_MIN_ROTATION || period > DURATION_MAX_SECONDS)) {
        *msg = ROTATION_MSG;
        return ST_INVALID;
    }
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "%s", c->name);
    snprintf(r->algorithm, sizeof r->algorithm, "%s", alg);
    r->deterministic = det;
    r->rotation_period = period;
    r->deletion_allowed = c->deletion_allowed;
    r->latest_version = r->min_decryption_version = r->min_encryption_version = 1;
    r->created_at = r->updated_at = r->rotated_at = now;
    return ST_OK;
}

enum status
krm_create(struct krm *k, const struct krm_create *c, json_t **out, const char **msg,
           const struct store_audit_row *ev)
{
    struct store_keyring r;
    struct store_version v;
    struct keyring *kr = NULL;
    enum status st;

    *out = NULL;
    if ((st = check_create(c, krm_now(k), &r, msg)) != ST_OK)
        return st;
    if ((st = new_version(k, r.name, 1, &v)) != ST_OK) {
        if (st == ST_CONFLICT)
            *msg = "the database is under another root key now: restart difyguard with it";
        return st;
    }
    keyring_mac(k, &r, r.mac);
    pthread_rwlock_wrlock(&k->lock);
    if ((st = store_keyring_create(k->store, &r, &v, ev)) == ST_OK &&
        (st = keyring_load(k, &r, &kr)) == ST_OK) {
        insert(k, kr);
        *out = describe(k, kr);
    }
    pthread_rwlock_unlock(&k->lock);
    if (st == ST_OK)
        log_msg(LOG_INFO, "keyring_created", "keyring", r.name, "algorithm", r.algorithm, LOG_END);
    else if (st == ST_CONFLICT)
        *msg = "a keyring with this name exists";
    sodium_memzero(&v, sizeof v);
    return st;
}

/* Rotate with the write lock held. */
static enum status
rotate_locked(struct krm *k, struct keyring *kr, const char *reason,
              const struct store_audit_row *ev)
{
    struct store_keyring r = kr->row;
    struct store_version v;
    enum status st;

    if (kr->integrity_failed)
        return ST_INTEGRITY;
    if ((st = new_version(k, r.name, r.latest_version + 1, &v)) != ST_OK)
        return st;
    v.keyring_id = r.id;
    r.latest_version++;
    r.updated_at = r.rotated_at = v.created_at;
    keyring_mac(k, &r, r.mac);
    if ((st = store_keyring_rotate(k->store, &r, &v, kr->row.latest_version, ev)) != ST_OK)
        goto out;
    kr->v = xrealloc(kr->v, (kr->nv + 1) * sizeof *kr->v);
    kver_set(&kr->v[kr->nv], &v);
    kr->nv++;
    kr->row = r;
    atomic_store(&kr->rotate_wanted, false);
    char ver[16];
    snprintf(ver, sizeof ver, "%u", r.latest_version);
    log_msg(LOG_INFO, "keyring_rotated", "keyring", r.name, "#version", ver, "reason", reason, LOG_END);
out:
    sodium_memzero(&v, sizeof v);
    return st;
}

enum status
krm_rotate(struct krm *k, const char *name, json_t **out, const struct store_audit_row *ev)
{
    struct keyring *kr;
    enum status st;

    *out = NULL;
    if ((st = acquire_read(k, name, &kr)) != ST_OK)
        return st;
    pthread_rwlock_unlock(&k->lock);
    pthread_rwlock_wrlock(&k->lock);
    if ((kr = find(k, name, NULL)) == NULL)
        st = ST_NOT_FOUND;
    else if ((st = rotate_locked(k, kr, "manual", ev)) == ST_OK)
        *out = describe(k, kr);
    pthread_rwlock_unlock(&k->lock);
    return st;
}

static enum status
apply_patch(struct store_keyring *r, const struct krm_patch *p, const char **msg)
{
    if (p->min_decryption_version >= 0)
        r->min_decryption_version = (uint32_t)p->min_decryption_version;
    if (p->min_encryption_version >= 0)
        r->min_encryption_version = (uint32_t)p->min_encryption_version;
    if (p->rotation_period >= 0)
        r->rotation_period = p->rotation_period;
    if (p->deletion_allowed >= 0)
        r->deletion_allowed = p->deletion_allowed;
    if (p->min_decryption_version > (int64_t)r->latest_version ||
        p->min_encryption_version > (int64_t)r->latest_version ||
        r->min_decryption_version < 1 || r->min_encryption_version < 1) {
        *msg = "min versions must be between 1 and latest_version";
        return ST_INVALID;
    }
    if (r->min_encryption_version < r->min_decryption_version) {
        *msg = "min_encryption_version must be >= min_decryption_version";
        return ST_INVALID;
    }
    if (r->rotation_period != 0 && (r->rotation_period < KEYRING_MIN_ROTATION ||
                                    r->rotation_period > DURATION_MAX_SECONDS)) {
        *msg = ROTATION_MSG;
        return ST_INVALID;
    }
    return ST_OK;
}

enum status
krm_patch(struct krm *k, const char *name, const struct krm_patch *p, json_t **out,
          const char **msg, const struct store_audit_row *ev)
{
    struct keyring *kr;
    struct store_keyring r;
    enum status st;

    *out = NULL;
    if ((st = acquire_read(k, name, &kr)) != ST_OK)
        return st;
    pthread_rwlock_unlock(&k->lock);
    pthread_rwlock_wrlock(&k->lock);
    if ((kr = find(k, name, NULL)) == NULL) {
        st = ST_NOT_FOUND;
        goto out;
    }
    if (kr->integrity_failed) {
        st = ST_INTEGRITY;
        goto out;
    }
    r = kr->row;
    if ((st = apply_patch(&r, p, msg)) != ST_OK)
        goto out;
    r.updated_at = krm_now(k);
    keyring_mac(k, &r, r.mac);
    if ((st = store_keyring_update(k->store, &r, ev)) != ST_OK)
        goto out;
    kr->row = r;
    *out = describe(k, kr);
    log_msg(LOG_INFO, "keyring_updated", "keyring", r.name, LOG_END);
out:
    pthread_rwlock_unlock(&k->lock);
    return st;
}

/* Drop the deleted rows' copies from the store's log; alert when that cannot be done. */
static void
shred_flush(struct krm *k, const char *keyring)
{
    if (store_shred_flush(k->store) == ST_OK) {
        if (atomic_exchange(&k->shred_pending, false))
            log_msg(LOG_INFO, "shred_checkpoint_done", "keyring", keyring, LOG_END);
        return;
    }
    atomic_fetch_add(&k->shred_failures, 1);
    atomic_store(&k->shred_pending, true);
    log_msg(LOG_ERROR, "shred_checkpoint_failed", "keyring", keyring,
            "detail", "the database log (WAL) may still hold deleted key versions (another "
            "process reading the database?); retried by the maintenance thread", LOG_END);
}

uint64_t
krm_shred_failures(const struct krm *k)
{
    return atomic_load(&k->shred_failures);
}

enum status
krm_delete(struct krm *k, const char *name, const struct store_audit_row *ev)
{
    struct keyring *kr;
    size_t pos;
    enum status st;

    if ((st = acquire_read(k, name, &kr)) != ST_OK)
        return st;
    pthread_rwlock_unlock(&k->lock);
    pthread_rwlock_wrlock(&k->lock);
    if ((kr = find(k, name, &pos)) == NULL)
        st = ST_NOT_FOUND;
    else if (kr->integrity_failed)
        st = ST_INTEGRITY;
    else if (!kr->row.deletion_allowed)
        st = ST_CONFLICT;
    else if ((st = store_keyring_delete(k->store, kr->row.id, ev)) == ST_OK) {
        remove_at(k, pos);
        log_msg(LOG_INFO, "keyring_deleted", "keyring", name, LOG_END);
    }
    pthread_rwlock_unlock(&k->lock);
    if (st == ST_OK)
        shred_flush(k, name);           /* crypto calls need not wait for it */
    return st;
}

/* --- crypto use --- */

enum status
krm_acquire(struct krm *k, const char *name, struct krm_use *u)
{
    struct keyring *kr;
    enum status st;

    u->k = NULL;
    u->kr = NULL;
    if ((st = acquire_read(k, name, &kr)) != ST_OK)
        return st;
    if (kr->integrity_failed) {
        pthread_rwlock_unlock(&k->lock);
        return ST_INTEGRITY;
    }
    u->k = k;
    u->kr = kr;
    return ST_OK;
}

void
krm_release(struct krm_use *u)
{
    if (u->k != NULL)
        pthread_rwlock_unlock(&u->k->lock);
    u->k = NULL;
    u->kr = NULL;
}

enum envelope_format
krm_format(const struct krm_use *u)
{
    return u->kr->fmt;
}

uint32_t
krm_latest(const struct krm_use *u)
{
    return u->kr->row.latest_version;
}

static enum status
kek_of(struct krm *k, struct keyring *kr, struct kver *kv, const struct kek **out)
{
    struct kek *kek = atomic_load_explicit(&kv->kek, memory_order_acquire);
    enum status st = ST_OK;

    if (kek == NULL) {
        pthread_mutex_lock(&kr->mu);
        if ((kek = atomic_load(&kv->kek)) == NULL) {
            st = kek_unwrap(&kek, k->rk, kr->row.name, kv->row.version, kv->row.wrapped,
                            kv->row.wrapped_len);
            if (st == ST_OK) {
                atomic_store_explicit(&kv->kek, kek, memory_order_release);
            } else {
                log_msg(LOG_ERROR, "kek_unwrap_failed", "keyring", kr->row.name,
                        "detail", "a stored KEK does not open under this root key", LOG_END);
                st = ST_INTEGRITY;
            }
        }
        pthread_mutex_unlock(&kr->mu);
    }
    *out = kek;
    return st;
}

static void
wake_maintenance(struct krm *k)
{
    pthread_mutex_lock(&k->wake_mu);
    pthread_cond_signal(&k->wake);
    pthread_mutex_unlock(&k->wake_mu);
}

/* Count one encryption. A crash may over-count by up to one block, never under-count. */
static enum status
count_one(struct krm *k, struct keyring *kr, struct kver *kv)
{
    int64_t limit = (int64_t)k->set.kek_limit;
    int64_t n = atomic_fetch_add(&kv->used, 1) + 1;
    enum status st = ST_OK;

    if (n > limit)
        return ST_VERSION_DISABLED;
    if (n > atomic_load(&kv->reserved)) {
        pthread_mutex_lock(&kr->mu);
        int64_t want = atomic_load(&kv->used) + k->set.reserve_block;
        if (want > limit)
            want = limit;
        if (n > atomic_load(&kv->reserved)) {
            struct store_version v = kv->row;
            v.encryptions_reserved = want;
            version_mac(k, kr->row.name, &v, v.mac);
            st = store_version_reserve(k->store, kr->row.id, v.version, want, v.mac);
            if (st == ST_OK) {
                kv->row.encryptions_reserved = want;
                memcpy(kv->row.mac, v.mac, sizeof v.mac);
                atomic_store(&kv->reserved, want);
            } else {
                atomic_fetch_sub(&kv->used, 1);
                log_msg(LOG_ERROR, "reservation_failed", "keyring", kr->row.name, LOG_END);
                st = ST_UNAVAILABLE;
            }
        }
        pthread_mutex_unlock(&kr->mu);
    }
    if (st == ST_OK && kv->row.version == kr->row.latest_version && n * 10 >= limit * 9 &&
        !atomic_exchange(&kr->rotate_wanted, true))
        wake_maintenance(k);
    return st;
}

enum status
krm_kek_encrypt(struct krm_use *u, uint32_t version, const struct kek **out)
{
    struct keyring *kr = u->kr;
    enum status st;

    *out = NULL;
    if (version == 0)
        version = kr->row.latest_version;
    if (version > kr->row.latest_version)
        return ST_UNKNOWN_VERSION;
    if (version < kr->row.min_encryption_version)
        return ST_VERSION_DISABLED;
    struct kver *kv = &kr->v[version - 1];
    if ((st = kek_of(u->k, kr, kv, out)) != ST_OK)
        return st;
    if ((st = count_one(u->k, kr, kv)) != ST_OK)
        *out = NULL;
    return st;
}

enum status
krm_kek_decrypt(struct krm_use *u, uint32_t version, const struct kek **out)
{
    struct keyring *kr = u->kr;

    *out = NULL;
    if (version == 0 || version > kr->row.latest_version)
        return ST_UNKNOWN_VERSION;
    if (version < kr->row.min_decryption_version)
        return ST_VERSION_DISABLED;
    return kek_of(u->k, kr, &kr->v[version - 1], out);
}

/* --- maintenance --- */

static bool
due(const struct keyring *kr, int64_t now, const char **reason)
{
    if (kr->integrity_failed)
        return false;
    if (atomic_load(&kr->rotate_wanted)) {
        *reason = "encryption_bound";
        return true;
    }
    if (kr->row.rotation_period > 0 && now >= next_rotation(&kr->row)) {
        *reason = "rotation_period";
        return true;
    }
    return false;
}

void
krm_set_audit(struct krm *k, struct audit *a)
{
    k->audit = a;
}

/* A keyring found due under the read lock, to rotate to version `next`. */
struct due_rotation {
    char name[STORE_NAME_MAX];
    uint32_t next;
};

/* The trail's record of an automatic rotation: no caller, no route; the janitor did it. */
static struct audit_rec *
system_rec(const struct due_rotation *d)
{
    struct audit_rec *rec = audit_rec_new();
    rec->op = "keyring.rotate";
    snprintf(rec->method, sizeof rec->method, "SYSTEM");
    rec->route = "janitor";
    rec->status = 200;
    snprintf(rec->keyring, sizeof rec->keyring, "%s", d->name);
    rec->key_version = d->next;
    return rec;
}

/* One automatic rotation. Lock order as in request handlers: the audit chain (audit_txn_begin)
 * first, then the keyring lock; the event commits in the rotation's transaction or not at all. */
static void
rotate_due(struct krm *k, const struct due_rotation *d, int64_t now)
{
    struct audit_txn txn = {0};
    const char *reason = NULL;
    struct keyring *kr;
    enum status st = ST_OK;

    if (k->audit != NULL) {
        struct audit_rec *rec = system_rec(d);
        st = audit_txn_begin(k->audit, &txn, rec);
        free(rec);
    }
    if (st == ST_OK) {
        pthread_rwlock_wrlock(&k->lock);
        kr = find(k, d->name, NULL);
        if (kr == NULL || !due(kr, now, &reason) || kr->row.latest_version + 1 != d->next)
            st = ST_NOT_FOUND;          /* rotated or deleted meanwhile: nothing to do */
        else
            st = rotate_locked(k, kr, reason, k->audit != NULL ? &txn.row : NULL);
        pthread_rwlock_unlock(&k->lock);
    }
    audit_txn_end(&txn, st == ST_OK);   /* no-op when nothing was begun */
    if (st != ST_OK && st != ST_NOT_FOUND)
        log_msg(LOG_ERROR, "auto_rotation_failed", "keyring", d->name, "status", status_name(st),
                LOG_END);
}

void
krm_maintain(struct krm *k)
{
    int64_t now = krm_now(k);
    const char *reason = NULL;
    struct due_rotation *list = NULL;
    size_t n = 0;

    if (atomic_load(&k->shred_pending))
        shred_flush(k, "(earlier deletions)");
    /* Look under the read lock first: crypto calls only wait when something is due. */
    pthread_rwlock_rdlock(&k->lock);
    for (size_t i = 0; i < k->n; i++) {
        if (!due(k->items[i], now, &reason))
            continue;
        list = xrealloc(list, (n + 1) * sizeof *list);
        snprintf(list[n].name, sizeof list[n].name, "%s", k->items[i]->row.name);
        list[n++].next = k->items[i]->row.latest_version + 1;
    }
    pthread_rwlock_unlock(&k->lock);
    for (size_t i = 0; i < n; i++)
        rotate_due(k, &list[i], now);
    free(list);
}

static void *
maintenance_main(void *arg)
{
    struct krm *k = arg;
    pthread_mutex_lock(&k->wake_mu);
    while (!k->stopping) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += k->interval;
        pthread_cond_timedwait(&k->wake, &k->wake_mu, &until);
        if (k->stopping)
            break;
        pthread_mutex_unlock(&k->wake_mu);
        krm_maintain(k);
        pthread_mutex_lock(&k->wake_mu);
    }
    pthread_mutex_unlock(&k->wake_mu);
    return NULL;
}

void
krm_start_maintenance(struct krm *k, int interval_seconds)
{
    k->interval = interval_seconds > 0 ? interval_seconds : 60;
    if (pthread_create(&k->thread, NULL, maintenance_main, k) == 0)
        k->thread_started = true;
}

static const struct rootkey *
key_named(const struct rootkey *const *keys, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(rootkey_id(keys[i]), id) == 0)
            return keys[i];
    return NULL;
}

/* Before writing anything: every row is sound and under `to` or a key we were given. */
static enum status
rewrap_check(const struct krm *k, const struct rootkey *const *from, size_t n,
             const struct rootkey *to, char *err, size_t err_len)
{
    for (size_t i = 0; i < k->n; i++) {
        const struct keyring *kr = k->items[i];
        if (kr->integrity_failed) {
            snprintf(err, err_len, "keyring %s fails its integrity check; nothing was rewrapped",
                     kr->row.name);
            return ST_INTEGRITY;
        }
        for (size_t j = 0; j < kr->nv; j++) {
            const char *id = kr->v[j].row.root_key_id;
            if (strcmp(id, rootkey_id(to)) != 0 && key_named(from, n, id) == NULL) {
                snprintf(err, err_len, "version %u of keyring %s is wrapped under root key %s, "
                         "which was not given (pass its file with --old-key); nothing was "
                         "rewrapped", kr->v[j].row.version, kr->row.name, id);
                return ST_AUTH;
            }
        }
    }
    return ST_OK;
}

enum status
krm_rewrap_all(struct krm *k, const struct rootkey *const *from, size_t n,
               const struct rootkey *to, size_t *count, char *err, size_t err_len)
{
    enum status st;

    *count = 0;
    pthread_rwlock_wrlock(&k->lock);
    st = rewrap_check(k, from, n, to, err, err_len);
    for (size_t i = 0; i < k->n && st == ST_OK; i++) {
        struct keyring *kr = k->items[i];
        for (size_t j = 0; j < kr->nv && st == ST_OK; j++) {
            struct store_version v = kr->v[j].row;
            const struct rootkey *old = key_named(from, n, v.root_key_id);
            if (strcmp(v.root_key_id, rootkey_id(to)) == 0)
                continue;       /* done by an earlier, interrupted run */
            st = kek_rewrap(v.wrapped, old, to, kr->row.name, v.version, kr->v[j].row.wrapped,
                            kr->v[j].row.wrapped_len);
            v.wrapped_len = KEK_WRAPPED_BYTES;
            snprintf(v.root_key_id, sizeof v.root_key_id, "%s", rootkey_id(to));
            version_mac(k, kr->row.name, &v, v.mac);
            if (st == ST_OK && (st = store_version_rewrap(k->store, &v)) == ST_OK) {
                kr->v[j].row = v;
                (*count)++;
            }
            if (st != ST_OK)
                snprintf(err, err_len, "rewrapping version %u of keyring %s failed after %zu "
                         "rows; run again", v.version, kr->row.name, *count);
            sodium_memzero(&v, sizeof v);
        }
    }
    pthread_rwlock_unlock(&k->lock);
    return st;
}
