/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/server/audit/heads_test.c -- what an auditor checks beyond the keys (issue 10): the
 * head each chain verified through, expected heads (--expect-head, e.g. from a signed compliance
 * report) and --not-before. An export cut back to an earlier checkpoint verifies as a complete
 * older export on its own, and must fail against a later head; a trail rewritten and re-signed
 * must fail at the head it no longer passes. Then `difyguard audit verify` with those flags and
 * with the JSON of GET /v1/audit/public-key as its key file. */
#include <fcntl.h>
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

#include "cli/audit_verify.h"
#include "crypto/b64.h"
#include "crypto/init.h"
#include "server/audit/format.h"

#define T0 INT64_C(1795897260000) /* 2026-11-28T20:21:00.000Z */
#define MAX_SEQ 32

static struct secret *sk;
static uint8_t pk[AUDIT_PK_BYTES];
static char pk_b64[64];
static struct audit_signer signer;

/* One chain being written: its lines, and every event's hash by seq. */
struct trail {
    const char *id;
    uint64_t seq;
    uint8_t hash[AUDIT_HASH_BYTES];
    uint8_t hashes[MAX_SEQ + 1][AUDIT_HASH_BYTES];
    int64_t t;
};

static void
ev(struct sbuf *out, struct trail *tr, const char *op)
{
    struct audit_event e = {.chain_id = tr->id,
                            .seq = tr->seq + 1,
                            .time_ms = tr->t += 1000,
                            .op = op,
                            .method = "POST",
                            .route = "/v1/keyrings/{name}/encrypt",
                            .status = 200,
                            .outcome = "ok",
                            .count = 1};
    memcpy(e.prev_hash, tr->hash, AUDIT_HASH_BYTES);
    assert_int_equal(auditfmt_event(out, tr->hash, &e), ST_OK);
    sbuf_add(out, "\n", 1);
    tr->seq++;
    assert_true(tr->seq <= MAX_SEQ);
    memcpy(tr->hashes[tr->seq], tr->hash, AUDIT_HASH_BYTES);
}

static void
cp(struct sbuf *out, struct trail *tr, const char *kind)
{
    struct audit_checkpoint c = {tr->id, tr->seq, {0}, tr->t += 500, kind, NULL, NULL};
    memcpy(c.hash, tr->hash, AUDIT_HASH_BYTES);
    assert_int_equal(auditfmt_checkpoint(out, &c, &signer, 1), ST_OK);
    sbuf_add(out, "\n", 1);
}

/* node-a: events 1..n with a periodic checkpoint after 3, ending with an export checkpoint;
 * op_at_3 lets a rewritten history differ at seq 3 (re-signed with the same key). */
static void
chain_a(struct sbuf *out, struct trail *tr, uint64_t n, const char *op_at_3)
{
    memset(tr, 0, sizeof *tr);
    tr->id = "node-a";
    tr->t = T0;
    for (uint64_t s = 1; s <= n; s++) {
        ev(out, tr, s == 3 ? op_at_3 : "encrypt");
        if (s == 3 && n > 3)
            cp(out, tr, "periodic");
    }
    cp(out, tr, "export");
}

/* node-b: an anchor at seq 10 (events before it pruned), events 11..13, an export checkpoint. */
static void
chain_b(struct sbuf *out, struct trail *tr)
{
    memset(tr, 0, sizeof *tr);
    tr->id = "node-b";
    tr->t = T0 + 100;
    tr->seq = 10;
    memset(tr->hash, 0xab, AUDIT_HASH_BYTES);
    memcpy(tr->hashes[10], tr->hash, AUDIT_HASH_BYTES);
    cp(out, tr, "anchor");
    for (int i = 0; i < 3; i++)
        ev(out, tr, "decrypt");
    cp(out, tr, "export");
}

static struct audit_head
head(const char *chain, uint64_t seq, const uint8_t hash[static AUDIT_HASH_BYTES])
{
    struct audit_head h = {0};
    snprintf(h.chain_id, sizeof h.chain_id, "%s", chain);
    h.seq = seq;
    memcpy(h.hash, hash, AUDIT_HASH_BYTES);
    return h;
}

static enum status
verify(const struct sbuf *text, const struct audit_head *expect, size_t n, const char *not_before,
       struct audit_verify_result *r)
{
    const struct audit_verify_opts o = {.expect = expect, .n_expect = n, .not_before = not_before};
    return audit_verify_heads(text->p, text->len, (const uint8_t(*)[AUDIT_PK_BYTES])pk, 1, &o, r,
                              NULL, NULL);
}

static void
expect_fail(const struct sbuf *text, const struct audit_head *h, size_t n, const char *nb,
            const char *words)
{
    struct audit_verify_result r;
    enum status st = verify(text, h, n, nb, &r);
    if (st != ST_AUTH || strstr(r.error, words) == NULL)
        fail_msg("want failure \"%s\", got %s: %s", words, status_name(st), r.error);
}

static void
test_heads_out(void **state)
{
    struct sbuf text = {0};
    struct trail a, b;
    struct audit_verify_result r;
    struct audit_head *h = NULL;
    size_t n = 0;
    char t[AUDIT_TIME_CHARS + 1];

    (void)state;
    chain_a(&text, &a, 6, "encrypt");
    chain_b(&text, &b);
    assert_int_equal(audit_verify_heads(text.p, text.len, (const uint8_t(*)[AUDIT_PK_BYTES])pk, 1,
                                        NULL, &r, &h, &n),
                     ST_OK);
    assert_int_equal(n, 2);
    assert_string_equal(h[0].chain_id, "node-a"); /* in order of appearance */
    assert_int_equal(h[0].seq, 6);
    assert_memory_equal(h[0].hash, a.hash, AUDIT_HASH_BYTES);
    auditfmt_time(t, a.t);
    assert_string_equal(h[0].cp_time, t);
    assert_string_equal(h[1].chain_id, "node-b");
    assert_int_equal(h[1].seq, 13);
    assert_memory_equal(h[1].hash, b.hash, AUDIT_HASH_BYTES);
    free(h);
    /* a failure gives no heads */
    text.p[10] ^= 1;
    assert_int_equal(audit_verify_heads(text.p, text.len, (const uint8_t(*)[AUDIT_PK_BYTES])pk, 1,
                                        NULL, &r, &h, &n),
                     ST_AUTH);
    assert_null(h);
    assert_int_equal(n, 0);
    sbuf_free(&text);
}

static void
test_expected_heads(void **state)
{
    struct sbuf text = {0};
    struct trail a, b;
    struct audit_verify_result r;

    (void)state;
    chain_a(&text, &a, 6, "encrypt");
    chain_b(&text, &b);
    struct audit_head ok[] = {head("node-a", 3, a.hashes[3]), head("node-a", 6, a.hashes[6]),
                              head("node-b", 10, b.hashes[10]), head("node-b", 12, b.hashes[12])};
    assert_int_equal(verify(&text, ok, 4, NULL, &r), ST_OK);
    struct audit_head wrong = head("node-a", 4, a.hashes[3]);
    expect_fail(&text, &wrong, 1, NULL, "seq 4 has hash");
    struct audit_head later = head("node-a", 7, a.hashes[6]);
    expect_fail(&text, &later, 1, NULL, "ends at seq 6, before the expected head at seq 7");
    struct audit_head other = head("node-c", 1, a.hashes[1]);
    expect_fail(&text, &other, 1, NULL, "chain \"node-c\" of an expected head is not in");
    struct audit_head pruned = head("node-b", 9, b.hashes[10]);
    expect_fail(&text, &pruned, 1, NULL, "lies before the start of the export (seq 10");
    sbuf_free(&text);
}

/* An older export (through seq 3) verifies on its own: only a later head or --not-before tells
 * it is cut back. */
static void
test_cut_back_export(void **state)
{
    struct sbuf now = {0}, old = {0};
    struct trail a, a_old;
    struct audit_verify_result r;
    char t[AUDIT_TIME_CHARS + 1];

    (void)state;
    chain_a(&now, &a, 6, "encrypt");
    chain_a(&old, &a_old, 3, "encrypt");
    assert_memory_equal(a.hashes[3], a_old.hashes[3], AUDIT_HASH_BYTES);
    assert_int_equal(verify(&old, NULL, 0, NULL, &r), ST_OK);
    struct audit_head from_report = head("node-a", 5, a.hashes[5]);
    assert_int_equal(verify(&now, &from_report, 1, NULL, &r), ST_OK);
    expect_fail(&old, &from_report, 1, NULL, "cut back to an earlier checkpoint");
    struct audit_head earlier = head("node-a", 3, a.hashes[3]);
    assert_int_equal(verify(&old, &earlier, 1, NULL, &r), ST_OK);
    /* --not-before: the old export's last checkpoint is older than the new one's */
    auditfmt_time(t, a_old.t);
    assert_int_equal(verify(&old, NULL, 0, t, &r), ST_OK);
    auditfmt_time(t, a_old.t + 1);
    expect_fail(&old, NULL, 0, t, "is older than --not-before");
    auditfmt_time(t, a.t);
    assert_int_equal(verify(&now, NULL, 0, t, &r), ST_OK);
    sbuf_free(&now);
    sbuf_free(&old);
}

/* History rewritten from seq 3 on and re-signed with the service's own key: it verifies alone,
 * and fails at every head taken before the rewrite from seq 3 on. */
static void
test_rewritten_history(void **state)
{
    struct sbuf orig = {0}, forged = {0};
    struct trail a, f;
    struct audit_verify_result r;

    (void)state;
    chain_a(&orig, &a, 6, "encrypt");
    chain_a(&forged, &f, 6, "keyring.delete");
    assert_int_equal(verify(&forged, NULL, 0, NULL, &r), ST_OK);
    struct audit_head before = head("node-a", 2, a.hashes[2]);
    assert_int_equal(verify(&forged, &before, 1, NULL, &r), ST_OK);
    for (uint64_t s = 3; s <= 6; s++) {
        struct audit_head h = head("node-a", s, a.hashes[s]);
        expect_fail(&forged, &h, 1, NULL, "the trail was rewritten");
    }
    sbuf_free(&orig);
    sbuf_free(&forged);
}

static void
test_bad_options(void **state)
{
    struct sbuf text = {0};
    struct trail a;
    struct audit_verify_result r;

    (void)state;
    chain_a(&text, &a, 2, "encrypt");
    struct audit_head zero = head("node-a", 0, a.hashes[1]);
    assert_int_equal(verify(&text, &zero, 1, NULL, &r), ST_INVALID);
    struct audit_head noname = head("", 1, a.hashes[1]);
    assert_int_equal(verify(&text, &noname, 1, NULL, &r), ST_INVALID);
    assert_int_equal(verify(&text, NULL, 0, "2026-11-28", &r), ST_INVALID);
    assert_int_equal(verify(&text, NULL, 1, NULL, &r), ST_INVALID);
    assert_int_equal(verify(&text, NULL, 0, "", &r), ST_OK); /* "" is no bound */
    sbuf_free(&text);
}

/* ---- the command ------------------------------------------------------------------------- */

static char dir[64], out_text[8192], err_text[8192];

static void
put(const char *name, const char *data, size_t len)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

static void
slurp(char *buf, size_t cap, int fd)
{
    ssize_t n = pread(fd, buf, cap - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
}

/* `difyguard audit verify ARGS...` in process; "%x" is the file x of the temp dir. */
static int
run(const char *first, ...)
{
    char store[16][256], *argv[18], path[128];
    int argc = 0, rc, fo, fe, so, se;
    va_list ap;

    argv[argc++] = "audit";
    argv[argc++] = "verify";
    va_start(ap, first);
    for (const char *s = first; s != NULL; s = va_arg(ap, const char *)) {
        if (s[0] == '%')
            snprintf(store[argc], sizeof store[0], "%s/%s", dir, s + 1);
        else if (s[0] == '@' && s[1] == '%')
            snprintf(store[argc], sizeof store[0], "@%s/%s", dir, s + 2);
        else
            snprintf(store[argc], sizeof store[0], "%s", s);
        argv[argc] = store[argc];
        argc++;
    }
    va_end(ap);
    argv[argc] = NULL;
    fflush(stdout);
    fflush(stderr);
    snprintf(path, sizeof path, "%s/stdout", dir);
    fo = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    snprintf(path, sizeof path, "%s/stderr", dir);
    fe = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    so = dup(1), se = dup(2);
    dup2(fo, 1), dup2(fe, 2);
    rc = cmd_audit(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(so, 1), dup2(se, 2);
    close(so), close(se);
    slurp(out_text, sizeof out_text, fo);
    slurp(err_text, sizeof err_text, fe);
    close(fo), close(fe);
    return rc;
}

static void
test_cli(void **state)
{
    struct sbuf now = {0}, old = {0}, keys = {0};
    struct trail a, a_old;
    char arg[256], hex[65], t[AUDIT_TIME_CHARS + 1], want[512];

    (void)state;
    unsetenv("DIFYGUARD_PUBLIC_KEY");
    unsetenv("DIFYGUARD_NOT_BEFORE");
    snprintf(dir, sizeof dir, "/tmp/dg_heads_test_XXXXXX");
    assert_non_null(mkdtemp(dir));
    chain_a(&now, &a, 6, "encrypt");
    chain_a(&old, &a_old, 3, "encrypt");
    put("now", now.p, now.len);
    put("old", old.p, old.len);
    sbuf_addf(&keys,
              "{\"keys\":[{\"key_id\":\"%s\",\"public_key\":\"%s\",\"algorithm\":\"ed25519\","
              "\"created_at\":\"2026-11-28T20:21:00Z\",\"active\":true}]}\n",
              signer.key_id, pk_b64);
    put("keys.json", keys.p, keys.len);
    put("empty.json", "{\"keys\":[]}", 11);

    /* the heads it verified through, one line per chain */
    assert_int_equal(run("%now", "--public-key", "@%keys.json", NULL), 0);
    sodium_bin2hex(hex, sizeof hex, a.hash, AUDIT_HASH_BYTES);
    auditfmt_time(t, a.t);
    snprintf(want, sizeof want,
             "verified: 6 events, 2 checkpoints, 1 chains\nhead node-a:6:%s (last checkpoint %s)\n",
             hex, t);
    assert_string_equal(out_text, want);
    assert_int_equal(run("%now", "--json", "--public-key", pk_b64, NULL), 0);
    snprintf(want, sizeof want,
             "{\"valid\":true,\"events\":6,\"checkpoints\":2,\"chains\":1,\"heads\":[{"
             "\"chain_id\":\"node-a\",\"seq\":6,\"hash\":\"%s\",\"checkpoint_time\":\"%s\"}]}\n",
             hex, t);
    assert_string_equal(out_text, want);

    /* --expect-head from a later report: the current export passes, the old one does not */
    sodium_bin2hex(hex, sizeof hex, a.hashes[5], AUDIT_HASH_BYTES);
    snprintf(arg, sizeof arg, "node-a:5:%s", hex);
    assert_int_equal(run("%now", "--public-key", pk_b64, "--expect-head", arg, NULL), 0);
    assert_int_equal(run("%old", "--public-key", pk_b64, "--expect-head", arg, NULL), 1);
    assert_non_null(strstr(err_text, "cut back to an earlier checkpoint"));
    snprintf(want, sizeof want, "--expect-head=node-a:3:%s", hex);
    assert_int_equal(run("%old", "--public-key", pk_b64, want, NULL), 1); /* hash of 5 at 3 */
    assert_non_null(strstr(err_text, "the trail was rewritten"));
    /* --not-before: the old export's checkpoint is older */
    auditfmt_time(t, a_old.t + 1000);
    assert_int_equal(run("%old", "--public-key", pk_b64, "--not-before", t, NULL), 1);
    assert_non_null(strstr(err_text, "older than --not-before"));
    assert_int_equal(run("%old", "--public-key", pk_b64, "--not-before", "1795897260", NULL), 0);
    assert_int_equal(
        run("%now", "--public-key", pk_b64, "--not-before", "2026-11-28T20:21:00Z", NULL), 0);

    /* usage errors: 2 */
    assert_int_equal(run("%now", "--public-key", pk_b64, "--expect-head", "node-a:5", NULL), 2);
    assert_int_equal(run("%now", "--public-key", pk_b64, "--expect-head", "node-a:0:00", NULL), 2);
    snprintf(arg, sizeof arg, "node-a:5:%.63s", hex);
    assert_int_equal(run("%now", "--public-key", pk_b64, "--expect-head", arg, NULL), 2);
    assert_int_equal(run("%now", "--public-key", pk_b64, "--expect-head", NULL), 2);
    assert_int_equal(run("%now", "--public-key", pk_b64, "--not-before", "yesterday", NULL), 2);
    assert_int_equal(run("%now", "--public-key", "@%empty.json", NULL), 2);
    assert_non_null(strstr(err_text, "without a \"keys\" list"));
    assert_int_equal(run("--help", NULL), 0);
    assert_non_null(strstr(out_text, "--expect-head"));

    snprintf(arg, sizeof arg, "rm -rf '%s'", dir);
    assert_int_equal(system(arg), 0);
    sbuf_free(&now);
    sbuf_free(&old);
    sbuf_free(&keys);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_heads_out),       cmocka_unit_test(test_expected_heads),
        cmocka_unit_test(test_cut_back_export), cmocka_unit_test(test_rewritten_history),
        cmocka_unit_test(test_bad_options),     cmocka_unit_test(test_cli),
    };
    uint8_t seed[32];
    int rc;

    if (crypto_init() != ST_OK)
        return 1;
    for (size_t i = 0; i < sizeof seed; i++)
        seed[i] = (uint8_t)(0x77 + i);
    sk = secret_new(AUDIT_SK_BYTES);
    crypto_sign_ed25519_seed_keypair(pk, secret_rw(sk), seed);
    auditfmt_key_id(signer.key_id, pk);
    signer.sk = sk;
    b64_std_encode(pk_b64, sizeof pk_b64, pk, AUDIT_PK_BYTES);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    secret_free(sk);
    return rc;
}
