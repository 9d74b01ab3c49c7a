/* SPDX-License-Identifier: Apache-2.0 */
/* server/audit/writer.c -- the audit writer: one thread turns queued records into chained event lines
 * and commits many in one transaction (one fsync), then releases the waiting requests. Also
 * checkpoints, export, retention. Holds the audit keys in guarded memory; never logs values. */
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

#include "common/clock.h"
#include "common/json/jsonx.h"
#include "common/log.h"
#include "common/xmem.h"
#include "crypto/b64.h"
#include "crypto/mac.h"
#include "crypto/sign.h"
#include "server/audit/audit.h"
#include "server/audit/priv.h"
#include "server/obs/metrics.h"
#include "server/sealed.h"
#include "server/svckey.h"

#define MAX_GROUP 4096

/* --- keys --- */

enum status
audit_keys_ensure(struct store *st, const struct rootkey *rk)
{
    struct store_svckey row;
    uint8_t pk[SIGN_PK_BYTES];
    struct secret *key = NULL;
    enum status s = ST_OK;

    if (store_svckey_get(st, AUDIT_SVC_SIGN, &row) == ST_NOT_FOUND) {
        sign_keypair(&key, pk);
        s = svckey_put(st, rk, AUDIT_SVC_SIGN, secret_ro(key), secret_len(key));
        secret_free(key);
        key = NULL;
    }
    if (s == ST_OK && store_svckey_get(st, AUDIT_SVC_HMAC, &row) == ST_NOT_FOUND) {
        key = secret_new(AUDIT_HMAC_KEY_BYTES);
        randombytes_buf(secret_rw(key), AUDIT_HMAC_KEY_BYTES);
        s = svckey_put(st, rk, AUDIT_SVC_HMAC, secret_ro(key), AUDIT_HMAC_KEY_BYTES);
        secret_free(key);
    }
    return s;
}

static enum status
load_keys(struct audit *a, const struct rootkey *rk)
{
    enum status s;

    if ((s = svckey_load(a->store, rk, AUDIT_SVC_SIGN, &a->sign_sk, &a->key_created_at, NULL, 0)) !=
            ST_OK ||
        (s = svckey_load(a->store, rk, AUDIT_SVC_HMAC, &a->hmac_key, NULL, NULL, 0)) != ST_OK)
        return s;
    if (secret_len(a->sign_sk) != SIGN_SK_BYTES || secret_len(a->hmac_key) != AUDIT_HMAC_KEY_BYTES)
        return ST_INTEGRITY;
    sign_public_key(a->sign_pk, a->sign_sk);
    auditfmt_key_id(a->sign_key_id, a->sign_pk);
    /* The HMAC key's id reveals nothing about it: a keyed digest of a fixed label. */
    mac_key_id(a->hmac_key_id, a->hmac_key, "difyguard/audit-hmac-id");
    return ST_OK;
}

void
audit_hmac_hex(const struct audit *a, char out[static AUDIT_HEX], const char *value, size_t len)
{
    mac_hex(out, a->hmac_key, value, len);
}

const char *
audit_hmac_key_id(const struct audit *a)
{
    return a->hmac_key_id;
}

size_t
audit_backlog(struct audit *a)
{
    return atomic_load(&a->q_len);
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

void
audit_status(const struct audit *a, struct audit_status *out)
{
    memset(out, 0, sizeof *out);
    out->durable = a->set.durable;
    out->write_failures = atomic_load(&a->failures);
    out->unverified_chains = atomic_load(&a->unverified);
    out->retention = a->set.retention;
    out->verified_at_ms = atomic_load(&a->verified_at_ms);
    out->verified_ok = atomic_load(&a->verified_ok);
}

/* Retired signing keys: the sealed meta "audit_retired_keys" holds
 * "key_id:base64pk:created:retired;...". A list that fails its seal is not used (and logged):
 * verification then accepts only the current key, so nothing injected is ever trusted. */
#define RETIRED_MAX 4096
#define META_RETIRED "audit_retired_keys"

static size_t
retired_keys(const struct audit *a, char out[RETIRED_MAX])
{
    enum status st = sealed_get(a->store, a->mac_key, META_RETIRED, out, RETIRED_MAX);
    if (st != ST_OK) {
        if (st != ST_NOT_FOUND)
            log_msg(LOG_ERROR, "audit_meta_integrity_failure", "key", META_RETIRED, "detail",
                    "the retired audit keys fail their seal; ignoring them", LOG_END);
        out[0] = '\0';
    }
    size_t n = 0;
    for (const char *p = out; *p != '\0'; p++)
        n += *p == ';';
    return n;
}

/* A retired-key list stored before seals existed is sealed once, at the first start of a
 * version that seals (trusted on that first use, and logged). */
static enum status
retired_upgrade(struct audit *a)
{
    char list[RETIRED_MAX];

    if (a->set.own_chain ||
        sealed_get(a->store, a->mac_key, META_RETIRED, list, sizeof list) != ST_INVALID)
        return ST_OK;
    log_msg(LOG_WARN, "audit_meta_sealed", "key", META_RETIRED, "detail",
            "sealing the retired audit keys stored before seals existed", LOG_END);
    return sealed_put(a->store, a->mac_key, META_RETIRED, list);
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
        clock_rfc3339(created, c);
        sbuf_addf(b,
                  ",{\"key_id\":\"%s\",\"public_key\":\"%s\",\"algorithm\":\"ed25519\","
                  "\"created_at\":\"%s\",\"active\":false}",
                  id, pk, created);
    }
}

char *
audit_public_keys_json(const struct audit *a)
{
    char pk[64], created[32];
    clock_rfc3339(created, a->key_created_at);
    b64_std_encode(pk, sizeof pk, a->sign_pk, sizeof a->sign_pk);
    struct sbuf b = {0};
    sbuf_addf(&b,
              "{\"keys\":[{\"key_id\":\"%s\",\"public_key\":\"%s\",\"algorithm\":"
              "\"ed25519\",\"created_at\":\"%s\",\"active\":true}",
              a->sign_key_id, pk, created);
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
        if (c2 != NULL &&
            auditfmt_parse_public_key((*out)[n], c1 + 1, (size_t)(c2 - c1 - 1)) == ST_OK)
            n++;
    }
    return n;
}

/* --- checkpoints --- */

enum status
audit__sign_line(struct audit *a, struct sbuf *line, const char *chain_id, const char *kind,
                 uint64_t seq, const uint8_t *hash, int64_t t_ms)
{
    struct audit_signer signer;
    struct audit_checkpoint cp = {.chain_id = chain_id, .seq = seq, .time_ms = t_ms, .kind = kind};

    memcpy(cp.hash, hash, AUDIT_HASH_BYTES);
    snprintf(signer.key_id, sizeof signer.key_id, "%s", a->sign_key_id);
    signer.sk = a->sign_sk;
    return auditfmt_checkpoint(line, &cp, &signer, 1);
}

enum status
audit__checkpoint_locked(struct audit *a, const char *kind, uint64_t seq, const uint8_t *hash,
                         int64_t t_ms, struct sbuf *line_out)
{
    struct sbuf line = {0};
    enum status st = audit__sign_line(a, &line, a->chain_id, kind, seq, hash, t_ms);

    if (st == ST_OK)
        st = store_audit_checkpoint_add(a->store, a->chain_id, seq, kind, t_ms, line.p);
    /* Two exports of one head in the same millisecond: the first stored its checkpoint (the
     * same line: Ed25519 signatures are deterministic); this export hands out its own copy. */
    if (st == ST_CONFLICT && strcmp(kind, "export") == 0)
        st = ST_OK;
    if (st == ST_OK && line_out != NULL)
        sbuf_add(line_out, line.p, line.len);
    if (st == ST_OK && strcmp(kind, "anchor") != 0) {
        a->checkpoint_seq = seq;
        a->checkpoint_at_ms = t_ms;
        atomic_store(&a->checkpoint_ms, t_ms);
    }
    sbuf_free(&line);
    return st;
}

static void
maybe_checkpoint(struct audit *a, int64_t t_ms)
{
    pthread_mutex_lock(&a->chain_mu);
    if (a->head_seq != a->checkpoint_seq &&
        t_ms - a->checkpoint_at_ms >= a->set.checkpoint_interval * 1000 &&
        audit__checkpoint_locked(a, "periodic", a->head_seq, a->head_hash, t_ms, NULL) != ST_OK)
        log_msg(LOG_ERROR, "audit_checkpoint_failed", "chain_id", a->chain_id, LOG_END);
    pthread_mutex_unlock(&a->chain_mu);
}

void
audit_janitor(void *arg, int64_t t_ms)
{
    struct audit *a = arg;
    maybe_checkpoint(a, t_ms);
    audit__retention_run(a, t_ms);
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
    e->outcome = r->status < 400                                            ? "ok"
                 : r->status == 401 || r->status == 403 || r->status == 429 ? "denied"
                 : r->status >= 500                                         ? "error"
                                                                            : "invalid";
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
    e->cert_id = r->cert_id[0] ? r->cert_id : none;
    e->client_cert = r->client_cert[0] ? r->client_cert : none;
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

/* The event line of one record at the chain head (e gets the event). A record whose fields the
 * format refuses (the pipeline's sanitising should make that impossible) is written as a minimal
 * "unrecordable" event instead, so one request never fails the others of its group. */
static enum status
event_line(struct audit *a, const struct audit_rec *r, struct audit_event *e, struct sbuf *line,
           uint8_t hash[static AUDIT_HASH_BYTES])
{
    const char **ctx = hmac_list(r->h_context, r->n_h_context);
    const char **ref = hmac_list(r->h_reference, r->n_h_reference);
    enum status st;

    fill_event(e, a, r);
    e->seq = a->head_seq + 1;
    memcpy(e->prev_hash, a->head_hash, sizeof e->prev_hash);
    e->h_context = ctx;
    e->n_h_context = r->n_h_context;
    e->h_reference = ref;
    e->n_h_reference = r->n_h_reference;
    if ((st = auditfmt_event(line, hash, e)) != ST_OK) {
        log_msg(LOG_ERROR, "audit_record_unrecordable", "chain_id", a->chain_id, "detail",
                "a request's event could not be formatted; recorded minimally", LOG_END);
        struct audit_event m = {.chain_id = e->chain_id,
                                .seq = e->seq,
                                .time_ms = e->time_ms,
                                .op = "unrecordable",
                                .status = e->status,
                                .outcome = e->outcome,
                                .latency_us = e->latency_us,
                                .count = e->count,
                                .hmac_key_id = e->hmac_key_id};
        memcpy(m.prev_hash, e->prev_hash, sizeof m.prev_hash);
        *e = m;
        st = auditfmt_event(line, hash, e);
    }
    free(ctx);
    free(ref);
    return st;
}

/* After a failed group commit whose outcome is unknown (the database went away around COMMIT):
 * this node alone writes its chain, so the head the store holds is the truth. A group that did
 * commit is adopted (its requests were answered 503: the trail holds events of requests that
 * were not acknowledged, never the reverse). Called with chain_mu held. */
static enum status
head_resync(struct audit *a)
{
    uint8_t hash[AUDIT_HASH_BYTES];
    uint64_t seq = 0;
    enum status st = store_audit_head(a->store, a->chain_id, &seq, hash);

    if (st == ST_NOT_FOUND)
        st = ST_OK;
    if (st != ST_OK)
        return ST_UNAVAILABLE;
    if (seq > a->head_seq) {
        char n[24];
        snprintf(n, sizeof n, "%llu", (unsigned long long)(seq - a->head_seq));
        log_msg(LOG_WARN, "audit_head_resynced", "chain_id", a->chain_id, "#events", n, "detail",
                "a group commit reported as failed had committed", LOG_END);
        a->head_seq = seq;
        memcpy(a->head_hash, hash, sizeof hash);
    }
    a->head_unsure = false;
    return ST_OK;
}

/* Chain, write and commit one group. Each record's result is set: ST_OK when its event is
 * committed, else the failure (the store's, for all of them). */
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
    if (a->head_unsure && (st = head_resync(a)) != ST_OK) {
        pthread_mutex_unlock(&a->chain_mu);
        for (struct audit_rec *r = list; r != NULL; r = r->next)
            r->result = st;
        free(g.rows);
        free(g.lines);
        free(g.usage);
        return st;
    }
    uint64_t seq0 = a->head_seq;
    uint8_t hash0[AUDIT_HASH_BYTES];
    memcpy(hash0, a->head_hash, sizeof hash0);
    for (struct audit_rec *r = list; r != NULL; r = r->next) {
        if ((r->result = event_line(a, r, &e, &g.lines[g.n], hash)) != ST_OK)
            continue; /* this record alone fails; the chain skips it */
        row_from(&g.rows[g.n], &e, hash, g.lines[g.n].p);
        usage_add(&g, &g.rows[g.n], (int64_t)e.count);
        g.n++;
        a->head_seq = e.seq;
        memcpy(a->head_hash, hash, sizeof hash);
    }
    if (g.n > 0) {
        audit__head_seal(a, &g.rows[g.n - 1]);
        st = store_audit_append(a->store, g.rows, g.n, g.usage, g.nu);
    }
    if (st != ST_OK) {
        /* Nothing was written: the chain stays where it was. A conflict means another writer
         * appended to this node's chain (the serve lock prevents a second server): never
         * follow it, every group fails until an operator looks. */
        a->head_seq = seq0;
        memcpy(a->head_hash, hash0, sizeof hash0);
        if (st == ST_UNAVAILABLE)
            a->head_unsure = true;
        if (st == ST_CONFLICT)
            log_msg(LOG_ERROR, "audit_chain_conflict", "chain_id", a->chain_id, "detail",
                    "another writer appended to this node's chain", LOG_END);
        for (struct audit_rec *r = list; r != NULL; r = r->next)
            r->result = st;
    }
    pthread_mutex_unlock(&a->chain_mu);
    for (size_t i = 0; i < g.n; i++)
        sbuf_free(&g.lines[i]);
    free(g.rows);
    free(g.lines);
    free(g.usage);
    return st;
}

void
audit__rec_free(struct audit_rec *r)
{
    free(r->h_context);
    free(r->h_reference);
    free(r);
}

enum status
audit__commit_one(struct audit *a, struct audit_rec *rec)
{
    rec->next = NULL;
    enum status st = commit_group(a, rec, 1);
    if (st == ST_OK)
        st = rec->result;
    audit__rec_free(rec);
    return st;
}

struct audit_rec *
audit_rec_new(void)
{
    struct audit_rec *r = xcalloc(1, sizeof *r);
    r->time_ms = clock_now_ms();
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
    atomic_fetch_add(&a->q_len, 1);
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
    atomic_fetch_sub(&a->q_len, k);
    *n = k;
    return list;
}

static void
process(struct audit *a, struct audit_rec *list, size_t n)
{
    if (list == NULL)
        return;
    int64_t t0 = clock_mono_ns();
    enum status st = commit_group(a, list, n);
    audit__stats_commit(a, n, clock_mono_ns() - t0);
    if (st != ST_OK)
        log_msg(LOG_ERROR, "audit_write_failed", "chain_id", a->chain_id, "error", status_name(st),
                "detail", "the audit sink could not commit; requests answered 503", LOG_END);
    struct audit_rec *last = list;
    for (struct audit_rec *r = list; r != NULL; r = r->next) {
        if (r->result != ST_OK)
            atomic_fetch_add(&a->failures, 1);
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
            audit__rec_free(r);
        }
        if (stop)
            return NULL;
        pthread_mutex_lock(&a->rel_mu);
    }
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
            until.tv_nsec += 250 * 1000000L; /* floods are flushed within ~1.25 s */
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
        list = audit__fold(a, list, &n);
        list = audit__floods_due(a, list, &n, stop);
        process(a, list, n);
        if (stop)
            return NULL;
        pthread_mutex_lock(&a->q_mu);
    }
}

/* --- open, close, export --- */

enum status
audit_open(struct audit **out, struct store *st, const struct rootkey *rk,
           const struct secret *mac_key, const struct audit_settings *set, char *err,
           size_t err_len)
{
    struct audit *a = xcalloc(1, sizeof *a);
    enum status s;

    *out = NULL;
    a->store = st;
    a->rk = rk;
    a->mac_key = mac_key;
    a->set = *set;
    if (a->set.checkpoint_interval <= 0)
        a->set.checkpoint_interval = 60;
    pthread_mutex_init(&a->chain_mu, NULL);
    pthread_mutex_init(&a->q_mu, NULL);
    pthread_cond_init(&a->q_cv, NULL);
    pthread_mutex_init(&a->rel_mu, NULL);
    pthread_cond_init(&a->rel_cv, NULL);
    audit__stats_init(a);
    if ((s = audit_keys_ensure(st, rk)) != ST_OK || (s = load_keys(a, rk)) != ST_OK) {
        snprintf(err, err_len, "cannot load the audit keys (root key %s)", rootkey_id(rk));
        goto fail;
    }
    if ((s = retired_upgrade(a)) != ST_OK) {
        snprintf(err, err_len, "cannot seal the retired audit keys");
        goto fail;
    }
    if ((s = audit__chain_open(a, err, err_len)) != ST_OK)
        goto fail;
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
            audit__checkpoint_locked(a, "periodic", a->head_seq, a->head_hash, clock_now_ms(),
                                     NULL) != ST_OK)
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
    audit__floods_free(a);
    audit__stats_fini(a);
    free(a);
}

/* A new signing key: a key_change checkpoint at the head signed by the old and the new key, the
 * new key stored (wrapped by the root key) and the old public key kept for verification. */
enum status
audit_rotate_key(struct audit *a, char new_id[static AUDIT_KEY_ID_CHARS + 1])
{
    uint8_t pk[AUDIT_PK_BYTES];
    struct secret *sk = NULL;
    struct audit_signer signers[2] = {0};
    struct sbuf line = {0};
    char list[RETIRED_MAX], old_pk[64], entry[160];
    int64_t t = clock_now_ms();
    enum status st;

    sign_keypair(&sk, pk);
    auditfmt_key_id(new_id, pk);
    snprintf(signers[0].key_id, sizeof signers[0].key_id, "%s", a->sign_key_id);
    signers[0].sk = a->sign_sk;
    snprintf(signers[1].key_id, sizeof signers[1].key_id, "%s", new_id);
    signers[1].sk = sk;
    pthread_mutex_lock(&a->chain_mu);
    struct audit_checkpoint cp = {.chain_id = a->chain_id,
                                  .seq = a->head_seq,
                                  .time_ms = t,
                                  .kind = "key_change",
                                  .new_key_id = new_id,
                                  .new_public_key = pk};
    memcpy(cp.hash, a->head_hash, sizeof cp.hash);
    retired_keys(a, list);
    b64_std_encode(old_pk, sizeof old_pk, a->sign_pk, sizeof a->sign_pk);
    snprintf(entry, sizeof entry, "%s:%s:%lld:%lld;", a->sign_key_id, old_pk,
             (long long)a->key_created_at, (long long)(t / 1000));
    if (strlen(list) + strlen(entry) >= sizeof list) {
        st = ST_CONFLICT; /* too many retired keys kept: refuse, say why */
        goto out;
    }
    strcat(list, entry);
    if ((st = auditfmt_checkpoint(&line, &cp, signers, 2)) != ST_OK ||
        (st = sealed_put(a->store, a->mac_key, META_RETIRED, list)) != ST_OK ||
        (st = svckey_put(a->store, a->rk, AUDIT_SVC_SIGN, secret_ro(sk), AUDIT_SK_BYTES)) !=
            ST_OK ||
        (st = store_audit_checkpoint_add(a->store, a->chain_id, cp.seq, "key_change", t, line.p)) !=
            ST_OK)
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
    if ((st = event_line(a, rec, &e, &t->line, hash)) != ST_OK) {
        pthread_mutex_unlock(&a->chain_mu);
        sbuf_free(&t->line);
        return st;
    }
    row_from(&t->row, &e, hash, t->line.p);
    audit__head_seal(a, &t->row);
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
