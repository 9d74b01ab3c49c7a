/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/server/keyrings_test.c -- the keyring manager on a real SQLite store with a clock the
 * test moves (krm_set_clock): rotation by rotation_period is due exactly when the period has
 * passed since the last rotation, happens in krm_maintain, and is audited (keyring.rotate, method
 * SYSTEM, route janitor, the new version) in a trail that verifies. Production never sets the
 * clock; the smallest period it accepts is an hour, so the integration tests cannot wait for it. */
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

#include "common/xmem.h"
#include "crypto/rootkey.h"
#include "crypto/secret.h"
#include "server/audit.h"
#include "server/auditfmt.h"
#include "server/keyrings.h"
#include "server/sbuf.h"
#include "server/store/store.h"

#define T0 INT64_C(1795897260)          /* 2026-11-28T20:21:00Z */
#define HOUR 3600

static int64_t fake_now;

static int64_t
fake_clock(void)
{
    return fake_now;
}

struct fixture {
    char dir[64], db[96], url[112], key[96];
    struct rootkey *rk;
    struct store *st;
    struct secret *mac;
    struct audit *audit;
    struct krm *k;
};

static int
setup(void **state)
{
    struct fixture *f = xcalloc(1, sizeof *f);
    struct krm_settings set = {.kek_limit = 0, .reserve_block = 16};
    struct audit_settings as = {.durable = true, .checkpoint_interval = 3600};
    char err[256];

    snprintf(f->dir, sizeof f->dir, "/tmp/dg-keyrings-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->db, sizeof f->db, "%s/db", f->dir);
    snprintf(f->url, sizeof f->url, "sqlite:%s", f->db);
    snprintf(f->key, sizeof f->key, "%s/root.key", f->dir);
    assert_int_equal(rootkey_create(f->key, err, sizeof err), ST_OK);
    assert_int_equal(rootkey_load(&f->rk, f->key, err, sizeof err), ST_OK);
    assert_int_equal(store_open(&f->st, f->url, err, sizeof err), ST_OK);
    assert_int_equal(store_meta_set(f->st, "root_key_id", rootkey_id(f->rk)), ST_OK);
    f->mac = secret_new(32);
    randombytes_buf(secret_rw(f->mac), 32);
    assert_int_equal(audit_open(&f->audit, f->st, f->rk, f->mac, &as, err, sizeof err), ST_OK);
    assert_int_equal(krm_open(&f->k, f->st, f->rk, f->mac, &set), ST_OK);
    fake_now = T0;
    krm_set_clock(f->k, fake_clock);
    krm_set_audit(f->k, f->audit);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[160];

    krm_close(f->k);
    audit_close(f->audit);
    store_close(f->st);
    rootkey_free(f->rk);
    secret_free(f->mac);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void
create(struct krm *k, const char *name, int deterministic, int64_t period)
{
    struct krm_create c = {name, NULL, deterministic, period, false};
    json_t *out = NULL;
    const char *msg = NULL;

    assert_int_equal(krm_create(k, &c, &out, &msg, NULL), ST_OK);
    json_decref(out);
}

static json_int_t
field(struct krm *k, const char *name, const char *key)
{
    json_t *out = NULL;

    assert_int_equal(krm_get(k, name, &out), ST_OK);
    json_int_t v = json_integer_value(json_object_get(out, key));
    json_decref(out);
    return v;
}

static enum status
collect(void *arg, const char *line, size_t len)
{
    sbuf_add(arg, line, len);
    return ST_OK;
}

/* The trail as an export that verifies (an empty trail exports nothing); returns how many of its
 * lines hold every needle. */
static int
audited(struct audit *a, const char *const *needles)
{
    struct sbuf text = {0};
    struct audit_verify_result res;
    uint8_t (*keys)[AUDIT_PK_BYTES] = NULL;
    size_t n;
    int hits = 0;

    /* Each export stores an export checkpoint keyed by (chain, seq, kind, time in ms): two
     * exports of the same head in one millisecond collide (ST_CONFLICT), so let one pass. */
    usleep(2000);
    assert_int_equal(audit_export(a, NULL, 0, collect, &text, NULL), ST_OK);
    n = audit_public_keys(a, &keys);
    if (text.len > 0 && audit_verify(text.p, text.len, (const uint8_t (*)[AUDIT_PK_BYTES])keys,
                                     n, NULL, 0, &res) != ST_OK)
        fail_msg("the trail does not verify: line %llu: %s", (unsigned long long)res.line,
                 res.error);
    free(keys);
    for (char *line = text.p, *nl; line != NULL && *line != '\0'; line = nl + 1) {
        nl = strchr(line, '\n');
        assert_non_null(nl);
        *nl = '\0';
        bool all = true;
        for (const char *const *p = needles; *p != NULL; p++)
            all = all && strstr(line, *p) != NULL;
        hits += all;
    }
    sbuf_free(&text);
    return hits;
}

/* Guarantee (SECURITY.md "Bounds and rotation"): a keyring rotates on its rotation_period,
 * checked by the maintenance duty, and every automatic rotation is audited as keyring.rotate
 * with method SYSTEM, route janitor and the new key version. Not before the period is over, and
 * the next period counts from the rotation; keyrings without a period never rotate by time. */
static void
test_rotation_period_is_due_and_audited(void **state)
{
    struct fixture *f = *state;
    static const char *const v2[] = {"\"op\":\"keyring.rotate\"", "\"method\":\"SYSTEM\"",
                                     "\"route\":\"janitor\"", "\"keyring\":\"hourly\"",
                                     "\"key_version\":2", "\"status\":200", NULL};
    static const char *const v3[] = {"\"op\":\"keyring.rotate\"", "\"method\":\"SYSTEM\"",
                                     "\"keyring\":\"hourly\"", "\"key_version\":3", NULL};
    static const char *const any[] = {"\"op\":\"keyring.rotate\"", NULL};

    create(f->k, "hourly", 0, HOUR);
    create(f->k, "daily", 0, 24 * HOUR);
    create(f->k, "fixed", 1, -1);                   /* deterministic: no period by default */
    assert_int_equal(field(f->k, "fixed", "rotation_period"), 0);

    fake_now = T0 + HOUR - 1;                       /* a second early: nothing is due */
    krm_maintain(f->k);
    assert_int_equal(field(f->k, "hourly", "latest_version"), 1);
    assert_int_equal(audited(f->audit, any), 0);

    fake_now = T0 + HOUR;                           /* the period is over */
    krm_maintain(f->k);
    assert_int_equal(field(f->k, "hourly", "latest_version"), 2);
    assert_int_equal(field(f->k, "daily", "latest_version"), 1);
    assert_int_equal(field(f->k, "fixed", "latest_version"), 1);
    assert_int_equal(audited(f->audit, v2), 1);
    assert_int_equal(audited(f->audit, any), 1);

    krm_maintain(f->k);                             /* done once, not again at the same time */
    fake_now = T0 + 2 * HOUR - 1;
    krm_maintain(f->k);
    assert_int_equal(field(f->k, "hourly", "latest_version"), 2);

    fake_now = T0 + 2 * HOUR;                       /* a period after the rotation */
    krm_maintain(f->k);
    assert_int_equal(field(f->k, "hourly", "latest_version"), 3);
    assert_int_equal(audited(f->audit, v3), 1);

    fake_now = T0 + 24 * HOUR;                      /* the daily one, and hourly again */
    krm_maintain(f->k);
    assert_int_equal(field(f->k, "daily", "latest_version"), 2);
    assert_int_equal(field(f->k, "hourly", "latest_version"), 4);
    assert_int_equal(field(f->k, "fixed", "latest_version"), 1);
    assert_int_equal(audited(f->audit, any), 4);
}

/* A rotation survives a restart of the manager: the new version and its time stamp were stored
 * (so the schedule is not reset by a restart, and nothing is rotated twice). */
static void
test_rotation_is_durable(void **state)
{
    struct fixture *f = *state;
    struct krm_settings set = {.kek_limit = 0, .reserve_block = 16};

    create(f->k, "hourly", 0, HOUR);
    fake_now = T0 + HOUR;
    krm_maintain(f->k);
    assert_int_equal(field(f->k, "hourly", "latest_version"), 2);
    krm_close(f->k);
    assert_int_equal(krm_open(&f->k, f->st, f->rk, f->mac, &set), ST_OK);
    krm_set_clock(f->k, fake_clock);
    krm_set_audit(f->k, f->audit);
    assert_int_equal(field(f->k, "hourly", "latest_version"), 2);
    fake_now = T0 + 2 * HOUR - 1;
    krm_maintain(f->k);
    assert_int_equal(field(f->k, "hourly", "latest_version"), 2);
    fake_now = T0 + 2 * HOUR;
    krm_maintain(f->k);
    assert_int_equal(field(f->k, "hourly", "latest_version"), 3);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rotation_period_is_due_and_audited, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotation_is_durable, setup, teardown),
    };
    if (crypto_init() != ST_OK)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
