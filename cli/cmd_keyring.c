/* SPDX-License-Identifier: Apache-2.0 */
/* cli/cmd_keyring.c -- `difyguard keyring create|list|show|rotate`: keyrings and their key versions
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

static int
keyring_list(struct run *r)
{
    return admin_list(r, NULL, client_path("/v1/keyrings"), "keyrings", keyring_rows,
                      N(keyring_rows));
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
};

int
cmd_keyring(int argc, char **argv)
{
    return admin_dispatch("keyring", keyring_subs, N(keyring_subs), argc, argv);
}
