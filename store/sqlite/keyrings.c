/* SPDX-License-Identifier: Apache-2.0 */
/* store/sqlite/keyrings.c -- keyrings and their key versions in SQLite. Every value is bound,
 * never spliced into SQL. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmem.h"
#include "store/sqlite/private.h"

/* --- keyrings and versions --- */

/* SELECT 1 by one or two integer keys: ST_OK if the row exists, ST_NOT_FOUND if not. */
static enum status
sq_exists(struct sqdb *d, enum sq_id id, int64_t k1, int64_t k2)
{
    struct sqdb_bind b;
    enum status st;

    if ((st = sqdb_prep(d, id, &b)) != ST_OK)
        return st;
    sqdb_bind_i64(&b, k1);
    if (id == SQ_V_EXISTS)
        sqdb_bind_i64(&b, k2);
    return sqdb_exists(&b);
}

/* Binds the columns of SQ_KR_SET (?2..?9). */
static void
b_keyring_mutable(struct sqdb_bind *b, const struct store_keyring *kr)
{
    sqdb_bind_i64(b, kr->rotation_period);
    sqdb_bind_i64(b, kr->deletion_allowed != 0);
    sqdb_bind_i64(b, kr->latest_version);
    sqdb_bind_i64(b, kr->min_decryption_version);
    sqdb_bind_i64(b, kr->min_encryption_version);
    sqdb_bind_i64(b, kr->updated_at);
    sqdb_bind_i64(b, kr->rotated_at);
    sqdb_bind_blob(b, kr->mac, sizeof kr->mac);
}

static enum status
sq_version_insert(struct sqdb *d, int64_t keyring_id, const struct store_version *v)
{
    struct sqdb_bind b;
    enum status st;

    if ((st = sqdb_prep(d, SQ_V_INSERT, &b)) != ST_OK)
        return st;
    sqdb_bind_i64(&b, keyring_id);
    sqdb_bind_i64(&b, v->version);
    sqdb_bind_text(&b, v->root_key_id);
    sqdb_bind_blob(&b, v->wrapped, v->wrapped_len);
    sqdb_bind_i64(&b, v->created_at);
    sqdb_bind_i64(&b, v->encryptions_reserved);
    sqdb_bind_blob(&b, v->mac, sizeof v->mac);
    return sqdb_run(&b, NULL);
}

enum status
sq_keyring_create0(struct store *s, struct store_keyring *kr, struct store_version *v1)
{
    struct sqdb *d = sq_lock(s);
    struct sqdb_bind b;
    int64_t id = 0;
    enum status st;

    if ((st = sqdb_begin(d)) != ST_OK)
        goto out;
    if ((st = sqdb_prep(d, SQ_KR_INSERT, &b)) == ST_OK) {
        sqdb_bind_text(&b, kr->name);
        sqdb_bind_text(&b, kr->algorithm);
        sqdb_bind_i64(&b, kr->deterministic != 0);
        sqdb_bind_i64(&b, kr->created_at);
        b_keyring_mutable(&b, kr);
        st = sqdb_run(&b, NULL);
    }
    if (st == ST_OK) {
        id = sqdb_last_id(d); /* safe: mu keeps other inserts out */
        st = sq_version_insert(d, id, v1);
    }
    if ((st = sqdb_end(d, st)) == ST_OK)
        kr->id = v1->keyring_id = id;
out:
    sqdb_unlock(d);
    return st;
}

enum status
sq_keyring_get(struct store *s, const char *name, struct store_keyring *out)
{
    struct sqdb *d = sq_lock(s);
    struct sqdb_bind b;
    enum status st;

    if ((st = sqdb_prep(d, SQ_KR_GET, &b)) == ST_OK) {
        sqdb_bind_text(&b, name);
        st = sqdb_fetch_one(&b, sq_read_keyring, out);
    }
    sqdb_unlock(d);
    return st;
}

enum status
sq_keyring_list(struct store *s, struct store_keyring **out, size_t *n)
{
    void *arr = NULL;
    enum status st = sq_list(s, SQ_KR_LIST, sq_read_keyring, sizeof **out, &arr, n);

    *out = arr;
    return st;
}

/* Run SQ_KR_UPDATE or SQ_KR_ROTATE; 0 rows is ST_NOT_FOUND when the keyring is gone, else
 * ST_CONFLICT (its latest_version moved on). Called with mu held. */
static enum status
sq_keyring_set(struct sqdb *d, enum sq_id id, const struct store_keyring *kr, uint32_t prev_latest)
{
    struct sqdb_bind b;
    int changes = 0;
    enum status st;

    if ((st = sqdb_prep(d, id, &b)) != ST_OK)
        return st;
    sqdb_bind_i64(&b, kr->id);
    b_keyring_mutable(&b, kr);
    if (id == SQ_KR_ROTATE)
        sqdb_bind_i64(&b, prev_latest);
    if ((st = sqdb_run(&b, &changes)) == ST_OK && changes == 0)
        st = sq_exists(d, SQ_KR_EXISTS, kr->id, 0) == ST_OK ? ST_CONFLICT : ST_NOT_FOUND;
    return st;
}

enum status
sq_keyring_update0(struct store *s, const struct store_keyring *kr)
{
    struct sqdb *d = sq_lock(s);
    enum status st = sq_keyring_set(d, SQ_KR_UPDATE, kr, 0);

    sqdb_unlock(d);
    return st;
}

enum status
sq_keyring_rotate0(struct store *s, const struct store_keyring *kr, const struct store_version *v,
                   uint32_t prev_latest)
{
    struct sqdb *d = sq_lock(s);
    enum status st;

    if ((st = sqdb_begin(d)) == ST_OK) {
        st = sq_keyring_set(d, SQ_KR_ROTATE, kr, prev_latest);
        if (st == ST_OK)
            st = sq_version_insert(d, kr->id, v);
        st = sqdb_end(d, st);
    }
    sqdb_unlock(d);
    return st;
}

enum status
sq_keyring_delete0(struct store *s, int64_t keyring_id)
{
    struct sqdb *d = sq_lock(s);
    struct sqdb_bind b;
    int changes = 0;
    enum status st;

    if ((st = sqdb_begin(d)) != ST_OK)
        goto out;
    if ((st = sqdb_prep(d, SQ_KR_DELETE_VERSIONS, &b)) == ST_OK) {
        sqdb_bind_i64(&b, keyring_id);
        st = sqdb_run(&b, NULL);
    }
    if (st == ST_OK && (st = sqdb_prep(d, SQ_KR_DELETE, &b)) == ST_OK) {
        sqdb_bind_i64(&b, keyring_id);
        if ((st = sqdb_run(&b, &changes)) == ST_OK && changes == 0)
            st = ST_NOT_FOUND;
    }
    /* The WAL frames that still hold the wrapped KEKs go with store_shred_flush, after the
     * outermost transaction (the audit event's) has committed. */
    st = sqdb_end(d, st);
out:
    sqdb_unlock(d);
    return st;
}

enum status
sq_version_list(struct store *s, int64_t keyring_id, struct store_version **out, size_t *n)
{
    struct sqdb *d = sq_lock(s);
    struct sqdb_bind b;
    void *arr = NULL;
    enum status st;

    if ((st = sqdb_prep(d, SQ_V_LIST, &b)) == ST_OK) {
        sqdb_bind_i64(&b, keyring_id);
        st = sqdb_fetch_all(&b, sq_read_version, sizeof **out, &arr, n);
    }
    sqdb_unlock(d);
    *out = arr;
    return st;
}

enum status
sq_version_get(struct store *s, int64_t keyring_id, uint32_t version, struct store_version *out)
{
    struct sqdb *d = sq_lock(s);
    struct sqdb_bind b;
    enum status st;

    if ((st = sqdb_prep(d, SQ_V_GET, &b)) == ST_OK) {
        sqdb_bind_i64(&b, keyring_id);
        sqdb_bind_i64(&b, version);
        st = sqdb_fetch_one(&b, sq_read_version, out);
    }
    sqdb_unlock(d);
    return st;
}

/* Never lowers: a smaller `reserved` touches nothing (the stored MAC stays the one for the
 * stored, larger value) and is still ST_OK. */
enum status
sq_version_reserve(struct store *s, int64_t keyring_id, uint32_t version, int64_t reserved,
                   const uint8_t mac[static STORE_MAC_BYTES])
{
    struct sqdb *d = sq_lock(s);
    struct sqdb_bind b;
    int changes = 0;
    enum status st;

    if ((st = sqdb_prep(d, SQ_V_RESERVE, &b)) == ST_OK) {
        sqdb_bind_i64(&b, keyring_id);
        sqdb_bind_i64(&b, version);
        sqdb_bind_i64(&b, reserved);
        sqdb_bind_blob(&b, mac, STORE_MAC_BYTES);
        if ((st = sqdb_run(&b, &changes)) == ST_OK && changes == 0)
            st = sq_exists(d, SQ_V_EXISTS, keyring_id, version);
    }
    sqdb_unlock(d);
    return st;
}

enum status
sq_version_reserve_from(struct store *s, int64_t keyring_id, uint32_t version, int64_t expected,
                        int64_t reserved, const uint8_t mac[static STORE_MAC_BYTES])
{
    struct sqdb *d = sq_lock(s);
    struct sqdb_bind b;
    int changes = 0;
    enum status st;

    if ((st = sqdb_prep(d, SQ_V_RESERVE_FROM, &b)) == ST_OK) {
        sqdb_bind_i64(&b, keyring_id);
        sqdb_bind_i64(&b, version);
        sqdb_bind_i64(&b, expected);
        sqdb_bind_i64(&b, reserved);
        sqdb_bind_blob(&b, mac, STORE_MAC_BYTES);
        if ((st = sqdb_run(&b, &changes)) == ST_OK && changes == 0)
            st = sq_exists(d, SQ_V_EXISTS, keyring_id, version) == ST_OK ? ST_CONFLICT
                                                                         : ST_NOT_FOUND;
    }
    sqdb_unlock(d);
    return st;
}

enum status
sq_version_rewrap(struct store *s, const struct store_version *v)
{
    struct sqdb *d = sq_lock(s);
    struct sqdb_bind b;
    int changes = 0;
    enum status st;

    if ((st = sqdb_prep(d, SQ_V_REWRAP, &b)) == ST_OK) {
        sqdb_bind_i64(&b, v->keyring_id);
        sqdb_bind_i64(&b, v->version);
        sqdb_bind_text(&b, v->root_key_id);
        sqdb_bind_blob(&b, v->wrapped, v->wrapped_len);
        sqdb_bind_blob(&b, v->mac, sizeof v->mac);
        if ((st = sqdb_run(&b, &changes)) == ST_OK && changes == 0)
            st = ST_NOT_FOUND;
    }
    sqdb_unlock(d);
    return st;
}

enum status
sq_version_list_all(struct store *s, struct store_version **out, size_t *n)
{
    void *arr = NULL;
    enum status st = sq_list(s, SQ_V_LIST_ALL, sq_read_version, sizeof **out, &arr, n);

    *out = arr;
    return st;
}
