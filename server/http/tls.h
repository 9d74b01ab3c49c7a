/* SPDX-License-Identifier: Apache-2.0 */
/* server/http/tls.h -- difyguard's own TLS identity: the certificate chain and key its listeners
 * serve (GnuTLS, as libmicrohttpd is built with it), TLS 1.2+ with modern AEAD ciphers, optional
 * mutual TLS, and replacement without a restart. libmicrohttpd asks for the certificate at each
 * handshake (MHD_OPTION_HTTPS_CERT_CALLBACK2); each handshake gets its own copy of the pair
 * current then, freed by GnuTLS with its session, so a replaced pair never has to outlive the
 * connections that use it and established connections are never touched. A new pair is checked
 * (readable, the key file rule, key matches certificate, valid now) before it replaces the
 * served one; a bad pair is refused, the old one keeps serving, the reason is logged once and
 * kept for the inventory, and the refusal counted. One identity per process: the listeners of
 * one process share it. The key sits in GnuTLS memory (SECURITY.md). Thread-safe. */
#ifndef DG_SERVER_HTTP_TLS_H
#define DG_SERVER_HTTP_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/status.h"

#define TLS_ERROR_MAX 256
#define TLS_CIPHERS_DEFAULT "AES-256-GCM:AES-128-GCM:CHACHA20-POLY1305"

struct tls_settings {
    const char *cert_file;      /* PEM chain, leaf first */
    const char *key_file;       /* PEM private key (crypto/keyfile.h rule) */
    const char *client_ca_file; /* mutual TLS: clients must present a certificate this PEM
                                 * bundle issued; NULL = off */
    const char *min_version;    /* "1.2" (NULL) or "1.3" */
    const char *ciphers;        /* ':'-separated GnuTLS cipher names (NULL: TLS_CIPHERS_DEFAULT);
                                 * AEAD ciphers only: MACs other than AEAD are off */
};

struct tls;

/* Load and check the pair (and the client CA), build the priority string. ST_INVALID with err
 * (one line naming the file or the setting, never key bytes) when anything is unusable; the
 * key file rule's ST_FORBIDDEN likewise. Fails with ST_CONFLICT while another exists. */
NODISCARD enum status tls_new(struct tls **out, const struct tls_settings *s, char *err,
                              size_t err_len);
/* After every listener using it has stopped. NULL-safe. */
void tls_free(struct tls *t);

/* Look at the files (what each path resolves to: a Kubernetes secret's symlink swap counts);
 * when any changed, or force (SIGHUP), load and check them and serve the new pair to new
 * handshakes. Returns 1 replaced, 0 unchanged, -1 refused (the old pair serves on; logged once
 * per change of the files, counted, kept for tls_served). */
int tls_reload(struct tls *t, bool force);

/* For libmicrohttpd: the priority string and the certificate callback
 * (gnutls_certificate_retrieve_function3, declared as void to keep GnuTLS out of this header). */
const char *tls_priorities(const struct tls *t);
void *tls_cert_callback(void);

/* What is served now: the chain as PEM (malloc'd, or NULL) and the last refused reload's reason
 * ("" when the served pair is the newest the files hold). The inventory's listener source. */
void tls_served(void *t, char **pem, size_t *len, char error[static TLS_ERROR_MAX]);

struct tls_stats {
    uint64_t reloads;  /* pairs replaced since start */
    uint64_t refusals; /* new pairs refused */
    int64_t loaded_at; /* when the served pair was loaded (Unix seconds) */
    int64_t not_after; /* the served leaf's expiry */
    bool mtls;
};
void tls_stats(const struct tls *t, struct tls_stats *out);

/* The subject (RFC 4514) of the client certificate the handshake of session verified, as safe
 * text into out ("" when none). session is a gnutls_session_t. */
void tls_peer_subject(void *session, char *out, size_t cap);

#endif
