/* SPDX-License-Identifier: Apache-2.0 */
/* cli/cmd_cert.c -- `difyguard cert add|list|show|history|remove`: the certificate inventory
 * over the API (GET/POST /v1/certificates, GET/DELETE /v1/certificates/{id}, .../history).
 * What a source is (--file, --dir, --pem-file, --endpoint and their settings) is given by flags
 * only. Certificates are public: nothing here is secret but the token. */
#include "cli/cmd_admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "cli/admin.h"
#include "cli/client.h"
#include "common/json/config.h"
#include "common/xmem.h"

#define PEM_FILE_MAX (1u << 20)

static const struct opt base_opts[] = {BASE_OPTS};
static const struct opt add_opts[] = {
    BASE_OPTS,
    F("file", OPT_STRING, file, NULL, "watch a PEM or DER file (a bundle: every certificate)"),
    F("dir", OPT_STRING, dir, NULL, "watch a Kubernetes-style secret directory (tls.crt, ca.crt)"),
    F("recursive", OPT_BOOL, recursive, NULL, "--dir: also its subdirectories"),
    F("pem-file", OPT_STRING, pem_file, NULL, "upload the certificates of this local PEM file"),
    F("endpoint", OPT_STRING, endpoint, NULL, "probe a TLS endpoint HOST:PORT on a schedule"),
    F("server-name", OPT_STRING, server_name, NULL, "--endpoint: SNI (default the host)"),
    F("renew-before", OPT_STRING, renew_before, NULL,
      "renewal is due this long before expiry (default: two thirds into the lifetime)"),
    F("warning", OPT_STRING, warning, NULL, "warning below this much time left (default 30d)"),
    F("critical", OPT_STRING, critical, NULL, "critical below this much time left (default 7d)"),
    F("self-signed-ok", OPT_BOOL, self_signed_ok, NULL,
      "a self-signed leaf is expected here (not flagged weak)"),
};

static const struct col source_rows[] = {
    {"ID", "id", "-", NULL},         {"KIND", "kind", "-", NULL},   {"ORIGIN", "origin", "-", NULL},
    {"STATUS", "status", "-", NULL}, {"ERROR", "error", "-", NULL},
};
static const struct col source_lines[] = {
    {"id:", "id", "-", NULL},
    {"kind:", "kind", "-", NULL},
    {"origin:", "origin", "-", NULL},
    {"path:", "path", "-", NULL},
    {"endpoint:", "endpoint", "-", NULL},
    {"status:", "status", "-", NULL},
    {"error:", "error", "-", NULL},
    {"checked:", "checked_at", "-", NULL},
    {"last ok:", "last_ok_at", "-", NULL},
    {"read errors:", "read_errors", "-", NULL},
    {"rotations:", "rotations", "-", NULL},
};
static const struct col cert_rows[] = {
    {"SLOT", "slot", "-", NULL},           {"STATUS", "status", "-", NULL},
    {"SUBJECT", "subject", "-", NULL},     {"SERIAL", "serial", "-", NULL},
    {"NOT AFTER", "not_after", "-", NULL}, {"CHAIN", NULL, NULL, NULL},
    {"WEAK", "weak", "-", NULL},
};
static const struct col history_rows[] = {
    {"SEEN", "seen_at", "-", NULL},      {"SLOT", "slot", "-", NULL},
    {"SERIAL", "serial", "-", NULL},     {"NOT AFTER", "not_after", "-", NULL},
    {"ROTATION", "rotation", "-", NULL}, {"FINGERPRINT", "sha256_fingerprint", "-", NULL},
};

static const char *
chain_cell(char out[static CELL_BYTES], const json_t *c)
{
    const json_t *v = json_object_get(json_object_get(c, "chain"), "verified");
    snprintf(out, CELL_BYTES, "%s", json_is_true(v) ? "verified" : json_is_false(v) ? "no" : "-");
    return out;
}

static int
source_done(const struct run *r, int rc, json_t *src)
{
    struct col rows[sizeof cert_rows / sizeof cert_rows[0]];

    memcpy(rows, cert_rows, sizeof rows);
    rows[5].fn = chain_cell;
    if (rc == 0 && r->o.json) {
        admin_print_json(src);
    } else if (rc == 0) {
        admin_print_lines(src, source_lines, N(source_lines));
        putchar('\n');
        admin_print_rows(json_object_get(src, "certificates"), rows, N(rows));
    }
    json_decref(src);
    return rc;
}

/* The local PEM file's text (at most 1 MiB), or NULL after a message. */
static char *
read_pem(const struct run *r, const char *path)
{
    char shown[SHOW_MAX + 4];
    struct stat sb;
    FILE *f = fopen(path, "rb");
    char *buf = NULL;

    if (f == NULL || fstat(fileno(f), &sb) != 0 || sb.st_size <= 0 ||
        sb.st_size > (off_t)PEM_FILE_MAX) {
        admin_say(r, EXIT_USAGE, "--pem-file %s: cannot read it (or empty, or over 1 MiB)",
                  admin_shown(shown, path));
    } else {
        buf = xmalloc((size_t)sb.st_size + 1);
        size_t n = fread(buf, 1, (size_t)sb.st_size, f);
        buf[n] = '\0';
    }
    if (f != NULL)
        fclose(f);
    return buf;
}

/* The source's target: exactly one of --file, --dir, --pem-file, --endpoint. */
static int
add_target(const struct run *r, json_t *body)
{
    const struct admin_opts *o = &r->o;
    int given =
        (o->file != NULL) + (o->dir != NULL) + (o->pem_file != NULL) + (o->endpoint != NULL);

    if (given != 1)
        return admin_say(r, EXIT_USAGE,
                         "give exactly one of --file, --dir, --pem-file and "
                         "--endpoint");
    if ((o->recursive && o->dir == NULL) || (o->server_name != NULL && o->endpoint == NULL))
        return admin_say(r, EXIT_USAGE,
                         "--recursive goes with --dir, --server-name with "
                         "--endpoint");
    if (o->file != NULL || o->dir != NULL) {
        json_object_set_new(body, "kind", json_string(o->file != NULL ? "file" : "dir"));
        json_object_set_new(body, "path", json_string(o->file != NULL ? o->file : o->dir));
    } else if (o->endpoint != NULL) {
        json_object_set_new(body, "kind", json_string("endpoint"));
        json_object_set_new(body, "endpoint", json_string(o->endpoint));
        if (o->server_name != NULL)
            json_object_set_new(body, "server_name", json_string(o->server_name));
    } else {
        char *pem = read_pem(r, o->pem_file);
        if (pem == NULL)
            return EXIT_USAGE;
        json_object_set_new(body, "kind", json_string("pem"));
        json_object_set_new(body, "pem", json_string(pem));
        free(pem);
    }
    if (o->recursive)
        json_object_set_new(body, "recursive", json_true());
    if (o->self_signed_ok)
        json_object_set_new(body, "expect_chain", json_false());
    return 0;
}

static int
cert_add(struct run *r)
{
    json_t *body = json_pack("{s:s}", "id", r->pos[0]), *src = NULL;
    const char *names[] = {"renew_before", "warning", "critical"};
    const char *flags[] = {"renew-before", "warning", "critical"};
    const char *vals[] = {r->o.renew_before, r->o.warning, r->o.critical};
    int64_t secs = 0;
    int rc;

    if (body == NULL)
        return admin_say(r, EXIT_USAGE, "ID must be valid UTF-8");
    if ((rc = add_target(r, body)) != 0) {
        json_decref(body);
        return rc;
    }
    for (size_t i = 0; i < 3; i++) {
        if (vals[i] == NULL)
            continue;
        if (!admin_duration_arg(r, &secs, flags[i], vals[i])) {
            json_decref(body);
            return EXIT_USAGE;
        }
        json_object_set_new(body, names[i], json_integer(secs));
    }
    rc = admin_api(r, &src, "POST", client_path("/v1/certificates"), body);
    return source_done(r, rc, src);
}

static int
cert_list(struct run *r)
{
    return admin_list(r, NULL, client_path("/v1/certificates"), "sources", source_rows,
                      N(source_rows));
}

static int
cert_show(struct run *r)
{
    json_t *src = NULL;
    int rc = admin_api(r, &src, "GET", client_path("/v1/certificates/%s", r->pos[0]), NULL);
    return source_done(r, rc, src);
}

static int
cert_history(struct run *r)
{
    return admin_list(r, NULL, client_path("/v1/certificates/%s/history", r->pos[0]), "history",
                      history_rows, N(history_rows));
}

static int
cert_remove(struct run *r)
{
    json_t *none = NULL;
    int rc = admin_api(r, &none, "DELETE", client_path("/v1/certificates/%s", r->pos[0]), NULL);
    if (rc == 0 && !r->o.json)
        printf("Removed certificate source %s and its history.\n", r->pos[0]);
    else if (rc == 0)
        printf("{}\n");
    json_decref(none);
    return rc;
}

static const struct sub cert_subs[] = {
    SUB("add",
        "ID (--file PATH | --dir PATH [--recursive] | --pem-file PATH | --endpoint HOST:PORT "
        "[--server-name NAME]) [--renew-before D] [--warning D] [--critical D]",
        "Watch a certificate source: it is read (or probed) at once and on a schedule.", add_opts,
        1, false, cert_add),
    SUB("list", "", "List the certificate sources and their status.", base_opts, 0, false,
        cert_list),
    SUB("show", "ID", "Show a source and each of its certificates.", base_opts, 1, false,
        cert_show),
    SUB("history", "ID", "Every certificate seen at the source, newest first (rotations).",
        base_opts, 1, false, cert_history),
    SUB("remove", "ID", "Stop watching a source added over the API (and drop its history).",
        base_opts, 1, false, cert_remove),
};

int
cmd_cert(int argc, char **argv)
{
    return admin_dispatch("cert", cert_subs, N(cert_subs), argc, argv);
}
