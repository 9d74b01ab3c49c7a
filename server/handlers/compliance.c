/* SPDX-License-Identifier: Apache-2.0 */
/* server/handlers/compliance.c -- compliance reports over HTTP: the report (signed JSON, CSV or
 * HTML) of one pack or all, evaluated on demand, and the public key that verifies it. The
 * manager is server/compliance.c; the request's audit event counts the controls (items: total,
 * passed, failed). */
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/names.h"
#include "server/compliance.h"
#include "server/handlers/handlers.h"
#include "server/service.h"

static bool
require(struct req *r)
{
    if (r->svc->compliance != NULL)
        return true;
    req_fail(r, ST_UNAVAILABLE, "compliance evaluation is off in this process");
    return false;
}

void
h_compliance_report(struct req *r)
{
    static const struct {
        const char *name, *type;
        enum compliance_format f;
    } formats[] = {
        {"json", NULL, COMPLIANCE_JSON},
        {"csv", "text/csv; charset=utf-8", COMPLIANCE_CSV},
        {"html", "text/html; charset=utf-8", COMPLIANCE_HTML},
    };
    const char *fmt = req_query(r, "format"), *pack = req_query(r, "pack");
    struct compliance_counts k;
    struct sbuf b = {0};
    size_t i = 0;
    enum status st;

    if (!require(r))
        return;
    while (fmt != NULL && i < sizeof formats / sizeof formats[0] &&
           strcmp(fmt, formats[i].name) != 0)
        i++;
    if (i == sizeof formats / sizeof formats[0]) {
        req_fail(r, ST_INVALID, "format must be json, csv or html");
        return;
    }
    if (pack != NULL && !names_valid(pack)) {
        req_fail(r, ST_INVALID, "pack must be a pack id ([a-z0-9][a-z0-9._-]{0,62})");
        return;
    }
    st = compliance_report(r->svc->compliance, pack, formats[i].f, clock_now_s(), &b, &k);
    if (st != ST_OK) {
        sbuf_free(&b);
        req_fail(r, st, st == ST_NOT_FOUND ? "no policy pack has that id" : NULL);
        return;
    }
    r->au.total = (uint32_t)k.controls;
    r->au.ok = (uint32_t)k.passed;
    r->au.failed = (uint32_t)k.failed;
    if (formats[i].type == NULL)
        req_reply_json(r, 200, &b);
    else
        req_reply_raw(r, 200, formats[i].type, &b);
}

void
h_compliance_public_key(struct req *r)
{
    struct sbuf b = {0};
    char *j;

    if (!require(r))
        return;
    j = compliance_public_keys_json(r->svc->compliance);
    sbuf_adds(&b, j);
    free(j);
    req_reply_json(r, 200, &b);
}
