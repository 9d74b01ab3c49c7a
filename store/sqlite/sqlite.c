/* SPDX-License-Identifier: Apache-2.0 */
/* store/sqlite/sqlite.c -- the SQLite backend of store.h: the SQL of every operation and the
 * mapping between rows and structs (keyrings.c, apps.c and audit.c hold the operations by noun;
 * connection, migrations and helpers are in db.c).
 * Every value is bound, never spliced into SQL. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "common/xmem.h"
#include "store/private/migrations.h"
#include "store/private/ops.h"
#include "store/sqlite/db.h"
#include "store/sqlite/private.h"

#define SQ_SVC_COLS "purpose, root_key_id, wrapped, created_at"
#define SQ_KR_COLS                                                                                 \
    "id, name, algorithm, deterministic, created_at, rotation_period, "                            \
    "deletion_allowed, latest_version, min_decryption_version, min_encryption_version, "           \
    "updated_at, rotated_at, mac"
/* The columns store_keyring_update may change, bound as ?2..?9 after the id in ?1. */
#define SQ_KR_SET                                                                                  \
    "rotation_period = ?2, deletion_allowed = ?3, latest_version = ?4, "                           \
    "min_decryption_version = ?5, min_encryption_version = ?6, updated_at = ?7, rotated_at = ?8, " \
    "mac = ?9"
#define SQ_V_COLS "keyring_id, version, root_key_id, wrapped, created_at, encryptions_reserved, mac"
#define SQ_APP_COLS "id, name, description, created_at, mac"
#define SQ_KEY_SELECT                                                                              \
    "SELECT k.id, k.app_id, a.name, a.created_at, a.mac, k.hash, k.scopes, "                       \
    "k.keyrings, k.created_at, k.expires_at, k.revoked_at, k.rate, k.burst, k.grace_until, "       \
    "k.last_used_at, k.mac "                                                                       \
    "FROM api_keys AS k JOIN apps AS a ON a.id = k.app_id "

#define SQ_CERT_SRC_COLS                                                                           \
    "id, kind, target, server_name, recursive, expect_chain, renew_before, warning, critical, "    \
    "created_at"
#define SQ_CERT_SEEN_COLS                                                                          \
    "source_id, slot, fingerprint, subject, issuer, serial, not_before, not_after, seen_at, "      \
    "rotation"

/* Every statement of this backend; op names it in diagnostics. */
static const struct sqdb_stmt sq_sql[SQ__COUNT] = {
    [SQ_META_GET] = {"meta_get", "SELECT value FROM meta WHERE key = ?1"},
    [SQ_META_SET] = {"meta_set", "INSERT INTO meta (key, value) VALUES (?1, ?2) "
                                 "ON CONFLICT (key) DO UPDATE SET value = excluded.value"},
    [SQ_SVC_GET] = {"svckey_get", "SELECT " SQ_SVC_COLS " FROM service_keys WHERE purpose = ?1"},
    [SQ_SVC_PUT] = {"svckey_put", "INSERT INTO service_keys (" SQ_SVC_COLS ") "
                                  "VALUES (?1, ?2, ?3, ?4) "
                                  "ON CONFLICT (purpose) DO UPDATE SET "
                                  "root_key_id = excluded.root_key_id, wrapped = excluded.wrapped, "
                                  "created_at = excluded.created_at"},
    [SQ_SVC_ADD] = {"svckey_add", "INSERT INTO service_keys (" SQ_SVC_COLS ") "
                                  "VALUES (?1, ?2, ?3, ?4)"},
    [SQ_SVC_LIST] = {"svckey_list", "SELECT " SQ_SVC_COLS " FROM service_keys ORDER BY purpose"},
    [SQ_KR_INSERT] = {"keyring_insert", "INSERT INTO keyrings (" SQ_KR_COLS ") VALUES (NULL, "
                                        "?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"},
    [SQ_KR_GET] = {"keyring_get", "SELECT " SQ_KR_COLS " FROM keyrings WHERE name = ?1"},
    [SQ_KR_LIST] = {"keyring_list", "SELECT " SQ_KR_COLS " FROM keyrings ORDER BY name"},
    /* A writer holding a stale row (another node rotated since) must not roll latest_version
     * back: it gets ST_CONFLICT and reloads. */
    [SQ_KR_UPDATE] = {"keyring_update",
                      "UPDATE keyrings SET " SQ_KR_SET " WHERE id = ?1 AND latest_version <= ?4"},
    [SQ_KR_ROTATE] = {"keyring_rotate",
                      "UPDATE keyrings SET " SQ_KR_SET " WHERE id = ?1 AND latest_version = ?10"},
    [SQ_KR_EXISTS] = {"keyring_exists", "SELECT 1 FROM keyrings WHERE id = ?1"},
    [SQ_KR_DELETE_VERSIONS] = {"keyring_delete", "DELETE FROM key_versions WHERE keyring_id = ?1"},
    [SQ_KR_DELETE] = {"keyring_delete", "DELETE FROM keyrings WHERE id = ?1"},
    [SQ_V_INSERT] = {"version_insert", "INSERT INTO key_versions (" SQ_V_COLS ") VALUES "
                                       "(?1, ?2, ?3, ?4, ?5, ?6, ?7)"},
    [SQ_V_GET] = {"version_get", "SELECT " SQ_V_COLS " FROM key_versions "
                                 "WHERE keyring_id = ?1 AND version = ?2"},
    [SQ_V_LIST] = {"version_list", "SELECT " SQ_V_COLS " FROM key_versions "
                                   "WHERE keyring_id = ?1 ORDER BY version"},
    [SQ_V_LIST_ALL] = {"version_list_all", "SELECT " SQ_V_COLS " FROM key_versions "
                                           "ORDER BY keyring_id, version"},
    [SQ_V_RESERVE] = {"version_reserve", "UPDATE key_versions SET encryptions_reserved = ?3, "
                                         "mac = ?4 WHERE keyring_id = ?1 AND version = ?2 "
                                         "AND encryptions_reserved < ?3"},
    [SQ_V_RESERVE_FROM] = {"version_reserve_from",
                           "UPDATE key_versions SET encryptions_reserved = ?4, mac = ?5 "
                           "WHERE keyring_id = ?1 AND version = ?2 AND encryptions_reserved = ?3"},
    [SQ_V_EXISTS] = {"version_exists", "SELECT 1 FROM key_versions "
                                       "WHERE keyring_id = ?1 AND version = ?2"},
    [SQ_V_REWRAP] = {"version_rewrap", "UPDATE key_versions SET root_key_id = ?3, wrapped = ?4, "
                                       "mac = ?5 WHERE keyring_id = ?1 AND version = ?2"},
    [SQ_APP_INSERT] = {"app_insert", "INSERT INTO apps (" SQ_APP_COLS ") "
                                     "VALUES (NULL, ?1, ?2, ?3, NULL)"},
    [SQ_APP_MAC] = {"app_mac", "UPDATE apps SET mac = ?2 WHERE id = ?1"},
    [SQ_APP_SEAL] = {"app_seal", "UPDATE apps SET mac = ?4 WHERE id = ?1 AND name = ?2 "
                                 "AND created_at = ?3 AND mac IS NULL"},
    [SQ_APP_GET] = {"app_get", "SELECT " SQ_APP_COLS " FROM apps WHERE name = ?1"},
    [SQ_APP_LIST] = {"app_list", "SELECT " SQ_APP_COLS " FROM apps ORDER BY name"},
    [SQ_KEY_INSERT] = {"apikey_insert", "INSERT INTO api_keys (id, app_id, hash, scopes, keyrings, "
                                        "created_at, expires_at, revoked_at, rate, burst, "
                                        "grace_until, mac) VALUES "
                                        "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"},
    [SQ_KEY_GET] = {"apikey_get", SQ_KEY_SELECT "WHERE k.id = ?1"},
    /* app_id 0 lists the keys of every app. */
    [SQ_KEY_LIST] = {"apikey_list", SQ_KEY_SELECT "WHERE ?1 = 0 OR k.app_id = ?1 "
                                                  "ORDER BY k.created_at, k.id"},
    [SQ_KEY_REVOKE] = {"apikey_revoke", "UPDATE api_keys SET revoked_at = ?2, mac = ?3 "
                                        "WHERE id = ?1"},
    [SQ_KEY_UPDATE] = {"apikey_update", "UPDATE api_keys SET revoked_at = ?2, grace_until = ?3, "
                                        "rate = ?4, burst = ?5, mac = ?6 WHERE id = ?1"},
    [SQ_KEY_IDS_SINCE] = {"apikey_ids_since", "SELECT id FROM api_keys WHERE created_at >= ?1"},
    [SQ_KEY_TOUCH] = {"apikey_touch", "UPDATE api_keys SET last_used_at = ?2 WHERE id = ?1 "
                                      "AND (last_used_at IS NULL OR last_used_at < ?2)"},
    [SQ_AU_INSERT] = {"audit_insert", "INSERT INTO audit_events (chain_id, seq, time_ms, app, "
                                      "key_id, op, keyring, outcome, status, hash, line) VALUES "
                                      "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"},
    [SQ_AU_USAGE] = {"usage_add", "INSERT INTO usage_daily (day, app, op, keyring, outcome, count) "
                                  "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT "
                                  "(day, app, op, keyring, outcome) DO UPDATE SET "
                                  "count = count + excluded.count"},
    [SQ_AU_HEAD] = {"audit_head", "SELECT seq, hash FROM audit_events WHERE chain_id = ?1 "
                                  "ORDER BY seq DESC LIMIT 1"},
    [SQ_AU_CP_ADD] = {"audit_checkpoint_add", "INSERT INTO audit_checkpoints (chain_id, seq, kind, "
                                              "time_ms, line) VALUES (?1, ?2, ?3, ?4, ?5)"},
    [SQ_AU_CP_LAST] = {"audit_checkpoint_last", "SELECT line, seq FROM audit_checkpoints "
                                                "WHERE chain_id = ?1 AND "
                                                "(?2 IS NULL OR kind = ?2) "
                                                "ORDER BY seq DESC, time_ms DESC LIMIT 1"},
    [SQ_AU_LIST] = {"audit_list", "SELECT chain_id, seq, time_ms, app, key_id, op, keyring, "
                                  "outcome, status, hash, line FROM audit_events WHERE "
                                  "(?1 IS NULL OR app = ?1) AND (?2 IS NULL OR key_id = ?2) AND "
                                  "(?3 IS NULL OR op = ?3) AND (?4 IS NULL OR outcome = ?4) AND "
                                  "(?5 = 0 OR time_ms >= ?5) AND (?6 = 0 OR time_ms < ?6) AND "
                                  "(?10 IS NULL OR keyring = ?10) AND (?7 IS NULL OR "
                                  "(time_ms, chain_id, seq) > (?11, ?7, ?8)) "
                                  "ORDER BY time_ms, chain_id, seq LIMIT ?9"},
    [SQ_AU_LIST_DESC] = {"audit_list_desc",
                         "SELECT chain_id, seq, time_ms, app, key_id, op, keyring, "
                         "outcome, status, hash, line FROM audit_events WHERE "
                         "(?1 IS NULL OR app = ?1) AND (?2 IS NULL OR key_id = ?2) AND "
                         "(?3 IS NULL OR op = ?3) AND (?4 IS NULL OR outcome = ?4) AND "
                         "(?5 = 0 OR time_ms >= ?5) AND (?6 = 0 OR time_ms < ?6) AND "
                         "(?10 IS NULL OR keyring = ?10) AND (?7 IS NULL OR "
                         "(time_ms, chain_id, seq) < (?11, ?7, ?8)) "
                         "ORDER BY time_ms DESC, chain_id DESC, seq DESC LIMIT ?9"},
    /* Checkpoints of one seq in the order they were written: by time, then by rowid when
     * two share a millisecond (a periodic checkpoint signed by the old key just before a
     * key_change must stay before it, or the old key's signature reads as a retired key's). */
    [SQ_AU_LINES] = {"audit_lines", "SELECT line FROM ("
                                    "SELECT seq, 1 AS r, time_ms, 0 AS n, line FROM "
                                    "audit_events WHERE chain_id = ?1 AND seq > ?2 AND "
                                    "seq <= ?3 UNION ALL "
                                    "SELECT seq, CASE kind WHEN 'anchor' THEN 0 ELSE 2 END, "
                                    "time_ms, rowid, line FROM audit_checkpoints WHERE "
                                    "chain_id = ?1 AND seq <= ?3 AND kind <> 'export' "
                                    "AND (seq > ?2 OR (kind = 'anchor' AND seq >= ?2))) "
                                    "ORDER BY seq, r, time_ms, n"},
    [SQ_AU_CHAINS] = {"audit_chains", "SELECT chain_id FROM audit_events UNION "
                                      "SELECT chain_id FROM audit_checkpoints ORDER BY 1"},
    [SQ_AU_PRUNE_EV] = {"audit_prune",
                        "DELETE FROM audit_events WHERE chain_id = ?1 AND seq <= ?2"},
    [SQ_AU_PRUNE_CP] = {"audit_prune", "DELETE FROM audit_checkpoints WHERE chain_id = ?1 AND "
                                       "(seq < ?2 OR (seq = ?2 AND kind <> 'anchor'))"},
    [SQ_AU_BEFORE] = {"audit_seq_before", "SELECT seq, hash FROM audit_events WHERE chain_id = ?1 "
                                          "AND time_ms < ?2 ORDER BY seq DESC LIMIT 1"},
    [SQ_USAGE_LIST] = {"usage_list",
                       "SELECT day, app, op, keyring, outcome, count FROM usage_daily "
                       "WHERE app = ?1 AND day >= ?2 AND day <= ?3 "
                       "ORDER BY day, op, keyring, outcome"},
    /* certificates (issue 9): store/sqlite/certs.c */
    [SQ_CERT_SRC_INSERT] = {"cert_source_create",
                            "INSERT INTO cert_sources (" SQ_CERT_SRC_COLS ", pem) VALUES "
                            "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"},
    [SQ_CERT_SRC_LIST] = {"cert_source_list",
                          "SELECT " SQ_CERT_SRC_COLS " FROM cert_sources ORDER BY id"},
    [SQ_CERT_SRC_PEM] = {"cert_source_list", "SELECT pem FROM cert_sources WHERE id = ?1"},
    [SQ_CERT_SRC_DELETE] = {"cert_source_delete", "DELETE FROM cert_sources WHERE id = ?1"},
    [SQ_CERT_SEEN_DELETE] = {"cert_source_delete", "DELETE FROM cert_history WHERE source_id = ?1"},
    [SQ_CERT_SEEN_INSERT] = {"cert_seen_add", "INSERT INTO cert_history (id, " SQ_CERT_SEEN_COLS
                                              ") VALUES (NULL, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, "
                                              "?9, ?10)"},
    [SQ_CERT_SEEN_LIST] = {"cert_seen_list", "SELECT id, " SQ_CERT_SEEN_COLS " FROM cert_history "
                                             "WHERE source_id = ?1 ORDER BY id"},
    [SQ_CERT_SEEN_LIST_ALL] = {"cert_seen_list",
                               "SELECT id, " SQ_CERT_SEEN_COLS " FROM cert_history ORDER BY id"},
};
/* --- rows --- */

/* Rows that carry a MAC are handed over even when malformed, with the MAC zeroed: the caller's
 * MAC check then refuses that one row instead of one bad row failing a whole list. */
static void
sq_col_mac(struct sqdb_row *r, uint8_t mac[static STORE_MAC_BYTES], const char *table)
{
    sqdb_col_blob_exact(r, mac, STORE_MAC_BYTES);
    if (r->bad) {
        sqdb_log("store_row_malformed", table, 0, "value of wrong type or size; MAC zeroed");
        memset(mac, 0, STORE_MAC_BYTES);
        r->bad = false;
    }
}

static void
read_svckey(struct sqdb_row *r, void *dst)
{
    struct store_svckey *k = dst;

    sqdb_col_text(r, k->purpose, sizeof k->purpose);
    sqdb_col_text(r, k->root_key_id, sizeof k->root_key_id);
    k->wrapped_len = sqdb_col_blob(r, k->wrapped, sizeof k->wrapped);
    k->created_at = sqdb_col_i64(r);
}

void
sq_read_keyring(struct sqdb_row *r, void *dst)
{
    struct store_keyring *kr = dst;

    kr->id = sqdb_col_i64(r);
    sqdb_col_text(r, kr->name, sizeof kr->name);
    sqdb_col_text(r, kr->algorithm, sizeof kr->algorithm);
    kr->deterministic = sqdb_col_bool(r);
    kr->created_at = sqdb_col_i64(r);
    kr->rotation_period = sqdb_col_i64(r);
    kr->deletion_allowed = sqdb_col_bool(r);
    kr->latest_version = sqdb_col_u32(r);
    kr->min_decryption_version = sqdb_col_u32(r);
    kr->min_encryption_version = sqdb_col_u32(r);
    kr->updated_at = sqdb_col_i64(r);
    kr->rotated_at = sqdb_col_i64(r);
    sq_col_mac(r, kr->mac, "keyrings");
}

void
sq_read_version(struct sqdb_row *r, void *dst)
{
    struct store_version *v = dst;

    v->keyring_id = sqdb_col_i64(r);
    v->version = sqdb_col_u32(r);
    sqdb_col_text(r, v->root_key_id, sizeof v->root_key_id);
    v->wrapped_len = sqdb_col_blob(r, v->wrapped, sizeof v->wrapped);
    v->created_at = sqdb_col_i64(r);
    v->encryptions_reserved = sqdb_col_i64(r);
    sq_col_mac(r, v->mac, "key_versions");
}

/* An app's MAC column: NULL for rows from before migration 0003 (has_mac false). */
static void
sq_col_opt_mac(struct sqdb_row *r, uint8_t mac[static STORE_MAC_BYTES], bool *has,
               const char *table)
{
    *has = sqlite3_column_type(r->stmt, r->i) != SQLITE_NULL;
    if (*has)
        sq_col_mac(r, mac, table);
    else
        r->i++;
}

void
sq_read_app(struct sqdb_row *r, void *dst)
{
    struct store_app *a = dst;

    a->id = sqdb_col_i64(r);
    sqdb_col_text(r, a->name, sizeof a->name);
    sqdb_col_text(r, a->description, sizeof a->description);
    a->created_at = sqdb_col_i64(r);
    sq_col_opt_mac(r, a->mac, &a->has_mac, "apps");
}

void
sq_read_apikey(struct sqdb_row *r, void *dst)
{
    struct store_apikey *k = dst;

    sqdb_col_text(r, k->id, sizeof k->id);
    k->app_id = sqdb_col_i64(r);
    sqdb_col_text(r, k->app_name, sizeof k->app_name);
    k->app_created_at = sqdb_col_i64(r);
    sq_col_opt_mac(r, k->app_mac, &k->app_has_mac, "apps");
    sqdb_col_blob_exact(r, k->hash, sizeof k->hash);
    sqdb_col_text(r, k->scopes, sizeof k->scopes);
    sqdb_col_text(r, k->keyrings, sizeof k->keyrings);
    k->created_at = sqdb_col_i64(r);
    k->expires_at = sqdb_col_i64(r);
    k->revoked_at = sqdb_col_opt_i64(r);
    k->rate = sqdb_col_i64(r);
    k->burst = sqdb_col_i64(r);
    k->grace_until = sqdb_col_opt_i64(r);
    k->last_used_at = sqdb_col_opt_i64(r);
    sq_col_mac(r, k->mac, "api_keys");
}

/* --- meta and service keys --- */

/* meta_get reads into the caller's buffer. */
struct sq_text {
    char *val;
    size_t cap;
};

static void
read_text(struct sqdb_row *r, void *dst)
{
    struct sq_text *t = dst;

    sqdb_col_text(r, t->val, t->cap);
}

static enum status
sq_meta_get(struct store *s, const char *key, char *val, size_t val_cap)
{
    struct sqdb *d = sq_lock(s);
    struct sq_text t = {val, val_cap};
    struct sqdb_bind b;
    enum status st;

    if ((st = sqdb_prep(d, SQ_META_GET, &b)) == ST_OK) {
        sqdb_bind_text(&b, key);
        if ((st = sqdb_fetch_one(&b, read_text, &t)) == ST_INTEGRITY)
            st = ST_INTERNAL; /* the value is larger than the caller's buffer */
    }
    sqdb_unlock(d);
    return st;
}

static enum status
sq_meta_set(struct store *s, const char *key, const char *val)
{
    struct sqdb *d = sq_lock(s);
    struct sqdb_bind b;
    enum status st;

    if ((st = sqdb_prep(d, SQ_META_SET, &b)) == ST_OK) {
        sqdb_bind_text(&b, key);
        sqdb_bind_text(&b, val);
        st = sqdb_run(&b, NULL);
    }
    sqdb_unlock(d);
    return st;
}

static enum status
sq_svckey_get(struct store *s, const char *purpose, struct store_svckey *out)
{
    struct sqdb *d = sq_lock(s);
    struct sqdb_bind b;
    enum status st;

    if ((st = sqdb_prep(d, SQ_SVC_GET, &b)) == ST_OK) {
        sqdb_bind_text(&b, purpose);
        st = sqdb_fetch_one(&b, read_svckey, out);
    }
    sqdb_unlock(d);
    return st;
}

/* One upsert; the caller holds the lock. */
static enum status
sq_svckey_put1(struct sqdb *d, const struct store_svckey *k)
{
    struct sqdb_bind b;
    enum status st;

    if ((st = sqdb_prep(d, SQ_SVC_PUT, &b)) == ST_OK) {
        sqdb_bind_text(&b, k->purpose);
        sqdb_bind_text(&b, k->root_key_id);
        sqdb_bind_blob(&b, k->wrapped, k->wrapped_len);
        sqdb_bind_i64(&b, k->created_at);
        st = sqdb_run(&b, NULL);
    }
    return st;
}

static enum status
sq_svckey_add(struct store *s, const struct store_svckey *k)
{
    struct sqdb *d = sq_lock(s);
    struct sqdb_bind b;
    enum status st;

    if ((st = sqdb_prep(d, SQ_SVC_ADD, &b)) == ST_OK) {
        sqdb_bind_text(&b, k->purpose);
        sqdb_bind_text(&b, k->root_key_id);
        sqdb_bind_blob(&b, k->wrapped, k->wrapped_len);
        sqdb_bind_i64(&b, k->created_at);
        st = sqdb_run(&b, NULL); /* a second key of the purpose: ST_CONFLICT */
    }
    sqdb_unlock(d);
    return st;
}

static enum status
sq_svckey_put(struct store *s, const struct store_svckey *k)
{
    struct sqdb *d = sq_lock(s);
    enum status st = sq_svckey_put1(d, k);

    sqdb_unlock(d);
    return st;
}

static enum status
sq_svckey_put_all(struct store *s, const struct store_svckey *keys, size_t n,
                  const char *root_key_id)
{
    struct sqdb *d = sq_lock(s);
    struct sqdb_bind b;
    enum status st;

    if ((st = sqdb_begin(d)) == ST_OK) {
        for (size_t i = 0; i < n && st == ST_OK; i++)
            st = sq_svckey_put1(d, &keys[i]);
        if (st == ST_OK && root_key_id != NULL && (st = sqdb_prep(d, SQ_META_SET, &b)) == ST_OK) {
            sqdb_bind_text(&b, "root_key_id");
            sqdb_bind_text(&b, root_key_id);
            st = sqdb_run(&b, NULL);
        }
        st = sqdb_end(d, st);
    }
    sqdb_unlock(d);
    return st;
}

/* Run a parameterless list statement. */
enum status
sq_list(struct store *s, enum sq_id id, sqdb_reader read, size_t size, void **out, size_t *n)
{
    struct sqdb *d = sq_lock(s);
    struct sqdb_bind b;
    enum status st;

    if ((st = sqdb_prep(d, id, &b)) == ST_OK)
        st = sqdb_fetch_all(&b, read, size, out, n);
    sqdb_unlock(d);
    return st;
}

static enum status
sq_svckey_list(struct store *s, struct store_svckey **out, size_t *n)
{
    void *arr = NULL;
    enum status st = sq_list(s, SQ_SVC_LIST, read_svckey, sizeof **out, &arr, n);

    *out = arr;
    return st;
}

/* --- admin changes with their audit event in the same transaction --- */

/* Lock and, when there is an event, open the outer transaction the change nests in. */
static struct sqdb *
ev_begin(struct store *s, const struct store_audit_row *ev, enum status *st)
{
    struct sqdb *d = sq_lock(s);
    *st = ev != NULL ? sqdb_begin(d) : ST_OK;
    return d;
}

static enum status
ev_end(struct sqdb *d, const struct store_audit_row *ev, enum status st)
{
    if (ev != NULL) {
        if (st == ST_OK)
            st = sq_audit_insert(d, ev);
        st = sqdb_end(d, st);
    }
    sqdb_unlock(d);
    return st;
}

static enum status
sq_keyring_create(struct store *s, struct store_keyring *kr, struct store_version *v1,
                  const struct store_audit_row *ev)
{
    enum status st;
    struct sqdb *d = ev_begin(s, ev, &st);
    return ev_end(d, ev, st == ST_OK ? sq_keyring_create0(s, kr, v1) : st);
}

static enum status
sq_keyring_update(struct store *s, const struct store_keyring *kr, const struct store_audit_row *ev)
{
    enum status st;
    struct sqdb *d = ev_begin(s, ev, &st);
    return ev_end(d, ev, st == ST_OK ? sq_keyring_update0(s, kr) : st);
}

static enum status
sq_keyring_rotate(struct store *s, const struct store_keyring *kr, const struct store_version *v,
                  uint32_t prev_latest, const struct store_audit_row *ev)
{
    enum status st;
    struct sqdb *d = ev_begin(s, ev, &st);
    return ev_end(d, ev, st == ST_OK ? sq_keyring_rotate0(s, kr, v, prev_latest) : st);
}

static enum status
sq_keyring_delete(struct store *s, int64_t keyring_id, const struct store_audit_row *ev)
{
    enum status st;
    struct sqdb *d = ev_begin(s, ev, &st);
    return ev_end(d, ev, st == ST_OK ? sq_keyring_delete0(s, keyring_id) : st);
}

static enum status
sq_app_create(struct store *s, struct store_app *app, store_app_seal_fn seal, void *arg,
              const struct store_audit_row *ev)
{
    enum status st;
    struct sqdb *d = ev_begin(s, ev, &st);
    return ev_end(d, ev, st == ST_OK ? sq_app_create0(s, app, seal, arg) : st);
}

static enum status
sq_apikey_create(struct store *s, const struct store_apikey *k, const struct store_audit_row *ev)
{
    enum status st;
    struct sqdb *d = ev_begin(s, ev, &st);
    return ev_end(d, ev, st == ST_OK ? sq_apikey_create0(s, k) : st);
}

static enum status
sq_apikey_revoke(struct store *s, const char *id, int64_t revoked_at,
                 const uint8_t mac[static STORE_MAC_BYTES], const struct store_audit_row *ev)
{
    enum status st;
    struct sqdb *d = ev_begin(s, ev, &st);
    return ev_end(d, ev, st == ST_OK ? sq_apikey_revoke0(s, id, revoked_at, mac) : st);
}

static enum status
sq_apikey_update(struct store *s, const struct store_apikey *k, const struct store_audit_row *ev)
{
    enum status st;
    struct sqdb *d = ev_begin(s, ev, &st);
    return ev_end(d, ev, st == ST_OK ? sq_apikey_update0(s, k) : st);
}

static enum status
sq_cert_source_create(struct store *s, const struct store_cert_source *c,
                      const struct store_audit_row *ev)
{
    enum status st;
    struct sqdb *d = ev_begin(s, ev, &st);
    return ev_end(d, ev, st == ST_OK ? sq_cert_source_create0(s, c) : st);
}

static enum status
sq_cert_source_delete(struct store *s, const char *id, const struct store_audit_row *ev)
{
    enum status st;
    struct sqdb *d = ev_begin(s, ev, &st);
    return ev_end(d, ev, st == ST_OK ? sq_cert_source_delete0(s, id) : st);
}

static enum status
sq_cert_seen_add(struct store *s, struct store_cert_seen *c, const struct store_audit_row *ev)
{
    enum status st;
    struct sqdb *d = ev_begin(s, ev, &st);
    return ev_end(d, ev, st == ST_OK ? sq_cert_seen_add0(s, c) : st);
}

/* A few TRUNCATE checkpoints with a short backoff, the lock released between them so other
 * operations go on while readers of older snapshots (another process) finish: under a second. */
#define SHRED_ATTEMPTS 5
#define SHRED_WAIT_MS 100
#define SHRED_BACKOFF_MS 25

static enum status
sq_shred_flush(struct store *s)
{
    struct sqdb *d = ((struct sq *)s)->d;
    enum status st = ST_UNAVAILABLE;

    for (int i = 0; i < SHRED_ATTEMPTS && st != ST_OK; i++) {
        if (i > 0) {
            struct timespec ts = {0, (long)(SHRED_BACKOFF_MS << (i - 1)) * 1000000L};
            nanosleep(&ts, NULL);
        }
        sqdb_lock(d);
        st = sqdb_checkpoint(d, SHRED_WAIT_MS, i + 1 == SHRED_ATTEMPTS);
        sqdb_unlock(d);
    }
    return st;
}

static enum status
sq_apikey_rotate(struct store *s, const struct store_apikey *fresh, const struct store_apikey *old,
                 const struct store_audit_row *ev)
{
    enum status st;
    struct sqdb *d = ev_begin(s, ev, &st);

    if (st == ST_OK && (st = sqdb_begin(d)) == ST_OK) {
        if ((st = sq_apikey_create0(s, fresh)) == ST_OK)
            st = sq_apikey_update0(s, old);
        st = sqdb_end(d, st);
    }
    return ev_end(d, ev, st);
}

/* --- open and close --- */

static int
sq_schema_version(struct store *s)
{
    return sqdb_schema_version(((struct sq *)s)->d);
}

static void
sq_close(struct store *s)
{
    sqdb_close(((struct sq *)s)->d);
    free(s);
}

static void
sq_pool_stats(const struct store *s, struct store_pool_stats *out)
{
    sqdb_pool_stats(((const struct sq *)(const void *)s)->d, out);
}

static const struct store_ops sq_ops = {
    .name = "sqlite",
    .close = sq_close,
    .pool_stats = sq_pool_stats,
    .schema_version = sq_schema_version,
    .meta_get = sq_meta_get,
    .meta_set = sq_meta_set,
    .svckey_get = sq_svckey_get,
    .svckey_put = sq_svckey_put,
    .svckey_add = sq_svckey_add,
    .svckey_list = sq_svckey_list,
    .svckey_put_all = sq_svckey_put_all,
    .keyring_create = sq_keyring_create,
    .keyring_get = sq_keyring_get,
    .keyring_list = sq_keyring_list,
    .keyring_update = sq_keyring_update,
    .keyring_rotate = sq_keyring_rotate,
    .keyring_delete = sq_keyring_delete,
    .shred_flush = sq_shred_flush,
    .version_list = sq_version_list,
    .version_get = sq_version_get,
    .version_reserve = sq_version_reserve,
    .version_reserve_from = sq_version_reserve_from,
    .version_rewrap = sq_version_rewrap,
    .version_list_all = sq_version_list_all,
    .app_create = sq_app_create,
    .app_seal = sq_app_seal,
    .app_get = sq_app_get,
    .app_list = sq_app_list,
    .apikey_create = sq_apikey_create,
    .apikey_get = sq_apikey_get,
    .apikey_list = sq_apikey_list,
    .apikey_revoke = sq_apikey_revoke,
    .apikey_update = sq_apikey_update,
    .apikey_rotate = sq_apikey_rotate,
    .apikey_touch = sq_apikey_touch,
    .apikey_ids_since = sq_apikey_ids_since,
    .audit_append = sq_audit_append,
    .audit_head = sq_audit_head,
    .audit_checkpoint_add = sq_audit_checkpoint_add,
    .audit_checkpoint_last = sq_audit_checkpoint_last,
    .audit_list = sq_audit_list,
    .audit_lines = sq_audit_lines,
    .audit_chains = sq_audit_chains,
    .audit_prune = sq_audit_prune,
    .audit_seq_before = sq_audit_seq_before,
    .usage_list = sq_usage_list,
    .cert_source_create = sq_cert_source_create,
    .cert_source_list = sq_cert_source_list,
    .cert_source_delete = sq_cert_source_delete,
    .cert_seen_add = sq_cert_seen_add,
    .cert_seen_list = sq_cert_seen_list,
};

enum status
store_sqlite_open(struct store **out, const char *path, char *err, size_t err_len)
{
    struct sqdb *d = NULL;
    struct sq *q;
    enum status st;

    *out = NULL;
    if ((st = sqdb_open(&d, path, sq_sql, SQ__COUNT, store_migrations_sqlite,
                        store_migrations_sqlite_n, err, err_len)) != ST_OK)
        return st;
    q = xcalloc(1, sizeof *q);
    q->base.ops = &sq_ops;
    q->d = d;
    *out = &q->base;
    return ST_OK;
}

const char *
store_sqlite_library_version(void)
{
    return sqlite3_libversion();
}
