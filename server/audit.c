/* SPDX-License-Identifier: Apache-2.0 */
/* server/audit.c -- the audit writer: one thread turns queued records into chained event lines
 * and commits many in one transaction (one fsync), then releases the waiting requests. Also
 * checkpoints, export, retention. Holds the audit keys in guarded memory; never logs values. */
#include "server/audit.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "common/xmem.h"
#include "crypto/b64.h"
#include "server/jsonx.h"
#include "server/log.h"
#include "server/svckey.h"

#define SVC_SIGN "audit-sign"
#define SVC_HMAC "audit-hmac"
#define HMAC_KEY_BYTES 32
#define MAX_GROUP 4096

struct audit {
    struct store *store;
    const struct rootkey *rk;
    struct audit_settings set;
    char chain_id[STORE_CHAIN_ID_MAX];
    struct secret *sign_sk;            /* Ed25519 secret key */
    uint8_t sign_pk[AUDIT_PK_BYTES];
    char sign_key_id[AUDIT_KEY_ID_CHARS + 1];
    struct secret *hmac_key;
    char hmac_key_id[AUDIT_KEY_ID_CHARS + 1];
    int64_t key_created_at;

    pthread_mutex_t chain_mu;          /* head and every write to the chain */
    uint64_t head_seq;
    uint8_t head_hash[AUDIT_HASH_BYTES];
    uint64_t checkpoint_seq;           /* head at the last checkpoint */
    int64_t checkpoint_at_ms;
    int64_t retention_at_ms;

    pthread_mutex_t q_mu;
    pthread_cond_t q_cv;
    struct audit_rec *q_head, *q_tail;
    size_t q_len;
    bool stopping;
    pthread_t thread;
    bool thread_started;
    struct audit_rec *floods;          /* writer-only: 401s being folded, one per second/client */
    /* The releaser answers committed requests (MHD_resume_connection is a system call each)
     * while the writer already commits the next group. */
    pthread_t rel_thread;
    bool rel_started, rel_stop;
    pthread_mutex_t rel_mu;
    pthread_cond_t rel_cv;
    struct audit_rec *rel_head, *rel_tail;
    atomic_uint_fast64_t failures;
};

static int64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- keys --- */

enum status
audit_keys_ensure(struct store *st, const struct rootkey *rk)
{
    struct store_svckey row;
    uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
    uint8_t hk[HMAC_KEY_BYTES];
    enum status s = ST_OK;

    if (store_svckey_get(st, SVC_SIGN, &row) == ST_NOT_FOUND) {
        crypto_sign_keypair(pk, sk);
        s = svckey_put(st, rk, SVC_SIGN, sk, sizeof sk);
        sodium_memzero(sk, sizeof sk);
    }
    if (s == ST_OK && store_svckey_get(st, SVC_HMAC, &row) == ST_NOT_FOUND) {
        randombytes_buf(hk, sizeof hk);
        s = svckey_put(st, rk, SVC_HMAC, hk, sizeof hk);
        sodium_memzero(hk, sizeof hk);
    }
    return s;
}

static enum status
load_keys(struct audit *a, const struct rootkey *rk)
{
    uint8_t digest[32];
    enum status s;

    if ((s = svckey_load(a->store, rk, SVC_SIGN, &a->sign_sk, &a->key_created_at, NULL, 0)) !=
            ST_OK ||
        (s = svckey_load(a->store, rk, SVC_HMAC, &a->hmac_key, NULL, NULL, 0)) != ST_OK)
        return s;
    if (secret_len(a->sign_sk) != AUDIT_SK_BYTES || secret_len(a->hmac_key) != HMAC_KEY_BYTES)
        return ST_INTEGRITY;
    crypto_sign_ed25519_sk_to_pk(a->sign_pk, secret_ro(a->sign_sk));
    auditfmt_key_id(a->sign_key_id, a->sign_pk);
    /* The HMAC key's id reveals nothing about it: a keyed digest of a fixed label. */
    crypto_generichash(digest, sizeof digest, (const uint8_t *)"difyguard/audit-hmac-id", 23,
                       secret_ro(a->hmac_key), HMAC_KEY_BYTES);
    sodium_bin2hex(a->hmac_key_id, sizeof a->hmac_key_id, digest, 8);
    return ST_OK;
}

void
audit_hmac_hex(const struct audit *a, char out[static AUDIT_HEX], const char *value, size_t len)
{
    uint8_t mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, secret_ro(a->hmac_key), HMAC_KEY_BYTES);
    crypto_auth_hmacsha256_update(&st, (const uint8_t *)value, len);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_memzero(&st, sizeof st);
    sodium_bin2hex(out, AUDIT_HEX, mac, sizeof mac);
}

const char *
audit_hmac_key_id(const struct audit *a)
{
    return a->hmac_key_id;
}

size_t
audit_backlog(struct audit *a)
{
    pthread_mutex_lock(&a->q_mu);
    size_t n = a->q_len;
    pthread_mutex_unlock(&a->q_mu);
    return n;
}

bool
audit_durable(const struct audit *a)
{
    return a->set.durable;
}

uint64_t
audit_failures(const struct audit *a)
{
    return atomic_load(&a->failures);
}

/* Retired signing keys: meta "audit_retired_keys" holds "key_id:base64pk:created:retired;..." */
#define RETIRED_MAX 4096

static size_t
retired_keys(const struct audit *a, char out[RETIRED_MAX])
{
    out[0] = '\0';
    if (store_meta_get(a->store, "audit_retired_keys", out, RETIRED_MAX) != ST_OK)
        out[0] = '\0';
    size_t n = 0;
    for (const char *p = out; *p != '\0'; p++)
        n += *p == ';';
    return n;
}


static void
add_retired_json(const struct audit *a, struct sbuf *b)
{
    char list[RETIRED_MAX], created[32];
    retired_keys(a, list);
    for (char *save = NULL, *e = strtok_r(list, ";", &save); e != NULL;
         e = strtok_r(NULL, ";", &save)) {
        char id[AUDIT_KEY_ID_CHARS + 1], pk[64];
        long long c = 0, r = 0;
        if (sscanf(e, "%16[0-9a-f]:%60[A-Za-z0-9+/=]:%lld:%lld", id, pk, &c, &r) != 4)
            continue;
        time_rfc3339(created, c);
        sbuf_addf(b, ",{\"key_id\":\"%s\",\"public_key\":\"%s\",\"algorithm\":\"ed25519\","
                  "\"created_at\":\"%s\",\"active\":false}", id, pk, created);
    }
}

char *
audit_public_keys_json(const struct audit *a)
{
    char pk[64], created[32];
    time_rfc3339(created, a->key_created_at);
    b64_std_encode(pk, sizeof pk, a->sign_pk, sizeof a->sign_pk);
    struct sbuf b = {0};
    sbuf_addf(&b, "{\"keys\":[{\"key_id\":\"%s\",\"public_key\":\"%s\",\"algorithm\":"
              "\"ed25519\",\"created_at\":\"%s\",\"active\":true}", a->sign_key_id, pk, created);
    add_retired_json(a, &b);
    sbuf_adds(&b, "]}");
    size_t len;
    return sbuf_take(&b, &len);
}

size_t
audit_public_keys(const struct audit *a, uint8_t (**out)[AUDIT_PK_BYTES])
{
    char list[RETIRED_MAX];
    size_t n = 1, max = retired_keys(a, list) + 1;
    *out = xcalloc(max, sizeof **out);
    memcpy((*out)[0], a->sign_pk, AUDIT_PK_BYTES);
    for (char *save = NULL, *e = strtok_r(list, ";", &save); e != NULL && n < max;
         e = strtok_r(NULL, ";", &save)) {
        const char *c1 = strchr(e, ':');
        const char *c2 = c1 != NULL ? strchr(c1 + 1, ':') : NULL;
        if (c2 != NULL && auditfmt_parse_public_key((*out)[n], c1 + 1, (size_t)(c2 - c1 - 1)) == ST_OK)
            n++;
    }
    return n;
}

/* --- checkpoints --- */

/* Sign and store a checkpoint of (chain_id, seq, hash) with this node's key. */
static enum status
sign_checkpoint(struct audit *a, const char *chain_id, const char *kind, uint64_t seq,
                const uint8_t *hash, int64_t t_ms)
{
    struct sbuf line = {0};
    struct audit_signer signer;
    struct audit_checkpoint cp = {.chain_id = chain_id, .seq = seq, .time_ms = t_ms,
                                  .kind = kind};
    enum status st;

    memcpy(cp.hash, hash, AUDIT_HASH_BYTES);
    snprintf(signer.key_id, sizeof signer.key_id, "%s", a->sign_key_id);
    signer.sk = a->sign_sk;
    if ((st = auditfmt_checkpoint(&line, &cp, &signer, 1)) == ST_OK)
        st = store_audit_checkpoint_add(a->store, chain_id, seq, kind, t_ms, line.p);
    sbuf_free(&line);
    return st;
}

/* With chain_mu held: sign and store a checkpoint of this node's chain. */
static enum status
checkpoint_locked(struct audit *a, const char *kind, uint64_t seq, const uint8_t *hash,
                  int64_t t_ms)
{
    enum status st = sign_checkpoint(a, a->chain_id, kind, seq, hash, t_ms);
    if (st == ST_OK && strcmp(kind, "anchor") != 0) {
        a->checkpoint_seq = seq;
        a->checkpoint_at_ms = t_ms;
    }
    return st;
}

static void
maybe_checkpoint(struct audit *a, int64_t t_ms)
{
    pthread_mutex_lock(&a->chain_mu);
    if (a->head_seq != a->checkpoint_seq &&
        t_ms - a->checkpoint_at_ms >= a->set.checkpoint_interval * 1000 &&
        checkpoint_locked(a, "periodic", a->head_seq, a->head_hash, t_ms) != ST_OK)
        log_msg(LOG_ERROR, "audit_checkpoint_failed", "chain_id", a->chain_id, LOG_END);
    pthread_mutex_unlock(&a->chain_mu);
}

/* --- the writer --- */

static void
fill_event(struct audit_event *e, const struct audit *a, const struct audit_rec *r)
{
    static const char *const none = NULL;
    memset(e, 0, sizeof *e);
    e->chain_id = a->chain_id;
    e->time_ms = r->time_ms;
    e->op = r->op;
    e->method = r->method;
    e->route = r->route;
    e->status = r->status;
    e->outcome = r->status < 400 ? "ok" : r->status == 401 || r->status == 403 ||
                 r->status == 429 ? "denied" : r->status >= 500 ? "error" : "invalid";
    e->latency_us = r->latency_us;
    e->app = r->app[0] ? r->app : none;
    e->key_id = r->key_id[0] ? r->key_id : none;
    e->keyring = r->keyring[0] ? r->keyring : none;
    e->key_version = r->key_version;
    e->items_total = r->items_total;
    e->items_ok = r->items_ok;
    e->items_failed = r->items_failed;
    e->n_versions = r->n_versions;
    e->versions = r->versions;
    e->version_counts = r->version_counts;
    e->trace_id = r->trace_id[0] ? r->trace_id : none;
    e->count = r->count ? r->count : 1;
    e->hmac_key_id = a->hmac_key_id;
    e->h_request_id = r->h_request_id[0] ? r->h_request_id : none;
    e->h_client = r->h_client[0] ? r->h_client : none;
    e->h_keyring = r->h_keyring[0] ? r->h_keyring : none;
    e->h_key_id = r->h_key_id[0] ? r->h_key_id : none;
    e->h_sub = r->h_sub[0] ? r->h_sub : none;
}

struct group {
    struct audit_rec *recs;
    struct store_audit_row *rows;
    struct sbuf *lines;
    struct store_usage *usage;
    size_t n, nu;
};

static void
usage_add(struct group *g, const struct store_audit_row *row, int64_t count)
{
    struct store_usage u = {0};
    time_t t = (time_t)(row->time_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(u.day, sizeof u.day, "%Y-%m-%d", &tm);
    snprintf(u.app, sizeof u.app, "%s", row->app);
    snprintf(u.op, sizeof u.op, "%s", row->op);
    snprintf(u.keyring, sizeof u.keyring, "%s", row->keyring);
    snprintf(u.outcome, sizeof u.outcome, "%s", row->outcome);
    for (size_t i = 0; i < g->nu; i++) {
        struct store_usage *x = &g->usage[i];
        if (strcmp(x->day, u.day) == 0 && strcmp(x->app, u.app) == 0 && strcmp(x->op, u.op) == 0 &&
            strcmp(x->keyring, u.keyring) == 0 && strcmp(x->outcome, u.outcome) == 0) {
            x->count += count;
            return;
        }
    }
    u.count = count;
    g->usage[g->nu++] = u;
}

/* Pointers to the rows of an HMAC array (malloc'd; NULL when empty). */
static const char **
hmac_list(char (*h)[AUDIT_HEX], size_t n)
{
    if (n == 0)
        return NULL;
    const char **p = xcalloc(n, sizeof *p);
    for (size_t i = 0; i < n; i++)
        p[i] = h[i];
    return p;
}

static void
row_from(struct store_audit_row *row, const struct audit_event *e, const uint8_t hash[32],
         char *line)
{
    memset(row, 0, sizeof *row);
    snprintf(row->chain_id, sizeof row->chain_id, "%s", e->chain_id);
    row->seq = e->seq;
    row->time_ms = e->time_ms;
    snprintf(row->app, sizeof row->app, "%s", e->app ? e->app : "");
    snprintf(row->key_id, sizeof row->key_id, "%s", e->key_id ? e->key_id : "");
    snprintf(row->op, sizeof row->op, "%s", e->op);
    snprintf(row->keyring, sizeof row->keyring, "%s", e->keyring ? e->keyring : "");
    snprintf(row->outcome, sizeof row->outcome, "%s", e->outcome);
    row->status = (int)e->status;
    memcpy(row->hash, hash, 32);
    row->line = line;
}

/* Chain, write and commit one group; returns the status every record of it gets. */
static enum status
commit_group(struct audit *a, struct audit_rec *list, size_t n)
{
    struct group g = {0};
    struct audit_event e;
    uint8_t hash[AUDIT_HASH_BYTES];
    enum status st = ST_OK;

    g.rows = xcalloc(n, sizeof *g.rows);
    g.lines = xcalloc(n, sizeof *g.lines);
    g.usage = xcalloc(n, sizeof *g.usage);
    pthread_mutex_lock(&a->chain_mu);
    uint64_t seq0 = a->head_seq;
    uint8_t hash0[AUDIT_HASH_BYTES];
    memcpy(hash0, a->head_hash, sizeof hash0);
    for (struct audit_rec *r = list; r != NULL && st == ST_OK; r = r->next) {
        fill_event(&e, a, r);
        e.seq = a->head_seq + 1;
        memcpy(e.prev_hash, a->head_hash, sizeof e.prev_hash);
        const char **ctx = hmac_list(r->h_context, r->n_h_context);
        const char **ref = hmac_list(r->h_reference, r->n_h_reference);
        e.h_context = ctx;
        e.n_h_context = r->n_h_context;
        e.h_reference = ref;
        e.n_h_reference = r->n_h_reference;
        st = auditfmt_event(&g.lines[g.n], hash, &e);
        free(ctx);
        free(ref);
        if (st != ST_OK)
            break;
        row_from(&g.rows[g.n], &e, hash, g.lines[g.n].p);
        usage_add(&g, &g.rows[g.n], (int64_t)e.count);
        g.n++;
        a->head_seq = e.seq;
        memcpy(a->head_hash, hash, sizeof hash);
    }
    if (st == ST_OK)
        st = store_audit_append(a->store, g.rows, g.n, g.usage, g.nu);
    if (st != ST_OK) {
        a->head_seq = seq0;             /* nothing was written: the chain stays where it was */
        memcpy(a->head_hash, hash0, sizeof hash0);
        /* Someone else wrote to this chain (a second server on the same database): follow the
         * stored head so the next group links to it. This group is answered 503. */
        if (st == ST_CONFLICT &&
            store_audit_head(a->store, a->chain_id, &a->head_seq, a->head_hash) == ST_OK)
            log_msg(LOG_ERROR, "audit_chain_moved", "chain_id", a->chain_id,
                    "detail", "another writer appended to this node's chain", LOG_END);
    }
    pthread_mutex_unlock(&a->chain_mu);
    for (size_t i = 0; i < g.n; i++)
        sbuf_free(&g.lines[i]);
    free(g.rows);
    free(g.lines);
    free(g.usage);
    return st;
}

static void
rec_free(struct audit_rec *r)
{
    free(r->h_context);
    free(r->h_reference);
    free(r);
}

struct audit_rec *
audit_rec_new(void)
{
    struct audit_rec *r = xcalloc(1, sizeof *r);
    r->time_ms = now_ms();
    return r;
}

void
audit_submit(struct audit *a, struct audit_rec *rec)
{
    rec->next = NULL;
    pthread_mutex_lock(&a->q_mu);
    if (a->q_tail != NULL)
        a->q_tail->next = rec;
    else
        a->q_head = rec;
    a->q_tail = rec;
    a->q_len++;
    pthread_cond_signal(&a->q_cv);
    pthread_mutex_unlock(&a->q_mu);
}

/* Take up to MAX_GROUP queued records (the group commit). */
static struct audit_rec *
take_group(struct audit *a, size_t *n)
{
    struct audit_rec *list = a->q_head, *last = NULL;
    size_t k = 0;
    for (struct audit_rec *r = list; r != NULL && k < MAX_GROUP; r = r->next, k++)
        last = r;
    if (last != NULL) {
        a->q_head = last->next;
        last->next = NULL;
        if (a->q_head == NULL)
            a->q_tail = NULL;
    }
    a->q_len -= k;
    *n = k;
    return list;
}

static void retention_run(struct audit *a, int64_t t_ms);

static void
process(struct audit *a, struct audit_rec *list, size_t n)
{
    if (list == NULL)
        return;
    enum status st = commit_group(a, list, n);
    if (st != ST_OK) {
        atomic_fetch_add(&a->failures, n);
        log_msg(LOG_ERROR, "audit_write_failed", "chain_id", a->chain_id, "status",
                status_name(st), "detail", "the audit sink could not commit; requests answered 503",
                LOG_END);
    }
    struct audit_rec *last = list;
    for (struct audit_rec *r = list; r != NULL; r = r->next) {
        r->result = st;
        last = r;
    }
    pthread_mutex_lock(&a->rel_mu);
    if (a->rel_tail != NULL)
        a->rel_tail->next = list;
    else
        a->rel_head = list;
    a->rel_tail = last;
    pthread_cond_signal(&a->rel_cv);
    pthread_mutex_unlock(&a->rel_mu);
}

static void *
releaser_main(void *arg)
{
    struct audit *a = arg;
    pthread_mutex_lock(&a->rel_mu);
    for (;;) {
        while (a->rel_head == NULL && !a->rel_stop)
            pthread_cond_wait(&a->rel_cv, &a->rel_mu);
        struct audit_rec *list = a->rel_head;
        a->rel_head = a->rel_tail = NULL;
        bool stop = a->rel_stop && list == NULL;
        pthread_mutex_unlock(&a->rel_mu);
        for (struct audit_rec *r = list, *next; r != NULL; r = next) {
            next = r->next;
            if (r->done != NULL)
                r->done(r->arg, r->result);
            rec_free(r);
        }
        if (stop)
            return NULL;
        pthread_mutex_lock(&a->rel_mu);
    }
}

/* Fold failed authentications into one pending event per (client, route, second): nobody waits
 * for them. Returns the records that are not folded. */
static struct audit_rec *
fold_floods(struct audit *a, struct audit_rec *list, size_t *n)
{
    struct audit_rec *keep = NULL, **tail = &keep;
    for (struct audit_rec *r = list, *next; r != NULL; r = next) {
        next = r->next;
        r->next = NULL;
        struct audit_rec *f = r->coalesce ? a->floods : NULL;
        for (; f != NULL; f = f->next)
            if (f->time_ms / 1000 == r->time_ms / 1000 && strcmp(f->h_client, r->h_client) == 0 &&
                strcmp(f->route, r->route) == 0)
                break;
        if (f != NULL) {
            f->count = (f->count ? f->count : 1) + 1;
            rec_free(r);
            (*n)--;
        } else if (r->coalesce) {
            r->next = a->floods;
            a->floods = r;
            (*n)--;
        } else {
            *tail = r;
            tail = &r->next;
        }
    }
    return keep;
}

/* Move folded events whose second is over (all of them when stopping) into the group. */
static struct audit_rec *
due_floods(struct audit *a, struct audit_rec *list, size_t *n, bool all)
{
    int64_t sec = now_ms() / 1000;
    for (struct audit_rec **pp = &a->floods; *pp != NULL;) {
        struct audit_rec *f = *pp;
        if (all || f->time_ms / 1000 < sec) {
            *pp = f->next;
            f->next = list;
            list = f;
            (*n)++;
        } else {
            pp = &f->next;
        }
    }
    return list;
}

static void *
writer_main(void *arg)
{
    struct audit *a = arg;
    pthread_mutex_lock(&a->q_mu);
    for (;;) {
        if (a->q_head == NULL && !a->stopping) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_nsec += 250 * 1000000L;        /* floods are flushed within ~1.25 s */
            if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&a->q_cv, &a->q_mu, &until);
        }
        size_t n = 0;
        struct audit_rec *list = take_group(a, &n);
        bool stop = a->stopping && list == NULL;
        pthread_mutex_unlock(&a->q_mu);
        list = fold_floods(a, list, &n);
        list = due_floods(a, list, &n, stop);
        process(a, list, n);
        int64_t t = now_ms();
        maybe_checkpoint(a, t);
        retention_run(a, t);
        if (stop)
            return NULL;
        pthread_mutex_lock(&a->q_mu);
    }
}

/* --- retention --- */

struct archive {
    FILE *f;
};

static enum status
archive_line(void *arg, const char *line, size_t len)
{
    struct archive *ar = arg;
    return fwrite(line, 1, len, ar->f) == len && fputc('\n', ar->f) != EOF ? ST_OK : ST_IO;
}

/* Export the events about to be pruned to the archive dir (when one is set). */
static enum status
archive(struct audit *a, uint64_t upto)
{
    char path[4096];
    struct archive ar;
    enum status st;

    if (a->set.archive_dir == NULL)
        return ST_OK;
    if (mkdir(a->set.archive_dir, 0700) != 0 && errno != EEXIST)
        return ST_IO;
    snprintf(path, sizeof path, "%s/audit-%s-upto-%llu.ndjson", a->set.archive_dir, a->chain_id,
             (unsigned long long)upto);
    if ((ar.f = fopen(path, "wx")) == NULL)
        return errno == EEXIST ? ST_OK : ST_IO;
    st = store_audit_export(a->store, a->chain_id, 0, upto, archive_line, &ar);
    if (fflush(ar.f) != 0 || fsync(fileno(ar.f)) != 0)
        st = ST_IO;
    fclose(ar.f);
    return st;
}

/* Prune events older than the retention period behind a signed anchor checkpoint. */
static void
retention_run(struct audit *a, int64_t t_ms)
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
    if (st == ST_OK && seq > 0 && seq <= a->checkpoint_seq && (st = archive(a, seq)) == ST_OK &&
        (st = checkpoint_locked(a, "anchor", seq, hash, t_ms)) == ST_OK)
        st = store_audit_prune(a->store, a->chain_id, seq);
    pthread_mutex_unlock(&a->chain_mu);
    if (st != ST_OK)
        log_msg(LOG_ERROR, "audit_retention_failed", "chain_id", a->chain_id, LOG_END);
    else if (seq > 0 && seq <= a->checkpoint_seq) {
        char s[24];
        snprintf(s, sizeof s, "%llu", (unsigned long long)seq);
        log_msg(LOG_INFO, "audit_pruned", "chain_id", a->chain_id, "#upto_seq", s, LOG_END);
    }
}

/* --- open, close, export --- */

/* Every event pruned: the chain continues from the last anchor's seq and hash. */
static enum status
head_from_anchor(struct audit *a)
{
    char *line = NULL;
    uint64_t seq = 0;
    size_t n = 0;
    enum status st = store_audit_checkpoint_last(a->store, a->chain_id, "anchor", &line, &seq);

    if (st == ST_NOT_FOUND)
        return ST_OK;                   /* a new chain */
    if (st != ST_OK)
        return st;
    json_t *j = json_loads(line, 0, NULL);
    const char *hex = json_string_value(json_object_get(j, "hash"));
    if (hex == NULL || sodium_hex2bin(a->head_hash, sizeof a->head_hash, hex, strlen(hex), NULL,
                                      &n, NULL) != 0 || n != sizeof a->head_hash)
        st = ST_INTEGRITY;
    else
        a->head_seq = seq;
    json_decref(j);
    free(line);
    return st;
}

static enum status
chain_init(struct audit *a)
{
    uint8_t rnd[8];
    enum status st = ST_NOT_FOUND;
    if (a->set.own_chain) {
        /* A short-lived process (admin-key) never shares the server's chain head. */
        randombytes_buf(rnd, sizeof rnd);
        sodium_bin2hex(a->chain_id, sizeof a->chain_id, rnd, sizeof rnd);
        return ST_OK;
    }
    st = store_meta_get(a->store, "audit_chain_id", a->chain_id, sizeof a->chain_id);
    if (st == ST_NOT_FOUND) {
        randombytes_buf(rnd, sizeof rnd);
        sodium_bin2hex(a->chain_id, sizeof a->chain_id, rnd, sizeof rnd);
        st = store_meta_set(a->store, "audit_chain_id", a->chain_id);
    }
    if (st != ST_OK)
        return st;
    st = store_audit_head(a->store, a->chain_id, &a->head_seq, a->head_hash);
    if (st == ST_NOT_FOUND)
        st = head_from_anchor(a);
    /* checkpoint_at_ms 0: the writer checkpoints the head at its first chance after a start. */
    a->checkpoint_seq = 0;
    a->checkpoint_at_ms = 0;
    return st;
}

enum status
audit_open(struct audit **out, struct store *st, const struct rootkey *rk,
           const struct audit_settings *set, char *err, size_t err_len)
{
    struct audit *a = xcalloc(1, sizeof *a);
    enum status s;

    *out = NULL;
    a->store = st;
    a->rk = rk;
    a->set = *set;
    if (a->set.checkpoint_interval <= 0)
        a->set.checkpoint_interval = 60;
    pthread_mutex_init(&a->chain_mu, NULL);
    pthread_mutex_init(&a->q_mu, NULL);
    pthread_cond_init(&a->q_cv, NULL);
    pthread_mutex_init(&a->rel_mu, NULL);
    pthread_cond_init(&a->rel_cv, NULL);
    if ((s = audit_keys_ensure(st, rk)) != ST_OK || (s = load_keys(a, rk)) != ST_OK) {
        snprintf(err, err_len, "cannot load the audit keys (root key %s)", rootkey_id(rk));
        goto fail;
    }
    if ((s = chain_init(a)) != ST_OK) {
        snprintf(err, err_len, "cannot read the audit chain head");
        goto fail;
    }
    if (pthread_create(&a->rel_thread, NULL, releaser_main, a) != 0) {
        snprintf(err, err_len, "cannot start the audit releaser");
        s = ST_INTERNAL;
        goto fail;
    }
    a->rel_started = true;
    if (pthread_create(&a->thread, NULL, writer_main, a) != 0) {
        snprintf(err, err_len, "cannot start the audit writer");
        s = ST_INTERNAL;
        goto fail;
    }
    a->thread_started = true;
    *out = a;
    return ST_OK;
fail:
    audit_close(a);
    return s;
}

void
audit_close(struct audit *a)
{
    if (a == NULL)
        return;
    if (a->thread_started) {
        pthread_mutex_lock(&a->q_mu);
        a->stopping = true;
        pthread_cond_signal(&a->q_cv);
        pthread_mutex_unlock(&a->q_mu);
        pthread_join(a->thread, NULL);
        pthread_mutex_lock(&a->chain_mu);
        if (a->head_seq != a->checkpoint_seq && a->head_seq > 0 &&
            checkpoint_locked(a, "periodic", a->head_seq, a->head_hash, now_ms()) != ST_OK)
            log_msg(LOG_ERROR, "audit_checkpoint_failed", "chain_id", a->chain_id, LOG_END);
        pthread_mutex_unlock(&a->chain_mu);
    }
    if (a->rel_started) {
        pthread_mutex_lock(&a->rel_mu);
        a->rel_stop = true;
        pthread_cond_signal(&a->rel_cv);
        pthread_mutex_unlock(&a->rel_mu);
        pthread_join(a->rel_thread, NULL);
    }
    secret_free(a->sign_sk);
    secret_free(a->hmac_key);
    pthread_mutex_destroy(&a->chain_mu);
    pthread_mutex_destroy(&a->q_mu);
    pthread_cond_destroy(&a->q_cv);
    pthread_mutex_destroy(&a->rel_mu);
    pthread_cond_destroy(&a->rel_cv);
    free(a);
}

struct export_ctx {
    store_line_cb cb;
    void *arg;
};

static enum status
export_line(void *arg, const char *line, size_t len)
{
    struct export_ctx *x = arg;
    char *l = xmalloc(len + 2);
    memcpy(l, line, len);
    l[len] = '\n';
    l[len + 1] = '\0';
    enum status st = x->cb(x->arg, l, len + 1);
    free(l);
    return st;
}

static enum status
export_chain(struct audit *a, const char *chain_id, uint64_t after_seq, struct export_ctx *x)
{
    uint64_t upto = 0;
    uint8_t hash[AUDIT_HASH_BYTES];
    enum status st;

    if (strcmp(chain_id, a->chain_id) == 0) {
        /* Our own chain: checkpoint its head now, so the export ends with a checkpoint. */
        pthread_mutex_lock(&a->chain_mu);
        upto = a->head_seq;
        st = upto > 0 ? checkpoint_locked(a, "export", upto, a->head_hash, now_ms()) : ST_OK;
        pthread_mutex_unlock(&a->chain_mu);
    } else {
        /* Another chain (a replica's, or a CLI command's): checkpoint its head with this node's
         * key too, so every chain of the export ends with an export checkpoint. The chain_mu
         * serialises checkpoint writes. */
        st = store_audit_head(a->store, chain_id, &upto, hash);
        if (st == ST_OK && upto > 0) {
            pthread_mutex_lock(&a->chain_mu);
            st = sign_checkpoint(a, chain_id, "export", upto, hash, now_ms());
            pthread_mutex_unlock(&a->chain_mu);
        }
    }
    if (st != ST_OK || upto == 0)
        return st == ST_NOT_FOUND ? ST_OK : st;
    return store_audit_export(a->store, chain_id, after_seq, upto, export_line, x);
}

enum status
audit_export(struct audit *a, const char *chain_id, uint64_t after_seq, store_line_cb cb,
             void *arg)
{
    struct export_ctx x = {cb, arg};
    char (*chains)[STORE_CHAIN_ID_MAX] = NULL;
    size_t n = 0;
    enum status st;

    if (chain_id != NULL)
        return export_chain(a, chain_id, after_seq, &x);
    if ((st = store_audit_chains(a->store, &chains, &n)) != ST_OK)
        return st;
    bool own = false;
    for (size_t i = 0; i < n && st == ST_OK; i++) {
        own = own || strcmp(chains[i], a->chain_id) == 0;
        st = export_chain(a, chains[i], 0, &x);
    }
    if (st == ST_OK && !own)
        st = export_chain(a, a->chain_id, 0, &x);
    free(chains);
    return st;
}

/* A new signing key: a key_change checkpoint at the head signed by the old and the new key, the
 * new key stored (wrapped by the root key) and the old public key kept for verification. */
enum status
audit_rotate_key(struct audit *a, char new_id[static AUDIT_KEY_ID_CHARS + 1])
{
    uint8_t pk[AUDIT_PK_BYTES];
    struct secret *sk = secret_new(AUDIT_SK_BYTES);
    struct audit_signer signers[2] = {0};
    struct sbuf line = {0};
    char list[RETIRED_MAX], old_pk[64], entry[160];
    int64_t t = now_ms();
    enum status st;

    crypto_sign_keypair(pk, secret_rw(sk));
    auditfmt_key_id(new_id, pk);
    snprintf(signers[0].key_id, sizeof signers[0].key_id, "%s", a->sign_key_id);
    signers[0].sk = a->sign_sk;
    snprintf(signers[1].key_id, sizeof signers[1].key_id, "%s", new_id);
    signers[1].sk = sk;
    pthread_mutex_lock(&a->chain_mu);
    struct audit_checkpoint cp = {.chain_id = a->chain_id, .seq = a->head_seq, .time_ms = t,
                                  .kind = "key_change", .new_key_id = new_id, .new_public_key = pk};
    memcpy(cp.hash, a->head_hash, sizeof cp.hash);
    retired_keys(a, list);
    b64_std_encode(old_pk, sizeof old_pk, a->sign_pk, sizeof a->sign_pk);
    snprintf(entry, sizeof entry, "%s:%s:%lld:%lld;", a->sign_key_id, old_pk,
             (long long)a->key_created_at, (long long)(t / 1000));
    if (strlen(list) + strlen(entry) >= sizeof list) {
        st = ST_CONFLICT;               /* too many retired keys kept: refuse, say why */
        goto out;
    }
    strcat(list, entry);
    if ((st = auditfmt_checkpoint(&line, &cp, signers, 2)) != ST_OK ||
        (st = store_meta_set(a->store, "audit_retired_keys", list)) != ST_OK ||
        (st = svckey_put(a->store, a->rk, SVC_SIGN, secret_ro(sk), AUDIT_SK_BYTES)) != ST_OK ||
        (st = store_audit_checkpoint_add(a->store, a->chain_id, cp.seq, "key_change", t,
                                         line.p)) != ST_OK)
        goto out;
    secret_free(a->sign_sk);
    a->sign_sk = sk;
    sk = NULL;
    memcpy(a->sign_pk, pk, sizeof pk);
    snprintf(a->sign_key_id, sizeof a->sign_key_id, "%s", new_id);
    a->key_created_at = t / 1000;
    log_msg(LOG_WARN, "audit_key_rotated", "chain_id", a->chain_id, "key_id", new_id, LOG_END);
out:
    pthread_mutex_unlock(&a->chain_mu);
    sbuf_free(&line);
    secret_free(sk);
    return st;
}

enum status
audit_txn_begin(struct audit *a, struct audit_txn *t, struct audit_rec *rec)
{
    struct audit_event e;
    uint8_t hash[AUDIT_HASH_BYTES];
    enum status st;

    memset(t, 0, sizeof *t);
    t->a = a;
    pthread_mutex_lock(&a->chain_mu);
    fill_event(&e, a, rec);
    e.seq = a->head_seq + 1;
    memcpy(e.prev_hash, a->head_hash, sizeof e.prev_hash);
    if ((st = auditfmt_event(&t->line, hash, &e)) != ST_OK) {
        pthread_mutex_unlock(&a->chain_mu);
        sbuf_free(&t->line);
        return st;
    }
    row_from(&t->row, &e, hash, t->line.p);
    t->held = true;
    return ST_OK;
}

void
audit_txn_end(struct audit_txn *t, bool committed)
{
    if (!t->held)
        return;
    if (committed) {
        t->a->head_seq = t->row.seq;
        memcpy(t->a->head_hash, t->row.hash, sizeof t->a->head_hash);
    }
    t->held = false;
    pthread_mutex_unlock(&t->a->chain_mu);
    sbuf_free(&t->line);
}
