/* SPDX-License-Identifier: Apache-2.0 */
/* server/http.c -- libmicrohttpd glue: listener and limits, request lifecycle, routing, the
 * status -> HTTP table and replies. Request bodies may hold plaintext: they are wiped when the
 * request completes. Never logs headers or bodies. */
#include "server/http.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <microhttpd.h>
#include <sodium.h>

#include "common/text.h"
#include "crypto/apikey.h"
#include "crypto/keyfile.h"
#include "server/authz.h"
#include "server/jsonx.h"
#include "server/jwt.h"
#include "server/audit.h"
#include "server/handlers/handlers.h"
#include "server/keyrings.h"
#include "server/log.h"
#include "server/service.h"

struct http_server {
    struct MHD_Daemon *d;
    struct service *svc;
    struct http_limits lim;
    atomic_long in_flight;
    atomic_bool draining;              /* SIGTERM: new requests are refused with 503 */
    char *tls_cert, *tls_key;
    size_t tls_key_len;
};

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
req_header(struct req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *
req_query(struct req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
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
    struct MHD_Response *resp;
    size_t len = 0;
    char *p = NULL;

    assert(!r->replied);
    r->replied = true;
    r->status_code = code;
    if (body != NULL)
        p = sbuf_take(body, &len);
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
    r->resp = resp;
}

/* Hand the built response to MHD. False when MHD cannot take it at this point (a response
 * queued in the middle of an upload): the caller then closes the connection. */
static bool
flush(struct req *r)
{
    if (r->resp == NULL)
        return true;
    enum MHD_Result ok = MHD_queue_response(r->conn, r->status_code, r->resp);
    MHD_destroy_response(r->resp);
    r->resp = NULL;
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
    const char *err = (unsigned)st < ST__COUNT && status_table[st].error ? status_table[st].error
                                                                          : "internal";
    const char *text = msg != NULL ? msg : ((unsigned)st < ST__COUNT && status_table[st].text
                                                ? status_table[st].text : "internal error");
    sbuf_adds(&b, "{\"error\":{\"code\":\"");
    sbuf_adds(&b, err);
    sbuf_adds(&b, "\",\"message\":");
    sbuf_add_jstr(&b, text, strlen(text));
    sbuf_adds(&b, ",\"request_id\":\"");
    sbuf_adds(&b, r->request_id);
    sbuf_adds(&b, "\"}}");
    queue(r, code, "application/json", &b);
}

/* --- request ids --- */

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

/* --- the request line --- */

/* The request target's path exactly as the client sent it must be canonical: "/" followed by
 * non-empty segments of unreserved characters, no "." or ".." segment, no trailing "/", no
 * percent-encoding at all. Every route of this service spells its paths that way, so any other
 * spelling (//v1/..., /v1/./x, /v1/keyrings/a%2Fb/...) is refused before routing: what is
 * routed, authorised and audited is always the same string. */
static bool
path_canonical(const char *raw)
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
static const char *
method_token(const char *m)
{
    static const char *const known[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE",
                                        "OPTIONS", "TRACE", "CONNECT"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        if (strcmp(m, known[i]) == 0)
            return known[i];
    }
    return "OTHER";
}

/* --- routing --- */

#define MAX_SEGS 7

struct route {
    const char *method;
    const char *pattern;        /* segments; "*" captures */
    void (*fn)(struct req *);
    bool auth;
    const char *op;             /* audit operation name */
    const char *templ;          /* audit route template */
    bool keyring_param;         /* p1 names a keyring */
    bool batches;               /* takes batch bodies up to --max-batch-bytes (checks sizes) */
};

#define KR "/v1/keyrings/{name}"
static const struct route routes[] = {
    {"GET", "healthz", h_healthz, false, NULL, NULL, false, false},
    {"GET", "readyz", h_readyz, false, NULL, NULL, false, false},
    {"GET", "metrics", h_metrics, false, NULL, NULL, false, false},
    {"GET", "v1/keyrings", h_keyrings_list, true, "keyring.list", "/v1/keyrings", false, false},
    {"POST", "v1/keyrings", h_keyrings_create, true, "keyring.create", "/v1/keyrings", false,
     false},
    {"GET", "v1/keyrings/*", h_keyring_get, true, "keyring.get", KR, true, false},
    {"PATCH", "v1/keyrings/*", h_keyring_patch, true, "keyring.update", KR, true, false},
    {"DELETE", "v1/keyrings/*", h_keyring_delete, true, "keyring.delete", KR, true, false},
    {"POST", "v1/keyrings/*/rotate", h_keyring_rotate, true, "keyring.rotate", KR "/rotate", true,
     false},
    {"POST", "v1/keyrings/*/encrypt", h_encrypt, true, "encrypt", KR "/encrypt", true, true},
    {"POST", "v1/keyrings/*/decrypt", h_decrypt, true, "decrypt", KR "/decrypt", true, true},
    {"POST", "v1/keyrings/*/rewrap", h_rewrap, true, "rewrap", KR "/rewrap", true, true},
    {"POST", "v1/keyrings/*/datakey", h_datakey, true, "datakey", KR "/datakey", true, true},
    {"GET", "v1/apps", h_apps_list, true, "app.list", "/v1/apps", false, false},
    {"POST", "v1/apps", h_apps_create, true, "app.create", "/v1/apps", false, false},
    {"GET", "v1/apps/*", h_app_get, true, "app.get", "/v1/apps/{app}", false, false},
    {"GET", "v1/apps/*/usage", h_app_usage, true, "app.usage", "/v1/apps/{app}/usage", false,
     false},
    {"GET", "v1/apps/*/keys", h_keys_list, true, "key.list", "/v1/apps/{app}/keys", false, false},
    {"POST", "v1/apps/*/keys", h_keys_create, true, "key.create", "/v1/apps/{app}/keys", false,
     false},
    {"DELETE", "v1/apps/*/keys/*", h_key_revoke, true, "key.revoke", "/v1/apps/{app}/keys/{id}",
     false, false},
    {"POST", "v1/apps/*/keys/*/rotate", h_key_rotate, true, "key.rotate",
     "/v1/apps/{app}/keys/{id}/rotate", false, false},
    {"GET", "v1/audit/events", h_audit_events, true, "audit.events", "/v1/audit/events", false,
     false},
    {"GET", "v1/audit/export", h_audit_export, true, "audit.export", "/v1/audit/export", false,
     false},
    {"GET", "v1/audit/verify", h_audit_verify, true, "audit.verify", "/v1/audit/verify", false,
     false},
    {"GET", "v1/audit/public-key", h_audit_public_key, true, "audit.public_key",
     "/v1/audit/public-key", false, false},
    {"POST", "v1/audit/hash", h_audit_hash, true, "audit.hash", "/v1/audit/hash", false, false},
    {"POST", "v1/audit/rotate-key", h_audit_rotate_key, true, "audit.rotate_key",
     "/v1/audit/rotate-key", false, false},
};

static size_t
split(char *path, char *segs[static MAX_SEGS])
{
    size_t n = 0;
    for (char *save = NULL, *s = strtok_r(path, "/", &save); s != NULL;
         s = strtok_r(NULL, "/", &save)) {
        if (n == MAX_SEGS)
            return MAX_SEGS + 1;
        segs[n++] = s;
    }
    return n;
}

/* Match path segments against a pattern; captures go to caps. */
static bool
match(const char *pattern, char *const segs[], size_t n, const char *caps[static 3])
{
    char pat[64];
    char *ps[MAX_SEGS];
    size_t ncap = 0;
    snprintf(pat, sizeof pat, "%s", pattern);
    if (split(pat, ps) != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(ps[i], "*") == 0) {
            if (ncap < 3)
                caps[ncap++] = segs[i];
        } else if (strcmp(ps[i], segs[i]) != 0) {
            return false;
        }
    }
    return true;
}

/* A JWT bearer: the app is "jwt:<iss>", scopes come from the role claim, sub is HMAC-ed; the
 * config's rate and burst apply per (iss, sub) bucket (429 with Retry-After, as for keys). */
static enum status
authenticate_jwt(struct req *r, const struct authz *az)
{
    struct jwt_claims c;
    char bucket[JWT_BUCKET_BYTES];
    int64_t rate, burst;
    enum status st = jwt_verify(r->svc->jwt, az->token, az->token_len, now_s(), &c);

    if (st != ST_OK) {
        apps_count_failure(r->svc->apps, AUTH_FAIL_JWT);
        sodium_memzero(&c, sizeof c);
        return ST_UNAUTHENTICATED;
    }
    snprintf(r->principal.app, sizeof r->principal.app, "jwt:%.*s",
             (int)(sizeof r->principal.app - 5), c.iss);
    r->principal.scopes = c.scopes;
    r->principal.keyrings[0] = '\0';
    if (r->svc->audit != NULL)
        audit_hmac_hex(r->svc->audit, r->au.h_sub, c.sub, strlen(c.sub));
    jwt_bucket(bucket, &c);
    sodium_memzero(&c, sizeof c);
    r->authenticated = true;
    jwt_verifier_rate(r->svc->jwt, &rate, &burst);
    return apps_rate_check(r->svc->apps, bucket, rate, burst, &r->retry_after);
}

static enum status
authenticate(struct req *r)
{
    const char *h = req_header(r, "Authorization");
    struct authz az;
    enum status st;

    if (authz_parse(h, h != NULL ? strlen(h) : 0, &az) != ST_OK) {
        apps_count_failure(r->svc->apps, AUTH_FAIL_MALFORMED);
        return ST_UNAUTHENTICATED;
    }
    if (az.kind == AUTHZ_JWT)
        return r->svc->jwt != NULL ? authenticate_jwt(r, &az) : ST_UNAUTHENTICATED;
    st = apps_authenticate(r->svc->apps, az.token, az.token_len, &r->principal,
                           &r->retry_after);
    r->authenticated = st == ST_OK || st == ST_RATE_LIMITED;
    if (!r->authenticated)
        r->au.presented_key_id = arena_strndup(r->arena, az.key_id, strlen(az.key_id));
    return st;
}

/* A request refused before routing reached any handler (bad path, no such route, too large,
 * draining): its event is recorded as "unknown" and may be folded with others like it. */
static void
refuse_early(struct req *r, enum status st, const char *msg)
{
    r->op = "unknown";
    r->route = "unknown";
    r->refused_early = true;
    req_fail(r, st, msg);
}

static void
dispatch(struct req *r)
{
    char *path = arena_strndup(r->arena, r->path, strlen(r->path));
    char *segs[MAX_SEGS];
    const char *caps[3] = {NULL, NULL, NULL};
    size_t n = split(path, segs);
    bool path_known = false;
    enum status st;

    for (size_t i = 0; n <= MAX_SEGS && i < sizeof routes / sizeof routes[0]; i++) {
        if (!match(routes[i].pattern, segs, n, caps))
            continue;
        path_known = true;
        if (strcmp(routes[i].method, r->method) != 0)
            continue;
        r->p1 = caps[0];
        r->p2 = caps[1];
        r->p3 = caps[2];
        r->op = routes[i].op;
        r->route = routes[i].templ;
        r->keyring_param = routes[i].keyring_param;
        r->unaudited = routes[i].op == NULL;   /* the route decides, never the raw path */
        if (routes[i].auth && (st = authenticate(r)) != ST_OK) {
            req_fail(r, st, NULL);
            return;
        }
        /* --max-body-bytes bounds every body; only the crypto routes take batches up to
         * --max-batch-bytes (the larger limit the body was read up to) and size them. */
        if (!routes[i].batches && r->body_len > r->svc->limits.max_body_bytes) {
            req_fail(r, ST_TOO_LARGE, NULL);
            return;
        }
        routes[i].fn(r);
        return;
    }
    refuse_early(r, path_known ? ST_METHOD : ST_NOT_FOUND, NULL);
}

/* --- audit --- */

/* Is this peer address one of --trusted-proxies (comma-separated exact addresses)? */
static bool
proxy_trusted(const struct service *svc, const char *peer)
{
    size_t pl = strlen(peer);
    for (const char *p = svc->trusted_proxies; p != NULL && *p != '\0';) {
        size_t n = strcspn(p, ",");
        if (n == pl && strncmp(p, peer, n) == 0)
            return true;
        p += n;
        p += strspn(p, ", ");
    }
    return false;
}

static void
grow_hex(char (**arr)[65], size_t *n, size_t *cap)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 8;
        *arr = xrealloc(*arr, *cap * sizeof **arr);
    }
}

void
req_audit_context(struct req *r, const char *value, size_t len)
{
    if (r == NULL || r->svc->audit == NULL)
        return;
    grow_hex(&r->au.h_context, &r->au.n_context, &r->au.cap_context);
    audit_hmac_hex(r->svc->audit, r->au.h_context[r->au.n_context++], value, len);
}

void
req_audit_reference(struct req *r, const char *value, size_t len)
{
    if (r == NULL || r->svc->audit == NULL)
        return;
    grow_hex(&r->au.h_reference, &r->au.n_reference, &r->au.cap_reference);
    audit_hmac_hex(r->svc->audit, r->au.h_reference[r->au.n_reference++], value, len);
}

void
req_audit_item(struct req *r, bool ok, uint32_t version)
{
    struct req_audit *au = &r->au;
    au->total++;
    if (!ok) {
        au->failed++;
        return;
    }
    au->ok++;
    for (size_t i = 0; i < au->n_versions; i++) {
        if (au->versions[i] == version) {
            au->counts[i]++;
            return;
        }
    }
    if (au->n_versions < sizeof au->versions / sizeof au->versions[0]) {
        au->versions[au->n_versions] = version;
        au->counts[au->n_versions++] = 1;
    }
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
forwarded_for(struct req *r, char out[static 64])
{
    struct xff x = {.len = 0};
    char hop[64];

    if (r->svc->trusted_proxies == NULL || !proxy_trusted(r->svc, out))
        return;
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, xff_line, &x);
    if (x.len == 0 || x.overflow)
        return;
    for (size_t end = x.len; end > 0;) {
        size_t start = end;
        while (start > 0 && x.buf[start - 1] != ',')
            start--;
        if (!xff_hop(x.buf + start, end - start, hop))
            return;
        snprintf(out, 64, "%s", hop);
        if (!proxy_trusted(r->svc, hop))
            return;
        end = start > 0 ? start - 1 : 0;
    }
}

/* The client address from the socket (or a trusted proxy's X-Forwarded-For), as text. */
static void
client_addr(struct req *r, char out[static 64])
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    out[0] = '\0';
    if (ci == NULL || ci->client_addr == NULL)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out, 64);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out, 64);
    forwarded_for(r, out);
}

/* W3C traceparent "00-<32 hex trace id>-<16 hex>-<2 hex>": the trace id, when well formed. */
static void
trace_id(struct req *r, char out[static 33])
{
    const char *tp = req_header(r, "traceparent");
    out[0] = '\0';
    if (tp == NULL || strlen(tp) != 55 || tp[2] != '-' || tp[35] != '-' || tp[52] != '-' ||
        strspn(tp + 3, "0123456789abcdef") < 32 || strspn(tp + 36, "0123456789abcdef") < 16 ||
        strncmp(tp + 3, "00000000000000000000000000000000", 32) == 0)
        return;
    memcpy(out, tp + 3, 32);
    out[32] = '\0';
}

static void
on_audited(void *arg, enum status st)
{
    struct req *r = arg;
    r->audit_st = st;
    atomic_store(&r->audit_done, true);
    MHD_resume_connection(r->conn);
}

static struct audit_rec *
make_record(struct req *r)
{
    struct audit *a = r->svc->audit;
    struct audit_rec *rec = audit_rec_new();
    struct timespec now;
    char addr[64];

    clock_gettime(CLOCK_MONOTONIC, &now);
    rec->latency_us = (int64_t)(now.tv_sec - r->started.tv_sec) * 1000000 +
                      (now.tv_nsec - r->started.tv_nsec) / 1000;
    rec->op = r->op != NULL ? r->op : "unknown";
    snprintf(rec->method, sizeof rec->method, "%s", r->method);   /* a fixed token */
    rec->route = r->route != NULL ? r->route : "unknown";
    rec->status = r->status_code;
    if (r->authenticated || r->principal.key_id[0] != '\0') {
        /* authenticated, or a known key refused (revoked, expired, wrong secret): named in
         * clear. JWT apps hold an issuer string: copied as safe text, never cut in a char. */
        (void)text_copy_safe(rec->app, sizeof rec->app, r->principal.app);
        (void)text_copy_safe(rec->key_id, sizeof rec->key_id, r->principal.key_id);
    } else if (r->au.presented_key_id != NULL) {
        audit_hmac_hex(a, rec->h_key_id, r->au.presented_key_id, strlen(r->au.presented_key_id));
    }
    /* Refused authentications and requests refused before routing fold together per client,
     * route, method, status, key and second (a flood is one event with a count). */
    rec->coalesce = r->refused_early || r->status_code == 401;
    if (r->keyring_param && r->p1 != NULL) {
        /* In clear only when the keyring exists (or the request just created or used it):
         * a name someone merely tried stays an HMAC. */
        if (name_valid(r->p1) && (r->status_code < 300 || krm_known(r->svc->keyrings, r->p1)))
            snprintf(rec->keyring, sizeof rec->keyring, "%s", r->p1);
        else
            audit_hmac_hex(a, rec->h_keyring, r->p1, strlen(r->p1));
    }
    rec->key_version = r->au.key_version;
    rec->items_total = r->au.total;
    rec->items_ok = r->au.ok;
    rec->items_failed = r->au.failed;
    rec->n_versions = r->au.n_versions;
    memcpy(rec->versions, r->au.versions, sizeof rec->versions);
    memcpy(rec->version_counts, r->au.counts, sizeof rec->version_counts);
    trace_id(r, rec->trace_id);
    audit_hmac_hex(a, rec->h_request_id, r->request_id, strlen(r->request_id));
    client_addr(r, addr);
    audit_hmac_hex(a, rec->h_client, addr, strlen(addr));
    if (r->au.h_sub[0] != '\0')
        memcpy(rec->h_sub, r->au.h_sub, sizeof rec->h_sub);
    rec->h_context = r->au.h_context;       /* the record takes the arrays */
    rec->n_h_context = r->au.n_context;
    rec->h_reference = r->au.h_reference;
    rec->n_h_reference = r->au.n_reference;
    r->au.h_context = NULL;
    r->au.h_reference = NULL;
    r->au.n_context = r->au.n_reference = 0;
    return rec;
}

const struct store_audit_row *
req_admin_event(struct req *r, unsigned status)
{
    struct audit *a = r->svc->audit;
    if (a == NULL)
        return NULL;
    unsigned saved = r->status_code;
    r->status_code = status;            /* the answer if the change commits */
    struct audit_rec *rec = make_record(r);
    r->status_code = saved;
    enum status st = audit_txn_begin(a, &r->txn, rec);
    free(rec->h_context);
    free(rec->h_reference);
    free(rec);
    /* No event, no change: the store refuses the change (503) rather than make it unaudited. */
    return st == ST_OK ? &r->txn.row : &store_audit_refused;
}

void
req_admin_done(struct req *r, enum status st)
{
    if (!r->txn.held)
        return;
    audit_txn_end(&r->txn, st == ST_OK);
    r->audited = st == ST_OK;           /* else the normal path records the failure */
}

/* Hand the request's event to the audit writer. Returns true when the connection is suspended
 * until the event is durable (the response is queued on resume). */
static bool
audit_request(struct http_server *h, struct req *r, bool may_wait)
{
    struct audit *a = h->svc->audit;
    /* Every request is audited except those the route table marks public (health, metrics):
     * the decision follows the matched route, never a spelling of the path. */
    if (a == NULL || r->unaudited || r->audited)
        return false;
    struct audit_rec *rec = make_record(r);
    bool wait = audit_durable(a) || audit_backlog(a) > AUDIT_MAX_BACKLOG;   /* backpressure */
    if (may_wait && wait && !rec->coalesce) {
        rec->done = on_audited;
        rec->arg = r;
        r->suspended = true;
        MHD_suspend_connection(r->conn);    /* before submit: the writer may resume at once */
        audit_submit(a, rec);
        return true;
    }
    audit_submit(a, rec);
    return false;
}

/* --- MHD callbacks --- */

/* MHD_OPTION_URI_LOG_CALLBACK: once per request, with the request target exactly as sent (MHD
 * percent-decodes the path it hands to on_request afterwards). The request object starts here,
 * so the canonical-path check sees the client's own bytes. */
static void *
on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    struct http_server *h = cls;
    struct req *r = xcalloc(1, sizeof *r);

    r->svc = h->svc;
    r->arena = arena_new(2048);
    r->conn = c;
    if (uri != NULL)
        r->raw_path = arena_strndup(r->arena, uri, strcspn(uri, "?#"));
    clock_gettime(CLOCK_MONOTONIC, &r->started);
    return r;
}

/* The first access-handler call: headers are in. */
static void
req_start(struct http_server *h, struct req *r, const char *url, const char *method)
{
    r->started_call = true;
    r->method = method_token(method);
    r->path = arena_strndup(r->arena, url, strlen(url));
    const char *cid = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-Request-Id");
    if (cid != NULL && client_id_ok(cid))
        snprintf(r->request_id, sizeof r->request_id, "%s", cid);
    else
        new_request_id(r->request_id);
    atomic_fetch_add(&h->in_flight, 1);
}

static uint64_t
body_cap(const struct http_server *h)
{
    return h->lim.max_body_bytes > h->lim.max_batch_bytes ? h->lim.max_body_bytes
                                                          : h->lim.max_batch_bytes;
}

static bool
body_append(struct req *r, uint64_t cap, const char *data, size_t n)
{
    if (r->body_overflow || r->body_len + n > cap) {
        r->body_overflow = true;
        return false;
    }
    if (r->body_len + n + 1 > r->body_cap) {
        size_t want = r->body_cap ? r->body_cap : 4096;
        while (want < r->body_len + n + 1)
            want *= 2;
        char *nb = xmalloc(want);
        if (r->body != NULL) {
            memcpy(nb, r->body, r->body_len);
            sodium_memzero(r->body, r->body_cap);
            free(r->body);
        }
        r->body = nb;
        r->body_cap = want;
    }
    memcpy(r->body + r->body_len, data, n);
    r->body_len += n;
    r->body[r->body_len] = '\0';
    return true;
}

/* Answer now, before (or instead of) reading the body: a request refused before routing.
 * Returns what on_request returns. */
static enum MHD_Result
answer_early(struct http_server *h, struct req *r, enum status st, const char *msg, bool close)
{
    r->dispatched = true;
    refuse_early(r, st, msg);
    if (close)
        MHD_add_response_header(r->resp, "Connection", "close");
    audit_request(h, r, false);
    return flush(r) ? MHD_YES : MHD_NO;
}

/* A route of the route table that needs no authentication and is not audited (health and
 * metrics), in its canonical spelling. */
static bool
public_route(const char *raw)
{
    for (size_t i = 0; raw != NULL && raw[0] == '/' && i < sizeof routes / sizeof routes[0]; i++) {
        if (routes[i].op == NULL && strcmp(raw + 1, routes[i].pattern) == 0)
            return true;
    }
    return false;
}

/* The first call: refuse what must never be routed, and size the body buffer. */
static enum MHD_Result
on_headers(struct http_server *h, struct req *r)
{
    const char *cl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Content-Length");
    unsigned long long n = cl != NULL ? strtoull(cl, NULL, 10) : 0;

    /* Draining refuses the API; health and metrics still answer (/readyz: 503 not_ready). */
    if (atomic_load(&h->draining) && !public_route(r->raw_path))
        return answer_early(h, r, ST_UNAVAILABLE, "shutting down", true);
    if (!path_canonical(r->raw_path))
        return answer_early(h, r, ST_INVALID, "the request path is not canonical (empty, '.' or "
                            "'..' segments, percent-encoding or a trailing '/')", false);
    if (n > body_cap(h))
        return answer_early(h, r, ST_TOO_LARGE, NULL, false);   /* before reading the body */
    if (n > 0) {
        r->body_cap = (size_t)n + 1;    /* one allocation, no regrowth copies */
        r->body = xmalloc(r->body_cap);
    }
    return MHD_YES;
}

/* Resumed by the audit writer: answer, or 503 when the event could not be written. */
static enum MHD_Result
on_resumed(struct req *r)
{
    if (!atomic_load(&r->audit_done))
        return MHD_YES;
    r->suspended = false;
    if (r->audit_st != ST_OK) {
        MHD_destroy_response(r->resp);
        r->resp = NULL;
        r->replied = false;
        req_fail(r, ST_UNAVAILABLE, "the audit trail could not record this request");
    }
    flush(r);
    return MHD_YES;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
           const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    struct http_server *h = cls;
    struct req *r = *con_cls;
    (void)version;

    if (r == NULL)                      /* no URI callback ran: the raw path is unknown */
        *con_cls = r = on_uri(h, NULL, c);
    if (!r->started_call) {
        req_start(h, r, url, method);
        return on_headers(h, r);
    }
    if (*upload_data_size != 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (r->dispatched)
            return MHD_YES;             /* answered before the body: the rest is discarded */
        if (body_append(r, body_cap(h), upload_data, n))
            return MHD_YES;
        /* Over the limit in the middle of a (chunked) body: stop reading. MHD cannot queue a
         * response mid-upload, so the 413 is audited and the connection closed. */
        return answer_early(h, r, ST_TOO_LARGE, NULL, true);
    }
    if (r->suspended)
        return on_resumed(r);
    if (r->dispatched)
        return MHD_YES;
    r->dispatched = true;
    dispatch(r);
    if (!r->replied)
        req_fail(r, ST_INTERNAL, NULL);
    if (audit_request(h, r, true))
        return MHD_YES;             /* suspended until the event is durable */
    flush(r);
    return MHD_YES;
}

static void
log_request(const struct req *r)
{
    struct timespec now;
    char status[8], ms[32];
    enum log_level lvl = r->status_code >= 500 ? LOG_ERROR
                       : r->status_code >= 400 ? LOG_INFO : LOG_DEBUG;
    if (!r->started_call || !log_enabled(lvl))
        return;                         /* MHD refused it before its headers were in */
    clock_gettime(CLOCK_MONOTONIC, &now);
    double d = (double)(now.tv_sec - r->started.tv_sec) * 1e3 +
               (double)(now.tv_nsec - r->started.tv_nsec) / 1e6;
    snprintf(status, sizeof status, "%u", r->status_code);
    snprintf(ms, sizeof ms, "%.3f", d);
    log_msg(lvl, "request", "request_id", r->request_id, "method", r->method, "path", r->path,
            "#status", status, "#duration_ms", ms,
            "app", r->authenticated ? r->principal.app : "",
            "key_id", r->authenticated ? r->principal.key_id : "", LOG_END);
}

static void
on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
             enum MHD_RequestTerminationCode toe)
{
    struct http_server *h = cls;
    struct req *r = *con_cls;
    (void)c;
    (void)toe;
    if (r == NULL)
        return;
    log_request(r);
    if (r->resp != NULL)
        MHD_destroy_response(r->resp);
    free(r->au.h_context);
    free(r->au.h_reference);
    if (r->body != NULL) {
        sodium_memzero(r->body, r->body_cap);
        free(r->body);
    }
    arena_free(r->arena);
    sodium_memzero(&r->principal, sizeof r->principal);
    bool counted = r->started_call;
    free(r);
    *con_cls = NULL;
    if (counted)
        atomic_fetch_sub(&h->in_flight, 1);
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

/* A PEM file; a private key (secret_what != NULL) must pass the key-file rule first. */
static char *
read_file(const char *path, const char *secret_what, size_t *len, char *err, size_t err_len)
{
    struct stat sb;
    char *buf = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0 && secret_what != NULL &&
        keyfile_check_fd(fd, secret_what, path, err, err_len) != ST_OK)
        goto out;
    if (fd < 0 || fstat(fd, &sb) != 0 || sb.st_size <= 0 || sb.st_size > (1 << 20)) {
        snprintf(err, err_len, "cannot read %s: %s", path, fd < 0 ? strerror(errno) : "bad size");
        goto out;
    }
    buf = xmalloc((size_t)sb.st_size + 1);
    if (read(fd, buf, (size_t)sb.st_size) != sb.st_size) {
        snprintf(err, err_len, "cannot read %s", path);
        free(buf);
        buf = NULL;
        goto out;
    }
    buf[sb.st_size] = '\0';
    *len = (size_t)sb.st_size;
out:
    if (fd >= 0)
        close(fd);
    return buf;
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

static unsigned
ncores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

enum status
http_start(struct http_server **out, struct service *svc, const struct http_listen *l,
           const struct http_limits *lim, char *err, size_t err_len)
{
    struct sockaddr_storage ss;
    bool tls = l->tls_cert != NULL && l->tls_key != NULL;
    struct http_server *h = NULL;
    enum status st;

    *out = NULL;
    if ((l->tls_cert == NULL) != (l->tls_key == NULL)) {
        snprintf(err, err_len, "--tls-cert and --tls-key go together");
        return ST_INVALID;
    }
    if (!tls && !l->tls_terminated_upstream && !http_is_loopback(l->listen)) {
        snprintf(err, err_len, "refusing plain HTTP on non-loopback address %s: give --tls-cert "
                 "and --tls-key, or --tls-terminated-upstream if a proxy terminates TLS", l->listen);
        return ST_INVALID;
    }
    if ((st = resolve(l->listen, &ss, err, err_len)) != ST_OK)
        return st;
    h = xcalloc(1, sizeof *h);
    h->svc = svc;
    h->lim = *lim;
    size_t cert_len = 0;
    if (tls && ((h->tls_cert = read_file(l->tls_cert, NULL, &cert_len, err, err_len)) == NULL ||
                (h->tls_key = read_file(l->tls_key, "--tls-key", &h->tls_key_len, err,
                                        err_len)) == NULL)) {
        http_stop(h, 0);
        return ST_INVALID;
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
        {MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)on_uri, h},
        {tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, h->tls_cert},
        {tls ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, 0, h->tls_key},
        {MHD_OPTION_END, 0, NULL},
    };
    h->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h, MHD_OPTION_ARRAY, opts,
                            MHD_OPTION_END);
    if (h->d == NULL) {
        snprintf(err, err_len, "cannot listen on %s (address in use, or bad TLS files?)",
                 l->listen);
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
        for (int64_t i = 0; i < (int64_t)grace_seconds * 100 && atomic_load(&h->in_flight) > 0;
             i++)
            usleep(10000);
        if (atomic_load(&h->in_flight) > 0)
            log_msg(LOG_WARN, "shutdown_grace_expired", LOG_END);
        MHD_stop_daemon(h->d);
    }
    free(h->tls_cert);
    if (h->tls_key != NULL) {
        sodium_memzero(h->tls_key, h->tls_key_len);
        free(h->tls_key);
    }
    free(h);
}
