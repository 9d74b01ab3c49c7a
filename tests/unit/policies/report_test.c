/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/policies/report_test.c -- the signed compliance report: it verifies, and flipping any
 * byte, removing a control, re-signing with another key, or claiming another key's id fails; CSV
 * and HTML carry the same results (CSV escaped for spreadsheets, HTML escaped, self-contained,
 * failing controls first). Writes the fuzz_report_verify seeds when DG_WRITE_FUZZ_CORPUS=1 and
 * checks they still verify otherwise. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <sodium.h>

#include "crypto/init.h"
#include "invjson.h"
#include "policies/report.h"

/* The key of the fuzz corpus: fixed, so the seeds are reproducible. */
static struct secret *sk[2];
static uint8_t pk[2][SIGN_PK_BYTES];

struct fixture {
    struct pack *packs[2];
    struct evaluation ev[2];
    struct inventory inv;
    struct report_head heads[2];
    struct report_meta meta;
    struct sbuf body, signed_text;
};

static struct pack *
pack_file(const char *name)
{
    char rel[256], err[256];
    size_t len;
    struct pack *p = NULL;

    snprintf(rel, sizeof rel, "policies/packs/%s", name);
    char *text = invjson_read_source(rel, &len);
    if (pack_parse(&p, text, len, err, sizeof err) != ST_OK)
        fail_msg("%s: %s", rel, err);
    free(text);
    return p;
}

static void
fixture_make(struct fixture *f, const char *inventory)
{
    size_t len;
    char *text = invjson_read_source("tests/unit/policies/inventories.json", &len);
    json_t *all = json_loadb(text, len, 0, NULL);

    memset(f, 0, sizeof *f);
    invjson_load(&f->inv, all, inventory);
    json_decref(all);
    free(text);
    f->packs[0] = pack_file("baseline.json");
    f->packs[1] = pack_file("pci-dss-4.0.json");
    for (int i = 0; i < 2; i++)
        eval_run(&f->ev[i], f->packs[i], &f->inv);
    snprintf(f->heads[0].chain_id, sizeof f->heads[0].chain_id, "3fa1c2d4e5f60718");
    f->heads[0].seq = 4211;
    memset(f->heads[0].hash, 'a', REPORT_HASH_HEX);
    snprintf(f->heads[1].chain_id, sizeof f->heads[1].chain_id, "0011223344556677");
    f->heads[1].seq = 3;
    memset(f->heads[1].hash, '0', REPORT_HASH_HEX);
    f->meta = (struct report_meta){"difyguard", "0.9.0", "3fa1c2d4e5f60718", "rk-0011", f->inv.now,
                                   f->heads,    2};
    report_json_body(&f->body, &f->meta, f->ev, 2);
    report_sign(&f->signed_text, f->body.p, f->body.len, sk[0]);
}

static void
fixture_free(struct fixture *f)
{
    for (int i = 0; i < 2; i++) {
        eval_free(&f->ev[i]);
        pack_free(f->packs[i]);
    }
    inventory_free(&f->inv);
    sbuf_free(&f->body);
    sbuf_free(&f->signed_text);
}

static enum status
verify(const char *text, size_t len, int key, struct report_summary *s, char *err)
{
    return report_verify(text, len, (const uint8_t(*)[SIGN_PK_BYTES])pk[key], 1, s, err, 256);
}

static void
test_verifies_and_summarizes(void **state)
{
    struct fixture f;
    struct report_summary s;
    char err[256] = "";

    (void)state;
    fixture_make(&f, "noncompliant");
    assert_int_equal(verify(f.signed_text.p, f.signed_text.len, 0, &s, err), ST_OK);
    assert_int_equal(s.packs, 2);
    assert_int_equal(s.controls, f.ev[0].n + f.ev[1].n);
    assert_int_equal(s.counts[CTL_FAIL], f.ev[0].counts[CTL_FAIL] + f.ev[1].counts[CTL_FAIL]);
    assert_int_equal(s.counts[CTL_MANUAL], 3); /* PCI 3.7.6, 3.7.8, 12.3.3 */
    assert_string_equal(s.generated_at, "2026-06-01T00:00:00Z");
    assert_string_equal(s.instance, "3fa1c2d4e5f60718");
    assert_int_equal(s.n_heads, 2);
    assert_int_equal(s.heads[0].seq, 4211);
    assert_string_equal(s.heads[1].chain_id, "0011223344556677");
    char id[SIGN_KEY_ID_CHARS + 1];
    sign_key_id(id, pk[0]);
    assert_string_equal(s.key_id, id);
    report_summary_free(&s);
    /* the file is one JSON object, the body in it */
    json_t *j = json_loadb(f.signed_text.p, f.signed_text.len, JSON_REJECT_DUPLICATES, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "report"), "format")),
                        REPORT_FORMAT);
    json_decref(j);
    fixture_free(&f);
}

/* Every byte, flipped in its lowest bit (and, for the newline, its absence) fails. */
static void
test_every_byte_flip_fails(void **state)
{
    struct fixture f;
    struct report_summary s;
    char err[256];

    (void)state;
    fixture_make(&f, "compliant");
    char *t = f.signed_text.p;
    for (size_t i = 0; i < f.signed_text.len; i++) {
        t[i] ^= 1;
        if (verify(t, f.signed_text.len, 0, &s, err) == ST_OK)
            fail_msg("byte %zu flipped still verifies", i);
        t[i] ^= 1;
    }
    assert_int_equal(verify(t, f.signed_text.len - 1, 0, &s, err), ST_AUTH); /* no newline */
    sbuf_adds(&f.signed_text, " ");
    assert_int_equal(verify(f.signed_text.p, f.signed_text.len, 0, &s, err), ST_AUTH);
    assert_int_equal(verify(f.signed_text.p, f.signed_text.len - 1, 0, &s, err), ST_OK);
    report_summary_free(&s);
    fixture_free(&f);
}

static void
test_removed_control_fails(void **state)
{
    struct fixture f;
    struct report_summary s;
    char err[256];

    (void)state;
    fixture_make(&f, "noncompliant");
    /* cut out the first control object of the first pack, as an editor would */
    char *t = f.signed_text.p;
    char *start = strstr(t, "\"controls\":[{") + strlen("\"controls\":[");
    char *next = strstr(start, "},{\"id\":") + 2;
    memmove(start, next, strlen(next) + 1);
    size_t len = strlen(t);
    json_t *still_json = json_loadb(t, len, 0, NULL); /* a well-formed report still */
    assert_non_null(still_json);
    json_decref(still_json);
    assert_int_equal(verify(t, len, 0, &s, err), ST_AUTH);
    assert_non_null(strstr(err, "the report was altered"));
    fixture_free(&f);
}

static void
test_other_key_fails(void **state)
{
    struct fixture f;
    struct sbuf other = {0};
    struct report_summary s;
    char err[256], id0[SIGN_KEY_ID_CHARS + 1], id1[SIGN_KEY_ID_CHARS + 1];

    (void)state;
    fixture_make(&f, "compliant");
    report_sign(&other, f.body.p, f.body.len, sk[1]);
    assert_int_equal(verify(other.p, other.len, 0, &s, err), ST_AUTH);
    assert_non_null(strstr(err, "not one of the given public keys"));
    assert_int_equal(verify(other.p, other.len, 1, &s, err), ST_OK);
    report_summary_free(&s);
    /* re-signed with another key but claiming the service key's id */
    sign_key_id(id0, pk[0]);
    sign_key_id(id1, pk[1]);
    char *at = strstr(other.p, id1);
    assert_non_null(at);
    memcpy(at, id0, SIGN_KEY_ID_CHARS);
    assert_int_equal(verify(other.p, other.len, 0, &s, err), ST_AUTH);
    assert_non_null(strstr(err, "the report was altered"));
    /* several keys: the one named verifies */
    uint8_t both[2][SIGN_PK_BYTES];
    memcpy(both[0], pk[1], SIGN_PK_BYTES);
    memcpy(both[1], pk[0], SIGN_PK_BYTES);
    assert_int_equal(report_verify(f.signed_text.p, f.signed_text.len,
                                   (const uint8_t(*)[SIGN_PK_BYTES])both, 2, &s, err, sizeof err),
                     ST_OK);
    report_summary_free(&s);
    assert_int_equal(report_verify(f.signed_text.p, f.signed_text.len, NULL, 0, &s, err, 256),
                     ST_INVALID);
    sbuf_free(&other);
    fixture_free(&f);
}

static void
test_csv_same_results(void **state)
{
    struct fixture f;
    struct sbuf csv = {0};
    size_t rows = 0;

    (void)state;
    fixture_make(&f, "noncompliant");
    report_csv(&csv, &f.meta, f.ev, 2);
    assert_ptr_equal(strstr(csv.p, "pack,control,title,refs,severity,check,params,result,"), csv.p);
    for (const char *p = csv.p; (p = strstr(p, "\r\n")) != NULL; p += 2)
        rows++;
    assert_int_equal(rows, 1 + f.ev[0].n + f.ev[1].n);
    for (int k = 0; k < 2; k++) {
        for (size_t i = 0; i < f.ev[k].n; i++) {
            char want[256];
            snprintf(want, sizeof want, "\r\n%s,%s,", f.ev[k].pack->id,
                     f.ev[k].items[i].control->id);
            const char *row = strstr(csv.p, want);
            assert_non_null(row);
            snprintf(want, sizeof want, ",%s,", ctl_result_name(f.ev[k].items[i].out.result));
            const char *end = strstr(row + 2, "\r\n");
            const char *res = strstr(row, want);
            assert_true(res != NULL && res < end);
        }
    }
    sbuf_free(&csv);
    fixture_free(&f);
}

/* A title with a comma, quotes, a leading = and HTML: escaped in both renderings. */
static void
test_escaping(void **state)
{
    static const char text[] =
        "{\"format\":\"difyguard-policy-pack-v1\",\"id\":\"x\",\"name\":\"X <b>\",\"framework\":"
        "\"F&G\",\"version\":\"1\",\"controls\":[{\"id\":\"c1\",\"title\":\"=HYPERLINK(\\\"a\\\"), "
        "<script>\",\"refs\":[\"R\"],\"severity\":\"low\",\"check\":\"apikey_scopes\"}]}";
    struct pack *p = NULL;
    struct evaluation ev;
    struct inventory inv = {.now = 1};
    struct report_meta m = {"difyguard", "1", "", "rk", 1, NULL, 0};
    struct sbuf csv = {0}, html = {0};
    char err[256];

    (void)state;
    assert_int_equal(pack_parse(&p, text, strlen(text), err, sizeof err), ST_OK);
    eval_run(&ev, p, &inv);
    report_csv(&csv, &m, &ev, 1);
    assert_non_null(strstr(csv.p, ",\"'=HYPERLINK(\"\"a\"\"), <script>\","));
    report_html(&html, &m, &ev, 1);
    assert_null(strstr(html.p, "<script"));
    assert_non_null(strstr(html.p, "=HYPERLINK(&quot;a&quot;), &lt;script&gt;"));
    assert_non_null(strstr(html.p, "F&amp;G"));
    sbuf_free(&csv);
    sbuf_free(&html);
    eval_free(&ev);
    pack_free(p);
}

static void
test_html_page(void **state)
{
    struct fixture f;
    struct sbuf html = {0};

    (void)state;
    fixture_make(&f, "upstream");
    /* one control fails (the plain metrics listener): make sure failing comes first */
    report_html(&html, &f.meta, f.ev, 2);
    assert_ptr_equal(strstr(html.p, "<!DOCTYPE html>"), html.p);
    assert_null(strstr(html.p, "<script"));
    assert_null(strstr(html.p, " src="));
    assert_null(strstr(html.p, "href="));
    assert_null(strstr(html.p, "@import"));
    assert_non_null(strstr(html.p, "<svg"));
    const char *first_fail = strstr(html.p, "class=\"control r-fail\"");
    const char *first_manual = strstr(html.p, "class=\"control r-manual\"");
    const char *first_pass = strstr(html.p, "class=\"control r-pass\"");
    const char *first_na = strstr(html.p, "class=\"control r-not_applicable\"");
    assert_non_null(first_fail);
    assert_true(first_fail < first_manual && first_manual < first_pass);
    assert_true(first_na == NULL || first_pass < first_na);
    assert_non_null(strstr(first_fail, "plain HTTP on a non-loopback address"));
    assert_non_null(strstr(html.p, "3fa1c2d4e5f60718</code></td><td>4211"));
    sbuf_free(&html);
    fixture_free(&f);
}

/* Seeds for fuzz/corpus/fuzz_report_verify, signed with key 0. */
static void
test_fuzz_corpus(void **state)
{
    static const char *const invs[] = {"compliant", "noncompliant", "empty"};
    const char *src = getenv("DG_SOURCE_DIR"), *write = getenv("DG_WRITE_FUZZ_CORPUS");
    struct report_summary s;
    char path[1024], err[256];

    (void)state;
    if (src == NULL)
        skip();
    for (size_t i = 0; i < 3; i++) {
        struct fixture f;
        fixture_make(&f, invs[i]);
        snprintf(path, sizeof path, "%s/fuzz/corpus/fuzz_report_verify/%s.json", src, invs[i]);
        if (write != NULL && strcmp(write, "1") == 0) {
            FILE *out = fopen(path, "wb");
            assert_non_null(out);
            assert_int_equal(fwrite(f.signed_text.p, 1, f.signed_text.len, out), f.signed_text.len);
            fclose(out);
        }
        size_t len;
        snprintf(path, sizeof path, "fuzz/corpus/fuzz_report_verify/%s.json", invs[i]);
        char *disk = invjson_read_source(path, &len);
        if (verify(disk, len, 0, &s, err) != ST_OK)
            fail_msg("%s: %s (rewrite with DG_WRITE_FUZZ_CORPUS=1)", path, err);
        report_summary_free(&s);
        free(disk);
        fixture_free(&f);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verifies_and_summarizes),
        cmocka_unit_test(test_every_byte_flip_fails),
        cmocka_unit_test(test_removed_control_fails),
        cmocka_unit_test(test_other_key_fails),
        cmocka_unit_test(test_csv_same_results),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_html_page),
        cmocka_unit_test(test_fuzz_corpus),
    };
    uint8_t seed[crypto_sign_ed25519_SEEDBYTES];
    int rc;

    if (crypto_init() != ST_OK)
        return 1;
    for (int k = 0; k < 2; k++) {
        for (size_t i = 0; i < sizeof seed; i++)
            seed[i] =
                (uint8_t)(0x30 * (size_t)k + i + 7); /* fuzz/fuzz_report_verify.c uses k = 0 */
        sk[k] = secret_new(SIGN_SK_BYTES);
        crypto_sign_ed25519_seed_keypair(pk[k], secret_rw(sk[k]), seed);
    }
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    secret_free(sk[0]);
    secret_free(sk[1]);
    return rc;
}
