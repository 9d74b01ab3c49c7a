/* SPDX-License-Identifier: Apache-2.0 */
/* store/postgres/postgres.c -- the PostgreSQL backend of store.h: the SQL of every operation and
 * the mapping between rows and structs (pool, transactions and helpers are in pg.c). Each
 * operation is one transaction (a single read runs alone) on a connection of the pool; an admin
 * change inserts its audit event in that same transaction. Every value is a parameter. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "common/xmem.h"
#include "store/postgres/pg.h"
#include "store/private/migrations.h"
#include "store/private/ops.h"

struct pg {
    struct store base; /* first: a struct store * is a struct pg * */
    struct pgpool *p;
};

#define POOL(s) (((struct pg *)(s))->p)

#define KR_COLS                                                                                    \
    "id, name, algorithm, deterministic, created_at, rotation_period, "                            \
    "deletion_allowed, latest_version, min_decryption_version, min_encryption_version, "           \
    "updated_at, rotated_at, mac"
#define KR_SET                                                                                     \
    "rotation_period = $2, deletion_allowed = $3, latest_version = $4, "                           \
    "min_decryption_version = $5, min_encryption_version = $6, updated_at = $7, rotated_at = $8, " \
    "mac = $9"
#define V_COLS "keyring_id, version, root_key_id, wrapped, created_at, encryptions_reserved, mac"
#define SVC_COLS "purpose, root_key_id, wrapped, created_at"
#define APP_COLS "id, name, description, created_at, mac"
#define KEY_SELECT                                                                                 \
    "SELECT k.id, k.app_id, a.name, a.created_at, a.mac, k.hash, k.scopes, "                       \
    "k.keyrings, k.created_at, k.expires_at, k.revoked_at, k.rate, k.burst, k.grace_until, "       \
    "k.last_used_at, k.mac "                                                                       \
    "FROM api_keys AS k JOIN apps AS a ON a.id = k.app_id "
#define CERT_SRC_COLS                                                                              \
    "id, kind, target, server_name, recursive, expect_chain, renew_before, warning, critical, "    \
    "created_at"
#define CERT_SEEN_COLS                                                                             \
    "source_id, slot, fingerprint, subject, issuer, serial, not_before, not_after, seen_at, "      \
    "rotation"

/* --- rows --- */

/* Rows that carry a MAC are handed over even when malformed, with the MAC zeroed: the caller's
 * MAC check then refuses that one row instead of one bad row failing a whole list. */
static void
col_mac(struct pgrow *r, uint8_t mac[static STORE_MAC_BYTES], const char *table)
{
    pgc_blob_exact(r, mac, STORE_MAC_BYTES);
    if (r->bad) {
        pg_log("store_row_malformed", table, NULL, "value of wrong type or size; MAC zeroed");
        memset(mac, 0, STORE_MAC_BYTES);
        r->bad = false;
    }
}

static void
col_opt_mac(struct pgrow *r, uint8_t mac[static STORE_MAC_BYTES], bool *has, const char *table)
{
    *has = !pgc_null(r);
    if (*has)
        col_mac(r, mac, table);
    else
        r->i++;
}

static void
read_svckey(struct pgrow *r, void *dst)
{
    struct store_svckey *k = dst;

    pgc_text(r, k->purpose, sizeof k->purpose);
    pgc_text(r, k->root_key_id, sizeof k->root_key_id);
    k->wrapped_len = pgc_blob(r, k->wrapped, sizeof k->wrapped);
    k->created_at = pgc_i64(r);
}

static void
read_keyring(struct pgrow *r, void *dst)
{
    struct store_keyring *kr = dst;

    kr->id = pgc_i64(r);
    pgc_text(r, kr->name, sizeof kr->name);
    pgc_text(r, kr->algorithm, sizeof kr->algorithm);
    kr->deterministic = pgc_bool(r);
    kr->created_at = pgc_i64(r);
    kr->rotation_period = pgc_i64(r);
    kr->deletion_allowed = pgc_bool(r);
    kr->latest_version = pgc_u32(r);
    kr->min_decryption_version = pgc_u32(r);
    kr->min_encryption_version = pgc_u32(r);
    kr->updated_at = pgc_i64(r);
    kr->rotated_at = pgc_i64(r);
    col_mac(r, kr->mac, "keyrings");
}

static void
read_version(struct pgrow *r, void *dst)
{
    struct store_version *v = dst;

    v->keyring_id = pgc_i64(r);
    v->version = pgc_u32(r);
    pgc_text(r, v->root_key_id, sizeof v->root_key_id);
    v->wrapped_len = pgc_blob(r, v->wrapped, sizeof v->wrapped);
    v->created_at = pgc_i64(r);
    v->encryptions_reserved = pgc_i64(r);
    col_mac(r, v->mac, "key_versions");
}

static void
read_app(struct pgrow *r, void *dst)
{
    struct store_app *a = dst;

    a->id = pgc_i64(r);
    pgc_text(r, a->name, sizeof a->name);
    pgc_text(r, a->description, sizeof a->description);
    a->created_at = pgc_i64(r);
    col_opt_mac(r, a->mac, &a->has_mac, "apps");
}

static void
read_apikey(struct pgrow *r, void *dst)
{
    struct store_apikey *k = dst;

    pgc_text(r, k->id, sizeof k->id);
    k->app_id = pgc_i64(r);
    pgc_text(r, k->app_name, sizeof k->app_name);
    k->app_created_at = pgc_i64(r);
    col_opt_mac(r, k->app_mac, &k->app_has_mac, "apps");
    pgc_blob_exact(r, k->hash, sizeof k->hash);
    pgc_text(r, k->scopes, sizeof k->scopes);
    pgc_text(r, k->keyrings, sizeof k->keyrings);
    k->created_at = pgc_i64(r);
    k->expires_at = pgc_i64(r);
    k->revoked_at = pgc_opt_i64(r);
    k->rate = pgc_i64(r);
    k->burst = pgc_i64(r);
    k->grace_until = pgc_opt_i64(r);
    k->last_used_at = pgc_opt_i64(r);
    col_mac(r, k->mac, "api_keys");
}

static void
read_i64(struct pgrow *r, void *dst)
{
    *(int64_t *)dst = pgc_i64(r);
}

/* --- generic runners --- */

/* One read statement: at most one row into dst. */
static enum status
pg_get(struct store *s, struct pgq *q, pg_reader read, void *dst)
{
    struct pgtx t = PGTX_INIT(POOL(s), false);

    while (pgtx_next(&t))
        t.st = pg_one(&t, q, read, dst);
    return t.st;
}

/* One read statement: every row into a malloc'd array. */
static enum status
pg_list(struct store *s, struct pgq *q, pg_reader read, size_t size, void **arr, size_t *n)
{
    struct pgtx t = PGTX_INIT(POOL(s), false);

    while (pgtx_next(&t))
        t.st = pg_all(&t, q, read, size, arr, n);
    return t.st;
}

/* One write statement in its own transaction; 0 rows changed is ST_NOT_FOUND when
 * zero_not_found. */
static enum status
pg_write1(struct store *s, struct pgq *q, bool zero_not_found)
{
    struct pgtx t = PGTX_INIT(POOL(s), true);

    while (pgtx_next(&t)) {
        int changes = 0;
        if ((t.st = pg_run(&t, q, &changes)) == ST_OK && zero_not_found && changes == 0)
            t.st = ST_NOT_FOUND;
    }
    return t.st;
}

/* --- audit rows (admin changes carry one) --- */

static enum status
audit_insert(struct pgtx *t, const struct store_audit_row *a)
{
    struct pgq q = PGQ("audit_insert", "INSERT INTO audit_events (chain_id, seq, time_ms, app, "
                                       "key_id, op, keyring, outcome, status, hash, line) VALUES "
                                       "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)");
    enum status st;

    pgq_text(&q, a->chain_id);
    pgq_i64(&q, (int64_t)a->seq);
    pgq_i64(&q, a->time_ms);
    pgq_text(&q, a->app);
    pgq_text(&q, a->key_id);
    pgq_text(&q, a->op);
    pgq_text(&q, a->keyring);
    pgq_text(&q, a->outcome);
    pgq_i64(&q, a->status);
    pgq_blob(&q, a->hash, sizeof a->hash);
    pgq_text(&q, a->line);
    if ((st = pg_run(t, &q, NULL)) != ST_OK || a->head_val == NULL)
        return st;
    struct pgq m = PGQ("meta_set", "INSERT INTO meta (key, value) VALUES ($1, $2) "
                                   "ON CONFLICT (key) DO UPDATE SET value = excluded.value");
    pgq_text(&m, a->head_key);
    pgq_text(&m, a->head_val);
    return pg_run(t, &m, NULL);
}

/* Tell the other replicas (LISTEN difyguard) what changed: delivered when the transaction
 * commits, never when it rolls back. */
static enum status
notify(struct pgtx *t, const char *what)
{
    struct pgq q = PGQ("notify", "SELECT pg_notify('difyguard', $1)");
    pgq_text(&q, what);
    return pg_run(t, &q, NULL);
}

/* The end of an admin change's body: its event, in the same transaction. */
static enum status
with_event(struct pgtx *t, enum status st, const struct store_audit_row *ev)
{
    if (st == ST_OK && ev != NULL)
        st = audit_insert(t, ev);
    return st;
}

/* --- meta and service keys --- */

struct text_buf {
    char *val;
    size_t cap;
};

static void
read_text_buf(struct pgrow *r, void *dst)
{
    struct text_buf *t = dst;
    pgc_text(r, t->val, t->cap);
}

static enum status
pg_meta_get(struct store *s, const char *key, char *val, size_t val_cap)
{
    struct pgq q = PGQ("meta_get", "SELECT value FROM meta WHERE key = $1");
    struct text_buf t = {val, val_cap};
    enum status st;

    pgq_text(&q, key);
    if ((st = pg_get(s, &q, read_text_buf, &t)) == ST_INTEGRITY)
        st = ST_INTERNAL; /* the value is larger than the caller's buffer */
    return st;
}

static enum status
pg_meta_set(struct store *s, const char *key, const char *val)
{
    struct pgq q = PGQ("meta_set", "INSERT INTO meta (key, value) VALUES ($1, $2) "
                                   "ON CONFLICT (key) DO UPDATE SET value = excluded.value");
    pgq_text(&q, key);
    pgq_text(&q, val);
    return pg_write1(s, &q, false);
}

static enum status
pg_svckey_get(struct store *s, const char *purpose, struct store_svckey *out)
{
    struct pgq q = PGQ("svckey_get", "SELECT " SVC_COLS " FROM service_keys WHERE purpose = $1");
    pgq_text(&q, purpose);
    return pg_get(s, &q, read_svckey, out);
}

static void
q_svckey_put(struct pgq *q, const struct store_svckey *k)
{
    *q = PGQ("svckey_put", "INSERT INTO service_keys (" SVC_COLS ") VALUES ($1, $2, $3, $4) "
                           "ON CONFLICT (purpose) DO UPDATE SET "
                           "root_key_id = excluded.root_key_id, wrapped = excluded.wrapped, "
                           "created_at = excluded.created_at");
    pgq_text(q, k->purpose);
    pgq_text(q, k->root_key_id);
    pgq_blob(q, k->wrapped, k->wrapped_len);
    pgq_i64(q, k->created_at);
}

static enum status
pg_svckey_add(struct store *s, const struct store_svckey *k)
{
    struct pgq q =
        PGQ("svckey_add", "INSERT INTO service_keys (" SVC_COLS ") VALUES ($1, $2, $3, $4)");
    pgq_text(&q, k->purpose);
    pgq_text(&q, k->root_key_id);
    pgq_blob(&q, k->wrapped, k->wrapped_len);
    pgq_i64(&q, k->created_at);
    return pg_write1(s, &q, false); /* unique_violation: ST_CONFLICT */
}

static enum status
pg_svckey_put(struct store *s, const struct store_svckey *k)
{
    struct pgq q;
    q_svckey_put(&q, k);
    return pg_write1(s, &q, false);
}

static enum status
pg_svckey_put_all(struct store *s, const struct store_svckey *keys, size_t n,
                  const char *root_key_id)
{
    struct pgtx t = PGTX_INIT(POOL(s), true);

    while (pgtx_next(&t)) {
        struct pgq q;
        for (size_t i = 0; i < n && t.st == ST_OK; i++) {
            q_svckey_put(&q, &keys[i]);
            t.st = pg_run(&t, &q, NULL);
        }
        if (t.st == ST_OK && root_key_id != NULL) {
            q = PGQ("meta_set", "INSERT INTO meta (key, value) VALUES ('root_key_id', $1) "
                                "ON CONFLICT (key) DO UPDATE SET value = excluded.value");
            pgq_text(&q, root_key_id);
            t.st = pg_run(&t, &q, NULL);
        }
    }
    return t.st;
}

static enum status
pg_svckey_list(struct store *s, struct store_svckey **out, size_t *n)
{
    struct pgq q =
        PGQ("svckey_list", "SELECT " SVC_COLS " FROM service_keys ORDER BY purpose COLLATE \"C\"");
    return pg_list(s, &q, read_svckey, sizeof **out, (void **)out, n);
}

/* --- keyrings and versions --- */

static void
q_keyring_mutable(struct pgq *q, const struct store_keyring *kr)
{
    pgq_i64(q, kr->rotation_period);
    pgq_bool(q, kr->deletion_allowed != 0);
    pgq_i64(q, kr->latest_version);
    pgq_i64(q, kr->min_decryption_version);
    pgq_i64(q, kr->min_encryption_version);
    pgq_i64(q, kr->updated_at);
    pgq_i64(q, kr->rotated_at);
    pgq_blob(q, kr->mac, sizeof kr->mac);
}

static enum status
version_insert(struct pgtx *t, int64_t keyring_id, const struct store_version *v)
{
    struct pgq q = PGQ("version_insert", "INSERT INTO key_versions (" V_COLS ") VALUES "
                                         "($1, $2, $3, $4, $5, $6, $7)");
    pgq_i64(&q, keyring_id);
    pgq_i64(&q, v->version);
    pgq_text(&q, v->root_key_id);
    pgq_blob(&q, v->wrapped, v->wrapped_len);
    pgq_i64(&q, v->created_at);
    pgq_i64(&q, v->encryptions_reserved);
    pgq_blob(&q, v->mac, sizeof v->mac);
    return pg_run(t, &q, NULL);
}

static enum status
pg_keyring_create(struct store *s, struct store_keyring *kr, struct store_version *v1,
                  const struct store_audit_row *ev)
{
    struct pgtx t = PGTX_INIT(POOL(s), true);
    int64_t id = 0;

    while (pgtx_next(&t)) {
        /* Positions 5..12 are q_keyring_mutable's, as in KR_SET shifted by three. */
        struct pgq q = PGQ("keyring_insert",
                           "INSERT INTO keyrings (name, algorithm, deterministic, created_at, "
                           "rotation_period, deletion_allowed, latest_version, "
                           "min_decryption_version, min_encryption_version, updated_at, "
                           "rotated_at, mac) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, "
                           "$11, $12) RETURNING id");
        pgq_text(&q, kr->name);
        pgq_text(&q, kr->algorithm);
        pgq_bool(&q, kr->deterministic != 0);
        pgq_i64(&q, kr->created_at);
        q_keyring_mutable(&q, kr);
        t.st = pg_one(&t, &q, read_i64, &id);
        if (t.st == ST_OK)
            t.st = version_insert(&t, id, v1);
        t.st = with_event(&t, t.st, ev);
    }
    if (t.st == ST_OK)
        kr->id = v1->keyring_id = id;
    return t.st;
}

static enum status
pg_keyring_get(struct store *s, const char *name, struct store_keyring *out)
{
    struct pgq q = PGQ("keyring_get", "SELECT " KR_COLS " FROM keyrings WHERE name = $1");
    pgq_text(&q, name);
    return pg_get(s, &q, read_keyring, out);
}

static enum status
pg_keyring_list(struct store *s, struct store_keyring **out, size_t *n)
{
    struct pgq q =
        PGQ("keyring_list", "SELECT " KR_COLS " FROM keyrings ORDER BY name COLLATE \"C\"");
    return pg_list(s, &q, read_keyring, sizeof **out, (void **)out, n);
}

static enum status
exists(struct pgtx *t, const char *op, const char *sql, int64_t k1, int64_t k2, int nargs)
{
    struct pgq q = PGQ(op, sql);
    int64_t one = 0;

    pgq_i64(&q, k1);
    if (nargs > 1)
        pgq_i64(&q, k2);
    return pg_one(t, &q, read_i64, &one);
}

/* UPDATE keyrings (update or rotate); 0 rows is ST_NOT_FOUND when the keyring is gone, else
 * ST_CONFLICT (its latest_version moved on). */
static enum status
keyring_set(struct pgtx *t, bool rotate, const struct store_keyring *kr, uint32_t prev_latest)
{
    /* A writer holding a stale row (another node rotated since) must not roll latest_version
     * back: it gets ST_CONFLICT and reloads. */
    struct pgq q = rotate ? PGQ("keyring_rotate", "UPDATE keyrings SET " KR_SET
                                                  " WHERE id = $1 AND latest_version = $10")
                          : PGQ("keyring_update", "UPDATE keyrings SET " KR_SET
                                                  " WHERE id = $1 AND latest_version <= $4");
    int changes = 0;
    enum status st;

    pgq_i64(&q, kr->id);
    q_keyring_mutable(&q, kr);
    if (rotate)
        pgq_i64(&q, prev_latest);
    if ((st = pg_run(t, &q, &changes)) == ST_OK && changes == 0) {
        st = exists(t, "keyring_exists", "SELECT 1 FROM keyrings WHERE id = $1", kr->id, 0, 1);
        st = st == ST_OK ? ST_CONFLICT : st;
    }
    return st;
}

static enum status
pg_keyring_update(struct store *s, const struct store_keyring *kr, const struct store_audit_row *ev)
{
    struct pgtx t = PGTX_INIT(POOL(s), true);

    while (pgtx_next(&t)) {
        t.st = with_event(&t, keyring_set(&t, false, kr, 0), ev);
        t.st = notify(&t, "keyrings");
    }
    return t.st;
}

static enum status
pg_keyring_rotate(struct store *s, const struct store_keyring *kr, const struct store_version *v,
                  uint32_t prev_latest, const struct store_audit_row *ev)
{
    struct pgtx t = PGTX_INIT(POOL(s), true);

    while (pgtx_next(&t)) {
        t.st = keyring_set(&t, true, kr, prev_latest);
        if (t.st == ST_OK)
            t.st = version_insert(&t, kr->id, v);
        t.st = with_event(&t, t.st, ev);
        t.st = notify(&t, "keyrings");
    }
    return t.st;
}

static enum status
pg_keyring_delete(struct store *s, int64_t keyring_id, const struct store_audit_row *ev)
{
    struct pgtx t = PGTX_INIT(POOL(s), true);

    while (pgtx_next(&t)) {
        struct pgq qv = PGQ("keyring_delete", "DELETE FROM key_versions WHERE keyring_id = $1");
        struct pgq qk = PGQ("keyring_delete", "DELETE FROM keyrings WHERE id = $1");
        int changes = 0;
        pgq_i64(&qv, keyring_id);
        pgq_i64(&qk, keyring_id);
        t.st = pg_run(&t, &qv, NULL);
        if ((t.st = pg_run(&t, &qk, &changes)) == ST_OK && changes == 0)
            t.st = ST_NOT_FOUND;
        t.st = with_event(&t, t.st, ev);
        t.st = notify(&t, "keyrings");
    }
    return t.st;
}

/* PostgreSQL keeps deleted rows in the table until VACUUM makes their space reusable, and in
 * its WAL and backups: VACUUM the two tables so the dead rows are no longer visible to any
 * reader of the files sooner than autovacuum would. The copies in WAL archives and backups stay
 * (SECURITY.md: crypto-shredding on PostgreSQL). */
static enum status
pg_shred_flush(struct store *s)
{
    struct pgtx t = PGTX_INIT(POOL(s), false);

    while (pgtx_next(&t)) {
        struct pgq q = PGQ("shred_flush", "VACUUM key_versions, keyrings");
        t.st = pg_run(&t, &q, NULL);
    }
    return t.st;
}

static enum status
pg_version_list(struct store *s, int64_t keyring_id, struct store_version **out, size_t *n)
{
    struct pgq q = PGQ("version_list", "SELECT " V_COLS " FROM key_versions "
                                       "WHERE keyring_id = $1 ORDER BY version");
    pgq_i64(&q, keyring_id);
    return pg_list(s, &q, read_version, sizeof **out, (void **)out, n);
}

static enum status
pg_version_get(struct store *s, int64_t keyring_id, uint32_t version, struct store_version *out)
{
    struct pgq q = PGQ("version_get", "SELECT " V_COLS " FROM key_versions "
                                      "WHERE keyring_id = $1 AND version = $2");
    pgq_i64(&q, keyring_id);
    pgq_i64(&q, version);
    return pg_get(s, &q, read_version, out);
}

/* Never lowers: a smaller `reserved` touches nothing and is still ST_OK. Replicas reserve blocks
 * of encryptions from the same row: the row lock orders them, each gets a range of its own. */
static enum status
pg_version_reserve(struct store *s, int64_t keyring_id, uint32_t version, int64_t reserved,
                   const uint8_t mac[static STORE_MAC_BYTES])
{
    struct pgtx t = PGTX_INIT(POOL(s), true);

    while (pgtx_next(&t)) {
        struct pgq q = PGQ("version_reserve", "UPDATE key_versions SET encryptions_reserved = $3, "
                                              "mac = $4 WHERE keyring_id = $1 AND version = $2 "
                                              "AND encryptions_reserved < $3");
        int changes = 0;
        pgq_i64(&q, keyring_id);
        pgq_i64(&q, version);
        pgq_i64(&q, reserved);
        pgq_blob(&q, mac, STORE_MAC_BYTES);
        if ((t.st = pg_run(&t, &q, &changes)) == ST_OK && changes == 0)
            t.st = exists(&t, "version_exists",
                          "SELECT 1 FROM key_versions WHERE keyring_id = $1 AND version = $2",
                          keyring_id, version, 2);
    }
    return t.st;
}

/* Compare and set: replicas reserving at once each get a range of their own (the loser rereads). */
static enum status
pg_version_reserve_from(struct store *s, int64_t keyring_id, uint32_t version, int64_t expected,
                        int64_t reserved, const uint8_t mac[static STORE_MAC_BYTES])
{
    struct pgtx t = PGTX_INIT(POOL(s), true);

    while (pgtx_next(&t)) {
        struct pgq q = PGQ("version_reserve_from",
                           "UPDATE key_versions SET encryptions_reserved = $4, mac = $5 "
                           "WHERE keyring_id = $1 AND version = $2 AND encryptions_reserved = $3");
        int changes = 0;
        pgq_i64(&q, keyring_id);
        pgq_i64(&q, version);
        pgq_i64(&q, expected);
        pgq_i64(&q, reserved);
        pgq_blob(&q, mac, STORE_MAC_BYTES);
        if ((t.st = pg_run(&t, &q, &changes)) == ST_OK && changes == 0) {
            t.st = exists(&t, "version_exists",
                          "SELECT 1 FROM key_versions WHERE keyring_id = $1 AND version = $2",
                          keyring_id, version, 2);
            t.st = t.st == ST_OK ? ST_CONFLICT : t.st;
        }
    }
    return t.st;
}

static enum status
pg_version_rewrap(struct store *s, const struct store_version *v)
{
    struct pgq q = PGQ("version_rewrap", "UPDATE key_versions SET root_key_id = $3, wrapped = $4, "
                                         "mac = $5 WHERE keyring_id = $1 AND version = $2");
    pgq_i64(&q, v->keyring_id);
    pgq_i64(&q, v->version);
    pgq_text(&q, v->root_key_id);
    pgq_blob(&q, v->wrapped, v->wrapped_len);
    pgq_blob(&q, v->mac, sizeof v->mac);
    return pg_write1(s, &q, true);
}

static enum status
pg_version_list_all(struct store *s, struct store_version **out, size_t *n)
{
    struct pgq q =
        PGQ("version_list_all", "SELECT " V_COLS " FROM key_versions ORDER BY keyring_id, version");
    return pg_list(s, &q, read_version, sizeof **out, (void **)out, n);
}

/* --- apps and API keys --- */

static enum status
pg_app_create(struct store *s, struct store_app *app, store_app_seal_fn seal, void *arg,
              const struct store_audit_row *ev)
{
    struct pgtx t = PGTX_INIT(POOL(s), true);

    while (pgtx_next(&t)) {
        struct pgq q = PGQ("app_insert", "INSERT INTO apps (name, description, created_at) "
                                         "VALUES ($1, $2, $3) RETURNING id");
        pgq_text(&q, app->name);
        pgq_text(&q, app->description);
        pgq_i64(&q, app->created_at);
        t.st = pg_one(&t, &q, read_i64, &app->id);
        if (t.st == ST_OK && seal != NULL) {
            seal(arg, app);
            struct pgq m = PGQ("app_mac", "UPDATE apps SET mac = $2 WHERE id = $1");
            pgq_i64(&m, app->id);
            pgq_blob(&m, app->mac, sizeof app->mac);
            t.st = pg_run(&t, &m, NULL);
        }
        t.st = with_event(&t, t.st, ev);
    }
    return t.st;
}

static enum status
pg_app_seal(struct store *s, const struct store_app *app)
{
    struct pgq q = PGQ("app_seal", "UPDATE apps SET mac = $4 WHERE id = $1 AND name = $2 "
                                   "AND created_at = $3 AND mac IS NULL");
    pgq_i64(&q, app->id);
    pgq_text(&q, app->name);
    pgq_i64(&q, app->created_at);
    pgq_blob(&q, app->mac, sizeof app->mac);
    return pg_write1(s, &q, true);
}

static enum status
pg_app_get(struct store *s, const char *name, struct store_app *out)
{
    struct pgq q = PGQ("app_get", "SELECT " APP_COLS " FROM apps WHERE name = $1");
    pgq_text(&q, name);
    return pg_get(s, &q, read_app, out);
}

static enum status
pg_app_list(struct store *s, struct store_app **out, size_t *n)
{
    struct pgq q = PGQ("app_list", "SELECT " APP_COLS " FROM apps ORDER BY name COLLATE \"C\"");
    return pg_list(s, &q, read_app, sizeof **out, (void **)out, n);
}

static enum status
apikey_insert(struct pgtx *t, const struct store_apikey *k)
{
    struct pgq q = PGQ("apikey_insert", "INSERT INTO api_keys (id, app_id, hash, scopes, keyrings, "
                                        "created_at, expires_at, revoked_at, rate, burst, "
                                        "grace_until, mac) VALUES "
                                        "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)");
    pgq_text(&q, k->id);
    pgq_i64(&q, k->app_id);
    pgq_blob(&q, k->hash, sizeof k->hash);
    pgq_text(&q, k->scopes);
    pgq_text(&q, k->keyrings);
    pgq_i64(&q, k->created_at);
    pgq_i64(&q, k->expires_at);
    pgq_opt_i64(&q, k->revoked_at);
    pgq_i64(&q, k->rate);
    pgq_i64(&q, k->burst);
    pgq_opt_i64(&q, k->grace_until);
    pgq_blob(&q, k->mac, sizeof k->mac);
    return pg_run(t, &q, NULL);
}

static enum status
apikey_update(struct pgtx *t, const struct store_apikey *k)
{
    struct pgq q = PGQ("apikey_update", "UPDATE api_keys SET revoked_at = $2, grace_until = $3, "
                                        "rate = $4, burst = $5, mac = $6 WHERE id = $1");
    int changes = 0;
    enum status st;

    pgq_text(&q, k->id);
    pgq_opt_i64(&q, k->revoked_at);
    pgq_opt_i64(&q, k->grace_until);
    pgq_i64(&q, k->rate);
    pgq_i64(&q, k->burst);
    pgq_blob(&q, k->mac, sizeof k->mac);
    if ((st = pg_run(t, &q, &changes)) == ST_OK && changes == 0)
        st = ST_NOT_FOUND;
    return st;
}

static enum status
pg_apikey_create(struct store *s, const struct store_apikey *k, const struct store_audit_row *ev)
{
    struct pgtx t = PGTX_INIT(POOL(s), true);

    while (pgtx_next(&t))
        t.st = with_event(&t, apikey_insert(&t, k), ev);
    return t.st;
}

static enum status
pg_apikey_get(struct store *s, const char *id, struct store_apikey *out)
{
    struct pgq q = PGQ("apikey_get", KEY_SELECT "WHERE k.id = $1");
    pgq_text(&q, id);
    return pg_get(s, &q, read_apikey, out);
}

static enum status
pg_apikey_list(struct store *s, int64_t app_id, struct store_apikey **out, size_t *n)
{
    /* app_id 0 lists the keys of every app. */
    struct pgq q = PGQ("apikey_list", KEY_SELECT "WHERE $1 = 0 OR k.app_id = $1 "
                                                 "ORDER BY k.created_at, k.id COLLATE \"C\"");
    pgq_i64(&q, app_id);
    return pg_list(s, &q, read_apikey, sizeof **out, (void **)out, n);
}

static enum status
pg_apikey_revoke(struct store *s, const char *id, int64_t revoked_at,
                 const uint8_t mac[static STORE_MAC_BYTES], const struct store_audit_row *ev)
{
    struct pgtx t = PGTX_INIT(POOL(s), true);

    while (pgtx_next(&t)) {
        struct pgq q = PGQ("apikey_revoke", "UPDATE api_keys SET revoked_at = $2, mac = $3 "
                                            "WHERE id = $1");
        int changes = 0;
        pgq_text(&q, id);
        pgq_opt_i64(&q, revoked_at);
        pgq_blob(&q, mac, STORE_MAC_BYTES);
        if ((t.st = pg_run(&t, &q, &changes)) == ST_OK && changes == 0)
            t.st = ST_NOT_FOUND;
        t.st = with_event(&t, t.st, ev);
        t.st = notify(&t, "apikeys");
    }
    return t.st;
}

static enum status
pg_apikey_update(struct store *s, const struct store_apikey *k, const struct store_audit_row *ev)
{
    struct pgtx t = PGTX_INIT(POOL(s), true);

    while (pgtx_next(&t)) {
        t.st = with_event(&t, apikey_update(&t, k), ev);
        t.st = notify(&t, "apikeys");
    }
    return t.st;
}

static enum status
pg_apikey_rotate(struct store *s, const struct store_apikey *fresh, const struct store_apikey *old,
                 const struct store_audit_row *ev)
{
    struct pgtx t = PGTX_INIT(POOL(s), true);

    while (pgtx_next(&t)) {
        t.st = apikey_insert(&t, fresh);
        if (t.st == ST_OK)
            t.st = apikey_update(&t, old);
        t.st = with_event(&t, t.st, ev);
        t.st = notify(&t, "apikeys");
    }
    return t.st;
}

static enum status
pg_apikey_touch(struct store *s, const char *id, int64_t last_used_at)
{
    struct pgq q = PGQ("apikey_touch", "UPDATE api_keys SET last_used_at = $2 WHERE id = $1 "
                                       "AND (last_used_at IS NULL OR last_used_at < $2)");
    pgq_text(&q, id);
    pgq_i64(&q, last_used_at);
    return pg_write1(s, &q, false);
}

static void
read_key_id(struct pgrow *r, void *dst)
{
    pgc_text(r, dst, STORE_KEY_ID_MAX);
}

static enum status
pg_apikey_ids_since(struct store *s, int64_t since, char (**out)[STORE_KEY_ID_MAX], size_t *n)
{
    struct pgq q = PGQ("apikey_ids_since", "SELECT id FROM api_keys WHERE created_at >= $1");
    pgq_i64(&q, since);
    return pg_list(s, &q, read_key_id, STORE_KEY_ID_MAX, (void **)out, n);
}

/* --- audit trail --- */

static enum status
pg_audit_append(struct store *s, const struct store_audit_row *rows, size_t n,
                const struct store_usage *usage, size_t nu)
{
    struct pgtx t = PGTX_INIT(POOL(s), true);

    while (pgtx_next(&t)) {
        for (size_t i = 0; i < n && t.st == ST_OK; i++)
            t.st = audit_insert(&t, &rows[i]);
        for (size_t i = 0; i < nu && t.st == ST_OK; i++) {
            struct pgq q =
                PGQ("usage_add", "INSERT INTO usage_daily (day, app, op, keyring, outcome, count) "
                                 "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT "
                                 "(day, app, op, keyring, outcome) DO UPDATE SET "
                                 "count = usage_daily.count + excluded.count");
            pgq_text(&q, usage[i].day);
            pgq_text(&q, usage[i].app);
            pgq_text(&q, usage[i].op);
            pgq_text(&q, usage[i].keyring);
            pgq_text(&q, usage[i].outcome);
            pgq_i64(&q, usage[i].count);
            t.st = pg_run(&t, &q, NULL);
        }
    }
    return t.st;
}

struct seq_hash {
    uint64_t seq;
    uint8_t *hash;
};

static void
read_seq_hash(struct pgrow *r, void *dst)
{
    struct seq_hash *h = dst;
    h->seq = (uint64_t)pgc_i64(r);
    pgc_blob_exact(r, h->hash, 32);
}

static enum status
pg_audit_head(struct store *s, const char *chain_id, uint64_t *seq, uint8_t hash[static 32])
{
    struct pgq q = PGQ("audit_head", "SELECT seq, hash FROM audit_events WHERE chain_id = $1 "
                                     "ORDER BY seq DESC LIMIT 1");
    struct seq_hash h = {0, hash};
    enum status st;

    pgq_text(&q, chain_id);
    st = pg_get(s, &q, read_seq_hash, &h);
    *seq = st == ST_OK ? h.seq : 0;
    return st;
}

static enum status
pg_audit_seq_before(struct store *s, const char *chain_id, int64_t time_ms, uint64_t *seq,
                    uint8_t hash[static 32])
{
    struct pgq q = PGQ("audit_seq_before", "SELECT seq, hash FROM audit_events WHERE chain_id = $1 "
                                           "AND time_ms < $2 ORDER BY seq DESC LIMIT 1");
    struct seq_hash h = {0, hash};
    enum status st;

    pgq_text(&q, chain_id);
    pgq_i64(&q, time_ms);
    st = pg_get(s, &q, read_seq_hash, &h);
    *seq = st == ST_OK ? h.seq : 0;
    return st == ST_NOT_FOUND ? ST_OK : st;
}

static enum status
pg_audit_checkpoint_add(struct store *s, const char *chain_id, uint64_t seq, const char *kind,
                        int64_t time_ms, const char *line)
{
    struct pgq q = PGQ("audit_checkpoint_add", "INSERT INTO audit_checkpoints (chain_id, seq, "
                                               "kind, time_ms, line) VALUES ($1, $2, $3, $4, $5)");
    pgq_text(&q, chain_id);
    pgq_i64(&q, (int64_t)seq);
    pgq_text(&q, kind);
    pgq_i64(&q, time_ms);
    pgq_text(&q, line);
    return pg_write1(s, &q, false);
}

struct line_seq {
    char *line;
    uint64_t seq;
};

static void
read_line_seq(struct pgrow *r, void *dst)
{
    struct line_seq *l = dst;
    free(l->line); /* a retried attempt */
    l->line = pgc_dup_text(r);
    l->seq = (uint64_t)pgc_i64(r);
}

static enum status
pg_audit_checkpoint_last(struct store *s, const char *chain_id, const char *kind, char **line,
                         uint64_t *seq)
{
    struct pgq q = PGQ("audit_checkpoint_last", "SELECT line, seq FROM audit_checkpoints "
                                                "WHERE chain_id = $1 AND "
                                                "($2::text IS NULL OR kind = $2) "
                                                "ORDER BY seq DESC, time_ms DESC LIMIT 1");
    struct line_seq l = {NULL, 0};
    enum status st;

    pgq_text(&q, chain_id);
    pgq_text(&q, kind);
    if ((st = pg_get(s, &q, read_line_seq, &l)) != ST_OK) {
        free(l.line);
        l.line = NULL;
    }
    *line = l.line;
    *seq = l.seq;
    return st;
}

static void
read_audit_row(struct pgrow *r, void *dst)
{
    struct store_audit_row *a = dst;
    pgc_text(r, a->chain_id, sizeof a->chain_id);
    a->seq = (uint64_t)pgc_i64(r);
    a->time_ms = pgc_i64(r);
    pgc_text(r, a->app, sizeof a->app);
    pgc_text(r, a->key_id, sizeof a->key_id);
    pgc_text(r, a->op, sizeof a->op);
    pgc_text(r, a->keyring, sizeof a->keyring);
    pgc_text(r, a->outcome, sizeof a->outcome);
    a->status = (int)pgc_i64(r);
    pgc_blob_exact(r, a->hash, sizeof a->hash);
    a->line = pgc_dup_text(r);
}

/* Events by (time_ms, chain_id, seq), as the SQLite backend lists them (chain ids compared
 * bytewise: COLLATE "C"); the cursor is the previous page's last row. */
#define PG_AUDIT_LIST_WHERE                                                                        \
    "SELECT chain_id, seq, time_ms, app, key_id, op, keyring, "                                    \
    "outcome, status, hash, line FROM audit_events WHERE "                                         \
    "($1::text IS NULL OR app = $1) AND "                                                          \
    "($2::text IS NULL OR key_id = $2) AND "                                                       \
    "($3::text IS NULL OR op = $3) AND "                                                           \
    "($4::text IS NULL OR outcome = $4) AND "                                                      \
    "($5 = 0 OR time_ms >= $5) AND ($6 = 0 OR time_ms < $6) AND "                                  \
    "($10::text IS NULL OR keyring = $10) AND "

static enum status
pg_audit_list(struct store *s, const struct store_audit_filter *f, struct store_audit_row **out,
              size_t *n)
{
    struct pgq q =
        f->newest_first
            ? PGQ("audit_list_desc", PG_AUDIT_LIST_WHERE
                  "($7::text IS NULL OR (time_ms, chain_id COLLATE \"C\", seq) < ($11, $7, $8)) "
                  "ORDER BY time_ms DESC, chain_id COLLATE \"C\" DESC, seq DESC LIMIT $9")
            : PGQ("audit_list", PG_AUDIT_LIST_WHERE
                  "($7::text IS NULL OR (time_ms, chain_id COLLATE \"C\", seq) > ($11, $7, $8)) "
                  "ORDER BY time_ms, chain_id COLLATE \"C\", seq LIMIT $9");
    struct store_audit_row *rows = NULL;
    size_t count = 0;
    enum status st;

    pgq_text(&q, f->app);
    pgq_text(&q, f->key_id);
    pgq_text(&q, f->op);
    pgq_text(&q, f->outcome);
    pgq_i64(&q, f->from_ms);
    pgq_i64(&q, f->to_ms);
    pgq_text(&q, f->after_chain);
    pgq_i64(&q, (int64_t)f->after_seq);
    pgq_i64(&q, (int64_t)(f->limit ? f->limit : 100));
    pgq_text(&q, f->keyring);
    pgq_i64(&q, f->after_time_ms);
    st = pg_list(s, &q, read_audit_row, sizeof *rows, (void **)&rows, &count);
    *out = rows;
    *n = count;
    return st;
}

static void
read_line(struct pgrow *r, void *dst)
{
    *(char **)dst = pgc_dup_text(r);
}

static void
lines_free(char **lines, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(lines[i]);
    free(lines);
}

static enum status
pg_audit_lines(struct store *s, const char *chain_id, uint64_t after_seq, uint64_t upto_seq,
               store_line_cb cb, void *arg)
{
    /* Checkpoints of one seq in the order they were written: by time, then by the id of the
     * transaction that wrote each (xmin: a periodic checkpoint signed by the old key just before
     * a key_change must stay before it), then by its place in the table. */
    struct pgq q =
        PGQ("audit_lines", "SELECT line FROM ("
                           "SELECT seq, 1 AS r, time_ms, 0::bigint AS n, '(0,0)'::tid AS c, line "
                           "FROM audit_events WHERE chain_id = $1 AND seq > $2 AND seq <= $3 "
                           "UNION ALL "
                           "SELECT seq, CASE kind WHEN 'anchor' THEN 0 ELSE 2 END, time_ms, "
                           "xmin::text::bigint, ctid, line FROM audit_checkpoints WHERE "
                           "chain_id = $1 AND seq <= $3 AND kind <> 'export' "
                           "AND (seq > $2 OR (kind = 'anchor' AND seq >= $2))) AS l "
                           "ORDER BY seq, r, time_ms, n, c");
    struct pgtx t = PGTX_INIT(POOL(s), false);
    char **lines = NULL;
    size_t n = 0;

    pgq_text(&q, chain_id);
    pgq_i64(&q, (int64_t)after_seq);
    pgq_i64(&q, (int64_t)upto_seq);
    while (pgtx_next(&t)) {
        lines_free(lines, n); /* a retried attempt */
        lines = NULL;
        n = 0;
        t.st = pg_all(&t, &q, read_line, sizeof *lines, (void **)&lines, &n);
    }
    for (size_t i = 0; i < n && t.st == ST_OK; i++)
        t.st = cb(arg, lines[i], strlen(lines[i]));
    lines_free(lines, n);
    return t.st;
}

static void
read_chain(struct pgrow *r, void *dst)
{
    pgc_text(r, dst, STORE_CHAIN_ID_MAX);
}

static enum status
pg_audit_chains(struct store *s, char (**out)[STORE_CHAIN_ID_MAX], size_t *n)
{
    struct pgq q = PGQ("audit_chains", "SELECT chain_id FROM (SELECT chain_id FROM audit_events "
                                       "UNION SELECT chain_id FROM audit_checkpoints) AS c "
                                       "ORDER BY chain_id COLLATE \"C\"");
    return pg_list(s, &q, read_chain, STORE_CHAIN_ID_MAX, (void **)out, n);
}

static enum status
pg_audit_prune(struct store *s, const char *chain_id, uint64_t upto)
{
    struct pgtx t = PGTX_INIT(POOL(s), true);

    while (pgtx_next(&t)) {
        struct pgq qe =
            PGQ("audit_prune", "DELETE FROM audit_events WHERE chain_id = $1 AND seq <= $2");
        struct pgq qc = PGQ("audit_prune", "DELETE FROM audit_checkpoints WHERE chain_id = $1 AND "
                                           "(seq < $2 OR (seq = $2 AND kind <> 'anchor'))");
        pgq_text(&qe, chain_id);
        pgq_i64(&qe, (int64_t)upto);
        pgq_text(&qc, chain_id);
        pgq_i64(&qc, (int64_t)upto);
        t.st = pg_run(&t, &qe, NULL);
        t.st = pg_run(&t, &qc, NULL);
    }
    return t.st;
}

static void
read_usage(struct pgrow *r, void *dst)
{
    struct store_usage *u = dst;
    pgc_text(r, u->day, sizeof u->day);
    pgc_text(r, u->app, sizeof u->app);
    pgc_text(r, u->op, sizeof u->op);
    pgc_text(r, u->keyring, sizeof u->keyring);
    pgc_text(r, u->outcome, sizeof u->outcome);
    u->count = pgc_i64(r);
}

static enum status
pg_usage_list(struct store *s, const char *app, const char *from_day, const char *to_day,
              struct store_usage **out, size_t *n)
{
    struct pgq q = PGQ("usage_list", "SELECT day, app, op, keyring, outcome, count FROM "
                                     "usage_daily WHERE app = $1 AND day >= $2 AND day <= $3 "
                                     "ORDER BY day COLLATE \"C\", op COLLATE \"C\", "
                                     "keyring COLLATE \"C\", outcome COLLATE \"C\"");
    pgq_text(&q, app);
    pgq_text(&q, from_day);
    pgq_text(&q, to_day);
    return pg_list(s, &q, read_usage, sizeof **out, (void **)out, n);
}

/* --- certificates --- */

static enum status
pg_cert_source_create(struct store *s, const struct store_cert_source *c,
                      const struct store_audit_row *ev)
{
    struct pgtx t = PGTX_INIT(POOL(s), true);

    while (pgtx_next(&t)) {
        struct pgq q =
            PGQ("cert_source_create", "INSERT INTO cert_sources (" CERT_SRC_COLS ", pem) VALUES "
                                      "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)");
        pgq_text(&q, c->id);
        pgq_text(&q, c->kind);
        pgq_text(&q, c->target);
        pgq_text(&q, c->server_name);
        pgq_bool(&q, c->recursive);
        pgq_bool(&q, c->expect_chain);
        pgq_i64(&q, c->renew_before);
        pgq_i64(&q, c->warning);
        pgq_i64(&q, c->critical);
        pgq_i64(&q, c->created_at);
        pgq_text(&q, c->pem != NULL ? c->pem : "");
        t.st = with_event(&t, pg_run(&t, &q, NULL), ev);
    }
    return t.st;
}

static void
read_source(struct pgrow *r, void *dst)
{
    struct store_cert_source *c = dst;

    pgc_text(r, c->id, sizeof c->id);
    pgc_text(r, c->kind, sizeof c->kind);
    pgc_text(r, c->target, sizeof c->target);
    pgc_text(r, c->server_name, sizeof c->server_name);
    c->recursive = pgc_bool(r) != 0;
    c->expect_chain = pgc_bool(r) != 0;
    c->renew_before = pgc_i64(r);
    c->warning = pgc_i64(r);
    c->critical = pgc_i64(r);
    c->created_at = pgc_i64(r);
    /* The pem column last: malloc'd only for pem sources, and only when within bounds. */
    if (strcmp(c->kind, "pem") == 0) {
        if (pgc_null(r) || (size_t)PQgetlength(r->r, r->row, r->i) > STORE_CERT_PEM_MAX)
            r->bad = true;
        else
            c->pem = pgc_dup_text(r);
    }
}

static void
sources_free(struct store_cert_source *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].pem);
    free(v);
}

static enum status
pg_cert_source_list(struct store *s, struct store_cert_source **out, size_t *n)
{
    struct pgq q = PGQ("cert_source_list",
                       "SELECT " CERT_SRC_COLS ", pem FROM cert_sources ORDER BY id COLLATE \"C\"");
    struct pgtx t = PGTX_INIT(POOL(s), false);
    struct store_cert_source *v = NULL;
    size_t count = 0;

    while (pgtx_next(&t)) {
        sources_free(v, count);
        v = NULL;
        count = 0;
        t.st = pg_all(&t, &q, read_source, sizeof *v, (void **)&v, &count);
    }
    *out = v;
    *n = count;
    return t.st;
}

static enum status
pg_cert_source_delete(struct store *s, const char *id, const struct store_audit_row *ev)
{
    struct pgtx t = PGTX_INIT(POOL(s), true);

    while (pgtx_next(&t)) {
        struct pgq qs = PGQ("cert_source_delete", "DELETE FROM cert_sources WHERE id = $1");
        struct pgq qh = PGQ("cert_source_delete", "DELETE FROM cert_history WHERE source_id = $1");
        int changes = 0;
        pgq_text(&qs, id);
        pgq_text(&qh, id);
        if ((t.st = pg_run(&t, &qs, &changes)) == ST_OK && changes == 0)
            t.st = ST_NOT_FOUND;
        t.st = pg_run(&t, &qh, NULL);
        t.st = with_event(&t, t.st, ev);
    }
    return t.st;
}

static enum status
pg_cert_seen_add(struct store *s, struct store_cert_seen *c, const struct store_audit_row *ev)
{
    struct pgtx t = PGTX_INIT(POOL(s), true);

    while (pgtx_next(&t)) {
        struct pgq q = PGQ("cert_seen_add", "INSERT INTO cert_history (" CERT_SEEN_COLS ") VALUES "
                                            "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) "
                                            "RETURNING id");
        pgq_text(&q, c->source_id);
        pgq_text(&q, c->slot);
        pgq_text(&q, c->fingerprint);
        pgq_text(&q, c->subject);
        pgq_text(&q, c->issuer);
        pgq_text(&q, c->serial);
        pgq_i64(&q, c->not_before);
        pgq_i64(&q, c->not_after);
        pgq_i64(&q, c->seen_at);
        pgq_bool(&q, c->rotation);
        t.st = with_event(&t, pg_one(&t, &q, read_i64, &c->id), ev);
    }
    return t.st;
}

static void
read_seen(struct pgrow *r, void *dst)
{
    struct store_cert_seen *c = dst;

    c->id = pgc_i64(r);
    pgc_text(r, c->source_id, sizeof c->source_id);
    pgc_text(r, c->slot, sizeof c->slot);
    pgc_text(r, c->fingerprint, sizeof c->fingerprint);
    pgc_text(r, c->subject, sizeof c->subject);
    pgc_text(r, c->issuer, sizeof c->issuer);
    pgc_text(r, c->serial, sizeof c->serial);
    c->not_before = pgc_i64(r);
    c->not_after = pgc_i64(r);
    c->seen_at = pgc_i64(r);
    c->rotation = pgc_bool(r) != 0;
}

static enum status
pg_cert_seen_list(struct store *s, const char *source_id, struct store_cert_seen **out, size_t *n)
{
    struct pgq q =
        source_id != NULL
            ? PGQ("cert_seen_list", "SELECT id, " CERT_SEEN_COLS " FROM cert_history "
                                    "WHERE source_id = $1 ORDER BY id")
            : PGQ("cert_seen_list", "SELECT id, " CERT_SEEN_COLS " FROM cert_history ORDER BY id");
    if (source_id != NULL)
        pgq_text(&q, source_id);
    return pg_list(s, &q, read_seen, sizeof **out, (void **)out, n);
}

/* --- open and close --- */

static int
pg_schema_version(struct store *s)
{
    return pgpool_schema_version(POOL(s));
}

static void
pg_close(struct store *s)
{
    pgpool_close(POOL(s));
    free(s);
}

static void
pg_pool_stats(const struct store *s, struct store_pool_stats *out)
{
    pgpool_stats(((const struct pg *)(const void *)s)->p, out);
}

static enum status
pg_ping(struct store *s)
{
    struct pgq q = PGQ("ping", "SELECT 1");
    int64_t one = 0;
    return pg_get(s, &q, read_i64, &one);
}

static void
pg_watch(struct store *s, store_change_fn cb, void *arg)
{
    pgpool_watch(POOL(s), cb, arg);
}

static const struct store_ops pg_ops = {
    .name = "postgres",
    .close = pg_close,
    .pool_stats = pg_pool_stats,
    .ping = pg_ping,
    .watch = pg_watch,
    .schema_version = pg_schema_version,
    .meta_get = pg_meta_get,
    .meta_set = pg_meta_set,
    .svckey_get = pg_svckey_get,
    .svckey_put = pg_svckey_put,
    .svckey_add = pg_svckey_add,
    .svckey_list = pg_svckey_list,
    .svckey_put_all = pg_svckey_put_all,
    .keyring_create = pg_keyring_create,
    .keyring_get = pg_keyring_get,
    .keyring_list = pg_keyring_list,
    .keyring_update = pg_keyring_update,
    .keyring_rotate = pg_keyring_rotate,
    .keyring_delete = pg_keyring_delete,
    .shred_flush = pg_shred_flush,
    .version_list = pg_version_list,
    .version_get = pg_version_get,
    .version_reserve = pg_version_reserve,
    .version_reserve_from = pg_version_reserve_from,
    .version_rewrap = pg_version_rewrap,
    .version_list_all = pg_version_list_all,
    .app_create = pg_app_create,
    .app_seal = pg_app_seal,
    .app_get = pg_app_get,
    .app_list = pg_app_list,
    .apikey_create = pg_apikey_create,
    .apikey_get = pg_apikey_get,
    .apikey_list = pg_apikey_list,
    .apikey_revoke = pg_apikey_revoke,
    .apikey_update = pg_apikey_update,
    .apikey_rotate = pg_apikey_rotate,
    .apikey_touch = pg_apikey_touch,
    .apikey_ids_since = pg_apikey_ids_since,
    .audit_append = pg_audit_append,
    .audit_head = pg_audit_head,
    .audit_checkpoint_add = pg_audit_checkpoint_add,
    .audit_checkpoint_last = pg_audit_checkpoint_last,
    .audit_list = pg_audit_list,
    .audit_lines = pg_audit_lines,
    .audit_chains = pg_audit_chains,
    .audit_prune = pg_audit_prune,
    .audit_seq_before = pg_audit_seq_before,
    .usage_list = pg_usage_list,
    .cert_source_create = pg_cert_source_create,
    .cert_source_list = pg_cert_source_list,
    .cert_source_delete = pg_cert_source_delete,
    .cert_seen_add = pg_cert_seen_add,
    .cert_seen_list = pg_cert_seen_list,
};

enum status
store_postgres_open(struct store **out, const char *conninfo, char *err, size_t err_len)
{
    struct pgpool *p = NULL;
    struct pg *g;
    enum status st;

    *out = NULL;
    if ((st = pgpool_open(&p, conninfo, store_migrations_postgres, store_migrations_postgres_n, err,
                          err_len)) != ST_OK)
        return st;
    g = xcalloc(1, sizeof *g);
    g->base.ops = &pg_ops;
    g->p = p;
    *out = &g->base;
    return ST_OK;
}

/* The parts of a conninfo an operator may see: never the password (nor any other keyword). */
void
store_postgres_display(const char *conninfo, char *out, size_t cap)
{
    static const char *const show[] = {"host", "hostaddr", "port", "dbname", "user", "sslmode"};
    PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
    size_t len = 0;

    len = (size_t)snprintf(out, cap, "postgres:");
    for (size_t k = 0; opts != NULL && k < sizeof show / sizeof show[0]; k++)
        for (PQconninfoOption *o = opts; o->keyword != NULL; o++)
            if (strcmp(o->keyword, show[k]) == 0 && o->val != NULL && o->val[0] != '\0' &&
                len < cap)
                len += (size_t)snprintf(out + len, cap - len, " %s=%s", o->keyword, o->val);
    if (opts == NULL && len < cap)
        snprintf(out + len, cap - len, " (unparsable conninfo)");
    PQconninfoFree(opts);
}

int
store_postgres_library_version(void)
{
    return PQlibVersion();
}
