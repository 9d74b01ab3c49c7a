/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/common/text_test.c -- safe text from untrusted bytes: the copy is always valid
 * UTF-8 without control characters, never cuts a character, and says when it changed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/text.h"

/* Strict UTF-8 check written independently of text.c (RFC 3629 table 3-7). */
static bool
utf8_ok(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        if (*p < 0x20 || *p == 0x7f)
            return false;
        if (*p < 0x80) {
            p++;
        } else if (*p >= 0xc2 && *p <= 0xdf && (p[1] & 0xc0) == 0x80) {
            p += 2;
        } else if (*p >= 0xe0 && *p <= 0xef && (p[1] & 0xc0) == 0x80 && (p[2] & 0xc0) == 0x80 &&
                   !(*p == 0xe0 && p[1] < 0xa0) && !(*p == 0xed && p[1] >= 0xa0)) {
            p += 3;
        } else if (*p >= 0xf0 && *p <= 0xf4 && (p[1] & 0xc0) == 0x80 && (p[2] & 0xc0) == 0x80 &&
                   (p[3] & 0xc0) == 0x80 && !(*p == 0xf0 && p[1] < 0x90) &&
                   !(*p == 0xf4 && p[1] >= 0x90)) {
            p += 4;
        } else {
            return false;
        }
    }
    return true;
}

static void
test_cases(void **state)
{
    static const struct {
        const char *in;
        size_t cap;
        const char *out;
        bool same;
    } cases[] = {
        {"jwt:https://idp", 64, "jwt:https://idp", true},
        {"caf\xc3\xa9", 64, "caf\xc3\xa9", true},
        {"caf\xc3\xa9", 5, "caf", false}, /* never cut inside the character */
        {"G\xc3", 12, "G?", false},       /* a character cut in two */
        {"\xff\xfe", 12, "??", false},
        {"a\nb\tc\x7f", 12, "a?b?c?", false},
        {"\xed\xa0\x80x", 12, "???x", false},    /* a surrogate */
        {"\xc0\xaf", 12, "??", false},           /* an overlong '/' */
        {"\xf4\x90\x80\x80", 12, "????", false}, /* above U+10FFFF */
        {"\xf0\x9f\x94\x91k", 6, "\xf0\x9f\x94\x91k", true},
        {"\xf0\x9f\x94\x91k", 5, "\xf0\x9f\x94\x91", false},
        {"abc", 1, "", false},
        {"", 1, "", true},
    };
    char out[64];

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bool same = text_copy_safe(out, cases[i].cap, cases[i].in);
        assert_string_equal(out, cases[i].out);
        assert_int_equal(same, cases[i].same);
        assert_true(utf8_ok(out));
    }
}

/* Every one- and two-byte input, at every capacity: the copy is safe text and fits. */
static void
test_exhaustive_short(void **state)
{
    char in[3], out[8];

    (void)state;
    for (unsigned a = 1; a < 256; a++) {
        for (unsigned b = 0; b < 256; b++) {
            in[0] = (char)a, in[1] = (char)b, in[2] = '\0';
            for (size_t cap = 1; cap <= sizeof out; cap++) {
                (void)text_copy_safe(out, cap, in);
                assert_true(strlen(out) < cap);
                assert_true(utf8_ok(out));
            }
        }
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),
        cmocka_unit_test(test_exhaustive_short),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
