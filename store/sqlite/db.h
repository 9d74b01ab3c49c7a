/* SPDX-License-Identifier: Apache-2.0 */
/* store/sqlite/db.h -- private: one SQLite connection set up the house way (WAL,
 * synchronous=FULL, foreign keys, secure_delete, file mode 0600), the embedded migrations, a cache
 * of prepared statements and bind/column helpers. Knows no table but schema_version; the SQL and
 * row mapping of store.h live in sqlite.c, keyrings.c, apps.c and audit.c. */
#ifndef DG_STORE_SQLITE_DB_H
#define DG_STORE_SQLITE_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "common/status.h"
#include "store/private/migrations.h"

#define SQDB_BUSY_TIMEOUT_MS 5000

/* A statement the caller will run by index; op names it in diagnostics. */
struct sqdb_stmt {
    const char *op;
    const char *sql;
};

struct sqdb;

/* Open path (created 0600 if missing, or ":memory:"), configure it and apply the pending
 * migrations, each in its own BEGIN IMMEDIATE transaction. stmts (n entries) must outlive the
 * handle. On failure *out is NULL and err holds one line. */
NODISCARD enum status sqdb_open(struct sqdb **out, const char *path, const struct sqdb_stmt *stmts,
                                size_t n, const struct store_migration *migrations,
                                size_t n_migrations, char *err, size_t err_len);
void sqdb_close(struct sqdb *d); /* NULL-safe */

/* Every operation runs between lock and unlock: the connection has one transaction shared by all
 * threads and each cached statement one cursor, so whole operations must not interleave. */
void sqdb_lock(struct sqdb *d);
void sqdb_unlock(struct sqdb *d);

/* Pool health (one connection): never takes the lock. */
struct store_pool_stats;
void sqdb_pool_stats(const struct sqdb *d, struct store_pool_stats *out);

/* Highest applied migration, -1 on error. Takes the lock itself. */
int sqdb_schema_version(struct sqdb *d);

/* One statement run: sqdb_prep, binds in parameter order (?1, ?2, ...; the first failure is
 * kept and reported by the run), then exactly one of sqdb_run / sqdb_fetch_one / sqdb_fetch_all,
 * which always reset the statement and clear its bindings. */
struct sqdb_bind {
    struct sqdb *d;
    sqlite3_stmt *stmt;
    const char *op;
    int i;  /* last bound parameter */
    int rc; /* first bind failure */
};

NODISCARD enum status sqdb_prep(struct sqdb *d, size_t id, struct sqdb_bind *b);
void sqdb_bind_i64(struct sqdb_bind *b, int64_t v);
void sqdb_bind_opt_i64(struct sqdb_bind *b, int64_t v);  /* 0 binds NULL */
void sqdb_bind_text(struct sqdb_bind *b, const char *s); /* NUL-terminated */
void sqdb_bind_blob(struct sqdb_bind *b, const uint8_t *p, size_t n);

/* Run to completion; *changes (optional) gets the rows it changed. UNIQUE and PRIMARY KEY
 * violations are ST_CONFLICT, FOREIGN KEY violations ST_NOT_FOUND, anything else is logged and
 * ST_UNAVAILABLE. */
NODISCARD enum status sqdb_run(struct sqdb_bind *b, int *changes);

/* Columns are read in order; a value of the wrong type or size sets bad. */
struct sqdb_row {
    sqlite3_stmt *stmt;
    int i;
    bool bad;
};
typedef void (*sqdb_reader)(struct sqdb_row *r, void *dst);

int64_t sqdb_col_i64(struct sqdb_row *r);
int64_t sqdb_col_opt_i64(struct sqdb_row *r); /* NULL reads as 0 */
uint32_t sqdb_col_u32(struct sqdb_row *r);
int sqdb_col_bool(struct sqdb_row *r);
void sqdb_col_text(struct sqdb_row *r, char *dst, size_t cap); /* always terminated */
size_t sqdb_col_blob(struct sqdb_row *r, uint8_t *dst, size_t cap);
void sqdb_col_blob_exact(struct sqdb_row *r, uint8_t *dst, size_t n);

/* At most one row into dst (ST_NOT_FOUND if none, ST_INTEGRITY if the reader set bad). */
NODISCARD enum status sqdb_fetch_one(struct sqdb_bind *b, sqdb_reader read, void *dst);
/* Every row into a malloc'd array of `size`-byte elements (NULL when empty); nothing on error. */
NODISCARD enum status sqdb_fetch_all(struct sqdb_bind *b, sqdb_reader read, size_t size, void **out,
                                     size_t *n);
/* Run a bound "SELECT 1 ...": ST_OK if it returns a row, ST_NOT_FOUND if not. */
NODISCARD enum status sqdb_exists(struct sqdb_bind *b);

/* BEGIN IMMEDIATE; sqdb_end commits when st is ST_OK, else rolls back, and returns the result. */
NODISCARD enum status sqdb_begin(struct sqdb *d);
NODISCARD enum status sqdb_end(struct sqdb *d, enum status st);
int64_t sqdb_last_id(struct sqdb *d); /* rowid of this connection's last INSERT */

/* Copy the WAL into the database and truncate it to zero bytes, so deleted rows (already zeroed
 * in the database by secure_delete) no longer sit in old WAL frames. One attempt that waits at
 * most wait_ms for readers on older snapshots (another process): ST_OK when the WAL is empty,
 * ST_UNAVAILABLE (logged when log_failure) if not. Call with the lock held, outside a
 * transaction. */
NODISCARD enum status sqdb_checkpoint(struct sqdb *d, int wait_ms, bool log_failure);

/* One JSON line on stderr. Never pass data values: statement names and SQLite messages only. */
void sqdb_log(const char *event, const char *op, int rc, const char *detail);

#endif
