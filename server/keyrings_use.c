/* SPDX-License-Identifier: Apache-2.0 */
/* server/keyrings_use.c -- keyrings in crypto use: acquiring one, the KEK of a version (unwrapped
 * once, on first use), durable encryption counts in reserved blocks, and the per-keyring metrics.
 * Holds no KEK bytes itself: struct kek (crypto/kek.c) does. */
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

/* --- crypto use --- */

enum status
keyrings_acquire(struct keyrings *k, const char *name, struct keyring_use *u)
{
    struct keyring *kr;
    enum status st;

    u->k = NULL;
    u->kr = NULL;
    if ((st = keyrings__acquire_read(k, name, &kr)) != ST_OK)
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
keyrings_release(struct keyring_use *u)
{
    if (u->k != NULL)
        pthread_rwlock_unlock(&u->k->lock);
    u->k = NULL;
    u->kr = NULL;
}

enum envelope_format
keyrings_format(const struct keyring_use *u)
{
    return u->kr->fmt;
}

uint32_t
keyrings_latest(const struct keyring_use *u)
{
    return u->kr->row.latest_version;
}

static enum status
kek_of(struct keyrings *k, struct keyring *kr, struct kver *kv, const struct kek **out)
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
                log_msg(LOG_ERROR, "kek_unwrap_failed", "keyring", kr->row.name, "detail",
                        "a stored KEK does not open under this root key", LOG_END);
                st = ST_INTEGRITY;
            }
        }
        pthread_mutex_unlock(&kr->mu);
    }
    *out = kek;
    return st;
}

/* A version passed 90% of its bound: ask the janitor to rotate soon. */
static void
wake_maintenance(struct keyrings *k)
{
    if (k->kick != NULL)
        k->kick(k->kick_arg);
}

/* Raise the durable count of kv from what this process last stored to *want, compare and set:
 * when another process (a replica) reserved meanwhile, read its value, move this process's count
 * past it by as much (each process owns the range it raised the count over) and try again. A
 * few attempts; kr->mu held. */
static enum status
reserve_from_store(struct keyrings *k, struct keyring *kr, struct kver *kv, int64_t *want,
                   int64_t limit)
{
    enum status st = ST_UNAVAILABLE;

    for (int attempt = 0; attempt < 8; attempt++) {
        struct store_version v = kv->row, cur;
        uint8_t mac[ROWMAC_BYTES];
        v.encryptions_reserved = *want;
        keyrings__version_mac(k, kr->row.name, &v, v.mac);
        st = store_version_reserve_from(k->store, kr->row.id, v.version,
                                        kv->row.encryptions_reserved, *want, v.mac);
        if (st != ST_CONFLICT)
            return st;
        if ((st = store_version_get(k->store, kr->row.id, v.version, &cur)) != ST_OK)
            return st;
        keyrings__version_mac(k, kr->row.name, &cur, mac);
        if (sodium_memcmp(mac, cur.mac, sizeof mac) != 0 ||
            cur.encryptions_reserved < kv->row.encryptions_reserved) {
            log_msg(LOG_ERROR, "keyring_integrity_failure", "keyring", kr->row.name, "detail",
                    "a key version row does not match its MAC; refusing it", LOG_END);
            return ST_INTEGRITY;
        }
        int64_t shift = cur.encryptions_reserved - kv->row.encryptions_reserved;
        atomic_fetch_add(&kv->used, shift);
        *want += shift;
        if (*want > limit)
            *want = limit;
        kv->row.encryptions_reserved = cur.encryptions_reserved;
        memcpy(kv->row.mac, cur.mac, sizeof kv->row.mac);
        atomic_store(&kv->reserved, cur.encryptions_reserved);
        if (*want <= cur.encryptions_reserved)
            return ST_VERSION_DISABLED; /* the bound is used up across the replicas */
    }
    return st;
}

/* Count one encryption. A crash may over-count by up to one block, never under-count. */
static enum status
count_one(struct keyrings *k, struct keyring *kr, struct kver *kv)
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
            st = reserve_from_store(k, kr, kv, &want, limit);
            if (st == ST_OK) {
                struct store_version v = kv->row;
                v.encryptions_reserved = want;
                keyrings__version_mac(k, kr->row.name, &v, v.mac);
                kv->row.encryptions_reserved = want;
                memcpy(kv->row.mac, v.mac, sizeof v.mac);
                atomic_store(&kv->reserved, want);
            } else {
                atomic_fetch_sub(&kv->used, 1);
                log_msg(LOG_ERROR, "reservation_failed", "keyring", kr->row.name, LOG_END);
                st = st == ST_VERSION_DISABLED ? st : ST_UNAVAILABLE;
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
keyrings_kek_encrypt(struct keyring_use *u, uint32_t version, const struct kek **out)
{
    struct keyring *kr = u->kr;
    enum status st;

    *out = NULL;
    if (version == 0)
        version = kr->row.latest_version;
    if (version > kr->row.latest_version)
        return ST_UNKNOWN_VERSION;
    /* 0: the latest, and explicit versions down to min_decryption_version. */
    uint32_t lo = kr->row.min_encryption_version != 0 ? kr->row.min_encryption_version
                                                      : kr->row.min_decryption_version;
    if (version < lo)
        return ST_VERSION_DISABLED;
    struct kver *kv = &kr->v[version - 1];
    if ((st = kek_of(u->k, kr, kv, out)) != ST_OK)
        return st;
    if ((st = count_one(u->k, kr, kv)) != ST_OK)
        *out = NULL;
    return st;
}

enum status
keyrings_kek_decrypt(struct keyring_use *u, uint32_t version, const struct kek **out)
{
    struct keyring *kr = u->kr;

    *out = NULL;
    if (version == 0 || version > kr->row.latest_version)
        return ST_UNKNOWN_VERSION;
    if (version < kr->row.min_decryption_version)
        return ST_VERSION_DISABLED;
    return kek_of(u->k, kr, &kr->v[version - 1], out);
}

#define METRICS_VERSIONS 8 /* newest usable versions per keyring with their own series */

/* One gauge family with a sample per keyring that has versions: value(kr). */
static void
per_keyring(struct metrics_out *o, const struct keyrings *k, const char *name, const char *help,
            double (*value)(const struct keyring *kr, int64_t now), int64_t now)
{
    metrics_family(o, name, "gauge", help);
    for (size_t i = 0; i < k->n; i++) {
        const struct keyring *kr = k->items[i];
        if (!kr->integrity_failed && kr->nv > 0)
            metrics_sample1(o, name, "keyring", kr->row.name, value(kr, now));
    }
}

static double
latest_encryptions(const struct keyring *kr, int64_t now)
{
    (void)now;
    return (double)atomic_load(&((struct keyring *)(uintptr_t)kr)->v[kr->nv - 1].used);
}

static double
latest_age(const struct keyring *kr, int64_t now)
{
    return (double)(now - kr->v[kr->nv - 1].row.created_at);
}

static double
latest_created(const struct keyring *kr, int64_t now)
{
    (void)now;
    return (double)kr->v[kr->nv - 1].row.created_at;
}

static double
rotation_period(const struct keyring *kr, int64_t now)
{
    (void)now;
    return (double)kr->row.rotation_period;
}

static double
next_rotation(const struct keyring *kr, int64_t now)
{
    (void)now;
    return kr->row.rotation_period > 0 ? (double)keyrings__next_rotation(&kr->row) : 0;
}

/* Encryptions under each usable version (min_decryption_version and up, the newest few). */
static void
version_encryptions(struct metrics_out *o, const struct keyrings *k)
{
    const char *name = "difyguard_key_version_encryptions";
    char ver[16];

    metrics_family(o, name, "gauge",
                   "Encryptions counted under each key version still usable for decryption (the "
                   "8 newest per keyring); the bound is difyguard_key_version_encryption_limit.");
    for (size_t i = 0; i < k->n; i++) {
        const struct keyring *kr = k->items[i];
        if (kr->integrity_failed)
            continue;
        size_t lo = kr->nv > METRICS_VERSIONS ? kr->nv - METRICS_VERSIONS : 0;
        if (kr->row.min_decryption_version > lo + 1)
            lo = kr->row.min_decryption_version - 1;
        for (size_t v = lo; v < kr->nv; v++) {
            snprintf(ver, sizeof ver, "%u", kr->v[v].row.version);
            metrics_sample2(o, name, "keyring", kr->row.name, "version", ver,
                            (double)atomic_load(&((struct keyring *)(uintptr_t)kr)->v[v].used));
        }
    }
}

void
keyrings_metrics(const void *self, struct metrics_out *o)
{
    struct keyrings *k = (struct keyrings *)(uintptr_t)self;
    int64_t now = clock_now_s();

    metrics_counter(o, "difyguard_shred_checkpoint_failures_total",
                    "Crypto-shreds after which the database log could not be flushed of the "
                    "deleted key versions (retried).",
                    atomic_load(&k->shred_failures));
    metrics_gauge(o, "difyguard_key_version_encryption_limit",
                  "Encryptions a key version may do; rotation at 90%.", (double)k->set.kek_limit);
    pthread_rwlock_rdlock(&k->lock);
    metrics_gauge(o, "difyguard_keyrings", "Keyrings on this node.", (double)k->n);
    per_keyring(o, k, "difyguard_keyring_latest_version_encryptions",
                "Encryptions counted under each keyring's latest key version.", latest_encryptions,
                now);
    per_keyring(o, k, "difyguard_keyring_latest_version_age_seconds",
                "Age of each keyring's latest key version.", latest_age, now);
    per_keyring(o, k, "difyguard_keyring_latest_version_created_timestamp_seconds",
                "When each keyring's latest key version was made, unix seconds.", latest_created,
                now);
    per_keyring(o, k, "difyguard_keyring_rotation_period_seconds",
                "Each keyring's rotation_period (its cryptoperiod; 0: no automatic rotation).",
                rotation_period, now);
    per_keyring(o, k, "difyguard_keyring_next_rotation_timestamp_seconds",
                "When each keyring is next rotated by its period, unix seconds (0: never).",
                next_rotation, now);
    version_encryptions(o, k);
    pthread_rwlock_unlock(&k->lock);
}
