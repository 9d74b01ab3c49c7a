/* SPDX-License-Identifier: Apache-2.0 */
/* cli/cmd_app.c -- `difyguard app create|list|show|usage`: apps (tenants that own API keys) and their
 * per-day usage. */
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
static const struct opt app_create_opts[] = {
    BASE_OPTS,
    F("description", OPT_STRING, description, NULL, "what the app is for"),
};
static const struct opt app_usage_opts[] = {
    BASE_OPTS,
    F("from", OPT_STRING, from, NULL, "first day, YYYY-MM-DD (default: 30 days up to --to)"),
    F("to", OPT_STRING, to, NULL, "last day, YYYY-MM-DD (default: today, UTC)"),
};

static const struct col app_lines[] = {
    {"name:", "name", "-", NULL},
    {"description:", "description", "-", NULL},
    {"created:", "created_at", "-", NULL},
};
static const struct col app_rows[] = {
    {"NAME", "name", "-", NULL},
    {"CREATED", "created_at", "-", NULL},
    {"DESCRIPTION", "description", "", NULL},
};
static const struct col usage_rows[] = {
    {"DAY", "day", "-", NULL},         {"OPERATION", "op", "-", NULL},
    {"KEYRING", "keyring", "-", NULL}, {"OUTCOME", "outcome", "-", NULL},
    {"COUNT", "count", "0", NULL},
};

static int
app_create(struct run *r)
{
    json_t *body = json_pack("{s:s}", "name", r->pos[0]), *app = NULL;

    if (body == NULL ||
        (r->o.description != NULL &&
         json_object_set_new(body, "description", json_string(r->o.description)) != 0)) {
        json_decref(body);
        return admin_say(r, EXIT_USAGE, "NAME and --description must be valid UTF-8");
    }
    int rc = admin_api(r, &app, "POST", client_path("/v1/apps"), body);
    return admin_done(r, rc, app, app_lines, N(app_lines));
}

static int
app_show(struct run *r)
{
    json_t *app = NULL;
    int rc = admin_api(r, &app, "GET", client_path("/v1/apps/%s", r->pos[0]), NULL);
    return admin_done(r, rc, app, app_lines, N(app_lines));
}

static int
app_list(struct run *r)
{
    return admin_list(r, NULL, client_path("/v1/apps"), "apps", app_rows, N(app_rows));
}

/* --from and --to, defaulting to the 30 days up to today (UTC). */
static bool
usage_days(const struct run *r, char from[static 11], char to[static 11])
{
    struct tm tm = {0};
    time_t t = time(NULL);

    if ((r->o.to != NULL && !admin_day_arg(r, "to", r->o.to)) ||
        (r->o.from != NULL && !admin_day_arg(r, "from", r->o.from)))
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
    snprintf(title, sizeof title, "usage of app %s from %s to %s (UTC days)",
             admin_shown(s, r->pos[0]), from, to);
    return admin_list(r, title, client_path("/v1/apps/%s/usage?from=%s&to=%s", r->pos[0], from, to),
                      "usage", usage_rows, N(usage_rows));
}

static const struct sub app_subs[] = {
    SUB("create", "NAME [--description TEXT]", "Create an app (a tenant that owns API keys).",
        app_create_opts, 1, false, app_create),
    SUB("list", "", "List the apps.", base_opts, 0, false, app_list),
    SUB("show", "NAME", "Show one app.", base_opts, 1, false, app_show),
    SUB("usage", "NAME [--from DAY] [--to DAY]",
        "Show an app's request counts per day, operation, keyring and outcome.", app_usage_opts, 1,
        false, app_usage),
};

int
cmd_app(int argc, char **argv)
{
    return admin_dispatch("app", app_subs, N(app_subs), argc, argv);
}
