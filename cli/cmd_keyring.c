/* SPDX-License-Identifier: Apache-2.0 */
/* cli/cmd_keyring.c -- `difyguard keyring create|list|show|rotate|update|delete`: keyrings and their key versions
 * (which never leave the service). */
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

#include "cli/admin.h"
#include "cli/client.h"
#include "common/checked.h"
#include "common/clock.h"
#include "common/json/config.h"
#include "common/json/jsonx.h"
#include "common/xmem.h"

static const struct opt base_opts[] = {BASE_OPTS};
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

static const struct opt keyring_update_opts[] = {
    BASE_OPTS,
    F("min-decryption-version", OPT_STRING, min_decryption_version, NULL,
      "retire versions below N: they no longer decrypt (nor encrypt)"),
    F("min-encryption-version", OPT_STRING, min_encryption_version, NULL,
      "0 = the latest version (the default, as in Vault), or refuse explicit versions below N"),
    F("rotation-period", OPT_STRING, rotation_period, NULL,
      "rotate automatically this often: 90d, 12h, 1h30m, ... (at least 1h), 0 = never"),
    F("deletion-allowed", OPT_STRING, deletion_allowed_s, NULL,
      "true or false: whether `keyring delete` may crypto-shred the keyring"),
};

static const char *
rotation(char out[static CELL_BYTES], const json_t *kr)
{
    return admin_span(out, json_integer_value(json_object_get(kr, "rotation_period")), "off");
}

static void
print_versions(const json_t *kr)
{
    static const struct col rows[] = {
        {"VERSION", "version", "-", NULL},         {"CREATED", "created_at", "-", NULL},
        {"ENCRYPTIONS", "encryptions", "-", NULL}, {"LIMIT", "encryption_limit", "-", NULL},
        {"ROOT KEY", "root_key_id", "-", NULL},
    };
    putchar('\n');
    admin_print_rows(json_object_get(kr, "versions"), rows, N(rows));
}

static const struct col keyring_lines[] = {
    {"name:", "name", "-", NULL},
    {"algorithm:", "algorithm", "-", NULL},
    {"deterministic:", "deterministic", "-", NULL},
    {"rotation:", NULL, NULL, rotation},
    {"next rotation:", "next_rotation_at", "-", NULL},
    {"latest version:", "latest_version", "-", NULL},
    {"min decrypt:", "min_decryption_version", "-", NULL},
    {"min encrypt:", "min_encryption_version", "-", NULL},
    {"deletable:", "deletion_allowed", "-", NULL},
    {"created:", "created_at", "-", NULL},
    {"updated:", "updated_at", "-", NULL},
};
static const struct col keyring_rows[] = {
    {"NAME", "name", "-", NULL},
    {"ALGORITHM", "algorithm", "-", NULL},
    {"VERSION", "latest_version", "-", NULL},
    {"ROTATION", NULL, NULL, rotation},
    {"NEXT ROTATION", "next_rotation_at", "-", NULL},
};

/* Print a keyring answer (create, show, rotate): lines, then the table of its versions. */
static int
keyring_done(const struct run *r, int rc, json_t *kr)
{
    if (rc == 0 && r->o.json) {
        admin_print_json(kr);
    } else if (rc == 0) {
        admin_print_lines(kr, keyring_lines, N(keyring_lines));
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

    if (body == NULL ||
        (r->o.algorithm != NULL &&
         json_object_set_new(body, "algorithm", json_string(r->o.algorithm)) != 0)) {
        json_decref(body);
        return admin_say(r, EXIT_USAGE, "NAME and --algorithm must be valid UTF-8");
    }
    if (r->o.rotation_period != NULL) {
        if (!admin_duration_arg(r, &period, "rotation-period", r->o.rotation_period)) {
            json_decref(body);
            return EXIT_USAGE;
        }
        json_object_set_new(body, "rotation_period", json_integer(period));
    }
    if (r->o.deterministic)
        json_object_set_new(body, "deterministic", json_true());
    if (r->o.deletion_allowed)
        json_object_set_new(body, "deletion_allowed", json_true());
    int rc = admin_api(r, &kr, "POST", client_path("/v1/keyrings"), body);
    return keyring_done(r, rc, kr);
}

static int
keyring_show(struct run *r)
{
    json_t *kr = NULL;
    int rc = admin_api(r, &kr, "GET", client_path("/v1/keyrings/%s", r->pos[0]), NULL);
    return keyring_done(r, rc, kr);
}

static int
keyring_rotate(struct run *r)
{
    json_t *kr = NULL;
    int rc =
        admin_api(r, &kr, "POST", client_path("/v1/keyrings/%s/rotate", r->pos[0]), json_object());
    if (rc == 0 && !r->o.json)
        printf("Rotated keyring %s: new encryptions use version %lld; older versions still "
               "decrypt.\n\n",
               r->pos[0], (long long)json_integer_value(json_object_get(kr, "latest_version")));
    return keyring_done(r, rc, kr);
}

/* A version number flag: 0 or more. */
static bool
version_arg(const struct run *r, json_t *body, const char *flag, const char *key, const char *val)
{
    char *end, s[SHOW_MAX + 4];
    unsigned long long v;

    if (val == NULL)
        return true;
    v = strtoull(val, &end, 10);
    if (*val == '\0' || *val == '-' || *end != '\0' || v > UINT32_MAX) {
        admin_say(r, EXIT_USAGE, "--%s: expected a version number, got \"%s\"", flag,
                  admin_shown(s, val));
        return false;
    }
    json_object_set_new(body, key, json_integer((json_int_t)v));
    return true;
}

static int
keyring_update(struct run *r)
{
    json_t *body = json_object(), *kr = NULL;
    int64_t period = 0;
    char s[SHOW_MAX + 4];

    if (!version_arg(r, body, "min-decryption-version", "min_decryption_version",
                     r->o.min_decryption_version) ||
        !version_arg(r, body, "min-encryption-version", "min_encryption_version",
                     r->o.min_encryption_version))
        goto usage;
    if (r->o.rotation_period != NULL) {
        if (!admin_duration_arg(r, &period, "rotation-period", r->o.rotation_period))
            goto usage;
        json_object_set_new(body, "rotation_period", json_integer(period));
    }
    if (r->o.deletion_allowed_s != NULL) {
        if (strcmp(r->o.deletion_allowed_s, "true") != 0 &&
            strcmp(r->o.deletion_allowed_s, "false") != 0) {
            admin_say(r, EXIT_USAGE, "--deletion-allowed: expected true or false, got \"%s\"",
                      admin_shown(s, r->o.deletion_allowed_s));
            goto usage;
        }
        json_object_set_new(body, "deletion_allowed",
                            json_boolean(strcmp(r->o.deletion_allowed_s, "true") == 0));
    }
    if (json_object_size(body) == 0) {
        json_decref(body);
        return admin_say(r, EXIT_USAGE,
                         "nothing to change: give --min-decryption-version, "
                         "--min-encryption-version, --rotation-period or --deletion-allowed");
    }
    int rc = admin_api(r, &kr, "PATCH", client_path("/v1/keyrings/%s", r->pos[0]), body);
    return keyring_done(r, rc, kr);
usage:
    json_decref(body);
    return EXIT_USAGE;
}

static int
keyring_delete(struct run *r)
{
    json_t *none = NULL;
    int rc = admin_api(r, &none, "DELETE", client_path("/v1/keyrings/%s", r->pos[0]), NULL);
    json_decref(none);
    if (rc == 0 && r->o.json) {
        json_t *j = json_pack("{s:b, s:s}", "deleted", 1, "name", r->pos[0]);
        admin_print_json(j);
        json_decref(j);
    } else if (rc == 0) {
        printf("Deleted keyring %s: its key versions are destroyed (crypto-shredded); its "
               "ciphertexts can no longer be decrypted.\n",
               r->pos[0]);
    }
    return rc;
}

/* Every page of GET /v1/keyrings (pages of 1,000 by name). */
static int
keyring_list(struct run *r)
{
    json_t *all = json_array();
    char *cursor = NULL;
    int rc = 0;

    for (;;) {
        json_t *page = NULL;
        char *path = cursor == NULL ? client_path("/v1/keyrings")
                                    : client_path("/v1/keyrings?cursor=%s", cursor);
        free(cursor);
        cursor = NULL;
        if ((rc = admin_api(r, &page, "GET", path, NULL)) != 0)
            break;
        json_array_extend(all, json_object_get(page, "keyrings"));
        const char *next = json_string_value(json_object_get(page, "next_cursor"));
        if (next != NULL)
            cursor = xstrdup(next);
        json_decref(page);
        if (cursor == NULL)
            break;
    }
    if (rc == 0 && r->o.json) {
        json_t *j = json_pack("{s:O, s:n}", "keyrings", all, "next_cursor");
        admin_print_json(j);
        json_decref(j);
    } else if (rc == 0) {
        admin_print_rows(all, keyring_rows, N(keyring_rows));
    }
    json_decref(all);
    return rc;
}

static const struct sub keyring_subs[] = {
    SUB("create",
        "NAME [--algorithm A] [--deterministic] [--rotation-period 90d] "
        "[--deletion-allowed]",
        "Create a keyring (its key versions never leave the service).", keyring_create_opts, 1,
        false, keyring_create),
    SUB("list", "", "List the keyrings.", base_opts, 0, false, keyring_list),
    SUB("show", "NAME", "Show a keyring and its key versions.", base_opts, 1, false, keyring_show),
    SUB("rotate", "NAME", "Add a key version: new encryptions use it, older ones still decrypt.",
        base_opts, 1, false, keyring_rotate),
    SUB("update",
        "NAME [--min-decryption-version N] [--min-encryption-version N] "
        "[--rotation-period 90d] [--deletion-allowed true|false]",
        "Retire versions, change the rotation period or allow deletion.", keyring_update_opts, 1,
        false, keyring_update),
    SUB("delete", "NAME",
        "Crypto-shred a keyring (needs deletion allowed): its ciphertexts are lost for good.",
        base_opts, 1, false, keyring_delete),
};

int
cmd_keyring(int argc, char **argv)
{
    return admin_dispatch("keyring", keyring_subs, N(keyring_subs), argc, argv);
}
