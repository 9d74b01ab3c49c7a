/* SPDX-License-Identifier: Apache-2.0 */
/* server/inventory.c -- the inventory snapshot from the managers' own views (keyring_info,
 * app_info, apikey_info, audit_status): no store access of its own, no secrets. */
#include "server/inventory.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/xmem.h"

static void
take_keyring(struct inv_keyring *out, const struct keyring_info *in)
{
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", in->name);
    snprintf(out->algorithm, sizeof out->algorithm, "%s", in->algorithm);
    out->deterministic = in->deterministic;
    out->rotation_period = in->rotation_period;
    out->encryption_limit = in->encryption_limit;
    out->latest_version = in->latest_version;
    out->n_versions = in->n_versions;
    out->versions = xcalloc(in->n_versions > 0 ? in->n_versions : 1, sizeof *out->versions);
    for (size_t i = 0; i < in->n_versions; i++) {
        out->versions[i].version = in->versions[i].version;
        out->versions[i].created_at = in->versions[i].created_at;
        out->versions[i].encryptions = in->versions[i].encryptions;
    }
}

static bool
all_visible(const void *arg, const char *name)
{
    (void)arg;
    (void)name;
    return true;
}

static enum status
take_keyrings(struct inventory *inv, struct keyrings *k)
{
    struct keyring_info *v = NULL;
    size_t n = 0;
    enum status st = keyrings_list(k, all_visible, NULL, &v, &n);

    if (st != ST_OK)
        return st;
    inv->keyrings = xcalloc(n > 0 ? n : 1, sizeof *inv->keyrings);
    for (size_t i = 0; i < n; i++)
        take_keyring(&inv->keyrings[inv->n_keyrings++], &v[i]);
    keyring_infos_free(v, n);
    return ST_OK;
}

static size_t
count_words(const char *s)
{
    size_t n = 0;
    for (const char *p = s; *p != '\0'; p++)
        n += *p != ' ' && (p == s || p[-1] == ' ');
    return n;
}

static bool
active(const struct apikey_info *k, int64_t now)
{
    return k->revoked_at == 0 && (k->expires_at == 0 || k->expires_at > now);
}

/* One app and its keys. */
static enum status
take_app(struct inventory *inv, struct apps *a, const struct app_info *app, int64_t now)
{
    struct inv_app *out = &inv->apps[inv->n_apps++];
    struct apikey_info *keys = NULL;
    size_t n = 0;
    enum status st;

    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", app->name);
    out->created_at = app->created_at;
    if ((st = apps_key_list(a, app->name, &keys, &n)) != ST_OK)
        return st;
    inv->keys = xrealloc(inv->keys, (inv->n_keys + n + 1) * sizeof *inv->keys);
    for (size_t i = 0; i < n; i++) {
        struct inv_apikey *k = &inv->keys[inv->n_keys++];
        memset(k, 0, sizeof *k);
        snprintf(k->id, sizeof k->id, "%s", keys[i].id);
        snprintf(k->app, sizeof k->app, "%s", app->name);
        snprintf(k->scopes, sizeof k->scopes, "%s", keys[i].scopes);
        k->n_scopes = count_words(keys[i].scopes);
        k->all_keyrings = keys[i].keyrings[0] == '\0';
        k->created_at = keys[i].created_at;
        k->expires_at = keys[i].expires_at;
        k->revoked_at = keys[i].revoked_at;
        k->last_used_at = keys[i].last_used_at;
        out->active_keys += active(&keys[i], now);
    }
    free(keys);
    return ST_OK;
}

static enum status
take_apps(struct inventory *inv, struct apps *a, int64_t now)
{
    struct app_info *apps = NULL;
    size_t n = 0;
    enum status st = apps_list(a, &apps, &n);

    if (st != ST_OK)
        return st;
    inv->apps = xcalloc(n > 0 ? n : 1, sizeof *inv->apps);
    for (size_t i = 0; i < n && st == ST_OK; i++)
        st = take_app(inv, a, &apps[i], now);
    free(apps);
    return st;
}

static void
take_audit(struct inv_audit *out, const struct audit *au)
{
    struct audit_status s;

    memset(out, 0, sizeof *out);
    if (au == NULL)
        return;
    audit_status(au, &s);
    out->enabled = true;
    out->durable = s.durable;
    out->write_failures = s.write_failures;
    out->unverified_chains = s.unverified_chains;
    out->retention = s.retention;
    out->verified_at = s.verified_at_ms / 1000;
    out->verified_ok = s.verified_ok;
}

static void
take_facts(struct inventory *inv, const struct inventory_facts *f)
{
    struct stat sb;

    inv->root_key.source = INV_KEY_FILE;
    snprintf(inv->root_key.id, sizeof inv->root_key.id, "%s",
             f->root_key_id != NULL ? f->root_key_id : "");
    if (f->root_key_path != NULL && stat(f->root_key_path, &sb) == 0) {
        inv->root_key.mode_known = true;
        inv->root_key.mode = (unsigned)(sb.st_mode & 07777);
    }
    inv->n_listeners = f->n_listeners;
    inv->listeners = xcalloc(f->n_listeners > 0 ? f->n_listeners : 1, sizeof *inv->listeners);
    memcpy(inv->listeners, f->listeners, f->n_listeners * sizeof *inv->listeners);
}

enum status
inventory_take(struct keyrings *k, struct apps *a, const struct audit *au, struct certs *c,
               const struct inventory_facts *f, int64_t now, struct inventory *out)
{
    enum status st;

    memset(out, 0, sizeof *out);
    out->now = now;
    snprintf(out->version, sizeof out->version, "%s", DG_VERSION);
    take_facts(out, f);
    take_audit(&out->audit, au);
    if ((st = take_keyrings(out, k)) == ST_OK)
        st = take_apps(out, a, now);
    if (st == ST_OK && c != NULL) { /* every source and certificate, errors included */
        out->certs_tracked = true;
        st = certs_inventory(c, now, &out->certs, &out->n_certs);
    }
    if (st != ST_OK)
        inventory_free(out);
    return st;
}
