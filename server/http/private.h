/* SPDX-License-Identifier: Apache-2.0 */
/* server/http/private.h -- the transport's own state, shared by daemon.c, request.c and
 * router.c only. Handlers and the application see struct req (http.h), never this. */
#ifndef DG_SERVER_HTTP_PRIVATE_H
#define DG_SERVER_HTTP_PRIVATE_H

#include <stdatomic.h>
#include <stdbool.h>

#include <microhttpd.h>

#include "server/http/http.h"

struct http_server {
    struct MHD_Daemon *d;
    struct service *svc;
    const struct http_app *app;
    struct http_obs obs;
    size_t *slots;     /* the stats slot of each route of app->routes */
    char **span_names; /* "METHOD /template" of each route, then "HTTP" for none */
    struct http_limits lim;
    const char *trusted_proxies;
    atomic_long in_flight;
    atomic_bool draining; /* SIGTERM: new requests are refused with 503 */
    struct tls *tls;      /* borrowed; NULL: plain HTTP */
    bool mtls;
};

/* A request's whole state: the public part first, so &hr->pub and hr convert both ways. */
struct http_req {
    struct req pub;
    struct http_server *h;
    struct MHD_Connection *conn;
    struct MHD_Response *resp; /* built; queued when released */
    const char *raw_path;      /* the request target's path as sent (before decoding) */
    size_t resp_len;           /* the answer's body bytes */
    char *body;                /* malloc'd; pub.body points here */
    size_t body_cap;
    bool started; /* the first access-handler call has run */
    bool dispatched, replied, suspended, may_wait;
    _Atomic bool released;
    enum status release_st;
};

static inline struct http_req *
http_req_of(struct req *r)
{
    return (struct http_req *)(void *)r;
}

/* request.c */
void http_req_ids(struct http_req *hr);
bool http_path_canonical(const char *raw);
const char *http_method_token(const char *m);
/* Queue the built response on the connection: false when MHD cannot take it now (in the middle
 * of an upload), then the caller closes the connection. */
bool http_flush(struct http_req *hr);
void http_log_request(const struct http_req *hr);

/* router.c: the route of method and path (a canonical path: checked before routing), its
 * parameters copied into the request's arena. NULL when none: *path_known tells 405 from 404. */
const struct route *http_route(const struct route_table *t, struct req *r, bool *path_known);
/* The methods of every route whose template matches path, as an Allow header value ("GET,
 * PATCH, DELETE": the order of the table); "" when none. */
void http_route_allow(const struct route_table *t, const char *path, char *out, size_t cap);
/* True when raw_path is exactly the path of a public route (no audit operation: health and
 * metrics), which answer while the server drains. */
bool http_route_public(const struct route_table *t, const char *raw_path);

#endif
