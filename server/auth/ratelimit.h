/* SPDX-License-Identifier: Apache-2.0 */
/* server/auth/ratelimit.h -- token buckets per API key (DESIGN.md: "rate and burst per key"), for the
 * 429 rate_limited reply with Retry-After. Memory is bounded: idle buckets are evicted first. */
#ifndef DG_SERVER_AUTH_RATELIMIT_H
#define DG_SERVER_AUTH_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RATELIMIT_KEY_MAX 256 /* longer key ids are cut to this many bytes */
#define RATELIMIT_DEFAULT_KEYS 65536

/* Thread-safe: buckets live in 64 independently locked stripes chosen by a keyed hash of the key
 * id, so requests for different keys rarely contend and nobody can aim keys at one stripe. */
struct ratelimit;

/* A limiter holding at most about max_keys buckets (0 = RATELIMIT_DEFAULT_KEYS). Tables start
 * small and grow on demand up to that bound. Never NULL: OOM aborts. */
struct ratelimit *ratelimit_new(size_t max_keys);
void ratelimit_free(struct ratelimit *rl); /* NULL-safe */

/* Take one token from key_id's bucket (NUL-terminated) at monotonic time now_ns. The bucket
 * holds up to `burst` tokens (values below 1 count as 1) and refills at rate_per_s; a new key
 * starts full. rate_per_s == 0 means unlimited (always true, nothing stored). rate and burst may
 * change between calls (they come from the key's row); a smaller burst caps the saved tokens.
 * Returns true when allowed (*retry_after_s = 0), false when limited, with *retry_after_s the
 * seconds until one token is available (> 0; round up for Retry-After).
 * A negative, infinite or NaN rate or burst breaks the contract and aborts.
 * When the table is full, buckets that have refilled completely are dropped (they are the same
 * as absent); if none has, the least recently used bucket is dropped, which gives that key a
 * fresh burst: size max_keys above the number of keys in concurrent use. */
bool ratelimit_take(struct ratelimit *rl, const char *key_id, double rate_per_s, double burst,
                    int64_t now_ns, double *retry_after_s);

/* Buckets currently held (for tests and metrics). Takes each stripe lock in turn. */
size_t ratelimit_size(struct ratelimit *rl);

#endif
