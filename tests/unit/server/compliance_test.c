/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/server/compliance_test.c -- the compliance manager on a real service (init, then
 * open on a temporary SQLite database), driven by the janitor on a test clock: a scheduled run
 * verifies the trail when due, evaluates every pack and records its audit event; reports are
 * signed by a key that persists (wrapped by the root key) and carry this node's chain head;
 * metrics expose one current result per control; bad packs and parameters are load errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cmocka.h>
#include <jansson.h>
#include <sqlite3.h>

#include "common/clock.h"
#include "common/json/jsonx.h"
#include "crypto/b64.h"
#include "crypto/init.h"
#include "policies/report.h"
#include "server/audit/audit.h"
#include "server/compliance.h"
#include "server/janitor.h"
#include "server/obs/metrics.h"
#include "server/service.h"

struct fx {
    char dir[64];
    struct service_paths p;
    struct service *svc;
    struct compliance_deps deps;
};

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    char key[128], id[64], err[256];
    bool adopted;
    struct keyrings_settings ks = {1000, 16};
    struct audit_settings as = {.durable = true, .checkpoint_interval = 60};

    snprintf(f->dir, sizeof f->dir, "/tmp/dg-compliance-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    service_paths_resolve(&f->p, f->dir, NULL, NULL);
    if (service_init(&f->p, key, sizeof key, id, sizeof id, &adopted, err, sizeof err) != ST_OK ||
        service_open(&f->svc, &f->p, &ks, &as, err, sizeof err) != ST_OK) {
        fprintf(stderr, "service: %s\n", err);
        return -1;
    }
    f->svc->facts.root_key_path = f->p.root_key;
    f->svc->facts.root_key_id = "rk-test";
    f->deps = (struct compliance_deps){f->svc->store, f->svc->root,  f->svc->keyrings, f->svc->apps,
                                       f->svc->audit, f->svc->certs, &f->svc->facts};
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;
    char cmd[128];

    service_close(f->svc);
    service_paths_free(&f->p);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    free(f);
    return system(cmd) == 0 ? 0 : -1;
}

static size_t
events_of(struct fx *f, const char *op, struct store_audit_row **rows)
{
    struct store_audit_filter flt = {.op = op, .limit = 100};
    size_t n = 0;
    assert_int_equal(audit_events(f->svc->audit, &flt, rows, &n), ST_OK);
    return n;
}

/* The writer commits on its own thread: wait (generously) for n events of op. */
static void
wait_events(struct fx *f, const char *op, size_t n)
{
    for (int i = 0; i < 2000; i++) {
        struct store_audit_row *rows = NULL;
        size_t got = events_of(f, op, &rows);
        audit_events_free(rows, got);
        if (got >= n)
            return;
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    }
    fail_msg("fewer than %zu %s events after 20 s", n, op);
}

/* Edit (or restore) the line of this chain's first stored event directly in the database, as an
 * insider with write access to it would. */
static void
tamper_first_event(struct fx *f, bool edit)
{
    sqlite3 *db = NULL;
    char *msg = NULL, path[128];
    const char *sql = edit ? "UPDATE audit_events SET line = replace(line, '\"SYSTEM\"', "
                             "'\"SYSTEX\"') WHERE seq = 1"
                           : "UPDATE audit_events SET line = replace(line, '\"SYSTEX\"', "
                             "'\"SYSTEM\"') WHERE seq = 1";

    snprintf(path, sizeof path, "%s/difyguard.db", f->dir);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        fail_msg("tamper: %s", msg != NULL ? msg : "?");
    assert_int_equal(sqlite3_changes(db), 1);
    sqlite3_close(db);
}

static void
test_scheduled_runs(void **state)
{
    struct fx *f = *state;
    struct compliance *c = NULL;
    struct audit_status s;
    char err[256];
    int64_t t0 = clock_now_ms();

    assert_int_equal(compliance_open(&c, &f->deps, NULL, NULL, err, sizeof err), ST_OK);
    f->svc->compliance = c; /* service_close closes it */
    const struct duty d[] = {{"compliance", 3600 * 1000, compliance_janitor, c}};
    struct janitor *j = janitor_new(d, 1);
    audit_status(f->svc->audit, &s);
    assert_int_equal(s.verified_at_ms, 0);
    janitor_tick(j, t0); /* the first tick runs it, verifying the trail first */
    wait_events(f, "compliance.run", 1);
    audit_status(f->svc->audit, &s);
    assert_true(s.verified_at_ms != 0);
    assert_true(s.verified_ok); /* the trail was empty then: nothing written is nothing broken */
    /* A failed verification (a stored event edited behind the service's back) ... */
    tamper_first_event(f, true);
    struct audit_trail_check chk;
    assert_int_equal(audit_verify_trail(f->svc->audit, &chk), ST_OK);
    assert_false(chk.valid);
    audit_status(f->svc->audit, &s);
    assert_false(s.verified_ok);
    int64_t verified = s.verified_at_ms;
    tamper_first_event(f, false);
    nanosleep(&(struct timespec){0, 5 * 1000 * 1000}, NULL); /* a later verified_at_ms */
    janitor_tick(j, t0 + 1000);                              /* not due */
    janitor_tick(j, t0 + 3600 * 1000);
    wait_events(f, "compliance.run", 2);
    audit_status(f->svc->audit, &s);
    assert_true(s.verified_ok); /* ... is tried again at the next run, though not 12 h old */
    assert_true(s.verified_at_ms > verified);
    verified = s.verified_at_ms;
    janitor_tick(j, t0 + 2 * 3600 * 1000);
    wait_events(f, "compliance.run", 3);
    audit_status(f->svc->audit, &s);
    assert_int_equal(s.verified_at_ms, verified); /* verified less than 12 h ago: not again */
    struct store_audit_row *rows = NULL;
    size_t n = events_of(f, "compliance.run", &rows);
    json_t *e = json_loads(rows[0].line, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(e, "method")), "SYSTEM");
    assert_string_equal(json_string_value(json_object_get(e, "route")), "janitor");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(e, "items"), "total")), 90);
    json_decref(e);
    audit_events_free(rows, n);
    janitor_free(j);

    /* metrics: four series per control, one of them 1 */
    struct metrics *m = metrics_new();
    struct metrics_source src = {"compliance", compliance_metrics, c};
    struct sbuf text = {0};
    metrics_register(m, &src);
    metrics_render(m, &text);
    size_t series = 0, ones = 0;
    for (const char *p = text.p; (p = strstr(p, "\ndifyguard_compliance_control_status{")) != NULL;
         p++) {
        series++;
        ones += strncmp(strchr(p, '}'), "} 1\n", 4) == 0;
    }
    assert_int_equal(series, 4 * 90);
    assert_int_equal(ones, 90);
    assert_non_null(strstr(text.p, "difyguard_compliance_runs_total 3\n"));
    sbuf_free(&text);
    metrics_free(m);

    /* A trail wiped behind the service's back is not an empty one: this node wrote events. */
    sqlite3 *db = NULL;
    char path[128];
    snprintf(path, sizeof path, "%s/difyguard.db", f->dir);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    assert_int_equal(sqlite3_exec(db, "DELETE FROM audit_events; DELETE FROM audit_checkpoints",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    struct audit_trail_check wiped;
    assert_int_equal(audit_verify_trail(f->svc->audit, &wiped), ST_OK);
    assert_false(wiped.valid);
}

static void
public_key_of(const struct compliance *c, uint8_t pk[static SIGN_PK_BYTES], char *id)
{
    char *j = compliance_public_keys_json(c);
    json_t *o = json_loads(j, 0, NULL), *k = json_array_get(json_object_get(o, "keys"), 0);
    const char *b = json_string_value(json_object_get(k, "public_key"));
    size_t n = 0;
    assert_int_equal(b64_std_decode(pk, SIGN_PK_BYTES, &n, b, strlen(b)), ST_OK);
    assert_int_equal(n, SIGN_PK_BYTES);
    strcpy(id, json_string_value(json_object_get(k, "key_id")));
    json_decref(o);
    free(j);
}

static void
test_signed_reports(void **state)
{
    struct fx *f = *state;
    struct compliance *c = NULL;
    struct compliance_counts k;
    struct report_summary sum;
    uint8_t pk[SIGN_PK_BYTES], pk2[SIGN_PK_BYTES];
    char err[256], id[32], id2[32];
    struct sbuf out = {0};

    assert_int_equal(compliance_open(&c, &f->deps, NULL, NULL, err, sizeof err), ST_OK);
    public_key_of(c, pk, id);
    /* an event first, so this node's chain has a head */
    struct audit_rec *rec = audit_rec_new();
    rec->op = "keyring.list", rec->route = "compliance_test", rec->status = 200;
    snprintf(rec->method, sizeof rec->method, "GET");
    audit_submit(f->svc->audit, rec);
    wait_events(f, "keyring.list", 1);
    assert_int_equal(compliance_report(c, "pci-dss-4.0", COMPLIANCE_JSON, clock_now_s(), &out, &k),
                     ST_OK);
    assert_int_equal(k.controls, 20);
    assert_int_equal(report_verify(out.p, out.len, (const uint8_t(*)[SIGN_PK_BYTES])pk, 1, &sum,
                                   err, sizeof err),
                     ST_OK);
    assert_string_equal(sum.key_id, id);
    assert_int_equal(sum.controls, 20);
    assert_true(sum.n_heads >= 1);
    assert_string_equal(sum.heads[0].chain_id, audit_chain_id(f->svc->audit));
    assert_string_equal(sum.instance, audit_chain_id(f->svc->audit));
    report_summary_free(&sum);
    out.len = 0;
    assert_int_equal(compliance_report(c, "nope", COMPLIANCE_CSV, clock_now_s(), &out, &k),
                     ST_NOT_FOUND);
    assert_int_equal(compliance_report(c, NULL, COMPLIANCE_CSV, clock_now_s(), &out, &k), ST_OK);
    assert_int_equal(k.controls, 90);
    sbuf_free(&out);
    compliance_close(c);
    /* the key persists, wrapped by the root key */
    assert_int_equal(compliance_open(&c, &f->deps, NULL, NULL, err, sizeof err), ST_OK);
    public_key_of(c, pk2, id2);
    assert_string_equal(id, id2);
    assert_memory_equal(pk, pk2, SIGN_PK_BYTES);
    compliance_close(c);
    struct store_svckey row;
    assert_int_equal(store_svckey_get(f->svc->store, SVCKEY_COMPLIANCE_SIGN, &row), ST_OK);
    assert_string_equal(row.root_key_id, rootkey_id(f->svc->root));
}

static void
put(const char *dir, const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static void
test_load_errors(void **state)
{
    struct fx *f = *state;
    struct compliance *c = NULL;
    char err[512], pdir[128];

    snprintf(pdir, sizeof pdir, "%s/policies", f->dir);
    assert_int_equal(compliance_open(&c, &f->deps, pdir, NULL, err, sizeof err), ST_IO);
    assert_non_null(strstr(err, "--policy-dir"));
    assert_int_equal(mkdir(pdir, 0700), 0);
    assert_int_equal(
        compliance_open(&c, &f->deps, pdir, "{\"baseline\":{\"nope\":{}}}", err, sizeof err),
        ST_INVALID);
    assert_non_null(strstr(err, "--policy-params: pack \"baseline\" has no control \"nope\""));
    put(pdir, "zz.json", "{\"format\":\"difyguard-policy-pack-v1\"}");
    assert_int_equal(compliance_open(&c, &f->deps, pdir, NULL, err, sizeof err), ST_INVALID);
    assert_non_null(strstr(err, "zz.json: pack: \"id\" is required"));
    assert_null(c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_scheduled_runs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_signed_reports, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_errors, setup, teardown),
    };
    if (crypto_init() != ST_OK)
        return 1;
    jx_init();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
