/* SPDX-License-Identifier: Apache-2.0 */
/* server/auth/ratelimit.c -- token buckets in a striped, open-addressed table keyed by a SipHash of the
 * key id. Owns only counters and hashes: no key text is stored, nothing is logged. */
#include "server/auth/ratelimit.h"

#include <assert.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/xmem.h"

#define RL_STRIPES 64   /* power of two */
#define RL_MIN_SLOTS 16 /* a stripe's first table; power of two */
#define RL_NS_PER_S 1e9

/* A bucket. h[0] | h[1] == 0 marks an empty slot (h[1] always has its low bit set). */
struct rl_bucket {
    uint64_t h[2];
    double tokens;
    int64_t last_ns;
    double rate; /* as of the last take: lets eviction tell when it refilled */
    double burst;
};

/* Each stripe on its own cache lines so that neighbouring locks do not false-share. */
struct rl_stripe {
    _Alignas(64) pthread_mutex_t mu;
    struct rl_bucket *slots;
    size_t n_slots; /* power of two; at most max_slots */
    size_t count;   /* kept <= n_slots / 2 */
};

struct ratelimit {
    uint8_t key[crypto_shorthash_siphashx24_KEYBYTES];
    size_t max_slots; /* per stripe: holds max_slots / 2 buckets */
    struct rl_stripe stripes[RL_STRIPES];
};

static void
die(const char *what)
{
    fprintf(stderr, "difyguard: ratelimit: %s\n", what);
    abort();
}

struct ratelimit *
ratelimit_new(size_t max_keys)
{
    struct ratelimit *rl = NULL;
    size_t per_stripe;

    if (sodium_init() < 0)
        die("sodium_init failed");
    if (max_keys == 0)
        max_keys = RATELIMIT_DEFAULT_KEYS;
    if (max_keys > ((size_t)1 << 30))
        die("max_keys too large");
    rl = aligned_alloc(_Alignof(struct ratelimit), sizeof *rl);
    if (rl == NULL)
        die("out of memory");
    memset(rl, 0, sizeof *rl);
    randombytes_buf(rl->key, sizeof rl->key);
    per_stripe = (max_keys + RL_STRIPES - 1) / RL_STRIPES;
    rl->max_slots = RL_MIN_SLOTS;
    while (rl->max_slots < 2 * per_stripe)
        rl->max_slots *= 2;
    for (size_t i = 0; i < RL_STRIPES; i++) {
        if (pthread_mutex_init(&rl->stripes[i].mu, NULL) != 0)
            die("pthread_mutex_init failed");
        rl->stripes[i].n_slots = RL_MIN_SLOTS;
        rl->stripes[i].slots = xcalloc(RL_MIN_SLOTS, sizeof(struct rl_bucket));
    }
    return rl;
}

void
ratelimit_free(struct ratelimit *rl)
{
    if (rl == NULL)
        return;
    for (size_t i = 0; i < RL_STRIPES; i++) {
        pthread_mutex_destroy(&rl->stripes[i].mu);
        free(rl->stripes[i].slots);
    }
    sodium_memzero(rl->key, sizeof rl->key);
    free(rl);
}

static bool
slot_empty(const struct rl_bucket *b)
{
    return (b->h[0] | b->h[1]) == 0;
}

/* The slot holding h, or the empty slot where it would go (the table is never full). */
static struct rl_bucket *
probe(struct rl_bucket *slots, size_t n_slots, const uint64_t h[2])
{
    size_t mask = n_slots - 1;

    for (size_t i = h[1] & mask;; i = (i + 1) & mask) {
        struct rl_bucket *b = &slots[i];
        if (slot_empty(b) || (b->h[0] == h[0] && b->h[1] == h[1]))
            return b;
    }
}

/* Tokens the bucket would hold at now_ns (never moves time backwards: threads may pass their
 * clock readings to us out of order). */
static double
tokens_at(const struct rl_bucket *b, int64_t now_ns)
{
    double t = b->tokens;

    if (now_ns > b->last_ns)
        t += (double)(now_ns - b->last_ns) / RL_NS_PER_S * b->rate;
    return t < b->burst ? t : b->burst;
}

/* Rehash the stripe into n_slots slots, dropping buckets that have refilled completely and, if
 * `drop_lru` and none could be dropped, the least recently used one. */
static void
rehash(struct rl_stripe *s, size_t n_slots, int64_t now_ns, bool drop_lru)
{
    struct rl_bucket *old = s->slots, *lru = NULL;
    size_t old_n = s->n_slots, kept = 0;
    bool dropped = false;

    for (size_t i = 0; i < old_n; i++) {
        struct rl_bucket *b = &old[i];
        if (slot_empty(b))
            continue;
        if (tokens_at(b, now_ns) >= b->burst) {
            memset(b, 0, sizeof *b);
            dropped = true;
        } else if (lru == NULL || b->last_ns < lru->last_ns) {
            lru = b;
        }
    }
    if (drop_lru && !dropped && lru != NULL)
        memset(lru, 0, sizeof *lru);
    s->slots = xcalloc(n_slots, sizeof *s->slots);
    s->n_slots = n_slots;
    for (size_t i = 0; i < old_n; i++) {
        if (slot_empty(&old[i]))
            continue;
        *probe(s->slots, n_slots, old[i].h) = old[i];
        kept++;
    }
    s->count = kept;
    free(old);
}

/* Make room for one more bucket: grow while below max_slots, else evict. */
static void
make_room(struct rl_stripe *s, size_t max_slots, int64_t now_ns)
{
    if (s->count + 1 <= s->n_slots / 2)
        return;
    if (s->n_slots < max_slots)
        rehash(s, s->n_slots * 2, now_ns, false);
    else
        rehash(s, s->n_slots, now_ns, true);
}

bool
ratelimit_take(struct ratelimit *rl, const char *key_id, double rate_per_s, double burst,
               int64_t now_ns, double *retry_after_s)
{
    uint64_t h[2];
    struct rl_stripe *s;
    struct rl_bucket *b;
    bool ok = true;

    *retry_after_s = 0;
    if (!(rate_per_s >= 0 && isfinite(rate_per_s) && burst >= 0 && isfinite(burst)))
        die("rate and burst must be finite and >= 0");
    if (rate_per_s == 0)
        goto out;
    burst = burst < 1 ? 1 : burst;
    crypto_shorthash_siphashx24((unsigned char *)h, (const unsigned char *)key_id,
                                strnlen(key_id, RATELIMIT_KEY_MAX), rl->key);
    h[1] |= 1;
    s = &rl->stripes[h[0] & (RL_STRIPES - 1)];
    pthread_mutex_lock(&s->mu);
    b = probe(s->slots, s->n_slots, h);
    if (slot_empty(b)) {
        make_room(s, rl->max_slots, now_ns);
        b = probe(s->slots, s->n_slots, h);
        *b = (struct rl_bucket){.h = {h[0], h[1]}, .tokens = burst, .last_ns = now_ns};
        s->count++;
    }
    b->rate = rate_per_s;
    b->burst = burst;
    b->tokens = tokens_at(b, now_ns);
    if (now_ns > b->last_ns)
        b->last_ns = now_ns;
    if (b->tokens >= 1) {
        b->tokens -= 1;
    } else {
        ok = false;
        *retry_after_s = (1 - b->tokens) / rate_per_s;
    }
    pthread_mutex_unlock(&s->mu);
out:
    return ok;
}

size_t
ratelimit_size(struct ratelimit *rl)
{
    size_t n = 0;

    for (size_t i = 0; i < RL_STRIPES; i++) {
        pthread_mutex_lock(&rl->stripes[i].mu);
        n += rl->stripes[i].count;
        pthread_mutex_unlock(&rl->stripes[i].mu);
    }
    return n;
}
