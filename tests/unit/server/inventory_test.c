/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/server/inventory_test.c -- the inventory snapshot from a real service (init, then
 * open on a temporary SQLite database): keyrings with their versions and counts, apps with their
 * keys (never a key's text), the root key file's mode, listeners and the audit state, `now` as
 * given. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "crypto/init.h"
#include "server/audit/audit.h"
#include "server/auth/principal.h"
#include "server/inventory.h"
#include "server/service.h"

struct fx {
    char dir[64];
    struct service_paths p;
    struct service *svc;
};

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    char key[128], id[64], err[256];
    struct keyrings_settings ks = {1000, 16};
    struct audit_settings as = {.durable = true, .checkpoint_interval = 60, .retention = 86400};

    snprintf(f->dir, sizeof f->dir, "/tmp/dg-inventory-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    service_paths_resolve(&f->p, f->dir, NULL, NULL);
    bool adopted;
    if (service_init(&f->p, key, sizeof key, id, sizeof id, &adopted, err, sizeof err) != ST_OK ||
        service_open(&f->svc, &f->p, &ks, &as, err, sizeof err) != ST_OK) {
        fprintf(stderr, "service: %s\n", err);
        return -1;
    }
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;
    char cmd[128];

    service_close(f->svc);
    service_paths_free(&f->p);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    free(f);
    return system(cmd) == 0 ? 0 : -1;
}

static const struct inv_apikey *
key_of(const struct inventory *inv, const char *app)
{
    for (size_t i = 0; i < inv->n_keys; i++)
        if (strcmp(inv->keys[i].app, app) == 0)
            return &inv->keys[i];
    return NULL;
}

static void
test_snapshot(void **state)
{
    struct fx *f = *state;
    struct keyring_spec spec = {"tenant-a", NULL, -1, 7200, false};
    struct keyring_info info;
    struct app_info app;
    struct apikey_issued issued;
    struct key_spec ks = {SCOPE_ENCRYPT | SCOPE_DECRYPT, "tenant-a", 86400, 0, 0};
    struct inventory inv;
    const char *msg = NULL;
    struct inventory_facts facts = {0};

    assert_int_equal(keyrings_create(f->svc->keyrings, &spec, &info, &msg, NULL), ST_OK);
    keyring_info_free(&info);
    /* one change with its audit event, so the trail has something to verify */
    struct audit_txn txn = {0};
    struct audit_rec *rec = audit_rec_new();
    rec->op = "keyring.rotate";
    snprintf(rec->method, sizeof rec->method, "SYSTEM");
    rec->route = "inventory_test";
    rec->status = 200;
    assert_int_equal(audit_txn_begin(f->svc->audit, &txn, rec), ST_OK);
    free(rec);
    enum status st = keyrings_rotate(f->svc->keyrings, "tenant-a", &info, &txn.row);
    audit_txn_end(&txn, st == ST_OK);
    assert_int_equal(st, ST_OK);
    keyring_info_free(&info);
    assert_int_equal(apps_create(f->svc->apps, "chat", "a chat app", &app, NULL), ST_OK);
    assert_int_equal(apps_key_create(f->svc->apps, "chat", &ks, &issued, NULL), ST_OK);
    char text[sizeof issued.key];
    memcpy(text, issued.key, sizeof text);
    apikey_issued_wipe(&issued);

    facts.root_key_path = f->p.root_key;
    facts.root_key_id = "rk-test";
    snprintf(facts.listeners[0].name, sizeof facts.listeners[0].name, "api");
    snprintf(facts.listeners[0].addr, sizeof facts.listeners[0].addr, "10.0.0.5:8443");
    facts.listeners[0].tls = true;
    facts.n_listeners = 1;
    assert_int_equal(chmod(f->p.root_key, 0640), 0);

    assert_int_equal(inventory_take(f->svc->keyrings, f->svc->apps, f->svc->audit, NULL, &facts,
                                    1900000000, &inv),
                     ST_OK);
    assert_int_equal(inv.now, 1900000000);
    assert_string_equal(inv.version, DG_VERSION);
    assert_int_equal(inv.root_key.source, INV_KEY_FILE);
    assert_string_equal(inv.root_key.id, "rk-test");
    assert_true(inv.root_key.mode_known);
    assert_int_equal(inv.root_key.mode, 0640); /* read live, not remembered */
    assert_int_equal(inv.n_listeners, 1);
    assert_string_equal(inv.listeners[0].addr, "10.0.0.5:8443");
    assert_true(inv.listeners[0].tls);

    assert_int_equal(inv.n_keyrings, 1);
    assert_string_equal(inv.keyrings[0].name, "tenant-a");
    assert_int_equal(inv.keyrings[0].rotation_period, 7200);
    assert_int_equal(inv.keyrings[0].latest_version, 2);
    assert_int_equal(inv.keyrings[0].n_versions, 2);
    assert_int_equal(inv.keyrings[0].versions[1].version, 2);
    assert_int_equal(inv.keyrings[0].encryption_limit, 1000);

    /* init made the admin app and its key; this test added "chat" and one key */
    assert_int_equal(inv.n_apps, 2);
    const struct inv_apikey *k = key_of(&inv, "chat");
    assert_non_null(k);
    assert_int_equal(k->n_scopes, 2);
    assert_false(k->all_keyrings);
    assert_true(k->expires_at > k->created_at);
    assert_int_equal(k->revoked_at, 0);
    for (size_t i = 0; i < inv.n_apps; i++)
        if (strcmp(inv.apps[i].name, "chat") == 0)
            assert_int_equal(inv.apps[i].active_keys, 0); /* expired at `now` (2030) */
    /* the snapshot never holds a key's text */
    assert_null(memmem(&inv.keys[0], inv.n_keys * sizeof *inv.keys, text, strlen(text)));

    assert_true(inv.audit.enabled);
    assert_true(inv.audit.durable);
    assert_int_equal(inv.audit.retention, 86400);
    assert_int_equal(inv.audit.verified_at, 0); /* never verified yet */
    inventory_free(&inv);

    struct audit_trail_check c;
    assert_int_equal(audit_verify_trail(f->svc->audit, &c), ST_OK);
    if (!c.valid)
        fail_msg("trail: %s (line %llu)", c.error, (unsigned long long)c.line);
    assert_int_equal(inventory_take(f->svc->keyrings, f->svc->apps, f->svc->audit, NULL, &facts,
                                    1900000000, &inv),
                     ST_OK);
    assert_true(inv.audit.verified_at > 0);
    assert_true(inv.audit.verified_ok);
    inventory_free(&inv);
    assert_int_equal(inv.n_keys, 0); /* freed and zeroed */
    inventory_free(NULL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_snapshot, setup, teardown),
    };
    if (crypto_init() != ST_OK)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
