/* SPDX-License-Identifier: Apache-2.0 */
/* store/sqlite/db.c -- one SQLite connection: house pragmas, migrations, statement
 * cache, bind and column helpers. Runs only SQL it was given at build time; every value is bound.
 * Diagnostics carry statement names and SQLite's messages, never a data value. */
#include "store/sqlite/db.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/xmem.h"
#include "store/store.h"

/* Statements of the connection itself, cached after the caller's n. */
enum {
    SQDB_BEGIN,
    SQDB_COMMIT,
    SQDB_ROLLBACK,
    SQDB_VERSION,
    SQDB_RECORD,
    SQDB_SAVEPOINT,
    SQDB_RELEASE,
    SQDB_ROLLBACK_TO,
    SQDB__OWN
};

static const struct sqdb_stmt sqdb_own[SQDB__OWN] = {
    [SQDB_BEGIN] = {"begin", "BEGIN IMMEDIATE"},
    [SQDB_COMMIT] = {"commit", "COMMIT"},
    [SQDB_ROLLBACK] = {"rollback", "ROLLBACK"},
    [SQDB_SAVEPOINT] = {"savepoint", "SAVEPOINT nested"},
    [SQDB_RELEASE] = {"release", "RELEASE nested"},
    [SQDB_ROLLBACK_TO] = {"rollback_to", "ROLLBACK TO nested"},
    [SQDB_VERSION] = {"schema_version", "SELECT COALESCE(MAX(version), 0) FROM schema_version"},
    [SQDB_RECORD] = {"schema_record",
                     "INSERT INTO schema_version (version, applied_at) VALUES (?1, ?2)"},
};

/* SQLITE_OPEN_FULLMUTEX serialises single calls on the connection; mu serialises whole
 * operations (see sqdb_lock). */
struct sqdb {
    sqlite3 *db;
    pthread_mutex_t mu;
    const struct sqdb_stmt *stmts;
    size_t n;
    sqlite3_stmt **cache; /* n + SQDB__OWN, prepared on first use */
    int depth;            /* open sqdb_begin calls: inner ones are savepoints */
    /* Pool health for metrics (store_pool_stats), read without the lock. */
    _Atomic int64_t held; /* sqdb_lock depth: > 0 while an operation holds the connection */
    _Atomic uint64_t waiting, waits, wait_ns, errors;
    bool full;          /* a write failed with SQLITE_FULL: reclaim the WAL at each unlock */
    bool full_logged;   /* until a reclaim succeeds (one log line per episode) */
    char *reserve_path; /* "<db>-reserve": space kept free for a checkpoint; NULL in memory */
    bool reserve_held;
    int64_t reserve_retry_at; /* monotonic seconds */
};

/* The space reserve: a file of up to SQDB_RESERVE_MAX bytes (a quarter of the free space at most)
 * held next to the database. When the disk fills, it is released so that the WAL can be
 * checkpointed into the database file (which needs room to grow) and truncated; it is taken again
 * once there is room. Without it, a WAL that filled the disk could never be checkpointed. */
#define SQDB_RESERVE_MAX ((off_t)8 << 20)
#define SQDB_RESERVE_RETRY_S 5

/* --- diagnostics and status mapping --- */

/* Through the service's log (common/log.h: one JSON line, escaped, timestamped). */
void
sqdb_log(const char *event, const char *op, int rc, const char *detail)
{
    char code[16];

    snprintf(code, sizeof code, "%d", rc);
    log_msg(LOG_ERROR, event, "backend", "sqlite", "op", op, "#code", code, "detail", detail,
            LOG_END);
}

/* rc is an extended result code (enabled at open). */
static enum status
sqdb_status(struct sqdb *d, int rc, const char *op)
{
    switch (rc) {
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
        return ST_CONFLICT;
    case SQLITE_CONSTRAINT_FOREIGNKEY:
        return ST_NOT_FOUND; /* the row it refers to (an app, a keyring) is missing */
    default:
        atomic_fetch_add_explicit(&d->errors, 1, memory_order_relaxed);
        if ((rc & 0xff) == SQLITE_FULL)
            d->full = true;
        sqdb_log("store_error", op, rc, sqlite3_errmsg(d->db));
        return ST_UNAVAILABLE;
    }
}

/* --- locking --- */

void
sqdb_lock(struct sqdb *d)
{
    if (pthread_mutex_trylock(&d->mu) != 0) { /* another operation holds it: a wait */
        int64_t t0 = clock_mono_ns();
        atomic_fetch_add_explicit(&d->waiting, 1, memory_order_relaxed);
        if (pthread_mutex_lock(&d->mu) != 0)
            abort();
        atomic_fetch_sub_explicit(&d->waiting, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&d->waits, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&d->wait_ns, (uint64_t)(clock_mono_ns() - t0),
                                  memory_order_relaxed);
    }
    atomic_fetch_add_explicit(&d->held, 1, memory_order_relaxed);
}

static int64_t
mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec;
}

/* The WAL is checkpointed every wal_autocheckpoint pages: 4000 (16 MiB) for throughput, fewer
 * when the disk has little room, so that the WAL alone never fills it (a quarter of the free
 * space, at least 64 pages). */
static void
wal_limit(struct sqdb *d)
{
    struct statvfs vs;
    long pages = 4000;

    if (d->reserve_path != NULL && statvfs(d->reserve_path, &vs) == 0) {
        unsigned long long quarter = (unsigned long long)vs.f_bavail * vs.f_frsize / 4 / 4096;
        pages = quarter < 4000 ? (quarter > 64 ? (long)quarter : 64) : 4000;
    }
    sqlite3_wal_autocheckpoint(d->db, (int)pages);
}

static void
reserve_take(struct sqdb *d)
{
    struct statvfs vs;
    int fd = open(d->reserve_path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);

    d->reserve_retry_at = mono_s() + SQDB_RESERVE_RETRY_S;
    if (fd < 0)
        return;
    off_t size = SQDB_RESERVE_MAX;
    if (fstatvfs(fd, &vs) == 0) {
        off_t quarter = (off_t)(vs.f_bavail / 4) * (off_t)vs.f_frsize;
        size = quarter < size ? quarter : size;
    }
    if (size > 0 && posix_fallocate(fd, 0, size) == 0)
        d->reserve_held = true;
    close(fd);
    if (!d->reserve_held)
        unlink(d->reserve_path);
    wal_limit(d);
}

static void
reserve_release(struct sqdb *d)
{
    if (!d->reserve_held)
        return;
    unlink(d->reserve_path);
    d->reserve_held = false;
    sqdb_log("store_disk_full", "reserve", SQLITE_FULL,
             "released the space reserve to checkpoint the WAL");
}

/* The disk filled up: the WAL (checkpointed only every wal_autocheckpoint pages) may be what
 * fills it, and failed writes never reach a commit that would checkpoint it. After every
 * operation, until it succeeds, checkpoint the WAL into the database file and truncate it, so the
 * service recovers by itself once there is room again, before the WAL can fill the disk anew. */
static void
reclaim_wal(struct sqdb *d)
{
    int frames = -1, done = -1;
    int rc = sqlite3_wal_checkpoint_v2(d->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, &frames, &done);

    if (rc == SQLITE_OK) {
        if (d->full_logged)
            sqdb_log("store_space_recovered", "reclaim_wal", rc, "the WAL was checkpointed");
        d->full = d->full_logged = false;
        d->reserve_retry_at = 0; /* take the reserve again at the next chance */
        wal_limit(d);
    } else if (!d->full_logged) {
        d->full_logged = true;
        sqdb_log("store_checkpoint_failed", "reclaim_wal", rc, sqlite3_errmsg(d->db));
    }
}

void
sqdb_unlock(struct sqdb *d)
{
    if (d->full && d->depth == 0) {
        reserve_release(d);
        reclaim_wal(d);
    } else if (d->reserve_path != NULL && !d->reserve_held && !d->full && d->depth == 0 &&
               mono_s() >= d->reserve_retry_at) {
        reserve_take(d);
    }
    atomic_fetch_sub_explicit(&d->held, 1, memory_order_relaxed);
    pthread_mutex_unlock(&d->mu);
}

void
sqdb_pool_stats(const struct sqdb *d, struct store_pool_stats *out)
{
    out->size = 1;
    out->in_use = atomic_load_explicit(&d->held, memory_order_relaxed) > 0 ? 1 : 0;
    out->waiting = atomic_load_explicit(&d->waiting, memory_order_relaxed);
    out->waits_total = atomic_load_explicit(&d->waits, memory_order_relaxed);
    out->wait_ns_total = atomic_load_explicit(&d->wait_ns, memory_order_relaxed);
    out->errors_total = atomic_load_explicit(&d->errors, memory_order_relaxed);
}

/* --- statements --- */

enum status
sqdb_prep(struct sqdb *d, size_t id, struct sqdb_bind *b)
{
    const struct sqdb_stmt *def;

    if (id >= d->n + SQDB__OWN)
        abort(); /* a caller bug, not a runtime condition */
    def = id < d->n ? &d->stmts[id] : &sqdb_own[id - d->n];
    *b = (struct sqdb_bind){.d = d, .op = def->op, .rc = SQLITE_OK};
    if (d->cache[id] == NULL) {
        int rc =
            sqlite3_prepare_v3(d->db, def->sql, -1, SQLITE_PREPARE_PERSISTENT, &d->cache[id], NULL);
        if (rc != SQLITE_OK) {
            atomic_fetch_add_explicit(&d->errors, 1, memory_order_relaxed);
            sqdb_log("store_prepare_failed", def->op, rc, sqlite3_errmsg(d->db));
            sqlite3_finalize(d->cache[id]);
            d->cache[id] = NULL;
            return ST_UNAVAILABLE;
        }
    }
    b->stmt = d->cache[id];
    return ST_OK;
}

void
sqdb_bind_i64(struct sqdb_bind *b, int64_t v)
{
    if (b->rc == SQLITE_OK)
        b->rc = sqlite3_bind_int64(b->stmt, ++b->i, v);
}

void
sqdb_bind_opt_i64(struct sqdb_bind *b, int64_t v)
{
    if (b->rc != SQLITE_OK)
        return;
    b->i++;
    b->rc = v == 0 ? sqlite3_bind_null(b->stmt, b->i) : sqlite3_bind_int64(b->stmt, b->i, v);
}

/* SQLITE_STATIC: the bindings are cleared before the operation returns, so SQLite never holds the
 * caller's pointer past it. */
void
sqdb_bind_text(struct sqdb_bind *b, const char *s)
{
    if (b->rc == SQLITE_OK)
        b->rc = sqlite3_bind_text(b->stmt, ++b->i, s, -1, SQLITE_STATIC);
}

void
sqdb_bind_blob(struct sqdb_bind *b, const uint8_t *p, size_t n)
{
    if (b->rc == SQLITE_OK)
        b->rc = n > INT32_MAX ? SQLITE_TOOBIG
                              : sqlite3_bind_blob(b->stmt, ++b->i, p, (int)n, SQLITE_STATIC);
}

static void
sqdb_reset(struct sqdb_bind *b)
{
    sqlite3_reset(b->stmt);
    sqlite3_clear_bindings(b->stmt);
}

enum status
sqdb_run(struct sqdb_bind *b, int *changes)
{
    enum status st = ST_OK;
    int rc = b->rc;

    if (rc == SQLITE_OK && (rc = sqlite3_step(b->stmt)) == SQLITE_DONE)
        rc = SQLITE_OK;
    if (rc != SQLITE_OK)
        st = sqdb_status(b->d, rc, b->op);
    else if (changes != NULL)
        *changes = sqlite3_changes(b->d->db);
    sqdb_reset(b);
    return st;
}

enum status
sqdb_exists(struct sqdb_bind *b)
{
    enum status st;
    int rc = b->rc;

    if (rc == SQLITE_OK)
        rc = sqlite3_step(b->stmt);
    st = rc == SQLITE_ROW ? ST_OK : rc == SQLITE_DONE ? ST_NOT_FOUND : sqdb_status(b->d, rc, b->op);
    sqdb_reset(b);
    return st;
}

enum status
sqdb_fetch_one(struct sqdb_bind *b, sqdb_reader read, void *dst)
{
    struct sqdb_row r = {.stmt = b->stmt};
    enum status st = ST_OK;
    int rc = b->rc;

    if (rc == SQLITE_OK && (rc = sqlite3_step(b->stmt)) == SQLITE_ROW) {
        read(&r, dst);
        if (r.bad) {
            sqdb_log("store_row_malformed", b->op, 0, "value of wrong type or size");
            st = ST_INTEGRITY;
        }
    } else if (rc == SQLITE_DONE) {
        st = ST_NOT_FOUND;
    } else {
        st = sqdb_status(b->d, rc, b->op);
    }
    sqdb_reset(b);
    return st;
}

enum status
sqdb_fetch_all(struct sqdb_bind *b, sqdb_reader read, size_t size, void **out, size_t *n)
{
    unsigned char *arr = NULL;
    size_t cap = 0, count = 0;
    enum status st = ST_OK;
    int rc = b->rc;

    while (rc == SQLITE_OK && (rc = sqlite3_step(b->stmt)) == SQLITE_ROW) {
        struct sqdb_row r = {.stmt = b->stmt};
        if (count == cap) {
            cap = cap ? cap * 2 : 8;
            arr = xrealloc(arr, cap * size);
        }
        memset(arr + count * size, 0, size);
        read(&r, arr + count * size);
        if (r.bad) {
            sqdb_log("store_row_malformed", b->op, 0, "value of wrong type or size");
            st = ST_INTEGRITY;
            break;
        }
        count++;
        rc = SQLITE_OK;
    }
    if (st == ST_OK && rc != SQLITE_DONE)
        st = sqdb_status(b->d, rc, b->op);
    sqdb_reset(b);
    if (st != ST_OK) {
        free(arr);
        arr = NULL;
        count = 0;
    }
    *out = arr;
    *n = count;
    return st;
}

/* --- columns --- */

int64_t
sqdb_col_i64(struct sqdb_row *r)
{
    int c = r->i++;

    if (sqlite3_column_type(r->stmt, c) != SQLITE_INTEGER) {
        r->bad = true;
        return 0;
    }
    return sqlite3_column_int64(r->stmt, c);
}

int64_t
sqdb_col_opt_i64(struct sqdb_row *r)
{
    if (sqlite3_column_type(r->stmt, r->i) == SQLITE_NULL) {
        r->i++;
        return 0;
    }
    return sqdb_col_i64(r);
}

uint32_t
sqdb_col_u32(struct sqdb_row *r)
{
    int64_t v = sqdb_col_i64(r);

    if (v < 0 || v > (int64_t)UINT32_MAX) {
        r->bad = true;
        return 0;
    }
    return (uint32_t)v;
}

int
sqdb_col_bool(struct sqdb_row *r)
{
    int64_t v = sqdb_col_i64(r);

    if (v != 0 && v != 1)
        r->bad = true;
    return v == 1;
}

void
sqdb_col_text(struct sqdb_row *r, char *dst, size_t cap)
{
    int c = r->i++;
    const unsigned char *p;
    size_t n;

    dst[0] = '\0';
    if (sqlite3_column_type(r->stmt, c) != SQLITE_TEXT) {
        r->bad = true;
        return;
    }
    p = sqlite3_column_text(r->stmt, c);
    n = (size_t)sqlite3_column_bytes(r->stmt, c);
    if (p == NULL || n >= cap || memchr(p, '\0', n) != NULL) {
        r->bad = true; /* keep a terminated prefix for the logs */
        n = p == NULL ? 0 : strnlen((const char *)p, cap - 1);
    }
    if (p != NULL)
        memcpy(dst, p, n);
    dst[n] = '\0';
}

size_t
sqdb_col_blob(struct sqdb_row *r, uint8_t *dst, size_t cap)
{
    int c = r->i++;
    size_t n;

    if (sqlite3_column_type(r->stmt, c) != SQLITE_BLOB) {
        r->bad = true;
        return 0;
    }
    n = (size_t)sqlite3_column_bytes(r->stmt, c);
    if (n > cap) {
        r->bad = true;
        n = cap;
    }
    if (n > 0)
        memcpy(dst, sqlite3_column_blob(r->stmt, c), n);
    return n;
}

void
sqdb_col_blob_exact(struct sqdb_row *r, uint8_t *dst, size_t n)
{
    if (sqdb_col_blob(r, dst, n) != n)
        r->bad = true;
}

/* --- transactions --- */

/* IMMEDIATE takes the write lock up front (waiting up to the busy timeout), so a transaction never
 * fails half-way on a lock upgrade. */
enum status
sqdb_begin(struct sqdb *d)
{
    struct sqdb_bind b;
    /* Inside an open transaction (an admin change carrying its audit event) nest a savepoint. */
    enum status st = sqdb_prep(d, d->n + (d->depth > 0 ? SQDB_SAVEPOINT : SQDB_BEGIN), &b);

    if (st == ST_OK && (st = sqdb_run(&b, NULL)) == ST_OK)
        d->depth++;
    return st;
}

enum status
sqdb_end(struct sqdb *d, enum status st)
{
    struct sqdb_bind b;

    if (d->depth > 1) {
        d->depth--;
        if (st != ST_OK && sqdb_prep(d, d->n + SQDB_ROLLBACK_TO, &b) == ST_OK &&
            sqdb_run(&b, NULL) != ST_OK)
            sqdb_log("store_rollback_failed", b.op, 0, "savepoint left to the transaction");
        if (sqdb_prep(d, d->n + SQDB_RELEASE, &b) == ST_OK && sqdb_run(&b, NULL) != ST_OK &&
            st == ST_OK)
            st = ST_UNAVAILABLE;
        return st;
    }
    if (d->depth > 0)
        d->depth--;
    if (st == ST_OK && (st = sqdb_prep(d, d->n + SQDB_COMMIT, &b)) == ST_OK)
        st = sqdb_run(&b, NULL);
    /* After a failed COMMIT (SQLITE_BUSY, I/O) the transaction may still be open. */
    if (st != ST_OK && !sqlite3_get_autocommit(d->db) &&
        sqdb_prep(d, d->n + SQDB_ROLLBACK, &b) == ST_OK && sqdb_run(&b, NULL) != ST_OK)
        sqdb_log("store_rollback_failed", b.op, 0, "transaction left to the connection");
    return st;
}

int64_t
sqdb_last_id(struct sqdb *d)
{
    return sqlite3_last_insert_rowid(d->db);
}

enum status
sqdb_checkpoint(struct sqdb *d, int wait_ms, bool log_failure)
{
    int frames = -1, done = -1, rc;

    if (d->depth > 0) {
        sqdb_log("store_checkpoint_failed", "checkpoint", SQLITE_LOCKED, "inside a transaction");
        return ST_UNAVAILABLE; /* a caller bug: the WAL cannot shrink under it */
    }
    /* TRUNCATE waits (through the busy handler) for readers of older snapshots: not for long,
     * the connection's lock is held meanwhile. */
    sqlite3_busy_timeout(d->db, wait_ms);
    rc = sqlite3_wal_checkpoint_v2(d->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, &frames, &done);
    sqlite3_busy_timeout(d->db, SQDB_BUSY_TIMEOUT_MS);
    if (rc == SQLITE_OK && frames <= 0)
        return ST_OK;
    if (log_failure)
        sqdb_log("store_checkpoint_failed", "checkpoint", rc,
                 rc == SQLITE_OK ? "frames left in the WAL" : sqlite3_errmsg(d->db));
    return ST_UNAVAILABLE;
}

/* --- open, migrate, close --- */

/* Create the file 0600 ourselves, before SQLite would create it 0644 & ~umask. SQLite gives its
 * -wal and -shm files the mode of the database file. */
static enum status
sqdb_create_file(const char *path, char *err, size_t err_len)
{
    struct stat sb;
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

    if (fd >= 0) {
        int rc = fchmod(fd, 0600); /* a strict umask may have taken our own bits */
        close(fd);
        if (rc == 0)
            return ST_OK;
    } else if (errno == EEXIST && stat(path, &sb) == 0) {
        if (!S_ISREG(sb.st_mode)) {
            snprintf(err, err_len, "database %s is not a regular file", path);
            return ST_IO;
        }
        if ((sb.st_mode & 077) != 0) /* an operator's choice: warn, don't override */
            log_msg(LOG_WARN, "store_file_mode", "backend", "sqlite", "detail",
                    "database file is readable by group or others; chmod 600", LOG_END);
        return ST_OK;
    }
    snprintf(err, err_len, "cannot create database %s: %s", path, strerror(errno));
    return ST_IO;
}

/* Step `sql` once: its first column must be the text want_text, or (want_text NULL) the int
 * want. */
static bool
sqdb_pragma(sqlite3 *db, const char *sql, const char *want_text, int want)
{
    sqlite3_stmt *stmt = NULL;
    bool ok = false;

    if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(stmt, 0);
        ok = want_text != NULL ? t != NULL && strcmp(t, want_text) == 0
                               : sqlite3_column_int(stmt, 0) == want;
    }
    sqlite3_finalize(stmt);
    return ok;
}

static enum status
sqdb_configure(sqlite3 *db, bool memory, char *err, size_t err_len)
{
    const char *failed = NULL;

    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, SQDB_BUSY_TIMEOUT_MS);
    /* No writable_schema or shadow-table tricks from a tampered file. */
    sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
    sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
    if (sqlite3_exec(db,
                     "PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON; "
                     "PRAGMA synchronous = FULL; PRAGMA wal_autocheckpoint = 4000",
                     NULL, NULL, NULL) != SQLITE_OK)
        failed = "pragmas";
    else if (!sqdb_pragma(db, "PRAGMA journal_mode = WAL", memory ? "memory" : "wal", 0))
        failed = "journal_mode=WAL";
    /* Read back: a library built without foreign keys ignores the pragma silently. */
    else if (!sqdb_pragma(db, "PRAGMA foreign_keys", NULL, 1))
        failed = "foreign_keys=ON";
    else if (!sqdb_pragma(db, "PRAGMA secure_delete", NULL, 1))
        failed = "secure_delete=ON";
    else if (!sqdb_pragma(db, "PRAGMA synchronous", NULL, 2))
        failed = "synchronous=FULL";
    if (failed == NULL)
        return ST_OK;
    snprintf(err, err_len, "cannot set %s on the database: %s", failed, sqlite3_errmsg(db));
    return ST_UNAVAILABLE;
}

/* Highest applied migration, 0 on a new database (schema_version comes with 0001). */
static enum status
sqdb_applied(struct sqdb *d, int *version)
{
    struct sqdb_bind b;
    enum status st;
    int rc;

    *version = 0;
    if (!sqdb_pragma(d->db,
                     "SELECT count(*) FROM sqlite_schema "
                     "WHERE type = 'table' AND name = 'schema_version'",
                     NULL, 1))
        return ST_OK;
    if ((st = sqdb_prep(d, d->n + SQDB_VERSION, &b)) != ST_OK)
        return st;
    if ((rc = sqlite3_step(b.stmt)) == SQLITE_ROW)
        *version = sqlite3_column_int(b.stmt, 0);
    else
        st = sqdb_status(d, rc, b.op);
    sqdb_reset(&b);
    return st;
}

/* Apply m[have..n-1], one BEGIN IMMEDIATE transaction each: the write lock makes two processes
 * opening a new database at once apply each migration exactly once. m runs 1..n without gaps
 * (embed_sql.cmake checks), so m[have] is version have + 1. */
static enum status
sqdb_migrate(struct sqdb *d, const struct store_migration *m, size_t n, char *err, size_t err_len)
{
    struct sqdb_bind b;
    enum status st;
    int have = 0;

    for (;;) {
        if ((st = sqdb_begin(d)) != ST_OK || (st = sqdb_applied(d, &have)) != ST_OK) {
            snprintf(err, err_len, "cannot read the schema version: %s", sqlite3_errmsg(d->db));
            break;
        }
        if ((size_t)have >= n) {
            if ((size_t)have > n) {
                snprintf(err, err_len, "database schema version %d is newer than this build (%zu)",
                         have, n);
                st = ST_UNAVAILABLE;
            }
            break;
        }
        if (sqlite3_exec(d->db, m[have].sql, NULL, NULL, NULL) != SQLITE_OK) {
            snprintf(err, err_len, "migration %s failed: %s", m[have].name, sqlite3_errmsg(d->db));
            st = ST_UNAVAILABLE;
            break;
        }
        if ((st = sqdb_prep(d, d->n + SQDB_RECORD, &b)) == ST_OK) {
            sqdb_bind_i64(&b, m[have].version);
            sqdb_bind_i64(&b, (int64_t)time(NULL));
            st = sqdb_run(&b, NULL);
        }
        if ((st = sqdb_end(d, st)) != ST_OK) {
            snprintf(err, err_len, "migration %s could not be recorded", m[have].name);
            return st;
        }
    }
    return sqdb_end(d, st);
}

enum status
sqdb_open(struct sqdb **out, const char *path, const struct sqdb_stmt *stmts, size_t n,
          const struct store_migration *migrations, size_t n_migrations, char *err, size_t err_len)
{
    const bool memory = strcmp(path, ":memory:") == 0;
    struct sqdb *d = NULL;
    enum status st;
    int rc;

    *out = NULL;
    if (!sqlite3_threadsafe()) {
        snprintf(err, err_len, "SQLite was built without thread support");
        return ST_UNAVAILABLE;
    }
    if (!memory && (st = sqdb_create_file(path, err, err_len)) != ST_OK)
        return st;
    d = xcalloc(1, sizeof *d);
    d->stmts = stmts;
    d->n = n;
    d->cache = xcalloc(n + SQDB__OWN, sizeof *d->cache);
    pthread_mutexattr_t ma;
    /* Recursive: an admin change runs its own operation inside the audit event's transaction. */
    if (pthread_mutexattr_init(&ma) != 0 ||
        pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE) != 0 ||
        pthread_mutex_init(&d->mu, &ma) != 0)
        abort();
    pthread_mutexattr_destroy(&ma);
    /* No SQLITE_OPEN_CREATE for files: sqdb_create_file made it with the right mode. */
    rc = sqlite3_open_v2(
        path, &d->db,
        SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX | (memory ? SQLITE_OPEN_CREATE : 0), NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, err_len, "cannot open database %s: %s", path,
                 d->db != NULL ? sqlite3_errmsg(d->db) : sqlite3_errstr(rc));
        st = ST_UNAVAILABLE;
        goto out;
    }
    if ((st = sqdb_configure(d->db, memory, err, err_len)) != ST_OK ||
        (st = sqdb_migrate(d, migrations, n_migrations, err, err_len)) != ST_OK)
        goto out;
    if (!memory) {
        d->reserve_path = xmalloc(strlen(path) + sizeof "-reserve");
        sprintf(d->reserve_path, "%s-reserve", path);
        reserve_take(d);
    }
    *out = d;
out:
    if (*out == NULL)
        sqdb_close(d);
    return st;
}

int
sqdb_schema_version(struct sqdb *d)
{
    int v = -1;

    sqdb_lock(d);
    if (sqdb_applied(d, &v) != ST_OK)
        v = -1;
    sqdb_unlock(d);
    return v;
}

void
sqdb_close(struct sqdb *d)
{
    if (d == NULL)
        return;
    for (size_t i = 0; i < d->n + SQDB__OWN; i++)
        sqlite3_finalize(d->cache[i]);
    sqlite3_close_v2(d->db); /* NULL-safe; the last close checkpoints the WAL */
    if (d->reserve_held)
        unlink(d->reserve_path);
    free(d->reserve_path);
    pthread_mutex_destroy(&d->mu);
    free(d->cache);
    free(d);
}
