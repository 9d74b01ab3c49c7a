/* SPDX-License-Identifier: Apache-2.0 */
/* server/main_tls.h -- `difyguard serve`'s TLS identity, certificate inventory and SIGHUP reload
 * (main_tls.c), for main.c only. Functions returning int return -1 to go on, else the exit code
 * after one line on stderr. */
#ifndef DG_SERVER_MAIN_TLS_H
#define DG_SERVER_MAIN_TLS_H

#include <stdint.h>

#include "common/status.h"
#include "server/service.h"

struct tls;
struct jwt_verifier;

struct serve_tls_opts {
    const char *cert, *key, *client_ca, *min_version, *ciphers;
};
struct serve_certs_opts {
    const char *sources, *ca_bundle;
    int64_t warning, critical, check_interval, probe_timeout;
};

/* The listener's TLS identity (NULL without --tls-cert). */
int serve_tls_open(struct tls **out, const struct serve_tls_opts *o);
/* svc->certs, its sources and metrics (the TLS series too, zero without TLS). */
int serve_certs_open(struct service *svc, const struct serve_certs_opts *o, struct tls *tls);
/* The JWT configuration of path into *out (err: one line) / into svc->jwt at start. */
NODISCARD enum status serve_jwt_read(struct jwt_verifier **out, const char *path, char *err,
                                     size_t err_len);
int serve_jwt_load(struct service *svc, const char *path);
/* The janitor duty checking the TLS files (arg from serve_tls_duty_arg): a changed pair, taken or
 * refused, is read into the inventory at once. */
void *serve_tls_duty_arg(struct service *svc, struct tls *tls);
void serve_tls_duty(void *arg, int64_t now_ms);
/* Wait for SIGTERM or SIGINT (returned); each SIGHUP reloads the TLS files and the JWT
 * configuration (a bad one is refused and logged; the one in use stays). */
int serve_wait(struct service *svc, struct tls *tls, const char *jwt_path);

#endif
