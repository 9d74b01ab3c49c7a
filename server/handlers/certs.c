/* SPDX-License-Identifier: Apache-2.0 */
/* server/handlers/certs.c -- the certificate inventory's routes (GET, POST /v1/certificates,
 * GET, DELETE /v1/certificates/{id}, GET .../history) and the one parser of a source's JSON
 * (POST bodies and the --cert-sources file). Certificates are public: answers carry no secret;
 * an uploaded PEM is never echoed back. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/json/jsonx.h"
#include "server/certs.h"
#include "server/handlers/handlers.h"
#include "server/service.h"

/* --- a source's JSON --- */

static enum status
kind_parse(const char *s, enum cert_kind *k)
{
    static const char *const names[] = {"file", "dir", "pem", "endpoint"};
    for (int i = 0; s != NULL && i < 4; i++) {
        if (strcmp(s, names[i]) == 0) {
            *k = (enum cert_kind)i;
            return ST_OK;
        }
    }
    return ST_INVALID;
}

/* A string field into a fixed buffer: absent is "", too long or not a string is ST_INVALID. */
static enum status
str_into(const json_t *o, const char *key, char *dst, size_t cap)
{
    const char *v = NULL;
    size_t len = 0;

    dst[0] = '\0';
    if (jx_str(o, key, &v, &len, NULL) != ST_OK || (v != NULL && (len >= cap || strlen(v) != len)))
        return ST_INVALID;
    if (v != NULL)
        memcpy(dst, v, len + 1);
    return ST_OK;
}

enum status
certs_spec_parse(const json_t *o, struct cert_spec *s, const char **msg)
{
    static const char *const allowed[] = {"id",           "kind",    "path",      "endpoint",
                                          "server_name",  "pem",     "recursive", "expect_chain",
                                          "renew_before", "warning", "critical",  NULL};
    const char *kind = NULL, *pem = NULL;
    char path[STORE_CERT_TARGET_MAX], endpoint[STORE_CERT_TARGET_MAX];
    size_t pem_len = 0;
    bool has_chain = false;

    memset(s, 0, sizeof *s);
    s->expect_chain = true;
    if (jx_only(o, allowed, msg) != ST_OK)
        return ST_INVALID;
    if (jx_str(o, "kind", &kind, NULL, NULL) != ST_OK || kind_parse(kind, &s->kind) != ST_OK) {
        *msg = "kind is required: file, dir, pem or endpoint";
        return ST_INVALID;
    }
    if (str_into(o, "id", s->id, sizeof s->id) != ST_OK ||
        str_into(o, "path", path, sizeof path) != ST_OK ||
        str_into(o, "endpoint", endpoint, sizeof endpoint) != ST_OK ||
        str_into(o, "server_name", s->server_name, sizeof s->server_name) != ST_OK ||
        jx_str(o, "pem", &pem, &pem_len, NULL) != ST_OK ||
        jx_bool(o, "recursive", &s->recursive, NULL) != ST_OK ||
        jx_bool(o, "expect_chain", &s->expect_chain, &has_chain) != ST_OK) {
        *msg = "a field has the wrong type or is too long";
        return ST_INVALID;
    }
    if (jx_duration(o, "renew_before", &s->renew_before, NULL) != ST_OK ||
        jx_duration(o, "warning", &s->warning, NULL) != ST_OK ||
        jx_duration(o, "critical", &s->critical, NULL) != ST_OK) {
        *msg = "renew_before, warning and critical are durations (\"30d\", or seconds)";
        return ST_INVALID;
    }
    /* Exactly the target field of the kind. */
    bool want_path = s->kind == CERT_FILE || s->kind == CERT_DIR;
    if ((path[0] != '\0') != want_path || (endpoint[0] != '\0') != (s->kind == CERT_ENDPOINT) ||
        (pem != NULL) != (s->kind == CERT_PEM) ||
        (s->server_name[0] != '\0' && s->kind != CERT_ENDPOINT) ||
        (s->recursive && s->kind != CERT_DIR)) {
        *msg = "give path for file and dir, endpoint (and server_name) for endpoint, pem for pem; "
               "recursive is for dir";
        return ST_INVALID;
    }
    snprintf(s->target, sizeof s->target, "%s", want_path ? path : endpoint);
    if (pem != NULL) {
        if (pem_len > STORE_CERT_PEM_MAX || strlen(pem) != pem_len) {
            *msg = "pem must hold at least one PEM certificate (at most 1 MiB)";
            return ST_INVALID;
        }
        s->pem = xstrndup(pem, pem_len);
    }
    return cert_spec_check(s, msg);
}

/* --- answers --- */

static json_t *
opt_str(const char *s)
{
    return s != NULL && s[0] != '\0' ? json_string(s) : json_null();
}

static json_t *
sans_json(const struct cert_info *ci)
{
    json_t *a = json_array();
    const char *p = ci->sans;
    while (*p != '\0') {
        size_t n = strcspn(p, ",");
        json_array_append_new(a, json_stringn(p, n));
        p += n + (p[n] == ',');
    }
    return a;
}

static json_t *
weak_json(uint32_t weak)
{
    json_t *a = json_array();
    for (unsigned i = 0; i < CERT__WEAK_COUNT; i++) {
        if ((weak & (1u << i)) != 0)
            json_array_append_new(a, json_string(cert_weak_name(1u << i)));
    }
    return a;
}

static json_t *
cert_json(const struct cert_view *cv)
{
    const struct cert_info *ci = &cv->info;

    if (!cv->has_cert)
        return json_pack("{s:s, s:s, s:s}", "slot", cv->slot, "status",
                         cert_status_name(cv->j.status), "error", cv->error);
    json_t *j = json_pack(
        "{s:s, s:s, s:o, s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:b, s:s, s:i, s:o, s:s, "
        "s:o, s:s, s:b, s:b, s:i}",
        "slot", cv->slot, "status", cert_status_name(cv->j.status), "error", json_null(), "subject",
        ci->subject, "subject_cn", ci->subject_cn, "issuer", ci->issuer, "issuer_cn", ci->issuer_cn,
        "serial", ci->serial, "sans", sans_json(ci), "not_before", jx_time(ci->not_before),
        "not_after", jx_time(ci->not_after), "renewal_due", jx_time(cv->j.renewal_due),
        "renewal_overdue", cv->j.renewal_overdue, "key_type", ci->key_type, "key_bits",
        ci->key_bits, "key_curve", opt_str(ci->key_curve), "signature_algorithm", ci->sig_alg,
        "signature_hash", opt_str(ci->sig_hash), "sha256_fingerprint", ci->fingerprint, "is_ca",
        ci->is_ca, "self_signed", ci->self_signed, "version", ci->version);
    json_object_set_new(j, "leaf", json_boolean(cv->leaf));
    json_object_set_new(j, "chain",
                        json_pack("{s:o, s:o}", "verified",
                                  cv->chain < 0 ? json_null() : json_boolean(cv->chain == 1),
                                  "error", opt_str(cv->chain_error)));
    json_object_set_new(j, "weak", weak_json(cv->j.weak));
    json_object_set_new(j, "first_seen", jx_time(cv->first_seen));
    json_object_set_new(j, "rotated_at", jx_time(cv->rotated_at));
    return j;
}

static json_t *
source_json(const struct cert_source_view *v, struct service *svc)
{
    const struct cert_spec *s = &v->spec;
    int64_t warning = 0, critical = 0;
    bool path = s->kind == CERT_FILE || s->kind == CERT_DIR, ep = s->kind == CERT_ENDPOINT;
    json_t *certs = json_array();

    certs_thresholds(svc->certs, &warning, &critical);
    for (size_t i = 0; i < v->n_certs; i++)
        json_array_append_new(certs, cert_json(&v->certs[i]));
    json_t *j = json_pack(
        "{s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:b, s:b, s:I, s:I, s:o, s:s, s:o, s:o, s:o, s:o, "
        "s:I, s:I}",
        "id", s->id, "kind", cert_kind_name(s->kind), "origin", cert_origin_name(v->origin), "path",
        path ? json_string(s->target) : json_null(), "endpoint",
        ep ? json_string(s->target) : json_null(), "server_name",
        ep ? opt_str(s->server_name) : json_null(), "listener",
        s->kind == CERT_LISTENER ? json_string(s->target) : json_null(), "recursive", s->recursive,
        "expect_chain", s->expect_chain, "warning",
        (json_int_t)(s->warning > 0 ? s->warning : warning), "critical",
        (json_int_t)(s->critical > 0 ? s->critical : critical), "renew_before",
        s->renew_before > 0 ? json_integer(s->renew_before) : json_null(), "status",
        cert_status_name(v->status), "error", opt_str(v->error), "created_at",
        jx_time(v->created_at), "checked_at", jx_time(v->checked_at), "last_ok_at",
        jx_time(v->ok_at), "read_errors", (json_int_t)v->read_errors, "rotations",
        (json_int_t)v->rotations);
    json_object_set_new(j, "certificates", certs);
    return j;
}

/* --- routes --- */

/* The source of {id}, recorded in the request's event when it exists. */
static bool
known(struct req *r)
{
    if (!certs_known(r->svc->certs, r->p1)) {
        req_fail(r, ST_NOT_FOUND, "no certificate source with this id");
        return false;
    }
    snprintf(r->au.cert_id, sizeof r->au.cert_id, "%s", r->p1);
    return true;
}

void
h_certs_list(struct req *r)
{
    struct cert_source_view *v = NULL;
    size_t n = 0;
    enum status st = certs_list(r->svc->certs, clock_now_s(), &v, &n);

    if (st != ST_OK) {
        req_fail(r, st, or_not_found(st, NULL, "certificate not found"));
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, source_json(&v[i], r->svc));
    cert_source_views_free(v, n);
    reply_jansson(r, 200, json_pack("{s:o}", "sources", arr));
}

void
h_cert_get(struct req *r)
{
    struct cert_source_view v;

    if (!known(r))
        return;
    enum status st = certs_get(r->svc->certs, r->p1, clock_now_s(), &v);
    if (st != ST_OK)
        req_fail(r, st, or_not_found(st, NULL, "certificate not found"));
    else
        reply_jansson(r, 200, source_json(&v, r->svc));
    cert_source_view_free(&v);
}

void
h_certs_create(struct req *r)
{
    json_t *body = NULL;
    struct cert_spec s;
    struct cert_source_view v = {0};
    const char *msg = NULL;
    enum status st;

    memset(&s, 0, sizeof s);
    if ((st = jx_parse_object(&body, r->body, r->body_len, &msg)) == ST_OK &&
        (st = certs_spec_parse(body, &s, &msg)) == ST_OK) {
        cert_spec_default_id(&s); /* named in the event committed with the change */
        snprintf(r->au.cert_id, sizeof r->au.cert_id, "%s", s.id);
        st = certs_create(r->svc->certs, &s, &v, &msg, req_admin_event(r, 201));
        req_admin_done(r, st);
    }
    if (st == ST_OK) {
        /* Read (files, PEM) or probe (endpoints: soon) now that the event is released. */
        certs_refresh(r->svc->certs, s.id);
        cert_source_view_free(&v);
        st = certs_get(r->svc->certs, s.id, clock_now_s(), &v);
    }
    if (st == ST_OK) {
        reply_jansson(r, 201, source_json(&v, r->svc));
    } else {
        req_fail(r, st, or_not_found(st, msg, "certificate not found"));
    }
    cert_source_view_free(&v);
    cert_spec_free(&s);
    json_decref(body); /* after the reply: msg may point into it */
}

void
h_cert_delete(struct req *r)
{
    const char *msg = NULL;
    enum status st;

    if (!known(r))
        return;
    st = certs_delete(r->svc->certs, r->p1, &msg, req_admin_event(r, 204));
    req_admin_done(r, st);
    if (st == ST_OK)
        req_reply_empty(r, 204);
    else
        req_fail(r, st, or_not_found(st, msg, "certificate not found"));
}

void
h_cert_history(struct req *r)
{
    struct cert_seen_info *h = NULL;
    size_t n = 0;

    if (!known(r))
        return;
    enum status st = certs_history(r->svc->certs, r->p1, &h, &n);
    if (st != ST_OK) {
        req_fail(r, st, or_not_found(st, NULL, "certificate not found"));
        return;
    }
    json_t *arr = json_array();
    for (size_t i = n; i-- > 0;) { /* newest first */
        json_array_append_new(
            arr, json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:b}", "slot", h[i].slot,
                           "sha256_fingerprint", h[i].fingerprint, "subject", h[i].subject,
                           "issuer", h[i].issuer, "serial", h[i].serial, "not_before",
                           jx_time(h[i].not_before), "not_after", jx_time(h[i].not_after),
                           "seen_at", jx_time(h[i].seen_at), "rotation", h[i].rotation));
    }
    free(h);
    reply_jansson(r, 200, json_pack("{s:s, s:o}", "id", r->p1, "history", arr));
}
