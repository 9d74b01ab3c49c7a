/* SPDX-License-Identifier: Apache-2.0 */
/* crypto/cert.h -- X.509 certificates read with OpenSSL: PEM (one or more CERTIFICATE blocks;
 * other blocks, such as a private key in a combined file, are skipped unread and wiped) or DER
 * bytes in, plain facts out (subject, SANs, issuer, serial, validity, key type and size,
 * signature algorithm, SHA-256 fingerprint), and chain verification against trust anchors.
 * Pure: bytes in, structs out; no JSON, database, network or HTTP. The one file it may read is
 * the system trust store (cert_trust_new with system = true). Every text field is printable
 * UTF-8 without control characters, cut at a character boundary: safe in logs, metric labels,
 * JSON and the audit trail. Thread-safe: parsed sets and trust stores are read-only. */
#ifndef DG_CRYPTO_CERT_H
#define DG_CRYPTO_CERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/status.h"

#define CERT_INPUT_MAX (2u << 20) /* bytes of one input (a CA bundle fits) */
#define CERT_SET_MAX 512          /* certificates in one input */
#define CERT_TEXT_MAX 256         /* subject, issuer: RFC 2253, cut safely */
#define CERT_CN_MAX 128
#define CERT_SANS_MAX 512  /* "DNS:a,DNS:b,IP:127.0.0.1", cut at an entry */
#define CERT_SERIAL_MAX 64 /* uppercase hex (RFC 5280 allows 20 bytes; longer is cut) */
#define CERT_FP_HEX 65     /* SHA-256 of the DER, 64 lowercase hex digits + NUL */

struct cert_info {
    char subject[CERT_TEXT_MAX];
    char subject_cn[CERT_CN_MAX]; /* "" when the subject has no CN */
    char issuer[CERT_TEXT_MAX];
    char issuer_cn[CERT_CN_MAX];
    char serial[CERT_SERIAL_MAX];
    char sans[CERT_SANS_MAX];      /* comma-separated "TYPE:value" (DNS, IP, URI, email, other) */
    size_t n_sans;                 /* every SAN entry, also those cut from sans */
    int64_t not_before, not_after; /* Unix seconds */
    char key_type[16];             /* "rsa", "rsa-pss", "ec", "ed25519", "ed448", "dsa", "other" */
    int key_bits;                  /* modulus or field size in bits; 0 when unknown */
    char key_curve[32];            /* EC: "P-256", "P-384", "secp256k1", ...; "" otherwise */
    char sig_alg[48];              /* "sha256WithRSAEncryption", "ecdsa-with-SHA256", "ED25519" */
    char sig_hash[16];             /* "sha256", "sha1", "md5", ...; "" when intrinsic (EdDSA) */
    char fingerprint[CERT_FP_HEX];
    int version;      /* X.509 version: 1, 2 or 3 */
    bool is_ca;       /* basicConstraints cA: TRUE */
    bool self_signed; /* issuer == subject and its own key verifies its signature */
};

/* The certificates of one input, in input order (a chain's leaf first). */
struct cert_set;

/* Parse data (len bytes): PEM when it holds a "-----BEGIN " line, else one DER certificate
 * (which must use every byte). ST_OK with at least one certificate; ST_INVALID (err: one line,
 * never the input) for no certificate, a CERTIFICATE block or DER that does not parse, or
 * garbage; ST_TOO_LARGE over CERT_INPUT_MAX bytes or CERT_SET_MAX certificates. *out is NULL
 * on failure. */
NODISCARD enum status cert_set_parse(struct cert_set **out, const uint8_t *data, size_t len,
                                     char *err, size_t err_len);
void cert_set_free(struct cert_set *s); /* NULL-safe */
size_t cert_set_count(const struct cert_set *s);
/* Certificate i (< count): its facts, and its DER encoding (owned by the set). */
const struct cert_info *cert_set_info(const struct cert_set *s, size_t i);
const uint8_t *cert_set_der(const struct cert_set *s, size_t i, size_t *len);

/* Trust anchors for chain verification. */
struct cert_trust;
/* From PEM bytes (a CA bundle; NULL/0 for none) and, when system is true, the system store
 * (OpenSSL's default paths: /etc/ssl/certs on Debian). ST_INVALID (err set) when pem holds no
 * usable certificate; ST_IO when the system store cannot be loaded. */
NODISCARD enum status cert_trust_new(struct cert_trust **out, const uint8_t *pem, size_t len,
                                     bool system, char *err, size_t err_len);
void cert_trust_free(struct cert_trust *t); /* NULL-safe */

/* Does certificate i of set chain up to an anchor of trust (or of extra, more anchors such as
 * a Kubernetes secret's ca.crt; may be NULL)? The other certificates of set serve as
 * intermediates. Validity dates are not part of this answer (they have their own status), so
 * an expired certificate of a trusted chain still verifies. ST_OK, or ST_AUTH with reason set
 * to OpenSSL's verdict ("unable to get local issuer certificate", "self-signed certificate",
 * ...); ST_INTERNAL when OpenSSL fails. */
NODISCARD enum status cert_verify(const struct cert_set *set, size_t i,
                                  const struct cert_trust *trust, const struct cert_set *extra,
                                  char *reason, size_t reason_len);

#endif
