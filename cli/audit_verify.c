/* SPDX-License-Identifier: Apache-2.0 */
/* cli/audit_verify.c -- `difyguard audit verify FILE --public-key KEY ...`: offline verification
 * of an audit export for auditors. Local files in, one line out; no network, no database. */
#include "cli/audit_verify.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "cli/offline.h"
#include "common/json/config.h"
#include "common/sbuf.h"
#include "common/xmem.h"
#include "server/audit/format.h"

#define EXIT_NOT_VERIFIED 1
#define EXIT_USAGE 2
#define KEY_FLAG "--public-key"
#define HEAD_FLAG "--expect-head"
#define HEADS_MAX 64

struct verify_opts {
    char *public_key; /* from DIFYGUARD_PUBLIC_KEY; flags are taken out first */
    char *since;
    char *not_before;
    char *expect_head; /* listed for --help only: the flags are taken out first */
    bool json;
    char *output; /* table (text) or json: as the API commands' --output */
};

static const struct opt verify_table[] = {
    {"public-key", OPT_STRING, offsetof(struct verify_opts, public_key), NULL,
     "an accepted audit public key: base64 text, or @FILE holding one or more (or the JSON of GET "
     "/v1/audit/public-key); repeatable",
     false, false},
    {"since", OPT_STRING, offsetof(struct verify_opts, since), NULL,
     "checkpoint line(s) kept from an earlier export: the export must continue from them", false,
     false},
    {"expect-head", OPT_STRING, offsetof(struct verify_opts, expect_head), NULL,
     "CHAIN:SEQ:HASH (e.g. from a signed compliance report): the export must pass through that "
     "event of that chain and not end before it; repeatable, flag only",
     false, true},
    {"not-before", OPT_STRING, offsetof(struct verify_opts, not_before), NULL,
     "TIME (RFC 3339 or unix seconds): every chain's last checkpoint must be at least this recent",
     false, false},
    {"json", OPT_BOOL, offsetof(struct verify_opts, json), NULL,
     "print the result as one JSON object", false, false},
    {"output", OPT_STRING, offsetof(struct verify_opts, output), NULL,
     "table (text, the default) or json (as --json)", false, false},
};
#define N_VERIFY_OPTS (sizeof verify_table / sizeof verify_table[0])

static const char verify_synopsis[] =
    "FILE --public-key KEY [--public-key KEY ...] [--since CHECKPOINT_FILE]\n"
    "       [--expect-head CHAIN:SEQ:HASH ...] [--not-before TIME] [--json]";
static const char verify_summary[] =
    "Verify an audit export (FILE, or - for stdin) offline: every event's hash and link, every\n"
    "checkpoint's signature, and that each chain ends with an export checkpoint. KEY is the\n"
    "base64 Ed25519 public key (GET /v1/audit/public-key) or @FILE; keys introduced by signed\n"
    "key changes in the export are accepted from that point on. Prints, for each chain, the\n"
    "head it verified through (seq, hash, time of the last signed checkpoint). Exit 0\n"
    "verified, 1 not.";

struct verify_args {
    struct verify_opts o;
    const char *file;
    uint8_t (*keys)[AUDIT_PK_BYTES];
    size_t n_keys;
    struct audit_head *expect;
    size_t n_expect;
    char not_before[AUDIT_TIME_CHARS + 1];
};

/* CHAIN:SEQ:HASH, split at the last two colons (a chain id may hold colons). */
static enum status
head_parse(struct audit_head *h, const char *arg, char *err, size_t err_len)
{
    const char *c2 = strrchr(arg, ':'), *c1 = NULL;
    size_t n = 0;
    char *end = NULL;

    memset(h, 0, sizeof *h);
    for (const char *p = arg; c2 != NULL && p < c2; p++)
        if (*p == ':')
            c1 = p;
    if (c1 == NULL || c1 == arg || (size_t)(c1 - arg) > AUDIT_CHAIN_ID_MAX || c1[1] < '1' ||
        c1[1] > '9' || strlen(c2 + 1) != 2 * AUDIT_HASH_BYTES ||
        strspn(c2 + 1, "0123456789abcdef") != 2 * AUDIT_HASH_BYTES)
        goto bad;
    errno = 0;
    h->seq = strtoull(c1 + 1, &end, 10);
    if (errno != 0 || end != c2 || h->seq > (uint64_t)INT64_MAX ||
        sodium_hex2bin(h->hash, sizeof h->hash, c2 + 1, 2 * AUDIT_HASH_BYTES, NULL, &n, NULL) !=
            0 ||
        n != AUDIT_HASH_BYTES)
        goto bad;
    memcpy(h->chain_id, arg, (size_t)(c1 - arg));
    return ST_OK;
bad:
    snprintf(err, err_len, "%s: expected CHAIN:SEQ:HASH (seq from 1, hash 64 lowercase hex digits)",
             HEAD_FLAG);
    return ST_INVALID;
}

static enum status
heads_parse(struct verify_args *a, const char *const *vals, size_t n, char *err, size_t err_len)
{
    enum status st = ST_OK;

    if (n > HEADS_MAX) {
        snprintf(err, err_len, "more than %d %s", HEADS_MAX, HEAD_FLAG);
        return ST_INVALID;
    }
    a->expect = xcalloc(n + 1, sizeof *a->expect);
    for (size_t i = 0; i < n && st == ST_OK; i++)
        st = head_parse(&a->expect[a->n_expect++], vals[i], err, err_len);
    return st;
}

/* Options, the one FILE, the keys and the expectations. ST_NOT_FOUND: help was printed. */
static enum status
verify_args_parse(struct verify_args *a, int argc, char **argv, char *err, size_t err_len)
{
    const char **vals = xcalloc((size_t)argc + 1, sizeof *vals), **pos = NULL;
    const char **heads = xcalloc((size_t)argc + 1, sizeof *heads);
    size_t n_vals = 0, n_heads = 0;
    int64_t ms;
    enum status st;

    if ((st = cli_take_flag(KEY_FLAG, vals, &n_vals, &argc, argv, err, err_len)) != ST_OK ||
        (st = cli_take_flag(HEAD_FLAG, heads, &n_heads, &argc, argv, err, err_len)) != ST_OK)
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
    if (a->o.not_before != NULL) {
        if (!cli_time_parse(a->o.not_before, &ms)) {
            snprintf(err, err_len, "--not-before: expected RFC 3339 UTC or unix seconds");
            goto out;
        }
        auditfmt_time(a->not_before, ms);
    }
    if (n_vals == 0 && a->o.public_key != NULL)
        vals[n_vals++] = a->o.public_key;
    if (n_vals == 0) {
        snprintf(err, err_len, "%s KEY is required (the audit public key)", KEY_FLAG);
        goto out;
    }
    if ((st = heads_parse(a, heads, n_heads, err, err_len)) != ST_OK)
        goto out;
    a->keys = xcalloc(PUBKEYS_MAX, sizeof *a->keys);
    for (size_t i = 0; i < n_vals && st == ST_OK; i++)
        st = pubkeys_add(a->keys, &a->n_keys, vals[i], err, err_len);
out:
    free(vals);
    free(heads);
    return st;
}

static json_t *
heads_json(const struct audit_head *h, size_t n)
{
    json_t *arr = json_array();
    char hex[2 * AUDIT_HASH_BYTES + 1];

    for (size_t i = 0; i < n; i++) {
        sodium_bin2hex(hex, sizeof hex, h[i].hash, AUDIT_HASH_BYTES);
        json_array_append_new(arr, json_pack("{s:s, s:I, s:s, s:s}", "chain_id", h[i].chain_id,
                                             "seq", (json_int_t)h[i].seq, "hash", hex,
                                             "checkpoint_time", h[i].cp_time));
    }
    return arr;
}

static void
heads_print(const struct audit_head *h, size_t n)
{
    char hex[2 * AUDIT_HASH_BYTES + 1];

    for (size_t i = 0; i < n; i++) {
        sodium_bin2hex(hex, sizeof hex, h[i].hash, AUDIT_HASH_BYTES);
        printf("head %s:%" PRIu64 ":%s (last checkpoint %s)\n", h[i].chain_id, h[i].seq, hex,
               h[i].cp_time);
    }
}

static int
report(const struct verify_opts *o, enum status st, const struct audit_verify_result *r,
       const struct audit_head *h, size_t n)
{
    json_t *j = NULL;

    if (o->json && st == ST_OK)
        j = json_pack("{s:b, s:I, s:I, s:I, s:o}", "valid", 1, "events", (json_int_t)r->events,
                      "checkpoints", (json_int_t)r->checkpoints, "chains", (json_int_t)r->chains,
                      "heads", heads_json(h, n));
    else if (o->json)
        j = json_pack("{s:b, s:I, s:s}", "valid", 0, "line", (json_int_t)r->line, "error",
                      r->error);
    else if (st == ST_OK) {
        printf("verified: %llu events, %llu checkpoints, %llu chains\n",
               (unsigned long long)r->events, (unsigned long long)r->checkpoints,
               (unsigned long long)r->chains);
        heads_print(h, n);
    }
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
    struct audit_head *heads = NULL;
    size_t n_heads = 0;
    char err[512] = "";
    int rc = EXIT_USAGE;
    enum status st;

    if ((st = verify_args_parse(&a, argc, argv, err, sizeof err)) != ST_OK) {
        rc = st == ST_NOT_FOUND ? 0 : st == ST_IO ? EXIT_NOT_VERIFIED : EXIT_USAGE;
        goto out;
    }
    rc = EXIT_NOT_VERIFIED;
    if ((st = cli_read_file(&text, a.file, 0, err, sizeof err)) != ST_OK ||
        (a.o.since != NULL && (st = cli_read_file(&since, a.o.since, 0, err, sizeof err)) != ST_OK))
        goto out;
    const struct audit_verify_opts vo = {
        .since = a.o.since != NULL ? (since.p != NULL ? since.p : "") : NULL,
        .since_len = since.len,
        .expect = a.expect,
        .n_expect = a.n_expect,
        .not_before = a.not_before,
    };
    st = audit_verify_heads(text.p != NULL ? text.p : "", text.len,
                            (const uint8_t(*)[AUDIT_PK_BYTES])a.keys, a.n_keys, &vo, &res, &heads,
                            &n_heads);
    rc = report(&a.o, st, &res, heads, n_heads);
    err[0] = '\0';
out:
    if (err[0] != '\0')
        fprintf(stderr, "difyguard: audit verify: %s\n", err);
    free(heads);
    free(a.keys);
    free(a.expect);
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
