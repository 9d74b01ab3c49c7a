/* SPDX-License-Identifier: Apache-2.0 */
/* store/sqlite/certs.c -- certificate sources and the certificates seen at them, in SQLite
 * (issue 9). Every value is bound, never spliced into SQL. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmem.h"
#include "store/sqlite/private.h"

enum status
sq_cert_source_create0(struct store *s, const struct store_cert_source *c)
{
    struct sqdb *d = sq_lock(s);
    struct sqdb_bind b;
    enum status st;

    if ((st = sqdb_prep(d, SQ_CERT_SRC_INSERT, &b)) == ST_OK) {
        sqdb_bind_text(&b, c->id);
        sqdb_bind_text(&b, c->kind);
        sqdb_bind_text(&b, c->target);
        sqdb_bind_text(&b, c->server_name);
        sqdb_bind_i64(&b, c->recursive);
        sqdb_bind_i64(&b, c->expect_chain);
        sqdb_bind_i64(&b, c->renew_before);
        sqdb_bind_i64(&b, c->warning);
        sqdb_bind_i64(&b, c->critical);
        sqdb_bind_i64(&b, c->created_at);
        sqdb_bind_text(&b, c->pem != NULL ? c->pem : "");
        st = sqdb_run(&b, NULL);
    }
    sqdb_unlock(d);
    return st;
}

static void
read_source(struct sqdb_row *r, void *dst)
{
    struct store_cert_source *c = dst;

    sqdb_col_text(r, c->id, sizeof c->id);
    sqdb_col_text(r, c->kind, sizeof c->kind);
    sqdb_col_text(r, c->target, sizeof c->target);
    sqdb_col_text(r, c->server_name, sizeof c->server_name);
    c->recursive = sqdb_col_bool(r) != 0;
    c->expect_chain = sqdb_col_bool(r) != 0;
    c->renew_before = sqdb_col_i64(r);
    c->warning = sqdb_col_i64(r);
    c->critical = sqdb_col_i64(r);
    c->created_at = sqdb_col_i64(r);
}

/* The pem column alone, into a malloc'd string: allocated only for a row that reads whole. */
static void
read_pem(struct sqdb_row *r, void *dst)
{
    const unsigned char *p = sqlite3_column_text(r->stmt, r->i);
    size_t n = (size_t)sqlite3_column_bytes(r->stmt, r->i);

    if (sqlite3_column_type(r->stmt, r->i) != SQLITE_TEXT || p == NULL || n > STORE_CERT_PEM_MAX ||
        memchr(p, '\0', n) != NULL) {
        r->bad = true;
        return;
    }
    r->i++;
    *(char **)dst = xstrndup((const char *)p, n);
}

enum status
sq_cert_source_list(struct store *s, struct store_cert_source **out, size_t *n)
{
    struct sqdb *d = sq_lock(s);
    struct sqdb_bind b;
    void *arr = NULL;
    enum status st;

    if ((st = sqdb_prep(d, SQ_CERT_SRC_LIST, &b)) == ST_OK)
        st = sqdb_fetch_all(&b, read_source, sizeof **out, &arr, n);
    *out = arr;
    /* Uploaded PEM texts one by one: a list read never holds half-allocated rows. */
    for (size_t i = 0; st == ST_OK && i < *n; i++) {
        if (strcmp((*out)[i].kind, "pem") != 0)
            continue;
        if ((st = sqdb_prep(d, SQ_CERT_SRC_PEM, &b)) == ST_OK) {
            sqdb_bind_text(&b, (*out)[i].id);
            st = sqdb_fetch_one(&b, read_pem, &(*out)[i].pem);
        }
    }
    sqdb_unlock(d);
    return st;
}

enum status
sq_cert_source_delete0(struct store *s, const char *id)
{
    struct sqdb *d = sq_lock(s);
    struct sqdb_bind b;
    int changes = 0;
    enum status st;

    if ((st = sqdb_begin(d)) != ST_OK)
        goto out;
    if ((st = sqdb_prep(d, SQ_CERT_SRC_DELETE, &b)) == ST_OK) {
        sqdb_bind_text(&b, id);
        if ((st = sqdb_run(&b, &changes)) == ST_OK && changes == 0)
            st = ST_NOT_FOUND;
    }
    if (st == ST_OK && (st = sqdb_prep(d, SQ_CERT_SEEN_DELETE, &b)) == ST_OK) {
        sqdb_bind_text(&b, id);
        st = sqdb_run(&b, NULL);
    }
    st = sqdb_end(d, st);
out:
    sqdb_unlock(d);
    return st;
}

enum status
sq_cert_seen_add0(struct store *s, struct store_cert_seen *c)
{
    struct sqdb *d = sq_lock(s);
    struct sqdb_bind b;
    enum status st;

    if ((st = sqdb_prep(d, SQ_CERT_SEEN_INSERT, &b)) == ST_OK) {
        sqdb_bind_text(&b, c->source_id);
        sqdb_bind_text(&b, c->slot);
        sqdb_bind_text(&b, c->fingerprint);
        sqdb_bind_text(&b, c->subject);
        sqdb_bind_text(&b, c->issuer);
        sqdb_bind_text(&b, c->serial);
        sqdb_bind_i64(&b, c->not_before);
        sqdb_bind_i64(&b, c->not_after);
        sqdb_bind_i64(&b, c->seen_at);
        sqdb_bind_i64(&b, c->rotation);
        if ((st = sqdb_run(&b, NULL)) == ST_OK)
            c->id = sqdb_last_id(d); /* safe: the lock keeps other inserts out */
    }
    sqdb_unlock(d);
    return st;
}

static void
read_seen(struct sqdb_row *r, void *dst)
{
    struct store_cert_seen *c = dst;

    c->id = sqdb_col_i64(r);
    sqdb_col_text(r, c->source_id, sizeof c->source_id);
    sqdb_col_text(r, c->slot, sizeof c->slot);
    sqdb_col_text(r, c->fingerprint, sizeof c->fingerprint);
    sqdb_col_text(r, c->subject, sizeof c->subject);
    sqdb_col_text(r, c->issuer, sizeof c->issuer);
    sqdb_col_text(r, c->serial, sizeof c->serial);
    c->not_before = sqdb_col_i64(r);
    c->not_after = sqdb_col_i64(r);
    c->seen_at = sqdb_col_i64(r);
    c->rotation = sqdb_col_bool(r) != 0;
}

enum status
sq_cert_seen_list(struct store *s, const char *source_id, struct store_cert_seen **out, size_t *n)
{
    struct sqdb *d = sq_lock(s);
    struct sqdb_bind b;
    void *arr = NULL;
    enum status st;

    if ((st = sqdb_prep(d, source_id != NULL ? SQ_CERT_SEEN_LIST : SQ_CERT_SEEN_LIST_ALL, &b)) ==
        ST_OK) {
        if (source_id != NULL)
            sqdb_bind_text(&b, source_id);
        st = sqdb_fetch_all(&b, read_seen, sizeof **out, &arr, n);
    }
    sqdb_unlock(d);
    *out = arr;
    return st;
}
