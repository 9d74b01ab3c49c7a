/* SPDX-License-Identifier: Apache-2.0 */
/* common/sbuf.c -- response building; secret buffers never leave stale copies on the heap. */
#include "common/sbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmem.h"

void
sbuf_reserve(struct sbuf *b, size_t extra)
{
    if (b->cap - b->len > extra)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len <= extra)
        cap *= 2;
    if (b->secret && b->p != NULL) {
        char *n = xmalloc(cap);
        memcpy(n, b->p, b->len);
        explicit_bzero(b->p, b->cap);
        free(b->p);
        b->p = n;
    } else {
        b->p = xrealloc(b->p, cap);
    }
    b->cap = cap;
}

void
sbuf_add(struct sbuf *b, const void *p, size_t n)
{
    sbuf_reserve(b, n);
    memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void
sbuf_adds(struct sbuf *b, const char *s)
{
    sbuf_add(b, s, strlen(s));
}

void
sbuf_addf(struct sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    sbuf_reserve(b, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void
sbuf_add_jstr(struct sbuf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    sbuf_reserve(b, n + 2);
    b->p[b->len++] = '"';
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        sbuf_add(b, s + run, i - run);
        run = i + 1;
        char esc[7] = {'\\', 0};
        size_t el = 2;
        switch (c) {
        case '"':
            esc[1] = '"';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            el = 6;
        }
        sbuf_add(b, esc, el);
    }
    sbuf_add(b, s + run, n - run);
    sbuf_add(b, "\"", 1);
}

char *
sbuf_take(struct sbuf *b, size_t *len)
{
    char *p = b->p;
    *len = b->len;
    if (p == NULL)
        p = xcalloc(1, 1);
    b->p = NULL;
    b->len = b->cap = 0;
    return p;
}

void
sbuf_free(struct sbuf *b)
{
    if (b->p != NULL && b->secret)
        explicit_bzero(b->p, b->cap);
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

void
sbuf_wipe_free(void *p, size_t n)
{
    if (p != NULL)
        explicit_bzero(p, n);
    free(p);
}

void
sbuf_add_u32(struct sbuf *b, const char *prefix, uint32_t v)
{
    char digits[10];
    size_t n = 0;
    sbuf_adds(b, prefix);
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    sbuf_reserve(b, n);
    while (n > 0)
        b->p[b->len++] = digits[--n];
    b->p[b->len] = '\0';
}
