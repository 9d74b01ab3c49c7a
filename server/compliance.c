/* SPDX-License-Identifier: Apache-2.0 */
/* server/compliance.c -- the compliance manager (see compliance.h): packs, runs, reports, the
 * signing key and the metrics. Evaluation itself is policies/ (pure); this file takes the
 * snapshot, keeps the current results, and signs. */
#include "server/compliance.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/xmem.h"
#include "crypto/b64.h"
#include "crypto/sign.h"
#include "policies/builtin.h"
#include "policies/eval.h"
#include "policies/pack.h"
#include "policies/report.h"
#include "server/obs/metrics.h"
#include "server/svckey.h"

struct compliance {
    struct compliance_deps d;
    struct pack **packs;
    bool *from_dir; /* per pack: loaded from --policy-dir (else shipped) */
    size_t n_packs;
    struct secret *sk; /* Ed25519, SIGN_SK_BYTES */
    uint8_t pk[SIGN_PK_BYTES];
    char key_id[SIGN_KEY_ID_CHARS + 1];
    int64_t key_created_at;

    pthread_mutex_t mu;         /* current, last_run */
    struct evaluation *current; /* one per pack; evaluated_at 0: not yet */
    int64_t last_run;
    atomic_uint_fast64_t runs, run_failures;
};

/* --- packs --- */

static size_t
pack_index(const struct compliance *c, const char *id)
{
    for (size_t i = 0; i < c->n_packs; i++)
        if (strcmp(c->packs[i]->id, id) == 0)
            return i;
    return SIZE_MAX;
}

/* Parse one pack; a later pack with a built-in's id replaces it, two of the directory clash. */
static enum status
pack_add(struct compliance *c, const char *file, const char *text, size_t len, bool builtin,
         char *err, size_t err_len)
{
    struct pack *p = NULL;
    char why[256];
    size_t at;

    if (pack_parse(&p, text, len, why, sizeof why) != ST_OK) {
        snprintf(err, err_len, "policy pack %s: %s", file, why);
        return ST_INVALID;
    }
    if ((at = pack_index(c, p->id)) != SIZE_MAX) {
        if (!builtin && !c->from_dir[at]) { /* a shipped pack replaced by the operator's */
            log_msg(LOG_INFO, "policy_pack_replaced", "pack", p->id, "file", file, LOG_END);
            pack_free(c->packs[at]);
            c->packs[at] = p;
            c->from_dir[at] = true;
            return ST_OK;
        }
        snprintf(err, err_len, "policy pack %s: pack id \"%s\" is already loaded", file, p->id);
        pack_free(p);
        return ST_INVALID;
    }
    c->packs = xrealloc(c->packs, (c->n_packs + 1) * sizeof *c->packs);
    c->from_dir = xrealloc(c->from_dir, (c->n_packs + 1) * sizeof *c->from_dir);
    c->from_dir[c->n_packs] = !builtin;
    c->packs[c->n_packs++] = p;
    return ST_OK;
}

static int
by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static enum status
file_read(const char *path, struct sbuf *b, char *err, size_t err_len)
{
    struct stat sb;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    enum status st = ST_IO;

    if (fd < 0 || fstat(fd, &sb) != 0) {
        snprintf(err, err_len, "policy pack %s: %s", path, strerror(errno));
        goto out;
    }
    if ((size_t)sb.st_size > PACK_TEXT_MAX) {
        snprintf(err, err_len, "policy pack %s: larger than %zu bytes", path, PACK_TEXT_MAX);
        st = ST_INVALID;
        goto out;
    }
    sbuf_reserve(b, (size_t)sb.st_size + 1);
    ssize_t n = read(fd, b->p, (size_t)sb.st_size + 1);
    if (n != (ssize_t)sb.st_size) {
        snprintf(err, err_len, "policy pack %s: could not be read whole", path);
        goto out;
    }
    b->len = (size_t)n;
    st = ST_OK;
out:
    if (fd >= 0)
        close(fd);
    return st;
}

/* Every *.json file of dir, in name order. */
static enum status
packs_from_dir(struct compliance *c, const char *dir, char *err, size_t err_len)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **names = NULL, path[4096];
    size_t n = 0;
    enum status st = ST_OK;

    if (d == NULL) {
        snprintf(err, err_len, "--policy-dir %s: %s", dir, strerror(errno));
        return ST_IO;
    }
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (e->d_name[0] == '.' || len < 6 || strcmp(e->d_name + len - 5, ".json") != 0)
            continue;
        names = xrealloc(names, (n + 1) * sizeof *names);
        names[n++] = xstrdup(e->d_name);
    }
    closedir(d);
    if (n > 0)
        qsort(names, n, sizeof *names, by_name);
    for (size_t i = 0; i < n && st == ST_OK; i++) {
        struct sbuf text = {0};
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if ((st = file_read(path, &text, err, err_len)) == ST_OK)
            st = pack_add(c, path, text.p, text.len, false, err, err_len);
        sbuf_free(&text);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return st;
}

static enum status
packs_load(struct compliance *c, const char *dir, const char *params, char *err, size_t err_len)
{
    char why[256];
    enum status st = ST_OK;

    for (size_t i = 0; i < policies_builtin_n && st == ST_OK; i++)
        st = pack_add(c, policies_builtin_packs[i].file, policies_builtin_packs[i].text,
                      policies_builtin_packs[i].len, true, err, err_len);
    if (st == ST_OK && dir != NULL)
        st = packs_from_dir(c, dir, err, err_len);
    if (st == ST_OK && params != NULL &&
        packs_override(c->packs, c->n_packs, params, strlen(params), why, sizeof why) != ST_OK) {
        snprintf(err, err_len, "--policy-params: %s", why);
        st = ST_INVALID;
    }
    return st;
}

/* --- the signing key --- */

static enum status
key_load(struct compliance *c, char *err, size_t err_len)
{
    enum status st = svckey_load(c->d.store, c->d.root, SVCKEY_COMPLIANCE_SIGN, &c->sk,
                                 &c->key_created_at, err, err_len);

    if (st == ST_NOT_FOUND) {
        struct secret *sk = NULL;
        uint8_t pk[SIGN_PK_BYTES];
        sign_keypair(&sk, pk);
        /* Insert only: replicas starting together on one database race here, and every one
         * must sign with the key that was stored (the winner's), never its own. */
        st = svckey_add(c->d.store, c->d.root, SVCKEY_COMPLIANCE_SIGN, secret_ro(sk),
                        secret_len(sk));
        secret_free(sk);
        bool made = st == ST_OK;
        if (st == ST_OK || st == ST_CONFLICT)
            st = svckey_load(c->d.store, c->d.root, SVCKEY_COMPLIANCE_SIGN, &c->sk,
                             &c->key_created_at, err, err_len);
        if (st == ST_OK && made)
            log_msg(LOG_INFO, "compliance_key_created", LOG_END);
    }
    if (st == ST_OK && secret_len(c->sk) != SIGN_SK_BYTES) {
        snprintf(err, err_len, "service key '%s' is not an Ed25519 key", SVCKEY_COMPLIANCE_SIGN);
        st = ST_INTEGRITY;
    }
    if (st != ST_OK)
        return st;
    sign_public_key(c->pk, c->sk);
    sign_key_id(c->key_id, c->pk);
    return ST_OK;
}

enum status
compliance_open(struct compliance **out, const struct compliance_deps *d, const char *policy_dir,
                const char *params, char *err, size_t err_len)
{
    struct compliance *c = xcalloc(1, sizeof *c);
    enum status st;

    *out = NULL;
    c->d = *d;
    pthread_mutex_init(&c->mu, NULL);
    if ((st = packs_load(c, policy_dir, params, err, err_len)) != ST_OK ||
        (st = key_load(c, err, err_len)) != ST_OK) {
        compliance_close(c);
        return st;
    }
    c->current = xcalloc(c->n_packs, sizeof *c->current);
    *out = c;
    return ST_OK;
}

void
compliance_close(struct compliance *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; c->current != NULL && i < c->n_packs; i++)
        eval_free(&c->current[i]);
    for (size_t i = 0; i < c->n_packs; i++)
        pack_free(c->packs[i]);
    free(c->current);
    free(c->packs);
    free(c->from_dir);
    secret_free(c->sk);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* --- runs --- */

/* Evaluate the packs selected (sel[i]) at now into evs[i]. */
static enum status
evaluate(struct compliance *c, const bool *sel, int64_t now, struct evaluation *evs)
{
    struct inventory inv;
    enum status st =
        inventory_take(c->d.keyrings, c->d.apps, c->d.audit, c->d.certs, c->d.facts, now, &inv);

    if (st != ST_OK) {
        atomic_fetch_add(&c->run_failures, 1);
        log_msg(LOG_ERROR, "compliance_inventory_failed", "status", status_name(st), LOG_END);
        return st;
    }
    for (size_t i = 0; i < c->n_packs; i++)
        if (sel[i])
            eval_run(&evs[i], c->packs[i], &inv);
    inventory_free(&inv);
    atomic_fetch_add(&c->runs, 1);
    return ST_OK;
}

/* The evaluations become current (taken: evs[i] are zeroed); their counts summed. */
static void
install(struct compliance *c, struct evaluation *evs, int64_t now, struct compliance_counts *k)
{
    memset(k, 0, sizeof *k);
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->n_packs; i++) {
        if (evs[i].pack == NULL)
            continue;
        k->controls += evs[i].n;
        k->passed += evs[i].counts[CTL_PASS];
        k->failed += evs[i].counts[CTL_FAIL];
        k->manual += evs[i].counts[CTL_MANUAL];
        k->not_applicable += evs[i].counts[CTL_NOT_APPLICABLE];
        eval_free(&c->current[i]);
        c->current[i] = evs[i];
        memset(&evs[i], 0, sizeof evs[i]);
    }
    c->last_run = now;
    pthread_mutex_unlock(&c->mu);
}

/* The trail's record of a scheduled run: the janitor did it; items are the controls. */
static void
run_event(struct compliance *c, enum status st, const struct compliance_counts *k)
{
    struct audit_rec *rec;

    if (c->d.audit == NULL)
        return;
    rec = audit_rec_new();
    rec->op = "compliance.run";
    snprintf(rec->method, sizeof rec->method, "SYSTEM");
    rec->route = "janitor";
    rec->status = st == ST_OK ? 200 : 500;
    rec->items_total = (uint32_t)k->controls;
    rec->items_ok = (uint32_t)k->passed;
    rec->items_failed = (uint32_t)k->failed;
    audit_submit(c->d.audit, rec);
}

static void
trail_check_due(struct compliance *c, int64_t now)
{
    struct audit_status s;
    struct audit_trail_check chk;

    if (c->d.audit == NULL)
        return;
    audit_status(c->d.audit, &s);
    if (s.verified_ok && s.verified_at_ms != 0 &&
        now - s.verified_at_ms / 1000 < COMPLIANCE_VERIFY_EVERY)
        return; /* a failed (or an empty trail's) verification is tried again */
    if (audit_verify_trail(c->d.audit, &chk) != ST_OK)
        log_msg(LOG_ERROR, "compliance_trail_check_failed", LOG_END);
}

enum status
compliance_run(struct compliance *c, int64_t now, bool scheduled, struct compliance_counts *k)
{
    bool *sel = xcalloc(c->n_packs + 1, sizeof *sel);
    struct evaluation *evs = xcalloc(c->n_packs + 1, sizeof *evs);
    enum status st;

    memset(k, 0, sizeof *k);
    for (size_t i = 0; i < c->n_packs; i++)
        sel[i] = true;
    if (scheduled)
        trail_check_due(c, now);
    if ((st = evaluate(c, sel, now, evs)) == ST_OK)
        install(c, evs, now, k);
    if (scheduled)
        run_event(c, st, k);
    free(evs);
    free(sel);
    return st;
}

void
compliance_janitor(void *arg, int64_t now_ms)
{
    struct compliance_counts k;
    if (compliance_run(arg, now_ms / 1000, true, &k) != ST_OK)
        return; /* logged and counted in evaluate */
}

/* --- reports --- */

static struct report_head *
heads_take(struct compliance *c, size_t *n)
{
    struct audit_chain_head *h = NULL;
    struct report_head *out;
    size_t m = 0;

    *n = 0;
    if (c->d.audit == NULL || audit_heads(c->d.audit, &h, &m) != ST_OK)
        return NULL;
    out = xcalloc(m + 1, sizeof *out);
    for (size_t i = 0; i < m; i++) {
        snprintf(out[i].chain_id, sizeof out[i].chain_id, "%s", h[i].chain_id);
        out[i].seq = h[i].seq;
        sodium_bin2hex(out[i].hash, sizeof out[i].hash, h[i].hash, sizeof h[i].hash);
    }
    free(h);
    *n = m;
    return out;
}

/* The selected evaluations, packed in pack order for the renderers. */
static void
render(struct compliance *c, enum compliance_format f, const struct evaluation *evs, int64_t now,
       struct sbuf *out)
{
    struct evaluation *sel = xcalloc(c->n_packs + 1, sizeof *sel);
    struct report_meta m = {"difyguard",
                            DG_VERSION,
                            c->d.audit != NULL ? audit_chain_id(c->d.audit) : "",
                            c->d.facts->root_key_id != NULL ? c->d.facts->root_key_id : "",
                            now,
                            NULL,
                            0};
    struct report_head *heads = heads_take(c, &m.n_heads);
    struct sbuf body = {0};
    size_t n = 0;

    m.heads = heads;
    for (size_t i = 0; i < c->n_packs; i++)
        if (evs[i].pack != NULL)
            sel[n++] = evs[i];
    if (f == COMPLIANCE_CSV) {
        report_csv(out, &m, sel, n);
    } else if (f == COMPLIANCE_HTML) {
        report_html(out, &m, sel, n);
    } else {
        report_json_body(&body, &m, sel, n);
        report_sign(out, body.p, body.len, c->sk);
    }
    sbuf_free(&body);
    free(heads);
    free(sel);
}

enum status
compliance_report(struct compliance *c, const char *pack, enum compliance_format f, int64_t now,
                  struct sbuf *out, struct compliance_counts *k)
{
    bool *sel = xcalloc(c->n_packs + 1, sizeof *sel);
    struct evaluation *evs = xcalloc(c->n_packs + 1, sizeof *evs);
    size_t at = pack != NULL ? pack_index(c, pack) : SIZE_MAX;
    enum status st = ST_NOT_FOUND;

    memset(k, 0, sizeof *k);
    if (pack != NULL && at == SIZE_MAX)
        goto out;
    for (size_t i = 0; i < c->n_packs; i++)
        sel[i] = pack == NULL || i == at;
    trail_check_due(c, now);
    if ((st = evaluate(c, sel, now, evs)) != ST_OK)
        goto out;
    render(c, f, evs, now, out);
    install(c, evs, now, k);
out:
    free(evs);
    free(sel);
    return st;
}

char *
compliance_public_keys_json(const struct compliance *c)
{
    char pk[64], created[32];
    struct sbuf b = {0};
    size_t len;

    b64_std_encode(pk, sizeof pk, c->pk, sizeof c->pk);
    clock_rfc3339(created, c->key_created_at);
    sbuf_addf(&b,
              "{\"keys\":[{\"key_id\":\"%s\",\"public_key\":\"%s\",\"algorithm\":\"ed25519\","
              "\"created_at\":\"%s\",\"active\":true}]}",
              c->key_id, pk, created);
    return sbuf_take(&b, &len);
}

/* --- metrics --- */

void
compliance_metrics(const void *self, struct metrics_out *o)
{
    const struct compliance *c = self;
    struct compliance *mc = (struct compliance *)c; /* the lock only */

    metrics_counter(o, "difyguard_compliance_runs_total",
                    "Compliance evaluations run (scheduled and on demand).", atomic_load(&c->runs));
    metrics_counter(o, "difyguard_compliance_run_failures_total",
                    "Compliance evaluations that could not take the inventory.",
                    atomic_load(&c->run_failures));
    pthread_mutex_lock(&mc->mu);
    metrics_gauge(o, "difyguard_compliance_last_run_timestamp_seconds",
                  "When the controls were last evaluated (0: not yet).", (double)c->last_run);
    metrics_family(o, "difyguard_compliance_control_status", "gauge",
                   "1 for each control's current result, 0 for the other results.");
    for (size_t i = 0; i < c->n_packs; i++) {
        const struct evaluation *e = &c->current[i];
        for (size_t j = 0; e->pack != NULL && j < e->n; j++) {
            for (size_t r = 0; r < CTL__COUNT; r++) {
                const struct metrics_label l[] = {{"pack", e->pack->id},
                                                  {"control", e->items[j].control->id},
                                                  {"result", ctl_result_name((enum ctl_result)r)}};
                metrics_sample_l(o, "difyguard_compliance_control_status", l, 3,
                                 (size_t)e->items[j].out.result == r ? 1 : 0);
            }
        }
    }
    metrics_family(o, "difyguard_compliance_controls", "gauge",
                   "Controls of each pack by current result.");
    for (size_t i = 0; i < c->n_packs; i++) {
        const struct evaluation *e = &c->current[i];
        for (size_t r = 0; e->pack != NULL && r < CTL__COUNT; r++)
            metrics_sample2(o, "difyguard_compliance_controls", "pack", e->pack->id, "result",
                            ctl_result_name((enum ctl_result)r), (double)e->counts[r]);
    }
    pthread_mutex_unlock(&mc->mu);
}
