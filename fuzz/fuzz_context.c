/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz/fuzz_context.c -- encryption context canonicalisation on arbitrary pairs.
 * Input: a sequence of (u8 len, bytes) strings taken as key, value, key, value... (NUL and any
 * byte allowed). Oracles: the output decodes back to the same number of pairs in strictly
 * increasing key order, every string is valid UTF-8, and input order never changes the bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/context.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_PAIRS (CONTEXT_MAX_PAIRS + 4)

static size_t
take(const char **s, size_t *len, const uint8_t **p, const uint8_t *end)
{
    if (*p >= end)
        return 0;
    size_t n = **p;
    (*p)++;
    if (n > (size_t)(end - *p))
        n = (size_t)(end - *p);
    *s = (const char *)*p;
    *len = n;
    *p += n;
    return 1;
}

static uint32_t
get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Walk the canonical bytes: count, then strictly increasing keys, valid strings, exact end. */
static void
check_canonical(const uint8_t *out, size_t len, size_t n)
{
    const uint8_t *p = out + 4, *end = out + len, *prev = NULL;
    size_t prev_len = 0;

    if (len < 4 || get_u32(out) != n)
        abort();
    for (size_t i = 0; i < 2 * n; i++) {
        if (end - p < 4)
            abort();
        size_t l = get_u32(p);
        p += 4;
        if ((size_t)(end - p) < l || !context_utf8_valid((const char *)p, l))
            abort();
        if (i % 2 == 0) {
            size_t m = l < prev_len ? l : prev_len;
            int c = prev == NULL ? -1 : memcmp(prev, p, m);
            if (prev != NULL && (c > 0 || (c == 0 && prev_len >= l)))
                abort(); /* not strictly increasing */
            prev = p;
            prev_len = l;
        }
        p += l;
    }
    if (p != end)
        abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct context_pair pairs[MAX_PAIRS], rev[MAX_PAIRS];
    const uint8_t *p = data, *end = data + size;
    size_t n = 0, len = 0, len2 = 0;

    while (n < MAX_PAIRS && take(&pairs[n].key, &pairs[n].key_len, &p, end) &&
           take(&pairs[n].val, &pairs[n].val_len, &p, end))
        n++;
    for (size_t i = 0; i < n; i++)
        rev[i] = pairs[n - 1 - i];
    size_t cap = context_canon_len(pairs, n);
    uint8_t *out = malloc(cap), *out2 = malloc(cap);
    enum status st = context_canonicalize(out, cap, &len, pairs, n);
    enum status st2 = context_canonicalize(out2, cap, &len2, rev, n);

    if (st != st2 || (st != ST_OK && st != ST_INVALID))
        abort();
    if (st == ST_OK) {
        if (n > CONTEXT_MAX_PAIRS || len != cap || len2 != len || memcmp(out, out2, len) != 0)
            abort();
        check_canonical(out, len, n);
    } else if (len != 0) {
        abort();
    }
    free(out);
    free(out2);
    return 0;
}
