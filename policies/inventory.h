/* SPDX-License-Identifier: Apache-2.0 */
/* policies/inventory.h -- the inventory snapshot: everything the compliance evaluator judges,
 * copied out of the service at one instant. Plain data: fixed-size strings and arrays the
 * snapshot owns, no pointers into live state, no secrets (key ids and names, never key bytes).
 * `now` is inside, so an evaluation is a pure function of the snapshot: server/inventory.c
 * builds one from the running service, tests write one by hand. */
#ifndef DG_POLICIES_INVENTORY_H
#define DG_POLICIES_INVENTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define INV_NAME_MAX 64  /* keyring and app names */
#define INV_ID_MAX 40    /* key ids, root key ids, certificate ids */
#define INV_TEXT_MAX 256 /* scopes, addresses, subjects, reasons */

/* One key version of a keyring. Times are Unix seconds. */
struct inv_key_version {
    uint32_t version;
    int64_t created_at;
    int64_t encryptions; /* counted so far */
};

struct inv_keyring {
    char name[INV_NAME_MAX];
    char algorithm[24];
    bool deterministic;
    int64_t rotation_period;   /* seconds; 0: no automatic rotation */
    uint64_t encryption_limit; /* per version (rotation at 90%) */
    uint32_t latest_version;
    size_t n_versions;
    struct inv_key_version *versions; /* ascending; the last one is the latest */
};

struct inv_app {
    char name[INV_NAME_MAX];
    int64_t created_at;
    size_t active_keys; /* neither revoked nor expired at `now` */
};

/* An API key: never its secret. 0 = none for the times. */
struct inv_apikey {
    char id[INV_ID_MAX];
    char app[INV_NAME_MAX];
    char scopes[INV_TEXT_MAX]; /* space-separated names */
    size_t n_scopes;
    bool all_keyrings; /* no keyring allow-list */
    int64_t created_at, expires_at, revoked_at, last_used_at;
};

/* Where the root key comes from. */
enum inv_key_source { INV_KEY_FILE = 1, INV_KEY_ENV, INV_KEY_OTHER };
struct inv_root_key {
    enum inv_key_source source;
    char id[INV_ID_MAX];
    bool mode_known;
    unsigned mode; /* permission bits of the file (source FILE) */
};

/* A listener of the service ("api", "metrics"). */
struct inv_listener {
    char name[16];
    char addr[INV_TEXT_MAX];
    bool loopback;
    bool tls;          /* served over TLS by difyguard */
    bool tls_upstream; /* plain, declared terminated by a proxy in front */
};

struct inv_audit {
    bool enabled;
    bool durable;               /* requests wait for their event to be written */
    uint64_t write_failures;    /* events that could not be written */
    uint64_t unverified_chains; /* chains an export could not verify */
    int64_t retention;          /* seconds kept before archiving; 0 = forever */
    int64_t verified_at;        /* last whole-trail verification; 0 = never */
    bool verified_ok;           /* and its result */
};

/* A tracked certificate (the certificate inventory, server/certs.h): id is the first 32 hex
 * digits of its SHA-256 fingerprint ("" for a source that could not be read: such a source is
 * one entry with error set, never left out), source the source's id. */
struct inv_cert {
    char id[INV_ID_MAX];
    char source[INV_TEXT_MAX];
    char subject[INV_TEXT_MAX];
    int64_t not_before, not_after;
    int64_t renewal_due;     /* 0 when unknown */
    int64_t rotated_at;      /* last fingerprint change; 0 = never seen rotating */
    bool error;              /* could not be read or probed */
    char weak[INV_TEXT_MAX]; /* space-separated reasons; "" = not weak */
};

struct inventory {
    int64_t now;      /* the instant the snapshot describes (Unix seconds) */
    char version[16]; /* the service's version */
    struct inv_root_key root_key;
    struct inv_audit audit;
    struct inv_keyring *keyrings;
    size_t n_keyrings;
    struct inv_app *apps;
    size_t n_apps;
    struct inv_apikey *keys;
    size_t n_keys;
    struct inv_listener *listeners;
    size_t n_listeners;
    bool certs_tracked; /* false: no certificate inventory (not applicable) */
    struct inv_cert *certs;
    size_t n_certs;
};

/* Free what the snapshot owns and zero it. NULL-safe. */
void inventory_free(struct inventory *inv);

#endif
