/* SPDX-License-Identifier: Apache-2.0 */
/* server/certs.h -- the certificate inventory (issue 9): sources (PEM files and bundles,
 * Kubernetes-style secret directories, uploaded PEM, TLS endpoints probed on a schedule, and the
 * listeners' own certificates), each certificate's facts, status against thresholds, renewal-due
 * time, weak reasons and chain verdict, and rotations (a changed fingerprint at a slot) kept as
 * history, audited and counted. Reads and probes run on the janitor and a prober thread, never
 * on a request; a source that cannot be read or probed stays listed with its reason, and so do
 * expired certificates. Holds no secret: certificates are public, and a private key found in a
 * PEM file is skipped unread (crypto/cert.h). Thread-safe. */
#ifndef DG_SERVER_CERTS_H
#define DG_SERVER_CERTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/status.h"
#include "crypto/cert.h"
#include "policies/inventory.h"
#include "store/store.h"

#define CERTS_DEFAULT_WARNING (30 * 86400)
#define CERTS_DEFAULT_CRITICAL (7 * 86400)
#define CERTS_ERROR_MAX 256
#define CERTS_MAX_SOURCES 1024
#define CERTS_DIR_MAX_FILES 256 /* tls.crt and ca.crt files read from one directory source */
#define CERTS_DIR_MAX_DEPTH 8

enum cert_kind { CERT_FILE, CERT_DIR, CERT_PEM, CERT_ENDPOINT, CERT_LISTENER };
enum cert_origin { CERT_FROM_API, CERT_FROM_CONFIG, CERT_FROM_LISTENER };
const char *cert_kind_name(enum cert_kind k);     /* "file", "dir", "pem", "endpoint", "listener" */
const char *cert_origin_name(enum cert_origin o); /* "api", "config", "listener" */

/* What a source is: a POST body or an entry of the --cert-sources file (handlers/certs.c parses
 * both into this). */
struct cert_spec {
    char id[STORE_NAME_MAX];              /* names rule; "" = make one up (API) */
    enum cert_kind kind;                  /* not CERT_LISTENER */
    char target[STORE_CERT_TARGET_MAX];   /* absolute path, or host:port */
    char server_name[STORE_CERT_SNI_MAX]; /* endpoint SNI; "" = the host when it is a name */
    char *pem;                            /* CERT_PEM: the text (malloc'd; cert_spec_free) */
    bool recursive;                       /* CERT_DIR: also subdirectories (not ".*" ones) */
    bool expect_chain;                    /* a self-signed leaf is flagged weak */
    int64_t renew_before;                 /* seconds; 0 = two thirds of the lifetime */
    int64_t warning, critical;            /* seconds left; 0 = the service defaults */
};
void cert_spec_free(struct cert_spec *s);
/* Give s an id ("cert-" and 8 random hex digits) when it has none. */
void cert_spec_default_id(struct cert_spec *s);
/* The spec's own rules (id, target shape, PEM holds a certificate, thresholds): ST_INVALID with
 * a fixed *msg, never echoing input. */
NODISCARD enum status cert_spec_check(const struct cert_spec *s, const char **msg);

struct certs_settings {
    int64_t warning, critical; /* defaults for sources that set none */
    int64_t check_interval;    /* seconds between reads of a source and probes of an endpoint */
    int64_t probe_timeout;     /* seconds: connect and handshake, each */
    const char *ca_bundle;     /* PEM file of trust anchors; NULL = the system store */
};

enum cert_status {
    CERT_OK = 0,
    CERT_WARNING,
    CERT_CRITICAL,
    CERT_EXPIRED,
    CERT_NOT_YET_VALID,
    CERT_ERROR,
    CERT__STATUS_COUNT
};
/* "ok", "warning", "critical", "expired", "not_yet_valid", "error" */
const char *cert_status_name(enum cert_status s);

/* Weak reasons, a fixed list (metric labels): */
enum cert_weak {
    CERT_WEAK_RSA = 1u << 0,         /* "rsa_lt_2048": RSA key under 2048 bits */
    CERT_WEAK_EC = 1u << 1,          /* "ec_lt_p256": EC key below P-256 */
    CERT_WEAK_SHA1 = 1u << 2,        /* "sha1_signature" (not judged on self-signed CAs) */
    CERT_WEAK_MD5 = 1u << 3,         /* "md5_signature" (idem) */
    CERT_WEAK_VALIDITY = 1u << 4,    /* "validity_over_398d": a leaf valid longer than 398 days */
    CERT_WEAK_NO_SAN = 1u << 5,      /* "no_san": a leaf without subjectAltName */
    CERT_WEAK_SELF_SIGNED = 1u << 6, /* "self_signed_leaf": where a chain was expected */
    CERT__WEAK_COUNT = 7
};
const char *cert_weak_name(uint32_t bit);

/* The status, renewal-due time and weak reasons of one certificate at `now` (pure). leaf: the
 * end entity (leaf-only rules: validity, SAN, self-signed, renewal overdue). */
struct cert_judgement {
    enum cert_status status;
    int64_t renewal_due;  /* notAfter - renew_before, else two thirds of the lifetime */
    bool renewal_overdue; /* a leaf past renewal_due (it has not rotated: a rotated one is new) */
    uint32_t weak;        /* enum cert_weak bits */
};
void cert_judge(struct cert_judgement *out, const struct cert_info *ci, bool leaf,
                const struct cert_spec *s, const struct certs_settings *set, int64_t now);

/* One certificate of a source as of `now`, or an entry that could not be read (status error,
 * has_cert false: a garbage tls.crt in a directory). */
struct cert_view {
    char slot[STORE_CERT_SLOT_MAX]; /* "leaf", "#<subject>", "dir/tls.crt|leaf", ... */
    bool has_cert;
    bool leaf;
    struct cert_info info;
    struct cert_judgement j;
    char error[CERTS_ERROR_MAX]; /* why an entry is an error */
    int chain;                   /* 1 chains to a trust anchor, 0 does not, -1 not judged */
    char chain_error[128];
    int64_t first_seen; /* this certificate at this slot since (0: not recorded) */
    int64_t rotated_at; /* when it replaced another at the slot (0: never seen rotating) */
};

struct cert_source_view {
    struct cert_spec spec; /* pem is not copied (NULL) */
    enum cert_origin origin;
    enum cert_status status;         /* error when the source has an error, else the worst entry */
    char error[CERTS_ERROR_MAX];     /* why it could not be read or probed; "" = none */
    int64_t created_at;              /* API sources; 0 otherwise */
    int64_t checked_at;              /* last read or probe; 0 = not yet */
    int64_t ok_at;                   /* last read or probe without error; 0 = never */
    uint64_t read_errors, rotations; /* since the service started */
    size_t n_certs;
    struct cert_view *certs;
};
void cert_source_view_free(struct cert_source_view *v);
void cert_source_views_free(struct cert_source_view *v, size_t n);

/* One certificate seen at a slot, oldest first (GET .../history). */
struct cert_seen_info {
    char slot[STORE_CERT_SLOT_MAX];
    char fingerprint[STORE_CERT_FP_MAX];
    char subject[STORE_CERT_TEXT_MAX], issuer[STORE_CERT_TEXT_MAX];
    char serial[STORE_CERT_SERIAL_MAX];
    int64_t not_before, not_after, seen_at;
    bool rotation;
};

struct certs;
struct audit;
struct metrics_out;

/* Load the API sources and what was seen before, and the trust anchors (ST_INVALID with err
 * when --cert-ca-bundle cannot be used). Starts the prober thread. */
NODISCARD enum status certs_open(struct certs **out, struct store *st,
                                 const struct certs_settings *set, char *err, size_t err_len);
void certs_close(struct certs *c); /* NULL-safe; stops the prober */
/* The service-wide warning and critical thresholds (seconds). */
void certs_thresholds(const struct certs *c, int64_t *warning, int64_t *critical);
/* Rotations are audited through it (op cert.rotation, method SYSTEM) when set. */
void certs_set_audit(struct certs *c, struct audit *a);

/* Sources of the --cert-sources file, at start: ST_CONFLICT for a duplicate id. */
NODISCARD enum status certs_add_config(struct certs *c, const struct cert_spec *s, char *err,
                                       size_t err_len);
/* A listener's own certificate chain, as the transport serves it: fn fills the PEM text it
 * serves (malloc'd, or NULL) and the last refused reload's reason ("" when none). Source id
 * "listener-<name>". */
typedef void (*certs_served_fn)(void *arg, char **pem, size_t *len,
                                char error[static CERTS_ERROR_MAX]);
void certs_add_listener(struct certs *c, const char *name, certs_served_fn fn, void *arg);

/* API: create (an id is made up when s has none; on ST_OK s->pem is taken and set to NULL; the
 * source is read by the janitor, or at once by certs_refresh, which the caller runs once the
 * change's audit event is released, never while holding it), delete (only API sources: ST_CONFLICT for the others),
 * read. *msg gets a fixed text on ST_INVALID / ST_CONFLICT. */
NODISCARD enum status certs_create(struct certs *c, struct cert_spec *s,
                                   struct cert_source_view *out, const char **msg,
                                   const struct store_audit_row *ev);
NODISCARD enum status certs_delete(struct certs *c, const char *id, const char **msg,
                                   const struct store_audit_row *ev);
NODISCARD enum status certs_get(struct certs *c, const char *id, int64_t now,
                                struct cert_source_view *out);
NODISCARD enum status certs_list(struct certs *c, int64_t now, struct cert_source_view **out,
                                 size_t *n);
/* ST_NOT_FOUND for an unknown source. Array owned by the caller: free(). */
NODISCARD enum status certs_history(struct certs *c, const char *id, struct cert_seen_info **out,
                                    size_t *n);
bool certs_known(struct certs *c, const char *id);

/* The janitor's duty (server/janitor.h): read the sources that are due (files, directories,
 * PEM, listeners) and wake the prober for the endpoints that are. */
void certs_janitor(void *c, int64_t now_ms);
/* Read one source now (the listener's after its pair changed); an endpoint is probed soon. */
void certs_refresh(struct certs *c, const char *id);
/* Read every source now, probes included, and wait for them (tests). */
void certs_check_all(struct certs *c, int64_t now);

/* The series for the metrics registry (server/obs/metrics.h). */
void certs_metrics(const void *self, struct metrics_out *o);

/* The certificate part of the inventory snapshot (policies/inventory.h), at `now`. */
NODISCARD enum status certs_inventory(struct certs *c, int64_t now, struct inv_cert **out,
                                      size_t *n);

#endif
