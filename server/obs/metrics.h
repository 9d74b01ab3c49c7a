/* SPDX-License-Identifier: Apache-2.0 */
/* server/obs/metrics.h -- the metrics registry: each module contributes its own series through a
 * registered source, and GET /metrics walks the list (Prometheus text format 0.0.4). Writers here
 * escape label values and keep the HELP/TYPE lines in order; sources use only bounded label sets
 * (fixed names, or operator-chosen names such as keyrings), never a secret or a client's bytes.
 * A source's collect runs on a request thread: it must not block on another module's locks
 * (read atomics, or take only its own short read locks). Registration is not thread-safe (the
 * composition root registers at start); rendering is. */
#ifndef DG_SERVER_OBS_METRICS_H
#define DG_SERVER_OBS_METRICS_H

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

/* For sources. A family's HELP and TYPE ("counter", "gauge") once, then its samples. */
void metrics_family(struct metrics_out *o, const char *name, const char *type, const char *help);
/* A sample with no label, one label or two (label values are escaped). */
void metrics_sample(struct metrics_out *o, const char *name, double value);
void metrics_sample1(struct metrics_out *o, const char *name, const char *label, const char *value,
                     double v);
void metrics_sample2(struct metrics_out *o, const char *name, const char *l1, const char *v1,
                     const char *l2, const char *v2, double v);
/* A sample with n labels: kv holds n (name, value) pairs (values are escaped). */
void metrics_samplev(struct metrics_out *o, const char *name, size_t n, const char *const *kv,
                     double v);
/* A whole family of one unlabelled sample. */
void metrics_counter(struct metrics_out *o, const char *name, const char *help, uint64_t v);
void metrics_gauge(struct metrics_out *o, const char *name, const char *help, double v);

#endif
