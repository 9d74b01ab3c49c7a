/* SPDX-License-Identifier: Apache-2.0 */
/* server/http/daemon.c -- the libmicrohttpd daemon: listener, limits and TLS, and the lifecycle
 * of a request (start at the raw URI, refuse what is never routed, read the body, route, admit,
 * run the handler, let the application record it, wait suspended until it releases the answer,
 * drain at stop). Request bodies may hold plaintext: wiped when the request completes. */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <microhttpd.h>
#include <sodium.h>

#include "common/log.h"
#include "crypto/keyfile.h"
#include "server/http/private.h"
#include "server/http/tls.h"
#include "server/obs/httpstats.h"

/* --- a request's lifecycle --- */

/* MHD_OPTION_URI_LOG_CALLBACK: once per request, with the request target exactly as sent (MHD
 * percent-decodes the path it hands to on_request afterwards). The request object starts here,
 * so the canonical-path check sees the client's own bytes. */
static void *
on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    struct http_server *h = cls;
    struct http_req *hr = xcalloc(1, sizeof *hr);

    hr->h = h;
    hr->pub.svc = h->svc;
    hr->pub.arena = arena_new(2048);
    hr->conn = c;
    if (uri != NULL)
        hr->raw_path = arena_strndup(hr->pub.arena, uri, strcspn(uri, "?#"));
    clock_gettime(CLOCK_MONOTONIC, &hr->pub.started);
    hr->pub.started_ns = trace_now_ns();
    return hr;
}

/* The first access-handler call: headers are in. */
static void
req_start(struct http_req *hr, const char *url, const char *method)
{
    const char *tp = MHD_lookup_connection_value(hr->conn, MHD_HEADER_KIND, "traceparent");
    const char *ts = MHD_lookup_connection_value(hr->conn, MHD_HEADER_KIND, "tracestate");

    hr->started = true;
    hr->pub.method = http_method_token(method);
    hr->pub.path = arena_strndup(hr->pub.arena, url, strlen(url));
    http_req_ids(hr);
    trace_begin(hr->h->obs.tracer, &hr->pub.trace, tp, ts);
    if (hr->pub.trace.tracestate != NULL) /* kept until the span is sent: a copy */
        hr->pub.trace.tracestate = arena_strndup(hr->pub.arena, ts, strlen(ts));
    atomic_fetch_add(&hr->h->in_flight, 1);
    if (hr->h->obs.stats != NULL)
        http_stats_in_flight(hr->h->obs.stats, 1);
}

static uint64_t
body_cap(const struct http_server *h)
{
    return h->lim.max_body_bytes > h->lim.max_batch_bytes ? h->lim.max_body_bytes
                                                          : h->lim.max_batch_bytes;
}

static bool
body_append(struct http_req *hr, uint64_t cap, const char *data, size_t n)
{
    size_t len = hr->pub.body_len;

    if (len + n > cap)
        return false;
    if (len + n + 1 > hr->body_cap) {
        size_t want = hr->body_cap ? hr->body_cap : 4096;
        while (want < len + n + 1)
            want *= 2;
        char *nb = xmalloc(want);
        if (hr->body != NULL) {
            memcpy(nb, hr->body, len);
            sodium_memzero(hr->body, hr->body_cap);
            free(hr->body);
        }
        hr->body = nb;
        hr->body_cap = want;
    }
    memcpy(hr->body + len, data, n);
    hr->pub.body_len = len + n;
    hr->body[len + n] = '\0';
    hr->pub.body = hr->body;
    return true;
}

/* Let the application record the request, then queue its answer, unless the application made
 * it wait (req_wait) for req_release. Returns what on_request returns. */
static enum MHD_Result
answer(struct http_req *hr, bool may_wait)
{
    const struct route *rt = hr->pub.route;
    bool public = rt != NULL && rt->audit_op == NULL; /* the route decides, not the path */

    hr->may_wait = may_wait;
    if (!public && hr->h->app->record != NULL && hr->h->app->record(&hr->pub, may_wait))
        return MHD_YES; /* suspended until req_release */
    return http_flush(hr) ? MHD_YES : MHD_NO;
}

void
req_wait(struct req *r)
{
    struct http_req *hr = http_req_of(r);

    assert(hr->may_wait && !hr->suspended);
    hr->suspended = true;
    MHD_suspend_connection(hr->conn);
}

void
req_release(struct req *r, enum status st)
{
    struct http_req *hr = http_req_of(r);
    hr->release_st = st;
    atomic_store(&hr->released, true);
    MHD_resume_connection(hr->conn);
}

/* A request refused before routing reached any handler (bad path, no such route, too large,
 * draining): recorded as "unknown", and may be folded with others like it. */
static void
refuse_early(struct http_req *hr, enum status st, const char *msg)
{
    hr->pub.refused_early = true;
    req_fail(&hr->pub, st, msg);
}

/* Answer now, before (or instead of) reading the body. */
static enum MHD_Result
answer_early(struct http_req *hr, enum status st, const char *msg, bool close)
{
    hr->dispatched = true;
    refuse_early(hr, st, msg);
    if (close)
        MHD_add_response_header(hr->resp, "Connection", "close");
    return answer(hr, false);
}

/* The first call: refuse what must never be routed, and size the body buffer. */
static enum MHD_Result
on_headers(struct http_req *hr)
{
    const char *cl = MHD_lookup_connection_value(hr->conn, MHD_HEADER_KIND, "Content-Length");
    unsigned long long n = cl != NULL ? strtoull(cl, NULL, 10) : 0;

    /* Draining refuses the API; health and metrics still answer (/readyz: 503 not_ready). */
    if (atomic_load(&hr->h->draining) && !http_route_public(hr->h->app->routes, hr->raw_path))
        return answer_early(hr, ST_UNAVAILABLE, "shutting down", true);
    if (!http_path_canonical(hr->raw_path))
        return answer_early(hr, ST_INVALID,
                            "the request path is not canonical (empty, '.' or "
                            "'..' segments, percent-encoding or a trailing '/')",
                            false);
    if (n > body_cap(hr->h))
        return answer_early(hr, ST_TOO_LARGE, NULL, false); /* before reading the body */
    if (n > 0) {
        hr->body_cap = (size_t)n + 1; /* one allocation, no regrowth copies */
        hr->body = xmalloc(hr->body_cap);
    }
    return MHD_YES;
}

/* Released by the application: answer, or 503 when it could not record the request. */
static enum MHD_Result
on_released(struct http_req *hr)
{
    if (!atomic_load(&hr->released))
        return MHD_YES;
    hr->suspended = false;
    if (hr->release_st != ST_OK) {
        MHD_destroy_response(hr->resp);
        hr->resp = NULL;
        hr->replied = false;
        req_fail(&hr->pub, ST_UNAVAILABLE, "the audit trail could not record this request");
    }
    http_flush(hr);
    return MHD_YES;
}

/* Route, admit, run the handler. */
static void
dispatch(struct http_req *hr)
{
    const struct http_app *app = hr->h->app;
    bool path_known = false;
    const struct route *rt = http_route(app->routes, &hr->pub, &path_known);

    if (rt == NULL && path_known) {
        /* RFC 9110: a 405 names the methods the path does allow. */
        char allow[64];
        http_route_allow(app->routes, hr->pub.path, allow, sizeof allow);
        refuse_early(hr, ST_METHOD, NULL);
        if (hr->resp != NULL)
            MHD_add_response_header(hr->resp, "Allow", allow);
        return;
    }
    if (rt == NULL) {
        refuse_early(hr, ST_NOT_FOUND, NULL);
        return;
    }
    hr->pub.route = rt;
    if ((rt->flags & ROUTE_AUTH) != 0 && app->admit != NULL && !app->admit(&hr->pub))
        return; /* refused, and answered, by the application */
    /* The body was read up to the larger of the two limits; only batch routes may use it. */
    if ((rt->flags & ROUTE_BATCH) == 0 && hr->pub.body_len > hr->h->lim.max_body_bytes) {
        req_fail(&hr->pub, ST_TOO_LARGE, NULL);
        return;
    }
    rt->fn(&hr->pub);
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
           const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    struct http_server *h = cls;
    struct http_req *hr = *con_cls;
    (void)version;

    if (hr == NULL) /* no URI callback ran: the raw path is unknown */
        *con_cls = hr = on_uri(h, NULL, c);
    if (!hr->started) {
        req_start(hr, url, method);
        return on_headers(hr);
    }
    if (*upload_data_size != 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (hr->dispatched)
            return MHD_YES; /* answered before the body: the rest is discarded */
        if (body_append(hr, body_cap(h), upload_data, n))
            return MHD_YES;
        /* Over the limit in the middle of a (chunked) body: stop reading. MHD cannot queue a
         * response mid-upload, so the 413 is recorded and the connection closed. */
        return answer_early(hr, ST_TOO_LARGE, NULL, true);
    }
    if (hr->suspended)
        return on_released(hr);
    if (hr->dispatched)
        return MHD_YES;
    hr->dispatched = true;
    dispatch(hr);
    if (!hr->replied)
        req_fail(&hr->pub, ST_INTERNAL, NULL);
    return answer(hr, true);
}

/* A finished request in the route's histogram and, when sampled, its server span. */
static void
observe(struct http_req *hr)
{
    const struct route *rt = hr->pub.route;
    const struct route_table *t = hr->h->app->routes;
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    int64_t ns = (int64_t)(now.tv_sec - hr->pub.started.tv_sec) * 1000000000LL +
                 (now.tv_nsec - hr->pub.started.tv_nsec);
    if (hr->h->obs.stats != NULL) {
        size_t slot =
            rt != NULL && rt >= t->v && rt < t->v + t->n ? hr->h->slots[rt - t->v] : SIZE_MAX;
        http_stats_request(hr->h->obs.stats, slot, hr->pub.status_code, ns > 0 ? (uint64_t)ns : 0,
                           hr->pub.body_len, hr->resp_len);
        http_stats_in_flight(hr->h->obs.stats, -1);
    }
    if (!hr->pub.trace.sampled)
        return;
    size_t i = rt != NULL && rt >= t->v && rt < t->v + t->n ? (size_t)(rt - t->v) : t->n;
    struct trace_span sp = {.ctx = hr->pub.trace,
                            .name = hr->h->span_names[i],
                            .kind = TRACE_KIND_SERVER,
                            .start_ns = hr->pub.started_ns,
                            .end_ns = trace_now_ns(),
                            .error = hr->pub.status_code >= 500,
                            .route = rt != NULL ? rt->path : NULL,
                            .method = hr->pub.method,
                            .status_code = hr->pub.status_code};
    snprintf(sp.request_id, sizeof sp.request_id, "%s", hr->pub.request_id);
    if (hr->pub.authenticated)
        snprintf(sp.app, sizeof sp.app, "%s", hr->pub.principal.app);
    trace_emit(hr->h->obs.tracer, &sp);
}

static void
on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
             enum MHD_RequestTerminationCode toe)
{
    struct http_server *h = cls;
    struct http_req *hr = *con_cls;
    (void)c;
    (void)toe;
    if (hr == NULL)
        return;
    if (hr->started)
        observe(hr);
    http_log_request(hr);
    if (h->app->done != NULL)
        h->app->done(&hr->pub);
    if (hr->resp != NULL)
        MHD_destroy_response(hr->resp);
    if (hr->body != NULL) {
        sodium_memzero(hr->body, hr->body_cap);
        free(hr->body);
    }
    arena_free(hr->pub.arena);
    sodium_memzero(&hr->pub.principal, sizeof hr->pub.principal);
    bool counted = hr->started;
    free(hr);
    *con_cls = NULL;
    if (counted)
        atomic_fetch_sub(&h->in_flight, 1);
}

static void
on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
              enum MHD_ConnectionNotificationCode toe)
{
    struct http_server *h = cls;
    (void)c;
    (void)socket_context;
    if (h->obs.stats != NULL)
        http_stats_connections(h->obs.stats, toe == MHD_CONNECTION_NOTIFY_STARTED ? 1 : -1);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
    char buf[256];
    (void)cls;
    vsnprintf(buf, sizeof buf, fmt, ap);
    buf[strcspn(buf, "\n")] = '\0';
    log_msg(LOG_WARN, "http_server", "detail", buf, LOG_END);
}

void
req_client_cert(struct req *r, char *out, size_t cap)
{
    struct http_req *hr = http_req_of(r);
    const union MHD_ConnectionInfo *ci;

    if (cap > 0)
        out[0] = '\0';
    if (!hr->h->mtls || hr->conn == NULL ||
        (ci = MHD_get_connection_info(hr->conn, MHD_CONNECTION_INFO_GNUTLS_SESSION)) == NULL)
        return;
    tls_peer_subject(ci->tls_session, out, cap);
}

/* --- listener --- */

static bool
split_listen(const char *listen, char host[static 256], char port[static 16])
{
    const char *colon;
    host[0] = port[0] = '\0';
    if (listen[0] == '[') {
        const char *end = strchr(listen, ']');
        if (end == NULL || end[1] != ':' || (size_t)(end - listen - 1) >= 256)
            return false;
        snprintf(host, 256, "%.*s", (int)(end - listen - 1), listen + 1);
        colon = end + 1;
    } else {
        colon = strrchr(listen, ':');
        if (colon == NULL || (size_t)(colon - listen) >= 256)
            return false;
        snprintf(host, 256, "%.*s", (int)(colon - listen), listen);
    }
    if (strlen(colon + 1) == 0 || strlen(colon + 1) >= 16 ||
        strspn(colon + 1, "0123456789") != strlen(colon + 1))
        return false;
    snprintf(port, 16, "%s", colon + 1);
    return true;
}

bool
http_is_loopback(const char *listen)
{
    char host[256], port[16];
    struct in_addr a4;
    struct in6_addr a6;
    if (!split_listen(listen, host, port))
        return false;
    if (strcmp(host, "localhost") == 0)
        return true;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return false;
}

static enum status
resolve(const char *listen, struct sockaddr_storage *ss, char *err, size_t err_len)
{
    char host[256], port[16];
    struct addrinfo hints = {0}, *res = NULL;
    if (!split_listen(listen, host, port)) {
        snprintf(err, err_len, "--listen must be HOST:PORT or [V6]:PORT, got '%s'", listen);
        return ST_INVALID;
    }
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
    if (rc != 0 || res == NULL) {
        snprintf(err, err_len, "cannot resolve listen address '%s': %s", listen, gai_strerror(rc));
        return ST_INVALID;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return ST_OK;
}

/* Why the daemon could not listen: bind the address once more to learn the error, so a busy
 * port, a privileged one and an address this host does not have read differently (and none of
 * them like a bad TLS file, which fails before this). */
static void
bind_failure(const struct sockaddr_storage *ss, const char *listen, char *err, size_t err_len)
{
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), e = 0, one = 1;
    socklen_t len =
        ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    if (fd < 0) {
        e = errno;
    } else {
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, (const struct sockaddr *)ss, len) != 0)
            e = errno;
        close(fd);
    }
    if (e == EADDRINUSE)
        snprintf(err, err_len,
                 "cannot listen on %s: the address is already in use (another process listens "
                 "on that port; `ss -ltnp` shows which) - pick another port with --listen",
                 listen);
    else if (e == EACCES)
        snprintf(err, err_len,
                 "cannot listen on %s: permission denied (ports below 1024 need "
                 "CAP_NET_BIND_SERVICE; use a port from 1024 up)",
                 listen);
    else if (e == EADDRNOTAVAIL)
        snprintf(err, err_len, "cannot listen on %s: this host has no such address", listen);
    else if (e != 0)
        snprintf(err, err_len, "cannot listen on %s: %s", listen, strerror(e));
    else
        snprintf(err, err_len, "cannot listen on %s (the HTTP server did not start)", listen);
}

bool
http_listen_has_port(const char *listen)
{
    char host[256], port[16];
    return listen != NULL && split_listen(listen, host, port);
}

static unsigned
ncores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

enum status
http_start(struct http_server **out, struct service *svc, const struct http_app *app,
           const struct http_listen *l, const struct http_limits *lim, const struct http_obs *obs,
           char *err, size_t err_len)
{
    struct sockaddr_storage ss;
    bool tls = l->tls != NULL;
    struct http_server *h = NULL;
    enum status st;

    *out = NULL;
    if (!tls && !l->tls_terminated_upstream && !http_is_loopback(l->listen)) {
        snprintf(err, err_len,
                 "refusing plain HTTP on non-loopback address %s: give --tls-cert "
                 "and --tls-key, or --tls-terminated-upstream if a proxy terminates TLS",
                 l->listen);
        return ST_INVALID;
    }
    if ((st = resolve(l->listen, &ss, err, err_len)) != ST_OK)
        return st;
    h = xcalloc(1, sizeof *h);
    h->svc = svc;
    h->app = app;
    h->lim = *lim;
    h->trusted_proxies = l->trusted_proxies;
    if (obs != NULL)
        h->obs = *obs;
    h->slots = xcalloc(app->routes->n + 1, sizeof *h->slots);
    h->span_names = xcalloc(app->routes->n + 1, sizeof *h->span_names);
    for (size_t i = 0; i < app->routes->n; i++) { /* OpenTelemetry: "{method} {route}" */
        size_t n = strlen(app->routes->v[i].method) + strlen(app->routes->v[i].path) + 2;
        h->span_names[i] = xmalloc(n);
        snprintf(h->span_names[i], n, "%s %s", app->routes->v[i].method, app->routes->v[i].path);
    }
    h->span_names[app->routes->n] = xstrdup("HTTP");
    for (size_t i = 0; h->obs.stats != NULL && i < app->routes->n; i++)
        h->slots[i] =
            http_stats_slot(h->obs.stats, app->routes->v[i].method, app->routes->v[i].path);
    h->tls = l->tls;
    if (tls) {
        struct tls_stats ts;
        tls_stats(l->tls, &ts);
        h->mtls = ts.mtls;
        if (MHD_is_feature_supported(MHD_FEATURE_HTTPS_CERT_CALLBACK2) != MHD_YES) {
            snprintf(err, err_len,
                     "this libmicrohttpd cannot take a certificate callback "
                     "(MHD_OPTION_HTTPS_CERT_CALLBACK2): TLS is unavailable");
            http_stop(h, 0);
            return ST_INVALID;
        }
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC |
                     MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG | MHD_USE_TURBO;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    if (tls)
        flags |= MHD_USE_TLS;
    unsigned threads = lim->threads ? (unsigned)lim->threads : ncores();
    struct MHD_OptionItem opts[] = {
        {MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, NULL},
        {MHD_OPTION_SOCK_ADDR, 0, &ss},
        {MHD_OPTION_THREAD_POOL_SIZE, threads, NULL},
        {MHD_OPTION_CONNECTION_LIMIT, (intptr_t)lim->max_connections, NULL},
        {MHD_OPTION_PER_IP_CONNECTION_LIMIT, (intptr_t)lim->max_connections_per_ip, NULL},
        {MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)lim->idle_timeout, NULL},
        {MHD_OPTION_CONNECTION_MEMORY_LIMIT, 16 * 1024, NULL},
        {MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024, NULL},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, h},
        {MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, h},
        {MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)on_uri, h},
        /* The certificate of each handshake comes from server/http/tls.c (hot reload). */
        {tls ? MHD_OPTION_HTTPS_CERT_CALLBACK2 : MHD_OPTION_END, 0,
         tls ? tls_cert_callback() : NULL},
        {tls ? MHD_OPTION_HTTPS_PRIORITIES : MHD_OPTION_END, 0,
         tls ? (void *)tls_priorities(l->tls) : NULL},
        {MHD_OPTION_END, 0, NULL},
    };
    h->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h, MHD_OPTION_ARRAY, opts,
                            MHD_OPTION_END);
    if (h->d == NULL) {
        bind_failure(&ss, l->listen, err, err_len);
        http_stop(h, 0);
        return ST_IO;
    }
    *out = h;
    return ST_OK;
}

void
http_stop(struct http_server *h, int grace_seconds)
{
    if (h == NULL)
        return;
    if (h->d != NULL) {
        /* Drain: new requests are answered 503 with "Connection: close" (readiness already says
         * not ready), in-flight ones finish (suspended ones too: the audit writer still runs),
         * then the daemon stops and closes idle connections. MHD_quiesce_daemon is not used:
         * with an epoll thread pool it races the workers over the listen socket (0.9.75). */
        atomic_store(&h->draining, true);
        for (int64_t i = 0; i < (int64_t)grace_seconds * 100 && atomic_load(&h->in_flight) > 0; i++)
            usleep(10000);
        if (atomic_load(&h->in_flight) > 0)
            log_msg(LOG_WARN, "shutdown_grace_expired", LOG_END);
        MHD_stop_daemon(h->d);
    }
    free(h->slots);
    for (size_t i = 0; h->span_names != NULL && i <= h->app->routes->n; i++)
        free(h->span_names[i]);
    free(h->span_names);
    free(h);
}
