/* SPDX-License-Identifier: Apache-2.0 */
/* server/audit/verify.c -- the offline verifier of audit exports (audit_verify) and the writer's
 * check of a stored chain before it signs it (audit_verify_prefix). Pure: no I/O, no clock.
 * Treats every byte as hostile. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "common/xmem.h"
#include "crypto/b64.h"
#include "crypto/sign.h"
#include "server/audit/format.h"
#include "server/audit/format_priv.h"
#include "server/audit/verify_priv.h"

enum status
verify__reject(struct verifier *v, const char *fmt, ...)
{
    struct audit_verify_result *r = v->res;
    size_t off = 0;
    va_list ap;

    if (r->error[0] == '\0' && !v->quiet) {
        if (v->in_since)
            off = (size_t)snprintf(r->error, sizeof r->error, "--since: ");
        va_start(ap, fmt);
        vsnprintf(r->error + off, sizeof r->error - off, fmt, ap);
        va_end(ap);
        r->line = v->in_since ? 0 : v->line;
    }
    return ST_AUTH;
}

/* Input quoted in an error: printable ASCII only, cut at SHOW_MAX characters. */
const char *
verify__shown(char out[static SHOW_BYTES], const char *s, size_t len)
{
    size_t n = len < SHOW_MAX ? len : SHOW_MAX;

    for (size_t i = 0; i < n; i++)
        out[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    if (len > n)
        memcpy(out + n, "...", 3), n += 3;
    out[n] = '\0';
    return out;
}

static uint64_t
fnv1a(const char *s, size_t len)
{
    uint64_t h = UINT64_C(14695981039346656037);

    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * UINT64_C(1099511628211);
    return h;
}

static struct chain *
chain_slot(struct chain *t, size_t cap, const char *id, size_t len)
{
    size_t i = (size_t)fnv1a(id, len) & (cap - 1);

    while (t[i].id != NULL && !(t[i].id_len == len && memcmp(t[i].id, id, len) == 0))
        i = (i + 1) & (cap - 1);
    return &t[i];
}

/* The chain named id, created at its genesis (seq 0, zero hash) when new. Pointers are valid
 * until the next call. */
struct chain *
verify__chain_get(struct verifier *v, const char *id, size_t len)
{
    struct chain *c;

    if ((v->n_chains + 1) * 2 > v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 16;
        struct chain *t = xcalloc(cap, sizeof *t);
        for (size_t i = 0; i < v->cap; i++) {
            if (v->chains[i].id != NULL)
                *chain_slot(t, cap, v->chains[i].id, v->chains[i].id_len) = v->chains[i];
        }
        free(v->chains);
        v->chains = t;
        v->cap = cap;
    }
    c = chain_slot(v->chains, v->cap, id, len);
    if (c->id == NULL) {
        c->id = xstrndup(id, len);
        c->id_len = len;
        c->order = v->n_chains++;
    }
    return c;
}

/* Accept pk for checkpoints made at or after `from` ("" = any time); a key already accepted
 * keeps the earlier of its two times. */
enum status
verify__key_accept(struct verifier *v, const uint8_t pk[static AUDIT_PK_BYTES], const char *from)
{
    for (size_t i = 0; i < v->n_keys; i++) {
        if (memcmp(v->keys[i].pk, pk, AUDIT_PK_BYTES) != 0)
            continue;
        if (strcmp(from, v->keys[i].from) < 0)
            snprintf(v->keys[i].from, sizeof v->keys[i].from, "%s", from);
        return ST_OK;
    }
    if (v->n_keys == VERIFY_MAX_KEYS)
        return verify__reject(v, "more than %d audit keys", VERIFY_MAX_KEYS);
    memcpy(v->keys[v->n_keys].pk, pk, AUDIT_PK_BYTES);
    auditfmt_key_id(v->keys[v->n_keys].id, pk);
    snprintf(v->keys[v->n_keys].from, sizeof v->keys[v->n_keys].from, "%s", from);
    v->n_keys++;
    return ST_OK;
}

/* audit_verify_prefix reads one chain: a line of another is a problem there. */
enum status
verify__one_chain(struct verifier *v, const char *id, size_t len)
{
    char sh[SHOW_BYTES];

    if (v->prefix == NULL || v->n_chains == 0 || chain_slot(v->chains, v->cap, id, len)->id != NULL)
        return ST_OK;
    return verify__reject(v, "a line of chain \"%s\" among another chain's lines",
                          verify__shown(sh, id, len));
}

static const struct field event_fields[] = {
    {"type", F_STR, true},
    {"chain_id", F_STR, true},
    {"seq", F_INT, true},
    {"prev_hash", F_STR, true},
    {"time", F_STR, true},
    {"op", F_STR, true},
    {"method", F_STR | F_NULL, true},
    {"route", F_STR | F_NULL, true},
    {"status", F_INT, true},
    {"outcome", F_STR, true},
    {"latency_us", F_INT, true},
    {"app", F_STR | F_NULL, true},
    {"key_id", F_STR | F_NULL, true},
    {"keyring", F_STR | F_NULL, true},
    {"key_version", F_INT | F_NULL, true},
    {"items", F_OBJ, false},
    {"cert_id", F_STR, false},
    {"client_cert", F_STR, false},
    {"trace_id", F_STR | F_NULL, true},
    {"count", F_INT, true},
    {"hmac_key_id", F_STR | F_NULL, true},
    {"hmac", F_OBJ, true},
    {"hash", F_STR, true},
};
static const struct field items_fields[] = {
    {"total", F_INT, true},
    {"ok", F_INT, true},
    {"failed", F_INT, true},
    {"versions", F_OBJ, true},
};
static const struct field hmac_fields[] = {
    {"request_id", F_STR, false}, {"client", F_STR, false}, {"keyring", F_STR, false},
    {"key_id", F_STR, false},     {"sub", F_STR, false},    {"context", F_ARR, false},
    {"reference", F_ARR, false},
};

static unsigned
jtype(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_STRING:
        return F_STR;
    case JSON_INTEGER:
        return F_INT;
    case JSON_NULL:
        return F_NULL;
    case JSON_OBJECT:
        return F_OBJ;
    case JSON_ARRAY:
        return F_ARR;
    default:
        return 0;
    }
}

/* Exactly the members of table t, in its order, with their types (jansson keeps insertion
 * order). */
enum status
verify__fields_check(struct verifier *v, const json_t *o, const struct field *t, size_t n,
                     const char *what)
{
    char sh[SHOW_BYTES];
    const char *key;
    json_t *val;
    size_t next = 0, i;

    if (!json_is_object(o))
        return verify__reject(v, "%s is not a JSON object", what);
    json_object_foreach ((json_t *)o, key, val) {
        for (i = 0; i < n && strcmp(t[i].name, key) != 0; i++)
            ;
        if (i == n)
            return verify__reject(v, "%s has an unknown member \"%s\"", what,
                                  verify__shown(sh, key, strlen(key)));
        if (i < next)
            return verify__reject(v, "%s member \"%s\" is out of order", what, t[i].name);
        for (; next < i; next++) {
            if (t[next].required && json_object_get(o, t[next].name) != NULL)
                return verify__reject(v, "%s member \"%s\" is out of order", what, t[next].name);
            if (t[next].required)
                return verify__reject(v, "%s lacks \"%s\"", what, t[next].name);
        }
        if ((jtype(val) & t[i].types) == 0)
            return verify__reject(v, "%s member \"%s\" has the wrong type", what, t[i].name);
        next = i + 1;
    }
    for (; next < n; next++) {
        if (t[next].required)
            return verify__reject(v, "%s lacks \"%s\"", what, t[next].name);
    }
    return ST_OK;
}

const char *
verify__jstr(const json_t *o, const char *key, size_t *len)
{
    const json_t *s = json_object_get(o, key);

    *len = json_string_length(s);
    return json_string_value(s);
}

bool
verify__jint_min(const json_t *o, const char *key, json_int_t min)
{
    const json_t *j = json_object_get(o, key);
    return j == NULL || json_is_null(j) || json_integer_value(j) >= min;
}

static bool
all_strings(const json_t *a)
{
    size_t i;
    json_t *x;

    json_array_foreach (a, i, x) {
        if (!json_is_string(x))
            return false;
    }
    return true;
}

static enum status
event_items_check(struct verifier *v, const json_t *items)
{
    enum status st;
    const char *key;
    json_t *val;
    size_t len;

    if ((st = verify__fields_check(v, items, items_fields, N_FIELDS(items_fields), "items")) !=
        ST_OK)
        return st;
    if (!verify__jint_min(items, "total", 1) || !verify__jint_min(items, "ok", 0) ||
        !verify__jint_min(items, "failed", 0))
        return verify__reject(v, "items counts out of range");
    json_object_foreach (json_object_get(items, "versions"), key, val) {
        len = strlen(key);
        if (len == 0 || len > 10 || strspn(key, "0123456789") != len || key[0] == '0' ||
            !json_is_integer(val) || json_integer_value(val) < 0)
            return verify__reject(v, "items.versions must map key versions to counts");
    }
    return ST_OK;
}

/* What the field table cannot say about an event. */
static enum status
event_values_check(struct verifier *v, const json_t *o, uint8_t prev[static AUDIT_HASH_BYTES])
{
    const json_t *items = json_object_get(o, "items"), *hmac = json_object_get(o, "hmac");
    const char *s;
    size_t len;
    enum status st;

    if ((s = verify__jstr(o, "chain_id", &len)) == NULL || !afmt_chain_id_ok(s, len))
        return verify__reject(v, "chain_id must be 1 to %d printable characters", CHAIN_ID_MAX);
    if (!verify__jint_min(o, "seq", 1) || !verify__jint_min(o, "count", 1) ||
        !verify__jint_min(o, "status", 0) || !verify__jint_min(o, "key_version", 1))
        return verify__reject(v, "seq, count, status or key_version out of range");
    if ((s = verify__jstr(o, "prev_hash", &len)) == NULL ||
        !afmt_hex_decode(prev, AUDIT_HASH_BYTES, s, len))
        return verify__reject(v, "prev_hash is not %d lowercase hex digits", HASH_HEX);
    if ((s = verify__jstr(o, "time", &len)) == NULL || !afmt_time_ok(s, len))
        return verify__reject(v, "time is not RFC 3339 UTC with milliseconds");
    if (items != NULL && (st = event_items_check(v, items)) != ST_OK)
        return st;
    if ((st = verify__fields_check(v, hmac, hmac_fields, N_FIELDS(hmac_fields), "hmac")) != ST_OK)
        return st;
    if (!all_strings(json_object_get(hmac, "context")) ||
        !all_strings(json_object_get(hmac, "reference")))
        return verify__reject(v, "hmac.context and hmac.reference must hold strings");
    return ST_OK;
}

/* The line must end with its own hash member, and that hash must be the line's. */
static enum status
event_integrity(struct verifier *v, const json_t *o, const char *p, size_t n,
                uint8_t hash[static AUDIT_HASH_BYTES])
{
    uint8_t want[AUDIT_HASH_BYTES];
    const char *hex, *s;
    size_t len;

    if (n < HASH_SUFFIX_LEN + 2 ||
        memcmp(p + n - HASH_SUFFIX_LEN, HASH_KEY, sizeof HASH_KEY - 1) != 0 ||
        memcmp(p + n - 2, "\"}", 2) != 0)
        return verify__reject(v, "event does not end with its \"hash\" member");
    hex = p + n - HASH_SUFFIX_LEN + (sizeof HASH_KEY - 1);
    if (!afmt_hex_decode(hash, AUDIT_HASH_BYTES, hex, HASH_HEX) ||
        (s = verify__jstr(o, "hash", &len)) == NULL || len != HASH_HEX ||
        memcmp(s, hex, HASH_HEX) != 0)
        return verify__reject(v, "hash is not %d lowercase hex digits", HASH_HEX);
    afmt_event_hash(want, p, n - HASH_SUFFIX_LEN);
    if (memcmp(want, hash, AUDIT_HASH_BYTES) != 0)
        return verify__reject(v, "hash mismatch: the event was altered");
    return ST_OK;
}

/* seq and prev_hash must continue the chain's head. */
static enum status
event_link(struct verifier *v, const json_t *o, const uint8_t prev[static AUDIT_HASH_BYTES],
           const uint8_t hash[static AUDIT_HASH_BYTES])
{
    char sh[SHOW_BYTES];
    size_t len;
    const char *id = verify__jstr(o, "chain_id", &len);
    uint64_t seq = (uint64_t)json_integer_value(json_object_get(o, "seq"));
    struct chain *c = verify__chain_get(v, id, len);
    bool cont = seq == c->seq + 1 && memcmp(prev, c->hash, AUDIT_HASH_BYTES) == 0;

    verify__shown(sh, id, len);
    if (!cont && c->lines == 0 && c->origin == ORIGIN_SINCE)
        return verify__reject(
            v, "chain \"%s\" does not continue from the --since checkpoint (seq %llu)", sh,
            (unsigned long long)c->seq);
    if (!cont && c->lines == 0 && c->origin == ORIGIN_GENESIS)
        return verify__reject(v,
                              "chain \"%s\" starts at seq %llu: a chain starts at seq 1, after an "
                              "anchor checkpoint or after the --since checkpoint",
                              sh, (unsigned long long)seq);
    if (seq <= c->seq)
        return verify__reject(v,
                              "seq %llu repeats or goes back in chain \"%s\" (at seq %llu): a "
                              "duplicated or reordered event",
                              (unsigned long long)seq, sh, (unsigned long long)c->seq);
    if (seq != c->seq + 1)
        return verify__reject(v, "seq %llu follows seq %llu in chain \"%s\": events are missing",
                              (unsigned long long)seq, (unsigned long long)c->seq, sh);
    if (!cont)
        return verify__reject(v,
                              "prev_hash is not the hash of seq %llu in chain \"%s\": an event was "
                              "deleted, reordered or altered",
                              (unsigned long long)c->seq, sh);
    c->seq = seq;
    memcpy(c->hash, hash, AUDIT_HASH_BYTES);
    c->lines++;
    if (c->uncovered == 0)
        c->uncovered = v->line;
    v->res->events++;
    return verify__expect_at(v, c);
}

static enum status
verify_event(struct verifier *v, const json_t *o, const char *p, size_t n)
{
    uint8_t prev[AUDIT_HASH_BYTES], hash[AUDIT_HASH_BYTES];
    enum status st;

    if (v->in_since)
        return verify__reject(v, "holds an event; it must hold checkpoint lines only");
    if ((st = verify__fields_check(v, o, event_fields, N_FIELDS(event_fields), "event")) != ST_OK ||
        (st = event_values_check(v, o, prev)) != ST_OK ||
        (st = event_integrity(v, o, p, n, hash)) != ST_OK)
        return st;
    size_t len;
    const char *id = verify__jstr(o, "chain_id", &len);
    if ((st = verify__one_chain(v, id, len)) != ST_OK)
        return st;
    return event_link(v, o, prev, hash);
}

/* Checkpoint fields into t, hash and (key_change) new_pk, all checked. */
static enum status
verify_line(struct verifier *v, const char *p, size_t n)
{
    json_error_t je;
    json_t *o = NULL;
    const char *type = NULL;
    char sh[SHOW_BYTES];
    enum status st;

    if (n == 0)
        st = verify__reject(v, "blank line");
    else if (n > VERIFY_LINE_MAX)
        st = verify__reject(v, "line longer than %zu bytes", VERIFY_LINE_MAX);
    else if (p[n - 1] == '\r')
        st = verify__reject(v,
                            "line ends with a carriage return (CRLF line endings are not allowed)");
    else if ((o = json_loadb(p, n, JSON_REJECT_DUPLICATES, &je)) == NULL)
        st = verify__reject(v, "not a complete JSON object (a torn or altered line): %s",
                            verify__shown(sh, je.text, strlen(je.text)));
    else if (!json_is_object(o))
        st = verify__reject(v, "not a JSON object");
    else if ((type = json_string_value(json_object_get(o, "type"))) != NULL &&
             strcmp(type, "event") == 0)
        st = verify_event(v, o, p, n);
    else if (type != NULL && strcmp(type, "checkpoint") == 0)
        st = verify__verify_checkpoint(v, o);
    else
        st = verify__reject(v, "\"type\" is neither \"event\" nor \"checkpoint\"");
    json_decref(o);
    return st;
}

/* Every line ends with "\n"; a last line without one is torn. In the --since text a missing
 * final newline and empty lines are tolerated: people keep that file by hand. */
static enum status
verify_text(struct verifier *v, const char *text, size_t len)
{
    size_t pos = 0, n;
    const char *nl;
    enum status st = ST_OK;

    while (pos < len && st == ST_OK) {
        nl = memchr(text + pos, '\n', len - pos);
        n = nl != NULL ? (size_t)(nl - (text + pos)) : len - pos;
        v->line++;
        v->cp_applied = false;
        if (nl == NULL && !v->in_since)
            st = verify__reject(v, "torn last line: it does not end with a newline");
        else if (n > 0 || !v->in_since)
            st = verify_line(v, text + pos, n);
        pos += n + 1;
        if (st == ST_OK && v->cp_applied && v->prefix != NULL)
            v->prefix->cp_end = pos; /* the verified text ends after this checkpoint */
    }
    return st;
}

/* Before the main pass: learn every key a key change introduces, wherever it stands in the
 * text (exports hold chains one after another, so a chain signed after a rotation may come
 * before the chain holding the key change). A key change counts only when a key already
 * accepted signs it and its new key's signature verifies; repeated until nothing new is
 * learned, so chained rotations (k1 -> k2 -> k3) resolve in any order. Quiet: problems are
 * reported by the main pass. */
void
verify__learn_key_changes(struct verifier *v, const char *text, size_t len)
{
    static const char marker[] = "\"kind\":\"key_change\"";
    bool learned = true;

    v->quiet = true;
    while (learned && v->n_keys < VERIFY_MAX_KEYS) {
        learned = false;
        for (size_t pos = 0; pos < len;) {
            const char *nl = memchr(text + pos, '\n', len - pos);
            size_t n = nl != NULL ? (size_t)(nl - (text + pos)) : len - pos;
            if (n <= VERIFY_LINE_MAX && memmem(text + pos, n, marker, sizeof marker - 1) != NULL)
                learned |= verify__learn_key_change(v, text + pos, n);
            pos += n + 1;
        }
    }
    v->quiet = false;
}

/* The end: some checkpoint, and each chain ends with an export checkpoint covering its last
 * event. Problems are reported at the earliest line they concern. */
static enum status
verify_end(struct verifier *v)
{
    const char *why = NULL;
    const struct chain *bad = NULL;
    uint64_t end = v->line + 1, at = UINT64_MAX, l = 0;
    char sh[SHOW_BYTES];

    v->line = end;
    if (v->res->checkpoints == 0)
        return verify__reject(v, "no checkpoint: nothing in the export is signed");
    for (size_t i = 0; i < v->cap; i++) {
        const struct chain *c = &v->chains[i];
        const char *w = NULL;
        if (c->id == NULL)
            continue;
        if (c->lines == 0)
            l = end, w = "the chain of a --since checkpoint is missing from the export";
        else if (c->uncovered != 0)
            l = c->uncovered, w = "events from here on are not covered by a checkpoint (a "
                                  "truncated or extended tail)";
        else if (c->last_kind != CP_EXPORT)
            l = c->last_cp_line, w = "the last checkpoint is not an export checkpoint (a "
                                     "truncated export)";
        if (w != NULL && l < at)
            at = l, why = w, bad = c;
    }
    if (bad == NULL)
        return ST_OK;
    v->line = at;
    return verify__reject(v, "chain \"%s\": %s", verify__shown(sh, bad->id, bad->id_len), why);
}

static void
verifier_free(struct verifier *v)
{
    for (size_t i = 0; i < v->cap; i++)
        free(v->chains[i].id);
    free(v->chains);
    sbuf_free(&v->msg);
}

/* Accept the given keys, learn key changes, read the --since text, then the export. */
static enum status
verify_run(struct verifier *v, const char *text, size_t len, const uint8_t (*keys)[AUDIT_PK_BYTES],
           size_t n_keys, const char *since, size_t since_len)
{
    enum status st;

    for (size_t i = 0; i < n_keys; i++)
        (void)verify__key_accept(v, keys[i], ""); /* cannot fail: n_keys is bounded */
    if (since != NULL)
        verify__learn_key_changes(v, since, since_len);
    verify__learn_key_changes(v, text, len);
    if (since != NULL) {
        v->in_since = true;
        if ((st = verify_text(v, since, since_len)) != ST_OK)
            return st;
        if (v->n_chains == 0 && v->prefix == NULL)
            return verify__reject(v, "holds no checkpoint");
        v->in_since = false;
        v->line = 0;
        if (v->prefix != NULL)
            v->prefix->has_cp = v->n_chains > 0;
    }
    return verify_text(v, text, len);
}

static bool
args_ok(const char *text, size_t len, const uint8_t (*keys)[AUDIT_PK_BYTES], size_t n_keys,
        const char *since, size_t since_len, struct audit_verify_result *res)
{
    if ((text == NULL && len > 0) || (since == NULL && since_len > 0) || keys == NULL ||
        n_keys == 0 || n_keys > VERIFY_MAX_KEYS) {
        snprintf(res->error, sizeof res->error, "no public key, or no input");
        return false;
    }
    return true;
}

/* An expectation names a chain and a seq of 1 or more; a time bound has the checkpoint form. */
static bool
opts_ok(const struct audit_verify_opts *o, struct audit_verify_result *res)
{
    if (o->expect == NULL && o->n_expect > 0) {
        snprintf(res->error, sizeof res->error, "expected heads are missing");
        return false;
    }
    for (size_t i = 0; i < o->n_expect; i++) {
        const struct audit_head *h = &o->expect[i];
        size_t n = strnlen(h->chain_id, sizeof h->chain_id);
        if (n == sizeof h->chain_id || !afmt_chain_id_ok(h->chain_id, n) || h->seq == 0 ||
            h->seq > (uint64_t)INT64_MAX) {
            snprintf(res->error, sizeof res->error,
                     "an expected head needs a chain id and a seq of 1 or more");
            return false;
        }
    }
    if (o->not_before != NULL && o->not_before[0] != '\0' &&
        !afmt_time_ok(o->not_before, strlen(o->not_before))) {
        snprintf(res->error, sizeof res->error, "the time bound is not a checkpoint time");
        return false;
    }
    return true;
}

enum status
audit_verify_heads(const char *text, size_t len, const uint8_t (*keys)[AUDIT_PK_BYTES],
                   size_t n_keys, const struct audit_verify_opts *o,
                   struct audit_verify_result *res, struct audit_head **heads, size_t *n_heads)
{
    static const struct audit_verify_opts none = {0};
    struct verifier v = {.res = res};
    enum status st = ST_INVALID;

    if (heads != NULL)
        *heads = NULL;
    if (n_heads != NULL)
        *n_heads = 0;
    if (res == NULL)
        return ST_INVALID;
    memset(res, 0, sizeof *res);
    if (o == NULL)
        o = &none;
    if (!args_ok(text, len, keys, n_keys, o->since, o->since_len, res) || !opts_ok(o, res))
        goto out;
    v.expect = o->expect;
    v.n_expect = o->n_expect;
    v.matched = xcalloc(o->n_expect + 1, sizeof *v.matched);
    v.not_before = o->not_before != NULL && o->not_before[0] != '\0' ? o->not_before : NULL;
    if ((st = verify_run(&v, text, len, keys, n_keys, o->since, o->since_len)) != ST_OK ||
        (st = verify_end(&v)) != ST_OK || (st = verify__expect_end(&v)) != ST_OK)
        goto out;
    for (size_t i = 0; i < v.cap; i++)
        res->chains += v.chains[i].id != NULL && v.chains[i].lines > 0;
    if (heads != NULL && n_heads != NULL)
        verify__heads_out(&v, heads, n_heads);
out:
    free(v.matched);
    verifier_free(&v);
    return st;
}

enum status
audit_verify(const char *text, size_t len, const uint8_t (*keys)[AUDIT_PK_BYTES], size_t n_keys,
             const char *since, size_t since_len, struct audit_verify_result *res)
{
    const struct audit_verify_opts o = {.since = since, .since_len = since_len};

    return audit_verify_heads(text, len, keys, n_keys, &o, res, NULL, NULL);
}

enum status
audit_verify_prefix(const char *text, size_t len, const uint8_t (*keys)[AUDIT_PK_BYTES],
                    size_t n_keys, const char *since, size_t since_len, struct audit_prefix *out,
                    struct audit_verify_result *res)
{
    struct verifier v = {.res = res, .prefix = out};
    enum status st = ST_INVALID;

    if (res == NULL || out == NULL)
        return ST_INVALID;
    memset(res, 0, sizeof *res);
    memset(out, 0, sizeof *out);
    if (args_ok(text, len, keys, n_keys, since, since_len, res))
        st = verify_run(&v, text, len, keys, n_keys, since, since_len);
    for (size_t i = 0; i < v.cap; i++) {
        const struct chain *c = &v.chains[i];
        if (c->id == NULL)
            continue;
        out->head_seq = c->seq; /* one chain: what verified before any problem */
        memcpy(out->head_hash, c->hash, AUDIT_HASH_BYTES);
        if (c->last_cp_line != 0) {
            out->has_cp = true;
            out->cp_seq = c->cp_seq;
            memcpy(out->cp_hash, c->cp_hash, AUDIT_HASH_BYTES);
        }
    }
    out->events = res->events;
    out->checkpoints = res->checkpoints;
    verifier_free(&v);
    return st;
}

enum status
auditfmt_line_hash(const char *line, size_t len, uint8_t hash[static AUDIT_HASH_BYTES])
{
    uint8_t want[AUDIT_HASH_BYTES];

    memset(hash, 0, AUDIT_HASH_BYTES);
    if (line == NULL || len < HASH_SUFFIX_LEN + 2 ||
        memcmp(line + len - HASH_SUFFIX_LEN, HASH_KEY, sizeof HASH_KEY - 1) != 0 ||
        memcmp(line + len - 2, "\"}", 2) != 0 ||
        !afmt_hex_decode(hash, AUDIT_HASH_BYTES,
                         line + len - HASH_SUFFIX_LEN + (sizeof HASH_KEY - 1), HASH_HEX))
        goto bad;
    afmt_event_hash(want, line, len - HASH_SUFFIX_LEN);
    if (sodium_memcmp(want, hash, AUDIT_HASH_BYTES) == 0)
        return ST_OK;
bad:
    memset(hash, 0, AUDIT_HASH_BYTES);
    return ST_AUTH;
}
