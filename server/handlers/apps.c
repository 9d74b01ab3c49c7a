/* SPDX-License-Identifier: Apache-2.0 */
/* server/handlers/apps.c -- apps and their API keys (scope apps:admin). A caller issues, rotates
 * and revokes only keys within its own scopes, keyring allow-list and expiry (apps.h,
 * principal_may_grant). A new key's text is in the 201 response only; nothing else shows it. */
#include <string.h>

#include "common/json/jsonx.h"
#include "common/names.h"
#include "server/handlers/handlers.h"
#include "server/keyrings.h"
#include "server/service.h"

#define DEFAULT_KEY_LIFETIME (90 * 86400)

static json_t *
app_json(const struct app_info *a)
{
    /* No description is null, not "" (issue 14: one spelling of "none" across the API). */
    return json_pack("{s:s, s:o, s:o}", "name", a->name, "description",
                     a->description[0] != '\0' ? json_string(a->description) : json_null(),
                     "created_at", jx_time(a->created_at));
}

/* A space-separated list as a JSON array (null for an empty allow-list, which means all). */
static json_t *
strlist_json(const char *text, bool null_when_empty)
{
    if (text[0] == '\0' && null_when_empty)
        return json_null();
    json_t *arr = json_array();
    for (const char *p = text; *p != '\0';) {
        size_t n = strcspn(p, " ");
        json_array_append_new(arr, json_stringn(p, n));
        p += n;
        p += strspn(p, " ");
    }
    return arr;
}

static json_t *
key_json(const struct apikey_info *k)
{
    return json_pack("{s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:I, s:I, s:o, s:o}", "id", k->id, "app",
                     k->app, "scopes", strlist_json(k->scopes, false), "keyrings",
                     strlist_json(k->keyrings, true), "created_at", jx_time(k->created_at),
                     "expires_at", jx_time(k->expires_at), "revoked_at", jx_time(k->revoked_at),
                     "rate", (json_int_t)k->rate, "burst", (json_int_t)k->burst, "grace_until",
                     jx_time(k->grace_until), "last_used_at", jx_time(k->last_used_at));
}

/* A new key's answer: the only time its text is shown. The JSON and the response buffer are
 * wiped when freed (the wiping allocator; a secret body), the struct here at once. */
static void
reply_issued(struct req *r, enum status st, struct apikey_issued *k, const char *msg)
{
    if (st != ST_OK) {
        req_fail(r, st,
                 or_not_found(st, msg, "not found (no such app, or no such key of that app)"));
    } else {
        json_t *j = key_json(&k->info);
        json_object_set_new(j, "key", json_string(k->key));
        reply_jansson(r, 201, j);
    }
    apikey_issued_wipe(k);
}

void
h_apps_list(struct req *r)
{
    struct app_info *list = NULL;
    size_t n = 0;
    enum status st = apps_list(r->svc->apps, &list, &n);

    if (st != ST_OK) {
        req_fail(r, st, NULL);
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, app_json(&list[i]));
    free(list);
    reply_jansson(r, 200, json_pack("{s:o}", "apps", arr));
}

void
h_app_get(struct req *r)
{
    struct app_info app;
    enum status st = apps_get(r->svc->apps, r->p1, &app);
    if (st != ST_OK)
        req_fail(r, st, or_not_found(st, NULL, "app not found"));
    else
        reply_jansson(r, 200, app_json(&app));
}

void
h_apps_create(struct req *r)
{
    static const char *const allowed[] = {"name", "description", NULL};
    json_t *body = NULL;
    struct app_info out;
    const char *name = NULL, *desc = "", *msg = NULL;
    enum status st;

    if ((st = jx_parse_object(&body, r->body, r->body_len, &msg)) == ST_OK &&
        (st = jx_only(body, allowed, &msg)) == ST_OK) {
        if (jx_str(body, "name", &name, NULL, NULL) != ST_OK || name == NULL ||
            !names_valid(name) || jx_str(body, "description", &desc, NULL, NULL) != ST_OK ||
            strlen(desc) >= STORE_DESC_MAX) {
            st = ST_INVALID;
            msg = "name must match [a-z0-9][a-z0-9._-]{0,62}; description a string < 256 bytes";
        } else if ((st = apps_create(r->svc->apps, name, desc, &out, req_admin_event(r, 201))) ==
                   ST_CONFLICT) {
            msg = "an app with this name exists";
        }
        req_admin_done(r, st);
    }
    if (st != ST_OK)
        req_fail(r, st, msg);
    else
        reply_jansson(r, 201, app_json(&out));
    json_decref(body);
}

void
h_keys_list(struct req *r)
{
    struct apikey_info *keys = NULL;
    size_t n = 0;
    enum status st = apps_key_list(r->svc->apps, r->p1, &keys, &n);

    if (st != ST_OK) {
        req_fail(r, st, or_not_found(st, NULL, "app not found"));
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, key_json(&keys[i]));
    free(keys);
    reply_jansson(r, 200, json_pack("{s:o}", "keys", arr));
}

#define SCOPES_KNOWN                                                                               \
    "encrypt, decrypt, rewrap, datakey, datakey:plaintext, keyrings:admin, apps:admin, "           \
    "audit:read, certs:read, certs:write, compliance:read"

/* An unknown scope's message, naming it (a plain short name only) and the closest known one. */
static const char *
unknown_scope(struct req *r, const char *name)
{
    char text[320];
    size_t n = strlen(name);
    bool plain = n > 0 && n <= 40 && strspn(name, "abcdefghijklmnopqrstuvwxyz:_-") == n;
    const char *near = plain ? jx_closest(name, scope_all_names()) : NULL;
    if (near != NULL)
        snprintf(text, sizeof text, "unknown scope \"%s\" (did you mean \"%s\"?)", name, near);
    else if (plain)
        snprintf(text, sizeof text, "unknown scope \"%s\"; known scopes: " SCOPES_KNOWN, name);
    else
        snprintf(text, sizeof text, "unknown scope; known scopes: " SCOPES_KNOWN);
    return arena_strndup(r->arena, text, strlen(text));
}

static enum status
parse_scopes(struct req *r, const json_t *arr, uint32_t *scopes, const char **msg)
{
    size_t i;
    json_t *v;
    *scopes = 0;
    *msg = "scopes must be a non-empty array of scope names: " SCOPES_KNOWN;
    if (!json_is_array(arr) || json_array_size(arr) == 0)
        return ST_INVALID;
    json_array_foreach (arr, i, v) {
        uint32_t s =
            json_is_string(v) ? scope_parse(json_string_value(v), json_string_length(v)) : 0;
        if (s == 0 && json_is_string(v))
            *msg = unknown_scope(r, json_string_value(v));
        if (s == 0)
            return ST_INVALID;
        *scopes |= s;
    }
    *msg = NULL;
    return ST_OK;
}

static enum status
parse_keyrings(const json_t *arr, char out[static STORE_KEYRINGS_MAX], const char **msg)
{
    size_t i, len = 0;
    json_t *v;
    out[0] = '\0';
    *msg = "keyrings must be an array of at most 32 keyring names";
    if (!json_is_array(arr) || json_array_size(arr) == 0 || json_array_size(arr) > 32)
        return ST_INVALID;
    json_array_foreach (arr, i, v) {
        if (!json_is_string(v) || !names_valid(json_string_value(v)))
            return ST_INVALID;
        len += (size_t)snprintf(out + len, STORE_KEYRINGS_MAX - len, "%s%s", i ? " " : "",
                                json_string_value(v));
    }
    *msg = NULL;
    return ST_OK;
}

void
h_keys_create(struct req *r)
{
    static const char *const allowed[] = {"scopes", "keyrings", "expires_in",
                                          "rate",   "burst",    NULL};
    json_t *body = NULL;
    struct apikey_issued out = {0};
    const char *msg = NULL;
    char keyrings[STORE_KEYRINGS_MAX] = "";
    uint32_t scopes = 0;
    int64_t life = DEFAULT_KEY_LIFETIME, rate = 0, burst = 0;
    const json_t *kr;
    enum status st;

    if ((st = jx_parse_object(&body, r->body, r->body_len, &msg)) != ST_OK ||
        (st = jx_only(body, allowed, &msg)) != ST_OK ||
        (st = parse_scopes(r, json_object_get(body, "scopes"), &scopes, &msg)) != ST_OK)
        goto out;
    if ((kr = json_object_get(body, "keyrings")) != NULL && !json_is_null(kr) &&
        (st = parse_keyrings(kr, keyrings, &msg)) != ST_OK)
        goto out;
    if (jx_duration(body, "expires_in", &life, NULL) != ST_OK || life < 1 ||
        life > APPS_MAX_KEY_LIFETIME) {
        st = ST_INVALID;
        msg = "expires_in must be a duration between 1s and 365d";
        goto out;
    }
    if (jx_int(body, "rate", &rate, NULL) != ST_OK ||
        jx_int(body, "burst", &burst, NULL) != ST_OK || rate < 0 || burst < 0 || rate > 1000000 ||
        burst > 1000000) {
        st = ST_INVALID;
        msg = "rate and burst must be integers from 0 (unlimited) to 1000000";
        goto out;
    }
    struct key_spec ks = {scopes, keyrings[0] ? keyrings : NULL, life, rate, burst};
    st = apps_key_grant(r->svc->apps, r->p1, &ks, &r->principal, &msg, &out,
                        req_admin_event(r, 201));
    req_admin_done(r, st);
out:
    reply_issued(r, st, &out, msg);
    json_decref(body);
}

/* GET /v1/apps/{app}/keys/{id}: one key's metadata (never its text). */
void
h_key_get(struct req *r)
{
    struct apikey_info *keys = NULL;
    size_t n = 0;
    enum status st = apps_key_list(r->svc->apps, r->p1, &keys, &n);

    if (st != ST_OK) {
        req_fail(r, st, or_not_found(st, NULL, "app not found"));
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(keys[i].id, r->p2) == 0) {
            json_t *j = key_json(&keys[i]);
            free(keys);
            reply_jansson(r, 200, j);
            return;
        }
    }
    free(keys);
    req_fail(r, ST_NOT_FOUND, "key not found (no such key of that app)");
}

void
h_key_revoke(struct req *r)
{
    const char *msg = NULL;
    enum status st =
        apps_key_revoke(r->svc->apps, r->p1, r->p2, &r->principal, &msg, req_admin_event(r, 204));
    req_admin_done(r, st);
    if (st != ST_OK)
        req_fail(r, st, or_not_found(st, msg, "key not found (no such key of that app)"));
    else
        req_reply_empty(r, 204);
}

void
h_key_rotate(struct req *r)
{
    static const char *const allowed[] = {"grace_period", NULL};
    json_t *body = NULL;
    struct apikey_issued out = {0};
    const char *msg = NULL;
    int64_t grace = 86400;
    enum status st = ST_OK;

    if (r->body_len > 0 && ((st = jx_parse_object(&body, r->body, r->body_len, &msg)) != ST_OK ||
                            (st = jx_only(body, allowed, &msg)) != ST_OK))
        goto out;
    if (body != NULL &&
        (jx_duration(body, "grace_period", &grace, NULL) != ST_OK || grace > APPS_MAX_GRACE)) {
        st = ST_INVALID;
        msg = "grace_period must be a duration up to 30d";
        goto out;
    }
    st = apps_key_rotate(r->svc->apps, r->p1, r->p2, grace, &r->principal, &msg, &out,
                         req_admin_event(r, 201));
    req_admin_done(r, st);
    if (st == ST_CONFLICT)
        msg = "the key is revoked, expired or already past its grace period";
out:
    reply_issued(r, st, &out, msg);
    json_decref(body);
}
