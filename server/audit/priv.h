/* SPDX-License-Identifier: Apache-2.0 */
/* server/audit/priv.h -- the audit writer's state, shared by writer.c (keys, the writer,
 * admin-change events), chain.c (the chain at start), flood.c (folded refusals) and export.c
 * (exports, archives, retention). Not a public header:
 * nothing else includes it. Names with "audit__" are internal. */
#ifndef DG_SERVER_AUDIT_PRIV_H
#define DG_SERVER_AUDIT_PRIV_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "server/audit/audit.h"
#include "server/obs/metrics.h"

#define AUDIT_SVC_SIGN "audit-sign"
#define AUDIT_SVC_HMAC "audit-hmac"
#define AUDIT_HMAC_KEY_BYTES 32

struct audit {
    struct store *store;
    const struct rootkey *rk;
    struct audit_settings set;
    const struct secret *mac_key; /* seals meta rows (server/sealed.h) */
    char chain_id[STORE_CHAIN_ID_MAX];
    char head_key[STORE_CHAIN_ID_MAX + 16]; /* meta key of this chain's sealed head */
    char head_text[160];                    /* the sealed head the last commit writes (chain_mu) */
    struct secret *sign_sk;                 /* Ed25519 secret key */
    uint8_t sign_pk[AUDIT_PK_BYTES];
    char sign_key_id[AUDIT_KEY_ID_CHARS + 1];
    struct secret *hmac_key;
    char hmac_key_id[AUDIT_KEY_ID_CHARS + 1];
    int64_t key_created_at;

    pthread_mutex_t chain_mu; /* head and every write to the chain */
    uint64_t head_seq;
    uint8_t head_hash[AUDIT_HASH_BYTES];
    /* A group commit failed without a clear answer (a connection lost around COMMIT): it may
     * have committed. The next group first reads the chain's head back from the store. */
    bool head_unsure;
    uint64_t checkpoint_seq; /* head at the last checkpoint */
    int64_t checkpoint_at_ms;
    int64_t retention_at_ms;

    pthread_mutex_t q_mu;
    pthread_cond_t q_cv;
    struct audit_rec *q_head, *q_tail;
    atomic_size_t q_len; /* read without q_mu (metrics, backpressure) */
    bool stopping;
    pthread_t thread;
    bool thread_started;
    /* Writer-only: refusals being folded (flood.c): the pending records of the current
     * second in a list, indexed by a small open-addressing table. */
    struct audit_rec *floods;
    struct audit_rec **flood_slots;
    size_t flood_n, flood_fine;
    /* The releaser answers committed requests (MHD_resume_connection is a system call each)
     * while the writer already commits the next group. */
    pthread_t rel_thread;
    bool rel_started, rel_stop;
    pthread_mutex_t rel_mu;
    pthread_cond_t rel_cv;
    struct audit_rec *rel_head, *rel_tail;
    atomic_uint_fast64_t failures;
    atomic_uint_fast64_t unverified; /* other chains an export could not verify */
    _Atomic int64_t verified_at_ms;  /* last whole-trail verification (audit_note_verified) */
    atomic_bool verified_ok;
    /* Metrics (stats.c): group commits' sizes and durations, the last checkpoint's time. */
    struct metrics_hist group_size, commit_seconds;
    _Atomic int64_t checkpoint_ms;
};

/* A checkpoint line of (chain_id, seq, hash) signed now with this node's key (not stored). */
NODISCARD enum status audit__sign_line(struct audit *a, struct sbuf *line, const char *chain_id,
                                       const char *kind, uint64_t seq, const uint8_t *hash,
                                       int64_t t_ms);
/* With chain_mu held: sign and store a checkpoint of this node's chain (periodic, export,
 * anchor); the line is appended to line_out when it is not NULL. */
NODISCARD enum status audit__checkpoint_locked(struct audit *a, const char *kind, uint64_t seq,
                                               const uint8_t *hash, int64_t t_ms,
                                               struct sbuf *line_out);
/* chain.c: find, check and continue this node's chain at start (see audit_open). */
NODISCARD enum status audit__chain_open(struct audit *a, char *err, size_t err_len);
/* Commit one record at once (start-up, before the writer thread runs); takes rec. */
NODISCARD enum status audit__commit_one(struct audit *a, struct audit_rec *rec);
/* With chain_mu held: write the chain head after `row` (sealed) in row's own transaction. */
void audit__head_seal(struct audit *a, struct store_audit_row *row);

/* flood.c: fold the refusals of list (rec->coalesce) into pending flood events, which
 * nobody waits for; returns the records left to commit now (*n counts them). floods_due moves
 * the floods of seconds that are over (all, when stopping) into list. */
struct audit_rec *audit__fold(struct audit *a, struct audit_rec *list, size_t *n);
struct audit_rec *audit__floods_due(struct audit *a, struct audit_rec *list, size_t *n, bool all);
void audit__floods_free(struct audit *a);
void audit__rec_free(struct audit_rec *r);

/* stats.c: the writer's histograms (audit_open, audit_close) and one group commit's figures. */
void audit__stats_init(struct audit *a);
void audit__stats_fini(struct audit *a);
void audit__stats_commit(struct audit *a, size_t n, int64_t ns);

/* The writer thread's retention duty (export.c). */
void audit__retention_run(struct audit *a, int64_t t_ms);

#endif
