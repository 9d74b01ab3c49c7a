/* SPDX-License-Identifier: Apache-2.0 */
/* server/auditfmt.c -- audit trail lines (hash-chained events, Ed25519-signed checkpoints) and
 * the offline verifier. Pure: no I/O, no clock. The verifier treats every byte as hostile. */
#include "server/auditfmt.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "common/xmem.h"
#include "crypto/b64.h"
#include "crypto/context.h"

#define EVENT_DOMAIN "difyguard-audit-v1\n"
#define CHECKPOINT_DOMAIN "difyguard-audit-checkpoint-v1\n"
#define HASH_HEX (2 * AUDIT_HASH_BYTES)
#define HASH_KEY ",\"hash\":\""
#define HASH_SUFFIX_LEN (sizeof HASH_KEY - 1 + HASH_HEX + 2)   /* ,"hash":"<hex>"} */
#define TIME_CHARS 24                                         /* 2026-11-28T20:21:00.123Z */
#define TIME_MAX_MS INT64_C(253402300799999)                  /* 9999-12-31T23:59:59.999Z */
#define DAY_MS INT64_C(86400000)
#define SIG_BYTES crypto_sign_ed25519_BYTES
#define SIG_B64_CHARS 88
#define PK_B64_CHARS 44
#define CHAIN_ID_MAX 128                  /* bytes */
#define VERIFY_MAX_KEYS 64                /* given plus learned from key changes */
#define VERIFY_MAX_SIGS 8                 /* signatures on one checkpoint */
#define VERIFY_LINE_MAX ((size_t)16 << 20)
#define SHOW_MAX 40                       /* characters of input quoted in an error */
#define SHOW_BYTES (SHOW_MAX + 4)

enum cp_kind { CP_PERIODIC, CP_EXPORT, CP_ANCHOR, CP_KEY_CHANGE, CP__COUNT };
static const char *const kind_names[CP__COUNT] = {"periodic", "export", "anchor", "key_change"};

/* ---- shared text helpers ------------------------------------------------------------------ */

/* Valid UTF-8 without control characters: a line stays one line, and only '"' and '\\' need
 * escaping. Checkpoint fields are '\n'-separated in the signed message, so this also keeps
 * that message unambiguous. */
static bool
text_ok(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    }
    return context_utf8_valid(s, len) != 0;
}

static bool
chain_id_ok(const char *s, size_t len)
{
    return len > 0 && len <= CHAIN_ID_MAX && text_ok(s, len);
}

static void
hex_encode(char out[static HASH_HEX + 1], const uint8_t h[static AUDIT_HASH_BYTES])
{
    sodium_bin2hex(out, HASH_HEX + 1, h, AUDIT_HASH_BYTES);
}

/* Exactly 2n lowercase hex digits (one spelling per value). */
static bool
hex_decode(uint8_t *out, size_t n, const char *s, size_t len)
{
    size_t got = 0;

    if (len != 2 * n)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    }
    return sodium_hex2bin(out, n, s, len, NULL, &got, NULL) == 0 && got == n;
}

static void
add_u64(struct sbuf *b, const char *prefix, uint64_t v)
{
    char d[20];
    size_t i = sizeof d;

    do {
        d[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    sbuf_adds(b, prefix);
    sbuf_add(b, d + i, sizeof d - i);
}

static void
add_i64(struct sbuf *b, const char *prefix, int64_t v)
{
    if (v < 0) {
        sbuf_adds(b, prefix);
        add_u64(b, "-", (uint64_t)0 - (uint64_t)v);
    } else {
        add_u64(b, prefix, (uint64_t)v);
    }
}

/* prefix then a JSON string, or null when s is NULL. */
static void
add_str(struct sbuf *b, const char *prefix, const char *s)
{
    sbuf_adds(b, prefix);
    if (s == NULL)
        sbuf_add(b, "null", 4);
    else
        sbuf_add_jstr(b, s, strlen(s));
}

static void
put_digits(char *p, unsigned v, int n)
{
    while (n-- > 0) {
        p[n] = (char)('0' + v % 10);
        v /= 10;
    }
}

/* Unix milliseconds (0 .. TIME_MAX_MS) as RFC 3339 UTC with milliseconds. The date is computed
 * here (Hinnant's civil_from_days) rather than with gmtime: no time_t range or locale issues. */
static void
time_format(char out[static TIME_CHARS + 1], int64_t ms)
{
    uint64_t days = (uint64_t)(ms / DAY_MS), rem = (uint64_t)(ms % DAY_MS);
    uint64_t z = days + 719468, era = z / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
    unsigned d = doy - (153 * mp + 2) / 5 + 1, m = mp < 10 ? mp + 3 : mp - 9;
    unsigned y = (unsigned)(era * 400) + yoe + (m <= 2);

    memcpy(out, "0000-00-00T00:00:00.000Z", TIME_CHARS + 1);
    put_digits(out, y, 4);
    put_digits(out + 5, m, 2);
    put_digits(out + 8, d, 2);
    put_digits(out + 11, (unsigned)(rem / 3600000), 2);
    put_digits(out + 14, (unsigned)(rem / 60000 % 60), 2);
    put_digits(out + 17, (unsigned)(rem / 1000 % 60), 2);
    put_digits(out + 20, (unsigned)(rem % 1000), 3);
}

static bool
digits_at(unsigned *out, const char *s, size_t n)
{
    *out = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        *out = *out * 10 + (unsigned)(s[i] - '0');
    }
    return true;
}

/* A time exactly as time_format writes it: parsed, then formatted again and compared, which
 * also refuses dates such as February 30. */
static bool
time_ok(const char *s, size_t len)
{
    unsigned y, mo, d, h, mi, sec, ms;
    char again[TIME_CHARS + 1];

    if (len != TIME_CHARS || !digits_at(&y, s, 4) || !digits_at(&mo, s + 5, 2) ||
        !digits_at(&d, s + 8, 2) || !digits_at(&h, s + 11, 2) || !digits_at(&mi, s + 14, 2) ||
        !digits_at(&sec, s + 17, 2) || !digits_at(&ms, s + 20, 3) || y < 1970 || mo < 1 ||
        mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 59)
        return false;
    /* Hinnant's days_from_civil, for years from 1970 on (never negative here). */
    unsigned yy = y - (mo <= 2), era = yy / 400, yoe = yy - era * 400;
    unsigned doy = (153 * (mo > 2 ? mo - 3 : mo + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    int64_t days = (int64_t)era * 146097 + (int64_t)doe - 719468;
    time_format(again, days * DAY_MS + (int64_t)h * 3600000 + (int64_t)mi * 60000 +
                           (int64_t)sec * 1000 + (int64_t)ms);
    return days >= 0 && memcmp(again, s, TIME_CHARS) == 0;
}

/* ---- events ------------------------------------------------------------------------------ */

/* hash = SHA-256(EVENT_DOMAIN || body || "}"): body is the line up to its hash member. */
static void
event_hash(uint8_t hash[static AUDIT_HASH_BYTES], const char *body, size_t len)
{
    crypto_hash_sha256_state h;

    crypto_hash_sha256_init(&h);
    crypto_hash_sha256_update(&h, (const unsigned char *)EVENT_DOMAIN, sizeof EVENT_DOMAIN - 1);
    crypto_hash_sha256_update(&h, (const unsigned char *)body, len);
    crypto_hash_sha256_update(&h, (const unsigned char *)"}", 1);
    crypto_hash_sha256_final(&h, hash);
}

static bool
opt_text_ok(const char *s)
{
    return s == NULL || text_ok(s, strlen(s));
}

static bool
list_ok(const char *const *v, size_t n)
{
    if (n > 0 && v == NULL)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (v[i] == NULL || !text_ok(v[i], strlen(v[i])))
            return false;
    }
    return true;
}

static bool
event_valid(const struct audit_event *e)
{
    const char *const opt[] = {e->method, e->route, e->app, e->key_id, e->keyring, e->trace_id,
                               e->hmac_key_id, e->h_request_id, e->h_client, e->h_keyring,
                               e->h_key_id, e->h_sub};

    if (e->chain_id == NULL || !chain_id_ok(e->chain_id, strlen(e->chain_id)) ||
        e->op == NULL || !text_ok(e->op, strlen(e->op)) || e->outcome == NULL ||
        !text_ok(e->outcome, strlen(e->outcome)))
        return false;
    /* Numbers the verifier reads as JSON integers (int64): larger ones would not parse. */
    if (e->seq == 0 || e->seq > INT64_MAX || e->count == 0 || e->count > INT64_MAX ||
        e->time_ms < 0 || e->time_ms > TIME_MAX_MS)
        return false;
    for (size_t i = 0; i < sizeof opt / sizeof opt[0]; i++) {
        if (!opt_text_ok(opt[i]))
            return false;
    }
    if (!list_ok(e->h_context, e->n_h_context) || !list_ok(e->h_reference, e->n_h_reference))
        return false;
    if (e->items_total > 0 && e->n_versions > 0) {
        if (e->versions == NULL || e->version_counts == NULL)
            return false;
        for (size_t i = 1; i < e->n_versions; i++) {
            if (e->versions[i] <= e->versions[i - 1])   /* ascending: no duplicate keys */
                return false;
        }
    }
    return true;
}

static void
event_head(struct sbuf *out, const struct audit_event *e)
{
    char hex[HASH_HEX + 1], t[TIME_CHARS + 1];

    hex_encode(hex, e->prev_hash);
    time_format(t, e->time_ms);
    add_str(out, "{\"type\":\"event\",\"chain_id\":", e->chain_id);
    add_u64(out, ",\"seq\":", e->seq);
    sbuf_adds(out, ",\"prev_hash\":\"");
    sbuf_add(out, hex, HASH_HEX);
    sbuf_adds(out, "\",\"time\":\"");
    sbuf_add(out, t, TIME_CHARS);
    sbuf_add(out, "\"", 1);
    add_str(out, ",\"op\":", e->op);
    add_str(out, ",\"method\":", e->method);
    add_str(out, ",\"route\":", e->route);
    sbuf_add_u32(out, ",\"status\":", (uint32_t)e->status);
    add_str(out, ",\"outcome\":", e->outcome);
    add_i64(out, ",\"latency_us\":", e->latency_us);
}

static void
event_ids(struct sbuf *out, const struct audit_event *e)
{
    add_str(out, ",\"app\":", e->app);
    add_str(out, ",\"key_id\":", e->key_id);
    add_str(out, ",\"keyring\":", e->keyring);
    if (e->key_version == 0)
        sbuf_adds(out, ",\"key_version\":null");
    else
        sbuf_add_u32(out, ",\"key_version\":", e->key_version);
    if (e->items_total > 0) {
        sbuf_add_u32(out, ",\"items\":{\"total\":", e->items_total);
        sbuf_add_u32(out, ",\"ok\":", e->items_ok);
        sbuf_add_u32(out, ",\"failed\":", e->items_failed);
        sbuf_adds(out, ",\"versions\":{");
        for (size_t i = 0; i < e->n_versions; i++) {
            sbuf_add_u32(out, i == 0 ? "\"" : ",\"", e->versions[i]);
            sbuf_add_u32(out, "\":", e->version_counts[i]);
        }
        sbuf_adds(out, "}}");
    }
    add_str(out, ",\"trace_id\":", e->trace_id);
    add_u64(out, ",\"count\":", e->count);
    add_str(out, ",\"hmac_key_id\":", e->hmac_key_id);
}

/* One member of the hmac object; absent members are left out. */
static void
hmac_member(struct sbuf *out, bool *first, const char *name, const char *s)
{
    if (s == NULL)
        return;
    sbuf_adds(out, *first ? "\"" : ",\"");
    sbuf_adds(out, name);
    add_str(out, "\":", s);
    *first = false;
}

static void
hmac_list(struct sbuf *out, bool *first, const char *name, const char *const *v, size_t n)
{
    if (n == 0)
        return;
    sbuf_adds(out, *first ? "\"" : ",\"");
    sbuf_adds(out, name);
    sbuf_adds(out, "\":[");
    for (size_t i = 0; i < n; i++)
        add_str(out, i == 0 ? "" : ",", v[i]);
    sbuf_add(out, "]", 1);
    *first = false;
}

static void
event_hmac(struct sbuf *out, const struct audit_event *e)
{
    bool first = true;

    sbuf_adds(out, ",\"hmac\":{");
    hmac_member(out, &first, "request_id", e->h_request_id);
    hmac_member(out, &first, "client", e->h_client);
    hmac_member(out, &first, "keyring", e->h_keyring);
    hmac_member(out, &first, "key_id", e->h_key_id);
    hmac_member(out, &first, "sub", e->h_sub);
    hmac_list(out, &first, "context", e->h_context, e->n_h_context);
    hmac_list(out, &first, "reference", e->h_reference, e->n_h_reference);
    sbuf_add(out, "}", 1);
}

enum status
auditfmt_event(struct sbuf *out, uint8_t hash[static AUDIT_HASH_BYTES],
               const struct audit_event *e)
{
    const size_t start = out->len;
    char hex[HASH_HEX + 1];
    enum status st = ST_INVALID;

    memset(hash, 0, AUDIT_HASH_BYTES);
    if (!event_valid(e))
        goto out;
    event_head(out, e);
    event_ids(out, e);
    event_hmac(out, e);
    event_hash(hash, out->p + start, out->len - start);
    hex_encode(hex, hash);
    sbuf_adds(out, HASH_KEY);
    sbuf_add(out, hex, HASH_HEX);
    sbuf_add(out, "\"}", 2);
    st = ST_OK;
out:
    return st;
}

/* ---- checkpoints ------------------------------------------------------------------------- */

/* The signed fields of a checkpoint as text, shared by the writer and the verifier. */
struct cp_text {
    const char *chain_id;
    size_t chain_len;
    uint64_t seq;
    enum cp_kind kind;
    char hash[HASH_HEX + 1];
    char time[TIME_CHARS + 1];
    char new_key_id[AUDIT_KEY_ID_CHARS + 1];     /* "" unless key_change */
    char new_pk[PK_B64_CHARS + 1];               /* "" unless key_change */
};

static void
cp_message(struct sbuf *m, const struct cp_text *t)
{
    m->len = 0;
    sbuf_adds(m, CHECKPOINT_DOMAIN);
    sbuf_add(m, t->chain_id, t->chain_len);
    add_u64(m, "\n", t->seq);
    sbuf_add(m, "\n", 1);
    sbuf_adds(m, t->hash);
    sbuf_add(m, "\n", 1);
    sbuf_adds(m, t->time);
    sbuf_add(m, "\n", 1);
    sbuf_adds(m, kind_names[t->kind]);
    sbuf_add(m, "\n", 1);
    sbuf_adds(m, t->new_key_id);
    sbuf_add(m, "\n", 1);
    sbuf_adds(m, t->new_pk);
    sbuf_add(m, "\n", 1);
}

static void
cp_line_head(struct sbuf *out, const struct cp_text *t)
{
    sbuf_adds(out, "{\"type\":\"checkpoint\",\"chain_id\":");
    sbuf_add_jstr(out, t->chain_id, t->chain_len);
    add_u64(out, ",\"seq\":", t->seq);
    sbuf_adds(out, ",\"hash\":\"");
    sbuf_adds(out, t->hash);
    sbuf_adds(out, "\",\"time\":\"");
    sbuf_adds(out, t->time);
    sbuf_adds(out, "\",\"kind\":\"");
    sbuf_adds(out, kind_names[t->kind]);
    sbuf_add(out, "\"", 1);
    if (t->kind == CP_KEY_CHANGE) {
        sbuf_adds(out, ",\"new_key_id\":\"");
        sbuf_adds(out, t->new_key_id);
        sbuf_adds(out, "\",\"new_public_key\":\"");
        sbuf_adds(out, t->new_pk);
        sbuf_add(out, "\"", 1);
    }
    sbuf_adds(out, ",\"signatures\":[");
}

static bool
kind_parse(enum cp_kind *out, const char *s)
{
    for (int k = 0; k < CP__COUNT; k++) {
        if (s != NULL && strcmp(s, kind_names[k]) == 0) {
            *out = (enum cp_kind)k;
            return true;
        }
    }
    return false;
}

static enum status
cp_text_from(struct cp_text *t, const struct audit_checkpoint *c)
{
    memset(t, 0, sizeof *t);
    if (c->chain_id == NULL || !chain_id_ok(c->chain_id, strlen(c->chain_id)) ||
        c->seq > INT64_MAX || c->time_ms < 0 || c->time_ms > TIME_MAX_MS ||
        !kind_parse(&t->kind, c->kind))
        return ST_INVALID;
    t->chain_id = c->chain_id;
    t->chain_len = strlen(c->chain_id);
    t->seq = c->seq;
    hex_encode(t->hash, c->hash);
    time_format(t->time, c->time_ms);
    if ((t->kind == CP_KEY_CHANGE) != (c->new_key_id != NULL && c->new_public_key != NULL))
        return ST_INVALID;
    if (t->kind == CP_KEY_CHANGE) {
        auditfmt_key_id(t->new_key_id, c->new_public_key);
        if (strcmp(t->new_key_id, c->new_key_id) != 0)
            return ST_INVALID;
        b64_std_encode(t->new_pk, sizeof t->new_pk, c->new_public_key, AUDIT_PK_BYTES);
    }
    return ST_OK;
}

/* Each signer's key id must be its key's; a key change needs its new key and another one. */
static enum status
signers_check(const struct cp_text *t, const struct audit_signer *s, size_t n)
{
    char id[AUDIT_KEY_ID_CHARS + 1];
    bool has_new = false, has_old = false;

    if (s == NULL || n == 0 || n > VERIFY_MAX_SIGS)
        return ST_INVALID;
    for (size_t i = 0; i < n; i++) {
        if (s[i].sk == NULL || secret_len(s[i].sk) != AUDIT_SK_BYTES)
            return ST_INVALID;
        auditfmt_key_id(id, secret_ro(s[i].sk) + AUDIT_SK_BYTES - AUDIT_PK_BYTES);
        if (strcmp(id, s[i].key_id) != 0)
            return ST_INVALID;
        if (strcmp(id, t->new_key_id) == 0)
            has_new = true;
        else
            has_old = true;
    }
    return t->kind != CP_KEY_CHANGE || (has_new && has_old) ? ST_OK : ST_INVALID;
}

enum status
auditfmt_checkpoint(struct sbuf *out, const struct audit_checkpoint *c,
                    const struct audit_signer *signers, size_t n_signers)
{
    struct cp_text t;
    struct sbuf msg = {0};
    uint8_t sig[SIG_BYTES];
    char sig_b64[SIG_B64_CHARS + 1];
    enum status st;

    if ((st = cp_text_from(&t, c)) != ST_OK ||
        (st = signers_check(&t, signers, n_signers)) != ST_OK)
        goto out;
    cp_message(&msg, &t);
    cp_line_head(out, &t);
    for (size_t i = 0; i < n_signers; i++) {
        crypto_sign_ed25519_detached(sig, NULL, (const unsigned char *)msg.p, msg.len,
                                     secret_ro(signers[i].sk));
        b64_std_encode(sig_b64, sizeof sig_b64, sig, sizeof sig);
        sbuf_adds(out, i == 0 ? "{\"key_id\":\"" : ",{\"key_id\":\"");
        sbuf_adds(out, signers[i].key_id);
        sbuf_adds(out, "\",\"sig\":\"");
        sbuf_add(out, sig_b64, SIG_B64_CHARS);
        sbuf_add(out, "\"}", 2);
    }
    sbuf_add(out, "]}", 2);
out:
    sbuf_free(&msg);
    return st;
}

void
auditfmt_key_id(char out[static AUDIT_KEY_ID_CHARS + 1], const uint8_t pk[static AUDIT_PK_BYTES])
{
    uint8_t d[crypto_hash_sha256_BYTES];

    crypto_hash_sha256(d, pk, AUDIT_PK_BYTES);
    sodium_bin2hex(out, AUDIT_KEY_ID_CHARS + 1, d, AUDIT_KEY_ID_CHARS / 2);
}

enum status
auditfmt_parse_public_key(uint8_t pk[static AUDIT_PK_BYTES], const char *text, size_t len)
{
    static const char ws[] = " \t\r\n";
    size_t n = 0;

    memset(pk, 0, AUDIT_PK_BYTES);
    if (text == NULL)
        return ST_INVALID;
    while (len > 0 && memchr(ws, text[0], sizeof ws - 1) != NULL)
        text++, len--;
    while (len > 0 && memchr(ws, text[len - 1], sizeof ws - 1) != NULL)
        len--;
    if (len != PK_B64_CHARS || b64_std_decode(pk, AUDIT_PK_BYTES, &n, text, len) != ST_OK ||
        n != AUDIT_PK_BYTES) {
        memset(pk, 0, AUDIT_PK_BYTES);
        return ST_INVALID;
    }
    return ST_OK;
}

/* ---- verifier ---------------------------------------------------------------------------- */

enum origin { ORIGIN_GENESIS, ORIGIN_ANCHOR, ORIGIN_SINCE };

struct chain {
    char *id;                       /* NULL: free slot */
    size_t id_len;
    uint64_t seq;                   /* the head: last event, anchor or --since checkpoint */
    uint8_t hash[AUDIT_HASH_BYTES];
    enum origin origin;
    uint64_t lines;                 /* lines of this chain in the export */
    uint64_t uncovered;             /* first event no checkpoint covers yet, 0 if none */
    uint64_t last_cp_line;
    enum cp_kind last_kind;
};

struct vkey {
    uint8_t pk[AUDIT_PK_BYTES];
    char id[AUDIT_KEY_ID_CHARS + 1];
};

struct verifier {
    struct vkey keys[VERIFY_MAX_KEYS];
    size_t n_keys;
    struct chain *chains;           /* open addressing, cap a power of two */
    size_t cap, n_chains;
    struct sbuf msg;                /* scratch: a checkpoint's signed message */
    struct audit_verify_result *res;
    uint64_t line;
    bool in_since;                  /* reading the --since checkpoints */
};

/* The first problem wins; --since problems have no export line (line 0). */
static enum status reject(struct verifier *v, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static enum status
reject(struct verifier *v, const char *fmt, ...)
{
    struct audit_verify_result *r = v->res;
    size_t off = 0;
    va_list ap;

    if (r->error[0] == '\0') {
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
static const char *
shown(char out[static SHOW_BYTES], const char *s, size_t len)
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
static struct chain *
chain_get(struct verifier *v, const char *id, size_t len)
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
        v->n_chains++;
    }
    return c;
}

static enum status
key_accept(struct verifier *v, const uint8_t pk[static AUDIT_PK_BYTES])
{
    for (size_t i = 0; i < v->n_keys; i++) {
        if (memcmp(v->keys[i].pk, pk, AUDIT_PK_BYTES) == 0)
            return ST_OK;
    }
    if (v->n_keys == VERIFY_MAX_KEYS)
        return reject(v, "more than %d audit keys", VERIFY_MAX_KEYS);
    memcpy(v->keys[v->n_keys].pk, pk, AUDIT_PK_BYTES);
    auditfmt_key_id(v->keys[v->n_keys].id, pk);
    v->n_keys++;
    return ST_OK;
}

/* Members of a JSON object: allowed types, required or not, in this order. */
enum { F_STR = 1, F_INT = 2, F_NULL = 4, F_OBJ = 8, F_ARR = 16 };
struct field {
    const char *name;
    unsigned types;
    bool required;
};

static const struct field event_fields[] = {
    {"type", F_STR, true}, {"chain_id", F_STR, true}, {"seq", F_INT, true},
    {"prev_hash", F_STR, true}, {"time", F_STR, true}, {"op", F_STR, true},
    {"method", F_STR | F_NULL, true}, {"route", F_STR | F_NULL, true}, {"status", F_INT, true},
    {"outcome", F_STR, true}, {"latency_us", F_INT, true}, {"app", F_STR | F_NULL, true},
    {"key_id", F_STR | F_NULL, true}, {"keyring", F_STR | F_NULL, true},
    {"key_version", F_INT | F_NULL, true}, {"items", F_OBJ, false},
    {"trace_id", F_STR | F_NULL, true}, {"count", F_INT, true},
    {"hmac_key_id", F_STR | F_NULL, true}, {"hmac", F_OBJ, true}, {"hash", F_STR, true},
};
static const struct field items_fields[] = {
    {"total", F_INT, true}, {"ok", F_INT, true}, {"failed", F_INT, true},
    {"versions", F_OBJ, true},
};
static const struct field hmac_fields[] = {
    {"request_id", F_STR, false}, {"client", F_STR, false}, {"keyring", F_STR, false},
    {"key_id", F_STR, false}, {"sub", F_STR, false}, {"context", F_ARR, false},
    {"reference", F_ARR, false},
};
static const struct field cp_fields[] = {
    {"type", F_STR, true}, {"chain_id", F_STR, true}, {"seq", F_INT, true},
    {"hash", F_STR, true}, {"time", F_STR, true}, {"kind", F_STR, true},
    {"new_key_id", F_STR, false}, {"new_public_key", F_STR, false},
    {"signatures", F_ARR, true},
};
static const struct field sig_fields[] = {{"key_id", F_STR, true}, {"sig", F_STR, true}};
#define N_FIELDS(t) (sizeof t / sizeof t[0])

static unsigned
jtype(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_STRING: return F_STR;
    case JSON_INTEGER: return F_INT;
    case JSON_NULL: return F_NULL;
    case JSON_OBJECT: return F_OBJ;
    case JSON_ARRAY: return F_ARR;
    default: return 0;
    }
}

/* Exactly the members of table t, in its order, with their types (jansson keeps insertion
 * order). */
static enum status
fields_check(struct verifier *v, const json_t *o, const struct field *t, size_t n,
             const char *what)
{
    char sh[SHOW_BYTES];
    const char *key;
    json_t *val;
    size_t next = 0, i;

    if (!json_is_object(o))
        return reject(v, "%s is not a JSON object", what);
    json_object_foreach((json_t *)o, key, val) {
        for (i = 0; i < n && strcmp(t[i].name, key) != 0; i++)
            ;
        if (i == n)
            return reject(v, "%s has an unknown member \"%s\"", what, shown(sh, key, strlen(key)));
        if (i < next)
            return reject(v, "%s member \"%s\" is out of order", what, t[i].name);
        for (; next < i; next++) {
            if (t[next].required && json_object_get(o, t[next].name) != NULL)
                return reject(v, "%s member \"%s\" is out of order", what, t[next].name);
            if (t[next].required)
                return reject(v, "%s lacks \"%s\"", what, t[next].name);
        }
        if ((jtype(val) & t[i].types) == 0)
            return reject(v, "%s member \"%s\" has the wrong type", what, t[i].name);
        next = i + 1;
    }
    for (; next < n; next++) {
        if (t[next].required)
            return reject(v, "%s lacks \"%s\"", what, t[next].name);
    }
    return ST_OK;
}

static const char *
jstr(const json_t *o, const char *key, size_t *len)
{
    const json_t *s = json_object_get(o, key);

    *len = json_string_length(s);
    return json_string_value(s);
}

static bool
jint_min(const json_t *o, const char *key, json_int_t min)
{
    const json_t *j = json_object_get(o, key);
    return j == NULL || json_is_null(j) || json_integer_value(j) >= min;
}

static bool
all_strings(const json_t *a)
{
    size_t i;
    json_t *x;

    json_array_foreach(a, i, x) {
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

    if ((st = fields_check(v, items, items_fields, N_FIELDS(items_fields), "items")) != ST_OK)
        return st;
    if (!jint_min(items, "total", 1) || !jint_min(items, "ok", 0) ||
        !jint_min(items, "failed", 0))
        return reject(v, "items counts out of range");
    json_object_foreach(json_object_get(items, "versions"), key, val) {
        len = strlen(key);
        if (len == 0 || len > 10 || strspn(key, "0123456789") != len || key[0] == '0' ||
            !json_is_integer(val) || json_integer_value(val) < 0)
            return reject(v, "items.versions must map key versions to counts");
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

    if ((s = jstr(o, "chain_id", &len)) == NULL || !chain_id_ok(s, len))
        return reject(v, "chain_id must be 1 to %d printable characters", CHAIN_ID_MAX);
    if (!jint_min(o, "seq", 1) || !jint_min(o, "count", 1) || !jint_min(o, "status", 0) ||
        !jint_min(o, "key_version", 1))
        return reject(v, "seq, count, status or key_version out of range");
    if ((s = jstr(o, "prev_hash", &len)) == NULL || !hex_decode(prev, AUDIT_HASH_BYTES, s, len))
        return reject(v, "prev_hash is not %d lowercase hex digits", HASH_HEX);
    if ((s = jstr(o, "time", &len)) == NULL || !time_ok(s, len))
        return reject(v, "time is not RFC 3339 UTC with milliseconds");
    if (items != NULL && (st = event_items_check(v, items)) != ST_OK)
        return st;
    if ((st = fields_check(v, hmac, hmac_fields, N_FIELDS(hmac_fields), "hmac")) != ST_OK)
        return st;
    if (!all_strings(json_object_get(hmac, "context")) ||
        !all_strings(json_object_get(hmac, "reference")))
        return reject(v, "hmac.context and hmac.reference must hold strings");
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

    if (n < HASH_SUFFIX_LEN + 2 || memcmp(p + n - HASH_SUFFIX_LEN, HASH_KEY,
                                          sizeof HASH_KEY - 1) != 0 ||
        memcmp(p + n - 2, "\"}", 2) != 0)
        return reject(v, "event does not end with its \"hash\" member");
    hex = p + n - HASH_SUFFIX_LEN + (sizeof HASH_KEY - 1);
    if (!hex_decode(hash, AUDIT_HASH_BYTES, hex, HASH_HEX) ||
        (s = jstr(o, "hash", &len)) == NULL || len != HASH_HEX || memcmp(s, hex, HASH_HEX) != 0)
        return reject(v, "hash is not %d lowercase hex digits", HASH_HEX);
    event_hash(want, p, n - HASH_SUFFIX_LEN);
    if (memcmp(want, hash, AUDIT_HASH_BYTES) != 0)
        return reject(v, "hash mismatch: the event was altered");
    return ST_OK;
}

/* seq and prev_hash must continue the chain's head. */
static enum status
event_link(struct verifier *v, const json_t *o, const uint8_t prev[static AUDIT_HASH_BYTES],
           const uint8_t hash[static AUDIT_HASH_BYTES])
{
    char sh[SHOW_BYTES];
    size_t len;
    const char *id = jstr(o, "chain_id", &len);
    uint64_t seq = (uint64_t)json_integer_value(json_object_get(o, "seq"));
    struct chain *c = chain_get(v, id, len);
    bool cont = seq == c->seq + 1 && memcmp(prev, c->hash, AUDIT_HASH_BYTES) == 0;

    shown(sh, id, len);
    if (!cont && c->lines == 0 && c->origin == ORIGIN_SINCE)
        return reject(v, "chain \"%s\" does not continue from the --since checkpoint (seq %llu)",
                    sh, (unsigned long long)c->seq);
    if (!cont && c->lines == 0 && c->origin == ORIGIN_GENESIS)
        return reject(v, "chain \"%s\" starts at seq %llu: a chain starts at seq 1, after an "
                    "anchor checkpoint or after the --since checkpoint", sh,
                    (unsigned long long)seq);
    if (seq <= c->seq)
        return reject(v, "seq %llu repeats or goes back in chain \"%s\" (at seq %llu): a "
                    "duplicated or reordered event", (unsigned long long)seq, sh,
                    (unsigned long long)c->seq);
    if (seq != c->seq + 1)
        return reject(v, "seq %llu follows seq %llu in chain \"%s\": events are missing",
                    (unsigned long long)seq, (unsigned long long)c->seq, sh);
    if (!cont)
        return reject(v, "prev_hash is not the hash of seq %llu in chain \"%s\": an event was "
                    "deleted, reordered or altered", (unsigned long long)c->seq, sh);
    c->seq = seq;
    memcpy(c->hash, hash, AUDIT_HASH_BYTES);
    c->lines++;
    if (c->uncovered == 0)
        c->uncovered = v->line;
    v->res->events++;
    return ST_OK;
}

static enum status
verify_event(struct verifier *v, const json_t *o, const char *p, size_t n)
{
    uint8_t prev[AUDIT_HASH_BYTES], hash[AUDIT_HASH_BYTES];
    enum status st;

    if (v->in_since)
        return reject(v, "holds an event; it must hold checkpoint lines only");
    if ((st = fields_check(v, o, event_fields, N_FIELDS(event_fields), "event")) != ST_OK ||
        (st = event_values_check(v, o, prev)) != ST_OK ||
        (st = event_integrity(v, o, p, n, hash)) != ST_OK)
        return st;
    return event_link(v, o, prev, hash);
}

/* Checkpoint fields into t, hash and (key_change) new_pk, all checked. */
static enum status
cp_parse(struct verifier *v, const json_t *o, struct cp_text *t,
         uint8_t hash[static AUDIT_HASH_BYTES], uint8_t new_pk[static AUDIT_PK_BYTES])
{
    const char *s, *id, *pk;
    size_t len, id_len, pk_len, n = 0;
    char want[AUDIT_KEY_ID_CHARS + 1];

    memset(t, 0, sizeof *t);
    if ((t->chain_id = jstr(o, "chain_id", &t->chain_len)) == NULL ||
        !chain_id_ok(t->chain_id, t->chain_len))
        return reject(v, "chain_id must be 1 to %d printable characters", CHAIN_ID_MAX);
    if (!jint_min(o, "seq", 0))
        return reject(v, "checkpoint seq is negative");
    t->seq = (uint64_t)json_integer_value(json_object_get(o, "seq"));
    if ((s = jstr(o, "hash", &len)) == NULL || !hex_decode(hash, AUDIT_HASH_BYTES, s, len))
        return reject(v, "checkpoint hash is not %d lowercase hex digits", HASH_HEX);
    memcpy(t->hash, s, HASH_HEX);
    if ((s = jstr(o, "time", &len)) == NULL || !time_ok(s, len))
        return reject(v, "time is not RFC 3339 UTC with milliseconds");
    memcpy(t->time, s, TIME_CHARS);
    if (!kind_parse(&t->kind, json_string_value(json_object_get(o, "kind"))))
        return reject(v, "kind is not periodic, export, anchor or key_change");
    id = jstr(o, "new_key_id", &id_len);
    pk = jstr(o, "new_public_key", &pk_len);
    if ((t->kind == CP_KEY_CHANGE) != (id != NULL) || (id != NULL) != (pk != NULL))
        return reject(v, "new_key_id and new_public_key belong to key_change checkpoints only");
    if (t->kind != CP_KEY_CHANGE)
        return ST_OK;
    if (pk_len != PK_B64_CHARS || b64_std_decode(new_pk, AUDIT_PK_BYTES, &n, pk, pk_len) != ST_OK ||
        n != AUDIT_PK_BYTES)
        return reject(v, "new_public_key is not a base64 Ed25519 public key");
    auditfmt_key_id(want, new_pk);
    if (id_len != AUDIT_KEY_ID_CHARS || memcmp(id, want, AUDIT_KEY_ID_CHARS) != 0)
        return reject(v, "new_key_id is not the id of new_public_key");
    memcpy(t->new_key_id, want, sizeof want);
    memcpy(t->new_pk, pk, PK_B64_CHARS);
    return ST_OK;
}

/* One signature entry: true when it verifies under pk. */
static bool
sig_verifies(const uint8_t sig[static SIG_BYTES], const struct sbuf *msg,
             const uint8_t pk[static AUDIT_PK_BYTES])
{
    return crypto_sign_ed25519_verify_detached(sig, (const unsigned char *)msg->p, msg->len,
                                               pk) == 0;
}

static enum status
sig_parse(struct verifier *v, const json_t *e, const char **id, uint8_t sig[static SIG_BYTES])
{
    const char *s;
    size_t len, id_len, n = 0;
    enum status st;

    if ((st = fields_check(v, e, sig_fields, N_FIELDS(sig_fields), "signature")) != ST_OK)
        return st;
    *id = jstr(e, "key_id", &id_len);
    s = jstr(e, "sig", &len);
    if (id_len != AUDIT_KEY_ID_CHARS || strspn(*id, "0123456789abcdef") != id_len)
        return reject(v, "signature key_id is not %d lowercase hex digits", AUDIT_KEY_ID_CHARS);
    if (len != SIG_B64_CHARS || b64_std_decode(sig, SIG_BYTES, &n, s, len) != ST_OK ||
        n != SIG_BYTES)
        return reject(v, "sig is not a base64 Ed25519 signature");
    return ST_OK;
}

/* At least one accepted key must sign, and every signature by an accepted key must verify; a
 * key change must also be signed by its new key, which is accepted from then on. */
static enum status
cp_signatures(struct verifier *v, const json_t *sigs, const struct cp_text *t,
              const uint8_t new_pk[static AUDIT_PK_BYTES])
{
    uint8_t sig[SIG_BYTES];
    size_t n = json_array_size(sigs), good = 0, i;
    bool new_ok = false;
    const char *id;
    json_t *e;
    enum status st;

    if (n == 0 || n > VERIFY_MAX_SIGS)
        return reject(v, "a checkpoint holds 1 to %d signatures", VERIFY_MAX_SIGS);
    cp_message(&v->msg, t);
    json_array_foreach(sigs, i, e) {
        if ((st = sig_parse(v, e, &id, sig)) != ST_OK)
            return st;
        if (t->kind == CP_KEY_CHANGE && strcmp(id, t->new_key_id) == 0) {
            if (!(new_ok = sig_verifies(sig, &v->msg, new_pk)))
                return reject(v, "the new key's signature on the key change does not verify");
            continue;
        }
        for (size_t k = 0; k < v->n_keys; k++) {
            if (strcmp(id, v->keys[k].id) != 0)
                continue;
            if (!sig_verifies(sig, &v->msg, v->keys[k].pk))
                return reject(v, "the signature by key %s does not verify: the checkpoint was "
                            "altered", v->keys[k].id);
            good++;
        }
    }
    if (good == 0)
        return reject(v, "checkpoint is not signed by an accepted key (re-signed with another "
                    "key, or a --public-key is missing)");
    if (t->kind == CP_KEY_CHANGE && !new_ok)
        return reject(v, "key change is not signed by its new key");
    return t->kind == CP_KEY_CHANGE ? key_accept(v, new_pk) : ST_OK;
}

/* A --since checkpoint: its chain starts there (and must show up in the export). */
static enum status
cp_since(struct verifier *v, const struct cp_text *t, const uint8_t hash[static AUDIT_HASH_BYTES])
{
    char sh[SHOW_BYTES];
    struct chain *c = chain_get(v, t->chain_id, t->chain_len);

    if (c->origin == ORIGIN_SINCE)
        return reject(v, "two checkpoints for chain \"%s\"", shown(sh, t->chain_id, t->chain_len));
    c->origin = ORIGIN_SINCE;
    c->seq = t->seq;
    memcpy(c->hash, hash, AUDIT_HASH_BYTES);
    return ST_OK;
}

/* A checkpoint covers its chain's head, or starts a chain when it is an anchor. */
static enum status
cp_apply(struct verifier *v, const struct cp_text *t, const uint8_t hash[static AUDIT_HASH_BYTES])
{
    char sh[SHOW_BYTES];
    struct chain *c = chain_get(v, t->chain_id, t->chain_len);

    shown(sh, t->chain_id, t->chain_len);
    if (c->lines == 0 && c->origin == ORIGIN_GENESIS && t->kind == CP_ANCHOR) {
        c->origin = ORIGIN_ANCHOR;      /* events up to seq were pruned behind this anchor */
        c->seq = t->seq;
        memcpy(c->hash, hash, AUDIT_HASH_BYTES);
    } else if (t->seq != c->seq) {
        return reject(v, "checkpoint for seq %llu, but chain \"%s\" is at seq %llu here: events "
                    "were deleted, added or moved", (unsigned long long)t->seq, sh,
                    (unsigned long long)c->seq);
    } else if (memcmp(hash, c->hash, AUDIT_HASH_BYTES) != 0) {
        return reject(v, "checkpoint hash is not the hash of seq %llu in chain \"%s\"",
                    (unsigned long long)t->seq, sh);
    }
    c->lines++;
    c->uncovered = 0;
    c->last_cp_line = v->line;
    c->last_kind = t->kind;
    v->res->checkpoints++;
    return ST_OK;
}

static enum status
verify_checkpoint(struct verifier *v, const json_t *o)
{
    struct cp_text t;
    uint8_t hash[AUDIT_HASH_BYTES], new_pk[AUDIT_PK_BYTES] = {0};
    enum status st;

    if ((st = fields_check(v, o, cp_fields, N_FIELDS(cp_fields), "checkpoint")) != ST_OK ||
        (st = cp_parse(v, o, &t, hash, new_pk)) != ST_OK ||
        (st = cp_signatures(v, json_object_get(o, "signatures"), &t, new_pk)) != ST_OK)
        return st;
    return v->in_since ? cp_since(v, &t, hash) : cp_apply(v, &t, hash);
}

static enum status
verify_line(struct verifier *v, const char *p, size_t n)
{
    json_error_t je;
    json_t *o = NULL;
    const char *type = NULL;
    char sh[SHOW_BYTES];
    enum status st;

    if (n == 0)
        st = reject(v, "blank line");
    else if (n > VERIFY_LINE_MAX)
        st = reject(v, "line longer than %zu bytes", VERIFY_LINE_MAX);
    else if (p[n - 1] == '\r')
        st = reject(v, "line ends with a carriage return (CRLF line endings are not allowed)");
    else if ((o = json_loadb(p, n, JSON_REJECT_DUPLICATES, &je)) == NULL)
        st = reject(v, "not a complete JSON object (a torn or altered line): %s",
                  shown(sh, je.text, strlen(je.text)));
    else if (!json_is_object(o))
        st = reject(v, "not a JSON object");
    else if ((type = json_string_value(json_object_get(o, "type"))) != NULL &&
             strcmp(type, "event") == 0)
        st = verify_event(v, o, p, n);
    else if (type != NULL && strcmp(type, "checkpoint") == 0)
        st = verify_checkpoint(v, o);
    else
        st = reject(v, "\"type\" is neither \"event\" nor \"checkpoint\"");
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
        if (nl == NULL && !v->in_since)
            st = reject(v, "torn last line: it does not end with a newline");
        else if (n > 0 || !v->in_since)
            st = verify_line(v, text + pos, n);
        pos += n + 1;
    }
    return st;
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
        return reject(v, "no checkpoint: nothing in the export is signed");
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
    return reject(v, "chain \"%s\": %s", shown(sh, bad->id, bad->id_len), why);
}

static void
verifier_free(struct verifier *v)
{
    for (size_t i = 0; i < v->cap; i++)
        free(v->chains[i].id);
    free(v->chains);
    sbuf_free(&v->msg);
}

enum status
audit_verify(const char *text, size_t len, const uint8_t (*keys)[AUDIT_PK_BYTES], size_t n_keys,
             const char *since, size_t since_len, struct audit_verify_result *res)
{
    struct verifier v = {.res = res};
    enum status st = ST_INVALID;

    if (res == NULL)
        return ST_INVALID;
    memset(res, 0, sizeof *res);
    if ((text == NULL && len > 0) || (since == NULL && since_len > 0) || keys == NULL ||
        n_keys == 0 || n_keys > VERIFY_MAX_KEYS) {
        snprintf(res->error, sizeof res->error, "no public key, or no input");
        goto out;
    }
    for (size_t i = 0; i < n_keys; i++)
        (void)key_accept(&v, keys[i]);              /* cannot fail: n_keys is bounded */
    if (since != NULL) {
        v.in_since = true;
        if ((st = verify_text(&v, since, since_len)) != ST_OK)
            goto out;
        if (v.n_chains == 0) {
            st = reject(&v, "holds no checkpoint");
            goto out;
        }
        v.in_since = false;
        v.line = 0;
    }
    if ((st = verify_text(&v, text, len)) != ST_OK || (st = verify_end(&v)) != ST_OK)
        goto out;
    for (size_t i = 0; i < v.cap; i++)
        res->chains += v.chains[i].id != NULL && v.chains[i].lines > 0;
out:
    verifier_free(&v);
    return st;
}
