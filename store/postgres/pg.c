/* SPDX-License-Identifier: Apache-2.0 */
/* store/postgres/pg.c -- the libpq side of the PostgreSQL backend: pool, circuit breaker,
 * migrations, transactions with retries, parameters and columns (pg.h). Runs only SQL it was
 * given at build time; every value is a parameter. */
#include "store/postgres/pg.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/xmem.h"
#include "store/store.h"

/* Type OIDs of the parameters we send (pg_type.h; stable across releases). */
#define OID_BOOL 16u
#define OID_BYTEA 17u
#define OID_INT8 20u
#define OID_TEXT 25u

/* Any constant: the key of the advisory lock migrations run under (every replica uses it). */
#define PG_MIGRATE_LOCK "7136428001"

/* Statements are prepared once per connection (named "dg<slot>", the slot of their SQL text in
 * stmt_slots): every SQL text is a string literal of this backend, so its address names it. */
#define STMT_SLOTS 512

struct pgconn {
    PGconn *c; /* NULL: not connected (yet, or dropped after a failure) */
    bool busy;
    uint8_t prepared[STMT_SLOTS / 8]; /* bitmap: statements prepared on c */
};

struct pgpool {
    char *conninfo;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct pgconn slots[PG_POOL_MAX];
    /* For metrics and the breaker, read without the lock. */
    _Atomic uint64_t in_use, waiting, waits, wait_ns, errors;
    _Atomic int fails;             /* connection failures in a row */
    _Atomic int64_t open_until_ns; /* breaker open until then (monotonic) */
    /* pgpool_watch */
    pthread_t watch_thread;
    bool watching;
    atomic_bool watch_stop;
    void (*watch_cb)(void *arg, const char *what);
    void *watch_arg;
};

/* --- diagnostics --- */

void
pg_log(const char *event, const char *op, const char *sqlstate, const char *detail)
{
    log_msg(LOG_ERROR, event, "backend", "postgres", "op", op, "sqlstate",
            sqlstate != NULL ? sqlstate : "", "detail", detail != NULL ? detail : "", LOG_END);
}

/* libpq's own messages end with a newline; keep the first line only. */
static void
first_line(const char *msg, char *out, size_t cap)
{
    size_t n = strcspn(msg != NULL ? msg : "", "\n");
    snprintf(out, cap, "%.*s", (int)(n < cap ? n : cap - 1), msg != NULL ? msg : "");
}

/* --- circuit breaker --- */

static bool
breaker_open(const struct pgpool *p)
{
    return clock_mono_ns() < atomic_load_explicit(&p->open_until_ns, memory_order_relaxed);
}

static void
breaker_fail(struct pgpool *p)
{
    int n = atomic_fetch_add_explicit(&p->fails, 1, memory_order_relaxed) + 1;

    if (n >= PG_BREAKER_FAILURES) {
        if (!breaker_open(p)) {
            char ms[24];
            snprintf(ms, sizeof ms, "%d", PG_BREAKER_OPEN_MS);
            log_msg(LOG_WARN, "store_breaker_open", "backend", "postgres", "#open_ms", ms, LOG_END);
        }
        atomic_store_explicit(&p->open_until_ns,
                              clock_mono_ns() + (int64_t)PG_BREAKER_OPEN_MS * 1000000,
                              memory_order_relaxed);
    }
}

static void
breaker_ok(struct pgpool *p)
{
    if (atomic_exchange_explicit(&p->fails, 0, memory_order_relaxed) >= PG_BREAKER_FAILURES)
        log_msg(LOG_INFO, "store_breaker_closed", "backend", "postgres", LOG_END);
}

/* --- connections --- */

/* Server notices (a WARNING, a NOTICE) are not ours to print on stderr. */
static void
notice_ignore(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static PGconn *
pg_connect(const char *conninfo, char *err, size_t err_len)
{
    /* Later keywords win: the operator's conninfo (expanded from dbname) overrides our defaults. */
    const char *const keys[] = {"connect_timeout", "fallback_application_name", "dbname", NULL};
    const char *const vals[] = {PG_CONNECT_TIMEOUT_S, "difyguard", conninfo, NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    char line[256];

    if (c == NULL || PQstatus(c) != CONNECTION_OK) {
        first_line(c != NULL ? PQerrorMessage(c) : "out of memory", line, sizeof line);
        snprintf(err, err_len, "cannot connect to PostgreSQL: %s", line);
        PQfinish(c);
        return NULL;
    }
    PQsetNoticeProcessor(c, notice_ignore, NULL);
    return c;
}

/* Our statement timeout, unless the operator set one (options=-c statement_timeout=...). */
static bool
pg_session_setup(PGconn *c)
{
    char ms[24];
    snprintf(ms, sizeof ms, "%d", PG_STATEMENT_TIMEOUT_MS);
    const char *v[1] = {ms};
    PGresult *r = PQexecParams(c,
                               "SELECT set_config('statement_timeout', $1, false) "
                               "WHERE current_setting('statement_timeout') = '0'",
                               1, NULL, v, NULL, NULL, 0);
    bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;

    PQclear(r);
    return ok;
}

/* A free connection (connecting a slot if needed), or ST_UNAVAILABLE: breaker open, no slot
 * free within PG_ACQUIRE_TIMEOUT_MS, or the connection failed. */
static enum status
pool_acquire(struct pgpool *p, struct pgconn **out)
{
    struct pgconn *slot = NULL;
    bool waited = false;
    int64_t t0 = 0;

    *out = NULL;
    if (breaker_open(p))
        return ST_UNAVAILABLE;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        for (size_t i = 0; i < PG_POOL_MAX && slot == NULL; i++)
            if (!p->slots[i].busy && p->slots[i].c != NULL)
                slot = &p->slots[i];
        for (size_t i = 0; i < PG_POOL_MAX && slot == NULL; i++)
            if (!p->slots[i].busy)
                slot = &p->slots[i];
        if (slot != NULL)
            break;
        if (!waited) {
            waited = true;
            t0 = clock_mono_ns();
            atomic_fetch_add_explicit(&p->waiting, 1, memory_order_relaxed);
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += PG_ACQUIRE_TIMEOUT_MS / 1000;
        if (pthread_cond_timedwait(&p->cv, &p->mu, &ts) == ETIMEDOUT)
            break;
    }
    if (slot != NULL)
        slot->busy = true;
    pthread_mutex_unlock(&p->mu);
    if (waited) {
        atomic_fetch_sub_explicit(&p->waiting, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&p->waits, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&p->wait_ns, (uint64_t)(clock_mono_ns() - t0),
                                  memory_order_relaxed);
    }
    if (slot == NULL) {
        atomic_fetch_add_explicit(&p->errors, 1, memory_order_relaxed);
        pg_log("store_pool_exhausted", "acquire", NULL, "no connection free in time");
        return ST_UNAVAILABLE;
    }
    atomic_fetch_add_explicit(&p->in_use, 1, memory_order_relaxed);
    if (slot->c == NULL) {
        memset(slot->prepared, 0, sizeof slot->prepared);
        char err[300];
        if ((slot->c = pg_connect(p->conninfo, err, sizeof err)) == NULL ||
            !pg_session_setup(slot->c)) {
            if (slot->c == NULL)
                snprintf(err, sizeof err, "%s", "session setup failed");
            PQfinish(slot->c);
            slot->c = NULL;
            atomic_fetch_add_explicit(&p->errors, 1, memory_order_relaxed);
            if (!breaker_open(p))
                pg_log("store_connect_failed", "connect", NULL, err);
            breaker_fail(p);
            pthread_mutex_lock(&p->mu);
            slot->busy = false;
            pthread_cond_signal(&p->cv);
            pthread_mutex_unlock(&p->mu);
            atomic_fetch_sub_explicit(&p->in_use, 1, memory_order_relaxed);
            return ST_UNAVAILABLE;
        }
    }
    *out = slot;
    return ST_OK;
}

/* Give the connection back; one that is broken or still inside a transaction is dropped. */
static void
pool_release(struct pgpool *p, struct pgconn *slot)
{
    if (slot->c != NULL &&
        (PQstatus(slot->c) != CONNECTION_OK || PQtransactionStatus(slot->c) != PQTRANS_IDLE)) {
        PQfinish(slot->c);
        slot->c = NULL;
    }
    atomic_fetch_sub_explicit(&p->in_use, 1, memory_order_relaxed);
    pthread_mutex_lock(&p->mu);
    slot->busy = false;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

void
pgpool_stats(const struct pgpool *p, struct store_pool_stats *out)
{
    out->size = PG_POOL_MAX;
    out->in_use = atomic_load_explicit(&p->in_use, memory_order_relaxed);
    out->waiting = atomic_load_explicit(&p->waiting, memory_order_relaxed);
    out->waits_total = atomic_load_explicit(&p->waits, memory_order_relaxed);
    out->wait_ns_total = atomic_load_explicit(&p->wait_ns, memory_order_relaxed);
    out->errors_total = atomic_load_explicit(&p->errors, memory_order_relaxed);
    out->breaker_open = breaker_open(p) ? 1 : 0;
}

/* --- parameters --- */

static struct pgq *
pgq_slot(struct pgq *q, unsigned int type, int fmt)
{
    if (q->n >= PGQ_MAX)
        abort(); /* a caller bug: more parameters than any statement here has */
    q->types[q->n] = type;
    q->fmt[q->n] = fmt;
    q->len[q->n] = 0;
    q->v[q->n] = NULL;
    return q;
}

void
pgq_i64(struct pgq *q, int64_t v)
{
    pgq_slot(q, OID_INT8, 0);
    snprintf(q->num[q->n], sizeof q->num[q->n], "%lld", (long long)v);
    q->v[q->n] = q->num[q->n];
    q->n++;
}

void
pgq_opt_i64(struct pgq *q, int64_t v)
{
    if (v != 0) {
        pgq_i64(q, v);
        return;
    }
    pgq_slot(q, OID_INT8, 0);
    q->n++;
}

void
pgq_bool(struct pgq *q, bool v)
{
    pgq_slot(q, OID_BOOL, 0);
    q->v[q->n] = v ? "t" : "f";
    q->n++;
}

void
pgq_text(struct pgq *q, const char *s)
{
    pgq_slot(q, OID_TEXT, 0);
    q->v[q->n] = s;
    q->n++;
}

void
pgq_blob(struct pgq *q, const uint8_t *p, size_t n)
{
    static const uint8_t empty[1] = {0};

    pgq_slot(q, OID_BYTEA, 1);
    if (n > INT32_MAX)
        abort(); /* store.c bounds every blob */
    q->v[q->n] = (const char *)(p != NULL ? p : empty);
    q->len[q->n] = (int)n;
    q->n++;
}

/* --- running statements --- */

static bool
sqlstate_is(const char *code, const char *want)
{
    return code != NULL && strcmp(code, want) == 0;
}

/* Map a failed result; transient failures mark the attempt for a retry. */
static enum status
pg_status(struct pgtx *t, PGresult *r, const char *op)
{
    const char *code = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    char line[256];

    if (sqlstate_is(code, "23505"))
        return ST_CONFLICT; /* unique_violation */
    if (sqlstate_is(code, "23503"))
        return ST_NOT_FOUND; /* foreign_key_violation: the row it refers to is missing */
    atomic_fetch_add_explicit(&t->p->errors, 1, memory_order_relaxed);
    if (sqlstate_is(code, "40001") || sqlstate_is(code, "40P01")) {
        t->retry = true; /* serialization_failure, deadlock_detected */
    } else if (PQstatus(t->c) != CONNECTION_OK || code == NULL || strncmp(code, "08", 2) == 0 ||
               strncmp(code, "57P", 3) == 0) {
        /* Connection lost, or the server is shutting down: retried on a new connection. Not a
         * breaker failure by itself (after a restart every pooled connection is stale while
         * the server is fine); failing to connect is. */
        t->retry = true;
    }
    first_line(r != NULL ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL, line,
               sizeof line);
    if (line[0] == '\0')
        first_line(PQerrorMessage(t->c), line, sizeof line);
    pg_log("store_error", op, code, line);
    return ST_UNAVAILABLE;
}

static const char *_Atomic stmt_slots[STMT_SLOTS];

/* The slot of a SQL text (lock-free open addressing by address), -1 when the table is full. */
static int
stmt_slot(const char *sql)
{
    uintptr_t h = (uintptr_t)sql;
    size_t i = (size_t)((h >> 3) ^ (h >> 13)) % STMT_SLOTS;

    for (size_t n = 0; n < STMT_SLOTS; n++, i = (i + 1) % STMT_SLOTS) {
        const char *cur = atomic_load(&stmt_slots[i]);
        if (cur == sql)
            return (int)i;
        if (cur == NULL) {
            const char *expected = NULL;
            if (atomic_compare_exchange_strong(&stmt_slots[i], &expected, sql) || expected == sql)
                return (int)i;
        }
    }
    return -1;
}

/* Run q: prepared on this connection at its first use there, then executed by name. */
static PGresult *
pg_exec(struct pgtx *t, struct pgq *q)
{
    int slot = stmt_slot(q->sql);
    char name[16];

    if (slot < 0)
        return PQexecParams(t->c, q->sql, q->n, q->types, q->v, q->len, q->fmt, 0);
    snprintf(name, sizeof name, "dg%d", slot);
    uint8_t *bits = &t->conn->prepared[slot / 8], bit = (uint8_t)(1u << (slot % 8));
    if ((*bits & bit) == 0) {
        PGresult *r = PQprepare(t->c, name, q->sql, q->n, q->types);
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            return r; /* the caller maps the failure */
        PQclear(r);
        *bits |= bit;
    }
    return PQexecPrepared(t->c, name, q->n, q->v, q->len, q->fmt, 0);
}

enum status
pg_run(struct pgtx *t, struct pgq *q, int *changes)
{
    enum status st = ST_OK;
    PGresult *r;

    if (t->st != ST_OK)
        return t->st;
    r = pg_exec(t, q);
    if (PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK) {
        if (changes != NULL)
            *changes = atoi(PQcmdTuples(r));
    } else {
        st = pg_status(t, r, q->op);
    }
    PQclear(r);
    return st;
}

enum status
pg_one(struct pgtx *t, struct pgq *q, pg_reader read, void *dst)
{
    enum status st = ST_OK;
    PGresult *r;

    if (t->st != ST_OK)
        return t->st;
    r = pg_exec(t, q);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        st = pg_status(t, r, q->op);
    } else if (PQntuples(r) == 0) {
        st = ST_NOT_FOUND;
    } else {
        struct pgrow row = {.r = r};
        read(&row, dst);
        if (row.bad) {
            pg_log("store_row_malformed", q->op, NULL, "value of wrong type or size");
            st = ST_INTEGRITY;
        }
    }
    PQclear(r);
    return st;
}

enum status
pg_all(struct pgtx *t, struct pgq *q, pg_reader read, size_t size, void **out, size_t *n)
{
    enum status st = ST_OK;
    unsigned char *arr = NULL;
    size_t count = 0;
    PGresult *r;

    free(*out);
    *out = NULL;
    *n = 0;
    if (t->st != ST_OK)
        return t->st;
    r = pg_exec(t, q);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        st = pg_status(t, r, q->op);
    } else if ((count = (size_t)PQntuples(r)) > 0) {
        arr = xcalloc(count, size);
        for (size_t i = 0; i < count; i++) {
            struct pgrow row = {.r = r, .row = (int)i};
            read(&row, arr + i * size);
            if (row.bad) {
                pg_log("store_row_malformed", q->op, NULL, "value of wrong type or size");
                st = ST_INTEGRITY;
                break;
            }
        }
    }
    PQclear(r);
    if (st != ST_OK) {
        free(arr);
        arr = NULL;
        count = 0;
    }
    *out = arr;
    *n = count;
    return st;
}

/* --- transactions --- */

static void
pgtx_finish(struct pgtx *t)
{
    if (t->begun) {
        if (t->st == ST_OK) {
            struct pgq q = PGQ("commit", "COMMIT");
            bool retry = t->retry;
            t->st = pg_run(t, &q, NULL);
            /* COMMIT sent and the connection lost: it may have committed, so never run the body
             * again (it would be applied twice); the caller sees ST_UNAVAILABLE. A serialization
             * failure at COMMIT did not commit: that one may be retried. */
            if (t->st != ST_OK && PQstatus(t->c) != CONNECTION_OK)
                t->retry = retry;
        } else if (PQstatus(t->c) == CONNECTION_OK) {
            PQclear(PQexec(t->c, "ROLLBACK"));
        }
    }
    if (t->st == ST_OK)
        breaker_ok(t->p);
    pool_release(t->p, t->conn);
    t->conn = NULL;
    t->c = NULL;
    t->begun = false;
}

static void
backoff(int attempt)
{
    /* PG_BACKOFF_MS << attempt, jittered into [half, whole]: replicas retrying together spread. */
    static _Thread_local unsigned int seed;
    uint32_t base = (uint32_t)PG_BACKOFF_MS << attempt;

    if (seed == 0)
        seed = (unsigned int)clock_mono_ns() ^ (unsigned int)(uintptr_t)&seed;
    uint32_t ms = base / 2 + (uint32_t)rand_r(&seed) % (base / 2 + 1);
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

bool
pgtx_next(struct pgtx *t)
{
    for (;;) {
        if (t->conn != NULL) { /* the body (or BEGIN) ran: end the attempt */
            pgtx_finish(t);
            if (!t->retry || t->attempt + 1 >= PG_ATTEMPTS)
                return false;
            backoff(t->attempt++);
            t->retry = false;
            t->st = ST_OK;
        }
        if (pool_acquire(t->p, &t->conn) != ST_OK) {
            t->st = ST_UNAVAILABLE;
            return false;
        }
        t->c = t->conn->c;
        if (t->write) {
            struct pgq q = PGQ("begin", "BEGIN");
            if ((t->st = pg_run(t, &q, NULL)) != ST_OK)
                continue;
            t->begun = true;
        }
        return true;
    }
}

/* --- columns (text format) --- */

bool
pgc_null(const struct pgrow *r)
{
    return PQgetisnull(r->r, r->row, r->i) != 0;
}

int64_t
pgc_i64(struct pgrow *r)
{
    int c = r->i++;
    const char *s;
    char *end;
    long long v;

    if (c >= PQnfields(r->r) || PQgetisnull(r->r, r->row, c)) {
        r->bad = true;
        return 0;
    }
    s = PQgetvalue(r->r, r->row, c);
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0') {
        r->bad = true;
        return 0;
    }
    return (int64_t)v;
}

int64_t
pgc_opt_i64(struct pgrow *r)
{
    if (pgc_null(r)) {
        r->i++;
        return 0;
    }
    return pgc_i64(r);
}

uint32_t
pgc_u32(struct pgrow *r)
{
    int64_t v = pgc_i64(r);

    if (v < 0 || v > (int64_t)UINT32_MAX) {
        r->bad = true;
        return 0;
    }
    return (uint32_t)v;
}

int
pgc_bool(struct pgrow *r)
{
    int c = r->i++;
    const char *s;

    if (c >= PQnfields(r->r) || PQgetisnull(r->r, r->row, c)) {
        r->bad = true;
        return 0;
    }
    s = PQgetvalue(r->r, r->row, c);
    if (strcmp(s, "t") != 0 && strcmp(s, "f") != 0)
        r->bad = true;
    return strcmp(s, "t") == 0;
}

void
pgc_text(struct pgrow *r, char *dst, size_t cap)
{
    int c = r->i++;
    const char *s;
    size_t n;

    dst[0] = '\0';
    if (c >= PQnfields(r->r) || PQgetisnull(r->r, r->row, c)) {
        r->bad = true;
        return;
    }
    s = PQgetvalue(r->r, r->row, c);
    n = (size_t)PQgetlength(r->r, r->row, c);
    if (n >= cap) {
        r->bad = true; /* keep a terminated prefix for the logs */
        n = cap - 1;
    }
    memcpy(dst, s, n);
    dst[n] = '\0';
}

char *
pgc_dup_text(struct pgrow *r)
{
    int c = r->i++;

    if (c >= PQnfields(r->r) || PQgetisnull(r->r, r->row, c))
        return xstrdup("");
    return xstrndup(PQgetvalue(r->r, r->row, c), (size_t)PQgetlength(r->r, r->row, c));
}

static int
hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* bytea in text format is "\x" and hex (bytea_output = hex, the default since 9.0). */
size_t
pgc_blob(struct pgrow *r, uint8_t *dst, size_t cap)
{
    int c = r->i++;
    const char *s;
    size_t len, n;

    if (c >= PQnfields(r->r) || PQgetisnull(r->r, r->row, c)) {
        r->bad = true;
        return 0;
    }
    s = PQgetvalue(r->r, r->row, c);
    len = (size_t)PQgetlength(r->r, r->row, c);
    if (len < 2 || s[0] != '\\' || s[1] != 'x' || (len - 2) % 2 != 0) {
        r->bad = true;
        return 0;
    }
    n = (len - 2) / 2;
    if (n > cap) {
        r->bad = true;
        n = cap;
    }
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(s[2 + 2 * i]), lo = hexval(s[3 + 2 * i]);
        if (hi < 0 || lo < 0) {
            r->bad = true;
            return 0;
        }
        dst[i] = (uint8_t)(hi << 4 | lo);
    }
    return n;
}

void
pgc_blob_exact(struct pgrow *r, uint8_t *dst, size_t n)
{
    if (pgc_blob(r, dst, n) != n)
        r->bad = true;
}

/* --- migrations --- */

static bool
exec_ok(PGconn *c, const char *sql, ExecStatusType want, char *err, size_t err_len,
        const char *what)
{
    PGresult *r = PQexec(c, sql);
    bool ok = PQresultStatus(r) == want;
    char line[256];

    if (!ok) {
        first_line(PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY), line, sizeof line);
        snprintf(err, err_len, "%s: %s", what, line[0] != '\0' ? line : "no answer");
    }
    PQclear(r);
    return ok;
}

/* Highest applied migration, 0 on a new database. */
static bool
applied(PGconn *c, int *version, char *err, size_t err_len)
{
    PGresult *r = PQexec(c, "SELECT to_regclass('schema_version') IS NOT NULL");
    bool ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
    bool exists = ok && strcmp(PQgetvalue(r, 0, 0), "t") == 0;

    *version = 0;
    if (exists) {
        PQclear(r);
        r = PQexec(c, "SELECT COALESCE(MAX(version), 0) FROM schema_version");
        ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
        *version = ok ? atoi(PQgetvalue(r, 0, 0)) : -1;
    }
    if (!ok)
        snprintf(err, err_len, "cannot read the schema version");
    PQclear(r);
    return ok;
}

/* Apply m[have..n-1], one transaction each, under a session advisory lock: replicas starting
 * together wait for each other and apply each migration exactly once. */
static enum status
migrate(PGconn *c, const struct store_migration *m, size_t n, char *err, size_t err_len)
{
    enum status st = ST_OK;
    int have = 0;

    if (!exec_ok(c, "SET statement_timeout = '120s'", PGRES_COMMAND_OK, err, err_len,
                 "cannot set up the migration session") ||
        !exec_ok(c, "SELECT pg_advisory_lock(" PG_MIGRATE_LOCK ")", PGRES_TUPLES_OK, err, err_len,
                 "cannot take the migration lock"))
        return ST_UNAVAILABLE;
    for (;;) {
        if (!applied(c, &have, err, err_len)) {
            st = ST_UNAVAILABLE;
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
        char what[128], num[2][24];
        snprintf(what, sizeof what, "migration %s failed", m[have].name);
        snprintf(num[0], sizeof num[0], "%d", m[have].version);
        snprintf(num[1], sizeof num[1], "%lld", (long long)time(NULL));
        const char *v[2] = {num[0], num[1]};
        if (!exec_ok(c, "BEGIN", PGRES_COMMAND_OK, err, err_len, what) ||
            !exec_ok(c, m[have].sql, PGRES_COMMAND_OK, err, err_len, what)) {
            st = ST_UNAVAILABLE;
            break;
        }
        PGresult *r = PQexecParams(c,
                                   "INSERT INTO schema_version (version, applied_at) "
                                   "VALUES ($1::int, $2::bigint)",
                                   2, NULL, v, NULL, NULL, 0);
        bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
        if (!ok || !exec_ok(c, "COMMIT", PGRES_COMMAND_OK, err, err_len, what)) {
            if (!ok)
                snprintf(err, err_len, "migration %s could not be recorded", m[have].name);
            st = ST_UNAVAILABLE;
            break;
        }
        log_msg(LOG_INFO, "store_migrated", "backend", "postgres", "migration", m[have].name,
                LOG_END);
    }
    if (st != ST_OK)
        PQclear(PQexec(c, "ROLLBACK"));
    PQclear(PQexec(c, "SELECT pg_advisory_unlock(" PG_MIGRATE_LOCK ")"));
    return st;
}

enum status
pgpool_open(struct pgpool **out, const char *conninfo, const struct store_migration *m, size_t n_m,
            char *err, size_t err_len)
{
    struct pgpool *p;
    PGconn *c;
    enum status st;

    *out = NULL;
    if ((c = pg_connect(conninfo, err, err_len)) == NULL)
        return ST_UNAVAILABLE;
    if ((st = migrate(c, m, n_m, err, err_len)) != ST_OK) {
        PQfinish(c);
        return st;
    }
    p = xcalloc(1, sizeof *p);
    p->conninfo = xstrdup(conninfo);
    if (pthread_mutex_init(&p->mu, NULL) != 0 || pthread_cond_init(&p->cv, NULL) != 0)
        abort();
    /* The first connection joins the pool, with the session's settings as any other's (the
     * migrations ran under a longer statement timeout). */
    PQclear(PQexec(c, "RESET statement_timeout"));
    if (!pg_session_setup(c)) {
        PQfinish(c);
        c = NULL;
    }
    p->slots[0].c = c;
    *out = p;
    return ST_OK;
}

/* --- LISTEN --- */

static void
nap_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void *
watch_main(void *arg)
{
    struct pgpool *p = arg;
    PGconn *c = NULL;

    while (!atomic_load(&p->watch_stop)) {
        if (c == NULL) {
            char err[300];
            if ((c = pg_connect(p->conninfo, err, sizeof err)) != NULL) {
                PGresult *r = PQexec(c, "LISTEN difyguard");
                bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
                PQclear(r);
                if (!ok) {
                    PQfinish(c);
                    c = NULL;
                }
            }
            if (c == NULL) { /* the pool's breaker and logs cover the database being down */
                for (int i = 0; i < 10 && !atomic_load(&p->watch_stop); i++)
                    nap_ms(100);
                continue;
            }
            p->watch_cb(p->watch_arg, "resync"); /* what was sent while not listening */
        }
        struct pollfd pfd = {.fd = PQsocket(c), .events = POLLIN};
        if (pfd.fd < 0 || (poll(&pfd, 1, 200) < 0 && errno != EINTR) || !PQconsumeInput(c) ||
            PQstatus(c) != CONNECTION_OK) {
            PQfinish(c);
            c = NULL;
            continue;
        }
        PGnotify *n;
        while ((n = PQnotifies(c)) != NULL) {
            p->watch_cb(p->watch_arg, n->extra != NULL ? n->extra : "");
            PQfreemem(n);
        }
    }
    PQfinish(c);
    return NULL;
}

void
pgpool_watch(struct pgpool *p, void (*cb)(void *arg, const char *what), void *arg)
{
    if (p->watching) {
        atomic_store(&p->watch_stop, true);
        pthread_join(p->watch_thread, NULL);
        p->watching = false;
    }
    if (cb == NULL)
        return;
    p->watch_cb = cb;
    p->watch_arg = arg;
    atomic_store(&p->watch_stop, false);
    p->watching = pthread_create(&p->watch_thread, NULL, watch_main, p) == 0;
    if (!p->watching)
        pg_log("store_watch_failed", "listen", NULL, "cannot start the LISTEN thread");
}

void
pgpool_close(struct pgpool *p)
{
    if (p == NULL)
        return;
    pgpool_watch(p, NULL, NULL);
    for (size_t i = 0; i < PG_POOL_MAX; i++)
        PQfinish(p->slots[i].c);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    explicit_bzero(p->conninfo, strlen(p->conninfo)); /* may hold a password */
    free(p->conninfo);
    free(p);
}

static void
read_int(struct pgrow *r, void *dst)
{
    *(int64_t *)dst = pgc_i64(r);
}

int
pgpool_schema_version(struct pgpool *p)
{
    struct pgtx t = PGTX_INIT(p, false);
    struct pgq q = PGQ("schema_version", "SELECT COALESCE(MAX(version), 0) FROM schema_version");
    int64_t v = -1;

    while (pgtx_next(&t))
        t.st = pg_one(&t, &q, read_int, &v);
    return t.st == ST_OK ? (int)v : -1;
}
