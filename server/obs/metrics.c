/* SPDX-License-Identifier: Apache-2.0 */
/* server/obs/metrics.c -- the metrics registry and the Prometheus text writer (see metrics.h). */
#include "server/obs/metrics.h"

#include <math.h>
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
    else if (v == (double)(int64_t)v && fabs(v) < 9e15)
        sbuf_addf(b, " %lld\n", (long long)v);
    else
        sbuf_addf(b, " %.9g\n", v);
}

void
metrics_sample(struct metrics_out *o, const char *name, double v)
{
    sbuf_adds(o->b, name);
    value(o->b, v);
}

void
metrics_sample1(struct metrics_out *o, const char *name, const char *label, const char *lv,
                double v)
{
    sbuf_addf(o->b, "%s{%s=\"", name, label);
    label_value(o->b, lv);
    sbuf_adds(o->b, "\"}");
    value(o->b, v);
}

void
metrics_sample2(struct metrics_out *o, const char *name, const char *l1, const char *v1,
                const char *l2, const char *v2, double v)
{
    sbuf_addf(o->b, "%s{%s=\"", name, l1);
    label_value(o->b, v1);
    sbuf_addf(o->b, "\",%s=\"", l2);
    label_value(o->b, v2);
    sbuf_adds(o->b, "\"}");
    value(o->b, v);
}

void
metrics_samplev(struct metrics_out *o, const char *name, size_t n, const char *const *kv, double v)
{
    sbuf_adds(o->b, name);
    for (size_t i = 0; i < n; i++) {
        sbuf_addf(o->b, "%s%s=\"", i == 0 ? "{" : ",", kv[2 * i]);
        label_value(o->b, kv[2 * i + 1]);
        sbuf_adds(o->b, "\"");
    }
    if (n > 0)
        sbuf_adds(o->b, "}");
    value(o->b, v);
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
