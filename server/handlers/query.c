/* SPDX-License-Identifier: Apache-2.0 */
/* server/handlers/query.c -- query strings as every endpoint reads them (issue 14): unknown
 * parameters refused by name, and one set of time forms (unix seconds, RFC 3339, UTC days). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/checked.h"
#include "server/handlers/handlers.h"

bool
query_only(struct req *r, const char *const *known)
{
    const char *bad = req_query_unknown(r, known);
    char text[400];
    size_t n;

    if (bad == NULL)
        return true;
    n = strlen(bad);
    if (n > 0 && n <= 40 &&
        strspn(bad, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.") == n)
        n = (size_t)snprintf(text, sizeof text, "unknown query parameter \"%s\" (known:", bad);
    else
        n = (size_t)snprintf(text, sizeof text, "unknown query parameter (known:");
    for (size_t i = 0; known[i] != NULL && n < sizeof text; i++)
        n += (size_t)snprintf(text + n, sizeof text - n, "%s %s", i ? "," : "", known[i]);
    if (n < sizeof text)
        snprintf(text + n, sizeof text - n, ")");
    req_fail(r, ST_INVALID, arena_strndup(r->arena, text, strlen(text)));
    return false;
}

/* strptime takes February 30th: a real date survives timegm and back unchanged. */
static bool
date_real(const struct tm *in)
{
    struct tm tm = *in, out;
    time_t t = timegm(&tm);
    return gmtime_r(&t, &out) != NULL && out.tm_year == in->tm_year && out.tm_mon == in->tm_mon &&
           out.tm_mday == in->tm_mday;
}

bool
when_parse(const char *s, bool end_of_day, int64_t *ms)
{
    struct tm tm = {0};
    char *end;
    int64_t secs;

    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*s != '\0' && *end == '\0') {
        secs = errno == 0 ? (int64_t)v : -1;
    } else if (strlen(s) == 10 && (end = strptime(s, "%Y-%m-%d", &tm)) != NULL && *end == '\0') {
        if (!date_real(&tm))
            return false;
        secs = (int64_t)timegm(&tm) + (end_of_day ? 86400 : 0);
    } else {
        end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
        if (end == NULL || !date_real(&tm))
            return false;
        if (*end == '.')
            end += 1 + strspn(end + 1, "0123456789");
        secs = (int64_t)timegm(&tm);
        if ((end[0] == '+' || end[0] == '-') && strlen(end) == 6 && end[3] == ':' &&
            strspn(end + 1, "0123456789") == 2 && strspn(end + 4, "0123456789") == 2) {
            int64_t off = ((end[1] - '0') * 10 + (end[2] - '0')) * 3600 +
                          ((end[4] - '0') * 10 + (end[5] - '0')) * 60;
            secs += end[0] == '+' ? -off : off;
        } else if (strcmp(end, "Z") != 0) {
            return false;
        }
    }
    return secs >= 0 && secs <= TIME_MAX_SECONDS + (end_of_day ? 1 : 0) &&
           checked_mul(ms, secs, 1000);
}

bool
when_day(const char *s, char out[static 11])
{
    int64_t ms;
    struct tm tm;
    if (s == NULL || !when_parse(s, false, &ms))
        return false;
    time_t t = (time_t)(ms / 1000);
    gmtime_r(&t, &tm);
    return strftime(out, 11, "%Y-%m-%d", &tm) == 10;
}
