/* SPDX-License-Identifier: Apache-2.0 */
/* server/audit/export.c -- exports, archives and retention. This node signs only what it can
 * verify: its own chain's head (it wrote every event of it), and any other chain (a replica's, a
 * CLI command's) only up to that chain's last checkpoint that verifies under an accepted key.
 * Archives are written atomically and read back; events are pruned only behind one that
 * verifies. Never logs event contents. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/xmem.h"
#include "server/audit/priv.h"
#include "server/sealed.h"

struct export_ctx {
    store_line_cb cb;
    void *arg;
};

/* One line to the caller, with its newline. */
static enum status
emit(struct export_ctx *x, const char *line, size_t len)
{
    char *l = xmalloc(len + 2);
    memcpy(l, line, len);
    l[len] = '\n';
    l[len + 1] = '\0';
    enum status st = x->cb(x->arg, l, len + 1);
    free(l);
    return st;
}

static enum status
emit_cb(void *arg, const char *line, size_t len)
{
    return emit(arg, line, len);
}

static enum status
add_line(void *arg, const char *line, size_t len)
{
    sbuf_add(arg, line, len);
    sbuf_add(arg, "\n", 1);
    return ST_OK;
}

/* This node's chain: its lines after after_seq up to the head, then an export checkpoint of the
 * head signed now (stored as a record of the export, never re-emitted by later exports). */
static enum status
export_own(struct audit *a, uint64_t after_seq, struct export_ctx *x)
{
    struct sbuf cp = {0};
    uint64_t upto;
    enum status st = ST_OK;

    pthread_mutex_lock(&a->chain_mu);
    upto = a->head_seq;
    if (upto > 0)
        st = audit__checkpoint_locked(a, "export", upto, a->head_hash, clock_now_ms(), &cp);
    pthread_mutex_unlock(&a->chain_mu);
    if (st == ST_OK && upto > 0 &&
        (st = store_audit_lines(a->store, a->chain_id, after_seq, upto, emit_cb, x)) == ST_OK)
        st = emit(x, cp.p, cp.len);
    sbuf_free(&cp);
    return st;
}

static void
unverified(struct audit *a, struct audit_export_report *rep, const char *chain_id, const char *why)
{
    atomic_fetch_add(&a->unverified, 1);
    rep->unverified++;
    if (rep->error[0] == '\0')
        snprintf(rep->error, sizeof rep->error, "chain %.100s: %.140s", chain_id, why);
    log_msg(LOG_ERROR, "audit_chain_unverified", "chain_id", chain_id, "detail", why, LOG_END);
}

/* Lines of a verified chain text with seq > after_seq (an anchor at after_seq too: it starts
 * what follows), as the store's export would give them. */
static enum status
emit_after(struct export_ctx *x, const char *text, size_t len, uint64_t after_seq)
{
    enum status st = ST_OK;

    for (size_t pos = 0; pos < len && st == ST_OK;) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t n = nl != NULL ? (size_t)(nl - (text + pos)) : len - pos;
        json_t *o = after_seq == 0 ? NULL : json_loadb(text + pos, n, 0, NULL);
        uint64_t seq = (uint64_t)json_integer_value(json_object_get(o, "seq"));
        const char *kind = json_string_value(json_object_get(o, "kind"));
        if (after_seq == 0 || seq > after_seq ||
            (seq == after_seq && kind != NULL && strcmp(kind, "anchor") == 0))
            st = emit(x, text + pos, n);
        json_decref(o);
        pos += n + 1;
    }
    return st;
}

/* Is (seq, hash) the head its writer sealed for chain_id (the meta row audit_head:<chain>, MAC'd
 * with the row-MAC key in the transaction of its last group commit)? */
static bool
sealed_head_is(struct audit *a, const char *chain_id, uint64_t seq,
               const uint8_t hash[static AUDIT_HASH_BYTES])
{
    char key[STORE_CHAIN_ID_MAX + 16], val[128], want[128], hex[2 * AUDIT_HASH_BYTES + 1];

    snprintf(key, sizeof key, "audit_head:%s", chain_id);
    if (seq == 0 || sealed_get(a->store, a->mac_key, key, val, sizeof val) != ST_OK)
        return false;
    sodium_bin2hex(hex, sizeof hex, hash, AUDIT_HASH_BYTES);
    snprintf(want, sizeof want, "%" PRIu64 ":%s", seq, hex);
    return strcmp(val, want) == 0;
}

/* Another node's chain: verified from its start; exported up to its last checkpoint that
 * verifies, then re-attested there with an export checkpoint of this node. Events after that
 * checkpoint are not signed here (its own node checkpoints them), unless the whole chain verifies
 * and ends at the head its writer sealed: the chain of a replica that stopped or was killed
 * before checkpointing its last events (several replicas on PostgreSQL) is then attested up to
 * that head. A chain with neither, or one that stops verifying, is reported and cut at what
 * verified. */
static enum status
export_other(struct audit *a, const char *chain_id, uint64_t after_seq, struct export_ctx *x,
             struct audit_export_report *rep)
{
    struct sbuf text = {0}, cp = {0};
    struct audit_prefix pre;
    struct audit_verify_result res;
    uint8_t(*keys)[AUDIT_PK_BYTES] = NULL;
    enum status st = store_audit_lines(a->store, chain_id, 0, INT64_MAX, add_line, &text);

    if (st != ST_OK || text.len == 0)
        goto out;
    size_t n_keys = audit_public_keys(a, &keys);
    bool whole = audit_verify_prefix(text.p, text.len, (const uint8_t(*)[AUDIT_PK_BYTES])keys,
                                     n_keys, NULL, 0, &pre, &res) == ST_OK;
    bool sealed = whole && sealed_head_is(a, chain_id, pre.head_seq, pre.head_hash) &&
                  (!pre.has_cp || pre.head_seq > pre.cp_seq);
    if (!whole)
        unverified(a, rep, chain_id, res.error);
    else if (!pre.has_cp && !sealed)
        unverified(a, rep, chain_id, "no checkpoint signed by an accepted audit key");
    if (sealed) { /* attest up to the sealed head: every line of the text */
        pre.has_cp = true;
        pre.cp_seq = pre.head_seq;
        memcpy(pre.cp_hash, pre.head_hash, sizeof pre.cp_hash);
        pre.cp_end = text.len;
    }
    if (!pre.has_cp || pre.cp_seq < after_seq)
        goto out;
    if ((st = audit__sign_line(a, &cp, chain_id, "export", pre.cp_seq, pre.cp_hash,
                               clock_now_ms())) == ST_OK &&
        (st = emit_after(x, text.p, pre.cp_end, after_seq)) == ST_OK)
        st = emit(x, cp.p, cp.len);
out:
    free(keys);
    sbuf_free(&cp);
    sbuf_free(&text);
    return st;
}

enum status
audit_export(struct audit *a, const char *chain_id, uint64_t after_seq, store_line_cb cb, void *arg,
             struct audit_export_report *rep)
{
    struct export_ctx x = {cb, arg};
    struct audit_export_report scratch;
    char(*chains)[STORE_CHAIN_ID_MAX] = NULL;
    size_t n = 0;
    enum status st;

    if (rep == NULL)
        rep = &scratch;
    memset(rep, 0, sizeof *rep);
    if (chain_id != NULL)
        return strcmp(chain_id, a->chain_id) == 0 ? export_own(a, after_seq, &x)
                                                  : export_other(a, chain_id, after_seq, &x, rep);
    /* This node's chain first: a key change in it then precedes other chains signed since. */
    if ((st = export_own(a, 0, &x)) != ST_OK ||
        (st = store_audit_chains(a->store, &chains, &n)) != ST_OK)
        return st;
    for (size_t i = 0; i < n && st == ST_OK; i++) {
        if (strcmp(chains[i], a->chain_id) != 0)
            st = export_other(a, chains[i], 0, &x, rep);
    }
    free(chains);
    return st;
}

enum status
audit_events(struct audit *a, const struct store_audit_filter *f, struct store_audit_row **out,
             size_t *n)
{
    return store_audit_list(a->store, f, out, n);
}

void
audit_events_free(struct store_audit_row *rows, size_t n)
{
    store_audit_rows_free(rows, n);
}

uint64_t
audit_unverified_chains(const struct audit *a)
{
    return atomic_load(&a->unverified);
}

/* --- archives and retention --- */

static enum status
write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return ST_IO;
        p += w;
        n -= (size_t)w;
    }
    return ST_OK;
}

/* dir/name holds exactly text afterwards, or the call fails: a temporary file, fsync, rename,
 * fsync of the directory; then read back and compared. */
static enum status
write_durable(const char *dir, const char *name, const char *text, size_t len)
{
    char path[4096], tmp[4096];
    struct stat sb;
    int fd = -1, dfd = -1;
    char *back = NULL;
    enum status st = ST_IO;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, name);
    unlink(tmp); /* left by an interrupted run */
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0 ||
        write_all(fd, text, len) != ST_OK || fsync(fd) != 0 || close(fd) != 0) {
        fd = -1;
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) != 0 || (dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
        fsync(dfd) != 0)
        goto out;
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &sb) != 0 ||
        (size_t)sb.st_size != len)
        goto out;
    back = xmalloc(len + 1);
    if (read(fd, back, len + 1) == (ssize_t)len && memcmp(back, text, len) == 0)
        st = ST_OK;
out:
    if (fd >= 0)
        close(fd);
    if (dfd >= 0)
        close(dfd);
    unlink(tmp);
    free(back);
    return st;
}

/* The archive of the events about to be pruned: the chain's lines up to upto (from its last
 * anchor) and an export checkpoint signed now, so it verifies on its own; verified before it
 * is written. */
static enum status
archive(struct audit *a, uint64_t upto, const uint8_t *hash)
{
    char name[128];
    struct sbuf text = {0};
    struct audit_verify_result res;
    uint8_t(*keys)[AUDIT_PK_BYTES] = NULL;
    enum status st;

    if (a->set.archive_dir == NULL)
        return ST_INVALID; /* never prune what was not archived */
    if (mkdir(a->set.archive_dir, 0700) != 0 && errno != EEXIST)
        return ST_IO;
    if ((st = store_audit_lines(a->store, a->chain_id, 0, upto, add_line, &text)) != ST_OK ||
        (st = audit__sign_line(a, &text, a->chain_id, "export", upto, hash, clock_now_ms())) !=
            ST_OK)
        goto out;
    sbuf_add(&text, "\n", 1);
    size_t n_keys = audit_public_keys(a, &keys);
    if (audit_verify(text.p, text.len, (const uint8_t(*)[AUDIT_PK_BYTES])keys, n_keys, NULL, 0,
                     &res) != ST_OK) {
        log_msg(LOG_ERROR, "audit_archive_unverified", "chain_id", a->chain_id, "detail", res.error,
                LOG_END);
        st = ST_INTEGRITY;
        goto out;
    }
    snprintf(name, sizeof name, "audit-%s-upto-%" PRIu64 ".ndjson", a->chain_id, upto);
    st = write_durable(a->set.archive_dir, name, text.p, text.len);
out:
    free(keys);
    sbuf_free(&text);
    return st;
}

void
audit__retention_run(struct audit *a, int64_t t_ms)
{
    uint64_t seq = 0;
    uint8_t hash[AUDIT_HASH_BYTES];
    enum status st;

    if (a->set.retention <= 0 || t_ms - a->retention_at_ms < 1000)
        return;
    a->retention_at_ms = t_ms;
    pthread_mutex_lock(&a->chain_mu);
    /* Only events already covered by a checkpoint go: the export after pruning still ends well. */
    st = store_audit_seq_before(a->store, a->chain_id, t_ms - a->set.retention * 1000, &seq, hash);
    bool due = st == ST_OK && seq > 0 && seq <= a->checkpoint_seq;
    if (due && (st = archive(a, seq, hash)) == ST_OK &&
        (st = audit__checkpoint_locked(a, "anchor", seq, hash, t_ms, NULL)) == ST_OK)
        st = store_audit_prune(a->store, a->chain_id, seq);
    pthread_mutex_unlock(&a->chain_mu);
    if (st != ST_OK) {
        log_msg(LOG_ERROR, "audit_retention_failed", "chain_id", a->chain_id, "status",
                status_name(st), LOG_END);
    } else if (due) {
        char s[24];
        snprintf(s, sizeof s, "%" PRIu64, seq);
        log_msg(LOG_INFO, "audit_pruned", "chain_id", a->chain_id, "#upto_seq", s, LOG_END);
    }
}

static enum status
to_sbuf(void *arg, const char *line, size_t len)
{
    sbuf_add(arg, line, len);
    return ST_OK;
}

enum status
audit_verify_trail(struct audit *a, struct audit_trail_check *out)
{
    struct sbuf b = {0};
    struct audit_verify_result res;
    struct audit_export_report rep;
    uint8_t(*keys)[AUDIT_PK_BYTES] = NULL;
    enum status st;

    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&a->chain_mu);
    bool empty_before = a->head_seq == 0; /* before the export: an event after it is in it */
    pthread_mutex_unlock(&a->chain_mu);
    if ((st = audit_export(a, NULL, 0, to_sbuf, &b, &rep)) != ST_OK) {
        sbuf_free(&b);
        return st;
    }
    /* Nothing written yet, by this node or any other: an empty trail holds no checkpoint to
     * check, and it is not a failed one (a fresh service's first compliance run). */
    bool empty = b.len == 0 && empty_before;
    memset(&res, 0, sizeof res);
    st = ST_OK;
    if (!empty) {
        size_t nk = audit_public_keys(a, &keys);
        st = audit_verify(b.p != NULL ? b.p : "", b.len, (const uint8_t(*)[AUDIT_PK_BYTES])keys, nk,
                          NULL, 0, &res);
        free(keys);
    }
    sbuf_free(&b);
    out->valid = st == ST_OK && rep.unverified == 0;
    out->events = res.events;
    out->checkpoints = res.checkpoints;
    out->chains = res.chains;
    if (st != ST_OK) {
        out->line = res.line;
        snprintf(out->error, sizeof out->error, "%s", res.error);
    } else if (!out->valid) {
        snprintf(out->error, sizeof out->error, "%s", rep.error);
    }
    atomic_store(&a->verified_ok, out->valid);
    atomic_store(&a->verified_at_ms, clock_now_ms());
    if (!out->valid)
        log_msg(LOG_ERROR, "audit_trail_unverified", "detail", out->error, LOG_END);
    return ST_OK;
}

const char *
audit_chain_id(const struct audit *a)
{
    return a->chain_id;
}

/* Another chain's last stored checkpoint: its seq and the hash it covers. */
static bool
other_head(struct audit *a, const char *chain_id, struct audit_chain_head *h)
{
    char *line = NULL;
    uint64_t seq = 0;
    size_t n = 0;
    json_t *o = NULL;
    const char *hex;
    bool ok = false;

    if (store_audit_checkpoint_last(a->store, chain_id, NULL, &line, &seq) != ST_OK ||
        line == NULL || seq == 0)
        goto out;
    o = json_loads(line, JSON_REJECT_DUPLICATES, NULL);
    hex = json_string_value(json_object_get(o, "hash"));
    ok = hex != NULL &&
         sodium_hex2bin(h->hash, sizeof h->hash, hex, strlen(hex), NULL, &n, NULL) == 0 &&
         n == sizeof h->hash;
    snprintf(h->chain_id, sizeof h->chain_id, "%s", chain_id);
    h->seq = seq;
out:
    json_decref(o);
    free(line);
    return ok;
}

enum status
audit_heads(struct audit *a, struct audit_chain_head **out, size_t *n)
{
    char(*chains)[STORE_CHAIN_ID_MAX] = NULL;
    size_t m = 0;
    enum status st;

    *out = NULL;
    *n = 0;
    if ((st = store_audit_chains(a->store, &chains, &m)) != ST_OK)
        return st;
    *out = xcalloc(m + 2, sizeof **out);
    pthread_mutex_lock(&a->chain_mu);
    if (a->head_seq > 0) {
        struct audit_chain_head *h = &(*out)[(*n)++];
        snprintf(h->chain_id, sizeof h->chain_id, "%s", a->chain_id);
        h->seq = a->head_seq;
        memcpy(h->hash, a->head_hash, AUDIT_HASH_BYTES);
    }
    pthread_mutex_unlock(&a->chain_mu);
    for (size_t i = 0; i < m; i++) {
        if (strcmp(chains[i], a->chain_id) != 0 && other_head(a, chains[i], &(*out)[*n]))
            (*n)++;
    }
    free(chains);
    return ST_OK;
}
