/* SPDX-License-Identifier: Apache-2.0 */
/* crypto/secret.c -- guarded buffers for key material and the per-thread scratch area.
 * Never logs, copies out or frees key bytes without wiping them. */
#include "crypto/secret.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include <sodium.h>

/* The header and the bytes share one sodium_malloc allocation; data starts 16-aligned so the
 * buffer can hold structures such as an HMAC state. */
struct secret {
    size_t len;
    _Alignas(16) uint8_t data[];
};

static void
die(const char *what)
{
    fprintf(stderr, "difyguard: %s\n", what);
    abort();
}

struct secret *
secret_new(size_t len)
{
    /* sodium_malloc needs sodium_init; calling it again is cheap and safe. */
    if (sodium_init() < 0)
        die("sodium_init failed");
    size_t body = (len + 15u) & ~(size_t)15u;
    if (body < len)
        die("secret too large");
    struct secret *s = sodium_malloc(offsetof(struct secret, data) + body);
    if (s == NULL)
        die("out of guarded memory (sodium_malloc)");
    s->len = len;
    sodium_memzero(s->data, body);
    return s;
}

void
secret_free(struct secret *s)
{
    if (s == NULL)
        return;
    sodium_memzero(s->data, s->len);
    sodium_free(s); /* wipes the whole allocation too */
}

uint8_t *
secret_rw(struct secret *s)
{
    return s->data;
}

const uint8_t *
secret_ro(const struct secret *s)
{
    return s->data;
}

size_t
secret_len(const struct secret *s)
{
    return s->len;
}

/* One guarded scratch area per thread: the _Thread_local pointer is the fast path, the pthread
 * key only exists so the area is wiped and freed when the thread exits. */
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static _Thread_local uint8_t *scratch;

static void
scratch_destroy(void *p)
{
    sodium_free(p); /* sodium_free wipes before unmapping */
}

static void
scratch_key_init(void)
{
    if (pthread_key_create(&scratch_key, scratch_destroy) != 0)
        die("pthread_key_create failed");
}

uint8_t *
secret_scratch(void)
{
    if (scratch != NULL)
        return scratch;
    if (sodium_init() < 0)
        die("sodium_init failed");
    if (pthread_once(&scratch_once, scratch_key_init) != 0)
        die("pthread_once failed");
    uint8_t *p = sodium_malloc(SECRET_SCRATCH_BYTES);
    if (p == NULL)
        die("out of guarded memory (sodium_malloc)");
    sodium_memzero(p, SECRET_SCRATCH_BYTES);
    if (pthread_setspecific(scratch_key, p) != 0)
        die("pthread_setspecific failed");
    scratch = p;
    return scratch;
}
