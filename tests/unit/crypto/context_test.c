/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/crypto/context_test.c -- the permanent canonical bytes of an encryption context,
 * its ordering, and strict validation (UTF-8, NUL, duplicates, pair count). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/context.h"
#include "testutil.h"

#define P(k, v)                                                                                    \
    {                                                                                              \
        k, sizeof(k) - 1, v, sizeof(v) - 1                                                         \
    }

static char *
canon_hex(struct context_pair *pairs, size_t n, enum status *st)
{
    uint8_t out[1024];
    size_t len = 77;

    assert_true(context_canon_len(pairs, n) <= sizeof out);
    *st = context_canonicalize(out, sizeof out, &len, pairs, n);
    if (*st != ST_OK) {
        assert_int_equal(len, 0);
        return NULL;
    }
    assert_int_equal(len, context_canon_len(pairs, n));
    return tu_hex(out, len);
}

static void
test_known_bytes(void **state)
{
    struct context_pair pairs[] = {P("b", "2"), P("a", "1")};
    enum status st;
    char *hex;

    (void)state;
    hex = canon_hex(pairs, 2, &st);
    assert_int_equal(st, ST_OK);
    assert_string_equal(hex, "00000002"
                             "00000001"
                             "61"
                             "00000001"
                             "31"
                             "00000001"
                             "62"
                             "00000001"
                             "32");
    free(hex);
    hex = canon_hex(NULL, 0, &st); /* absent context = {} */
    assert_string_equal(hex, "00000000");
    free(hex);
    struct context_pair e[] = {P("", "")}; /* empty key and value are strings too */
    hex = canon_hex(e, 1, &st);
    assert_string_equal(hex, "00000001"
                             "00000000"
                             "00000000");
    free(hex);
    struct context_pair u[] = {P("tenant", "caf\xc3\xa9")};
    hex = canon_hex(u, 1, &st);
    assert_string_equal(hex, "00000001"
                             "00000006"
                             "74656e616e74"
                             "00000005"
                             "636166c3a9");
    free(hex);
}

/* Bytewise order: a prefix sorts first, and bytes compare unsigned (UTF-8 after ASCII). */
static void
test_bytewise_order(void **state)
{
    struct context_pair pairs[] = {
        P("\xc3\xa9", "5"), P("b", "4"), P("aa", "3"), P("a", "2"), P("B", "1"), P("", "0"),
    };
    const char *want[] = {"", "B", "a", "aa", "b", "\xc3\xa9"};
    uint8_t out[256];
    size_t len;

    (void)state;
    assert_int_equal(context_canonicalize(out, sizeof out, &len, pairs, 6), ST_OK);
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(pairs[i].key_len, strlen(want[i]));
        assert_memory_equal(pairs[i].key, want[i], pairs[i].key_len);
    }
    /* Input order never matters. */
    struct context_pair rev[] = {
        P("", "0"), P("B", "1"), P("a", "2"), P("aa", "3"), P("b", "4"), P("\xc3\xa9", "5"),
    };
    uint8_t out2[256];
    size_t len2;
    assert_int_equal(context_canonicalize(out2, sizeof out2, &len2, rev, 6), ST_OK);
    assert_int_equal(len, len2);
    assert_memory_equal(out, out2, len);
}

static void
test_duplicates_rejected(void **state)
{
    struct context_pair pairs[] = {P("a", "1"), P("b", "2"), P("a", "1")};
    struct context_pair diff_val[] = {P("k", "1"), P("k", "2")};
    enum status st;

    (void)state;
    assert_null(canon_hex(pairs, 3, &st));
    assert_int_equal(st, ST_INVALID);
    assert_null(canon_hex(diff_val, 2, &st));
    assert_int_equal(st, ST_INVALID);
}

static void
test_nul_and_bad_utf8_rejected(void **state)
{
    static const struct {
        const char *s;
        size_t len;
    } bad[] = {
        {"a\0b", 3},
        {"\0", 1},
        {"\x80", 1},
        {"\xbf", 1}, /* lone continuation */
        {"\xc0\x80", 2},
        {"\xc1\xbf", 2}, /* overlong 2-byte (incl. NUL) */
        {"\xe0\x80\x80", 3},
        {"\xe0\x9f\xbf", 3}, /* overlong 3-byte */
        {"\xf0\x80\x80\x80", 4},
        {"\xf0\x8f\xbf\xbf", 4}, /* overlong 4-byte */
        {"\xed\xa0\x80", 3},
        {"\xed\xbf\xbf", 3}, /* surrogates */
        {"\xf4\x90\x80\x80", 4},
        {"\xf5\x80\x80\x80", 4}, /* above U+10FFFF */
        {"\xff", 1},
        {"\xfe", 1},
        {"\xc3", 1},
        {"\xe2\x82", 2},
        {"\xf0\x9f\x98", 3}, /* truncated */
        {"\xc3\x28", 2},
        {"\xe2\x28\xa1", 3},
        {"\xf0\x9f\x28\x80", 4},
    };
    static const char *const good[] = {
        "plain",        "caf\xc3\xa9",  "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf",
        "\xef\xbf\xbf", "\xed\x9f\xbf", "\xee\x80\x80", "\xc2\x80",         "\x7f",
    };
    uint8_t out[256];
    size_t len;

    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_false(context_utf8_valid(bad[i].s, bad[i].len));
        struct context_pair k = {bad[i].s, bad[i].len, "v", 1}, v = {"k", 1, bad[i].s, bad[i].len};
        assert_int_equal(context_canonicalize(out, sizeof out, &len, &k, 1), ST_INVALID);
        assert_int_equal(context_canonicalize(out, sizeof out, &len, &v, 1), ST_INVALID);
    }
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (!context_utf8_valid(good[i], strlen(good[i])))
            fail_msg("valid UTF-8 #%zu refused", i);
    assert_true(context_utf8_valid("", 0));
}

static void
test_pair_limit(void **state)
{
    struct context_pair pairs[CONTEXT_MAX_PAIRS + 1];
    char keys[CONTEXT_MAX_PAIRS + 1][4];
    uint8_t out[1024];
    size_t len;

    (void)state;
    for (size_t i = 0; i <= CONTEXT_MAX_PAIRS; i++) {
        snprintf(keys[i], sizeof keys[i], "k%02zu", i);
        pairs[i] = (struct context_pair){keys[i], 3, "v", 1};
    }
    assert_int_equal(context_canonicalize(out, sizeof out, &len, pairs, CONTEXT_MAX_PAIRS + 1),
                     ST_INVALID);
    assert_int_equal(len, 0);
    assert_int_equal(context_canonicalize(out, sizeof out, &len, pairs, CONTEXT_MAX_PAIRS), ST_OK);
    assert_int_equal(len, 4 + CONTEXT_MAX_PAIRS * (4 + 3 + 4 + 1));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_bytes),
        cmocka_unit_test(test_bytewise_order),
        cmocka_unit_test(test_duplicates_rejected),
        cmocka_unit_test(test_nul_and_bad_utf8_rejected),
        cmocka_unit_test(test_pair_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
