/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/crypto/envelope_test.c -- the permanent ciphertext format: round trips, exact
 * layout and overhead, frozen known answers, every-bit tamper loops, wrong context/KEK/version,
 * truncation, determinism, and strict parsing of the text form. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "crypto/b64.h"
#include "crypto/context.h"
#include "crypto/envelope.h"
#include "crypto/init.h"
#include "testutil.h"

static const enum envelope_format formats[] = {
    ENVELOPE_AES256GCM,
    ENVELOPE_XCHACHA20POLY1305,
    ENVELOPE_AES256SIV,
};
#define NFORMATS (sizeof formats / sizeof formats[0])

/* {"tenant": "t1", "field": "api_key"} in canonical form. */
static const uint8_t ctx1[] = "\x00\x00\x00\x02"
                              "\x00\x00\x00\x05"
                              "field"
                              "\x00\x00\x00\x07"
                              "api_key"
                              "\x00\x00\x00\x06"
                              "tenant"
                              "\x00\x00\x00\x02"
                              "t1";
static const uint8_t ctx2[] = "\x00\x00\x00\x02"
                              "\x00\x00\x00\x05"
                              "field"
                              "\x00\x00\x00\x07"
                              "api_key"
                              "\x00\x00\x00\x06"
                              "tenant"
                              "\x00\x00\x00\x02"
                              "t2";
#define CTX_LEN (sizeof ctx1 - 1)

struct fixture {
    struct rootkey *rk;
    struct kek *kek, *kek_other, *kek_v8;
};

static int
setup(void **state)
{
    static struct fixture f;
    uint8_t key[KEK_BYTES], other[KEK_BYTES];

    if (crypto_init() != ST_OK)
        return -1;
    for (int i = 0; i < KEK_BYTES; i++) {
        key[i] = (uint8_t)i;
        other[i] = (uint8_t)(i + 1);
    }
    f.rk = tu_rootkey(0x42);
    f.kek = tu_kek(f.rk, "golden", 7, key);
    f.kek_other = tu_kek(f.rk, "golden", 7, other);
    f.kek_v8 = tu_kek(f.rk, "golden", 8, key);
    *state = &f;
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *f = *state;

    kek_free(f->kek);
    kek_free(f->kek_other);
    kek_free(f->kek_v8);
    rootkey_free(f->rk);
    return 0;
}

/* Seal, check layout and overhead, format as text, parse back, open. */
static void
round_trip(const struct kek *kek, enum envelope_format fmt, const uint8_t *pt, size_t pt_len)
{
    size_t overhead = fmt == ENVELOPE_AES256SIV ? 21 : 53;
    size_t cap = envelope_blob_len(fmt, pt_len), blob_len = 0, out_len = 1;
    uint8_t *blob = malloc(cap), *parsed = malloc(cap + 3), *out = malloc(pt_len + 1);
    char *text = malloc(envelope_text_len(7, cap) + 1);
    struct envelope env;

    assert_true(blob && parsed && out && text);
    assert_int_equal(cap, pt_len + overhead);
    assert_true(overhead <= ENVELOPE_MAX_OVERHEAD);
    assert_int_equal(envelope_seal(blob, cap, &blob_len, fmt, kek, ctx1, CTX_LEN, pt, pt_len),
                     ST_OK);
    assert_int_equal(blob_len, cap);
    assert_int_equal(blob[0], fmt);
    assert_memory_equal(blob + 1, "\x00\x00\x00\x07", 4);
    size_t tl = envelope_format_text(text, envelope_text_len(7, cap) + 1, 7, blob, blob_len);
    assert_int_equal(tl, strlen(text));
    assert_int_equal(tl, envelope_text_len(7, blob_len));
    assert_memory_equal(text, "dg:v7:", 6);
    assert_int_equal(envelope_parse_text(&env, parsed, b64_decoded_max(tl), text, tl), ST_OK);
    assert_int_equal(env.format, fmt);
    assert_int_equal(env.version, 7);
    assert_int_equal(env.blob_len, blob_len);
    assert_memory_equal(env.blob, blob, blob_len);
    assert_int_equal(envelope_plaintext_len(&env), pt_len);
    assert_int_equal(envelope_open(out, pt_len, &out_len, &env, kek, ctx1, CTX_LEN), ST_OK);
    assert_int_equal(out_len, pt_len);
    assert_memory_equal(out, pt, pt_len);
    free(blob), free(parsed), free(out), free(text);
}

static void
test_round_trips(void **state)
{
    struct fixture *f = *state;
    static const size_t sizes[] = {0, 1, 15, 16, 17, 32, 200, 255, 4096, 1u << 20};
    uint8_t *pt = malloc(1u << 20);

    assert_non_null(pt);
    randombytes_buf(pt, 1u << 20);
    for (size_t i = 0; i < NFORMATS; i++)
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
            round_trip(f->kek, formats[i], pt, sizes[s]);
    free(pt);
}

/* Salts never repeat: not within a thread's pool, and not between a parent and a child forked
 * while the parent's pool still holds unused salts (same KEK, fixed nonce: a repeat would be
 * fatal for GCM). */
static void
test_salts_unique_across_fork(void **state)
{
    struct fixture *f = *state;
    enum { N = 300 };
    static uint8_t salts[N + 1][ENVELOPE_SALT_BYTES];
    uint8_t blob[ENVELOPE_HEADER_BYTES + ENVELOPE_MAX_OVERHEAD + 1];
    size_t blen;
    int fds[2];

    for (size_t i = 0; i < N; i++) {
        assert_int_equal(envelope_seal(blob, sizeof blob, &blen, ENVELOPE_AES256GCM, f->kek, ctx1,
                                       CTX_LEN, (const uint8_t *)"x", 1),
                         ST_OK);
        memcpy(salts[i], blob + ENVELOPE_HEADER_BYTES, ENVELOPE_SALT_BYTES);
    }
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        int ok =
            envelope_seal(blob, sizeof blob, &blen, ENVELOPE_AES256GCM, f->kek, ctx1, CTX_LEN,
                          (const uint8_t *)"x", 1) == ST_OK &&
            write(fds[1], blob + ENVELOPE_HEADER_BYTES, ENVELOPE_SALT_BYTES) == ENVELOPE_SALT_BYTES;
        _exit(ok ? 0 : 1);
    }
    close(fds[1]);
    assert_int_equal(read(fds[0], salts[N], ENVELOPE_SALT_BYTES), ENVELOPE_SALT_BYTES);
    close(fds[0]);
    int wst = 0;
    assert_int_equal(waitpid(pid, &wst, 0), pid);
    assert_true(WIFEXITED(wst) && WEXITSTATUS(wst) == 0);
    /* the parent's next salt, drawn after the fork, must differ from the child's too */
    uint8_t next[ENVELOPE_SALT_BYTES];
    assert_int_equal(envelope_seal(blob, sizeof blob, &blen, ENVELOPE_AES256GCM, f->kek, ctx1,
                                   CTX_LEN, (const uint8_t *)"x", 1),
                     ST_OK);
    memcpy(next, blob + ENVELOPE_HEADER_BYTES, sizeof next);
    assert_memory_not_equal(next, salts[N], sizeof next);
    for (size_t i = 0; i <= N; i++)
        for (size_t j = i + 1; j <= N; j++)
            assert_memory_not_equal(salts[i], salts[j], ENVELOPE_SALT_BYTES);
}

/* Frozen ciphertexts: the format is permanent, so these must open forever (and the
 * deterministic one must be reproduced byte for byte). KEK = 00 01 .. 1f, version 7, context
 * ctx1. The GCM one was also opened, and the SIV one computed, by an independent
 * implementation (Python: hmac + cryptography's AESGCM/AESSIV) from DESIGN.md's layout. */
static const char golden_pt[] = "sk-dify-provider-key";
static const char golden_siv[] = "dg:v7:AwAAAAd-R0HnQxRnM3CfbOuFK2l41K1OgLbvJK2SUNRywzEOW9YgDfo";
static const char golden_gcm[] =
    "dg:v7:AQAAAAcV_pja0EjQ6qf8AoFf-fAd8S2NARZosQ81PjpokClW4mG9quJlouSL1nn0XJiu"
    "Pp1kzAo40e924cLAXosGOznifqvFTQ";
static const char golden_xchacha[] =
    "dg:v7:AgAAAAdtya9jQ7sY4i2yyiW2gYaifyJR7D9834iLDmliUAib0CT6XDC7wAiy2ce4dZiR"
    "_kGsJpsJ98J18VsfpLH_R73frwmqEg";

static void
open_text(const struct kek *kek, const char *text, const uint8_t *ctx, size_t ctx_len, uint8_t *out,
          size_t *out_len, enum status *st)
{
    uint8_t blob[256];
    struct envelope env;

    *st = envelope_parse_text(&env, blob, sizeof blob, text, strlen(text));
    if (*st == ST_OK)
        *st = envelope_open(out, 200, out_len, &env, kek, ctx, ctx_len);
}

static void
test_known_answers(void **state)
{
    struct fixture *f = *state;
    const char *texts[] = {golden_gcm, golden_xchacha, golden_siv};
    uint8_t blob[128], out[200];
    char text[256];
    size_t blob_len, out_len;
    enum status st;

    for (size_t i = 0; i < NFORMATS; i++) {
        assert_int_equal(envelope_seal(blob, sizeof blob, &blob_len, formats[i], f->kek, ctx1,
                                       CTX_LEN, (const uint8_t *)golden_pt, strlen(golden_pt)),
                         ST_OK);
        envelope_format_text(text, sizeof text, 7, blob, blob_len);
        open_text(f->kek, texts[i], ctx1, CTX_LEN, out, &out_len, &st);
        if (st != ST_OK)
            fail_msg("frozen ciphertext %zu does not open; a fresh one is %s", i, text);
        assert_int_equal(out_len, strlen(golden_pt));
        assert_memory_equal(out, golden_pt, out_len);
    }
    assert_string_equal(text, golden_siv); /* deterministic: reproduced exactly */
}

/* Every single bit flip of a sealed blob is refused with a zeroed output. */
static void
test_every_bit_flip_fails(void **state)
{
    struct fixture *f = *state;
    uint8_t pt[24], blob[24 + 53], out[sizeof blob]; /* a flipped format byte may grow it */
    size_t blob_len, out_len;
    struct envelope env;

    randombytes_buf(pt, sizeof pt);
    for (size_t i = 0; i < NFORMATS; i++) {
        assert_int_equal(envelope_seal(blob, sizeof blob, &blob_len, formats[i], f->kek, ctx1,
                                       CTX_LEN, pt, sizeof pt),
                         ST_OK);
        for (size_t bit = 0; bit < blob_len * 8; bit++) {
            blob[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            if (envelope_parse_blob(&env, blob, blob_len) == ST_OK) {
                memset(out, 0xAA, sizeof out);
                enum status st =
                    envelope_open(out, sizeof out, &out_len, &env, f->kek, ctx1, CTX_LEN);
                assert_int_equal(st, ST_AUTH);
                assert_int_equal(out_len, 0);
                assert_true(sodium_is_zero(out, envelope_plaintext_len(&env)));
            } else {
                assert_true(bit < 40); /* only a header flip can be malformed */
            }
            blob[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        }
        assert_int_equal(envelope_parse_blob(&env, blob, blob_len), ST_OK);
        assert_int_equal(envelope_open(out, sizeof out, &out_len, &env, f->kek, ctx1, CTX_LEN),
                         ST_OK);
        assert_memory_equal(out, pt, sizeof pt);
    }
}

static void
test_wrong_context_kek_version_and_truncation(void **state)
{
    struct fixture *f = *state;
    uint8_t pt[40], blob[40 + 53], out[sizeof pt];
    size_t blob_len, out_len;
    struct envelope env;

    randombytes_buf(pt, sizeof pt);
    for (size_t i = 0; i < NFORMATS; i++) {
        assert_int_equal(envelope_seal(blob, sizeof blob, &blob_len, formats[i], f->kek, ctx1,
                                       CTX_LEN, pt, sizeof pt),
                         ST_OK);
        assert_int_equal(envelope_parse_blob(&env, blob, blob_len), ST_OK);
        memset(out, 0xAA, sizeof out);
        assert_int_equal(envelope_open(out, sizeof out, &out_len, &env, f->kek, ctx2, CTX_LEN),
                         ST_AUTH);
        assert_true(sodium_is_zero(out, sizeof out));
        assert_int_equal(envelope_open(out, sizeof out, &out_len, &env, f->kek, ctx1, CTX_LEN - 1),
                         ST_AUTH);
        assert_int_equal(envelope_open(out, sizeof out, &out_len, &env, f->kek, NULL, 0), ST_AUTH);
        assert_int_equal(
            envelope_open(out, sizeof out, &out_len, &env, f->kek_other, ctx1, CTX_LEN), ST_AUTH);
        assert_int_equal(envelope_open(out, sizeof out, &out_len, &env, f->kek_v8, ctx1, CTX_LEN),
                         ST_AUTH);
        assert_true(sodium_is_zero(out, sizeof out));
        for (size_t len = 0; len < blob_len; len++) {
            if (envelope_parse_blob(&env, blob, len) != ST_OK) {
                assert_true(len < envelope_blob_len(formats[i], 0));
                assert_int_equal(envelope_plaintext_len(&env), 0);
                continue;
            }
            memset(out, 0xAA, sizeof out);
            assert_int_equal(envelope_open(out, sizeof out, &out_len, &env, f->kek, ctx1, CTX_LEN),
                             ST_AUTH);
            assert_true(sodium_is_zero(out, envelope_plaintext_len(&env)));
        }
    }
}

static void
test_determinism(void **state)
{
    struct fixture *f = *state;
    uint8_t a[64], b[64];
    size_t al, bl;
    const uint8_t *pt = (const uint8_t *)"same value";

    assert_int_equal(
        envelope_seal(a, sizeof a, &al, ENVELOPE_AES256SIV, f->kek, ctx1, CTX_LEN, pt, 10), ST_OK);
    assert_int_equal(
        envelope_seal(b, sizeof b, &bl, ENVELOPE_AES256SIV, f->kek, ctx1, CTX_LEN, pt, 10), ST_OK);
    assert_int_equal(al, bl);
    assert_memory_equal(a, b, al);
    assert_int_equal(
        envelope_seal(b, sizeof b, &bl, ENVELOPE_AES256SIV, f->kek, ctx2, CTX_LEN, pt, 10), ST_OK);
    assert_memory_not_equal(a, b, al); /* another context */
    assert_int_equal(
        envelope_seal(b, sizeof b, &bl, ENVELOPE_AES256SIV, f->kek_other, ctx1, CTX_LEN, pt, 10),
        ST_OK);
    assert_memory_not_equal(a, b, al); /* another KEK */
    assert_int_equal(envelope_seal(b, sizeof b, &bl, ENVELOPE_AES256SIV, f->kek, ctx1, CTX_LEN,
                                   (const uint8_t *)"same valuf", 10),
                     ST_OK);
    assert_memory_not_equal(a, b, al);
    assert_int_equal(
        envelope_seal(a, sizeof a, &al, ENVELOPE_AES256SIV, f->kek, ctx1, CTX_LEN, NULL, 0), ST_OK);
    assert_int_equal(
        envelope_seal(b, sizeof b, &bl, ENVELOPE_AES256SIV, f->kek, ctx1, CTX_LEN, NULL, 0), ST_OK);
    assert_memory_equal(a, b, al);   /* empty plaintext too */
    for (size_t i = 0; i < 2; i++) { /* random formats never repeat */
        assert_int_equal(envelope_seal(a, sizeof a, &al, formats[i], f->kek, ctx1, CTX_LEN, pt, 10),
                         ST_OK);
        assert_int_equal(envelope_seal(b, sizeof b, &bl, formats[i], f->kek, ctx1, CTX_LEN, pt, 10),
                         ST_OK);
        assert_memory_not_equal(a, b, al);
    }
}

static enum status
parse(const char *text, struct envelope *env)
{
    static uint8_t blob[512];

    return envelope_parse_text(env, blob, sizeof blob, text, strlen(text));
}

/* Text for a blob of format fmt, blob version bv, written with prefix version pv. */
static char *
make_text(uint8_t fmt, uint32_t bv, const char *pv, size_t body)
{
    uint8_t blob[128] = {fmt, (uint8_t)(bv >> 24), (uint8_t)(bv >> 16), (uint8_t)(bv >> 8),
                         (uint8_t)bv};
    static char text[512];

    int n = snprintf(text, sizeof text, "dg:v%s:", pv);
    b64_url_encode(text + n, sizeof text - (size_t)n, blob, 5 + body);
    return text;
}

static void
test_parse_text_strictness(void **state)
{
    struct envelope env;

    (void)state;
    assert_int_equal(parse(make_text(1, 7, "7", 48), &env), ST_OK);
    assert_int_equal(env.version, 7);
    assert_int_equal(parse(make_text(3, 4294967295u, "4294967295", 16), &env), ST_OK);
    assert_int_equal(env.version, 4294967295u);
    assert_int_equal(parse(make_text(2, 1, "1", 48), &env), ST_OK);
    static const char *const bad_versions[] = {
        "01", "0", "007", "+1", "-1", "", " 1", "1 ", "4294967296", "99999999999", "1a", "0x1",
    };
    for (size_t i = 0; i < sizeof bad_versions / sizeof bad_versions[0]; i++)
        if (parse(make_text(1, 1, bad_versions[i], 48), &env) != ST_MALFORMED_CT)
            fail_msg("version \"%s\" accepted", bad_versions[i]);
    assert_int_equal(parse(make_text(1, 0, "0", 48), &env), ST_MALFORMED_CT);
    assert_int_equal(parse(make_text(1, 7, "8", 48), &env), ST_MALFORMED_CT); /* mismatch */
    assert_int_equal(env.version, 0);
    assert_int_equal(parse(make_text(1, 8, "7", 48), &env), ST_MALFORMED_CT);
    assert_int_equal(parse(make_text(4, 7, "7", 48), &env), ST_MALFORMED_CT); /* format */
    assert_int_equal(parse(make_text(0, 7, "7", 48), &env), ST_MALFORMED_CT);
    assert_int_equal(parse(make_text(1, 7, "7", 47), &env), ST_MALFORMED_CT); /* short */
    assert_int_equal(parse(make_text(3, 7, "7", 15), &env), ST_MALFORMED_CT);
    assert_int_equal(parse(make_text(3, 7, "7", 16), &env), ST_OK);
    static const char *const bad_prefix[] = {
        "DG:v7:", "dg:V7:", "dg:7:", "dgv7:", " dg:v7:", "dg:v7", "dg:v7;", "dg", "",
    };
    for (size_t i = 0; i < sizeof bad_prefix / sizeof bad_prefix[0]; i++)
        assert_int_equal(parse(bad_prefix[i], &env), ST_MALFORMED_CT);
    /* Base64url must be canonical: no padding, no whitespace, no other alphabet, zero tail. */
    char t[512];
    strcpy(t, make_text(1, 7, "7", 48)); /* 53 bytes: 71 chars, last has 2 spare bits */
    size_t len = strlen(t);
    assert_int_equal(parse(t, &env), ST_OK);
    strcat(t, "=");
    assert_int_equal(parse(t, &env), ST_MALFORMED_CT);
    t[len] = '\n';
    assert_int_equal(parse(t, &env), ST_MALFORMED_CT);
    t[len] = '\0';
    t[len - 1] = 'B'; /* 'A' -> 'B': a non-zero unused bit */
    assert_int_equal(parse(t, &env), ST_MALFORMED_CT);
    t[len - 1] = '+';
    assert_int_equal(parse(t, &env), ST_MALFORMED_CT);
    t[len - 1] = '\0'; /* 70 chars decode to 52 bytes: too short */
    assert_int_equal(parse(t, &env), ST_MALFORMED_CT);
    assert_int_equal(envelope_parse_blob(&env, (const uint8_t *)"\x01\x00\x00", 3),
                     ST_MALFORMED_CT);
    assert_int_equal(envelope_plaintext_len(NULL), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_salts_unique_across_fork),
        cmocka_unit_test(test_known_answers),
        cmocka_unit_test(test_every_bit_flip_fails),
        cmocka_unit_test(test_wrong_context_kek_version_and_truncation),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_parse_text_strictness),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
