/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz/fuzz_trace.c -- the tracing parsers of outside input: traceparent and tracestate headers
 * (client bytes) and the OTEL_* "key=value,..." lists. Oracles: never crash or read out of
 * bounds; a traceparent that parses is re-formatted to the same 55 bytes (version 00) and its ids
 * are never all zero; a refused one leaves zeroed ids; pairs handed to the callback hold no
 * control character and keys are non-empty HTTP tokens. Input: three NUL-separated parts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/obs/trace.h"

static void
check_pair(void *arg, const char *key, const char *value)
{
    (void)arg;
    if (key[0] == '\0')
        abort();
    for (const char *p = key; *p != '\0'; p++)
        if ((unsigned char)*p <= 0x20 || strchr("\"(),/:;<=>?@[\\]{}", *p) != NULL)
            abort();
    for (const char *p = value; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            abort();
}

static void
check_traceparent(const char *s)
{
    uint8_t tid[TRACE_ID_BYTES], pid[TRACE_SPAN_BYTES], flags;
    static const uint8_t zt[TRACE_ID_BYTES], zp[TRACE_SPAN_BYTES];
    bool ok = trace_parse_traceparent(s, tid, pid, &flags);

    if (!ok) {
        if (memcmp(tid, zt, sizeof zt) != 0 || memcmp(pid, zp, sizeof zp) != 0 || flags != 0)
            abort();
        return;
    }
    if (memcmp(tid, zt, sizeof zt) == 0 || memcmp(pid, zp, sizeof zp) == 0)
        abort();
    struct trace_ctx c = {.valid = true};
    char th[2 * TRACE_ID_BYTES + 1], sh[2 * TRACE_SPAN_BYTES + 1];
    memcpy(c.trace_id, tid, sizeof tid);
    memcpy(c.span_id, pid, sizeof pid);
    trace_id_hex(&c, th);
    trace_span_hex(&c, sh);
    if (strncmp(s + 3, th, 32) != 0 || strncmp(s + 36, sh, 16) != 0)
        abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 3);
    const char *parts[3];
    size_t n = 0;
    char err[160];

    memcpy(buf, data, size);
    buf[size] = buf[size + 1] = buf[size + 2] = '\0';
    parts[0] = buf;
    for (size_t i = 0; i < size && n < 2; i++)
        if (buf[i] == '\0')
            parts[++n] = buf + i + 1;
    while (n < 2)
        parts[++n] = buf + size + 1;
    check_traceparent(parts[0]);
    (void)trace_state_valid(parts[1]);
    (void)trace_parse_pairs(parts[2], check_pair, NULL, err, sizeof err);
    free(buf);
    return 0;
}
