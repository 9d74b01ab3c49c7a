/* SPDX-License-Identifier: Apache-2.0 */
/* server/keyrings.h -- the keyring manager: keyring metadata cached from the store (each row
 * checked against its MAC), KEKs unwrapped on first use and cached, versions, rotation (manual,
 * by rotation_period, and at 90% of a version's encryption bound), durable encryption counts
 * reserved in blocks. Thread-safe: crypto calls share a read lock; changes take the write lock. */
#ifndef DG_SERVER_KEYRINGS_H
#define DG_SERVER_KEYRINGS_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "common/status.h"
#include "crypto/envelope.h"
#include "crypto/kek.h"
#include "crypto/rootkey.h"
#include "crypto/secret.h"
#include "server/store/store.h"

#define KEYRING_MIN_ROTATION 3600

struct krm;

struct krm_settings {
    uint64_t kek_limit;          /* encryptions per KEK version; rotation at 90% */
    int64_t reserve_block;       /* encryptions reserved per durable write */
};

NODISCARD enum status krm_open(struct krm **out, struct store *st, const struct rootkey *rk,
                               const struct secret *mac_key, const struct krm_settings *set);
void krm_close(struct krm *k);
/* For tests: read the time (unix seconds) from `clock` instead of the wall clock, for row time
 * stamps and the rotation schedule (krm_maintain). NULL restores the wall clock, the default.
 * Set it right after krm_open, before any other call or thread uses the manager. */
void krm_set_clock(struct krm *k, int64_t (*clock)(void));

/* True for [a-z0-9][a-z0-9._-]{0,62} (also used for app names). */
bool name_valid(const char *s);

struct krm_create {
    const char *name;
    const char *algorithm;       /* NULL = default for the mode */
    int deterministic;           /* -1 = unset */
    int64_t rotation_period;     /* -1 = default */
    bool deletion_allowed;
};
/* *msg gets a fixed explanation on ST_INVALID. */
/* `ev` (may be NULL) is the request's audit event, committed with the change. */
NODISCARD enum status krm_create(struct krm *k, const struct krm_create *c, json_t **out,
                                 const char **msg, const struct store_audit_row *ev);
NODISCARD enum status krm_get(struct krm *k, const char *name, json_t **out);
/* True when the keyring is in this node's cache (no database read: safe on refused requests). */
bool krm_known(struct krm *k, const char *name);
/* Every keyring for which visible(arg, name) is true (visible NULL: every keyring). */
NODISCARD enum status krm_list(struct krm *k, bool (*visible)(const void *arg, const char *name),
                               const void *arg, json_t **out);
NODISCARD enum status krm_rotate(struct krm *k, const char *name, json_t **out,
                                 const struct store_audit_row *ev);

struct krm_patch {
    int64_t min_decryption_version;    /* -1 = unchanged */
    int64_t min_encryption_version;
    int64_t rotation_period;
    int deletion_allowed;              /* -1 = unchanged */
};
NODISCARD enum status krm_patch(struct krm *k, const char *name, const struct krm_patch *p,
                                json_t **out, const char **msg, const struct store_audit_row *ev);
/* Crypto-shred. After the deletion commits, the store's log is flushed of the deleted rows
 * (store_shred_flush); when that cannot be done the keyring is still deleted (ST_OK), the failure
 * is logged (shred_checkpoint_failed) and counted, and the maintenance thread tries again. */
NODISCARD enum status krm_delete(struct krm *k, const char *name, const struct store_audit_row *ev);
/* Flushes after a crypto-shred that failed so far (for metrics). */
uint64_t krm_shred_failures(const struct krm *k);

/* A keyring held for crypto calls (read lock). Release on every path. */
struct krm_use {
    struct krm *k;
    struct keyring *kr;
};
NODISCARD enum status krm_acquire(struct krm *k, const char *name, struct krm_use *u);
void krm_release(struct krm_use *u);
enum envelope_format krm_format(const struct krm_use *u);
uint32_t krm_latest(const struct krm_use *u);

/* The KEK to encrypt with: version 0 = latest. Counts one encryption against the version's
 * bound (durably reserved). ST_VERSION_DISABLED below min_encryption_version or when the
 * version's bound is spent; ST_UNKNOWN_VERSION above latest. */
NODISCARD enum status krm_kek_encrypt(struct krm_use *u, uint32_t version, const struct kek **out);
/* The KEK to decrypt with. ST_VERSION_DISABLED below min_decryption_version;
 * ST_UNKNOWN_VERSION when no such version. */
NODISCARD enum status krm_kek_decrypt(struct krm_use *u, uint32_t version, const struct kek **out);

/* Background duty: rotate keyrings due by period or bound (takes the write lock only when
 * something is due). krm_start_maintenance runs it every interval seconds, and at once when a
 * version crosses 90% of its bound; krm_close stops it. With an audit writer (krm_set_audit),
 * each automatic rotation commits its keyring.rotate event (method SYSTEM, route janitor) in the
 * rotation's own transaction, taking the audit chain before the keyring lock as request
 * handlers do; a rotation whose event cannot be chained is not done (logged, retried). */
struct audit;
void krm_set_audit(struct krm *k, struct audit *a);     /* before krm_start_maintenance */
void krm_maintain(struct krm *k);
void krm_start_maintenance(struct krm *k, int interval_seconds);

/* Rewrap every KEK version to `to` from whichever of from[0..n) its row records (root key
 * rotation and its recovery; rows already under `to` are skipped, so an interrupted run can be
 * repeated). Checks every row first: ST_AUTH when a row is under a root key not given,
 * ST_INTEGRITY for a keyring that failed its MAC (err names it; nothing is written then).
 * *count gets the rows rewrapped. */
NODISCARD enum status krm_rewrap_all(struct krm *k, const struct rootkey *const *from, size_t n,
                                     const struct rootkey *to, size_t *count, char *err,
                                     size_t err_len);

#endif
