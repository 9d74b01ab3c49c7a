/* SPDX-License-Identifier: Apache-2.0 */
/* crypto/context.h -- encryption context canonical bytes (permanent format, DESIGN.md):
 * u32be(count), then for each pair in bytewise key order u32be(len) key u32be(len) value.
 * Knows nothing of JSON: callers hand it pairs. */
#ifndef DG_CRYPTO_CONTEXT_H
#define DG_CRYPTO_CONTEXT_H

#include <stddef.h>
#include <stdint.h>

#include "common/status.h"

#define CONTEXT_MAX_PAIRS 32

struct context_pair {
    const char *key;
    size_t key_len;
    const char *val;
    size_t val_len;
};

/* Bytes context_canonicalize will write for these pairs (no validation). */
size_t context_canon_len(const struct context_pair *pairs, size_t n);

/* Validate and canonicalise. Sorts `pairs` in place by key bytes. Returns ST_INVALID when
 * n > CONTEXT_MAX_PAIRS, a key or value holds NUL or invalid UTF-8, or a key repeats;
 * aborts if out_cap < context_canon_len(). *out_len is set on entry. */
NODISCARD enum status context_canonicalize(uint8_t *out, size_t out_cap, size_t *out_len,
                                           struct context_pair *pairs, size_t n);

/* True when s[0..len) is valid UTF-8 without NUL (shared with the JSON layer). */
int context_utf8_valid(const char *s, size_t len);

#endif
