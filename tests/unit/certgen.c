/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/certgen.c -- test certificates made with OpenSSL (see certgen.h). */
#include "certgen.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

struct cg_key {
    EVP_PKEY *k;
};

struct cg_cert {
    X509 *x;
    EVP_PKEY *k; /* borrowed from the cg_key */
};

#define CG_CHECK(cond)                                                                             \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "certgen: %s failed at %s:%d\n", #cond, __FILE__, __LINE__);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

struct cg_key *
cg_key_new(enum cg_kind kind, int rsa_bits)
{
    struct cg_key *k = calloc(1, sizeof *k);
    CG_CHECK(k != NULL);
    switch (kind) {
    case CG_EC256:
        k->k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        break;
    case CG_EC384:
        k->k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
        break;
    case CG_RSA:
        k->k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)rsa_bits);
        break;
    case CG_ED25519:
        k->k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        break;
    }
    CG_CHECK(k->k != NULL);
    return k;
}

void
cg_key_free(struct cg_key *k)
{
    if (k == NULL)
        return;
    EVP_PKEY_free(k->k);
    free(k);
}

static void
add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    CG_CHECK(e != NULL);
    CG_CHECK(X509_add_ext(x, e, -1) == 1);
    X509_EXTENSION_free(e);
}

static void
set_name(X509_NAME *n, const struct cg_spec *s)
{
    if (s->org != NULL)
        CG_CHECK(X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8, (const unsigned char *)s->org,
                                            -1, -1, 0) == 1);
    if (s->cn != NULL)
        CG_CHECK(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)s->cn,
                                            -1, -1, 0) == 1);
}

struct cg_cert *
cg_cert_new(const struct cg_spec *s, struct cg_key *key, const struct cg_cert *issuer)
{
    struct cg_cert *c = calloc(1, sizeof *c);
    uint64_t serial = s->serial;
    CG_CHECK(c != NULL && (c->x = X509_new()) != NULL);
    c->k = key->k;
    if (serial == 0)
        CG_CHECK(RAND_bytes((unsigned char *)&serial, sizeof serial) == 1);
    serial &= 0x7fffffffffffffffULL; /* positive */
    serial |= 1;
    CG_CHECK(X509_set_version(c->x, s->version == 1 ? X509_VERSION_1 : X509_VERSION_3) == 1);
    CG_CHECK(ASN1_INTEGER_set_uint64(X509_get_serialNumber(c->x), serial) == 1);
    CG_CHECK(ASN1_TIME_set(X509_getm_notBefore(c->x), (time_t)s->not_before) != NULL);
    CG_CHECK(ASN1_TIME_set(X509_getm_notAfter(c->x), (time_t)s->not_after) != NULL);
    set_name(X509_get_subject_name(c->x), s);
    CG_CHECK(X509_set_issuer_name(c->x, issuer != NULL ? X509_get_subject_name(issuer->x)
                                                       : X509_get_subject_name(c->x)) == 1);
    CG_CHECK(X509_set_pubkey(c->x, key->k) == 1);
    X509 *iss = issuer != NULL ? issuer->x : c->x;
    if (s->version != 1) {
        add_ext(c->x, iss, NID_subject_key_identifier, "hash");
        if (issuer != NULL)
            add_ext(c->x, iss, NID_authority_key_identifier, "keyid:always");
        add_ext(c->x, iss, NID_basic_constraints, s->ca ? "critical,CA:TRUE" : "CA:FALSE");
        add_ext(c->x, iss, NID_key_usage,
                s->ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
        if (s->sans != NULL)
            add_ext(c->x, iss, NID_subject_alt_name, s->sans);
    }
    const EVP_MD *md = NULL;
    if (EVP_PKEY_get_base_id(issuer != NULL ? issuer->k : key->k) != EVP_PKEY_ED25519)
        md = EVP_get_digestbyname(s->digest != NULL ? s->digest : "sha256");
    CG_CHECK(X509_sign(c->x, issuer != NULL ? issuer->k : key->k, md) > 0);
    return c;
}

void
cg_cert_free(struct cg_cert *c)
{
    if (c == NULL)
        return;
    X509_free(c->x);
    free(c);
}

static char *
bio_take(BIO *b, size_t *len)
{
    char *data = NULL;
    long n = BIO_get_mem_data(b, &data);
    char *out = malloc((size_t)n + 1);
    CG_CHECK(out != NULL && n >= 0);
    memcpy(out, data, (size_t)n);
    out[n] = '\0';
    *len = (size_t)n;
    BIO_free(b);
    return out;
}

char *
cg_cert_pem(const struct cg_cert *c, size_t *len)
{
    BIO *b = BIO_new(BIO_s_mem());
    CG_CHECK(b != NULL && PEM_write_bio_X509(b, c->x) == 1);
    return bio_take(b, len);
}

uint8_t *
cg_cert_der(const struct cg_cert *c, size_t *len)
{
    unsigned char *der = NULL;
    int n = i2d_X509(c->x, &der);
    CG_CHECK(n > 0);
    uint8_t *out = malloc((size_t)n);
    CG_CHECK(out != NULL);
    memcpy(out, der, (size_t)n);
    OPENSSL_free(der);
    *len = (size_t)n;
    return out;
}

char *
cg_key_pem(const struct cg_key *k, size_t *len)
{
    BIO *b = BIO_new(BIO_s_mem());
    CG_CHECK(b != NULL && PEM_write_bio_PrivateKey(b, k->k, NULL, NULL, 0, NULL, NULL) == 1);
    return bio_take(b, len);
}

void
cg_cert_fingerprint(const struct cg_cert *c, char out[static 65])
{
    size_t n = 0;
    uint8_t *der = cg_cert_der(c, &n);
    unsigned char md[32];
    unsigned mdlen = 0;
    CG_CHECK(EVP_Digest(der, n, md, &mdlen, EVP_sha256(), NULL) == 1 && mdlen == 32);
    for (unsigned i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    free(der);
}

char *
cg_cat(const char *first, ...)
{
    va_list ap;
    size_t n = 0;
    const char *s;

    va_start(ap, first);
    for (s = first; s != NULL; s = va_arg(ap, const char *))
        n += strlen(s);
    va_end(ap);
    char *out = malloc(n + 1);
    CG_CHECK(out != NULL);
    out[0] = '\0';
    va_start(ap, first);
    for (s = first; s != NULL; s = va_arg(ap, const char *))
        strcat(out, s);
    va_end(ap);
    return out;
}
