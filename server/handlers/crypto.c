/* SPDX-License-Identifier: Apache-2.0 */
/* server/handlers/crypto.c -- encrypt, decrypt, rewrap and datakey, single and batched: the hot
 * path. Items are parsed, processed and written one at a time. Plaintext lives only in malloc'd
 * buffers that are wiped after use and in responses marked secret (wiped when sent). Every
 * decryption failure reads decryption_failed: no oracle. */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/json/jsonx.h"
#include "crypto/b64.h"
#include "crypto/context.h"
#include "crypto/envelope.h"
#include "server/handlers/handlers.h"
#include "server/obs/opstats.h"
#include "server/obs/trace.h"
#include "server/service.h"

#define REFERENCE_MAX 256
#define DATAKEY_BYTES 32
#define SMALL_BYTES 512 /* values up to this size avoid the heap */

static const char *const op_fields[][6] = {
    {"plaintext", "text", "context", "key_version", "reference", NULL},
    {"ciphertext", "context", "reference", NULL},
    {"ciphertext", "context", "reference", NULL},
    {"context", "include_plaintext", "reference", NULL},
};

/* One item's inputs, borrowed from the request JSON or held in wiped buffers. */
struct item {
    const uint8_t *ctx;
    size_t ctx_len;
    uint8_t *ctx_buf;  /* malloc'd canonical context, when large */
    const uint8_t *pt; /* plaintext to encrypt */
    size_t pt_len;
    uint8_t *pt_buf; /* decoded base64 (wiped): pt_small or malloc'd */
    size_t pt_cap;
    uint8_t ctx_small[SMALL_BYTES];
    uint8_t pt_small[SMALL_BYTES];
    const char *ct; /* ciphertext text */
    size_t ct_len;
    uint32_t version; /* 0 = latest */
    bool include_plaintext;
    uint32_t used_version; /* the key version the operation used (for the trail) */
    const char *msg;       /* error explanation */
};

static void
item_free(struct item *it)
{
    free(it->ctx_buf);
    if (it->pt_buf != NULL) {
        sodium_memzero(it->pt_buf, it->pt_cap);
        if (it->pt_buf != it->pt_small)
            free(it->pt_buf);
    }
}

static enum status
parse_context(struct item *it, const json_t *ctx, struct req *r)
{
    struct context_pair pairs[CONTEXT_MAX_PAIRS];
    static const uint8_t empty[4] = {0, 0, 0, 0};
    const char *key;
    json_t *v;
    size_t n = 0;

    if (ctx == NULL) {
        it->ctx = empty;
        it->ctx_len = sizeof empty;
        return ST_OK;
    }
    it->msg = "context must be an object of at most 32 string values";
    if (!json_is_object(ctx) || json_object_size(ctx) > CONTEXT_MAX_PAIRS)
        return ST_INVALID;
    json_object_foreach ((json_t *)ctx, key, v) {
        if (!json_is_string(v))
            return ST_INVALID;
        pairs[n++] =
            (struct context_pair){key, strlen(key), json_string_value(v), json_string_length(v)};
    }
    size_t cap = context_canon_len(pairs, n);
    uint8_t *buf = it->ctx_small;
    if (cap > sizeof it->ctx_small)
        buf = it->ctx_buf = xmalloc(cap);
    if (context_canonicalize(buf, cap, &it->ctx_len, pairs, n) != ST_OK) {
        it->msg = "context keys must be unique UTF-8 strings without NUL";
        return ST_INVALID;
    }
    it->ctx = buf;
    it->msg = NULL;
    for (size_t i = 0; i < n; i++) /* sorted now: the trail lists them in key order */
        req_audit_context(r, pairs[i].val, pairs[i].val_len);
    return ST_OK;
}

static enum status
parse_plaintext(struct item *it, const json_t *o)
{
    const char *b64 = NULL, *text = NULL;
    size_t b64_len = 0, text_len = 0;
    bool has_b64 = false, has_text = false;

    it->msg = "exactly one of plaintext (base64) and text (string) is required";
    if (jx_str(o, "plaintext", &b64, &b64_len, &has_b64) != ST_OK ||
        jx_str(o, "text", &text, &text_len, &has_text) != ST_OK || has_b64 == has_text)
        return ST_INVALID;
    it->msg = NULL;
    if (has_text) {
        it->pt = (const uint8_t *)text;
        it->pt_len = text_len;
        return ST_OK;
    }
    it->pt_cap = b64_decoded_max(b64_len) + 1;
    it->pt_buf = it->pt_cap <= sizeof it->pt_small ? it->pt_small : xmalloc(it->pt_cap);
    if (b64_std_decode(it->pt_buf, it->pt_cap, &it->pt_len, b64, b64_len) != ST_OK) {
        it->msg = "plaintext must be canonical base64";
        return ST_INVALID;
    }
    it->pt = it->pt_buf;
    return ST_OK;
}

static enum status
parse_item(struct item *it, enum crypto_op op, const json_t *o, bool batch, struct req *r)
{
    const char *const *allowed = op_fields[op];
    static const char *const single_enc[] = {"plaintext", "text", "context", "key_version", NULL};
    static const char *const single_dec[] = {"ciphertext", "context", NULL};
    static const char *const single_dk[] = {"context", "include_plaintext", NULL};
    int64_t ver = 0;
    bool has_ver = false;
    enum status st;

    if (!batch)
        allowed = op == OP_ENCRYPT ? single_enc : op == OP_DATAKEY ? single_dk : single_dec;
    if (!json_is_object(o)) {
        it->msg = "each item must be an object";
        return ST_INVALID;
    }
    if ((st = jx_only(o, allowed, &it->msg)) != ST_OK ||
        (st = parse_context(it, json_object_get(o, "context"), r)) != ST_OK)
        return st;
    switch (op) {
    case OP_ENCRYPT:
        if (jx_int(o, "key_version", &ver, &has_ver) != ST_OK || (has_ver && ver < 1) ||
            ver > UINT32_MAX) {
            it->msg = "key_version must be a positive integer";
            return ST_INVALID;
        }
        it->version = (uint32_t)ver;
        return parse_plaintext(it, o);
    case OP_DECRYPT:
    case OP_REWRAP:
        if (jx_str(o, "ciphertext", &it->ct, &it->ct_len, NULL) != ST_OK || it->ct == NULL) {
            it->msg = "ciphertext is required and must be a string";
            return ST_INVALID;
        }
        return ST_OK;
    case OP_DATAKEY:
        if (jx_bool(o, "include_plaintext", &it->include_plaintext, NULL) != ST_OK) {
            it->msg = "include_plaintext must be a boolean";
            return ST_INVALID;
        }
        return ST_OK;
    }
    return ST_INTERNAL;
}

/* --- operations --- */

struct opctx {
    struct req *r;
    struct keyring_use use;
    bool raw_out;                 /* single decrypt answered as application/octet-stream */
    bool acquired;                /* the keyring exists and was used: its name may be a label */
    uint32_t outcomes[ST__COUNT]; /* items by outcome, for difyguard_crypto_operations_total */
};

/* Seal pt and append the quoted ciphertext text to out. */
static enum status
seal_to(struct opctx *c, const struct item *it, uint32_t version, const uint8_t *pt, size_t pt_len,
        struct sbuf *out, uint32_t *used)
{
    const struct kek *kek = NULL;
    enum envelope_format fmt = keyrings_format(&c->use);
    size_t blen = envelope_blob_len(fmt, pt_len);
    uint8_t small[SMALL_BYTES + ENVELOPE_MAX_OVERHEAD];
    uint8_t *blob = NULL;
    enum status st;

    if ((st = keyrings_kek_encrypt(&c->use, version, &kek)) != ST_OK)
        return st;
    blob = blen <= sizeof small ? small : xmalloc(blen);
    if ((st = envelope_seal(blob, blen, &blen, fmt, kek, it->ctx, it->ctx_len, pt, pt_len)) !=
        ST_OK)
        goto out;
    *used = kek_version(kek);
    size_t tlen = envelope_text_len(*used, blen);
    sbuf_reserve(out, tlen + 3);
    out->p[out->len++] = '"';
    out->len += envelope_format_text(out->p + out->len, tlen + 1, *used, blob, blen);
    out->p[out->len++] = '"';
    out->p[out->len] = '\0';
out:
    if (blob != small)
        free(blob);
    return st;
}

/* Open it->ct into a new wiped-on-free buffer (*pt, capacity *cap). */
static enum status
open_ct(struct opctx *c, struct item *it, uint8_t **pt, size_t *pt_len, size_t *cap)
{
    struct envelope env;
    const struct kek *kek = NULL;
    size_t bcap = b64_decoded_max(it->ct_len) + 1;
    uint8_t small[SMALL_BYTES + ENVELOPE_MAX_OVERHEAD];
    uint8_t *blob = bcap <= sizeof small ? small : xmalloc(bcap);
    uint32_t used_version = 0;
    enum status st;

    *pt = NULL;
    *pt_len = *cap = 0;
    if ((st = envelope_parse_text(&env, blob, bcap, it->ct, it->ct_len)) != ST_OK)
        goto out;
    if (env.format != keyrings_format(&c->use)) {
        st = ST_AUTH; /* made by another keyring: say no more than that it failed */
        goto out;
    }
    used_version = env.version;
    if ((st = keyrings_kek_decrypt(&c->use, env.version, &kek)) != ST_OK)
        goto out;
    *cap = envelope_plaintext_len(&env) + 1;
    *pt = xmalloc(*cap);
    st = envelope_open(*pt, *cap, pt_len, &env, kek, it->ctx, it->ctx_len);
out:
    if (used_version != 0)
        it->used_version = used_version;
    if (blob != small)
        free(blob);
    return st;
}

static void
wipe_free(uint8_t *p, size_t cap)
{
    if (p != NULL)
        sodium_memzero(p, cap);
    free(p);
}

static void
add_b64(struct sbuf *out, const uint8_t *p, size_t n)
{
    size_t el = b64_std_len(n);
    sbuf_reserve(out, el + 3);
    out->p[out->len++] = '"';
    out->len += b64_std_encode(out->p + out->len, el + 1, p, n);
    out->p[out->len++] = '"';
    out->p[out->len] = '\0';
}

static enum status
run_item(struct opctx *c, enum crypto_op op, struct item *it, struct sbuf *out)
{
    uint8_t *pt = NULL;
    size_t pt_len = 0, cap = 0;
    uint32_t ver = 0;
    enum status st = ST_OK;

    switch (op) {
    case OP_ENCRYPT:
    case OP_REWRAP:
        if (op == OP_REWRAP && (st = open_ct(c, it, &pt, &pt_len, &cap)) != ST_OK)
            break;
        sbuf_adds(out, "{\"ciphertext\":");
        if (op == OP_ENCRYPT)
            st = seal_to(c, it, it->version, it->pt, it->pt_len, out, &ver);
        else
            st = seal_to(c, it, 0, pt, pt_len, out, &ver);
        if (st == ST_OK)
            sbuf_add_u32(out, ",\"key_version\":", ver);
        break;
    case OP_DECRYPT:
        if ((st = open_ct(c, it, &pt, &pt_len, &cap)) != ST_OK)
            break;
        if (c->raw_out) {
            sbuf_add(out, pt, pt_len);
            break;
        }
        sbuf_adds(out, "{\"plaintext\":");
        add_b64(out, pt, pt_len);
        if (context_utf8_valid((const char *)pt, pt_len)) {
            sbuf_adds(out, ",\"text\":");
            sbuf_add_jstr(out, (const char *)pt, pt_len);
        }
        break;
    case OP_DATAKEY:
        if (it->include_plaintext &&
            !principal_allows(&c->r->principal, SCOPE_DATAKEY_PLAINTEXT, c->r->p1)) {
            it->msg = "scope: include_plaintext needs the datakey:plaintext scope";
            st = ST_FORBIDDEN;
            break;
        }
        cap = DATAKEY_BYTES;
        pt = xmalloc(cap);
        randombytes_buf(pt, cap);
        sbuf_adds(out, "{\"wrapped_key\":");
        if ((st = seal_to(c, it, 0, pt, cap, out, &ver)) != ST_OK)
            break;
        sbuf_add_u32(out, ",\"key_version\":", ver);
        if (it->include_plaintext) {
            sbuf_adds(out, ",\"plaintext_key\":");
            add_b64(out, pt, cap);
        }
        break;
    }
    if (ver != 0)
        it->used_version = ver;
    wipe_free(pt, cap);
    return st;
}

/* Parse and run one item, appending its result object (without the closing brace) to out.
 * On failure out is rolled back and the status returned. */
static enum status
one_item(struct opctx *c, enum crypto_op op, const json_t *o, bool batch, struct sbuf *out,
         const char **msg)
{
    struct item it = {0};
    size_t mark = out->len;
    enum status st;

    if ((st = parse_item(&it, op, o, batch, c->r)) == ST_OK)
        st = run_item(c, op, &it, out);
    c->outcomes[(unsigned)st < ST__COUNT ? st : ST_INTERNAL]++;
    if (batch)
        req_audit_item(c->r, st == ST_OK, it.used_version);
    else
        c->r->au.key_version = it.used_version;
    if (st != ST_OK) {
        if (out->secret)
            sodium_memzero(out->p + mark, out->len - mark);
        out->len = mark;
        if (out->p != NULL)
            out->p[mark] = '\0';
        *msg = it.msg;
    }
    item_free(&it);
    return st;
}

static const char *
status_error_code(enum status st)
{
    return st == ST_IO ? "internal" : status_name(st);
}

static void
add_reference(struct sbuf *out, const json_t *o)
{
    const json_t *ref = json_is_object(o) ? json_object_get(o, "reference") : NULL;
    if (ref != NULL && json_is_string(ref)) {
        sbuf_adds(out, ",\"reference\":");
        sbuf_add_jstr(out, json_string_value(ref), json_string_length(ref));
    }
}

static void
run_batch(struct opctx *c, enum crypto_op op, const json_t *items, struct sbuf *out)
{
    const char *msg = NULL;
    size_t i, ok = 0, failed = 0;
    json_t *o;

    sbuf_adds(out, "{\"items\":[");
    json_array_foreach (items, i, o) {
        const json_t *ref = json_is_object(o) ? json_object_get(o, "reference") : NULL;
        enum status st;
        if (i > 0)
            sbuf_add(out, ",", 1);
        if (ref != NULL && (!json_is_string(ref) || json_string_length(ref) > REFERENCE_MAX)) {
            st = ST_INVALID;
            c->outcomes[ST_INVALID]++;
            msg = "reference must be a string of at most 256 bytes";
        } else {
            st = one_item(c, op, o, true, out, &msg);
        }
        if (st == ST_OK)
            ok++;
        else
            failed++;
        if (st != ST_OK) {
            /* The same code and message a single call answers with. */
            sbuf_adds(out, "{\"error\":{\"code\":\"");
            sbuf_adds(out, status_error_code(st));
            sbuf_adds(out, "\",\"message\":");
            const char *text = msg != NULL ? msg : http_status_text(st);
            sbuf_add_jstr(out, text, strlen(text));
            sbuf_adds(out, "}");
        }
        if (ref != NULL && json_is_string(ref) && json_string_length(ref) <= REFERENCE_MAX) {
            add_reference(out, o);
            req_audit_reference(c->r, json_string_value(ref), json_string_length(ref));
        }
        sbuf_adds(out, "}");
        msg = NULL;
    }
    /* The answer is 200 whatever the items' outcomes: the counts say how many failed. */
    sbuf_addf(out, "],\"ok\":%zu,\"failed\":%zu}", ok, failed);
}

/* Check sizes and shape; *items is the batch array or NULL for a single call. */
static enum status
classify(struct req *r, const json_t *body, const json_t **items, const char **msg)
{
    static const char *const batch_only[] = {"items", NULL};
    const struct http_limits *lim = &r->svc->limits;

    *items = json_object_get(body, "items");
    if (*items == NULL) {
        return r->body_len > lim->max_body_bytes ? ST_TOO_LARGE : ST_OK;
    }
    if (jx_only(body, batch_only, msg) != ST_OK || !json_is_array(*items) ||
        json_array_size(*items) == 0) {
        *msg = "items must be a non-empty array and the only field of a batch";
        return ST_INVALID;
    }
    if (json_array_size(*items) > lim->max_batch_items || r->body_len > lim->max_batch_bytes)
        return ST_BATCH_TOO_LARGE;
    return ST_OK;
}

/* application/octet-stream encrypt: the body is the plaintext, the context a base64url JSON
 * object in X-Difyguard-Context, the key version in ?key_version=. */
static enum status
octet_item(struct req *r, struct item *it, json_t **ctx_json)
{
    const char *h = req_header(r, "X-Difyguard-Context");
    const char *kv = req_query(r, "key_version");
    uint8_t *buf = NULL;
    size_t len = 0;
    enum status st = ST_OK;

    *ctx_json = NULL;
    if (r->body_len > r->svc->limits.max_body_bytes)
        return ST_TOO_LARGE;
    if (kv != NULL) {
        char *end;
        unsigned long long v = strtoull(kv, &end, 10);
        if (*kv < '1' || *kv > '9' || *end != '\0' || v > UINT32_MAX) {
            it->msg = "key_version must be a positive integer";
            return ST_INVALID;
        }
        it->version = (uint32_t)v;
    }
    if (h != NULL) {
        size_t cap = b64_decoded_max(strlen(h)) + 1;
        buf = xmalloc(cap);
        it->msg = "X-Difyguard-Context must be the base64url of a JSON object";
        if (b64_url_decode(buf, cap, &len, h, strlen(h)) != ST_OK ||
            jx_parse_object(ctx_json, (const char *)buf, len, &it->msg) != ST_OK)
            st = ST_INVALID;
        free(buf);
        if (st != ST_OK)
            return st;
        it->msg = NULL;
    }
    if ((st = parse_context(it, *ctx_json, r)) != ST_OK)
        return st;
    it->pt = (const uint8_t *)(r->body != NULL ? r->body : "");
    it->pt_len = r->body_len;
    return ST_OK;
}

static bool
is_octet(const char *ct)
{
    return ct != NULL && strncasecmp(ct, "application/octet-stream", 24) == 0;
}

/* The request's items in difyguard_crypto_operations_total (a request refused as a whole
 * counts once, with its error), a batch's size, and the key lookup and crypto spans. */
static void
count_ops(struct opctx *c, enum crypto_op op, enum status st, size_t batch_items)
{
    struct req *r = c->r;
    enum opstats_op o = (enum opstats_op)op;
    const char *keyring = c->acquired ? r->p1 : "";
    uint64_t total = 0;

    for (size_t i = 0; i < ST__COUNT; i++)
        total += c->outcomes[i];
    if (total == 0 && st != ST_OK)
        c->outcomes[(unsigned)st < ST__COUNT ? st : ST_INTERNAL] = 1;
    for (size_t i = 0; i < ST__COUNT; i++)
        op_stats_crypto(r->svc->op_stats, o, keyring, r->principal.app, status_name((enum status)i),
                        c->outcomes[i]);
    if (batch_items > 0)
        op_stats_batch(r->svc->op_stats, o, batch_items);
}

void
h_crypto(struct req *r, enum crypto_op op)
{
    struct opctx c = {.r = r};
    struct sbuf out = {.secret = op == OP_DECRYPT || op == OP_DATAKEY};
    json_t *body = NULL, *ctx_json = NULL;
    const json_t *items = NULL;
    const char *msg = NULL;
    struct item oit = {0};
    bool octet_in = op == OP_ENCRYPT && is_octet(req_header(r, "Content-Type"));
    bool octet_out = op == OP_DECRYPT && is_octet(req_header(r, "Accept"));
    int64_t t0 = r->trace.sampled ? trace_now_ns() : 0, t1 = 0;
    enum status st;

    /* The route table has checked the operation's scope and the keyring allow-list. */
    if (octet_in)
        st = octet_item(r, &oit, &ctx_json);
    else if ((st = jx_parse_object(&body, r->body, r->body_len, &msg)) == ST_OK)
        st = classify(r, body, &items, &msg);
    if (st == ST_OK) {
        st = keyrings_acquire(r->svc->keyrings, r->p1, &c.use);
        req_span(r, "key lookup", t0, st);
        t1 = r->trace.sampled ? trace_now_ns() : 0;
    }
    if (st == ST_OK) {
        c.acquired = true;
        if (op == OP_DATAKEY && keyrings_format(&c.use) == ENVELOPE_AES256SIV) {
            st = ST_INVALID;
            msg = "datakey needs a randomized (non-deterministic) keyring";
        } else if (octet_in) {
            sbuf_adds(&out, "{\"ciphertext\":");
            uint32_t ver = 0;
            if ((st = seal_to(&c, &oit, oit.version, oit.pt, oit.pt_len, &out, &ver)) == ST_OK) {
                sbuf_add_u32(&out, ",\"key_version\":", ver);
                sbuf_adds(&out, "}");
                r->au.key_version = ver;
            }
        } else if (items != NULL) {
            run_batch(&c, op, items, &out);
        } else {
            c.raw_out = octet_out;
            if ((st = one_item(&c, op, body, false, &out, &msg)) == ST_OK && !c.raw_out)
                sbuf_adds(&out, "}");
        }
        keyrings_release(&c.use);
        req_span(r, "crypto", t1, st);
    }
    count_ops(&c, op, st, items != NULL ? json_array_size(items) : 0);
    if (octet_in && msg == NULL)
        msg = oit.msg;
    item_free(&oit);
    json_decref(ctx_json);
    json_decref(body);
    if (st != ST_OK) {
        sbuf_free(&out);
        req_fail(r, st, or_not_found(st, msg, "keyring not found"));
    } else if (c.raw_out) {
        req_reply_raw(r, 200, "application/octet-stream", &out);
    } else {
        req_reply_json(r, 200, &out);
    }
}

void
h_encrypt(struct req *r)
{
    h_crypto(r, OP_ENCRYPT);
}

void
h_decrypt(struct req *r)
{
    h_crypto(r, OP_DECRYPT);
}

void
h_rewrap(struct req *r)
{
    h_crypto(r, OP_REWRAP);
}

void
h_datakey(struct req *r)
{
    h_crypto(r, OP_DATAKEY);
}

enum status
crypto_request_check(enum crypto_op op, const char *body, size_t len, size_t *n_items)
{
    json_t *j = NULL;
    const char *msg = NULL;
    enum status st;

    *n_items = 0;
    if ((st = jx_parse_object(&j, body, len, &msg)) != ST_OK)
        return st;
    const json_t *items = json_object_get(j, "items");
    if (items == NULL) {
        struct item it = {0};
        st = parse_item(&it, op, j, false, NULL);
        item_free(&it);
        *n_items = 1;
    } else if (!json_is_array(items)) {
        st = ST_INVALID;
    } else {
        size_t i;
        json_t *o;
        json_array_foreach (items, i, o) {
            struct item it = {0};
            if (parse_item(&it, op, o, true, NULL) == ST_OK)
                (*n_items)++;
            item_free(&it);
        }
    }
    json_decref(j);
    return st;
}
