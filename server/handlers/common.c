/* SPDX-License-Identifier: Apache-2.0 */
/* server/handlers/common.c -- health endpoints and the jansson reply helper. JSON answers may
 * carry a new API key's text: they are always built and sent as secret bodies (wiped). */
#include <string.h>

#include "common/json/jsonx.h"
#include "server/audit/audit.h"
#include "server/handlers/handlers.h"
#include "server/obs/metrics.h"
#include "server/service.h"

/* Every answer built from jansson (the admin routes) takes the secret-body path: the key create
 * and key rotate answers hold the only copy of a new key's text, and marking them all means no
 * handler can forget one. The dump comes from the wiping jansson allocator; the sbuf is wiped
 * when it grows and when MHD frees the response (server/http/request.c). */
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
    /* Not ready while the database does not answer: requests would fail closed (503) anyway. */
    bool ready = atomic_load(&r->svc->ready) && service_db_ready(r->svc);
    sbuf_adds(&b, ready ? "{\"status\":\"ready\"}" : "{\"status\":\"not_ready\"}");
    req_reply_json(r, ready ? 200 : 503, &b);
}

/* GET /metrics: Prometheus text format, every source of the registry (server/obs/metrics.h).
 * No secrets, bounded labels. */
void
h_metrics(struct req *r)
{
    struct sbuf b = {0};
    metrics_render(r->svc->metrics, &b);
    req_reply_raw(r, 200, "text/plain; version=0.0.4; charset=utf-8", &b);
}
