/* SPDX-License-Identifier: Apache-2.0 */
/* cli/cmd_key.c -- `difyguard key create|list|show|revoke|rotate`: an app's API keys. A new key is
 * printed once, alone on the last line, then wiped. */
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

/* active, grace (rotated, still accepted), retired (grace over), expired or revoked. */
static const char *
key_status(char out[static CELL_BYTES], const json_t *k)
{
    const char *rev = json_string_value(json_object_get(k, "revoked_at"));
    const char *exp = json_string_value(json_object_get(k, "expires_at"));
    const char *grace = json_string_value(json_object_get(k, "grace_until"));
    char now[32];

    clock_rfc3339(now, (int64_t)time(NULL)); /* same format: compares as text */
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
    {"id:", "id", "-", NULL},
    {"app:", "app", "-", NULL},
    {"status:", NULL, NULL, key_status},
    {"scopes:", "scopes", "-", NULL},
    {"keyrings:", "keyrings", "all", NULL},
    {"rate:", NULL, NULL, key_rate},
    {"created:", "created_at", "-", NULL},
    {"expires:", "expires_at", "never", NULL},
    {"revoked:", "revoked_at", "-", NULL},
    {"grace until:", "grace_until", "-", NULL},
    {"last used:", "last_used_at", "never", NULL},
};
static const struct col key_rows[] = {
    {"ID", "id", "-", NULL},
    {"STATUS", NULL, NULL, key_status},
    {"SCOPES", "scopes", "-", NULL},
    {"KEYRINGS", "keyrings", "all", NULL},
    {"EXPIRES", "expires_at", "never", NULL},
    {"LAST USED", "last_used_at", "never", NULL},
};

/* The request body of key create; NULL (and the message printed) on a usage error. */
static json_t *
key_create_body(const struct run *r)
{
    json_t *body = json_object(), *a;
    int64_t life = 0;

    if (r->scopes.n == 0) {
        admin_say(r, EXIT_USAGE, "--scope is required (e.g. --scope encrypt,decrypt)");
        goto fail;
    }
    if (r->o.expires_in != NULL && !admin_duration_arg(r, &life, "expires-in", r->o.expires_in))
        goto fail;
    if ((a = admin_str_array(&r->scopes)) == NULL || json_object_set_new(body, "scopes", a) != 0 ||
        (r->keyrings.n > 0 && ((a = admin_str_array(&r->keyrings)) == NULL ||
                               json_object_set_new(body, "keyrings", a) != 0))) {
        admin_say(r, EXIT_USAGE, "--scope and --keyring values must be valid UTF-8");
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
    if ((rc = admin_api(r, &k, "POST", client_path("/v1/apps/%s/keys", r->pos[0]), body)) == 0) {
        if (!r->o.json)
            admin_print_lines(k, key_lines, N(key_lines));
        rc = admin_print_secret(r, k);
    }
    json_decref(k);
    return rc;
}

static int
key_list(struct run *r)
{
    return admin_list(r, NULL, client_path("/v1/apps/%s/keys", r->pos[0]), "keys", key_rows,
                      N(key_rows));
}

/* There is no GET for one key: it is taken from the list. */
static int
key_show(struct run *r)
{
    json_t *j = NULL, *k, *found = NULL;
    char s[SHOW_MAX + 4];
    size_t i;
    int rc = admin_api(r, &j, "GET", client_path("/v1/apps/%s/keys", r->pos[0]), NULL);

    if (rc != 0)
        goto out;
    json_array_foreach (json_object_get(j, "keys"), i, k) {
        const char *id = json_string_value(json_object_get(k, "id"));
        if (id != NULL && strcmp(id, r->pos[1]) == 0)
            found = k;
    }
    if (found == NULL)
        rc = admin_say(r, EXIT_FAIL, "app %s has no key %s", r->pos[0], admin_shown(s, r->pos[1]));
    else if (r->o.json)
        admin_print_json(found);
    else
        admin_print_lines(found, key_lines, N(key_lines));
out:
    json_decref(j);
    return rc;
}

static int
key_revoke(struct run *r)
{
    json_t *j = NULL;
    int rc =
        admin_api(r, &j, "DELETE", client_path("/v1/apps/%s/keys/%s", r->pos[0], r->pos[1]), NULL);

    json_decref(j);
    if (rc != 0)
        return rc;
    if (r->o.json) {
        j = json_pack("{s:s, s:s, s:b}", "app", r->pos[0], "id", r->pos[1], "revoked", 1);
        admin_print_json(j);
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
    int64_t grace = 86400; /* the server's default */
    char until[32], g[32];
    int rc;

    if (r->o.grace_period != NULL) {
        if (!admin_duration_arg(r, &grace, "grace-period", r->o.grace_period)) {
            json_decref(body);
            return EXIT_USAGE;
        }
        json_object_set_new(body, "grace_period", json_integer(grace));
    }
    rc = admin_api(r, &k, "POST", client_path("/v1/apps/%s/keys/%s/rotate", r->pos[0], r->pos[1]),
                   body);
    if (rc == 0) {
        if (!r->o.json) {
            clock_rfc3339(until, checked_time_add((int64_t)time(NULL), grace));
            printf("Rotated key %s of app %s: it keeps working until about %s (grace period "
                   "%s), then it is refused. The new key:\n",
                   r->pos[1], r->pos[0], until, admin_span(g, grace, "0s"));
            admin_print_lines(k, key_lines, N(key_lines));
        }
        rc = admin_print_secret(r, k);
    }
    json_decref(k);
    return rc;
}

static const struct sub key_subs[] = {
    SUB("create",
        "APP --scope S [--scope S ...] [--keyring K ...] [--expires-in 90d] "
        "[--rate N] [--burst N]",
        "Issue an API key for APP. The key is printed once, alone on the last line (with\n"
        "--json: the \"key\" field); it cannot be shown again. --scope and --keyring repeat or\n"
        "take comma-separated lists.",
        key_create_opts, 1, true, key_create),
    SUB("list", "APP", "List APP's keys (never their secret).", base_opts, 1, false, key_list),
    SUB("show", "APP ID", "Show one of APP's keys (never its secret).", base_opts, 2, false,
        key_show),
    SUB("revoke", "APP ID", "Revoke a key: it is refused from the next request on.", base_opts, 2,
        false, key_revoke),
    SUB("rotate", "APP ID [--grace-period 24h]",
        "Issue a new key with the same scopes, keyrings and limits. The old key keeps working\n"
        "for the grace period, then it is refused. The new key is printed once, alone on the\n"
        "last line (with --json: the \"key\" field).",
        key_rotate_opts, 2, false, key_rotate),
};

int
cmd_key(int argc, char **argv)
{
    return admin_dispatch("key", key_subs, N(key_subs), argc, argv);
}
