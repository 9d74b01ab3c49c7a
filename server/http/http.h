/* SPDX-License-Identifier: Apache-2.0 */
/* server/http/http.h -- libmicrohttpd glue: listener, limits, request lifecycle, routing, replies
 * and the single status -> HTTP table. Handlers see a struct req and never MHD calls. */
#ifndef DG_SERVER_HTTP_H
#define DG_SERVER_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdatomic.h>
#include <time.h>

#include "common/sbuf.h"
#include "common/status.h"
#include "common/xmem.h"
#include "server/apps.h"
#include "server/audit/audit.h"

struct service;       /* server/service.h: everything a handler may use */

struct http_limits {
    uint64_t max_body_bytes;
    uint64_t max_batch_bytes;
    uint64_t max_batch_items;
    uint64_t max_connections;
    uint64_t max_connections_per_ip;   /* 0 = unlimited */
    int64_t idle_timeout;              /* seconds */
    uint64_t threads;                  /* 0 = one per core */
};

struct http_listen {
    const char *listen;                /* "HOST:PORT" or "[v6]:PORT" */
    const char *tls_cert, *tls_key;    /* PEM files, both or neither */
    bool tls_terminated_upstream;
};

/* One HTTP request. Lives from the first MHD call until the completed callback. */
struct req {
    struct service *svc;
    struct arena *arena;               /* non-secret request data only */
    const char *method;                /* a known method's name, or "OTHER" (never raw bytes) */
    const char *path;                  /* canonical: checked against the raw request target */
    const char *raw_path;              /* the request target's path as sent (before decoding) */
    char *body;                        /* malloc'd, wiped at the end (may hold plaintext) */
    size_t body_len, body_cap;
    bool body_overflow;
    char request_id[65];
    struct principal principal;
    bool authenticated;
    struct timespec started;
    void *conn;                        /* struct MHD_Connection *, for http.c only */
    bool started_call;                 /* the first access-handler call has run */
    bool unaudited;                    /* matched a public route (health, metrics) */
    bool refused_early;                /* refused before routing: its event may be folded */
    bool replied;
    unsigned status_code;
    /* Route parameters, NUL-terminated copies in the arena (NULL when absent). */
    const char *p1, *p2, *p3;
    const char *op, *route;            /* audit names of the matched route */
    bool keyring_param;
    /* What handlers add to the audit event (server/audit/audit.h); HMACs are computed by the calls
     * below, never stored in clear. */
    struct req_audit {
        uint32_t key_version;
        uint32_t total, ok, failed;
        size_t n_versions;
        uint32_t versions[8], counts[8];
        char (*h_context)[65];
        size_t n_context, cap_context;
        char (*h_reference)[65];
        size_t n_reference, cap_reference;
        char h_sub[65];
        const char *presented_key_id;      /* an unknown key's id (HMAC-ed in the event) */
    } au;
    /* The response waits here while the request's audit event is made durable. */
    void *resp;                        /* struct MHD_Response * */
    bool dispatched, suspended;
    _Atomic bool audit_done;
    enum status audit_st;
    unsigned retry_after;              /* seconds, for 429 */
    struct audit_txn txn;              /* an admin change's event, in the change's transaction */
    bool audited;                      /* its event is committed already */
};

/* Audit helpers for handlers: record a context value, a batch reference (both HMAC-ed), and one
 * batch item's outcome and key version. No-ops when auditing is off. */
void req_audit_context(struct req *r, const char *value, size_t len);
void req_audit_reference(struct req *r, const char *value, size_t len);
void req_audit_item(struct req *r, bool ok, uint32_t version);

/* Admin changes: the event the request will have if the change commits with `status`, to pass
 * to the store call (NULL when auditing is off; &store_audit_refused when the event cannot be
 * made, which makes the store refuse the change: pass it on either way); then report the
 * outcome. */
const struct store_audit_row *req_admin_event(struct req *r, unsigned status);
void req_admin_done(struct req *r, enum status st);

/* Header and query lookups (NULL when absent). */
const char *req_header(struct req *r, const char *name);
const char *req_query(struct req *r, const char *name);

/* Replies: each queues exactly one response; a second call is a bug (asserted). */
void req_reply_json(struct req *r, unsigned code, struct sbuf *body);   /* takes body */
void req_reply_raw(struct req *r, unsigned code, const char *content_type, struct sbuf *body);
void req_reply_empty(struct req *r, unsigned code);
/* Error reply with the code/message of the status table; msg overrides the fixed text (it must
 * never contain secrets). Retry-After is added for ST_RATE_LIMITED. */
void req_fail(struct req *r, enum status st, const char *msg);

unsigned http_code_for(enum status st);

/* Start the daemon; ST_INVALID with err for bad listen/TLS settings, ST_IO when binding fails. */
struct http_server;
NODISCARD enum status http_start(struct http_server **out, struct service *svc,
                                 const struct http_listen *l, const struct http_limits *lim,
                                 char *err, size_t err_len);
/* Stop accepting, wait (up to grace seconds) for in-flight requests, then stop. */
void http_stop(struct http_server *h, int grace_seconds);
/* True when the listen host is a loopback address or "localhost". */
bool http_is_loopback(const char *listen);

#endif
