/* SPDX-License-Identifier: Apache-2.0 */
/* crypto/cert.c -- X.509 parsing and chain verification with OpenSSL (see cert.h). Every byte of
 * the input is hostile: sizes are bounded before parsing, every text leaves through
 * text_copy_safe, and PEM blocks that are not certificates are wiped unread. */
#include "crypto/cert.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/text.h"
#include "common/xmem.h"

struct cert_set {
    size_t n;
    X509 **x;
    struct cert_info *info;
    unsigned char **der; /* i2d_X509 of each, OPENSSL_malloc'd */
    size_t *der_len;
};

struct cert_trust {
    X509_STORE *store;
};

static void
set_err(char *err, size_t err_len, const char *msg)
{
    if (err_len > 0)
        snprintf(err, err_len, "%s", msg);
    ERR_clear_error();
}

/* --- facts of one certificate --- */

/* A memory BIO's text into out, made safe. */
static void
bio_text(char *out, size_t cap, BIO *b)
{
    char buf[1024];
    int n = BIO_read(b, buf, sizeof buf - 1);

    buf[n > 0 ? n : 0] = '\0';
    (void)text_copy_safe(out, cap, buf);
}

static void
name_text(char *out, size_t cap, const X509_NAME *name)
{
    BIO *b = BIO_new(BIO_s_mem());

    out[0] = '\0';
    if (b == NULL)
        return;
    /* RFC 2253 order and escaping, UTF-8 kept as UTF-8 (not \XX escapes). */
    if (X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0)
        bio_text(out, cap, b);
    BIO_free(b);
}

static void
cn_text(char *out, size_t cap, const X509_NAME *name)
{
    int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    unsigned char *utf8 = NULL;

    out[0] = '\0';
    if (i < 0)
        return;
    const ASN1_STRING *s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
    int n = ASN1_STRING_to_UTF8(&utf8, s);
    if (n >= 0) {
        char *z = xstrndup((const char *)utf8, (size_t)n); /* stops at an embedded NUL */
        (void)text_copy_safe(out, cap, z);
        free(z);
    }
    OPENSSL_free(utf8);
}

/* One SAN as "TYPE:value" into buf. */
static void
san_text(char buf[static 320], const GENERAL_NAME *g)
{
    const ASN1_STRING *s = NULL;
    const char *type = "other";
    char ip[INET6_ADDRSTRLEN] = "";

    switch (g->type) {
    case GEN_DNS:
        type = "DNS", s = g->d.dNSName;
        break;
    case GEN_URI:
        type = "URI", s = g->d.uniformResourceIdentifier;
        break;
    case GEN_EMAIL:
        type = "email", s = g->d.rfc822Name;
        break;
    case GEN_IPADD:
        type = "IP";
        if (g->d.iPAddress->length == 4)
            inet_ntop(AF_INET, g->d.iPAddress->data, ip, sizeof ip);
        else if (g->d.iPAddress->length == 16)
            inet_ntop(AF_INET6, g->d.iPAddress->data, ip, sizeof ip);
        else
            snprintf(ip, sizeof ip, "?");
        break;
    default:
        break;
    }
    char val[256] = "";
    if (s != NULL) {
        char *z = xstrndup((const char *)ASN1_STRING_get0_data(s), (size_t)ASN1_STRING_length(s));
        (void)text_copy_safe(val, sizeof val, z);
        free(z);
    }
    snprintf(buf, 320, "%s:%s", type, s != NULL ? val : ip);
}

static void
sans_text(struct cert_info *ci, X509 *x)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    size_t len = 0;
    bool full = false;

    ci->sans[0] = '\0';
    ci->n_sans = 0;
    for (int i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens); i++) {
        char one[320];
        san_text(one, sk_GENERAL_NAME_value(gens, i));
        ci->n_sans++;
        size_t need = strlen(one) + (len > 0);
        if (full || len + need >= sizeof ci->sans) {
            full = true; /* counted, not listed: the list ends at a whole entry */
            continue;
        }
        snprintf(ci->sans + len, sizeof ci->sans - len, "%s%s", len > 0 ? "," : "", one);
        len += need;
    }
    GENERAL_NAMES_free(gens);
}

static int64_t
asn1_time_unix(const ASN1_TIME *t)
{
    struct tm tm;

    memset(&tm, 0, sizeof tm);
    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
        return 0;
    return (int64_t)timegm(&tm);
}

static void
serial_text(char out[static CERT_SERIAL_MAX], X509 *x)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    char *hex = bn != NULL ? BN_bn2hex(bn) : NULL;

    (void)text_copy_safe(out, CERT_SERIAL_MAX, hex != NULL ? hex : "");
    OPENSSL_free(hex);
    BN_free(bn);
}

static void
key_facts(struct cert_info *ci, X509 *x)
{
    EVP_PKEY *k = X509_get0_pubkey(x);
    char group[64] = "";

    snprintf(ci->key_type, sizeof ci->key_type, "other");
    ci->key_bits = 0;
    ci->key_curve[0] = '\0';
    if (k == NULL)
        return;
    ci->key_bits = EVP_PKEY_get_bits(k) > 0 ? EVP_PKEY_get_bits(k) : 0;
    switch (EVP_PKEY_get_base_id(k)) {
    case EVP_PKEY_RSA:
        snprintf(ci->key_type, sizeof ci->key_type, "rsa");
        break;
    case EVP_PKEY_RSA_PSS:
        snprintf(ci->key_type, sizeof ci->key_type, "rsa-pss");
        break;
    case EVP_PKEY_DSA:
        snprintf(ci->key_type, sizeof ci->key_type, "dsa");
        break;
    case EVP_PKEY_ED25519:
        snprintf(ci->key_type, sizeof ci->key_type, "ed25519");
        break;
    case EVP_PKEY_ED448:
        snprintf(ci->key_type, sizeof ci->key_type, "ed448");
        break;
    case EVP_PKEY_EC:
        snprintf(ci->key_type, sizeof ci->key_type, "ec");
        if (EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                           NULL) == 1) {
            const char *nist = EC_curve_nid2nist(OBJ_sn2nid(group));
            (void)text_copy_safe(ci->key_curve, sizeof ci->key_curve, nist ? nist : group);
        }
        break;
    default:
        break;
    }
}

static void
sig_facts(struct cert_info *ci, X509 *x)
{
    int md = NID_undef, pk = NID_undef, bits = 0;
    uint32_t flags = 0;
    const char *ln = OBJ_nid2ln(X509_get_signature_nid(x));

    (void)text_copy_safe(ci->sig_alg, sizeof ci->sig_alg, ln != NULL ? ln : "unknown");
    ci->sig_hash[0] = '\0';
    /* X509_get_signature_info also reads the digest of RSA-PSS parameters. */
    if (X509_get_signature_info(x, &md, &pk, &bits, &flags) == 1 && md != NID_undef) {
        const char *sn = OBJ_nid2sn(md);
        for (size_t i = 0; sn != NULL && sn[i] != '\0' && i + 1 < sizeof ci->sig_hash; i++) {
            char c = sn[i];
            ci->sig_hash[i] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
            ci->sig_hash[i + 1] = '\0';
        }
    }
}

static void
fingerprint(char out[static CERT_FP_HEX], X509 *x)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n = 0;

    out[0] = '\0';
    if (X509_digest(x, EVP_sha256(), md, &n) != 1 || n != 32)
        return;
    for (unsigned i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void
info_fill(struct cert_info *ci, X509 *x)
{
    memset(ci, 0, sizeof *ci);
    name_text(ci->subject, sizeof ci->subject, X509_get_subject_name(x));
    cn_text(ci->subject_cn, sizeof ci->subject_cn, X509_get_subject_name(x));
    name_text(ci->issuer, sizeof ci->issuer, X509_get_issuer_name(x));
    cn_text(ci->issuer_cn, sizeof ci->issuer_cn, X509_get_issuer_name(x));
    serial_text(ci->serial, x);
    sans_text(ci, x);
    ci->not_before = asn1_time_unix(X509_get0_notBefore(x));
    ci->not_after = asn1_time_unix(X509_get0_notAfter(x));
    key_facts(ci, x);
    sig_facts(ci, x);
    fingerprint(ci->fingerprint, x);
    ci->version = (int)X509_get_version(x) + 1;
    ci->is_ca = (X509_get_extension_flags(x) & EXFLAG_CA) != 0;
    ci->self_signed = X509_self_signed(x, 1) == 1;
    ERR_clear_error(); /* the checks above may leave errors for malformed extensions */
}

/* --- sets --- */

static enum status
set_add(struct cert_set *s, X509 *x, char *err, size_t err_len)
{
    if (s->n == CERT_SET_MAX) {
        X509_free(x);
        set_err(err, err_len, "more certificates than one input may hold");
        return ST_TOO_LARGE;
    }
    unsigned char *der = NULL;
    int n = i2d_X509(x, &der);
    if (n <= 0) {
        X509_free(x);
        set_err(err, err_len, "a certificate cannot be encoded again");
        return ST_INVALID;
    }
    s->x = xrealloc(s->x, (s->n + 1) * sizeof *s->x);
    s->info = xrealloc(s->info, (s->n + 1) * sizeof *s->info);
    s->der = xrealloc(s->der, (s->n + 1) * sizeof *s->der);
    s->der_len = xrealloc(s->der_len, (s->n + 1) * sizeof *s->der_len);
    s->x[s->n] = x;
    s->der[s->n] = der;
    s->der_len[s->n] = (size_t)n;
    info_fill(&s->info[s->n], x);
    s->n++;
    return ST_OK;
}

static bool
is_cert_block(const char *name)
{
    return strcmp(name, "CERTIFICATE") == 0 || strcmp(name, "X509 CERTIFICATE") == 0 ||
           strcmp(name, "TRUSTED CERTIFICATE") == 0;
}

/* One CERTIFICATE block's DER (a TRUSTED CERTIFICATE carries trust settings after it). */
static X509 *
der_cert(const char *name, const unsigned char *p, long len, bool exact)
{
    const unsigned char *q = p;
    X509 *x = strcmp(name, "TRUSTED CERTIFICATE") == 0 ? d2i_X509_AUX(NULL, &q, len)
                                                       : d2i_X509(NULL, &q, len);
    if (x != NULL && exact && q != p + len) {
        X509_free(x);
        return NULL;
    }
    return x;
}

static enum status
parse_pem(struct cert_set *s, const uint8_t *data, size_t len, char *err, size_t err_len)
{
    BIO *b = BIO_new_mem_buf(data, (int)len);
    enum status st = ST_OK;

    if (b == NULL)
        return ST_INTERNAL;
    for (;;) {
        char *name = NULL, *header = NULL;
        unsigned char *der = NULL;
        long n = 0;
        if (PEM_read_bio(b, &name, &header, &der, &n) != 1) {
            /* The end of the input, or a block that does not decode (torn, bad base64). */
            unsigned long e = ERR_peek_last_error();
            if (ERR_GET_REASON(e) != PEM_R_NO_START_LINE) {
                set_err(err, err_len, "a PEM block does not decode (torn or bad base64)");
                st = ST_INVALID;
            }
            break;
        }
        if (is_cert_block(name)) {
            X509 *x = der_cert(name, der, n, strcmp(name, "TRUSTED CERTIFICATE") != 0);
            if (x == NULL) {
                set_err(err, err_len, "a CERTIFICATE block is not an X.509 certificate");
                st = ST_INVALID;
            } else {
                st = set_add(s, x, err, err_len);
            }
        }
        OPENSSL_cleanse(der, (size_t)n); /* a private key block is wiped unread */
        OPENSSL_free(name);
        OPENSSL_free(header);
        OPENSSL_free(der);
        if (st != ST_OK)
            break;
    }
    BIO_free(b);
    ERR_clear_error();
    if (st == ST_OK && s->n == 0) {
        set_err(err, err_len, "no certificate in the PEM input");
        st = ST_INVALID;
    }
    return st;
}

static bool
looks_pem(const uint8_t *data, size_t len)
{
    static const char mark[] = "-----BEGIN ";
    for (size_t i = 0; i + sizeof mark - 1 <= len; i++) {
        /* memcmp on public input text (a certificate file), not on a secret */
        if (data[i] == '-' && memcmp(data + i, mark, sizeof mark - 1) == 0)
            return true;
    }
    return false;
}

enum status
cert_set_parse(struct cert_set **out, const uint8_t *data, size_t len, char *err, size_t err_len)
{
    struct cert_set *s = xcalloc(1, sizeof *s);
    enum status st;

    *out = NULL;
    if (err_len > 0)
        err[0] = '\0';
    if (len > CERT_INPUT_MAX) {
        set_err(err, err_len, "the certificate input is too large");
        st = ST_TOO_LARGE;
    } else if (len == 0) {
        set_err(err, err_len, "the certificate input is empty");
        st = ST_INVALID;
    } else if (looks_pem(data, len)) {
        st = parse_pem(s, data, len, err, err_len);
    } else {
        X509 *x = der_cert("CERTIFICATE", data, (long)len, true);
        if (x == NULL) {
            set_err(err, err_len, "neither PEM nor a DER X.509 certificate");
            st = ST_INVALID;
        } else {
            st = set_add(s, x, err, err_len);
        }
    }
    ERR_clear_error();
    if (st != ST_OK) {
        cert_set_free(s);
        return st;
    }
    *out = s;
    return ST_OK;
}

void
cert_set_free(struct cert_set *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n; i++) {
        X509_free(s->x[i]);
        OPENSSL_free(s->der[i]);
    }
    free(s->x);
    free(s->info);
    free(s->der);
    free(s->der_len);
    free(s);
}

size_t
cert_set_count(const struct cert_set *s)
{
    return s != NULL ? s->n : 0;
}

const struct cert_info *
cert_set_info(const struct cert_set *s, size_t i)
{
    return i < s->n ? &s->info[i] : NULL;
}

const uint8_t *
cert_set_der(const struct cert_set *s, size_t i, size_t *len)
{
    *len = i < s->n ? s->der_len[i] : 0;
    return i < s->n ? s->der[i] : NULL;
}

/* --- trust and chains --- */

enum status
cert_trust_new(struct cert_trust **out, const uint8_t *pem, size_t len, bool system, char *err,
               size_t err_len)
{
    struct cert_trust *t = xcalloc(1, sizeof *t);
    struct cert_set *set = NULL;
    enum status st = ST_INTERNAL;

    *out = NULL;
    if (err_len > 0)
        err[0] = '\0';
    if ((t->store = X509_STORE_new()) == NULL)
        goto out;
    if (pem != NULL && len > 0) {
        if ((st = cert_set_parse(&set, pem, len, err, err_len)) != ST_OK)
            goto out;
        for (size_t i = 0; i < set->n; i++) {
            if (X509_STORE_add_cert(t->store, set->x[i]) != 1) {
                set_err(err, err_len, "a CA certificate cannot be added to the trust store");
                st = ST_INVALID;
                goto out;
            }
        }
    }
    if (system && X509_STORE_set_default_paths(t->store) != 1) {
        set_err(err, err_len, "the system trust store cannot be loaded");
        st = ST_IO;
        goto out;
    }
    st = ST_OK;
out:
    ERR_clear_error();
    cert_set_free(set);
    if (st != ST_OK) {
        cert_trust_free(t);
        return st;
    }
    *out = t;
    return ST_OK;
}

void
cert_trust_free(struct cert_trust *t)
{
    if (t == NULL)
        return;
    X509_STORE_free(t->store);
    free(t);
}

/* The store a verification uses: trust's own, or a copy of it with extra's certificates added. */
static X509_STORE *
verify_store(const struct cert_trust *trust, const struct cert_set *extra)
{
    X509_STORE *st;

    if (extra == NULL || extra->n == 0) {
        if (trust != NULL && X509_STORE_up_ref(trust->store) == 1)
            return trust->store;
        return X509_STORE_new();
    }
    if ((st = X509_STORE_new()) == NULL)
        return NULL;
    STACK_OF(X509) *all = trust != NULL ? X509_STORE_get1_all_certs(trust->store) : NULL;
    for (int i = 0; all != NULL && i < sk_X509_num(all); i++)
        (void)X509_STORE_add_cert(st, sk_X509_value(all, i));
    sk_X509_pop_free(all, X509_free);
    for (size_t i = 0; i < extra->n; i++)
        (void)X509_STORE_add_cert(st, extra->x[i]); /* a duplicate is not an error here */
    if (trust != NULL) {
        /* The system store's hashed directory is looked up lazily: keep it reachable. */
        X509_LOOKUP *dir = X509_STORE_add_lookup(st, X509_LOOKUP_hash_dir());
        if (dir != NULL)
            (void)X509_LOOKUP_add_dir(dir, NULL, X509_FILETYPE_DEFAULT);
    }
    ERR_clear_error();
    return st;
}

enum status
cert_verify(const struct cert_set *set, size_t i, const struct cert_trust *trust,
            const struct cert_set *extra, char *reason, size_t reason_len)
{
    X509_STORE *store = verify_store(trust, extra);
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    STACK_OF(X509) *chain = sk_X509_new_null();
    enum status st = ST_INTERNAL;

    if (reason_len > 0)
        reason[0] = '\0';
    if (store == NULL || ctx == NULL || chain == NULL || i >= set->n)
        goto out;
    for (size_t j = 0; j < set->n; j++) {
        if (j != i && sk_X509_push(chain, set->x[j]) <= 0)
            goto out;
    }
    if (X509_STORE_CTX_init(ctx, store, set->x[i], chain) != 1)
        goto out;
    /* Trust, not dates: expiry has its own status. */
    X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_NO_CHECK_TIME);
    if (X509_verify_cert(ctx) == 1) {
        st = ST_OK;
    } else {
        int e = X509_STORE_CTX_get_error(ctx);
        if (reason_len > 0)
            (void)text_copy_safe(reason, reason_len, X509_verify_cert_error_string(e));
        st = ST_AUTH;
    }
out:
    ERR_clear_error();
    X509_STORE_CTX_free(ctx);
    sk_X509_free(chain); /* the certificates stay the set's */
    X509_STORE_free(store);
    return st;
}
