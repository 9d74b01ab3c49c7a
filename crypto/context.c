/* SPDX-License-Identifier: Apache-2.0 */
/* crypto/context.c -- canonical bytes of an encryption context (a permanent format: any change
 * here breaks every stored ciphertext). Validates strictly, never normalises. */
#include "crypto/context.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/bytes.h"

/* Strict UTF-8 (RFC 3629): shortest form only, no surrogates, nothing above U+10FFFF, no NUL. */
int
context_utf8_valid(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;

    while (i < len) {
        unsigned c = s[i];
        unsigned lo = 0x80, hi = 0xBF; /* allowed range of the first continuation byte */
        size_t more;

        if (c == 0)
            return 0;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF)
            more = 1;
        else if (c >= 0xE0 && c <= 0xEF) {
            more = 2;
            lo = c == 0xE0 ? 0xA0 : 0x80; /* E0: overlong below A0 */
            hi = c == 0xED ? 0x9F : 0xBF; /* ED: surrogates from A0 */
        } else if (c >= 0xF0 && c <= 0xF4) {
            more = 3;
            lo = c == 0xF0 ? 0x90 : 0x80; /* F0: overlong below 90 */
            hi = c == 0xF4 ? 0x8F : 0xBF; /* F4: above U+10FFFF from 90 */
        } else
            return 0; /* continuation byte, C0, C1, F5..FF */
        if (len - i <= more || s[i + 1] < lo || s[i + 1] > hi)
            return 0;
        for (size_t k = 2; k <= more; k++)
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
        i += more + 1;
    }
    return 1;
}

size_t
context_canon_len(const struct context_pair *pairs, size_t n)
{
    size_t len = 4;

    for (size_t i = 0; i < n; i++)
        len += 8 + pairs[i].key_len + pairs[i].val_len;
    return len;
}

/* Bytewise order: the common prefix by memcmp, then the shorter key first. */
static int
key_cmp(const struct context_pair *a, const struct context_pair *b)
{
    size_t n = a->key_len < b->key_len ? a->key_len : b->key_len;
    int c = n > 0 ? memcmp(a->key, b->key, n) : 0; /* public keys */

    if (c != 0)
        return c;
    return (a->key_len > b->key_len) - (a->key_len < b->key_len);
}

static uint8_t *
put_str(uint8_t *p, const char *s, size_t len)
{
    p = put_u32be(p, (uint32_t)len);
    if (len > 0)
        memcpy(p, s, len);
    return p + len;
}

enum status
context_canonicalize(uint8_t *out, size_t out_cap, size_t *out_len, struct context_pair *pairs,
                     size_t n)
{
    enum status st = ST_INVALID;

    *out_len = 0;
    if (n > CONTEXT_MAX_PAIRS)
        goto out;
    for (size_t i = 0; i < n; i++)
        if (pairs[i].key_len > UINT32_MAX || pairs[i].val_len > UINT32_MAX ||
            !context_utf8_valid(pairs[i].key, pairs[i].key_len) ||
            !context_utf8_valid(pairs[i].val, pairs[i].val_len))
            goto out;
    /* Insertion sort: at most 32 pairs, and stable for the duplicate check below. */
    for (size_t i = 1; i < n; i++) {
        struct context_pair p = pairs[i];
        size_t j = i;
        for (; j > 0 && key_cmp(&pairs[j - 1], &p) > 0; j--)
            pairs[j] = pairs[j - 1];
        pairs[j] = p;
    }
    for (size_t i = 1; i < n; i++)
        if (key_cmp(&pairs[i - 1], &pairs[i]) == 0)
            goto out;
    size_t len = context_canon_len(pairs, n);
    if (out_cap < len) {
        fprintf(stderr, "difyguard: context_canonicalize: output buffer too small\n");
        abort();
    }
    uint8_t *p = put_u32be(out, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        p = put_str(p, pairs[i].key, pairs[i].key_len);
        p = put_str(p, pairs[i].val, pairs[i].val_len);
    }
    *out_len = len;
    st = ST_OK;
out:
    return st;
}
