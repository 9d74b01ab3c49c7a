/* SPDX-License-Identifier: Apache-2.0 */
/* policies/report.c -- the signed JSON report: its body, its signature, and the offline
 * verification of both (see report.h). The verifier reads the file byte for byte: a fixed
 * prefix, the body, a fixed-form signature member; nothing is normalised before it is checked. */
#include "policies/report.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/clock.h"
#include "common/text.h"
#include "common/xmem.h"
#include "crypto/b64.h"

#define DOMAIN REPORT_FORMAT "\n"
#define PREFIX "{\"report\":"
#define SIG_A ",\"signature\":{\"algorithm\":\"ed25519\",\"key_id\":\""
#define SIG_B "\",\"sig\":\""
#define SIG_C "\"}}\n"
#define SIG_B64 88
#define SUFFIX_LEN                                                                                 \
    (sizeof SIG_A - 1 + SIGN_KEY_ID_CHARS + sizeof SIG_B - 1 + SIG_B64 + sizeof SIG_C - 1)

static json_t *
time_json(int64_t t)
{
    char buf[32];
    clock_rfc3339(buf, t);
    return json_string(buf);
}

static json_t *
counts_json(const size_t counts[static CTL__COUNT], size_t total)
{
    json_t *o = json_pack("{s:I}", "controls", (json_int_t)total);
    for (size_t r = 0; r < CTL__COUNT; r++)
        json_object_set_new(o, ctl_result_name((enum ctl_result)r),
                            json_integer((json_int_t)counts[r]));
    return o;
}

static json_t *
control_json(const struct ctl_eval *e, int64_t at)
{
    const struct control *c = e->control;
    json_t *refs = json_array(), *params = json_object(), *evidence = json_array();

    for (size_t i = 0; i < c->n_refs; i++)
        json_array_append_new(refs, json_string(c->refs[i]));
    for (size_t i = 0; i < c->check->n_params; i++)
        json_object_set_new(params, c->check->params[i].name, json_string(c->params[i].text));
    for (size_t i = 0; i < e->out.n_findings; i++) {
        const struct finding *f = &e->out.findings[i];
        json_array_append_new(evidence, json_pack("{s:s, s:b, s:s}", "subject", f->subject, "ok",
                                                  f->ok, "detail", f->detail));
    }
    return json_pack("{s:s, s:s, s:o, s:s, s:s, s:o, s:s, s:s, s:I, s:I, s:o, s:o}", "id", c->id,
                     "title", c->title, "refs", refs, "severity", severity_name(c->severity),
                     "check", c->check->name, "params", params, "result",
                     ctl_result_name(e->out.result), "summary", e->out.summary, "checked",
                     (json_int_t)e->out.checked, "failing", (json_int_t)e->out.failing, "evidence",
                     evidence, "evaluated_at", time_json(at));
}

static json_t *
pack_json(const struct evaluation *ev)
{
    const struct pack *p = ev->pack;
    json_t *ctls = json_array();

    for (size_t i = 0; i < ev->n; i++)
        json_array_append_new(ctls, control_json(&ev->items[i], ev->evaluated_at));
    return json_pack("{s:s, s:s, s:s, s:s, s:o, s:o}", "id", p->id, "name", p->name, "framework",
                     p->framework, "version", p->version, "summary", counts_json(ev->counts, ev->n),
                     "controls", ctls);
}

static int
to_sbuf(const char *buf, size_t size, void *data)
{
    sbuf_add(data, buf, size);
    return 0;
}

void
report_json_body(struct sbuf *out, const struct report_meta *m, const struct evaluation *ev,
                 size_t n)
{
    size_t counts[CTL__COUNT] = {0}, total = 0;
    int64_t evaluated = n > 0 ? ev[0].evaluated_at : m->generated_at;
    json_t *packs = json_array(), *heads = json_array();

    for (size_t i = 0; i < n; i++) {
        json_array_append_new(packs, pack_json(&ev[i]));
        for (size_t r = 0; r < CTL__COUNT; r++)
            counts[r] += ev[i].counts[r];
        total += ev[i].n;
    }
    for (size_t i = 0; i < m->n_heads; i++)
        json_array_append_new(heads,
                              json_pack("{s:s, s:I, s:s}", "chain_id", m->heads[i].chain_id, "seq",
                                        (json_int_t)m->heads[i].seq, "hash", m->heads[i].hash));
    json_t *body =
        json_pack("{s:s, s:{s:s, s:s, s:s, s:s}, s:o, s:o, s:o, s:o, s:o}", "format", REPORT_FORMAT,
                  "service", "name", m->service, "version", m->version, "instance", m->instance,
                  "root_key_id", m->root_key_id, "generated_at", time_json(m->generated_at),
                  "evaluated_at", time_json(evaluated), "summary", counts_json(counts, total),
                  "packs", packs, "audit_heads", heads);
    if (body == NULL)
        abort(); /* a NULL string: a caller bug, or out of memory */
    json_dump_callback(body, to_sbuf, out, JSON_COMPACT);
    json_decref(body);
}

static void
message(struct sbuf *m, const char *body, size_t len)
{
    m->len = 0;
    sbuf_add(m, DOMAIN, sizeof DOMAIN - 1);
    sbuf_add(m, body, len);
}

void
report_sign(struct sbuf *out, const char *body, size_t len, const struct secret *sk)
{
    uint8_t pk[SIGN_PK_BYTES], sig[SIGN_SIG_BYTES];
    char id[SIGN_KEY_ID_CHARS + 1], b64[SIG_B64 + 1];
    struct sbuf m = {0};

    message(&m, body, len);
    sign_detached(sig, sk, (const uint8_t *)m.p, m.len);
    sign_public_key(pk, sk);
    sign_key_id(id, pk);
    b64_std_encode(b64, sizeof b64, sig, sizeof sig);
    sbuf_add(out, PREFIX, sizeof PREFIX - 1);
    sbuf_add(out, body, len);
    sbuf_addf(out, SIG_A "%s" SIG_B "%s" SIG_C, id, b64);
    sbuf_free(&m);
}

/* --- verification --- */

static enum status
fail(char *err, size_t err_len, const char *msg)
{
    snprintf(err, err_len, "%s", msg);
    return ST_AUTH;
}

/* The signature member: exactly its fixed form; the key id and signature out. */
static bool
suffix_parse(const char *s, char id[static SIGN_KEY_ID_CHARS + 1],
             uint8_t sig[static SIGN_SIG_BYTES])
{
    const char *p = s;
    size_t n = 0;

    if (memcmp(p, SIG_A, sizeof SIG_A - 1) != 0)
        return false;
    p += sizeof SIG_A - 1;
    if (strspn(p, "0123456789abcdef") < SIGN_KEY_ID_CHARS)
        return false;
    memcpy(id, p, SIGN_KEY_ID_CHARS);
    id[SIGN_KEY_ID_CHARS] = '\0';
    p += SIGN_KEY_ID_CHARS;
    if (memcmp(p, SIG_B, sizeof SIG_B - 1) != 0)
        return false;
    p += sizeof SIG_B - 1;
    if (b64_std_decode(sig, SIGN_SIG_BYTES, &n, p, SIG_B64) != ST_OK || n != SIGN_SIG_BYTES)
        return false;
    p += SIG_B64;
    return memcmp(p, SIG_C, sizeof SIG_C) == 0; /* with its NUL: nothing after */
}

static bool
head_parse(struct report_head *h, const json_t *o)
{
    const char *id = json_string_value(json_object_get(o, "chain_id"));
    const char *hash = json_string_value(json_object_get(o, "hash"));
    const json_t *seq = json_object_get(o, "seq");

    if (id == NULL || hash == NULL || !json_is_integer(seq) || json_integer_value(seq) < 1 ||
        strlen(id) == 0 || strlen(id) > REPORT_CHAIN_ID_MAX || strchr(id, ':') != NULL ||
        !text_copy_safe(h->chain_id, sizeof h->chain_id, id) || strlen(hash) != REPORT_HASH_HEX ||
        strspn(hash, "0123456789abcdef") != REPORT_HASH_HEX)
        return false;
    h->seq = (uint64_t)json_integer_value(seq);
    memcpy(h->hash, hash, REPORT_HASH_HEX + 1);
    return true;
}

static const char *
str_or_empty(const json_t *j)
{
    const char *s = json_string_value(j);
    return s != NULL ? s : "";
}

/* What the signed body says. Signed, but still read defensively. */
static enum status
summarize(struct report_summary *s, const json_t *body, char *err, size_t err_len)
{
    const json_t *packs = json_object_get(body, "packs"), *heads;
    json_t *p, *c, *h;
    size_t i, j;

    if (strcmp(str_or_empty(json_object_get(body, "format")), REPORT_FORMAT) != 0 ||
        !json_is_array(packs))
        return fail(err, err_len, "signed, but not a difyguard compliance report (format)");
    text_copy_safe(s->generated_at, sizeof s->generated_at,
                   str_or_empty(json_object_get(body, "generated_at")));
    text_copy_safe(s->version, sizeof s->version,
                   str_or_empty(json_object_get(json_object_get(body, "service"), "version")));
    text_copy_safe(s->instance, sizeof s->instance,
                   str_or_empty(json_object_get(json_object_get(body, "service"), "instance")));
    json_array_foreach (packs, i, p) {
        s->packs++;
        json_array_foreach (json_object_get(p, "controls"), j, c) {
            const char *r = str_or_empty(json_object_get(c, "result"));
            for (size_t k = 0; k < CTL__COUNT; k++)
                s->counts[k] += strcmp(r, ctl_result_name((enum ctl_result)k)) == 0;
            s->controls++;
        }
    }
    heads = json_object_get(body, "audit_heads");
    s->heads = xcalloc(json_array_size(heads) + 1, sizeof *s->heads);
    json_array_foreach (heads, i, h) {
        if (!head_parse(&s->heads[s->n_heads++], h))
            return fail(err, err_len, "signed, but an audit head is malformed");
    }
    return ST_OK;
}

enum status
report_verify(const char *text, size_t len, const uint8_t (*keys)[SIGN_PK_BYTES], size_t n_keys,
              struct report_summary *out, char *err, size_t err_len)
{
    const size_t pre = sizeof PREFIX - 1;
    uint8_t sig[SIGN_SIG_BYTES];
    char id[SIGN_KEY_ID_CHARS + 1], kid[SIGN_KEY_ID_CHARS + 1], *tail = NULL;
    struct sbuf m = {0};
    json_t *body = NULL;
    bool named = false, good = false;
    enum status st = ST_INVALID;

    memset(out, 0, sizeof *out);
    if (text == NULL || keys == NULL || n_keys == 0) {
        snprintf(err, err_len, "no report or no public key");
        goto out;
    }
    st = ST_AUTH;
    if (len > REPORT_TEXT_MAX || len < pre + 2 + SUFFIX_LEN || memcmp(text, PREFIX, pre) != 0) {
        fail(err, err_len,
             "not a signed report: it must start with {\"report\": and end with "
             "its signature");
        goto out;
    }
    tail = xstrndup(text + len - SUFFIX_LEN, SUFFIX_LEN); /* NUL-terminated for the parse */
    if (strlen(tail) != SUFFIX_LEN || !suffix_parse(tail, id, sig)) {
        fail(err, err_len, "the signature member is missing or not in its exact form");
        goto out;
    }
    const char *b = text + pre;
    size_t blen = len - pre - SUFFIX_LEN;
    if ((body = json_loadb(b, blen, JSON_REJECT_DUPLICATES, NULL)) == NULL ||
        !json_is_object(body)) {
        fail(err, err_len, "the report body is not one JSON object");
        goto out;
    }
    message(&m, b, blen);
    for (size_t i = 0; i < n_keys; i++) {
        sign_key_id(kid, keys[i]);
        if (strcmp(kid, id) != 0)
            continue;
        named = true;
        good |= sign_verify(sig, (const uint8_t *)m.p, m.len, keys[i]) == ST_OK;
    }
    if (!named) {
        snprintf(err, err_len, "signed by key %s, which is not one of the given public keys", id);
        goto out;
    }
    if (!good) {
        fail(err, err_len, "the signature does not verify: the report was altered");
        goto out;
    }
    snprintf(out->key_id, sizeof out->key_id, "%s", id);
    st = summarize(out, body, err, err_len);
out:
    if (st != ST_OK)
        report_summary_free(out);
    json_decref(body);
    sbuf_free(&m);
    free(tail);
    return st;
}

void
report_summary_free(struct report_summary *s)
{
    if (s == NULL)
        return;
    free(s->heads);
    memset(s, 0, sizeof *s);
}
