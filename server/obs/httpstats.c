/* SPDX-License-Identifier: Apache-2.0 */
/* server/obs/httpstats.c -- the transport's counters and histograms (see httpstats.h). */
#include "server/obs/httpstats.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmem.h"
#include "server/obs/metrics.h"

#define CLASSES 5 /* 1xx .. 5xx */

static const char *const class_names[CLASSES] = {"1xx", "2xx", "3xx", "4xx", "5xx"};

struct http_stats {
    size_t n; /* routes; slot n is the unmatched one */
    const char **methods, **paths;
    struct metrics_hist *hist; /* (n + 1) * CLASSES */
    _Atomic int64_t in_flight, connections;
    _Atomic uint64_t bytes_in, bytes_out, too_large, rate_limited;
};

struct http_stats *
http_stats_new(const char *const *methods, const char *const *paths, size_t n)
{
    struct http_stats *s = xcalloc(1, sizeof *s);

    s->n = n;
    s->methods = xcalloc(n + 1, sizeof *s->methods);
    s->paths = xcalloc(n + 1, sizeof *s->paths);
    for (size_t i = 0; i < n; i++) {
        s->methods[i] = methods[i];
        s->paths[i] = paths[i];
    }
    s->methods[n] = "_any";
    s->paths[n] = "_unmatched";
    s->hist = xcalloc((n + 1) * CLASSES, sizeof *s->hist);
    for (size_t i = 0; i < (n + 1) * CLASSES; i++)
        metrics_hist_init(&s->hist[i], &metrics_buckets_http_seconds);
    return s;
}

void
http_stats_free(struct http_stats *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < (s->n + 1) * CLASSES; i++)
        metrics_hist_fini(&s->hist[i]);
    free(s->hist);
    free(s->methods);
    free(s->paths);
    free(s);
}

size_t
http_stats_slot(const struct http_stats *s, const char *method, const char *path)
{
    for (size_t i = 0; method != NULL && path != NULL && i < s->n; i++)
        if (strcmp(s->methods[i], method) == 0 && strcmp(s->paths[i], path) == 0)
            return i;
    return s->n;
}

void
http_stats_request(struct http_stats *s, size_t slot, unsigned code, uint64_t duration_ns,
                   uint64_t bytes_in, uint64_t bytes_out)
{
    size_t cls = code >= 100 && code < 600 ? code / 100 - 1 : CLASSES - 1;

    if (slot > s->n)
        slot = s->n;
    metrics_hist_observe(&s->hist[slot * CLASSES + cls], duration_ns);
    atomic_fetch_add_explicit(&s->bytes_in, bytes_in, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->bytes_out, bytes_out, memory_order_relaxed);
    if (code == 413)
        atomic_fetch_add_explicit(&s->too_large, 1, memory_order_relaxed);
    else if (code == 429)
        atomic_fetch_add_explicit(&s->rate_limited, 1, memory_order_relaxed);
}

void
http_stats_in_flight(struct http_stats *s, int delta)
{
    atomic_fetch_add_explicit(&s->in_flight, delta, memory_order_relaxed);
}

void
http_stats_connections(struct http_stats *s, int delta)
{
    atomic_fetch_add_explicit(&s->connections, delta, memory_order_relaxed);
}

void
http_stats_metrics(const void *self, struct metrics_out *o)
{
    const struct http_stats *s = self;
    const char *name = "difyguard_http_request_duration_seconds";

    metrics_family(o, name, "histogram",
                   "Time from a request's first byte to its answer's hand-off, by route template, "
                   "method and status class (including the wait for its durable audit event).");
    for (size_t i = 0; i < (s->n + 1) * CLASSES; i++) {
        const struct metrics_hist *h = &s->hist[i];
        if (metrics_hist_count(h) == 0)
            continue;
        const struct metrics_label l[] = {{"route", s->paths[i / CLASSES]},
                                          {"method", s->methods[i / CLASSES]},
                                          {"status_class", class_names[i % CLASSES]}};
        metrics_hist_render(o, name, l, 3, h);
    }
    metrics_gauge(o, "difyguard_http_requests_in_flight", "Requests being served now.",
                  (double)atomic_load(&((struct http_stats *)(uintptr_t)s)->in_flight));
    metrics_gauge(o, "difyguard_http_connections_open",
                  "Open client connections, on every listener.",
                  (double)atomic_load(&((struct http_stats *)(uintptr_t)s)->connections));
    metrics_counter(o, "difyguard_http_request_body_bytes_total", "Request body bytes received.",
                    atomic_load(&s->bytes_in));
    metrics_counter(o, "difyguard_http_response_body_bytes_total", "Response body bytes sent.",
                    atomic_load(&s->bytes_out));
    metrics_family(o, "difyguard_http_rejected_total", "counter",
                   "Requests answered 413 (too_large: a body or batch over its limit) or 429 "
                   "(rate_limited).");
    metrics_sample1(o, "difyguard_http_rejected_total", "reason", "too_large",
                    (double)atomic_load(&s->too_large));
    metrics_sample1(o, "difyguard_http_rejected_total", "reason", "rate_limited",
                    (double)atomic_load(&s->rate_limited));
}
