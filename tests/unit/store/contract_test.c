/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/store/contract_test.c -- the store contract: every operation of store.h, conflicts,
 * rollbacks, admin changes with their audit event, threads, export order. Backend-neutral: it runs
 * against the database DG_STORE_URL names (unset: SQLite files in a temporary directory), through
 * backend.h for what store.h does not offer. Every backend passes the same test. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backend.h"
#include "fixtures.h"
#include "store/store.h"

static void
test_open_migrate_reopen(void **state)
{
    struct fx *f = *state;

    assert_string_equal(store_backend(f->s), tb_backend());
    assert_int_equal(store_schema_version(f->s), SCHEMA);
    store_close(f->s);
    f->s = NULL;
    for (int i = 0; i < 2; i++) { /* reopening applies nothing twice */
        assert_int_equal(store_open(&f->s, f->url, f->err, sizeof f->err), ST_OK);
        assert_int_equal(store_schema_version(f->s), SCHEMA);
        store_close(f->s);
        f->s = NULL;
    }
    assert_int_equal(tb_int(f->url, "SELECT count(*) FROM schema_version"), SCHEMA);
    assert_true(tb_int(f->url, "SELECT applied_at FROM schema_version WHERE version = 1") > 0);
    assert_int_equal(store_open(&f->s, f->url, f->err, sizeof f->err), ST_OK);
}

static void
test_newer_schema_refused(void **state)
{
    struct fx *f = *state;
    struct store *s2 = NULL;

    tb_exec(f->url, "INSERT INTO schema_version (version, applied_at) VALUES (99, 0)");
    assert_int_equal(store_open(&s2, f->url, f->err, sizeof f->err), ST_UNAVAILABLE);
    assert_null(s2);
    assert_non_null(strstr(f->err, "newer"));
}

static void
test_meta(void **state)
{
    struct fx *f = *state;
    char val[16], tiny[4];

    strcpy(val, "junk");
    assert_int_equal(store_meta_get(f->s, "node_id", val, sizeof val), ST_NOT_FOUND);
    assert_string_equal(val, "");
    assert_int_equal(store_meta_set(f->s, "node_id", "node-1"), ST_OK);
    assert_int_equal(store_meta_get(f->s, "node_id", val, sizeof val), ST_OK);
    assert_string_equal(val, "node-1");
    assert_int_equal(store_meta_set(f->s, "node_id", "node-2"), ST_OK);
    assert_int_equal(store_meta_get(f->s, "node_id", val, sizeof val), ST_OK);
    assert_string_equal(val, "node-2");
    assert_int_equal(store_meta_get(f->s, "node_id", tiny, sizeof tiny), ST_INTERNAL);
    assert_string_equal(tiny, "");
    /* Data never becomes SQL. */
    assert_int_equal(store_meta_set(f->s, "x'); DROP TABLE meta; --", "v"), ST_OK);
    assert_int_equal(store_meta_get(f->s, "x'); DROP TABLE meta; --", val, sizeof val), ST_OK);
    assert_int_equal(store_meta_get(f->s, "node_id", val, sizeof val), ST_OK);
}

static void
test_svckey(void **state)
{
    struct fx *f = *state;
    struct store_svckey k = {0}, got, *list = NULL;
    size_t n = 99;

    assert_int_equal(store_svckey_get(f->s, "rowmac", &got), ST_NOT_FOUND);
    assert_int_equal(store_svckey_list(f->s, &list, &n), ST_OK);
    assert_int_equal(n, 0);
    assert_null(list);

    const char *const purposes[] = {"rowmac", "apikey_hash", "audit_hmac"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(k.purpose, sizeof k.purpose, "%s", purposes[i]);
        snprintf(k.root_key_id, sizeof k.root_key_id, "00000000000000a%zu", i);
        k.wrapped_len = 60 + i;
        memset(k.wrapped, (int)i + 1, k.wrapped_len);
        k.created_at = 1700000000 + (int64_t)i;
        assert_int_equal(store_svckey_put(f->s, &k), ST_OK);
    }
    assert_int_equal(store_svckey_get(f->s, "rowmac", &got), ST_OK);
    assert_string_equal(got.root_key_id, "00000000000000a0");
    assert_int_equal(got.wrapped_len, 60);
    assert_int_equal(got.wrapped[59], 1);
    assert_int_equal(got.created_at, 1700000000);

    /* Insert only: a second key of a purpose is refused and the first one stays (replicas
     * racing to make a key lazily keep the winner's). */
    struct store_svckey other = k;
    snprintf(other.purpose, sizeof other.purpose, "rowmac");
    memset(other.wrapped, 0x77, other.wrapped_len);
    assert_int_equal(store_svckey_add(f->s, &other), ST_CONFLICT);
    assert_int_equal(store_svckey_get(f->s, "rowmac", &got), ST_OK);
    assert_string_equal(got.root_key_id, "00000000000000a0");
    assert_int_equal(got.wrapped[0], 1);
    snprintf(other.purpose, sizeof other.purpose, "compliance_sign");
    assert_int_equal(store_svckey_add(f->s, &other), ST_OK);
    assert_int_equal(store_svckey_get(f->s, "compliance_sign", &got), ST_OK);
    assert_int_equal(got.wrapped[0], 0x77);

    /* Upsert: root key rotation replaces the wrap. */
    snprintf(k.purpose, sizeof k.purpose, "rowmac");
    snprintf(k.root_key_id, sizeof k.root_key_id, "ffffffffffffffff");
    k.wrapped_len = 72;
    memset(k.wrapped, 0xEE, k.wrapped_len);
    assert_int_equal(store_svckey_put(f->s, &k), ST_OK);
    assert_int_equal(store_svckey_get(f->s, "rowmac", &got), ST_OK);
    assert_string_equal(got.root_key_id, "ffffffffffffffff");
    assert_int_equal(got.wrapped_len, 72);
    assert_memory_equal(got.wrapped, k.wrapped, 72);

    assert_int_equal(store_svckey_list(f->s, &list, &n), ST_OK);
    assert_int_equal(n, 4);
    assert_string_equal(list[0].purpose, "apikey_hash");
    assert_string_equal(list[1].purpose, "audit_hmac");
    assert_string_equal(list[2].purpose, "compliance_sign");
    assert_string_equal(list[3].purpose, "rowmac");
    free(list);

    k.wrapped_len = STORE_WRAPPED_MAX + 1;
    assert_int_equal(store_svckey_put(f->s, &k), ST_INVALID);
}

/* Root key rotation: every service key and the recorded root key id change together or not
 * at all. */
static void
test_svckey_put_all(void **state)
{
    struct fx *f = *state;
    struct store_svckey k[3], got;
    char val[32];

    memset(k, 0, sizeof k);
    for (size_t i = 0; i < 3; i++) {
        snprintf(k[i].purpose, sizeof k[i].purpose, "p%zu", i);
        snprintf(k[i].root_key_id, sizeof k[i].root_key_id, "aaaaaaaaaaaaaaaa");
        k[i].wrapped_len = 60;
        memset(k[i].wrapped, 0x10 + (int)i, k[i].wrapped_len);
        k[i].created_at = 1700000000;
    }
    assert_int_equal(store_svckey_put_all(f->s, k, 3, "aaaaaaaaaaaaaaaa"), ST_OK);
    assert_int_equal(store_meta_get(f->s, "root_key_id", val, sizeof val), ST_OK);
    assert_string_equal(val, "aaaaaaaaaaaaaaaa");

    /* The last write fails: the first two and the meta row stay as they were. */
    tb_refuse_updates(f->url, "service_keys", "NEW.purpose = 'p2'");
    for (size_t i = 0; i < 3; i++) {
        snprintf(k[i].root_key_id, sizeof k[i].root_key_id, "bbbbbbbbbbbbbbbb");
        memset(k[i].wrapped, 0x20 + (int)i, k[i].wrapped_len);
    }
    assert_int_equal(store_svckey_put_all(f->s, k, 3, "bbbbbbbbbbbbbbbb"), ST_UNAVAILABLE);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(store_svckey_get(f->s, k[i].purpose, &got), ST_OK);
        assert_string_equal(got.root_key_id, "aaaaaaaaaaaaaaaa");
        assert_int_equal(got.wrapped[0], 0x10 + (int)i);
    }
    assert_int_equal(store_meta_get(f->s, "root_key_id", val, sizeof val), ST_OK);
    assert_string_equal(val, "aaaaaaaaaaaaaaaa");

    tb_allow_updates(f->url, "service_keys");
    assert_int_equal(store_svckey_put_all(f->s, k, 3, "bbbbbbbbbbbbbbbb"), ST_OK);
    assert_int_equal(store_svckey_get(f->s, "p2", &got), ST_OK);
    assert_string_equal(got.root_key_id, "bbbbbbbbbbbbbbbb");
    assert_int_equal(store_meta_get(f->s, "root_key_id", val, sizeof val), ST_OK);
    assert_string_equal(val, "bbbbbbbbbbbbbbbb");
    assert_int_equal(store_svckey_put_all(f->s, NULL, 0, NULL), ST_OK);
    k[0].wrapped_len = STORE_WRAPPED_MAX + 1;
    assert_int_equal(store_svckey_put_all(f->s, k, 1, NULL), ST_INVALID);
}

static void
test_keyring_create_get_list(void **state)
{
    struct fx *f = *state;
    struct store_keyring a = mk_keyring("tenant-b"), b = mk_keyring("tenant-a"), got, *list;
    struct store_version v1 = mk_version(1, 0x11), v1b = mk_version(1, 0x22), dupv = v1;
    struct store_keyring dup = mk_keyring("tenant-b");
    size_t n = 0;

    a.deterministic = 1;
    snprintf(a.algorithm, sizeof a.algorithm, "aes-256-siv");
    assert_int_equal(store_keyring_create(f->s, &a, &v1, NULL), ST_OK);
    assert_true(a.id > 0);
    assert_int_equal(v1.keyring_id, a.id);
    assert_int_equal(store_keyring_create(f->s, &b, &v1b, NULL), ST_OK);
    assert_true(b.id != a.id);

    assert_int_equal(store_keyring_create(f->s, &dup, &dupv, NULL), ST_CONFLICT);
    assert_int_equal(dup.id, 0);
    assert_int_equal(tb_int(f->url, "SELECT count(*) FROM key_versions"), 2); /* rolled back */

    assert_int_equal(store_keyring_get(f->s, "tenant-b", &got), ST_OK);
    assert_keyring_eq(&got, &a);
    assert_int_equal(store_keyring_get(f->s, "nope", &got), ST_NOT_FOUND);

    assert_int_equal(store_keyring_list(f->s, &list, &n), ST_OK);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].name, "tenant-a");
    assert_string_equal(list[1].name, "tenant-b");
    assert_int_equal(list[1].deterministic, 1);
    free(list);

    struct store_version *vs = NULL;
    assert_int_equal(store_version_list(f->s, a.id, &vs, &n), ST_OK);
    assert_int_equal(n, 1);
    assert_version_eq(&vs[0], &v1);
    free(vs);
}

/* An admin change whose audit event could not be made is refused before anything is written. */
static void
test_refused_event_refuses_the_change(void **state)
{
    struct fx *f = *state;
    struct store_keyring k = mk_keyring("tenant-r");
    struct store_version v1 = mk_version(1, 0x33);
    struct store_app app = mk_app("refused");

    assert_int_equal(store_keyring_create(f->s, &k, &v1, &store_audit_refused), ST_UNAVAILABLE);
    assert_int_equal(store_app_create(f->s, &app, NULL, NULL, &store_audit_refused),
                     ST_UNAVAILABLE);
    assert_int_equal(tb_int(f->url, "SELECT count(*) FROM keyrings"), 0);
    assert_int_equal(tb_int(f->url, "SELECT count(*) FROM apps"), 0);
    assert_int_equal(store_keyring_create(f->s, &k, &v1, NULL), ST_OK);
    assert_int_equal(store_keyring_update(f->s, &k, &store_audit_refused), ST_UNAVAILABLE);
    assert_int_equal(store_keyring_delete(f->s, k.id, &store_audit_refused), ST_UNAVAILABLE);
    assert_int_equal(tb_int(f->url, "SELECT count(*) FROM keyrings"), 1);
}

static void
test_keyring_update_rotate(void **state)
{
    struct fx *f = *state;
    struct store_keyring kr = mk_keyring("k"), got, ghost = mk_keyring("ghost");
    struct store_version v1 = mk_version(1, 1), v2 = mk_version(2, 2), v3 = mk_version(3, 3);
    struct store_version *vs = NULL;
    size_t n = 0;

    assert_int_equal(store_keyring_create(f->s, &kr, &v1, NULL), ST_OK);

    kr.min_encryption_version = 1;
    kr.rotation_period = 3600;
    kr.deletion_allowed = 1;
    kr.updated_at = 1700000100;
    memset(kr.mac, 0xB2, sizeof kr.mac);
    assert_int_equal(store_keyring_update(f->s, &kr, NULL), ST_OK);
    assert_int_equal(store_keyring_get(f->s, "k", &got), ST_OK);
    assert_keyring_eq(&got, &kr);
    ghost.id = 999999;
    assert_int_equal(store_keyring_update(f->s, &ghost, NULL), ST_NOT_FOUND);

    /* Rotate 1 -> 2. */
    struct store_keyring r2 = kr;
    r2.latest_version = 2;
    r2.rotated_at = r2.updated_at = 1700000200;
    memset(r2.mac, 0xC3, sizeof r2.mac);
    v2.keyring_id = kr.id;
    assert_int_equal(store_keyring_rotate(f->s, &r2, &v2, 1, NULL), ST_OK);
    assert_int_equal(store_keyring_get(f->s, "k", &got), ST_OK);
    assert_keyring_eq(&got, &r2);

    /* Another node's stale view (prev_latest 1) loses, and adds no version. */
    struct store_keyring stale = r2;
    v3.keyring_id = kr.id;
    stale.latest_version = 3;
    assert_int_equal(store_keyring_rotate(f->s, &stale, &v3, 1, NULL), ST_CONFLICT);
    assert_int_equal(store_version_get(f->s, kr.id, 3, &v3), ST_NOT_FOUND);
    /* ... and a stale update cannot roll latest_version back. */
    assert_int_equal(store_keyring_update(f->s, &kr, NULL), ST_CONFLICT);
    assert_int_equal(store_keyring_get(f->s, "k", &got), ST_OK);
    assert_int_equal(got.latest_version, 2);
    /* An existing version number is a conflict too, and rolls the keyring update back. */
    struct store_version again = mk_version(2, 9);
    again.keyring_id = kr.id;
    stale.latest_version = 3;
    assert_int_equal(store_keyring_rotate(f->s, &stale, &again, 2, NULL), ST_CONFLICT);
    assert_int_equal(store_keyring_get(f->s, "k", &got), ST_OK);
    assert_int_equal(got.latest_version, 2);
    /* Mismatched ids and a missing keyring. */
    v3 = mk_version(3, 3);
    v3.keyring_id = kr.id + 1;
    assert_int_equal(store_keyring_rotate(f->s, &stale, &v3, 2, NULL), ST_INVALID);
    ghost.latest_version = 2;
    v3.keyring_id = ghost.id;
    assert_int_equal(store_keyring_rotate(f->s, &ghost, &v3, 1, NULL), ST_NOT_FOUND);

    assert_int_equal(store_version_list(f->s, kr.id, &vs, &n), ST_OK);
    assert_int_equal(n, 2);
    assert_int_equal(vs[0].version, 1);
    assert_int_equal(vs[1].version, 2);
    assert_memory_equal(vs[1].wrapped, v2.wrapped, v2.wrapped_len);
    free(vs);
}

static void
test_keyring_delete(void **state)
{
    struct fx *f = *state;
    struct store_keyring kr = mk_keyring("k"), got;
    struct store_version v1 = mk_version(1, 1), v2 = mk_version(2, 2), *vs = NULL;
    size_t n = 0;

    assert_int_equal(store_keyring_create(f->s, &kr, &v1, NULL), ST_OK);
    kr.latest_version = 2;
    v2.keyring_id = kr.id;
    assert_int_equal(store_keyring_rotate(f->s, &kr, &v2, 1, NULL), ST_OK);

    /* The keyring and every version are gone; other keyrings stay. */
    struct store_keyring other = mk_keyring("other");
    struct store_version ov = mk_version(1, 7);
    assert_int_equal(store_keyring_create(f->s, &other, &ov, NULL), ST_OK);
    assert_int_equal(store_keyring_delete(f->s, kr.id, NULL), ST_OK);
    assert_int_equal(store_keyring_get(f->s, "k", &got), ST_NOT_FOUND);
    assert_int_equal(store_version_list(f->s, kr.id, &vs, &n), ST_OK);
    assert_int_equal(n, 0);
    assert_int_equal(store_version_list_all(f->s, &vs, &n), ST_OK);
    assert_int_equal(n, 1);
    assert_int_equal(vs[0].keyring_id, other.id);
    free(vs);
    assert_int_equal(store_keyring_delete(f->s, kr.id, NULL), ST_NOT_FOUND);

    /* Ids of deleted keyrings are never reused. */
    struct store_keyring fresh = mk_keyring("k");
    struct store_version fv = mk_version(1, 8);
    assert_int_equal(store_keyring_create(f->s, &fresh, &fv, NULL), ST_OK);
    assert_true(fresh.id > other.id);
}

static void
test_version_reserve_rewrap(void **state)
{
    struct fx *f = *state;
    struct store_keyring kr = mk_keyring("res");
    struct store_version v1 = mk_version(1, 1), got, *all = NULL;
    uint8_t mac100[STORE_MAC_BYTES], mac50[STORE_MAC_BYTES];
    size_t n = 0;

    memset(mac100, 0x64, sizeof mac100);
    memset(mac50, 0x32, sizeof mac50);
    assert_int_equal(store_keyring_create(f->s, &kr, &v1, NULL), ST_OK);
    assert_int_equal(store_version_reserve(f->s, kr.id, 1, 100, mac100), ST_OK);
    assert_int_equal(store_version_get(f->s, kr.id, 1, &got), ST_OK);
    assert_int_equal(got.encryptions_reserved, 100);
    assert_memory_equal(got.mac, mac100, sizeof mac100);

    /* Never lowers, and keeps the MAC that matches the stored value. */
    assert_int_equal(store_version_reserve(f->s, kr.id, 1, 50, mac50), ST_OK);
    assert_int_equal(store_version_reserve(f->s, kr.id, 1, 100, mac50), ST_OK);
    assert_int_equal(store_version_get(f->s, kr.id, 1, &got), ST_OK);
    assert_int_equal(got.encryptions_reserved, 100);
    assert_memory_equal(got.mac, mac100, sizeof mac100);

    /* Compare and set: two processes reserving from the same value, the second one loses and
     * reserves again from what it reads; each owns the range it raised the count over. */
    assert_int_equal(store_version_reserve_from(f->s, kr.id, 1, 100, 200, mac50), ST_OK);
    assert_int_equal(store_version_reserve_from(f->s, kr.id, 1, 100, 200, mac100), ST_CONFLICT);
    assert_int_equal(store_version_reserve_from(f->s, kr.id, 1, 100, 300, mac100), ST_CONFLICT);
    assert_int_equal(store_version_get(f->s, kr.id, 1, &got), ST_OK);
    assert_int_equal(got.encryptions_reserved, 200);
    assert_memory_equal(got.mac, mac50, sizeof mac50);
    assert_int_equal(store_version_reserve_from(f->s, kr.id, 1, 200, 150, mac100), ST_INVALID);
    assert_int_equal(store_version_reserve_from(f->s, kr.id, 2, 0, 10, mac50), ST_NOT_FOUND);
    assert_int_equal(store_version_reserve_from(f->s, kr.id, 1, 200, 100 + 100, mac50), ST_INVALID);
    assert_int_equal(store_version_reserve(f->s, kr.id, 1, 100, mac100), ST_OK); /* no lower */
    assert_int_equal(store_version_get(f->s, kr.id, 1, &got), ST_OK);
    assert_int_equal(got.encryptions_reserved, 200);
    memcpy(mac100, got.mac, sizeof mac100); /* what the rewrap below keeps */
    assert_int_equal(store_version_reserve(f->s, kr.id, 2, 10, mac50), ST_NOT_FOUND);
    assert_int_equal(store_version_reserve(f->s, kr.id + 100, 1, 10, mac50), ST_NOT_FOUND);
    assert_int_equal(store_version_get(f->s, kr.id, 2, &got), ST_NOT_FOUND);

    /* Rewrap under a new root key: only root_key_id, wrapped and mac change. */
    assert_int_equal(store_version_get(f->s, kr.id, 1, &got), ST_OK);
    struct store_version rw = got;
    rw.wrapped_len = 48;
    memset(rw.wrapped, 0x99, rw.wrapped_len);
    snprintf(rw.root_key_id, sizeof rw.root_key_id, "fedcba9876543210");
    memset(rw.mac, 0x77, sizeof rw.mac);
    assert_int_equal(store_version_rewrap(f->s, &rw), ST_OK);
    assert_int_equal(store_version_list_all(f->s, &all, &n), ST_OK);
    assert_int_equal(n, 1);
    assert_version_eq(&all[0], &rw);
    assert_int_equal(all[0].encryptions_reserved, 200);
    free(all);
    rw.version = 5;
    assert_int_equal(store_version_rewrap(f->s, &rw), ST_NOT_FOUND);
}

static void
test_apps(void **state)
{
    struct fx *f = *state;
    struct store_app a = mk_app("worker"), b = mk_app("api"), dup = mk_app("api"), got, *list;
    size_t n = 0;

    assert_int_equal(store_app_create(f->s, &a, NULL, NULL, NULL), ST_OK);
    assert_int_equal(store_app_create(f->s, &b, NULL, NULL, NULL), ST_OK);
    assert_true(a.id > 0 && b.id > a.id);
    assert_int_equal(store_app_create(f->s, &dup, NULL, NULL, NULL), ST_CONFLICT);
    assert_int_equal(store_app_get(f->s, "worker", &got), ST_OK);
    assert_int_equal(got.id, a.id);
    assert_string_equal(got.name, a.name);
    assert_string_equal(got.description, a.description);
    assert_int_equal(got.created_at, a.created_at);
    assert_int_equal(store_app_get(f->s, "nobody", &got), ST_NOT_FOUND);
    assert_int_equal(store_app_list(f->s, &list, &n), ST_OK);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].name, "api");
    assert_string_equal(list[1].name, "worker");
    free(list);
}

/* The seal callback sees the assigned id and its MAC is stored with the row; rows without a MAC
 * (from before migration 0003) can be sealed once; key rows carry their app's columns. */
static void
seal_fill(void *arg, struct store_app *app)
{
    *(int64_t *)arg = app->id;
    memset(app->mac, (int)(0x40 + app->id), sizeof app->mac);
    app->has_mac = true;
}

static void
test_app_macs(void **state)
{
    struct fx *f = *state;
    struct store_app a = mk_app("sealed"), b = mk_app("legacy"), got;
    struct store_apikey k = mk_apikey("DDDDDDDDDDDDDDDD", 0, 1700000000), kg;
    int64_t seen = 0;

    assert_int_equal(store_app_create(f->s, &a, seal_fill, &seen, NULL), ST_OK);
    assert_int_equal(seen, a.id);
    assert_int_equal(store_app_get(f->s, "sealed", &got), ST_OK);
    assert_true(got.has_mac);
    assert_int_equal(got.mac[0], 0x40 + a.id);
    assert_int_equal(store_app_create(f->s, &b, NULL, NULL, NULL), ST_OK);
    assert_int_equal(store_app_get(f->s, "legacy", &got), ST_OK);
    assert_false(got.has_mac);

    k.app_id = b.id;
    assert_int_equal(store_apikey_create(f->s, &k, NULL), ST_OK);
    assert_int_equal(store_apikey_get(f->s, k.id, &kg), ST_OK);
    assert_false(kg.app_has_mac);
    assert_int_equal(kg.app_created_at, b.created_at);

    got.has_mac = true;
    memset(got.mac, 0x77, sizeof got.mac);
    got.created_at++; /* stale copy: not sealed */
    assert_int_equal(store_app_seal(f->s, &got), ST_NOT_FOUND);
    got.created_at--;
    assert_int_equal(store_app_seal(f->s, &got), ST_OK);
    assert_int_equal(store_app_seal(f->s, &got), ST_NOT_FOUND); /* only once */
    assert_int_equal(store_apikey_get(f->s, k.id, &kg), ST_OK);
    assert_true(kg.app_has_mac);
    assert_memory_equal(kg.app_mac, got.mac, sizeof got.mac);
    got.has_mac = false;
    assert_int_equal(store_app_seal(f->s, &got), ST_INVALID);
}

static void
test_apikeys(void **state)
{
    struct fx *f = *state;
    struct store_app a = mk_app("admin"), b = mk_app("dify-api");
    struct store_apikey k1, k2, k3, got, *list = NULL;
    uint8_t mac[STORE_MAC_BYTES];
    size_t n = 0;

    assert_int_equal(store_app_create(f->s, &a, NULL, NULL, NULL), ST_OK);
    assert_int_equal(store_app_create(f->s, &b, NULL, NULL, NULL), ST_OK);
    k1 = mk_apikey("AAAAAAAAAAAAAAA2", a.id, 1700000200);
    k2 = mk_apikey("AAAAAAAAAAAAAAA1", a.id, 1700000100);
    k3 = mk_apikey("BBBBBBBBBBBBBBBB", b.id, 1700000000);
    k3.keyrings[0] = '\0'; /* empty allow-list: all keyrings */
    assert_int_equal(store_apikey_create(f->s, &k1, NULL), ST_OK);
    assert_int_equal(store_apikey_create(f->s, &k2, NULL), ST_OK);
    assert_int_equal(store_apikey_create(f->s, &k3, NULL), ST_OK);
    assert_int_equal(store_apikey_create(f->s, &k1, NULL), ST_CONFLICT);
    struct store_apikey orphan = mk_apikey("CCCCCCCCCCCCCCCC", b.id + 50, 1);
    assert_int_equal(store_apikey_create(f->s, &orphan, NULL), ST_NOT_FOUND);

    assert_int_equal(store_apikey_get(f->s, k1.id, &got), ST_OK);
    assert_string_equal(got.app_name, "admin"); /* filled by the join */
    assert_int_equal(got.revoked_at, 0);
    snprintf(k1.app_name, sizeof k1.app_name, "admin");
    assert_apikey_eq(&got, &k1);
    assert_int_equal(store_apikey_get(f->s, "ZZZZZZZZZZZZZZZZ", &got), ST_NOT_FOUND);

    assert_int_equal(store_apikey_list(f->s, a.id, &list, &n), ST_OK);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].id, k2.id); /* by created_at */
    assert_string_equal(list[1].id, k1.id);
    assert_string_equal(list[0].app_name, "admin");
    free(list);
    assert_int_equal(store_apikey_list(f->s, b.id, &list, &n), ST_OK);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].app_name, "dify-api");
    assert_string_equal(list[0].keyrings, "");
    free(list);
    assert_int_equal(store_apikey_list(f->s, 0, &list, &n), ST_OK);
    assert_int_equal(n, 3);
    free(list);
    assert_int_equal(store_apikey_list(f->s, b.id + 50, &list, &n), ST_OK);
    assert_int_equal(n, 0);

    /* Ids created since a time (other processes' new keys): k1 and k2, not k3. */
    char(*ids)[STORE_KEY_ID_MAX] = NULL;
    assert_int_equal(store_apikey_ids_since(f->s, 1700000100, &ids, &n), ST_OK);
    assert_int_equal(n, 2);
    assert_true((strcmp(ids[0], k1.id) == 0 && strcmp(ids[1], k2.id) == 0) ||
                (strcmp(ids[0], k2.id) == 0 && strcmp(ids[1], k1.id) == 0));
    free(ids);
    assert_int_equal(store_apikey_ids_since(f->s, 1700000201, &ids, &n), ST_OK);
    assert_int_equal(n, 0);
    assert_null(ids);

    /* Rotation: the new key and the old key's change together, or neither. */
    struct store_apikey fresh = mk_apikey("EEEEEEEEEEEEEEEE", a.id, 1700000250), old = k2;
    old.grace_until = 1700000999;
    struct store_apikey gone = old;
    snprintf(gone.id, sizeof gone.id, "ZZZZZZZZZZZZZZZZ");
    assert_int_equal(store_apikey_rotate(f->s, &fresh, &gone, NULL), ST_NOT_FOUND);
    assert_int_equal(store_apikey_get(f->s, fresh.id, &got), ST_NOT_FOUND);
    assert_int_equal(store_apikey_rotate(f->s, &k3, &old, NULL), ST_CONFLICT); /* id taken */
    assert_int_equal(store_apikey_get(f->s, k2.id, &got), ST_OK);
    assert_int_equal(got.grace_until, 0);
    assert_int_equal(store_apikey_rotate(f->s, &fresh, &old, NULL), ST_OK);
    assert_int_equal(store_apikey_get(f->s, k2.id, &got), ST_OK);
    assert_int_equal(got.grace_until, 1700000999);
    assert_int_equal(store_apikey_get(f->s, fresh.id, &got), ST_OK);

    memset(mac, 0xD4, sizeof mac);
    assert_int_equal(store_apikey_revoke(f->s, k1.id, 1700000300, mac, NULL), ST_OK);
    assert_int_equal(store_apikey_get(f->s, k1.id, &got), ST_OK);
    assert_int_equal(got.revoked_at, 1700000300);
    assert_memory_equal(got.mac, mac, sizeof mac);
    assert_int_equal(tb_int(f->url, "SELECT count(*) FROM api_keys WHERE revoked_at IS NULL"), 3);
    assert_int_equal(store_apikey_revoke(f->s, "ZZZZZZZZZZZZZZZZ", 1, mac, NULL), ST_NOT_FOUND);
}

static void
test_invalid_input(void **state)
{
    struct fx *f = *state;
    struct store_keyring kr = mk_keyring("x");
    struct store_version v = mk_version(1, 1);
    struct store_app app = mk_app("y");

    memset(kr.name, 'a', sizeof kr.name); /* not terminated */
    assert_int_equal(store_keyring_create(f->s, &kr, &v, NULL), ST_INVALID);
    kr = mk_keyring("");
    assert_int_equal(store_keyring_create(f->s, &kr, &v, NULL), ST_INVALID);
    kr = mk_keyring("x");
    v.wrapped_len = STORE_WRAPPED_MAX + 1;
    assert_int_equal(store_keyring_create(f->s, &kr, &v, NULL), ST_INVALID);
    memset(app.description, 'd', sizeof app.description);
    assert_int_equal(store_app_create(f->s, &app, NULL, NULL, NULL), ST_INVALID);
    assert_int_equal(tb_int(f->url, "SELECT count(*) FROM keyrings"), 0);
}

/* --- threads --- */

struct worker {
    struct store *s;
    int64_t keyring_id;
    int idx;
    int failures;
};

#define THREADS 8
#define ROUNDS 150

static void *
worker_main(void *arg)
{
    struct worker *w = arg;
    uint8_t mac[STORE_MAC_BYTES];
    char key[32], val[32], want[32];
    struct store_keyring kr;
    size_t n;

    memset(mac, w->idx, sizeof mac);
    snprintf(key, sizeof key, "worker-%d", w->idx);
    for (int i = 1; i <= ROUNDS; i++) {
        snprintf(want, sizeof want, "%d", i);
        struct store_version *vs = NULL;
        int64_t reserve = (int64_t)i * THREADS + w->idx;
        if (store_version_reserve(w->s, w->keyring_id, 1, reserve, mac) != ST_OK ||
            store_meta_set(w->s, key, want) != ST_OK ||
            store_meta_get(w->s, key, val, sizeof val) != ST_OK || strcmp(val, want) != 0 ||
            store_keyring_get(w->s, "shared", &kr) != ST_OK)
            w->failures++;
        if (store_version_list(w->s, w->keyring_id, &vs, &n) != ST_OK || n != 1)
            w->failures++;
        free(vs);
    }
    return NULL;
}

static void
test_threads(void **state)
{
    struct fx *f = *state;
    struct store_keyring kr = mk_keyring("shared");
    struct store_version v = mk_version(1, 1), got;
    struct worker w[THREADS];
    pthread_t t[THREADS];

    assert_int_equal(store_keyring_create(f->s, &kr, &v, NULL), ST_OK);
    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct worker){.s = f->s, .keyring_id = kr.id, .idx = i};
        assert_int_equal(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }
    assert_int_equal(store_version_get(f->s, kr.id, 1, &got), ST_OK);
    assert_int_equal(got.encryptions_reserved, (int64_t)ROUNDS * THREADS + THREADS - 1);
}

/* store_audit_lines: collect the lines in the order given. */
struct lines {
    char text[8][32];
    size_t n;
};

static enum status
collect_line(void *arg, const char *line, size_t len)
{
    struct lines *l = arg;

    assert_true(l->n < 8 && len < sizeof l->text[0]);
    memcpy(l->text[l->n], line, len);
    l->text[l->n++][len] = '\0';
    return ST_OK;
}

/* Checkpoints of one seq written in the same millisecond (a periodic one signed by the old key,
 * then the key change) come out in the order they were written, whatever their kind's name. */
static void
test_audit_export_keeps_checkpoint_order(void **state)
{
    struct fx *f = *state;
    struct lines l = {.n = 0};
    const int64_t t = 1700000000000;

    assert_int_equal(store_audit_checkpoint_add(f->s, "c1", 1, "periodic", t, "P1"), ST_OK);
    assert_int_equal(store_audit_checkpoint_add(f->s, "c1", 1, "key_change", t, "K1"), ST_OK);
    assert_int_equal(store_audit_checkpoint_add(f->s, "c1", 2, "key_change", t, "K2"), ST_OK);
    assert_int_equal(store_audit_checkpoint_add(f->s, "c1", 2, "periodic", t, "P2"), ST_OK);
    assert_int_equal(store_audit_checkpoint_add(f->s, "c1", 2, "anchor", t + 1, "A2"), ST_OK);
    assert_int_equal(store_audit_lines(f->s, "c1", 0, 2, collect_line, &l), ST_OK);
    assert_int_equal(l.n, 5);
    assert_string_equal(l.text[0], "P1");
    assert_string_equal(l.text[1], "K1");
    assert_string_equal(l.text[2], "A2"); /* an anchor opens its seq */
    assert_string_equal(l.text[3], "K2");
    assert_string_equal(l.text[4], "P2");
}

/* store_audit_list (issue 14): by time, oldest or newest first; the keyring filter; cursors that
 * walk every row exactly once in either order, across chains whose events share a millisecond. */
static void
test_audit_list_order_and_filters(void **state)
{
    struct fx *f = *state;
    const int64_t t = 1700000000000;
    /* chain, seq, time offset, keyring */
    static const struct {
        const char *chain;
        uint64_t seq;
        int64_t dt;
        const char *keyring;
    } ev[] = {{"b", 1, 0, "k1"}, {"b", 2, 5, "k2"}, {"a", 1, 5, "k1"},
              {"a", 2, 7, "k1"}, {"b", 3, 9, "k2"}, {"a", 3, 9, "k1"}};
    /* the order by (time, chain, seq) */
    static const size_t asc[] = {0, 2, 1, 3, 5, 4};
    const size_t n_ev = sizeof ev / sizeof ev[0];
    struct store_audit_row rows[6];
    char lines[6][16];

    memset(rows, 0, sizeof rows);
    for (size_t i = 0; i < n_ev; i++) {
        snprintf(rows[i].chain_id, sizeof rows[i].chain_id, "%s", ev[i].chain);
        rows[i].seq = ev[i].seq;
        rows[i].time_ms = t + ev[i].dt;
        snprintf(rows[i].app, sizeof rows[i].app, "app");
        snprintf(rows[i].op, sizeof rows[i].op, "encrypt");
        snprintf(rows[i].keyring, sizeof rows[i].keyring, "%s", ev[i].keyring);
        snprintf(rows[i].outcome, sizeof rows[i].outcome, "ok");
        rows[i].status = 200;
        rows[i].hash[0] = (uint8_t)i;
        snprintf(lines[i], sizeof lines[i], "L%zu", i);
        rows[i].line = lines[i];
    }
    assert_int_equal(store_audit_append(f->s, rows, n_ev, NULL, 0), ST_OK);

    for (int desc = 0; desc <= 1; desc++) {
        for (size_t limit = 1; limit <= 4; limit++) {
            struct store_audit_filter fl = {.newest_first = desc != 0, .limit = limit};
            char chain[STORE_CHAIN_ID_MAX];
            size_t got = 0;
            for (;;) {
                struct store_audit_row *out = NULL;
                size_t n = 0;
                assert_int_equal(store_audit_list(f->s, &fl, &out, &n), ST_OK);
                for (size_t i = 0; i < n; i++) {
                    size_t want = asc[desc ? n_ev - 1 - got : got];
                    assert_true(got < n_ev);
                    assert_string_equal(out[i].line, lines[want]);
                    got++;
                }
                if (n < limit) {
                    store_audit_rows_free(out, n);
                    break;
                }
                snprintf(chain, sizeof chain, "%s", out[n - 1].chain_id);
                fl.after_chain = chain;
                fl.after_seq = out[n - 1].seq;
                fl.after_time_ms = out[n - 1].time_ms;
                store_audit_rows_free(out, n);
            }
            assert_int_equal(got, n_ev);
        }
    }

    struct store_audit_filter by_keyring = {.keyring = "k2", .newest_first = true, .limit = 10};
    struct store_audit_row *out = NULL;
    size_t n = 0;
    assert_int_equal(store_audit_list(f->s, &by_keyring, &out, &n), ST_OK);
    assert_int_equal(n, 2);
    assert_string_equal(out[0].line, "L4");
    assert_string_equal(out[1].line, "L1");
    store_audit_rows_free(out, n);
}

/* contract_certs.c: certificate sources and the certificates seen at them (issue 9). */
void test_cert_sources(void **state);
void test_cert_seen_history(void **state);

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_migrate_reopen, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_newer_schema_refused, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_meta, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_svckey, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_svckey_put_all, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_keyring_create_get_list, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_refused_event_refuses_the_change, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_keyring_update_rotate, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_keyring_delete, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_version_reserve_rewrap, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_apps, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_app_macs, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_apikeys, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_invalid_input, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_threads, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_audit_export_keeps_checkpoint_order, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_audit_list_order_and_filters, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_cert_sources, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_cert_seen_history, fx_setup, fx_teardown),
    };

    return cmocka_run_group_tests(tests, fx_group_setup, fx_group_teardown);
}
