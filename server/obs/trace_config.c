/* SPDX-License-Identifier: Apache-2.0 */
/* server/obs/trace_config.c -- the OTEL_* variables into a struct trace_config (see trace.h).
 * Header values may be credentials: they go to curl's header list only, never to an error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/sbuf.h"
#include "common/xmem.h"
#include "server/obs/trace.h"

static const char *
plain_getenv(const char *name)
{
    return getenv(name);
}

/* The per-signal variable when set and not empty, else the general one. */
static const char *
either(const char *(*env)(const char *), const char *traces, const char *general)
{
    const char *v = env(traces);
    return v != NULL && v[0] != '\0' ? v : env(general);
}

static enum status
number(const char *(*env)(const char *), const char *name, uint64_t def, uint64_t max,
       uint64_t *out, char *err, size_t err_len)
{
    const char *v = env(name);
    char *end = NULL;

    *out = def;
    if (v == NULL || v[0] == '\0')
        return ST_OK;
    unsigned long long n = strtoull(v, &end, 10);
    if (v[0] < '0' || v[0] > '9' || *end != '\0' || n > max) {
        snprintf(err, err_len, "%s must be a whole number up to %llu", name,
                 (unsigned long long)max);
        return ST_INVALID;
    }
    *out = n;
    return ST_OK;
}

static enum status
sampler(struct trace_config *c, const char *(*env)(const char *), char *err, size_t err_len)
{
    static const struct {
        const char *name;
        enum trace_sampler s;
    } names[] = {
        {"always_on", TRACE_ALWAYS_ON},
        {"always_off", TRACE_ALWAYS_OFF},
        {"traceidratio", TRACE_RATIO},
        {"parentbased_always_on", TRACE_PARENT_ALWAYS_ON},
        {"parentbased_always_off", TRACE_PARENT_ALWAYS_OFF},
        {"parentbased_traceidratio", TRACE_PARENT_RATIO},
    };
    const char *s = env("OTEL_TRACES_SAMPLER"), *arg = env("OTEL_TRACES_SAMPLER_ARG");
    size_t i;

    c->sampler = TRACE_PARENT_ALWAYS_ON;
    c->ratio = 1.0;
    if (s != NULL && s[0] != '\0') {
        for (i = 0; i < sizeof names / sizeof names[0] && strcmp(s, names[i].name) != 0; i++)
            ;
        if (i == sizeof names / sizeof names[0]) {
            snprintf(err, err_len,
                     "OTEL_TRACES_SAMPLER must be always_on, always_off, traceidratio, "
                     "parentbased_always_on, parentbased_always_off or "
                     "parentbased_traceidratio");
            return ST_INVALID;
        }
        c->sampler = names[i].s;
    }
    if ((c->sampler == TRACE_RATIO || c->sampler == TRACE_PARENT_RATIO) && arg != NULL &&
        arg[0] != '\0') {
        char *end = NULL;
        double r = strtod(arg, &end);
        if (*end != '\0' || !(r >= 0.0 && r <= 1.0)) {
            snprintf(err, err_len, "OTEL_TRACES_SAMPLER_ARG must be a ratio from 0 to 1");
            return ST_INVALID;
        }
        c->ratio = r;
    }
    return ST_OK;
}

struct header_list {
    char **v;
    size_t n;
};

static void
add_header(void *arg, const char *key, const char *value)
{
    struct header_list *h = arg;
    size_t len = strlen(key) + strlen(value) + 3;
    char *line = xmalloc(len);

    snprintf(line, len, "%s: %s", key, value);
    h->v = xrealloc(h->v, (h->n + 2) * sizeof *h->v);
    h->v[h->n++] = line;
    h->v[h->n] = NULL;
}

struct attrs {
    struct sbuf b;
    bool has_name;
    const char *service_name; /* OTEL_SERVICE_NAME wins over the attribute */
};

static void
add_attr(void *arg, const char *key, const char *value)
{
    struct attrs *a = arg;

    if (strcmp(key, "service.name") == 0) {
        if (a->service_name != NULL)
            return;
        a->has_name = true;
    }
    sbuf_adds(&a->b, a->b.len > 1 ? ",{\"key\":" : "{\"key\":");
    sbuf_add_jstr(&a->b, key, strlen(key));
    sbuf_adds(&a->b, ",\"value\":{\"stringValue\":");
    sbuf_add_jstr(&a->b, value, strlen(value));
    sbuf_adds(&a->b, "}}");
}

static enum status
resource(struct trace_config *c, const char *(*env)(const char *), char *err, size_t err_len)
{
    struct attrs a = {.b = {0}};
    const char *name = env("OTEL_SERVICE_NAME");
    char e[160];

    a.service_name = name != NULL && name[0] != '\0' ? name : NULL;
    sbuf_adds(&a.b, "[");
    if (trace_parse_pairs(env("OTEL_RESOURCE_ATTRIBUTES"), add_attr, &a, e, sizeof e) != ST_OK) {
        snprintf(err, err_len, "OTEL_RESOURCE_ATTRIBUTES: %s", e);
        sbuf_free(&a.b);
        return ST_INVALID;
    }
    if (!a.has_name) { /* OTEL_SERVICE_NAME, else the attribute, else "difyguard" */
        name = a.service_name != NULL ? a.service_name : "difyguard";
        a.service_name = NULL;
        add_attr(&a, "service.name", name);
    }
    add_attr(&a, "service.version", DG_VERSION);
    add_attr(&a, "telemetry.sdk.language", "c");
    add_attr(&a, "telemetry.sdk.name", "difyguard");
    sbuf_adds(&a.b, "]");
    size_t n;
    c->resource = sbuf_take(&a.b, &n);
    return ST_OK;
}

static enum status
endpoint(struct trace_config *c, const char *(*env)(const char *), char *err, size_t err_len)
{
    const char *t = env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
               *g = env("OTEL_EXPORTER_OTLP_ENDPOINT");
    const char *proto =
        either(env, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL");

    if (t != NULL && t[0] != '\0') {
        c->endpoint = xstrdup(t);
    } else if (g != NULL && g[0] != '\0') {
        size_t n = strlen(g);
        while (n > 0 && g[n - 1] == '/')
            n--;
        c->endpoint = xmalloc(n + sizeof "/v1/traces");
        snprintf(c->endpoint, n + sizeof "/v1/traces", "%.*s/v1/traces", (int)n, g);
    } else {
        return ST_OK; /* tracing off */
    }
    if (strncasecmp(c->endpoint, "http://", 7) != 0 &&
        strncasecmp(c->endpoint, "https://", 8) != 0) {
        snprintf(err, err_len, "the OTLP traces endpoint must be an http:// or https:// URL");
        return ST_INVALID;
    }
    if (proto != NULL && proto[0] != '\0' && strcmp(proto, "http/json") != 0) {
        snprintf(err, err_len,
                 "OTLP protocol '%.20s' is not supported: difyguard sends http/json (set "
                 "OTEL_EXPORTER_OTLP_PROTOCOL=http/json)",
                 proto);
        return ST_INVALID;
    }
    return ST_OK;
}

enum status
trace_config_from_env(struct trace_config *c, const char *(*env)(const char *), char *err,
                      size_t err_len)
{
    struct header_list h = {NULL, 0};
    const char *v;
    char e[160];
    enum status st;

    memset(c, 0, sizeof *c);
    if (env == NULL)
        env = plain_getenv;
    if (((v = env("OTEL_SDK_DISABLED")) != NULL && strcasecmp(v, "true") == 0) ||
        ((v = env("OTEL_TRACES_EXPORTER")) != NULL && strcmp(v, "none") == 0))
        return ST_OK;
    if ((v = env("OTEL_TRACES_EXPORTER")) != NULL && v[0] != '\0' && strcmp(v, "otlp") != 0) {
        snprintf(err, err_len, "OTEL_TRACES_EXPORTER must be otlp or none");
        return ST_INVALID;
    }
    if ((st = endpoint(c, env, err, err_len)) != ST_OK || c->endpoint == NULL)
        goto out;
    if ((st = sampler(c, env, err, err_len)) != ST_OK ||
        (st = number(env, "OTEL_BSP_MAX_QUEUE_SIZE", 2048, 1u << 20, &c->queue_size, err,
                     err_len)) != ST_OK ||
        (st = number(env, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512, 1u << 20, &c->batch_size, err,
                     err_len)) != ST_OK ||
        (st = number(env, "OTEL_BSP_SCHEDULE_DELAY", 5000, 3600000, &c->delay_ms, err, err_len)) !=
            ST_OK)
        goto out;
    v = either(env, "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT");
    c->timeout_ms = 10000;
    if (v != NULL && v[0] != '\0') {
        char *end = NULL;
        unsigned long long n = strtoull(v, &end, 10);
        if (v[0] < '0' || v[0] > '9' || *end != '\0' || n == 0 || n > 3600000) {
            snprintf(err, err_len, "OTEL_EXPORTER_OTLP_TIMEOUT must be milliseconds (1..3600000)");
            st = ST_INVALID;
            goto out;
        }
        c->timeout_ms = n;
    }
    if (c->queue_size == 0 || c->batch_size == 0) {
        snprintf(err, err_len,
                 "OTEL_BSP_MAX_QUEUE_SIZE and OTEL_BSP_MAX_EXPORT_BATCH_SIZE must be > 0");
        st = ST_INVALID;
        goto out;
    }
    if (c->batch_size > c->queue_size)
        c->batch_size = c->queue_size;
    add_header(&h, "Content-Type", "application/json");
    if ((st = trace_parse_pairs(
             either(env, "OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS"),
             add_header, &h, e, sizeof e)) != ST_OK) {
        snprintf(err, err_len, "OTEL_EXPORTER_OTLP_HEADERS: %s", e);
        goto out;
    }
    st = resource(c, env, err, err_len);
out:
    c->headers = h.v;
    if (st != ST_OK)
        trace_config_free(c);
    return st;
}

void
trace_config_free(struct trace_config *c)
{
    for (size_t i = 0; c->headers != NULL && c->headers[i] != NULL; i++) {
        explicit_bzero(c->headers[i], strlen(c->headers[i]));
        free(c->headers[i]);
    }
    free(c->headers);
    free(c->endpoint);
    free(c->resource);
    memset(c, 0, sizeof *c);
}
