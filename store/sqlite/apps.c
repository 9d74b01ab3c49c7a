/* SPDX-License-Identifier: Apache-2.0 */
/* store/sqlite/apps.c -- apps and API keys in SQLite. Every value is bound, never spliced into
 * SQL. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmem.h"
#include "store/sqlite/private.h"

/* --- apps and API keys --- */

/* Insert, then (the id known) seal and store the MAC, in one transaction. */
enum status
sq_app_create0(struct store *s, struct store_app *app, store_app_seal_fn seal, void *arg)
{
    struct sqdb *d = sq_lock(s);
    struct sqdb_bind b;
    enum status st;

    if ((st = sqdb_begin(d)) != ST_OK)
        goto out;
    if ((st = sqdb_prep(d, SQ_APP_INSERT, &b)) == ST_OK) {
        sqdb_bind_text(&b, app->name);
        sqdb_bind_text(&b, app->description);
        sqdb_bind_i64(&b, app->created_at);
        if ((st = sqdb_run(&b, NULL)) == ST_OK)
            app->id = sqdb_last_id(d);
    }
    if (st == ST_OK && seal != NULL) {
        seal(arg, app);
        if ((st = sqdb_prep(d, SQ_APP_MAC, &b)) == ST_OK) {
            sqdb_bind_i64(&b, app->id);
            sqdb_bind_blob(&b, app->mac, sizeof app->mac);
            st = sqdb_run(&b, NULL);
        }
    }
    st = sqdb_end(d, st);
out:
    sqdb_unlock(d);
    return st;
}

enum status
sq_app_seal(struct store *s, const struct store_app *app)
{
    struct sqdb *d = sq_lock(s);
    struct sqdb_bind b;
    int changes = 0;
    enum status st;

    if ((st = sqdb_prep(d, SQ_APP_SEAL, &b)) == ST_OK) {
        sqdb_bind_i64(&b, app->id);
        sqdb_bind_text(&b, app->name);
        sqdb_bind_i64(&b, app->created_at);
        sqdb_bind_blob(&b, app->mac, sizeof app->mac);
        if ((st = sqdb_run(&b, &changes)) == ST_OK && changes == 0)
            st = ST_NOT_FOUND;
    }
    sqdb_unlock(d);
    return st;
}

enum status
sq_app_get(struct store *s, const char *name, struct store_app *out)
{
    struct sqdb *d = sq_lock(s);
    struct sqdb_bind b;
    enum status st;

    if ((st = sqdb_prep(d, SQ_APP_GET, &b)) == ST_OK) {
        sqdb_bind_text(&b, name);
        st = sqdb_fetch_one(&b, sq_read_app, out);
    }
    sqdb_unlock(d);
    return st;
}

enum status
sq_app_list(struct store *s, struct store_app **out, size_t *n)
{
    void *arr = NULL;
    enum status st = sq_list(s, SQ_APP_LIST, sq_read_app, sizeof **out, &arr, n);

    *out = arr;
    return st;
}

enum status
sq_apikey_create0(struct store *s, const struct store_apikey *k)
{
    struct sqdb *d = sq_lock(s);
    struct sqdb_bind b;
    enum status st;

    if ((st = sqdb_prep(d, SQ_KEY_INSERT, &b)) == ST_OK) {
        sqdb_bind_text(&b, k->id);
        sqdb_bind_i64(&b, k->app_id);
        sqdb_bind_blob(&b, k->hash, sizeof k->hash);
        sqdb_bind_text(&b, k->scopes);
        sqdb_bind_text(&b, k->keyrings);
        sqdb_bind_i64(&b, k->created_at);
        sqdb_bind_i64(&b, k->expires_at);
        sqdb_bind_opt_i64(&b, k->revoked_at);
        sqdb_bind_i64(&b, k->rate);
        sqdb_bind_i64(&b, k->burst);
        sqdb_bind_opt_i64(&b, k->grace_until);
        sqdb_bind_blob(&b, k->mac, sizeof k->mac);
        st = sqdb_run(&b, NULL);
    }
    sqdb_unlock(d);
    return st;
}

enum status
sq_apikey_get(struct store *s, const char *id, struct store_apikey *out)
{
    struct sqdb *d = sq_lock(s);
    struct sqdb_bind b;
    enum status st;

    if ((st = sqdb_prep(d, SQ_KEY_GET, &b)) == ST_OK) {
        sqdb_bind_text(&b, id);
        st = sqdb_fetch_one(&b, sq_read_apikey, out);
    }
    sqdb_unlock(d);
    return st;
}

enum status
sq_apikey_list(struct store *s, int64_t app_id, struct store_apikey **out, size_t *n)
{
    struct sqdb *d = sq_lock(s);
    struct sqdb_bind b;
    void *arr = NULL;
    enum status st;

    if ((st = sqdb_prep(d, SQ_KEY_LIST, &b)) == ST_OK) {
        sqdb_bind_i64(&b, app_id);
        st = sqdb_fetch_all(&b, sq_read_apikey, sizeof **out, &arr, n);
    }
    sqdb_unlock(d);
    *out = arr;
    return st;
}

enum status
sq_apikey_revoke0(struct store *s, const char *id, int64_t revoked_at,
                  const uint8_t mac[static STORE_MAC_BYTES])
{
    struct sqdb *d = sq_lock(s);
    struct sqdb_bind b;
    int changes = 0;
    enum status st;

    if ((st = sqdb_prep(d, SQ_KEY_REVOKE, &b)) == ST_OK) {
        sqdb_bind_text(&b, id);
        sqdb_bind_opt_i64(&b, revoked_at);
        sqdb_bind_blob(&b, mac, STORE_MAC_BYTES);
        if ((st = sqdb_run(&b, &changes)) == ST_OK && changes == 0)
            st = ST_NOT_FOUND;
    }
    sqdb_unlock(d);
    return st;
}

enum status
sq_apikey_update0(struct store *s, const struct store_apikey *k)
{
    struct sqdb *d = sq_lock(s);
    struct sqdb_bind b;
    int changes = 0;
    enum status st;

    if ((st = sqdb_prep(d, SQ_KEY_UPDATE, &b)) == ST_OK) {
        sqdb_bind_text(&b, k->id);
        sqdb_bind_opt_i64(&b, k->revoked_at);
        sqdb_bind_opt_i64(&b, k->grace_until);
        sqdb_bind_i64(&b, k->rate);
        sqdb_bind_i64(&b, k->burst);
        sqdb_bind_blob(&b, k->mac, sizeof k->mac);
        if ((st = sqdb_run(&b, &changes)) == ST_OK && changes == 0)
            st = ST_NOT_FOUND;
    }
    sqdb_unlock(d);
    return st;
}

static void
read_key_id(struct sqdb_row *r, void *dst)
{
    sqdb_col_text(r, dst, STORE_KEY_ID_MAX);
}

enum status
sq_apikey_ids_since(struct store *s, int64_t since, char (**out)[STORE_KEY_ID_MAX], size_t *n)
{
    struct sqdb *d = sq_lock(s);
    struct sqdb_bind b;
    void *arr = NULL;
    enum status st;

    if ((st = sqdb_prep(d, SQ_KEY_IDS_SINCE, &b)) == ST_OK) {
        sqdb_bind_i64(&b, since);
        st = sqdb_fetch_all(&b, read_key_id, STORE_KEY_ID_MAX, &arr, n);
    }
    sqdb_unlock(d);
    *out = arr;
    return st;
}

enum status
sq_apikey_touch(struct store *s, const char *id, int64_t last_used_at)
{
    struct sqdb *d = sq_lock(s);
    struct sqdb_bind b;
    enum status st;

    if ((st = sqdb_prep(d, SQ_KEY_TOUCH, &b)) == ST_OK) {
        sqdb_bind_text(&b, id);
        sqdb_bind_i64(&b, last_used_at);
        st = sqdb_run(&b, NULL);
    }
    sqdb_unlock(d);
    return st;
}
