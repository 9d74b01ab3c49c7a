/* SPDX-License-Identifier: Apache-2.0 */
/* server/http/request.c -- one request as the transport sees it: the status -> HTTP table,
 * replies (a response is built here and queued when released), request ids, what a request
 * line may be (canonical paths, method tokens), the client address and the request log line.
 * Never logs headers or bodies. */
#include <arpa/inet.h>
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <microhttpd.h>
#include <sodium.h>

#include "common/log.h"
#include "server/http/private.h"

static const struct {
    unsigned code;
    const char *error;
    const char *text;
} status_table[ST__COUNT] = {
    [ST_OK] = {200, "ok", "ok"},
    [ST_INVALID] = {400, "invalid_request", "the request is not valid"},
    [ST_MALFORMED_CT] = {400, "malformed_ciphertext", "the ciphertext is malformed"},
    [ST_UNAUTHENTICATED] = {401, "unauthenticated", "a valid API key is required"},
    [ST_FORBIDDEN] = {403, "forbidden", "the API key does not allow this"},
    [ST_NOT_FOUND] = {404, "not_found", "not found"},
    [ST_METHOD] = {405, "method_not_allowed", "method not allowed on this path"},
    [ST_CONFLICT] = {409, "conflict", "conflicts with the current state"},
    [ST_TOO_LARGE] = {413, "too_large", "the request body is too large"},
    [ST_BATCH_TOO_LARGE] = {413, "batch_too_large", "the batch has too many items or bytes"},
    [ST_VERSION_DISABLED] = {422, "key_version_disabled", "this key version is disabled"},
    [ST_UNKNOWN_VERSION] = {422, "unknown_key_version", "no such key version"},
    [ST_AUTH] = {422, "decryption_failed", "decryption failed"},
    [ST_RATE_LIMITED] = {429, "rate_limited", "too many requests"},
    [ST_UNAVAILABLE] = {503, "unavailable", "the service is temporarily unavailable"},
    [ST_INTEGRITY] = {500, "integrity_failure", "stored data failed its integrity check"},
    [ST_INTERNAL] = {500, "internal", "internal error"},
    [ST_IO] = {500, "internal", "internal error"},
};

unsigned
http_code_for(enum status st)
{
    if ((unsigned)st >= ST__COUNT || status_table[st].code == 0)
        return 500;
    return status_table[st].code;
}

const char *
http_status_text(enum status st)
{
    if ((unsigned)st >= ST__COUNT || status_table[st].text == NULL)
        return "internal error";
    return status_table[st].text;
}

const char *
req_header(struct req *r, const char *name)
{
    return MHD_lookup_connection_value(http_req_of(r)->conn, MHD_HEADER_KIND, name);
}

const char *
req_query(struct req *r, const char *name)
{
    return MHD_lookup_connection_value(http_req_of(r)->conn, MHD_GET_ARGUMENT_KIND, name);
}

struct unknown_arg {
    const char *const *known;
    const char *found;
};

static enum MHD_Result
find_unknown(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    struct unknown_arg *u = cls;
    (void)kind;
    (void)value;
    for (size_t i = 0; u->known[i] != NULL; i++)
        if (strcmp(key, u->known[i]) == 0)
            return MHD_YES;
    u->found = key;
    return MHD_NO;
}

const char *
req_query_unknown(struct req *r, const char *const *known)
{
    struct unknown_arg u = {known, NULL};
    MHD_get_connection_values(http_req_of(r)->conn, MHD_GET_ARGUMENT_KIND, find_unknown, &u);
    return u.found;
}

struct secret_body {
    char *p;
    size_t n;
};

static void
free_secret_body(void *cls)
{
    struct secret_body *b = cls;
    sbuf_wipe_free(b->p, b->n);
    free(b);
}

/* Build the response and keep it on the request: it is queued once the request's audit event
 * is durable (or at once for unaudited routes). */
static void
queue(struct req *r, unsigned code, const char *ctype, struct sbuf *body)
{
    struct http_req *hr = http_req_of(r);
    struct MHD_Response *resp;
    size_t len = 0;
    char *p = NULL;

    assert(!hr->replied);
    hr->replied = true;
    r->status_code = code;
    if (body != NULL)
        p = sbuf_take(body, &len);
    hr->resp_len = len;
    if (p != NULL && body != NULL && body->secret) {
        struct secret_body *sb = xmalloc(sizeof *sb);
        sb->p = p;
        sb->n = len;
        resp = MHD_create_response_from_buffer_with_free_callback_cls(len, p, free_secret_body, sb);
    } else if (p != NULL) {
        resp = MHD_create_response_from_buffer_with_free_callback(len, p, free);
    } else {
        resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    }
    if (ctype != NULL)
        MHD_add_response_header(resp, "Content-Type", ctype);
    MHD_add_response_header(resp, "X-Request-Id", r->request_id);
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    if (code == 429) {
        char ra[16];
        snprintf(ra, sizeof ra, "%u", r->retry_after ? r->retry_after : 1);
        MHD_add_response_header(resp, "Retry-After", ra);
    }
    if (code == 401)
        MHD_add_response_header(resp, "WWW-Authenticate", "Bearer");
    hr->resp = resp;
}

bool
http_flush(struct http_req *hr)
{
    if (hr->resp == NULL)
        return true;
    enum MHD_Result ok = MHD_queue_response(hr->conn, hr->pub.status_code, hr->resp);
    MHD_destroy_response(hr->resp);
    hr->resp = NULL;
    return ok == MHD_YES;
}

void
req_reply_json(struct req *r, unsigned code, struct sbuf *body)
{
    queue(r, code, "application/json", body);
}

void
req_reply_raw(struct req *r, unsigned code, const char *content_type, struct sbuf *body)
{
    queue(r, code, content_type, body);
}

void
req_reply_empty(struct req *r, unsigned code)
{
    queue(r, code, NULL, NULL);
}

void
req_fail(struct req *r, enum status st, const char *msg)
{
    struct sbuf b = {0};
    unsigned code = http_code_for(st);
    const char *err =
        (unsigned)st < ST__COUNT && status_table[st].error ? status_table[st].error : "internal";
    const char *text =
        msg != NULL ? msg
                    : ((unsigned)st < ST__COUNT && status_table[st].text ? status_table[st].text
                                                                         : "internal error");
    r->error_code = err; /* a static string of the table */
    sbuf_adds(&b, "{\"error\":{\"code\":\"");
    sbuf_adds(&b, err);
    sbuf_adds(&b, "\",\"message\":");
    sbuf_add_jstr(&b, text, strlen(text));
    sbuf_adds(&b, ",\"request_id\":\"");
    sbuf_adds(&b, r->request_id);
    sbuf_adds(&b, "\"}}");
    queue(r, code, "application/json", &b);
}

static bool
client_id_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* A per-thread random prefix and a counter: unique without a syscall per request. */
static void
new_request_id(char out[static 65])
{
    static _Thread_local char prefix[17];
    static _Thread_local uint64_t counter;
    if (prefix[0] == '\0') {
        uint8_t rnd[8];
        randombytes_buf(rnd, sizeof rnd);
        sodium_bin2hex(prefix, sizeof prefix, rnd, sizeof rnd);
    }
    snprintf(out, 65, "%s%016llx", prefix, (unsigned long long)++counter);
}

void
http_req_ids(struct http_req *hr)
{
    const char *cid = MHD_lookup_connection_value(hr->conn, MHD_HEADER_KIND, "X-Request-Id");
    if (cid != NULL && client_id_ok(cid))
        snprintf(hr->pub.request_id, sizeof hr->pub.request_id, "%s", cid);
    else
        new_request_id(hr->pub.request_id);
}

/* The request target's path exactly as the client sent it must be canonical: "/" followed by
 * non-empty segments of unreserved characters, no "." or ".." segment, no trailing "/", no
 * percent-encoding at all. Every route of this service spells its paths that way, so any other
 * spelling (//v1/..., /v1/./x, /v1/keyrings/a%2Fb/...) is refused before routing: what is
 * routed, authorised and audited is always the same string. */
bool
http_path_canonical(const char *raw)
{
    size_t seg = 0;

    if (raw == NULL || raw[0] != '/')
        return false;
    if (raw[1] == '\0')
        return true;
    for (const char *p = raw + 1;; p++) {
        char c = *p;
        if (c == '/' || c == '\0') {
            const char *start = p - seg;
            if (seg == 0 || (seg == 1 && start[0] == '.') ||
                (seg == 2 && start[0] == '.' && start[1] == '.'))
                return false;
            if (c == '\0')
                return true;
            seg = 0;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_' || c == '~'))
            return false;
        seg++;
    }
}

/* The method as audit text: a known method by name, anything else one fixed token, so no
 * client byte reaches the trail through it. */
const char *
http_method_token(const char *m)
{
    static const char *const known[] = {"GET",    "HEAD",    "POST",  "PUT",    "PATCH",
                                        "DELETE", "OPTIONS", "TRACE", "CONNECT"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        if (strcmp(m, known[i]) == 0)
            return known[i];
    }
    return "OTHER";
}

/* --- the client address --- */

/* Is this peer address one of --trusted-proxies (comma-separated exact addresses)? */
static bool
proxy_trusted(const char *list, const char *peer)
{
    size_t pl = strlen(peer);
    for (const char *p = list; p != NULL && *p != '\0';) {
        size_t n = strcspn(p, ",");
        if (n == pl && strncmp(p, peer, n) == 0)
            return true;
        p += n;
        p += strspn(p, ", ");
    }
    return false;
}

/* Every X-Forwarded-For line, in order, joined with commas (a header may be sent several
 * times; reading only the first would let a client pick its own address). */
struct xff {
    char buf[1024];
    size_t len;
    bool overflow;
};

static enum MHD_Result
xff_line(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    struct xff *x = cls;
    (void)kind;
    if (key == NULL || value == NULL || strcasecmp(key, "X-Forwarded-For") != 0)
        return MHD_YES;
    size_t n = strlen(value);
    if (x->len + n + 2 > sizeof x->buf) {
        x->overflow = true;
        return MHD_NO;
    }
    if (x->len > 0)
        x->buf[x->len++] = ',';
    memcpy(x->buf + x->len, value, n);
    x->len += n;
    x->buf[x->len] = '\0';
    return MHD_YES;
}

/* One hop of the list, trimmed, when it is an IP address. */
static bool
xff_hop(const char *p, size_t n, char out[static 64])
{
    struct in6_addr a6;
    struct in_addr a4;
    while (n > 0 && (*p == ' ' || *p == '\t'))
        p++, n--;
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    if (n == 0 || n >= 64)
        return false;
    memcpy(out, p, n);
    out[n] = '\0';
    return inet_pton(AF_INET, out, &a4) == 1 || inet_pton(AF_INET6, out, &a6) == 1;
}

/* The client behind trusted proxies: walk X-Forwarded-For from the right (the hop our peer
 * added) and take the first address that is not itself a trusted proxy. Believed only when the
 * socket peer is trusted; a malformed hop stops the walk at the last good address. */
static void
forwarded_for(struct http_req *hr, char out[static 64])
{
    const char *list = hr->h->trusted_proxies;
    struct xff x = {.len = 0};
    char hop[64];

    if (list == NULL || !proxy_trusted(list, out))
        return;
    MHD_get_connection_values(hr->conn, MHD_HEADER_KIND, xff_line, &x);
    if (x.len == 0 || x.overflow)
        return;
    for (size_t end = x.len; end > 0;) {
        size_t start = end;
        while (start > 0 && x.buf[start - 1] != ',')
            start--;
        if (!xff_hop(x.buf + start, end - start, hop))
            return;
        snprintf(out, 64, "%s", hop);
        if (!proxy_trusted(list, hop))
            return;
        end = start > 0 ? start - 1 : 0;
    }
}

void
req_client_addr(struct req *r, char out[static 64])
{
    struct http_req *hr = http_req_of(r);
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(hr->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    out[0] = '\0';
    if (ci == NULL || ci->client_addr == NULL)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out, 64);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out, 64);
    forwarded_for(hr, out);
}

void
http_log_request(const struct http_req *hr)
{
    const struct req *r = &hr->pub;
    struct timespec now;
    char status[8], ms[32], tid[2 * TRACE_ID_BYTES + 1], sid[2 * TRACE_SPAN_BYTES + 1];
    enum log_level lvl = r->status_code >= 500   ? LOG_ERROR
                         : r->status_code >= 400 ? LOG_INFO
                                                 : LOG_DEBUG;
    if (!hr->started || !log_enabled(lvl))
        return; /* MHD refused it before its headers were in */
    clock_gettime(CLOCK_MONOTONIC, &now);
    double d = (double)(now.tv_sec - r->started.tv_sec) * 1e3 +
               (double)(now.tv_nsec - r->started.tv_nsec) / 1e6;
    snprintf(status, sizeof status, "%u", r->status_code);
    snprintf(ms, sizeof ms, "%.3f", d);
    trace_id_hex(&r->trace, tid);
    trace_span_hex(&r->trace, sid);
    log_msg(lvl, "request", "request_id", r->request_id, "trace_id", tid, "span_id", sid, "method",
            r->method, "route", r->route != NULL ? r->route->path : "", "path", r->path, "#status",
            status, "#duration_ms", ms, "app", r->authenticated ? r->principal.app : "", "key_id",
            r->authenticated ? r->principal.key_id : "", "error",
            r->error_code != NULL ? r->error_code : "", "client", r->log_client, LOG_END);
}
