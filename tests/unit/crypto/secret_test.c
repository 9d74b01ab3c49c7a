/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/crypto/secret_test.c -- guarded buffers, the per-thread scratch area and start-up. */
#include <pthread.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <sodium.h>

#include "crypto/init.h"
#include "crypto/secret.h"
#include "testutil.h"

static void
test_init_disables_core_dumps(void **state)
{
    struct rlimit rl;

    (void)state;
    assert_int_equal(crypto_init(), ST_OK);
    assert_int_equal(crypto_init(), ST_OK); /* idempotent */
    assert_int_equal(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 0);
    assert_int_equal(getrlimit(RLIMIT_CORE, &rl), 0);
    assert_int_equal(rl.rlim_cur, 0);
}

static void
test_secret_buffers(void **state)
{
    static const size_t sizes[] = {0, 1, 15, 16, 17, 32, 64, 208, 4096};

    (void)state;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        struct secret *s = secret_new(sizes[i]);
        assert_int_equal(secret_len(s), sizes[i]);
        assert_ptr_equal(secret_rw(s), secret_ro(s));
        assert_int_equal((uintptr_t)secret_ro(s) % 16, 0); /* can hold an HMAC state */
        assert_true(sizes[i] == 0 || sodium_is_zero(secret_ro(s), sizes[i]));
        memset(secret_rw(s), 0xA5, sizes[i]);
        secret_free(s);
    }
    secret_free(NULL);
}

static void *
scratch_of_thread(void *arg)
{
    uint8_t *p = secret_scratch();

    (void)arg;
    memset(p, 0x11, SECRET_SCRATCH_BYTES); /* whole area is usable */
    return secret_scratch() == p ? p : NULL;
}

static void
test_scratch_is_per_thread(void **state)
{
    uint8_t *mine = secret_scratch();
    pthread_t th;
    void *theirs = NULL;

    (void)state;
    assert_non_null(mine);
    assert_ptr_equal(secret_scratch(), mine);
    assert_true(sodium_is_zero(mine, SECRET_SCRATCH_BYTES));
    assert_int_equal(pthread_create(&th, NULL, scratch_of_thread, NULL), 0);
    assert_int_equal(pthread_join(th, &theirs), 0);
    assert_non_null(theirs);
    assert_ptr_not_equal(theirs, mine);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_disables_core_dumps),
        cmocka_unit_test(test_secret_buffers),
        cmocka_unit_test(test_scratch_is_per_thread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
