/* SPDX-License-Identifier: Apache-2.0 */
/* server/handlers/common.c -- health endpoints and the jansson reply helper. */
#include <string.h>

#include "server/handlers/handlers.h"
#include "server/jsonx.h"
#include "server/service.h"

void
reply_jansson(struct req *r, unsigned code, json_t *j)
{
    struct sbuf b = {0};
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
