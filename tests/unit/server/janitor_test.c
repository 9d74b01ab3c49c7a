/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/server/janitor_test.c -- the periodic duties on a test clock: the janitor runs each
 * duty when due and when kicked; and period-based rotation really happens when a keyring's
 * rotation_period has passed (on a real SQLite store, the clock pinned by the test: the minimum
 * period is an hour, so no integration test can wait for it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "common/clock.h"
#include "crypto/init.h"
#include "crypto/rootkey.h"
#include "crypto/secret.h"
#include "server/janitor.h"
#include "server/keyrings.h"
#include "store/store.h"

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
    janitor_tick(j, 10000);             /* the first tick runs everything */
    assert_int_equal(runs[0], 1);
    assert_int_equal(runs[1], 1);
    janitor_tick(j, 10500);             /* nothing due yet */
    assert_int_equal(runs[0], 1);
    janitor_tick(j, 11000);
    assert_int_equal(runs[0], 2);
    assert_int_equal(runs[1], 1);
    assert_int_equal(last_now[0], 11000);
    janitor_kick(j, "b");               /* due at once, whatever the clock says */
    janitor_tick(j, 11001);
    assert_int_equal(runs[1], 2);
    janitor_tick(j, 11002);             /* a kick runs once */
    assert_int_equal(runs[1], 2);
    janitor_kick(j, "nope");            /* unknown names are ignored */
    janitor_tick(j, 71001);
    assert_int_equal(runs[1], 3);
    janitor_free(j);
}

/* Period-based rotation: due only once rotated_at + rotation_period has passed. */
static void
test_period_rotation_on_a_test_clock(void **state)
{
    char dir[] = "/tmp/dg-janitor-XXXXXX", key[96], url[128], err[256];
    struct rootkey *rk = NULL;
    struct store *st = NULL;
    struct secret *mac = secret_new(32);
    struct keyrings *k = NULL;
    struct keyrings_settings set = {0, 0};
    struct keyring_spec c = {"tenant-p", NULL, -1, 3600, false};
    struct keyring_info info;
    const char *msg = NULL;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(key, sizeof key, "%s/root.key", dir);
    snprintf(url, sizeof url, "sqlite:%s/db", dir);
    randombytes_buf(secret_rw(mac), 32);
    assert_int_equal(rootkey_create(key, err, sizeof err), ST_OK);
    assert_int_equal(rootkey_load(&rk, key, err, sizeof err), ST_OK);
    assert_int_equal(store_open(&st, url, err, sizeof err), ST_OK);
    assert_int_equal(store_meta_set(st, "root_key_id", rootkey_id(rk)), ST_OK);  /* as init */
    assert_int_equal(keyrings_open(&k, st, rk, mac, &set), ST_OK);
    assert_int_equal(keyrings_create(k, &c, &info, &msg, NULL), ST_OK);
    int64_t created = info.created_at;
    keyring_info_free(&info);

    keyrings_maintain(k, created + 3599);    /* one second early: nothing */
    assert_int_equal(keyrings_get(k, "tenant-p", &info), ST_OK);
    assert_int_equal(info.latest_version, 1);
    keyring_info_free(&info);
    keyrings_maintain(k, created + 3600);    /* due */
    assert_int_equal(keyrings_get(k, "tenant-p", &info), ST_OK);
    assert_int_equal(info.latest_version, 2);
    int64_t next = info.next_rotation_at;
    keyring_info_free(&info);
    keyrings_maintain(k, created + 3601);    /* just rotated: not again */
    assert_int_equal(keyrings_get(k, "tenant-p", &info), ST_OK);
    assert_int_equal(info.latest_version, 2);
    assert_true(next > created + 3600);
    keyring_info_free(&info);

    keyrings_close(k);
    store_close(st);
    rootkey_free(rk);
    secret_free(mac);
    char cmd[96];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_due_and_kicked),
        cmocka_unit_test(test_period_rotation_on_a_test_clock),
    };
    if (crypto_init() != ST_OK)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
