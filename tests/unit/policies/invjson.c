/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/policies/invjson.c -- inventories.json to struct inventory (see invjson.h). */
#include "invjson.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "common/json/config.h"
#include "common/xmem.h"

char *
invjson_read_source(const char *rel, size_t *len)
{
    const char *src = getenv("DG_SOURCE_DIR");
    char path[1024];
    FILE *f;
    char *buf;
    long n;

    snprintf(path, sizeof path, "%s/%s", src != NULL ? src : ".", rel);
    if ((f = fopen(path, "rb")) == NULL)
        fail_msg("cannot open %s (set DG_SOURCE_DIR)", path);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = xmalloc((size_t)n + 1);
    if (fread(buf, 1, (size_t)n, f) != (size_t)n)
        fail_msg("cannot read %s", path);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static int64_t
duration_of(const json_t *v, const char *what)
{
    int64_t d = 0;
    if (json_is_integer(v))
        return json_integer_value(v);
    if (!json_is_string(v) ||
        config_duration(&d, json_string_value(v), json_string_length(v)) != ST_OK)
        fail_msg("%s: not a duration", what);
    return d;
}

/* An integer (absolute; 0 = none), "+Nd"/"-Nd" from now, or RFC 3339 UTC. */
static int64_t
time_of(const json_t *v, int64_t now, const char *what)
{
    const char *s = json_string_value(v);
    struct tm tm = {0};

    if (v == NULL)
        return 0;
    if (json_is_integer(v))
        return json_integer_value(v);
    if (s == NULL)
        fail_msg("%s: not a time", what);
    if (s[0] == '+' || s[0] == '-') {
        int64_t d = 0;
        if (config_duration(&d, s + 1, strlen(s + 1)) != ST_OK)
            fail_msg("%s: bad relative time %s", what, s);
        return s[0] == '+' ? now + d : now - d;
    }
    const char *end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (end == NULL || *end != '\0')
        fail_msg("%s: bad time %s", what, s);
    return (int64_t)timegm(&tm);
}

static void
copy_str(char *out, size_t cap, const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    snprintf(out, cap, "%s", s != NULL ? s : "");
}

static bool
flag(const json_t *o, const char *key)
{
    return json_is_true(json_object_get(o, key));
}

static uint64_t
count(const json_t *o, const char *key)
{
    return (uint64_t)json_integer_value(json_object_get(o, key));
}

static void
keyrings_load(struct inventory *inv, const json_t *a)
{
    size_t i;
    json_t *k;

    inv->n_keyrings = json_array_size(a);
    inv->keyrings = xcalloc(inv->n_keyrings + 1, sizeof *inv->keyrings);
    json_array_foreach (a, i, k) {
        struct inv_keyring *kr = &inv->keyrings[i];
        const json_t *vs = json_object_get(k, "versions");
        size_t j;
        json_t *v;
        copy_str(kr->name, sizeof kr->name, k, "name");
        snprintf(kr->algorithm, sizeof kr->algorithm, "aes-256-gcm");
        kr->rotation_period = duration_of(json_object_get(k, "rotation_period"), kr->name);
        kr->encryption_limit = count(k, "encryption_limit");
        kr->latest_version = (uint32_t)count(k, "latest_version");
        kr->n_versions = json_array_size(vs);
        kr->versions = xcalloc(kr->n_versions + 1, sizeof *kr->versions);
        json_array_foreach (vs, j, v) {
            kr->versions[j].version = (uint32_t)count(v, "version");
            kr->versions[j].created_at =
                time_of(json_object_get(v, "created_at"), inv->now, kr->name);
            kr->versions[j].encryptions = (int64_t)count(v, "encryptions");
        }
    }
}

static void
apps_keys_load(struct inventory *inv, const json_t *apps, const json_t *keys)
{
    size_t i;
    json_t *o;

    inv->n_apps = json_array_size(apps);
    inv->apps = xcalloc(inv->n_apps + 1, sizeof *inv->apps);
    json_array_foreach (apps, i, o) {
        copy_str(inv->apps[i].name, sizeof inv->apps[i].name, o, "name");
        inv->apps[i].active_keys = (size_t)count(o, "active_keys");
    }
    inv->n_keys = json_array_size(keys);
    inv->keys = xcalloc(inv->n_keys + 1, sizeof *inv->keys);
    json_array_foreach (keys, i, o) {
        struct inv_apikey *k = &inv->keys[i];
        copy_str(k->id, sizeof k->id, o, "id");
        copy_str(k->app, sizeof k->app, o, "app");
        copy_str(k->scopes, sizeof k->scopes, o, "scopes");
        for (const char *p = k->scopes; *p != '\0'; p++)
            k->n_scopes += *p != ' ' && (p == k->scopes || p[-1] == ' ');
        k->all_keyrings = true;
        k->created_at = time_of(json_object_get(o, "created_at"), inv->now, k->id);
        k->expires_at = time_of(json_object_get(o, "expires_at"), inv->now, k->id);
        k->revoked_at = time_of(json_object_get(o, "revoked_at"), inv->now, k->id);
        k->last_used_at = time_of(json_object_get(o, "last_used_at"), inv->now, k->id);
    }
}

static void
ops_load(struct inventory *inv, const json_t *ls, const json_t *certs)
{
    size_t i;
    json_t *o;

    inv->n_listeners = json_array_size(ls);
    inv->listeners = xcalloc(inv->n_listeners + 1, sizeof *inv->listeners);
    json_array_foreach (ls, i, o) {
        struct inv_listener *l = &inv->listeners[i];
        copy_str(l->name, sizeof l->name, o, "name");
        copy_str(l->addr, sizeof l->addr, o, "addr");
        l->loopback = flag(o, "loopback");
        l->tls = flag(o, "tls");
        l->tls_upstream = flag(o, "tls_upstream");
    }
    inv->n_certs = json_array_size(certs);
    inv->certs = xcalloc(inv->n_certs + 1, sizeof *inv->certs);
    json_array_foreach (certs, i, o) {
        struct inv_cert *c = &inv->certs[i];
        copy_str(c->id, sizeof c->id, o, "id");
        copy_str(c->source, sizeof c->source, o, "source");
        copy_str(c->subject, sizeof c->subject, o, "subject");
        copy_str(c->weak, sizeof c->weak, o, "weak");
        c->not_before = time_of(json_object_get(o, "not_before"), inv->now, c->id);
        c->not_after = time_of(json_object_get(o, "not_after"), inv->now, c->id);
        c->renewal_due = time_of(json_object_get(o, "renewal_due"), inv->now, c->id);
        c->rotated_at = time_of(json_object_get(o, "rotated_at"), inv->now, c->id);
        c->error = flag(o, "error");
    }
}

static void
fixed_load(struct inventory *inv, const json_t *o)
{
    const json_t *rk = json_object_get(o, "root_key"), *au = json_object_get(o, "audit");
    const char *src = json_string_value(json_object_get(rk, "source"));
    const char *mode = json_string_value(json_object_get(rk, "mode"));

    inv->now = time_of(json_object_get(o, "now"), 0, "now");
    snprintf(inv->version, sizeof inv->version, "test");
    inv->root_key.source = src == NULL                ? 0
                           : strcmp(src, "file") == 0 ? INV_KEY_FILE
                           : strcmp(src, "env") == 0  ? INV_KEY_ENV
                                                      : INV_KEY_OTHER;
    copy_str(inv->root_key.id, sizeof inv->root_key.id, rk, "id");
    inv->root_key.mode_known = mode != NULL;
    inv->root_key.mode = mode != NULL ? (unsigned)strtoul(mode, NULL, 8) : 0;
    inv->audit.enabled = flag(au, "enabled");
    inv->audit.durable = flag(au, "durable");
    inv->audit.write_failures = count(au, "write_failures");
    inv->audit.unverified_chains = count(au, "unverified_chains");
    inv->audit.retention = json_object_get(au, "retention") != NULL
                               ? duration_of(json_object_get(au, "retention"), "retention")
                               : 0;
    inv->audit.verified_at = time_of(json_object_get(au, "verified_at"), inv->now, "verified_at");
    inv->audit.verified_ok = flag(au, "verified_ok");
    inv->certs_tracked = flag(o, "certs_tracked");
}

/* The object of `name` with its base's members under it (a new reference). */
static json_t *
resolved(const json_t *all, const char *name, int depth)
{
    const json_t *o = json_object_get(all, name);
    const char *base;
    json_t *out;

    if (!json_is_object(o) || depth > 4)
        fail_msg("no inventory \"%s\" in inventories.json", name);
    base = json_string_value(json_object_get(o, "base"));
    out = base != NULL ? resolved(all, base, depth + 1) : json_object();
    json_object_update(out, (json_t *)o);
    json_object_del(out, "base");
    return out;
}

void
invjson_load(struct inventory *out, const json_t *all, const char *name)
{
    json_t *o = resolved(all, name, 0);

    memset(out, 0, sizeof *out);
    fixed_load(out, o);
    keyrings_load(out, json_object_get(o, "keyrings"));
    apps_keys_load(out, json_object_get(o, "apps"), json_object_get(o, "keys"));
    ops_load(out, json_object_get(o, "listeners"), json_object_get(o, "certs"));
    json_decref(o);
}
