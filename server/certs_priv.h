/* SPDX-License-Identifier: Apache-2.0 */
/* server/certs_priv.h -- private to the certificate inventory (certs.c, certs_read.c,
 * certs_probe.c): what one read or probe of a source found. */
#ifndef DG_SERVER_CERTS_PRIV_H
#define DG_SERVER_CERTS_PRIV_H

#include <pthread.h>
#include <stdatomic.h>

#include "server/certs.h"

/* One certificate found (or one file of a directory that could not be read: has_cert false). */
struct cert_entry {
    char slot[STORE_CERT_SLOT_MAX];
    bool has_cert;
    bool leaf; /* the end entity: first of a served chain, or first and not a CA */
    struct cert_info info;
    char error[CERTS_ERROR_MAX];
    int chain; /* 1, 0, or -1 not judged */
    char chain_error[128];
};

/* The outcome of one read or probe: the source's own error ("" when it was read) and what it
 * found. A source with an error may still have found entries (a listener serving its last good
 * pair while refusing a new one). */
struct cert_read {
    char error[CERTS_ERROR_MAX];
    size_t n;
    struct cert_entry *v;
};
void cert_read_free(struct cert_read *r);

/* One source and what its last read found. */
struct csrc {
    struct cert_spec spec;
    enum cert_origin origin;
    int64_t created_at;
    certs_served_fn served; /* listeners */
    void *served_arg;
    struct cert_read last; /* what the last read found (kept through a failed read) */
    int64_t checked_at, ok_at;
    uint64_t read_errors, rotations;
};

/* The certificate last seen at a slot of a source. */
struct cknown {
    char source_id[STORE_NAME_MAX];
    char slot[STORE_CERT_SLOT_MAX];
    char fingerprint[STORE_CERT_FP_MAX];
    int64_t first_seen, rotated_at;
};

struct certs {
    struct store *store;
    struct audit *audit;
    struct certs_settings set;
    struct cert_trust *trust;
    pthread_mutex_t imu; /* one install of a read at a time (so a certificate is recorded once);
                          * taken before the audit chain, never by a request holding it */
    pthread_mutex_t wmu; /* this module's database writes; after the audit chain, before mu */
    pthread_mutex_t mu;  /* everything below */
    struct csrc **v;
    size_t n;
    struct cknown *known;
    size_t n_known;
    /* the prober thread */
    pthread_t prober;
    pthread_cond_t cv, done_cv;
    bool prober_started;
    atomic_bool stop;
    uint64_t rounds_asked, rounds_done;
};

/* certs.c, with mu held */
struct csrc *certs__find(struct certs *c, const char *id);
struct cknown *certs__known(struct certs *c, const char *source, const char *slot);
void certs__remember(struct certs *c, const char *source, const char *slot, const char *fp,
                     int64_t seen_at, bool rotation);

/* certs_check.c */
NODISCARD enum status certs__prober_start(struct certs *c);
void certs__prober_stop(struct certs *c);
/* Read one source now (an endpoint: wake the prober). */
void certs__check_one(struct certs *c, const char *id, int64_t now);

/* certs_read.c: read a file, directory or PEM source (never an endpoint or listener). */
void certs_read_source(struct cert_read *r, const struct cert_spec *s,
                       const struct cert_trust *trust);
/* Add the certificates of PEM text (or DER) to r, their slots prefixed: the leaf (position 0
 * when served is true, i.e. a chain a server presents such as an endpoint's, a listener's or a
 * tls.crt; otherwise position 0 when it is not a CA) is "<prefix>leaf", every other
 * "<prefix>#<subject>"; each judged for its chain against trust plus extra. ST_INVALID (r->error
 * set) when the text holds no certificate. */
NODISCARD enum status certs_read_text(struct cert_read *r, const char *prefix, const uint8_t *text,
                                      size_t len, bool served, const struct cert_trust *trust,
                                      const struct cert_set *extra);

/* vsnprintf into dst, made safe text (printable UTF-8, cut at a character): messages name paths
 * found on disk, whose bytes may be anything. */
void certs__say(char *dst, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* A whole file of at most CERT_INPUT_MAX bytes (malloc'd), NULL when it cannot be read. */
uint8_t *certs__slurp(const char *path, size_t *len);

/* certs_probe.c: connect to host:port within timeout_s, handshake TLS (any version or cipher:
 * it observes, it does not trust) with SNI (sni, or the host when it is a name, or none) and
 * return the chain the server presents as PEM (malloc'd). ST_UNAVAILABLE with err (one line:
 * refused, timed out, handshake failed, no certificate) otherwise. */
NODISCARD enum status certs_probe(const char *target, const char *sni, int64_t timeout_s,
                                  char **pem, size_t *len, char *err, size_t err_len);

#endif
