/* SPDX-License-Identifier: Apache-2.0 */
/* server/audit/verify_priv.h -- the offline verifier's state, shared by verify.c (events, chains,
 * the drivers) and verify_checkpoint.c (checkpoints and their signatures). Nothing else includes
 * it. */
#ifndef DG_SERVER_AUDIT_VERIFY_PRIV_H
#define DG_SERVER_AUDIT_VERIFY_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/sbuf.h"
#include "server/audit/format.h"
#include "server/audit/format_priv.h"

enum origin { ORIGIN_GENESIS, ORIGIN_ANCHOR, ORIGIN_SINCE };

struct chain {
    char *id; /* NULL: free slot */
    size_t id_len;
    uint64_t seq; /* the head: last event, anchor or --since checkpoint */
    uint8_t hash[AUDIT_HASH_BYTES];
    enum origin origin;
    uint64_t lines;     /* lines of this chain in the export */
    uint64_t uncovered; /* first event no checkpoint covers yet, 0 if none */
    uint64_t last_cp_line;
    enum cp_kind last_kind;
    uint64_t cp_seq; /* what its last checkpoint in the text covers */
    uint8_t cp_hash[AUDIT_HASH_BYTES];
    uint64_t retired;             /* bit k: keys[k] signed a key change of this chain: from
                                     * there on it no longer counts for this chain */
    uint64_t start_seq;           /* where the text starts it: anchor or --since (else 0) */
    char cp_time[TIME_CHARS + 1]; /* its last checkpoint's time in the text */
    size_t order;                 /* first appearance, for the heads' order */
};

struct vkey {
    uint8_t pk[AUDIT_PK_BYTES];
    char id[AUDIT_KEY_ID_CHARS + 1];
    /* A key learned from a key change signs only checkpoints made at or after that change:
     * its time, as written (the fixed-width form orders like the time); "" for given keys. */
    char from[TIME_CHARS + 1];
};

struct verifier {
    struct vkey keys[VERIFY_MAX_KEYS];
    size_t n_keys;
    struct chain *chains; /* open addressing, cap a power of two */
    size_t cap, n_chains;
    struct sbuf msg; /* scratch: a checkpoint's signed message */
    struct audit_verify_result *res;
    uint64_t line;
    bool in_since;                   /* reading the --since checkpoints */
    bool quiet;                      /* the key-change pre-pass: problems are not reported */
    struct audit_prefix *prefix;     /* audit_verify_prefix: the text may end anywhere */
    bool cp_applied;                 /* the line just verified was a checkpoint of the text */
    const struct audit_head *expect; /* audit_verify_heads: heads the export must pass */
    size_t n_expect;
    bool *matched;          /* one per expectation */
    const char *not_before; /* NULL: none */
};

/* Members of a JSON object: allowed types, required or not, in this order. */
enum { F_STR = 1, F_INT = 2, F_NULL = 4, F_OBJ = 8, F_ARR = 16 };
struct field {
    const char *name;
    unsigned types;
    bool required;
};
#define N_FIELDS(t) (sizeof(t) / sizeof((t)[0]))

/* The first problem wins; --since problems have no export line (line 0). */
enum status verify__reject(struct verifier *v, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
const char *verify__shown(char out[static SHOW_BYTES], const char *s, size_t len);
struct chain *verify__chain_get(struct verifier *v, const char *id, size_t len);
enum status verify__key_accept(struct verifier *v, const uint8_t pk[static AUDIT_PK_BYTES],
                               const char *from);
enum status verify__one_chain(struct verifier *v, const char *id, size_t len);
enum status verify__fields_check(struct verifier *v, const json_t *o, const struct field *t,
                                 size_t n, const char *what);
const char *verify__jstr(const json_t *o, const char *key, size_t *len);
bool verify__jint_min(const json_t *o, const char *key, json_int_t min);
void verify__learn_key_changes(struct verifier *v, const char *text, size_t len);
enum status verify__verify_checkpoint(struct verifier *v, const json_t *o);
bool verify__learn_key_change(struct verifier *v, const char *p, size_t n);

/* verify_heads.c: the auditor's expectations. verify__expect_at runs whenever a chain's head
 * moves (an event, an anchor, a --since checkpoint); verify__expect_end after the end rules;
 * verify__heads_out copies the verified heads out. */
enum status verify__expect_at(struct verifier *v, const struct chain *c);
enum status verify__expect_end(struct verifier *v);
void verify__heads_out(const struct verifier *v, struct audit_head **heads, size_t *n);

#endif
