/* SPDX-License-Identifier: Apache-2.0 */
/* server/http/http.h -- the transport: libmicrohttpd listener and limits, the request lifecycle
 * (canonical paths, bodies, suspend until the application releases the answer), a router over
 * the route table it is given, replies and the one status -> HTTP table. It names no handler and
 * knows nothing of keys or the audit trail: the application (struct http_app) authenticates and
 * records. Handlers see a struct req and never an MHD call. */
#ifndef DG_SERVER_HTTP_HTTP_H
#define DG_SERVER_HTTP_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/sbuf.h"
#include "common/status.h"
#include "common/xmem.h"
#include "server/auth/principal.h"
#include "server/obs/trace.h"

struct service;    /* the application's context (server/service.h) */
struct http_stats; /* server/obs/httpstats.h */
struct audit_txn;  /* server/audit/audit.h */

struct http_limits {
    uint64_t max_body_bytes;
    uint64_t max_batch_bytes;
    uint64_t max_batch_items;
    uint64_t max_connections;
    uint64_t max_connections_per_ip; /* 0 = unlimited */
    int64_t idle_timeout;            /* seconds */
    uint64_t threads;                /* 0 = one per core */
};

struct tls; /* server/http/tls.h */
struct http_listen {
    const char *listen; /* "HOST:PORT" or "[v6]:PORT" */
    struct tls *tls;    /* the identity served over TLS; NULL: plain HTTP */
    bool tls_terminated_upstream;
    const char *trusted_proxies; /* comma-separated peers whose X-Forwarded-For is used */
};

/* --- the route table (server/handlers/routes.c is THE list) --- */

struct req;

enum route_flags {
    ROUTE_AUTH = 1u << 0,    /* the application admits the caller before fn */
    ROUTE_KEYRING = 1u << 1, /* {name}, the first parameter, names a keyring */
    ROUTE_BATCH = 1u << 2,   /* reads bodies up to --max-batch-bytes and sizes them
                                        * itself; every other body is bounded by --max-body-bytes */
};

struct route {
    const char *method;
    const char *path; /* template: "/v1/keyrings/{name}/encrypt" */
    void (*fn)(struct req *r);
    uint32_t scopes;      /* every one required before fn runs; 0: fn decides */
    const char *audit_op; /* "encrypt"; NULL: a public route, never audited */
    unsigned flags;       /* enum route_flags */
};

struct route_table {
    const struct route *v;
    size_t n;
};

/* What handlers add to a request's audit event: plain data (the application HMACs values
 * before they get here). */
struct req_audit {
    uint32_t key_version;
    uint32_t total, ok, failed;
    size_t n_versions;
    uint32_t versions[8], counts[8];
    char (*h_context)[65]; /* malloc'd */
    size_t n_context, cap_context;
    char (*h_reference)[65]; /* malloc'd */
    size_t n_reference, cap_reference;
    char h_sub[65];
    const char *presented_key_id; /* an unknown key's id (HMAC-ed in the event) */
    char cert_id[64];             /* a certificate source that exists (issue 9); "" = none */
};

/* One HTTP request, as handlers and the application see it. The transport's own lifecycle
 * state is private (server/http/private.h). Lives until the request completes. */
struct req {
    struct service *svc;
    struct arena *arena;       /* non-secret request data only */
    const char *method;        /* a known method's name, or "OTHER" (never raw bytes) */
    const char *path;          /* canonical (checked against the raw request target) */
    const struct route *route; /* the matched route; NULL before routing or when none */
    const char *p1, *p2, *p3;  /* route parameters in path order (NULL when absent) */
    const char *body;          /* wiped when the request ends (may hold plaintext) */
    size_t body_len;
    char request_id[65];
    struct timespec started; /* CLOCK_MONOTONIC */
    int64_t started_ns;      /* CLOCK_REALTIME, for spans */
    struct trace_ctx trace;  /* the request's server span (W3C traceparent, or a new trace) */
    unsigned status_code;    /* of the answer built so far (0: none yet) */
    bool refused_early;      /* refused before routing (path, size, method, drain) */
    /* The application's per-request state (server/handlers/pipeline.c). */
    struct principal principal;
    bool authenticated;
    unsigned retry_after; /* seconds, for 429 */
    struct req_audit au;
    struct audit_txn *txn;       /* an admin change's event, in the change's transaction */
    bool audited;                /* its event is committed already */
    struct trace_ctx audit_span; /* the wait for the durable audit event */
    int64_t audit_start_ns;
    /* For the request log line: the HMAC of the client address the application computed (the
     * audit event's), "" when none; the error code of a failure answer (NULL: none). */
    char log_client[65];
    const char *error_code;
};

/* The application around the transport. */
struct http_app {
    const struct route_table *routes;
    /* Before the handler of a ROUTE_AUTH route: authenticate and check route->scopes. True runs
     * the handler; false when admit answered the refusal itself (req_fail). */
    bool (*admit)(struct req *r);
    /* For every answered request except those of public routes: hand its event on. To make the
     * answer wait (only when may_wait: false for answers given before the body was read), call
     * req_wait before handing the request to another thread, return true, and call req_release
     * exactly once later, from any thread. */
    bool (*record)(struct req *r, bool may_wait);
    /* When the request ends, whatever happened (free what the application keeps in r). */
    void (*done)(struct req *r);
};

/* From the application's record hook: the answer waits (the connection is suspended, holding
 * no worker thread) until req_release; st != ST_OK replaces the answer with 503. */
void req_wait(struct req *r);
void req_release(struct req *r, enum status st);

/* Header and query lookups (NULL when absent). */
const char *req_header(struct req *r, const char *name);
const char *req_query(struct req *r, const char *name);
/* The first query parameter whose name is not in `known` (NULL-terminated); NULL when none. */
const char *req_query_unknown(struct req *r, const char *const *known);
/* The client address as text: the socket peer, or, when the peer is a trusted proxy, the hop of
 * X-Forwarded-For (every header line, walked from the right past trusted proxies). */
void req_client_addr(struct req *r, char out[static 64]);
/* The subject of the client certificate mutual TLS verified for this connection, as safe text
 * ("" when the listener does not ask for one). */
void req_client_cert(struct req *r, char *out, size_t cap);

/* Replies: each builds exactly one response; a second call is a bug (asserted). */
void req_reply_json(struct req *r, unsigned code, struct sbuf *body); /* takes body */
void req_reply_raw(struct req *r, unsigned code, const char *content_type, struct sbuf *body);
void req_reply_empty(struct req *r, unsigned code);
/* Error reply with the code/message of the status table; msg overrides the fixed text (it must
 * never contain secrets). Retry-After is added for ST_RATE_LIMITED. */
void req_fail(struct req *r, enum status st, const char *msg);

unsigned http_code_for(enum status st);
/* The fixed human message of a status ("decryption failed"), as req_fail answers it. */
const char *http_status_text(enum status st);

/* What the transport reports: per-route histograms and counters (stats), the server span of each
 * request (tracer, also read by the application through req->trace). Either may be NULL. */
struct http_obs {
    struct http_stats *stats;
    struct tracer *tracer;
};

/* Start the daemon; ST_INVALID with err for bad listen/TLS settings, ST_IO when binding fails.
 * app, obs and the strings of l must outlive the server. */
struct http_server;
NODISCARD enum status http_start(struct http_server **out, struct service *svc,
                                 const struct http_app *app, const struct http_listen *l,
                                 const struct http_limits *lim, const struct http_obs *obs,
                                 char *err, size_t err_len);
/* Stop accepting, wait (up to grace seconds) for in-flight requests, then stop. */
void http_stop(struct http_server *h, int grace_seconds);
/* True when listen is HOST:PORT or [V6]:PORT (a port is given). */
bool http_listen_has_port(const char *listen);
/* True when the listen host is a loopback address or "localhost". */
bool http_is_loopback(const char *listen);

#endif
