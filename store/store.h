/* SPDX-License-Identifier: Apache-2.0 */
/* store/store.h -- the one storage interface. Backends: SQLite (embedded default) and,
 * later, PostgreSQL. Rows are plain data: MACs and wrapped keys are computed by the caller and
 * stored as given; this layer never sees key material in clear and never builds SQL from data.
 * Every function is atomic (its own transaction) and thread-safe on one struct store. */
#ifndef DG_STORE_STORE_H
#define DG_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/status.h"

#define STORE_NAME_MAX 64     /* keyring and app names: [a-z0-9][a-z0-9._-]{0,62} + NUL */
#define STORE_ROOT_ID_MAX 17  /* root key id: 16 hex + NUL */
#define STORE_WRAPPED_MAX 128 /* wrapped KEKs and service keys */
#define STORE_MAC_BYTES 32
#define STORE_KEY_ID_MAX 17     /* API key public id: 16 base62 + NUL */
#define STORE_SCOPES_MAX 256    /* space-separated scope names */
#define STORE_KEYRINGS_MAX 2112 /* space-separated keyring names, empty = all */
#define STORE_DESC_MAX 256

struct store;
/* An audit event committed in the same transaction as an admin change (NULL = none). */
struct store_audit_row;

/* Open (creating if needed) and migrate under a lock. url: "sqlite:PATH", or a plain path for
 * SQLite; "postgres://...", "postgresql://..." or a libpq conninfo string ("host=... dbname=...")
 * for PostgreSQL (every libpq parameter and environment variable honoured: PGPASSFILE, sslmode...).
 * err gets one line and never the password. */
NODISCARD enum status store_open(struct store **out, const char *url, char *err, size_t err_len);
void store_close(struct store *s); /* NULL-safe */
/* The file behind a SQLite URL (the forms store_open takes) into out: ST_OK; ST_NOT_FOUND when
 * the database is not a file (":memory:"); ST_INVALID for a URL store_open refuses or a path of
 * cap bytes or more. Commands lock the database through a file beside it (server/datalock.h). */
NODISCARD enum status store_file_path(const char *url, char *out, size_t cap);
const char *store_backend(const struct store *s); /* "sqlite", "postgres" */
/* The database client libraries this build links, for `difyguard version`: "SQLite 3.40.1"
 * (each backend adds its own, e.g. ", libpq 15"). */
void store_library_versions(char *out, size_t cap);
/* The database URL as an operator may see it in logs and errors: SQLite paths as given,
 * PostgreSQL as host, port, dbname, user and sslmode only (never a password). */
void store_url_display(const char *url, char *out, size_t cap);
/* Is the database reachable now? SQLite: always ST_OK. PostgreSQL: one "SELECT 1" through the
 * pool; ST_UNAVAILABLE at once while the circuit breaker is open. */
NODISCARD enum status store_ping(struct store *s);

/* Connection pool health, for metrics (difyguard_db_pool_*): never blocks and takes no lock of
 * the pool (it is read while other threads hold every connection). SQLite has one connection
 * behind a lock: size 1, in_use while an operation holds it, waiting for those queued on it.
 * A backend that does not report leaves every field 0. */
struct store_pool_stats {
    uint64_t size;          /* connections the backend holds or may open */
    uint64_t in_use;        /* held by an operation now */
    uint64_t waiting;       /* operations waiting for a connection now */
    uint64_t waits_total;   /* operations that had to wait, since start */
    uint64_t wait_ns_total; /* time they waited, nanoseconds */
    uint64_t errors_total;  /* operations that failed on a database error (not on a conflict
                             * or a missing row) */
    uint64_t breaker_open;  /* 1 while the circuit breaker refuses operations (PostgreSQL) */
};
void store_pool_stats(const struct store *s, struct store_pool_stats *out);
int store_schema_version(struct store *s); /* highest applied migration */

/* Changes committed through other processes on the same database (several replicas on
 * PostgreSQL: LISTEN/NOTIFY). cb(arg, what) runs on a thread of the store for each: "keyrings" (a
 * keyring rotated, changed or deleted), "apikeys" (an API key revoked, changed or rotated), and
 * "resync" after the listening connection (re)connects (changes may have been missed). cb NULL
 * stops it; store_close stops it too. SQLite: nothing (one process owns the database). Best
 * effort: callers keep polling as well. */
typedef void (*store_change_fn)(void *arg, const char *what);
void store_watch(struct store *s, store_change_fn cb, void *arg);

/* Admin changes below take `ev`: when not NULL, that audit event row is inserted in the
 * change's own transaction, so a committed change always has its event. A caller whose event
 * could not be made passes &store_audit_refused: the change is then refused (ST_UNAVAILABLE)
 * before anything is written -- never made without its event. */
extern const struct store_audit_row store_audit_refused;

/* --- small key/value settings (node id, init marker) --- */
NODISCARD enum status store_meta_get(struct store *s, const char *key, char *val, size_t val_cap);
NODISCARD enum status store_meta_set(struct store *s, const char *key, const char *val);

/* --- service keys: random keys wrapped by the root key (row MAC, API-key hash, audit) --- */
struct store_svckey {
    char purpose[32];
    char root_key_id[STORE_ROOT_ID_MAX];
    uint8_t wrapped[STORE_WRAPPED_MAX];
    size_t wrapped_len;
    int64_t created_at; /* unix seconds */
};
NODISCARD enum status store_svckey_get(struct store *s, const char *purpose,
                                       struct store_svckey *out);
NODISCARD enum status store_svckey_put(struct store *s, const struct store_svckey *k); /* upsert */
/* Insert only: ST_CONFLICT when the purpose has a key already (another process made it first:
 * read that one). For keys made lazily by a running service, where replicas may race. */
NODISCARD enum status store_svckey_add(struct store *s, const struct store_svckey *k);
/* Array owned by the caller: free(). */
NODISCARD enum status store_svckey_list(struct store *s, struct store_svckey **out, size_t *n);
/* Upsert n service keys and, when root_key_id is not NULL, record it as meta root_key_id, all in
 * ONE transaction (root key rotation): the database never holds some service keys under the old
 * root key and some under the new, nor a root_key_id that does not open them. */
NODISCARD enum status store_svckey_put_all(struct store *s, const struct store_svckey *keys,
                                           size_t n, const char *root_key_id);

/* --- keyrings and their KEK versions --- */
struct store_keyring {
    int64_t id; /* set by store_keyring_create */
    char name[STORE_NAME_MAX];
    char algorithm[24]; /* "aes-256-gcm", "xchacha20-poly1305", "aes-256-siv" */
    int deterministic;
    int64_t rotation_period; /* seconds, 0 = off */
    int deletion_allowed;
    uint32_t latest_version;
    uint32_t min_decryption_version;
    uint32_t min_encryption_version;
    int64_t created_at, updated_at, rotated_at;
    uint8_t mac[STORE_MAC_BYTES];
};

struct store_version {
    int64_t keyring_id;
    uint32_t version;
    char root_key_id[STORE_ROOT_ID_MAX];
    uint8_t wrapped[STORE_WRAPPED_MAX];
    size_t wrapped_len;
    int64_t created_at;
    int64_t encryptions_reserved; /* durable upper bound of encryptions done */
    uint8_t mac[STORE_MAC_BYTES];
};

/* Insert a keyring and its version 1 together (v1->keyring_id is filled in). ST_CONFLICT when
 * the name exists. */
NODISCARD enum status store_keyring_create(struct store *s, struct store_keyring *kr,
                                           struct store_version *v1,
                                           const struct store_audit_row *ev);
NODISCARD enum status store_keyring_get(struct store *s, const char *name,
                                        struct store_keyring *out);
NODISCARD enum status store_keyring_list(struct store *s, struct store_keyring **out, size_t *n);
/* Update every mutable column by id. ST_NOT_FOUND if gone. */
NODISCARD enum status store_keyring_update(struct store *s, const struct store_keyring *kr,
                                           const struct store_audit_row *ev);
/* Add version v and update kr in one transaction, only if the stored latest_version still is
 * prev_latest (else ST_CONFLICT: another node rotated first). */
NODISCARD enum status store_keyring_rotate(struct store *s, const struct store_keyring *kr,
                                           const struct store_version *v, uint32_t prev_latest,
                                           const struct store_audit_row *ev);
/* Delete the keyring and all its versions (secure_delete overwrites the pages). Follow with
 * store_shred_flush: the backend's log may still hold copies of the deleted rows. */
NODISCARD enum status store_keyring_delete(struct store *s, int64_t keyring_id,
                                           const struct store_audit_row *ev);
/* After a crypto-shred: no copy of deleted rows may stay in the backend's files. SQLite copies
 * the WAL into the (secure_delete'd) database and truncates it, retrying for about a second while
 * readers of older snapshots finish. ST_OK when done; ST_UNAVAILABLE when it could not be done
 * now (the deletion itself stands; call again later). Never inside another store operation. */
NODISCARD enum status store_shred_flush(struct store *s);

NODISCARD enum status store_version_list(struct store *s, int64_t keyring_id,
                                         struct store_version **out, size_t *n);
NODISCARD enum status store_version_get(struct store *s, int64_t keyring_id, uint32_t version,
                                        struct store_version *out);
/* Raise encryptions_reserved to `reserved` (never lowers it) and store the new row MAC. */
NODISCARD enum status store_version_reserve(struct store *s, int64_t keyring_id, uint32_t version,
                                            int64_t reserved,
                                            const uint8_t mac[static STORE_MAC_BYTES]);
/* Raise encryptions_reserved from `expected` to `reserved` (> expected) and store the new row
 * MAC, only if it still is `expected`: ST_CONFLICT when another process (a replica) reserved
 * since (read the row again and reserve from its value), ST_NOT_FOUND when the version is gone.
 * Each process then owns the range it raised the count over: encryption counts stay an upper
 * bound with any number of processes. */
NODISCARD enum status store_version_reserve_from(struct store *s, int64_t keyring_id,
                                                 uint32_t version, int64_t expected,
                                                 int64_t reserved,
                                                 const uint8_t mac[static STORE_MAC_BYTES]);
/* Replace root_key_id, wrapped and mac (root key rotation). */
NODISCARD enum status store_version_rewrap(struct store *s, const struct store_version *v);
/* Every version of every keyring (root key rotation). */
NODISCARD enum status store_version_list_all(struct store *s, struct store_version **out,
                                             size_t *n);

/* --- apps and API keys --- */
struct store_app {
    int64_t id;
    char name[STORE_NAME_MAX];
    char description[STORE_DESC_MAX];
    int64_t created_at;
    uint8_t mac[STORE_MAC_BYTES]; /* row MAC over id, name, created_at (server/apps.c) */
    bool has_mac;                 /* false: a row from before migration 0003 */
};
/* Fills app->mac (and has_mac) once app->id is known: the id is assigned inside the insert. */
typedef void (*store_app_seal_fn)(void *arg, struct store_app *app);
/* Insert an app; app->id is set and, when seal is not NULL, seal(arg, app) computes its MAC,
 * stored in the same transaction. ST_CONFLICT when the name exists. */
NODISCARD enum status store_app_create(struct store *s, struct store_app *app,
                                       store_app_seal_fn seal, void *arg,
                                       const struct store_audit_row *ev);
/* Give a row without a MAC (from before migration 0003) its MAC: only if id, name and
 * created_at still match and it has none; else ST_NOT_FOUND. */
NODISCARD enum status store_app_seal(struct store *s, const struct store_app *app);
NODISCARD enum status store_app_get(struct store *s, const char *name, struct store_app *out);
NODISCARD enum status store_app_list(struct store *s, struct store_app **out, size_t *n);

struct store_apikey {
    char id[STORE_KEY_ID_MAX]; /* public key id */
    int64_t app_id;
    char app_name[STORE_NAME_MAX];    /* filled by get/list (join) with the app row's */
    int64_t app_created_at;           /* created_at, */
    uint8_t app_mac[STORE_MAC_BYTES]; /* mac and */
    bool app_has_mac;                 /* has_mac, so the app row's MAC can be checked */
    uint8_t hash[32];
    char scopes[STORE_SCOPES_MAX];
    char keyrings[STORE_KEYRINGS_MAX];
    int64_t created_at, expires_at;
    int64_t revoked_at;   /* 0 = live */
    int64_t rate, burst;  /* requests per second and burst; 0 = unlimited */
    int64_t grace_until;  /* a rotated key: works until then; 0 = not rotated */
    int64_t last_used_at; /* not covered by the MAC: flushed from memory */
    uint8_t mac[STORE_MAC_BYTES];
};
NODISCARD enum status store_apikey_create(struct store *s, const struct store_apikey *k,
                                          const struct store_audit_row *ev);
NODISCARD enum status store_apikey_get(struct store *s, const char *id, struct store_apikey *out);
NODISCARD enum status store_apikey_list(struct store *s, int64_t app_id, struct store_apikey **out,
                                        size_t *n);
/* Set revoked_at and the new mac. ST_NOT_FOUND if no such key. */
NODISCARD enum status store_apikey_revoke(struct store *s, const char *id, int64_t revoked_at,
                                          const uint8_t mac[static STORE_MAC_BYTES],
                                          const struct store_audit_row *ev);

/* Replace revoked_at, grace_until, rate, burst and mac of a key. ST_NOT_FOUND if none. */
NODISCARD enum status store_apikey_update(struct store *s, const struct store_apikey *k,
                                          const struct store_audit_row *ev);
/* Key rotation: insert `fresh` and apply store_apikey_update's change to `old`, in one
 * transaction (with ev): neither key changes without the other and its event. */
NODISCARD enum status store_apikey_rotate(struct store *s, const struct store_apikey *fresh,
                                          const struct store_apikey *old,
                                          const struct store_audit_row *ev);
/* Ids of the keys created at or after `since` (unix seconds), in no particular order: how a
 * process learns of keys another process minted. Array owned by the caller: free(). */
NODISCARD enum status store_apikey_ids_since(struct store *s, int64_t since,
                                             char (**out)[STORE_KEY_ID_MAX], size_t *n);
/* Record last use (never lowers it). Keys that vanished are ignored. */
NODISCARD enum status store_apikey_touch(struct store *s, const char *id, int64_t last_used_at);

/* --- audit trail (server/audit/writer.c owns the chain; this layer stores lines as given) --- */
#define STORE_CHAIN_ID_MAX 17
#define STORE_OP_MAX 32
#define STORE_OUTCOME_MAX 16

struct store_audit_row {
    char chain_id[STORE_CHAIN_ID_MAX];
    uint64_t seq;
    int64_t time_ms;
    char app[STORE_NAME_MAX + 8]; /* "jwt:<iss>" apps may be longer than names */
    char key_id[STORE_KEY_ID_MAX];
    char op[STORE_OP_MAX];
    char keyring[STORE_NAME_MAX];
    char outcome[STORE_OUTCOME_MAX];
    int status;
    uint8_t hash[32];
    char *line; /* append: borrowed; list: malloc'd (rows_free) */
    /* When head_val is set, the meta row head_key is set to it in the same transaction as the
     * event (the writer's sealed chain head). Both borrowed; NULL on listed rows. */
    const char *head_key, *head_val;
};

struct store_usage {
    char day[11]; /* YYYY-MM-DD, UTC */
    char app[STORE_NAME_MAX + 8];
    char op[STORE_OP_MAX];
    char keyring[STORE_NAME_MAX];
    char outcome[STORE_OUTCOME_MAX];
    int64_t count;
};

/* Insert events and add usage counts in ONE transaction (the group commit). Durable on return
 * (SQLite synchronous=FULL). ST_CONFLICT if a (chain_id, seq) exists. */
NODISCARD enum status store_audit_append(struct store *s, const struct store_audit_row *rows,
                                         size_t n, const struct store_usage *usage, size_t nu);
/* The last event of a chain: ST_NOT_FOUND when it has none (then *seq = 0). */
NODISCARD enum status store_audit_head(struct store *s, const char *chain_id, uint64_t *seq,
                                       uint8_t hash[static 32]);
NODISCARD enum status store_audit_checkpoint_add(struct store *s, const char *chain_id,
                                                 uint64_t seq, const char *kind, int64_t time_ms,
                                                 const char *line);
/* The latest checkpoint line of a kind ("anchor", ...; NULL: of any kind) in a chain into a
 * malloc'd string. */
NODISCARD enum status store_audit_checkpoint_last(struct store *s, const char *chain_id,
                                                  const char *kind, char **line, uint64_t *seq);

/* Events are listed by (time_ms, chain_id, seq): oldest first, or newest first when
 * newest_first. The cursor is the last row of the previous page: rows strictly after
 * (after_time_ms, after_chain, after_seq) in the listing's order. */
struct store_audit_filter {
    const char *app, *key_id, *op, *outcome, *keyring; /* NULL = any */
    int64_t from_ms, to_ms;                            /* 0 = open */
    bool newest_first;
    const char *after_chain; /* cursor (NULL: the first page) */
    int64_t after_time_ms;
    uint64_t after_seq;
    size_t limit;
};
NODISCARD enum status store_audit_list(struct store *s, const struct store_audit_filter *f,
                                       struct store_audit_row **out, size_t *n);
void store_audit_rows_free(struct store_audit_row *rows, size_t n);

/* Every line of a chain after after_seq up to upto_seq, in order: events by seq, each checkpoint
 * right after the event it covers, anchors (which cover pruned events) first. Stored "export"
 * checkpoints are left out: an export ends with the one made for it, and no earlier one may
 * stand in the file as a place to cut it. cb's failure stops the walk. */
typedef enum status (*store_line_cb)(void *arg, const char *line, size_t len);
NODISCARD enum status store_audit_lines(struct store *s, const char *chain_id, uint64_t after_seq,
                                        uint64_t upto_seq, store_line_cb cb, void *arg);
/* Chains present (malloc'd array of STORE_CHAIN_ID_MAX strings). */
NODISCARD enum status store_audit_chains(struct store *s, char (**out)[STORE_CHAIN_ID_MAX],
                                         size_t *n);
/* Delete events with seq <= upto and checkpoints before it (the anchor at upto stays). */
NODISCARD enum status store_audit_prune(struct store *s, const char *chain_id, uint64_t upto);
/* The highest seq of a chain's events older than time_ms (0 when none). */
NODISCARD enum status store_audit_seq_before(struct store *s, const char *chain_id, int64_t time_ms,
                                             uint64_t *seq, uint8_t hash[static 32]);
/* Usage roll-ups of an app between two days (inclusive), ordered by day, op, keyring, outcome. */
NODISCARD enum status store_usage_list(struct store *s, const char *app, const char *from_day,
                                       const char *to_day, struct store_usage **out, size_t *n);

/* --- certificates (issue 9): sources added over the API, and every certificate seen --- */
#define STORE_CERT_KIND_MAX 16
#define STORE_CERT_TARGET_MAX 1024 /* a path or host:port */
#define STORE_CERT_SNI_MAX 256
#define STORE_CERT_PEM_MAX (1u << 20) /* an uploaded PEM text */
#define STORE_CERT_SLOT_MAX 512
#define STORE_CERT_FP_MAX 65    /* SHA-256, lowercase hex */
#define STORE_CERT_TEXT_MAX 256 /* subject, issuer */
#define STORE_CERT_SERIAL_MAX 64

struct store_cert_source {
    char id[STORE_NAME_MAX];              /* [a-z0-9][a-z0-9._-]{0,62} */
    char kind[STORE_CERT_KIND_MAX];       /* "file", "dir", "pem", "endpoint" */
    char target[STORE_CERT_TARGET_MAX];   /* path or host:port; "" for pem */
    char server_name[STORE_CERT_SNI_MAX]; /* endpoint SNI; "" = none */
    char *pem; /* kind pem: the uploaded text; NULL or "" otherwise. Lists: malloc'd, freed by
                * store_cert_sources_free */
    bool recursive, expect_chain;
    int64_t renew_before, warning, critical; /* seconds; 0 = the service default */
    int64_t created_at;
};
/* Insert a source. ST_CONFLICT when the id exists; ST_INVALID for a bad field or a PEM over
 * STORE_CERT_PEM_MAX. */
NODISCARD enum status store_cert_source_create(struct store *s, const struct store_cert_source *c,
                                               const struct store_audit_row *ev);
/* Every source, ordered by id (free with store_cert_sources_free). */
NODISCARD enum status store_cert_source_list(struct store *s, struct store_cert_source **out,
                                             size_t *n);
void store_cert_sources_free(struct store_cert_source *v, size_t n);
/* Delete a source and every certificate seen at it, in one transaction. ST_NOT_FOUND if none. */
NODISCARD enum status store_cert_source_delete(struct store *s, const char *id,
                                               const struct store_audit_row *ev);

/* A certificate seen at a slot of a source (any origin: API, config file, listener). */
struct store_cert_seen {
    int64_t id; /* set by store_cert_seen_add: ascending in the order seen */
    char source_id[STORE_NAME_MAX];
    char slot[STORE_CERT_SLOT_MAX];
    char fingerprint[STORE_CERT_FP_MAX];
    char subject[STORE_CERT_TEXT_MAX], issuer[STORE_CERT_TEXT_MAX];
    char serial[STORE_CERT_SERIAL_MAX];
    int64_t not_before, not_after, seen_at;
    bool rotation; /* it replaced an earlier certificate at the slot */
};
/* Record a certificate newly seen at its slot (c->id is set); a rotation's audit event `ev`
 * commits with it. */
NODISCARD enum status store_cert_seen_add(struct store *s, struct store_cert_seen *c,
                                          const struct store_audit_row *ev);
/* The certificates seen at a source (source_id NULL: at every source), in the order seen.
 * Array owned by the caller: free(). */
NODISCARD enum status store_cert_seen_list(struct store *s, const char *source_id,
                                           struct store_cert_seen **out, size_t *n);

#endif
