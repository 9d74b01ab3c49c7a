/* SPDX-License-Identifier: Apache-2.0 */
/* server/obs/trace_parse.c -- the parsers of outside input behind tracing: W3C traceparent and
 * tracestate headers, and the "key=value,..." lists of the OTEL_* variables. Pure: no I/O, no
 * allocation but the copies handed to a callback; fuzzed (fuzz/fuzz_trace.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/obs/trace.h"

static int
hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1; /* uppercase hex is invalid in traceparent */
}

/* n bytes from 2n lowercase hex digits; false on anything else. */
static bool
unhex(uint8_t *out, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(s[2 * i]), lo = hi < 0 ? -1 : hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

static bool
all_zero(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= p[i];
    return acc == 0;
}

bool
trace_parse_traceparent(const char *s, uint8_t trace_id[static TRACE_ID_BYTES],
                        uint8_t parent_id[static TRACE_SPAN_BYTES], uint8_t *flags)
{
    uint8_t version = 0;
    size_t len = s != NULL ? strnlen(s, 56) : 0;

    memset(trace_id, 0, TRACE_ID_BYTES);
    memset(parent_id, 0, TRACE_SPAN_BYTES);
    *flags = 0;
    /* 2 + 1 + 32 + 1 + 16 + 1 + 2 = 55; version 00 is exactly that, a later version may go on
     * with "-..." (which is then ignored). */
    if (len < 55 || s[2] != '-' || s[35] != '-' || s[52] != '-' || !unhex(&version, s, 1) ||
        version == 0xff || (version == 0 && len != 55) || (len > 55 && s[55] != '-'))
        goto bad;
    if (!unhex(trace_id, s + 3, TRACE_ID_BYTES) || !unhex(parent_id, s + 36, TRACE_SPAN_BYTES) ||
        !unhex(flags, s + 53, 1) || all_zero(trace_id, TRACE_ID_BYTES) ||
        all_zero(parent_id, TRACE_SPAN_BYTES))
        goto bad;
    return true;
bad:
    memset(trace_id, 0, TRACE_ID_BYTES);
    memset(parent_id, 0, TRACE_SPAN_BYTES);
    *flags = 0;
    return false;
}

/* One list member "key=value" of tracestate (W3C Trace Context, section 3.3.1). */
static bool
state_member(const char *p, size_t n)
{
    const char *eq = memchr(p, '=', n);
    size_t kl, vl;

    if (eq == NULL)
        return false;
    kl = (size_t)(eq - p);
    vl = n - kl - 1;
    if (kl == 0 || kl > 256 || vl == 0 || vl > 256 ||
        !((p[0] >= 'a' && p[0] <= 'z') || (p[0] >= '0' && p[0] <= '9')))
        return false;
    for (size_t i = 0; i < kl; i++) {
        char c = p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
              c == '*' || c == '/' || c == '@'))
            return false;
    }
    for (size_t i = 0; i < vl; i++) {
        char c = eq[1 + i];
        if (c < 0x20 || c > 0x7e || c == ',' || c == '=' || (c == ' ' && i == vl - 1))
            return false;
    }
    return true;
}

bool
trace_state_valid(const char *s)
{
    size_t len = s != NULL ? strnlen(s, TRACE_STATE_MAX + 1) : 0, members = 0;

    if (len == 0 || len > TRACE_STATE_MAX)
        return false;
    for (const char *p = s;;) {
        size_t n = strcspn(p, ",");
        const char *m = p, *end = p + n;
        while (m < end && (*m == ' ' || *m == '\t'))
            m++;
        while (end > m && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        if (end > m) { /* empty members are allowed and skipped */
            if (++members > 32 || !state_member(m, (size_t)(end - m)))
                return false;
        }
        if (p[n] == '\0')
            return members > 0;
        p += n + 1;
    }
}

static int
hexval_ci(char c)
{
    return c >= 'A' && c <= 'F' ? c - 'A' + 10 : hexval(c);
}

static bool
token_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Percent-decode [p, p+n) into out (cap >= n + 1); false on a bad escape or a control
 * character (a header value must not end a line). */
static bool
decode_value(char *out, const char *p, size_t n)
{
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '%') {
            if (i + 2 >= n)
                return false;
            int hi = hexval_ci(p[i + 1]), lo = hexval_ci(p[i + 2]);
            if (hi < 0 || lo < 0)
                return false;
            c = (unsigned char)(hi << 4 | lo);
            i += 2;
        }
        if (c < 0x20 || c == 0x7f)
            return false;
        out[j++] = (char)c;
    }
    out[j] = '\0';
    return true;
}

enum status
trace_parse_pairs(const char *s, void (*cb)(void *arg, const char *key, const char *value),
                  void *arg, char *err, size_t err_len)
{
    size_t len = s != NULL ? strlen(s) : 0;
    char *buf = malloc(len + 2);
    enum status st = ST_OK;
    size_t idx = 0;

    if (buf == NULL)
        abort();
    for (const char *p = s; p != NULL && *p != '\0' && st == ST_OK;) {
        size_t n = strcspn(p, ",");
        const char *eq = memchr(p, '=', n);
        const char *k = p, *ke = eq != NULL ? eq : p + n, *v = eq != NULL ? eq + 1 : p + n,
                   *ve = p + n;
        idx++;
        while (k < ke && (*k == ' ' || *k == '\t'))
            k++;
        while (ke > k && (ke[-1] == ' ' || ke[-1] == '\t'))
            ke--;
        while (v < ve && (*v == ' ' || *v == '\t'))
            v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        if (k == ke && eq == NULL && ve == v) { /* an empty member: skipped */
        } else if (eq == NULL || k == ke) {
            snprintf(err, err_len, "entry %zu is not key=value", idx);
            st = ST_INVALID;
        } else {
            for (const char *c = k; c < ke && st == ST_OK; c++)
                if (!token_char(*c)) {
                    snprintf(err, err_len, "entry %zu: the key is not a token", idx);
                    st = ST_INVALID;
                }
            memcpy(buf, k, (size_t)(ke - k));
            buf[ke - k] = '\0';
            char *val = buf + (ke - k) + 1;
            if (st == ST_OK && !decode_value(val, v, (size_t)(ve - v))) {
                snprintf(err, err_len, "entry %zu: bad percent-encoding or a control character",
                         idx);
                st = ST_INVALID;
            }
            if (st == ST_OK && cb != NULL)
                cb(arg, buf, val);
        }
        p += n;
        if (*p == ',')
            p++;
    }
    explicit_bzero(buf, len + 2); /* header values may be credentials */
    free(buf);
    return st;
}
