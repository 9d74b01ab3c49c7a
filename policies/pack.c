/* SPDX-License-Identifier: Apache-2.0 */
/* policies/pack.c -- strict parsing of policy packs and of the operator's parameter overrides
 * (jansson; see pack.h). Every member is known, typed and bounded; errors name the place. */
#include "policies/pack.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/names.h"
#include "common/text.h"
#include "common/xmem.h"

#define WHERE_MAX 160

const char *
severity_name(enum severity s)
{
    static const char *const names[SEV__COUNT] = {"low", "medium", "high", "critical"};
    return (unsigned)s < SEV__COUNT ? names[s] : "?";
}

static enum status say(char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum status
say(char *err, size_t err_len, const char *fmt, ...)
{
    va_list ap;
    if (err != NULL && err_len > 0) {
        va_start(ap, fmt);
        vsnprintf(err, err_len, fmt, ap);
        va_end(ap);
    }
    return ST_INVALID;
}

/* Only the members named in allowed (NULL-terminated); the first other is named in err. */
static enum status
only(const json_t *o, const char *const *allowed, const char *where, char *err, size_t err_len)
{
    const char *key;
    json_t *v;

    json_object_foreach ((json_t *)o, key, v) {
        size_t i = 0;
        while (allowed[i] != NULL && strcmp(allowed[i], key) != 0)
            i++;
        if (allowed[i] == NULL) {
            char shown[48];
            text_copy_safe(shown, sizeof shown, key);
            return say(err, err_len, "%s: unknown member \"%s\"", where, shown);
        }
    }
    return ST_OK;
}

/* A string member of printable UTF-8, 1..cap-1 bytes, copied to out; an id must also be a name
 * ([a-z0-9][a-z0-9._-]{0,62}). Absent: "" when optional. */
static enum status
text_member(char *out, size_t cap, const json_t *o, const char *key, bool required, bool id,
            const char *where, char *err, size_t err_len)
{
    const json_t *v = json_object_get(o, key);
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);

    out[0] = '\0';
    if (v == NULL && !required)
        return ST_OK;
    if (v == NULL)
        return say(err, err_len, "%s: \"%s\" is required", where, key);
    if (s == NULL || len == 0 || len >= cap || strlen(s) != len || !text_copy_safe(out, cap, s))
        return say(err, err_len, "%s: \"%s\" must be a string of printable UTF-8, 1 to %zu bytes",
                   where, key, cap - 1);
    if (id && !names_valid(out))
        return say(err, err_len, "%s: \"%s\" must match [a-z0-9][a-z0-9._-]{0,62}", where, key);
    return ST_OK;
}

/* A parameter value from JSON: a string, or a non-negative integer for numeric types. */
static enum status
param_value(struct param *p, const struct param_def *d, const json_t *v, const char *where,
            char *err, size_t err_len)
{
    char num[32];
    const char *text = json_string_value(v), *why = NULL;
    size_t len = json_string_length(v);

    if (json_is_integer(v) && d->type != PARAM_TEXT && json_integer_value(v) >= 0) {
        snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        text = num;
        len = strlen(num);
    } else if (text == NULL) {
        return say(err, err_len, "%s: parameter \"%s\" must be a string%s", where, d->name,
                   d->type != PARAM_TEXT ? " or a non-negative integer" : "");
    }
    if (!param_parse(p, d, text, len, &why))
        return say(err, err_len, "%s: parameter \"%s\" %s", where, d->name, why);
    return ST_OK;
}

static const struct param_def *
param_find(const struct check *c, const char *name, size_t *index)
{
    for (size_t i = 0; i < c->n_params; i++) {
        if (strcmp(c->params[i].name, name) == 0) {
            *index = i;
            return &c->params[i];
        }
    }
    return NULL;
}

/* The check's defaults, then the control's "params". */
static enum status
control_params(struct control *c, const json_t *params, const char *where, char *err,
               size_t err_len)
{
    const char *key, *why = NULL;
    json_t *v;
    bool given[CHECK_MAX_PARAMS] = {false};
    size_t i;

    if (params != NULL && !json_is_object(params))
        return say(err, err_len, "%s: \"params\" must be an object", where);
    json_object_foreach ((json_t *)params, key, v) {
        const struct param_def *d = param_find(c->check, key, &i);
        char shown[48];
        text_copy_safe(shown, sizeof shown, key);
        if (d == NULL)
            return say(err, err_len, "%s: check \"%s\" has no parameter \"%s\"", where,
                       c->check->name, shown);
        if (param_value(&c->params[i], d, v, where, err, err_len) != ST_OK)
            return ST_INVALID;
        given[i] = true;
    }
    for (i = 0; i < c->check->n_params; i++) {
        const struct param_def *d = &c->check->params[i];
        if (given[i])
            continue;
        if (d->def == NULL)
            return say(err, err_len, "%s: parameter \"%s\" of check \"%s\" is required", where,
                       d->name, c->check->name);
        if (!param_parse(&c->params[i], d, d->def, strlen(d->def), &why))
            abort(); /* a default in the check table that does not parse: a bug */
    }
    return ST_OK;
}

static enum status
control_refs(struct control *c, const json_t *refs, const char *where, char *err, size_t err_len)
{
    size_t i;
    json_t *r;

    if (!json_is_array(refs) || json_array_size(refs) == 0 || json_array_size(refs) > PACK_MAX_REFS)
        return say(err, err_len, "%s: \"refs\" must be a list of 1 to %d references", where,
                   PACK_MAX_REFS);
    json_array_foreach (refs, i, r) {
        const char *s = json_string_value(r);
        size_t len = json_string_length(r);
        if (s == NULL || len == 0 || len >= PACK_REF_MAX || strlen(s) != len ||
            !text_copy_safe(c->refs[i], PACK_REF_MAX, s))
            return say(err, err_len,
                       "%s: refs[%zu] must be a string of printable UTF-8, 1 to %d "
                       "bytes",
                       where, i, PACK_REF_MAX - 1);
    }
    c->n_refs = json_array_size(refs);
    return ST_OK;
}

static enum status
control_parse(struct control *c, const json_t *o, size_t index, char *err, size_t err_len)
{
    static const char *const members[] = {"id",    "title",  "refs", "severity",
                                          "check", "params", NULL};
    char where[WHERE_MAX], check[PACK_ID_MAX], sev[16];
    enum status st;

    snprintf(where, sizeof where, "controls[%zu]", index);
    if (!json_is_object(o))
        return say(err, err_len, "%s: must be an object", where);
    if ((st = text_member(c->id, sizeof c->id, o, "id", true, true, where, err, err_len)) != ST_OK)
        return st;
    snprintf(where, sizeof where, "controls[%zu] (id %s)", index, c->id);
    if ((st = only(o, members, where, err, err_len)) != ST_OK ||
        (st = text_member(c->title, sizeof c->title, o, "title", true, false, where, err,
                          err_len)) != ST_OK ||
        (st = control_refs(c, json_object_get(o, "refs"), where, err, err_len)) != ST_OK ||
        (st = text_member(sev, sizeof sev, o, "severity", true, false, where, err, err_len)) !=
            ST_OK ||
        (st = text_member(check, sizeof check, o, "check", true, false, where, err, err_len)) !=
            ST_OK)
        return st;
    for (c->severity = 0; c->severity < SEV__COUNT; c->severity++)
        if (strcmp(sev, severity_name(c->severity)) == 0)
            break;
    if (c->severity == SEV__COUNT)
        return say(err, err_len, "%s: severity must be low, medium, high or critical", where);
    if ((c->check = check_find(check)) == NULL)
        return say(err, err_len, "%s: unknown check \"%s\"", where, check);
    return control_params(c, json_object_get(o, "params"), where, err, err_len);
}

static enum status
pack_members(struct pack *p, const json_t *root, char *err, size_t err_len)
{
    static const char *const members[] = {"format",  "id",          "name",     "framework",
                                          "version", "description", "controls", NULL};
    char format[64];
    enum status st;

    if (!json_is_object(root))
        return say(err, err_len, "a pack must be a JSON object");
    if ((st = only(root, members, "pack", err, err_len)) != ST_OK ||
        (st = text_member(format, sizeof format, root, "format", true, false, "pack", err,
                          err_len)) != ST_OK)
        return st;
    if (strcmp(format, PACK_FORMAT) != 0)
        return say(err, err_len, "pack: \"format\" must be \"%s\"", PACK_FORMAT);
    if ((st = text_member(p->id, sizeof p->id, root, "id", true, true, "pack", err, err_len)) !=
            ST_OK ||
        (st = text_member(p->name, sizeof p->name, root, "name", true, false, "pack", err,
                          err_len)) != ST_OK ||
        (st = text_member(p->framework, sizeof p->framework, root, "framework", true, false, "pack",
                          err, err_len)) != ST_OK ||
        (st = text_member(p->version, sizeof p->version, root, "version", true, false, "pack", err,
                          err_len)) != ST_OK)
        return st;
    return text_member(p->description, sizeof p->description, root, "description", false, false,
                       "pack", err, err_len);
}

enum status
pack_parse(struct pack **out, const char *text, size_t len, char *err, size_t err_len)
{
    json_error_t je;
    json_t *root = NULL, *ctl;
    struct pack *p = NULL;
    size_t i;
    enum status st = ST_INVALID;

    *out = NULL;
    if (len > PACK_TEXT_MAX) {
        say(err, err_len, "larger than %zu bytes", PACK_TEXT_MAX);
        goto out;
    }
    if ((root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je)) == NULL) {
        say(err, err_len, "not JSON: line %d column %d", je.line, je.column);
        goto out;
    }
    p = xcalloc(1, sizeof *p);
    if ((st = pack_members(p, root, err, err_len)) != ST_OK)
        goto out;
    const json_t *ctls = json_object_get(root, "controls");
    st = ST_INVALID;
    if (!json_is_array(ctls) || json_array_size(ctls) == 0 ||
        json_array_size(ctls) > PACK_MAX_CONTROLS) {
        say(err, err_len, "pack: \"controls\" must be a list of 1 to %d controls",
            PACK_MAX_CONTROLS);
        goto out;
    }
    p->controls = xcalloc(json_array_size(ctls), sizeof *p->controls);
    json_array_foreach (ctls, i, ctl) {
        if ((st = control_parse(&p->controls[i], ctl, i, err, err_len)) != ST_OK)
            goto out;
        p->n_controls = i + 1;
        if (pack_control(p, p->controls[i].id) != &p->controls[i]) {
            st = say(err, err_len, "controls[%zu]: id \"%s\" is used twice", i, p->controls[i].id);
            goto out;
        }
    }
    *out = p;
    p = NULL;
    st = ST_OK;
out:
    pack_free(p);
    json_decref(root);
    return st;
}

void
pack_free(struct pack *p)
{
    if (p == NULL)
        return;
    free(p->controls);
    free(p);
}

const struct control *
pack_control(const struct pack *p, const char *id)
{
    for (size_t i = 0; i < p->n_controls; i++)
        if (strcmp(p->controls[i].id, id) == 0)
            return &p->controls[i];
    return NULL;
}

/* --- overrides --- */

struct pending {
    struct param *slot;
    struct param value;
};

/* The overrides of one control ({"param": value}) into pending. */
static enum status
override_control(struct control *c, const json_t *params, const char *where, struct pending **pend,
                 size_t *n, char *err, size_t err_len)
{
    const char *key;
    json_t *v;
    size_t i;

    if (!json_is_object(params))
        return say(err, err_len, "%s: must be an object of parameters", where);
    json_object_foreach ((json_t *)params, key, v) {
        const struct param_def *d = param_find(c->check, key, &i);
        struct param value;
        char shown[48];
        text_copy_safe(shown, sizeof shown, key);
        if (d == NULL)
            return say(err, err_len, "%s: check \"%s\" has no parameter \"%s\"", where,
                       c->check->name, shown);
        if (param_value(&value, d, v, where, err, err_len) != ST_OK)
            return ST_INVALID;
        *pend = xrealloc(*pend, (*n + 1) * sizeof **pend);
        (*pend)[*n].slot = &c->params[i];
        (*pend)[(*n)++].value = value;
    }
    return ST_OK;
}

static struct pack *
pack_named(struct pack *const *packs, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(packs[i]->id, id) == 0)
            return packs[i];
    return NULL;
}

enum status
packs_override(struct pack *const *packs, size_t n, const char *text, size_t len, char *err,
               size_t err_len)
{
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je), *ctls, *params;
    struct pending *pend = NULL;
    const char *pid, *cid;
    char where[WHERE_MAX], shown[48];
    size_t n_pend = 0;
    enum status st = ST_INVALID;

    if (root == NULL) {
        say(err, err_len, "not JSON: line %d column %d", je.line, je.column);
        goto out;
    }
    if (!json_is_object(root)) {
        say(err, err_len, "must be an object of pack ids");
        goto out;
    }
    json_object_foreach (root, pid, ctls) {
        struct pack *p = pack_named(packs, n, pid);
        text_copy_safe(shown, sizeof shown, pid);
        if (p == NULL || !json_is_object(ctls)) {
            say(err, err_len, p == NULL ? "no pack \"%s\" is loaded" : "%s: must be an object",
                shown);
            goto out;
        }
        json_object_foreach (ctls, cid, params) {
            struct control *c = (struct control *)pack_control(p, cid);
            text_copy_safe(shown, sizeof shown, cid);
            snprintf(where, sizeof where, "%s/%s", p->id, shown);
            if (c == NULL) {
                say(err, err_len, "pack \"%s\" has no control \"%s\"", p->id, shown);
                goto out;
            }
            if (override_control(c, params, where, &pend, &n_pend, err, err_len) != ST_OK)
                goto out;
        }
    }
    for (size_t i = 0; i < n_pend; i++)
        *pend[i].slot = pend[i].value;
    st = ST_OK;
out:
    free(pend);
    json_decref(root);
    return st;
}
