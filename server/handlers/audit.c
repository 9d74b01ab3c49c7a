/* SPDX-License-Identifier: Apache-2.0 */
/* server/handlers/audit.c -- the audit trail over HTTP: events, export, verify, public keys,
 * the HMAC of a value, and per-app usage roll-ups. Reads only; the writer is server/audit/writer.c. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/checked.h"
#include "common/json/jsonx.h"
#include "server/audit/audit.h"
#include "server/audit/format.h"
#include "server/handlers/handlers.h"
#include "server/service.h"

/* Auditing can be off (commands that do not audit); the route table has checked the scopes. */
static bool
require(struct req *r)
{
    if (r->svc->audit != NULL)
        return true;
    req_fail(r, ST_UNAVAILABLE, "auditing is off");
    return false;
}

/* RFC 3339 ("2026-11-28T20:21:00Z", optional fraction) or unix seconds, to unix ms. Times
 * from 1970 to 9999-12-31T23:59:59Z only (TIME_MAX_SECONDS), so the ms value always fits. */
static bool
parse_time(const char *s, int64_t *ms)
{
    struct tm tm = {0};
    char *end;
    int64_t secs;

    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*s != '\0' && *end == '\0') {
        secs = errno == 0 ? (int64_t)v : -1;
    } else {
        end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
        if (end == NULL)
            return false;
        if (*end == '.')
            end += 1 + strspn(end + 1, "0123456789");
        if (strcmp(end, "Z") != 0)
            return false;
        secs = (int64_t)timegm(&tm);
    }
    return secs >= 0 && secs <= TIME_MAX_SECONDS && checked_mul(ms, secs, 1000);
}

static enum status
events_filter(struct req *r, struct store_audit_filter *f, char chain[static STORE_CHAIN_ID_MAX])
{
    const char *from = req_query(r, "from"), *to = req_query(r, "to");
    const char *cursor = req_query(r, "cursor"), *limit = req_query(r, "limit");

    memset(f, 0, sizeof *f);
    f->app = req_query(r, "app");
    f->key_id = req_query(r, "key_id");
    f->op = req_query(r, "op");
    f->outcome = req_query(r, "outcome");
    f->limit = 100;
    if ((from != NULL && !parse_time(from, &f->from_ms)) ||
        (to != NULL && !parse_time(to, &f->to_ms)))
        return ST_INVALID;
    if (limit != NULL) {
        char *end;
        long v = strtol(limit, &end, 10);
        if (*end != '\0' || v < 1 || v > 1000)
            return ST_INVALID;
        f->limit = (size_t)v;
    }
    if (cursor != NULL) {
        const char *colon = strchr(cursor, ':');
        char *end;
        if (colon == NULL || colon == cursor || (size_t)(colon - cursor) >= STORE_CHAIN_ID_MAX)
            return ST_INVALID;
        snprintf(chain, STORE_CHAIN_ID_MAX, "%.*s", (int)(colon - cursor), cursor);
        f->after_seq = strtoull(colon + 1, &end, 10);
        if (*end != '\0')
            return ST_INVALID;
        f->after_chain = chain;
    }
    return ST_OK;
}

void
h_audit_events(struct req *r)
{
    struct store_audit_filter f;
    struct store_audit_row *rows = NULL;
    char chain[STORE_CHAIN_ID_MAX];
    size_t n = 0;
    enum status st;

    if (!require(r))
        return;
    if ((st = events_filter(r, &f, chain)) != ST_OK) {
        req_fail(r, st,
                 "bad filter: from/to are RFC 3339 or unix seconds from 1970 to "
                 "9999-12-31, limit 1..1000, cursor CHAIN:SEQ");
        return;
    }
    if ((st = audit_events(r->svc->audit, &f, &rows, &n)) != ST_OK) {
        req_fail(r, st, NULL);
        return;
    }
    struct sbuf b = {0};
    sbuf_adds(&b, "{\"events\":[");
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            sbuf_adds(&b, ",");
        sbuf_adds(&b, rows[i].line); /* the stored line is already JSON */
    }
    sbuf_adds(&b, "],\"next_cursor\":");
    if (n == f.limit)
        sbuf_addf(&b, "\"%s:%llu\"}", rows[n - 1].chain_id, (unsigned long long)rows[n - 1].seq);
    else
        sbuf_adds(&b, "null}");
    audit_events_free(rows, n);
    req_reply_json(r, 200, &b);
}

static enum status
to_sbuf(void *arg, const char *line, size_t len)
{
    sbuf_add(arg, line, len);
    return ST_OK;
}

void
h_audit_export(struct req *r)
{
    const char *chain = req_query(r, "chain_id"), *after = req_query(r, "after_seq");
    struct sbuf b = {0};
    uint64_t after_seq = 0;
    enum status st;

    if (!require(r))
        return;
    if (after != NULL) {
        char *end;
        after_seq = strtoull(after, &end, 10);
        if (*end != '\0' || chain == NULL) {
            req_fail(r, ST_INVALID, "after_seq needs chain_id and must be a number");
            return;
        }
    }
    if ((st = audit_export(r->svc->audit, chain, after_seq, to_sbuf, &b, NULL)) != ST_OK) {
        sbuf_free(&b);
        req_fail(r, st, NULL);
        return;
    }
    req_reply_raw(r, 200, "application/x-ndjson", &b);
}

void
h_audit_verify(struct req *r)
{
    struct audit_trail_check c;
    struct sbuf out = {0};
    enum status st;

    if (!require(r))
        return;
    if ((st = audit_verify_trail(r->svc->audit, &c)) != ST_OK) {
        req_fail(r, st, NULL);
        return;
    }
    sbuf_addf(&out, "{\"valid\":%s,\"events\":%llu,\"checkpoints\":%llu,\"chains\":%llu",
              c.valid ? "true" : "false", (unsigned long long)c.events,
              (unsigned long long)c.checkpoints, (unsigned long long)c.chains);
    if (!c.valid) {
        sbuf_adds(&out, ",\"error\":");
        sbuf_add_jstr(&out, c.error, strlen(c.error));
        sbuf_addf(&out, ",\"line\":%llu", (unsigned long long)c.line);
    }
    sbuf_adds(&out, "}");
    req_reply_json(r, 200, &out);
}

void
h_audit_public_key(struct req *r)
{
    struct sbuf b = {0};
    if (!require(r))
        return;
    char *j = audit_public_keys_json(r->svc->audit);
    sbuf_adds(&b, j);
    free(j);
    req_reply_json(r, 200, &b);
}

void
h_audit_hash(struct req *r)
{
    static const char *const allowed[] = {"value", NULL};
    json_t *body = NULL;
    const char *msg = NULL, *value = NULL;
    size_t len = 0;
    char hex[AUDIT_HEX];
    enum status st;

    if (!require(r))
        return;
    if ((st = jx_parse_object(&body, r->body, r->body_len, &msg)) == ST_OK &&
        (st = jx_only(body, allowed, &msg)) == ST_OK &&
        (jx_str(body, "value", &value, &len, NULL) != ST_OK || value == NULL)) {
        st = ST_INVALID;
        msg = "value is required and must be a string";
    }
    if (st == ST_OK)
        audit_hmac_hex(r->svc->audit, hex, value, len);
    json_decref(body);
    if (st != ST_OK) {
        req_fail(r, st, msg);
        return;
    }
    struct sbuf b = {0};
    sbuf_addf(&b, "{\"hmac\":\"%s\",\"key_id\":\"%s\"}", hex, audit_hmac_key_id(r->svc->audit));
    req_reply_json(r, 200, &b);
}

static bool
day_ok(const char *s)
{
    struct tm tm = {0};
    const char *end = s != NULL ? strptime(s, "%Y-%m-%d", &tm) : NULL;
    return end != NULL && *end == '\0' && strlen(s) == 10;
}

void
h_app_usage(struct req *r)
{
    const char *from = req_query(r, "from"), *to = req_query(r, "to");
    struct store_usage *u = NULL;
    size_t n = 0;
    enum status st;

    if (!principal_allows(&r->principal, SCOPE_APPS_ADMIN, NULL) &&
        !principal_allows(&r->principal, SCOPE_AUDIT_READ, NULL)) {
        req_fail(r, ST_FORBIDDEN, "scope: needs apps:admin or audit:read");
        return;
    }
    if (!day_ok(from) || !day_ok(to) || strcmp(from, to) > 0) {
        req_fail(r, ST_INVALID, "from and to are required days (YYYY-MM-DD), from <= to");
        return;
    }
    if ((st = apps_usage(r->svc->apps, r->p1, from, to, &u, &n)) != ST_OK) {
        req_fail(r, st, NULL);
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s, s:I}", "day", u[i].day, "op",
                                             u[i].op, "keyring", u[i].keyring, "outcome",
                                             u[i].outcome, "count", (json_int_t)u[i].count));
    free(u);
    reply_jansson(
        r, 200,
        json_pack("{s:s, s:s, s:s, s:o}", "app", r->p1, "from", from, "to", to, "usage", arr));
}

/* POST /v1/audit/rotate-key: needs audit:read and keyrings:admin, and no keyring allow-list:
 * the signing key covers every keyring's events, so a key bounded to some keyrings may not
 * change it. */
void
h_audit_rotate_key(struct req *r)
{
    char id[AUDIT_KEY_ID_CHARS + 1];
    if (!require(r))
        return;
    if (!principal_all_keyrings(&r->principal)) {
        req_fail(r, ST_FORBIDDEN,
                 "allow-list: changing the audit signing key needs an API key "
                 "without a keyring allow-list");
        return;
    }
    enum status st = audit_rotate_key(r->svc->audit, id);
    if (st != ST_OK) {
        req_fail(r, st, st == ST_CONFLICT ? "too many retired audit keys are kept" : NULL);
        return;
    }
    char *keys = audit_public_keys_json(r->svc->audit);
    struct sbuf b = {0};
    sbuf_addf(&b, "{\"key_id\":\"%s\",", id);
    sbuf_adds(&b, keys + 1); /* splice in "keys": [...] */
    free(keys);
    req_reply_json(r, 200, &b);
}
