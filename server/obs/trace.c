/* SPDX-License-Identifier: Apache-2.0 */
/* server/obs/trace.c -- span ids and sampling, the bounded span queue and the exporter thread
 * that sends OTLP/HTTP JSON batches with libcurl (see trace.h). Request threads hold the queue's
 * mutex only to copy one span in; the exporter holds it only to copy a batch out, never while it
 * talks to the collector. */
#include "server/obs/trace.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <curl/curl.h>

#include "common/log.h"
#include "common/sbuf.h"
#include "common/xmem.h"
#include "server/obs/metrics.h"

#define STOP_GRACE_S 5                     /* at shutdown, for the last batches */
#define LOG_EVERY_NS (60LL * 1000000000LL) /* at most one export failure line a minute */

/* A queued span owns copies of its name and tracestate: the request's tracestate dies with the
 * request, and a listener's span names with the listener, while spans may still wait here. */
struct queued {
    struct trace_span s;
    char name[128];
    char state[TRACE_STATE_MAX + 1];
};

struct tracer {
    struct trace_config c;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct queued *q; /* ring of c.queue_size */
    size_t head, len;
    bool stopping;
    pthread_t thread;
    CURL *curl;
    struct curl_slist *headers;
    int64_t logged_at_ns;
    _Atomic uint64_t exported, dropped_full, dropped_failed;
    _Atomic size_t queued; /* len, readable without the mutex */
    _Atomic bool stop_now; /* aborts a transfer in progress at shutdown */
};

/* --- ids and sampling --- */

/* splitmix64 per thread, seeded from the kernel: ids must be unique and unpredictable enough to
 * not collide, not secret (they travel in clear in headers). */
static uint64_t
next64(void)
{
    static _Thread_local uint64_t s;
    static _Thread_local bool seeded;
    if (!seeded) {
        if (getrandom(&s, sizeof s, 0) != (ssize_t)sizeof s)
            s = (uint64_t)trace_now_ns() ^ (uint64_t)(uintptr_t)&s;
        seeded = true;
    }
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void
random_id(uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i += 8) {
        uint64_t v = next64();
        for (size_t k = 0; k < 8 && i + k < n; k++)
            out[i + k] = (uint8_t)(v >> (8 * k));
    }
    if (out[0] == 0)
        out[0] = 1; /* never the all-zero (invalid) id */
}

int64_t
trace_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* TraceIdRatioBased: sampled when the trace id's last 8 bytes (big-endian) fall below
 * ratio * 2^64, so every service of the trace with the same ratio decides alike. */
static bool
ratio_sampled(const uint8_t trace_id[static TRACE_ID_BYTES], double ratio)
{
    uint64_t v = 0;
    if (ratio >= 1.0)
        return true;
    if (ratio <= 0.0)
        return false;
    for (size_t i = 8; i < TRACE_ID_BYTES; i++)
        v = v << 8 | trace_id[i];
    return (double)v < ratio * 18446744073709551616.0;
}

static bool
decide(const struct tracer *t, const struct trace_ctx *ctx, bool has_parent, bool parent_sampled)
{
    switch (t->c.sampler) {
    case TRACE_ALWAYS_ON:
        return true;
    case TRACE_ALWAYS_OFF:
        return false;
    case TRACE_RATIO:
        return ratio_sampled(ctx->trace_id, t->c.ratio);
    case TRACE_PARENT_ALWAYS_ON:
        return has_parent ? parent_sampled : true;
    case TRACE_PARENT_ALWAYS_OFF:
        return has_parent ? parent_sampled : false;
    case TRACE_PARENT_RATIO:
        return has_parent ? parent_sampled : ratio_sampled(ctx->trace_id, t->c.ratio);
    }
    return false;
}

void
trace_begin(const struct tracer *t, struct trace_ctx *ctx, const char *traceparent,
            const char *tracestate)
{
    uint8_t flags = 0;
    bool parent = trace_parse_traceparent(traceparent, ctx->trace_id, ctx->parent_id, &flags);

    ctx->valid = parent;
    ctx->sampled = false;
    ctx->tracestate =
        parent && tracestate != NULL && trace_state_valid(tracestate) ? tracestate : NULL;
    if (t == NULL) { /* tracing off: only the client's trace id is kept (audit, logs) */
        if (parent)
            random_id(ctx->span_id, TRACE_SPAN_BYTES);
        return;
    }
    if (!parent)
        random_id(ctx->trace_id, TRACE_ID_BYTES);
    random_id(ctx->span_id, TRACE_SPAN_BYTES);
    ctx->valid = true;
    ctx->sampled = decide(t, ctx, parent, (flags & 1) != 0);
}

void
trace_child(const struct trace_ctx *parent, struct trace_ctx *child)
{
    *child = *parent;
    memcpy(child->parent_id, parent->span_id, TRACE_SPAN_BYTES);
    child->tracestate = parent->tracestate;
    random_id(child->span_id, TRACE_SPAN_BYTES);
}

static void
hex(char *out, const uint8_t *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

void
trace_id_hex(const struct trace_ctx *ctx, char out[static 2 * TRACE_ID_BYTES + 1])
{
    if (ctx->valid)
        hex(out, ctx->trace_id, TRACE_ID_BYTES);
    else
        out[0] = '\0';
}

void
trace_span_hex(const struct trace_ctx *ctx, char out[static 2 * TRACE_SPAN_BYTES + 1])
{
    if (ctx->valid)
        hex(out, ctx->span_id, TRACE_SPAN_BYTES);
    else
        out[0] = '\0';
}

/* --- the queue --- */

void
trace_emit(struct tracer *t, const struct trace_span *s)
{
    if (t == NULL || !s->ctx.sampled)
        return;
    pthread_mutex_lock(&t->mu);
    if (t->len == t->c.queue_size || t->stopping) {
        pthread_mutex_unlock(&t->mu);
        atomic_fetch_add_explicit(&t->dropped_full, 1, memory_order_relaxed);
        return;
    }
    struct queued *slot = &t->q[(t->head + t->len) % t->c.queue_size];
    slot->s = *s;
    slot->s.ctx.tracestate = NULL; /* borrowed: copied */
    snprintf(slot->name, sizeof slot->name, "%s", s->name);
    slot->s.name = NULL;
    slot->state[0] = '\0';
    if (s->ctx.tracestate != NULL)
        snprintf(slot->state, sizeof slot->state, "%s", s->ctx.tracestate);
    t->len++;
    atomic_store_explicit(&t->queued, t->len, memory_order_relaxed);
    if (t->len >= t->c.batch_size)
        pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

/* --- OTLP/JSON --- */

static void
attr_str(struct sbuf *b, bool *first, const char *key, const char *v)
{
    if (v == NULL || v[0] == '\0')
        return;
    sbuf_addf(b, "%s{\"key\":\"%s\",\"value\":{\"stringValue\":", *first ? "" : ",", key);
    sbuf_add_jstr(b, v, strlen(v));
    sbuf_adds(b, "}}");
    *first = false;
}

static void
attr_int(struct sbuf *b, bool *first, const char *key, uint64_t v)
{
    sbuf_addf(b, "%s{\"key\":\"%s\",\"value\":{\"intValue\":\"%llu\"}}", *first ? "" : ",", key,
              (unsigned long long)v);
    *first = false;
}

static void
encode_span(struct sbuf *b, const struct queued *q)
{
    const struct trace_span *s = &q->s;
    char tid[2 * TRACE_ID_BYTES + 1], sid[2 * TRACE_SPAN_BYTES + 1], pid[2 * TRACE_SPAN_BYTES + 1];
    bool first = true;
    static const uint8_t zero[TRACE_SPAN_BYTES];

    hex(tid, s->ctx.trace_id, TRACE_ID_BYTES);
    hex(sid, s->ctx.span_id, TRACE_SPAN_BYTES);
    hex(pid, s->ctx.parent_id, TRACE_SPAN_BYTES);
    sbuf_addf(b, "{\"traceId\":\"%s\",\"spanId\":\"%s\"", tid, sid);
    if (memcmp(s->ctx.parent_id, zero, sizeof zero) != 0) /* ids are public */
        sbuf_addf(b, ",\"parentSpanId\":\"%s\"", pid);
    if (q->state[0] != '\0') {
        sbuf_adds(b, ",\"traceState\":");
        sbuf_add_jstr(b, q->state, strlen(q->state));
    }
    sbuf_adds(b, ",\"name\":");
    sbuf_add_jstr(b, q->name, strlen(q->name));
    sbuf_addf(b, ",\"kind\":%d,\"startTimeUnixNano\":\"%lld\",\"endTimeUnixNano\":\"%lld\"",
              (int)s->kind, (long long)s->start_ns, (long long)s->end_ns);
    sbuf_adds(b, ",\"attributes\":[");
    attr_str(b, &first, "http.request.method", s->method);
    attr_str(b, &first, "http.route", s->route);
    if (s->status_code != 0)
        attr_int(b, &first, "http.response.status_code", s->status_code);
    attr_str(b, &first, "difyguard.request_id", s->request_id);
    attr_str(b, &first, "difyguard.app", s->app);
    attr_str(b, &first, "difyguard.keyring", s->keyring);
    attr_str(b, &first, "difyguard.outcome", s->outcome);
    if (s->items != 0)
        attr_int(b, &first, "difyguard.items", s->items);
    sbuf_addf(b, "],\"status\":{\"code\":%d}}", s->error ? 2 : 0);
}

static void
encode(struct sbuf *b, const struct tracer *t, const struct queued *v, size_t n)
{
    sbuf_adds(b, "{\"resourceSpans\":[{\"resource\":{\"attributes\":");
    sbuf_adds(b, t->c.resource);
    sbuf_adds(b, "},\"scopeSpans\":[{\"scope\":{\"name\":\"difyguard\",\"version\":\"" DG_VERSION
                 "\"},\"spans\":[");
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            sbuf_add(b, ",", 1);
        encode_span(b, &v[i]);
    }
    sbuf_adds(b, "]}]}]}");
}

/* --- the exporter --- */

static size_t
discard_body(char *p, size_t size, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return size * n;
}

static int
abort_on_stop(void *arg, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    const struct tracer *t = arg;
    (void)a;
    (void)b;
    (void)c;
    (void)d;
    return atomic_load(&t->stop_now) ? 1 : 0;
}

static void
export_failed(struct tracer *t, size_t n, const char *why, long code)
{
    char c[16];
    int64_t now = trace_now_ns();

    atomic_fetch_add(&t->dropped_failed, n);
    if (t->logged_at_ns != 0 && now - t->logged_at_ns < LOG_EVERY_NS)
        return;
    t->logged_at_ns = now;
    snprintf(c, sizeof c, "%ld", code);
    /* Neither the URL (it may hold credentials) nor any header. */
    log_msg(LOG_WARN, "trace_export_failed", "detail", why, "#http_status", c, LOG_END);
}

static void
send_batch(struct tracer *t, const struct queued *v, size_t n)
{
    struct sbuf b = {0};
    long code = 0;

    encode(&b, t, v, n);
    curl_easy_setopt(t->curl, CURLOPT_POSTFIELDS, b.p);
    curl_easy_setopt(t->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)b.len);
    CURLcode rc = curl_easy_perform(t->curl);
    if (rc == CURLE_OK)
        curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &code);
    if (rc != CURLE_OK)
        export_failed(t, n, curl_easy_strerror(rc), 0);
    else if (code < 200 || code > 299)
        export_failed(t, n, "the collector refused the batch", code);
    else
        atomic_fetch_add(&t->exported, n);
    sbuf_free(&b);
}

/* Take up to batch_size spans: waits for a full batch, the schedule delay, or the stop. */
static size_t
take(struct tracer *t, struct queued *out, bool *stop)
{
    struct timespec until;
    size_t n = 0;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += (time_t)(t->c.delay_ms / 1000);
    until.tv_nsec += (long)(t->c.delay_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&t->mu);
    while (!t->stopping && t->len < t->c.batch_size &&
           pthread_cond_timedwait(&t->cv, &t->mu, &until) == 0)
        ;
    for (; n < t->c.batch_size && t->len > 0; n++, t->len--) {
        out[n] = t->q[t->head];
        t->head = (t->head + 1) % t->c.queue_size;
    }
    atomic_store_explicit(&t->queued, t->len, memory_order_relaxed);
    *stop = t->stopping && t->len == 0;
    pthread_mutex_unlock(&t->mu);
    return n;
}

static void *
exporter_main(void *arg)
{
    struct tracer *t = arg;
    struct queued *batch = xcalloc(t->c.batch_size, sizeof *batch);

    for (bool stop = false; !stop;) {
        size_t n = take(t, batch, &stop);
        if (n > 0)
            send_batch(t, batch, n);
    }
    free(batch);
    return NULL;
}

enum status
tracer_start(struct tracer **out, struct trace_config *c, char *err, size_t err_len)
{
    struct tracer *t;

    *out = NULL;
    if (c->endpoint == NULL) {
        trace_config_free(c);
        return ST_OK;
    }
    t = xcalloc(1, sizeof *t);
    t->c = *c;
    memset(c, 0, sizeof *c);
    t->q = xcalloc(t->c.queue_size, sizeof *t->q);
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    t->curl = curl_easy_init();
    for (size_t i = 0; t->c.headers != NULL && t->c.headers[i] != NULL; i++)
        t->headers = curl_slist_append(t->headers, t->c.headers[i]);
    if (t->curl == NULL) {
        snprintf(err, err_len, "cannot set up the OTLP exporter (libcurl)");
        goto fail;
    }
    curl_easy_setopt(t->curl, CURLOPT_URL, t->c.endpoint);
    curl_easy_setopt(t->curl, CURLOPT_HTTPHEADER, t->headers);
    curl_easy_setopt(t->curl, CURLOPT_TIMEOUT_MS, (long)t->c.timeout_ms);
    curl_easy_setopt(t->curl, CURLOPT_CONNECTTIMEOUT_MS, (long)t->c.timeout_ms);
    curl_easy_setopt(t->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(t->curl, CURLOPT_WRITEFUNCTION, discard_body);
    curl_easy_setopt(t->curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(t->curl, CURLOPT_XFERINFOFUNCTION, abort_on_stop);
    curl_easy_setopt(t->curl, CURLOPT_XFERINFODATA, t);
    curl_easy_setopt(t->curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(t->curl, CURLOPT_USERAGENT, "difyguard/" DG_VERSION);
    if (pthread_create(&t->thread, NULL, exporter_main, t) != 0) {
        snprintf(err, err_len, "cannot start the trace exporter thread");
        goto fail;
    }
    *out = t;
    return ST_OK;
fail:
    curl_slist_free_all(t->headers);
    curl_easy_cleanup(t->curl);
    trace_config_free(&t->c);
    free(t->q);
    free(t);
    return ST_INTERNAL;
}

void
tracer_stop(struct tracer *t)
{
    if (t == NULL)
        return;
    pthread_mutex_lock(&t->mu);
    t->stopping = true;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
    /* The last batches get a few seconds; a hanging collector does not hold the shutdown. */
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += STOP_GRACE_S;
    if (pthread_timedjoin_np(t->thread, NULL, &until) != 0) {
        atomic_store(&t->stop_now, true);
        pthread_join(t->thread, NULL);
    }
    curl_slist_free_all(t->headers);
    curl_easy_cleanup(t->curl);
    trace_config_free(&t->c);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cv);
    free(t->q);
    free(t);
}

void
tracer_metrics(const void *self, struct metrics_out *o)
{
    const struct tracer *t = self;

    metrics_counter(o, "difyguard_trace_spans_exported_total", "Spans the OTLP collector accepted.",
                    atomic_load(&t->exported));
    metrics_family(o, "difyguard_trace_spans_dropped_total", "counter",
                   "Sampled spans never delivered: the queue was full (queue_full) or the "
                   "collector failed or refused their batch (export_failed).");
    metrics_sample1(o, "difyguard_trace_spans_dropped_total", "reason", "queue_full",
                    (double)atomic_load(&t->dropped_full));
    metrics_sample1(o, "difyguard_trace_spans_dropped_total", "reason", "export_failed",
                    (double)atomic_load(&t->dropped_failed));
    metrics_gauge(o, "difyguard_trace_queue_spans", "Spans waiting for the exporter.",
                  (double)atomic_load(&t->queued));
}
