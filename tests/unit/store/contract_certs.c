/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/store/contract_certs.c -- the store contract for certificates (issue 9): sources
 * added over the API (fields, conflicts, refused and failing events, deletion with what was
 * seen) and the certificates seen at a slot in the order seen. Part of store_contract_test:
 * backend-neutral like contract_test.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backend.h"
#include "fixtures.h"
#include "store/store.h"

static struct store_cert_source
mk_cert_source(const char *id, const char *kind, const char *target)
{
    struct store_cert_source c = {.recursive = true,
                                  .renew_before = 86400,
                                  .warning = 0,
                                  .critical = 3600,
                                  .created_at = 1700000000};
    snprintf(c.id, sizeof c.id, "%s", id);
    snprintf(c.kind, sizeof c.kind, "%s", kind);
    snprintf(c.target, sizeof c.target, "%s", target);
    return c;
}

static struct store_audit_row
mk_cert_event(uint64_t seq, const char *op)
{
    struct store_audit_row ev = {.seq = seq, .time_ms = 1700000000000, .status = 201};
    snprintf(ev.chain_id, sizeof ev.chain_id, "c1");
    snprintf(ev.op, sizeof ev.op, "%s", op);
    snprintf(ev.outcome, sizeof ev.outcome, "ok");
    ev.line = "{\"type\":\"event\"}";
    return ev;
}

void
test_cert_sources(void **state)
{
    struct fx *f = *state;
    struct store_cert_source a = mk_cert_source("ingress", "dir", "/etc/tls"), *list = NULL;
    struct store_cert_source p = mk_cert_source("uploaded", "pem", "");
    struct store_cert_source e = mk_cert_source("api-1", "endpoint", "api.example:443");
    struct store_audit_row ev = mk_cert_event(1, "cert.create");
    size_t n = 0;

    p.pem = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    snprintf(e.server_name, sizeof e.server_name, "api.example");
    e.expect_chain = true;
    assert_int_equal(store_cert_source_create(f->s, &a, &ev), ST_OK);
    assert_int_equal(store_cert_source_create(f->s, &p, NULL), ST_OK);
    assert_int_equal(store_cert_source_create(f->s, &e, NULL), ST_OK);
    assert_int_equal(tb_int(f->url, "SELECT count(*) FROM audit_events"), 1);
    assert_int_equal(store_cert_source_create(f->s, &a, NULL), ST_CONFLICT);
    assert_int_equal(store_cert_source_list(f->s, &list, &n), ST_OK);
    assert_int_equal(n, 3);
    assert_string_equal(list[0].id, "api-1"); /* by id */
    assert_string_equal(list[0].server_name, "api.example");
    assert_true(list[0].expect_chain);
    assert_null(list[0].pem);
    assert_string_equal(list[1].id, "ingress");
    assert_string_equal(list[1].kind, "dir");
    assert_string_equal(list[1].target, "/etc/tls");
    assert_true(list[1].recursive);
    assert_int_equal(list[1].renew_before, 86400);
    assert_int_equal(list[1].critical, 3600);
    assert_int_equal(list[1].created_at, 1700000000);
    assert_string_equal(list[2].pem, p.pem);
    store_cert_sources_free(list, n);

    /* Refused events refuse; bad fields are refused before the backend. */
    struct store_cert_source bad = mk_cert_source("", "file", "/x");
    assert_int_equal(store_cert_source_create(f->s, &bad, NULL), ST_INVALID);
    bad = mk_cert_source("neg", "file", "/x");
    bad.warning = -1;
    assert_int_equal(store_cert_source_create(f->s, &bad, NULL), ST_INVALID);
    bad = mk_cert_source("big", "pem", "");
    bad.pem = malloc(STORE_CERT_PEM_MAX + 2);
    memset(bad.pem, 'A', STORE_CERT_PEM_MAX + 1);
    bad.pem[STORE_CERT_PEM_MAX + 1] = '\0';
    assert_int_equal(store_cert_source_create(f->s, &bad, NULL), ST_INVALID);
    free(bad.pem);
    bad = mk_cert_source("later", "file", "/x");
    assert_int_equal(store_cert_source_create(f->s, &bad, &store_audit_refused), ST_UNAVAILABLE);
    assert_int_equal(store_cert_source_delete(f->s, "ingress", &store_audit_refused),
                     ST_UNAVAILABLE);
    assert_int_equal(tb_int(f->url, "SELECT count(*) FROM cert_sources"), 3);

    /* An event that cannot be written takes the change with it. */
    struct store_audit_row dup = mk_cert_event(1, "cert.create");
    assert_int_equal(store_cert_source_create(f->s, &bad, &dup), ST_CONFLICT);
    assert_int_equal(tb_int(f->url, "SELECT count(*) FROM cert_sources"), 3);

    assert_int_equal(store_cert_source_delete(f->s, "uploaded", NULL), ST_OK);
    assert_int_equal(store_cert_source_delete(f->s, "uploaded", NULL), ST_NOT_FOUND);
    assert_int_equal(store_cert_source_delete(f->s, "No Such", NULL), ST_NOT_FOUND);
}

static struct store_cert_seen
mk_seen(const char *source, const char *slot, const char *fp, bool rotation)
{
    struct store_cert_seen c = {.not_before = 1700000000,
                                .not_after = 1707776000,
                                .seen_at = 1700000100,
                                .rotation = rotation};
    snprintf(c.source_id, sizeof c.source_id, "%s", source);
    snprintf(c.slot, sizeof c.slot, "%s", slot);
    snprintf(c.fingerprint, sizeof c.fingerprint, "%s", fp);
    snprintf(c.subject, sizeof c.subject, "CN=%s", source);
    snprintf(c.issuer, sizeof c.issuer, "CN=Test CA");
    snprintf(c.serial, sizeof c.serial, "0A1B");
    return c;
}

void
test_cert_seen_history(void **state)
{
    struct fx *f = *state;
    struct store_cert_source src = mk_cert_source("ingress", "file", "/etc/tls/tls.crt");
    struct store_cert_seen a = mk_seen("ingress", "tls.crt|leaf", "aa", false);
    struct store_cert_seen b = mk_seen("listener-api", "leaf", "bb", false);
    struct store_cert_seen c = mk_seen("ingress", "tls.crt|leaf", "cc", true), *list = NULL;
    struct store_audit_row ev = mk_cert_event(1, "cert.rotation");
    size_t n = 0;

    assert_int_equal(store_cert_source_create(f->s, &src, NULL), ST_OK);
    assert_int_equal(store_cert_seen_add(f->s, &a, NULL), ST_OK);
    assert_int_equal(store_cert_seen_add(f->s, &b, NULL), ST_OK);
    assert_int_equal(store_cert_seen_add(f->s, &c, &ev), ST_OK);
    assert_true(a.id < b.id && b.id < c.id);
    assert_int_equal(tb_int(f->url, "SELECT count(*) FROM audit_events"), 1);

    assert_int_equal(store_cert_seen_list(f->s, "ingress", &list, &n), ST_OK);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].fingerprint, "aa");
    assert_false(list[0].rotation);
    assert_string_equal(list[1].fingerprint, "cc");
    assert_true(list[1].rotation);
    assert_string_equal(list[1].slot, "tls.crt|leaf");
    assert_string_equal(list[1].subject, "CN=ingress");
    assert_string_equal(list[1].issuer, "CN=Test CA");
    assert_string_equal(list[1].serial, "0A1B");
    assert_int_equal(list[1].not_after, 1707776000);
    assert_int_equal(list[1].seen_at, 1700000100);
    free(list);
    assert_int_equal(store_cert_seen_list(f->s, NULL, &list, &n), ST_OK);
    assert_int_equal(n, 3);
    assert_string_equal(list[1].source_id, "listener-api");
    free(list);
    assert_int_equal(store_cert_seen_list(f->s, "none", &list, &n), ST_OK);
    assert_int_equal(n, 0);
    assert_null(list);

    /* A rotation whose event cannot be written is not recorded; refused events refuse. */
    struct store_cert_seen d = mk_seen("ingress", "tls.crt|leaf", "dd", true);
    assert_int_equal(store_cert_seen_add(f->s, &d, &ev), ST_CONFLICT);
    assert_int_equal(store_cert_seen_add(f->s, &d, &store_audit_refused), ST_UNAVAILABLE);
    d.fingerprint[0] = '\0';
    assert_int_equal(store_cert_seen_add(f->s, &d, NULL), ST_INVALID);
    assert_int_equal(tb_int(f->url, "SELECT count(*) FROM cert_history"), 3);

    /* Deleting a source deletes what was seen at it, and nothing else. */
    assert_int_equal(store_cert_source_delete(f->s, "ingress", NULL), ST_OK);
    assert_int_equal(tb_int(f->url, "SELECT count(*) FROM cert_history"), 1);
}
