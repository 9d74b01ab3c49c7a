/* SPDX-License-Identifier: Apache-2.0 */
/* server/audit/format.h -- the audit trail's line formats (NDJSON), hash chaining, signed
 * checkpoints and the offline verifier. Pure: no I/O, no database, no HTTP. The formats are
 * permanent (auditors keep exports): docs/audit.md is their specification.
 *
 * Event line: a JSON object written by auditfmt_event with keys in a fixed order, ending with
 *   ,"hash":"<64 hex>"}
 * hash = SHA-256("difyguard-audit-v1\n" || B) where B is the line with that suffix replaced by
 * "}" (the event object without its hash). Events link by "prev_hash" (64 zero hex digits for
 * seq 1, or the hash of an anchor checkpoint after pruning) and "seq" (+1 per event) within a
 * "chain_id". Checkpoint lines carry Ed25519 signatures over
 *   "difyguard-audit-checkpoint-v1\n" chain_id "\n" seq "\n" hash_hex "\n" time "\n" kind "\n"
 *   new_key_id "\n" new_public_key_b64 "\n"        (the last two empty unless kind is key_change)
 */
#ifndef DG_SERVER_AUDIT_FORMAT_H
#define DG_SERVER_AUDIT_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/sbuf.h"
#include "common/status.h"
#include "crypto/secret.h"

#define AUDIT_HASH_BYTES 32
#define AUDIT_KEY_ID_CHARS 16 /* hex of the first 8 bytes of SHA-256(public key) */
#define AUDIT_PK_BYTES 32
#define AUDIT_SK_BYTES 64      /* libsodium Ed25519 secret key (seed || pk) */
#define AUDIT_CHAIN_ID_MAX 128 /* bytes of a chain id */
#define AUDIT_TIME_CHARS 24    /* 2026-11-28T20:21:00.123Z */

/* One audit event. Strings are NUL-terminated; NULL means absent (written as JSON null or
 * omitted, as documented). Values that identify callers or data are HMAC-ed by the writer
 * before they get here (the h_* fields, lowercase hex). */
struct audit_event {
    const char *chain_id;
    uint64_t seq;
    uint8_t prev_hash[AUDIT_HASH_BYTES];
    int64_t time_ms; /* unix milliseconds; written as RFC 3339 with ms */
    const char *op;  /* "encrypt", "keyring.create", "auth", ... */
    const char *method;
    const char *route; /* template: "/v1/keyrings/{name}/encrypt" */
    unsigned status;
    const char *outcome; /* "ok", "denied", "invalid", "failed", "error" */
    int64_t latency_us;
    const char *app, *key_id, *keyring;
    uint32_t key_version;                         /* 0 = absent */
    uint32_t items_total, items_ok, items_failed; /* batches; total 0 = not a batch */
    size_t n_versions;                            /* {version: count} map of a batch */
    const uint32_t *versions, *version_counts;
    const char *cert_id;     /* a certificate source (issue 9); NULL = omitted */
    const char *client_cert; /* the verified mTLS client certificate's subject; NULL = omitted */
    const char *trace_id;
    uint64_t count;          /* coalesced identical events, >= 1 */
    const char *hmac_key_id; /* the audit HMAC key that made the h_* values */
    const char *h_request_id, *h_client, *h_keyring, *h_key_id, *h_sub;
    const char *const *h_context; /* one per context value, in canonical key order */
    size_t n_h_context;
    const char *const *h_reference; /* one per batch reference */
    size_t n_h_reference;
};

/* Append the event line (no newline) to out and compute its hash. ST_INVALID when a string
 * field is not plain printable ASCII/UTF-8 the writer can emit. */
NODISCARD enum status auditfmt_event(struct sbuf *out, uint8_t hash[static AUDIT_HASH_BYTES],
                                     const struct audit_event *e);

struct audit_signer {
    char key_id[AUDIT_KEY_ID_CHARS + 1];
    const struct secret *sk; /* AUDIT_SK_BYTES */
};

struct audit_checkpoint {
    const char *chain_id;
    uint64_t seq;                   /* the last event it covers (0 for an empty chain) */
    uint8_t hash[AUDIT_HASH_BYTES]; /* that event's hash */
    int64_t time_ms;
    const char *kind;              /* "periodic", "export", "anchor", "key_change" */
    const char *new_key_id;        /* key_change only */
    const uint8_t *new_public_key; /* key_change only, AUDIT_PK_BYTES */
};

/* Append a checkpoint line signed by each signer (key_change: old and new key). */
NODISCARD enum status auditfmt_checkpoint(struct sbuf *out, const struct audit_checkpoint *c,
                                          const struct audit_signer *signers, size_t n_signers);

/* Key ids and the text form of public keys (standard base64 of 32 bytes). */
void auditfmt_key_id(char out[static AUDIT_KEY_ID_CHARS + 1],
                     const uint8_t pk[static AUDIT_PK_BYTES]);
NODISCARD enum status auditfmt_parse_public_key(uint8_t pk[static AUDIT_PK_BYTES], const char *text,
                                                size_t len);
/* Unix milliseconds (clamped to 0 .. 9999-12-31T23:59:59.999Z) as the trail writes times: RFC 3339
 * UTC with milliseconds, fixed width, so two such times order as their text does. */
void auditfmt_time(char out[static AUDIT_TIME_CHARS + 1], int64_t ms);

struct audit_verify_result {
    uint64_t events, checkpoints, chains;
    uint64_t line;   /* 1-based line of the first problem, 0 if none */
    char error[256]; /* one sentence, no secrets */
};

/* Verify an export (NDJSON text). Fails (ST_AUTH, with res->error and res->line) on: a line that
 * is not a complete JSON object (torn), a hash mismatch (any flipped bit), a broken link or seq
 * (deleted, swapped, duplicated events), a checkpoint signed by no given key or whose hash is
 * not its event's, no checkpoint at all, or events after a chain's last checkpoint (a truncated
 * or extended tail). since: an optional checkpoint line the auditor kept from an earlier export;
 * the export must then start right after it and link to it. Key changes (checkpoints signed by
 * an accepted key and the new key) extend the accepted keys wherever they stand in the file; in
 * the chain of a key change, checkpoints after it count only when a key other than the retired
 * old one signs them. ST_INVALID for unusable arguments. */
NODISCARD enum status audit_verify(const char *text, size_t len,
                                   const uint8_t (*keys)[AUDIT_PK_BYTES], size_t n_keys,
                                   const char *since, size_t since_len,
                                   struct audit_verify_result *res);

/* A chain's head: the last event (or anchor) a verification passed through, and the time of the
 * chain's last checkpoint in the text. As an expectation (--expect-head), cp_time is unused. */
struct audit_head {
    char chain_id[AUDIT_CHAIN_ID_MAX + 1];
    uint64_t seq;
    uint8_t hash[AUDIT_HASH_BYTES];
    char cp_time[AUDIT_TIME_CHARS + 1];
};

/* What an auditor adds to audit_verify (all optional: zero is none). */
struct audit_verify_opts {
    const char *since; /* as audit_verify */
    size_t since_len;
    /* Heads the export must pass through, e.g. from a signed compliance report: the chain must be
     * in the export, its event at seq must have exactly that hash, and the export must not end
     * before it (an export cut back to an earlier checkpoint fails). A head before the start of
     * the export (behind an anchor or the --since checkpoint) fails too: it cannot be checked. */
    const struct audit_head *expect;
    size_t n_expect;
    /* Every chain's last checkpoint must be made at or after this time (auditfmt_time form;
     * NULL or "" = no bound): an export older than the auditor's last look fails. */
    const char *not_before;
};

/* audit_verify with the options above; on success *heads (may be NULL) gets every chain of the
 * export in order of first appearance, with the head it verified through (malloc'd: free();
 * NULL and 0 on failure). ST_INVALID for unusable arguments (a malformed expectation or time). */
NODISCARD enum status audit_verify_heads(const char *text, size_t len,
                                         const uint8_t (*keys)[AUDIT_PK_BYTES], size_t n_keys,
                                         const struct audit_verify_opts *o,
                                         struct audit_verify_result *res, struct audit_head **heads,
                                         size_t *n_heads);

/* The hash of one stored event line: ST_OK when the line ends with its hash member and that
 * hash is the line's own (hash gets it), else ST_AUTH. Checks nothing else of the line. */
NODISCARD enum status auditfmt_line_hash(const char *line, size_t len,
                                         uint8_t hash[static AUDIT_HASH_BYTES]);

/* The writer's check of ONE stored chain before it relies on it (at start, against its last
 * checkpoint; and before it signs another node's chain into an export): audit_verify's line
 * rules, key changes and --since, but the text may end anywhere (no end rules) and verification
 * stops at the first problem. *out describes what verified before it: the chain's head there,
 * and its last checkpoint in the text (cp_end: bytes of text up to and including that line).
 * Returns ST_OK when all of the text verified, ST_AUTH with res->error otherwise. */
struct audit_prefix {
    uint64_t events, checkpoints;
    uint64_t head_seq; /* the last verified event, anchor or since checkpoint */
    uint8_t head_hash[AUDIT_HASH_BYTES];
    bool has_cp;     /* a checkpoint of the text (or the since line) verified */
    uint64_t cp_seq; /* the last verified checkpoint of the text */
    uint8_t cp_hash[AUDIT_HASH_BYTES];
    size_t cp_end;
};
NODISCARD enum status audit_verify_prefix(const char *text, size_t len,
                                          const uint8_t (*keys)[AUDIT_PK_BYTES], size_t n_keys,
                                          const char *since, size_t since_len,
                                          struct audit_prefix *out,
                                          struct audit_verify_result *res);

#endif
