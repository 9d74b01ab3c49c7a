/* SPDX-License-Identifier: Apache-2.0 */
/* common/json/jsonx.h -- strict JSON request helpers over jansson (duplicate keys rejected, exact
 * types, unknown fields refused) and the wiping allocator: every block jansson frees is zeroed
 * first, so plaintext parsed from a request does not linger on the heap. */
#ifndef DG_COMMON_JSON_JSONX_H
#define DG_COMMON_JSON_JSONX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/status.h"

/* Install the wiping allocator (once, before any jansson use). */
void jx_init(void);
/* Free (and wipe) a string returned by json_dumps: it comes from the jansson allocator. */
void jx_free_str(char *s);

/* Parse a request body; must be an object. *msg gets a fixed message on failure. */
NODISCARD enum status jx_parse_object(json_t **out, const char *body, size_t len, const char **msg);

/* The name of `names` (NULL-terminated) closest to `name`, within an edit distance of 2; NULL
 * when none is that close. */
const char *jx_closest(const char *name, const char *const *names);
#define JX_NAME_MAX 40 /* longest field name an error message shows back */
/* The message for an unknown field: its name (when a plain short name) with a hint for names
 * other services use, or the closest allowed name. Thread-local storage, valid until the next
 * call on the same thread. */
const char *jx_unknown_field_msg(const char *key, const char *const *allowed);
/* ST_INVALID when obj has a key outside `allowed` (NULL-terminated); *msg names it. */
NODISCARD enum status jx_only(const json_t *obj, const char *const *allowed, const char **msg);

/* Typed getters: ST_OK (absent leaves *out unchanged and sets *present=false), or ST_INVALID for a
 * wrong type. present may be NULL. */
NODISCARD enum status jx_str(const json_t *obj, const char *key, const char **out, size_t *len,
                             bool *present);
NODISCARD enum status jx_bool(const json_t *obj, const char *key, bool *out, bool *present);
NODISCARD enum status jx_int(const json_t *obj, const char *key, int64_t *out, bool *present);
/* A duration: integer seconds or a string such as "90d", at most 3650 days (ST_INVALID above:
 * see config_duration). */
NODISCARD enum status jx_duration(const json_t *obj, const char *key, int64_t *out, bool *present);

/* RFC 3339 UTC ("2026-11-28T20:21:00Z"); JSON null for t == 0. */
json_t *jx_time(int64_t t);

#endif
