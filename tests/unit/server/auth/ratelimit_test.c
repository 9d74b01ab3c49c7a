/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/server/auth/ratelimit_test.c -- token buckets: burst, refill, Retry-After, unlimited,
 * changed limits, clocks out of order, bounded memory with eviction, and exactness under
 * threads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "server/auth/ratelimit.h"

#define S 1000000000LL /* one second in ns */

static void
test_burst_then_refill(void **state)
{
    struct ratelimit *rl = ratelimit_new(0);
    double retry = -1;

    (void)state;
    for (int i = 0; i < 3; i++) {
        assert_true(ratelimit_take(rl, "key-a", 1.0, 3.0, 0, &retry));
        assert_true(retry == 0);
    }
    assert_false(ratelimit_take(rl, "key-a", 1.0, 3.0, 0, &retry));
    assert_true(retry > 0.999 && retry <= 1.0);
    assert_false(ratelimit_take(rl, "key-a", 1.0, 3.0, S / 2, &retry));
    assert_true(retry > 0.49 && retry < 0.51);
    assert_true(ratelimit_take(rl, "key-a", 1.0, 3.0, S, &retry));
    assert_false(ratelimit_take(rl, "key-a", 1.0, 3.0, S, &retry));
    /* Long idle: refills to burst, not beyond. */
    for (int i = 0; i < 3; i++)
        assert_true(ratelimit_take(rl, "key-a", 1.0, 3.0, 1000 * S, &retry));
    assert_false(ratelimit_take(rl, "key-a", 1.0, 3.0, 1000 * S, &retry));
    ratelimit_free(rl);
}

static void
test_keys_are_independent(void **state)
{
    struct ratelimit *rl = ratelimit_new(0);
    double retry;

    (void)state;
    assert_true(ratelimit_take(rl, "key-a", 0.5, 1.0, 0, &retry));
    assert_false(ratelimit_take(rl, "key-a", 0.5, 1.0, 0, &retry));
    assert_true(retry > 1.99 && retry <= 2.0);
    assert_true(ratelimit_take(rl, "key-b", 0.5, 1.0, 0, &retry));
    assert_true(ratelimit_take(rl, "key-a ", 0.5, 1.0, 0, &retry));
    assert_int_equal(ratelimit_size(rl), 3);
    ratelimit_free(rl);
}

static void
test_unlimited_and_small_burst(void **state)
{
    struct ratelimit *rl = ratelimit_new(0);
    double retry;

    (void)state;
    for (int i = 0; i < 10000; i++)
        assert_true(ratelimit_take(rl, "free", 0, 0, 0, &retry));
    assert_int_equal(ratelimit_size(rl), 0); /* unlimited keys take no memory */
    /* A burst below one still lets one request through per token. */
    assert_true(ratelimit_take(rl, "tiny", 10, 0.2, 0, &retry));
    assert_false(ratelimit_take(rl, "tiny", 10, 0.2, 0, &retry));
    assert_true(retry > 0.09 && retry <= 0.1);
    assert_true(ratelimit_take(rl, "tiny", 10, 0.2, S / 10, &retry));
    ratelimit_free(rl);
    ratelimit_free(NULL);
}

static void
test_limits_change(void **state)
{
    struct ratelimit *rl = ratelimit_new(0);
    double retry;

    (void)state;
    assert_true(ratelimit_take(rl, "k", 1, 100, 0, &retry)); /* 99 left */
    /* The key's burst was lowered to 2: saved tokens are capped. */
    assert_true(ratelimit_take(rl, "k", 1, 2, 0, &retry));
    assert_true(ratelimit_take(rl, "k", 1, 2, 0, &retry));
    assert_false(ratelimit_take(rl, "k", 1, 2, 0, &retry));
    /* A higher rate refills faster from now on. */
    assert_true(ratelimit_take(rl, "k", 100, 2, S / 100, &retry));
    ratelimit_free(rl);
}

static void
test_clock_out_of_order(void **state)
{
    struct ratelimit *rl = ratelimit_new(0);
    double retry;

    (void)state;
    assert_true(ratelimit_take(rl, "k", 1, 1, 10 * S, &retry));
    /* An older reading from another thread: no refill, no time travel. */
    assert_false(ratelimit_take(rl, "k", 1, 1, 5 * S, &retry));
    assert_true(retry > 0.99);
    assert_false(ratelimit_take(rl, "k", 1, 1, 10 * S + S / 2, &retry));
    assert_true(ratelimit_take(rl, "k", 1, 1, 11 * S, &retry));
    ratelimit_free(rl);
}

static void
test_bounded_memory(void **state)
{
    struct ratelimit *rl = ratelimit_new(4096);
    char key[32];
    double retry;
    int64_t t = 0;

    (void)state;
    /* 50000 busy keys (none refills within the run): the table stays bounded by evicting the
     * least recently used. */
    for (int i = 0; i < 50000; i++) {
        snprintf(key, sizeof key, "busy-%d", i);
        assert_true(ratelimit_take(rl, key, 1e-6, 1, t += 1000, &retry));
        if (i % 1000 == 0)
            assert_true(ratelimit_size(rl) <= 4096);
    }
    assert_true(ratelimit_size(rl) <= 4096);
    /* The most recent key kept its state: it is still empty. */
    assert_false(ratelimit_take(rl, key, 1e-6, 1, t, &retry));
    /* Idle keys (refilled completely) are dropped first and cost nothing. */
    for (int i = 0; i < 50000; i++) {
        snprintf(key, sizeof key, "idle-%d", i);
        t += S;
        assert_true(ratelimit_take(rl, key, 10, 10, t, &retry));
    }
    assert_true(ratelimit_size(rl) <= 4096);
    ratelimit_free(rl);
}

struct worker {
    struct ratelimit *rl;
    int id;
    int allowed_shared;
    int allowed_own;
};

static void *
work(void *arg)
{
    struct worker *w = arg;
    char own[32];
    double retry;

    snprintf(own, sizeof own, "own-%d", w->id);
    for (int i = 0; i < 20000; i++) {
        /* rate 1e-9/s: no refill during the test, so exactly `burst` pass in total */
        if (ratelimit_take(w->rl, "shared", 1e-9, 1000, i, &retry))
            w->allowed_shared++;
        if (ratelimit_take(w->rl, own, 1e-9, 50, i, &retry))
            w->allowed_own++;
    }
    return NULL;
}

static void
test_threads_exact(void **state)
{
    struct ratelimit *rl = ratelimit_new(0);
    struct worker w[8];
    pthread_t th[8];
    int shared = 0;

    (void)state;
    for (int i = 0; i < 8; i++) {
        w[i] = (struct worker){.rl = rl, .id = i};
        assert_int_equal(pthread_create(&th[i], NULL, work, &w[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        shared += w[i].allowed_shared;
        assert_int_equal(w[i].allowed_own, 50);
    }
    assert_int_equal(shared, 1000);
    ratelimit_free(rl);
}

static void
test_bad_rate_aborts(void **state)
{
    const double bad[][2] = {{-1, 1}, {1, -1}, {0.0 / 0.0, 1}, {1, 1.0 / 0.0}};

    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        pid_t pid = fork();
        int ws = 0;
        assert_true(pid >= 0);
        if (pid == 0) {
            struct ratelimit *rl = ratelimit_new(0);
            double retry;
            close(2); /* the abort message is expected */
            (void)ratelimit_take(rl, "k", bad[i][0], bad[i][1], 0, &retry);
            _exit(0);
        }
        assert_int_equal(waitpid(pid, &ws, 0), pid);
        assert_true(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGABRT);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_refill),
        cmocka_unit_test(test_keys_are_independent),
        cmocka_unit_test(test_unlimited_and_small_burst),
        cmocka_unit_test(test_limits_change),
        cmocka_unit_test(test_clock_out_of_order),
        cmocka_unit_test(test_bounded_memory),
        cmocka_unit_test(test_threads_exact),
        cmocka_unit_test(test_bad_rate_aborts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
