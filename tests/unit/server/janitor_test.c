/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/server/janitor_test.c -- the periodic duties on a test clock: the janitor runs each
 * duty when due and when kicked, with the time it was given (keyrings_test.c drives the rotation
 * duty itself at chosen times). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "crypto/init.h"
#include "server/janitor.h"

static int runs[2];
static int64_t last_now[2];

static void
count0(void *arg, int64_t now_ms)
{
    (void)arg;
    runs[0]++;
    last_now[0] = now_ms;
}

static void
count1(void *arg, int64_t now_ms)
{
    (void)arg;
    runs[1]++;
    last_now[1] = now_ms;
}

static void
test_due_and_kicked(void **state)
{
    const struct duty d[] = {{"a", 1000, count0, NULL}, {"b", 60000, count1, NULL}};
    struct janitor *j = janitor_new(d, 2);

    (void)state;
    memset(runs, 0, sizeof runs);
    janitor_tick(j, 10000); /* the first tick runs everything */
    assert_int_equal(runs[0], 1);
    assert_int_equal(runs[1], 1);
    janitor_tick(j, 10500); /* nothing due yet */
    assert_int_equal(runs[0], 1);
    janitor_tick(j, 11000);
    assert_int_equal(runs[0], 2);
    assert_int_equal(runs[1], 1);
    assert_int_equal(last_now[0], 11000);
    janitor_kick(j, "b"); /* due at once, whatever the clock says */
    janitor_tick(j, 11001);
    assert_int_equal(runs[1], 2);
    janitor_tick(j, 11002); /* a kick runs once */
    assert_int_equal(runs[1], 2);
    janitor_kick(j, "nope"); /* unknown names are ignored */
    janitor_tick(j, 71001);
    assert_int_equal(runs[1], 3);
    janitor_free(j);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_due_and_kicked),
    };
    if (crypto_init() != ST_OK)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
