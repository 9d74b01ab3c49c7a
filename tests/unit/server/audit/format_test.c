/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/server/audit/format_test.c -- the audit trail format: golden lines, the documented hash
 * and signing message, a valid two-chain trail, and every tampering the issue names; then the
 * `difyguard audit verify` command end to end on temp files. Includes the .c for its helpers. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli/audit_verify.h"
#include "server/audit/format.c"
#include "server/audit/verify.c"
#include "server/audit/verify_checkpoint.c"
#include "server/audit/verify_heads.c"

#define MAX_LINES 64

/* ---- keys: fixed seeds, shared with fuzz/fuzz_audit_verify.c (its corpus is made here) ----- */

static struct secret *sk[3];
static uint8_t pk[3][AUDIT_PK_BYTES];
static struct audit_signer signer[3];
static char pk_b64[3][PK_B64_CHARS + 1];

static void
keys_init(void)
{
    uint8_t seed[crypto_sign_ed25519_SEEDBYTES];

    for (int k = 0; k < 3; k++) {
        for (size_t i = 0; i < sizeof seed; i++)
            seed[i] = (uint8_t)(0x40 * (size_t)k + i + 1); /* the fuzz driver uses k = 0 */
        sk[k] = secret_new(AUDIT_SK_BYTES);
        crypto_sign_ed25519_seed_keypair(pk[k], secret_rw(sk[k]), seed);
        auditfmt_key_id(signer[k].key_id, pk[k]);
        signer[k].sk = sk[k];
        b64_std_encode(pk_b64[k], sizeof pk_b64[k], pk[k], AUDIT_PK_BYTES);
    }
}

/* ---- a trail made of lines ----------------------------------------------------------------- */

struct lines {
    char *l[MAX_LINES];
    size_t n;
};

struct chainst {
    const char *id;
    uint64_t seq;
    uint8_t hash[AUDIT_HASH_BYTES];
};

enum variant {
    V_NORMAL,        /* K0 signs, a key change hands over to K1 */
    V_RESIGN,        /* an attacker's K2 signs where K0 did */
    V_EARLY_NEW_KEY, /* K1 signs checkpoints made before the key change introduced it */
};

struct builder {
    struct lines ls;
    struct chainst a, b;
    int64_t t;
    enum variant var;
    bool changed; /* the key change happened */
};

static void
lines_free(struct lines *ls)
{
    for (size_t i = 0; i < ls->n; i++)
        free(ls->l[i]);
    ls->n = 0;
}

static void
push(struct lines *ls, struct sbuf *s)
{
    size_t len;
    assert_true(ls->n < MAX_LINES);
    ls->l[ls->n++] = sbuf_take(s, &len);
}

/* The lines joined, each with its "\n". */
static char *
join(const struct lines *ls, size_t *len)
{
    struct sbuf s = {0};
    for (size_t i = 0; i < ls->n; i++) {
        sbuf_adds(&s, ls->l[i]);
        sbuf_add(&s, "\n", 1);
    }
    return sbuf_take(&s, len);
}

static const char *const ctx2[] = {
    "6d1c2b0e9b3a4f5e6d7c8b9a0f1e2d3c4b5a69788796a5b4c3d2e1f00112233",
    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"};
static const char *const refs2[] = {"7e57", "ab12"};
static const uint32_t vers[] = {1, 3}, vcounts[] = {2, 1};

/* Three kinds of events by seq: a batch encrypt, coalesced 401s, a decrypt. */
static void
fill_event(struct audit_event *e, uint64_t seq)
{
    e->op = "encrypt";
    e->method = "POST";
    e->status = 200;
    e->outcome = "ok";
    e->latency_us = (int64_t)(seq * 37);
    e->count = 1;
    e->hmac_key_id = "a1b2c3d4e5f60718";
    if (seq % 3 == 0) {
        e->route = "/v1/keyrings/{name}/encrypt";
        e->app = "dify-api";
        e->key_id = "k_7Hq2";
        e->keyring = "tenant-\"q\"\\\xc3\xa9"; /* quote, backslash, UTF-8 */
        e->items_total = 3, e->items_ok = 3;
        e->n_versions = 2, e->versions = vers, e->version_counts = vcounts;
        e->trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
        e->h_reference = refs2, e->n_h_reference = 2;
        e->h_context = ctx2, e->n_h_context = 2;
    } else if (seq % 3 == 1) {
        e->op = "auth", e->route = "/v1/keyrings/{name}/decrypt";
        e->status = 401, e->outcome = "denied", e->count = 3;
        e->h_client = "c0ffee", e->h_key_id = "deadbeef";
    } else {
        e->op = "decrypt", e->route = "/v1/keyrings/{name}/decrypt";
        e->app = "dify-worker", e->keyring = "tenant-1", e->key_version = 3;
        e->h_request_id = "0a0b", e->h_sub = "5ub", e->h_context = ctx2, e->n_h_context = 1;
        e->client_cert = "CN=dify-worker,O=Dify \xc3\xa9\"q\""; /* mTLS subject (issue 9) */
        e->cert_id = "ingress-tls";
    }
}

static void
b_event(struct builder *b, struct chainst *c)
{
    struct audit_event e = {0};
    struct sbuf s = {0};

    fill_event(&e, c->seq + 1);
    e.chain_id = c->id;
    e.seq = ++c->seq;
    memcpy(e.prev_hash, c->hash, AUDIT_HASH_BYTES);
    e.time_ms = b->t += 1234;
    assert_int_equal(auditfmt_event(&s, c->hash, &e), ST_OK);
    push(&b->ls, &s);
}

static void
b_cp(struct builder *b, struct chainst *c, const char *kind)
{
    struct audit_checkpoint cp = {c->id, c->seq, {0}, b->t += 1000, kind, NULL, NULL};
    struct audit_signer who[2] = {signer[0], signer[1]};
    size_t n = 1;
    struct sbuf s = {0};

    memcpy(cp.hash, c->hash, AUDIT_HASH_BYTES);
    if (b->var == V_RESIGN)
        who[0] = signer[2];
    if (strcmp(kind, "key_change") == 0) {
        cp.new_key_id = signer[1].key_id, cp.new_public_key = pk[1], n = 2;
        b->changed = true;
    } else if (b->changed || b->var == V_EARLY_NEW_KEY) {
        who[0] = signer[1];
    }
    assert_int_equal(auditfmt_checkpoint(&s, &cp, who, n), ST_OK);
    push(&b->ls, &s);
}

/* Line numbers of the standard trail (1-based), used by the tamper tests. */
enum {
    L_A1 = 1,
    L_A2,
    L_ANCHOR_B,
    L_B11,
    L_A3,
    L_CP_A3,
    L_B12,
    L_A4,
    L_KEYCHANGE,
    L_B13,
    L_A5,
    L_CP_B13,
    L_A6,
    L_B14,
    L_EXPORT_A,
    L_EXPORT_B,
    L__N = L_EXPORT_B
};

/* Chain "node-a" from seq 1 with a periodic checkpoint and a key change; chain "node-b" from an
 * anchor at seq 10 (events up to 10 pruned); both end with export checkpoints. */
static void
build(struct builder *b, enum variant var)
{
    memset(b, 0, sizeof *b);
    b->var = var;
    b->t = INT64_C(1795897260000); /* 2026-11-28T20:21:00.000Z */
    b->a.id = "node-a";
    b->b.id = "node-b";
    b->b.seq = 10;
    memset(b->b.hash, 0xab, AUDIT_HASH_BYTES);
    b_event(b, &b->a);
    b_event(b, &b->a);
    b_cp(b, &b->b, "anchor");
    b_event(b, &b->b);
    b_event(b, &b->a);
    b_cp(b, &b->a, "periodic");
    b_event(b, &b->b);
    b_event(b, &b->a);
    b_cp(b, &b->a, "key_change");
    b_event(b, &b->b);
    b_event(b, &b->a);
    b_cp(b, &b->b, "periodic");
    b_event(b, &b->a);
    b_event(b, &b->b);
    b_cp(b, &b->a, "export");
    b_cp(b, &b->b, "export");
    assert_int_equal(b->ls.n, L__N);
}

static enum status
verify_keys(const char *text, size_t len, const uint8_t (*keys)[AUDIT_PK_BYTES], size_t n,
            const char *since, struct audit_verify_result *r)
{
    return audit_verify(text, len, keys, n, since, since ? strlen(since) : 0, r);
}

/* Verify with K0 only; returns the failing line (0 when valid). */
static uint64_t
verify0(const char *text, size_t len, struct audit_verify_result *r)
{
    enum status st = verify_keys(text, len, pk, 1, NULL, r);
    assert_true(st == ST_OK || st == ST_AUTH);
    assert_true((st == ST_OK) == (r->line == 0 && r->error[0] == '\0'));
    return st == ST_OK ? 0 : r->line;
}

static uint64_t
verify_lines0(const struct lines *ls, struct audit_verify_result *r)
{
    size_t len;
    char *text = join(ls, &len);
    uint64_t line = verify0(text, len, r);
    free(text);
    return line;
}

static void
expect_fail(const struct lines *ls, uint64_t line, const char *words)
{
    struct audit_verify_result r;
    uint64_t got = verify_lines0(ls, &r);

    if (got != line || strstr(r.error, words) == NULL)
        fail_msg("want line %llu \"%s\", got line %llu: %s", (unsigned long long)line, words,
                 (unsigned long long)got, r.error);
}

/* ---- tests --------------------------------------------------------------------------------- */

static void
test_time_format(void **state)
{
    static const struct {
        int64_t ms;
        const char *text;
    } cases[] = {
        {0, "1970-01-01T00:00:00.000Z"},
        {INT64_C(951782400001), "2000-02-29T00:00:00.001Z"},
        {INT64_C(1709251199999), "2024-02-29T23:59:59.999Z"},
        {INT64_C(1795897260123), "2026-11-28T20:21:00.123Z"},
        {TIME_MAX_MS, "9999-12-31T23:59:59.999Z"},
    };
    static const char *const bad[] = {
        "2026-02-29T00:00:00.000Z", "2026-13-01T00:00:00.000Z", "2026-11-28T24:00:00.000Z",
        "2026-11-28T20:21:60.000Z", "1969-12-31T23:59:59.999Z", "2026-11-28T20:21:00.12Z",
        "2026-11-28T20:21:00.123+", "2026-11-28 20:21:00.123Z", "2026-11-28T20:21:00Z",
        "+026-11-28T20:21:00.123Z", "2100-02-29T00:00:00.000Z",
    };
    char out[TIME_CHARS + 1];

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        time_format(out, cases[i].ms);
        assert_string_equal(out, cases[i].text);
        assert_true(afmt_time_ok(out, TIME_CHARS));
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(afmt_time_ok(bad[i], strlen(bad[i])));
    assert_true(afmt_time_ok("2000-02-29T12:00:00.000Z", TIME_CHARS));
}

/* The exact line for a small event, and its hash recomputed by the documented rule. */
static void
test_event_golden(void **state)
{
    static const char want[] =
        "{\"type\":\"event\",\"chain_id\":\"node-a\",\"seq\":1,\"prev_hash\":\""
        "0000000000000000000000000000000000000000000000000000000000000000\",\"time\":"
        "\"2026-11-28T20:21:00.123Z\",\"op\":\"keyring.create\",\"method\":\"POST\",\"route\":"
        "\"/v1/keyrings\",\"status\":201,\"outcome\":\"ok\",\"latency_us\":-5,\"app\":\"admin\","
        "\"key_id\":null,\"keyring\":\"t1\",\"key_version\":1,\"items\":{\"total\":2,\"ok\":1,"
        "\"failed\":1,\"versions\":{}},\"trace_id\":null,\"count\":1,\"hmac_key_id\":null,"
        "\"hmac\":{}";
    struct audit_event e = {.chain_id = "node-a",
                            .seq = 1,
                            .time_ms = INT64_C(1795897260123),
                            .op = "keyring.create",
                            .method = "POST",
                            .route = "/v1/keyrings",
                            .status = 201,
                            .outcome = "ok",
                            .latency_us = -5,
                            .app = "admin",
                            .keyring = "t1",
                            .key_version = 1,
                            .items_total = 2,
                            .items_ok = 1,
                            .items_failed = 1,
                            .count = 1};
    uint8_t hash[AUDIT_HASH_BYTES], want_hash[AUDIT_HASH_BYTES];
    char hex[HASH_HEX + 1];
    struct sbuf s = {0}, pre = {0};

    (void)state;
    sbuf_adds(&s, "prefix|");
    assert_int_equal(auditfmt_event(&s, hash, &e), ST_OK);
    assert_int_equal(s.len, 7 + sizeof want - 1 + HASH_SUFFIX_LEN);
    assert_memory_equal(s.p + 7, want, sizeof want - 1);
    sbuf_adds(&pre, EVENT_DOMAIN);
    sbuf_adds(&pre, want);
    sbuf_adds(&pre, "}");
    crypto_hash_sha256(want_hash, (const unsigned char *)pre.p, pre.len);
    assert_memory_equal(hash, want_hash, AUDIT_HASH_BYTES);
    hex_encode(hex, hash);
    assert_memory_equal(s.p + s.len - HASH_SUFFIX_LEN + 9, hex, HASH_HEX);
    assert_string_equal(s.p + s.len - 2, "\"}");
    sbuf_free(&s);
    sbuf_free(&pre);
}

/* Members added later (issue 9: cert_id, client_cert) sit after items and before trace_id, are
 * omitted when absent (an event without them is byte for byte the v1 line above), and the
 * verifier takes them only there, only as strings. */
static void
test_event_later_members(void **state)
{
    static const char want[] = "\"key_version\":null,\"cert_id\":\"ingress\",\"client_cert\":"
                               "\"CN=app,O=Ops\",\"trace_id\":null,";
    struct audit_event e = {.chain_id = "node-a",
                            .seq = 1,
                            .op = "cert.create",
                            .outcome = "ok",
                            .count = 1,
                            .cert_id = "ingress",
                            .client_cert = "CN=app,O=Ops"};
    struct audit_checkpoint cp = {"node-a", 1, {0}, 2000, "export", NULL, NULL};
    struct audit_verify_result r;
    uint8_t hash[AUDIT_HASH_BYTES];
    struct sbuf s = {0};

    (void)state;
    assert_int_equal(auditfmt_event(&s, hash, &e), ST_OK);
    assert_non_null(strstr(s.p, want));
    memcpy(cp.hash, hash, sizeof hash);
    sbuf_add(&s, "\n", 1);
    assert_int_equal(auditfmt_checkpoint(&s, &cp, signer, 1), ST_OK);
    sbuf_add(&s, "\n", 1);
    assert_int_equal(audit_verify(s.p, s.len, pk, 1, NULL, 0, &r), ST_OK);
    assert_int_equal(r.events, 1);
    sbuf_free(&s);

    /* Out of place, or not a string: refused (the line's own hash recomputed, so only the
     * member rules can catch it). Each is the plain line with `from` replaced by `to`. */
    static const char *const edit[][2] = {
        {"\"app\":null,", "\"app\":null,\"client_cert\":\"CN=x\","},
        {"\"trace_id\":null,", "\"trace_id\":null,\"cert_id\":\"c\","},
        {"\"key_version\":null,", "\"key_version\":null,\"cert_id\":7,"},
        {"\"key_version\":null,", "\"key_version\":null,\"client_cert\":null,"}};
    for (size_t i = 0; i < sizeof edit / sizeof edit[0]; i++) {
        struct audit_event plain = e;
        struct sbuf line = {0}, text = {0};
        uint8_t h2[AUDIT_HASH_BYTES];
        char hex[HASH_HEX + 1];

        plain.cert_id = plain.client_cert = NULL;
        assert_int_equal(auditfmt_event(&line, hash, &plain), ST_OK);
        const char *at = strstr(line.p, edit[i][0]);
        assert_non_null(at);
        sbuf_add(&text, line.p, (size_t)(at - line.p));
        sbuf_adds(&text, edit[i][1]);
        at += strlen(edit[i][0]);
        sbuf_add(&text, at, (size_t)(line.p + line.len - HASH_SUFFIX_LEN - at));
        afmt_event_hash(h2, text.p, text.len);
        hex_encode(hex, h2);
        sbuf_adds(&text, HASH_KEY);
        sbuf_add(&text, hex, HASH_HEX);
        sbuf_adds(&text, "\"}\n");
        memcpy(cp.hash, h2, sizeof h2);
        assert_int_equal(auditfmt_checkpoint(&text, &cp, signer, 1), ST_OK);
        sbuf_add(&text, "\n", 1);
        assert_int_equal(audit_verify(text.p, text.len, pk, 1, NULL, 0, &r), ST_AUTH);
        assert_int_equal(r.line, 1);
        sbuf_free(&line);
        sbuf_free(&text);
    }
}

static void
test_event_rejects_bad_fields(void **state)
{
    static const uint32_t down[] = {3, 2};
    const char *const nul_list[] = {NULL};
    struct audit_event good = {
        .chain_id = "c", .seq = 1, .op = "auth", .outcome = "ok", .count = 1};
    struct audit_event e;
    uint8_t hash[AUDIT_HASH_BYTES];
    struct sbuf s = {0};

    (void)state;
#define BAD(stmt)                                                                                  \
    do {                                                                                           \
        e = good;                                                                                  \
        stmt;                                                                                      \
        memset(hash, 1, sizeof hash);                                                              \
        assert_int_equal(auditfmt_event(&s, hash, &e), ST_INVALID);                                \
        assert_int_equal(s.len, 0);                                                                \
        assert_true(sodium_is_zero(hash, sizeof hash));                                            \
    } while (0)
    BAD(e.chain_id = NULL);
    BAD(e.chain_id = "");
    BAD(e.op = NULL);
    BAD(e.outcome = NULL);
    BAD(e.seq = 0);
    BAD(e.seq = (uint64_t)INT64_MAX + 1);
    BAD(e.count = 0);
    BAD(e.time_ms = -1);
    BAD(e.time_ms = TIME_MAX_MS + 1);
    BAD(e.app = "line\nbreak");
    BAD(e.route = "\x7f");
    BAD(e.h_sub = "\xc3");       /* truncated UTF-8 */
    BAD(e.keyring = "\xc0\xaf"); /* overlong */
    BAD(e.client_cert = "CN=a\nO=b");
    BAD(e.cert_id = "\x01");
    BAD((e.h_context = nul_list, e.n_h_context = 1));
    BAD(e.n_h_reference = 2);
    BAD((e.items_total = 2, e.n_versions = 2, e.versions = down, e.version_counts = down));
    BAD((e.items_total = 2, e.n_versions = 1));
#undef BAD
    e = good;
    assert_int_equal(auditfmt_event(&s, hash, &e), ST_OK);
    sbuf_free(&s);
}

/* The signature covers the documented message and nothing else. */
static void
test_checkpoint_message(void **state)
{
    struct audit_checkpoint c = {"node-a",         42,   {0}, INT64_C(1795897260123), "key_change",
                                 signer[1].key_id, pk[1]};
    struct audit_signer both[2] = {signer[0], signer[1]};
    struct sbuf s = {0}, m = {0};
    json_t *o;
    uint8_t sig[SIG_BYTES];
    size_t n;

    (void)state;
    memset(c.hash, 0x5a, sizeof c.hash);
    assert_int_equal(auditfmt_checkpoint(&s, &c, both, 2), ST_OK);
    o = json_loadb(s.p, s.len, JSON_REJECT_DUPLICATES, NULL);
    assert_non_null(o);
    sbuf_addf(&m,
              "difyguard-audit-checkpoint-v1\nnode-a\n42\n%s\n2026-11-28T20:21:00.123Z\n"
              "key_change\n%s\n%s\n",
              "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a", signer[1].key_id,
              pk_b64[1]);
    for (size_t i = 0; i < 2; i++) {
        json_t *e = json_array_get(json_object_get(o, "signatures"), i);
        const char *b64 = json_string_value(json_object_get(e, "sig"));
        assert_string_equal(json_string_value(json_object_get(e, "key_id")), signer[i].key_id);
        assert_int_equal(b64_std_decode(sig, sizeof sig, &n, b64, strlen(b64)), ST_OK);
        assert_int_equal(
            crypto_sign_ed25519_verify_detached(sig, (const unsigned char *)m.p, m.len, pk[i]), 0);
    }
    json_decref(o);
    /* Writer contract: key changes need both keys and a consistent id; kinds are fixed. */
    s.len = 0;
    assert_int_equal(auditfmt_checkpoint(&s, &c, both, 1), ST_INVALID);
    c.new_key_id = signer[0].key_id;
    assert_int_equal(auditfmt_checkpoint(&s, &c, both, 2), ST_INVALID);
    c.kind = "weekly";
    assert_int_equal(auditfmt_checkpoint(&s, &c, both, 1), ST_INVALID);
    c.kind = "periodic";
    assert_int_equal(auditfmt_checkpoint(&s, &c, both, 1), ST_INVALID); /* stray new key */
    c.new_key_id = NULL, c.new_public_key = NULL;
    struct audit_signer liar = {"0000000000000000", sk[0]};
    assert_int_equal(auditfmt_checkpoint(&s, &c, &liar, 1), ST_INVALID);
    assert_int_equal(auditfmt_checkpoint(&s, &c, both, 1), ST_OK);
    sbuf_free(&s);
    sbuf_free(&m);
}

static void
test_public_key_text(void **state)
{
    uint8_t out[AUDIT_PK_BYTES];
    char padded[80];

    (void)state;
    assert_int_equal(auditfmt_parse_public_key(out, pk_b64[0], strlen(pk_b64[0])), ST_OK);
    assert_memory_equal(out, pk[0], AUDIT_PK_BYTES);
    snprintf(padded, sizeof padded, "  %s\n", pk_b64[0]);
    assert_int_equal(auditfmt_parse_public_key(out, padded, strlen(padded)), ST_OK);
    assert_int_equal(auditfmt_parse_public_key(out, pk_b64[0], 43), ST_INVALID);
    assert_int_equal(auditfmt_parse_public_key(out, "", 0), ST_INVALID);
    snprintf(padded, sizeof padded, "%s", pk_b64[0]);
    padded[42] = padded[42] == 'A' ? 'B' : 'A'; /* non-zero trailing bits or another key */
    enum status st = auditfmt_parse_public_key(out, padded, 44);
    assert_true(st == ST_INVALID || sodium_memcmp(out, pk[0], AUDIT_PK_BYTES) != 0);
}

static void
test_valid_trail(void **state)
{
    struct builder b;
    struct audit_verify_result r;
    uint8_t keys[2][AUDIT_PK_BYTES];
    size_t len;
    char *text;

    (void)state;
    build(&b, V_NORMAL);
    text = join(&b.ls, &len);
    assert_int_equal(verify0(text, len, &r), 0);
    assert_int_equal(r.events, 10);
    assert_int_equal(r.checkpoints, 6);
    assert_int_equal(r.chains, 2);
    memcpy(keys[0], pk[2], AUDIT_PK_BYTES); /* an unrelated key may be given too */
    memcpy(keys[1], pk[0], AUDIT_PK_BYTES);
    assert_int_equal(verify_keys(text, len, keys, 2, NULL, &r), ST_OK);
    memcpy(keys[1], pk[1], AUDIT_PK_BYTES); /* K1 alone: the anchor is K0's */
    assert_int_equal(verify_keys(text, len, keys, 2, NULL, &r), ST_AUTH);
    assert_int_equal(r.line, L_ANCHOR_B);
    assert_int_equal(verify_keys(text, len, pk, 0, NULL, &r), ST_INVALID);
    assert_int_equal(audit_verify(NULL, 3, pk, 1, NULL, 0, &r), ST_INVALID);
    free(text);
    lines_free(&b.ls);
}

/* Every single-bit flip of an event line, and of the key-change checkpoint line, is caught. */
static void
test_bit_flips(void **state)
{
    static const int targets[] = {L_A3, L_KEYCHANGE};
    struct builder b;
    struct audit_verify_result r;
    size_t len;
    char *text;

    (void)state;
    build(&b, V_NORMAL);
    text = join(&b.ls, &len);
    for (size_t t = 0; t < sizeof targets / sizeof targets[0]; t++) {
        size_t start = 0;
        for (int i = 1; i < targets[t]; i++)
            start += strlen(b.ls.l[i - 1]) + 1;
        size_t end = start + strlen(b.ls.l[targets[t] - 1]) + 1; /* with its "\n" */
        for (size_t byte = start; byte < end; byte++) {
            for (int bit = 0; bit < 8; bit++) {
                text[byte] ^= (char)(1 << bit);
                uint64_t line = verify0(text, len, &r);
                if (line == 0)
                    fail_msg("flip of byte %zu bit %d in line %d verified", byte, bit, targets[t]);
                text[byte] ^= (char)(1 << bit);
            }
        }
    }
    /* And one bit of every byte anywhere in the file. */
    for (size_t byte = 0; byte < len; byte++) {
        text[byte] ^= 0x01;
        if (verify0(text, len, &r) == 0)
            fail_msg("flip of byte %zu verified", byte);
        text[byte] ^= 0x01;
    }
    assert_int_equal(verify0(text, len, &r), 0);
    free(text);
    lines_free(&b.ls);
}

static void
remove_line(struct lines *ls, size_t i)
{
    free(ls->l[i]);
    memmove(&ls->l[i], &ls->l[i + 1], (ls->n - i - 1) * sizeof ls->l[0]);
    ls->n--;
}

/* Deleting any line but a periodic checkpoint fails; a periodic one is optional. */
static void
test_deleted_lines(void **state)
{
    struct builder b;
    struct audit_verify_result r;

    (void)state;
    for (size_t del = 0; del < L__N; del++) {
        build(&b, V_NORMAL);
        remove_line(&b.ls, del);
        uint64_t line = verify_lines0(&b.ls, &r);
        if (del + 1 == L_CP_A3 || del + 1 == L_CP_B13)
            assert_int_equal(line, 0);
        else if (line == 0)
            fail_msg("deleting line %zu went unnoticed", del + 1);
        lines_free(&b.ls);
    }
    build(&b, V_NORMAL);
    remove_line(&b.ls, L_A2 - 1); /* a3 now follows a1 */
    expect_fail(&b.ls, L_A3 - 1, "seq 3 follows seq 1");
    lines_free(&b.ls);
    build(&b, V_NORMAL);
    remove_line(&b.ls, L_A1 - 1);
    expect_fail(&b.ls, 1, "starts at seq 2");
    lines_free(&b.ls);
    build(&b, V_NORMAL);
    remove_line(&b.ls, L_A6 - 1); /* the event right before the export */
    expect_fail(&b.ls, L_EXPORT_A - 1, "checkpoint for seq 6");
    lines_free(&b.ls);
}

static void
swap(struct lines *ls, int l1, int l2)
{
    char *t = ls->l[l1 - 1];
    ls->l[l1 - 1] = ls->l[l2 - 1];
    ls->l[l2 - 1] = t;
}

static void
test_swapped_events(void **state)
{
    static const int pairs[][2] = {{L_A1, L_A2},   {L_A2, L_A3}, {L_A4, L_A5},   {L_B11, L_B12},
                                   {L_B13, L_B14}, {L_A5, L_A6}, {L_A3, L_CP_A3}};
    struct builder b;
    struct audit_verify_result r;

    (void)state;
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        build(&b, V_NORMAL);
        swap(&b.ls, pairs[i][0], pairs[i][1]);
        if (verify_lines0(&b.ls, &r) == 0)
            fail_msg("swapping lines %d and %d went unnoticed", pairs[i][0], pairs[i][1]);
        lines_free(&b.ls);
    }
    build(&b, V_NORMAL);
    swap(&b.ls, L_A1, L_A2);
    expect_fail(&b.ls, 1, "starts at seq 2");
    lines_free(&b.ls);
    build(&b, V_NORMAL);
    swap(&b.ls, L_A4, L_A5);
    expect_fail(&b.ls, L_A4, "seq 5 follows seq 3");
    lines_free(&b.ls);
    /* Lines of different chains may interleave in any order. */
    build(&b, V_NORMAL);
    swap(&b.ls, L_B11, L_A3);
    assert_int_equal(verify_lines0(&b.ls, &r), 0);
    lines_free(&b.ls);
}

/* Every prefix of whole lines is refused: the tail is always missing something. */
static void
test_truncated_tail(void **state)
{
    struct builder b;
    struct audit_verify_result r;

    (void)state;
    build(&b, V_NORMAL);
    for (size_t keep = L__N - 1; keep > 0; keep--) {
        remove_line(&b.ls, keep);
        if (verify_lines0(&b.ls, &r) == 0)
            fail_msg("the first %zu lines verified", keep);
    }
    lines_free(&b.ls);
    build(&b, V_NORMAL);
    remove_line(&b.ls, L_EXPORT_B - 1); /* drop the last checkpoint */
    expect_fail(&b.ls, L_B14, "not covered by a checkpoint");
    lines_free(&b.ls);
    build(&b, V_NORMAL);
    b.ls.n = L_CP_B13; /* cut right after a periodic checkpoint */
    for (size_t i = L_CP_B13; i < L__N; i++)
        free(b.ls.l[i]);
    remove_line(&b.ls, L_A5 - 1); /* both chains now end covered */
    expect_fail(&b.ls, L_KEYCHANGE, "not an export checkpoint");
    lines_free(&b.ls);
}

static void
insert_line(struct lines *ls, size_t at, const char *text)
{
    assert_true(ls->n < MAX_LINES);
    memmove(&ls->l[at + 1], &ls->l[at], (ls->n - at) * sizeof ls->l[0]);
    ls->l[at] = xstrdup(text);
    ls->n++;
}

static void
test_duplicated_seq(void **state)
{
    struct builder b;
    struct audit_event e = {0};
    struct sbuf s = {0};
    uint8_t prev[AUDIT_HASH_BYTES], h[AUDIT_HASH_BYTES];

    (void)state;
    build(&b, V_NORMAL);
    insert_line(&b.ls, L_A4, b.ls.l[L_A4 - 1]); /* the same line twice */
    expect_fail(&b.ls, L_A4 + 1, "seq 4 repeats");
    lines_free(&b.ls);
    /* Another event with a4's seq, linked to a4 itself so only the seq is wrong. */
    build(&b, V_NORMAL);
    json_t *o = json_loads(b.ls.l[L_A4 - 1], 0, NULL);
    assert_true(afmt_hex_decode(prev, AUDIT_HASH_BYTES,
                                json_string_value(json_object_get(o, "hash")), HASH_HEX));
    json_decref(o);
    fill_event(&e, 4);
    e.chain_id = "node-a", e.seq = 4, e.time_ms = 1, e.op = "rewrap";
    memcpy(e.prev_hash, prev, sizeof prev);
    assert_int_equal(auditfmt_event(&s, h, &e), ST_OK);
    insert_line(&b.ls, L_A4, s.p);
    expect_fail(&b.ls, L_A4 + 1, "seq 4 repeats");
    sbuf_free(&s);
    lines_free(&b.ls);
}

/* The event line with its latency_us changed by one and its own hash recomputed, as anyone can
 * (the event hash needs no key): what a database writer does to alter one event. */
static char *
edit_event_rehash(const char *line)
{
    const char *lat = strstr(line, "\"latency_us\":"), *hm = strstr(line, ",\"hash\":\"");
    uint8_t h[AUDIT_HASH_BYTES];
    char hex[HASH_HEX + 1];
    struct sbuf body = {0}, out = {0};
    size_t len;

    assert_non_null(lat);
    assert_non_null(hm);
    lat += strlen("\"latency_us\":");
    sbuf_add(&body, line, (size_t)(lat - line));
    sbuf_adds(&body, lat[0] == '9' ? "8" : "9");      /* one digit changed */
    sbuf_add(&body, lat + 1, (size_t)(hm - lat - 1)); /* up to the hash member */
    afmt_event_hash(h, body.p, body.len);
    sodium_bin2hex(hex, sizeof hex, h, sizeof h);
    sbuf_add(&out, body.p, body.len);
    sbuf_adds(&out, ",\"hash\":\"");
    sbuf_adds(&out, hex);
    sbuf_adds(&out, "\"}");
    sbuf_free(&body);
    return sbuf_take(&out, &len);
}

/* Guarantee (docs/audit.md rule 4): an event edited and given its own correct hash breaks the
 * link to the next event of its chain. Every line still hashes right, seqs still count up and
 * the checkpoint after the next event still matches that event, so only the prev_hash
 * comparison catches it. */
static void
test_edited_event_with_its_own_hash_recomputed(void **state)
{
    static const int edited[][2] = {{L_A1, L_A2}, {L_A2, L_A3}, {L_B12, L_B13}, {L_A5, L_A6}};
    struct builder b;
    uint8_t h[AUDIT_HASH_BYTES];

    (void)state;
    for (size_t t = 0; t < sizeof edited / sizeof edited[0]; t++) {
        int line = edited[t][0];
        build(&b, V_NORMAL);
        char *forged = edit_event_rehash(b.ls.l[line - 1]);
        assert_string_not_equal(forged, b.ls.l[line - 1]);
        assert_int_equal(auditfmt_line_hash(forged, strlen(forged), h), ST_OK); /* hashes right */
        free(b.ls.l[line - 1]);
        b.ls.l[line - 1] = forged;
        expect_fail(&b.ls, (uint64_t)edited[t][1], "prev_hash is not the hash of seq");
        lines_free(&b.ls);
    }
}

/* The event line with its prev_hash set to prev (hex) and its own hash recomputed. */
static char *
relink_rehash(const char *line, const char *prev)
{
    static const char key[] = "\"prev_hash\":\"";
    const char *ph = strstr(line, key), *hm = strstr(line, ",\"hash\":\"");
    uint8_t h[AUDIT_HASH_BYTES];
    char hex[HASH_HEX + 1];
    struct sbuf body = {0}, out = {0};
    size_t len;

    assert_non_null(ph);
    assert_non_null(hm);
    ph += strlen(key);
    sbuf_add(&body, line, (size_t)(ph - line));
    sbuf_adds(&body, prev);
    sbuf_add(&body, ph + HASH_HEX, (size_t)(hm - ph - HASH_HEX));
    afmt_event_hash(h, body.p, body.len);
    sodium_bin2hex(hex, sizeof hex, h, sizeof h);
    sbuf_add(&out, body.p, body.len);
    sbuf_adds(&out, ",\"hash\":\"");
    sbuf_adds(&out, hex);
    sbuf_adds(&out, "\"}");
    sbuf_free(&body);
    return sbuf_take(&out, &len);
}

/* Guarantee (docs/audit.md): an event edited, and every later event of its chain re-linked and
 * re-hashed up to the checkpoint that covers them, still fails: every line hashes right and every
 * link holds, so only the checkpoint's signed hash of its seq catches it. */
static void
test_edited_and_rechained_up_to_the_checkpoint(void **state)
{
    static const int chain_a[] = {L_A1, L_A2, L_A3};
    struct builder b;
    uint8_t h[AUDIT_HASH_BYTES];
    char hex[HASH_HEX + 1];

    (void)state;
    build(&b, V_NORMAL);
    for (size_t i = 0; i < sizeof chain_a / sizeof chain_a[0]; i++) {
        int line = chain_a[i];
        char *forged =
            i == 0 ? edit_event_rehash(b.ls.l[line - 1]) : relink_rehash(b.ls.l[line - 1], hex);
        assert_int_equal(auditfmt_line_hash(forged, strlen(forged), h), ST_OK);
        sodium_bin2hex(hex, sizeof hex, h, sizeof h);
        free(b.ls.l[line - 1]);
        b.ls.l[line - 1] = forged;
    }
    expect_fail(&b.ls, L_CP_A3, "checkpoint hash is not the hash of seq 3");
    lines_free(&b.ls);
}

static void
test_torn_and_blank_lines(void **state)
{
    struct builder b;
    struct audit_verify_result r;
    size_t len, last;
    char *text;

    (void)state;
    build(&b, V_NORMAL);
    text = join(&b.ls, &len);
    last = len - strlen(b.ls.l[L__N - 1]) - 1;
    for (size_t cut = last + 1; cut < len; cut++) { /* inside the last line, and its \n */
        assert_int_equal(verify0(text, cut, &r), L__N);
        assert_non_null(strstr(r.error, "torn"));
    }
    /* A complete last line without its newline is torn too; a cut mid-file fails as well. */
    assert_int_equal(verify0(text, len - 1, &r), L__N);
    assert_int_not_equal(verify0(text, len / 2, &r), 0);
    free(text);
    insert_line(&b.ls, L_A3, "");
    expect_fail(&b.ls, L_A3 + 1, "blank line");
    remove_line(&b.ls, L_A3);
    free(b.ls.l[L_A2 - 1]);
    b.ls.l[L_A2 - 1] = xstrdup("{\"type\":\"event\"}\r");
    expect_fail(&b.ls, L_A2, "carriage return");
    lines_free(&b.ls);
}

/* The whole trail re-signed with an attacker's key, and the CVE-2023-31439 analogue: a key
 * introduced by a key change signing checkpoints from before the change. */
static void
test_resigned(void **state)
{
    struct builder b;
    struct audit_verify_result r;
    size_t len;
    char *text;

    (void)state;
    build(&b, V_RESIGN);
    expect_fail(&b.ls, L_ANCHOR_B, "not signed by an accepted key");
    text = join(&b.ls, &len); /* it is self-consistent under K2 */
    assert_int_equal(verify_keys(text, len, pk + 2, 1, NULL, &r), ST_OK);
    free(text);
    lines_free(&b.ls);
    build(&b, V_EARLY_NEW_KEY);
    expect_fail(&b.ls, L_ANCHOR_B, "not signed by an accepted key");
    lines_free(&b.ls);
    /* The key change itself without the new key's signature. */
    build(&b, V_NORMAL);
    char *kc = b.ls.l[L_KEYCHANGE - 1], *second = strstr(kc, "},{");
    assert_non_null(second);
    strcpy(second, "}]}");
    expect_fail(&b.ls, L_KEYCHANGE, "not signed by its new key");
    lines_free(&b.ls);
}

/* ---- key changes in any order, retirement, the writer's prefix check (issue 6) ------------- */

/* The standard trail with every node-b line first: node-b's checkpoints after the key change are
 * signed by K1 before the file reaches the key change (chain a). Genuine; verifies with K0. */
static void
test_key_change_learned_first(void **state)
{
    struct builder b;
    struct lines ls = {{0}, 0};
    struct audit_verify_result r;
    size_t len;

    (void)state;
    build(&b, V_NORMAL);
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < b.ls.n; i++) {
            bool is_b = strstr(b.ls.l[i], "\"chain_id\":\"node-b\"") != NULL;
            if (is_b == (pass == 0))
                ls.l[ls.n++] = b.ls.l[i];
        }
    }
    char *text = join(&ls, &len);
    assert_int_equal(verify_keys(text, len, pk, 1, NULL, &r), ST_OK);
    /* without the key change line, K1's checkpoints are not accepted */
    free(text);
    ls.n = 0;
    for (size_t i = 0; i < b.ls.n; i++) {
        if (strstr(b.ls.l[i], "key_change") == NULL)
            ls.l[ls.n++] = b.ls.l[i];
    }
    text = join(&ls, &len);
    assert_int_equal(verify_keys(text, len, pk, 1, NULL, &r), ST_AUTH);
    assert_non_null(strstr(r.error, "not signed by an accepted key"));
    free(text);
    lines_free(&b.ls);
}

/* After chain a's key change K0 -> K1, a tail of chain a signed only by K0 (an attacker who kept
 * the retired key) is refused, even dated later; chain b may still use K0 before its own. */
static void
test_retired_key_refused_in_its_chain(void **state)
{
    struct builder b;
    struct sbuf s = {0};

    (void)state;
    build(&b, V_NORMAL);
    lines_free(&b.ls);
    build(&b, V_NORMAL);
    free(b.ls.l[--b.ls.n]); /* drop both export checkpoints */
    free(b.ls.l[--b.ls.n]);
    b_event(&b, &b.a);
    struct audit_checkpoint cp = {b.a.id, b.a.seq, {0}, b.t += 1000, "export", NULL, NULL};
    memcpy(cp.hash, b.a.hash, AUDIT_HASH_BYTES);
    assert_int_equal(auditfmt_checkpoint(&s, &cp, &signer[0], 1), ST_OK); /* K0 only */
    push(&b.ls, &s);
    b_cp(&b, &b.b, "export");
    expect_fail(&b.ls, b.ls.n - 1, "not signed by an accepted key");
    lines_free(&b.ls);
}

static void
test_verify_prefix(void **state)
{
    struct builder b;
    struct lines ls = {{0}, 0};
    struct audit_prefix pre;
    struct audit_verify_result r;
    size_t len;
    char *text;

    (void)state;
    build(&b, V_NORMAL);
    for (size_t i = 0; i < b.ls.n; i++) { /* chain a alone, its export checkpoint dropped */
        if (strstr(b.ls.l[i], "\"chain_id\":\"node-a\"") != NULL && i + 1 != L_EXPORT_A)
            ls.l[ls.n++] = b.ls.l[i];
    }
    text = join(&ls, &len); /* ends with an event after its last checkpoint */
    assert_int_equal(audit_verify_prefix(text, len, pk, 1, NULL, 0, &pre, &r), ST_OK);
    assert_int_equal(pre.head_seq, b.a.seq);
    assert_memory_equal(pre.head_hash, b.a.hash, AUDIT_HASH_BYTES);
    assert_true(pre.has_cp);
    assert_true(pre.cp_seq < pre.head_seq);
    assert_true(pre.cp_end > 0 && pre.cp_end < len && text[pre.cp_end - 1] == '\n');
    size_t start = pre.cp_end - 1; /* the line that ends there is a checkpoint */
    while (start > 0 && text[start - 1] != '\n')
        start--;
    assert_int_equal(strncmp(text + start, "{\"type\":\"checkpoint\",", 21), 0);
    /* a broken line after a checkpoint: the verified prefix stops at that checkpoint */
    size_t keep = pre.cp_end;
    char *bad = xmalloc(keep + 8);
    memcpy(bad, text, keep);
    memcpy(bad + keep, "{junk}\n", 7);
    assert_int_equal(audit_verify_prefix(bad, keep + 7, pk, 1, NULL, 0, &pre, &r), ST_AUTH);
    assert_true(pre.has_cp);
    assert_int_equal(pre.cp_end, keep);
    free(bad);
    free(text);
    /* two chains are refused */
    text = join(&b.ls, &len);
    assert_int_equal(audit_verify_prefix(text, len, pk, 1, NULL, 0, &pre, &r), ST_AUTH);
    assert_non_null(strstr(r.error, "another chain"));
    free(text);
    /* no checkpoint: verified, but nothing signed */
    ls.n = 0;
    ls.l[ls.n++] = b.ls.l[L_A1 - 1];
    ls.l[ls.n++] = b.ls.l[L_A2 - 1];
    text = join(&ls, &len);
    assert_int_equal(audit_verify_prefix(text, len, pk, 1, NULL, 0, &pre, &r), ST_OK);
    assert_false(pre.has_cp);
    assert_int_equal(pre.head_seq, 2);
    free(text);
    lines_free(&b.ls);
}

static void
test_line_hash(void **state)
{
    struct builder b;
    uint8_t h[AUDIT_HASH_BYTES];

    (void)state;
    build(&b, V_NORMAL);
    char *l = b.ls.l[L_A2 - 1];
    assert_int_equal(auditfmt_line_hash(l, strlen(l), h), ST_OK);
    l[20] ^= 1;
    assert_int_equal(auditfmt_line_hash(l, strlen(l), h), ST_AUTH);
    assert_true(sodium_is_zero(h, sizeof h));
    assert_int_equal(auditfmt_line_hash("{}", 2, h), ST_AUTH);
    lines_free(&b.ls);
}

static void
test_events_after_last_checkpoint(void **state)
{
    struct builder b;

    (void)state;
    build(&b, V_NORMAL);
    b_event(&b, &b.a); /* correctly chained, but unsigned */
    b_event(&b, &b.a);
    expect_fail(&b.ls, L__N + 1, "not covered by a checkpoint");
    lines_free(&b.ls);
}

static void
test_no_checkpoint(void **state)
{
    struct builder b;
    struct audit_verify_result r;

    (void)state;
    build(&b, V_NORMAL);
    static const int cps[] = {L_EXPORT_B, L_EXPORT_A, L_CP_B13, L_KEYCHANGE, L_CP_A3, L_ANCHOR_B};
    for (size_t i = 0; i < sizeof cps / sizeof cps[0]; i++)
        remove_line(&b.ls, (size_t)cps[i] - 1);
    b.ls.n = 2; /* a1 a2 */
    for (size_t i = 2; i < L__N - 6; i++)
        free(b.ls.l[i]);
    expect_fail(&b.ls, 3, "no checkpoint");
    lines_free(&b.ls);
    assert_int_equal(verify0("", 0, &r), 1);
    assert_non_null(strstr(r.error, "no checkpoint"));
}

/* An export continuing from a checkpoint the auditor kept. */
static void
test_since(void **state)
{
    struct builder b;
    struct lines tail = {0};
    struct audit_verify_result r;
    size_t len;
    char *text;

    (void)state;
    build(&b, V_NORMAL);
    for (int l = L_ANCHOR_B; l <= L__N; l++) { /* node-a from seq 4, node-b whole */
        if (l != L_A3 && l != L_CP_A3)
            insert_line(&tail, tail.n, b.ls.l[l - 1]);
    }
    text = join(&tail, &len);
    assert_int_equal(verify_keys(text, len, pk, 1, b.ls.l[L_CP_A3 - 1], &r), ST_OK);
    assert_int_equal(r.events, 7);
    /* Without --since the export does not start at seq 1: refused. */
    assert_int_equal(verify_keys(text, len, pk, 1, NULL, &r), ST_AUTH);
    assert_non_null(strstr(r.error, "starts at seq 4"));
    /* A wrong --since: a later checkpoint of the same chain. */
    assert_int_equal(verify_keys(text, len, pk, 1, b.ls.l[L_KEYCHANGE - 1], &r), ST_AUTH);
    assert_non_null(strstr(r.error, "does not continue from the --since checkpoint"));
    free(text);
    /* The full trail does not continue from the periodic checkpoint at seq 3 either. */
    text = join(&b.ls, &len);
    assert_int_equal(verify_keys(text, len, pk, 1, b.ls.l[L_CP_A3 - 1], &r), ST_AUTH);
    assert_int_equal(r.line, L_A1);
    /* --since problems of its own: an event, a bad signature, nothing at all. */
    assert_int_equal(verify_keys(text, len, pk, 1, b.ls.l[L_A1 - 1], &r), ST_AUTH);
    assert_int_equal(r.line, 0);
    assert_non_null(strstr(r.error, "--since: "));
    assert_int_equal(verify_keys(text, len, pk + 2, 1, b.ls.l[L_CP_A3 - 1], &r), ST_AUTH);
    assert_non_null(strstr(r.error, "--since: checkpoint is not signed"));
    assert_int_equal(verify_keys(text, len, pk, 1, "\n\n", &r), ST_AUTH);
    assert_non_null(strstr(r.error, "holds no checkpoint"));
    free(text);
    lines_free(&tail);
    /* The chain of the --since checkpoint must be in the export. */
    for (int l = L_ANCHOR_B; l <= L__N; l++) {
        if (l == L_ANCHOR_B || l == L_B11 || l == L_B12 || l == L_B13 || l == L_CP_B13 ||
            l == L_B14 || l == L_EXPORT_B)
            insert_line(&tail, tail.n, b.ls.l[l - 1]);
    }
    text = join(&tail, &len); /* K1 is given: no key change in here */
    assert_int_equal(verify_keys(text, len, pk, 2, NULL, &r), ST_OK);
    assert_int_equal(verify_keys(text, len, pk, 2, b.ls.l[L_CP_A3 - 1], &r), ST_AUTH);
    assert_non_null(strstr(r.error, "missing from the export"));
    free(text);
    lines_free(&tail);
    lines_free(&b.ls);
}

/* Structure checks the hash cannot give: unknown members, order, types, value formats. */
static void
test_shape(void **state)
{
    static const struct {
        const char *line, *words;
    } raw[] = {
        {"[]", "not a JSON object"},
        {"{\"type\":\"event\"}", "event lacks \"chain_id\""},
        {"{\"type\":\"other\"}", "neither"},
        {"{\"type\":1}", "neither"},
        {"{\"type\":\"checkpoint\",\"type\":\"checkpoint\"}", "not a complete JSON object"},
        {"{\"type\":\"checkpoint\"}", "checkpoint lacks \"chain_id\""},
        {"{\"type\":\"event\",\"chain_id\":\"a\",\"x\":1}", "unknown member \"x\""},
        {"{\"chain_id\":\"a\",\"type\":\"event\"}", "\"type\" is out of order"},
        {"{\"type\":\"checkpoint\",\"chain_id\":\"a\",\"seq\":-1,\"hash\":\"00\",\"time\":\"t\","
         "\"kind\":\"export\",\"signatures\":[]}",
         "seq is negative"},
    };
    /* Edits of a real first line (seq 1): each is caught before the hash is even checked. */
    static const struct {
        const char *from, *to, *words;
    } edits[] = {
        {"\"seq\":1,", "\"seq\":\"1\",", "\"seq\" has the wrong type"},
        {"\"seq\":1,", "\"seq\":0,", "out of range"},
        {"\"count\":3,", "\"count\":0,", "out of range"},
        {"\"chain_id\":\"node-a\"", "\"chain_id\":\"\"", "chain_id must be"},
        {"\"time\":\"2026-11-28T20:21:01.234Z\"", "\"time\":\"2026-11-28T20:21:01Z\"", "time is"},
        {"\"prev_hash\":\"0000", "\"prev_hash\":\"000", "prev_hash is not"},
        {"\"hmac\":{\"client\"", "\"hmac\":{\"ip\"", "unknown member \"ip\""},
        {"\"app\":null,", "\"app\":false,", "\"app\" has the wrong type"},
        {"\"hash\":\"", "\"hash\": \"", "does not end with its \"hash\""},
    };
    struct builder b;
    struct lines one = {0};

    (void)state;
    for (size_t i = 0; i < sizeof raw / sizeof raw[0]; i++) {
        insert_line(&one, 0, raw[i].line);
        expect_fail(&one, 1, raw[i].words);
        lines_free(&one);
    }
    build(&b, V_NORMAL);
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        const char *l = b.ls.l[0], *at = strstr(l, edits[i].from);
        char buf[2048];
        assert_non_null(at);
        snprintf(buf, sizeof buf, "%.*s%s%s", (int)(at - l), l, edits[i].to,
                 at + strlen(edits[i].from));
        insert_line(&one, 0, buf);
        expect_fail(&one, 1, edits[i].words);
        lines_free(&one);
    }
    lines_free(&b.ls);
}

/* ---- the command line ------------------------------------------------------------------ */

static char tmpdir[64];
static char out_text[8192], err_text[8192];

static void
write_file(const char *name, const char *data, size_t len)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

static void
slurp(char *out, size_t cap, int fd)
{
    ssize_t n;
    lseek(fd, 0, SEEK_SET);
    n = read(fd, out, cap - 1);
    out[n > 0 ? n : 0] = '\0';
}

/* Run `difyguard audit ARGS...` in-process; paths starting with "%" are in tmpdir. Output is
 * captured into out_text and err_text. Returns the exit code. */
static int
run(const char *first, ...)
{
    char *argv[16], store[16][256];
    int argc = 0, rc, saved_out, saved_err, fo, fe;
    char fo_path[128], fe_path[128];
    va_list ap;

    argv[argc++] = "audit";
    va_start(ap, first);
    for (const char *a = first; a != NULL; a = va_arg(ap, const char *)) {
        const char *pct = strchr(a, '%');
        if (pct != NULL)
            snprintf(store[argc], sizeof store[0], "%.*s%s/%s", (int)(pct - a), a, tmpdir, pct + 1);
        else
            snprintf(store[argc], sizeof store[0], "%s", a);
        argv[argc] = store[argc];
        argc++;
    }
    va_end(ap);
    argv[argc] = NULL;
    snprintf(fo_path, sizeof fo_path, "%s/stdout", tmpdir);
    snprintf(fe_path, sizeof fe_path, "%s/stderr", tmpdir);
    fflush(stdout);
    fflush(stderr);
    fo = open(fo_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    fe = open(fe_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    saved_out = dup(1), saved_err = dup(2);
    dup2(fo, 1), dup2(fe, 2);
    rc = cmd_audit(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(saved_out, 1), dup2(saved_err, 2);
    close(saved_out), close(saved_err);
    slurp(out_text, sizeof out_text, fo);
    slurp(err_text, sizeof err_text, fe);
    close(fo), close(fe);
    return rc;
}

static int
cli_setup(void **state)
{
    struct builder b;
    char *text, keys[256];
    size_t len;

    (void)state;
    unsetenv("DIFYGUARD_PUBLIC_KEY");
    unsetenv("DIFYGUARD_SINCE");
    unsetenv("DIFYGUARD_JSON");
    snprintf(tmpdir, sizeof tmpdir, "/tmp/dg_auditfmt_test_XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    build(&b, V_NORMAL);
    text = join(&b.ls, &len);
    write_file("trail", text, len);
    text[len / 2] ^= 1;
    write_file("tampered", text, len);
    write_file("since", b.ls.l[L_CP_A3 - 1], strlen(b.ls.l[L_CP_A3 - 1]));
    snprintf(keys, sizeof keys, "%s\n%s\n", pk_b64[2], pk_b64[0]);
    write_file("keys", keys, strlen(keys));
    write_file("badkey", "not-a-key\n", 10);
    free(text);
    lines_free(&b.ls);
    return 0;
}

static int
cli_teardown(void **state)
{
    static const char *const names[] = {"trail",  "tampered", "since", "keys",
                                        "badkey", "stdout",   "stderr"};
    char path[128];

    (void)state;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", tmpdir, names[i]);
        unlink(path);
    }
    rmdir(tmpdir);
    unsetenv("DIFYGUARD_PUBLIC_KEY");
    return 0;
}

static void
test_cli(void **state)
{
    char kflag[128];

    (void)state;
    assert_int_equal(run("verify", "%trail", "--public-key", pk_b64[0], NULL), 0);
    assert_non_null(strstr(out_text, "verified: 10 events, 6 checkpoints, 2 chains\n"
                                     "head node-a:6:"));
    assert_non_null(strstr(out_text, "\nhead node-b:14:"));
    assert_string_equal(err_text, "");
    snprintf(kflag, sizeof kflag, "--public-key=%s", pk_b64[2]);
    assert_int_equal(run("verify", kflag, "%trail", "--public-key", pk_b64[0], NULL), 0);
    assert_int_equal(run("verify", "%trail", "--public-key", "@%keys", NULL), 0);
    assert_int_equal(run("verify", "--json", "%trail", "--public-key", pk_b64[0], NULL), 0);
    assert_ptr_equal(strstr(out_text,
                            "{\"valid\":true,\"events\":10,\"checkpoints\":6,"
                            "\"chains\":2,\"heads\":[{\"chain_id\":\"node-a\",\"seq\":6,"),
                     out_text);
    assert_int_equal(run("verify", "%trail", "--public-key", pk_b64[2], NULL), 1);
    assert_non_null(strstr(err_text, "difyguard: audit verify: line 3: checkpoint is not signed"));
    assert_int_equal(run("verify", "%tampered", "--public-key", pk_b64[0], NULL), 1);
    assert_non_null(strstr(err_text, "difyguard: audit verify: line "));
    assert_int_equal(run("verify", "%tampered", "--json", "--public-key", pk_b64[0], NULL), 1);
    assert_non_null(strstr(out_text, "{\"valid\":false,\"line\":"));
    assert_int_equal(run("verify", "%trail", "--public-key", pk_b64[0], "--since", "%since", NULL),
                     1);
    assert_non_null(strstr(err_text, "line 1: chain \"node-a\" does not continue"));
    setenv("DIFYGUARD_PUBLIC_KEY", pk_b64[0], 1);
    assert_int_equal(run("verify", "%trail", NULL), 0);
    unsetenv("DIFYGUARD_PUBLIC_KEY");
    /* Usage errors: 2. Unreadable files: 1. Help: 0. */
    assert_int_equal(run("verify", "%trail", NULL), 2);
    assert_non_null(strstr(err_text, "--public-key KEY is required"));
    assert_int_equal(run("verify", "%trail", "--public-key", "abc", NULL), 2);
    assert_int_equal(run("verify", "%trail", "--public-key", "@%badkey", NULL), 2);
    assert_int_equal(run("verify", "%trail", "--public-key", NULL), 2);
    assert_int_equal(run("verify", "--public-key", pk_b64[0], NULL), 2);
    assert_int_equal(run("verify", "%trail", "%trail", "--public-key", pk_b64[0], NULL), 2);
    assert_int_equal(run("verify", "%trail", "--public-key", pk_b64[0], "--bogus", NULL), 2);
    assert_int_equal(run("verify", "%missing", "--public-key", pk_b64[0], NULL), 1);
    assert_int_equal(run("verify", "%trail", "--public-key", "@%missing", NULL), 1);
    assert_int_equal(
        run("verify", "%trail", "--public-key", pk_b64[0], "--since", "%missing", NULL), 1);
    assert_int_equal(run("verify", "--help", NULL), 0);
    assert_non_null(strstr(out_text, "usage: difyguard audit verify FILE --public-key KEY"));
    assert_int_equal(run(NULL), 2);
    assert_int_equal(run("bogus", NULL), 2);
    assert_int_equal(run("--help", NULL), 0);
}

/* ---- the fuzz corpus: valid exports under the fuzz driver's key (K0) ---------------------- */

/* Seeds for fuzz/corpus/fuzz_audit_verify: name, then the text ("--since\f" export for one with
 * a --since part). Rewritten when DG_WRITE_FUZZ_CORPUS=1; otherwise each must still verify. */
static void
corpus_case(int which, struct sbuf *out)
{
    struct builder b;
    struct lines part = {0};
    size_t len;
    char *text;

    build(&b, V_NORMAL);
    if (which == 1) { /* only chain node-a, ends at the export */
        for (int l = 1; l <= L__N; l++) {
            if (strstr(b.ls.l[l - 1], "\"node-a\"") != NULL)
                insert_line(&part, part.n, b.ls.l[l - 1]);
        }
    } else if (which == 2) { /* --since \f the rest */
        sbuf_adds(out, b.ls.l[L_CP_A3 - 1]);
        sbuf_adds(out, "\n\f");
        for (int l = L_ANCHOR_B; l <= L__N; l++) {
            if (l != L_A3 && l != L_CP_A3)
                insert_line(&part, part.n, b.ls.l[l - 1]);
        }
    } else if (which == 3) { /* an anchor and an export, no events */
        insert_line(&part, 0, b.ls.l[L_ANCHOR_B - 1]);
        struct chainst c = {"node-b", 10, {0}};
        memset(c.hash, 0xab, sizeof c.hash);
        b.changed = false;
        b_cp(&b, &c, "export");
        insert_line(&part, 1, b.ls.l[b.ls.n - 1]);
    }
    text = join(which == 0 ? &b.ls : &part, &len);
    sbuf_add(out, text, len);
    free(text);
    lines_free(&part);
    lines_free(&b.ls);
}

static void
test_fuzz_corpus(void **state)
{
    static const char *const names[] = {"trail", "one_chain", "since", "anchor_only"};
    const char *src = getenv("DG_SOURCE_DIR"), *write = getenv("DG_WRITE_FUZZ_CORPUS");
    struct audit_verify_result r;
    char path[4096];

    (void)state;
    if (src == NULL)
        skip();
    for (int i = 0; i < 4; i++) {
        struct sbuf s = {0}, disk = {0};
        corpus_case(i, &s);
        snprintf(path, sizeof path, "%s/fuzz/corpus/fuzz_audit_verify/%s", src, names[i]);
        if (write != NULL && strcmp(write, "1") == 0) {
            FILE *f = fopen(path, "wb");
            assert_non_null(f);
            assert_int_equal(fwrite(s.p, 1, s.len, f), s.len);
            fclose(f);
        }
        FILE *f = fopen(path, "rb");
        assert_non_null(f);
        sbuf_reserve(&disk, 1 << 16);
        disk.len = fread(disk.p, 1, disk.cap - 1, f);
        fclose(f);
        assert_int_equal(disk.len, s.len); /* reproducible byte for byte */
        assert_memory_equal(disk.p, s.p, s.len);
        const char *ff = memchr(s.p, '\f', s.len);
        size_t since_len = ff ? (size_t)(ff - s.p) : 0, off = ff ? since_len + 1 : 0;
        assert_int_equal(
            audit_verify(s.p + off, s.len - off, pk, 1, ff ? s.p : NULL, since_len, &r), ST_OK);
        sbuf_free(&s);
        sbuf_free(&disk);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time_format),
        cmocka_unit_test(test_event_golden),
        cmocka_unit_test(test_event_later_members),
        cmocka_unit_test(test_event_rejects_bad_fields),
        cmocka_unit_test(test_checkpoint_message),
        cmocka_unit_test(test_public_key_text),
        cmocka_unit_test(test_valid_trail),
        cmocka_unit_test(test_bit_flips),
        cmocka_unit_test(test_deleted_lines),
        cmocka_unit_test(test_swapped_events),
        cmocka_unit_test(test_truncated_tail),
        cmocka_unit_test(test_duplicated_seq),
        cmocka_unit_test(test_edited_event_with_its_own_hash_recomputed),
        cmocka_unit_test(test_edited_and_rechained_up_to_the_checkpoint),
        cmocka_unit_test(test_torn_and_blank_lines),
        cmocka_unit_test(test_resigned),
        cmocka_unit_test(test_key_change_learned_first),
        cmocka_unit_test(test_retired_key_refused_in_its_chain),
        cmocka_unit_test(test_verify_prefix),
        cmocka_unit_test(test_line_hash),
        cmocka_unit_test(test_events_after_last_checkpoint),
        cmocka_unit_test(test_no_checkpoint),
        cmocka_unit_test(test_since),
        cmocka_unit_test(test_shape),
        cmocka_unit_test_setup_teardown(test_cli, cli_setup, cli_teardown),
        cmocka_unit_test(test_fuzz_corpus),
    };
    int rc;

    if (sodium_init() < 0)
        return 1;
    keys_init();
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    for (int k = 0; k < 3; k++)
        secret_free(sk[k]);
    return rc;
}
