/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/store/backend.c -- test support per backend (backend.h). SQLite: one file per test
 * in a temporary directory, raw SQL through the sqlite3 library. PostgreSQL: DG_STORE_URL names a
 * database of a server the run may create databases on (scripts/pgtest.sh starts one); each test
 * gets a new database dg_test_<pid>_<n>, dropped after it, named by a key=value conninfo (so the
 * store's conninfo form is exercised too). */
#include "backend.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>
#include <sqlite3.h>

static char tmpdir[256];
static int counter;
static const char *backend = "sqlite";

static const char *pg_admin; /* DG_STORE_URL for PostgreSQL */

static bool
has_prefix(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

static bool
is_pg(const char *url)
{
    return has_prefix(url, "postgres://") || has_prefix(url, "postgresql://") ||
           strstr(url, "dbname=") != NULL || strstr(url, "host=") != NULL;
}

static PGconn *
pg_open(const char *url)
{
    PGconn *c = PQconnectdb(url);

    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("connect: %s", PQerrorMessage(c));
    PQclear(PQexec(c, "SET client_min_messages = warning"));
    return c;
}

static void
pg_exec(const char *url, const char *sql)
{
    PGconn *c = pg_open(url);
    PGresult *r = PQexec(c, sql);

    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
}

int
tb_init(void)
{
    const char *url = getenv("DG_STORE_URL"), *base = getenv("TMPDIR");

    if (url != NULL && *url != '\0' && is_pg(url)) {
        PGconn *c = PQconnectdb(url);
        bool ok = PQstatus(c) == CONNECTION_OK;
        if (!ok)
            fprintf(stderr, "DG_STORE_URL: cannot connect: %s", PQerrorMessage(c));
        PQfinish(c);
        if (!ok)
            return -1;
        pg_admin = url;
        backend = "postgres";
    } else if (url != NULL && *url != '\0' && !has_prefix(url, "sqlite:")) {
        fprintf(stderr, "DG_STORE_URL: no test support for this backend in this build "
                        "(want sqlite:, postgres:// or unset)\n");
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

/* The admin conninfo with dbname replaced, as key=value pairs. */
static void
pg_url_for(const char *db, char *url, size_t n)
{
    PQconninfoOption *opts = PQconninfoParse(pg_admin, NULL);
    size_t len = 0;

    assert_non_null(opts);
    for (PQconninfoOption *o = opts; o->keyword != NULL; o++)
        if (o->val != NULL && strcmp(o->keyword, "dbname") != 0)
            len += (size_t)snprintf(url + len, n - len, "%s='%s' ", o->keyword, o->val);
    snprintf(url + len, n - len, "dbname='%s'", db);
    PQconninfoFree(opts);
}

void
tb_fresh(char *url, size_t n)
{
    if (pg_admin != NULL) {
        char db[64], sql[128];
        snprintf(db, sizeof db, "dg_test_%d_%d", (int)getpid(), ++counter);
        snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s", db);
        pg_exec(pg_admin, sql);
        snprintf(sql, sizeof sql, "CREATE DATABASE %s", db);
        pg_exec(pg_admin, sql);
        pg_url_for(db, url, n);
        return;
    }
    snprintf(url, n, "%s/t%d.db", tmpdir, ++counter);
}

void
tb_drop(const char *url)
{
    char p[600];

    if (pg_admin != NULL) {
        PQconninfoOption *opts = PQconninfoParse(url, NULL);
        for (PQconninfoOption *o = opts; o != NULL && o->keyword != NULL; o++)
            if (strcmp(o->keyword, "dbname") == 0 && o->val != NULL) {
                snprintf(p, sizeof p, "DROP DATABASE IF EXISTS %s WITH (FORCE)", o->val);
                pg_exec(pg_admin, p);
            }
        PQconninfoFree(opts);
        return;
    }
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
    if (pg_admin != NULL) {
        pg_exec(url, sql);
        return;
    }
    sqlite3 *db = open_db(url);
    char *err = NULL;

    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
        fail_msg("%s: %s", sql, err != NULL ? err : "?");
    sqlite3_close(db);
}

int64_t
tb_int(const char *url, const char *sql)
{
    if (pg_admin != NULL) {
        PGconn *c = pg_open(url);
        PGresult *r = PQexec(c, sql);
        int64_t v = -1;
        if (PQresultStatus(r) != PGRES_TUPLES_OK)
            fail_msg("%s: %s", sql, PQerrorMessage(c));
        if (PQntuples(r) > 0 && !PQgetisnull(r, 0, 0))
            v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
        PQfinish(c);
        return v;
    }
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

    if (pg_admin != NULL) {
        snprintf(sql, sizeof sql,
                 "CREATE FUNCTION tb_refuse_%s() RETURNS trigger LANGUAGE plpgsql AS "
                 "$$BEGIN RAISE EXCEPTION 'refused by the test'; END$$",
                 table);
        tb_exec(url, sql);
        snprintf(sql, sizeof sql,
                 "CREATE TRIGGER tb_refuse_%s BEFORE UPDATE ON %s FOR EACH ROW WHEN (%s) "
                 "EXECUTE FUNCTION tb_refuse_%s()",
                 table, table, where, table);
        tb_exec(url, sql);
        return;
    }
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

    if (pg_admin != NULL) {
        snprintf(sql, sizeof sql, "DROP FUNCTION tb_refuse_%s CASCADE", table);
        tb_exec(url, sql);
        return;
    }
    snprintf(sql, sizeof sql, "DROP TRIGGER tb_refuse_%s", table);
    tb_exec(url, sql);
}
