/* SPDX-License-Identifier: Apache-2.0 */
/* server/obs/metrics.h -- the metrics registry: each module contributes its own series through a
 * registered source, and GET /metrics walks the list (Prometheus text format 0.0.4). Writers here
 * escape label values and keep the HELP/TYPE lines in order; sources use only bounded label sets
 * (fixed names, or operator-chosen names such as keyrings), never a secret or a client's bytes.
 * A source's collect runs on a request thread: it must not block on another module's locks
 * (read atomics, or take only its own short read locks). Registration is not thread-safe (the
 * composition root registers at start); rendering is.
 * Also here: lock-free histograms with fixed buckets and a lock-free table of labelled counters
 * with a fixed capacity, both safe to update from any number of request threads. */
#ifndef DG_SERVER_OBS_METRICS_H
#define DG_SERVER_OBS_METRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/sbuf.h"

struct metrics_out;

struct metrics_source {
    const char *name; /* "apps", "audit", "keyrings", ... */
    void (*collect)(const void *self, struct metrics_out *out);
    const void *self;
};

struct metrics;
struct metrics *metrics_new(void);
void metrics_free(struct metrics *m);                                       /* NULL-safe */
void metrics_register(struct metrics *m, const struct metrics_source *src); /* copied */
/* Every source's series, in registration order. */
void metrics_render(const struct metrics *m, struct sbuf *out);

/* For sources. A family's HELP and TYPE ("counter", "gauge", "histogram") once, then its
 * samples. */
void metrics_family(struct metrics_out *o, const char *name, const char *type, const char *help);
/* A sample with no label, one label or two (label values are escaped). */
void metrics_sample(struct metrics_out *o, const char *name, double value);
void metrics_sample1(struct metrics_out *o, const char *name, const char *label, const char *value,
                     double v);
void metrics_sample2(struct metrics_out *o, const char *name, const char *l1, const char *v1,
                     const char *l2, const char *v2, double v);
/* A sample with n labels (names are fixed identifiers, values are escaped). */
struct metrics_label {
    const char *name, *value;
};
void metrics_sample_l(struct metrics_out *o, const char *name, const struct metrics_label *l,
                      size_t n, double v);
/* A whole family of one unlabelled sample. */
void metrics_counter(struct metrics_out *o, const char *name, const char *help, uint64_t v);
void metrics_gauge(struct metrics_out *o, const char *name, const char *help, double v);

/* --- histograms --- */

/* Upper bounds in raw units (nanoseconds, items, ...), increasing; `scale` turns a raw value into
 * the unit the family is named after (1e-9: nanoseconds to seconds). Static storage. */
struct metrics_buckets {
    const uint64_t *bounds;
    size_t n;
    double scale;
};
/* OpenTelemetry's advised http.server.request.duration boundaries (seconds), in nanoseconds. */
extern const struct metrics_buckets metrics_buckets_http_seconds;
/* Sizes of batches and group commits: 1, 2, 5, 10, ... 5000 items. */
extern const struct metrics_buckets metrics_buckets_items;
/* Short waits (database lock, audit commit): 0.0001 .. 10 seconds, in nanoseconds. */
extern const struct metrics_buckets metrics_buckets_short_seconds;

/* One histogram series: observations only ever add (atomics, relaxed), so any number of threads
 * may observe while another renders; a rendered sample may mix observations in flight, never
 * lose one. count is the sum of the buckets (+Inf included). */
struct metrics_hist {
    const struct metrics_buckets *b;
    _Atomic uint64_t *buckets; /* b->n + 1, non-cumulative; the last is +Inf */
    _Atomic uint64_t sum;      /* raw units */
};
void metrics_hist_init(struct metrics_hist *h, const struct metrics_buckets *b);
void metrics_hist_fini(struct metrics_hist *h);
void metrics_hist_observe(struct metrics_hist *h, uint64_t raw);
uint64_t metrics_hist_count(const struct metrics_hist *h);
/* The _bucket (cumulative, le="..." after the given labels), _sum and _count lines of one series
 * of the family `name` (metrics_family(..., "histogram", ...) first). */
void metrics_hist_render(struct metrics_out *o, const char *name, const struct metrics_label *l,
                         size_t n, const struct metrics_hist *h);

/* --- a table of labelled counters --- */

#define METRICS_TABLE_LABELS 4
#define METRICS_TABLE_VALUE_BYTES 96 /* longer label values are cut (at a UTF-8 boundary) */
#define METRICS_OTHER "_other"

/* Counters keyed by up to METRICS_TABLE_LABELS label values, for label sets that grow with the
 * deployment (keyrings, apps). Bounded: once `max_series` distinct label sets exist, further
 * sets count under METRICS_OTHER for every label in `overflow_mask` (bit i: label i), so the
 * series count never passes max_series plus the combinations of the other labels. Adding is
 * lock-free (a new label set claims a slot with one compare-and-swap; others find it by probing);
 * rendering reads published slots only. */
struct metrics_table;
struct metrics_table *metrics_table_new(const char *const *labels, size_t n_labels,
                                        size_t max_series, unsigned overflow_mask);
void metrics_table_free(struct metrics_table *t); /* NULL-safe */
void metrics_table_add(struct metrics_table *t, const char *const *values, uint64_t delta);
/* Series currently held (overflow series included). */
size_t metrics_table_size(const struct metrics_table *t);
/* Every series of the table as samples of `name` (family line first). */
void metrics_table_render(struct metrics_out *o, const struct metrics_table *t, const char *name,
                          const char *type, const char *help);

#endif
