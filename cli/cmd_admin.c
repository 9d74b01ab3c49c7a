/* SPDX-License-Identifier: Apache-2.0 */
/* cli/cmd_admin.c -- `difyguard app|key|keyring SUBCOMMAND`: the admin client over the HTTP API.
 * Builds one request per subcommand, prints the answer as text or JSON. Never takes a secret
 * from argv, never prints the token, prints a new API key once and then wipes it. */
#include "cli/cmd_admin.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "cli/client.h"
#include "common/checked.h"
#include "common/clock.h"
#include "common/json/config.h"
#include "common/json/jsonx.h"
#include "common/xmem.h"

#define EXIT_FAIL 1
#define EXIT_USAGE 2
#define SHOW_MAX 48             /* characters of an argument quoted back in an error */
#define CELL_BYTES 256          /* one printed value; longer ones end in "..." */
#define LABEL_WIDTH 16
#define USAGE_DEFAULT_DAYS 30

struct admin_opts {
    struct client_opts conn;
    bool json;
    char *description;                          /* app create */
    char *from, *to;                            /* app usage */
    char *scope, *keyring, *expires_in;         /* key create */
    uint64_t rate, burst;
    char *grace_period;                         /* key rotate */
    char *algorithm, *rotation_period;          /* keyring create */
    bool deterministic, deletion_allowed;
};

/* O: a global setting (also DIFYGUARD_<NAME>). F: flag only -- what a command grants or
 * changes is never taken from the environment, so a stray DIFYGUARD_SCOPE or
 * DIFYGUARD_DELETION_ALLOWED cannot widen a key or a keyring. */
#define O(name, type, field, def, help) \
    {name, type, offsetof(struct admin_opts, field), def, help, false, false}
#define F(name, type, field, def, help) \
    {name, type, offsetof(struct admin_opts, field), def, help, false, true}
#define BASE_OPTS                                                                              \
    CLIENT_OPTS(struct admin_opts, conn),                                                      \
    O("json", OPT_BOOL, json, NULL, "print the API's JSON answer instead of text")

static const struct opt base_opts[] = {BASE_OPTS};
static const struct opt app_create_opts[] = {
    BASE_OPTS,
    F("description", OPT_STRING, description, NULL, "what the app is for"),
};
static const struct opt app_usage_opts[] = {
    BASE_OPTS,
    F("from", OPT_STRING, from, NULL, "first day, YYYY-MM-DD (default: 30 days up to --to)"),
    F("to", OPT_STRING, to, NULL, "last day, YYYY-MM-DD (default: today, UTC)"),
};
static const struct opt key_create_opts[] = {
    BASE_OPTS,
    F("scope", OPT_STRING, scope, NULL,
      "what the key may do (encrypt, decrypt, rewrap, datakey, datakey:plaintext, "
      "keyrings:admin, apps:admin, audit:read, ...); repeat the flag or separate with commas"),
    F("keyring", OPT_STRING, keyring, NULL,
      "a keyring the key may use (default: all); repeat the flag or separate with commas"),
    F("expires-in", OPT_STRING, expires_in, NULL,
      "lifetime: seconds, or 30m, 12h, 90d (server default 90d, at most 365d)"),
    F("rate", OPT_UINT, rate, NULL, "requests per second (default 0: unlimited)"),
    F("burst", OPT_UINT, burst, NULL, "requests allowed at once (default: the rate)"),
};
static const struct opt key_rotate_opts[] = {
    BASE_OPTS,
    F("grace-period", OPT_STRING, grace_period, NULL,
      "how long the old key keeps working: seconds, or 30m, 12h, 7d (server default 24h, "
      "at most 30d)"),
};
static const struct opt keyring_create_opts[] = {
    BASE_OPTS,
    F("algorithm", OPT_STRING, algorithm, NULL,
      "aes-256-gcm (server default), xchacha20-poly1305 or aes-256-siv"),
    F("deterministic", OPT_BOOL, deterministic, NULL,
      "same plaintext and context give the same ciphertext (implies aes-256-siv)"),
    F("rotation-period", OPT_STRING, rotation_period, NULL,
      "rotate automatically this often: 90d, 12h, ... (at least 1h), 0 = never "
      "(server default 90d, or 0 for deterministic keyrings)"),
    F("deletion-allowed", OPT_BOOL, deletion_allowed, NULL, "the keyring may be deleted"),
};
#define N(a) (sizeof a / sizeof a[0])

/* Repeated flag values (config_parse keeps only the last one of a flag). */
struct strlist {
    char **v;
    size_t n;
};

/* One subcommand run. */
struct run {
    char cmd[32];                   /* "key create", for messages */
    struct admin_opts o;
    const char **pos;               /* positional arguments, NULL-terminated */
    struct strlist scopes, keyrings;
    struct client *c;               /* made at the first call */
};

struct sub {
    const char *name, *synopsis, *summary;
    const struct opt *opts;
    size_t n_opts, n_pos;           /* n_pos: exactly this many positional arguments */
    bool repeats;                   /* --scope and --keyring may repeat */
    int (*fn)(struct run *r);
};

/* stdout's buffer is ours, so the copy of a printed key in it can be wiped. */
static char stdout_buf[BUFSIZ];

/* ---- messages ---------------------------------------------------------------------------- */

/* Argument text for an error: printable ASCII, at most SHOW_MAX characters. */
static const char *
shown(char out[static SHOW_MAX + 4], const char *s)
{
    return client_printable(out, SHOW_MAX, s);
}

static int say(const struct run *r, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* One line on stderr, "difyguard: app create: ...", and the exit code to return. */
static int
say(const struct run *r, int code, const char *fmt, ...)
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
            snprintf(err, err_len, "%s: empty item in \"%s\"", src, shown(s, val));
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
static bool
duration_arg(const struct run *r, int64_t *out, const char *flag, const char *val)
{
    char s[SHOW_MAX + 4];

    if (config_duration(out, val, strlen(val)) == ST_OK)
        return true;
    say(r, EXIT_USAGE, "--%s: expected a duration (seconds, or 45s, 30m, 12h, 90d), got \"%s\"",
        flag, shown(s, val));
    return false;
}

static bool
day_arg(const struct run *r, const char *flag, const char *val)
{
    struct tm tm = {0};
    const char *end = strptime(val, "%Y-%m-%d", &tm);
    char s[SHOW_MAX + 4];

    if (end != NULL && *end == '\0' && strlen(val) == 10)
        return true;
    say(r, EXIT_USAGE, "--%s: expected a day as YYYY-MM-DD, got \"%s\"", flag, shown(s, val));
    return false;
}

/* The JSON array of l's items; NULL when one is not valid UTF-8. */
static json_t *
str_array(const struct strlist *l)
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
static int
api(struct run *r, json_t **resp, const char *method, char *path, json_t *body)
{
    char err[512];
    enum status st = ST_OK;
    int rc = 0;

    *resp = NULL;
    if (r->c == NULL && (st = client_new(&r->c, &r->o.conn, err, sizeof err)) != ST_OK)
        rc = say(r, st == ST_INVALID ? EXIT_USAGE : EXIT_FAIL, "%s", err);
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
static const char *
span(char out[static 32], int64_t s, const char *zero)
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

/* One printed value of an object: a member shown by text(), or computed by fn. */
struct col {
    const char *head;           /* table header, or "label:" for lines */
    const char *key;
    const char *if_null;
    const char *(*fn)(char out[static CELL_BYTES], const json_t *obj);
};

static const char *
cell(char out[static CELL_BYTES], const json_t *obj, const struct col *c)
{
    return c->fn != NULL ? c->fn(out, obj) : text(out, json_object_get(obj, c->key), c->if_null);
}

/* "label:  value" lines, one per column. */
static void
print_lines(const json_t *obj, const struct col *cols, size_t n)
{
    char b[CELL_BYTES];

    for (size_t i = 0; i < n; i++)
        printf("%-*s %s\n", LABEL_WIDTH, cols[i].head, cell(b, obj, &cols[i]));
}

/* A table of the objects in `arr` under a header row: widths from the longest cell, the last
 * column not padded. */
static void
print_rows(const json_t *arr, const struct col *cols, size_t n)
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

static void
print_json(const json_t *j)
{
    if (j != NULL)
        json_dumpf(j, stdout, JSON_COMPACT);
    else
        fputs("null", stdout);
    putchar('\n');
}

/* Print a new key's text once, on its own line, then wipe it here and in stdout's buffer. */
static int
print_secret(const struct run *r, json_t *obj)
{
    json_t *k = json_object_get(obj, "key");
    char *key = (char *)json_string_value(k);  /* jansson's own copy: wiped in place below */

    if (key == NULL)
        return say(r, EXIT_FAIL, "the answer holds no key");
    if (r->o.json)
        print_json(obj);
    else
        printf("API key (shown once, store it now):\n%s\n", key);
    fflush(stdout);
    sodium_memzero(key, json_string_length(k));
    sodium_memzero(stdout_buf, sizeof stdout_buf);
    return 0;
}

/* GET path; print the answer as JSON, or the array `member` of it as a table (after `title`
 * when not NULL). */
static int
list(struct run *r, const char *title, char *path, const char *member, const struct col *cols,
     size_t n)
{
    json_t *j = NULL;
    int rc = api(r, &j, "GET", path, NULL);

    if (rc == 0 && r->o.json) {
        print_json(j);
    } else if (rc == 0) {
        if (title != NULL)
            printf("%s\n", title);
        print_rows(json_object_get(j, member), cols, n);
    }
    json_decref(j);
    return rc;
}

/* Print one object answer as JSON or lines, and free it. */
static int
done(const struct run *r, int rc, json_t *obj, const struct col *cols, size_t n)
{
    if (rc == 0 && r->o.json)
        print_json(obj);
    else if (rc == 0)
        print_lines(obj, cols, n);
    json_decref(obj);
    return rc;
}

/* ---- apps -------------------------------------------------------------------------------- */

static const struct col app_lines[] = {
    {"name:", "name", "-", NULL}, {"description:", "description", "-", NULL},
    {"created:", "created_at", "-", NULL},
};
static const struct col app_rows[] = {
    {"NAME", "name", "-", NULL}, {"CREATED", "created_at", "-", NULL},
    {"DESCRIPTION", "description", "", NULL},
};
static const struct col usage_rows[] = {
    {"DAY", "day", "-", NULL}, {"OPERATION", "op", "-", NULL},
    {"KEYRING", "keyring", "-", NULL}, {"OUTCOME", "outcome", "-", NULL},
    {"COUNT", "count", "0", NULL},
};

static int
app_create(struct run *r)
{
    json_t *body = json_pack("{s:s}", "name", r->pos[0]), *app = NULL;

    if (body == NULL || (r->o.description != NULL &&
                         json_object_set_new(body, "description",
                                             json_string(r->o.description)) != 0)) {
        json_decref(body);
        return say(r, EXIT_USAGE, "NAME and --description must be valid UTF-8");
    }
    int rc = api(r, &app, "POST", client_path("/v1/apps"), body);
    return done(r, rc, app, app_lines, N(app_lines));
}

static int
app_show(struct run *r)
{
    json_t *app = NULL;
    int rc = api(r, &app, "GET", client_path("/v1/apps/%s", r->pos[0]), NULL);
    return done(r, rc, app, app_lines, N(app_lines));
}

static int
app_list(struct run *r)
{
    return list(r, NULL, client_path("/v1/apps"), "apps", app_rows, N(app_rows));
}

/* --from and --to, defaulting to the 30 days up to today (UTC). */
static bool
usage_days(const struct run *r, char from[static 11], char to[static 11])
{
    struct tm tm = {0};
    time_t t = time(NULL);

    if ((r->o.to != NULL && !day_arg(r, "to", r->o.to)) ||
        (r->o.from != NULL && !day_arg(r, "from", r->o.from)))
        return false;
    if (r->o.to != NULL) {
        strptime(r->o.to, "%Y-%m-%d", &tm);
        t = timegm(&tm);
    }
    gmtime_r(&t, &tm);
    strftime(to, 11, "%Y-%m-%d", &tm);
    t -= (time_t)(USAGE_DEFAULT_DAYS - 1) * 86400;
    gmtime_r(&t, &tm);
    strftime(from, 11, "%Y-%m-%d", &tm);
    if (r->o.from != NULL)
        snprintf(from, 11, "%s", r->o.from);
    return true;
}

static int
app_usage(struct run *r)
{
    char from[11], to[11], title[CELL_BYTES + 64], s[SHOW_MAX + 4];

    if (!usage_days(r, from, to))
        return EXIT_USAGE;
    snprintf(title, sizeof title, "usage of app %s from %s to %s (UTC days)", shown(s, r->pos[0]),
             from, to);
    return list(r, title, client_path("/v1/apps/%s/usage?from=%s&to=%s", r->pos[0], from, to),
                "usage", usage_rows, N(usage_rows));
}

/* ---- keys -------------------------------------------------------------------------------- */

/* active, grace (rotated, still accepted), retired (grace over), expired or revoked. */
static const char *
key_status(char out[static CELL_BYTES], const json_t *k)
{
    const char *rev = json_string_value(json_object_get(k, "revoked_at"));
    const char *exp = json_string_value(json_object_get(k, "expires_at"));
    const char *grace = json_string_value(json_object_get(k, "grace_until"));
    char now[32];

    clock_rfc3339(now, (int64_t)time(NULL));    /* same format: compares as text */
    if (rev != NULL)
        return strcpy(out, "revoked");
    if (exp != NULL && strcmp(exp, now) <= 0)
        return strcpy(out, "expired");
    if (grace != NULL)
        return strcpy(out, strcmp(grace, now) <= 0 ? "retired" : "grace");
    return strcpy(out, "active");
}

static const char *
key_rate(char out[static CELL_BYTES], const json_t *k)
{
    json_int_t rps = json_integer_value(json_object_get(k, "rate"));

    if (rps <= 0)
        return strcpy(out, "unlimited");
    snprintf(out, CELL_BYTES, "%lld/s, burst %lld", (long long)rps,
             (long long)json_integer_value(json_object_get(k, "burst")));
    return out;
}

/* Every field of a key object but its text. */
static const struct col key_lines[] = {
    {"id:", "id", "-", NULL}, {"app:", "app", "-", NULL},
    {"status:", NULL, NULL, key_status}, {"scopes:", "scopes", "-", NULL},
    {"keyrings:", "keyrings", "all", NULL}, {"rate:", NULL, NULL, key_rate},
    {"created:", "created_at", "-", NULL}, {"expires:", "expires_at", "never", NULL},
    {"revoked:", "revoked_at", "-", NULL}, {"grace until:", "grace_until", "-", NULL},
    {"last used:", "last_used_at", "never", NULL},
};
static const struct col key_rows[] = {
    {"ID", "id", "-", NULL}, {"STATUS", NULL, NULL, key_status},
    {"SCOPES", "scopes", "-", NULL}, {"KEYRINGS", "keyrings", "all", NULL},
    {"EXPIRES", "expires_at", "never", NULL}, {"LAST USED", "last_used_at", "never", NULL},
};

/* The request body of key create; NULL (and the message printed) on a usage error. */
static json_t *
key_create_body(const struct run *r)
{
    json_t *body = json_object(), *a;
    int64_t life = 0;

    if (r->scopes.n == 0) {
        say(r, EXIT_USAGE, "--scope is required (e.g. --scope encrypt,decrypt)");
        goto fail;
    }
    if (r->o.expires_in != NULL && !duration_arg(r, &life, "expires-in", r->o.expires_in))
        goto fail;
    if ((a = str_array(&r->scopes)) == NULL || json_object_set_new(body, "scopes", a) != 0 ||
        (r->keyrings.n > 0 && ((a = str_array(&r->keyrings)) == NULL ||
                               json_object_set_new(body, "keyrings", a) != 0))) {
        say(r, EXIT_USAGE, "--scope and --keyring values must be valid UTF-8");
        goto fail;
    }
    if (r->o.expires_in != NULL)
        json_object_set_new(body, "expires_in", json_integer(life));
    if (r->o.rate > 0)
        json_object_set_new(body, "rate", json_integer((json_int_t)r->o.rate));
    if (r->o.burst > 0)
        json_object_set_new(body, "burst", json_integer((json_int_t)r->o.burst));
    return body;
fail:
    json_decref(body);
    return NULL;
}

static int
key_create(struct run *r)
{
    json_t *body = key_create_body(r), *k = NULL;
    int rc;

    if (body == NULL)
        return EXIT_USAGE;
    if ((rc = api(r, &k, "POST", client_path("/v1/apps/%s/keys", r->pos[0]), body)) == 0) {
        if (!r->o.json)
            print_lines(k, key_lines, N(key_lines));
        rc = print_secret(r, k);
    }
    json_decref(k);
    return rc;
}

static int
key_list(struct run *r)
{
    return list(r, NULL, client_path("/v1/apps/%s/keys", r->pos[0]), "keys", key_rows,
                N(key_rows));
}

/* There is no GET for one key: it is taken from the list. */
static int
key_show(struct run *r)
{
    json_t *j = NULL, *k, *found = NULL;
    char s[SHOW_MAX + 4];
    size_t i;
    int rc = api(r, &j, "GET", client_path("/v1/apps/%s/keys", r->pos[0]), NULL);

    if (rc != 0)
        goto out;
    json_array_foreach(json_object_get(j, "keys"), i, k) {
        const char *id = json_string_value(json_object_get(k, "id"));
        if (id != NULL && strcmp(id, r->pos[1]) == 0)
            found = k;
    }
    if (found == NULL)
        rc = say(r, EXIT_FAIL, "app %s has no key %s", r->pos[0], shown(s, r->pos[1]));
    else if (r->o.json)
        print_json(found);
    else
        print_lines(found, key_lines, N(key_lines));
out:
    json_decref(j);
    return rc;
}

static int
key_revoke(struct run *r)
{
    json_t *j = NULL;
    int rc = api(r, &j, "DELETE", client_path("/v1/apps/%s/keys/%s", r->pos[0], r->pos[1]),
                 NULL);

    json_decref(j);
    if (rc != 0)
        return rc;
    if (r->o.json) {
        j = json_pack("{s:s, s:s, s:b}", "app", r->pos[0], "id", r->pos[1], "revoked", 1);
        print_json(j);
        json_decref(j);
    } else {
        printf("Revoked key %s of app %s: it is refused from now on.\n", r->pos[1], r->pos[0]);
    }
    return 0;
}

static int
key_rotate(struct run *r)
{
    json_t *body = json_object(), *k = NULL;
    int64_t grace = 86400;          /* the server's default */
    char until[32], g[32];
    int rc;

    if (r->o.grace_period != NULL) {
        if (!duration_arg(r, &grace, "grace-period", r->o.grace_period)) {
            json_decref(body);
            return EXIT_USAGE;
        }
        json_object_set_new(body, "grace_period", json_integer(grace));
    }
    rc = api(r, &k, "POST", client_path("/v1/apps/%s/keys/%s/rotate", r->pos[0], r->pos[1]),
             body);
    if (rc == 0) {
        if (!r->o.json) {
            clock_rfc3339(until, checked_time_add((int64_t)time(NULL), grace));
            printf("Rotated key %s of app %s: it keeps working until about %s (grace period "
                   "%s), then it is refused. The new key:\n", r->pos[1], r->pos[0], until,
                   span(g, grace, "0s"));
            print_lines(k, key_lines, N(key_lines));
        }
        rc = print_secret(r, k);
    }
    json_decref(k);
    return rc;
}

/* ---- keyrings ---------------------------------------------------------------------------- */

static const char *
rotation(char out[static CELL_BYTES], const json_t *kr)
{
    return span(out, json_integer_value(json_object_get(kr, "rotation_period")), "off");
}

static void
print_versions(const json_t *kr)
{
    static const struct col rows[] = {
        {"VERSION", "version", "-", NULL},
        {"CREATED", "created_at", "-", NULL},
        {"ENCRYPTIONS", "encryptions", "-", NULL},
        {"LIMIT", "encryption_limit", "-", NULL},
        {"ROOT KEY", "root_key_id", "-", NULL},
    };
    putchar('\n');
    print_rows(json_object_get(kr, "versions"), rows, N(rows));
}

static const struct col keyring_lines[] = {
    {"name:", "name", "-", NULL}, {"algorithm:", "algorithm", "-", NULL},
    {"deterministic:", "deterministic", "-", NULL}, {"rotation:", NULL, NULL, rotation},
    {"next rotation:", "next_rotation_at", "-", NULL},
    {"latest version:", "latest_version", "-", NULL},
    {"min decrypt:", "min_decryption_version", "-", NULL},
    {"min encrypt:", "min_encryption_version", "-", NULL},
    {"deletable:", "deletion_allowed", "-", NULL}, {"created:", "created_at", "-", NULL},
    {"updated:", "updated_at", "-", NULL},
};
static const struct col keyring_rows[] = {
    {"NAME", "name", "-", NULL}, {"ALGORITHM", "algorithm", "-", NULL},
    {"VERSION", "latest_version", "-", NULL}, {"ROTATION", NULL, NULL, rotation},
    {"NEXT ROTATION", "next_rotation_at", "-", NULL},
};

/* Print a keyring answer (create, show, rotate): lines, then the table of its versions. */
static int
keyring_done(const struct run *r, int rc, json_t *kr)
{
    if (rc == 0 && r->o.json) {
        print_json(kr);
    } else if (rc == 0) {
        print_lines(kr, keyring_lines, N(keyring_lines));
        print_versions(kr);
    }
    json_decref(kr);
    return rc;
}

static int
keyring_create(struct run *r)
{
    json_t *body = json_pack("{s:s}", "name", r->pos[0]), *kr = NULL;
    int64_t period = 0;

    if (body == NULL || (r->o.algorithm != NULL &&
                         json_object_set_new(body, "algorithm",
                                             json_string(r->o.algorithm)) != 0)) {
        json_decref(body);
        return say(r, EXIT_USAGE, "NAME and --algorithm must be valid UTF-8");
    }
    if (r->o.rotation_period != NULL) {
        if (!duration_arg(r, &period, "rotation-period", r->o.rotation_period)) {
            json_decref(body);
            return EXIT_USAGE;
        }
        json_object_set_new(body, "rotation_period", json_integer(period));
    }
    if (r->o.deterministic)
        json_object_set_new(body, "deterministic", json_true());
    if (r->o.deletion_allowed)
        json_object_set_new(body, "deletion_allowed", json_true());
    int rc = api(r, &kr, "POST", client_path("/v1/keyrings"), body);
    return keyring_done(r, rc, kr);
}

static int
keyring_show(struct run *r)
{
    json_t *kr = NULL;
    int rc = api(r, &kr, "GET", client_path("/v1/keyrings/%s", r->pos[0]), NULL);
    return keyring_done(r, rc, kr);
}

static int
keyring_rotate(struct run *r)
{
    json_t *kr = NULL;
    int rc = api(r, &kr, "POST", client_path("/v1/keyrings/%s/rotate", r->pos[0]),
                 json_object());
    if (rc == 0 && !r->o.json)
        printf("Rotated keyring %s: new encryptions use version %lld; older versions still "
               "decrypt.\n\n", r->pos[0],
               (long long)json_integer_value(json_object_get(kr, "latest_version")));
    return keyring_done(r, rc, kr);
}

static int
keyring_list(struct run *r)
{
    return list(r, NULL, client_path("/v1/keyrings"), "keyrings", keyring_rows,
                N(keyring_rows));
}

/* ---- dispatch ---------------------------------------------------------------------------- */

#define SUB(name, syn, sum, opts, npos, rep, fn) {name, syn, sum, opts, N(opts), npos, rep, fn}

static const struct sub app_subs[] = {
    SUB("create", "NAME [--description TEXT]", "Create an app (a tenant that owns API keys).",
        app_create_opts, 1, false, app_create),
    SUB("list", "", "List the apps.", base_opts, 0, false, app_list),
    SUB("show", "NAME", "Show one app.", base_opts, 1, false, app_show),
    SUB("usage", "NAME [--from DAY] [--to DAY]",
        "Show an app's request counts per day, operation, keyring and outcome.",
        app_usage_opts, 1, false, app_usage),
};

static const struct sub key_subs[] = {
    SUB("create", "APP --scope S [--scope S ...] [--keyring K ...] [--expires-in 90d] "
        "[--rate N] [--burst N]",
        "Issue an API key for APP. The key is printed once, alone on the last line (with\n"
        "--json: the \"key\" field); it cannot be shown again. --scope and --keyring repeat or\n"
        "take comma-separated lists.",
        key_create_opts, 1, true, key_create),
    SUB("list", "APP", "List APP's keys (never their secret).", base_opts, 1, false, key_list),
    SUB("show", "APP ID", "Show one of APP's keys (never its secret).", base_opts, 2, false,
        key_show),
    SUB("revoke", "APP ID", "Revoke a key: it is refused from the next request on.", base_opts,
        2, false, key_revoke),
    SUB("rotate", "APP ID [--grace-period 24h]",
        "Issue a new key with the same scopes, keyrings and limits. The old key keeps working\n"
        "for the grace period, then it is refused. The new key is printed once, alone on the\n"
        "last line (with --json: the \"key\" field).",
        key_rotate_opts, 2, false, key_rotate),
};

static const struct sub keyring_subs[] = {
    SUB("create", "NAME [--algorithm A] [--deterministic] [--rotation-period 90d] "
        "[--deletion-allowed]",
        "Create a keyring (its key versions never leave the service).", keyring_create_opts, 1,
        false, keyring_create),
    SUB("list", "", "List the keyrings.", base_opts, 0, false, keyring_list),
    SUB("show", "NAME", "Show a keyring and its key versions.", base_opts, 1, false,
        keyring_show),
    SUB("rotate", "NAME", "Add a key version: new encryptions use it, older ones still decrypt.",
        base_opts, 1, false, keyring_rotate),
};

static void
group_usage(FILE *f, const char *group, const struct sub *subs, size_t n)
{
    fprintf(f, "usage: difyguard %s SUBCOMMAND [options]   (difyguard %s SUBCOMMAND --help for "
            "its options)\n\nsubcommands:\n", group, group);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "  %s %s%s%s\n", group, subs[i].name, subs[i].synopsis[0] ? " " : "",
                subs[i].synopsis);
    fprintf(f, "\nCalls the API at DIFYGUARD_ADDR (--addr, default %s) with the API key in\n"
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
    char err[512];
    size_t n = 0;
    enum status st = ST_OK;

    if (s->repeats && ((st = take_repeated(&r->scopes, "--scope", &argc, argv, err,
                                           sizeof err)) != ST_OK ||
                       (st = take_repeated(&r->keyrings, "--keyring", &argc, argv, err,
                                           sizeof err)) != ST_OK))
        return say(r, EXIT_USAGE, "%s", err);
    st = config_parse(&r->o, s->opts, s->n_opts, argc, argv, &r->pos, err, sizeof err);
    if (st == ST_NOT_FOUND) {
        config_help(stdout, r->cmd, s->synopsis, s->summary, s->opts, s->n_opts);
        return 0;
    }
    if (st != ST_OK)
        return say(r, EXIT_USAGE, "%s", err);
    /* --scope and --keyring were taken from argv above (they repeat); being flag-only, no
     * variable sets them, so r->o.scope and r->o.keyring stay NULL. */
    while (r->pos[n] != NULL)
        n++;
    if (n != s->n_pos)
        return say(r, EXIT_USAGE, "wrong number of arguments; usage: difyguard %s%s%s", r->cmd,
                   s->synopsis[0] != '\0' ? " " : "", s->synopsis);
    return -1;
}

static int
dispatch(const char *group, const struct sub *subs, size_t n, int argc, char **argv)
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
        return say(&r, EXIT_USAGE, "unknown subcommand \"%s\" (difyguard %s --help lists them)",
                   shown(sh, argv[1]), group);
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

int
cmd_app(int argc, char **argv)
{
    return dispatch("app", app_subs, N(app_subs), argc, argv);
}

int
cmd_key(int argc, char **argv)
{
    return dispatch("key", key_subs, N(key_subs), argc, argv);
}

int
cmd_keyring(int argc, char **argv)
{
    return dispatch("keyring", keyring_subs, N(keyring_subs), argc, argv);
}
