/* SPDX-License-Identifier: Apache-2.0 */
/* server/http/router.c -- matching a canonical path and method against the route table the
 * transport is given: templates such as "/v1/keyrings/{name}/encrypt", a "{...}" segment
 * captures one path segment. Knows no route by name. */
#include <stdbool.h>
#include <string.h>

#include "server/http/private.h"

#define MAX_PARAMS 3

/* Does path (after its leading '/') match the template? Parameters (pointers into path, with
 * their lengths) go to caps. */
static bool
match(const char *tmpl, const char *path, const char *caps[static MAX_PARAMS],
      size_t lens[static MAX_PARAMS])
{
    size_t n = 0;

    if (*tmpl++ != '/' || *path++ != '/')
        return false;
    for (;;) {
        size_t tl = strcspn(tmpl, "/"), pl = strcspn(path, "/");
        if (tl > 1 && tmpl[0] == '{' && tmpl[tl - 1] == '}') {
            if (pl == 0 || n == MAX_PARAMS)
                return false;
            caps[n] = path;
            lens[n++] = pl;
        } else if (tl != pl || memcmp(tmpl, path, tl) != 0) {
            return false;
        }
        tmpl += tl;
        path += pl;
        if (*tmpl == '\0' || *path == '\0')
            return *tmpl == *path;
        tmpl++;
        path++;
    }
}

const struct route *
http_route(const struct route_table *t, struct req *r, bool *path_known)
{
    const char *caps[MAX_PARAMS] = {NULL, NULL, NULL};
    size_t lens[MAX_PARAMS] = {0, 0, 0};

    *path_known = false;
    for (size_t i = 0; i < t->n; i++) {
        const struct route *rt = &t->v[i];
        if (!match(rt->path, r->path, caps, lens))
            continue;
        *path_known = true;
        if (strcmp(rt->method, r->method) != 0)
            continue;
        const char **out[MAX_PARAMS] = {&r->p1, &r->p2, &r->p3};
        for (size_t k = 0; k < MAX_PARAMS; k++)
            *out[k] = caps[k] != NULL ? arena_strndup(r->arena, caps[k], lens[k]) : NULL;
        return rt;
    }
    return NULL;
}

void
http_route_allow(const struct route_table *t, const char *path, char *out, size_t cap)
{
    const char *caps[MAX_PARAMS];
    size_t lens[MAX_PARAMS], n = 0;

    out[0] = '\0';
    for (size_t i = 0; i < t->n; i++) {
        const struct route *rt = &t->v[i];
        if (!match(rt->path, path, caps, lens))
            continue;
        size_t m = strlen(rt->method);
        if (n + m + 3 > cap)
            break;
        if (n > 0) {
            memcpy(out + n, ", ", 2);
            n += 2;
        }
        memcpy(out + n, rt->method, m + 1);
        n += m;
    }
}

bool
http_route_public(const struct route_table *t, const char *raw_path)
{
    for (size_t i = 0; raw_path != NULL && i < t->n; i++) {
        if (t->v[i].audit_op == NULL && strcmp(t->v[i].path, raw_path) == 0)
            return true;
    }
    return false;
}
