/* SPDX-License-Identifier: Apache-2.0 */
/* server/handlers/pipeline.c -- what the service adds around every request the transport
 * routes: admission (the bearer API key or JWT, then the route's scopes and, for keyring routes,
 * the key's allow-list), and the request's audit event (built from what the transport and the
 * handler recorded, handed to the writer; the answer waits until it is durable). Never logs or
 * records a credential; identifying values reach the event only as HMACs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/clock.h"
#include "common/names.h"
#include "common/text.h"
#include "server/apps.h"
#include "server/audit/audit.h"
#include "server/auth/authz.h"
#include "server/auth/jwt.h"
#include "server/handlers/handlers.h"
#include "server/keyrings.h"
#include "server/obs/opstats.h"
#include "server/obs/trace.h"
#include "server/service.h"

/* --- admission --- */

/* A JWT bearer: the app is "jwt:<iss>", scopes come from the role claim, sub is HMAC-ed; the
 * config's rate and burst apply per (iss, sub) bucket (429 with Retry-After, as for keys). */
static enum status
authenticate_jwt(struct req *r, const struct authz *az)
{
    struct jwt_claims c;
    char bucket[JWT_BUCKET_BYTES];
    int64_t rate, burst;
    enum status st =
        service_jwt_verify(r->svc, az->token, az->token_len, clock_now_s(), &c, &rate, &burst);

    if (st != ST_OK) {
        apps_count_failure(r->svc->apps, AUTH_FAIL_JWT);
        sodium_memzero(&c, sizeof c);
        return ST_UNAUTHENTICATED;
    }
    snprintf(r->principal.app, sizeof r->principal.app, "jwt:%.*s",
             (int)(sizeof r->principal.app - 5), c.iss);
    r->principal.scopes = c.scopes;
    r->principal.keyrings[0] = '\0';
    if (r->svc->audit != NULL)
        audit_hmac_hex(r->svc->audit, r->au.h_sub, c.sub, strlen(c.sub));
    jwt_bucket(bucket, &c);
    sodium_memzero(&c, sizeof c);
    r->authenticated = true;
    return apps_rate_check(r->svc->apps, bucket, rate, burst, &r->retry_after);
}

static enum status
authenticate(struct req *r)
{
    const char *h = req_header(r, "Authorization");
    struct authz az;
    enum status st;

    if (authz_parse(h, h != NULL ? strlen(h) : 0, &az) != ST_OK) {
        apps_count_failure(r->svc->apps, AUTH_FAIL_MALFORMED);
        return ST_UNAUTHENTICATED;
    }
    if (az.kind == AUTHZ_JWT)
        return service_jwt_on(r->svc) ? authenticate_jwt(r, &az) : ST_UNAUTHENTICATED;
    st = apps_authenticate(r->svc->apps, az.token, az.token_len, &r->principal, &r->retry_after);
    r->authenticated = st == ST_OK || st == ST_RATE_LIMITED;
    if (!r->authenticated)
        r->au.presented_key_id = arena_strndup(r->arena, az.key_id, strlen(az.key_id));
    return st;
}

/* The 403 text for a route's scopes the principal lacks: "scope: needs a and b". */
static const char *
scope_refusal(struct req *r, uint32_t missing)
{
    char text[256] = "scope: needs ";
    size_t n = strlen(text);
    bool first = true;

    for (uint32_t bit = 1; bit != 0 && bit <= missing; bit <<= 1) {
        if ((missing & bit) == 0)
            continue;
        n += (size_t)snprintf(text + n, sizeof text - n, "%s%s", first ? "" : " and ",
                              scope_name(bit));
        first = false;
        if (n >= sizeof text)
            break;
    }
    return arena_strndup(r->arena, text, strlen(text));
}

/* The 403 text for a keyring outside the caller's allow-list: names the keyring (a valid name
 * only) and, since it is the caller's own, the allow-list that refused. */
const char *
allow_list_refusal(struct req *r, const char *keyring)
{
    char text[STORE_KEYRINGS_MAX + 200];
    if (keyring == NULL || !names_valid(keyring))
        return "allow-list: the keyring is not in the API key's keyring allow-list";
    snprintf(text, sizeof text,
             "allow-list: keyring \"%s\" is not in the API key's keyring allow-list (%s)", keyring,
             r->principal.keyrings[0] != '\0' ? r->principal.keyrings : "none");
    return arena_strndup(r->arena, text, strlen(text));
}

/* The transport's admit hook: authenticate, then the route's scopes (and, on keyring routes, the
 * key's allow-list) before the handler runs; a refusal is answered here. Routes with scopes 0
 * decide in their handler. */
/* A finished child span of the request (when sampled). */
static void
child_span(struct req *r, const struct trace_ctx *ctx, const char *name, int64_t start_ns,
           enum status st)
{
    struct trace_span sp = {.ctx = *ctx,
                            .name = name,
                            .kind = TRACE_KIND_INTERNAL,
                            .start_ns = start_ns,
                            .end_ns = trace_now_ns(),
                            .error = st != ST_OK};
    snprintf(sp.outcome, sizeof sp.outcome, "%s", status_name(st));
    if (r->authenticated)
        snprintf(sp.app, sizeof sp.app, "%s", r->principal.app);
    trace_emit(r->svc->tracer, &sp);
}

void
req_span(struct req *r, const char *name, int64_t start_ns, enum status st)
{
    struct trace_ctx ctx;
    if (!r->trace.sampled)
        return;
    trace_child(&r->trace, &ctx);
    child_span(r, &ctx, name, start_ns, st);
}

static bool
admit(struct req *r)
{
    const struct route *rt = r->route;
    uint32_t need = rt->scopes;
    int64_t t0 = r->trace.sampled ? trace_now_ns() : 0;
    enum status st = authenticate(r);

    req_span(r, "authenticate", t0, st);
    if (st == ST_RATE_LIMITED)
        op_stats_rate_limited(r->svc->op_stats, r->principal.app);
    if (st != ST_OK)
        req_fail(r, st, NULL);
    else if ((r->principal.scopes & need) != need)
        req_fail(r, ST_FORBIDDEN, scope_refusal(r, need & ~r->principal.scopes));
    else if (need != 0 && (rt->flags & ROUTE_KEYRING) != 0 &&
             !principal_allows(&r->principal, need, r->p1))
        req_fail(r, ST_FORBIDDEN, allow_list_refusal(r, r->p1));
    else
        return true;
    return false;
}

/* --- what handlers add to the event --- */

static void
grow_hex(char (**arr)[65], size_t *n, size_t *cap)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 8;
        *arr = xrealloc(*arr, *cap * sizeof **arr);
    }
}

void
req_audit_context(struct req *r, const char *value, size_t len)
{
    if (r == NULL || r->svc->audit == NULL)
        return;
    grow_hex(&r->au.h_context, &r->au.n_context, &r->au.cap_context);
    audit_hmac_hex(r->svc->audit, r->au.h_context[r->au.n_context++], value, len);
}

void
req_audit_reference(struct req *r, const char *value, size_t len)
{
    if (r == NULL || r->svc->audit == NULL)
        return;
    grow_hex(&r->au.h_reference, &r->au.n_reference, &r->au.cap_reference);
    audit_hmac_hex(r->svc->audit, r->au.h_reference[r->au.n_reference++], value, len);
}

void
req_audit_item(struct req *r, bool ok, uint32_t version)
{
    struct req_audit *au = &r->au;
    au->total++;
    if (!ok) {
        au->failed++;
        return;
    }
    au->ok++;
    for (size_t i = 0; i < au->n_versions; i++) {
        if (au->versions[i] == version) {
            au->counts[i]++;
            return;
        }
    }
    if (au->n_versions < sizeof au->versions / sizeof au->versions[0]) {
        au->versions[au->n_versions] = version;
        au->counts[au->n_versions++] = 1;
    }
}

/* --- the event --- */

/* The caller: named in clear when authenticated, or a known key refused (revoked, expired,
 * wrong secret); a presented id that names no key only as an HMAC. JWT apps hold an issuer
 * string: copied as safe text, never cut in a character. */
static void
record_caller(struct req *r, struct audit_rec *rec)
{
    if (r->authenticated || r->principal.key_id[0] != '\0') {
        (void)text_copy_safe(rec->app, sizeof rec->app, r->principal.app);
        (void)text_copy_safe(rec->key_id, sizeof rec->key_id, r->principal.key_id);
    } else if (r->au.presented_key_id != NULL) {
        audit_hmac_hex(r->svc->audit, rec->h_key_id, r->au.presented_key_id,
                       strlen(r->au.presented_key_id));
    }
    if (r->au.h_sub[0] != '\0')
        memcpy(rec->h_sub, r->au.h_sub, sizeof rec->h_sub);
}

/* The keyring of a keyring route: in clear only when it exists (or the request just created or
 * used it); a name someone merely tried stays an HMAC. */
static void
record_keyring(struct req *r, struct audit_rec *rec)
{
    if (r->route == NULL || (r->route->flags & ROUTE_KEYRING) == 0 || r->p1 == NULL)
        return;
    if (names_valid(r->p1) && (r->status_code < 300 || keyrings_known(r->svc->keyrings, r->p1)))
        snprintf(rec->keyring, sizeof rec->keyring, "%s", r->p1);
    else
        audit_hmac_hex(r->svc->audit, rec->h_keyring, r->p1, strlen(r->p1));
}

static struct audit_rec *
make_record(struct req *r)
{
    struct audit *a = r->svc->audit;
    struct audit_rec *rec = audit_rec_new();
    struct timespec now;
    char addr[64];

    clock_gettime(CLOCK_MONOTONIC, &now);
    rec->latency_us = (int64_t)(now.tv_sec - r->started.tv_sec) * 1000000 +
                      (now.tv_nsec - r->started.tv_nsec) / 1000;
    rec->op = r->route != NULL ? r->route->audit_op : "unknown";
    rec->route = r->route != NULL ? r->route->path : "unknown";
    snprintf(rec->method, sizeof rec->method, "%s", r->method); /* a fixed token */
    rec->status = r->status_code;
    record_caller(r, rec);
    /* Refused authentications and requests refused before routing fold together per client,
     * route, method, status, key and second (a flood is one event with a count). */
    rec->coalesce = r->refused_early || r->status_code == 401;
    record_keyring(r, rec);
    snprintf(rec->cert_id, sizeof rec->cert_id, "%s", r->au.cert_id);
    req_client_cert(r, rec->client_cert, sizeof rec->client_cert);
    rec->key_version = r->au.key_version;
    rec->items_total = r->au.total;
    rec->items_ok = r->au.ok;
    rec->items_failed = r->au.failed;
    rec->n_versions = r->au.n_versions;
    memcpy(rec->versions, r->au.versions, sizeof rec->versions);
    memcpy(rec->version_counts, r->au.counts, sizeof rec->version_counts);
    trace_id_hex(&r->trace, rec->trace_id); /* the transport validated the client's */
    audit_hmac_hex(a, rec->h_request_id, r->request_id, strlen(r->request_id));
    req_client_addr(r, addr);
    audit_hmac_hex(a, rec->h_client, addr, strlen(addr));
    snprintf(r->log_client, sizeof r->log_client, "%s", rec->h_client); /* the log line's too */
    rec->h_context = r->au.h_context; /* the record takes the arrays */
    rec->n_h_context = r->au.n_context;
    rec->h_reference = r->au.h_reference;
    rec->n_h_reference = r->au.n_reference;
    r->au.h_context = NULL;
    r->au.h_reference = NULL;
    r->au.n_context = r->au.n_reference = 0;
    return rec;
}

const struct store_audit_row *
req_admin_event(struct req *r, unsigned status)
{
    struct audit *a = r->svc->audit;
    if (a == NULL)
        return NULL;
    unsigned saved = r->status_code;
    r->status_code = status; /* the answer if the change commits */
    struct audit_rec *rec = make_record(r);
    r->status_code = saved;
    r->txn = arena_alloc(r->arena, sizeof *r->txn);
    enum status st = audit_txn_begin(a, r->txn, rec);
    free(rec->h_context);
    free(rec->h_reference);
    free(rec);
    /* No event, no change: the store refuses the change (503) rather than make it unaudited. */
    return st == ST_OK ? &r->txn->row : &store_audit_refused;
}

void
req_admin_done(struct req *r, enum status st)
{
    if (r->txn == NULL || !r->txn->held)
        return;
    audit_txn_end(r->txn, st == ST_OK);
    r->audited = st == ST_OK; /* else the normal path records the failure */
}

static void
on_durable(void *arg, enum status st)
{
    struct req *r = arg;
    if (r->audit_span.sampled)
        child_span(r, &r->audit_span, "audit commit", r->audit_start_ns, st);
    req_release(r, st); /* r may be gone from here on */
}

/* The transport's record hook: the request's event to the writer. The answer waits for the
 * event to be durable (or when the writer's backlog is long: backpressure), unless the event
 * folds with a flood or was committed with an admin change already. */
static bool
record(struct req *r, bool may_wait)
{
    struct audit *a = r->svc->audit;

    if (a == NULL || r->audited)
        return false;
    struct audit_rec *rec = make_record(r);
    bool wait = audit_durable(a) || audit_backlog(a) > AUDIT_MAX_BACKLOG;
    if (may_wait && wait && !rec->coalesce) {
        rec->done = on_durable;
        rec->arg = r;
        if (r->trace.sampled) {
            trace_child(&r->trace, &r->audit_span);
            r->audit_start_ns = trace_now_ns();
        }
        req_wait(r); /* before submit: the writer may release at once */
        audit_submit(a, rec);
        return true;
    }
    audit_submit(a, rec);
    return false;
}

static void
done(struct req *r)
{
    free(r->au.h_context);
    free(r->au.h_reference);
    r->au.h_context = r->au.h_reference = NULL;
}

const struct http_app handlers_app = {&handlers_routes, admit, record, done};
