/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/server/audit/writer_test.c -- the audit writer on a real SQLite store: a record the
 * format cannot write never fails the other records of its group (it is written as a minimal
 * "unrecordable" event), and the chain it leaves verifies; the sealed head written with each
 * commit lets the next start continue, and a deleted tail stops it. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>
#include <sqlite3.h>

#include "common/sbuf.h"
#include "common/xmem.h"
#include "crypto/init.h"
#include "crypto/rootkey.h"
#include "crypto/secret.h"
#include "server/audit/audit.h"
#include "store/store.h"

struct fixture {
    char dir[64], db[96], url[112], key[96];
    struct rootkey *rk;
    struct store *st;
    struct secret *mac;
};

static int
setup(void **state)
{
    struct fixture *f = xcalloc(1, sizeof *f);
    char err[256];

    snprintf(f->dir, sizeof f->dir, "/tmp/dg-audit-writer-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->db, sizeof f->db, "%s/db", f->dir);
    snprintf(f->url, sizeof f->url, "sqlite:%s", f->db);
    snprintf(f->key, sizeof f->key, "%s/root.key", f->dir);
    assert_int_equal(rootkey_create(f->key, err, sizeof err), ST_OK);
    assert_int_equal(rootkey_load(&f->rk, f->key, err, sizeof err), ST_OK);
    assert_int_equal(store_open(&f->st, f->url, err, sizeof err), ST_OK);
    f->mac = secret_new(32);
    randombytes_buf(secret_rw(f->mac), 32);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[160];

    store_close(f->st);
    rootkey_free(f->rk);
    secret_free(f->mac);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static const struct audit_settings durable = {.durable = true, .checkpoint_interval = 3600};

struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done, failed;
};

static void
on_done(void *arg, enum status st)
{
    struct waiter *w = arg;
    pthread_mutex_lock(&w->mu);
    w->done++;
    w->failed += st != ST_OK;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static struct audit_rec *
record(struct waiter *w, const char *method, const char *app)
{
    struct audit_rec *r = audit_rec_new();
    r->op = "keyring.list";
    r->route = "/v1/keyrings";
    snprintf(r->method, sizeof r->method, "%s", method);
    snprintf(r->app, sizeof r->app, "%s", app);
    r->status = 200;
    r->done = on_done;
    r->arg = w;
    return r;
}

static enum status
collect(void *arg, const char *line, size_t len)
{
    sbuf_add(arg, line, len);
    return ST_OK;
}

static void
export_verify(struct audit *a, struct sbuf *text)
{
    struct audit_verify_result res;
    uint8_t(*keys)[AUDIT_PK_BYTES] = NULL;
    size_t n;

    assert_int_equal(audit_export(a, NULL, 0, collect, text, NULL), ST_OK);
    n = audit_public_keys(a, &keys);
    assert_int_equal(
        audit_verify(text->p, text->len, (const uint8_t(*)[AUDIT_PK_BYTES])keys, n, NULL, 0, &res),
        ST_OK);
    free(keys);
}

/* Records the format refuses (bytes no audit line may hold, bypassing the HTTP layer's
 * sanitising) share groups with valid ones: every record commits. */
static void
test_bad_record_never_fails_its_group(void **state)
{
    struct fixture *f = *state;
    struct audit *a = NULL;
    struct waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
    struct sbuf text = {0};
    char err[256] = "";
    const int n = 60;

    assert_int_equal(audit_open(&a, f->st, f->rk, f->mac, &durable, err, sizeof err), ST_OK);
    for (int i = 0; i < n; i++) {
        if (i % 6 == 3)
            audit_submit(a, record(&w, "G\xc3", "app")); /* a cut character */
        else if (i % 6 == 5)
            audit_submit(a, record(&w, "GET", "jwt:\xff\xfe")); /* not UTF-8 */
        else
            audit_submit(a, record(&w, "GET", "dify-api"));
    }
    pthread_mutex_lock(&w.mu);
    while (w.done < n)
        pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    assert_int_equal(w.failed, 0);
    assert_int_equal(audit_failures(a), 0);
    export_verify(a, &text);
    size_t unrec = 0;
    for (const char *p = text.p; (p = strstr(p, "\"op\":\"unrecordable\"")) != NULL; p++)
        unrec++;
    assert_int_equal(unrec, 20);
    assert_null(strstr(text.p, "\xff"));
    sbuf_free(&text);
    audit_close(a);
}

/* Reopening continues the chain (the sealed head matches); deleting its newest event behind the
 * writer's back makes the next open refuse, and --audit-new-chain starts over visibly. */
static void
test_sealed_head_across_restarts(void **state)
{
    struct fixture *f = *state;
    struct audit *a = NULL;
    struct waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
    struct audit_settings fresh = durable;
    char err[256] = "";
    sqlite3 *db;

    for (int round = 0; round < 2; round++) {
        assert_int_equal(audit_open(&a, f->st, f->rk, f->mac, &durable, err, sizeof err), ST_OK);
        for (int i = 0; i < 5; i++)
            audit_submit(a, record(&w, "GET", "dify-api"));
        pthread_mutex_lock(&w.mu);
        while (w.done < 5 * (round + 1))
            pthread_cond_wait(&w.cv, &w.mu);
        pthread_mutex_unlock(&w.mu);
        audit_close(a);
    }
    assert_int_equal(w.failed, 0);
    assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "DELETE FROM audit_events WHERE seq = (SELECT max(seq) "
                                  "FROM audit_events)",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(audit_open(&a, f->st, f->rk, f->mac, &durable, err, sizeof err), ST_INTEGRITY);
    assert_non_null(strstr(err, "audit chain"));
    fresh.new_chain_on_break = true;
    assert_int_equal(audit_open(&a, f->st, f->rk, f->mac, &fresh, err, sizeof err), ST_OK);
    audit_close(a);
    assert_int_equal(audit_open(&a, f->st, f->rk, f->mac, &durable, err, sizeof err), ST_OK);
    audit_close(a);
}

/* Exports back to back: two of one head often fall in the same millisecond, where their export
 * checkpoints share a key; each export still succeeds and verifies on its own. */
static void
test_exports_in_one_millisecond(void **state)
{
    struct fixture *f = *state;
    struct audit *a = NULL;
    struct waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
    char err[256] = "";

    assert_int_equal(audit_open(&a, f->st, f->rk, f->mac, &durable, err, sizeof err), ST_OK);
    audit_submit(a, record(&w, "GET", "dify-api"));
    pthread_mutex_lock(&w.mu);
    while (w.done < 1)
        pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    for (int i = 0; i < 200; i++) {
        struct sbuf text = {0};
        export_verify(a, &text);
        sbuf_free(&text);
    }
    audit_close(a);
}

/* Folding stays bounded: 6,000 refusals in one second from distinct clients become at most
 * 4,096 per-client events plus coarse ones, and every refusal is counted. */
static void
test_flood_of_clients_is_bounded(void **state)
{
    struct fixture *f = *state;
    struct audit *a = NULL;
    struct sbuf text = {0};
    char err[256] = "";
    const int n = 6000;

    assert_int_equal(audit_open(&a, f->st, f->rk, f->mac, &durable, err, sizeof err), ST_OK);
    struct audit_rec *probe = audit_rec_new(); /* all in one second, not at its very end */
    int64_t t = probe->time_ms - probe->time_ms % 1000;
    free(probe);
    for (int i = 0; i < n; i++) {
        struct audit_rec *r = audit_rec_new();
        r->time_ms = t;
        r->op = "keyring.list";
        r->route = "/v1/keyrings";
        snprintf(r->method, sizeof r->method, "GET");
        r->status = 401;
        r->coalesce = true;
        snprintf(r->h_client, sizeof r->h_client, "%064x", i);
        audit_submit(a, r);
    }
    audit_close(a); /* drains the folded floods */
    assert_int_equal(audit_open(&a, f->st, f->rk, f->mac, &durable, err, sizeof err), ST_OK);
    assert_int_equal(audit_export(a, NULL, 0, collect, &text, NULL), ST_OK);
    size_t events = 0;
    long long total = 0;
    for (const char *p = text.p; (p = strstr(p, "\"op\":\"keyring.list\"")) != NULL; p++) {
        const char *c = strstr(p, "\"count\":");
        events++;
        total += strtoll(c + 8, NULL, 10);
    }
    assert_int_equal(total, n);
    assert_true(events <= 4096 + 8);
    assert_true(events >= 2);
    sbuf_free(&text);
    audit_close(a);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bad_record_never_fails_its_group, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sealed_head_across_restarts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flood_of_clients_is_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exports_in_one_millisecond, setup, teardown),
    };
    if (crypto_init() != ST_OK)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
