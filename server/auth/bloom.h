/* SPDX-License-Identifier: Apache-2.0 */
/* server/auth/bloom.h -- a Bloom filter of live API key ids, so that unknown keys are refused without a
 * database lookup. An optimisation, never an access check: "maybe" still goes to the store.
 * Hashing is keyed (SipHash, random key per filter) so nobody can craft ids that collide. */
#ifndef DG_SERVER_AUTH_BLOOM_H
#define DG_SERVER_AUTH_BLOOM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/status.h"

#define BLOOM_MAX_BITS ((uint64_t)1 << 32) /* 512 MiB: sizing is capped here */

/* Thread-safe: maybe_contains takes a read lock (writer-preferring rwlock); add and commit take
 * the write lock briefly. A rebuild fills a new filter beside the live one under its own mutex
 * (readers are not blocked) and swaps it in at commit, so readers never see a half-built filter. */
struct bloom;

/* A filter sized for `capacity` ids at false-positive rate fp_rate (0 < fp_rate < 1), capacity
 * >= 1. ST_INVALID for bad arguments. */
NODISCARD enum status bloom_new(struct bloom **out, size_t capacity, double fp_rate);
void bloom_free(struct bloom *b); /* NULL-safe; no other thread may still use b */

/* Add an id (len bytes). Also goes into a pending rebuild, so a key created while a rebuild is
 * listing the store is not lost. */
void bloom_add(struct bloom *b, const char *id, size_t len);

/* false: id was certainly never added (since the last rebuild). true: maybe. */
bool bloom_maybe_contains(struct bloom *b, const char *id, size_t len);

/* Revocation drops ids by rebuilding from the live list:
 *   bloom_rebuild_begin(b, n)    -- a new, empty filter (new hash key) for n ids (0: the current
 *                                   capacity) is set up beside the live one; ST_CONFLICT if
 *                                   another rebuild is pending
 *   bloom_rebuild_add(b, id, len) for every live id (listed from the store after begin)
 *   bloom_rebuild_commit(b)      -- the new filter replaces the live one atomically
 * or bloom_rebuild_abort(b) to drop it. bloom_add() between begin and commit goes into both. */
NODISCARD enum status bloom_rebuild_begin(struct bloom *b, size_t capacity);
void bloom_rebuild_add(struct bloom *b, const char *id, size_t len);
void bloom_rebuild_commit(struct bloom *b);
void bloom_rebuild_abort(struct bloom *b);

/* All of the above for an in-memory list of n ids (NUL-terminated, each at most 255 bytes),
 * sized for max(n + 25%, the current capacity). ST_CONFLICT if a rebuild is pending. */
NODISCARD enum status bloom_rebuild(struct bloom *b, const char *const *ids, size_t n);

/* The live filter's shape: ids added, capacity, bits and hash count (metrics, tests; rebuild
 * with a bigger capacity once count exceeds capacity). */
struct bloom_stats {
    size_t count;
    size_t capacity;
    uint64_t bits;
    unsigned hashes;
};
void bloom_get_stats(struct bloom *b, struct bloom_stats *out);

#endif
