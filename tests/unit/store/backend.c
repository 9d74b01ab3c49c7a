/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/store/backend.c -- test support per backend (backend.h). SQLite: one file per test
 * in a temporary directory, raw SQL through the sqlite3 library. */
#include "backend.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

static char tmpdir[256];
static int counter;
static const char *backend = "sqlite";

static bool
has_prefix(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

int
tb_init(void)
{
    const char *url = getenv("DG_STORE_URL"), *base = getenv("TMPDIR");

    if (url != NULL && *url != '\0' && !has_prefix(url, "sqlite:")) {
        fprintf(stderr, "DG_STORE_URL: no test support for this backend in this build "
                        "(want sqlite: or unset)\n");
        return -1;
    }
    snprintf(tmpdir, sizeof tmpdir, "%s/dg_store_test.XXXXXX", base != NULL ? base : "/tmp");
    return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

void
tb_fini(void)
{
    rmdir(tmpdir); /* fails harmlessly if a test left files behind */
}

const char *
tb_backend(void)
{
    return backend;
}

const char *
tb_dir(void)
{
    return tmpdir;
}

void
tb_fresh(char *url, size_t n)
{
    snprintf(url, n, "%s/t%d.db", tmpdir, ++counter);
}

void
tb_drop(const char *url)
{
    char p[600];

    unlink(url);
    snprintf(p, sizeof p, "%s-wal", url);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", url);
    unlink(p);
}

static sqlite3 *
open_db(const char *url)
{
    sqlite3 *db = NULL;

    assert_int_equal(sqlite3_open(url, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    return db;
}

void
tb_exec(const char *url, const char *sql)
{
    sqlite3 *db = open_db(url);
    char *err = NULL;

    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
        fail_msg("%s: %s", sql, err != NULL ? err : "?");
    sqlite3_close(db);
}

int64_t
tb_int(const char *url, const char *sql)
{
    sqlite3 *db = open_db(url);
    sqlite3_stmt *st = NULL;
    int64_t v = -1;

    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

void
tb_refuse_updates(const char *url, const char *table, const char *where)
{
    char sql[512];

    snprintf(sql, sizeof sql,
             "CREATE TRIGGER tb_refuse_%s BEFORE UPDATE ON %s WHEN %s "
             "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
             table, table, where);
    tb_exec(url, sql);
}

void
tb_allow_updates(const char *url, const char *table)
{
    char sql[128];

    snprintf(sql, sizeof sql, "DROP TRIGGER tb_refuse_%s", table);
    tb_exec(url, sql);
}
