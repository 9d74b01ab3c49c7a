/* SPDX-License-Identifier: Apache-2.0 */
/* cli/cmd_audit.c -- `difyguard audit events|public-key|export` over the API (issue 14); the
 * offline `audit verify` is cli/audit_verify.c. */
#include "cli/cmd_admin.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/admin.h"
#include "cli/audit_verify.h"
#include "cli/client.h"
#include "common/json/config.h"
#include "common/sbuf.h"
#include "common/xmem.h"

static const struct opt base_opts[] = {BASE_OPTS};
static const struct opt events_opts[] = {
    BASE_OPTS,
    O("app", OPT_STRING, app, NULL, "events of one app"),
    O("keyring", OPT_STRING, keyring, NULL, "events of one keyring"),
    O("op", OPT_STRING, op, NULL, "one operation: encrypt, keyring.create, ..."),
    O("outcome", OPT_STRING, outcome, NULL, "ok, denied, invalid or error"),
    O("from", OPT_STRING, from, NULL, "from this time: a UTC day, RFC 3339 or unix seconds"),
    O("to", OPT_STRING, to, NULL, "before this time (a day: up to its end)"),
    O("order", OPT_STRING, order, NULL, "desc (newest first, the default) or asc"),
    O("limit", OPT_UINT, limit, "100", "events per page (1 to 1000)"),
    O("all", OPT_BOOL, all, NULL, "every page, not only the first"),
};
static const struct opt export_opts[] = {
    BASE_OPTS,
    F("output-file", OPT_STRING, out_file, NULL,
      "write the trail here (-o FILE); the public keys go to FILE.keys"),
    O("chain-id", OPT_STRING, chain_id, NULL, "only this chain's lines after --after-seq"),
    O("after-seq", OPT_STRING, after_seq, NULL, "with --chain-id: lines after this seq"),
};

static const struct col event_rows[] = {
    {"TIME", "time", "-", NULL},
    {"OP", "op", "-", NULL},
    {"STATUS", "status", "-", NULL},
    {"OUTCOME", "outcome", "-", NULL},
    {"APP", "app", "-", NULL},
    {"KEYRING", "keyring", "-", NULL},
    {"KEY VERSION", "key_version", "-", NULL},
};
static const struct col key_rows[] = {
    {"KEY ID", "key_id", "-", NULL},
    {"ACTIVE", "active", "-", NULL},
    {"CREATED", "created_at", "-", NULL},
    {"PUBLIC KEY", "public_key", "-", NULL},
};

/* Add "&name=value" (or "?name=value" first) to the query, value escaped. */
static void
query_add(struct sbuf *q, const char *name, const char *value)
{
    if (value == NULL)
        return;
    char *esc = client_path("%s", value);
    sbuf_addf(q, "%s%s=%s", q->len == 0 ? "?" : "&", name, esc);
    free(esc);
}

static int
audit_events(struct run *r)
{
    struct sbuf q = {0};
    json_t *all = json_array();
    char limit[24], *cursor = NULL;
    int rc = 0;

    snprintf(limit, sizeof limit, "%llu", (unsigned long long)r->o.limit);
    query_add(&q, "app", r->o.app);
    query_add(&q, "keyring", r->o.keyring);
    query_add(&q, "op", r->o.op);
    query_add(&q, "outcome", r->o.outcome);
    query_add(&q, "from", r->o.from);
    query_add(&q, "to", r->o.to);
    query_add(&q, "order", r->o.order);
    query_add(&q, "limit", limit);
    for (;;) {
        struct sbuf path = {0};
        json_t *page = NULL;
        sbuf_addf(&path, "/v1/audit/events%s", q.p);
        if (cursor != NULL)
            query_add(&path, "cursor", cursor);
        free(cursor);
        cursor = NULL;
        size_t len;
        if ((rc = admin_api(r, &page, "GET", sbuf_take(&path, &len), NULL)) != 0)
            break;
        json_array_extend(all, json_object_get(page, "events"));
        const char *next = json_string_value(json_object_get(page, "next_cursor"));
        if (r->o.all && next != NULL)
            cursor = xstrdup(next);
        else if (next != NULL && !r->o.json)
            fprintf(stderr, "difyguard: audit events: more events: --all lists every page\n");
        json_decref(page);
        if (cursor == NULL)
            break;
    }
    if (rc == 0 && r->o.json) {
        json_t *j = json_pack("{s:O}", "events", all);
        admin_print_json(j);
        json_decref(j);
    } else if (rc == 0) {
        admin_print_rows(all, event_rows, N(event_rows));
    }
    json_decref(all);
    sbuf_free(&q);
    return rc;
}

static int
audit_public_key(struct run *r)
{
    json_t *j = NULL;
    int rc = admin_api(r, &j, "GET", client_path("/v1/audit/public-key"), NULL);
    if (rc == 0 && r->o.json)
        admin_print_json(j);
    else if (rc == 0)
        admin_print_rows(json_object_get(j, "keys"), key_rows, N(key_rows));
    json_decref(j);
    return rc;
}

/* Write the accepted public keys (one base64 key a line, as `audit verify --public-key @FILE`
 * reads them) to path. */
static int
write_keys(struct run *r, const char *path, size_t *n)
{
    json_t *j = NULL;
    size_t i;
    json_t *k;
    int rc = admin_api(r, &j, "GET", client_path("/v1/audit/public-key"), NULL);
    FILE *f = NULL;

    *n = 0;
    if (rc != 0)
        goto out;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || (f = fdopen(fd, "w")) == NULL) {
        rc = admin_say(r, EXIT_FAIL, "%s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        goto out;
    }
    json_array_foreach (json_object_get(j, "keys"), i, k) {
        const char *pk = json_string_value(json_object_get(k, "public_key"));
        if (pk != NULL) {
            fprintf(f, "%s\n", pk);
            (*n)++;
        }
    }
    if (fclose(f) != 0)
        rc = admin_say(r, EXIT_FAIL, "%s: %s", path, strerror(errno));
out:
    json_decref(j);
    return rc;
}

static int
audit_export(struct run *r)
{
    struct sbuf q = {0};
    char keys[4096];
    size_t n_keys = 0, len;
    FILE *f = stdout;
    int rc;

    if (r->o.after_seq != NULL && r->o.chain_id == NULL)
        return admin_say(r, EXIT_USAGE, "--after-seq needs --chain-id");
    query_add(&q, "chain_id", r->o.chain_id);
    query_add(&q, "after_seq", r->o.after_seq);
    if (r->o.out_file != NULL && strcmp(r->o.out_file, "-") != 0) {
        int fd = open(r->o.out_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0 || (f = fdopen(fd, "w")) == NULL) {
            if (fd >= 0)
                close(fd);
            sbuf_free(&q);
            return admin_say(r, EXIT_FAIL, "%s: %s", r->o.out_file, strerror(errno));
        }
    }
    struct sbuf path = {0};
    sbuf_addf(&path, "/v1/audit/export%s", q.p != NULL ? q.p : "");
    sbuf_free(&q);
    rc = admin_api_file(r, "GET", sbuf_take(&path, &len), f);
    if (f != stdout && fclose(f) != 0 && rc == 0)
        rc = admin_say(r, EXIT_FAIL, "%s: %s", r->o.out_file, strerror(errno));
    if (rc != 0 || f == stdout)
        return rc;
    snprintf(keys, sizeof keys, "%s.keys", r->o.out_file);
    if ((rc = write_keys(r, keys, &n_keys)) != 0)
        return rc;
    fprintf(stderr,
            "Wrote the audit trail to %s and its %zu public key(s) to %s.\n"
            "Verify it offline with: difyguard audit verify %s --public-key @%s\n"
            "(an auditor should compare those keys with ones obtained independently)\n",
            r->o.out_file, n_keys, keys, r->o.out_file, keys);
    return 0;
}

static const struct sub audit_subs[] = {
    SUB("events",
        "[--app A] [--keyring K] [--op OP] [--outcome O] [--from T] [--to T] [--order asc|desc] "
        "[--limit N] [--all]",
        "List audit events, newest first.", events_opts, 0, false, audit_events),
    SUB("public-key", "", "Show the audit signing keys auditors verify exports with.", base_opts, 0,
        false, audit_public_key),
    SUB("export", "[-o FILE] [--chain-id C --after-seq N]",
        "Export the trail as NDJSON (stdout, or FILE plus FILE.keys for `audit verify`).",
        export_opts, 0, false, audit_export),
};

static int
cmd_audit_api(int argc, char **argv)
{
    /* -o FILE is --output-file FILE (--output is the output format). */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-o") == 0)
            argv[i] = (char *)"--output-file";
        else if (strncmp(argv[i], "-o", 2) == 0 && argv[i][2] != '\0') {
            static char buf[4200];
            snprintf(buf, sizeof buf, "--output-file=%s", argv[i] + 2);
            argv[i] = buf;
        }
    }
    return admin_dispatch("audit", audit_subs, N(audit_subs), argc, argv);
}

int
cmd_audit_all(int argc, char **argv)
{
    if (argc >= 2 && (strcmp(argv[1], "events") == 0 || strcmp(argv[1], "public-key") == 0 ||
                      strcmp(argv[1], "export") == 0))
        return cmd_audit_api(argc, argv);
    return cmd_audit(argc, argv); /* verify, help */
}
