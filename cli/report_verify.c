/* SPDX-License-Identifier: Apache-2.0 */
/* cli/report_verify.c -- `difyguard report verify FILE --public-key KEY ...` (see
 * report_verify.h). The verification itself is policies/report.c; this is the command. */
#include "cli/report_verify.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/offline.h"
#include "common/json/config.h"
#include "common/xmem.h"
#include "policies/report.h"

#define EXIT_NOT_VERIFIED 1
#define EXIT_USAGE 2
#define KEY_FLAG "--public-key"

struct report_opts {
    char *public_key;
    bool json;
};

static const struct opt report_table[] = {
    {"public-key", OPT_STRING, offsetof(struct report_opts, public_key), NULL,
     "the report signing public key: base64 text, or @FILE holding one or more (or the JSON of "
     "GET /v1/compliance/public-key); repeatable",
     false, false},
    {"json", OPT_BOOL, offsetof(struct report_opts, json), NULL,
     "print the result as one JSON object", false, false},
};
#define N_REPORT_OPTS (sizeof report_table / sizeof report_table[0])

static const char report_synopsis[] = "FILE --public-key KEY [--public-key KEY ...] [--json]";
static const char report_summary_text[] =
    "Verify a signed compliance report (GET /v1/compliance/report, format json; FILE, or - for\n"
    "stdin) offline: its exact form and its Ed25519 signature by one of the given keys. Any\n"
    "changed byte fails. Prints the signer, the time, the counts, and the head of every audit\n"
    "chain at report time as CHAIN:SEQ:HASH, for `difyguard audit verify --expect-head`.\n"
    "Exit 0 verified, 1 not.";

static void
print_text(const struct report_summary *s)
{
    printf("verified: report signed by key %s at %s (difyguard %s, instance %s): %zu packs, %zu "
           "controls: %zu pass, %zu fail, %zu manual, %zu not applicable\n",
           s->key_id, s->generated_at, s->version, s->instance[0] != '\0' ? s->instance : "-",
           s->packs, s->controls, s->counts[CTL_PASS], s->counts[CTL_FAIL], s->counts[CTL_MANUAL],
           s->counts[CTL_NOT_APPLICABLE]);
    for (size_t i = 0; i < s->n_heads; i++)
        printf("head %s:%" PRIu64 ":%s\n", s->heads[i].chain_id, s->heads[i].seq, s->heads[i].hash);
}

static void
print_json(const struct report_summary *s)
{
    json_t *heads = json_array();

    for (size_t i = 0; i < s->n_heads; i++)
        json_array_append_new(heads,
                              json_pack("{s:s, s:I, s:s}", "chain_id", s->heads[i].chain_id, "seq",
                                        (json_int_t)s->heads[i].seq, "hash", s->heads[i].hash));
    json_t *j =
        json_pack("{s:b, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:o}", "valid", 1,
                  "key_id", s->key_id, "generated_at", s->generated_at, "version", s->version,
                  "instance", s->instance, "packs", (json_int_t)s->packs, "controls",
                  (json_int_t)s->controls, "pass", (json_int_t)s->counts[CTL_PASS], "fail",
                  (json_int_t)s->counts[CTL_FAIL], "manual", (json_int_t)s->counts[CTL_MANUAL],
                  "not_applicable", (json_int_t)s->counts[CTL_NOT_APPLICABLE], "heads", heads);
    json_dumpf(j, stdout, JSON_COMPACT);
    putchar('\n');
    json_decref(j);
}

/* Options, the one FILE and the keys. ST_NOT_FOUND: help was printed. */
static enum status
args_parse(struct report_opts *o, const char **file, uint8_t (*keys)[PUBKEY_BYTES], size_t *n,
           int argc, char **argv, char *err, size_t err_len)
{
    const char **vals = xcalloc((size_t)argc + 1, sizeof *vals), **pos = NULL;
    size_t n_vals = 0;
    enum status st;

    if ((st = cli_take_flag(KEY_FLAG, vals, &n_vals, &argc, argv, err, err_len)) != ST_OK)
        goto out;
    st = config_parse(o, report_table, N_REPORT_OPTS, argc, argv, &pos, err, err_len);
    if (st == ST_NOT_FOUND)
        config_help(stdout, "report verify", report_synopsis, report_summary_text, report_table,
                    N_REPORT_OPTS);
    if (st != ST_OK)
        goto out;
    st = ST_INVALID;
    if (pos[0] == NULL || pos[1] != NULL) {
        snprintf(err, err_len, "expected exactly one FILE (the report; - for stdin)");
        goto out;
    }
    *file = pos[0];
    if (n_vals == 0 && o->public_key != NULL)
        vals[n_vals++] = o->public_key;
    if (n_vals == 0) {
        snprintf(err, err_len, "%s KEY is required (GET /v1/compliance/public-key)", KEY_FLAG);
        goto out;
    }
    st = ST_OK;
    for (size_t i = 0; i < n_vals && st == ST_OK; i++)
        st = pubkeys_add(keys, n, vals[i], err, err_len);
out:
    free(vals);
    return st;
}

static int
report_verify_cmd(int argc, char **argv)
{
    struct report_opts o = {0};
    uint8_t(*keys)[PUBKEY_BYTES] = xcalloc(PUBKEYS_MAX, sizeof *keys);
    struct report_summary s = {0};
    struct sbuf text = {0};
    const char *file = NULL;
    size_t n_keys = 0;
    char err[512] = "";
    int rc = EXIT_USAGE;
    enum status st;

    if ((st = args_parse(&o, &file, keys, &n_keys, argc, argv, err, sizeof err)) != ST_OK) {
        rc = st == ST_NOT_FOUND ? 0 : st == ST_IO ? EXIT_NOT_VERIFIED : EXIT_USAGE;
        goto out;
    }
    rc = EXIT_NOT_VERIFIED;
    if (cli_read_file(&text, file, REPORT_TEXT_MAX, err, sizeof err) != ST_OK)
        goto out;
    if (report_verify(text.p != NULL ? text.p : "", text.len, (const uint8_t(*)[SIGN_PK_BYTES])keys,
                      n_keys, &s, err, sizeof err) != ST_OK) {
        if (o.json)
            printf("{\"valid\":false}\n");
        goto out;
    }
    if (o.json)
        print_json(&s);
    else
        print_text(&s);
    rc = 0;
    err[0] = '\0';
out:
    fflush(stdout);
    if (err[0] != '\0')
        fprintf(stderr, "difyguard: report verify: %s\n", err);
    report_summary_free(&s);
    sbuf_free(&text);
    free(keys);
    config_free(&o, report_table, N_REPORT_OPTS);
    return rc;
}

static void
report_usage(FILE *f)
{
    fprintf(f,
            "usage: difyguard report verify %s\n\n"
            "commands:\n"
            "  verify   verify a signed compliance report offline against its public key(s)\n",
            report_synopsis);
}

int
cmd_report(int argc, char **argv)
{
    if (argc < 2) {
        report_usage(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "help") == 0) {
        report_usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "verify") == 0)
        return report_verify_cmd(argc - 1, argv + 1);
    fprintf(stderr, "difyguard: report: unknown command '%s'\n", argv[1]);
    report_usage(stderr);
    return EXIT_USAGE;
}
