/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/server/keyrings_test.c -- the keyring manager on a real SQLite store, its automatic
 * rotation driven at times the test chooses (keyrings_maintain takes the janitor's clock):
 * rotation by rotation_period is due exactly when the period has passed since the last rotation,
 * and is audited (keyring.rotate, method SYSTEM, route janitor, the new version) in a trail that
 * verifies. The smallest period the service accepts is an hour, so the integration tests cannot
 * wait for it. And the replica sync's one race no HTTP test can hit on purpose (a rotation here
 * while the sync loads another replica's change), through a hooked store operation. */
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

#include "common/sbuf.h"
#include "common/xmem.h"
#include "crypto/init.h"
#include "crypto/rootkey.h"
#include "crypto/secret.h"
#include "server/audit/audit.h"
#include "server/audit/format.h"
#include "server/keyrings.h"
#include "store/private/ops.h"
#include "store/store.h"

#define HOUR 3600

struct fixture {
    char dir[64], db[96], url[112], key[96];
    struct rootkey *rk;
    struct store *st;
    struct secret *mac;
    struct audit *audit;
    struct keyrings *k;
};

static int
setup(void **state)
{
    struct fixture *f = xcalloc(1, sizeof *f);
    struct keyrings_settings set = {.kek_limit = 0, .reserve_block = 16};
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
    assert_int_equal(keyrings_open(&f->k, f->st, f->rk, f->mac, &set), ST_OK);
    keyrings_set_audit(f->k, f->audit);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[160];

    keyrings_close(f->k);
    audit_close(f->audit);
    store_close(f->st);
    rootkey_free(f->rk);
    secret_free(f->mac);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* Create a keyring; returns its creation time (the wall clock: rotations count from it). */
static int64_t
create(struct keyrings *k, const char *name, int deterministic, int64_t period)
{
    struct keyring_spec c = {name, NULL, deterministic, period, false};
    struct keyring_info out;
    const char *msg = NULL;

    assert_int_equal(keyrings_create(k, &c, &out, &msg, NULL), ST_OK);
    int64_t t = out.created_at;
    keyring_info_free(&out);
    return t;
}

static uint32_t
latest(struct keyrings *k, const char *name)
{
    struct keyring_info out;

    assert_int_equal(keyrings_get(k, name, &out), ST_OK);
    uint32_t v = out.latest_version;
    keyring_info_free(&out);
    return v;
}

static int64_t
period_of(struct keyrings *k, const char *name)
{
    struct keyring_info out;

    assert_int_equal(keyrings_get(k, name, &out), ST_OK);
    int64_t v = out.rotation_period;
    keyring_info_free(&out);
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
    uint8_t(*keys)[AUDIT_PK_BYTES] = NULL;
    size_t n;
    int hits = 0;

    assert_int_equal(audit_export(a, NULL, 0, collect, &text, NULL), ST_OK);
    n = audit_public_keys(a, &keys);
    if (text.len > 0 && audit_verify(text.p, text.len, (const uint8_t(*)[AUDIT_PK_BYTES])keys, n,
                                     NULL, 0, &res) != ST_OK)
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
    static const char *const v2[] = {"\"op\":\"keyring.rotate\"",
                                     "\"method\":\"SYSTEM\"",
                                     "\"route\":\"janitor\"",
                                     "\"keyring\":\"hourly\"",
                                     "\"key_version\":2",
                                     "\"status\":200",
                                     NULL};
    static const char *const v3[] = {"\"op\":\"keyring.rotate\"", "\"method\":\"SYSTEM\"",
                                     "\"keyring\":\"hourly\"", "\"key_version\":3", NULL};
    static const char *const any[] = {"\"op\":\"keyring.rotate\"", NULL};

    int64_t t0 = create(f->k, "hourly", 0, HOUR);
    int64_t t0d = create(f->k, "daily", 0, 24 * HOUR); /* t0 or a second later */
    create(f->k, "fixed", 1, -1);                      /* deterministic: no period by default */
    assert_int_equal(period_of(f->k, "fixed"), 0);

    keyrings_maintain(f->k, t0 + HOUR - 1); /* a second early: nothing is due */
    assert_int_equal(latest(f->k, "hourly"), 1);
    assert_int_equal(audited(f->audit, any), 0);

    keyrings_maintain(f->k, t0 + HOUR); /* the period is over */
    assert_int_equal(latest(f->k, "hourly"), 2);
    assert_int_equal(latest(f->k, "daily"), 1);
    assert_int_equal(latest(f->k, "fixed"), 1);
    assert_int_equal(audited(f->audit, v2), 1);
    assert_int_equal(audited(f->audit, any), 1);

    keyrings_maintain(f->k, t0 + HOUR); /* done once, not again at the same time */
    keyrings_maintain(f->k, t0 + 2 * HOUR - 1);
    assert_int_equal(latest(f->k, "hourly"), 2);

    keyrings_maintain(f->k, t0 + 2 * HOUR); /* a period after the rotation */
    assert_int_equal(latest(f->k, "hourly"), 3);
    assert_int_equal(audited(f->audit, v3), 1);

    keyrings_maintain(f->k, t0d + 24 * HOUR); /* the daily one, and hourly again */
    assert_int_equal(latest(f->k, "daily"), 2);
    assert_int_equal(latest(f->k, "hourly"), 4);
    assert_int_equal(latest(f->k, "fixed"), 1);
    assert_int_equal(audited(f->audit, any), 4);
}

/* A rotation survives a restart of the manager: the new version and its time stamp were stored
 * (so the schedule is not reset by a restart, and nothing is rotated twice). */
static void
test_rotation_is_durable(void **state)
{
    struct fixture *f = *state;
    struct keyrings_settings set = {.kek_limit = 0, .reserve_block = 16};

    int64_t t0 = create(f->k, "hourly", 0, HOUR);
    keyrings_maintain(f->k, t0 + HOUR);
    assert_int_equal(latest(f->k, "hourly"), 2);
    keyrings_close(f->k);
    assert_int_equal(keyrings_open(&f->k, f->st, f->rk, f->mac, &set), ST_OK);
    keyrings_set_audit(f->k, f->audit);
    assert_int_equal(latest(f->k, "hourly"), 2);
    keyrings_maintain(f->k, t0 + 2 * HOUR - 1);
    assert_int_equal(latest(f->k, "hourly"), 2);
    keyrings_maintain(f->k, t0 + 2 * HOUR);
    assert_int_equal(latest(f->k, "hourly"), 3);
}

/* A sync that read another replica's change must not swap it in over a change this process made
 * while the sync was loading (a rotation here is newer than what the sync read). The store's
 * version_list is hooked so that this process rotates exactly inside the sync's load, the
 * window no HTTP test can hit on purpose. */
static struct keyrings *hook_k;
static const struct store_ops *hook_real;
static bool hook_armed;

static enum status
hooked_version_list(struct store *s, int64_t keyring_id, struct store_version **out, size_t *n)
{
    enum status st = hook_real->version_list(s, keyring_id, out, n);
    if (hook_armed) {
        struct keyring_info info;
        hook_armed = false;
        assert_int_equal(keyrings_rotate(hook_k, "raced", &info, NULL), ST_OK);
        assert_int_equal(info.latest_version, 2);
        keyring_info_free(&info);
    }
    return st;
}

static void
test_sync_keeps_a_newer_local_change(void **state)
{
    struct fixture *f = *state;
    struct keyrings_settings set = {.kek_limit = 0, .reserve_block = 16};
    struct keyrings *other = NULL;
    struct keyring_patch p = {-1, -1, 2 * HOUR, -1};
    const char *msg = NULL;

    create(f->k, "raced", 0, HOUR);
    /* another replica changes the keyring: this one's cached row is now stale */
    assert_int_equal(keyrings_open(&other, f->st, f->rk, f->mac, &set), ST_OK);
    struct keyring_info patched;
    assert_int_equal(keyrings_patch(other, "raced", &p, &patched, &msg, NULL), ST_OK);
    keyring_info_free(&patched);
    keyrings_close(other);

    struct store_ops ops = *f->st->ops;
    hook_real = f->st->ops;
    hook_k = f->k;
    ops.version_list = hooked_version_list;
    f->st->ops = &ops;
    hook_armed = true;
    keyrings_sync(f->k); /* reads the patched row, and this process rotates while it loads */
    f->st->ops = hook_real;
    assert_false(hook_armed);
    assert_int_equal(latest(f->k, "raced"), 2); /* the rotation stays: not swapped back to v1 */
    keyrings_sync(f->k);                        /* the next sync reads the rotated row */
    assert_int_equal(latest(f->k, "raced"), 2);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rotation_period_is_due_and_audited, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotation_is_durable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_keeps_a_newer_local_change, setup, teardown),
    };
    if (crypto_init() != ST_OK)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
