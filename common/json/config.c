/* SPDX-License-Identifier: Apache-2.0 */
/* common/json/config.c -- the option engine: defaults < JSON config file < DIFYGUARD_* < flags.
 * Knows no option's meaning. Never accepts a secret option in argv, never echoes its value. */
#include "common/json/config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "common/checked.h"
#include "common/xmem.h"

#define CONFIG_ENV_PREFIX "DIFYGUARD_"
#define CONFIG_NAME_MAX 64 /* longest option name in a table */
#define CONFIG_ENV_BYTES (sizeof CONFIG_ENV_PREFIX + CONFIG_NAME_MAX)
#define CONFIG_FILE_MAX ((size_t)1 << 20) /* a config file is small; refuse anything bigger */
#define CONFIG_SHOW_MAX 48                /* characters of user input quoted in an error */
#define CONFIG_SHOW_BYTES (CONFIG_SHOW_MAX + 4)

#define OPT_FIELD(settings, o, T) ((T *)(void *)((char *)(settings) + (o)->offset))

/* One parse: the table, the struct it fills and where errors go. */
struct cfg {
    void *settings;
    const struct opt *table;
    size_t n;
    char *err;
    size_t err_len;
};

static void errf(const struct cfg *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
errf(const struct cfg *c, const char *fmt, ...)
{
    va_list ap;

    if (c->err == NULL || c->err_len == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(c->err, c->err_len, fmt, ap);
    va_end(ap);
}

/* A table that breaks the contract in config.h is a bug in the command, not user input. */
static void
contract(int ok, const char *what, const char *name)
{
    if (ok)
        return;
    fprintf(stderr, "difyguard: option table: %s (%s)\n", what, name ? name : "?");
    abort();
}

static void
table_check(const struct opt *table, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct opt *o = &table[i];
        size_t len = o->name ? strlen(o->name) : 0;

        contract(len > 0 && len <= CONFIG_NAME_MAX, "bad name length", o->name);
        contract(strspn(o->name, "abcdefghijklmnopqrstuvwxyz0123456789-") == len,
                 "name must be [a-z0-9-]", o->name);
        contract(strcmp(o->name, "help") != 0, "\"help\" is reserved", o->name);
        contract(o->type <= OPT_JSON, "bad type", o->name);
        contract(strcmp(o->name, "config") != 0 || o->type == OPT_STRING,
                 "\"config\" must be OPT_STRING", o->name);
        contract(!(o->secret && o->flag_only), "a secret is never a flag: not flag_only", o->name);
        contract(strcmp(o->name, "config") != 0 || !o->flag_only, "\"config\" reads env too",
                 o->name);
        for (size_t j = 0; j < i; j++)
            contract(strcmp(table[j].name, o->name) != 0, "duplicate name", o->name);
    }
}

/* User input for an error message: printable ASCII only and at most `max` characters, so a
 * message stays one short line and cannot inject terminal escapes. */
static const char *
show(char *out, size_t max, const char *s, size_t len)
{
    size_t n = len < max ? len : max;

    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        out[i] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
    }
    if (len > n) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
    return out;
}

static void
env_name(char out[static CONFIG_ENV_BYTES], const char *name)
{
    size_t p = sizeof CONFIG_ENV_PREFIX - 1;
    size_t i = 0;

    memcpy(out, CONFIG_ENV_PREFIX, p);
    for (; i < CONFIG_NAME_MAX && name[i] != '\0'; i++)
        out[p + i] = name[i] == '-' ? '_' : (char)toupper((unsigned char)name[i]);
    out[p + i] = '\0';
}

/* Find an option by name; JSON keys may spell '-' as '_' ("max_body_bytes"). */
static const struct opt *
opt_find(const struct cfg *c, const char *name, size_t len, int fold_underscore)
{
    for (size_t i = 0; i < c->n; i++) {
        const char *t = c->table[i].name;
        size_t k = 0;

        for (; k < len && t[k] != '\0'; k++) {
            if (name[k] != t[k] && !(fold_underscore && name[k] == '_' && t[k] == '-'))
                break;
        }
        if (k == len && t[k] == '\0')
            return &c->table[i];
    }
    return NULL;
}

static void
str_free(char *s, bool secret)
{
    if (s != NULL && secret)
        explicit_bzero(s, strlen(s));
    free(s);
}

static void
str_set(char **slot, const char *val, size_t len, bool secret)
{
    char *old = *slot;

    *slot = xstrndup(val, len);
    str_free(old, secret);
}

/* Leading decimal digits of s into *out; returns how many, 0 on none or overflow. */
static size_t
scan_u64(uint64_t *out, const char *s, size_t len)
{
    uint64_t v = 0;
    size_t i = 0;

    *out = 0;
    for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return 0;
        v = v * 10 + d;
    }
    *out = v;
    return i;
}

static bool
parse_uint(uint64_t *out, const char *s, size_t len)
{
    return len > 0 && scan_u64(out, s, len) == len;
}

static bool
parse_bool(bool *out, const char *s, size_t len)
{
    *out = false;
    if ((len == 4 && strncasecmp(s, "true", 4) == 0) || (len == 1 && s[0] == '1'))
        *out = true;
    else if (!((len == 5 && strncasecmp(s, "false", 5) == 0) || (len == 1 && s[0] == '0')))
        return false;
    return true;
}

/* Seconds, or terms of a number and a unit, largest unit first, each unit once: d, h, m, s and
 * ms ("90d", "1h30m", "2m30s", "1s500ms"), as milliseconds. config_duration takes only whole
 * seconds ("2000ms" but not "1500ms"). No sign, spaces or fractions; at most
 * DURATION_MAX_SECONDS, so every later "now + duration" fits. */
enum status
config_duration_ms(int64_t *out, const char *s, size_t len)
{
    static const struct {
        const char *name;
        int64_t ms;
    } units[] = {{"d", 86400000}, {"h", 3600000}, {"ms", 1}, {"m", 60000}, {"s", 1000}};
    static const int rank[] = {5, 4, 1, 3, 2}; /* d > h > m > s > ms */
    const int64_t cap_ms = DURATION_MAX_SECONDS * 1000;
    int64_t total = 0, term;
    int last = 6;
    uint64_t v;
    size_t n, pos = 0;

    *out = 0;
    if (s == NULL || (n = scan_u64(&v, s, len)) == 0)
        return ST_INVALID;
    if (n == len) { /* bare seconds */
        if (v > (uint64_t)DURATION_MAX_SECONDS)
            return ST_INVALID;
        *out = (int64_t)v * 1000;
        return ST_OK;
    }
    while (pos < len) {
        size_t u = 0, ul = 0;
        if ((n = scan_u64(&v, s + pos, len - pos)) == 0 || v > (uint64_t)cap_ms)
            return ST_INVALID;
        pos += n;
        for (u = 0; u < sizeof units / sizeof units[0]; u++) {
            ul = strlen(units[u].name);
            if (pos + ul <= len && memcmp(s + pos, units[u].name, ul) == 0)
                break;
        }
        if (u == sizeof units / sizeof units[0] || rank[u] >= last)
            return ST_INVALID; /* no unit, an unknown one, or out of order */
        last = rank[u];
        pos += ul;
        if (!checked_mul(&term, (int64_t)v, units[u].ms) || !checked_add(&total, total, term) ||
            total > cap_ms)
            return ST_INVALID;
    }
    *out = total;
    return ST_OK;
}

enum status
config_duration(int64_t *out, const char *s, size_t len)
{
    int64_t ms;
    *out = 0;
    if (config_duration_ms(&ms, s, len) != ST_OK || ms % 1000 != 0)
        return ST_INVALID; /* whole seconds only: "1500ms" is not one */
    *out = ms / 1000;
    return ST_OK;
}

enum status
config_duration_seconds(int64_t *out, int64_t secs)
{
    *out = 0;
    if (secs < 0 || secs > DURATION_MAX_SECONDS)
        return ST_INVALID;
    *out = secs;
    return ST_OK;
}

/* Bytes, or a number with a binary suffix: k/K/KiB = 2^10, m/M/MiB = 2^20, g/G/GiB = 2^30.
 * "KB"/"MB" are refused on purpose: they are 1000 or 1024 depending on who reads them. */
enum status
config_size(uint64_t *out, const char *s, size_t len)
{
    static const struct {
        const char *sfx;
        unsigned shift;
    } units[] = {
        {"k", 10},   {"K", 10}, {"KiB", 10}, {"m", 20},   {"M", 20},
        {"MiB", 20}, {"g", 30}, {"G", 30},   {"GiB", 30},
    };
    uint64_t v;
    unsigned shift = 0;
    size_t n;

    *out = 0;
    if (s == NULL || (n = scan_u64(&v, s, len)) == 0)
        return ST_INVALID;
    if (len > n) {
        size_t i = 0, rest = len - n;
        for (; i < sizeof units / sizeof units[0]; i++) {
            if (strlen(units[i].sfx) == rest && memcmp(units[i].sfx, s + n, rest) == 0)
                break;
        }
        if (i == sizeof units / sizeof units[0])
            return ST_INVALID;
        shift = units[i].shift;
    }
    if (v > (UINT64_MAX >> shift))
        return ST_INVALID;
    *out = v << shift;
    return ST_OK;
}

/* Set option o from text (a flag, a variable, a default or a JSON string). `src` names where
 * the text came from; the text itself is quoted in the error only for non-secret options. */
static enum status
opt_set_text(const struct cfg *c, const struct opt *o, const char *val, size_t len, const char *src)
{
    const char *want = NULL;
    char shown[CONFIG_SHOW_BYTES];
    uint64_t u;
    int64_t d;
    bool b;

    switch (o->type) {
    case OPT_STRING:
        str_set(OPT_FIELD(c->settings, o, char *), val, len, o->secret);
        return ST_OK;
    case OPT_BOOL:
        if (parse_bool(&b, val, len)) {
            *OPT_FIELD(c->settings, o, bool) = b;
            return ST_OK;
        }
        want = "true or false";
        break;
    case OPT_UINT:
        if (parse_uint(&u, val, len)) {
            *OPT_FIELD(c->settings, o, uint64_t) = u;
            return ST_OK;
        }
        want = "a non-negative integer";
        break;
    case OPT_SIZE:
        if (config_size(&u, val, len) == ST_OK) {
            *OPT_FIELD(c->settings, o, uint64_t) = u;
            return ST_OK;
        }
        want = "a size in bytes (4096, 64k, 4MiB, 1g)";
        break;
    case OPT_DURATION:
        if (config_duration(&d, val, len) == ST_OK) {
            *OPT_FIELD(c->settings, o, int64_t) = d;
            return ST_OK;
        }
        want = "a duration (seconds, or 45s, 30m, 12h, 90d, 1h30m; at most 3650d)";
        break;
    case OPT_DURATION_MS:
        if (config_duration_ms(&d, val, len) == ST_OK) {
            *OPT_FIELD(c->settings, o, int64_t) = d;
            return ST_OK;
        }
        want = "a duration (seconds, or 500ms, 45s, 30m, 12h, 1h30m; at most 3650d)";
        break;
    case OPT_JSON: {
        json_t *j = json_loadb(val, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, NULL);
        json_decref(j);
        if (j != NULL) {
            str_set(OPT_FIELD(c->settings, o, char *), val, len, o->secret);
            return ST_OK;
        }
        want = "JSON text";
        break;
    }
    }
    if (o->secret)
        errf(c, "%s: expected %s", src, want);
    else
        errf(c, "%s: expected %s, got \"%s\"", src, want, show(shown, CONFIG_SHOW_MAX, val, len));
    return ST_INVALID;
}

/* Set option o from a JSON value of the config file. */
static enum status
opt_set_json(const struct cfg *c, const struct opt *o, const json_t *v, const char *src)
{
    const char *want = "an integer or a string";

    switch (o->type) {
    case OPT_STRING:
        if (!json_is_string(v)) {
            want = "a string";
            break;
        }
        str_set(OPT_FIELD(c->settings, o, char *), json_string_value(v), json_string_length(v),
                o->secret);
        return ST_OK;
    case OPT_BOOL:
        if (!json_is_boolean(v)) {
            want = "true or false";
            break;
        }
        *OPT_FIELD(c->settings, o, bool) = json_is_true(v);
        return ST_OK;
    case OPT_JSON: {
        json_free_t jfree = NULL;
        char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        if (text == NULL)
            abort(); /* out of memory: as xmalloc */
        str_set(OPT_FIELD(c->settings, o, char *), text, strlen(text), o->secret);
        json_get_alloc_funcs(NULL, &jfree); /* jansson's allocator made it */
        jfree(text);
        return ST_OK;
    }
    case OPT_UINT:
    case OPT_SIZE:
    case OPT_DURATION:
    case OPT_DURATION_MS:
        if (json_is_string(v))
            return opt_set_text(c, o, json_string_value(v), json_string_length(v), src);
        if (!json_is_integer(v))
            break;
        if (json_integer_value(v) < 0) {
            errf(c, "%s must not be negative", src);
            return ST_INVALID;
        }
        if (o->type != OPT_DURATION && o->type != OPT_DURATION_MS) {
            *OPT_FIELD(c->settings, o, uint64_t) = (uint64_t)json_integer_value(v);
            return ST_OK;
        }
        if (config_duration_seconds(OPT_FIELD(c->settings, o, int64_t),
                                    (int64_t)json_integer_value(v)) == ST_OK) {
            if (o->type == OPT_DURATION_MS) /* a JSON number is seconds: stored as ms */
                *OPT_FIELD(c->settings, o, int64_t) *= 1000;
            return ST_OK;
        }
        errf(c, "%s must be a duration of at most 3650d (315360000 seconds)", src);
        return ST_INVALID;
    }
    errf(c, "%s must be %s", src, want);
    return ST_INVALID;
}

/* jansson's "near '<token>'" may quote part of a (secret) value: keep only the reason, except
 * for a duplicate key, where the token is the key and names what to fix. */
static void
json_reason(char *out, size_t out_len, const json_error_t *je)
{
    const char *near = strstr(je->text, " near '");
    size_t n = near ? (size_t)(near - je->text) : strlen(je->text);
    char tok[CONFIG_SHOW_BYTES];

    if (json_error_code(je) == json_error_duplicate_key && near != NULL) {
        near += strlen(" near '");
        size_t t = strlen(near);
        if (t > 0 && near[t - 1] == '\'')
            t--; /* jansson may have cut a long key: then no quote */
        show(tok, CONFIG_SHOW_MAX, near, t);
        snprintf(out, out_len, "duplicate key %s", tok);
        return;
    }
    show(out, out_len - 4, je->text, n); /* show() writes at most max + 4 bytes */
}

static enum status
json_key(const struct cfg *c, bool *seen, const char *key, const json_t *v, const char *label)
{
    char shown[CONFIG_SHOW_BYTES];
    char src[3 * CONFIG_SHOW_BYTES + 32];
    const struct opt *o = opt_find(c, key, strlen(key), 1);

    show(shown, CONFIG_SHOW_MAX, key, strlen(key));
    if (o == NULL) {
        errf(c, "%s: unknown key \"%s\"", label, shown);
        return ST_INVALID;
    }
    if (strcmp(o->name, "config") == 0) {
        errf(c, "%s: key \"config\" cannot be set in a config file", label);
        return ST_INVALID;
    }
    if (o->flag_only) {
        errf(c, "%s: key \"%s\" can only be given as a flag (--%s)", label, shown, o->name);
        return ST_INVALID;
    }
    if (seen[o - c->table]) {
        errf(c, "%s: duplicate key \"%s\" (%s)", label, shown, o->name);
        return ST_INVALID;
    }
    seen[o - c->table] = true;
    snprintf(src, sizeof src, "%s: key \"%s\"", label, shown);
    return opt_set_json(c, o, v, src);
}

static enum status
json_apply(const struct cfg *c, const char *text, size_t len, const char *label)
{
    json_error_t je;
    json_t *root = NULL;
    bool *seen = NULL;
    const char *key;
    json_t *v;
    char reason[96];
    enum status st = ST_INVALID;

    root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (root == NULL) {
        json_reason(reason, sizeof reason, &je);
        errf(c, "%s: line %d column %d: %s", label, je.line, je.column, reason);
        goto out;
    }
    if (!json_is_object(root)) {
        errf(c, "%s: must be a JSON object whose keys are option names", label);
        goto out;
    }
    seen = xcalloc(c->n ? c->n : 1, sizeof *seen);
    json_object_foreach (root, key, v) {
        if (json_key(c, seen, key, v, label) != ST_OK)
            goto out;
    }
    st = ST_OK;
out:
    free(seen);
    json_decref(root);
    return st;
}

enum status
config_parse_json(void *settings, const struct opt *table, size_t n_opts, const char *text,
                  size_t len, char *err, size_t err_len)
{
    const struct cfg c = {settings, table, n_opts, err, err_len};
    enum status st;

    table_check(table, n_opts);
    if (err != NULL && err_len > 0)
        err[0] = '\0';
    if ((st = json_apply(&c, text, len, "config file")) != ST_OK)
        config_free(settings, table, n_opts);
    return st;
}

/* Read and apply the file named by --config / DIFYGUARD_CONFIG / the default, if any. */
static enum status
file_apply(const struct cfg *c, const char *const *flags, char *const *env)
{
    const struct opt *o = opt_find(c, "config", 6, 0);
    const char *path;
    char label[3 * CONFIG_SHOW_BYTES + 16], shown[3 * CONFIG_SHOW_BYTES];
    char *text = NULL;
    size_t len = 0;
    FILE *f = NULL;
    enum status st = ST_INVALID;

    if (o == NULL)
        return ST_OK;
    path = flags[o - c->table] ? flags[o - c->table] : env[o - c->table];
    if (path == NULL)
        path = o->def;
    if (path == NULL || path[0] == '\0')
        return ST_OK;
    snprintf(label, sizeof label, "config file %s",
             show(shown, 3 * CONFIG_SHOW_MAX, path, strlen(path)));
    if ((f = fopen(path, "rbe")) == NULL) {
        errf(c, "%s: %s", label, strerror(errno));
        goto out;
    }
    text = xmalloc(CONFIG_FILE_MAX + 1);
    len = fread(text, 1, CONFIG_FILE_MAX + 1, f);
    if (ferror(f)) {
        errf(c, "%s: %s", label, strerror(errno));
        goto out;
    }
    if (len > CONFIG_FILE_MAX) {
        errf(c, "%s: larger than %zu bytes", label, CONFIG_FILE_MAX);
        goto out;
    }
    st = json_apply(c, text, len, label);
out:
    if (text != NULL)
        explicit_bzero(text, len); /* the file may hold secrets */
    free(text);
    if (f != NULL)
        fclose(f);
    return st;
}

/* Copy every DIFYGUARD_* value of the table. Secret ones are then wiped and unset at once, so
 * they are gone from the environment (and /proc/<pid>/environ) even if parsing fails later.
 * Writing through getenv()'s pointer is deliberate: unsetenv alone leaves the bytes in place.
 * An empty variable counts as unset (compose files often pass FOO= for "not configured").
 * flag_only options are not looked up at all: DIFYGUARD_SCOPE left in a shell must not turn
 * "key create" into an admin key. */
static char **
env_take(const struct cfg *c)
{
    char **env = xcalloc(c->n ? c->n : 1, sizeof *env);
    char name[CONFIG_ENV_BYTES];

    for (size_t i = 0; i < c->n; i++) {
        char *v;

        if (c->table[i].flag_only)
            continue;
        env_name(name, c->table[i].name);
        if ((v = getenv(name)) == NULL)
            continue;
        if (v[0] != '\0')
            env[i] = xstrdup(v);
        if (c->table[i].secret) {
            explicit_bzero(v, strlen(v));
            unsetenv(name);
        }
    }
    return env;
}

static void
env_free(const struct cfg *c, char **env)
{
    for (size_t i = 0; env != NULL && i < c->n; i++)
        str_free(env[i], c->table[i].secret);
    free(env);
}

/* true, false (any case), 1 or 0: the word after a boolean flag that is its value. */
static bool
bool_word(const char *w)
{
    bool b;
    return parse_bool(&b, w, strlen(w));
}

/* One "--name[=value]" at argv[*i]; may consume argv[*i + 1] as its value (a boolean flag only
 * when that is a boolean word). */
static enum status
argv_flag(const struct cfg *c, const char **flags, int argc, char **argv, int *i)
{
    const char *a = argv[*i], *name = a + 2, *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    char shown[CONFIG_SHOW_BYTES], env[CONFIG_ENV_BYTES];
    const struct opt *o = a[1] == '-' ? opt_find(c, name, len, 0) : NULL;

    if (o == NULL) {
        len = eq ? (size_t)(eq - a) : strlen(a);
        errf(c, "unknown option %s", show(shown, CONFIG_SHOW_MAX, a, len));
        return ST_INVALID;
    }
    if (o->secret) {
        env_name(env, o->name);
        errf(c, "--%s must not be passed on the command line; use %s", o->name, env);
        return ST_INVALID;
    }
    if (eq != NULL)
        flags[o - c->table] = eq + 1;
    else if (o->type == OPT_BOOL && *i + 1 < argc && bool_word(argv[*i + 1]))
        flags[o - c->table] = argv[++*i]; /* "--flag false" as well as "--flag=false" */
    else if (o->type == OPT_BOOL)
        flags[o - c->table] = "true";
    else if (*i + 1 < argc && strncmp(argv[*i + 1], "--", 2) != 0)
        flags[o - c->table] = argv[++*i];
    else {
        errf(c, "option --%s needs a value", o->name);
        return ST_INVALID;
    }
    return ST_OK;
}

/* Record each flag's value (pointing into argv) and mark positional arguments. */
static enum status
argv_scan(const struct cfg *c, const char **flags, bool *is_pos, int argc, char **argv,
          bool want_pos)
{
    char shown[CONFIG_SHOW_BYTES];
    bool opts_done = false;
    enum status st;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];

        if (!opts_done && strcmp(a, "--") == 0) {
            opts_done = true;
        } else if (opts_done || a[0] != '-' || a[1] == '\0') {
            if (!want_pos) {
                errf(c, "unexpected argument \"%s\"", show(shown, CONFIG_SHOW_MAX, a, strlen(a)));
                return ST_INVALID;
            }
            is_pos[i] = true;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            return ST_NOT_FOUND;
        } else if ((st = argv_flag(c, flags, argc, argv, &i)) != ST_OK) {
            return st;
        }
    }
    return ST_OK;
}

/* Stable partition: options (and "--") first, positionals last, so the positionals are a
 * NULL-terminated tail of argv itself (argv[argc] is NULL) and need no allocation. */
static const char **
argv_permute(int argc, char **argv, const bool *is_pos)
{
    char **tmp = xcalloc((size_t)argc + 1, sizeof *tmp);
    size_t k = 0, first;

    for (int i = 0; i < argc; i++) {
        if (!is_pos[i])
            tmp[k++] = argv[i];
    }
    first = k;
    for (int i = 0; i < argc; i++) {
        if (is_pos[i])
            tmp[k++] = argv[i];
    }
    memcpy(argv, tmp, (size_t)argc * sizeof *argv);
    free(tmp);
    return (const char **)&argv[first];
}

/* Apply one text layer (the environment or the flags); vals[i] is NULL when not given. */
static enum status
layer_apply(const struct cfg *c, const char *const *vals, bool from_env)
{
    char src[CONFIG_ENV_BYTES + 2];

    for (size_t i = 0; i < c->n; i++) {
        if (vals[i] == NULL)
            continue;
        if (from_env)
            env_name(src, c->table[i].name);
        else
            snprintf(src, sizeof src, "--%s", c->table[i].name);
        if (opt_set_text(c, &c->table[i], vals[i], strlen(vals[i]), src) != ST_OK)
            return ST_INVALID;
    }
    return ST_OK;
}

static void
defaults_apply(const struct cfg *c)
{
    for (size_t i = 0; i < c->n; i++) {
        const struct opt *o = &c->table[i];
        if (o->def != NULL)
            contract(opt_set_text(c, o, o->def, strlen(o->def), "default") == ST_OK,
                     "default does not parse", o->name);
    }
}

enum status
config_parse(void *settings, const struct opt *table, size_t n_opts, int argc, char **argv,
             const char ***positional, char *err, size_t err_len)
{
    const struct cfg c = {settings, table, n_opts, err, err_len};
    char **env = NULL;         /* DIFYGUARD_* values, copied (secrets already unset) */
    const char **flags = NULL; /* per option: its value in argv, or NULL */
    bool *is_pos = NULL;       /* per argv slot: a positional argument */
    enum status st;

    table_check(table, n_opts);
    if (err != NULL && err_len > 0)
        err[0] = '\0';
    if (argc < 0)
        argc = 0;
    if (positional != NULL) {
        contract(argv != NULL && argv[argc] == NULL, "argv[argc] must be NULL", "argv");
        *positional = (const char **)&argv[argc];
    }
    env = env_take(&c);
    flags = xcalloc(n_opts ? n_opts : 1, sizeof *flags);
    is_pos = xcalloc((size_t)argc + 1, sizeof *is_pos);
    if ((st = argv_scan(&c, flags, is_pos, argc, argv, positional != NULL)) != ST_OK)
        goto out;
    defaults_apply(&c);
    if ((st = file_apply(&c, flags, env)) != ST_OK ||
        (st = layer_apply(&c, (const char *const *)env, true)) != ST_OK ||
        (st = layer_apply(&c, flags, false)) != ST_OK)
        goto out;
    if (positional != NULL)
        *positional = argv_permute(argc, argv, is_pos);
out:
    env_free(&c, env);
    free(flags);
    free(is_pos);
    if (st != ST_OK)
        config_free(settings, table, n_opts);
    return st;
}

void
config_free(void *settings, const struct opt *table, size_t n_opts)
{
    if (settings == NULL || table == NULL)
        return;
    for (size_t i = 0; i < n_opts; i++) {
        if (table[i].type != OPT_STRING && table[i].type != OPT_JSON)
            continue;
        char **slot = OPT_FIELD(settings, &table[i], char *);
        str_free(*slot, table[i].secret);
        *slot = NULL;
    }
}

/* "--name VALUE", "--name" for booleans, or the variable for secrets (never a flag). */
static void
help_label(char *out, size_t out_len, const struct opt *o)
{
    if (o->secret)
        env_name(out, o->name);
    else
        snprintf(out, out_len, "--%s%s", o->name, o->type == OPT_BOOL ? "" : " VALUE");
}

void
config_help(FILE *out, const char *cmd, const char *synopsis, const char *summary,
            const struct opt *table, size_t n_opts)
{
    char label[CONFIG_ENV_BYTES + 16], env[CONFIG_ENV_BYTES];
    int width = (int)strlen("-h, --help");
    bool has_config = false;

    for (size_t i = 0; i < n_opts; i++) {
        help_label(label, sizeof label, &table[i]);
        if ((int)strlen(label) > width)
            width = (int)strlen(label);
        has_config |= strcmp(table[i].name, "config") == 0;
    }
    fprintf(out, "usage: difyguard %s%s%s\n", cmd ? cmd : "", synopsis && *synopsis ? " " : "",
            synopsis ? synopsis : "");
    if (summary != NULL && *summary != '\0')
        fprintf(out, "%s\n", summary);
    fprintf(out, "\noptions:\n");
    for (size_t i = 0; i < n_opts; i++) {
        const struct opt *o = &table[i];

        help_label(label, sizeof label, o);
        env_name(env, o->name);
        fprintf(out, "  %-*s  %s%s(", width, label, o->help ? o->help : "", o->help ? " " : "");
        if (o->secret)
            fprintf(out, "secret: environment or config file only, never a flag");
        else if (o->flag_only)
            fprintf(out, "flag only: no variable or config file sets it");
        else
            fprintf(out, "env %s", env);
        if (o->def != NULL && !o->secret)
            fprintf(out, ", default %s", o->def);
        fprintf(out, ")\n");
    }
    fprintf(out, "  %-*s  show this help\n", width, "-h, --help");
    if (has_config)
        fprintf(out, "\nFlags win over DIFYGUARD_* variables, which win over the JSON config file "
                     "(keys are option names).\n");
}
