/* SPDX-License-Identifier: Apache-2.0 */
/* store/postgres/pg.h -- private to store/postgres/: a bounded pool of libpq connections with a
 * circuit breaker, the migrations under an advisory lock, one transaction per operation with
 * bounded jittered retries, and the bind/column helpers. Knows no table but schema_version; the
 * SQL of store.h lives in postgres.c. Every value is a parameter ($1, $2...), never spliced into
 * SQL. Diagnostics carry statement names, SQLSTATEs and PostgreSQL's primary message, never a
 * data value, the conninfo or a password. */
#ifndef DG_STORE_POSTGRES_PG_H
#define DG_STORE_POSTGRES_PG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "common/status.h"
#include "store/private/migrations.h"

#define PG_POOL_MAX 16              /* connections per process */
#define PG_ACQUIRE_TIMEOUT_MS 10000 /* waiting for a free connection */
#define PG_STATEMENT_TIMEOUT_MS 5000
#define PG_CONNECT_TIMEOUT_S "5"
#define PG_ATTEMPTS 4 /* one try and up to three retries of a transient failure */
#define PG_BACKOFF_MS 20
/* The breaker opens after PG_BREAKER_FAILURES failed connects in a row and stays open
 * PG_BREAKER_OPEN_MS: every operation then fails at once (ST_UNAVAILABLE) without touching the
 * network; after that operations try again: the next failed connect opens it again, a success
 * closes it. */
#define PG_BREAKER_FAILURES 3
#define PG_BREAKER_OPEN_MS 1000

struct pgpool;
struct store_pool_stats;

/* Connect (checking the server answers), migrate under the advisory lock and keep the pool.
 * conninfo: a postgres:// URL or key=value string, passed to libpq as given. */
NODISCARD enum status pgpool_open(struct pgpool **out, const char *conninfo,
                                  const struct store_migration *m, size_t n_m, char *err,
                                  size_t err_len);
void pgpool_close(struct pgpool *p);
void pgpool_stats(const struct pgpool *p, struct store_pool_stats *out);
int pgpool_schema_version(struct pgpool *p);

/* One transaction: `struct pgtx t = PGTX_INIT(pool, write); while (pgtx_next(&t)) { body }`.
 * The body runs its statements with t and sets t.st (ST_OK to commit); it must not break out of
 * the loop. A serialization failure, a deadlock or a connection lost before COMMIT was sent runs
 * the body again (PG_ATTEMPTS at most, jittered backoff), so the body must be idempotent up to
 * its out-params (pg_all frees an array a failed attempt left). A read (write false) runs without
 * BEGIN/COMMIT when it is one statement. After the loop t.st is the result. */
struct pgtx {
    struct pgpool *p;
    struct pgconn *conn;
    PGconn *c;
    enum status st;
    int attempt;
    bool write, retry, begun;
};
#define PGTX_INIT(pool, w) ((struct pgtx){.p = (pool), .write = (w), .st = ST_OK})
bool pgtx_next(struct pgtx *t);

/* A statement's parameters, in order ($1, $2, ...). */
#define PGQ_MAX 16
struct pgq {
    const char *op, *sql;
    int n;
    unsigned int types[PGQ_MAX];
    const char *v[PGQ_MAX];
    int len[PGQ_MAX], fmt[PGQ_MAX];
    char num[PGQ_MAX][24];
};
#define PGQ(o, s) ((struct pgq){.op = (o), .sql = (s)})
void pgq_i64(struct pgq *q, int64_t v);
void pgq_opt_i64(struct pgq *q, int64_t v); /* 0 binds NULL */
void pgq_bool(struct pgq *q, bool v);
void pgq_text(struct pgq *q, const char *s); /* NULL binds NULL */
void pgq_blob(struct pgq *q, const uint8_t *p, size_t n);

/* Run a statement that returns no rows; *changes (optional) gets the rows it changed. Unique
 * violations are ST_CONFLICT, foreign-key violations ST_NOT_FOUND, anything else is counted,
 * logged and ST_UNAVAILABLE. Does nothing (returns t->st) when t->st is not ST_OK already. */
NODISCARD enum status pg_run(struct pgtx *t, struct pgq *q, int *changes);

/* Columns are read in order from text results; a value that does not parse sets bad. */
struct pgrow {
    PGresult *r;
    int row, i;
    bool bad;
};
typedef void (*pg_reader)(struct pgrow *r, void *dst);
bool pgc_null(const struct pgrow *r); /* the next column is NULL */
int64_t pgc_i64(struct pgrow *r);
int64_t pgc_opt_i64(struct pgrow *r); /* NULL reads as 0 */
uint32_t pgc_u32(struct pgrow *r);
int pgc_bool(struct pgrow *r);
void pgc_text(struct pgrow *r, char *dst, size_t cap); /* always terminated */
char *pgc_dup_text(struct pgrow *r);                   /* malloc'd; "" for NULL */
size_t pgc_blob(struct pgrow *r, uint8_t *dst, size_t cap);
void pgc_blob_exact(struct pgrow *r, uint8_t *dst, size_t n);

/* At most one row into dst (ST_NOT_FOUND if none, ST_INTEGRITY if the reader set bad). */
NODISCARD enum status pg_one(struct pgtx *t, struct pgq *q, pg_reader read, void *dst);
/* Every row into a malloc'd array (NULL when empty); *out is freed first (a retried attempt). */
NODISCARD enum status pg_all(struct pgtx *t, struct pgq *q, pg_reader read, size_t size, void **out,
                             size_t *n);

/* Changes made through other processes: a thread with a connection of its own LISTENs on channel
 * "difyguard" and calls cb(arg, payload) for each notification, and cb(arg, "resync") after each
 * (re)connection (notifications sent meanwhile are lost). cb NULL stops the thread. */
void pgpool_watch(struct pgpool *p, void (*cb)(void *arg, const char *what), void *arg);

void pg_log(const char *event, const char *op, const char *sqlstate, const char *detail);

#endif
