/* SPDX-License-Identifier: Apache-2.0 */
/* server/svckey.c -- service keys wrapped by the root key (see svckey.h). */
#include "server/svckey.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/clock.h"
#include "common/json/jsonx.h"

static size_t
aad_of(char out[static 64], const char *purpose)
{
    snprintf(out, 64, "difyguard/v1/svckey/%s", purpose);
    return strlen(out);
}

static void say(char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
say(char *err, size_t err_len, const char *fmt, ...)
{
    va_list ap;
    if (err == NULL || err_len == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

/* The stored row of a service key wrapped under rk (the row's created_at is kept by callers that
 * rewrap). */
static enum status
svckey_wrap(struct store_svckey *row, const struct rootkey *rk, const char *purpose,
            const uint8_t *key, size_t len)
{
    char aad[64];
    size_t aad_len = aad_of(aad, purpose);

    snprintf(row->purpose, sizeof row->purpose, "%s", purpose);
    snprintf(row->root_key_id, sizeof row->root_key_id, "%s", rootkey_id(rk));
    return rootkey_wrap(rk, row->wrapped, sizeof row->wrapped, &row->wrapped_len, key, len,
                        (const uint8_t *)aad, aad_len);
}

enum status
svckey_put(struct store *st, const struct rootkey *rk, const char *purpose, const uint8_t *key,
           size_t len)
{
    struct store_svckey row = {0};
    enum status s;

    row.created_at = clock_now_s();
    if ((s = svckey_wrap(&row, rk, purpose, key, len)) == ST_OK)
        s = store_svckey_put(st, &row);
    sodium_memzero(&row, sizeof row);
    return s;
}

enum status
svckey_add(struct store *st, const struct rootkey *rk, const char *purpose, const uint8_t *key,
           size_t len)
{
    struct store_svckey row = {0};
    enum status s;

    row.created_at = clock_now_s();
    if ((s = svckey_wrap(&row, rk, purpose, key, len)) == ST_OK)
        s = store_svckey_add(st, &row);
    sodium_memzero(&row, sizeof row);
    return s;
}

/* Unwrap a row already read (its root key id checked by the caller). */
static enum status
svckey_open(const struct store_svckey *row, const struct rootkey *rk, struct secret **out,
            char *err, size_t err_len)
{
    char aad[64];
    size_t aad_len = aad_of(aad, row->purpose);
    enum status s =
        rootkey_unwrap(rk, out, row->wrapped, row->wrapped_len, (const uint8_t *)aad, aad_len);
    if (s != ST_OK)
        say(err, err_len, "service key '%s' does not open under root key %s", row->purpose,
            rootkey_id(rk));
    return s;
}

enum status
svckey_load(struct store *st, const struct rootkey *rk, const char *purpose, struct secret **out,
            int64_t *created_at, char *err, size_t err_len)
{
    struct store_svckey row;
    enum status s;

    *out = NULL;
    if ((s = store_svckey_get(st, purpose, &row)) != ST_OK) {
        say(err, err_len, "service key '%s' missing from the database%s", purpose,
            ": run difyguard init");
        return s;
    }
    if (strcmp(row.root_key_id, rootkey_id(rk)) != 0) {
        say(err, err_len, "root key %s does not match this database (it expects root key %s)",
            rootkey_id(rk), row.root_key_id);
        return ST_AUTH;
    }
    if (created_at != NULL)
        *created_at = row.created_at;
    s = svckey_open(&row, rk, out, err, err_len);
    sodium_memzero(&row, sizeof row);
    return s;
}

static const struct rootkey *
key_named(const struct rootkey *const *keys, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(rootkey_id(keys[i]), id) == 0)
            return keys[i];
    return NULL;
}

enum status
svckey_load_any(struct store *st, const struct rootkey *const *keys, size_t n, const char *purpose,
                struct secret **out, const struct rootkey **used, char *err, size_t err_len)
{
    struct store_svckey row;
    const struct rootkey *rk;
    enum status s;

    *out = NULL;
    if (used != NULL)
        *used = NULL;
    if ((s = store_svckey_get(st, purpose, &row)) != ST_OK) {
        say(err, err_len, "service key '%s' missing from the database%s", purpose,
            ": run difyguard init");
        return s;
    }
    if ((rk = key_named(keys, n, row.root_key_id)) == NULL) {
        say(err, err_len,
            "service key '%s' is wrapped under root key %s, which was not given "
            "(pass its file with --old-key)",
            purpose, row.root_key_id);
        s = ST_AUTH;
    } else if ((s = svckey_open(&row, rk, out, err, err_len)) == ST_OK && used != NULL) {
        *used = rk;
    }
    sodium_memzero(&row, sizeof row);
    return s;
}

enum status
svckey_rewrap_all(struct store *st, const struct rootkey *const *from, size_t n,
                  const struct rootkey *to, char *err, size_t err_len)
{
    struct store_svckey *keys = NULL;
    size_t m = 0, done = 0;
    enum status s = store_svckey_list(st, &keys, &m);

    /* Rows already under `to` are left as they are: only the others are written. */
    for (size_t i = 0; i < m && s == ST_OK; i++) {
        struct secret *key = NULL;
        if (strcmp(keys[i].root_key_id, rootkey_id(to)) == 0)
            continue;
        if ((s = svckey_load_any(st, from, n, keys[i].purpose, &key, NULL, err, err_len)) ==
            ST_OK) {
            struct store_svckey row = {.created_at = keys[i].created_at};
            if ((s = svckey_wrap(&row, to, keys[i].purpose, secret_ro(key), secret_len(key))) ==
                ST_OK)
                keys[done++] = row;
            sodium_memzero(&row, sizeof row);
        }
        secret_free(key);
    }
    if (s == ST_OK && (s = store_svckey_put_all(st, keys, done, rootkey_id(to))) != ST_OK)
        say(err, err_len, "%s", "storing the rewrapped service keys failed; run again");
    sodium_memzero(keys, m * sizeof *keys);
    free(keys);
    return s;
}
