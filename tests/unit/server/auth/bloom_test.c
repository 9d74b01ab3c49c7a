/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/server/auth/bloom_test.c -- the key-id Bloom filter: no false negatives, the measured
 * false-positive rate, sizing, revocation by rebuild, adds racing a rebuild, readers during
 * swaps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>

#include <cmocka.h>
#include <sodium.h>

#include "server/auth/bloom.h"

#define ID_CHARS 16

/* A random base62 id. xorshift64* seeded once from libsodium: getrandom(2) per character made
 * this test spend seconds in the kernel. Statistical quality is all the test needs. */
static void
random_id(char id[static ID_CHARS + 1])
{
    static const char b62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    static _Thread_local uint64_t x;

    while (x == 0)
        randombytes_buf(&x, sizeof x);
    for (int i = 0; i < ID_CHARS; i++) {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        id[i] = b62[((x * 0x2545F4914F6CDD1DULL) >> 32) % 62];
    }
    id[ID_CHARS] = '\0';
}

static void
test_bad_arguments(void **state)
{
    struct bloom *b = (struct bloom *)1;

    (void)state;
    assert_int_equal(bloom_new(&b, 0, 0.01), ST_INVALID);
    assert_null(b);
    assert_int_equal(bloom_new(&b, 10, 0), ST_INVALID);
    assert_int_equal(bloom_new(&b, 10, 1), ST_INVALID);
    assert_int_equal(bloom_new(&b, 10, -0.5), ST_INVALID);
    assert_int_equal(bloom_new(&b, 10, 0.0 / 0.0), ST_INVALID);
    bloom_free(NULL);
}

static void
test_sizing(void **state)
{
    struct bloom *b = NULL;
    struct bloom_stats s;

    (void)state;
    assert_int_equal(bloom_new(&b, 1000, 0.01), ST_OK);
    bloom_get_stats(b, &s);
    assert_int_equal(s.capacity, 1000);
    assert_int_equal(s.count, 0);
    assert_int_equal(s.bits, 9600); /* ceil(9585.06) rounded up to 64 */
    assert_int_equal(s.hashes, 7);
    bloom_free(b);
    assert_int_equal(bloom_new(&b, 1, 0.5), ST_OK);
    bloom_get_stats(b, &s);
    assert_int_equal(s.bits, 64); /* the floor */
    assert_true(s.hashes >= 1 && s.hashes <= 32);
    bloom_free(b);
}

static void
test_no_false_negatives_and_fp_rate(void **state)
{
    enum { N = 10000, PROBES = 100000 };
    char(*ids)[ID_CHARS + 1] = malloc(N * sizeof *ids), probe[ID_CHARS + 1];
    struct bloom *b = NULL;
    struct bloom_stats s;
    int fp = 0;

    (void)state;
    assert_non_null(ids);
    assert_int_equal(bloom_new(&b, N, 0.01), ST_OK);
    for (int i = 0; i < N; i++) {
        random_id(ids[i]);
        bloom_add(b, ids[i], ID_CHARS);
    }
    for (int i = 0; i < N; i++)
        assert_true(bloom_maybe_contains(b, ids[i], ID_CHARS));
    for (int i = 0; i < PROBES; i++) {
        random_id(probe);
        fp += bloom_maybe_contains(b, probe, ID_CHARS);
    }
    print_message("false positives: %d of %d (target 1%%)\n", fp, PROBES);
    assert_true(fp < PROBES / 50); /* well under 2% */
    bloom_get_stats(b, &s);
    assert_int_equal(s.count, N);
    /* Length matters: a prefix is another id. */
    assert_true(bloom_maybe_contains(b, ids[0], ID_CHARS));
    bloom_free(b);
    free(ids);
}

static void
test_rebuild_revokes(void **state)
{
    const char *live[] = {"AAAAAAAAAAAAAAAA", "CCCCCCCCCCCCCCCC"};
    struct bloom *b = NULL;
    struct bloom_stats s;

    (void)state;
    assert_int_equal(bloom_new(&b, 100, 1e-9), ST_OK);
    bloom_add(b, "AAAAAAAAAAAAAAAA", 16);
    bloom_add(b, "BBBBBBBBBBBBBBBB", 16);
    bloom_add(b, "CCCCCCCCCCCCCCCC", 16);
    assert_true(bloom_maybe_contains(b, "BBBBBBBBBBBBBBBB", 16));
    assert_int_equal(bloom_rebuild(b, live, 2), ST_OK);
    assert_true(bloom_maybe_contains(b, "AAAAAAAAAAAAAAAA", 16));
    assert_true(bloom_maybe_contains(b, "CCCCCCCCCCCCCCCC", 16));
    assert_false(bloom_maybe_contains(b, "BBBBBBBBBBBBBBBB", 16));
    bloom_get_stats(b, &s);
    assert_int_equal(s.count, 2);
    assert_int_equal(s.capacity, 100); /* never shrinks below the current capacity */
    /* Rebuilding with more ids than capacity grows it. */
    {
        enum { M = 1000 };
        char(*ids)[ID_CHARS + 1] = malloc(M * sizeof *ids);
        const char **ptrs = malloc(M * sizeof *ptrs);
        assert_non_null(ids);
        assert_non_null(ptrs);
        for (int i = 0; i < M; i++) {
            random_id(ids[i]);
            ptrs[i] = ids[i];
        }
        assert_int_equal(bloom_rebuild(b, ptrs, M), ST_OK);
        bloom_get_stats(b, &s);
        assert_true(s.capacity >= M);
        for (int i = 0; i < M; i++)
            assert_true(bloom_maybe_contains(b, ids[i], ID_CHARS));
        free(ptrs);
        free(ids);
    }
    bloom_free(b);
}

static void
test_add_during_rebuild(void **state)
{
    struct bloom *b = NULL;

    (void)state;
    assert_int_equal(bloom_new(&b, 100, 1e-9), ST_OK);
    bloom_add(b, "old-revoked-key0", 16);
    assert_int_equal(bloom_rebuild_begin(b, 0), ST_OK);
    assert_int_equal(bloom_rebuild_begin(b, 0), ST_CONFLICT);
    assert_int_equal(bloom_rebuild(b, NULL, 0), ST_CONFLICT);
    /* The live filter answers while the new one is filled. */
    assert_true(bloom_maybe_contains(b, "old-revoked-key0", 16));
    bloom_add(b, "created-meanwhil", 16); /* a key created during the listing */
    bloom_rebuild_add(b, "listed-from-db00", 16);
    assert_false(bloom_maybe_contains(b, "listed-from-db00", 16)); /* not live yet */
    bloom_rebuild_commit(b);
    assert_true(bloom_maybe_contains(b, "created-meanwhil", 16));
    assert_true(bloom_maybe_contains(b, "listed-from-db00", 16));
    assert_false(bloom_maybe_contains(b, "old-revoked-key0", 16));
    /* abort keeps the live filter */
    assert_int_equal(bloom_rebuild_begin(b, 10), ST_OK);
    bloom_rebuild_abort(b);
    bloom_rebuild_abort(b); /* nothing pending: a no-op */
    assert_true(bloom_maybe_contains(b, "listed-from-db00", 16));
    bloom_free(b);
}

static void
test_rekeyed_on_rebuild(void **state)
{
    /* With a tiny filter, some non-member is a false positive; after a rebuild with the same
     * members the hash key changed, so the set of false positives changes too. */
    struct bloom *b = NULL;
    const char *members[] = {"m000000000000000", "m000000000000001", "m000000000000002"};
    char probe[ID_CHARS + 1];
    bool before[2000];
    int changed = 0;

    (void)state;
    assert_int_equal(bloom_new(&b, 3, 0.3), ST_OK);
    for (int i = 0; i < 3; i++)
        bloom_add(b, members[i], 16);
    for (int i = 0; i < 2000; i++) {
        snprintf(probe, sizeof probe, "p%015d", i);
        before[i] = bloom_maybe_contains(b, probe, 16);
    }
    assert_int_equal(bloom_rebuild(b, members, 3), ST_OK);
    for (int i = 0; i < 2000; i++) {
        snprintf(probe, sizeof probe, "p%015d", i);
        changed += before[i] != bloom_maybe_contains(b, probe, 16);
    }
    assert_true(changed > 0);
    bloom_free(b);
}

struct reader {
    struct bloom *b;
    atomic_bool *stop;
    long misses;
    long reads;
};

static const char *const always[] = {"always0000000000", "always1111111111", "always2222222222"};

static void *
read_loop(void *arg)
{
    struct reader *r = arg;

    while (!atomic_load(r->stop)) {
        for (int i = 0; i < 3; i++)
            r->misses += !bloom_maybe_contains(r->b, always[i], 16);
        r->reads++;
    }
    return NULL;
}

static void
test_readers_during_swaps(void **state)
{
    struct bloom *b = NULL;
    struct reader rd[4];
    pthread_t th[4];
    atomic_bool stop = false;
    char id[ID_CHARS + 1];

    (void)state;
    assert_int_equal(bloom_new(&b, 64, 0.001), ST_OK);
    for (int i = 0; i < 3; i++)
        bloom_add(b, always[i], 16);
    for (int i = 0; i < 4; i++) {
        rd[i] = (struct reader){.b = b, .stop = &stop};
        assert_int_equal(pthread_create(&th[i], NULL, read_loop, &rd[i]), 0);
    }
    for (int round = 0; round < 300; round++) {
        random_id(id);
        bloom_add(b, id, ID_CHARS);
        assert_int_equal(bloom_rebuild(b, always, 3), ST_OK);
    }
    atomic_store(&stop, true);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(rd[i].misses, 0);
    }
    bloom_free(b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_sizing),
        cmocka_unit_test(test_no_false_negatives_and_fp_rate),
        cmocka_unit_test(test_rebuild_revokes),
        cmocka_unit_test(test_add_during_rebuild),
        cmocka_unit_test(test_rekeyed_on_rebuild),
        cmocka_unit_test(test_readers_during_swaps),
    };
    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
