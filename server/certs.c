/* SPDX-License-Identifier: Apache-2.0 */
/* server/certs.c -- the certificate inventory's state (see certs.h): sources of every origin,
 * what the last read of each found, the certificate last seen at each slot; the API's changes,
 * views and the inventory snapshot. Reading, probing and recording rotations are in
 * certs_check.c. Locks: imu (one install of a read at a time) before the audit chain (an admin
 * request's event, or a rotation's) before wmu (this module's database writes) before mu (the
 * state, held only for memory work). A request holding its event never reads a source (so
 * never takes imu): the handler refreshes a new source after its event is released. */
#include "server/certs.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/names.h"
#include "common/xmem.h"
#include "server/certs_priv.h"

static const char *const kind_names[] = {"file", "dir", "pem", "endpoint", "listener"};
static const char *const origin_names[] = {"api", "config", "listener"};
static const char *const status_names[CERT__STATUS_COUNT] = {"ok",      "warning",       "critical",
                                                             "expired", "not_yet_valid", "error"};
static const char *const weak_names[CERT__WEAK_COUNT] = {
    "rsa_lt_2048",        "ec_lt_p256", "sha1_signature",  "md5_signature",
    "validity_over_398d", "no_san",     "self_signed_leaf"};

const char *
cert_kind_name(enum cert_kind k)
{
    return (unsigned)k < 5 ? kind_names[k] : "unknown";
}

const char *
cert_origin_name(enum cert_origin o)
{
    return (unsigned)o < 3 ? origin_names[o] : "unknown";
}

const char *
cert_status_name(enum cert_status s)
{
    return (unsigned)s < CERT__STATUS_COUNT ? status_names[s] : "unknown";
}

const char *
cert_weak_name(uint32_t bit)
{
    for (unsigned i = 0; i < CERT__WEAK_COUNT; i++) {
        if (bit == 1u << i)
            return weak_names[i];
    }
    return "unknown";
}

void
cert_spec_free(struct cert_spec *s)
{
    if (s == NULL)
        return;
    free(s->pem);
    s->pem = NULL;
}

void
cert_spec_default_id(struct cert_spec *s)
{
    uint8_t r[4];

    if (s->id[0] != '\0')
        return;
    randombytes_buf(r, sizeof r);
    snprintf(s->id, sizeof s->id, "cert-%02x%02x%02x%02x", r[0], r[1], r[2], r[3]);
}

/* --- the spec's rules --- */

static bool
host_port_ok(const char *t)
{
    const char *colon = t[0] == '[' ? strstr(t, "]:") : strrchr(t, ':');
    size_t host = colon != NULL ? (size_t)(colon - t) : 0;

    if (colon == NULL || host == 0 || host > 255 || (t[0] == '[' && host < 3))
        return false;
    const char *port = colon + (t[0] == '[' ? 2 : 1);
    size_t n = strlen(port);
    if (n == 0 || n > 5 || strspn(port, "0123456789") != n || atol(port) < 1 || atol(port) > 65535)
        return false;
    for (size_t i = t[0] == '['; i < host - (t[0] == '['); i++) {
        if (strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:_", t[i]) ==
            NULL)
            return false;
    }
    return true;
}

static bool
sni_ok(const char *s)
{
    size_t n = strlen(s);
    return n <= 253 &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") == n;
}

static bool
path_ok(const char *p)
{
    for (const char *c = p; *c != '\0'; c++) {
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            return false;
    }
    return p[0] == '/' && strlen(p) < STORE_CERT_TARGET_MAX;
}

enum status
cert_spec_check(const struct cert_spec *s, const char **msg)
{
    if (s->id[0] != '\0' && !names_valid(s->id)) {
        *msg = "id must match [a-z0-9][a-z0-9._-]{0,62}";
        return ST_INVALID;
    }
    if (strncmp(s->id, "listener-", 9) == 0) {
        *msg = "ids starting listener- name the service's own listeners";
        return ST_INVALID;
    }
    if (s->warning < 0 || s->critical < 0 || s->renew_before < 0 ||
        (s->warning > 0 && s->critical > s->warning)) {
        *msg = "warning, critical and renew_before are durations; critical at most warning";
        return ST_INVALID;
    }
    switch (s->kind) {
    case CERT_FILE:
    case CERT_DIR:
        if (!path_ok(s->target)) {
            *msg = "path must be an absolute path (no control characters, under 1024 bytes)";
            return ST_INVALID;
        }
        break;
    case CERT_ENDPOINT:
        if (!host_port_ok(s->target) || !sni_ok(s->server_name)) {
            *msg = "endpoint must be host:port or [v6]:port, server_name a DNS name";
            return ST_INVALID;
        }
        break;
    case CERT_PEM: {
        struct cert_set *set = NULL;
        char err[128];
        size_t len = s->pem != NULL ? strlen(s->pem) : 0;
        if (len == 0 || len > STORE_CERT_PEM_MAX ||
            cert_set_parse(&set, (const uint8_t *)s->pem, len, err, sizeof err) != ST_OK) {
            *msg = "pem must hold at least one PEM certificate (at most 1 MiB)";
            return ST_INVALID;
        }
        cert_set_free(set);
        break;
    }
    default:
        *msg = "kind must be file, dir, pem or endpoint";
        return ST_INVALID;
    }
    return ST_OK;
}

/* --- state --- */

struct csrc *
certs__find(struct certs *c, const char *id)
{
    for (size_t i = 0; i < c->n; i++) {
        if (strcmp(c->v[i]->spec.id, id) == 0)
            return c->v[i];
    }
    return NULL;
}

struct cknown *
certs__known(struct certs *c, const char *source, const char *slot)
{
    for (size_t i = 0; i < c->n_known; i++) {
        if (strcmp(c->known[i].source_id, source) == 0 && strcmp(c->known[i].slot, slot) == 0)
            return &c->known[i];
    }
    return NULL;
}

void
certs__remember(struct certs *c, const char *source, const char *slot, const char *fp,
                int64_t seen_at, bool rotation)
{
    struct cknown *k = certs__known(c, source, slot);

    if (k == NULL) {
        c->known = xrealloc(c->known, (c->n_known + 1) * sizeof *c->known);
        k = &c->known[c->n_known++];
        memset(k, 0, sizeof *k);
        snprintf(k->source_id, sizeof k->source_id, "%s", source);
        snprintf(k->slot, sizeof k->slot, "%s", slot);
    }
    snprintf(k->fingerprint, sizeof k->fingerprint, "%s", fp);
    k->first_seen = seen_at;
    k->rotated_at = rotation ? seen_at : 0;
}

static void
forget_source(struct certs *c, const char *id)
{
    size_t w = 0;
    for (size_t i = 0; i < c->n_known; i++) {
        if (strcmp(c->known[i].source_id, id) != 0)
            c->known[w++] = c->known[i];
    }
    c->n_known = w;
}

static void
src_free(struct csrc *s)
{
    if (s == NULL)
        return;
    cert_spec_free(&s->spec);
    cert_read_free(&s->last);
    free(s);
}

/* Add a source (with mu held); takes spec's pem. */
static struct csrc *
src_add(struct certs *c, struct cert_spec *spec, enum cert_origin origin, int64_t created_at)
{
    struct csrc *s = xcalloc(1, sizeof *s);

    s->spec = *spec;
    spec->pem = NULL;
    s->origin = origin;
    s->created_at = created_at;
    c->v = xrealloc(c->v, (c->n + 1) * sizeof *c->v);
    c->v[c->n++] = s;
    return s;
}

static void
from_row(struct cert_spec *s, struct store_cert_source *row)
{
    memset(s, 0, sizeof *s);
    snprintf(s->id, sizeof s->id, "%s", row->id);
    s->kind = CERT_FILE;
    for (int k = CERT_FILE; k <= CERT_ENDPOINT; k++) {
        if (strcmp(row->kind, kind_names[k]) == 0)
            s->kind = (enum cert_kind)k;
    }
    snprintf(s->target, sizeof s->target, "%s", row->target);
    snprintf(s->server_name, sizeof s->server_name, "%s", row->server_name);
    s->pem = row->pem; /* taken */
    row->pem = NULL;
    s->recursive = row->recursive;
    s->expect_chain = row->expect_chain;
    s->renew_before = row->renew_before;
    s->warning = row->warning;
    s->critical = row->critical;
}

static enum status
load(struct certs *c, char *err, size_t err_len)
{
    struct store_cert_source *rows = NULL;
    struct store_cert_seen *seen = NULL;
    size_t n = 0, ns = 0;
    enum status st;

    if ((st = store_cert_source_list(c->store, &rows, &n)) != ST_OK ||
        (st = store_cert_seen_list(c->store, NULL, &seen, &ns)) != ST_OK) {
        snprintf(err, err_len, "cannot load the certificate inventory from the database");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        struct cert_spec spec;
        from_row(&spec, &rows[i]);
        src_add(c, &spec, CERT_FROM_API, rows[i].created_at);
    }
    for (size_t i = 0; i < ns; i++) /* in the order seen: the last row of a slot wins */
        certs__remember(c, seen[i].source_id, seen[i].slot, seen[i].fingerprint, seen[i].seen_at,
                        seen[i].rotation);
out:
    store_cert_sources_free(rows, n);
    free(seen);
    return st;
}

static enum status
trust_load(struct certs *c, const char *bundle, char *err, size_t err_len)
{
    struct cert_read tmp = {0};
    struct cert_spec s = {.kind = CERT_FILE};
    uint8_t *pem = NULL;
    size_t len = 0;
    enum status st;

    if (bundle == NULL)
        return cert_trust_new(&c->trust, NULL, 0, true, err, err_len);
    /* Read like a file source: the same size bound and messages. */
    snprintf(s.target, sizeof s.target, "%s", bundle);
    certs_read_source(&tmp, &s, NULL);
    if (tmp.error[0] != '\0') {
        snprintf(err, err_len, "--cert-ca-bundle: %s", tmp.error);
        cert_read_free(&tmp);
        return ST_INVALID;
    }
    cert_read_free(&tmp);
    pem = certs__slurp(bundle, &len);
    st = cert_trust_new(&c->trust, pem, len, false, err, err_len);
    free(pem);
    return st == ST_OK ? ST_OK : ST_INVALID;
}

enum status
certs_open(struct certs **out, struct store *st, const struct certs_settings *set, char *err,
           size_t err_len)
{
    struct certs *c = xcalloc(1, sizeof *c);
    enum status s;

    *out = NULL;
    c->store = st;
    c->set = *set;
    if (c->set.warning <= 0)
        c->set.warning = CERTS_DEFAULT_WARNING;
    if (c->set.critical <= 0)
        c->set.critical = CERTS_DEFAULT_CRITICAL;
    if (c->set.check_interval <= 0)
        c->set.check_interval = 60;
    if (c->set.probe_timeout <= 0)
        c->set.probe_timeout = 5;
    c->set.ca_bundle = NULL;
    pthread_mutex_init(&c->mu, NULL);
    pthread_mutex_init(&c->wmu, NULL);
    pthread_mutex_init(&c->imu, NULL);
    pthread_cond_init(&c->cv, NULL);
    pthread_cond_init(&c->done_cv, NULL);
    if ((s = trust_load(c, set->ca_bundle, err, err_len)) != ST_OK ||
        (s = load(c, err, err_len)) != ST_OK || (s = certs__prober_start(c)) != ST_OK) {
        if (s == ST_INTERNAL)
            snprintf(err, err_len, "cannot start the certificate prober thread");
        certs_close(c);
        return s;
    }
    *out = c;
    return ST_OK;
}

void
certs_close(struct certs *c)
{
    if (c == NULL)
        return;
    certs__prober_stop(c);
    for (size_t i = 0; i < c->n; i++)
        src_free(c->v[i]);
    free(c->v);
    free(c->known);
    cert_trust_free(c->trust);
    pthread_mutex_destroy(&c->mu);
    pthread_mutex_destroy(&c->wmu);
    pthread_mutex_destroy(&c->imu);
    pthread_cond_destroy(&c->cv);
    pthread_cond_destroy(&c->done_cv);
    free(c);
}

void
certs_thresholds(const struct certs *c, int64_t *warning, int64_t *critical)
{
    *warning = c->set.warning;
    *critical = c->set.critical;
}

void
certs_set_audit(struct certs *c, struct audit *a)
{
    c->audit = a;
}

enum status
certs_add_config(struct certs *c, const struct cert_spec *s, char *err, size_t err_len)
{
    struct cert_spec copy = *s;
    const char *msg = NULL;
    enum status st = ST_OK;

    if (s->id[0] == '\0' || cert_spec_check(s, &msg) != ST_OK) {
        snprintf(err, err_len, "source %s: %s", s->id[0] ? s->id : "without an id",
                 msg != NULL ? msg : "an id is required");
        return ST_INVALID;
    }
    copy.pem = s->pem != NULL ? xstrdup(s->pem) : NULL;
    pthread_mutex_lock(&c->mu);
    if (certs__find(c, s->id) != NULL) {
        snprintf(err, err_len,
                 "source %s: the id is taken (another source of the file or the "
                 "API has it)",
                 s->id);
        st = ST_CONFLICT;
    } else {
        src_add(c, &copy, CERT_FROM_CONFIG, 0);
    }
    pthread_mutex_unlock(&c->mu);
    cert_spec_free(&copy);
    return st;
}

void
certs_add_listener(struct certs *c, const char *name, certs_served_fn fn, void *arg)
{
    struct cert_spec spec = {.kind = CERT_LISTENER, .expect_chain = true};

    snprintf(spec.id, sizeof spec.id, "listener-%s", name);
    snprintf(spec.target, sizeof spec.target, "%s", name);
    pthread_mutex_lock(&c->mu);
    struct csrc *s = src_add(c, &spec, CERT_FROM_LISTENER, 0);
    s->served = fn;
    s->served_arg = arg;
    pthread_mutex_unlock(&c->mu);
}

/* --- views --- */

static void
view_fill(struct certs *c, const struct csrc *s, int64_t now, struct cert_source_view *v)
{
    memset(v, 0, sizeof *v);
    v->spec = s->spec;
    v->spec.pem = NULL;
    v->origin = s->origin;
    snprintf(v->error, sizeof v->error, "%s", s->last.error);
    v->created_at = s->created_at;
    v->checked_at = s->checked_at;
    v->ok_at = s->ok_at;
    v->read_errors = s->read_errors;
    v->rotations = s->rotations;
    v->n_certs = s->last.n;
    v->certs = xcalloc(s->last.n > 0 ? s->last.n : 1, sizeof *v->certs);
    v->status = CERT_OK;
    for (size_t i = 0; i < s->last.n; i++) {
        const struct cert_entry *e = &s->last.v[i];
        struct cert_view *cv = &v->certs[i];
        snprintf(cv->slot, sizeof cv->slot, "%s", e->slot);
        cv->has_cert = e->has_cert;
        cv->leaf = e->leaf;
        cv->info = e->info;
        snprintf(cv->error, sizeof cv->error, "%s", e->error);
        cv->chain = e->chain;
        snprintf(cv->chain_error, sizeof cv->chain_error, "%s", e->chain_error);
        if (e->has_cert) {
            cert_judge(&cv->j, &e->info, e->leaf, &s->spec, &c->set, now);
            const struct cknown *k = certs__known(c, s->spec.id, e->slot);
            if (k != NULL && strcmp(k->fingerprint, e->info.fingerprint) == 0) {
                cv->first_seen = k->first_seen;
                cv->rotated_at = k->rotated_at;
            }
        } else {
            cv->j.status = CERT_ERROR;
        }
        if (cv->j.status > v->status)
            v->status = cv->j.status;
    }
    if (v->error[0] != '\0')
        v->status = CERT_ERROR;
}

void
cert_source_view_free(struct cert_source_view *v)
{
    if (v == NULL)
        return;
    free(v->certs);
    memset(v, 0, sizeof *v);
}

void
cert_source_views_free(struct cert_source_view *v, size_t n)
{
    for (size_t i = 0; v != NULL && i < n; i++)
        free(v[i].certs);
    free(v);
}

enum status
certs_get(struct certs *c, const char *id, int64_t now, struct cert_source_view *out)
{
    enum status st = ST_NOT_FOUND;

    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&c->mu);
    const struct csrc *s = certs__find(c, id);
    if (s != NULL) {
        view_fill(c, s, now, out);
        st = ST_OK;
    }
    pthread_mutex_unlock(&c->mu);
    return st;
}

enum status
certs_list(struct certs *c, int64_t now, struct cert_source_view **out, size_t *n)
{
    pthread_mutex_lock(&c->mu);
    *n = c->n;
    *out = xcalloc(c->n > 0 ? c->n : 1, sizeof **out);
    for (size_t i = 0; i < c->n; i++)
        view_fill(c, c->v[i], now, &(*out)[i]);
    pthread_mutex_unlock(&c->mu);
    return ST_OK;
}

bool
certs_known(struct certs *c, const char *id)
{
    pthread_mutex_lock(&c->mu);
    bool found = certs__find(c, id) != NULL;
    pthread_mutex_unlock(&c->mu);
    return found;
}

enum status
certs_history(struct certs *c, const char *id, struct cert_seen_info **out, size_t *n)
{
    struct store_cert_seen *rows = NULL;
    enum status st;

    *out = NULL;
    *n = 0;
    if (!certs_known(c, id))
        return ST_NOT_FOUND;
    if ((st = store_cert_seen_list(c->store, id, &rows, n)) != ST_OK)
        return st;
    *out = xcalloc(*n > 0 ? *n : 1, sizeof **out);
    for (size_t i = 0; i < *n; i++) {
        struct cert_seen_info *h = &(*out)[i];
        snprintf(h->slot, sizeof h->slot, "%s", rows[i].slot);
        snprintf(h->fingerprint, sizeof h->fingerprint, "%s", rows[i].fingerprint);
        snprintf(h->subject, sizeof h->subject, "%s", rows[i].subject);
        snprintf(h->issuer, sizeof h->issuer, "%s", rows[i].issuer);
        snprintf(h->serial, sizeof h->serial, "%s", rows[i].serial);
        h->not_before = rows[i].not_before;
        h->not_after = rows[i].not_after;
        h->seen_at = rows[i].seen_at;
        h->rotation = rows[i].rotation;
    }
    free(rows);
    return ST_OK;
}

/* --- changes over the API --- */

static void
to_row(struct store_cert_source *row, const struct cert_spec *s, int64_t now)
{
    memset(row, 0, sizeof *row);
    snprintf(row->id, sizeof row->id, "%s", s->id);
    snprintf(row->kind, sizeof row->kind, "%s", cert_kind_name(s->kind));
    snprintf(row->target, sizeof row->target, "%s", s->target);
    snprintf(row->server_name, sizeof row->server_name, "%s", s->server_name);
    row->pem = s->pem;
    row->recursive = s->recursive;
    row->expect_chain = s->expect_chain;
    row->renew_before = s->renew_before;
    row->warning = s->warning;
    row->critical = s->critical;
    row->created_at = now;
}

enum status
certs_create(struct certs *c, struct cert_spec *s, struct cert_source_view *out, const char **msg,
             const struct store_audit_row *ev)
{
    struct store_cert_source row;
    int64_t now = clock_now_s();
    enum status st;

    memset(out, 0, sizeof *out);
    if ((st = cert_spec_check(s, msg)) != ST_OK)
        return st;
    cert_spec_default_id(s);
    pthread_mutex_lock(&c->mu);
    bool taken = certs__find(c, s->id) != NULL, full = c->n >= CERTS_MAX_SOURCES;
    pthread_mutex_unlock(&c->mu);
    if (taken || full) {
        *msg = taken ? "a source with this id exists" : "too many certificate sources";
        return ST_CONFLICT;
    }
    to_row(&row, s, now);
    pthread_mutex_lock(&c->wmu);
    st = store_cert_source_create(c->store, &row, ev);
    if (st == ST_OK) {
        pthread_mutex_lock(&c->mu);
        src_add(c, s, CERT_FROM_API, now);
        pthread_mutex_unlock(&c->mu);
    }
    pthread_mutex_unlock(&c->wmu);
    if (st == ST_CONFLICT)
        *msg = "a source with this id exists";
    if (st != ST_OK)
        return st;
    return certs_get(c, row.id, now, out);
}

enum status
certs_delete(struct certs *c, const char *id, const char **msg, const struct store_audit_row *ev)
{
    enum status st;

    pthread_mutex_lock(&c->mu);
    const struct csrc *s = certs__find(c, id);
    enum cert_origin origin = s != NULL ? s->origin : CERT_FROM_API;
    pthread_mutex_unlock(&c->mu);
    if (s == NULL)
        return ST_NOT_FOUND;
    if (origin != CERT_FROM_API) {
        *msg = "only sources added over the API can be deleted (this one is configured)";
        return ST_CONFLICT;
    }
    pthread_mutex_lock(&c->wmu);
    st = store_cert_source_delete(c->store, id, ev);
    if (st == ST_OK) {
        pthread_mutex_lock(&c->mu);
        for (size_t i = 0; i < c->n; i++) {
            if (strcmp(c->v[i]->spec.id, id) == 0) {
                src_free(c->v[i]);
                c->v[i] = c->v[--c->n];
                break;
            }
        }
        forget_source(c, id);
        pthread_mutex_unlock(&c->mu);
    }
    pthread_mutex_unlock(&c->wmu);
    return st;
}

/* --- the inventory snapshot --- */

static void
inv_fill(struct inv_cert *ic, const struct cert_source_view *v, const struct cert_view *cv)
{
    memset(ic, 0, sizeof *ic);
    snprintf(ic->id, sizeof ic->id, "%.32s", cv->info.fingerprint);
    snprintf(ic->source, sizeof ic->source, "%s", v->spec.id);
    snprintf(ic->subject, sizeof ic->subject, "%s", cv->info.subject);
    ic->not_before = cv->info.not_before;
    ic->not_after = cv->info.not_after;
    ic->renewal_due = cv->j.renewal_due;
    ic->rotated_at = cv->rotated_at;
    ic->error = !cv->has_cert || v->error[0] != '\0';
    size_t len = 0;
    for (unsigned i = 0; i < CERT__WEAK_COUNT; i++) {
        if ((cv->j.weak & (1u << i)) != 0 && len + strlen(weak_names[i]) + 2 < sizeof ic->weak)
            len += (size_t)snprintf(ic->weak + len, sizeof ic->weak - len, "%s%s",
                                    len > 0 ? " " : "", weak_names[i]);
    }
}

enum status
certs_inventory(struct certs *c, int64_t now, struct inv_cert **out, size_t *n)
{
    struct cert_source_view *v = NULL;
    size_t nv = 0, total = 0;

    *out = NULL;
    *n = 0;
    enum status st = certs_list(c, now, &v, &nv);
    if (st != ST_OK)
        return st;
    for (size_t i = 0; i < nv; i++)
        total += v[i].n_certs > 0 ? v[i].n_certs : 1;
    *out = xcalloc(total > 0 ? total : 1, sizeof **out);
    for (size_t i = 0; i < nv; i++) {
        for (size_t j = 0; j < v[i].n_certs; j++)
            inv_fill(&(*out)[(*n)++], &v[i], &v[i].certs[j]);
        if (v[i].n_certs == 0) { /* a source never read: an error entry, never dropped */
            struct inv_cert *ic = &(*out)[(*n)++];
            memset(ic, 0, sizeof *ic);
            snprintf(ic->source, sizeof ic->source, "%s", v[i].spec.id);
            ic->error = v[i].error[0] != '\0';
        }
    }
    cert_source_views_free(v, nv);
    return ST_OK;
}
