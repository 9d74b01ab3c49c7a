/* SPDX-License-Identifier: Apache-2.0 */
/* server/audit/chain.c -- this node's chain at start: its sealed id, the check of the stored
 * chain against its last signed checkpoint and against the head sealed with the last commit,
 * and the sealed head each commit writes. A database writer who deletes, adds or edits events
 * is caught here before the chain grows; nothing here ever follows a head it cannot verify. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "common/log.h"
#include "common/xmem.h"
#include "server/audit/priv.h"
#include "server/sealed.h"

#define META_CHAIN_ID "audit_chain_id"
#define HEAD_TEXT_MAX 96 /* "<seq>:<64 hex>" */

void
audit__head_seal(struct audit *a, struct store_audit_row *row)
{
    char hex[2 * AUDIT_HASH_BYTES + 1], val[HEAD_TEXT_MAX];

    if (a->set.own_chain)
        return; /* a one-off CLI chain is never continued */
    sodium_bin2hex(hex, sizeof hex, row->hash, AUDIT_HASH_BYTES);
    snprintf(val, sizeof val, "%" PRIu64 ":%s", row->seq, hex);
    sealed_text(a->head_text, sizeof a->head_text, a->mac_key, a->head_key, val);
    row->head_key = a->head_key;
    row->head_val = a->head_text;
}

static void
new_chain_id(struct audit *a)
{
    uint8_t rnd[8];

    randombytes_buf(rnd, sizeof rnd);
    sodium_bin2hex(a->chain_id, sizeof a->chain_id, rnd, sizeof rnd);
    snprintf(a->head_key, sizeof a->head_key, "audit_head:%s", a->chain_id);
}

/* The sealed chain id; *legacy when it was stored before seals existed (sealed now, once). */
static enum status
chain_id_load(struct audit *a, bool *legacy, char *err, size_t err_len)
{
    enum status st =
        sealed_get(a->store, a->mac_key, META_CHAIN_ID, a->chain_id, sizeof a->chain_id);

    *legacy = st == ST_INVALID;
    snprintf(a->head_key, sizeof a->head_key, "audit_head:%s", a->chain_id);
    if (st == ST_OK)
        return ST_OK;
    if (st == ST_NOT_FOUND) {
        new_chain_id(a);
        return sealed_put(a->store, a->mac_key, META_CHAIN_ID, a->chain_id);
    }
    if (st == ST_INVALID) {
        log_msg(LOG_WARN, "audit_meta_sealed", "key", META_CHAIN_ID, "detail",
                "sealing the audit chain id stored before seals existed", LOG_END);
        return sealed_put(a->store, a->mac_key, META_CHAIN_ID, a->chain_id);
    }
    snprintf(err, err_len,
             "the audit chain id in the database fails its seal (edited behind "
             "the service's back)");
    return ST_INTEGRITY;
}

static enum status
add_line(void *arg, const char *line, size_t len)
{
    sbuf_add(arg, line, len);
    sbuf_add(arg, "\n", 1);
    return ST_OK;
}

static enum status
first_line(void *arg, const char *line, size_t len)
{
    struct sbuf *b = arg;
    if (b->len == 0)
        sbuf_add(b, line, len);
    return ST_OK;
}

/* The event a (non-anchor) checkpoint covers must be stored, intact, with its hash: else the
 * checkpoint vouches for events that are gone. */
static enum status
covered_event_check(struct audit *a, const char *cp, uint64_t cp_seq, char *err, size_t err_len)
{
    struct sbuf ev = {0};
    uint8_t got[AUDIT_HASH_BYTES], want[AUDIT_HASH_BYTES];
    json_t *o = json_loads(cp, 0, NULL);
    const char *kind = json_string_value(json_object_get(o, "kind"));
    const char *hex = json_string_value(json_object_get(o, "hash"));
    size_t n = 0;
    enum status st = ST_OK;

    if (cp_seq == 0 || (kind != NULL && strcmp(kind, "anchor") == 0))
        goto out; /* an empty chain, or events pruned behind an anchor */
    if ((st = store_audit_lines(a->store, a->chain_id, cp_seq - 1, cp_seq, first_line, &ev)) !=
        ST_OK)
        goto out;
    if (hex == NULL || sodium_hex2bin(want, sizeof want, hex, strlen(hex), NULL, &n, NULL) != 0 ||
        n != sizeof want || auditfmt_line_hash(ev.p, ev.len, got) != ST_OK ||
        sodium_memcmp(got, want, sizeof want) != 0) {
        snprintf(err, err_len,
                 "audit chain %s: the event seq %" PRIu64 " its last checkpoint "
                 "covers is missing or altered",
                 a->chain_id, cp_seq);
        st = ST_INTEGRITY;
    }
out:
    json_decref(o);
    sbuf_free(&ev);
    return st;
}

/* Verify the stored chain from its last checkpoint (from its start when it has none) to its
 * last event; *seq and hash get that head. */
static enum status
chain_verify(struct audit *a, uint64_t *seq, uint8_t hash[static AUDIT_HASH_BYTES], char *err,
             size_t err_len)
{
    char *cp = NULL;
    uint64_t cp_seq = 0;
    struct sbuf tail = {0};
    struct audit_prefix pre;
    struct audit_verify_result res;
    uint8_t(*keys)[AUDIT_PK_BYTES] = NULL;
    size_t n_keys = 0;
    enum status st = store_audit_checkpoint_last(a->store, a->chain_id, NULL, &cp, &cp_seq);

    if (st != ST_OK && st != ST_NOT_FOUND)
        goto out;
    if ((cp != NULL && (st = covered_event_check(a, cp, cp_seq, err, err_len)) != ST_OK) ||
        (st = store_audit_lines(a->store, a->chain_id, cp != NULL ? cp_seq : 0, INT64_MAX, add_line,
                                &tail)) != ST_OK)
        goto out;
    n_keys = audit_public_keys(a, &keys);
    st = audit_verify_prefix(tail.p, tail.len, (const uint8_t(*)[AUDIT_PK_BYTES])keys, n_keys, cp,
                             cp != NULL ? strlen(cp) : 0, &pre, &res);
    if (st != ST_OK) {
        snprintf(err, err_len,
                 "audit chain %s does not verify from its last checkpoint (seq "
                 "%" PRIu64 "): %s",
                 a->chain_id, cp_seq, res.error);
        st = ST_INTEGRITY;
        goto out;
    }
    *seq = pre.head_seq;
    memcpy(hash, pre.head_hash, AUDIT_HASH_BYTES);
out:
    free(keys);
    free(cp);
    sbuf_free(&tail);
    return st;
}

/* The verified head must be the one sealed with the last commit. A chain without a sealed head
 * is accepted only when new, or stored before seals existed (then sealed now, once). */
static enum status
head_check(struct audit *a, bool legacy, uint64_t seq, const uint8_t hash[static AUDIT_HASH_BYTES],
           char *err, size_t err_len)
{
    char val[HEAD_TEXT_MAX], want[HEAD_TEXT_MAX], hex[2 * AUDIT_HASH_BYTES + 1];
    enum status st = sealed_get(a->store, a->mac_key, a->head_key, val, sizeof val);

    sodium_bin2hex(hex, sizeof hex, hash, AUDIT_HASH_BYTES);
    snprintf(want, sizeof want, "%" PRIu64 ":%s", seq, hex);
    if (st == ST_NOT_FOUND && (legacy || seq == 0)) {
        if (seq == 0)
            return ST_OK;
        log_msg(LOG_WARN, "audit_meta_sealed", "key", a->head_key, "detail",
                "sealing the head of a chain stored before seals existed", LOG_END);
        return sealed_put(a->store, a->mac_key, a->head_key, want);
    }
    if (st == ST_OK && strcmp(val, want) == 0)
        return ST_OK;
    if (st == ST_OK)
        snprintf(err, err_len,
                 "audit chain %s ends at %.40s... but its sealed head is %.40s...: "
                 "events were deleted or added behind the service's back",
                 a->chain_id, want, val);
    else
        snprintf(err, err_len, "the sealed head of audit chain %s is %s", a->chain_id,
                 st == ST_NOT_FOUND ? "missing" : "not intact");
    return ST_INTEGRITY;
}

/* --audit-new-chain after a failed check: a fresh chain whose first event records the restart
 * (the broken chain stays in the database and in exports, verified as far as it verifies). */
static enum status
chain_restart(struct audit *a, const char *why)
{
    char old[STORE_CHAIN_ID_MAX];
    enum status st;

    snprintf(old, sizeof old, "%s", a->chain_id);
    new_chain_id(a);
    log_msg(LOG_ERROR, "audit_chain_restarted", "old_chain_id", old, "chain_id", a->chain_id,
            "detail", why, LOG_END);
    a->head_seq = 0;
    memset(a->head_hash, 0, sizeof a->head_hash);
    if ((st = sealed_put(a->store, a->mac_key, META_CHAIN_ID, a->chain_id)) != ST_OK)
        return st;
    struct audit_rec *rec = audit_rec_new();
    rec->op = "audit.chain_restart";
    snprintf(rec->method, sizeof rec->method, "SYSTEM");
    rec->route = "difyguard serve --audit-new-chain";
    rec->status = 200;
    st = audit__commit_one(a, rec);
    return st;
}

enum status
audit__chain_open(struct audit *a, char *err, size_t err_len)
{
    uint64_t seq = 0;
    uint8_t hash[AUDIT_HASH_BYTES] = {0};
    bool legacy = false;
    enum status st;

    if (a->set.own_chain || a->set.chain_per_process) {
        new_chain_id(a); /* a short-lived process, or a replica, never shares a chain */
        if (a->set.chain_per_process)
            log_msg(LOG_INFO, "audit_chain_started", "chain_id", a->chain_id, "detail",
                    "one chain per replica process", LOG_END);
        return ST_OK;
    }
    if ((st = chain_id_load(a, &legacy, err, err_len)) == ST_OK &&
        (st = chain_verify(a, &seq, hash, err, err_len)) == ST_OK)
        st = head_check(a, legacy, seq, hash, err, err_len);
    if (st == ST_INTEGRITY && a->set.new_chain_on_break)
        return chain_restart(a, err);
    if (st == ST_INTEGRITY)
        log_msg(LOG_ERROR, "audit_chain_integrity_failure", "chain_id", a->chain_id, "detail", err,
                LOG_END);
    else if (st != ST_OK && err[0] == '\0')
        snprintf(err, err_len, "cannot read the audit chain");
    if (st != ST_OK)
        return st;
    a->head_seq = seq;
    memcpy(a->head_hash, hash, sizeof hash);
    /* checkpoint_at_ms 0: the writer checkpoints the head at its first chance after a start. */
    a->checkpoint_seq = 0;
    a->checkpoint_at_ms = 0;
    return ST_OK;
}
