/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/common/log_test.c -- every line log_msg writes is one valid JSON object, whatever
 * bytes it is given, and lines from many threads never interleave. */
#include <errno.h>
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
#include <jansson.h>

#include "common/log.h"

#define LOG_LINE_MAX 8192

static FILE *cap_file;
static int cap_saved_fd = -1;

/* Send fd 1 to a temp file until capture_end(). */
static void
capture_begin(void)
{
    fflush(stdout);
    cap_file = tmpfile();
    assert_non_null(cap_file);
    cap_saved_fd = dup(STDOUT_FILENO);
    assert_true(cap_saved_fd >= 0);
    assert_true(dup2(fileno(cap_file), STDOUT_FILENO) >= 0);
}

/* Restore stdout; return everything written meanwhile (caller frees). */
static char *
capture_end(size_t *len_out)
{
    long len;
    char *buf;

    assert_true(dup2(cap_saved_fd, STDOUT_FILENO) >= 0);
    close(cap_saved_fd);
    cap_saved_fd = -1;
    assert_int_equal(fseek(cap_file, 0, SEEK_END), 0);
    len = ftell(cap_file);
    assert_true(len >= 0);
    rewind(cap_file);
    buf = malloc((size_t)len + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)len, cap_file), (size_t)len);
    buf[len] = '\0';
    fclose(cap_file);
    cap_file = NULL;
    if (len_out)
        *len_out = (size_t)len;
    return buf;
}

/* Parse one captured line: exactly one object and exactly one trailing newline. */
static json_t *
parse_line(const char *buf, size_t len)
{
    json_error_t je;
    json_t *o;

    assert_true(len > 0);
    assert_int_equal(buf[len - 1], '\n');
    assert_ptr_equal(memchr(buf, '\n', len), buf + len - 1);
    o = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
    if (o == NULL)
        fail_msg("not JSON (%s): %.200s", je.text, buf);
    assert_true(json_is_object(o));
    return o;
}

static const char *
get_str(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    if (!json_is_string(v))
        fail_msg("%s is not a string", key);
    return json_string_value(v);
}

static int
setup(void **state)
{
    (void)state;
    log_set_level(LOG_INFO);
    return 0;
}

static void
test_basic_line(void **state)
{
    size_t len;
    char *out;
    json_t *o;

    (void)state;
    capture_begin();
    log_msg(LOG_INFO, "listening", "addr", "127.0.0.1:8080", "tls", "off", NULL);
    out = capture_end(&len);
    o = parse_line(out, len);
    assert_int_equal(strncmp(out, "{\"ts\":\"", 7), 0); /* ts first, as documented */

    const char *ts = get_str(o, "ts"); /* 2026-11-28T20:21:00.123Z */
    assert_int_equal(strlen(ts), 24);
    assert_int_equal(ts[4], '-');
    assert_int_equal(ts[10], 'T');
    assert_int_equal(ts[19], '.');
    assert_int_equal(ts[23], 'Z');
    assert_string_equal(get_str(o, "level"), "info");
    assert_string_equal(get_str(o, "msg"), "listening");
    assert_string_equal(get_str(o, "addr"), "127.0.0.1:8080");
    assert_string_equal(get_str(o, "tls"), "off");
    assert_int_equal(json_object_size(o), 5);
    json_decref(o);
    free(out);
}

static void
test_escaping(void **state)
{
    static const char nasty[] = "say \"hi\"\\ there\nnew\r\ttab\x01\x1f\x7f end";
    size_t len;
    char *out;
    json_t *o;

    (void)state;
    capture_begin();
    log_msg(LOG_WARN, "evil\"msg\n", "k\"ey", nasty, "utf8",
            "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", NULL);
    out = capture_end(&len);
    o = parse_line(out, len);
    assert_string_equal(get_str(o, "msg"), "evil\"msg\n");
    assert_string_equal(get_str(o, "k\"ey"), nasty);
    assert_string_equal(get_str(o, "utf8"), "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
    assert_string_equal(get_str(o, "level"), "warn");
    assert_non_null(strstr(out, "\\u0001\\u001f\\u007f"));
    json_decref(o);
    free(out);
}

static void
test_invalid_utf8(void **state)
{
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"a\xff"
         "b",
         "a\xef\xbf\xbd"
         "b"},
        {"\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd"},                 /* overlong '/' */
        {"\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* surrogate U+D800 */
        {"\xf4\x90\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* > U+10FFFF */
        {"x\xe2\x82", "x\xef\xbf\xbd\xef\xbf\xbd"}, /* cut at the end */
        {"\xe2\x82"
         "A",
         "\xef\xbf\xbd\xef\xbf\xbd"
         "A"},                                    /* cut mid-string */
        {"\x80", "\xef\xbf\xbd"},                 /* lone continuation */
        {"\xf0\x90\x80\x80", "\xf0\x90\x80\x80"}, /* U+10000 is fine */
    };

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len;
        char *out;
        json_t *o;

        capture_begin();
        log_msg(LOG_ERROR, "bad_bytes", "v", cases[i].in, NULL);
        out = capture_end(&len);
        o = parse_line(out, len);
        if (strcmp(get_str(o, "v"), cases[i].want) != 0)
            fail_msg("case %zu: %s", i, out);
        json_decref(o);
        free(out);
    }
}

static void
test_numeric_keys(void **state)
{
    size_t len;
    char *out;
    json_t *o;

    (void)state;
    capture_begin();
    log_msg(LOG_INFO, "request", "#status", "404", "#ratio", "0.25", "#big", "-1.5e+10", "#zero",
            "0", "#lead", "012", "#junk", "12abc", "#empty", "", "#inj", "1,\"x\":2", "path", "/v1",
            "none", NULL, "blank", "", NULL);
    out = capture_end(&len);
    o = parse_line(out, len);
    assert_true(json_is_integer(json_object_get(o, "status")));
    assert_int_equal(json_integer_value(json_object_get(o, "status")), 404);
    assert_null(json_object_get(o, "#status"));
    assert_true(json_is_real(json_object_get(o, "ratio")));
    assert_true(json_is_real(json_object_get(o, "big")));
    assert_int_equal(json_integer_value(json_object_get(o, "zero")), 0);
    assert_string_equal(get_str(o, "lead"), "012"); /* not JSON numbers: strings */
    assert_string_equal(get_str(o, "junk"), "12abc");
    assert_null(json_object_get(o, "empty")); /* empty values are left out (issue 14) */
    assert_string_equal(get_str(o, "inj"), "1,\"x\":2");
    assert_null(json_object_get(o, "x"));
    assert_string_equal(get_str(o, "path"), "/v1");
    assert_true(json_is_null(json_object_get(o, "none")));
    assert_null(json_object_get(o, "blank"));
    assert_non_null(strstr(out, "\"status\":404,"));
    json_decref(o);
    free(out);
}

static void
test_level_filter(void **state)
{
    size_t len;
    char *out;

    (void)state;
    log_set_level(LOG_WARN);
    capture_begin();
    log_msg(LOG_DEBUG, "hidden", NULL);
    log_msg(LOG_INFO, "hidden", NULL);
    log_msg(LOG_WARN, "shown_warn", NULL);
    log_msg(LOG_ERROR, "shown_error", NULL);
    log_msg((enum log_level)42, "bogus_level", NULL);
    out = capture_end(&len);
    assert_null(strstr(out, "hidden"));
    assert_null(strstr(out, "bogus_level"));
    assert_non_null(strstr(out, "\"level\":\"warn\",\"msg\":\"shown_warn\"}\n"));
    assert_non_null(strstr(out, "\"level\":\"error\",\"msg\":\"shown_error\"}\n"));
    free(out);

    log_set_level(LOG_DEBUG);
    capture_begin();
    log_msg(LOG_DEBUG, "now_shown", NULL);
    out = capture_end(&len);
    assert_non_null(strstr(out, "\"level\":\"debug\""));
    free(out);
}

static void
test_level_parse(void **state)
{
    (void)state;
    assert_int_equal(log_level_parse("debug"), LOG_DEBUG);
    assert_int_equal(log_level_parse("info"), LOG_INFO);
    assert_int_equal(log_level_parse("INFO"), LOG_INFO);
    assert_int_equal(log_level_parse("warn"), LOG_WARN);
    assert_int_equal(log_level_parse("warning"), LOG_WARN);
    assert_int_equal(log_level_parse("error"), LOG_ERROR);
    assert_int_equal(log_level_parse("fatal"), -1);
    assert_int_equal(log_level_parse(""), -1);
    assert_int_equal(log_level_parse(NULL), -1);
}

/* A value that does not fit is cut at a character boundary; the line stays valid and says so. */
static void
test_truncation(void **state)
{
    static const char *const units[] = {"a", "\xe2\x82\xac", "\"", "\x01", "\xff"};

    (void)state;
    for (size_t u = 0; u < sizeof units / sizeof units[0]; u++) {
        size_t ulen = strlen(units[u]), n = 20000 / ulen, len;
        char *big = malloc(n * ulen + 1), *out;
        json_t *o;

        for (size_t i = 0; i < n; i++)
            memcpy(big + i * ulen, units[u], ulen);
        big[n * ulen] = '\0';
        capture_begin();
        log_msg(LOG_INFO, "big", "v", big, "after", "dropped", NULL);
        out = capture_end(&len);
        assert_true(len <= LOG_LINE_MAX);
        assert_true(len > LOG_LINE_MAX - 64);
        o = parse_line(out, len);
        assert_true(json_is_true(json_object_get(o, "truncated")));
        assert_null(json_object_get(o, "after"));
        assert_true(strlen(get_str(o, "v")) > 1000);
        json_decref(o);
        free(out);
        free(big);
    }
}

#define F10(p)                                                                                     \
    p "0", "vvvvvvvvvv", p "1", "vvvvvvvvvv", p "2", "vvvvvvvvvv", p "3", "vvvvvvvvvv", p "4",     \
        "vvvvvvvvvv", p "5", "vvvvvvvvvv", p "6", "vvvvvvvvvv", p "7", "vvvvvvvvvv", p "8",        \
        "vvvvvvvvvv", p "9", "vvvvvvvvvv"
#define F100(p)                                                                                    \
    F10(p "0"), F10(p "1"), F10(p "2"), F10(p "3"), F10(p "4"), F10(p "5"), F10(p "6"),            \
        F10(p "7"), F10(p "8"), F10(p "9")

/* 500 fields of ~22 bytes overflow 8 KiB: the line stops at the first field that does not fit
 * (its value cut short, or the field dropped) and the rest are skipped. */
static void
test_many_fields_truncated(void **state)
{
    const char *k;
    json_t *o, *v;
    size_t len, partial = 0;
    char *out;

    (void)state;
    capture_begin();
    log_msg(LOG_INFO, "wide", F100("key_a"), F100("key_b"), F100("key_c"), F100("key_d"),
            F100("key_e"), NULL);
    out = capture_end(&len);
    o = parse_line(out, len);
    assert_true(len <= LOG_LINE_MAX);
    assert_true(json_is_true(json_object_get(o, "truncated")));
    assert_string_equal(get_str(o, "key_a00"), "vvvvvvvvvv");
    assert_null(json_object_get(o, "key_e99"));
    json_object_del(o, "truncated");
    json_object_foreach (o, k, v) {
        const char *sv = json_string_value(v);
        if (strncmp(k, "key_", 4) != 0 || strcmp(sv, "vvvvvvvvvv") == 0)
            continue;
        assert_int_equal(strspn(sv, "v"), strlen(sv)); /* a prefix, at most once */
        partial++;
    }
    assert_true(partial <= 1);
    json_decref(o);
    free(out);
}

#undef F100
#undef F10

static void
test_errno_kept(void **state)
{
    size_t len;
    char *out;

    (void)state;
    capture_begin();
    errno = ENOSPC;
    log_msg(LOG_ERROR, "disk_full", NULL);
    assert_int_equal(errno, ENOSPC);
    out = capture_end(&len);
    free(out);
}

static void
test_set_fd(void **state)
{
    int fds[2];
    char buf[512];
    size_t len;
    char *out;

    (void)state;
    assert_int_equal(pipe(fds), 0);
    capture_begin();
    log_set_fd(fds[1]);
    log_msg(LOG_INFO, "to_pipe", NULL);
    log_set_fd(STDOUT_FILENO);
    log_msg(LOG_INFO, "to_stdout", NULL);
    out = capture_end(&len);
    ssize_t n = read(fds[0], buf, sizeof buf - 1);
    assert_true(n > 0);
    buf[n] = '\0';
    json_decref(parse_line(buf, (size_t)n));
    assert_non_null(strstr(buf, "\"msg\":\"to_pipe\""));
    assert_null(strstr(out, "to_pipe"));
    assert_non_null(strstr(out, "\"msg\":\"to_stdout\""));
    free(out);
    close(fds[0]);
    close(fds[1]);
}

#define N_THREADS 8
#define N_LINES 100

static void *
thread_main(void *arg)
{
    char id[8], big[5000]; /* longer than PIPE_BUF */

    snprintf(id, sizeof id, "%d", (int)(intptr_t)arg);
    memset(big, 'a' + (int)(intptr_t)arg, sizeof big - 1);
    big[sizeof big - 1] = '\0';
    for (int i = 0; i < N_LINES; i++)
        log_msg(LOG_INFO, "tick", "#thread", id, "pad", big, NULL);
    return NULL;
}

static void
test_threads_do_not_interleave(void **state)
{
    pthread_t t[N_THREADS];
    size_t len, lines = 0;
    char *out, *p;

    (void)state;
    capture_begin();
    for (int i = 0; i < N_THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, thread_main, (void *)(intptr_t)i), 0);
    for (int i = 0; i < N_THREADS; i++)
        pthread_join(t[i], NULL);
    out = capture_end(&len);
    for (p = out; p < out + len;) {
        char *nl = memchr(p, '\n', (size_t)(out + len - p));
        assert_non_null(nl);
        json_t *o = parse_line(p, (size_t)(nl - p) + 1);
        json_int_t id = json_integer_value(json_object_get(o, "thread"));
        const char *pad = get_str(o, "pad");
        assert_int_equal(strlen(pad), 4999);
        assert_int_equal(pad[0], 'a' + id);
        assert_int_equal(pad[4998], 'a' + id);
        json_decref(o);
        lines++;
        p = nl + 1;
    }
    assert_int_equal(lines, N_THREADS * N_LINES);
    free(out);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_basic_line, setup),
        cmocka_unit_test_setup(test_escaping, setup),
        cmocka_unit_test_setup(test_invalid_utf8, setup),
        cmocka_unit_test_setup(test_numeric_keys, setup),
        cmocka_unit_test_setup(test_level_filter, setup),
        cmocka_unit_test_setup(test_level_parse, setup),
        cmocka_unit_test_setup(test_truncation, setup),
        cmocka_unit_test_setup(test_many_fields_truncated, setup),
        cmocka_unit_test_setup(test_errno_kept, setup),
        cmocka_unit_test_setup(test_set_fd, setup),
        cmocka_unit_test_setup(test_threads_do_not_interleave, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
