/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/certgen.h -- certificates made by the tests with OpenSSL: keys (EC P-256/P-384,
 * RSA of any size, Ed25519), and certificates with chosen subject, SANs, validity, issuer, CA
 * flag and signature digest, as PEM or DER. Tests only; aborts on any OpenSSL failure. */
#ifndef DG_TESTS_UNIT_CERTGEN_H
#define DG_TESTS_UNIT_CERTGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cg_key;  /* an EVP_PKEY */
struct cg_cert; /* an X509 with its key */

enum cg_kind { CG_EC256, CG_EC384, CG_RSA, CG_ED25519 };
struct cg_key *cg_key_new(enum cg_kind kind, int rsa_bits);
void cg_key_free(struct cg_key *k);

struct cg_spec {
    const char *cn;     /* subject CN (NULL: none) */
    const char *org;    /* subject O (NULL: none) */
    const char *sans;   /* "DNS:a,IP:127.0.0.1" (NULL: no SAN extension) */
    int64_t not_before; /* Unix seconds */
    int64_t not_after;
    bool ca;            /* basicConstraints CA:TRUE, keyCertSign */
    const char *digest; /* "sha256" (NULL), "sha1", "md5", "sha384" */
    uint64_t serial;    /* 0: random */
    int version;        /* 3 (0), or 1 */
};

/* A certificate for key, issued by issuer (NULL: self-signed). The key is borrowed. */
struct cg_cert *cg_cert_new(const struct cg_spec *s, struct cg_key *key,
                            const struct cg_cert *issuer);
void cg_cert_free(struct cg_cert *c);

/* malloc'd encodings (*len without the NUL for PEM; PEM is NUL-terminated). */
char *cg_cert_pem(const struct cg_cert *c, size_t *len);
uint8_t *cg_cert_der(const struct cg_cert *c, size_t *len);
char *cg_key_pem(const struct cg_key *k, size_t *len); /* PKCS#8, unencrypted */
/* SHA-256 of the DER, lowercase hex (65 bytes with NUL). */
void cg_cert_fingerprint(const struct cg_cert *c, char out[static 65]);

/* Concatenate NUL-terminated strings into one malloc'd string (NULL ends the list). */
char *cg_cat(const char *first, ...) __attribute__((sentinel));

#endif
