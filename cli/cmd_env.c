/* SPDX-License-Identifier: Apache-2.0 */
/* cli/cmd_env.c -- `difyguard env encrypt|decrypt|exec|check` (see cmd_env.h). The context of
 * every value is {"purpose": "dotenv", "environment": E, "name": NAME} (a permanent format:
 * README "Encrypted dotenv"). Fails closed: any value that does not decrypt, any damaged
 * ciphertext, any syntax error or duplicate name stops the command before it writes or runs
 * anything. Messages name files, lines and variables, never values. */
#include "cli/cmd_env.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "cli/client.h"
#include "cli/dotenv.h"
#include "common/clock.h"
#include "common/json/config.h"
#include "common/names.h"
#include "common/sbuf.h"
#include "common/xmem.h"
#include "crypto/b64.h"

extern char **environ;

#define EXIT_FAIL 1
#define EXIT_USAGE 2
#define ENV_BATCH_ITEMS 1000              /* the service's default batch limit */
#define ENV_BATCH_BYTES ((size_t)3 << 20) /* below its 4 MiB default */
#define ENV_BACKOFF_FIRST_MS 250
#define ENV_BACKOFF_MAX_MS 5000
#define SHOW 120

struct env_opts {
    struct client_opts conn;
    char *keyring, *environment, *only, *except, *out, *format;
    int64_t wait;
    bool in_place, quiet;
};

/* clang-format off */
#define EO(name, type, field, def, help) \
    {name, type, offsetof(struct env_opts, field), def, help, false, false}
#define EF(name, type, field, def, help) \
    {name, type, offsetof(struct env_opts, field), def, help, false, true}
#define ENV_CONN                                                                               \
    CLIENT_OPTS(struct env_opts, conn),                                                        \
    EO("keyring", OPT_STRING, keyring, "dotenv", "keyring the values are encrypted under"),    \
    EO("environment", OPT_STRING, environment, NULL,                                           \
       "environment the values are bound to (dev, staging, prod, ...); required"),             \
    EO("wait", OPT_DURATION, wait, "60s",                                                      \
       "keep retrying with backoff while the service is down or starting, this long")
/* clang-format on */

static const struct opt encrypt_opts[] = {
    ENV_CONN,
    EF("only", OPT_STRING, only, NULL, "encrypt only variables matching these globs (a,b,...)"),
    EF("except", OPT_STRING, except, NULL, "leave variables matching these globs in clear"),
    EF("in-place", OPT_BOOL, in_place, NULL, "rewrite FILE (atomically, keeping its mode)"),
    EF("out", OPT_STRING, out, NULL, "write here (atomically) instead of stdout"),
};
static const struct opt decrypt_opts[] = {
    ENV_CONN,
    EF("format", OPT_STRING, format, "dotenv",
       "dotenv (the file as written, values decrypted) or shell (export NAME='value' lines a "
       "POSIX shell sources exactly)"),
    EF("out", OPT_STRING, out, NULL,
       "required: where the clear file goes (mode 0600, written atomically, missing directories "
       "made 0700), or - for stdout"),
};
static const struct opt exec_opts[] = {ENV_CONN};
static const struct opt check_opts[] = {
    EF("quiet", OPT_BOOL, quiet, NULL, "print only the problems"),
};

struct env_run {
    char cmd[32];
    const char *file;
    struct env_opts o;
    const char **pos;
    char **child; /* exec: the command and its arguments */
    char *buf;    /* the file */
    size_t buf_len;
    struct dotenv d;
    struct client *c;
    char shown[SHOW + 4];
};

static int say(const struct env_run *r, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
say(const struct env_run *r, int code, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "difyguard: %s: ", r->cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return code;
}

/* ---- the file ---------------------------------------------------------------------------- */

static int
read_file(struct env_run *r)
{
    int fd = open(r->file, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    size_t n = 0;

    if (fd < 0)
        return say(r, EXIT_FAIL, "%s: %s", r->shown, strerror(errno));
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || (uint64_t)sb.st_size > DOTENV_MAX_BYTES) {
        close(fd);
        return say(r, EXIT_FAIL, "%s: not a regular file of at most 4 MiB", r->shown);
    }
    r->buf = xmalloc((size_t)sb.st_size + 1);
    for (;;) {
        ssize_t got = read(fd, r->buf + n, (size_t)sb.st_size + 1 - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            close(fd);
            return say(r, EXIT_FAIL, "%s: %s", r->shown, strerror(errno));
        }
        if (got == 0 || (n += (size_t)got) > (size_t)sb.st_size)
            break;
    }
    close(fd);
    if (n > (size_t)sb.st_size)
        return say(r, EXIT_FAIL, "%s: the file grew while it was read", r->shown);
    r->buf_len = n;
    return 0;
}

/* Read and parse FILE; duplicates refused unless `dups_ok` (check reports them itself). */
static int
load(struct env_run *r, bool dups_ok)
{
    size_t line;
    const char *why;
    int rc;

    if ((rc = read_file(r)) != 0)
        return rc;
    if (dotenv_parse(&r->d, r->buf, r->buf_len, &line, &why) != ST_OK)
        return say(r, EXIT_FAIL, "%s:%zu: %s", r->shown, line, why);
    for (size_t i = 0; i < r->d.n && !dups_ok; i++)
        if (r->d.v[i].dup_line != 0)
            return say(r, EXIT_FAIL, "%s:%zu: %s is defined again (first on line %zu)", r->shown,
                       r->d.v[i].line, r->d.v[i].name, r->d.v[i].dup_line);
    return 0;
}

/* A value that starts like a ciphertext but is not one: damaged, never passed on as clear. */
static bool
damaged(const struct dotenv_var *v)
{
    uint32_t ver;
    return v->value_len >= 3 && memcmp(v->value, "dg:", 3) == 0 &&
           !dotenv_ciphertext(v->value, v->value_len, &ver);
}

static bool
encrypted(const struct dotenv_var *v)
{
    uint32_t ver;
    return dotenv_ciphertext(v->value, v->value_len, &ver);
}

/* Whether name matches one of the comma-separated globs. */
static bool
matches(const char *globs, const char *name)
{
    char *list = xstrdup(globs), *save = NULL;
    bool hit = false;

    for (char *g = strtok_r(list, ",", &save); g != NULL && !hit; g = strtok_r(NULL, ",", &save))
        hit = fnmatch(g, name, 0) == 0;
    free(list);
    return hit;
}

/* ---- the service ------------------------------------------------------------------------- */

static json_t *
context_of(const struct env_run *r, const struct dotenv_var *v)
{
    return json_pack("{s:s, s:s, s:s}", "purpose", "dotenv", "environment", r->o.environment,
                     "name", v->name);
}

static void
sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* One POST, retried with backoff while the service is unreachable, starting or busy, up to
 * --wait; the last failure is printed (one line). */
static int
post(struct env_run *r, json_t **resp, const char *path, const json_t *body)
{
    char err[512], line[512];
    int64_t deadline = clock_mono_ns() / 1000000 + r->o.wait * 1000, delay = ENV_BACKOFF_FIRST_MS;
    enum status st;

    if (r->c == NULL && (st = client_new(&r->c, &r->o.conn, err, sizeof err)) != ST_OK)
        return say(r, st == ST_INVALID ? EXIT_USAGE : EXIT_FAIL, "%s", err);
    for (;;) {
        client_quiet(r->c, line, sizeof line);
        st = client_call(r->c, resp, NULL, "POST", path, body);
        client_quiet(r->c, NULL, 0);
        if (st == ST_OK)
            return 0;
        int64_t now = clock_mono_ns() / 1000000;
        if (!client_retryable(r->c) || now >= deadline) {
            fputs(line, stderr);
            return EXIT_FAIL;
        }
        sleep_ms(delay < deadline - now ? delay : deadline - now);
        delay = delay * 2 < ENV_BACKOFF_MAX_MS ? delay * 2 : ENV_BACKOFF_MAX_MS;
    }
}

/* One item of a batch for variable v: encrypt (its value) or decrypt (its ciphertext). */
static json_t *
item_of(const struct env_run *r, const struct dotenv_var *v, bool enc, size_t *bytes)
{
    json_t *it;

    if (enc) {
        size_t el = b64_std_len(v->value_len);
        char *t = xmalloc(el + 1);
        b64_std_encode(t, el + 1, (const uint8_t *)v->value, v->value_len);
        it = json_pack("{s:s%, s:o}", "plaintext", t, el, "context", context_of(r, v));
        sodium_memzero(t, el);
        free(t);
        *bytes = el + 128 + v->value_len;
    } else {
        it = json_pack("{s:s%, s:o}", "ciphertext", v->value, v->value_len, "context",
                       context_of(r, v));
        *bytes = v->value_len + 128 + strlen(v->name);
    }
    return it;
}

/* Encrypt or decrypt the variables idx[0..n) in as few calls as the batch limits allow; out[k]
 * gets the result for idx[k]: the ciphertext text, or the plaintext bytes (a secret buffer). */
static int
crypt_all(struct env_run *r, bool enc, const size_t *idx, size_t n, struct sbuf *out)
{
    char *path =
        client_path(enc ? "/v1/keyrings/%s/encrypt" : "/v1/keyrings/%s/decrypt", r->o.keyring);
    size_t done = 0, failed = 0, first_bad = 0;
    const char *first_code = NULL;
    char code_buf[64] = "";
    int rc = 0;

    while (done < n && rc == 0) {
        json_t *items = json_array(), *resp = NULL;
        size_t k = done, bytes = 0, b;
        while (k < n && k - done < ENV_BATCH_ITEMS && bytes < ENV_BATCH_BYTES) {
            json_array_append_new(items, item_of(r, &r->d.v[idx[k]], enc, &b));
            bytes += b;
            k++;
        }
        json_t *body = json_pack("{s:o}", "items", items);
        rc = post(r, &resp, path, body);
        json_decref(body);
        const json_t *res = json_object_get(resp, "items");
        if (rc == 0 && (!json_is_array(res) || json_array_size(res) != k - done))
            rc = say(r, EXIT_FAIL, "the service answered with the wrong number of items");
        for (size_t j = done; j < k && rc == 0; j++) {
            const json_t *o = json_array_get(res, j - done);
            const char *s = json_string_value(json_object_get(o, enc ? "ciphertext" : "plaintext"));
            size_t cap = s != NULL ? b64_decoded_max(strlen(s)) + 1 : 0, len = 0;
            out[j].secret = !enc;
            if (s != NULL && enc) {
                sbuf_adds(&out[j], s);
                continue;
            }
            if (s != NULL) {
                sbuf_reserve(&out[j], cap);
                if (b64_std_decode((uint8_t *)out[j].p, cap, &len, s, strlen(s)) == ST_OK) {
                    out[j].len = len;
                    continue;
                }
            }
            if (failed++ == 0) {
                const char *c =
                    json_string_value(json_object_get(json_object_get(o, "error"), "code"));
                first_bad = idx[j];
                snprintf(code_buf, sizeof code_buf, "%s", c != NULL ? c : "malformed answer");
                first_code = code_buf;
            }
        }
        json_decref(resp);
        done = k;
    }
    free(path);
    if (rc == 0 && failed > 0) {
        const struct dotenv_var *v = &r->d.v[first_bad];
        rc =
            say(r, EXIT_FAIL, "%s:%zu: %s could not be %s (%s); %zu of %zu values failed", r->shown,
                v->line, v->name, enc ? "encrypted" : "decrypted", first_code, failed, n);
    }
    return rc;
}

/* ---- output ------------------------------------------------------------------------------ */

static int
mkdirs(const struct env_run *r, const char *path)
{
    char *d = xstrdup(path);
    int rc = 0;

    for (char *p = d + 1; *p != '\0' && rc == 0; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(d, 0700) != 0 && errno != EEXIST)
            rc = say(r, EXIT_FAIL, "cannot create the directory of --out: %s", strerror(errno));
        *p = '/';
    }
    free(d);
    return rc;
}

/* Write data to path atomically: a temporary file beside it, fsync'd, renamed over it. */
static int
write_atomic(const struct env_run *r, const char *path, const struct sbuf *data, mode_t mode,
             bool make_dirs)
{
    char tmp[4096];
    const char *slash = strrchr(path, '/');
    int n = slash != NULL
                ? snprintf(tmp, sizeof tmp, "%.*s/.%s.XXXXXX", (int)(slash - path), path, slash + 1)
                : snprintf(tmp, sizeof tmp, ".%s.XXXXXX", path);
    int fd, rc;

    if (n < 0 || (size_t)n >= sizeof tmp || (slash != NULL && slash[1] == '\0'))
        return say(r, EXIT_USAGE, "the output path is not a usable file name");
    if (make_dirs && (rc = mkdirs(r, path)) != 0)
        return rc;
    if ((fd = mkstemp(tmp)) < 0)
        return say(r, EXIT_FAIL, "cannot write beside the output file: %s", strerror(errno));
    size_t off = 0;
    bool ok = fchmod(fd, mode) == 0;
    while (ok && off < data->len) {
        ssize_t w = write(fd, data->p + off, data->len - off);
        if (w < 0 && errno == EINTR)
            continue;
        ok = w > 0;
        off += ok ? (size_t)w : 0;
    }
    ok = ok && fsync(fd) == 0;
    int err = errno;
    ok = close(fd) == 0 && ok;
    if (ok && rename(tmp, path) != 0) {
        err = errno;
        ok = false;
    }
    if (!ok) {
        unlink(tmp);
        return say(r, EXIT_FAIL, "cannot write the output file: %s", strerror(err));
    }
    return 0;
}

static int
emit(const struct env_run *r, const char *out, const struct sbuf *data, mode_t mode, bool dirs)
{
    if (out != NULL && strcmp(out, "-") != 0)
        return write_atomic(r, out, data, mode, dirs);
    if (fwrite(data->p, 1, data->len, stdout) != data->len || fflush(stdout) != 0)
        return say(r, EXIT_FAIL, "cannot write to stdout");
    return 0;
}

/* ---- the subcommands --------------------------------------------------------------------- */

static int
need_environment(const struct env_run *r)
{
    if (r->o.environment == NULL || !names_valid(r->o.environment))
        return say(r, EXIT_USAGE,
                   "--environment (DIFYGUARD_ENVIRONMENT) is required: a name such as dev, "
                   "staging or prod ([a-z0-9][a-z0-9._-]{0,62})");
    if (r->o.keyring == NULL || !names_valid(r->o.keyring))
        return say(r, EXIT_USAGE, "--keyring must be a keyring name");
    return 0;
}

static void
free_results(struct sbuf *res, size_t n)
{
    for (size_t i = 0; i < n && res != NULL; i++)
        sbuf_free(&res[i]);
    free(res);
}

static int
env_encrypt(struct env_run *r)
{
    size_t *idx = xcalloc(r->d.n + 1, sizeof *idx), n = 0;
    struct sbuf *res = NULL, *repl = xcalloc(r->d.n + 1, sizeof *repl), text = {.secret = true};
    int rc = 0;

    if (r->o.in_place && r->o.out != NULL)
        rc = say(r, EXIT_USAGE, "--in-place and --out exclude each other");
    for (size_t i = 0; i < r->d.n && rc == 0; i++) {
        const struct dotenv_var *v = &r->d.v[i];
        if (damaged(v))
            rc = say(r, EXIT_FAIL, "%s:%zu: %s holds a damaged difyguard ciphertext", r->shown,
                     v->line, v->name);
        else if (v->value_len > 0 && !encrypted(v) &&
                 (r->o.only == NULL || matches(r->o.only, v->name)) &&
                 (r->o.except == NULL || !matches(r->o.except, v->name)))
            idx[n++] = i;
    }
    res = xcalloc(n + 1, sizeof *res);
    if (rc == 0 && n > 0)
        rc = crypt_all(r, true, idx, n, res);
    for (size_t k = 0; k < n && rc == 0; k++)
        dotenv_quote(&repl[idx[k]], res[k].p, res[k].len, r->d.v[idx[k]].quote);
    if (rc == 0) {
        struct stat sb;
        mode_t mode = 0600;
        if (r->o.in_place && stat(r->file, &sb) == 0)
            mode = sb.st_mode & 07777;
        dotenv_render(&text, &r->d, repl);
        rc = emit(r, r->o.in_place ? r->file : r->o.out, &text, mode, false);
    }
    sbuf_free(&text);
    free_results(repl, r->d.n);
    free_results(res, n);
    free(idx);
    return rc;
}

/* Decrypt every encrypted value; vals[i] is variable i's clear value (a secret buffer) for
 * encrypted ones, p NULL for the others. */
static int
decrypt_values(struct env_run *r, struct sbuf **vals)
{
    size_t *idx = xcalloc(r->d.n + 1, sizeof *idx), n = 0;
    struct sbuf *res;
    int rc = 0;

    *vals = xcalloc(r->d.n + 1, sizeof **vals);
    for (size_t i = 0; i < r->d.n && rc == 0; i++) {
        if (damaged(&r->d.v[i]))
            rc = say(r, EXIT_FAIL, "%s:%zu: %s holds a damaged difyguard ciphertext", r->shown,
                     r->d.v[i].line, r->d.v[i].name);
        else if (encrypted(&r->d.v[i]))
            idx[n++] = i;
    }
    res = xcalloc(n + 1, sizeof *res);
    if (rc == 0 && n > 0)
        rc = crypt_all(r, false, idx, n, res);
    for (size_t k = 0; k < n && rc == 0; k++) {
        (*vals)[idx[k]] = res[k];
        res[k] = (struct sbuf){0};
        sbuf_add(&(*vals)[idx[k]], "", 0); /* p set even for an empty value */
    }
    free_results(res, n);
    free(idx);
    return rc;
}

/* `export NAME='value'` lines: single quotes keep everything literal in a POSIX shell, and a
 * quote in a value is written '\'' . */
static void
render_shell(struct sbuf *out, const struct env_run *r, const struct sbuf *vals)
{
    for (size_t i = 0; i < r->d.n; i++) {
        const char *v = vals[i].p != NULL ? vals[i].p : r->d.v[i].value;
        size_t n = vals[i].p != NULL ? vals[i].len : r->d.v[i].value_len;
        sbuf_addf(out, "export %s='", r->d.v[i].name);
        for (size_t k = 0; k < n; k++) {
            if (v[k] == '\'')
                sbuf_adds(out, "'\\''");
            else
                sbuf_add(out, v + k, 1);
        }
        sbuf_adds(out, "'\n");
    }
}

static int
env_decrypt(struct env_run *r)
{
    struct sbuf *vals = NULL, *repl = xcalloc(r->d.n + 1, sizeof *repl), text = {.secret = true};
    bool shell = r->o.format != NULL && strcmp(r->o.format, "shell") == 0;
    int rc = 0;

    if (r->o.out == NULL)
        rc = say(r, EXIT_USAGE, "--out PATH is required (--out - for stdout)");
    else if (!shell && (r->o.format == NULL || strcmp(r->o.format, "dotenv") != 0))
        rc = say(r, EXIT_USAGE, "--format must be dotenv or shell");
    if (rc == 0)
        rc = decrypt_values(r, &vals);
    for (size_t i = 0; i < r->d.n && rc == 0 && shell; i++)
        if (vals[i].p != NULL && memchr(vals[i].p, '\0', vals[i].len) != NULL)
            rc = say(r, EXIT_FAIL, "%s:%zu: %s decrypts to a value with a NUL byte", r->shown,
                     r->d.v[i].line, r->d.v[i].name);
    for (size_t i = 0; i < r->d.n && rc == 0; i++) {
        if (vals[i].p == NULL)
            continue;
        repl[i].secret = true;
        dotenv_quote(&repl[i], vals[i].p, vals[i].len, r->d.v[i].quote);
    }
    if (rc == 0) {
        if (shell)
            render_shell(&text, r, vals);
        else
            dotenv_render(&text, &r->d, repl);
        rc = emit(r, r->o.out, &text, 0600, true);
    }
    sbuf_free(&text);
    free_results(repl, r->d.n);
    free_results(vals, r->d.n);
    return rc;
}

/* The child's environment: ours without DIFYGUARD_* and without the file's names, then the
 * file's variables. */
static char **
child_env(const struct env_run *r, const struct sbuf *vals)
{
    size_t n = 0, k = 0;

    while (environ[n] != NULL)
        n++;
    char **env = xcalloc(n + r->d.n + 1, sizeof *env);
    for (size_t i = 0; i < n; i++) {
        const char *e = environ[i], *eq = strchr(e, '=');
        bool drop = strncmp(e, "DIFYGUARD_", 10) == 0 || eq == NULL;
        for (size_t j = 0; j < r->d.n && !drop; j++)
            drop = strlen(r->d.v[j].name) == (size_t)(eq - e) &&
                   memcmp(e, r->d.v[j].name, (size_t)(eq - e)) == 0;
        if (!drop)
            env[k++] = (char *)e;
    }
    for (size_t j = 0; j < r->d.n; j++) {
        const char *v = vals[j].p != NULL ? vals[j].p : r->d.v[j].value;
        size_t vl = vals[j].p != NULL ? vals[j].len : r->d.v[j].value_len,
               nl = strlen(r->d.v[j].name);
        char *s = xmalloc(nl + vl + 2);
        memcpy(s, r->d.v[j].name, nl);
        s[nl] = '=';
        memcpy(s + nl + 1, v, vl);
        s[nl + 1 + vl] = '\0';
        env[k++] = s;
    }
    return env;
}

static int
env_exec(struct env_run *r)
{
    struct sbuf *vals = NULL;
    sigset_t set;
    int rc;

    if (r->child == NULL || r->child[0] == NULL)
        return say(r, EXIT_USAGE, "usage: difyguard env exec FILE [options] -- COMMAND [ARGS...]");
    if ((rc = decrypt_values(r, &vals)) != 0) {
        free_results(vals, r->d.n);
        return rc;
    }
    for (size_t i = 0; i < r->d.n && rc == 0; i++)
        if (vals[i].p != NULL && memchr(vals[i].p, '\0', vals[i].len) != NULL)
            rc = say(r, EXIT_FAIL, "%s:%zu: %s decrypts to a value with a NUL byte", r->shown,
                     r->d.v[i].line, r->d.v[i].name);
    if (rc != 0) {
        free_results(vals, r->d.n);
        return rc;
    }
    char **env = child_env(r, vals), **saved = environ;
    free_results(vals, r->d.n);
    client_free(r->c); /* wipes the token */
    r->c = NULL;
    fflush(stdout);
    /* main blocked these for serve's sigwait and ignores SIGPIPE: the command gets defaults */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    signal(SIGPIPE, SIG_DFL);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    environ = env;
    execvp(r->child[0], r->child);
    int err = errno;
    sigprocmask(SIG_BLOCK, &set, NULL);
    for (size_t k = 0; env[k] != NULL; k++) { /* not from our environment: the file's, wiped */
        bool ours = true;
        for (size_t i = 0; saved[i] != NULL && ours; i++)
            ours = env[k] != saved[i];
        if (ours) {
            sodium_memzero(env[k], strlen(env[k]));
            free(env[k]);
        }
    }
    free(env);
    environ = saved;
    return say(r, err == ENOENT ? 127 : 126, "cannot run %s: %s",
               client_printable(r->shown, SHOW, r->child[0]), strerror(err));
}

/* What a value left in clear says about being a secret. NULL when it looks harmless. */
static const char *
secret_looking(const struct dotenv_var *v)
{
    static const char *const words[] = {"PASSWORD",   "PASSWD",  "SECRET", "TOKEN",
                                        "CREDENTIAL", "PRIVATE", "APIKEY", "DSN"};
    static const char *const prefixes[] = {"sk-", "dgk_", "ghp_", "xoxb-", "AKIA", "-----BEGIN"};
    char up[DOTENV_NAME_MAX + 3];
    size_t n = strlen(v->name);

    if (v->value_len == 0)
        return NULL;
    up[0] = '_';
    for (size_t i = 0; i < n; i++)
        up[i + 1] = (v->name[i] >= 'a' && v->name[i] <= 'z') ? (char)(v->name[i] - 32) : v->name[i];
    up[n + 1] = '_';
    up[n + 2] = '\0';
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strstr(up, words[i]) != NULL)
            return "its name says it is a secret";
    if (strstr(up, "_KEY_") != NULL || strstr(up, "_PASS_") != NULL)
        return "its name says it is a secret";
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
        if (strncmp(v->value, prefixes[i], strlen(prefixes[i])) == 0)
            return "it looks like a credential";
    const char *at = strstr(v->value, "://");
    const char *end = at != NULL ? strpbrk(at + 3, "/@") : NULL;
    if (end != NULL && *end == '@' && memchr(at + 3, ':', (size_t)(end - at - 3)) != NULL)
        return "it is a URL with a password";
    return NULL;
}

static int
env_check(struct env_run *r)
{
    size_t problems = 0;
    uint32_t ver;

    for (size_t i = 0; i < r->d.n; i++) {
        const struct dotenv_var *v = &r->d.v[i];
        const char *why = NULL;
        char state[32] = "clear";
        if (v->dup_line != 0)
            why = "defined again";
        else if (damaged(v))
            why = "a damaged difyguard ciphertext";
        else if (dotenv_ciphertext(v->value, v->value_len, &ver))
            snprintf(state, sizeof state, "encrypted v%u", ver);
        else if (v->value_len == 0)
            snprintf(state, sizeof state, "empty");
        else
            why = secret_looking(v);
        if (!r->o.quiet)
            printf("%6zu  %-40s %s\n", v->line, v->name, why != NULL ? "PROBLEM" : state);
        if (why == NULL)
            continue;
        problems++;
        if (v->dup_line != 0)
            printf("%s:%zu: %s: defined again (first on line %zu)\n", r->shown, v->line, v->name,
                   v->dup_line);
        else if (damaged(v))
            printf("%s:%zu: %s: holds %s\n", r->shown, v->line, v->name, why);
        else
            printf("%s:%zu: %s: left in clear, but %s\n", r->shown, v->line, v->name, why);
    }
    fflush(stdout);
    if (problems > 0)
        return say(r, EXIT_FAIL, "%s: %zu problem%s", r->shown, problems, problems == 1 ? "" : "s");
    return 0;
}

/* ---- dispatch ---------------------------------------------------------------------------- */

struct env_sub {
    const char *name, *synopsis, *summary;
    const struct opt *opts;
    size_t n_opts;
    bool server, dups_ok;
    int (*fn)(struct env_run *r);
};

#define NOPTS(a) (sizeof(a) / sizeof((a)[0]))
static const struct env_sub subs[] = {
    {"encrypt", "FILE [--environment E] [--only GLOBS] [--except GLOBS] [--in-place | --out P]",
     "Encrypt the clear values of a dotenv file, keeping everything else as written.", encrypt_opts,
     NOPTS(encrypt_opts), true, false, env_encrypt},
    {"decrypt", "FILE --out PATH|- [--environment E] [--format dotenv|shell]",
     "Write the file with its values decrypted (one batched call).", decrypt_opts,
     NOPTS(decrypt_opts), true, false, env_decrypt},
    {"exec", "FILE [--environment E] -- COMMAND [ARGS...]",
     "Run COMMAND with the file's variables, decrypted, in its environment (nothing on disk).",
     exec_opts, NOPTS(exec_opts), true, false, env_exec},
    {"check", "FILE [--quiet]",
     "Check a file without decrypting it: syntax, duplicates, key versions, secrets in clear.",
     check_opts, NOPTS(check_opts), false, true, env_check},
};

static void
usage(FILE *f)
{
    fprintf(f, "usage: difyguard env SUBCOMMAND FILE [options]   (difyguard env SUBCOMMAND "
               "--help for its options)\n\nsubcommands:\n");
    for (size_t i = 0; i < NOPTS(subs); i++)
        fprintf(f, "  env %s %s\n", subs[i].name, subs[i].synopsis);
    fprintf(f, "\nEach value is bound to its variable name and --environment: moved to another "
               "variable or\nenvironment it does not decrypt. Exit codes: 0 ok, 1 failure, 2 "
               "usage error (env exec:\nthe command's own).\n");
}

int
cmd_env(int argc, char **argv)
{
    const struct env_sub *s = NULL;
    struct env_run r = {0};
    char err[512];
    int rc, n = 0;

    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < NOPTS(subs) && s == NULL; i++)
        s = strcmp(argv[1], subs[i].name) == 0 ? &subs[i] : NULL;
    snprintf(r.cmd, sizeof r.cmd, "env");
    if (s == NULL)
        return say(&r, EXIT_USAGE, "unknown subcommand \"%s\" (difyguard env --help lists them)",
                   client_printable(r.shown, SHOW, argv[1]));
    snprintf(r.cmd, sizeof r.cmd, "env %s", s->name);
    argc--;
    argv++;
    for (int i = 1; i < argc && r.child == NULL; i++) {
        if (strcmp(argv[i], "--") == 0 && strcmp(s->name, "exec") == 0) {
            r.child = argv + i + 1;
            argv[i] = NULL; /* the option engine wants argv[argc] NULL */
            argc = i;
        }
    }
    enum status st = config_parse(&r.o, s->opts, s->n_opts, argc, argv, &r.pos, err, sizeof err);
    if (st == ST_NOT_FOUND) {
        config_help(stdout, r.cmd, s->synopsis, s->summary, s->opts, s->n_opts);
        rc = 0;
        goto out;
    }
    if (st != ST_OK) {
        rc = say(&r, EXIT_USAGE, "%s", err);
        goto out;
    }
    while (r.pos[n] != NULL)
        n++;
    if (n != 1) {
        rc = say(&r, EXIT_USAGE, "wrong number of arguments; usage: difyguard %s %s", r.cmd,
                 s->synopsis);
        goto out;
    }
    r.file = r.pos[0];
    client_printable(r.shown, SHOW, r.file);
    if ((s->server && (rc = need_environment(&r)) != 0) || (rc = load(&r, s->dups_ok)) != 0)
        goto out;
    rc = s->fn(&r);
out:
    fflush(stdout);
    client_free(r.c);
    dotenv_free(&r.d);
    if (r.buf != NULL) {
        sodium_memzero(r.buf, r.buf_len);
        free(r.buf);
    }
    config_free(&r.o, s->opts, s->n_opts);
    return rc;
}
