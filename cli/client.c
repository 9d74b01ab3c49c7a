/* SPDX-License-Identifier: Apache-2.0 */
/* cli/client.c -- JSON over HTTP(S) to the difyguard API with libcurl. Holds the bearer token:
 * it goes in one header and nowhere else (no redirects, no verbose output, no error text), and
 * libcurl allocates through a wiping allocator so its copies are zeroed when freed. */
#include "cli/client.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <sodium.h>

#include "common/json/jsonx.h"
#include "common/sbuf.h"
#include "common/xmem.h"

#define CLIENT_RESPONSE_MAX ((size_t)64 << 20) /* far above any admin answer */
#define CLIENT_CONNECT_TIMEOUT 10000L          /* milliseconds, when the call timeout is longer */
#define CLIENT_SHOW_MAX 200                    /* characters of server text in an error line */
#define CLIENT_USER_AGENT "difyguard-cli/" DG_VERSION
#define AUTH_PREFIX "Authorization: Bearer "

struct client {
    CURL *curl;
    char *base;   /* scheme://host:port[/prefix] without a trailing '/' */
    char *cacert; /* borrowed from the options */
    long timeout;
    struct curl_slist *headers; /* holds the Authorization header (wiped when freed) */
    bool retryable;             /* the last call failed in a way that may pass on retry */
    char *quiet;                /* client_quiet(): error lines go here instead of stderr */
    size_t quiet_cap;
};

/* One error line: on stderr, or kept for client_quiet()'s caller. */
static void say(const struct client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
say(const struct client *c, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    if (c->quiet != NULL)
        vsnprintf(c->quiet, c->quiet_cap, fmt, ap);
    else
        vfprintf(stderr, fmt, ap);
    va_end(ap);
}

bool
client_retryable(const struct client *c)
{
    return c->retryable;
}

void
client_quiet(struct client *c, char *buf, size_t cap)
{
    c->quiet = cap > 0 ? buf : NULL;
    c->quiet_cap = cap;
    if (c->quiet != NULL)
        c->quiet[0] = '\0';
}

/* ---- libcurl's allocator: every block is zeroed before it goes back to the heap ---------- */

struct wipe_hdr {
    size_t n;
    size_t pad; /* keeps the 16-byte alignment malloc gives */
};

static void *
wipe_malloc(size_t n)
{
    struct wipe_hdr *h = malloc(sizeof *h + n);
    if (h == NULL)
        return NULL;
    h->n = n;
    return h + 1;
}

static void
wipe_free(void *p)
{
    if (p == NULL)
        return;
    struct wipe_hdr *h = (struct wipe_hdr *)p - 1;
    sodium_memzero(p, h->n);
    free(h);
}

static void *
wipe_realloc(void *p, size_t n)
{
    if (p == NULL)
        return wipe_malloc(n);
    size_t old = ((struct wipe_hdr *)p - 1)->n;
    void *q = wipe_malloc(n);
    if (q == NULL)
        return NULL;
    memcpy(q, p, old < n ? old : n);
    wipe_free(p);
    return q;
}

static char *
wipe_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *q = wipe_malloc(n);
    if (q != NULL)
        memcpy(q, s, n);
    return q;
}

static void *
wipe_calloc(size_t k, size_t n)
{
    if (n != 0 && k > SIZE_MAX / n)
        return NULL;
    void *q = wipe_malloc(k * n);
    if (q != NULL)
        memset(q, 0, k * n);
    return q;
}

/* ---- set-up ------------------------------------------------------------------------------ */

const char *
client_printable(char *out, size_t max, const char *s)
{
    size_t n = 0;

    for (; n < max && s[n] != '\0'; n++)
        out[n] = (s[n] >= 0x20 && s[n] < 0x7f) ? s[n] : '?';
    if (s[n] != '\0') {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
    return out;
}

/* Server text for an error line: printable ASCII only, at most CLIENT_SHOW_MAX characters. */
static const char *
show(char out[static CLIENT_SHOW_MAX + 4], const char *s)
{
    return client_printable(out, CLIENT_SHOW_MAX, s);
}

/* Normalise and check the base URL: http or https, no user info, query or fragment. The
 * address is not quoted back: a mistyped one may hold a password. */
static enum status
base_url(char **out, const char *addr, char *err, size_t err_len)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *part = NULL, *url = NULL;
    enum status st = ST_INVALID;
    static const CURLUPart none[] = {CURLUPART_USER, CURLUPART_PASSWORD, CURLUPART_OPTIONS,
                                     CURLUPART_QUERY, CURLUPART_FRAGMENT};

    *out = NULL;
    if (u == NULL) {
        snprintf(err, err_len, "could not start libcurl");
        return ST_INTERNAL;
    }
    /* An explicit scheme: libcurl would guess https for a bare HOST:PORT, and a local
     * difyguard serves plain http on loopback. */
    if (addr == NULL ||
        (strncasecmp(addr, "http://", 7) != 0 && strncasecmp(addr, "https://", 8) != 0) ||
        curl_url_set(u, CURLUPART_URL, addr, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
        snprintf(err, err_len,
                 "--addr (DIFYGUARD_ADDR) must be an http:// or https:// URL, "
                 "such as %s",
                 CLIENT_DEFAULT_ADDR);
        goto out;
    }
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) {
        if (curl_url_get(u, none[i], &part, 0) == CURLUE_OK) {
            snprintf(err, err_len,
                     "--addr (DIFYGUARD_ADDR) must be a plain base URL: no user, "
                     "password, query or fragment (the API key comes from DIFYGUARD_TOKEN)");
            goto out;
        }
    }
    if (curl_url_get(u, CURLUPART_URL, &url, 0) != CURLUE_OK) {
        snprintf(err, err_len, "--addr (DIFYGUARD_ADDR) is not a usable URL");
        goto out;
    }
    size_t n = strlen(url);
    while (n > 0 && url[n - 1] == '/')
        n--;
    *out = xstrndup(url, n);
    st = ST_OK;
out:
    curl_free(part);
    curl_free(url);
    curl_free(scheme);
    curl_url_cleanup(u);
    return st;
}

/* The token goes in exactly one header; printable ASCII without spaces keeps it one header. */
static enum status
auth_header(struct client *c, const char *token, char *err, size_t err_len)
{
    size_t n = token != NULL ? strlen(token) : 0;

    if (n == 0) {
        snprintf(err, err_len,
                 "DIFYGUARD_TOKEN is not set: export the API key to use (it is "
                 "never taken as a flag)");
        return ST_INVALID;
    }
    for (size_t i = 0; i < n; i++) {
        if (token[i] <= 0x20 || token[i] >= 0x7f) {
            snprintf(err, err_len,
                     "DIFYGUARD_TOKEN holds a space or control character: it "
                     "must be the bare API key");
            return ST_INVALID;
        }
    }
    char *h = xmalloc(sizeof AUTH_PREFIX + n);
    memcpy(h, AUTH_PREFIX, sizeof AUTH_PREFIX - 1);
    memcpy(h + sizeof AUTH_PREFIX - 1, token, n + 1);
    struct curl_slist *l = curl_slist_append(c->headers, h); /* copies through wipe_strdup */
    sodium_memzero(h, sizeof AUTH_PREFIX + n);
    free(h);
    if (l == NULL) {
        snprintf(err, err_len, "could not start libcurl");
        return ST_INTERNAL;
    }
    c->headers = l;
    return ST_OK;
}

enum status
client_new(struct client **out, const struct client_opts *o, char *err, size_t err_len)
{
    static const char *const fixed[] = {"Accept: application/json",
                                        "Content-Type: application/json", "Expect:"};
    struct client *c = xcalloc(1, sizeof *c);
    enum status st;

    *out = NULL;
    if (curl_global_init_mem(CURL_GLOBAL_DEFAULT, wipe_malloc, wipe_free, wipe_realloc, wipe_strdup,
                             wipe_calloc) != CURLE_OK) {
        free(c);
        snprintf(err, err_len, "could not start libcurl");
        return ST_INTERNAL;
    }
    /* --cacert / DIFYGUARD_CACERT, else SSL_CERT_FILE as OpenSSL tools read it (libcurl would
     * use its built-in bundle path instead), else the system store. */
    c->cacert = o->cacert != NULL ? o->cacert : getenv("SSL_CERT_FILE");
    if (c->cacert != NULL && c->cacert[0] == '\0')
        c->cacert = NULL;
    c->timeout = o->timeout > 0 && o->timeout < 86400LL * 365 * 1000 ? (long)o->timeout : 0;
    if ((st = base_url(&c->base, o->addr, err, err_len)) != ST_OK ||
        (st = auth_header(c, o->token, err, err_len)) != ST_OK)
        goto out;
    st = ST_INTERNAL;
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        struct curl_slist *l = curl_slist_append(c->headers, fixed[i]);
        if (l == NULL)
            goto fail;
        c->headers = l;
    }
    if ((c->curl = curl_easy_init()) == NULL)
        goto fail;
    st = ST_OK;
    goto out;
fail:
    snprintf(err, err_len, "could not start libcurl");
out:
    if (st != ST_OK)
        client_free(c);
    else
        *out = c;
    return st;
}

void
client_free(struct client *c)
{
    if (c == NULL)
        return;
    if (c->curl != NULL)
        curl_easy_cleanup(c->curl);
    curl_slist_free_all(c->headers);
    free(c->base);
    free(c);
    curl_global_cleanup();
}

/* ---- calls ------------------------------------------------------------------------------- */

static size_t
on_data(char *p, size_t size, size_t n, void *ud)
{
    struct sbuf *b = ud;
    size_t len = size * n;

    if (len > CLIENT_RESPONSE_MAX - b->len)
        return 0; /* libcurl stops with CURLE_WRITE_ERROR */
    sbuf_add(b, p, len);
    return len;
}

static enum status
status_of(long code)
{
    switch (code) {
    case 400:
    case 422:
        return ST_INVALID;
    case 401:
        return ST_UNAUTHENTICATED;
    case 403:
        return ST_FORBIDDEN;
    case 404:
        return ST_NOT_FOUND;
    case 405:
        return ST_METHOD;
    case 409:
        return ST_CONFLICT;
    case 413:
        return ST_TOO_LARGE;
    case 429:
        return ST_RATE_LIMITED;
    case 503:
        return ST_UNAVAILABLE;
    default:
        return ST_INTERNAL;
    }
}

/* One stderr line for a non-2xx answer: the API's error code and message when it sent them. */
static enum status
report_error(const struct client *c, const char *method, const char *path, long code,
             const struct sbuf *in)
{
    char c_shown[CLIENT_SHOW_MAX + 4], m_shown[CLIENT_SHOW_MAX + 4];
    json_error_t je;
    json_t *j = in->len > 0 ? json_loadb(in->p, in->len, 0, &je) : NULL;
    const json_t *e = json_object_get(j, "error");
    const char *ec = json_string_value(json_object_get(e, "code"));
    const char *em = json_string_value(json_object_get(e, "message"));

    if (ec != NULL)
        say(c, "difyguard: %s %s: %ld %s: %s\n", method, path, code, show(c_shown, ec),
            em != NULL ? show(m_shown, em) : "(no message)");
    else
        say(c, "difyguard: %s %s: %ld (the answer carries no error object)\n", method, path, code);
    json_decref(j);
    sodium_memzero(&je, sizeof je);
    return status_of(code);
}

static void
setup(struct client *c, struct sbuf *in, char *errbuf, const char *method, const char *url,
      const char *body, size_t body_len)
{
    CURL *h = c->curl;

    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L); /* the token goes to this server only */
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, c->headers);
    curl_easy_setopt(h, CURLOPT_USERAGENT, CLIENT_USER_AGENT);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                     c->timeout > 0 && c->timeout < CLIENT_CONNECT_TIMEOUT
                         ? c->timeout
                         : CLIENT_CONNECT_TIMEOUT);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, in);
    if (c->cacert != NULL)
        curl_easy_setopt(h, CURLOPT_CAINFO, c->cacert);
    if (strncasecmp(c->base, "http://", 7) == 0)
        curl_easy_setopt(h, CURLOPT_PROXY, ""); /* no http_proxy: it would see the token */
    if (body != NULL) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    }
    if (strcmp(method, "GET") == 0)
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    else if (strcmp(method, "POST") != 0 || body == NULL)
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
}

enum status
client_call(struct client *c, json_t **resp, long *code, const char *method, const char *path,
            const json_t *body)
{
    struct sbuf in = {.secret = true}; /* an answer may carry a new API key */
    char errbuf[CURL_ERROR_SIZE] = "", shown[CLIENT_SHOW_MAX + 4];
    char *out = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    char *url = xmalloc(strlen(c->base) + strlen(path) + 1);
    long http = 0;
    json_error_t je;
    enum status st = ST_IO;
    CURLcode rc;

    *resp = NULL;
    c->retryable = false;
    if (code != NULL)
        *code = 0;
    strcat(strcpy(url, c->base), path);
    setup(c, &in, errbuf, method, url, out, out != NULL ? strlen(out) : 0);
    if ((rc = curl_easy_perform(c->curl)) != CURLE_OK) {
        /* nobody listening yet, a name not resolvable yet, no answer in time, a dropped
         * connection: a service starting up; TLS and protocol failures are not */
        c->retryable = rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
                       rc == CURLE_OPERATION_TIMEDOUT || rc == CURLE_GOT_NOTHING ||
                       rc == CURLE_SEND_ERROR || rc == CURLE_RECV_ERROR;
        if (rc == CURLE_WRITE_ERROR)
            say(c, "difyguard: %s %s: the answer is larger than %zu bytes\n", method, path,
                CLIENT_RESPONSE_MAX);
        else
            say(c, "difyguard: %s %s: %s\n", method, path,
                show(shown, errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc)));
        goto out;
    }
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &http);
    if (code != NULL)
        *code = http;
    if (http < 200 || http > 299) {
        c->retryable = http == 503 || http == 429 || http == 502 || http == 504;
        st = report_error(c, method, path, http, &in);
        goto out;
    }
    st = ST_OK;
    if (in.len > 0 && (*resp = json_loadb(in.p, in.len, 0, &je)) == NULL) {
        say(c, "difyguard: %s %s: %ld but the answer is not JSON\n", method, path, http);
        st = ST_INTERNAL;
    }
    sodium_memzero(&je, sizeof je); /* its text may quote the answer */
out:
    curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, NULL);
    sbuf_free(&in);
    free(url);
    jx_free_str(out);
    return st;
}

struct file_sink {
    CURL *h;
    FILE *f;
    struct sbuf err; /* a non-2xx answer's body */
    bool failed;
};

static size_t
on_file_data(char *p, size_t size, size_t n, void *ud)
{
    struct file_sink *s = ud;
    size_t len = size * n;
    long http = 0;

    curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &http);
    if (http >= 200 && http <= 299) {
        if (fwrite(p, 1, len, s->f) != len) {
            s->failed = true;
            return 0;
        }
        return len;
    }
    return on_data(p, size, n, &s->err);
}

enum status
client_call_file(struct client *c, const char *method, const char *path, FILE *f)
{
    struct file_sink sink = {.h = c->curl, .f = f, .err = {0}};
    char errbuf[CURL_ERROR_SIZE] = "", shown[CLIENT_SHOW_MAX + 4];
    char *url = xmalloc(strlen(c->base) + strlen(path) + 1);
    long http = 0;
    enum status st = ST_IO;
    CURLcode rc;

    strcat(strcpy(url, c->base), path);
    setup(c, &sink.err, errbuf, method, url, NULL, 0);
    curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_file_data);
    curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &sink);
    if ((rc = curl_easy_perform(c->curl)) != CURLE_OK) {
        fprintf(stderr, "difyguard: %s %s: %s\n", method, path,
                sink.failed ? "could not write the output file"
                            : show(shown, errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc)));
        goto out;
    }
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &http);
    st = http >= 200 && http <= 299 ? ST_OK : report_error(c, method, path, http, &sink.err);
out:
    curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, NULL);
    sbuf_free(&sink.err);
    free(url);
    return st;
}

/* ---- paths ------------------------------------------------------------------------------- */

static void
escape_add(struct sbuf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";

    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '.' || ch == '_' || ch == '~') {
            sbuf_add(b, s, 1);
        } else {
            char e[3] = {'%', hex[ch >> 4], hex[ch & 15]};
            sbuf_add(b, e, sizeof e);
        }
    }
}

char *
client_path(const char *fmt, ...)
{
    struct sbuf b = {0};
    size_t len;
    va_list ap;

    va_start(ap, fmt);
    for (const char *p = fmt; *p != '\0'; p++) {
        if (p[0] == '%' && p[1] == 's') {
            escape_add(&b, va_arg(ap, const char *));
            p++;
        } else {
            sbuf_add(&b, p, 1);
        }
    }
    va_end(ap);
    return sbuf_take(&b, &len);
}
