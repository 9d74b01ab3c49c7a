/* SPDX-License-Identifier: Apache-2.0 */
/* cli/admin.c -- the engine of the admin commands: subcommand dispatch and options, one API call
 * per subcommand, answers printed as text or JSON. Never takes a secret from argv, never prints
 * the token, prints a new API key once and then wipes it (stdout's buffer is ours). */
#include <errno.h>
#include <fcntl.h>
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

#include "cli/admin.h"
#include "cli/client.h"
#include "common/checked.h"
#include "common/clock.h"
#include "common/json/config.h"
#include "common/json/jsonx.h"
#include "common/xmem.h"

/* stdout's buffer is ours, so the copy of a printed key in it can be wiped. */
static char stdout_buf[BUFSIZ];

/* ---- messages ---------------------------------------------------------------------------- */

/* Argument text for an error: printable ASCII, at most SHOW_MAX characters. */
const char *
admin_shown(char out[static SHOW_MAX + 4], const char *s)
{
    return client_printable(out, SHOW_MAX, s);
}

/* One line on stderr, "difyguard: app create: ...", and the exit code to return. */
int
admin_say(const struct run *r, int code, const char *fmt, ...)
{
    va_list ap;

    fflush(stdout);
    fprintf(stderr, "difyguard: %s: ", r->cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return code;
}

/* ---- arguments --------------------------------------------------------------------------- */

static void
strlist_free(struct strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

/* Add the comma-separated values of `val`; an empty item is an error. */
static enum status
strlist_split(struct strlist *l, const char *val, const char *src, char *err, size_t err_len)
{
    char s[SHOW_MAX + 4];

    for (const char *p = val;; p++) {
        size_t n = strcspn(p, ",");
        if (n == 0) {
            snprintf(err, err_len, "%s: empty item in \"%s\"", src, admin_shown(s, val));
            return ST_INVALID;
        }
        l->v = xrealloc(l->v, (l->n + 1) * sizeof *l->v);
        l->v[l->n++] = xstrndup(p, n);
        p += n;
        if (*p == '\0')
            return ST_OK;
    }
}

/* Move every "--NAME V" and "--NAME=V" before "--" out of argv into l. */
static enum status
take_repeated(struct strlist *l, const char *flag, int *argc, char **argv, char *err,
              size_t err_len)
{
    const size_t fl = strlen(flag);
    bool done = false;
    int out = 1;

    for (int i = 1; i < *argc; i++) {
        const char *a = argv[i], *v = NULL;
        done |= strcmp(a, "--") == 0;
        if (!done && strncmp(a, flag, fl) == 0 && a[fl] == '=') {
            v = a + fl + 1;
        } else if (!done && strcmp(a, flag) == 0) {
            if (i + 1 >= *argc || strncmp(argv[i + 1], "--", 2) == 0) {
                snprintf(err, err_len, "option %s needs a value", flag);
                return ST_INVALID;
            }
            v = argv[++i];
        } else {
            argv[out++] = argv[i];
            continue;
        }
        if (strlist_split(l, v, flag, err, err_len) != ST_OK)
            return ST_INVALID;
    }
    argv[out] = NULL;
    *argc = out;
    return ST_OK;
}

/* A duration flag; false (and the message printed) when it does not parse. */
bool
admin_duration_arg(const struct run *r, int64_t *out, const char *flag, const char *val)
{
    char s[SHOW_MAX + 4];

    if (config_duration(out, val, strlen(val)) == ST_OK)
        return true;
    admin_say(r, EXIT_USAGE,
              "--%s: expected a duration (seconds, or 45s, 30m, 12h, 90d, 1h30m), got \"%s\"", flag,
              admin_shown(s, val));
    return false;
}

bool
admin_day_arg(const struct run *r, const char *flag, const char *val)
{
    struct tm tm = {0};
    const char *end = strptime(val, "%Y-%m-%d", &tm);
    char s[SHOW_MAX + 4];

    if (end != NULL && *end == '\0' && strlen(val) == 10)
        return true;
    admin_say(r, EXIT_USAGE, "--%s: expected a day as YYYY-MM-DD, got \"%s\"", flag,
              admin_shown(s, val));
    return false;
}

/* The JSON array of l's items; NULL when one is not valid UTF-8. */
json_t *
admin_str_array(const struct strlist *l)
{
    json_t *a = json_array();

    for (size_t i = 0; i < l->n; i++) {
        if (json_array_append_new(a, json_string(l->v[i])) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

/* ---- calls ------------------------------------------------------------------------------- */

/* One API call. Takes `path` (from client_path) and `body`. Returns 0, or the exit code with
 * the failure already printed. */
int
admin_api(struct run *r, json_t **resp, const char *method, char *path, json_t *body)
{
    char err[512];
    enum status st = ST_OK;
    int rc = 0;

    *resp = NULL;
    if (r->c == NULL && (st = client_new(&r->c, &r->o.conn, err, sizeof err)) != ST_OK)
        rc = admin_say(r, st == ST_INVALID ? EXIT_USAGE : EXIT_FAIL, "%s", err);
    else if (client_call(r->c, resp, NULL, method, path, body) != ST_OK)
        rc = EXIT_FAIL;
    free(path);
    json_decref(body);
    return rc;
}

/* ---- output ------------------------------------------------------------------------------ */

/* A JSON value as one line of text: strings with control characters replaced, integers,
 * yes/no, arrays joined with ","; `if_null` for null or missing. */
static const char *
text(char out[static CELL_BYTES], const json_t *v, const char *if_null)
{
    size_t n = 0;

    out[0] = '\0';
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        for (; n < CELL_BYTES - 4 && s[n] != '\0'; n++)
            out[n] = ((unsigned char)s[n] < 0x20 || s[n] == 0x7f) ? '?' : s[n];
        memcpy(out + n, s[n] != '\0' ? "..." : "", s[n] != '\0' ? 4 : 1);
    } else if (json_is_integer(v)) {
        snprintf(out, CELL_BYTES, "%lld", (long long)json_integer_value(v));
    } else if (json_is_boolean(v)) {
        snprintf(out, CELL_BYTES, "%s", json_is_true(v) ? "yes" : "no");
    } else if (json_is_array(v)) {
        char item[CELL_BYTES];
        for (size_t i = 0; i < json_array_size(v) && n < CELL_BYTES; i++)
            n += (size_t)snprintf(out + n, CELL_BYTES - n, "%s%s", i ? "," : "",
                                  text(item, json_array_get(v, i), "-"));
    } else {
        snprintf(out, CELL_BYTES, "%s", if_null);
    }
    return out;
}

/* Seconds as "90d", "12h", "30m" or "45s"; 0 as `zero`. */
const char *
admin_span(char out[static 32], int64_t s, const char *zero)
{
    if (s == 0)
        snprintf(out, 32, "%s", zero);
    else if (s % 86400 == 0)
        snprintf(out, 32, "%lldd", (long long)(s / 86400));
    else if (s % 3600 == 0)
        snprintf(out, 32, "%lldh", (long long)(s / 3600));
    else if (s % 60 == 0)
        snprintf(out, 32, "%lldm", (long long)(s / 60));
    else
        snprintf(out, 32, "%llds", (long long)s);
    return out;
}

static const char *
cell(char out[static CELL_BYTES], const json_t *obj, const struct col *c)
{
    return c->fn != NULL ? c->fn(out, obj) : text(out, json_object_get(obj, c->key), c->if_null);
}

/* "label:  value" lines, one per column. */
void
admin_print_lines(const json_t *obj, const struct col *cols, size_t n)
{
    char b[CELL_BYTES];

    for (size_t i = 0; i < n; i++)
        printf("%-*s %s\n", LABEL_WIDTH, cols[i].head, cell(b, obj, &cols[i]));
}

/* A table of the objects in `arr` under a header row: widths from the longest cell, the last
 * column not padded. */
void
admin_print_rows(const json_t *arr, const struct col *cols, size_t n)
{
    size_t rows = json_array_size(arr) + 1, *w = xcalloc(n, sizeof *w);
    char **cells = xcalloc(rows * n, sizeof *cells), b[CELL_BYTES];

    for (size_t r = 0; r < rows; r++) {
        for (size_t c = 0; c < n; c++) {
            const json_t *obj = r > 0 ? json_array_get(arr, r - 1) : NULL;
            char *s = xstrdup(r == 0 ? cols[c].head : cell(b, obj, &cols[c]));
            w[c] = strlen(s) > w[c] ? strlen(s) : w[c];
            cells[r * n + c] = s;
        }
    }
    for (size_t i = 0; i < rows * n; i++) {
        if (i % n + 1 < n)
            printf("%-*s  ", (int)w[i % n], cells[i]);
        else
            printf("%s\n", cells[i]);
        free(cells[i]);
    }
    free(cells);
    free(w);
}

void
admin_print_json(const json_t *j)
{
    if (j != NULL)
        json_dumpf(j, stdout, JSON_COMPACT);
    else
        fputs("null", stdout);
    putchar('\n');
}

/* Print a new key's text once, on its own line, then wipe it here and in stdout's buffer. */
int
admin_print_secret(const struct run *r, json_t *obj)
{
    json_t *k = json_object_get(obj, "key");
    char *key = (char *)json_string_value(k); /* jansson's own copy: wiped in place below */

    if (key == NULL)
        return admin_say(r, EXIT_FAIL, "the answer holds no key");
    if (r->o.json)
        admin_print_json(obj);
    else
        printf("API key (shown once, store it now):\n%s\n", key);
    fflush(stdout);
    sodium_memzero(key, json_string_length(k));
    sodium_memzero(stdout_buf, sizeof stdout_buf);
    return 0;
}

/* GET path; print the answer as JSON, or the array `member` of it as a table (after `title`
 * when not NULL). */
int
admin_list(struct run *r, const char *title, char *path, const char *member, const struct col *cols,
           size_t n)
{
    json_t *j = NULL;
    int rc = admin_api(r, &j, "GET", path, NULL);

    if (rc == 0 && r->o.json) {
        admin_print_json(j);
    } else if (rc == 0) {
        if (title != NULL)
            printf("%s\n", title);
        admin_print_rows(json_object_get(j, member), cols, n);
    }
    json_decref(j);
    return rc;
}

/* Print one object answer as JSON or lines, and free it. */
int
admin_done(const struct run *r, int rc, json_t *obj, const struct col *cols, size_t n)
{
    if (rc == 0 && r->o.json)
        admin_print_json(obj);
    else if (rc == 0)
        admin_print_lines(obj, cols, n);
    json_decref(obj);
    return rc;
}

/* ---- dispatch ---------------------------------------------------------------------------- */

static void
group_usage(FILE *f, const char *group, const struct sub *subs, size_t n)
{
    fprintf(f,
            "usage: difyguard %s SUBCOMMAND [options]   (difyguard %s SUBCOMMAND --help for "
            "its options)\n\nsubcommands:\n",
            group, group);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "  %s %s%s%s\n", group, subs[i].name, subs[i].synopsis[0] ? " " : "",
                subs[i].synopsis);
    fprintf(f,
            "\nCalls the API at DIFYGUARD_ADDR (--addr, default %s) with the API key in\n"
            "DIFYGUARD_TOKEN (environment only); DIFYGUARD_CACERT (--cacert) verifies https.\n"
            "--json prints the API's answer. Options that say what a command grants or changes\n"
            "(--scope, --keyring, --expires-in, --deletion-allowed, ...) are flags only: no\n"
            "DIFYGUARD_* variable sets them. Exit codes: 0 ok, 1 failure, 2 usage error.\n",
            CLIENT_DEFAULT_ADDR);
}

/* Options and positional arguments of one subcommand; -1 to go on, else the exit code. */
static int
parse(struct run *r, const struct sub *s, int argc, char **argv)
{
    char err[512], sh[SHOW_MAX + 4];
    size_t n = 0;
    enum status st = ST_OK;

    if ((st = admin_client_config(err, sizeof err)) != ST_OK)
        return admin_say(r, EXIT_USAGE, "%s", err);
    if (s->repeats &&
        ((st = take_repeated(&r->scopes, "--scope", &argc, argv, err, sizeof err)) != ST_OK ||
         (st = take_repeated(&r->keyrings, "--keyring", &argc, argv, err, sizeof err)) != ST_OK))
        return admin_say(r, EXIT_USAGE, "%s", err);
    st = config_parse(&r->o, s->opts, s->n_opts, argc, argv, &r->pos, err, sizeof err);
    if (st == ST_NOT_FOUND) {
        config_help(stdout, r->cmd, s->synopsis, s->summary, s->opts, s->n_opts);
        return 0;
    }
    if (st != ST_OK)
        return admin_say(r, EXIT_USAGE, "%s", err);
    if (r->o.output != NULL) {
        if (strcmp(r->o.output, "json") == 0)
            r->o.json = true;
        else if (strcmp(r->o.output, "table") == 0 && !r->o.json)
            r->o.json = false;
        else if (strcmp(r->o.output, "table") == 0)
            return admin_say(r, EXIT_USAGE, "--output table and --json contradict each other");
        else
            return admin_say(r, EXIT_USAGE, "--output must be table or json, got \"%s\"",
                             admin_shown(sh, r->o.output));
    }
    /* --scope and --keyring were taken from argv above (they repeat); being flag-only, no
     * variable sets them, so r->o.scope and r->o.keyring stay NULL. */
    while (r->pos[n] != NULL)
        n++;
    if (n != s->n_pos)
        return admin_say(r, EXIT_USAGE, "wrong number of arguments; usage: difyguard %s%s%s",
                         r->cmd, s->synopsis[0] != '\0' ? " " : "", s->synopsis);
    return -1;
}

int
admin_dispatch(const char *group, const struct sub *subs, size_t n, int argc, char **argv)
{
    const struct sub *s = NULL;
    struct run r = {0};
    char sh[SHOW_MAX + 4];
    int rc;

    if (argc < 2) {
        group_usage(stderr, group, subs, n);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        group_usage(stdout, group, subs, n);
        return 0;
    }
    for (size_t i = 0; i < n && s == NULL; i++)
        s = strcmp(argv[1], subs[i].name) == 0 ? &subs[i] : NULL;
    snprintf(r.cmd, sizeof r.cmd, "%s", group);
    if (s == NULL)
        return admin_say(&r, EXIT_USAGE,
                         "unknown subcommand \"%s\" (difyguard %s --help lists them)",
                         admin_shown(sh, argv[1]), group);
    snprintf(r.cmd, sizeof r.cmd, "%s %s", group, s->name);
    setvbuf(stdout, stdout_buf, isatty(STDOUT_FILENO) ? _IOLBF : _IOFBF, sizeof stdout_buf);
    if ((rc = parse(&r, s, argc - 1, argv + 1)) < 0)
        rc = s->fn(&r);
    fflush(stdout);
    sodium_memzero(stdout_buf, sizeof stdout_buf);
    client_free(r.c);
    strlist_free(&r.scopes);
    strlist_free(&r.keyrings);
    config_free(&r.o, s->opts, s->n_opts);
    return rc;
}

/* ---- the client config file -------------------------------------------------------------- */

#define CLIENT_CONFIG_MAX 65536

enum status
admin_client_config_parse(const char *text, size_t len, const char *path,
                          void (*set)(void *arg, const char *var, const char *value), void *arg,
                          char *err, size_t err_len)
{
    static const struct {
        const char *key, *var;
    } fields[] = {
        {"addr", "DIFYGUARD_ADDR"}, {"cacert", "DIFYGUARD_CACERT"}, {"token", "DIFYGUARD_TOKEN"}};
    json_error_t je;
    json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    const char *key;
    json_t *v;
    enum status st = ST_OK;

    sodium_memzero(&je, sizeof je); /* its text may quote the token */
    if (!json_is_object(j)) {
        json_decref(j);
        snprintf(err, err_len, "client config %s: not a JSON object", path);
        return ST_INVALID;
    }
    json_object_foreach (j, key, v) {
        size_t i = 0;
        while (i < sizeof fields / sizeof fields[0] && strcmp(key, fields[i].key) != 0)
            i++;
        if (i == sizeof fields / sizeof fields[0] || !json_is_string(v)) {
            char s[SHOW_MAX + 4];
            snprintf(err, err_len,
                     "client config %s: \"%s\" is not one of addr, cacert, token (strings)", path,
                     admin_shown(s, key));
            st = ST_INVALID;
            break;
        }
    }
    /* all or nothing: a file with a bad member supplies nothing */
    json_object_foreach (j, key, v) {
        for (size_t i = 0; st == ST_OK && i < sizeof fields / sizeof fields[0]; i++)
            if (strcmp(key, fields[i].key) == 0)
                set(arg, fields[i].var, json_string_value(v));
    }
    json_decref(j); /* the wiping allocator wipes the token's copy */
    return st;
}

/* The environment wins over the file. */
static void
set_unset(void *arg, const char *var, const char *value)
{
    (void)arg;
    if (getenv(var) == NULL)
        setenv(var, value, 0);
}

enum status
admin_client_config(char *err, size_t err_len)
{
    const char *path = getenv("DIFYGUARD_CLIENT_CONFIG"), *home = getenv("HOME");
    char def[4096], buf[CLIENT_CONFIG_MAX + 1];
    struct stat sb;
    enum status st = ST_INVALID;
    ssize_t n;
    size_t len = 0;
    int fd;

    if (path == NULL || path[0] == '\0') {
        if (home == NULL || home[0] == '\0')
            return ST_OK;
        snprintf(def, sizeof def, "%s/.config/difyguard/client.json", home);
        path = def;
    }
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        if (errno == ENOENT && path == def)
            return ST_OK; /* no file: nothing to use */
        snprintf(err, err_len, "client config %s: %s", path, strerror(errno));
        return ST_INVALID;
    }
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        snprintf(err, err_len, "client config %s: not a regular file", path);
        goto out;
    }
    if ((sb.st_mode & 077) != 0) {
        snprintf(err, err_len,
                 "client config %s: mode %03o gives others or its group access; it may hold a "
                 "token: chmod 600 %s",
                 path, (unsigned)(sb.st_mode & 0777), path);
        goto out;
    }
    while (len < sizeof buf - 1 && (n = read(fd, buf + len, sizeof buf - 1 - len)) > 0)
        len += (size_t)n;
    st = admin_client_config_parse(buf, len, path, set_unset, NULL, err, err_len);
    sodium_memzero(buf, sizeof buf);
out:
    close(fd);
    return st;
}

/* ---- raw answers ------------------------------------------------------------------------- */

int
admin_api_file(struct run *r, const char *method, char *path, FILE *f)
{
    char err[512];
    enum status st = ST_OK;
    int rc = 0;

    if (r->c == NULL && (st = client_new(&r->c, &r->o.conn, err, sizeof err)) != ST_OK)
        rc = admin_say(r, st == ST_INVALID ? EXIT_USAGE : EXIT_FAIL, "%s", err);
    else if (client_call_file(r->c, method, path, f) != ST_OK)
        rc = EXIT_FAIL;
    free(path);
    return rc;
}
