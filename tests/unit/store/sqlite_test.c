/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/store/sqlite_test.c -- what only the SQLite backend promises: WAL journal, URL forms,
 * file modes, crypto-shredding of the file and its WAL, readers of old snapshots, malformed rows
 * written behind the store's back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "backend.h"
#include "fixtures.h"
#include "store/store.h"

static void
test_wal_journal(void **state)
{
    struct fx *f = *state;

    assert_int_equal(tb_int(f->url, "SELECT journal_mode = 'wal' FROM pragma_journal_mode"), 1);
}

/* The space reserve next to the database (kept free for a WAL checkpoint when the disk fills):
 * owner-only, non-empty while the store is open, removed when it closes. */
static void
test_space_reserve(void **state)
{
    struct fx *f = *state;
    char path[700];
    struct stat sb;

    snprintf(path, sizeof path, "%s-reserve", f->url);
    assert_int_equal(stat(path, &sb), 0);
    assert_true(S_ISREG(sb.st_mode));
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_true(sb.st_size > 0 && sb.st_size <= (8 << 20));
    store_close(f->s);
    f->s = NULL;
    assert_int_not_equal(stat(path, &sb), 0);
    assert_int_equal(store_open(&f->s, f->url, f->err, sizeof f->err), ST_OK);
    assert_int_equal(stat(path, &sb), 0);
}

static void
test_url_forms(void **state)
{
    struct fx *f = *state;
    struct store *s2 = NULL;
    char url[700], err[256];
    const char *const prefixes[] = {"sqlite:", "sqlite://", ""};

    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        snprintf(url, sizeof url, "%s%s", prefixes[i], f->url);
        assert_int_equal(store_open(&s2, url, err, sizeof err), ST_OK);
        assert_int_equal(store_schema_version(s2), SCHEMA);
        store_close(s2);
    }
    assert_int_equal(store_open(&s2, ":memory:", err, sizeof err), ST_OK);
    assert_int_equal(store_schema_version(s2), SCHEMA);
    assert_int_equal(store_meta_set(s2, "k", "v"), ST_OK);
    store_close(s2);
    s2 = NULL;

    /* PostgreSQL forms go to libpq (a server that is not there: a socket directory that does
     * not exist), and neither the error nor the shown form carries the password. */
    const char *const pg[] = {"postgres://dg:hunter2@%2Fno%2Fsuch%2Fdir/dg",
                              "postgresql://dg:hunter2@%2Fno%2Fsuch%2Fdir:5433/dg?sslmode=disable",
                              "host=/no/such/dir user=dg password=hunter2 dbname=dg",
                              "dbname = dg host=/no/such/dir password='hunter2'"};
    for (size_t i = 0; i < sizeof pg / sizeof pg[0]; i++) {
        char shown[256];
        assert_int_equal(store_open(&s2, pg[i], err, sizeof err), ST_UNAVAILABLE);
        assert_null(s2);
        assert_non_null(strstr(err, "cannot connect to PostgreSQL"));
        assert_null(strstr(err, "hunter2"));
        store_url_display(pg[i], shown, sizeof shown);
        assert_null(strstr(shown, "hunter2"));
        assert_non_null(strstr(shown, "dbname=dg"));
        assert_int_equal(store_file_path(pg[i], shown, sizeof shown), ST_INVALID);
    }
    assert_int_equal(store_open(&s2, "mysql://root:hunter2@db/dg", err, sizeof err), ST_INVALID);
    assert_null(strstr(err, "hunter2")); /* never echo credentials */
    assert_int_equal(store_open(&s2, "sqlite:", err, sizeof err), ST_INVALID);
    assert_int_equal(store_open(&s2, "", err, sizeof err), ST_INVALID);
    snprintf(url, sizeof url, "%s/no/such/dir/x.db", tb_dir());
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
    mode_t old = umask(0); /* even a permissive umask must give 0600 */

    snprintf(path, sizeof path, "%s/mode.db", tb_dir());
    snprintf(wal, sizeof wal, "%s-wal", path);
    assert_int_equal(store_open(&s2, path, f->err, sizeof f->err), ST_OK);
    umask(old);
    assert_int_equal(store_meta_set(s2, "node_id", "n1"), ST_OK);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_equal(stat(wal, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    store_close(s2);
    tb_drop(path);
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
    char wal[700];
    struct stat sb;

    snprintf(ev.chain_id, sizeof ev.chain_id, "c1");
    snprintf(ev.op, sizeof ev.op, "keyring.delete");
    snprintf(ev.outcome, sizeof ev.outcome, "ok");
    ev.line = "{\"type\":\"event\"}";
    snprintf(wal, sizeof wal, "%s-wal", f->url);
    for (int with_event = 0; with_event < 2; with_event++) {
        struct store_keyring kr = mk_keyring(with_event ? "shred-ev" : "shred-me");
        struct store_version v = mk_version(1, 1);
        memcpy(v.wrapped, marker, sizeof marker - 1);
        v.wrapped_len = sizeof marker - 1;
        assert_int_equal(store_keyring_create(f->s, &kr, &v, NULL), ST_OK);
        assert_true(file_contains(f->url, marker, sizeof marker - 1) ||
                    file_contains(wal, marker, sizeof marker - 1)); /* the probe works */
        assert_int_equal(store_keyring_delete(f->s, kr.id, with_event ? &ev : NULL), ST_OK);
        assert_int_equal(store_shred_flush(f->s), ST_OK);
        assert_false(file_contains(f->url, marker, sizeof marker - 1));
        assert_false(file_contains(wal, marker, sizeof marker - 1));
        assert_int_equal(stat(wal, &sb), 0);
        assert_int_equal(sb.st_size, 0);
    }
    assert_int_equal(tb_int(f->url, "SELECT count(*) FROM audit_events"), 1);
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
    assert_int_equal(sqlite3_open(f->url, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM keyrings", -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW); /* holds its snapshot */
    assert_int_equal(store_keyring_delete(f->s, kr.id, NULL), ST_OK);
    assert_int_equal(store_shred_flush(f->s), ST_UNAVAILABLE);
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(store_shred_flush(f->s), ST_OK);
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
    tb_exec(f->url, "UPDATE keyrings SET mac = x'0102'");
    assert_int_equal(store_keyring_get(f->s, "victim", &got), ST_OK);
    assert_memory_equal(got.mac, zero, sizeof zero);
    tb_exec(f->url, "UPDATE keyrings SET name = printf('%.80c', 'v'), mac = zeroblob(32)");
    assert_int_equal(store_keyring_list(f->s, &list, &n), ST_OK);
    assert_int_equal(n, 1);
    assert_int_equal(strlen(list[0].name), STORE_NAME_MAX - 1);
    assert_memory_equal(list[0].mac, zero, sizeof zero);
    free(list);
    tb_exec(f->url, "UPDATE key_versions SET wrapped = zeroblob(4096)");
    struct store_version gv;
    assert_int_equal(store_version_get(f->s, kr.id, 1, &gv), ST_OK);
    assert_memory_equal(gv.mac, zero, sizeof zero);
    /* A row without a MAC is refused outright. */
    tb_exec(f->url, "UPDATE apps SET description = printf('%.300c', 'd')");
    assert_int_equal(store_app_get(f->s, "app", &gapp), ST_INTEGRITY);
    assert_string_equal(gapp.name, "");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_wal_journal, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_space_reserve, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_url_forms, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_file_mode_0600, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_delete_shreds, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_shred_flush_blocked_by_reader, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_tampered_rows, fx_setup, fx_teardown),
    };

    return cmocka_run_group_tests(tests, fx_group_setup, fx_group_teardown);
}
