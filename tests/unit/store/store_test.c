/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/store/store_test.c -- store.h on a temp SQLite file: every operation, conflicts,
 * tampered rows, threads; and a check that migrations/sqlite and migrations/postgres define the
 * same tables and columns. */
#include <ctype.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "server/store/store.h"

/* Migrations shipped: migrations/sqlite/NNNN_*.sql. */
#define SCHEMA 3

static char tmpdir[256];
static int db_counter;

struct fx {
    char path[320];
    char err[256];
    struct store *s;
};

/* --- fixtures --- */

static int
group_setup(void **state)
{
    const char *base = getenv("TMPDIR");

    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "%s/dg_store_test.XXXXXX", base != NULL ? base : "/tmp");
    return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static void
rm_db(const char *path)
{
    char p[400];

    unlink(path);
    snprintf(p, sizeof p, "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", path);
    unlink(p);
}

static int
group_teardown(void **state)
{
    (void)state;
    rmdir(tmpdir);                      /* fails harmlessly if a test left files behind */
    return 0;
}

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);

    if (f == NULL)
        return -1;
    snprintf(f->path, sizeof f->path, "%s/t%d.db", tmpdir, ++db_counter);
    if (store_open(&f->s, f->path, f->err, sizeof f->err) != ST_OK) {
        fprintf(stderr, "store_open: %s\n", f->err);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;

    store_close(f->s);
    rm_db(f->path);
    free(f);
    return 0;
}

/* Run one SQL statement on the file behind the store's back (tampering, inspection). */
static void
raw_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;

    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static int64_t
raw_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t v = -1;

    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* --- builders --- */

static struct store_keyring
mk_keyring(const char *name)
{
    struct store_keyring kr = {0};

    snprintf(kr.name, sizeof kr.name, "%s", name);
    snprintf(kr.algorithm, sizeof kr.algorithm, "aes-256-gcm");
    kr.rotation_period = 90 * 86400;
    kr.latest_version = kr.min_decryption_version = kr.min_encryption_version = 1;
    kr.created_at = kr.updated_at = kr.rotated_at = 1700000000;
    memset(kr.mac, 0xA1, sizeof kr.mac);
    return kr;
}

static struct store_version
mk_version(uint32_t version, uint8_t fill)
{
    struct store_version v = {0};

    v.version = version;
    snprintf(v.root_key_id, sizeof v.root_key_id, "0123456789abcdef");
    v.wrapped_len = 40;
    memset(v.wrapped, fill, v.wrapped_len);
    v.created_at = 1700000000 + version;
    memset(v.mac, fill ^ 0xFF, sizeof v.mac);
    return v;
}

static struct store_apikey
mk_apikey(const char *id, int64_t app_id, int64_t created_at)
{
    struct store_apikey k = {0};

    snprintf(k.id, sizeof k.id, "%s", id);
    k.app_id = app_id;
    memset(k.hash, 0x5A, sizeof k.hash);
    snprintf(k.scopes, sizeof k.scopes, "encrypt decrypt");
    snprintf(k.keyrings, sizeof k.keyrings, "tenant-a tenant-b");
    k.created_at = created_at;
    k.expires_at = created_at + 86400;
    memset(k.mac, 0x3C, sizeof k.mac);
    return k;
}

static struct store_app
mk_app(const char *name)
{
    struct store_app a = {0};

    snprintf(a.name, sizeof a.name, "%s", name);
    snprintf(a.description, sizeof a.description, "the %s app", name);
    a.created_at = 1700000000;
    return a;
}

/* Field by field: struct padding is not part of the contract. */
static void
assert_keyring_eq(const struct store_keyring *a, const struct store_keyring *b)
{
    assert_int_equal(a->id, b->id);
    assert_string_equal(a->name, b->name);
    assert_string_equal(a->algorithm, b->algorithm);
    assert_int_equal(a->deterministic, b->deterministic);
    assert_int_equal(a->rotation_period, b->rotation_period);
    assert_int_equal(a->deletion_allowed, b->deletion_allowed);
    assert_int_equal(a->latest_version, b->latest_version);
    assert_int_equal(a->min_decryption_version, b->min_decryption_version);
    assert_int_equal(a->min_encryption_version, b->min_encryption_version);
    assert_int_equal(a->created_at, b->created_at);
    assert_int_equal(a->updated_at, b->updated_at);
    assert_int_equal(a->rotated_at, b->rotated_at);
    assert_memory_equal(a->mac, b->mac, STORE_MAC_BYTES);
}

static void
assert_version_eq(const struct store_version *a, const struct store_version *b)
{
    assert_int_equal(a->keyring_id, b->keyring_id);
    assert_int_equal(a->version, b->version);
    assert_string_equal(a->root_key_id, b->root_key_id);
    assert_int_equal(a->wrapped_len, b->wrapped_len);
    assert_memory_equal(a->wrapped, b->wrapped, a->wrapped_len);
    assert_int_equal(a->created_at, b->created_at);
    assert_int_equal(a->encryptions_reserved, b->encryptions_reserved);
    assert_memory_equal(a->mac, b->mac, STORE_MAC_BYTES);
}

static void
assert_apikey_eq(const struct store_apikey *a, const struct store_apikey *b)
{
    assert_string_equal(a->id, b->id);
    assert_int_equal(a->app_id, b->app_id);
    assert_string_equal(a->app_name, b->app_name);
    assert_memory_equal(a->hash, b->hash, sizeof a->hash);
    assert_string_equal(a->scopes, b->scopes);
    assert_string_equal(a->keyrings, b->keyrings);
    assert_int_equal(a->created_at, b->created_at);
    assert_int_equal(a->expires_at, b->expires_at);
    assert_int_equal(a->revoked_at, b->revoked_at);
    assert_memory_equal(a->mac, b->mac, STORE_MAC_BYTES);
}

/* --- open, URLs, files --- */

static void
test_open_migrate_reopen(void **state)
{
    struct fx *f = *state;

    assert_string_equal(store_backend(f->s), "sqlite");
    assert_int_equal(store_schema_version(f->s), SCHEMA);
    store_close(f->s);
    f->s = NULL;
    for (int i = 0; i < 2; i++) {       /* reopening applies nothing twice */
        assert_int_equal(store_open(&f->s, f->path, f->err, sizeof f->err), ST_OK);
        assert_int_equal(store_schema_version(f->s), SCHEMA);
        store_close(f->s);
        f->s = NULL;
    }
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM schema_version"), SCHEMA);
    assert_true(raw_int(f->path, "SELECT applied_at FROM schema_version WHERE version = 1") > 0);
    assert_int_equal(raw_int(f->path, "SELECT journal_mode = 'wal' FROM pragma_journal_mode"), 1);
    assert_int_equal(store_open(&f->s, f->path, f->err, sizeof f->err), ST_OK);
}

static void
test_newer_schema_refused(void **state)
{
    struct fx *f = *state;
    struct store *s2 = NULL;

    raw_exec(f->path, "INSERT INTO schema_version (version, applied_at) VALUES (99, 0)");
    assert_int_equal(store_open(&s2, f->path, f->err, sizeof f->err), ST_UNAVAILABLE);
    assert_null(s2);
    assert_non_null(strstr(f->err, "newer"));
}

static void
test_url_forms(void **state)
{
    struct fx *f = *state;
    struct store *s2 = NULL;
    char url[400], err[256];
    const char *const prefixes[] = {"sqlite:", "sqlite://", ""};

    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        snprintf(url, sizeof url, "%s%s", prefixes[i], f->path);
        assert_int_equal(store_open(&s2, url, err, sizeof err), ST_OK);
        assert_int_equal(store_schema_version(s2), SCHEMA);
        store_close(s2);
    }
    assert_int_equal(store_open(&s2, ":memory:", err, sizeof err), ST_OK);
    assert_int_equal(store_schema_version(s2), SCHEMA);
    assert_int_equal(store_meta_set(s2, "k", "v"), ST_OK);
    store_close(s2);
    s2 = NULL;

    const char *const pg[] = {"postgres://dg:hunter2@db:5432/dg", "postgresql://dg:hunter2@db/dg"};
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(store_open(&s2, pg[i], err, sizeof err), ST_INVALID);
        assert_null(s2);
        assert_string_equal(err, "PostgreSQL backend not built yet");
    }
    assert_int_equal(store_open(&s2, "mysql://root:hunter2@db/dg", err, sizeof err), ST_INVALID);
    assert_null(strstr(err, "hunter2"));  /* never echo credentials */
    assert_int_equal(store_open(&s2, "sqlite:", err, sizeof err), ST_INVALID);
    assert_int_equal(store_open(&s2, "", err, sizeof err), ST_INVALID);
    snprintf(url, sizeof url, "%s/no/such/dir/x.db", tmpdir);
    assert_int_equal(store_open(&s2, url, err, sizeof err), ST_IO);
    assert_non_null(strstr(err, "cannot create database"));
    assert_null(s2);
}

static void
test_file_mode_0600(void **state)
{
    struct fx *f = *state;
    struct store *s2 = NULL;
    char path[400], wal[420];
    struct stat sb;
    mode_t old = umask(0);              /* even a permissive umask must give 0600 */

    snprintf(path, sizeof path, "%s/mode.db", tmpdir);
    snprintf(wal, sizeof wal, "%s-wal", path);
    assert_int_equal(store_open(&s2, path, f->err, sizeof f->err), ST_OK);
    umask(old);
    assert_int_equal(store_meta_set(s2, "node_id", "n1"), ST_OK);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_equal(stat(wal, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    store_close(s2);
    rm_db(path);
}

/* --- meta and service keys --- */

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
    assert_int_equal(n, 3);
    assert_string_equal(list[0].purpose, "apikey_hash");
    assert_string_equal(list[1].purpose, "audit_hmac");
    assert_string_equal(list[2].purpose, "rowmac");
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
    raw_exec(f->path, "CREATE TRIGGER no_p2 BEFORE UPDATE ON service_keys "
                      "WHEN NEW.purpose = 'p2' BEGIN SELECT RAISE(ABORT, 'refused'); END");
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

    raw_exec(f->path, "DROP TRIGGER no_p2");
    assert_int_equal(store_svckey_put_all(f->s, k, 3, "bbbbbbbbbbbbbbbb"), ST_OK);
    assert_int_equal(store_svckey_get(f->s, "p2", &got), ST_OK);
    assert_string_equal(got.root_key_id, "bbbbbbbbbbbbbbbb");
    assert_int_equal(store_meta_get(f->s, "root_key_id", val, sizeof val), ST_OK);
    assert_string_equal(val, "bbbbbbbbbbbbbbbb");
    assert_int_equal(store_svckey_put_all(f->s, NULL, 0, NULL), ST_OK);
    k[0].wrapped_len = STORE_WRAPPED_MAX + 1;
    assert_int_equal(store_svckey_put_all(f->s, k, 1, NULL), ST_INVALID);
}

/* --- keyrings and versions --- */

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
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM key_versions"), 2);  /* rolled back */

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
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM keyrings"), 0);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM apps"), 0);
    assert_int_equal(store_keyring_create(f->s, &k, &v1, NULL), ST_OK);
    assert_int_equal(store_keyring_update(f->s, &k, &store_audit_refused), ST_UNAVAILABLE);
    assert_int_equal(store_keyring_delete(f->s, k.id, &store_audit_refused), ST_UNAVAILABLE);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM keyrings"), 1);
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
    assert_int_equal(all[0].encryptions_reserved, 100);
    free(all);
    rw.version = 5;
    assert_int_equal(store_version_rewrap(f->s, &rw), ST_NOT_FOUND);
}

/* Does the file (if any) contain the bytes? */
static bool
file_contains(const char *path, const uint8_t *needle, size_t len)
{
    FILE *fp = fopen(path, "rb");
    uint8_t *buf;
    size_t n;
    bool found;

    if (fp == NULL)
        return false;
    buf = malloc(1 << 22);
    assert_non_null(buf);
    n = fread(buf, 1, 1 << 22, fp);
    fclose(fp);
    found = memmem(buf, n, needle, len) != NULL;
    free(buf);
    return found;
}

/* Crypto-shredding: after delete and flush, the wrapped KEK is in neither the database nor its
 * WAL; also when the delete carries its audit event (one outer transaction, as over HTTP). */
static void
test_delete_shreds(void **state)
{
    static const uint8_t marker[] = "DG-SHRED-MARKER-7f3a9c41e2b8d605";
    struct fx *f = *state;
    struct store_audit_row ev = {.seq = 1, .time_ms = 1700000000000, .status = 204};
    char wal[400];
    struct stat sb;

    snprintf(ev.chain_id, sizeof ev.chain_id, "c1");
    snprintf(ev.op, sizeof ev.op, "keyring.delete");
    snprintf(ev.outcome, sizeof ev.outcome, "ok");
    ev.line = "{\"type\":\"event\"}";
    snprintf(wal, sizeof wal, "%s-wal", f->path);
    for (int with_event = 0; with_event < 2; with_event++) {
        struct store_keyring kr = mk_keyring(with_event ? "shred-ev" : "shred-me");
        struct store_version v = mk_version(1, 1);
        memcpy(v.wrapped, marker, sizeof marker - 1);
        v.wrapped_len = sizeof marker - 1;
        assert_int_equal(store_keyring_create(f->s, &kr, &v, NULL), ST_OK);
        assert_true(file_contains(f->path, marker, sizeof marker - 1) ||
                    file_contains(wal, marker, sizeof marker - 1));     /* the probe works */
        assert_int_equal(store_keyring_delete(f->s, kr.id, with_event ? &ev : NULL), ST_OK);
        assert_int_equal(store_shred_flush(f->s), ST_OK);
        assert_false(file_contains(f->path, marker, sizeof marker - 1));
        assert_false(file_contains(wal, marker, sizeof marker - 1));
        assert_int_equal(stat(wal, &sb), 0);
        assert_int_equal(sb.st_size, 0);
    }
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM audit_events"), 1);
}

/* A reader of an older snapshot (another process) keeps the WAL: the flush says so, and works
 * once the reader is gone. */
static void
test_shred_flush_blocked_by_reader(void **state)
{
    struct fx *f = *state;
    struct store_keyring kr = mk_keyring("held");
    struct store_version v = mk_version(1, 1);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;

    assert_int_equal(store_keyring_create(f->s, &kr, &v, NULL), ST_OK);
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM keyrings", -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);          /* holds its snapshot */
    assert_int_equal(store_keyring_delete(f->s, kr.id, NULL), ST_OK);
    assert_int_equal(store_shred_flush(f->s), ST_UNAVAILABLE);
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(store_shred_flush(f->s), ST_OK);
}

/* --- apps and API keys --- */

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
    got.created_at++;                                   /* stale copy: not sealed */
    assert_int_equal(store_app_seal(f->s, &got), ST_NOT_FOUND);
    got.created_at--;
    assert_int_equal(store_app_seal(f->s, &got), ST_OK);
    assert_int_equal(store_app_seal(f->s, &got), ST_NOT_FOUND);   /* only once */
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
    k3.keyrings[0] = '\0';              /* empty allow-list: all keyrings */
    assert_int_equal(store_apikey_create(f->s, &k1, NULL), ST_OK);
    assert_int_equal(store_apikey_create(f->s, &k2, NULL), ST_OK);
    assert_int_equal(store_apikey_create(f->s, &k3, NULL), ST_OK);
    assert_int_equal(store_apikey_create(f->s, &k1, NULL), ST_CONFLICT);
    struct store_apikey orphan = mk_apikey("CCCCCCCCCCCCCCCC", b.id + 50, 1);
    assert_int_equal(store_apikey_create(f->s, &orphan, NULL), ST_NOT_FOUND);

    assert_int_equal(store_apikey_get(f->s, k1.id, &got), ST_OK);
    assert_string_equal(got.app_name, "admin");     /* filled by the join */
    assert_int_equal(got.revoked_at, 0);
    snprintf(k1.app_name, sizeof k1.app_name, "admin");
    assert_apikey_eq(&got, &k1);
    assert_int_equal(store_apikey_get(f->s, "ZZZZZZZZZZZZZZZZ", &got), ST_NOT_FOUND);

    assert_int_equal(store_apikey_list(f->s, a.id, &list, &n), ST_OK);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].id, k2.id);         /* by created_at */
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
    char (*ids)[STORE_KEY_ID_MAX] = NULL;
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
    assert_int_equal(store_apikey_rotate(f->s, &k3, &old, NULL), ST_CONFLICT);   /* id taken */
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
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM api_keys WHERE revoked_at IS NULL"), 3);
    assert_int_equal(store_apikey_revoke(f->s, "ZZZZZZZZZZZZZZZZ", 1, mac, NULL), ST_NOT_FOUND);
}

/* --- bad input and tampered rows --- */

static void
test_invalid_input(void **state)
{
    struct fx *f = *state;
    struct store_keyring kr = mk_keyring("x");
    struct store_version v = mk_version(1, 1);
    struct store_app app = mk_app("y");

    memset(kr.name, 'a', sizeof kr.name);           /* not terminated */
    assert_int_equal(store_keyring_create(f->s, &kr, &v, NULL), ST_INVALID);
    kr = mk_keyring("");
    assert_int_equal(store_keyring_create(f->s, &kr, &v, NULL), ST_INVALID);
    kr = mk_keyring("x");
    v.wrapped_len = STORE_WRAPPED_MAX + 1;
    assert_int_equal(store_keyring_create(f->s, &kr, &v, NULL), ST_INVALID);
    memset(app.description, 'd', sizeof app.description);
    assert_int_equal(store_app_create(f->s, &app, NULL, NULL, NULL), ST_INVALID);
    assert_int_equal(raw_int(f->path, "SELECT count(*) FROM keyrings"), 0);
}

static void
test_tampered_rows(void **state)
{
    struct fx *f = *state;
    struct store_keyring kr = mk_keyring("victim"), got, *list = NULL;
    struct store_version v = mk_version(1, 1);
    struct store_app app = mk_app("app"), gapp;
    uint8_t zero[STORE_MAC_BYTES] = {0};
    size_t n = 0;

    assert_int_equal(store_keyring_create(f->s, &kr, &v, NULL), ST_OK);
    assert_int_equal(store_app_create(f->s, &app, NULL, NULL, NULL), ST_OK);
    /* A MAC of the wrong size, or an over-long name: the row still loads, its MAC zeroed, so the
     * caller's MAC check refuses just that row. */
    raw_exec(f->path, "UPDATE keyrings SET mac = x'0102'");
    assert_int_equal(store_keyring_get(f->s, "victim", &got), ST_OK);
    assert_memory_equal(got.mac, zero, sizeof zero);
    raw_exec(f->path, "UPDATE keyrings SET name = printf('%.80c', 'v'), mac = zeroblob(32)");
    assert_int_equal(store_keyring_list(f->s, &list, &n), ST_OK);
    assert_int_equal(n, 1);
    assert_int_equal(strlen(list[0].name), STORE_NAME_MAX - 1);
    assert_memory_equal(list[0].mac, zero, sizeof zero);
    free(list);
    raw_exec(f->path, "UPDATE key_versions SET wrapped = zeroblob(4096)");
    struct store_version gv;
    assert_int_equal(store_version_get(f->s, kr.id, 1, &gv), ST_OK);
    assert_memory_equal(gv.mac, zero, sizeof zero);
    /* A row without a MAC is refused outright. */
    raw_exec(f->path, "UPDATE apps SET description = printf('%.300c', 'd')");
    assert_int_equal(store_app_get(f->s, "app", &gapp), ST_INTEGRITY);
    assert_string_equal(gapp.name, "");
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

/* --- the two schemas stay in step --- */

#define MAX_TOKENS 4096
#define MAX_NAMES 256

struct toks {
    char t[MAX_TOKENS][64];
    size_t n;
};

/* Identifiers (lower-cased), quoted strings and single punctuation; comments skipped. */
static void
tokenize(const char *src, struct toks *out)
{
    const char *p = src;

    out->n = 0;
    while (*p != '\0' && out->n < MAX_TOKENS) {
        size_t len = 0;
        if (isspace((unsigned char)*p)) {
            p++;
            continue;
        }
        if (p[0] == '-' && p[1] == '-') {
            while (*p != '\0' && *p != '\n')
                p++;
            continue;
        }
        if (isalnum((unsigned char)*p) || *p == '_') {
            while (isalnum((unsigned char)p[len]) || p[len] == '_')
                len++;
        } else if (*p == '\'' || *p == '"') {
            len = 1;
            while (p[len] != '\0' && p[len] != *p)
                len++;
            len += p[len] != '\0';
        } else {
            len = 1;
        }
        size_t keep = len < 63 ? len : 63;
        for (size_t i = 0; i < keep; i++)
            out->t[out->n][i] = (char)tolower((unsigned char)p[i]);
        out->t[out->n][keep] = '\0';
        out->n++;
        p += len;
    }
}

static int
cmp_str(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

/* "table.column" for every column of every CREATE TABLE, "index:name" for every index; sorted. */
static size_t
schema_names(const char *path, char names[MAX_NAMES][160])
{
    static struct toks tk;
    size_t count = 0;
    char *src = NULL;
    long len;
    FILE *fp = fopen(path, "rb");

    if (fp == NULL)
        fail_msg("cannot open %s", path);
    fseek(fp, 0, SEEK_END);
    len = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    src = calloc(1, (size_t)len + 1);
    assert_non_null(src);
    assert_int_equal(fread(src, 1, (size_t)len, fp), (size_t)len);
    fclose(fp);
    tokenize(src, &tk);
    free(src);

    for (size_t i = 0; i + 2 < tk.n; i++) {
        if (i + 5 < tk.n && strcmp(tk.t[i], "alter") == 0 && strcmp(tk.t[i + 1], "table") == 0 &&
            strcmp(tk.t[i + 3], "add") == 0 && strcmp(tk.t[i + 4], "column") == 0) {
            assert_true(count < MAX_NAMES);
            snprintf(names[count++], 160, "%s.%s", tk.t[i + 2], tk.t[i + 5]);
            continue;
        }
        if (strcmp(tk.t[i], "create") != 0)
            continue;
        size_t j = i + 1;
        if (strcmp(tk.t[j], "unique") == 0)
            j++;
        bool table = strcmp(tk.t[j], "table") == 0, index = strcmp(tk.t[j], "index") == 0;
        if (!table && !index)
            continue;
        j++;
        if (strcmp(tk.t[j], "if") == 0)         /* IF NOT EXISTS */
            j += 3;
        const char *name = tk.t[j++];
        if (index) {
            snprintf(names[count++], 160, "index:%s", name);
            continue;
        }
        assert_string_equal(tk.t[j], "(");
        int depth = 1;
        bool first = true;                      /* at the first token of a column definition */
        for (j++; j < tk.n && depth > 0; j++) {
            const char *t = tk.t[j];
            if (strcmp(t, "(") == 0) {
                depth++;
            } else if (strcmp(t, ")") == 0) {
                depth--;
            } else if (depth == 1 && strcmp(t, ",") == 0) {
                first = true;
            } else if (first && depth == 1) {
                first = false;
                if (strcmp(t, "primary") != 0 && strcmp(t, "unique") != 0 &&
                    strcmp(t, "foreign") != 0 && strcmp(t, "check") != 0 &&
                    strcmp(t, "constraint") != 0) {
                    assert_true(count < MAX_NAMES);
                    snprintf(names[count++], 160, "%s.%s", name, t);
                }
            }
        }
    }
    qsort(names, count, sizeof names[0], cmp_str);
    return count;
}

/* Compare one migration's two dialects; returns the number of names in the SQLite file. */
static size_t
compare_schemas(const char *src, const char *file)
{
    static char lite[MAX_NAMES][160], pg[MAX_NAMES][160];
    char path[512];
    size_t nl, np, bad = 0;

    snprintf(path, sizeof path, "%s/migrations/sqlite/%s", src, file);
    nl = schema_names(path, lite);
    snprintf(path, sizeof path, "%s/migrations/postgres/%s", src, file);
    np = schema_names(path, pg);
    for (size_t i = 0, j = 0; i < nl || j < np;) {
        int c = i == nl ? 1 : j == np ? -1 : strcmp(lite[i], pg[j]);
        if (c == 0) {
            i++;
            j++;
        } else if (c < 0) {
            fprintf(stderr, "%s: only in sqlite: %s\n", file, lite[i++]);
            bad++;
        } else {
            fprintf(stderr, "%s: only in postgres: %s\n", file, pg[j++]);
            bad++;
        }
    }
    assert_int_equal(bad, 0);
    if (strcmp(file, "0001_init.sql") == 0) {
        /* The parser did find the schema: 7 tables, 41 columns and an index. */
        assert_int_equal(nl, 42);
        const char *const expect[] = {"api_keys.revoked_at", "index:api_keys_by_app",
                                      "key_versions.mac", "keyrings.min_encryption_version",
                                      "schema_version.applied_at"};
        for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++)
            assert_non_null(bsearch(expect[i], lite, nl, sizeof lite[0], cmp_str));
    }
    return nl;
}

/* store_audit_export: collect the lines in the order given. */
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
    assert_int_equal(store_audit_export(f->s, "c1", 0, 2, collect_line, &l), ST_OK);
    assert_int_equal(l.n, 5);
    assert_string_equal(l.text[0], "P1");
    assert_string_equal(l.text[1], "K1");
    assert_string_equal(l.text[2], "A2");       /* an anchor opens its seq */
    assert_string_equal(l.text[3], "K2");
    assert_string_equal(l.text[4], "P2");
}

/* Every SQLite migration has a PostgreSQL twin with the same tables, columns and indexes. */
static void
test_schemas_in_step(void **state)
{
    const char *src = getenv("DG_SOURCE_DIR");
    char dir[512];
    struct dirent *e;
    int files = 0;

    (void)state;
    if (src == NULL)
        fail_msg("DG_SOURCE_DIR is not set (run through ctest)");
    snprintf(dir, sizeof dir, "%s/migrations/sqlite", src);
    DIR *d = opendir(dir);
    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n < 5 || strcmp(e->d_name + n - 4, ".sql") != 0)
            continue;
        assert_true(compare_schemas(src, e->d_name) > 0);
        files++;
    }
    closedir(d);
    assert_int_equal(files, SCHEMA);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_migrate_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_url_forms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_mode_0600, setup, teardown),
        cmocka_unit_test_setup_teardown(test_meta, setup, teardown),
        cmocka_unit_test_setup_teardown(test_svckey, setup, teardown),
        cmocka_unit_test_setup_teardown(test_svckey_put_all, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keyring_create_get_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_event_refuses_the_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keyring_update_rotate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keyring_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_shreds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shred_flush_blocked_by_reader, setup, teardown),
        cmocka_unit_test_setup_teardown(test_version_reserve_rewrap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_apps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_app_macs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_apikeys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tampered_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_export_keeps_checkpoint_order, setup,
                                        teardown),
        cmocka_unit_test(test_schemas_in_step),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
