/* SPDX-License-Identifier: Apache-2.0 */
/* server/audit/audit.h -- the audit writer: owns this node's chain (chain_id, head seq and hash), the
 * audit signing and HMAC keys (wrapped by the root key), group commit of events by one writer
 * thread, signed checkpoints, export, retention and usage roll-ups. Events never hold plaintext,
 * ciphertext or keys: identifying values arrive already HMAC-ed (audit_hmac_hex). Thread-safe. */
#ifndef DG_SERVER_AUDIT_AUDIT_H
#define DG_SERVER_AUDIT_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/sbuf.h"
#include "common/status.h"
#include "crypto/rootkey.h"
#include "server/audit/format.h"
#include "store/store.h"

#define AUDIT_HEX 65          /* 64 hex digits + NUL */
#define AUDIT_MAX_VERSIONS 8  /* distinct key versions tracked per batch event */
#define AUDIT_SUBJECT_MAX 256 /* an mTLS client certificate's subject, cut safely */

struct audit_settings {
    bool durable;                /* respond only after the event is fsync'd (default) */
    int64_t checkpoint_interval; /* seconds between periodic checkpoints */
    int64_t retention;           /* seconds; 0 keeps events forever */
    const char *archive_dir;     /* pruned events are exported here first */
    bool own_chain;              /* a one-off chain for this process (CLI commands) */
    bool new_chain_on_break;     /* --audit-new-chain: see audit_open */
    /* A new chain at each start, continued and sealed like any other (several replicas on one
     * PostgreSQL database: one chain per replica process, never shared). */
    bool chain_per_process;
};

/* What the request pipeline knows about one finished request. Strings are copies (the request may go away
 * only after the completion callback). */
struct audit_rec {
    int64_t time_ms;
    const char *op, *route; /* static strings */
    char method[12];        /* a copy: folded records outlive their request */
    unsigned status;
    int64_t latency_us;
    char app[STORE_NAME_MAX + 8];
    char key_id[STORE_KEY_ID_MAX];
    char keyring[STORE_NAME_MAX];
    char cert_id[STORE_NAME_MAX];        /* a certificate source (issue 9); "" = none */
    char client_cert[AUDIT_SUBJECT_MAX]; /* the mTLS client certificate's subject; "" = none */
    uint32_t key_version;
    uint32_t items_total, items_ok, items_failed;
    size_t n_versions;
    uint32_t versions[AUDIT_MAX_VERSIONS], version_counts[AUDIT_MAX_VERSIONS];
    char trace_id[33];
    char h_request_id[AUDIT_HEX], h_client[AUDIT_HEX], h_keyring[AUDIT_HEX];
    char h_key_id[AUDIT_HEX], h_sub[AUDIT_HEX];
    char (*h_context)[AUDIT_HEX]; /* malloc'd, freed by the writer */
    size_t n_h_context;
    char (*h_reference)[AUDIT_HEX]; /* malloc'd, freed by the writer */
    size_t n_h_reference;
    uint64_t count;     /* identical events folded in (0 or 1 = one) */
    bool coalesce;      /* an unknown-key 401: may merge with its kind */
    enum status result; /* writer-private: the commit's outcome */
    /* Called once from the writer thread after the commit (ST_OK) or its failure. */
    void (*done)(void *arg, enum status st);
    void *arg;
    struct audit_rec *next;
};

struct audit;

/* Create the audit keys if this database has none (init and upgrades). */
NODISCARD enum status audit_keys_ensure(struct store *st, const struct rootkey *rk);

/* Load the audit keys, then find this node's chain and check it before it grows: its id, the
 * stored lines after its last checkpoint (which must verify from that checkpoint) and the head
 * sealed with the last commit must agree. A chain that fails is refused (ST_INTEGRITY, err says
 * what), unless set->new_chain_on_break: then a new chain starts and the break is logged and
 * recorded as its first event. mac_key seals settings rows (server/sealed.h). */
NODISCARD enum status audit_open(struct audit **out, struct store *st, const struct rootkey *rk,
                                 const struct secret *mac_key, const struct audit_settings *set,
                                 char *err, size_t err_len);
/* Stops the writer after draining the queue, writes a final checkpoint. NULL-safe. */
void audit_close(struct audit *a);

/* A new record (zeroed, time set); audit_submit takes ownership. */
struct audit_rec *audit_rec_new(void);
/* Queue a record. When durable, rec->done runs after the commit; otherwise right away. */
void audit_submit(struct audit *a, struct audit_rec *rec);
bool audit_durable(const struct audit *a);
/* Records queued and not yet written: non-durable requests wait too when this grows large. */
size_t audit_backlog(struct audit *a);
#define AUDIT_MAX_BACKLOG 65536

/* HMAC-SHA256 of a value under the audit HMAC key, lowercase hex: how the trail records context
 * values, references, request ids, client addresses, unknown names and JWT subjects. */
void audit_hmac_hex(const struct audit *a, char out[static AUDIT_HEX], const char *value,
                    size_t len);
const char *audit_hmac_key_id(const struct audit *a);

/* Public keys: JSON {"keys": [...]} (see docs/api-shapes.md). */
char *audit_public_keys_json(const struct audit *a);
/* Accepted public keys for verification (malloc'd array). */
size_t audit_public_keys(const struct audit *a, uint8_t (**out)[AUDIT_PK_BYTES]);

/* Export chain lines (all chains when chain_id is NULL; this node's first) after after_seq,
 * each chain ending with an export checkpoint signed now; lines go to cb with a trailing "\n".
 * This node signs its own head; another chain is verified and exported only up to its last
 * checkpoint that verifies under an accepted key (see export.c). rep (may be NULL) counts
 * the other chains that did not verify (left out or cut short) and names the first problem. */
struct audit_export_report {
    uint64_t unverified;
    char error[256]; /* one sentence, no secrets */
};
NODISCARD enum status audit_export(struct audit *a, const char *chain_id, uint64_t after_seq,
                                   store_line_cb cb, void *arg, struct audit_export_report *rep);
/* The janitor's duty (server/janitor.h): a periodic checkpoint when the interval has passed and
 * the chain grew, and retention (archive, then prune behind an anchor). Takes the chain lock. */
void audit_janitor(void *a, int64_t now_ms);

/* Stored events matching a filter, newest chains and seqs as the store orders them; free with
 * audit_events_free. */
NODISCARD enum status audit_events(struct audit *a, const struct store_audit_filter *f,
                                   struct store_audit_row **out, size_t *n);
void audit_events_free(struct store_audit_row *rows, size_t n);

/* The writer's series for the metrics registry (server/obs/metrics.h): write failures, backlog,
 * unverified chains. Reads atomics only. */
struct metrics_out;
void audit_metrics(const void *self, struct metrics_out *o);

/* Other chains exports found unverifiable so far (for metrics). */
uint64_t audit_unverified_chains(const struct audit *a);

/* An admin change's event, committed in the change's own database transaction: begin chains
 * the event (as the request will be answered if the change commits) and holds the chain; hand
 * &t->row to the store call; end advances the chain only if the change committed. */
struct audit_txn {
    struct audit *a;
    struct store_audit_row row;
    struct sbuf line;
    bool held;
};
NODISCARD enum status audit_txn_begin(struct audit *a, struct audit_txn *t, struct audit_rec *rec);
void audit_txn_end(struct audit_txn *t, bool committed);

/* Replace the signing key: a key_change checkpoint signed by the old and the new key; the old
 * public key stays listed (inactive) for verification. new_id gets the new key's id. */
NODISCARD enum status audit_rotate_key(struct audit *a, char new_id[static AUDIT_KEY_ID_CHARS + 1]);

/* Events sink failures so far (for health and metrics). */
uint64_t audit_failures(const struct audit *a);

/* What the inventory reports of the trail (server/inventory.c). */
struct audit_status {
    bool durable;
    uint64_t write_failures;    /* audit_failures */
    uint64_t unverified_chains; /* audit_unverified_chains */
    int64_t retention;          /* seconds; 0 keeps events forever */
    int64_t verified_at_ms;     /* last whole-trail verification; 0 = none yet */
    bool verified_ok;
};
void audit_status(const struct audit *a, struct audit_status *out);

/* This node's chain id (the service's instance in compliance reports). */
const char *audit_chain_id(const struct audit *a);

/* The head of every chain with events, now: this node's chain at its last committed event
 * (an export signs up to it), another chain at its last stored checkpoint (where an export of
 * it ends when it verifies). What a compliance report records, so that an auditor can require a
 * later export to pass through it (audit verify --expect-head). This node's chain first; *out
 * is malloc'd (free()). */
struct audit_chain_head {
    char chain_id[STORE_CHAIN_ID_MAX];
    uint64_t seq;
    uint8_t hash[AUDIT_HASH_BYTES];
};
NODISCARD enum status audit_heads(struct audit *a, struct audit_chain_head **out, size_t *n);

/* Verify the whole trail as an auditor would: export every chain, then run the offline verifier
 * over the text with the service's public keys. valid also requires that no stored chain was
 * left out or cut short by the export (events nobody can vouch for). The result is remembered
 * for audit_status. ST_OK when the check ran (whatever it found); an error when it could not. */
struct audit_trail_check {
    bool valid;
    uint64_t events, checkpoints, chains;
    uint64_t line;   /* 1-based line of the first problem, 0 if none */
    char error[256]; /* one sentence, no secrets; "" when valid */
};
NODISCARD enum status audit_verify_trail(struct audit *a, struct audit_trail_check *out);

#endif
