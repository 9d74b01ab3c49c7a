/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/server/certs_test.c -- the certificate inventory (server/certs.h) on a real SQLite
 * store and files this test writes: the judgement table (status by date and thresholds,
 * renewal-due time, every weak reason), file, directory (recursive, "..data" skipped, garbage
 * listed) and PEM sources, chains against the CA bundle, rotation recorded as history and kept
 * across a restart, the API's checks, a dead and a silent endpoint, the metrics' zero state and
 * the inventory snapshot. */
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../certgen.h"
#include "common/sbuf.h"
#include "crypto/init.h"
#include "server/certs.h"
#include "server/obs/metrics.h"
#include "store/store.h"

#define DAY INT64_C(86400)

static char dir[256];

static void
path_of(char out[static 512], const char *name)
{
    snprintf(out, 512, "%s/%s", dir, name);
}

static void
write_text(const char *name, const char *text)
{
    char p[512];
    path_of(p, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    fclose(f);
}

static void
mkdir_in(const char *name)
{
    char p[512];
    path_of(p, name);
    assert_int_equal(mkdir(p, 0755), 0);
}

/* A CA and certificates it issues, as PEM. */
struct pki {
    struct cg_key *ck, *lk;
    struct cg_cert *ca;
    char *ca_pem;
};

static void
pki_init(struct pki *p)
{
    size_t l;
    int64_t now = time(NULL);
    struct cg_spec s = {
        .cn = "Unit Root", .not_before = now - 10 * DAY, .not_after = now + 3650 * DAY, .ca = true};
    p->ck = cg_key_new(CG_EC256, 0);
    p->lk = cg_key_new(CG_EC256, 0);
    p->ca = cg_cert_new(&s, p->ck, NULL);
    p->ca_pem = cg_cert_pem(p->ca, &l);
}

static void
pki_fini(struct pki *p)
{
    free(p->ca_pem);
    cg_cert_free(p->ca);
    cg_key_free(p->lk);
    cg_key_free(p->ck);
}

/* A leaf valid from now-1d for `days` days. */
static char *
leaf_pem(struct pki *p, const char *cn, int64_t days)
{
    size_t l;
    int64_t now = time(NULL);
    char sans[128];
    snprintf(sans, sizeof sans, "DNS:%s", cn);
    struct cg_spec s = {
        .cn = cn, .sans = sans, .not_before = now - DAY, .not_after = now - DAY + days * DAY};
    struct cg_cert *c = cg_cert_new(&s, p->lk, p->ca);
    char *pem = cg_cert_pem(c, &l);
    cg_cert_free(c);
    return pem;
}

/* --- the judgement --- */

static void
test_judgement_table(void **state)
{
    (void)state;
    struct cert_info ci = {
        .not_before = 1000 * DAY, .not_after = 1090 * DAY, .n_sans = 1, .key_bits = 256};
    struct cert_spec s = {.expect_chain = true};
    struct certs_settings set = {.warning = 30 * DAY, .critical = 7 * DAY};
    struct cert_judgement j;
    snprintf(ci.key_type, sizeof ci.key_type, "ec");
    snprintf(ci.sig_hash, sizeof ci.sig_hash, "sha256");

    static const struct {
        int64_t now;
        enum cert_status want;
    } rows[] = {
        {999 * DAY, CERT_NOT_YET_VALID}, {1000 * DAY, CERT_OK},
        {1060 * DAY - 1, CERT_OK},       {1060 * DAY, CERT_WARNING},
        {1083 * DAY - 1, CERT_WARNING},  {1083 * DAY, CERT_CRITICAL},
        {1090 * DAY - 1, CERT_CRITICAL}, {1090 * DAY, CERT_EXPIRED},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        cert_judge(&j, &ci, true, &s, &set, rows[i].now);
        assert_int_equal(j.status, rows[i].want);
        assert_int_equal(j.weak, 0);
    }
    /* Per-source thresholds win over the service's. */
    s.warning = 40 * DAY;
    cert_judge(&j, &ci, true, &s, &set, 1055 * DAY);
    assert_int_equal(j.status, CERT_WARNING);
    s.warning = 0;
    /* Renewal due: two thirds of the lifetime, or notAfter - renew_before. */
    cert_judge(&j, &ci, true, &s, &set, 1059 * DAY);
    assert_int_equal(j.renewal_due, 1060 * DAY);
    assert_false(j.renewal_overdue);
    cert_judge(&j, &ci, true, &s, &set, 1060 * DAY);
    assert_true(j.renewal_overdue);
    cert_judge(&j, &ci, false, &s, &set, 1060 * DAY); /* only leaves are overdue */
    assert_false(j.renewal_overdue);
    s.renew_before = 10 * DAY;
    cert_judge(&j, &ci, true, &s, &set, 1060 * DAY);
    assert_int_equal(j.renewal_due, 1080 * DAY);
    assert_false(j.renewal_overdue);
    s.renew_before = 200 * DAY; /* longer than the lifetime: due from the start */
    cert_judge(&j, &ci, true, &s, &set, 1000 * DAY);
    assert_int_equal(j.renewal_due, 1000 * DAY);
    s.renew_before = 0;

    /* Every weak reason. */
    struct cert_info w = ci;
    snprintf(w.key_type, sizeof w.key_type, "rsa");
    w.key_bits = 1024;
    snprintf(w.sig_hash, sizeof w.sig_hash, "sha1");
    w.n_sans = 0;
    w.self_signed = true;
    w.not_after = w.not_before + 399 * DAY;
    cert_judge(&j, &w, true, &s, &set, 1001 * DAY);
    assert_int_equal(j.weak, CERT_WEAK_RSA | CERT_WEAK_SHA1 | CERT_WEAK_NO_SAN |
                                 CERT_WEAK_VALIDITY | CERT_WEAK_SELF_SIGNED);
    w.not_after = w.not_before + 398 * DAY; /* 398 days is allowed */
    s.expect_chain = false;                 /* a self-signed leaf was expected */
    cert_judge(&j, &w, true, &s, &set, 1001 * DAY);
    assert_int_equal(j.weak, CERT_WEAK_RSA | CERT_WEAK_SHA1 | CERT_WEAK_NO_SAN);
    /* A self-signed CA's own hash does not matter; leaf rules do not apply to it. */
    w.is_ca = true;
    snprintf(w.sig_hash, sizeof w.sig_hash, "md5");
    cert_judge(&j, &w, false, &s, &set, 1001 * DAY);
    assert_int_equal(j.weak, CERT_WEAK_RSA);
    w.self_signed = false;
    cert_judge(&j, &w, false, &s, &set, 1001 * DAY);
    assert_int_equal(j.weak, CERT_WEAK_RSA | CERT_WEAK_MD5);
    snprintf(w.key_type, sizeof w.key_type, "ec");
    w.key_bits = 224;
    cert_judge(&j, &w, false, &s, &set, 1001 * DAY);
    assert_int_equal(j.weak, CERT_WEAK_EC | CERT_WEAK_MD5);
    assert_string_equal(cert_weak_name(CERT_WEAK_SELF_SIGNED), "self_signed_leaf");
    assert_string_equal(cert_status_name(CERT_NOT_YET_VALID), "not_yet_valid");
}

/* --- a store, a CA bundle and an inventory --- */

struct fx {
    struct store *st;
    struct certs *c;
    struct pki pki;
    struct certs_settings set;
    char db[512], bundle[512];
};

static void
fx_open_certs(struct fx *f)
{
    char err[256];
    assert_int_equal(certs_open(&f->c, f->st, &f->set, err, sizeof err), ST_OK);
}

static int
setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    char err[256];

    snprintf(dir, sizeof dir, "/tmp/dg-certs-XXXXXX");
    assert_non_null(mkdtemp(dir));
    pki_init(&f->pki);
    write_text("ca.pem", f->pki.ca_pem);
    path_of(f->bundle, "ca.pem");
    snprintf(f->db, sizeof f->db, "sqlite:%s/t.db", dir);
    assert_int_equal(store_open(&f->st, f->db, err, sizeof err), ST_OK);
    f->set = (struct certs_settings){30 * DAY, 7 * DAY, 60, 1, f->bundle};
    fx_open_certs(f);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;
    char cmd[600];
    certs_close(f->c);
    store_close(f->st);
    pki_fini(&f->pki);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static struct cert_spec
spec(const char *id, enum cert_kind kind, const char *name)
{
    struct cert_spec s = {.kind = kind, .expect_chain = true};
    snprintf(s.id, sizeof s.id, "%s", id);
    if (name != NULL)
        path_of(s.target, name);
    return s;
}

static void
view_of(struct fx *f, const char *id, struct cert_source_view *v)
{
    assert_int_equal(certs_get(f->c, id, time(NULL), v), ST_OK);
}

static const struct cert_view *
cert_at(const struct cert_source_view *v, const char *slot)
{
    for (size_t i = 0; i < v->n_certs; i++) {
        if (strcmp(v->certs[i].slot, slot) == 0)
            return &v->certs[i];
    }
    fail_msg("no slot %s", slot);
    return NULL;
}

static void
test_sources_statuses_and_chains(void **state)
{
    struct fx *f = *state;
    char err[256], *ok = leaf_pem(&f->pki, "ok.test", 90), *soon = leaf_pem(&f->pki, "soon", 5);
    char *chainless = leaf_pem(&f->pki, "nochain", 20);
    struct cert_source_view v;

    write_text("leaf.pem", ok);
    mkdir_in("secret");
    mkdir_in("secret/app");
    mkdir_in("secret/..2026_01_01");
    mkdir_in("secret/bad");
    mkdir_in("empty");
    write_text("secret/app/tls.crt", soon);
    write_text("secret/app/ca.crt", f->pki.ca_pem);
    write_text("secret/..2026_01_01/tls.crt", chainless); /* a mount's hidden copy: skipped */
    write_text("secret/bad/tls.crt", "garbage\n");
    struct cert_spec a = spec("file", CERT_FILE, "leaf.pem"), d = spec("dir", CERT_DIR, "secret");
    struct cert_spec e = spec("empty", CERT_DIR, "empty"), m = spec("missing", CERT_FILE, "nope");
    d.recursive = true;
    assert_int_equal(certs_add_config(f->c, &a, err, sizeof err), ST_OK);
    assert_int_equal(certs_add_config(f->c, &d, err, sizeof err), ST_OK);
    assert_int_equal(certs_add_config(f->c, &e, err, sizeof err), ST_OK);
    assert_int_equal(certs_add_config(f->c, &m, err, sizeof err), ST_OK);
    assert_int_equal(certs_add_config(f->c, &a, err, sizeof err), ST_CONFLICT);
    certs_check_all(f->c, time(NULL));

    view_of(f, "file", &v);
    assert_int_equal(v.status, CERT_OK);
    assert_int_equal(v.n_certs, 1);
    assert_string_equal(v.certs[0].slot, "leaf");
    assert_int_equal(v.certs[0].chain, 1); /* the CA bundle issued it */
    assert_true(v.certs[0].first_seen > 0);
    cert_source_view_free(&v);

    view_of(f, "dir", &v);
    assert_int_equal(v.status, CERT_ERROR); /* the garbage file is an error entry */
    assert_string_equal(v.error, "");
    assert_int_equal(v.n_certs, 3);
    assert_int_equal(cert_at(&v, "app/tls.crt|leaf")->j.status, CERT_CRITICAL);
    assert_int_equal(cert_at(&v, "app/tls.crt|leaf")->chain, 1);
    assert_true(cert_at(&v, "app/ca.crt|#CN=Unit Root")->info.is_ca);
    const struct cert_view *bad = cert_at(&v, "bad/tls.crt");
    assert_false(bad->has_cert);
    assert_int_equal(bad->j.status, CERT_ERROR);
    assert_string_equal(bad->error, "neither PEM nor a DER X.509 certificate");
    cert_source_view_free(&v);

    view_of(f, "empty", &v);
    assert_int_equal(v.status, CERT_ERROR);
    assert_non_null(strstr(v.error, "no tls.crt or ca.crt in"));
    assert_int_equal(v.read_errors, 1);
    cert_source_view_free(&v);
    view_of(f, "missing", &v);
    assert_int_equal(v.status, CERT_ERROR);
    assert_non_null(strstr(v.error, "No such file"));
    cert_source_view_free(&v);

    /* Not recursive: only the directory itself (which holds neither file). */
    d.recursive = false;
    snprintf(d.id, sizeof d.id, "flat");
    assert_int_equal(certs_add_config(f->c, &d, err, sizeof err), ST_OK);
    certs_refresh(f->c, "flat");
    view_of(f, "flat", &v);
    assert_int_equal(v.n_certs, 0);
    assert_int_equal(v.status, CERT_ERROR);
    cert_source_view_free(&v);
    free(ok), free(soon), free(chainless);
}

/* A changed fingerprint at a slot is a rotation: recorded after the first sighting, counted, and
 * known again after a restart (no second rotation for the same certificate). */
static void
test_rotation_history_survives_a_restart(void **state)
{
    struct fx *f = *state;
    char err[256], *one = leaf_pem(&f->pki, "rot", 90), *two = leaf_pem(&f->pki, "rot", 91);
    struct cert_spec a = spec("rot", CERT_FILE, "rot.pem");
    struct cert_seen_info *h = NULL;
    struct cert_source_view v;
    size_t n = 0;

    write_text("rot.pem", one);
    assert_int_equal(certs_add_config(f->c, &a, err, sizeof err), ST_OK);
    certs_check_all(f->c, time(NULL));
    certs_check_all(f->c, time(NULL)); /* unchanged: nothing new */
    write_text("rot.pem", two);
    certs_check_all(f->c, time(NULL));
    assert_int_equal(certs_history(f->c, "rot", &h, &n), ST_OK);
    assert_int_equal(n, 2);
    assert_false(h[0].rotation);
    assert_true(h[1].rotation);
    assert_string_equal(h[1].slot, "leaf");
    assert_string_not_equal(h[0].fingerprint, h[1].fingerprint);
    free(h);
    view_of(f, "rot", &v);
    assert_int_equal(v.rotations, 1);
    assert_true(v.certs[0].rotated_at > 0);
    cert_source_view_free(&v);

    /* A restart: the same certificate is not a rotation again. */
    certs_close(f->c);
    fx_open_certs(f);
    assert_int_equal(certs_add_config(f->c, &a, err, sizeof err), ST_OK);
    certs_check_all(f->c, time(NULL));
    assert_int_equal(certs_history(f->c, "rot", &h, &n), ST_OK);
    assert_int_equal(n, 2);
    free(h);
    view_of(f, "rot", &v);
    assert_int_equal(v.rotations, 0);
    assert_true(v.certs[0].rotated_at > 0); /* from the history */
    cert_source_view_free(&v);
    /* Unreadable now: the last certificates stay listed, with why. */
    write_text("rot.pem", "not any more\n");
    certs_check_all(f->c, time(NULL));
    view_of(f, "rot", &v);
    assert_int_equal(v.status, CERT_ERROR);
    assert_int_equal(v.n_certs, 1);
    assert_true(v.certs[0].has_cert);
    cert_source_view_free(&v);
    assert_int_equal(certs_history(f->c, "none", &h, &n), ST_NOT_FOUND);
    free(one), free(two);
}

/* Reads of one source at once (the janitor's, a SIGHUP's refresh, a new source's first read)
 * record each certificate once, and a rotation once. */
static void *
refresher(void *arg)
{
    for (int i = 0; i < 20; i++)
        certs_refresh(arg, "race");
    return NULL;
}

static size_t
race_history(struct fx *f)
{
    struct cert_seen_info *h = NULL;
    size_t n = 0;
    assert_int_equal(certs_history(f->c, "race", &h, &n), ST_OK);
    free(h);
    return n;
}

static void
race(struct fx *f)
{
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, refresher, f->c), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
}

static void
test_concurrent_reads_record_once(void **state)
{
    struct fx *f = *state;
    char err[256], *one = leaf_pem(&f->pki, "race", 90), *two = leaf_pem(&f->pki, "race", 91);
    struct cert_spec a = spec("race", CERT_FILE, "race.pem");
    struct cert_source_view v;

    write_text("race.pem", one);
    assert_int_equal(certs_add_config(f->c, &a, err, sizeof err), ST_OK);
    race(f);
    assert_int_equal(race_history(f), 1);
    write_text("race.pem", two);
    race(f);
    assert_int_equal(race_history(f), 2);
    view_of(f, "race", &v);
    assert_int_equal(v.rotations, 1);
    cert_source_view_free(&v);
    free(one), free(two);
}

static void
test_api_changes(void **state)
{
    struct fx *f = *state;
    char err[256], *pem = leaf_pem(&f->pki, "up.test", 90);
    struct cert_source_view v;
    const char *msg = NULL;
    struct cert_spec c = spec("conf", CERT_FILE, "x.pem");

    assert_int_equal(certs_add_config(f->c, &c, err, sizeof err), ST_OK);
    static const struct {
        const char *id, *target;
        enum cert_kind kind;
        enum status want;
    } bad[] = {
        {"rel", "relative/path", CERT_FILE, ST_INVALID},
        {"Bad Id", "/x", CERT_FILE, ST_INVALID},
        {"listener-x", "/x", CERT_FILE, ST_INVALID},
        {"ep", "no-port", CERT_ENDPOINT, ST_INVALID},
        {"ep", "host:0", CERT_ENDPOINT, ST_INVALID},
        {"ep", "host:70000", CERT_ENDPOINT, ST_INVALID},
        {"ep", "[::1:443", CERT_ENDPOINT, ST_INVALID},
        {"pem", "", CERT_PEM, ST_INVALID}, /* no PEM text */
        {"conf", "/x", CERT_FILE, ST_CONFLICT},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct cert_spec s = {.kind = bad[i].kind};
        snprintf(s.id, sizeof s.id, "%s", bad[i].id);
        snprintf(s.target, sizeof s.target, "%s", bad[i].target);
        assert_int_equal(certs_create(f->c, &s, &v, &msg, NULL), bad[i].want);
        assert_non_null(msg);
        msg = NULL;
    }
    struct cert_spec w = {.kind = CERT_FILE, .warning = DAY, .critical = 2 * DAY};
    snprintf(w.target, sizeof w.target, "/x");
    assert_int_equal(certs_create(f->c, &w, &v, &msg, NULL), ST_INVALID);

    /* Uploaded PEM is read at once; an id is made up when none is given. */
    struct cert_spec p = {.kind = CERT_PEM, .expect_chain = true};
    p.pem = strdup(pem); /* certs_create takes it */
    assert_int_equal(certs_create(f->c, &p, &v, &msg, NULL), ST_OK);
    assert_null(p.pem);
    assert_int_equal(strncmp(v.spec.id, "cert-", 5), 0);
    assert_int_equal(v.origin, CERT_FROM_API);
    assert_int_equal(v.n_certs, 0); /* not read yet: the caller refreshes it */
    char id[STORE_NAME_MAX];
    snprintf(id, sizeof id, "%s", v.spec.id);
    cert_source_view_free(&v);
    certs_refresh(f->c, id);
    view_of(f, id, &v);
    assert_int_equal(v.n_certs, 1);
    assert_int_equal(v.status, CERT_OK);
    cert_source_view_free(&v);
    assert_true(certs_known(f->c, id));

    /* Configured sources are not deleted over the API; API sources are, with their history. */
    assert_int_equal(certs_delete(f->c, "conf", &msg, NULL), ST_CONFLICT);
    assert_int_equal(certs_delete(f->c, id, &msg, NULL), ST_OK);
    assert_int_equal(certs_delete(f->c, id, &msg, NULL), ST_NOT_FOUND);
    assert_false(certs_known(f->c, id));
    struct cert_seen_info *h = NULL;
    size_t n = 0;
    assert_int_equal(certs_history(f->c, id, &h, &n), ST_NOT_FOUND);
    /* API sources come back after a restart. */
    struct cert_spec q = {.kind = CERT_FILE, .expect_chain = true};
    snprintf(q.id, sizeof q.id, "kept");
    snprintf(q.target, sizeof q.target, "/nonexistent/kept.pem");
    assert_int_equal(certs_create(f->c, &q, &v, &msg, NULL), ST_OK);
    cert_source_view_free(&v);
    certs_close(f->c);
    fx_open_certs(f);
    assert_true(certs_known(f->c, "kept"));
    assert_false(certs_known(f->c, "conf"));
    free(pem);
}

/* A port nobody listens on (refused) and one that never answers the handshake (timed out):
 * both error statuses with their reason, neither a hang. */
static void
test_dead_and_silent_endpoints(void **state)
{
    struct fx *f = *state;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    int silent = socket(AF_INET, SOCK_STREAM, 0), closed = socket(AF_INET, SOCK_STREAM, 0);
    struct cert_source_view v;
    const char *msg = NULL;
    int dead_port, silent_port;

    assert_int_equal(bind(closed, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(closed, (struct sockaddr *)&a, &al), 0);
    dead_port = ntohs(a.sin_port);
    close(closed); /* nothing listens there now */
    a.sin_port = 0;
    assert_int_equal(bind(silent, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(silent, 4), 0); /* accepted by the kernel, never answered */
    assert_int_equal(getsockname(silent, (struct sockaddr *)&a, &al), 0);
    silent_port = ntohs(a.sin_port);

    struct cert_spec d = {.kind = CERT_ENDPOINT}, s = {.kind = CERT_ENDPOINT};
    snprintf(d.id, sizeof d.id, "dead");
    snprintf(d.target, sizeof d.target, "127.0.0.1:%d", dead_port);
    snprintf(s.id, sizeof s.id, "silent");
    snprintf(s.target, sizeof s.target, "localhost:%d", silent_port);
    assert_int_equal(certs_create(f->c, &d, &v, &msg, NULL), ST_OK);
    cert_source_view_free(&v);
    assert_int_equal(certs_create(f->c, &s, &v, &msg, NULL), ST_OK);
    cert_source_view_free(&v);
    certs_check_all(f->c, time(NULL));
    view_of(f, "dead", &v);
    assert_int_equal(v.status, CERT_ERROR);
    assert_non_null(strstr(v.error, "Connection refused"));
    cert_source_view_free(&v);
    view_of(f, "silent", &v);
    assert_int_equal(v.status, CERT_ERROR);
    assert_non_null(strstr(v.error, "timed out"));
    assert_true(v.read_errors >= 1);
    cert_source_view_free(&v);
    close(silent);
}

static char *
render(struct certs *c)
{
    struct metrics *m = metrics_new();
    struct sbuf b = {0};
    size_t len;
    metrics_register(m, &(struct metrics_source){"certs", certs_metrics, c});
    metrics_render(m, &b);
    metrics_free(m);
    sbuf_add(&b, "", 1);
    return sbuf_take(&b, &len);
}

static void
test_metrics_and_inventory(void **state)
{
    struct fx *f = *state;
    char err[256], *text = render(f->c), *pem = leaf_pem(&f->pki, "m.test", 20);

    /* Nothing configured: every family present, zero series where there is nothing. */
    static const char *const families[] = {"difyguard_cert_not_before_timestamp_seconds",
                                           "difyguard_cert_not_after_timestamp_seconds",
                                           "difyguard_cert_renewal_due_timestamp_seconds",
                                           "difyguard_cert_expired",
                                           "difyguard_cert_weak",
                                           "difyguard_cert_read_errors_total",
                                           "difyguard_cert_rotations_total"};
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++) {
        char want[160];
        snprintf(want, sizeof want, "# TYPE %s ", families[i]);
        assert_non_null(strstr(text, want));
    }
    assert_non_null(strstr(text, "\ndifyguard_cert_sources 0\n"));
    assert_non_null(strstr(text, "difyguard_certs{status=\"error\"} 0\n"));
    free(text);

    write_text("m.pem", pem);
    struct cert_spec a = spec("m", CERT_FILE, "m.pem"), e = spec("gone", CERT_FILE, "gone.pem");
    assert_int_equal(certs_add_config(f->c, &a, err, sizeof err), ST_OK);
    assert_int_equal(certs_add_config(f->c, &e, err, sizeof err), ST_OK);
    certs_check_all(f->c, time(NULL));
    text = render(f->c);
    assert_non_null(strstr(text, "difyguard_cert_not_after_timestamp_seconds{source_id=\"m\","
                                 "slot=\"leaf\",subject_cn=\"m.test\",serial=\""));
    assert_non_null(strstr(text, "difyguard_certs{status=\"warning\"} 1\n"));
    assert_non_null(strstr(text, "difyguard_certs{status=\"error\"} 1\n"));
    assert_non_null(strstr(text, "difyguard_cert_read_errors_total{source_id=\"gone\"} 1\n"));
    assert_non_null(strstr(text, "difyguard_cert_source_error{source_id=\"gone\"} 1\n"));
    assert_non_null(strstr(text, "reason=\"no_san\"} 0\n"));
    free(text);

    struct inv_cert *inv = NULL;
    size_t n = 0;
    assert_int_equal(certs_inventory(f->c, time(NULL), &inv, &n), ST_OK);
    assert_int_equal(n, 2);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(inv[i].source, "m") == 0) {
            assert_false(inv[i].error);
            assert_string_equal(inv[i].subject, "CN=m.test");
            assert_true(inv[i].renewal_due > inv[i].not_before);
            assert_int_equal(strlen(inv[i].id), 32);
        } else {
            assert_string_equal(inv[i].source, "gone"); /* never dropped */
            assert_true(inv[i].error);
        }
    }
    free(inv);
    free(pem);
}

int
main(void)
{
    if (crypto_init() != ST_OK)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_judgement_table),
        cmocka_unit_test_setup_teardown(test_sources_statuses_and_chains, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotation_history_survives_a_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_reads_record_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_changes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dead_and_silent_endpoints, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics_and_inventory, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
