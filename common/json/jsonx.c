/* SPDX-License-Identifier: Apache-2.0 */
/* common/json/jsonx.c -- strict request JSON; the allocator wipes what jansson frees. */
#include "common/json/jsonx.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/checked.h"
#include "common/clock.h"
#include "common/json/config.h"
#include "common/xmem.h"

/* Each block carries its size in front so free can wipe it. */
struct jx_hdr {
    size_t n;
    size_t pad; /* keep 16-byte alignment */
};

static void *
jx_malloc(size_t n)
{
    struct jx_hdr *h = malloc(sizeof *h + n);
    if (h == NULL)
        return NULL;
    h->n = n;
    return h + 1;
}

static void
jx_free(void *p)
{
    if (p == NULL)
        return;
    struct jx_hdr *h = (struct jx_hdr *)p - 1;
    explicit_bzero(p, h->n);
    free(h);
}

void
jx_init(void)
{
    json_set_alloc_funcs(jx_malloc, jx_free);
}

void
jx_free_str(char *s)
{
    json_free_t f = NULL;
    json_get_alloc_funcs(NULL, &f);
    if (f != NULL)
        f(s);
}

enum status
jx_parse_object(json_t **out, const char *body, size_t len, const char **msg)
{
    json_error_t e;
    *out = NULL;
    if (len == 0) {
        *msg = "request body must be a JSON object";
        return ST_INVALID;
    }
    json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &e);
    if (j == NULL) {
        *msg = (e.text[0] && strstr(e.text, "duplicate") != NULL)
                   ? "duplicate object key in request body"
                   : "request body is not valid JSON";
        return ST_INVALID;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        *msg = "request body must be a JSON object";
        return ST_INVALID;
    }
    *out = j;
    return ST_OK;
}

/* Levenshtein distance of two short names, capped at 3 (enough to suggest a name). */
static size_t
name_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), row[JX_NAME_MAX + 1];
    if (la > JX_NAME_MAX || lb > JX_NAME_MAX)
        return 3;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb] < 3 ? row[lb] : 3;
}

const char *
jx_closest(const char *name, const char *const *names)
{
    const char *best = NULL;
    size_t best_d = 3;
    for (size_t i = 0; names != NULL && names[i] != NULL; i++) {
        size_t d = name_distance(name, names[i]);
        if (d < best_d) {
            best_d = d;
            best = names[i];
        }
    }
    return best;
}

/* A field name shown back in an error: short names of [A-Za-z0-9_.-] only, never other input. */
static bool
name_showable(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > JX_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return false;
    }
    return true;
}

/* Fields other services use for what difyguard names otherwise. */
static const struct {
    const char *name, *hint;
} field_hints[] = {
    {"batch_input", "a batch is {\"items\":[...]}"},
    {"batch_results", "a batch is {\"items\":[...]}"},
    {"input", "the plaintext is \"plaintext\" (base64) or \"text\" (a string)"},
    {"data", "the plaintext is \"plaintext\" (base64) or \"text\" (a string)"},
    {"associated_data", "use \"context\", an object of strings"},
    {"encryption_context", "use \"context\", an object of strings"},
    {"min_available_version", "retire versions with min_decryption_version"},
};

static _Thread_local char unknown_msg[JX_NAME_MAX + 160];

const char *
jx_unknown_field_msg(const char *key, const char *const *allowed)
{
    if (!name_showable(key))
        return "request body has an unknown field (its name is not shown: not a plain name)";
    for (size_t i = 0; i < sizeof field_hints / sizeof field_hints[0]; i++) {
        if (strcmp(key, field_hints[i].name) == 0) {
            snprintf(unknown_msg, sizeof unknown_msg, "unknown field \"%s\" (%s)", key,
                     field_hints[i].hint);
            return unknown_msg;
        }
    }
    const char *best = jx_closest(key, allowed);
    if (best != NULL)
        snprintf(unknown_msg, sizeof unknown_msg, "unknown field \"%s\" (did you mean \"%s\"?)",
                 key, best);
    else
        snprintf(unknown_msg, sizeof unknown_msg, "unknown field \"%s\"", key);
    return unknown_msg;
}

enum status
jx_only(const json_t *obj, const char *const *allowed, const char **msg)
{
    const char *key;
    json_t *v;
    json_object_foreach ((json_t *)obj, key, v) {
        bool ok = false;
        for (size_t i = 0; allowed[i] != NULL && !ok; i++)
            ok = strcmp(key, allowed[i]) == 0;
        if (!ok) {
            *msg = jx_unknown_field_msg(key, allowed);
            return ST_INVALID;
        }
    }
    return ST_OK;
}

enum status
jx_str(const json_t *obj, const char *key, const char **out, size_t *len, bool *present)
{
    json_t *v = json_object_get(obj, key);
    if (present != NULL)
        *present = v != NULL;
    if (v == NULL)
        return ST_OK;
    if (!json_is_string(v))
        return ST_INVALID;
    *out = json_string_value(v);
    if (len != NULL)
        *len = json_string_length(v);
    return ST_OK;
}

enum status
jx_bool(const json_t *obj, const char *key, bool *out, bool *present)
{
    json_t *v = json_object_get(obj, key);
    if (present != NULL)
        *present = v != NULL;
    if (v == NULL)
        return ST_OK;
    if (!json_is_boolean(v))
        return ST_INVALID;
    *out = json_is_true(v);
    return ST_OK;
}

enum status
jx_int(const json_t *obj, const char *key, int64_t *out, bool *present)
{
    json_t *v = json_object_get(obj, key);
    if (present != NULL)
        *present = v != NULL;
    if (v == NULL)
        return ST_OK;
    if (!json_is_integer(v))
        return ST_INVALID;
    *out = (int64_t)json_integer_value(v);
    return ST_OK;
}

enum status
jx_duration(const json_t *obj, const char *key, int64_t *out, bool *present)
{
    json_t *v = json_object_get(obj, key);
    if (present != NULL)
        *present = v != NULL;
    if (v == NULL)
        return ST_OK;
    if (json_is_integer(v)) {
        int64_t secs;
        if (config_duration_seconds(&secs, (int64_t)json_integer_value(v)) != ST_OK)
            return ST_INVALID;
        *out = secs;
        return ST_OK;
    }
    if (!json_is_string(v))
        return ST_INVALID;
    int64_t secs;
    if (config_duration(&secs, json_string_value(v), json_string_length(v)) != ST_OK)
        return ST_INVALID;
    *out = secs; /* unchanged on failure, like the other getters */
    return ST_OK;
}

json_t *
jx_time(int64_t t)
{
    char buf[32];
    if (t == 0)
        return json_null();
    clock_rfc3339(buf, t);
    return json_string(buf);
}
