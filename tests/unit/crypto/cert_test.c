/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/crypto/cert_test.c -- X.509 parsing and chain verification (crypto/cert.h) on
 * certificates made here with OpenSSL: every fact of a PEM and a DER certificate, bundles with a
 * private key inside, weak ones (RSA-1024, SHA-1, MD5, no SAN, v1), hostile text, garbage, torn
 * and oversized input; chains with an intermediate, extra anchors, expired members of a trusted
 * chain. `crypto_cert_test --write-seeds DIR` writes the fuzz seed corpus (fuzz/corpus/fuzz_cert). */
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

#include "../certgen.h"
#include "crypto/cert.h"
#include "crypto/init.h"

#define DAY INT64_C(86400)
#define T0 INT64_C(1893456000) /* 2030-01-01T00:00:00Z */

static struct cert_set *
parse_ok(const void *data, size_t len)
{
    struct cert_set *s = NULL;
    char err[128];
    assert_int_equal(cert_set_parse(&s, data, len, err, sizeof err), ST_OK);
    assert_non_null(s);
    return s;
}

static enum status
parse_fails(const void *data, size_t len, char *err, size_t err_len)
{
    struct cert_set *s = (struct cert_set *)&s;
    enum status st = cert_set_parse(&s, data, len, err, err_len);
    assert_null(s);
    return st;
}

static void
test_every_fact_of_a_leaf(void **state)
{
    (void)state;
    struct cg_key *k = cg_key_new(CG_EC256, 0);
    struct cg_spec sp = {.cn = "api.example.test",
                         .org = "Dify Ops",
                         .sans = "DNS:api.example.test,DNS:*.example.test,IP:127.0.0.1,IP:::1",
                         .not_before = T0,
                         .not_after = T0 + 90 * DAY,
                         .serial = 0x1234abcdULL};
    struct cg_cert *c = cg_cert_new(&sp, k, NULL);
    size_t len = 0, dlen = 0;
    char *pem = cg_cert_pem(c, &len), fp[65];
    cg_cert_fingerprint(c, fp);

    struct cert_set *s = parse_ok(pem, len);
    assert_int_equal(cert_set_count(s), 1);
    const struct cert_info *ci = cert_set_info(s, 0);
    assert_string_equal(ci->subject, "CN=api.example.test,O=Dify Ops");
    assert_string_equal(ci->subject_cn, "api.example.test");
    assert_string_equal(ci->issuer, ci->subject);
    assert_string_equal(ci->issuer_cn, "api.example.test");
    assert_string_equal(ci->serial, "1234ABCD");
    assert_string_equal(ci->sans, "DNS:api.example.test,DNS:*.example.test,IP:127.0.0.1,IP:::1");
    assert_int_equal(ci->n_sans, 4);
    assert_int_equal(ci->not_before, T0);
    assert_int_equal(ci->not_after, T0 + 90 * DAY);
    assert_string_equal(ci->key_type, "ec");
    assert_string_equal(ci->key_curve, "P-256");
    assert_int_equal(ci->key_bits, 256);
    assert_string_equal(ci->sig_alg, "ecdsa-with-SHA256");
    assert_string_equal(ci->sig_hash, "sha256");
    assert_string_equal(ci->fingerprint, fp);
    assert_int_equal(ci->version, 3);
    assert_false(ci->is_ca);
    assert_true(ci->self_signed);

    /* The same certificate as DER: the same facts, and the set hands back those bytes. */
    uint8_t *der = cg_cert_der(c, &dlen);
    struct cert_set *d = parse_ok(der, dlen);
    assert_string_equal(cert_set_info(d, 0)->fingerprint, fp);
    assert_memory_equal(cert_set_info(d, 0), ci, sizeof *ci);
    size_t got_len = 0;
    const uint8_t *got = cert_set_der(d, 0, &got_len);
    assert_int_equal(got_len, dlen);
    assert_memory_equal(got, der, dlen);
    assert_null(cert_set_info(d, 1));
    cert_set_free(d);
    cert_set_free(s);
    free(der);
    free(pem);
    cg_cert_free(c);
    cg_key_free(k);
}

static void
test_weak_ones_are_described(void **state)
{
    (void)state;
    struct cg_key *rsa = cg_key_new(CG_RSA, 1024), *ed = cg_key_new(CG_ED25519, 0);
    struct cg_key *p384 = cg_key_new(CG_EC384, 0);
    struct cg_spec sha1 = {.cn = "old", .not_before = T0, .not_after = T0 + DAY, .digest = "sha1"};
    struct cg_spec md5 = {.cn = "older", .not_before = T0, .not_after = T0 + DAY, .digest = "md5"};
    struct cg_spec v1 = {.cn = "v1", .not_before = T0, .not_after = T0 + DAY, .version = 1};
    struct cg_spec eds = {.cn = "ed", .sans = "DNS:ed", .not_before = T0, .not_after = T0 + DAY};
    struct cg_cert *a = cg_cert_new(&sha1, rsa, NULL), *b = cg_cert_new(&md5, rsa, NULL);
    struct cg_cert *c = cg_cert_new(&v1, p384, NULL), *e = cg_cert_new(&eds, ed, NULL);
    size_t la, lb, lc, le;
    char *pa = cg_cert_pem(a, &la), *pb = cg_cert_pem(b, &lb), *pc = cg_cert_pem(c, &lc);
    char *pe = cg_cert_pem(e, &le), *all = cg_cat(pa, pb, pc, pe, NULL);

    struct cert_set *s = parse_ok(all, strlen(all));
    assert_int_equal(cert_set_count(s), 4);
    const struct cert_info *i0 = cert_set_info(s, 0), *i1 = cert_set_info(s, 1);
    const struct cert_info *i2 = cert_set_info(s, 2), *i3 = cert_set_info(s, 3);
    assert_string_equal(i0->key_type, "rsa");
    assert_int_equal(i0->key_bits, 1024);
    assert_string_equal(i0->sig_hash, "sha1");
    assert_string_equal(i0->sig_alg, "sha1WithRSAEncryption");
    assert_string_equal(i1->sig_hash, "md5");
    assert_int_equal(i0->n_sans, 0);
    assert_string_equal(i0->sans, "");
    assert_int_equal(i2->version, 1);
    assert_string_equal(i2->key_curve, "P-384");
    assert_int_equal(i2->key_bits, 384);
    assert_false(i2->is_ca);
    assert_string_equal(i3->key_type, "ed25519");
    assert_string_equal(i3->sig_hash, "");
    assert_string_equal(i3->sig_alg, "ED25519");
    cert_set_free(s);
    free(pa), free(pb), free(pc), free(pe), free(all);
    cg_cert_free(a), cg_cert_free(b), cg_cert_free(c), cg_cert_free(e);
    cg_key_free(rsa), cg_key_free(ed), cg_key_free(p384);
}

/* A combined file (cert, key, cert) and text around the blocks: the key is skipped. */
static void
test_bundle_with_a_private_key_inside(void **state)
{
    (void)state;
    struct cg_key *k = cg_key_new(CG_EC256, 0);
    struct cg_spec sp = {.cn = "b", .sans = "DNS:b", .not_before = T0, .not_after = T0 + DAY};
    struct cg_cert *c1 = cg_cert_new(&sp, k, NULL), *c2 = cg_cert_new(&sp, k, NULL);
    size_t l;
    char *p1 = cg_cert_pem(c1, &l), *p2 = cg_cert_pem(c2, &l), *kp = cg_key_pem(k, &l);
    char *all = cg_cat("subject=/CN=b\n", p1, "\n# a comment\n", kp, p2, "trailing\n", NULL);

    struct cert_set *s = parse_ok(all, strlen(all));
    assert_int_equal(cert_set_count(s), 2);
    assert_string_not_equal(cert_set_info(s, 0)->fingerprint, cert_set_info(s, 1)->fingerprint);
    cert_set_free(s);

    char err[128];
    assert_int_equal(parse_fails(kp, strlen(kp), err, sizeof err), ST_INVALID);
    assert_string_equal(err, "no certificate in the PEM input");
    assert_null(strstr(err, "PRIVATE")); /* never the input */
    free(p1), free(p2), free(kp), free(all);
    cg_cert_free(c1), cg_cert_free(c2), cg_key_free(k);
}

static void
test_garbage_torn_and_oversized_input(void **state)
{
    (void)state;
    struct cg_key *k = cg_key_new(CG_EC256, 0);
    struct cg_spec sp = {.cn = "t", .not_before = T0, .not_after = T0 + DAY};
    struct cg_cert *c = cg_cert_new(&sp, k, NULL);
    size_t l, dl;
    char *pem = cg_cert_pem(c, &l), err[128];
    uint8_t *der = cg_cert_der(c, &dl);

    assert_int_equal(parse_fails("", 0, err, sizeof err), ST_INVALID);
    assert_int_equal(parse_fails("hello, not a certificate\n", 25, err, sizeof err), ST_INVALID);
    assert_int_equal(parse_fails(pem, l / 2, err, sizeof err), ST_INVALID); /* torn */
    char *bad = strdup(pem);
    bad[40] = '!'; /* not base64 */
    assert_int_equal(parse_fails(bad, l, err, sizeof err), ST_INVALID);
    free(bad);
    char *notx = cg_cat("-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n", NULL);
    assert_int_equal(parse_fails(notx, strlen(notx), err, sizeof err), ST_INVALID);
    assert_string_equal(err, "a CERTIFICATE block is not an X.509 certificate");
    free(notx);
    /* DER must be exactly one certificate. */
    uint8_t *longer = malloc(dl + 1);
    memcpy(longer, der, dl);
    longer[dl] = 0;
    assert_int_equal(parse_fails(longer, dl + 1, err, sizeof err), ST_INVALID);
    assert_int_equal(parse_fails(der, dl - 1, err, sizeof err), ST_INVALID);
    free(longer);
    assert_int_equal(parse_fails(der, CERT_INPUT_MAX + 1, err, sizeof err), ST_TOO_LARGE);
    /* More certificates than one input may hold. */
    size_t n = CERT_SET_MAX + 1, at = 0;
    char *many = malloc(n * l + 1);
    for (size_t i = 0; i < n; i++, at += l)
        memcpy(many + at, pem, l);
    assert_int_equal(parse_fails(many, at, err, sizeof err), ST_TOO_LARGE);
    free(many);
    free(pem), free(der);
    cg_cert_free(c), cg_key_free(k);
}

/* Names are text the issuer chose: control characters never come out, UTF-8 stays UTF-8. */
static void
test_hostile_names_come_out_as_safe_text(void **state)
{
    (void)state;
    struct cg_key *k = cg_key_new(CG_EC256, 0);
    struct cg_spec sp = {.cn = "evil\n{\"x\":1}\x1b[31m",
                         .org = "Zürich AG",
                         .sans = "DNS:x.test",
                         .not_before = T0,
                         .not_after = T0 + DAY};
    struct cg_cert *c = cg_cert_new(&sp, k, NULL);
    size_t l;
    char *pem = cg_cert_pem(c, &l);
    struct cert_set *s = parse_ok(pem, l);
    const struct cert_info *ci = cert_set_info(s, 0);

    for (const char *p = ci->subject; *p != '\0'; p++)
        assert_true((unsigned char)*p >= 0x20 && *p != 0x7f);
    for (const char *p = ci->subject_cn; *p != '\0'; p++)
        assert_true((unsigned char)*p >= 0x20 && *p != 0x7f);
    assert_string_equal(ci->subject_cn, "evil?{\"x\":1}?[31m");
    assert_non_null(strstr(ci->subject, "O=Zürich AG"));
    cert_set_free(s);
    free(pem);
    cg_cert_free(c), cg_key_free(k);
}

struct pki {
    struct cg_key *rk, *ik, *lk;
    struct cg_cert *root, *inter, *leaf;
    char *root_pem, *inter_pem, *leaf_pem;
};

static void
pki_make(struct pki *p, int64_t leaf_not_after)
{
    size_t l;
    struct cg_spec r = {
        .cn = "Test Root", .not_before = T0 - 400 * DAY, .not_after = T0 + 3650 * DAY, .ca = true};
    struct cg_spec i = {.cn = "Test Intermediate",
                        .not_before = T0 - 400 * DAY,
                        .not_after = T0 + 1000 * DAY,
                        .ca = true};
    struct cg_spec f = {
        .cn = "leaf", .sans = "DNS:leaf", .not_before = T0 - 10 * DAY, .not_after = leaf_not_after};
    p->rk = cg_key_new(CG_EC256, 0);
    p->ik = cg_key_new(CG_EC256, 0);
    p->lk = cg_key_new(CG_RSA, 2048);
    p->root = cg_cert_new(&r, p->rk, NULL);
    p->inter = cg_cert_new(&i, p->ik, p->root);
    p->leaf = cg_cert_new(&f, p->lk, p->inter);
    p->root_pem = cg_cert_pem(p->root, &l);
    p->inter_pem = cg_cert_pem(p->inter, &l);
    p->leaf_pem = cg_cert_pem(p->leaf, &l);
}

static void
pki_free(struct pki *p)
{
    free(p->root_pem), free(p->inter_pem), free(p->leaf_pem);
    cg_cert_free(p->leaf), cg_cert_free(p->inter), cg_cert_free(p->root);
    cg_key_free(p->lk), cg_key_free(p->ik), cg_key_free(p->rk);
}

static struct cert_trust *
trust_of(const char *pem)
{
    struct cert_trust *t = NULL;
    char err[128];
    assert_int_equal(
        cert_trust_new(&t, (const uint8_t *)pem, pem ? strlen(pem) : 0, false, err, sizeof err),
        ST_OK);
    return t;
}

static void
test_chain_with_an_intermediate(void **state)
{
    (void)state;
    struct pki p;
    pki_make(&p, T0 + 30 * DAY);
    char *chain = cg_cat(p.leaf_pem, p.inter_pem, NULL), reason[128];
    struct cert_set *full = parse_ok(chain, strlen(chain));
    struct cert_set *alone = parse_ok(p.leaf_pem, strlen(p.leaf_pem));
    struct cert_set *roots = parse_ok(p.root_pem, strlen(p.root_pem));
    struct cert_trust *t = trust_of(p.root_pem), *empty = trust_of(NULL);

    assert_true(cert_set_info(full, 1)->is_ca);
    assert_false(cert_set_info(full, 0)->self_signed);
    assert_string_equal(cert_set_info(full, 0)->issuer_cn, "Test Intermediate");
    assert_string_equal(cert_set_info(full, 0)->key_type, "rsa");
    assert_int_equal(cert_set_info(full, 0)->key_bits, 2048);
    assert_int_equal(cert_verify(full, 0, t, NULL, reason, sizeof reason), ST_OK);
    assert_string_equal(reason, "");
    assert_int_equal(cert_verify(full, 1, t, NULL, reason, sizeof reason), ST_OK);
    /* Without the intermediate, or without the root, there is no chain. */
    assert_int_equal(cert_verify(alone, 0, t, NULL, reason, sizeof reason), ST_AUTH);
    assert_string_equal(reason, "unable to get local issuer certificate");
    assert_int_equal(cert_verify(full, 0, empty, NULL, reason, sizeof reason), ST_AUTH);
    assert_int_equal(cert_verify(full, 0, NULL, NULL, reason, sizeof reason), ST_AUTH);
    /* The root as an extra anchor (a Kubernetes secret's ca.crt) completes it. */
    assert_int_equal(cert_verify(full, 0, empty, roots, reason, sizeof reason), ST_OK);
    assert_int_equal(cert_verify(full, 0, NULL, roots, reason, sizeof reason), ST_OK);
    assert_int_equal(cert_verify(full, 5, t, NULL, reason, sizeof reason), ST_INTERNAL);
    cert_trust_free(t), cert_trust_free(empty);
    cert_set_free(full), cert_set_free(alone), cert_set_free(roots);
    free(chain);
    pki_free(&p);
}

/* Dates are not trust: an expired leaf of a trusted chain still chains; a self-signed leaf
 * does not unless it is an anchor itself. */
static void
test_dates_are_not_trust(void **state)
{
    (void)state;
    struct pki p;
    pki_make(&p, 946684800); /* expired in 2000 */
    char *chain = cg_cat(p.leaf_pem, p.inter_pem, NULL), reason[128];
    struct cert_set *full = parse_ok(chain, strlen(chain));
    struct cert_trust *t = trust_of(p.root_pem);
    assert_int_equal(cert_verify(full, 0, t, NULL, reason, sizeof reason), ST_OK);

    struct cg_key *k = cg_key_new(CG_EC256, 0);
    struct cg_spec sp = {.cn = "self", .sans = "DNS:self", .not_before = T0, .not_after = T0 + 9};
    struct cg_cert *c = cg_cert_new(&sp, k, NULL);
    size_t l;
    char *pem = cg_cert_pem(c, &l);
    struct cert_set *self = parse_ok(pem, l);
    assert_int_equal(cert_verify(self, 0, t, NULL, reason, sizeof reason), ST_AUTH);
    assert_non_null(strstr(reason, "self-signed"));
    struct cert_trust *ts = trust_of(pem);
    assert_int_equal(cert_verify(self, 0, ts, NULL, reason, sizeof reason), ST_OK);
    cert_trust_free(ts), cert_trust_free(t);
    cert_set_free(self), cert_set_free(full);
    free(pem), free(chain);
    cg_cert_free(c), cg_key_free(k);
    pki_free(&p);
}

static void
test_trust_store_input(void **state)
{
    (void)state;
    struct cert_trust *t = NULL;
    char err[128];
    assert_int_equal(cert_trust_new(&t, (const uint8_t *)"junk", 4, false, err, sizeof err),
                     ST_INVALID);
    assert_null(t);
    assert_int_equal(cert_trust_new(&t, NULL, 0, true, err, sizeof err), ST_OK);
    cert_trust_free(t);
    cert_trust_free(NULL);
    cert_set_free(NULL);
}

/* --- the fuzz seed corpus (fuzz/corpus/fuzz_cert), written on request --- */

static void
seed(const char *dir, const char *name, const void *p, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(p, 1, n, f) != n) {
        perror(path);
        exit(1);
    }
    fclose(f);
}

static int
write_seeds(const char *dir)
{
    struct pki p;
    size_t l;
    mkdir(dir, 0755);
    pki_make(&p, T0 + 30 * DAY);
    char *chain = cg_cat(p.leaf_pem, p.inter_pem, p.root_pem, NULL);
    struct cg_key *rsa = cg_key_new(CG_RSA, 1024), *ed = cg_key_new(CG_ED25519, 0);
    struct cg_spec weak = {.cn = "weak", .not_before = T0, .not_after = T0 + DAY, .digest = "sha1"};
    struct cg_spec eds = {.cn = "ed",
                          .sans = "DNS:ed,IP:10.0.0.1,email:a@b.c,URI:https://x",
                          .not_before = T0,
                          .not_after = T0 + DAY};
    struct cg_cert *w = cg_cert_new(&weak, rsa, NULL), *e = cg_cert_new(&eds, ed, NULL);
    char *wp = cg_cert_pem(w, &l), *kp = cg_key_pem(ed, &l);
    uint8_t *der = cg_cert_der(p.leaf, &l);
    char *combined = cg_cat(wp, kp, NULL);

    seed(dir, "chain.pem", chain, strlen(chain));
    seed(dir, "leaf.der", der, l);
    free(der);
    der = cg_cert_der(e, &l);
    seed(dir, "ed25519.der", der, l);
    seed(dir, "weak_rsa1024_sha1.pem", wp, strlen(wp));
    seed(dir, "cert_and_key.pem", combined, strlen(combined));
    seed(dir, "torn.pem", chain, strlen(chain) / 3);
    seed(dir, "garbage", "not a certificate at all\n", 25);
    free(der), free(chain), free(wp), free(kp), free(combined);
    cg_cert_free(w), cg_cert_free(e), cg_key_free(rsa), cg_key_free(ed);
    pki_free(&p);
    printf("seeds written to %s\n", dir);
    return 0;
}

int
main(int argc, char **argv)
{
    if (crypto_init() != ST_OK)
        return 1;
    if (argc == 3 && strcmp(argv[1], "--write-seeds") == 0)
        return write_seeds(argv[2]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_fact_of_a_leaf),
        cmocka_unit_test(test_weak_ones_are_described),
        cmocka_unit_test(test_bundle_with_a_private_key_inside),
        cmocka_unit_test(test_garbage_torn_and_oversized_input),
        cmocka_unit_test(test_hostile_names_come_out_as_safe_text),
        cmocka_unit_test(test_chain_with_an_intermediate),
        cmocka_unit_test(test_dates_are_not_trust),
        cmocka_unit_test(test_trust_store_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
