/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/server/obs/obs_test.c -- the metrics writers (histogram lines, label escaping, the
 * bounded table's overflow to _other) and the tracing parsers and configuration (traceparent
 * shapes, tracestate, key=value lists, OTEL_* values, sampling by ratio and parent). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "server/obs/metrics.h"
#include "server/obs/trace.h"

static struct sbuf out;

static void
collect_hist(const void *self, struct metrics_out *o)
{
    const struct metrics_label l[] = {{"route", "/v1/a\"b\\c\nd"}};
    metrics_family(o, "x_seconds", "histogram", "h");
    metrics_hist_render(o, "x_seconds", l, 1, self);
}

static char *
render(void (*collect)(const void *, struct metrics_out *), const void *self)
{
    struct metrics *m = metrics_new();
    const struct metrics_source s = {"t", collect, self};
    sbuf_free(&out);
    metrics_register(m, &s);
    metrics_render(m, &out);
    metrics_free(m);
    return out.p;
}

static void
test_histogram_lines(void **state)
{
    struct metrics_hist h;
    (void)state;
    metrics_hist_init(&h, &metrics_buckets_http_seconds);
    metrics_hist_observe(&h, 3000000);     /* 3 ms: first bucket */
    metrics_hist_observe(&h, 5000000);     /* 5 ms: le="0.005" includes its bound */
    metrics_hist_observe(&h, 60000000000); /* 60 s: only +Inf */
    char *t = render(collect_hist, &h);
    assert_non_null(strstr(t, "# TYPE x_seconds histogram\n"));
    assert_non_null(strstr(t, "x_seconds_bucket{route=\"/v1/a\\\"b\\\\c\\nd\",le=\"0.005\"} 2\n"));
    assert_non_null(strstr(t, "le=\"0.01\"} 2\n"));
    assert_non_null(strstr(t, "le=\"10\"} 2\n"));
    assert_non_null(strstr(t, "le=\"+Inf\"} 3\n"));
    assert_non_null(strstr(t, "x_seconds_count{route=\"/v1/a\\\"b\\\\c\\nd\"} 3\n"));
    assert_non_null(strstr(t, "x_seconds_sum{route=\"/v1/a\\\"b\\\\c\\nd\"} 60.008\n"));
    assert_int_equal(metrics_hist_count(&h), 3);
    metrics_hist_fini(&h);
}

static void
collect_table(const void *self, struct metrics_out *o)
{
    metrics_table_render(o, self, "y_total", "counter", "t");
}

static void
test_table_overflow_is_bounded(void **state)
{
    const char *labels[] = {"op", "keyring"};
    struct metrics_table *t = metrics_table_new(labels, 2, 4, 0x2);
    char name[32];
    (void)state;
    for (int i = 0; i < 100; i++) {
        snprintf(name, sizeof name, "kr-%d", i);
        const char *v[] = {i % 2 ? "encrypt" : "decrypt", name};
        metrics_table_add(t, v, 1);
        metrics_table_add(t, v, 2);
    }
    /* 4 label sets of their own, then "_other" per op: 6 series */
    assert_int_equal(metrics_table_size(t), 6);
    char *text = render(collect_table, t);
    assert_non_null(strstr(text, "y_total{op=\"decrypt\",keyring=\"kr-0\"} 3\n"));
    assert_non_null(strstr(text, "y_total{op=\"encrypt\",keyring=\"_other\"} 144\n"));
    assert_non_null(strstr(text, "y_total{op=\"decrypt\",keyring=\"_other\"} 144\n"));
    metrics_table_free(t);
}

static void
test_traceparent(void **state)
{
    uint8_t tid[16], pid[8], f;
    (void)state;
    assert_true(trace_parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                                        tid, pid, &f));
    assert_int_equal(tid[0], 0x4b);
    assert_int_equal(pid[7], 0xb7);
    assert_int_equal(f, 1);
    /* a later version may carry more fields */
    assert_true(trace_parse_traceparent(
        "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-ever", tid, pid, &f));
    const char *bad[] = {
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",   /* uppercase */
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",   /* zero trace id */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",   /* zero parent */
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   /* version ff */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", /* 00 has no more */
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-011",   "", NULL,
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_false(trace_parse_traceparent(bad[i], tid, pid, &f));
        assert_int_equal(tid[0] | pid[0] | f, 0);
    }
}

static void
test_tracestate(void **state)
{
    char big[600];
    (void)state;
    assert_true(trace_state_valid("vendor=abc,other=1"));
    assert_true(trace_state_valid("t@sys=v, b=c"));
    assert_false(trace_state_valid("Upper=1"));
    assert_false(trace_state_valid("a=b=c"));
    assert_false(trace_state_valid("a="));
    assert_false(trace_state_valid(""));
    memset(big, 'a', sizeof big - 3);
    memcpy(big + sizeof big - 3, "=b", 3);
    assert_false(trace_state_valid(big));
}

static int pairs;
static void
count_pair(void *arg, const char *k, const char *v)
{
    (void)arg;
    pairs++;
    if (strcmp(k, "team") == 0)
        assert_string_equal(v, "sec ops");
}

static void
test_pairs(void **state)
{
    char err[160];
    (void)state;
    pairs = 0;
    assert_int_equal(
        trace_parse_pairs(" a=1 ,team=sec%20ops,,b=", count_pair, NULL, err, sizeof err), ST_OK);
    assert_int_equal(pairs, 3);
    assert_int_equal(trace_parse_pairs("bad key=1", count_pair, NULL, err, sizeof err), ST_INVALID);
    assert_int_equal(trace_parse_pairs("k=%0d%0a", count_pair, NULL, err, sizeof err), ST_INVALID);
    assert_int_equal(trace_parse_pairs("k=%zz", count_pair, NULL, err, sizeof err), ST_INVALID);
    assert_int_equal(trace_parse_pairs("novalue", count_pair, NULL, err, sizeof err), ST_INVALID);
    assert_null(strstr(err, "novalue"));
}

/* OTEL_* for one test: NULL-terminated name, value pairs. */
static const char *const *test_env;
static const char *
fake_env(const char *name)
{
    for (size_t i = 0; test_env[i] != NULL; i += 2)
        if (strcmp(test_env[i], name) == 0)
            return test_env[i + 1];
    return NULL;
}

static void
test_config(void **state)
{
    struct trace_config c;
    char err[256];
    (void)state;
    test_env = (const char *const[]){NULL};
    assert_int_equal(trace_config_from_env(&c, fake_env, err, sizeof err), ST_OK);
    assert_null(c.endpoint); /* no endpoint: tracing off */
    test_env = (const char *const[]){"OTEL_EXPORTER_OTLP_ENDPOINT",
                                     "http://c:4318/",
                                     "OTEL_EXPORTER_OTLP_HEADERS",
                                     "Authorization=Bearer%20s3cret",
                                     "OTEL_TRACES_SAMPLER",
                                     "parentbased_traceidratio",
                                     "OTEL_TRACES_SAMPLER_ARG",
                                     "0.25",
                                     NULL};
    assert_int_equal(trace_config_from_env(&c, fake_env, err, sizeof err), ST_OK);
    assert_string_equal(c.endpoint, "http://c:4318/v1/traces");
    assert_int_equal(c.sampler, TRACE_PARENT_RATIO);
    assert_true(c.ratio == 0.25);
    assert_string_equal(c.headers[1], "Authorization: Bearer s3cret");
    assert_non_null(strstr(c.resource, "\"service.name\""));
    trace_config_free(&c);
    test_env = (const char *const[]){"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c/x",
                                     "OTEL_EXPORTER_OTLP_ENDPOINT", "http://other", NULL};
    assert_int_equal(trace_config_from_env(&c, fake_env, err, sizeof err), ST_OK);
    assert_string_equal(c.endpoint, "http://c/x"); /* the per-signal one, as is */
    trace_config_free(&c);
    test_env = (const char *const[]){"OTEL_EXPORTER_OTLP_ENDPOINT", "http://c", "OTEL_SDK_DISABLED",
                                     "true", NULL};
    assert_int_equal(trace_config_from_env(&c, fake_env, err, sizeof err), ST_OK);
    assert_null(c.endpoint);
    const char *const *bad[] = {
        (const char *const[]){"OTEL_EXPORTER_OTLP_ENDPOINT", "ftp://c", NULL},
        (const char *const[]){"OTEL_EXPORTER_OTLP_ENDPOINT", "http://c", "OTEL_TRACES_SAMPLER_ARG",
                              "1.5", "OTEL_TRACES_SAMPLER", "traceidratio", NULL},
        (const char *const[]){"OTEL_EXPORTER_OTLP_ENDPOINT", "http://c",
                              "OTEL_EXPORTER_OTLP_HEADERS", "a b=s3cret", NULL},
        (const char *const[]){"OTEL_EXPORTER_OTLP_ENDPOINT", "http://c", "OTEL_BSP_MAX_QUEUE_SIZE",
                              "-1", NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        test_env = bad[i];
        assert_int_equal(trace_config_from_env(&c, fake_env, err, sizeof err), ST_INVALID);
        assert_null(strstr(err, "s3cret"));
        assert_null(c.endpoint);
    }
}

static void
test_sampling(void **state)
{
    struct trace_config c;
    struct tracer *t = NULL;
    struct trace_ctx ctx;
    char err[256];
    int sampled = 0;
    (void)state;
    /* A tracer whose collector never answers: only the sampling decisions are looked at. */
    test_env = (const char *const[]){"OTEL_EXPORTER_OTLP_ENDPOINT",
                                     "http://127.0.0.1:9",
                                     "OTEL_TRACES_SAMPLER",
                                     "parentbased_traceidratio",
                                     "OTEL_TRACES_SAMPLER_ARG",
                                     "0.25",
                                     NULL};
    assert_int_equal(trace_config_from_env(&c, fake_env, err, sizeof err), ST_OK);
    assert_int_equal(tracer_start(&t, &c, err, sizeof err), ST_OK);
    for (int i = 0; i < 4000; i++) {
        trace_begin(t, &ctx, NULL, NULL);
        assert_true(ctx.valid);
        sampled += ctx.sampled;
    }
    assert_in_range(sampled, 800, 1200); /* 25% of 4000, with room */
    trace_begin(t, &ctx, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", "a=b");
    assert_false(ctx.sampled); /* the parent said no */
    assert_string_equal(ctx.tracestate, "a=b");
    trace_begin(t, &ctx, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "A=b");
    assert_true(ctx.sampled);
    assert_null(ctx.tracestate); /* invalid: dropped */
    struct trace_ctx child;
    trace_child(&ctx, &child);
    assert_memory_equal(child.trace_id, ctx.trace_id, 16);
    assert_memory_equal(child.parent_id, ctx.span_id, 8);
    assert_memory_not_equal(child.span_id, ctx.span_id, 8);
    tracer_stop(t);
    /* tracing off: the client's trace id is kept, nothing sampled */
    trace_begin(NULL, &ctx, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", NULL);
    assert_true(ctx.valid);
    assert_false(ctx.sampled);
    trace_begin(NULL, &ctx, NULL, NULL);
    assert_false(ctx.valid);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_histogram_lines), cmocka_unit_test(test_table_overflow_is_bounded),
        cmocka_unit_test(test_traceparent),     cmocka_unit_test(test_tracestate),
        cmocka_unit_test(test_pairs),           cmocka_unit_test(test_config),
        cmocka_unit_test(test_sampling),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    sbuf_free(&out);
    return rc;
}
