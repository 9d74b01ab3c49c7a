/* SPDX-License-Identifier: Apache-2.0 */
/* server/obs/trace.h -- W3C Trace Context in, OpenTelemetry spans out. The transport starts a
 * request's context from its traceparent/tracestate headers (or a new trace), the pipeline and
 * handlers make child spans (authentication, key lookup, crypto, audit commit), and finished
 * spans go to a bounded queue that one background thread sends in batches to an OTLP/HTTP
 * collector (JSON encoding, libcurl). A request thread never waits for the collector: when the
 * queue is full the span is dropped and counted. Configured by the standard OTEL_* variables.
 * Spans carry ids, route templates, statuses, app and keyring names: never a secret, a body,
 * a header value or a client's raw path. The exporter's headers (OTEL_EXPORTER_OTLP_HEADERS) may
 * hold credentials: they are never logged. */
#ifndef DG_SERVER_OBS_TRACE_H
#define DG_SERVER_OBS_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/status.h"

#define TRACE_ID_BYTES 16
#define TRACE_SPAN_BYTES 8
#define TRACE_STATE_MAX 512 /* longer tracestate headers are dropped (W3C: at least 512 kept) */

/* --- parsers of outside input (pure; fuzzed by fuzz/fuzz_trace.c) --- */

/* A W3C traceparent "VV-<32 hex>-<16 hex>-<2 hex>" (lowercase hex; version ff, an all-zero trace
 * or parent id, or any other shape refused; a future version may carry more after the flags,
 * separated by '-'). True with the ids and flags set; false leaves them zeroed. */
bool trace_parse_traceparent(const char *s, uint8_t trace_id[static TRACE_ID_BYTES],
                             uint8_t parent_id[static TRACE_SPAN_BYTES], uint8_t *flags);
/* A W3C tracestate header: at most 32 comma-separated key=value members (lowercase keys of
 * [a-z0-9_*-/@], values of printable ASCII but ',' and '='), at most TRACE_STATE_MAX bytes. */
bool trace_state_valid(const char *s);
/* "key=value,key2=value2" (OTEL_EXPORTER_OTLP_HEADERS, OTEL_RESOURCE_ATTRIBUTES): values are
 * percent-decoded, surrounding blanks trimmed. cb gets each pair (NUL-terminated copies); keys
 * must be HTTP tokens and values free of control characters, else ST_INVALID (what stopped it
 * in err, never the value). */
NODISCARD enum status trace_parse_pairs(const char *s,
                                        void (*cb)(void *arg, const char *key, const char *value),
                                        void *arg, char *err, size_t err_len);

/* --- configuration --- */

enum trace_sampler {
    TRACE_ALWAYS_ON,
    TRACE_ALWAYS_OFF,
    TRACE_RATIO,
    TRACE_PARENT_ALWAYS_ON, /* the default */
    TRACE_PARENT_ALWAYS_OFF,
    TRACE_PARENT_RATIO,
};

struct trace_config {
    char *endpoint; /* full URL of the traces endpoint; NULL: tracing off */
    char **headers; /* "Key: value" lines for curl (secret: never logged), NULL-terminated */
    char *resource; /* the OTLP JSON resource attributes array, prebuilt */
    enum trace_sampler sampler;
    double ratio;        /* TRACE_*RATIO */
    uint64_t queue_size; /* OTEL_BSP_MAX_QUEUE_SIZE, 2048 */
    uint64_t batch_size; /* OTEL_BSP_MAX_EXPORT_BATCH_SIZE, 512 */
    uint64_t delay_ms;   /* OTEL_BSP_SCHEDULE_DELAY, 5000 */
    uint64_t timeout_ms; /* OTEL_EXPORTER_OTLP[_TRACES]_TIMEOUT, 10000 */
};
/* Read the OTEL_* variables of `env` (a getenv-like lookup; NULL: the process environment):
 * OTEL_SDK_DISABLED, OTEL_TRACES_EXPORTER (otlp or none), OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
 * (used as is) or OTEL_EXPORTER_OTLP_ENDPOINT (+ "/v1/traces"), OTEL_EXPORTER_OTLP[_TRACES]_HEADERS,
 * OTEL_EXPORTER_OTLP[_TRACES]_TIMEOUT, OTEL_EXPORTER_OTLP[_TRACES]_PROTOCOL (http/json is what
 * is sent; others are refused), OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER,
 * OTEL_TRACES_SAMPLER_ARG and OTEL_BSP_*. No endpoint means tracing off (ST_OK, endpoint NULL).
 * ST_INVALID with one line in err for a bad value (never the value of a header). */
NODISCARD enum status trace_config_from_env(struct trace_config *c,
                                            const char *(*env)(const char *), char *err,
                                            size_t err_len);
void trace_config_free(struct trace_config *c);

/* --- contexts and spans --- */

/* A request's (or a child's) place in a trace. Plain data: copy freely. */
struct trace_ctx {
    uint8_t trace_id[TRACE_ID_BYTES];
    uint8_t span_id[TRACE_SPAN_BYTES];   /* this span */
    uint8_t parent_id[TRACE_SPAN_BYTES]; /* all zero: a root span */
    bool valid;                          /* has a trace id (from the client, or made here) */
    bool sampled;                        /* its spans are exported */
    const char *tracestate;              /* the client's, validated (borrowed); NULL: none */
};

enum trace_kind { TRACE_KIND_INTERNAL = 1, TRACE_KIND_SERVER = 2 };

/* A finished span as it is queued (copied, name and tracestate included). The fixed strings are
 * copied, cut to fit; route and method must be static. */
struct trace_span {
    struct trace_ctx ctx;
    const char *name; /* static: "POST /v1/keyrings/{name}/encrypt", "authenticate", ... */
    enum trace_kind kind;
    int64_t start_ns, end_ns; /* CLOCK_REALTIME */
    bool error;
    /* attributes: empty/zero ones are left out */
    const char *route, *method; /* static */
    unsigned status_code;
    uint32_t items;
    char app[80], keyring[72], request_id[72], outcome[32];
};

struct tracer;

/* Start the exporter thread (c is taken: do not free it). With c->endpoint NULL, *out is NULL
 * and ST_OK: every function below accepts a NULL tracer (contexts still carry a client's trace
 * id for the audit trail and the logs; nothing is exported). */
NODISCARD enum status tracer_start(struct tracer **out, struct trace_config *c, char *err,
                                   size_t err_len);
/* Send what is queued (for at most 5 seconds: a hanging collector does not hold the shutdown),
 * stop the thread, free. NULL-safe. */
void tracer_stop(struct tracer *t);

/* The server span's context of a request from its headers (either may be NULL): the client's
 * trace id and parent when the traceparent is valid (and its tracestate, when valid), else a new
 * trace when t is not NULL; a new span id; the sampling decision. */
void trace_begin(const struct tracer *t, struct trace_ctx *ctx, const char *traceparent,
                 const char *tracestate);
/* A child of parent: same trace and decision, a new span id. */
void trace_child(const struct trace_ctx *parent, struct trace_ctx *child);
/* Lowercase hex of the ids (33 and 17 bytes with the NUL); "" when !ctx->valid. */
void trace_id_hex(const struct trace_ctx *ctx, char out[static 2 * TRACE_ID_BYTES + 1]);
void trace_span_hex(const struct trace_ctx *ctx, char out[static 2 * TRACE_SPAN_BYTES + 1]);
/* Now, for start_ns and end_ns. */
int64_t trace_now_ns(void);
/* Queue a finished span when its context is sampled: never blocks on the exporter (a full queue
 * drops it, counted). */
void trace_emit(struct tracer *t, const struct trace_span *s);

/* The tracer's series (spans exported, dropped by reason, queued): self is the tracer. */
struct metrics_out;
void tracer_metrics(const void *self, struct metrics_out *o);

#endif
