/* SPDX-License-Identifier: Apache-2.0 */
/* server/http/tls.c -- difyguard's own TLS identity and its replacement without a restart (see
 * tls.h). A loaded pair is reference counted: a handshake holds it only while GnuTLS copies what
 * it needs (DEINIT_ALL makes GnuTLS free those copies with its session), so the pair can be
 * replaced at any time. Error texts name files and settings, never key bytes. */
#include "server/http/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <sodium.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/text.h"
#include "common/xmem.h"
#include "crypto/keyfile.h"

#define TLS_FILE_MAX (1u << 20)
#define NOT_YET_SKEW 300 /* seconds a new certificate may start in the future (clock skew) */

/* One loaded pair (and the client CA), shared by the handshakes that copy from it. */
struct pair {
    atomic_uint refs;
    gnutls_datum_t *der; /* the chain, DER, leaf first */
    unsigned n;
    gnutls_x509_privkey_t key;
    gnutls_x509_trust_list_t ca; /* NULL: no mutual TLS */
    char *pem;                   /* the chain as read (the inventory reads it) */
    size_t pem_len;
    char serial[64];
    int64_t not_after, loaded_at;
};

/* What a path resolves to: a change of any of these is a change of the file. */
struct fsig {
    bool ok;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
};

struct tls {
    char *cert_file, *key_file, *ca_file;
    char prio[512];
    pthread_mutex_t reload_mu; /* one reload at a time (janitor, SIGHUP) */
    pthread_mutex_t mu;        /* cur, sig, bad, error */
    struct pair *cur;
    struct fsig sig[3], bad[3];
    bool bad_dates; /* the refused pair was refused for its dates only: retry as time passes */
    char error[TLS_ERROR_MAX];
    atomic_uint_fast64_t reloads, refusals;
};

/* The process's identity: GnuTLS's certificate callback carries no user pointer. */
static _Atomic(struct tls *) g_tls;

/* --- pairs --- */

static void
pair_put(struct pair *p)
{
    if (p == NULL || atomic_fetch_sub(&p->refs, 1) != 1)
        return;
    for (unsigned i = 0; i < p->n; i++)
        gnutls_free(p->der[i].data);
    free(p->der);
    gnutls_x509_privkey_deinit(p->key); /* GnuTLS zeroes the key's numbers */
    if (p->ca != NULL)
        gnutls_x509_trust_list_deinit(p->ca, 1);
    free(p->pem);
    free(p);
}

static struct pair *
pair_get(struct tls *t)
{
    pthread_mutex_lock(&t->mu);
    struct pair *p = t->cur;
    if (p != NULL)
        atomic_fetch_add(&p->refs, 1);
    pthread_mutex_unlock(&t->mu);
    return p;
}

/* A whole file (at most TLS_FILE_MAX bytes); the key file must pass the key file rule first. */
static uint8_t *
read_all(const char *path, const char *what, bool secret, size_t *len, char *err, size_t err_len)
{
    struct stat sb;
    uint8_t *buf = NULL;
    int fd = -1;

    *len = 0;
    if (secret) {
        if (keyfile_open(&fd, what, path, err, err_len) != ST_OK)
            return NULL;
    } else if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        snprintf(err, err_len, "%s %s: %s", what, path, strerror(errno));
        return NULL;
    }
    if (fstat(fd, &sb) != 0 || sb.st_size <= 0 || sb.st_size > (off_t)TLS_FILE_MAX) {
        snprintf(err, err_len, "%s %s: empty, or larger than 1 MiB", what, path);
        goto out;
    }
    buf = secret ? sodium_malloc((size_t)sb.st_size + 1) : xmalloc((size_t)sb.st_size + 1);
    if (buf == NULL || read(fd, buf, (size_t)sb.st_size) != sb.st_size) {
        snprintf(err, err_len, "%s %s: cannot read it", what, path);
        if (secret)
            sodium_free(buf);
        else
            free(buf);
        buf = NULL;
        goto out;
    }
    buf[sb.st_size] = '\0';
    *len = (size_t)sb.st_size;
out:
    close(fd);
    return buf;
}

/* The private key: parsed, its bytes wiped right after. */
static bool
load_key(struct pair *p, const char *path, char *err, size_t err_len)
{
    size_t len = 0;
    uint8_t *pem = read_all(path, "--tls-key", true, &len, err, err_len);
    gnutls_datum_t d = {pem, (unsigned)len};
    bool ok = false;

    if (pem == NULL)
        return false;
    if (gnutls_x509_privkey_init(&p->key) < 0 ||
        gnutls_x509_privkey_import2(p->key, &d, GNUTLS_X509_FMT_PEM, NULL, 0) < 0)
        snprintf(err, err_len, "--tls-key %s: not an unencrypted PEM private key", path);
    else
        ok = true;
    sodium_free(pem); /* sodium_free wipes */
    return ok;
}

/* The leaf's public key is the key's (both by their SHA-256 key ids: public values). */
static bool
key_matches(gnutls_x509_crt_t leaf, gnutls_x509_privkey_t key)
{
    unsigned char a[64], b[64];
    size_t la = sizeof a, lb = sizeof b;

    return gnutls_x509_crt_get_key_id(leaf, GNUTLS_KEYID_USE_SHA256, a, &la) == 0 &&
           gnutls_x509_privkey_get_key_id(key, GNUTLS_KEYID_USE_SHA256, b, &lb) == 0 && la == lb &&
           memcmp(a, b, la) == 0;
}

/* The leaf's dates, serial, and the chain's DER. *dates tells a refusal for dates alone. */
static bool
load_chain(struct pair *p, gnutls_x509_crt_t *crts, unsigned n, bool *dates, char *err,
           size_t err_len)
{
    int64_t now = clock_now_s(), nb = gnutls_x509_crt_get_activation_time(crts[0]);
    unsigned char serial[40];
    size_t sl = sizeof serial;
    char t[32];

    p->not_after = gnutls_x509_crt_get_expiration_time(crts[0]);
    if (p->not_after <= now || nb > now + NOT_YET_SKEW) {
        clock_rfc3339(t, p->not_after <= now ? p->not_after : nb);
        snprintf(err, err_len, "--tls-cert: the certificate %s %s",
                 p->not_after <= now ? "expired at" : "is not valid before", t);
        *dates = true;
        return false;
    }
    if (gnutls_x509_crt_get_serial(crts[0], serial, &sl) == 0)
        for (size_t i = 0; i < sl && 2 * i + 2 < sizeof p->serial; i++)
            snprintf(p->serial + 2 * i, 3, "%02X", serial[i]);
    p->der = xcalloc(n, sizeof *p->der);
    for (; p->n < n; p->n++) {
        if (gnutls_x509_crt_export2(crts[p->n], GNUTLS_X509_FMT_DER, &p->der[p->n]) < 0) {
            snprintf(err, err_len, "--tls-cert: a certificate cannot be encoded");
            return false;
        }
    }
    return true;
}

static bool
load_ca(struct pair *p, const char *path, char *err, size_t err_len)
{
    size_t len = 0;
    uint8_t *pem = read_all(path, "--tls-client-ca", false, &len, err, err_len);
    gnutls_datum_t d = {pem, (unsigned)len};
    bool ok = false;

    if (pem == NULL)
        return false;
    if (gnutls_x509_trust_list_init(&p->ca, 0) < 0 ||
        gnutls_x509_trust_list_add_trust_mem(p->ca, &d, NULL, GNUTLS_X509_FMT_PEM, 0, 0) <= 0)
        snprintf(err, err_len, "--tls-client-ca %s: no PEM CA certificate", path);
    else
        ok = true;
    free(pem);
    return ok;
}

/* Load and check a pair: *out, or NULL with err (and *dates when only its dates are wrong). */
static struct pair *
pair_load(const struct tls *t, bool *dates, char *err, size_t err_len)
{
    struct pair *p = xcalloc(1, sizeof *p);
    gnutls_x509_crt_t *crts = NULL;
    unsigned n = 0;
    bool ok = false;

    *dates = false;
    atomic_init(&p->refs, 1);
    p->pem = (char *)read_all(t->cert_file, "--tls-cert", false, &p->pem_len, err, err_len);
    gnutls_datum_t d = {(unsigned char *)p->pem, (unsigned)p->pem_len};
    if (p->pem == NULL)
        goto out;
    if (gnutls_x509_crt_list_import2(&crts, &n, &d, GNUTLS_X509_FMT_PEM, 0) < 0 || n == 0) {
        snprintf(err, err_len, "--tls-cert %s: no PEM certificate", t->cert_file);
        goto out;
    }
    if (!load_key(p, t->key_file, err, err_len))
        goto out;
    if (!key_matches(crts[0], p->key)) {
        snprintf(err, err_len, "--tls-key does not match the certificate of --tls-cert");
        goto out;
    }
    if (!load_chain(p, crts, n, dates, err, err_len) ||
        (t->ca_file != NULL && !load_ca(p, t->ca_file, err, err_len)))
        goto out;
    p->loaded_at = clock_now_s();
    ok = true;
out:
    for (unsigned i = 0; i < n; i++)
        gnutls_x509_crt_deinit(crts[i]);
    gnutls_free(crts);
    if (!ok) {
        pair_put(p);
        return NULL;
    }
    return p;
}

/* --- replacement --- */

static void
sig_of(struct fsig *s, const char *path)
{
    struct stat sb;

    memset(s, 0, sizeof *s);
    if (path == NULL || stat(path, &sb) != 0) /* stat follows symlinks: a swap is a change */
        return;
    s->ok = true;
    s->dev = sb.st_dev;
    s->ino = sb.st_ino;
    s->size = sb.st_size;
    s->mtime = sb.st_mtim;
}

static bool
sigs_equal(const struct fsig *a, const struct fsig *b)
{
    for (int i = 0; i < 3; i++) {
        if (a[i].ok != b[i].ok || a[i].dev != b[i].dev || a[i].ino != b[i].ino ||
            a[i].size != b[i].size || a[i].mtime.tv_sec != b[i].mtime.tv_sec ||
            a[i].mtime.tv_nsec != b[i].mtime.tv_nsec)
            return false;
    }
    return true;
}

static void
refused(struct tls *t, const struct fsig *now, bool dates, bool changed, const char *why)
{
    char msg[TLS_ERROR_MAX * 2];

    pthread_mutex_lock(&t->mu);
    if ((size_t)snprintf(msg, sizeof msg, "new TLS pair refused (serving serial %s): %s",
                         t->cur != NULL ? t->cur->serial : "none", why) >= sizeof msg)
        msg[sizeof msg - 1] = '\0';
    (void)text_copy_safe(t->error, sizeof t->error, msg);
    memcpy(t->bad, now, sizeof t->bad);
    t->bad_dates = dates;
    pthread_mutex_unlock(&t->mu);
    if (!changed)
        return; /* the same files refused again (dates pending): said already */
    atomic_fetch_add(&t->refusals, 1);
    log_msg(LOG_ERROR, "tls_reload_refused", "detail", t->error, LOG_END);
}

int
tls_reload(struct tls *t, bool force)
{
    struct fsig now[3];
    char err[TLS_ERROR_MAX];
    bool dates = false;
    int rc = 0;

    pthread_mutex_lock(&t->reload_mu);
    sig_of(&now[0], t->cert_file);
    sig_of(&now[1], t->key_file);
    sig_of(&now[2], t->ca_file);
    pthread_mutex_lock(&t->mu);
    bool same = sigs_equal(now, t->sig), known_bad = sigs_equal(now, t->bad) && t->error[0];
    bool retry_dates = known_bad && t->bad_dates;
    pthread_mutex_unlock(&t->mu);
    if (!force && (same || (known_bad && !retry_dates)))
        goto out;
    struct pair *p = pair_load(t, &dates, err, sizeof err);
    if (p == NULL) {
        refused(t, now, dates, force || !known_bad, err);
        rc = -1;
        goto out;
    }
    pthread_mutex_lock(&t->mu);
    struct pair *old = t->cur;
    t->cur = p;
    memcpy(t->sig, now, sizeof t->sig);
    t->error[0] = '\0';
    pthread_mutex_unlock(&t->mu);
    pair_put(old); /* handshakes still copying from it hold their own reference */
    atomic_fetch_add(&t->reloads, 1);
    char na[32];
    clock_rfc3339(na, p->not_after);
    log_msg(LOG_INFO, "tls_reloaded", "serial", p->serial, "not_after", na, "client_ca",
            p->ca != NULL ? "on" : "off", LOG_END);
    rc = 1;
out:
    pthread_mutex_unlock(&t->reload_mu);
    return rc;
}

/* --- handshakes --- */

/* Mutual TLS: the chain the client presented, verified now against the client CA, for use by
 * a TLS client (an absent extended key usage allows it). Non-zero ends the handshake. */
static int
verify_client(gnutls_session_t session)
{
    struct tls *t = atomic_load(&g_tls);
    struct pair *p = t != NULL ? pair_get(t) : NULL;
    gnutls_x509_crt_t crts[16];
    unsigned n = 0, got = 0, status = 1;
    const gnutls_datum_t *raw = gnutls_certificate_get_peers(session, &n);
    gnutls_typed_vdata_st purpose = {GNUTLS_DT_KEY_PURPOSE_OID,
                                     (unsigned char *)GNUTLS_KP_TLS_WWW_CLIENT, 0};

    if (p == NULL || p->ca == NULL || raw == NULL || n == 0 || n > 16)
        goto out;
    for (; got < n; got++) {
        if (gnutls_x509_crt_init(&crts[got]) < 0)
            goto out;
        if (gnutls_x509_crt_import(crts[got], &raw[got], GNUTLS_X509_FMT_DER) < 0) {
            got++;
            goto out;
        }
    }
    if (gnutls_x509_trust_list_verify_crt2(p->ca, crts, n, &purpose, 1, 0, &status, NULL) < 0)
        status = 1;
out:
    for (unsigned i = 0; i < got; i++)
        gnutls_x509_crt_deinit(crts[i]);
    pair_put(p);
    return status == 0 ? 0 : GNUTLS_E_CERTIFICATE_ERROR;
}

/* gnutls_certificate_retrieve_function3: copies of the current pair, freed by GnuTLS with the
 * session (DEINIT_ALL); with mutual TLS on, the client must present a certificate. */
static int
on_cert(gnutls_session_t session, const struct gnutls_cert_retr_st *info, gnutls_pcert_st **certs,
        unsigned int *n_certs, gnutls_ocsp_data_st **ocsp, unsigned int *n_ocsp,
        gnutls_privkey_t *key, unsigned int *flags)
{
    struct tls *t = atomic_load(&g_tls);
    struct pair *p = t != NULL ? pair_get(t) : NULL;
    gnutls_pcert_st *pc = NULL;
    gnutls_privkey_t k = NULL;
    unsigned done = 0;
    int rc = -1;

    (void)info;
    *certs = NULL, *n_certs = 0, *ocsp = NULL, *n_ocsp = 0, *key = NULL, *flags = 0;
    if (p == NULL || (pc = gnutls_calloc(p->n, sizeof *pc)) == NULL)
        goto out;
    for (; done < p->n; done++) {
        if (gnutls_pcert_import_x509_raw(&pc[done], &p->der[done], GNUTLS_X509_FMT_DER, 0) < 0)
            goto out;
    }
    if (gnutls_privkey_init(&k) < 0 ||
        gnutls_privkey_import_x509(k, p->key, GNUTLS_PRIVKEY_IMPORT_COPY) < 0)
        goto out;
    if (p->ca != NULL) {
        /* Before the server's CertificateRequest goes out (TLS 1.2 and 1.3 alike): no
         * certificate, or one the client CA did not issue, ends the handshake. */
        gnutls_certificate_server_set_request(session, GNUTLS_CERT_REQUIRE);
        gnutls_session_set_verify_function(session, verify_client);
    }
    *certs = pc, *n_certs = p->n, *key = k, *flags = GNUTLS_CERT_RETR_DEINIT_ALL;
    rc = 0;
out:
    if (rc != 0) {
        for (unsigned i = 0; i < done; i++)
            gnutls_pcert_deinit(&pc[i]);
        gnutls_free(pc);
        gnutls_privkey_deinit(k);
    }
    pair_put(p);
    return rc;
}

void *
tls_cert_callback(void)
{
    return (void *)on_cert;
}

const char *
tls_priorities(const struct tls *t)
{
    return t->prio;
}

void
tls_peer_subject(void *session, char *out, size_t cap)
{
    unsigned n = 0;
    const gnutls_datum_t *raw = session ? gnutls_certificate_get_peers(session, &n) : NULL;
    gnutls_x509_crt_t crt = NULL;
    gnutls_datum_t dn = {NULL, 0};

    if (cap > 0)
        out[0] = '\0';
    if (raw == NULL || n == 0 || gnutls_x509_crt_init(&crt) < 0)
        return;
    if (gnutls_x509_crt_import(crt, &raw[0], GNUTLS_X509_FMT_DER) == 0 &&
        gnutls_x509_crt_get_dn3(crt, &dn, 0) == 0 && dn.data != NULL) {
        char *z = xstrndup((const char *)dn.data, dn.size);
        (void)text_copy_safe(out, cap, z);
        free(z);
    }
    gnutls_free(dn.data);
    gnutls_x509_crt_deinit(crt);
}

/* --- the identity --- */

/* "NORMAL" narrowed to TLS 1.3 (and 1.2), the given AEAD ciphers and ECDHE key exchange on
 * modern curves; checked by GnuTLS itself. */
static enum status
priorities(struct tls *t, const struct tls_settings *s, char *err, size_t err_len)
{
    const char *min = s->min_version != NULL ? s->min_version : "1.2";
    const char *ciphers = s->ciphers != NULL ? s->ciphers : TLS_CIPHERS_DEFAULT;
    size_t len;
    gnutls_priority_t prio = NULL;
    const char *at = NULL;

    if (strcmp(min, "1.2") != 0 && strcmp(min, "1.3") != 0) {
        snprintf(err, err_len, "--tls-min-version must be 1.2 or 1.3");
        return ST_INVALID;
    }
    len = (size_t)snprintf(t->prio, sizeof t->prio, "NORMAL:-VERS-ALL:+VERS-TLS1.3%s:-CIPHER-ALL",
                           strcmp(min, "1.2") == 0 ? ":+VERS-TLS1.2" : "");
    for (const char *c = ciphers; *c != '\0' && len < sizeof t->prio;) {
        size_t n = strcspn(c, ":");
        if (n == 0 || n > 32 || strspn(c, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") < n) {
            snprintf(err, err_len, "--tls-ciphers: GnuTLS cipher names separated by ':'");
            return ST_INVALID;
        }
        len += (size_t)snprintf(t->prio + len, sizeof t->prio - len, ":+%.*s", (int)n, c);
        c += n + (c[n] == ':');
    }
    if (len + 80 >= sizeof t->prio) {
        snprintf(err, err_len, "--tls-ciphers: too many ciphers");
        return ST_INVALID;
    }
    /* ECDHE over X25519, P-256 and P-384 only, chosen in the client's order: with the server's
     * order (%SERVER_PRECEDENCE) GnuTLS asks a TLS 1.3 client that sent an X25519 share for a
     * P-256 one (HelloRetryRequest), a round trip that cost about 40 ms per handshake. */
    (void)snprintf(t->prio + len, sizeof t->prio - len,
                   ":-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:-GROUP-ALL:+GROUP-X25519:"
                   "+GROUP-SECP256R1:+GROUP-SECP384R1");
    if (gnutls_priority_init(&prio, t->prio, &at) < 0) {
        snprintf(err, err_len,
                 "--tls-ciphers or --tls-min-version: GnuTLS refuses the priority "
                 "string (unknown cipher?)");
        return ST_INVALID;
    }
    gnutls_priority_deinit(prio);
    return ST_OK;
}

enum status
tls_new(struct tls **out, const struct tls_settings *s, char *err, size_t err_len)
{
    struct tls *t = xcalloc(1, sizeof *t), *none = NULL;
    enum status st;

    *out = NULL;
    t->cert_file = xstrdup(s->cert_file);
    t->key_file = xstrdup(s->key_file);
    t->ca_file = s->client_ca_file != NULL ? xstrdup(s->client_ca_file) : NULL;
    pthread_mutex_init(&t->mu, NULL);
    pthread_mutex_init(&t->reload_mu, NULL);
    if ((st = priorities(t, s, err, err_len)) != ST_OK)
        goto fail;
    bool dates = false;
    sig_of(&t->sig[0], t->cert_file); /* before reading: a change while reading shows next */
    sig_of(&t->sig[1], t->key_file);
    sig_of(&t->sig[2], t->ca_file);
    if ((t->cur = pair_load(t, &dates, err, err_len)) == NULL) {
        st = ST_INVALID;
        goto fail;
    }
    if (!atomic_compare_exchange_strong(&g_tls, &none, t)) {
        snprintf(err, err_len, "one TLS identity per process");
        st = ST_CONFLICT;
        goto fail;
    }
    *out = t;
    return ST_OK;
fail:
    tls_free(t);
    return st;
}

void
tls_free(struct tls *t)
{
    struct tls *self = t;

    if (t == NULL)
        return;
    (void)atomic_compare_exchange_strong(&g_tls, &self, NULL);
    pair_put(t->cur);
    free(t->cert_file);
    free(t->key_file);
    free(t->ca_file);
    pthread_mutex_destroy(&t->mu);
    pthread_mutex_destroy(&t->reload_mu);
    free(t);
}

void
tls_served(void *arg, char **pem, size_t *len, char error[static TLS_ERROR_MAX])
{
    struct tls *t = arg;

    *pem = NULL;
    *len = 0;
    pthread_mutex_lock(&t->mu);
    if (t->cur != NULL) {
        *pem = xstrndup(t->cur->pem, t->cur->pem_len);
        *len = t->cur->pem_len;
    }
    memcpy(error, t->error, TLS_ERROR_MAX);
    pthread_mutex_unlock(&t->mu);
}

void
tls_stats(const struct tls *t, struct tls_stats *out)
{
    struct tls *m = (struct tls *)t; /* the lock only */

    memset(out, 0, sizeof *out);
    out->reloads = atomic_load(&t->reloads);
    out->refusals = atomic_load(&t->refusals);
    pthread_mutex_lock(&m->mu);
    if (t->cur != NULL) {
        out->loaded_at = t->cur->loaded_at;
        out->not_after = t->cur->not_after;
        out->mtls = t->cur->ca != NULL;
    }
    pthread_mutex_unlock(&m->mu);
}
