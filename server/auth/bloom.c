/* SPDX-License-Identifier: Apache-2.0 */
/* server/auth/bloom.c -- keyed Bloom filter of live key ids with a rebuild-and-swap for revocation.
 * Stores bits only, never ids; its hash key protects against crafted collisions, nothing else. */
#include "server/auth/bloom.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/xmem.h"

#define BLOOM_MIN_BITS 64
#define BLOOM_MAX_HASHES 32
#define BLOOM_ID_MAX 256

/* One immutable-shape filter: bits, hash count and its own SipHash key. */
struct bloom_filter {
    uint8_t key[crypto_shorthash_siphashx24_KEYBYTES];
    uint64_t *words;
    uint64_t bits;
    unsigned hashes;
    size_t capacity;
    size_t count;
};

/* Locks: `lock` guards the live filter (readers share it); `pending_mu` guards the filter being
 * rebuilt, so filling it never blocks readers. Order: pending_mu before lock. */
struct bloom {
    pthread_rwlock_t lock;
    pthread_mutex_t pending_mu;
    double fp_rate;
    struct bloom_filter *live;    /* under lock */
    struct bloom_filter *pending; /* under pending_mu; between rebuild_begin and commit/abort */
};

static void
die(const char *what)
{
    fprintf(stderr, "difyguard: bloom: %s\n", what);
    abort();
}

/* m = -n ln p / (ln 2)^2 bits and k = (m / n) ln 2 hashes, the textbook optimum. */
static struct bloom_filter *
filter_new(size_t capacity, double fp_rate)
{
    struct bloom_filter *f = xcalloc(1, sizeof *f);
    double ln2 = log(2.0);
    double m = ceil(-(double)capacity * log(fp_rate) / (ln2 * ln2));
    double k;

    if (m > (double)BLOOM_MAX_BITS)
        m = (double)BLOOM_MAX_BITS;
    f->bits = ((uint64_t)m + 63) / 64 * 64;
    if (f->bits < BLOOM_MIN_BITS)
        f->bits = BLOOM_MIN_BITS;
    k = round((double)f->bits / (double)capacity * ln2);
    f->hashes = k < 1 ? 1 : k > BLOOM_MAX_HASHES ? BLOOM_MAX_HASHES : (unsigned)k;
    f->capacity = capacity;
    f->words = xcalloc((size_t)(f->bits / 64), sizeof *f->words);
    randombytes_buf(f->key, sizeof f->key);
    return f;
}

static void
filter_free(struct bloom_filter *f)
{
    if (f == NULL)
        return;
    sodium_memzero(f->key, sizeof f->key);
    free(f->words);
    free(f);
}

/* Kirsch-Mitzenmacher: bit i is h0 + i * h1 (mod m) from one 128-bit keyed hash; h1 is odd. */
static void
filter_hash(const struct bloom_filter *f, const char *id, size_t len, uint64_t h[2])
{
    crypto_shorthash_siphashx24((unsigned char *)h, (const unsigned char *)id, len, f->key);
    h[0] %= f->bits;
    h[1] = (h[1] % f->bits) | 1;
}

static void
filter_add(struct bloom_filter *f, const char *id, size_t len)
{
    uint64_t h[2], bit;

    filter_hash(f, id, len, h);
    for (unsigned i = 0; i < f->hashes; i++) {
        bit = (h[0] + (uint64_t)i * h[1]) % f->bits;
        f->words[bit / 64] |= (uint64_t)1 << (bit % 64);
    }
    f->count++;
}

static bool
filter_has(const struct bloom_filter *f, const char *id, size_t len)
{
    uint64_t h[2], bit;

    filter_hash(f, id, len, h);
    for (unsigned i = 0; i < f->hashes; i++) {
        bit = (h[0] + (uint64_t)i * h[1]) % f->bits;
        if (!(f->words[bit / 64] & ((uint64_t)1 << (bit % 64))))
            return false;
    }
    return true;
}

enum status
bloom_new(struct bloom **out, size_t capacity, double fp_rate)
{
    pthread_rwlockattr_t attr;
    struct bloom *b = NULL;
    enum status st = ST_INVALID;

    *out = NULL;
    if (capacity == 0 || !(fp_rate > 0 && fp_rate < 1))
        goto out;
    if (sodium_init() < 0)
        die("sodium_init failed");
    b = xcalloc(1, sizeof *b);
    /* Writer-preferring: a stream of readers must not starve a revocation. */
    if (pthread_rwlockattr_init(&attr) != 0 ||
        pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP) != 0 ||
        pthread_rwlock_init(&b->lock, &attr) != 0 || pthread_mutex_init(&b->pending_mu, NULL) != 0)
        die("lock init failed");
    pthread_rwlockattr_destroy(&attr);
    b->fp_rate = fp_rate;
    b->live = filter_new(capacity, fp_rate);
    *out = b;
    st = ST_OK;
out:
    return st;
}

void
bloom_free(struct bloom *b)
{
    if (b == NULL)
        return;
    filter_free(b->pending);
    filter_free(b->live);
    pthread_mutex_destroy(&b->pending_mu);
    pthread_rwlock_destroy(&b->lock);
    free(b);
}

/* Both filters under both locks, so a commit cannot fall between the two adds and lose the id. */
void
bloom_add(struct bloom *b, const char *id, size_t len)
{
    pthread_mutex_lock(&b->pending_mu);
    pthread_rwlock_wrlock(&b->lock);
    filter_add(b->live, id, len);
    if (b->pending != NULL)
        filter_add(b->pending, id, len);
    pthread_rwlock_unlock(&b->lock);
    pthread_mutex_unlock(&b->pending_mu);
}

bool
bloom_maybe_contains(struct bloom *b, const char *id, size_t len)
{
    bool has;

    pthread_rwlock_rdlock(&b->lock);
    has = filter_has(b->live, id, len);
    pthread_rwlock_unlock(&b->lock);
    return has;
}

enum status
bloom_rebuild_begin(struct bloom *b, size_t capacity)
{
    struct bloom_filter *f = NULL;
    enum status st = ST_CONFLICT;

    if (capacity == 0) {
        pthread_rwlock_rdlock(&b->lock);
        capacity = b->live->capacity;
        pthread_rwlock_unlock(&b->lock);
    }
    f = filter_new(capacity, b->fp_rate); /* outside the locks: a big one takes a while */
    pthread_mutex_lock(&b->pending_mu);
    if (b->pending == NULL) {
        b->pending = f;
        f = NULL;
        st = ST_OK;
    }
    pthread_mutex_unlock(&b->pending_mu);
    filter_free(f);
    return st;
}

void
bloom_rebuild_add(struct bloom *b, const char *id, size_t len)
{
    pthread_mutex_lock(&b->pending_mu);
    if (b->pending == NULL)
        die("bloom_rebuild_add without bloom_rebuild_begin");
    filter_add(b->pending, id, len);
    pthread_mutex_unlock(&b->pending_mu);
}

void
bloom_rebuild_commit(struct bloom *b)
{
    struct bloom_filter *old;

    pthread_mutex_lock(&b->pending_mu);
    if (b->pending == NULL)
        die("bloom_rebuild_commit without bloom_rebuild_begin");
    pthread_rwlock_wrlock(&b->lock);
    old = b->live;
    b->live = b->pending;
    pthread_rwlock_unlock(&b->lock);
    b->pending = NULL;
    pthread_mutex_unlock(&b->pending_mu);
    filter_free(old);
}

void
bloom_rebuild_abort(struct bloom *b)
{
    struct bloom_filter *old;

    pthread_mutex_lock(&b->pending_mu);
    old = b->pending;
    b->pending = NULL;
    pthread_mutex_unlock(&b->pending_mu);
    filter_free(old);
}

enum status
bloom_rebuild(struct bloom *b, const char *const *ids, size_t n)
{
    struct bloom_stats now;
    size_t want = n + n / 4 + 1; /* headroom for keys created before the next rebuild */
    enum status st;

    bloom_get_stats(b, &now);
    if ((st = bloom_rebuild_begin(b, want > now.capacity ? want : now.capacity)) != ST_OK)
        goto out;
    for (size_t i = 0; i < n; i++)
        bloom_rebuild_add(b, ids[i], strnlen(ids[i], BLOOM_ID_MAX));
    bloom_rebuild_commit(b);
out:
    return st;
}

void
bloom_get_stats(struct bloom *b, struct bloom_stats *out)
{
    pthread_rwlock_rdlock(&b->lock);
    out->count = b->live->count;
    out->capacity = b->live->capacity;
    out->bits = b->live->bits;
    out->hashes = b->live->hashes;
    pthread_rwlock_unlock(&b->lock);
}
