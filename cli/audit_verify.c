/* SPDX-License-Identifier: Apache-2.0 */
/* cli/audit_verify.c -- `difyguard audit verify FILE --public-key KEY ...`: offline verification
 * of an audit export for auditors. Local files in, one line out; no network, no database. */
#include "cli/audit_verify.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/json/config.h"
#include "common/sbuf.h"
#include "common/xmem.h"
#include "server/audit/format.h"

#define EXIT_NOT_VERIFIED 1
#define EXIT_USAGE 2
#define KEY_FILE_MAX ((size_t)64 << 10)
#define KEYS_MAX 64
#define KEY_FLAG "--public-key"

struct verify_opts {
    char *public_key; /* from DIFYGUARD_PUBLIC_KEY; flags are taken out first */
    char *since;
    bool json;
    char *output; /* table (text) or json: as the API commands' --output */
};

static const struct opt verify_table[] = {
    {"public-key", OPT_STRING, offsetof(struct verify_opts, public_key), NULL,
     "an accepted audit public key: base64 text, or @FILE holding one or more; repeatable", false,
     false},
    {"since", OPT_STRING, offsetof(struct verify_opts, since), NULL,
     "checkpoint line(s) kept from an earlier export: the export must continue from them", false,
     false},
    {"json", OPT_BOOL, offsetof(struct verify_opts, json), NULL,
     "print the result as one JSON object", false, false},
    {"output", OPT_STRING, offsetof(struct verify_opts, output), NULL,
     "table (text, the default) or json (as --json)", false, false},
};
#define N_VERIFY_OPTS (sizeof verify_table / sizeof verify_table[0])

static const char verify_synopsis[] =
    "FILE --public-key KEY [--public-key KEY ...] [--since CHECKPOINT_FILE] [--json]";
static const char verify_summary[] =
    "Verify an audit export (FILE, or - for stdin) offline: every event's hash and link, every\n"
    "checkpoint's signature, and that each chain ends with an export checkpoint. KEY is the\n"
    "base64 Ed25519 public key (GET /v1/audit/public-key) or @FILE; keys introduced by signed\n"
    "key changes in the export are accepted from that point on. Exit 0 verified, 1 not.";

struct verify_args {
    struct verify_opts o;
    const char *file;
    uint8_t (*keys)[AUDIT_PK_BYTES];
    size_t n_keys;
};

/* Read a whole file ("-" is stdin) into b; max 0 means no limit. */
static enum status
read_all(struct sbuf *b, const char *path, size_t max, char *err, size_t err_len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rbe");
    size_t n;
    enum status st = ST_IO;

    if (f == NULL) {
        snprintf(err, err_len, "%s: %s", path, strerror(errno));
        goto out;
    }
    do {
        sbuf_reserve(b, (size_t)1 << 16);
        n = fread(b->p + b->len, 1, b->cap - b->len - 1, f);
        b->len += n;
        b->p[b->len] = '\0';
    } while (n > 0 && (max == 0 || b->len <= max));
    if (ferror(f)) {
        snprintf(err, err_len, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (max != 0 && b->len > max) {
        snprintf(err, err_len, "%s: larger than %zu bytes", path, max);
        goto out;
    }
    st = ST_OK;
out:
    if (f != NULL && f != stdin)
        fclose(f);
    return st;
}

static enum status
key_add(struct verify_args *a, const char *text, size_t len, const char *src, char *err,
        size_t err_len)
{
    if (a->n_keys == KEYS_MAX) {
        snprintf(err, err_len, "more than %d public keys", KEYS_MAX);
        return ST_INVALID;
    }
    if (auditfmt_parse_public_key(a->keys[a->n_keys], text, len) != ST_OK) {
        snprintf(err, err_len, "%s: not a base64 Ed25519 public key (44 characters)", src);
        return ST_INVALID;
    }
    a->n_keys++;
    return ST_OK;
}

/* KEY is base64 text, or @FILE holding keys separated by white space. */
static enum status
keys_load(struct verify_args *a, const char *arg, char *err, size_t err_len)
{
    static const char ws[] = " \t\r\n";
    struct sbuf b = {0};
    size_t pos = 0, n, before = a->n_keys;
    enum status st = ST_OK;

    if (arg[0] != '@')
        return key_add(a, arg, strlen(arg), KEY_FLAG, err, err_len);
    if ((st = read_all(&b, arg + 1, KEY_FILE_MAX, err, err_len)) != ST_OK)
        goto out;
    while (st == ST_OK && pos < b.len) {
        pos += strspn(b.p + pos, ws);
        if ((n = strcspn(b.p + pos, ws)) > 0)
            st = key_add(a, b.p + pos, n, arg, err, err_len);
        pos += n;
    }
    if (st == ST_OK && a->n_keys == before) {
        snprintf(err, err_len, "%s: holds no public key", arg);
        st = ST_INVALID;
    }
out:
    sbuf_free(&b);
    return st;
}

/* config_parse keeps only the last value of a repeated flag, and --public-key repeats: move
 * every occurrence ("--public-key KEY", "--public-key=KEY") out of argv into vals first. */
static enum status
take_key_flags(const char **vals, size_t *n, int *argc, char **argv, char *err, size_t err_len)
{
    const size_t fl = sizeof KEY_FLAG - 1;
    bool done = false;
    int out = 1;

    *n = 0;
    for (int i = 1; i < *argc; i++) {
        const char *a = argv[i];
        done |= strcmp(a, "--") == 0;
        if (!done && strncmp(a, KEY_FLAG, fl) == 0 && a[fl] == '=') {
            vals[(*n)++] = a + fl + 1;
        } else if (!done && strcmp(a, KEY_FLAG) == 0) {
            if (i + 1 >= *argc || strncmp(argv[i + 1], "--", 2) == 0) {
                snprintf(err, err_len, "option %s needs a value", KEY_FLAG);
                return ST_INVALID;
            }
            vals[(*n)++] = argv[++i];
        } else {
            argv[out++] = argv[i];
        }
    }
    argv[out] = NULL;
    *argc = out;
    return ST_OK;
}

/* Options, the one FILE and the keys. ST_NOT_FOUND: help was printed. */
static enum status
verify_args_parse(struct verify_args *a, int argc, char **argv, char *err, size_t err_len)
{
    const char **vals = xcalloc((size_t)argc + 1, sizeof *vals), **pos = NULL;
    size_t n_vals = 0;
    enum status st;

    if ((st = take_key_flags(vals, &n_vals, &argc, argv, err, err_len)) != ST_OK)
        goto out;
    st = config_parse(&a->o, verify_table, N_VERIFY_OPTS, argc, argv, &pos, err, err_len);
    if (st == ST_NOT_FOUND)
        config_help(stdout, "audit verify", verify_synopsis, verify_summary, verify_table,
                    N_VERIFY_OPTS);
    if (st != ST_OK)
        goto out;
    st = ST_INVALID;
    if (a->o.output != NULL && strcmp(a->o.output, "json") != 0 &&
        strcmp(a->o.output, "table") != 0) {
        snprintf(err, err_len, "--output must be table or json");
        goto out;
    }
    if (a->o.output != NULL && strcmp(a->o.output, "table") == 0 && a->o.json) {
        snprintf(err, err_len, "--output table and --json contradict each other");
        goto out;
    }
    if (a->o.output != NULL && strcmp(a->o.output, "json") == 0)
        a->o.json = true;
    if (pos[0] == NULL || pos[1] != NULL) {
        snprintf(err, err_len, "expected exactly one FILE (the export; - for stdin)");
        goto out;
    }
    a->file = pos[0];
    if (n_vals == 0 && a->o.public_key != NULL)
        vals[n_vals++] = a->o.public_key;
    if (n_vals == 0) {
        snprintf(err, err_len, "%s KEY is required (the audit public key)", KEY_FLAG);
        goto out;
    }
    a->keys = xcalloc(KEYS_MAX, sizeof *a->keys);
    st = ST_OK;
    for (size_t i = 0; i < n_vals && st == ST_OK; i++)
        st = keys_load(a, vals[i], err, err_len);
out:
    free(vals);
    return st;
}

static int
report(const struct verify_opts *o, enum status st, const struct audit_verify_result *r)
{
    json_t *j = NULL;

    if (o->json && st == ST_OK)
        j = json_pack("{s:b, s:I, s:I, s:I}", "valid", 1, "events", (json_int_t)r->events,
                      "checkpoints", (json_int_t)r->checkpoints, "chains", (json_int_t)r->chains);
    else if (o->json)
        j = json_pack("{s:b, s:I, s:s}", "valid", 0, "line", (json_int_t)r->line, "error",
                      r->error);
    else if (st == ST_OK)
        printf("verified: %llu events, %llu checkpoints, %llu chains\n",
               (unsigned long long)r->events, (unsigned long long)r->checkpoints,
               (unsigned long long)r->chains);
    if (j != NULL) {
        json_dumpf(j, stdout, JSON_COMPACT);
        putchar('\n');
        json_decref(j);
    }
    fflush(stdout);
    if (st == ST_OK)
        return 0;
    if (r->line > 0)
        fprintf(stderr, "difyguard: audit verify: line %llu: %s\n", (unsigned long long)r->line,
                r->error);
    else
        fprintf(stderr, "difyguard: audit verify: %s\n", r->error);
    return EXIT_NOT_VERIFIED;
}

static int
audit_verify_cmd(int argc, char **argv)
{
    struct verify_args a = {0};
    struct sbuf text = {0}, since = {0};
    struct audit_verify_result res;
    char err[512] = "";
    int rc = EXIT_USAGE;
    enum status st;

    if ((st = verify_args_parse(&a, argc, argv, err, sizeof err)) != ST_OK) {
        rc = st == ST_NOT_FOUND ? 0 : st == ST_IO ? EXIT_NOT_VERIFIED : EXIT_USAGE;
        goto out;
    }
    rc = EXIT_NOT_VERIFIED;
    if ((st = read_all(&text, a.file, 0, err, sizeof err)) != ST_OK ||
        (a.o.since != NULL && (st = read_all(&since, a.o.since, 0, err, sizeof err)) != ST_OK))
        goto out;
    st = audit_verify(text.p, text.len, (const uint8_t(*)[AUDIT_PK_BYTES])a.keys, a.n_keys,
                      a.o.since != NULL ? (since.p != NULL ? since.p : "") : NULL, since.len, &res);
    rc = report(&a.o, st, &res);
    err[0] = '\0';
out:
    if (err[0] != '\0')
        fprintf(stderr, "difyguard: audit verify: %s\n", err);
    free(a.keys);
    sbuf_free(&text);
    sbuf_free(&since);
    config_free(&a.o, verify_table, N_VERIFY_OPTS);
    return rc;
}

static void
audit_usage(FILE *f)
{
    fprintf(f,
            "usage: difyguard audit SUBCOMMAND [options]   (difyguard audit SUBCOMMAND --help "
            "for its options)\n\n"
            "subcommands:\n"
            "  audit verify %s\n"
            "        verify an audit export offline against the audit public key(s)\n"
            "  audit events [--app A] [--keyring K] [--op OP] [--from T] [--to T] [--all]\n"
            "        list audit events, newest first (over the API, audit:read)\n"
            "  audit public-key\n"
            "        show the audit signing keys (over the API)\n"
            "  audit export [-o FILE]\n"
            "        export the trail as NDJSON; with -o also FILE.keys (over the API)\n",
            verify_synopsis);
}

int
cmd_audit(int argc, char **argv)
{
    if (argc < 2) {
        audit_usage(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "help") == 0) {
        audit_usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "verify") == 0)
        return audit_verify_cmd(argc - 1, argv + 1);
    fprintf(stderr, "difyguard: audit: unknown command '%s'\n", argv[1]);
    audit_usage(stderr);
    return EXIT_USAGE;
}
