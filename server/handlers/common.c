/* SPDX-License-Identifier: Apache-2.0 */
/* server/handlers/common.c -- health endpoints and the jansson reply helper. JSON answers may
 * carry a new API key's text: they are always built and sent as secret bodies (wiped). */
#include <string.h>

#include "common/json/jsonx.h"
#include "server/audit/audit.h"
#include "server/handlers/handlers.h"
#include "server/service.h"

/* Every answer built from jansson (the admin routes) takes the secret-body path: the key create
 * and key rotate answers hold the only copy of a new key's text, and marking them all means no
 * handler can forget one. The dump comes from the wiping jansson allocator; the sbuf is wiped
 * when it grows and when MHD frees the response (queue() in http.c). */
void
reply_jansson(struct req *r, unsigned code, json_t *j)
{
    struct sbuf b = {.secret = true};
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (s == NULL) {
        req_fail(r, ST_INTERNAL, NULL);
        return;
    }
    sbuf_adds(&b, s);
    jx_free_str(s);
    req_reply_json(r, code, &b);
}

void
h_healthz(struct req *r)
{
    struct sbuf b = {0};
    sbuf_adds(&b, "{\"status\":\"ok\"}");
    req_reply_json(r, 200, &b);
}

void
h_readyz(struct req *r)
{
    struct sbuf b = {0};
    bool ready = atomic_load(&r->svc->ready);
    sbuf_adds(&b, ready ? "{\"status\":\"ready\"}" : "{\"status\":\"not_ready\"}");
    req_reply_json(r, ready ? 200 : 503, &b);
}

/* GET /metrics: Prometheus text format. No secrets, bounded labels (fixed reason names). */
void
h_metrics(struct req *r)
{
    struct sbuf b = {0};
    sbuf_adds(&b, "# HELP difyguard_auth_failures_total Refused authentications, by reason.\n"
                  "# TYPE difyguard_auth_failures_total counter\n");
    for (int f = 0; f < AUTH_FAIL__COUNT; f++)
        sbuf_addf(&b, "difyguard_auth_failures_total{reason=\"%s\"} %llu\n",
                  auth_fail_name((enum auth_fail)f),
                  (unsigned long long)apps_auth_failures(r->svc->apps, (enum auth_fail)f));
    sbuf_addf(&b, "# HELP difyguard_shred_checkpoint_failures_total Crypto-shreds after which the "
              "database log could not be flushed of the deleted key versions (retried).\n"
              "# TYPE difyguard_shred_checkpoint_failures_total counter\n"
              "difyguard_shred_checkpoint_failures_total %llu\n",
              (unsigned long long)krm_shred_failures(r->svc->keyrings));
    if (r->svc->audit != NULL) {
        sbuf_addf(&b, "# HELP difyguard_audit_write_failures_total Audit events that could not be "
                  "written (their requests were answered 503).\n"
                  "# TYPE difyguard_audit_write_failures_total counter\n"
                  "difyguard_audit_write_failures_total %llu\n"
                  "# HELP difyguard_audit_backlog Audit events queued and not yet written.\n"
                  "# TYPE difyguard_audit_backlog gauge\n"
                  "difyguard_audit_backlog %zu\n"
                  "# HELP difyguard_audit_unverified_chains_total Stored chains of other nodes an "
                  "export could not verify (left out or cut short).\n"
                  "# TYPE difyguard_audit_unverified_chains_total counter\n"
                  "difyguard_audit_unverified_chains_total %llu\n",
                  (unsigned long long)audit_failures(r->svc->audit),
                  audit_backlog(r->svc->audit),
                  (unsigned long long)audit_unverified_chains(r->svc->audit));
    }
    req_reply_raw(r, 200, "text/plain; version=0.0.4; charset=utf-8", &b);
}
