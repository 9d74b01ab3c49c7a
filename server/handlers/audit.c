/* SPDX-License-Identifier: Apache-2.0 */
/* server/handlers/audit.c -- the audit trail over HTTP: events, export, verify, public keys,
 * the HMAC of a value, and per-app usage roll-ups. Reads only; the writer is server/audit/writer.c. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/checked.h"
#include "common/clock.h"
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

static const char *const audit_ops[] = {"keyring.create",
                                        "keyring.list",
                                        "keyring.get",
                                        "keyring.update",
                                        "keyring.delete",
                                        "keyring.rotate",
                                        "encrypt",
                                        "decrypt",
                                        "rewrap",
                                        "datakey",
                                        "app.create",
                                        "app.list",
                                        "app.get",
                                        "key.create",
                                        "key.list",
                                        "key.get",
                                        "key.revoke",
                                        "key.rotate",
                                        "app.usage",
                                        "audit.events",
                                        "audit.export",
                                        "audit.verify",
                                        "audit.public_key",
                                        "audit.hash",
                                        "audit.rotate_key",
                                        "admin_key.break_glass",
                                        "audit.chain_restart",
                                        "unrecordable",
                                        "unknown",
                                        "cert.list",
                                        "cert.create",
                                        "cert.get",
                                        "cert.delete",
                                        "cert.history",
                                        "cert.rotation",
                                        "compliance.report",
                                        "compliance.public_key",
                                        "compliance.run",
                                        NULL};
static const char *const audit_outcomes[] = {"ok", "denied", "invalid", "error", NULL};

/* Is v one of set? Else *msg names the parameter, the value when it is a plain short name
 * (with the closest accepted one), and where the accepted values are listed. */
static bool
enum_ok(struct req *r, const char *param, const char *v, const char *const *set, const char **msg)
{
    char text[240];
    size_t n = strlen(v);

    for (size_t i = 0; set[i] != NULL; i++)
        if (strcmp(v, set[i]) == 0)
            return true;
    const char *near =
        n <= 40 && strspn(v, "abcdefghijklmnopqrstuvwxyz._") == n ? jx_closest(v, set) : NULL;
    if (set == audit_outcomes)
        snprintf(text, sizeof text, "%s must be one of ok, denied, invalid, error", param);
    else if (near != NULL)
        snprintf(text, sizeof text, "unknown %s \"%s\" (did you mean \"%s\"?)", param, v, near);
    else
        snprintf(text, sizeof text,
                 "unknown %s (the operations are listed in docs/openapi.yaml, AuditOp)", param);
    *msg = arena_strndup(r->arena, text, strlen(text));
    return false;
}

/* The cursor is "TIME_MS:SEQ:CHAIN", the last event of the previous page. */
static bool
parse_cursor(const char *cursor, struct store_audit_filter *f,
             char chain[static STORE_CHAIN_ID_MAX])
{
    char *end;
    errno = 0;
    long long t = strtoll(cursor, &end, 10);
    if (end == cursor || *end != ':' || errno != 0 || t < 0)
        return false;
    const char *p = end + 1;
    unsigned long long seq = strtoull(p, &end, 10);
    if (end == p || *end != ':' || errno != 0 || end[1] == '\0' ||
        strlen(end + 1) >= STORE_CHAIN_ID_MAX)
        return false;
    snprintf(chain, STORE_CHAIN_ID_MAX, "%s", end + 1);
    f->after_time_ms = (int64_t)t;
    f->after_seq = (uint64_t)seq;
    f->after_chain = chain;
    return true;
}

static enum status
events_filter(struct req *r, struct store_audit_filter *f, char chain[static STORE_CHAIN_ID_MAX],
              const char **msg)
{
    const char *from = req_query(r, "from"), *to = req_query(r, "to");
    const char *cursor = req_query(r, "cursor"), *limit = req_query(r, "limit");
    const char *order = req_query(r, "order");

    memset(f, 0, sizeof *f);
    f->app = req_query(r, "app");
    f->key_id = req_query(r, "key_id");
    f->op = req_query(r, "op");
    f->outcome = req_query(r, "outcome");
    f->keyring = req_query(r, "keyring");
    f->limit = 100;
    f->newest_first = true;
    if (order != NULL && strcmp(order, "asc") != 0 && strcmp(order, "desc") != 0) {
        *msg = "order must be asc (oldest first) or desc (newest first, the default)";
        return ST_INVALID;
    }
    if (order != NULL)
        f->newest_first = strcmp(order, "desc") == 0;
    if ((f->op != NULL && !enum_ok(r, "op", f->op, audit_ops, msg)) ||
        (f->outcome != NULL && !enum_ok(r, "outcome", f->outcome, audit_outcomes, msg)))
        return ST_INVALID;
    if ((from != NULL && !when_parse(from, false, &f->from_ms)) ||
        (to != NULL && !when_parse(to, true, &f->to_ms))) {
        *msg = "from and to are " WHEN_FORMS " (a day in to includes that whole day)";
        return ST_INVALID;
    }
    if (limit != NULL) {
        char *end;
        long v = strtol(limit, &end, 10);
        if (*limit == '\0' || *end != '\0' || v < 1 || v > 1000) {
            *msg = "limit must be an integer from 1 to 1000";
            return ST_INVALID;
        }
        f->limit = (size_t)v;
    }
    if (cursor != NULL && !parse_cursor(cursor, f, chain)) {
        *msg = "cursor must be the next_cursor of a previous page (TIME:SEQ:CHAIN)";
        return ST_INVALID;
    }
    return ST_OK;
}

void
h_audit_events(struct req *r)
{
    static const char *const known[] = {"app", "key_id", "op",    "outcome", "keyring", "from",
                                        "to",  "cursor", "limit", "order",   NULL};
    struct store_audit_filter f;
    struct store_audit_row *rows = NULL;
    char chain[STORE_CHAIN_ID_MAX];
    const char *msg = NULL;
    size_t n = 0;
    enum status st;

    if (!require(r) || !query_only(r, known))
        return;
    if ((st = events_filter(r, &f, chain, &msg)) != ST_OK) {
        req_fail(r, st, msg);
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
    sbuf_addf(&b, "],\"order\":\"%s\",\"next_cursor\":", f.newest_first ? "desc" : "asc");
    if (n == f.limit) {
        char cur[STORE_CHAIN_ID_MAX + 48];
        int k = snprintf(cur, sizeof cur, "%lld:%llu:%s", (long long)rows[n - 1].time_ms,
                         (unsigned long long)rows[n - 1].seq, rows[n - 1].chain_id);
        sbuf_add_jstr(&b, cur, k > 0 ? strlen(cur) : 0);
        sbuf_adds(&b, "}");
    } else {
        sbuf_adds(&b, "null}");
    }
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

#define USAGE_DEFAULT_DAYS 30

/* from and to of a usage query: days (or any time form, taken as its UTC day); to defaults to
 * today (UTC), from to 30 days ending at to. */
static bool
usage_days(struct req *r, char from[static 11], char to[static 11])
{
    const char *qf = req_query(r, "from"), *qt = req_query(r, "to");
    int64_t ms;

    if (qt != NULL) {
        if (!when_day(qt, to))
            return false;
    } else {
        time_t now = (time_t)clock_now_s();
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(to, 11, "%Y-%m-%d", &tm);
    }
    if (qf != NULL)
        return when_day(qf, from);
    if (!when_parse(to, false, &ms))
        return false;
    time_t t = (time_t)(ms / 1000) - (time_t)(USAGE_DEFAULT_DAYS - 1) * 86400;
    struct tm tm;
    gmtime_r(&t, &tm);
    return strftime(from, 11, "%Y-%m-%d", &tm) == 10;
}

void
h_app_usage(struct req *r)
{
    static const char *const known[] = {"from", "to", NULL};
    char from[11], to[11];
    struct store_usage *u = NULL;
    size_t n = 0;
    enum status st;

    if (!principal_allows(&r->principal, SCOPE_APPS_ADMIN, NULL) &&
        !principal_allows(&r->principal, SCOPE_AUDIT_READ, NULL)) {
        req_fail(r, ST_FORBIDDEN, "scope: needs apps:admin or audit:read");
        return;
    }
    if (!query_only(r, known))
        return;
    if (!usage_days(r, from, to) || strcmp(from, to) > 0) {
        req_fail(r, ST_INVALID,
                 "from and to are days (YYYY-MM-DD) or any time form (" WHEN_FORMS
                 "), from <= to; by default the 30 days up to today (UTC)");
        return;
    }
    if ((st = apps_usage(r->svc->apps, r->p1, from, to, &u, &n)) != ST_OK) {
        req_fail(r, st, or_not_found(st, NULL, "app not found"));
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
