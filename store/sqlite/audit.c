/* SPDX-License-Identifier: Apache-2.0 */
/* store/sqlite/audit.c -- the audit trail (events, checkpoints, chains, pruning) and daily usage
 * roll-ups in SQLite. Every value is bound, never spliced into SQL. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmem.h"
#include "store/sqlite/private.h"

/* --- audit trail --- */

/* A malloc'd copy of the next text column ("" for NULL). */
static char *
col_dup_text(struct sqdb_row *r)
{
    const unsigned char *p = sqlite3_column_text(r->stmt, r->i);
    size_t n = (size_t)sqlite3_column_bytes(r->stmt, r->i);
    r->i++;
    return xstrndup(p != NULL ? (const char *)p : "", p != NULL ? n : 0);
}

enum status
sq_audit_insert(struct sqdb *d, const struct store_audit_row *a)
{
    struct sqdb_bind b;
    enum status st;

    if ((st = sqdb_prep(d, SQ_AU_INSERT, &b)) != ST_OK)
        return st;
    sqdb_bind_text(&b, a->chain_id);
    sqdb_bind_i64(&b, (int64_t)a->seq);
    sqdb_bind_i64(&b, a->time_ms);
    sqdb_bind_text(&b, a->app);
    sqdb_bind_text(&b, a->key_id);
    sqdb_bind_text(&b, a->op);
    sqdb_bind_text(&b, a->keyring);
    sqdb_bind_text(&b, a->outcome);
    sqdb_bind_i64(&b, a->status);
    sqdb_bind_blob(&b, a->hash, sizeof a->hash);
    sqdb_bind_text(&b, a->line);
    if ((st = sqdb_run(&b, NULL)) != ST_OK || a->head_val == NULL)
        return st;
    if ((st = sqdb_prep(d, SQ_META_SET, &b)) != ST_OK)
        return st;
    sqdb_bind_text(&b, a->head_key);
    sqdb_bind_text(&b, a->head_val);
    return sqdb_run(&b, NULL);
}

static enum status
sq_usage_add(struct sqdb *d, const struct store_usage *u)
{
    struct sqdb_bind b;
    enum status st;

    if ((st = sqdb_prep(d, SQ_AU_USAGE, &b)) != ST_OK)
        return st;
    sqdb_bind_text(&b, u->day);
    sqdb_bind_text(&b, u->app);
    sqdb_bind_text(&b, u->op);
    sqdb_bind_text(&b, u->keyring);
    sqdb_bind_text(&b, u->outcome);
    sqdb_bind_i64(&b, u->count);
    return sqdb_run(&b, NULL);
}

enum status
sq_audit_append(struct store *s, const struct store_audit_row *rows, size_t n,
                const struct store_usage *usage, size_t nu)
{
    struct sqdb *d = sq_lock(s);
    enum status st;

    if ((st = sqdb_begin(d)) == ST_OK) {
        for (size_t i = 0; i < n && st == ST_OK; i++)
            st = sq_audit_insert(d, &rows[i]);
        for (size_t i = 0; i < nu && st == ST_OK; i++)
            st = sq_usage_add(d, &usage[i]);
        st = sqdb_end(d, st);
    }
    sqdb_unlock(d);
    return st;
}

struct sq_seq_hash {
    uint64_t seq;
    uint8_t *hash;
};

static void
read_seq_hash(struct sqdb_row *r, void *dst)
{
    struct sq_seq_hash *h = dst;
    h->seq = (uint64_t)sqdb_col_i64(r);
    sqdb_col_blob_exact(r, h->hash, 32);
}

static enum status
sq_seq_hash(struct store *s, enum sq_id id, const char *chain_id, int64_t arg, bool has_arg,
            uint64_t *seq, uint8_t hash[static 32])
{
    struct sqdb *d = sq_lock(s);
    struct sqdb_bind b;
    struct sq_seq_hash h = {0, hash};
    enum status st;

    if ((st = sqdb_prep(d, id, &b)) == ST_OK) {
        sqdb_bind_text(&b, chain_id);
        if (has_arg)
            sqdb_bind_i64(&b, arg);
        st = sqdb_fetch_one(&b, read_seq_hash, &h);
    }
    sqdb_unlock(d);
    *seq = st == ST_OK ? h.seq : 0;
    return st;
}

enum status
sq_audit_head(struct store *s, const char *chain_id, uint64_t *seq, uint8_t hash[static 32])
{
    return sq_seq_hash(s, SQ_AU_HEAD, chain_id, 0, false, seq, hash);
}

enum status
sq_audit_seq_before(struct store *s, const char *chain_id, int64_t time_ms, uint64_t *seq,
                    uint8_t hash[static 32])
{
    enum status st = sq_seq_hash(s, SQ_AU_BEFORE, chain_id, time_ms, true, seq, hash);
    return st == ST_NOT_FOUND ? ST_OK : st;
}

enum status
sq_audit_checkpoint_add(struct store *s, const char *chain_id, uint64_t seq, const char *kind,
                        int64_t time_ms, const char *line)
{
    struct sqdb *d = sq_lock(s);
    struct sqdb_bind b;
    enum status st;

    if ((st = sqdb_prep(d, SQ_AU_CP_ADD, &b)) == ST_OK) {
        sqdb_bind_text(&b, chain_id);
        sqdb_bind_i64(&b, (int64_t)seq);
        sqdb_bind_text(&b, kind);
        sqdb_bind_i64(&b, time_ms);
        sqdb_bind_text(&b, line);
        st = sqdb_run(&b, NULL);
    }
    sqdb_unlock(d);
    return st;
}

struct sq_line_seq {
    char *line;
    uint64_t seq;
};

static void
read_line_seq(struct sqdb_row *r, void *dst)
{
    struct sq_line_seq *l = dst;
    l->line = col_dup_text(r);
    l->seq = (uint64_t)sqdb_col_i64(r);
}

enum status
sq_audit_checkpoint_last(struct store *s, const char *chain_id, const char *kind, char **line,
                         uint64_t *seq)
{
    struct sqdb *d = sq_lock(s);
    struct sqdb_bind b;
    struct sq_line_seq l = {NULL, 0};
    enum status st;

    if ((st = sqdb_prep(d, SQ_AU_CP_LAST, &b)) == ST_OK) {
        sqdb_bind_text(&b, chain_id);
        sqdb_bind_text(&b, kind);
        st = sqdb_fetch_one(&b, read_line_seq, &l);
    }
    sqdb_unlock(d);
    if (st != ST_OK) {
        free(l.line);
        l.line = NULL;
    }
    *line = l.line;
    *seq = l.seq;
    return st;
}

static void
read_audit_row(struct sqdb_row *r, void *dst)
{
    struct store_audit_row *a = dst;
    sqdb_col_text(r, a->chain_id, sizeof a->chain_id);
    a->seq = (uint64_t)sqdb_col_i64(r);
    a->time_ms = sqdb_col_i64(r);
    sqdb_col_text(r, a->app, sizeof a->app);
    sqdb_col_text(r, a->key_id, sizeof a->key_id);
    sqdb_col_text(r, a->op, sizeof a->op);
    sqdb_col_text(r, a->keyring, sizeof a->keyring);
    sqdb_col_text(r, a->outcome, sizeof a->outcome);
    a->status = (int)sqdb_col_i64(r);
    sqdb_col_blob_exact(r, a->hash, sizeof a->hash);
    a->line = col_dup_text(r);
}

enum status
sq_audit_list(struct store *s, const struct store_audit_filter *f, struct store_audit_row **out,
              size_t *n)
{
    struct sqdb *d = sq_lock(s);
    struct sqdb_bind b;
    void *arr = NULL;
    enum status st;

    if ((st = sqdb_prep(d, f->newest_first ? SQ_AU_LIST_DESC : SQ_AU_LIST, &b)) == ST_OK) {
        sqdb_bind_text(&b, f->app);
        sqdb_bind_text(&b, f->key_id);
        sqdb_bind_text(&b, f->op);
        sqdb_bind_text(&b, f->outcome);
        sqdb_bind_i64(&b, f->from_ms);
        sqdb_bind_i64(&b, f->to_ms);
        sqdb_bind_text(&b, f->after_chain);
        sqdb_bind_i64(&b, (int64_t)f->after_seq);
        sqdb_bind_i64(&b, (int64_t)(f->limit ? f->limit : 100));
        sqdb_bind_text(&b, f->keyring);
        sqdb_bind_i64(&b, f->after_time_ms);
        st = sqdb_fetch_all(&b, read_audit_row, sizeof **out, &arr, n);
    }
    sqdb_unlock(d);
    *out = arr;
    return st;
}

static void
read_line(struct sqdb_row *r, void *dst)
{
    *(char **)dst = col_dup_text(r);
}

enum status
sq_audit_lines(struct store *s, const char *chain_id, uint64_t after_seq, uint64_t upto_seq,
               store_line_cb cb, void *arg)
{
    struct sqdb *d = sq_lock(s);
    struct sqdb_bind b;
    char **lines = NULL;
    size_t n = 0;
    enum status st;

    if ((st = sqdb_prep(d, SQ_AU_LINES, &b)) == ST_OK) {
        sqdb_bind_text(&b, chain_id);
        sqdb_bind_i64(&b, (int64_t)after_seq);
        sqdb_bind_i64(&b, (int64_t)upto_seq);
        st = sqdb_fetch_all(&b, read_line, sizeof *lines, (void **)&lines, &n);
    }
    sqdb_unlock(d);
    for (size_t i = 0; i < n; i++) {
        if (st == ST_OK)
            st = cb(arg, lines[i], strlen(lines[i]));
        free(lines[i]);
    }
    free(lines);
    return st;
}

static void
read_chain(struct sqdb_row *r, void *dst)
{
    sqdb_col_text(r, dst, STORE_CHAIN_ID_MAX);
}

enum status
sq_audit_chains(struct store *s, char (**out)[STORE_CHAIN_ID_MAX], size_t *n)
{
    void *arr = NULL;
    enum status st = sq_list(s, SQ_AU_CHAINS, read_chain, STORE_CHAIN_ID_MAX, &arr, n);

    *out = arr;
    return st;
}

enum status
sq_audit_prune(struct store *s, const char *chain_id, uint64_t upto)
{
    struct sqdb *d = sq_lock(s);
    struct sqdb_bind b;
    enum status st;

    if ((st = sqdb_begin(d)) == ST_OK) {
        if ((st = sqdb_prep(d, SQ_AU_PRUNE_EV, &b)) == ST_OK) {
            sqdb_bind_text(&b, chain_id);
            sqdb_bind_i64(&b, (int64_t)upto);
            st = sqdb_run(&b, NULL);
        }
        if (st == ST_OK && (st = sqdb_prep(d, SQ_AU_PRUNE_CP, &b)) == ST_OK) {
            sqdb_bind_text(&b, chain_id);
            sqdb_bind_i64(&b, (int64_t)upto);
            st = sqdb_run(&b, NULL);
        }
        st = sqdb_end(d, st);
    }
    sqdb_unlock(d);
    return st;
}

static void
read_usage(struct sqdb_row *r, void *dst)
{
    struct store_usage *u = dst;
    sqdb_col_text(r, u->day, sizeof u->day);
    sqdb_col_text(r, u->app, sizeof u->app);
    sqdb_col_text(r, u->op, sizeof u->op);
    sqdb_col_text(r, u->keyring, sizeof u->keyring);
    sqdb_col_text(r, u->outcome, sizeof u->outcome);
    u->count = sqdb_col_i64(r);
}

enum status
sq_usage_list(struct store *s, const char *app, const char *from_day, const char *to_day,
              struct store_usage **out, size_t *n)
{
    struct sqdb *d = sq_lock(s);
    struct sqdb_bind b;
    void *arr = NULL;
    enum status st;

    if ((st = sqdb_prep(d, SQ_USAGE_LIST, &b)) == ST_OK) {
        sqdb_bind_text(&b, app);
        sqdb_bind_text(&b, from_day);
        sqdb_bind_text(&b, to_day);
        st = sqdb_fetch_all(&b, read_usage, sizeof **out, &arr, n);
    }
    sqdb_unlock(d);
    *out = arr;
    return st;
}
