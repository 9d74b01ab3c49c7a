/* SPDX-License-Identifier: Apache-2.0 */
/* server/keyrings.h -- the keyring manager: keyring metadata cached from the store (each row
 * checked against its MAC), KEKs unwrapped on first use and cached, versions, rotation (manual,
 * by rotation_period, and at 90% of a version's encryption bound), durable encryption counts
 * reserved in blocks. Thread-safe: crypto calls share a read lock; changes take the write lock. */
#ifndef DG_SERVER_KEYRINGS_H
#define DG_SERVER_KEYRINGS_H

#include <stdbool.h>
#include <stdint.h>

#include "common/status.h"
#include "crypto/envelope.h"
#include "crypto/kek.h"
#include "crypto/rootkey.h"
#include "crypto/secret.h"
#include "store/store.h"

#define KEYRING_MIN_ROTATION 3600

struct keyrings;

/* What a keyring looks like from outside: metadata only, never key bytes. Versions are
 * malloc'd: free with keyring_info_free (or keyring_infos_free for a list). */
struct keyring_version_info {
    uint32_t version;
    int64_t created_at;
    int64_t encryptions; /* counted so far (durably reserved in blocks) */
    char root_key_id[STORE_ROOT_ID_MAX];
};
struct keyring_info {
    char name[STORE_NAME_MAX];
    char algorithm[24];
    bool deterministic, deletion_allowed;
    int64_t rotation_period; /* seconds, 0 = off */
    uint32_t latest_version, min_decryption_version, min_encryption_version;
    int64_t created_at, updated_at;
    int64_t next_rotation_at;  /* 0 when rotation_period is off */
    uint64_t encryption_limit; /* per version */
    size_t n_versions;
    struct keyring_version_info *versions;
};
void keyring_info_free(struct keyring_info *i);
void keyring_infos_free(struct keyring_info *v, size_t n);

struct keyrings_settings {
    uint64_t kek_limit;    /* encryptions per KEK version; rotation at 90% */
    int64_t reserve_block; /* encryptions reserved per durable write */
};

NODISCARD enum status keyrings_open(struct keyrings **out, struct store *st,
                                    const struct rootkey *rk, const struct secret *mac_key,
                                    const struct keyrings_settings *set);
void keyrings_close(struct keyrings *k);

struct keyring_spec {
    const char *name;
    const char *algorithm;   /* NULL = default for the mode */
    int deterministic;       /* -1 = unset */
    int64_t rotation_period; /* -1 = default */
    bool deletion_allowed;
};
/* *msg gets a fixed explanation on ST_INVALID. */
/* `ev` (may be NULL) is the request's audit event, committed with the change. */
NODISCARD enum status keyrings_create(struct keyrings *k, const struct keyring_spec *c,
                                      struct keyring_info *out, const char **msg,
                                      const struct store_audit_row *ev);
NODISCARD enum status keyrings_get(struct keyrings *k, const char *name, struct keyring_info *out);
/* True when the keyring is in this node's cache (no database read: safe on refused requests). */
bool keyrings_known(struct keyrings *k, const char *name);
/* Every keyring for which visible(arg, name) is true (visible NULL: every keyring). */
NODISCARD enum status keyrings_list(struct keyrings *k,
                                    bool (*visible)(const void *arg, const char *name),
                                    const void *arg, struct keyring_info **out, size_t *n);
NODISCARD enum status keyrings_rotate(struct keyrings *k, const char *name,
                                      struct keyring_info *out, const struct store_audit_row *ev);

struct keyring_patch {
    int64_t min_decryption_version; /* -1 = unchanged */
    int64_t min_encryption_version;
    int64_t rotation_period;
    int deletion_allowed; /* -1 = unchanged */
};
NODISCARD enum status keyrings_patch(struct keyrings *k, const char *name,
                                     const struct keyring_patch *p, struct keyring_info *out,
                                     const char **msg, const struct store_audit_row *ev);
/* Crypto-shred. After the deletion commits, the store's log is flushed of the deleted rows
 * (store_shred_flush); when that cannot be done the keyring is still deleted (ST_OK), the failure
 * is logged (shred_checkpoint_failed) and counted, and the maintenance thread tries again. */
NODISCARD enum status keyrings_delete(struct keyrings *k, const char *name,
                                      const struct store_audit_row *ev);
/* Flushes after a crypto-shred that failed so far (for metrics). */
uint64_t keyrings_shred_failures(const struct keyrings *k);
/* The keyrings' series for the metrics registry (server/obs/metrics.h): shred failures, each
 * keyring's latest version's encryptions and age. Takes the read lock briefly. */
struct metrics_out;
void keyrings_metrics(const void *self, struct metrics_out *o);

/* A keyring held for crypto calls (read lock). Release on every path. */
struct keyring_use {
    struct keyrings *k;
    struct keyring *kr;
};
NODISCARD enum status keyrings_acquire(struct keyrings *k, const char *name, struct keyring_use *u);
void keyrings_release(struct keyring_use *u);
enum envelope_format keyrings_format(const struct keyring_use *u);
uint32_t keyrings_latest(const struct keyring_use *u);

/* The KEK to encrypt with: version 0 = latest. Counts one encryption against the version's
 * bound (durably reserved). ST_VERSION_DISABLED below min_encryption_version or when the
 * version's bound is spent; ST_UNKNOWN_VERSION above latest. */
NODISCARD enum status keyrings_kek_encrypt(struct keyring_use *u, uint32_t version,
                                           const struct kek **out);
/* The KEK to decrypt with. ST_VERSION_DISABLED below min_decryption_version;
 * ST_UNKNOWN_VERSION when no such version. */
NODISCARD enum status keyrings_kek_decrypt(struct keyring_use *u, uint32_t version,
                                           const struct kek **out);

/* The janitor's duty (server/janitor.h): flush a pending crypto-shred, then rotate the keyrings
 * due at `now` (unix seconds) by period or bound (takes the write lock only when something is
 * due). keyrings_set_kick's callback asks for it soon when a version crosses 90% of its bound. With
 * an audit writer (keyrings_set_audit), each automatic rotation commits its keyring.rotate event
 * (method SYSTEM, route janitor) in the rotation's own transaction, taking the audit chain
 * before the keyring lock as request handlers do; a rotation whose event cannot be chained is
 * not done (logged, retried). */
struct audit;
void keyrings_set_audit(struct keyrings *k, struct audit *a);
void keyrings_set_kick(struct keyrings *k, void (*kick)(void *arg), void *arg);
void keyrings_maintain(struct keyrings *k, int64_t now);
/* Several replicas on one database (PostgreSQL): bring the cache in line with the store (keyrings
 * rotated, changed or deleted elsewhere). Called by the janitor every second. */
void keyrings_sync(struct keyrings *k);

/* Rewrap every KEK version to `to` from whichever of from[0..n) its row records (root key
 * rotation and its recovery; rows already under `to` are skipped, so an interrupted run can be
 * repeated). Checks every row first: ST_AUTH when a row is under a root key not given,
 * ST_INTEGRITY for a keyring that failed its MAC (err names it; nothing is written then).
 * *count gets the rows rewrapped. */
NODISCARD enum status keyrings_rewrap_all(struct keyrings *k, const struct rootkey *const *from,
                                          size_t n, const struct rootkey *to, size_t *count,
                                          char *err, size_t err_len);

#endif
