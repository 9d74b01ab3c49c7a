/* SPDX-License-Identifier: Apache-2.0 */
/* server/certs_check.c -- keeping the certificate inventory current: the janitor's duty reads
 * files, directories, uploaded PEM and the listeners' served chains; the prober thread probes
 * endpoints (each wait bounded by --cert-probe-timeout, so a dead endpoint is an error, never a
 * hang of anything else). A certificate new at a slot is recorded; a changed fingerprint is a
 * rotation, recorded with its audit event (op cert.rotation, method SYSTEM) in one transaction,
 * logged and counted. A failed read keeps what was found before and says why. Also the
 * module's metrics. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/xmem.h"
#include "server/audit/audit.h"
#include "server/certs_priv.h"
#include "server/obs/metrics.h"

/* A source's spec copied out of the state, so it is read without the lock. */
struct job {
    struct cert_spec spec;
    certs_served_fn served;
    void *served_arg;
};

static void
job_take(struct job *j, const struct csrc *s)
{
    j->spec = s->spec;
    j->spec.pem = s->spec.pem != NULL ? xstrdup(s->spec.pem) : NULL;
    j->served = s->served;
    j->served_arg = s->served_arg;
}

/* --- recording what was seen --- */

static struct audit_rec *
rotation_rec(const char *id)
{
    struct audit_rec *rec = audit_rec_new();
    rec->op = "cert.rotation";
    snprintf(rec->method, sizeof rec->method, "SYSTEM");
    rec->route = "janitor";
    rec->status = 200;
    snprintf(rec->cert_id, sizeof rec->cert_id, "%s", id);
    return rec;
}

/* A certificate new at its slot: one history row; a rotation's row commits with its event. */
static enum status
record(struct certs *c, const char *id, const struct cert_entry *e, bool rotation,
       const char *old_fp, int64_t now)
{
    struct store_cert_seen row = {.not_before = e->info.not_before,
                                  .not_after = e->info.not_after,
                                  .seen_at = now,
                                  .rotation = rotation};
    struct audit_txn txn = {0};
    const struct store_audit_row *ev = NULL;
    enum status st = ST_OK;

    snprintf(row.source_id, sizeof row.source_id, "%s", id);
    snprintf(row.slot, sizeof row.slot, "%s", e->slot);
    snprintf(row.fingerprint, sizeof row.fingerprint, "%s", e->info.fingerprint);
    snprintf(row.subject, sizeof row.subject, "%s", e->info.subject);
    snprintf(row.issuer, sizeof row.issuer, "%s", e->info.issuer);
    snprintf(row.serial, sizeof row.serial, "%s", e->info.serial);
    if (rotation && c->audit != NULL) {
        /* Lock order as in request handlers: the audit chain, then this module's writes. */
        struct audit_rec *rec = rotation_rec(id);
        st = audit_txn_begin(c->audit, &txn, rec);
        free(rec);
        ev = st == ST_OK ? &txn.row : &store_audit_refused;
    }
    pthread_mutex_lock(&c->wmu);
    pthread_mutex_lock(&c->mu);
    bool exists = certs__find(c, id) != NULL; /* not deleted meanwhile */
    pthread_mutex_unlock(&c->mu);
    st = exists ? store_cert_seen_add(c->store, &row, ev) : ST_NOT_FOUND;
    pthread_mutex_unlock(&c->wmu);
    audit_txn_end(&txn, st == ST_OK);
    if (st == ST_OK && rotation) {
        char na[32];
        clock_rfc3339(na, e->info.not_after);
        log_msg(LOG_INFO, "cert_rotated", "source", id, "slot", e->slot, "from", old_fp, "to",
                e->info.fingerprint, "serial", e->info.serial, "not_after", na, LOG_END);
    } else if (st != ST_OK && st != ST_NOT_FOUND) {
        log_msg(LOG_ERROR, "cert_history_not_recorded", "source", id, "slot", e->slot, "status",
                status_name(st), "detail", "retried at the next check", LOG_END);
    }
    return st;
}

/* What is new in r compared with what was last seen at each slot (mu held). */
struct news {
    size_t n;
    size_t *idx;
    bool *rotation, *done;
    char (*old)[STORE_CERT_FP_MAX];
};

static void
news_find(struct certs *c, const char *id, const struct cert_read *r, struct news *nw)
{
    memset(nw, 0, sizeof *nw);
    nw->idx = xcalloc(r->n + 1, sizeof *nw->idx);
    nw->rotation = xcalloc(r->n + 1, sizeof *nw->rotation);
    nw->done = xcalloc(r->n + 1, sizeof *nw->done);
    nw->old = xcalloc(r->n + 1, sizeof *nw->old);
    for (size_t i = 0; i < r->n; i++) {
        const struct cert_entry *e = &r->v[i];
        const struct cknown *k = e->has_cert ? certs__known(c, id, e->slot) : NULL;
        if (!e->has_cert || (k != NULL && strcmp(k->fingerprint, e->info.fingerprint) == 0))
            continue;
        nw->idx[nw->n] = i;
        nw->rotation[nw->n] = k != NULL;
        snprintf(nw->old[nw->n], STORE_CERT_FP_MAX, "%s", k != NULL ? k->fingerprint : "");
        nw->n++;
    }
}

static void
news_free(struct news *nw)
{
    free(nw->idx);
    free(nw->rotation);
    free(nw->done);
    free(nw->old);
}

/* Log a change of a source's error (once per change, not per check). */
static void
error_changed(const char *id, const char *before, const char *now_err)
{
    if (strcmp(before, now_err) == 0)
        return;
    if (now_err[0] != '\0')
        log_msg(LOG_WARN, "cert_source_error", "source", id, "detail", now_err, LOG_END);
    else
        log_msg(LOG_INFO, "cert_source_ok", "source", id, LOG_END);
}

/* Install a read: record what is new, then make it the source's last read. Takes r. */
static void
install(struct certs *c, const char *id, struct cert_read *r, int64_t now)
{
    struct news nw;

    /* Two reads of one source (the janitor's and a refresh) install one after the other, so
     * the second finds the first's certificates known: each is recorded once. */
    pthread_mutex_lock(&c->imu);
    pthread_mutex_lock(&c->mu);
    news_find(c, id, r, &nw);
    pthread_mutex_unlock(&c->mu);
    for (size_t i = 0; i < nw.n; i++)
        nw.done[i] = record(c, id, &r->v[nw.idx[i]], nw.rotation[i], nw.old[i], now) == ST_OK;
    pthread_mutex_lock(&c->mu);
    struct csrc *s = certs__find(c, id);
    for (size_t i = 0; s != NULL && i < nw.n; i++) {
        const struct cert_entry *e = &r->v[nw.idx[i]];
        if (!nw.done[i])
            continue; /* not recorded: found new again next time */
        certs__remember(c, id, e->slot, e->info.fingerprint, now, nw.rotation[i]);
        s->rotations += nw.rotation[i];
    }
    if (s != NULL) {
        error_changed(id, s->last.error, r->error);
        s->checked_at = now;
        if (r->error[0] != '\0')
            s->read_errors++;
        else
            s->ok_at = now;
        if (r->n == 0 && r->error[0] != '\0') {
            snprintf(s->last.error, sizeof s->last.error, "%s", r->error); /* keep the rest */
        } else {
            cert_read_free(&s->last);
            s->last = *r;
            memset(r, 0, sizeof *r);
        }
    }
    pthread_mutex_unlock(&c->mu);
    pthread_mutex_unlock(&c->imu);
    cert_read_free(r);
    news_free(&nw);
}

/* --- reading and probing --- */

static void
run_job(struct certs *c, struct job *j, int64_t now)
{
    struct cert_read r = {0};
    char *pem = NULL;
    size_t len = 0;

    if (j->spec.kind == CERT_LISTENER) {
        char refused[CERTS_ERROR_MAX] = "";
        j->served(j->served_arg, &pem, &len, refused);
        if (pem == NULL)
            snprintf(r.error, sizeof r.error, "the listener serves no certificate");
        else if (certs_read_text(&r, "", (const uint8_t *)pem, len, true, c->trust, NULL) != ST_OK)
            log_msg(LOG_ERROR, "cert_listener_unparsed", "source", j->spec.id, LOG_END);
        if (refused[0] != '\0') /* the served pair stays listed, with why the new one was not */
            snprintf(r.error, sizeof r.error, "%s", refused);
    } else if (j->spec.kind == CERT_ENDPOINT) {
        char err[CERTS_ERROR_MAX];
        if (certs_probe(j->spec.target, j->spec.server_name, c->set.probe_timeout, &pem, &len, err,
                        sizeof err) != ST_OK)
            certs__say(r.error, sizeof r.error, "%s: %s", j->spec.target, err);
        else if (certs_read_text(&r, "", (const uint8_t *)pem, len, true, c->trust, NULL) != ST_OK)
            certs__say(r.error, sizeof r.error, "%s: the certificates presented do not parse",
                       j->spec.target);
    } else {
        certs_read_source(&r, &j->spec, c->trust);
    }
    free(pem);
    install(c, j->spec.id, &r, now);
    cert_spec_free(&j->spec);
}

/* Copy the jobs of the sources endpoints (true) or the others (false). */
static struct job *
jobs_take(struct certs *c, bool endpoints, const char *only, size_t *n)
{
    pthread_mutex_lock(&c->mu);
    struct job *v = xcalloc(c->n + 1, sizeof *v);
    *n = 0;
    for (size_t i = 0; i < c->n; i++) {
        const struct csrc *s = c->v[i];
        if ((s->spec.kind == CERT_ENDPOINT) == endpoints &&
            (only == NULL || strcmp(s->spec.id, only) == 0))
            job_take(&v[(*n)++], s);
    }
    pthread_mutex_unlock(&c->mu);
    return v;
}

static void
prober_kick(struct certs *c)
{
    pthread_mutex_lock(&c->mu);
    c->rounds_asked++;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

static void *
prober_main(void *arg)
{
    struct certs *c = arg;

    pthread_mutex_lock(&c->mu);
    while (!c->stop) {
        if (c->rounds_done >= c->rounds_asked) {
            pthread_cond_wait(&c->cv, &c->mu);
            continue;
        }
        uint64_t round = c->rounds_asked;
        pthread_mutex_unlock(&c->mu);
        size_t n = 0;
        struct job *jobs = jobs_take(c, true, NULL, &n);
        for (size_t i = 0; i < n; i++) {
            if (!c->stop)
                run_job(c, &jobs[i], clock_now_s());
            else
                cert_spec_free(&jobs[i].spec);
        }
        free(jobs);
        pthread_mutex_lock(&c->mu);
        c->rounds_done = round;
        pthread_cond_broadcast(&c->done_cv);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

enum status
certs__prober_start(struct certs *c)
{
    if (pthread_create(&c->prober, NULL, prober_main, c) != 0)
        return ST_INTERNAL;
    c->prober_started = true;
    return ST_OK;
}

void
certs__prober_stop(struct certs *c)
{
    if (!c->prober_started)
        return;
    pthread_mutex_lock(&c->mu);
    c->stop = true;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->prober, NULL);
    c->prober_started = false;
}

void
certs__check_one(struct certs *c, const char *id, int64_t now)
{
    size_t n = 0;
    struct job *jobs = jobs_take(c, false, id, &n);

    for (size_t i = 0; i < n; i++)
        run_job(c, &jobs[i], now);
    free(jobs);
    if (n == 0)
        prober_kick(c); /* an endpoint */
}

void
certs_refresh(struct certs *c, const char *id)
{
    certs__check_one(c, id, clock_now_s());
}

void
certs_janitor(void *arg, int64_t now_ms)
{
    struct certs *c = arg;
    size_t n = 0;
    struct job *jobs = jobs_take(c, false, NULL, &n);

    for (size_t i = 0; i < n; i++)
        run_job(c, &jobs[i], now_ms / 1000);
    free(jobs);
    prober_kick(c);
}

void
certs_check_all(struct certs *c, int64_t now)
{
    certs_janitor(c, now * 1000);
    pthread_mutex_lock(&c->mu);
    uint64_t want = c->rounds_asked;
    while (c->rounds_done < want && !c->stop)
        pthread_cond_wait(&c->done_cv, &c->mu);
    pthread_mutex_unlock(&c->mu);
}
