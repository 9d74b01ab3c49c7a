/* SPDX-License-Identifier: Apache-2.0 */
/* server/main_tls.c -- what `difyguard serve` adds for issue 9: its own TLS identity (checked
 * again by a janitor duty and on SIGHUP), the certificate inventory (--cert-sources, the API's
 * sources, the listener's own certificate) with its metrics, and SIGHUP reloading the TLS files
 * and the JWT configuration at once. Split from main.c to keep it readable; same layer. */
#include "server/main_tls.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "common/log.h"
#include "server/auth/jwt.h"
#include "server/certs.h"
#include "server/handlers/handlers.h"
#include "server/http/tls.h"
#include "server/obs/metrics.h"

#define EXIT_USAGE 2

static int fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* One line on stderr (main.c's rule); returns code. */
static int
fail(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "difyguard: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return code;
}

/* The JWT configuration of path into *out; err gets one line. */
enum status
serve_jwt_read(struct jwt_verifier **out, const char *path, char *err, size_t err_len)
{
    json_error_t je;
    char why[400];
    json_t *cfg = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (cfg == NULL) {
        snprintf(err, err_len, "--jwt-config %s: not a JSON file (line %d)", path, je.line);
        return ST_INVALID;
    }
    enum status st = jwt_verifier_from_json(out, why, sizeof why, cfg);
    json_decref(cfg);
    if (st != ST_OK)
        snprintf(err, err_len, "--jwt-config %s: %s", path, why);
    return st;
}

int
serve_jwt_load(struct service *svc, const char *path)
{
    char err[512];
    if (serve_jwt_read(&svc->jwt, path, err, sizeof err) != ST_OK)
        return fail(EXIT_USAGE, "%s", err);
    return -1;
}

/* SIGHUP: the TLS files and the JWT configuration, at once. A bad one is refused (logged) and
 * the one in use stays. */
static void
reload_on_hup(struct service *svc, struct tls *tls, const char *jwt_path)
{
    struct jwt_verifier *v = NULL;
    char err[512];
    int t = tls != NULL ? tls_reload(tls, true) : 0;
    const char *jwt = "off";

    if (tls != NULL && svc->certs != NULL)
        certs_refresh(svc->certs, "listener-api");
    if (jwt_path != NULL && serve_jwt_read(&v, jwt_path, err, sizeof err) == ST_OK) {
        service_jwt_set(svc, v);
        jwt = "reloaded";
    } else if (jwt_path != NULL) {
        log_msg(LOG_ERROR, "jwt_reload_refused", "detail", err, LOG_END);
        jwt = "refused";
    }
    log_msg(LOG_INFO, "sighup_reload", "tls",
            t > 0   ? "reloaded"
            : t < 0 ? "refused"
                    : "off",
            "jwt", jwt, LOG_END);
}

int
serve_wait(struct service *svc, struct tls *tls, const char *jwt_path)
{
    sigset_t set;
    int sig = 0;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    for (;;) {
        sigwait(&set, &sig);
        if (sig != SIGHUP)
            return sig;
        reload_on_hup(svc, tls, jwt_path);
    }
}

/* Our own TLS and the inventory's view of it: a changed pair (taken or refused) is read again
 * at once. */
struct own_tls {
    struct tls *tls;
    struct certs *certs;
};
static struct own_tls own_tls;

void *
serve_tls_duty_arg(struct service *svc, struct tls *tls)
{
    own_tls = (struct own_tls){tls, svc->certs};
    return &own_tls;
}

void
serve_tls_duty(void *arg, int64_t now_ms)
{
    struct own_tls *t = arg;
    (void)now_ms;
    if (tls_reload(t->tls, false) != 0 && t->certs != NULL)
        certs_refresh(t->certs, "listener-api");
}

/* --- the certificate inventory and difyguard's own TLS (issue 9) --- */

static void
tls_metrics(const void *self, struct metrics_out *o)
{
    struct tls_stats st = {0};
    if (self != NULL)
        tls_stats(self, &st);
    metrics_counter(o, "difyguard_tls_reloads_total",
                    "TLS certificate and key pairs replaced without a restart", st.reloads);
    metrics_counter(o, "difyguard_tls_reload_refusals_total",
                    "new TLS certificate and key pairs refused (unreadable, key mismatch, not "
                    "valid now): the pair in use kept serving",
                    st.refusals);
}

/* The sources of --cert-sources: {"sources": [{...}, ...]}, each as POST /v1/certificates takes
 * it, with an id. */
static int
load_cert_sources(struct certs *c, const char *path)
{
    json_error_t je;
    char err[512];
    const char *msg = NULL;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je), *arr, *item;
    size_t i;
    int rc = -1;

    if (root == NULL)
        return fail(EXIT_USAGE, "--cert-sources %s: not a JSON file (line %d)", path, je.line);
    arr = json_object_get(root, "sources");
    if (!json_is_object(root) || json_object_size(root) != 1 || !json_is_array(arr)) {
        rc = fail(EXIT_USAGE, "--cert-sources %s: want {\"sources\": [...]}", path);
        goto out;
    }
    json_array_foreach (arr, i, item) {
        struct cert_spec spec;
        memset(&spec, 0, sizeof spec);
        if (!json_is_object(item) || certs_spec_parse(item, &spec, &msg) != ST_OK) {
            rc = fail(EXIT_USAGE, "--cert-sources %s: source %zu: %s", path, i + 1,
                      json_is_object(item) ? msg : "not a JSON object");
            cert_spec_free(&spec);
            goto out;
        }
        enum status st = certs_add_config(c, &spec, err, sizeof err);
        cert_spec_free(&spec);
        if (st != ST_OK) {
            rc = fail(EXIT_USAGE, "--cert-sources %s: %s", path, err);
            goto out;
        }
    }
out:
    json_decref(root);
    return rc;
}

int
serve_certs_open(struct service *svc, const struct serve_certs_opts *o, struct tls *tls)
{
    struct certs_settings cs = {o->warning, o->critical, o->check_interval, o->probe_timeout,
                                o->ca_bundle};
    char err[512];
    int rc;

    if (o->critical > o->warning)
        return fail(EXIT_USAGE, "%s", "--cert-critical must not exceed --cert-warning");
    if (certs_open(&svc->certs, svc->store, &cs, err, sizeof err) != ST_OK)
        return fail(EXIT_USAGE, "%s", err);
    certs_set_audit(svc->certs, svc->audit);
    if (o->sources != NULL && (rc = load_cert_sources(svc->certs, o->sources)) >= 0)
        return rc;
    if (tls != NULL)
        certs_add_listener(svc->certs, "api", tls_served, tls);
    metrics_register(svc->metrics, &(struct metrics_source){"certs", certs_metrics, svc->certs});
    metrics_register(svc->metrics, &(struct metrics_source){"tls", tls_metrics, tls});
    return -1;
}

int
serve_tls_open(struct tls **out, const struct serve_tls_opts *o)
{
    struct tls_settings ts = {o->cert, o->key, o->client_ca, o->min_version, o->ciphers};
    char err[512];

    *out = NULL;
    if ((o->cert == NULL) != (o->key == NULL))
        return fail(EXIT_USAGE, "%s", "--tls-cert and --tls-key go together");
    if (o->client_ca != NULL && o->cert == NULL)
        return fail(EXIT_USAGE, "%s", "--tls-client-ca needs --tls-cert and --tls-key");
    if (o->cert == NULL)
        return -1;
    enum status st = tls_new(out, &ts, err, sizeof err);
    if (st != ST_OK)
        return fail(st == ST_FORBIDDEN || st == ST_INVALID ? EXIT_USAGE : 1, "%s", err);
    return -1;
}
