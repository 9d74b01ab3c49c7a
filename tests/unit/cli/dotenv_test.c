/* SPDX-License-Identifier: Apache-2.0 */
/* dotenv_test -- the dotenv parser (cli/dotenv.c): every fidelity case decodes to its value,
 * rendering is the identity, each quoting style reads back, errors name the right line,
 * duplicates point at the first definition, and the ciphertext shape. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cli/dotenv.h"

static struct dotenv
parse_ok(const char *text)
{
    struct dotenv d;
    size_t line;
    const char *why;
    assert_int_equal(dotenv_parse(&d, text, strlen(text), &line, &why), ST_OK);
    struct sbuf out = {0};
    dotenv_render(&out, &d, NULL);
    assert_int_equal(out.len, strlen(text));
    assert_memory_equal(out.p, text, out.len);
    sbuf_free(&out);
    return d;
}

static void
test_values(void **state)
{
    (void)state;
    static const struct {
        const char *text, *name, *value;
        enum dotenv_quote q;
    } cases[] = {
        {"A=1\n", "A", "1", DOTENV_BARE},
        {"  export  A = spaced value \t # c\n", "A", "spaced value", DOTENV_BARE},
        {"A=pass#word\n", "A", "pass#word", DOTENV_BARE},
        {"A=#start\n", "A", "#start", DOTENV_BARE},
        {"A= #comment\n", "A", "", DOTENV_BARE},
        {"A=a=b==c", "A", "a=b==c", DOTENV_BARE},
        {"A=C:\\x\\n", "A", "C:\\x\\n", DOTENV_BARE},
        {"A='lit $X \\n # no'\n", "A", "lit $X \\n # no", DOTENV_SINGLE},
        {"A=\"t\\tq\\\"b\\\\d\\$e\\'u\\z\" # c\n", "A", "t\tq\"b\\d$e'u\\z", DOTENV_DOUBLE},
        {"A=\"l1\r\nl2\nl3\"\r\n", "A", "l1\nl2\nl3", DOTENV_DOUBLE},
        {"A='l1\r\nl2'", "A", "l1\nl2", DOTENV_SINGLE},
        {"\xEF\xBB\xBF"
         "A=bom\r\n",
         "A", "bom", DOTENV_BARE},
        {"A=\"\"\n", "A", "", DOTENV_DOUBLE},
        {"A=x y\r\n", "A", "x y", DOTENV_BARE},
        {"export=1\n", "export", "1", DOTENV_BARE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct dotenv d = parse_ok(cases[i].text);
        assert_int_equal(d.n, 1);
        assert_string_equal(d.v[0].name, cases[i].name);
        assert_int_equal(d.v[0].value_len, strlen(cases[i].value));
        assert_memory_equal(d.v[0].value, cases[i].value, d.v[0].value_len);
        assert_int_equal(d.v[0].quote, cases[i].q);
        dotenv_free(&d);
    }
}

static void
test_errors(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        size_t line;
    } cases[] = {
        {"A=1\nB='open\n\n", 2},
        {"A=1\n\nnot valid\n", 3},
        {"A=\"x\" y\n", 1},
        {"A=1\rB=2\n", 1},
        {"A\n", 1},
        {"1A=2\n", 1},
        {"A=\"x\\\"\n", 1},
        {"# ok\nA=a\0b\n", 2},
        {"A=1\n# c\r\n#\rx\n", 3},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct dotenv d;
        size_t line;
        const char *why;
        size_t len = strlen(cases[i].text);
        if (i == 7)
            len = 12; /* holds a NUL */
        assert_int_equal(dotenv_parse(&d, cases[i].text, len, &line, &why), ST_INVALID);
        assert_non_null(why);
        assert_int_equal(line, cases[i].line);
        assert_int_equal(d.n, 0);
    }
}

static void
test_duplicates(void **state)
{
    (void)state;
    struct dotenv d = parse_ok("A=1\nB=2\n# c\nA=3\nA=4\n");
    assert_int_equal(d.n, 4);
    assert_int_equal(d.n_dups, 2);
    assert_int_equal(d.v[0].dup_line, 0);
    assert_int_equal(d.v[2].dup_line, 1);
    assert_int_equal(d.v[3].dup_line, 1);
    dotenv_free(&d);
}

static void
roundtrip(const char *v, enum dotenv_quote pref, enum dotenv_quote want)
{
    struct sbuf s = {0};
    sbuf_adds(&s, "X=");
    assert_int_equal(dotenv_quote(&s, v, strlen(v), pref), want);
    sbuf_adds(&s, "\n");
    struct dotenv d = parse_ok(s.p);
    assert_int_equal(d.n, 1);
    assert_string_equal(d.v[0].value, v);
    dotenv_free(&d);
    sbuf_free(&s);
}

static void
test_quote(void **state)
{
    (void)state;
    roundtrip("plain", DOTENV_BARE, DOTENV_BARE);
    roundtrip("", DOTENV_BARE, DOTENV_BARE);
    roundtrip(" lead", DOTENV_BARE, DOTENV_DOUBLE);
    roundtrip("a #b", DOTENV_BARE, DOTENV_DOUBLE);
    roundtrip("#a", DOTENV_BARE, DOTENV_DOUBLE);
    roundtrip("l1\nl2", DOTENV_BARE, DOTENV_DOUBLE);
    roundtrip("it's", DOTENV_SINGLE, DOTENV_DOUBLE);
    roundtrip("l1\nl2 $x \\", DOTENV_SINGLE, DOTENV_SINGLE);
    roundtrip("q\"b\\s$d\r\n\t", DOTENV_DOUBLE, DOTENV_DOUBLE);
}

static void
test_replace(void **state)
{
    (void)state;
    struct dotenv d = parse_ok("# h\r\nexport A='x' # c\r\nB=y\r\n");
    struct sbuf repl[2] = {{0}, {0}}, out = {0};
    dotenv_quote(&repl[0], "dg:v1:AbC", 9, d.v[0].quote);
    dotenv_render(&out, &d, repl);
    sbuf_add(&out, "", 0);
    assert_string_equal(out.p, "# h\r\nexport A='dg:v1:AbC' # c\r\nB=y\r\n");
    sbuf_free(&out);
    sbuf_free(&repl[0]);
    dotenv_free(&d);
}

static void
test_ciphertext_shape(void **state)
{
    (void)state;
    uint32_t v;
    assert_true(dotenv_ciphertext("dg:v1:AQ", 8, &v) && v == 1);
    assert_true(dotenv_ciphertext("dg:v4294967295:a-_", 18, &v) && v == 4294967295u);
    assert_false(dotenv_ciphertext("dg:v4294967296:a", 16, &v));
    assert_false(dotenv_ciphertext("dg:v01:AQ", 9, &v));
    assert_false(dotenv_ciphertext("dg:v1:", 6, &v));
    assert_false(dotenv_ciphertext("dg:v1:A=", 8, &v));
    assert_false(dotenv_ciphertext("dg:vx:AQ", 8, &v));
    assert_false(dotenv_ciphertext("xg:v1:AQ", 8, &v));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values),     cmocka_unit_test(test_errors),
        cmocka_unit_test(test_duplicates), cmocka_unit_test(test_quote),
        cmocka_unit_test(test_replace),    cmocka_unit_test(test_ciphertext_shape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
