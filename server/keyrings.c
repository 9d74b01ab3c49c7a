/* SPDX-License-Identifier: Apache-2.0 */
/* server/keyrings.c -- the keyring cache and its changes (create, rotate, patch, delete); crypto
 * use is in keyrings_use.c, automatic rotation and root-key rewrapping in keyrings_rotation.c.
 * Holds no KEK bytes itself: struct kek (crypto/kek.c) does. Never logs key material. */
#include "server/keyrings.h"
#include "server/keyrings_priv.h"

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
#include "crypto/rowmac.h"
#include "server/audit/audit.h"
#include "server/obs/metrics.h"

static enum envelope_format
format_of(const char *alg)
{
    if (strcmp(alg, "xchacha20-poly1305") == 0)
        return ENVELOPE_XCHACHA20POLY1305;
    if (strcmp(alg, "aes-256-siv") == 0)
        return ENVELOPE_AES256SIV;
    return ENVELOPE_AES256GCM;
}

/* --- row MACs --- */

static void
keyring_mac(const struct keyrings *k, const struct store_keyring *r,
            uint8_t out[static ROWMAC_BYTES])
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

void
keyrings__version_mac(const struct keyrings *k, const char *keyring, const struct store_version *v,
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

static void
log_integrity_failure(const char *name)
{
    log_msg(LOG_ERROR, "keyring_integrity_failure", "keyring", name, "detail",
            "a keyring or key version row does not match its MAC; refusing it", LOG_END);
}

/* Build a cache entry from the store, checking every MAC. Never fails on a MAC mismatch: the
 * entry is marked and refused at use, so one bad row does not take the service down. */
static enum status
keyring_load(struct keyrings *k, const struct store_keyring *row, struct keyring **out,
             bool log_failure)
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
        keyrings__version_mac(k, row->name, &vs[i], mac);
        if (!mac_ok(mac, vs[i].mac) || vs[i].version != i + 1)
            kr->integrity_failed = true;
        kver_set(&kr->v[i], &vs[i]);
    }
    if (n != row->latest_version)
        kr->integrity_failed = true;
    if (kr->integrity_failed && log_failure)
        log_integrity_failure(row->name);
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

struct keyring *
keyrings__find(const struct keyrings *k, const char *name, size_t *pos)
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
insert(struct keyrings *k, struct keyring *kr)
{
    size_t pos;
    if (keyrings__find(k, kr->row.name, &pos) != NULL)
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
remove_at(struct keyrings *k, size_t pos)
{
    keyring_free(k->items[pos]);
    memmove(&k->items[pos], &k->items[pos + 1], (k->n - pos - 1) * sizeof *k->items);
    k->n--;
}

enum status
keyrings_open(struct keyrings **out, struct store *st, const struct rootkey *rk,
              const struct secret *mac_key, const struct keyrings_settings *set)
{
    struct store_keyring *rows = NULL;
    size_t n = 0;
    enum status s;
    struct keyrings *k = xcalloc(1, sizeof *k);

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
    if ((s = store_keyring_list(st, &rows, &n)) != ST_OK)
        goto out;
    for (size_t i = 0; i < n; i++) {
        struct keyring *kr;
        if ((s = keyring_load(k, &rows[i], &kr, true)) != ST_OK)
            goto out;
        insert(k, kr);
    }
    *out = k;
out:
    free(rows);
    if (*out == NULL)
        keyrings_close(k);
    return s;
}

void
keyrings_close(struct keyrings *k)
{
    if (k == NULL)
        return;
    for (size_t i = 0; i < k->n; i++)
        keyring_free(k->items[i]);
    free(k->items);
    pthread_rwlock_destroy(&k->lock);
    free(k);
}

/* Another replica rotated, changed or deleted a keyring: reload what differs from the store.
 * Rows are compared by latest version and MAC (the MAC covers every mutable column); changed
 * ones are loaded outside the lock and swapped in under the write lock, so crypto calls wait
 * only for the swap. A version's count restarts at the durable reservation, which never falls
 * below what this process used. */
void
keyrings_sync(struct keyrings *k)
{
    struct store_keyring *rows = NULL;
    size_t n = 0;

    if (store_keyring_list(k->store, &rows, &n) != ST_OK) {
        log_msg(LOG_WARN, "keyring_sync_failed", "detail", "cannot list keyrings", LOG_END);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        struct keyring *fresh = NULL;
        struct store_keyring seen = {0}, again;
        pthread_rwlock_rdlock(&k->lock);
        const struct keyring *kr = keyrings__find(k, rows[i].name, NULL);
        bool same = kr == NULL ||
                    (kr->row.id == rows[i].id && kr->row.latest_version == rows[i].latest_version &&
                     memcmp(kr->row.mac, rows[i].mac, sizeof kr->row.mac) == 0);
        if (kr != NULL)
            seen = kr->row;
        pthread_rwlock_unlock(&k->lock);
        /* One not cached yet is loaded at its first use, as before. */
        if (same || keyring_load(k, &rows[i], &fresh, false) != ST_OK)
            continue;
        /* The row and its versions are read one after the other: a rotation committed between
         * the two reads looks like a version too many. Only a failure the row still shows when
         * read again is real; otherwise the next sync looks again. */
        if (fresh->integrity_failed &&
            (store_keyring_get(k->store, rows[i].name, &again) != ST_OK ||
             again.latest_version != rows[i].latest_version ||
             memcmp(again.mac, rows[i].mac, sizeof again.mac) != 0)) {
            keyring_free(fresh);
            continue;
        }
        if (fresh->integrity_failed)
            log_integrity_failure(rows[i].name);
        size_t pos = 0;
        pthread_rwlock_wrlock(&k->lock);
        /* Swapped only if this process did not change the keyring meanwhile (its own change is
         * newer than what was read; the next sync compares again). */
        kr = keyrings__find(k, rows[i].name, &pos);
        if (kr != NULL && kr->row.latest_version == seen.latest_version &&
            memcmp(kr->row.mac, seen.mac, sizeof seen.mac) == 0) {
            keyring_free(k->items[pos]);
            k->items[pos] = fresh;
            fresh = NULL;
        }
        pthread_rwlock_unlock(&k->lock);
        if (fresh != NULL) {
            keyring_free(fresh);
            continue;
        }
        log_msg(LOG_INFO, "keyring_synced", "keyring", rows[i].name, "detail",
                "changed by another replica", LOG_END);
    }
    /* Cached keyrings the list lacks: gone, unless created here after the list was read. */
    char(*gone)[STORE_NAME_MAX] = NULL;
    size_t ng = 0;
    pthread_rwlock_rdlock(&k->lock);
    for (size_t pos = 0; pos < k->n; pos++) {
        bool found = false;
        for (size_t i = 0; i < n && !found; i++)
            found = strcmp(rows[i].name, k->items[pos]->row.name) == 0;
        if (!found) {
            gone = xrealloc(gone, (ng + 1) * sizeof *gone);
            snprintf(gone[ng++], sizeof *gone, "%s", k->items[pos]->row.name);
        }
    }
    pthread_rwlock_unlock(&k->lock);
    for (size_t g = 0; g < ng; g++) {
        struct store_keyring again;
        size_t pos = 0;
        if (store_keyring_get(k->store, gone[g], &again) != ST_NOT_FOUND)
            continue;
        pthread_rwlock_wrlock(&k->lock);
        if (keyrings__find(k, gone[g], &pos) != NULL) {
            log_msg(LOG_INFO, "keyring_synced", "keyring", gone[g], "detail",
                    "deleted by another replica", LOG_END);
            remove_at(k, pos);
        }
        pthread_rwlock_unlock(&k->lock);
    }
    free(gone);
    free(rows);
}

#define ROTATION_MSG "rotation_period must be 0 (off) or from 1h to 3650d"

/* --- metadata --- */

/* When the period next rotates the keyring. Checked: a row written before periods were
 * bounded may hold a huge one, which means "not for a very long time", never "now". */
int64_t
keyrings__next_rotation(const struct store_keyring *r)
{
    return checked_time_add(r->rotated_at, r->rotation_period);
}

/* The metadata of a keyring (the caller holds the lock). */
static void
describe(const struct keyrings *k, const struct keyring *kr, struct keyring_info *out)
{
    const struct store_keyring *r = &kr->row;

    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", r->name);
    snprintf(out->algorithm, sizeof out->algorithm, "%s", r->algorithm);
    out->deterministic = r->deterministic != 0;
    out->rotation_period = r->rotation_period;
    out->deletion_allowed = r->deletion_allowed != 0;
    out->latest_version = r->latest_version;
    out->min_decryption_version = r->min_decryption_version;
    out->min_encryption_version = r->min_encryption_version;
    out->created_at = r->created_at;
    out->updated_at = r->updated_at;
    out->next_rotation_at = r->rotation_period ? keyrings__next_rotation(r) : 0;
    out->encryption_limit = k->set.kek_limit;
    out->n_versions = kr->nv;
    out->versions = xcalloc(kr->nv ? kr->nv : 1, sizeof *out->versions);
    for (size_t i = 0; i < kr->nv; i++) {
        const struct kver *kv = &kr->v[i];
        out->versions[i].version = kv->row.version;
        out->versions[i].created_at = kv->row.created_at;
        out->versions[i].encryptions = atomic_load(&kv->used);
        snprintf(out->versions[i].root_key_id, sizeof out->versions[i].root_key_id, "%s",
                 kv->row.root_key_id);
    }
}

void
keyring_info_free(struct keyring_info *i)
{
    if (i == NULL)
        return;
    free(i->versions);
    i->versions = NULL;
    i->n_versions = 0;
}

void
keyring_infos_free(struct keyring_info *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        keyring_info_free(&v[i]);
    free(v);
}

/* Find in the cache, else load from the store (another process may have created it).
 * Called without the lock; returns with the read lock held on ST_OK. */
enum status
keyrings__acquire_read(struct keyrings *k, const char *name, struct keyring **out)
{
    struct store_keyring row;
    struct keyring *kr;
    enum status st;

    *out = NULL;
    pthread_rwlock_rdlock(&k->lock);
    if ((*out = keyrings__find(k, name, NULL)) != NULL)
        return ST_OK;
    pthread_rwlock_unlock(&k->lock);
    if (!names_valid(name))
        return ST_NOT_FOUND;
    if ((st = store_keyring_get(k->store, name, &row)) != ST_OK)
        return st;
    if ((st = keyring_load(k, &row, &kr, true)) != ST_OK)
        return st;
    pthread_rwlock_wrlock(&k->lock);
    if (keyrings__find(k, name, NULL) == NULL)
        insert(k, kr);
    else
        keyring_free(kr);
    pthread_rwlock_unlock(&k->lock);
    pthread_rwlock_rdlock(&k->lock);
    if ((*out = keyrings__find(k, name, NULL)) != NULL)
        return ST_OK;
    pthread_rwlock_unlock(&k->lock);
    return ST_NOT_FOUND;
}

enum status
keyrings_get(struct keyrings *k, const char *name, struct keyring_info *out)
{
    struct keyring *kr;
    enum status st;

    memset(out, 0, sizeof *out);
    if ((st = keyrings__acquire_read(k, name, &kr)) != ST_OK)
        return st;
    if (kr->integrity_failed)
        st = ST_INTEGRITY;
    else
        describe(k, kr, out);
    pthread_rwlock_unlock(&k->lock);
    return st;
}

bool
keyrings_known(struct keyrings *k, const char *name)
{
    if (k == NULL)
        return false;
    pthread_rwlock_rdlock(&k->lock);
    bool known = keyrings__find(k, name, NULL) != NULL;
    pthread_rwlock_unlock(&k->lock);
    return known;
}

enum status
keyrings_list(struct keyrings *k, bool (*visible)(const void *arg, const char *name),
              const void *arg, struct keyring_info **out, size_t *n)
{
    pthread_rwlock_rdlock(&k->lock);
    *out = xcalloc(k->n ? k->n : 1, sizeof **out);
    *n = 0;
    for (size_t i = 0; i < k->n; i++)
        if (!k->items[i]->integrity_failed &&
            (visible == NULL || visible(arg, k->items[i]->row.name)))
            describe(k, k->items[i], &(*out)[(*n)++]);
    pthread_rwlock_unlock(&k->lock);
    return ST_OK;
}

/* --- changes --- */

/* Wrap new KEKs only under the root key the database expects (meta root_key_id, recorded by init
 * and by rotate-root-key): a process still holding a replaced root key must not add versions that
 * no later start can open. ST_CONFLICT (logged) when the database moved on. */
static enum status
root_key_current(const struct keyrings *k, const char *keyring)
{
    char id[STORE_ROOT_ID_MAX + 16];
    enum status st = store_meta_get(k->store, "root_key_id", id, sizeof id);

    if (st == ST_OK && strcmp(id, rootkey_id(k->rk)) == 0)
        return ST_OK;
    if (st != ST_OK && st != ST_NOT_FOUND && st != ST_INTERNAL)
        return st;
    log_msg(LOG_ERROR, "root_key_mismatch", "keyring", keyring, "root_key_id", rootkey_id(k->rk),
            "database_root_key_id", st == ST_OK ? id : "", "detail",
            "the database expects another root key (rotated since this process "
            "started?); refusing to wrap a new key version: restart difyguard",
            LOG_END);
    return ST_CONFLICT;
}

static enum status
new_version(struct keyrings *k, const char *name, uint32_t version, int64_t now,
            struct store_version *v)
{
    struct kek *kek = NULL;
    uint8_t wrapped[KEK_WRAPPED_BYTES];
    enum status st;

    memset(v, 0, sizeof *v);
    if ((st = root_key_current(k, name)) != ST_OK)
        return st;
    if ((st = kek_generate(&kek, wrapped, k->rk, name, version)) != ST_OK)
        return st;
    kek_free(kek); /* unwrapped again on first use, from the stored row */
    v->version = version;
    snprintf(v->root_key_id, sizeof v->root_key_id, "%s", rootkey_id(k->rk));
    memcpy(v->wrapped, wrapped, sizeof wrapped);
    v->wrapped_len = sizeof wrapped;
    v->created_at = now;
    v->encryptions_reserved = 0;
    keyrings__version_mac(k, name, v, v->mac);
    return ST_OK;
}

static enum status
check_create(const struct keyring_spec *c, struct store_keyring *r, const char **msg)
{
    const char *alg = c->algorithm;
    bool det = c->deterministic == 1 || (alg != NULL && strcmp(alg, "aes-256-siv") == 0);

    if (!names_valid(c->name)) {
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
    r->latest_version = r->min_decryption_version = 1;
    r->min_encryption_version = 0; /* the latest version */
    r->created_at = r->updated_at = r->rotated_at = clock_now_s();
    return ST_OK;
}

enum status
keyrings_create(struct keyrings *k, const struct keyring_spec *c, struct keyring_info *out,
                const char **msg, const struct store_audit_row *ev)
{
    struct store_keyring r;
    struct store_version v;
    struct keyring *kr = NULL;
    enum status st;

    memset(out, 0, sizeof *out);
    if ((st = check_create(c, &r, msg)) != ST_OK)
        return st;
    if ((st = new_version(k, r.name, 1, r.created_at, &v)) != ST_OK) {
        if (st == ST_CONFLICT)
            *msg = "the database is under another root key now: restart difyguard with it";
        return st;
    }
    keyring_mac(k, &r, r.mac);
    pthread_rwlock_wrlock(&k->lock);
    if ((st = store_keyring_create(k->store, &r, &v, ev)) == ST_OK &&
        (st = keyring_load(k, &r, &kr, true)) == ST_OK) {
        insert(k, kr);
        describe(k, kr, out);
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
enum status
keyrings__rotate_locked(struct keyrings *k, struct keyring *kr, const char *reason, int64_t now,
                        const struct store_audit_row *ev)
{
    struct store_keyring r = kr->row;
    struct store_version v;
    enum status st;

    if (kr->integrity_failed)
        return ST_INTEGRITY;
    if ((st = new_version(k, r.name, r.latest_version + 1, now, &v)) != ST_OK)
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
    log_msg(LOG_INFO, "keyring_rotated", "keyring", r.name, "#version", ver, "reason", reason,
            LOG_END);
out:
    sodium_memzero(&v, sizeof v);
    return st;
}

enum status
keyrings_rotate(struct keyrings *k, const char *name, struct keyring_info *out,
                const struct store_audit_row *ev)
{
    struct keyring *kr;
    enum status st;

    memset(out, 0, sizeof *out);
    if ((st = keyrings__acquire_read(k, name, &kr)) != ST_OK)
        return st;
    pthread_rwlock_unlock(&k->lock);
    pthread_rwlock_wrlock(&k->lock);
    if ((kr = keyrings__find(k, name, NULL)) == NULL)
        st = ST_NOT_FOUND;
    else if ((st = keyrings__rotate_locked(k, kr, "manual", clock_now_s(), ev)) == ST_OK)
        describe(k, kr, out);
    pthread_rwlock_unlock(&k->lock);
    return st;
}

/* min_encryption_version 0 means "the latest version" (the default, as in Vault): encryption
 * always uses the latest, and an explicit key_version may be any version still decryptable. A
 * nonzero min_encryption_version the body does not name is raised with min_decryption_version,
 * so retiring versions takes one field. The messages say exactly what to send (per thread). */
static _Thread_local char patch_msg[200];

static enum status
apply_patch(struct store_keyring *r, const struct keyring_patch *p, const char **msg)
{
    const uint32_t latest = r->latest_version;

    if (p->min_decryption_version >= 0)
        r->min_decryption_version = (uint32_t)p->min_decryption_version;
    if (p->min_encryption_version >= 0)
        r->min_encryption_version = (uint32_t)p->min_encryption_version;
    else if (r->min_encryption_version != 0 &&
             r->min_encryption_version < r->min_decryption_version)
        r->min_encryption_version = r->min_decryption_version;
    if (p->rotation_period >= 0)
        r->rotation_period = p->rotation_period;
    if (p->deletion_allowed >= 0)
        r->deletion_allowed = p->deletion_allowed;
    if (p->min_decryption_version > (int64_t)latest || r->min_decryption_version < 1) {
        snprintf(patch_msg, sizeof patch_msg,
                 "min_decryption_version must be between 1 and latest_version (%u)", latest);
        *msg = patch_msg;
        return ST_INVALID;
    }
    if (p->min_encryption_version > (int64_t)latest) {
        snprintf(patch_msg, sizeof patch_msg,
                 "min_encryption_version must be 0 (latest) or between 1 and latest_version (%u)",
                 latest);
        *msg = patch_msg;
        return ST_INVALID;
    }
    if (r->min_encryption_version != 0 && r->min_encryption_version < r->min_decryption_version) {
        snprintf(patch_msg, sizeof patch_msg,
                 "min_encryption_version (%u) is below min_decryption_version (%u): send "
                 "min_encryption_version 0 (latest) or a version from %u to %u",
                 r->min_encryption_version, r->min_decryption_version, r->min_decryption_version,
                 latest);
        *msg = patch_msg;
        return ST_INVALID;
    }
    if (r->rotation_period != 0 &&
        (r->rotation_period < KEYRING_MIN_ROTATION || r->rotation_period > DURATION_MAX_SECONDS)) {
        *msg = ROTATION_MSG;
        return ST_INVALID;
    }
    return ST_OK;
}

enum status
keyrings_patch(struct keyrings *k, const char *name, const struct keyring_patch *p,
               struct keyring_info *out, const char **msg, const struct store_audit_row *ev)
{
    struct keyring *kr;
    struct store_keyring r;
    enum status st;

    memset(out, 0, sizeof *out);
    if ((st = keyrings__acquire_read(k, name, &kr)) != ST_OK)
        return st;
    pthread_rwlock_unlock(&k->lock);
    pthread_rwlock_wrlock(&k->lock);
    if ((kr = keyrings__find(k, name, NULL)) == NULL) {
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
    r.updated_at = clock_now_s();
    keyring_mac(k, &r, r.mac);
    if ((st = store_keyring_update(k->store, &r, ev)) != ST_OK)
        goto out;
    kr->row = r;
    describe(k, kr, out);
    log_msg(LOG_INFO, "keyring_updated", "keyring", r.name, LOG_END);
out:
    pthread_rwlock_unlock(&k->lock);
    return st;
}

/* Drop the deleted rows' copies from the store's log; alert when that cannot be done. */
void
keyrings__shred_flush(struct keyrings *k, const char *keyring)
{
    if (store_shred_flush(k->store) == ST_OK) {
        if (atomic_exchange(&k->shred_pending, false))
            log_msg(LOG_INFO, "shred_checkpoint_done", "keyring", keyring, LOG_END);
        return;
    }
    atomic_fetch_add(&k->shred_failures, 1);
    atomic_store(&k->shred_pending, true);
    log_msg(LOG_ERROR, "shred_checkpoint_failed", "keyring", keyring, "detail",
            "the database log (WAL) may still hold deleted key versions (another "
            "process reading the database?); retried by the maintenance thread",
            LOG_END);
}

uint64_t
keyrings_shred_failures(const struct keyrings *k)
{
    return atomic_load(&k->shred_failures);
}

enum status
keyrings_delete(struct keyrings *k, const char *name, const struct store_audit_row *ev)
{
    struct keyring *kr;
    size_t pos;
    enum status st;

    if ((st = keyrings__acquire_read(k, name, &kr)) != ST_OK)
        return st;
    pthread_rwlock_unlock(&k->lock);
    pthread_rwlock_wrlock(&k->lock);
    if ((kr = keyrings__find(k, name, &pos)) == NULL)
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
        keyrings__shred_flush(k, name); /* crypto calls need not wait for it */
    return st;
}
