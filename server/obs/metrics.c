/* SPDX-License-Identifier: Apache-2.0 */
/* server/obs/metrics.c -- the metrics registry and the Prometheus text writer, lock-free
 * histograms and the bounded table of labelled counters (see metrics.h). */
#include "server/obs/metrics.h"

#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmem.h"

struct metrics_out {
    struct sbuf *b;
};

struct metrics {
    struct metrics_source *v;
    size_t n;
};

struct metrics *
metrics_new(void)
{
    return xcalloc(1, sizeof(struct metrics));
}

void
metrics_free(struct metrics *m)
{
    if (m == NULL)
        return;
    free(m->v);
    free(m);
}

void
metrics_register(struct metrics *m, const struct metrics_source *src)
{
    m->v = xrealloc(m->v, (m->n + 1) * sizeof *m->v);
    m->v[m->n++] = *src;
}

void
metrics_render(const struct metrics *m, struct sbuf *out)
{
    struct metrics_out o = {out};
    for (size_t i = 0; i < m->n; i++)
        m->v[i].collect(m->v[i].self, &o);
}

void
metrics_family(struct metrics_out *o, const char *name, const char *type, const char *help)
{
    sbuf_addf(o->b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value as the text format wants it: \\, \" and \n escaped. */
static void
label_value(struct sbuf *b, const char *v)
{
    for (; *v != '\0'; v++) {
        if (*v == '\\' || *v == '"')
            sbuf_add(b, "\\", 1);
        if (*v == '\n')
            sbuf_add(b, "\\n", 2);
        else
            sbuf_add(b, v, 1);
    }
}

static void
value(struct sbuf *b, double v)
{
    if (isnan(v))
        sbuf_adds(b, " NaN\n");
    else if (isinf(v))
        sbuf_adds(b, v > 0 ? " +Inf\n" : " -Inf\n");
    else if (v == (double)(int64_t)v && fabs(v) < 9e15)
        sbuf_addf(b, " %lld\n", (long long)v);
    else
        sbuf_addf(b, " %.9g\n", v);
}

static void
labels(struct sbuf *b, const struct metrics_label *l, size_t n, const char *le)
{
    if (n == 0 && le == NULL)
        return;
    sbuf_add(b, "{", 1);
    for (size_t i = 0; i < n; i++) {
        sbuf_addf(b, "%s%s=\"", i > 0 ? "," : "", l[i].name);
        label_value(b, l[i].value != NULL ? l[i].value : "");
        sbuf_add(b, "\"", 1);
    }
    if (le != NULL)
        sbuf_addf(b, "%sle=\"%s\"", n > 0 ? "," : "", le);
    sbuf_add(b, "}", 1);
}

void
metrics_sample(struct metrics_out *o, const char *name, double v)
{
    sbuf_adds(o->b, name);
    value(o->b, v);
}

void
metrics_sample_l(struct metrics_out *o, const char *name, const struct metrics_label *l, size_t n,
                 double v)
{
    sbuf_adds(o->b, name);
    labels(o->b, l, n, NULL);
    value(o->b, v);
}

void
metrics_sample1(struct metrics_out *o, const char *name, const char *label, const char *lv,
                double v)
{
    const struct metrics_label l[] = {{label, lv}};
    metrics_sample_l(o, name, l, 1, v);
}

void
metrics_sample2(struct metrics_out *o, const char *name, const char *l1, const char *v1,
                const char *l2, const char *v2, double v)
{
    const struct metrics_label l[] = {{l1, v1}, {l2, v2}};
    metrics_sample_l(o, name, l, 2, v);
}

void
metrics_counter(struct metrics_out *o, const char *name, const char *help, uint64_t v)
{
    metrics_family(o, name, "counter", help);
    sbuf_addf(o->b, "%s %llu\n", name, (unsigned long long)v);
}

void
metrics_gauge(struct metrics_out *o, const char *name, const char *help, double v)
{
    metrics_family(o, name, "gauge", help);
    metrics_sample(o, name, v);
}

/* --- histograms --- */

static const uint64_t http_ns[] = {
    5000000,   10000000,  25000000,   50000000,   75000000,   100000000,  250000000,
    500000000, 750000000, 1000000000, 2500000000, 5000000000, 7500000000, 10000000000,
};
const struct metrics_buckets metrics_buckets_http_seconds = {
    http_ns, sizeof http_ns / sizeof http_ns[0], 1e-9};

static const uint64_t items[] = {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000};
const struct metrics_buckets metrics_buckets_items = {items, sizeof items / sizeof items[0], 1.0};

static const uint64_t short_ns[] = {
    100000,   250000,    500000,    1000000,   2500000,    5000000,    10000000,   25000000,
    50000000, 100000000, 250000000, 500000000, 1000000000, 2500000000, 5000000000, 10000000000,
};
const struct metrics_buckets metrics_buckets_short_seconds = {
    short_ns, sizeof short_ns / sizeof short_ns[0], 1e-9};

void
metrics_hist_init(struct metrics_hist *h, const struct metrics_buckets *b)
{
    h->b = b;
    h->buckets = xcalloc(b->n + 1, sizeof *h->buckets);
    atomic_init(&h->sum, 0);
}

void
metrics_hist_fini(struct metrics_hist *h)
{
    free(h->buckets);
    h->buckets = NULL;
}

void
metrics_hist_observe(struct metrics_hist *h, uint64_t raw)
{
    size_t i = 0;
    while (i < h->b->n && raw > h->b->bounds[i])
        i++;
    atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum, raw, memory_order_relaxed);
}

uint64_t
metrics_hist_count(const struct metrics_hist *h)
{
    uint64_t n = 0;
    for (size_t i = 0; i <= h->b->n; i++)
        n += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
    return n;
}

void
metrics_hist_render(struct metrics_out *o, const char *name, const struct metrics_label *l,
                    size_t n, const struct metrics_hist *h)
{
    uint64_t cum = 0;
    char le[32];

    for (size_t i = 0; i <= h->b->n; i++) {
        cum += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
        if (i < h->b->n)
            snprintf(le, sizeof le, "%.9g", (double)h->b->bounds[i] * h->b->scale);
        else
            snprintf(le, sizeof le, "+Inf");
        sbuf_addf(o->b, "%s_bucket", name);
        labels(o->b, l, n, le);
        sbuf_addf(o->b, " %llu\n", (unsigned long long)cum);
    }
    sbuf_addf(o->b, "%s_sum", name);
    labels(o->b, l, n, NULL);
    value(o->b, (double)atomic_load_explicit(&h->sum, memory_order_relaxed) * h->b->scale);
    sbuf_addf(o->b, "%s_count", name);
    labels(o->b, l, n, NULL);
    sbuf_addf(o->b, " %llu\n", (unsigned long long)cum);
}

/* --- the table of labelled counters --- */

enum { SLOT_EMPTY, SLOT_WRITING, SLOT_READY };

struct table_slot {
    _Atomic unsigned state;
    uint64_t hash;
    char v[METRICS_TABLE_LABELS][METRICS_TABLE_VALUE_BYTES];
    _Atomic uint64_t count;
};

struct metrics_table {
    const char *labels[METRICS_TABLE_LABELS];
    size_t n_labels, max_series, cap; /* cap: a power of two, at least twice max_series */
    unsigned overflow_mask;
    struct table_slot *slots;
    _Atomic size_t used;
    _Atomic uint64_t lost; /* adds no slot could take (never with sane sizes) */
};

struct metrics_table *
metrics_table_new(const char *const *names, size_t n_labels, size_t max_series,
                  unsigned overflow_mask)
{
    struct metrics_table *t = xcalloc(1, sizeof *t);

    if (n_labels > METRICS_TABLE_LABELS)
        abort(); /* a caller bug */
    for (size_t i = 0; i < n_labels; i++)
        t->labels[i] = names[i];
    t->n_labels = n_labels;
    t->max_series = max_series;
    t->overflow_mask = overflow_mask;
    t->cap = 16;
    while (t->cap < 2 * max_series + 64)
        t->cap *= 2;
    t->slots = xcalloc(t->cap, sizeof *t->slots);
    return t;
}

void
metrics_table_free(struct metrics_table *t)
{
    if (t == NULL)
        return;
    free(t->slots);
    free(t);
}

/* A label value as stored: cut to fit, never inside a UTF-8 sequence. */
static void
copy_value(char dst[static METRICS_TABLE_VALUE_BYTES], const char *src)
{
    size_t n = src != NULL ? strlen(src) : 0;
    if (n >= METRICS_TABLE_VALUE_BYTES) {
        n = METRICS_TABLE_VALUE_BYTES - 1;
        while (n > 0 && ((unsigned char)src[n] & 0xc0) == 0x80)
            n--;
    }
    if (n > 0)
        memcpy(dst, src, n);
    memset(dst + n, 0, METRICS_TABLE_VALUE_BYTES - n);
}

static uint64_t
key_hash(char v[][METRICS_TABLE_VALUE_BYTES], size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        for (const char *p = v[i]; *p != '\0'; p++)
            h = (h ^ (uint8_t)*p) * 1099511628211ull;
        h = (h ^ 0xff) * 1099511628211ull; /* separator: ("ab","c") != ("a","bc") */
    }
    return h;
}

/* The slot of a label set: found, or claimed when `insert`; NULL when absent (or no room). */
static struct table_slot *
table_find(struct metrics_table *t, char v[][METRICS_TABLE_VALUE_BYTES], bool insert)
{
    uint64_t h = key_hash(v, t->n_labels);
    size_t mask = t->cap - 1;

    for (size_t probe = 0, i = (size_t)h & mask; probe < t->cap; probe++, i = (i + 1) & mask) {
        struct table_slot *s = &t->slots[i];
        unsigned st = atomic_load_explicit(&s->state, memory_order_acquire);
        if (st == SLOT_EMPTY) {
            if (!insert || atomic_load(&t->used) + 1 >= t->cap)
                return NULL;
            unsigned want = SLOT_EMPTY;
            if (atomic_compare_exchange_strong(&s->state, &want, SLOT_WRITING)) {
                s->hash = h;
                memcpy(s->v, v, sizeof s->v[0] * t->n_labels);
                atomic_fetch_add(&t->used, 1);
                atomic_store_explicit(&s->state, SLOT_READY, memory_order_release);
                return s;
            }
            st = want;
        }
        /* Another thread is writing this slot's key (a few bytes): it may be ours. */
        while (st == SLOT_WRITING) {
            sched_yield();
            st = atomic_load_explicit(&s->state, memory_order_acquire);
        }
        if (s->hash == h && memcmp(s->v, v, sizeof s->v[0] * t->n_labels) == 0)
            return s;
    }
    return NULL;
}

void
metrics_table_add(struct metrics_table *t, const char *const *values, uint64_t delta)
{
    char v[METRICS_TABLE_LABELS][METRICS_TABLE_VALUE_BYTES] = {{0}}; /* rows past n_labels too */
    struct table_slot *s;

    for (size_t i = 0; i < t->n_labels; i++)
        copy_value(v[i], values[i]);
    s = table_find(t, v, atomic_load(&t->used) < t->max_series);
    if (s == NULL) { /* a new label set past the bound: count it under _other */
        for (size_t i = 0; i < t->n_labels; i++)
            if ((t->overflow_mask & (1u << i)) != 0)
                copy_value(v[i], METRICS_OTHER);
        s = table_find(t, v, true);
    }
    if (s == NULL) {
        atomic_fetch_add(&t->lost, delta);
        return;
    }
    atomic_fetch_add_explicit(&s->count, delta, memory_order_relaxed);
}

size_t
metrics_table_size(const struct metrics_table *t)
{
    return atomic_load(&((struct metrics_table *)(uintptr_t)t)->used);
}

void
metrics_table_render(struct metrics_out *o, const struct metrics_table *t, const char *name,
                     const char *type, const char *help)
{
    struct metrics_label l[METRICS_TABLE_LABELS];

    metrics_family(o, name, type, help);
    for (size_t i = 0; i < t->cap; i++) {
        const struct table_slot *s = &t->slots[i];
        if (atomic_load_explicit(&((struct table_slot *)(uintptr_t)s)->state,
                                 memory_order_acquire) != SLOT_READY)
            continue;
        for (size_t k = 0; k < t->n_labels; k++)
            l[k] = (struct metrics_label){t->labels[k], s->v[k]};
        metrics_sample_l(o, name, l, t->n_labels,
                         (double)atomic_load_explicit(&((struct table_slot *)(uintptr_t)s)->count,
                                                      memory_order_relaxed));
    }
}
