/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/common/config_test.c -- the option engine: precedence, every error path, secrets
 * kept out of argv and error messages, durations and sizes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/json/config.h"

struct settings {
    char *listen;
    char *config;
    char *token; /* secret string */
    bool json;
    uint64_t workers;
    uint64_t max_body;
    int64_t timeout;
    uint64_t pin; /* secret number: its value must never show in an error */
};

static const struct opt table[] = {
    {"listen", OPT_STRING, offsetof(struct settings, listen), "127.0.0.1:8080",
     "address to listen on", false, false},
    {"config", OPT_STRING, offsetof(struct settings, config), NULL, "JSON config file", false,
     false},
    {"token", OPT_STRING, offsetof(struct settings, token), NULL, "admin API key", true, false},
    {"json", OPT_BOOL, offsetof(struct settings, json), "false", "print JSON", false, false},
    {"workers", OPT_UINT, offsetof(struct settings, workers), "4", "worker threads", false, false},
    {"max-body-bytes", OPT_SIZE, offsetof(struct settings, max_body), "4MiB", "largest body", false,
     false},
    {"timeout", OPT_DURATION, offsetof(struct settings, timeout), "30s", "request timeout", false,
     false},
    {"pin", OPT_UINT, offsetof(struct settings, pin), NULL, "a secret number", true, false},
};
#define N_OPTS (sizeof table / sizeof table[0])

static const char *const env_names[] = {
    "DIFYGUARD_LISTEN",  "DIFYGUARD_CONFIG",         "DIFYGUARD_TOKEN",   "DIFYGUARD_JSON",
    "DIFYGUARD_WORKERS", "DIFYGUARD_MAX_BODY_BYTES", "DIFYGUARD_TIMEOUT", "DIFYGUARD_PIN",
};

static char tmp_paths[4][64];
static int n_tmp;

static int
setup(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof env_names / sizeof env_names[0]; i++)
        unsetenv(env_names[i]);
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    for (int i = 0; i < n_tmp; i++)
        unlink(tmp_paths[i]);
    n_tmp = 0;
    return setup(state);
}

/* A config file holding `json`; removed by teardown. */
static const char *
tmp_file(const char *json)
{
    assert_true(n_tmp < 4);
    char *path = tmp_paths[n_tmp++];
    snprintf(path, sizeof tmp_paths[0], "/tmp/dg_config_test_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, json, strlen(json)), (ssize_t)strlen(json));
    close(fd);
    return path;
}

/* Parse "serve" followed by the NULL-terminated argument list. */
static enum status
parse_args(struct settings *s, const char ***pos, char *err, size_t err_len, ...)
{
    char *argv[32] = {"serve"};
    int argc = 1;
    va_list ap;
    const char *a;

    memset(s, 0, sizeof *s);
    va_start(ap, err_len);
    while ((a = va_arg(ap, const char *)) != NULL && argc < 31)
        argv[argc++] = (char *)a;
    va_end(ap);
    argv[argc] = NULL;
    return config_parse(s, table, N_OPTS, argc, argv, pos, err, err_len);
}

#define PARSE(s, err, ...) parse_args((s), NULL, (err), sizeof(err), __VA_ARGS__, NULL)

/* The value of option `name` as text, for table-driven comparisons. */
static void
value_text(char *out, size_t out_len, const struct settings *s, const char *name)
{
    if (strcmp(name, "listen") == 0)
        snprintf(out, out_len, "%s", s->listen ? s->listen : "(null)");
    else if (strcmp(name, "json") == 0)
        snprintf(out, out_len, "%s", s->json ? "true" : "false");
    else if (strcmp(name, "workers") == 0)
        snprintf(out, out_len, "%llu", (unsigned long long)s->workers);
    else if (strcmp(name, "max-body-bytes") == 0)
        snprintf(out, out_len, "%llu", (unsigned long long)s->max_body);
    else if (strcmp(name, "timeout") == 0)
        snprintf(out, out_len, "%lld", (long long)s->timeout);
    else
        fail_msg("no such option %s", name);
}

static void
test_defaults(void **state)
{
    struct settings s;
    char err[256];

    (void)state;
    assert_int_equal(parse_args(&s, NULL, err, sizeof err, NULL), ST_OK);
    assert_string_equal(s.listen, "127.0.0.1:8080");
    assert_null(s.config);
    assert_null(s.token);
    assert_false(s.json);
    assert_int_equal(s.workers, 4);
    assert_int_equal(s.max_body, 4u << 20);
    assert_int_equal(s.timeout, 30);
    config_free(&s, table, N_OPTS);
    assert_null(s.listen);
    config_free(&s, table, N_OPTS); /* idempotent */
}

/* Each layer differs from the one below, so each step shows which layer won. */
static const struct {
    const char *name, *env_var;
    const char *file_json, *env, *flag; /* flag NULL: bare boolean flag */
    const char *want_def, *want_file, *want_env, *want_flag;
} prec_cases[] = {
    {"listen", "DIFYGUARD_LISTEN", "\"f:1\"", "e:2", "x:3", "127.0.0.1:8080", "f:1", "e:2", "x:3"},
    {"json", "DIFYGUARD_JSON", "true", "false", NULL, "false", "true", "false", "true"},
    {"workers", "DIFYGUARD_WORKERS", "8", "16", "32", "4", "8", "16", "32"},
    {"max-body-bytes", "DIFYGUARD_MAX_BODY_BYTES", "\"1k\"", "2048", "1m", "4194304", "1024",
     "2048", "1048576"},
    {"timeout", "DIFYGUARD_TIMEOUT", "\"12h\"", "90d", "45", "30", "43200", "7776000", "45"},
};

static void
test_precedence_each_type(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof prec_cases / sizeof prec_cases[0]; i++) {
        char json[128], flag[64], got[64], err[256];
        struct settings s;

        snprintf(json, sizeof json, "{\"%s\": %s}", prec_cases[i].name, prec_cases[i].file_json);
        const char *path = tmp_file(json);
        if (prec_cases[i].flag)
            snprintf(flag, sizeof flag, "--%s=%s", prec_cases[i].name, prec_cases[i].flag);
        else
            snprintf(flag, sizeof flag, "--%s", prec_cases[i].name);
        setenv(prec_cases[i].env_var, prec_cases[i].env, 1);

        assert_int_equal(PARSE(&s, err, "--config", path, flag), ST_OK);
        value_text(got, sizeof got, &s, prec_cases[i].name);
        assert_string_equal(got, prec_cases[i].want_flag);
        config_free(&s, table, N_OPTS);

        assert_int_equal(PARSE(&s, err, "--config", path), ST_OK);
        value_text(got, sizeof got, &s, prec_cases[i].name);
        assert_string_equal(got, prec_cases[i].want_env);
        config_free(&s, table, N_OPTS);

        unsetenv(prec_cases[i].env_var);
        assert_int_equal(PARSE(&s, err, "--config", path), ST_OK);
        value_text(got, sizeof got, &s, prec_cases[i].name);
        assert_string_equal(got, prec_cases[i].want_file);
        assert_string_equal(s.config, path);
        config_free(&s, table, N_OPTS);

        assert_int_equal(parse_args(&s, NULL, err, sizeof err, NULL), ST_OK);
        value_text(got, sizeof got, &s, prec_cases[i].name);
        assert_string_equal(got, prec_cases[i].want_def);
        config_free(&s, table, N_OPTS);
        teardown(NULL);
    }
}

static void
test_config_path_flag_beats_env(void **state)
{
    struct settings s;
    char err[256];
    const char *a = tmp_file("{\"listen\": \"from-a\"}");
    const char *b = tmp_file("{\"listen\": \"from-b\", \"max_body_bytes\": \"64k\"}");

    (void)state;
    setenv("DIFYGUARD_CONFIG", a, 1);
    assert_int_equal(parse_args(&s, NULL, err, sizeof err, NULL), ST_OK);
    assert_string_equal(s.listen, "from-a");
    config_free(&s, table, N_OPTS);

    assert_int_equal(PARSE(&s, err, "--config", b), ST_OK);
    assert_string_equal(s.listen, "from-b");
    assert_int_equal(s.max_body, 65536); /* '_' spelling of the key */
    config_free(&s, table, N_OPTS);

    setenv("DIFYGUARD_CONFIG", "", 1); /* empty counts as unset */
    assert_int_equal(parse_args(&s, NULL, err, sizeof err, NULL), ST_OK);
    assert_string_equal(s.listen, "127.0.0.1:8080");
    config_free(&s, table, N_OPTS);
}

static void
test_flag_forms(void **state)
{
    struct settings s;
    char err[256];

    (void)state;
    assert_int_equal(PARSE(&s, err, "--listen", "a:1", "--workers=7", "--timeout", "5m"), ST_OK);
    assert_string_equal(s.listen, "a:1");
    assert_int_equal(s.workers, 7);
    assert_int_equal(s.timeout, 300);
    config_free(&s, table, N_OPTS);

    /* Repeated flags: the last one wins and the first string is freed (ASan builds check). */
    assert_int_equal(PARSE(&s, err, "--listen", "a:1", "--listen=b:2", "--listen="), ST_OK);
    assert_string_equal(s.listen, "");
    config_free(&s, table, N_OPTS);

    assert_int_equal(PARSE(&s, err, "--listen", "-"), ST_OK); /* "-" is a value */
    assert_string_equal(s.listen, "-");
    config_free(&s, table, N_OPTS);
}

static void
test_flag_errors(void **state)
{
    static const struct {
        const char *args[3];
        const char *want;
    } cases[] = {
        {{"--nope"}, "unknown option --nope"},
        {{"--nope=hunter2"}, "unknown option --nope"},
        {{"-x"}, "unknown option -x"},
        {{"---listen", "x"}, "unknown option ---listen"},
        {{"--Listen", "x"}, "unknown option --Listen"},
        {{"--max_body_bytes", "1"}, "unknown option --max_body_bytes"},
        {{"--listen"}, "option --listen needs a value"},
        {{"--listen", "--json"}, "option --listen needs a value"},
        {{"--workers", "-3"}, "--workers: expected a non-negative integer, got \"-3\""},
        {{"--workers", "1e3"}, "--workers: expected a non-negative integer, got \"1e3\""},
        {{"--workers", ""}, "--workers: expected a non-negative integer, got \"\""},
        {{"--workers", "18446744073709551616"}, "--workers: expected a non-negative integer"},
        {{"--timeout", "soon"}, "--timeout: expected a duration"},
        {{"--max-body-bytes", "4MB"}, "--max-body-bytes: expected a size"},
        {{"stray"}, "unexpected argument \"stray\""},
    };

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct settings s;
        char err[256];

        assert_int_equal(PARSE(&s, err, cases[i].args[0], cases[i].args[1], cases[i].args[2]),
                         ST_INVALID);
        if (strstr(err, cases[i].want) == NULL)
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err, cases[i].want);
        assert_null(strstr(err, "hunter2"));
        assert_null(s.listen); /* a failed parse frees what it set */
    }
}

static void
test_bool_forms(void **state)
{
    static const struct {
        const char *flag, *env;
        enum status st;
        bool want;
    } cases[] = {
        {"--json", NULL, ST_OK, true},
        {"--json=true", NULL, ST_OK, true},
        {"--json=false", NULL, ST_OK, false},
        {"--json=1", NULL, ST_OK, true},
        {"--json=0", NULL, ST_OK, false},
        {"--json=TRUE", NULL, ST_OK, true},
        {"--json=yes", NULL, ST_INVALID, false},
        {"--json=", NULL, ST_INVALID, false},
        {NULL, "true", ST_OK, true},
        {NULL, "1", ST_OK, true},
        {NULL, "False", ST_OK, false},
        {NULL, "0", ST_OK, false},
        {NULL, "on", ST_INVALID, false},
        {"--json=false", "true", ST_OK, false},
        {"--json", "false", ST_OK, true},
    };

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct settings s;
        char err[256];

        if (cases[i].env)
            setenv("DIFYGUARD_JSON", cases[i].env, 1);
        else
            unsetenv("DIFYGUARD_JSON");
        assert_int_equal(PARSE(&s, err, cases[i].flag), cases[i].st);
        if (cases[i].st == ST_OK)
            assert_int_equal(s.json, cases[i].want);
        else
            assert_non_null(strstr(err, "expected true or false"));
        config_free(&s, table, N_OPTS);
    }

    /* A boolean flag never swallows the next argument, unless that is a boolean word. */
    struct settings s;
    const char **pos;
    char err[256];
    unsetenv("DIFYGUARD_JSON");
    assert_int_equal(parse_args(&s, &pos, err, sizeof err, "--json", "file.env", NULL), ST_OK);
    assert_true(s.json);
    assert_string_equal(pos[0], "file.env");
    assert_null(pos[1]);
    config_free(&s, table, N_OPTS);
    /* "--flag false" as well as "--flag=false" (issue 14) */
    setenv("DIFYGUARD_JSON", "true", 1);
    assert_int_equal(parse_args(&s, &pos, err, sizeof err, "--json", "false", "file.env", NULL),
                     ST_OK);
    assert_false(s.json);
    assert_string_equal(pos[0], "file.env");
    assert_null(pos[1]);
    config_free(&s, table, N_OPTS);
    assert_int_equal(parse_args(&s, &pos, err, sizeof err, "--json", "0", NULL), ST_OK);
    assert_false(s.json);
    assert_null(pos[0]);
    config_free(&s, table, N_OPTS);
    unsetenv("DIFYGUARD_JSON");
}

static void
test_positionals(void **state)
{
    char *argv[] = {"env", "a",  "--json",    "b", "--listen", "h:1",
                    "-",   "--", "--workers", "c", NULL};
    int argc = (int)(sizeof argv / sizeof argv[0]) - 1;
    struct settings s = {0};
    const char **pos = NULL;
    char err[256];

    (void)state;
    assert_int_equal(config_parse(&s, table, N_OPTS, argc, argv, &pos, err, sizeof err), ST_OK);
    assert_true(s.json);
    assert_string_equal(s.listen, "h:1");
    assert_int_equal(s.workers, 4); /* after "--" it is an argument */
    const char *want[] = {"a", "b", "-", "--workers", "c"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        assert_string_equal(pos[i], want[i]);
    assert_null(pos[5]);
    assert_string_equal(argv[0], "env"); /* options keep their place first */
    assert_string_equal(argv[1], "--json");
    config_free(&s, table, N_OPTS);

    /* No positional list: any argument is a usage error; none is fine. */
    char *argv2[] = {"env", NULL};
    memset(&s, 0, sizeof s);
    assert_int_equal(config_parse(&s, table, N_OPTS, 1, argv2, &pos, err, sizeof err), ST_OK);
    assert_null(pos[0]);
    config_free(&s, table, N_OPTS);
    assert_int_equal(PARSE(&s, err, "--", "x"), ST_INVALID);
    assert_string_equal(err, "unexpected argument \"x\"");
}

static void
test_help(void **state)
{
    struct settings s;
    char err[256];
    char *buf = NULL;
    size_t len = 0;

    (void)state;
    assert_int_equal(PARSE(&s, err, "-h"), ST_NOT_FOUND);
    assert_int_equal(PARSE(&s, err, "--json", "--help"), ST_NOT_FOUND);
    assert_int_equal(PARSE(&s, err, "--", "--help"), ST_INVALID); /* an argument there */

    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    config_help(f, "serve", "[--listen HOST:PORT]", "Runs the service.", table, N_OPTS);
    fclose(f);
    assert_int_equal(strncmp(buf,
                             "usage: difyguard serve [--listen HOST:PORT]\n"
                             "Runs the service.\n",
                             62),
                     0);
    for (size_t i = 0; i < sizeof env_names / sizeof env_names[0]; i++)
        assert_non_null(strstr(buf, env_names[i]));
    assert_non_null(strstr(buf, "  --listen VALUE"));
    assert_non_null(
        strstr(buf, "address to listen on (env DIFYGUARD_LISTEN, default 127.0.0.1:8080)"));
    assert_non_null(strstr(buf, "  --json "));
    assert_null(strstr(buf, "--json VALUE"));
    assert_null(strstr(buf, "--token")); /* secrets are not flags */
    assert_non_null(strstr(buf, "-h, --help"));
    free(buf);
}

static void
test_secret_env_only(void **state)
{
    struct settings s;
    char err[256];

    (void)state;
    setenv("DIFYGUARD_TOKEN", "dgk_s3cret", 1);
    assert_int_equal(parse_args(&s, NULL, err, sizeof err, NULL), ST_OK);
    assert_string_equal(s.token, "dgk_s3cret");
    assert_null(getenv("DIFYGUARD_TOKEN")); /* unset after reading */
    config_free(&s, table, N_OPTS);

    /* Unset even when the parse fails afterwards. */
    setenv("DIFYGUARD_TOKEN", "dgk_s3cret", 1);
    assert_int_equal(PARSE(&s, err, "--bogus"), ST_INVALID);
    assert_null(getenv("DIFYGUARD_TOKEN"));
    assert_null(s.token);

    /* Never from argv, in either form; the value is not echoed. */
    assert_int_equal(PARSE(&s, err, "--token", "dgk_s3cret"), ST_INVALID);
    assert_string_equal(err, "--token must not be passed on the command line; use DIFYGUARD_TOKEN");
    assert_int_equal(PARSE(&s, err, "--token=dgk_s3cret"), ST_INVALID);
    assert_null(strstr(err, "s3cret"));

    /* A bad secret value is reported without the value, from any source. */
    setenv("DIFYGUARD_PIN", "12ab34", 1);
    assert_int_equal(parse_args(&s, NULL, err, sizeof err, NULL), ST_INVALID);
    assert_non_null(strstr(err, "DIFYGUARD_PIN"));
    assert_null(strstr(err, "12ab"));
    assert_null(getenv("DIFYGUARD_PIN"));
    const char *path = tmp_file("{\"pin\": \"98zz76\"}");
    assert_int_equal(PARSE(&s, err, "--config", path), ST_INVALID);
    assert_non_null(strstr(err, "\"pin\""));
    assert_null(strstr(err, "98zz"));
}

static void
test_secret_from_file_and_layers(void **state)
{
    struct settings s;
    char err[256];
    const char *path = tmp_file("{\"token\": \"from-file\", \"pin\": 1234}");

    (void)state;
    assert_int_equal(PARSE(&s, err, "--config", path), ST_OK);
    assert_string_equal(s.token, "from-file");
    assert_int_equal(s.pin, 1234);
    config_free(&s, table, N_OPTS);

    setenv("DIFYGUARD_TOKEN", "from-env", 1); /* env beats file; old string freed */
    assert_int_equal(PARSE(&s, err, "--config", path), ST_OK);
    assert_string_equal(s.token, "from-env");
    config_free(&s, table, N_OPTS);
}

static void
test_file_errors(void **state)
{
    static const struct {
        const char *json;
        const char *want;
    } cases[] = {
        {"{\"nope\": 1}", "unknown key \"nope\""},
        {"{\"listen\": 5}", "key \"listen\" must be a string"},
        {"{\"listen\": null}", "key \"listen\" must be a string"},
        {"{\"json\": \"true\"}", "key \"json\" must be true or false"},
        {"{\"json\": 1}", "key \"json\" must be true or false"},
        {"{\"workers\": true}", "key \"workers\" must be an integer or a string"},
        {"{\"workers\": 1.5}", "key \"workers\" must be an integer or a string"},
        {"{\"workers\": -1}", "key \"workers\" must not be negative"},
        {"{\"timeout\": -60}", "key \"timeout\" must not be negative"},
        {"{\"timeout\": \"-1h\"}", "key \"timeout\": expected a duration"},
        {"{\"max-body-bytes\": \"lots\"}", "key \"max-body-bytes\": expected a size"},
        {"{\"workers\": \"12x\"}", "key \"workers\": expected a non-negative integer, got \"12x\""},
        {"{\"listen\": \"a\", \"listen\": \"b\"}", "duplicate key \"listen\""},
        {"{\"max-body-bytes\": 1, \"max_body_bytes\": 2}", "duplicate key \"max_body_bytes\""},
        {"{\"config\": \"/etc/other.json\"}", "key \"config\" cannot be set in a config file"},
        {"[1, 2]", "must be a JSON object"},
        {"{\"listen\": ", "line 1"},
        {"", "line"},
        {"{\"token\": \"hunter2\\q\"}", "invalid escape"},
        {"{\"listen\": \"a\"} trailing", "end of file expected"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct settings s = {0};
        char err[256];

        assert_int_equal(config_parse_json(&s, table, N_OPTS, cases[i].json, strlen(cases[i].json),
                                           err, sizeof err),
                         ST_INVALID);
        if (strstr(err, cases[i].want) == NULL || strncmp(err, "config file", 11) != 0)
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err, cases[i].want);
        assert_null(strstr(err, "hunter2"));
        assert_null(s.listen);
        assert_null(s.token);
    }
}

static void
test_file_via_parse(void **state)
{
    struct settings s;
    char err[256];

    (void)state;
    const char *path = tmp_file("{\"listen\": \"h:1\", \"bogus\": 1}");
    assert_int_equal(PARSE(&s, err, "--config", path), ST_INVALID);
    assert_non_null(strstr(err, "config file /tmp/dg_config_test_"));
    assert_non_null(strstr(err, "unknown key \"bogus\""));
    assert_null(s.listen);

    assert_int_equal(PARSE(&s, err, "--config", "/nonexistent/dg.json"), ST_INVALID);
    assert_string_equal(err, "config file /nonexistent/dg.json: No such file or directory");

    assert_int_equal(PARSE(&s, err, "--config", "/tmp"), ST_INVALID);
    assert_non_null(strstr(err, "config file /tmp: "));
}

static void
test_parse_json_direct(void **state)
{
    static const char text[] = "{\"listen\": \"h:2\", \"json\": true, \"workers\": \"9\", "
                               "\"max_body_bytes\": 123, \"timeout\": 60, \"token\": \"t\"}";
    struct settings s = {0};
    char err[256];

    (void)state;
    assert_int_equal(config_parse_json(&s, table, N_OPTS, text, strlen(text), err, sizeof err),
                     ST_OK);
    assert_string_equal(s.listen, "h:2");
    assert_true(s.json);
    assert_int_equal(s.workers, 9);
    assert_int_equal(s.max_body, 123);
    assert_int_equal(s.timeout, 60);
    assert_string_equal(s.token, "t");
    /* The file layer alone applies no defaults and does not need NUL termination. */
    assert_int_equal(config_parse_json(&s, table, N_OPTS, "{}garbage", 2, err, sizeof err), ST_OK);
    assert_string_equal(s.listen, "h:2");
    config_free(&s, table, N_OPTS);
    assert_int_equal(config_parse_json(&s, table, N_OPTS, "{}", 2, NULL, 0), ST_OK);
}

/* OPT_JSON: any JSON value from the file (kept compact), JSON text from a flag or variable. */
static void
test_json_option(void **state)
{
    struct jsettings {
        char *params;
    } j = {0};
    static const struct opt jt[] = {
        {"params", OPT_JSON, offsetof(struct jsettings, params), NULL, "parameters", false, false},
    };
    static const char file[] = "{\"params\": {\"pci\": {\"k\": { \"max_age\" : \"180d\"}}}}";
    char *argv[] = {"x", "--params", "{\"a\": [1, 2]}", NULL};
    char *bad[] = {"x", "--params", "{\"a\": ", NULL};
    char err[256];

    (void)state;
    assert_int_equal(config_parse_json(&j, jt, 1, file, strlen(file), err, sizeof err), ST_OK);
    assert_string_equal(j.params, "{\"pci\":{\"k\":{\"max_age\":\"180d\"}}}");
    config_free(&j, jt, 1);
    assert_null(j.params);
    assert_int_equal(config_parse(&j, jt, 1, 3, argv, NULL, err, sizeof err), ST_OK);
    assert_string_equal(j.params, "{\"a\": [1, 2]}");
    config_free(&j, jt, 1);
    assert_int_equal(config_parse(&j, jt, 1, 3, bad, NULL, err, sizeof err), ST_INVALID);
    assert_non_null(strstr(err, "expected JSON text"));
    config_free(&j, jt, 1);
    setenv("DIFYGUARD_PARAMS", "[true]", 1);
    assert_int_equal(config_parse(&j, jt, 1, 1, argv, NULL, err, sizeof err), ST_OK);
    assert_string_equal(j.params, "[true]");
    unsetenv("DIFYGUARD_PARAMS");
    config_free(&j, jt, 1);
}

static void
test_durations(void **state)
{
    static const struct {
        const char *s;
        int64_t want;
    } good[] = {
        {"0", 0},
        {"45", 45},
        {"45s", 45},
        {"30m", 1800},
        {"12h", 43200},
        {"90d", 7776000},
        {"1d", 86400},
        {"0d", 0},
        {"007", 7},
        /* the 10-year cap (DURATION_MAX_SECONDS), reached in every unit */
        {"3650d", 315360000},
        {"87600h", 315360000},
        {"5256000m", 315360000},
        {"315360000", 315360000},
        {"315360000s", 315360000},
        /* compound (issue 14): largest unit first, each once; ms only to whole seconds */
        {"1h30m", 5400},
        {"2m30s", 150},
        {"1d12h", 129600},
        {"1h0m5s", 3605},
        {"2000ms", 2},
        {"1s1000ms", 2},
        {"3649d23h59m60s", 315360000},
    };
    static const char *const bad[] = {
        "",
        "s",
        "-1",
        "-1h",
        "+1",
        " 1",
        "1 ",
        "1x",
        "1.5h",
        "1hh",
        "30m1h",
        "1h1h",
        "1m1m",
        "500ms",
        "1s500ms",
        "1h30",
        "3650d1s",
        "1D",
        "1H",
        "0x10",
        "9223372036854775808",
        "9223372036854775808s",
        "106751991167301d",
        "153722867280912931m",
        "99999999999999999999",
        "1w",
        "1ms",
        "d1",
        /* over the cap: each of these once parsed and later overflowed "now + period" */
        "3651d",
        "87601h",
        "5256001m",
        "315360001",
        "315360001s",
        "9223372036854775807",
        "9223372036854775807s",
        "106751991167300d",
        "153722867280912930m",
        "2562047788015215h",
    };
    int64_t v;

    (void)state;
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        if (config_duration(&v, good[i].s, strlen(good[i].s)) != ST_OK || v != good[i].want)
            fail_msg("duration \"%s\"", good[i].s);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v = 99;
        if (config_duration(&v, bad[i], strlen(bad[i])) != ST_INVALID || v != 0)
            fail_msg("duration \"%s\" accepted", bad[i]);
    }
    /* milliseconds (OPT_DURATION_MS): sub-second terms, bare numbers are seconds */
    assert_int_equal(config_duration_ms(&v, "500ms", 5), ST_OK);
    assert_int_equal(v, 500);
    assert_int_equal(config_duration_ms(&v, "1s500ms", 7), ST_OK);
    assert_int_equal(v, 1500);
    assert_int_equal(config_duration_ms(&v, "2", 1), ST_OK);
    assert_int_equal(v, 2000);
    assert_int_equal(config_duration_ms(&v, "1m30s", 5), ST_OK);
    assert_int_equal(v, 90000);
    assert_int_equal(config_duration_ms(&v, "500ms1s", 7), ST_INVALID);
    assert_int_equal(config_duration_ms(&v, "3650d1ms", 8), ST_INVALID);
    assert_int_equal(config_duration(&v, "90d and more", 3), ST_OK); /* (ptr, len) */
    assert_int_equal(v, 7776000);
    assert_int_equal(config_duration(&v, "1\0s", 3), ST_INVALID);
    assert_int_equal(config_duration(&v, NULL, 0), ST_INVALID);
    assert_int_equal(config_duration_seconds(&v, 315360000), ST_OK);
    assert_int_equal(v, 315360000);
    assert_int_equal(config_duration_seconds(&v, 315360001), ST_INVALID);
    assert_int_equal(config_duration_seconds(&v, -1), ST_INVALID);
    assert_int_equal(config_duration_seconds(&v, INT64_MAX), ST_INVALID);
    assert_int_equal(v, 0);
}

/* The cap holds in every layer: flag, variable and JSON number or string. */
static void
test_duration_cap_every_layer(void **state)
{
    static const char *const json_bad[] = {
        "{\"timeout\": 315360001}",
        "{\"timeout\": 9223372036854775807}",
        "{\"timeout\": \"3651d\"}",
    };
    struct settings s;
    char err[256];

    (void)state;
    assert_int_equal(PARSE(&s, err, "--timeout", "3650d"), ST_OK);
    assert_int_equal(s.timeout, 315360000);
    config_free(&s, table, N_OPTS);
    assert_int_equal(PARSE(&s, err, "--timeout", "9223372036854775807"), ST_INVALID);
    assert_non_null(strstr(err, "--timeout"));
    assert_non_null(strstr(err, "at most 3650d"));
    setenv("DIFYGUARD_TIMEOUT", "106751991167300d", 1);
    assert_int_equal(PARSE(&s, err, "--json"), ST_INVALID);
    assert_non_null(strstr(err, "DIFYGUARD_TIMEOUT"));
    unsetenv("DIFYGUARD_TIMEOUT");
    for (size_t i = 0; i < sizeof json_bad / sizeof json_bad[0]; i++) {
        memset(&s, 0, sizeof s);
        if (config_parse_json(&s, table, N_OPTS, json_bad[i], strlen(json_bad[i]), err,
                              sizeof err) != ST_INVALID)
            fail_msg("config file %s accepted (timeout %lld)", json_bad[i], (long long)s.timeout);
        assert_non_null(strstr(err, "timeout"));
    }
    const char *ok = "{\"timeout\": 315360000}";
    memset(&s, 0, sizeof s);
    assert_int_equal(config_parse_json(&s, table, N_OPTS, ok, strlen(ok), err, sizeof err), ST_OK);
    assert_int_equal(s.timeout, 315360000);
    config_free(&s, table, N_OPTS);
}

static void
test_sizes(void **state)
{
    static const struct {
        const char *s;
        uint64_t want;
    } good[] = {
        {"0", 0},
        {"4096", 4096},
        {"1k", 1024},
        {"1K", 1024},
        {"1KiB", 1024},
        {"64k", 65536},
        {"4MiB", 4194304},
        {"1m", 1048576},
        {"1M", 1048576},
        {"1g", 1073741824},
        {"2G", 2147483648u},
        {"1GiB", 1073741824},
        {"0k", 0},
        {"18446744073709551615", UINT64_MAX},
        {"17179869183G", 17179869183ULL << 30},
        {"17592186044415m", 17592186044415ULL << 20},
    };
    static const char *const bad[] = {
        "",
        "k",
        "-1",
        "+1",
        " 1",
        "1 k",
        "1 ",
        "1KB",
        "1kb",
        "1MB",
        "1kib",
        "1mib",
        "1.5k",
        "1t",
        "1KiBx",
        "1b",
        "1B",
        "18446744073709551616",
        "17179869184G",
        "17592186044416m",
        "0x10",
        "99999999999999999999999",
    };
    uint64_t v;

    (void)state;
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        if (config_size(&v, good[i].s, strlen(good[i].s)) != ST_OK || v != good[i].want)
            fail_msg("size \"%s\"", good[i].s);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v = 99;
        if (config_size(&v, bad[i], strlen(bad[i])) != ST_INVALID || v != 0)
            fail_msg("size \"%s\" accepted", bad[i]);
    }
    assert_int_equal(config_size(&v, "4MiB!", 4), ST_OK);
    assert_int_equal(v, 4194304);
}

static void
test_empty_env_is_unset(void **state)
{
    struct settings s;
    char err[256];

    (void)state;
    setenv("DIFYGUARD_WORKERS", "", 1);
    setenv("DIFYGUARD_LISTEN", "", 1);
    assert_int_equal(parse_args(&s, NULL, err, sizeof err, NULL), ST_OK);
    assert_int_equal(s.workers, 4);
    assert_string_equal(s.listen, "127.0.0.1:8080");
    config_free(&s, table, N_OPTS);
}

static void
test_no_config_option(void **state)
{
    /* Without a "config" option there is no file layer, and --config is unknown. */
    static const struct opt small[] = {
        {"data-dir", OPT_STRING, 0, NULL, "data directory", false, false},
    };
    char *dir = NULL;
    char err[256];
    char *argv[] = {"init", "--config", "x", NULL};
    char *argv2[] = {"init", NULL};

    (void)state;
    setenv("DIFYGUARD_CONFIG", "/nonexistent", 1);
    assert_int_equal(config_parse(&dir, small, 1, 3, argv, NULL, err, sizeof err), ST_INVALID);
    assert_string_equal(err, "unknown option --config");
    setenv("DIFYGUARD_DATA_DIR", "/var/lib/dg", 1);
    assert_int_equal(config_parse(&dir, small, 1, 1, argv2, NULL, err, sizeof err), ST_OK);
    assert_string_equal(dir, "/var/lib/dg");
    config_free(&dir, small, 1);
    unsetenv("DIFYGUARD_DATA_DIR");
}

/* What a command grants (a key's scopes, a keyring's deletability) is never taken from the
 * environment or a config file: a stray DIFYGUARD_SCOPE must not widen "key create". */
struct grant_settings {
    char *addr;
    char *config;
    char *scope;
    bool deletion_allowed;
    int64_t rotation_period;
};

static const struct opt grant_table[] = {
    {"addr", OPT_STRING, offsetof(struct grant_settings, addr), NULL, "API URL", false, false},
    {"config", OPT_STRING, offsetof(struct grant_settings, config), NULL, "config file", false,
     false},
    {"scope", OPT_STRING, offsetof(struct grant_settings, scope), NULL, "what the key may do",
     false, true},
    {"deletion-allowed", OPT_BOOL, offsetof(struct grant_settings, deletion_allowed), NULL,
     "deletable", false, true},
    {"rotation-period", OPT_DURATION, offsetof(struct grant_settings, rotation_period), "90d",
     "rotate this often", false, true},
};
#define N_GRANT (sizeof grant_table / sizeof grant_table[0])

static void
test_flag_only_ignores_environment_and_file(void **state)
{
    struct grant_settings g = {0};
    char err[256];
    char *bare[] = {"key", NULL};
    char *flags[] = {"key", "--scope", "encrypt", "--deletion-allowed", "--rotation-period",
                     "1h",  NULL};
    char *buf = NULL;
    size_t len = 0;

    (void)state;
    setenv("DIFYGUARD_ADDR", "http://env:1", 1);
    setenv("DIFYGUARD_SCOPE", "keyrings:admin,apps:admin", 1);
    setenv("DIFYGUARD_DELETION_ALLOWED", "true", 1);
    setenv("DIFYGUARD_ROTATION_PERIOD", "1d", 1);
    assert_int_equal(config_parse(&g, grant_table, N_GRANT, 1, bare, NULL, err, sizeof err), ST_OK);
    assert_string_equal(g.addr, "http://env:1"); /* a global setting: env applies */
    assert_null(g.scope);
    assert_false(g.deletion_allowed);
    assert_int_equal(g.rotation_period, 90 * 86400); /* the default, not the variable */
    config_free(&g, grant_table, N_GRANT);

    memset(&g, 0, sizeof g);
    assert_int_equal(config_parse(&g, grant_table, N_GRANT, 6, flags, NULL, err, sizeof err),
                     ST_OK);
    assert_string_equal(g.scope, "encrypt");
    assert_true(g.deletion_allowed);
    assert_int_equal(g.rotation_period, 3600);
    config_free(&g, grant_table, N_GRANT);
    assert_non_null(getenv("DIFYGUARD_SCOPE")); /* not read, so not consumed either */

    /* a config file may not set them either */
    const char *path = tmp_file("{\"scope\": \"apps:admin\"}");
    setenv("DIFYGUARD_CONFIG", path, 1);
    memset(&g, 0, sizeof g);
    assert_int_equal(config_parse(&g, grant_table, N_GRANT, 1, bare, NULL, err, sizeof err),
                     ST_INVALID);
    assert_non_null(strstr(err, "can only be given as a flag (--scope)"));
    assert_null(g.scope);
    unsetenv("DIFYGUARD_CONFIG");
    memset(&g, 0, sizeof g);
    const char *json = "{\"deletion_allowed\": true}";
    assert_int_equal(
        config_parse_json(&g, grant_table, N_GRANT, json, strlen(json), err, sizeof err),
        ST_INVALID);
    assert_false(g.deletion_allowed);

    /* --help says which options are flag only, and names no variable for them */
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    config_help(f, "key create", "APP", NULL, grant_table, N_GRANT);
    fclose(f);
    assert_non_null(strstr(buf, "(env DIFYGUARD_ADDR)"));
    assert_non_null(strstr(buf, "what the key may do (flag only"));
    assert_non_null(strstr(buf, "deletable (flag only"));
    assert_null(strstr(buf, "DIFYGUARD_SCOPE"));
    assert_null(strstr(buf, "DIFYGUARD_DELETION_ALLOWED"));
    assert_null(strstr(buf, "DIFYGUARD_ROTATION_PERIOD"));
    free(buf);
    unsetenv("DIFYGUARD_ADDR");
    unsetenv("DIFYGUARD_SCOPE");
    unsetenv("DIFYGUARD_DELETION_ALLOWED");
    unsetenv("DIFYGUARD_ROTATION_PERIOD");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_precedence_each_type, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_path_flag_beats_env, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flag_forms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flag_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bool_forms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_positionals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_help, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_env_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_from_file_and_layers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_via_parse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_json_direct, setup, teardown),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_json_option),
        cmocka_unit_test_setup_teardown(test_duration_cap_every_layer, setup, teardown),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test_setup_teardown(test_empty_env_is_unset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_config_option, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flag_only_ignores_environment_and_file, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
