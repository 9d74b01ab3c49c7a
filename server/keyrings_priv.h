/* SPDX-License-Identifier: Apache-2.0 */
/* server/keyrings_priv.h -- what the files of the keyring manager share (keyrings.c: the cache and
 * changes; keyrings_use.c: crypto use, counts and metrics; keyrings_rotation.c: automatic rotation
 * and root-key rewrapping). Nothing else includes it. */
#ifndef DG_SERVER_KEYRINGS_PRIV_H
#define DG_SERVER_KEYRINGS_PRIV_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "crypto/rowmac.h"
#include "server/keyrings.h"

struct kver {
    struct store_version row;
    struct kek *_Atomic kek;  /* unwrapped on first use, under kr->mu */
    _Atomic int64_t used;     /* encryptions counted since load (starts at reserved) */
    _Atomic int64_t reserved; /* durable upper bound */
};

struct keyring {
    struct store_keyring row;
    enum envelope_format fmt;
    struct kver *v; /* v[i].row.version == i + 1 */
    size_t nv;
    pthread_mutex_t mu; /* KEK unwrap and reservations */
    bool integrity_failed;
    atomic_bool rotate_wanted;
};

struct keyrings {
    struct store *store;
    const struct rootkey *rk;
    const struct secret *mac_key;
    struct keyrings_settings set;
    pthread_rwlock_t lock;  /* guards items and every row */
    struct keyring **items; /* sorted by name */
    size_t n, cap;
    struct audit *audit;                 /* events of automatic rotations; may be NULL */
    atomic_uint_fast64_t shred_failures; /* store_shred_flush calls that failed */
    atomic_bool shred_pending;           /* a flush is still owed: maintenance retries it */
    void (*kick)(void *arg);             /* ask the janitor for a rotation soon */
    void *kick_arg;
};

void keyrings__version_mac(const struct keyrings *k, const char *keyring,
                           const struct store_version *v, uint8_t out[static ROWMAC_BYTES]);
struct keyring *keyrings__find(const struct keyrings *k, const char *name, size_t *pos);
int64_t keyrings__next_rotation(const struct store_keyring *r);
enum status keyrings__acquire_read(struct keyrings *k, const char *name, struct keyring **out);
enum status keyrings__rotate_locked(struct keyrings *k, struct keyring *kr, const char *reason,
                                    int64_t now, const struct store_audit_row *ev);
void keyrings__shred_flush(struct keyrings *k, const char *keyring);

#endif
