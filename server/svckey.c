/* SPDX-License-Identifier: Apache-2.0 */
/* server/svckey.c -- service keys wrapped by the root key (see svckey.h). */
#include "server/svckey.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "server/jsonx.h"

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

enum status
svckey_put(struct store *st, const struct rootkey *rk, const char *purpose, const uint8_t *key,
           size_t len)
{
    struct store_svckey row = {0};
    char aad[64];
    size_t aad_len = aad_of(aad, purpose);

    snprintf(row.purpose, sizeof row.purpose, "%s", purpose);
    snprintf(row.root_key_id, sizeof row.root_key_id, "%s", rootkey_id(rk));
    row.created_at = now_s();
    enum status s = rootkey_wrap(rk, row.wrapped, sizeof row.wrapped, &row.wrapped_len, key, len,
                                 (const uint8_t *)aad, aad_len);
    return s == ST_OK ? store_svckey_put(st, &row) : s;
}

enum status
svckey_load(struct store *st, const struct rootkey *rk, const char *purpose, struct secret **out,
            int64_t *created_at, char *err, size_t err_len)
{
    struct store_svckey row;
    char aad[64];
    size_t aad_len = aad_of(aad, purpose);
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
    s = rootkey_unwrap(rk, out, row.wrapped, row.wrapped_len, (const uint8_t *)aad, aad_len);
    if (s != ST_OK)
        say(err, err_len, "service key '%s' does not open under root key %s", purpose,
            rootkey_id(rk));
    return s;
}

enum status
svckey_rewrap_all(struct store *st, const struct rootkey *from, const struct rootkey *to)
{
    struct store_svckey *keys = NULL;
    size_t n = 0;
    enum status s = store_svckey_list(st, &keys, &n);

    for (size_t i = 0; i < n && s == ST_OK; i++) {
        struct secret *key = NULL;
        if (strcmp(keys[i].root_key_id, rootkey_id(to)) == 0)
            continue;
        if ((s = svckey_load(st, from, keys[i].purpose, &key, NULL, NULL, 0)) == ST_OK)
            s = svckey_put(st, to, keys[i].purpose, secret_ro(key), secret_len(key));
        secret_free(key);
    }
    sodium_memzero(keys, n * sizeof *keys);
    free(keys);
    return s;
}
