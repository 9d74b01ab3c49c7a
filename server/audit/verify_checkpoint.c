/* SPDX-License-Identifier: Apache-2.0 */
/* server/audit/verify_checkpoint.c -- the offline verifier's checkpoints: their fields, what they
 * cover (the chain's head, or the --since state), and their Ed25519 signatures by keys the
 * verifier was given or learned from key changes, each valid only from its change on. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "crypto/b64.h"
#include "crypto/sign.h"
#include "server/audit/verify_priv.h"

static const struct field cp_fields[] = {
    {"type", F_STR, true},        {"chain_id", F_STR, true},
    {"seq", F_INT, true},         {"hash", F_STR, true},
    {"time", F_STR, true},        {"kind", F_STR, true},
    {"new_key_id", F_STR, false}, {"new_public_key", F_STR, false},
    {"signatures", F_ARR, true},
};
static const struct field sig_fields[] = {{"key_id", F_STR, true}, {"sig", F_STR, true}};

static enum status
cp_parse(struct verifier *v, const json_t *o, struct cp_text *t,
         uint8_t hash[static AUDIT_HASH_BYTES], uint8_t new_pk[static AUDIT_PK_BYTES])
{
    const char *s, *id, *pk;
    size_t len, id_len, pk_len, n = 0;
    char want[AUDIT_KEY_ID_CHARS + 1];

    memset(t, 0, sizeof *t);
    if ((t->chain_id = verify__jstr(o, "chain_id", &t->chain_len)) == NULL ||
        !afmt_chain_id_ok(t->chain_id, t->chain_len))
        return verify__reject(v, "chain_id must be 1 to %d printable characters", CHAIN_ID_MAX);
    if (!verify__jint_min(o, "seq", 0))
        return verify__reject(v, "checkpoint seq is negative");
    t->seq = (uint64_t)json_integer_value(json_object_get(o, "seq"));
    if ((s = verify__jstr(o, "hash", &len)) == NULL ||
        !afmt_hex_decode(hash, AUDIT_HASH_BYTES, s, len))
        return verify__reject(v, "checkpoint hash is not %d lowercase hex digits", HASH_HEX);
    memcpy(t->hash, s, HASH_HEX);
    if ((s = verify__jstr(o, "time", &len)) == NULL || !afmt_time_ok(s, len))
        return verify__reject(v, "time is not RFC 3339 UTC with milliseconds");
    memcpy(t->time, s, TIME_CHARS);
    if (!afmt_kind_parse(&t->kind, json_string_value(json_object_get(o, "kind"))))
        return verify__reject(v, "kind is not periodic, export, anchor or key_change");
    id = verify__jstr(o, "new_key_id", &id_len);
    pk = verify__jstr(o, "new_public_key", &pk_len);
    if ((t->kind == CP_KEY_CHANGE) != (id != NULL) || (id != NULL) != (pk != NULL))
        return verify__reject(
            v, "new_key_id and new_public_key belong to key_change checkpoints only");
    if (t->kind != CP_KEY_CHANGE)
        return ST_OK;
    if (pk_len != PK_B64_CHARS || b64_std_decode(new_pk, AUDIT_PK_BYTES, &n, pk, pk_len) != ST_OK ||
        n != AUDIT_PK_BYTES)
        return verify__reject(v, "new_public_key is not a base64 Ed25519 public key");
    auditfmt_key_id(want, new_pk);
    if (id_len != AUDIT_KEY_ID_CHARS || memcmp(id, want, AUDIT_KEY_ID_CHARS) != 0)
        return verify__reject(v, "new_key_id is not the id of new_public_key");
    memcpy(t->new_key_id, want, sizeof want);
    memcpy(t->new_pk, pk, PK_B64_CHARS);
    return ST_OK;
}

/* One signature entry: true when it verifies under pk. */
static bool
sig_verifies(const uint8_t sig[static SIG_BYTES], const struct sbuf *msg,
             const uint8_t pk[static AUDIT_PK_BYTES])
{
    return sign_verify(sig, (const uint8_t *)msg->p, msg->len, pk) == ST_OK;
}

static enum status
sig_parse(struct verifier *v, const json_t *e, const char **id, uint8_t sig[static SIG_BYTES])
{
    const char *s;
    size_t len, id_len, n = 0;
    enum status st;

    if ((st = verify__fields_check(v, e, sig_fields, N_FIELDS(sig_fields), "signature")) != ST_OK)
        return st;
    *id = verify__jstr(e, "key_id", &id_len);
    s = verify__jstr(e, "sig", &len);
    if (id_len != AUDIT_KEY_ID_CHARS || strspn(*id, "0123456789abcdef") != id_len)
        return verify__reject(v, "signature key_id is not %d lowercase hex digits",
                              AUDIT_KEY_ID_CHARS);
    if (len != SIG_B64_CHARS || b64_std_decode(sig, SIG_BYTES, &n, s, len) != ST_OK ||
        n != SIG_BYTES)
        return verify__reject(v, "sig is not a base64 Ed25519 signature");
    return ST_OK;
}

/* At least one accepted key that this chain has not retired must sign, and every signature by
 * such a key must verify; a key change must also be signed by its new key (learned before the
 * main pass, see verify__learn_key_changes), and retires its old signers for this chain. */
static enum status
cp_signatures(struct verifier *v, const json_t *sigs, const struct cp_text *t,
              const uint8_t new_pk[static AUDIT_PK_BYTES], struct chain *c)
{
    uint8_t sig[SIG_BYTES];
    size_t n = json_array_size(sigs), good = 0, i;
    uint64_t signers = 0;
    bool new_ok = false;
    const char *id;
    json_t *e;
    enum status st;

    if (n == 0 || n > VERIFY_MAX_SIGS)
        return verify__reject(v, "a checkpoint holds 1 to %d signatures", VERIFY_MAX_SIGS);
    afmt_cp_message(&v->msg, t);
    json_array_foreach (sigs, i, e) {
        if ((st = sig_parse(v, e, &id, sig)) != ST_OK)
            return st;
        if (t->kind == CP_KEY_CHANGE && strcmp(id, t->new_key_id) == 0) {
            if (!(new_ok = sig_verifies(sig, &v->msg, new_pk)))
                return verify__reject(v,
                                      "the new key's signature on the key change does not verify");
            continue;
        }
        for (size_t k = 0; k < v->n_keys; k++) {
            /* Not this key: retired by this chain, or introduced by a key change made after
             * this checkpoint (the CVE-2023-31439 analogue: history re-signed with a newer
             * key). */
            if (strcmp(id, v->keys[k].id) != 0 || (c->retired >> k & 1u) ||
                strcmp(t->time, v->keys[k].from) < 0)
                continue;
            if (!sig_verifies(sig, &v->msg, v->keys[k].pk))
                return verify__reject(v,
                                      "the signature by key %s does not verify: the checkpoint was "
                                      "altered",
                                      v->keys[k].id);
            good++;
            signers |= UINT64_C(1) << k;
        }
    }
    if (good == 0)
        return verify__reject(v,
                              "checkpoint is not signed by an accepted key (re-signed with another "
                              "key, a key this chain retired at a key change, or a --public-key is "
                              "missing)");
    if (t->kind == CP_KEY_CHANGE && !new_ok)
        return verify__reject(v, "key change is not signed by its new key");
    if (t->kind != CP_KEY_CHANGE)
        return ST_OK;
    if ((st = verify__key_accept(v, new_pk, t->time)) != ST_OK)
        return st;
    for (size_t k = 0; k < v->n_keys; k++) { /* the new key itself is never retired */
        if (memcmp(v->keys[k].pk, new_pk, AUDIT_PK_BYTES) == 0)
            signers &= ~(UINT64_C(1) << k);
    }
    c->retired |= signers;
    return ST_OK;
}

/* A --since checkpoint: its chain starts there (and must show up in the export). */
static enum status
cp_since(struct verifier *v, const struct cp_text *t, const uint8_t hash[static AUDIT_HASH_BYTES])
{
    char sh[SHOW_BYTES];
    struct chain *c = verify__chain_get(v, t->chain_id, t->chain_len);

    if (c->origin == ORIGIN_SINCE)
        return verify__reject(v, "two checkpoints for chain \"%s\"",
                              verify__shown(sh, t->chain_id, t->chain_len));
    c->origin = ORIGIN_SINCE;
    c->seq = c->start_seq = t->seq;
    memcpy(c->hash, hash, AUDIT_HASH_BYTES);
    return verify__expect_at(v, c);
}

/* A checkpoint covers its chain's head, or starts a chain when it is an anchor. */
static enum status
cp_apply(struct verifier *v, const struct cp_text *t, const uint8_t hash[static AUDIT_HASH_BYTES])
{
    char sh[SHOW_BYTES];
    struct chain *c = verify__chain_get(v, t->chain_id, t->chain_len);

    verify__shown(sh, t->chain_id, t->chain_len);
    if (c->lines == 0 && c->origin == ORIGIN_GENESIS && t->kind == CP_ANCHOR) {
        c->origin = ORIGIN_ANCHOR; /* events up to seq were pruned behind this anchor */
        c->seq = c->start_seq = t->seq;
        memcpy(c->hash, hash, AUDIT_HASH_BYTES);
        if (verify__expect_at(v, c) != ST_OK)
            return ST_AUTH;
    } else if (t->seq != c->seq) {
        return verify__reject(
            v,
            "checkpoint for seq %llu, but chain \"%s\" is at seq %llu here: events "
            "were deleted, added or moved",
            (unsigned long long)t->seq, sh, (unsigned long long)c->seq);
    } else if (memcmp(hash, c->hash, AUDIT_HASH_BYTES) != 0) {
        return verify__reject(v, "checkpoint hash is not the hash of seq %llu in chain \"%s\"",
                              (unsigned long long)t->seq, sh);
    }
    c->lines++;
    c->uncovered = 0;
    c->last_cp_line = v->line;
    c->last_kind = t->kind;
    c->cp_seq = c->seq;
    memcpy(c->cp_hash, c->hash, AUDIT_HASH_BYTES);
    memcpy(c->cp_time, t->time, sizeof c->cp_time);
    v->res->checkpoints++;
    return ST_OK;
}

enum status
verify__verify_checkpoint(struct verifier *v, const json_t *o)
{
    struct cp_text t;
    uint8_t hash[AUDIT_HASH_BYTES], new_pk[AUDIT_PK_BYTES] = {0};
    enum status st;

    if ((st = verify__fields_check(v, o, cp_fields, N_FIELDS(cp_fields), "checkpoint")) != ST_OK ||
        (st = cp_parse(v, o, &t, hash, new_pk)) != ST_OK ||
        (st = verify__one_chain(v, t.chain_id, t.chain_len)) != ST_OK ||
        (st = cp_signatures(v, json_object_get(o, "signatures"), &t, new_pk,
                            verify__chain_get(v, t.chain_id, t.chain_len))) != ST_OK)
        return st;
    if (v->in_since)
        return cp_since(v, &t, hash);
    if ((st = cp_apply(v, &t, hash)) == ST_OK)
        v->cp_applied = true;
    return st;
}

/* One key-change line of the pre-pass: true when it introduced a key, or an earlier time for
 * one (so the passes end: each line can lower a key's time once). */
bool
verify__learn_key_change(struct verifier *v, const char *p, size_t n)
{
    struct cp_text t;
    uint8_t hash[AUDIT_HASH_BYTES], new_pk[AUDIT_PK_BYTES], sig[SIG_BYTES];
    bool new_ok = false, old_ok = false, known = false, learned = false;
    json_t *o = json_loadb(p, n, JSON_REJECT_DUPLICATES, NULL), *e;
    const char *id;
    size_t i;

    if (o == NULL ||
        verify__fields_check(v, o, cp_fields, N_FIELDS(cp_fields), "checkpoint") != ST_OK ||
        cp_parse(v, o, &t, hash, new_pk) != ST_OK || t.kind != CP_KEY_CHANGE)
        goto out;
    for (size_t k = 0; k < v->n_keys; k++) /* known already, from this time or before */
        known |= memcmp(v->keys[k].pk, new_pk, AUDIT_PK_BYTES) == 0 &&
                 strcmp(v->keys[k].from, t.time) <= 0;
    if (known)
        goto out;
    afmt_cp_message(&v->msg, &t);
    json_array_foreach (json_object_get(o, "signatures"), i, e) {
        if (i >= VERIFY_MAX_SIGS || sig_parse(v, e, &id, sig) != ST_OK)
            break;
        if (strcmp(id, t.new_key_id) == 0) {
            new_ok = new_ok || sig_verifies(sig, &v->msg, new_pk);
            continue;
        }
        for (size_t k = 0; k < v->n_keys; k++)
            old_ok =
                old_ok || (strcmp(id, v->keys[k].id) == 0 && strcmp(t.time, v->keys[k].from) >= 0 &&
                           sig_verifies(sig, &v->msg, v->keys[k].pk));
    }
    learned = new_ok && old_ok && verify__key_accept(v, new_pk, t.time) == ST_OK;
out:
    json_decref(o);
    return learned;
}
