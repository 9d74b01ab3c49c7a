/* SPDX-License-Identifier: Apache-2.0 */
/* server/keyrings_rotation.c -- automatic rotation (period over, or 90% of a version's encryption
 * bound), run by the janitor and audited as the system's own act; and rewrapping every key version
 * under a new root key. */
#include "server/keyrings.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/checked.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/xmem.h"
#include "server/audit/audit.h"
#include "server/keyrings_priv.h"
#include "server/obs/metrics.h"

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
    if (kr->row.rotation_period > 0 && now >= keyrings__next_rotation(&kr->row)) {
        *reason = "rotation_period";
        return true;
    }
    return false;
}

void
keyrings_set_audit(struct keyrings *k, struct audit *a)
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
rotate_due(struct keyrings *k, const struct due_rotation *d, int64_t now)
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
        kr = keyrings__find(k, d->name, NULL);
        if (kr == NULL || !due(kr, now, &reason) || kr->row.latest_version + 1 != d->next)
            st = ST_NOT_FOUND; /* rotated or deleted meanwhile: nothing to do */
        else
            st = keyrings__rotate_locked(k, kr, reason, now, k->audit != NULL ? &txn.row : NULL);
        pthread_rwlock_unlock(&k->lock);
    }
    audit_txn_end(&txn, st == ST_OK); /* no-op when nothing was begun */
    if (st != ST_OK && st != ST_NOT_FOUND)
        log_msg(LOG_ERROR, "auto_rotation_failed", "keyring", d->name, "error", status_name(st),
                LOG_END);
}

void
keyrings_maintain(struct keyrings *k, int64_t now)
{
    const char *reason = NULL;
    struct due_rotation *list = NULL;
    size_t n = 0;

    if (atomic_load(&k->shred_pending))
        keyrings__shred_flush(k, "(earlier deletions)");
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

void
keyrings_set_kick(struct keyrings *k, void (*kick)(void *arg), void *arg)
{
    k->kick = kick;
    k->kick_arg = arg;
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
rewrap_check(const struct keyrings *k, const struct rootkey *const *from, size_t n,
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
                snprintf(err, err_len,
                         "version %u of keyring %s is wrapped under root key %s, "
                         "which was not given (pass its file with --old-key); nothing was "
                         "rewrapped",
                         kr->v[j].row.version, kr->row.name, id);
                return ST_AUTH;
            }
        }
    }
    return ST_OK;
}

enum status
keyrings_rewrap_all(struct keyrings *k, const struct rootkey *const *from, size_t n,
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
                continue; /* done by an earlier, interrupted run */
            st = kek_rewrap(v.wrapped, old, to, kr->row.name, v.version, kr->v[j].row.wrapped,
                            kr->v[j].row.wrapped_len);
            v.wrapped_len = KEK_WRAPPED_BYTES;
            snprintf(v.root_key_id, sizeof v.root_key_id, "%s", rootkey_id(to));
            keyrings__version_mac(k, kr->row.name, &v, v.mac);
            if (st == ST_OK && (st = store_version_rewrap(k->store, &v)) == ST_OK) {
                kr->v[j].row = v;
                (*count)++;
            }
            if (st != ST_OK)
                snprintf(err, err_len,
                         "rewrapping version %u of keyring %s failed after %zu "
                         "rows; run again",
                         v.version, kr->row.name, *count);
            sodium_memzero(&v, sizeof v);
        }
    }
    pthread_rwlock_unlock(&k->lock);
    return st;
}
