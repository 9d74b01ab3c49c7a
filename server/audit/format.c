/* SPDX-License-Identifier: Apache-2.0 */
/* server/audit/format.c -- audit trail lines (hash-chained events, Ed25519-signed checkpoints) and
 * the offline verifier. Pure: no I/O, no clock. The verifier treats every byte as hostile. */
#include "server/audit/format.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "common/xmem.h"
#include "crypto/b64.h"
#include "crypto/context.h"
#include "crypto/sign.h"
#include "server/audit/format_priv.h"

const char *const afmt_kind_names[CP__COUNT] = {"periodic", "export", "anchor", "key_change"};

/* ---- shared text helpers ------------------------------------------------------------------ */

/* Valid UTF-8 without control characters: a line stays one line, and only '"' and '\\' need
 * escaping. Checkpoint fields are '\n'-separated in the signed message, so this also keeps
 * that message unambiguous. */
bool
afmt_text_ok(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    }
    return context_utf8_valid(s, len) != 0;
}

bool
afmt_chain_id_ok(const char *s, size_t len)
{
    return len > 0 && len <= CHAIN_ID_MAX && afmt_text_ok(s, len);
}

static void
hex_encode(char out[static HASH_HEX + 1], const uint8_t h[static AUDIT_HASH_BYTES])
{
    sodium_bin2hex(out, HASH_HEX + 1, h, AUDIT_HASH_BYTES);
}

/* Exactly 2n lowercase hex digits (one spelling per value). */
bool
afmt_hex_decode(uint8_t *out, size_t n, const char *s, size_t len)
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

void
auditfmt_time(char out[static AUDIT_TIME_CHARS + 1], int64_t ms)
{
    time_format(out, ms < 0 ? 0 : ms > TIME_MAX_MS ? TIME_MAX_MS : ms);
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
bool
afmt_time_ok(const char *s, size_t len)
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
void
afmt_event_hash(uint8_t hash[static AUDIT_HASH_BYTES], const char *body, size_t len)
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
    return s == NULL || afmt_text_ok(s, strlen(s));
}

static bool
list_ok(const char *const *v, size_t n)
{
    if (n > 0 && v == NULL)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (v[i] == NULL || !afmt_text_ok(v[i], strlen(v[i])))
            return false;
    }
    return true;
}

static bool
event_valid(const struct audit_event *e)
{
    const char *const opt[] = {e->method,   e->route,      e->app,         e->key_id,
                               e->keyring,  e->trace_id,   e->hmac_key_id, e->h_request_id,
                               e->h_client, e->h_keyring,  e->h_key_id,    e->h_sub,
                               e->cert_id,  e->client_cert};

    if (e->chain_id == NULL || !afmt_chain_id_ok(e->chain_id, strlen(e->chain_id)) ||
        e->op == NULL || !afmt_text_ok(e->op, strlen(e->op)) || e->outcome == NULL ||
        !afmt_text_ok(e->outcome, strlen(e->outcome)))
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
            if (e->versions[i] <= e->versions[i - 1]) /* ascending: no duplicate keys */
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
    /* Members added after v1's first release are omitted when absent, so earlier events hash
     * exactly as before. */
    if (e->cert_id != NULL)
        add_str(out, ",\"cert_id\":", e->cert_id);
    if (e->client_cert != NULL)
        add_str(out, ",\"client_cert\":", e->client_cert);
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
auditfmt_event(struct sbuf *out, uint8_t hash[static AUDIT_HASH_BYTES], const struct audit_event *e)
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
    afmt_event_hash(hash, out->p + start, out->len - start);
    hex_encode(hex, hash);
    sbuf_adds(out, HASH_KEY);
    sbuf_add(out, hex, HASH_HEX);
    sbuf_add(out, "\"}", 2);
    st = ST_OK;
out:
    return st;
}

/* ---- checkpoints ------------------------------------------------------------------------- */

void
afmt_cp_message(struct sbuf *m, const struct cp_text *t)
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
    sbuf_adds(m, afmt_kind_names[t->kind]);
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
    sbuf_adds(out, afmt_kind_names[t->kind]);
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

bool
afmt_kind_parse(enum cp_kind *out, const char *s)
{
    for (int k = 0; k < CP__COUNT; k++) {
        if (s != NULL && strcmp(s, afmt_kind_names[k]) == 0) {
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
    if (c->chain_id == NULL || !afmt_chain_id_ok(c->chain_id, strlen(c->chain_id)) ||
        c->seq > INT64_MAX || c->time_ms < 0 || c->time_ms > TIME_MAX_MS ||
        !afmt_kind_parse(&t->kind, c->kind))
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
    afmt_cp_message(&msg, &t);
    cp_line_head(out, &t);
    for (size_t i = 0; i < n_signers; i++) {
        sign_detached(sig, signers[i].sk, (const uint8_t *)msg.p, msg.len);
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
