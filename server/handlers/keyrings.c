/* SPDX-License-Identifier: Apache-2.0 */
/* server/handlers/keyrings.c -- keyring administration routes (metadata only, never keys). A
 * key with a keyring allow-list administers, lists and creates only the keyrings it names. */
#include <stdlib.h>
#include <string.h>

#include "common/json/jsonx.h"
#include "common/names.h"
#include "server/handlers/handlers.h"
#include "server/service.h"

#define PERIOD_MSG "rotation_period must be 0 (off) or a duration from 1h to 3650d"

/* GET /v1/keyrings/{name} and every change's answer (docs/openapi.yaml Keyring). */
static json_t *
keyring_json(const struct keyring_info *k)
{
    json_t *vers = json_array();
    for (size_t i = 0; i < k->n_versions; i++) {
        const struct keyring_version_info *v = &k->versions[i];
        json_array_append_new(
            vers, json_pack("{s:I, s:o, s:I, s:I, s:s}", "version", (json_int_t)v->version,
                            "created_at", jx_time(v->created_at), "encryptions",
                            (json_int_t)v->encryptions, "encryption_limit",
                            (json_int_t)k->encryption_limit, "root_key_id", v->root_key_id));
    }
    return json_pack(
        "{s:s, s:s, s:b, s:I, s:b, s:I, s:I, s:I, s:o, s:o, s:o, s:o}", "name", k->name,
        "algorithm", k->algorithm, "deterministic", k->deterministic, "rotation_period",
        (json_int_t)k->rotation_period, "deletion_allowed", k->deletion_allowed, "latest_version",
        (json_int_t)k->latest_version, "min_decryption_version",
        (json_int_t)k->min_decryption_version, "min_encryption_version",
        (json_int_t)k->min_encryption_version, "created_at", jx_time(k->created_at), "updated_at",
        jx_time(k->updated_at), "next_rotation_at",
        k->next_rotation_at != 0 ? jx_time(k->next_rotation_at) : json_null(), "versions", vers);
}

/* One keyring's answer, or the failure. */
static void
reply_keyring(struct req *r, enum status st, unsigned code, struct keyring_info *k, const char *msg)
{
    if (st != ST_OK)
        req_fail(r, st, or_not_found(st, msg, "keyring not found"));
    else
        reply_jansson(r, code, keyring_json(k));
    keyring_info_free(k);
}

/* A keyring named in the body (create): within the caller's allow-list. The route table has
 * checked keyrings:admin, and the allow-list of keyrings named in the path. */
static bool
allowed_name(struct req *r, const char *keyring)
{
    if (principal_allows(&r->principal, SCOPE_KEYRINGS_ADMIN, keyring))
        return true;
    req_fail(r, ST_FORBIDDEN, allow_list_refusal(r, keyring));
    return false;
}

/* keyrings_list's filter: a restricted caller sees only the keyrings of its allow-list; a page
 * only the names after its cursor. */
struct list_filter {
    const struct principal *p;
    const char *after; /* NULL: from the first */
};

static bool
listed(const void *arg, const char *name)
{
    const struct list_filter *f = arg;
    return (f->after == NULL || strcmp(name, f->after) > 0) &&
           principal_allows(f->p, SCOPE_KEYRINGS_ADMIN, name);
}

static int
by_name(const void *a, const void *b)
{
    return strcmp(((const struct keyring_info *)a)->name, ((const struct keyring_info *)b)->name);
}

#define KEYRINGS_PAGE_DEFAULT 1000
#define KEYRINGS_PAGE_MAX 1000

/* GET /v1/keyrings: by name, `limit` (1..1000, default 1000) per page, `cursor` (the previous
 * page's next_cursor: its last name), `view=names` for names only. */
void
h_keyrings_list(struct req *r)
{
    static const char *const known[] = {"limit", "cursor", "view", NULL};
    const char *limit = req_query(r, "limit"), *view = req_query(r, "view");
    struct list_filter f = {&r->principal, req_query(r, "cursor")};
    struct keyring_info *list = NULL;
    size_t n = 0, max = KEYRINGS_PAGE_DEFAULT;
    bool names = false;

    if (!query_only(r, known))
        return;
    if (limit != NULL) {
        char *end;
        long v = strtol(limit, &end, 10);
        if (*limit == '\0' || *end != '\0' || v < 1 || v > KEYRINGS_PAGE_MAX) {
            req_fail(r, ST_INVALID, "limit must be an integer from 1 to 1000");
            return;
        }
        max = (size_t)v;
    }
    if (view != NULL && strcmp(view, "names") != 0 && strcmp(view, "full") != 0) {
        req_fail(r, ST_INVALID, "view must be full (the default) or names");
        return;
    }
    names = view != NULL && strcmp(view, "names") == 0;
    if (f.after != NULL && !names_valid(f.after)) {
        req_fail(r, ST_INVALID, "cursor must be the next_cursor of a previous page");
        return;
    }
    enum status st = keyrings_list(r->svc->keyrings, listed, &f, &list, &n);
    if (st != ST_OK) {
        req_fail(r, st, NULL);
        return;
    }
    qsort(list, n, sizeof *list, by_name);
    json_t *arr = json_array();
    for (size_t i = 0; i < n && i < max; i++)
        json_array_append_new(arr, names ? json_string(list[i].name) : keyring_json(&list[i]));
    json_t *next = n > max ? json_string(list[max - 1].name) : json_null();
    keyring_infos_free(list, n);
    reply_jansson(r, 200,
                  json_pack("{s:o, s:o}", names ? "names" : "keyrings", arr, "next_cursor", next));
}

static enum status
parse_create(json_t *body, struct keyring_spec *c, const char **msg)
{
    static const char *const allowed[] = {
        "name", "algorithm", "deterministic", "rotation_period", "deletion_allowed", NULL};
    bool det = false, has_det = false;
    enum status st;

    c->deterministic = -1;
    c->rotation_period = -1;
    c->name = NULL;
    if ((st = jx_only(body, allowed, msg)) != ST_OK)
        return st;
    if (jx_str(body, "name", &c->name, NULL, NULL) != ST_OK || c->name == NULL) {
        *msg = "name is required and must be a string";
        return ST_INVALID;
    }
    if (jx_str(body, "algorithm", &c->algorithm, NULL, NULL) != ST_OK ||
        jx_bool(body, "deterministic", &det, &has_det) != ST_OK ||
        jx_bool(body, "deletion_allowed", &c->deletion_allowed, NULL) != ST_OK) {
        *msg = "a field has the wrong type or value";
        return ST_INVALID;
    }
    if (jx_duration(body, "rotation_period", &c->rotation_period, NULL) != ST_OK) {
        *msg = PERIOD_MSG;
        return ST_INVALID;
    }
    if (has_det)
        c->deterministic = det;
    return ST_OK;
}

void
h_keyrings_create(struct req *r)
{
    json_t *body = NULL;
    struct keyring_info out = {0};
    struct keyring_spec c = {0};
    const char *msg = NULL;
    enum status st;

    if ((st = jx_parse_object(&body, r->body, r->body_len, &msg)) == ST_OK &&
        (st = parse_create(body, &c, &msg)) == ST_OK) {
        /* A restricted key creates only keyrings its allow-list names (c.name is in body). */
        if (!allowed_name(r, c.name)) {
            json_decref(body);
            return;
        }
        st = keyrings_create(r->svc->keyrings, &c, &out, &msg, req_admin_event(r, 201));
        req_admin_done(r, st);
    }
    reply_keyring(r, st, 201, &out, msg);
    json_decref(body); /* after the reply: msg may point into it */
}

void
h_keyring_get(struct req *r)
{
    struct keyring_info out = {0};
    const uint32_t any = SCOPE_ENCRYPT | SCOPE_DECRYPT | SCOPE_REWRAP | SCOPE_DATAKEY;
    bool ok = principal_allows(&r->principal, SCOPE_KEYRINGS_ADMIN, r->p1);
    for (uint32_t b = 1; !ok && b <= SCOPE_DATAKEY; b <<= 1)
        ok = (any & b) && principal_allows(&r->principal, b, r->p1);
    if (!ok) {
        req_fail(r, ST_FORBIDDEN,
                 (r->principal.scopes & (any | SCOPE_KEYRINGS_ADMIN)) != 0
                     ? "allow-list: the keyring is not in the API key's "
                       "keyring allow-list"
                     : "scope: needs keyrings:admin or a crypto scope");
        return;
    }
    enum status st = keyrings_get(r->svc->keyrings, r->p1, &out);
    reply_keyring(r, st, 200, &out, NULL);
}

static enum status
parse_patch(json_t *body, struct keyring_patch *p, const char **msg)
{
    static const char *const allowed[] = {"min_decryption_version", "min_encryption_version",
                                          "rotation_period", "deletion_allowed", NULL};
    bool del = false, has_del = false;
    enum status st;

    p->min_decryption_version = p->min_encryption_version = p->rotation_period = -1;
    p->deletion_allowed = -1;
    if ((st = jx_only(body, allowed, msg)) != ST_OK)
        return st;
    if (jx_int(body, "min_decryption_version", &p->min_decryption_version, NULL) != ST_OK ||
        jx_int(body, "min_encryption_version", &p->min_encryption_version, NULL) != ST_OK ||
        jx_bool(body, "deletion_allowed", &del, &has_del) != ST_OK) {
        *msg = "a field has the wrong type or value";
        return ST_INVALID;
    }
    if (jx_duration(body, "rotation_period", &p->rotation_period, NULL) != ST_OK) {
        *msg = PERIOD_MSG;
        return ST_INVALID;
    }
    if (json_object_get(body, "min_decryption_version") && p->min_decryption_version < 1) {
        *msg = "min_decryption_version must be at least 1";
        return ST_INVALID;
    }
    if (json_object_get(body, "min_encryption_version") && p->min_encryption_version < 0) {
        *msg = "min_encryption_version must be 0 (the latest version) or a version number";
        return ST_INVALID;
    }
    if (has_del)
        p->deletion_allowed = del;
    return ST_OK;
}

void
h_keyring_patch(struct req *r)
{
    json_t *body = NULL;
    struct keyring_info out = {0};
    struct keyring_patch p;
    const char *msg = NULL;
    enum status st;

    if ((st = jx_parse_object(&body, r->body, r->body_len, &msg)) == ST_OK &&
        (st = parse_patch(body, &p, &msg)) == ST_OK) {
        st = keyrings_patch(r->svc->keyrings, r->p1, &p, &out, &msg, req_admin_event(r, 200));
        req_admin_done(r, st);
    }
    reply_keyring(r, st, 200, &out, msg);
    json_decref(body);
}

void
h_keyring_delete(struct req *r)
{
    enum status st = keyrings_delete(r->svc->keyrings, r->p1, req_admin_event(r, 204));
    req_admin_done(r, st);
    if (st == ST_CONFLICT)
        req_fail(r, st, "deletion_allowed is false for this keyring");
    else if (st != ST_OK)
        req_fail(r, st, or_not_found(st, NULL, "keyring not found"));
    else
        req_reply_empty(r, 204);
}

void
h_keyring_rotate(struct req *r)
{
    json_t *body = NULL;
    struct keyring_info out = {0};
    const char *msg = NULL;
    static const char *const none[] = {NULL};
    enum status st = ST_OK;

    if (r->body_len > 0 && ((st = jx_parse_object(&body, r->body, r->body_len, &msg)) != ST_OK ||
                            (st = jx_only(body, none, &msg)) != ST_OK)) {
        json_decref(body);
        req_fail(r, st, msg);
        return;
    }
    json_decref(body);
    st = keyrings_rotate(r->svc->keyrings, r->p1, &out, req_admin_event(r, 200));
    req_admin_done(r, st);
    reply_keyring(r, st, 200, &out, NULL);
}
