/* SPDX-License-Identifier: Apache-2.0 */
/* server/auth/jwt.c -- JWT verification: our strict split and header checks first, libjwt only for the
 * signature with the key and algorithm pinned to the kid, then claims from our own strict parse.
 * Never logs, returns or leaves behind key bytes. */
#include "server/auth/jwt.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jwt.h> /* libjwt; our own header is server/auth/jwt.h */
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sodium.h>

#include "common/xmem.h"
#include "crypto/b64.h"
#include "crypto/keyfile.h"
#include "crypto/secret.h"
#include "server/auth/principal.h"

#define JWT_ROLE_MAX 129 /* role names: 1..128 bytes + NUL */
#define JWT_RSA_MIN_BITS 2048
#define JWT_HS256_SIG_BYTES 32
#define JWT_ES256_SIG_BYTES 64               /* JWS ES256: R || S, 32 bytes each (RFC 7518 3.4) */
#define JWT_SIG_MAX 1024                     /* RSA up to 8192 bits */
#define JWT_TIME_LIMIT 4611686018427387904.0 /* 2^62: larger NumericDates are refused */

struct jwt_key {
    char kid[JWT_KID_MAX];
    enum jwt_key_alg alg;
    struct secret *hs; /* HS256 secret, guarded memory */
    char *pem;         /* RS256/ES256 public key, NUL-terminated (public data) */
    size_t pem_len;
};

struct jwt_role {
    char name[JWT_ROLE_MAX];
    size_t len;
    uint32_t scopes;
};

struct jwt_verifier {
    char issuer[JWT_ISS_MAX];
    size_t issuer_len;
    char audience[JWT_ISS_MAX];
    size_t audience_len;
    int64_t leeway;
    char role_claim[JWT_ROLE_MAX];
    struct jwt_key keys[JWT_MAX_KEYS];
    size_t n_keys;
    struct jwt_role roles[JWT_MAX_ROLES];
    size_t n_roles;
    int64_t rate, burst;        /* per (iss, sub); 0 = unlimited */
    _Atomic uint64_t *failures; /* [JWT_R__COUNT]; behind a pointer so verify can take const */
};

/* One token split into its three base64url texts (pointers into the caller's buffer). */
struct jwt_parts {
    const char *p[3];
    size_t len[3];
};

static const char *const reason_names[JWT_R__COUNT] = {
    "ok",           "malformed",      "alg_none",    "bad_header", "unknown_kid",
    "alg_mismatch", "bad_signature",  "missing_exp", "expired",    "not_yet_valid",
    "wrong_issuer", "wrong_audience", "no_role",
};

const char *
jwt_reason_name(enum jwt_reason r)
{
    return (unsigned)r < JWT_R__COUNT ? reason_names[r] : "unknown";
}

/* ---- building ------------------------------------------------------------------------------ */

/* 1..max-1 bytes without control characters or NUL (they would only confuse logs and configs). */
static bool
text_ok(const char *s, size_t max)
{
    size_t n = s ? strnlen(s, max) : 0;

    if (n == 0 || n >= max)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

enum status
jwt_verifier_new(struct jwt_verifier **out, const char **err, const char *issuer,
                 const char *audience, int64_t leeway_s, const char *role_claim)
{
    struct jwt_verifier *v = NULL;
    enum status st = ST_INVALID;

    *out = NULL;
    *err = NULL;
    if (!text_ok(issuer, JWT_ISS_MAX))
        *err = "issuer must be 1..255 bytes without control characters";
    else if (!text_ok(audience, JWT_ISS_MAX))
        *err = "audience must be 1..255 bytes without control characters";
    else if (leeway_s < 0 || leeway_s > JWT_LEEWAY_MAX)
        *err = "leeway must be 0..600 seconds";
    else if (!text_ok(role_claim, JWT_ROLE_MAX))
        *err = "role_claim must be 1..128 bytes without control characters";
    if (*err != NULL)
        goto out;
    v = xcalloc(1, sizeof *v);
    v->failures = xcalloc(JWT_R__COUNT, sizeof *v->failures);
    v->issuer_len = strlen(issuer);
    memcpy(v->issuer, issuer, v->issuer_len + 1);
    v->audience_len = strlen(audience);
    memcpy(v->audience, audience, v->audience_len + 1);
    v->leeway = leeway_s;
    memcpy(v->role_claim, role_claim, strlen(role_claim) + 1);
    *out = v;
    st = ST_OK;
out:
    return st;
}

void
jwt_verifier_free(struct jwt_verifier *v)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < v->n_keys; i++) {
        secret_free(v->keys[i].hs);
        free(v->keys[i].pem);
    }
    free(v->failures);
    free(v);
}

static const struct jwt_key *
key_find(const struct jwt_verifier *v, const char *kid, size_t len)
{
    for (size_t i = 0; i < v->n_keys; i++)
        if (strlen(v->keys[i].kid) == len && memcmp(v->keys[i].kid, kid, len) == 0)
            return &v->keys[i];
    return NULL;
}

/* A PEM public key usable for `alg`: RSA >= 2048 bits for RS256, EC P-256 for ES256. libjwt
 * parses the same text again on every verification and checks the key type there too. */
static const char *
pem_check(enum jwt_key_alg alg, const uint8_t *pem, size_t len)
{
    char group[32] = "";
    const char *err = NULL;
    EVP_PKEY *pkey = NULL;
    BIO *bio = NULL;

    if (len == 0 || len > JWT_KEY_FILE_MAX) {
        err = "public key: empty or too large";
        goto out;
    }
    bio = BIO_new_mem_buf(pem, (int)len);
    if (bio == NULL || (pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL)) == NULL) {
        err = "public key: not a PEM public key (-----BEGIN PUBLIC KEY-----)";
        goto out;
    }
    if (alg == JWT_RS256 &&
        (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA || EVP_PKEY_get_bits(pkey) < JWT_RSA_MIN_BITS))
        err = "public key: RS256 needs an RSA key of at least 2048 bits";
    else if (alg == JWT_ES256 && (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_EC ||
                                  !EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME,
                                                                  group, sizeof group, NULL) ||
                                  strcmp(group, "prime256v1") != 0))
        err = "public key: ES256 needs an EC P-256 key";
out:
    EVP_PKEY_free(pkey);
    BIO_free(bio);
    return err;
}

enum status
jwt_verifier_add_key(struct jwt_verifier *v, const char **err, const char *kid,
                     enum jwt_key_alg alg, const uint8_t *key, size_t key_len)
{
    struct jwt_key *k = NULL;
    size_t kid_len = kid ? strnlen(kid, JWT_KID_MAX) : 0;
    enum status st = ST_INVALID;

    *err = NULL;
    for (size_t i = 0; i < kid_len && kid_len < JWT_KID_MAX; i++)
        if (kid[i] <= 0x20 || kid[i] >= 0x7f)
            kid_len = 0;
    if (kid_len == 0 || kid_len >= JWT_KID_MAX)
        *err = "kid must be 1..128 printable ASCII characters without spaces";
    else if (key_find(v, kid, kid_len) != NULL)
        *err = "duplicate kid";
    else if (v->n_keys >= JWT_MAX_KEYS)
        *err = "too many keys (at most 64)";
    else if (alg != JWT_HS256 && alg != JWT_RS256 && alg != JWT_ES256)
        *err = "alg must be HS256, RS256 or ES256";
    else if (alg == JWT_HS256 && key_len < JWT_HS_SECRET_MIN)
        *err = "HS256 secret must be at least 32 bytes";
    else if (alg == JWT_HS256 && key_len > JWT_KEY_FILE_MAX)
        *err = "HS256 secret too large";
    else if (alg == JWT_HS256 && memmem(key, key_len, "-----BEGIN", 10) != NULL)
        *err = "HS256 secret looks like a PEM key: refusing (algorithm confusion)";
    else if (alg != JWT_HS256)
        *err = pem_check(alg, key, key_len);
    if (*err != NULL)
        goto out;
    k = &v->keys[v->n_keys++];
    memcpy(k->kid, kid, kid_len);
    k->kid[kid_len] = '\0';
    k->alg = alg;
    if (alg == JWT_HS256) {
        k->hs = secret_new(key_len);
        memcpy(secret_rw(k->hs), key, key_len);
    } else {
        k->pem = xmalloc(key_len + 1);
        memcpy(k->pem, key, key_len);
        k->pem[key_len] = '\0';
        k->pem_len = key_len;
    }
    st = ST_OK;
out:
    return st;
}

enum status
jwt_verifier_add_role(struct jwt_verifier *v, const char **err, const char *role, uint32_t scopes)
{
    struct jwt_role *r = NULL;
    enum status st = ST_INVALID;

    *err = NULL;
    if (!text_ok(role, JWT_ROLE_MAX)) {
        *err = "role name must be 1..128 bytes without control characters";
        goto out;
    }
    for (size_t i = 0; i < v->n_roles && r == NULL; i++)
        if (strcmp(v->roles[i].name, role) == 0)
            r = &v->roles[i];
    if (r == NULL && v->n_roles >= JWT_MAX_ROLES) {
        *err = "too many roles (at most 64)";
        goto out;
    }
    if (r == NULL) {
        r = &v->roles[v->n_roles++];
        r->len = strlen(role);
        memcpy(r->name, role, r->len + 1);
    }
    r->scopes |= scopes & SCOPE__ALL;
    st = ST_OK;
out:
    return st;
}

enum status
jwt_verifier_set_rate(struct jwt_verifier *v, int64_t rate, int64_t burst)
{
    if (rate < 0 || burst < 0 || rate > JWT_RATE_MAX || burst > JWT_RATE_MAX)
        return ST_INVALID;
    v->rate = rate;
    v->burst = burst;
    return ST_OK;
}

void
jwt_verifier_rate(const struct jwt_verifier *v, int64_t *rate, int64_t *burst)
{
    *rate = v->rate;
    *burst = v->burst;
}

void
jwt_bucket(char out[static JWT_BUCKET_BYTES], const struct jwt_claims *c)
{
    static const char prefix[] = "\002jwt:"; /* API key ids are base62: no clash */
    crypto_generichash_state h;
    uint8_t d[16];

    crypto_generichash_init(&h, NULL, 0, sizeof d);
    crypto_generichash_update(&h, (const uint8_t *)c->iss, strlen(c->iss) + 1); /* with NUL */
    crypto_generichash_update(&h, (const uint8_t *)c->sub, strlen(c->sub));
    crypto_generichash_final(&h, d, sizeof d);
    memcpy(out, prefix, sizeof prefix - 1);
    sodium_bin2hex(out + sizeof prefix - 1, JWT_BUCKET_BYTES - (sizeof prefix - 1), d, sizeof d);
    sodium_memzero(&h, sizeof h);
}

/* ---- verification -------------------------------------------------------------------------- */

/* Exactly three non-empty parts except the signature, which may be empty only so that an
 * unsigned token reaches the header check and is counted as alg_none. */
static bool
split(struct jwt_parts *parts, const char *t, size_t len)
{
    size_t start = 0, n = 0;

    for (size_t i = 0; i <= len; i++) {
        if (i < len && t[i] != '.')
            continue;
        if (n == 3)
            return false;
        parts->p[n] = t + start;
        parts->len[n] = i - start;
        n++;
        start = i + 1;
    }
    return n == 3 && parts->len[0] > 0 && parts->len[1] > 0;
}

/* Strict base64url, then a JSON object without duplicate keys. The decoded bytes are part of a
 * bearer credential: wiped before they are freed (jansson's own copies are wiped by the jsonx
 * allocator; je may quote a few bytes of the text, so it is wiped too). */
static json_t *
decode_object(const char *text, size_t len)
{
    size_t cap = b64_decoded_max(len), n = 0;
    uint8_t *buf = xmalloc(cap + 1);
    json_t *j = NULL;
    json_error_t je;

    if (b64_url_decode(buf, cap, &n, text, len) != ST_OK || n == 0)
        goto out;
    j = json_loadb((const char *)buf, n, JSON_REJECT_DUPLICATES, &je);
    if (j != NULL && !json_is_object(j)) {
        json_decref(j);
        j = NULL;
    }
out:
    sodium_memzero(&je, sizeof je);
    sodium_memzero(buf, cap + 1);
    free(buf);
    return j;
}

const char *
jwt_alg_name(enum jwt_key_alg alg)
{
    return alg == JWT_HS256 ? "HS256" : alg == JWT_RS256 ? "RS256" : "ES256";
}

/* The header, in the order that reports the most telling reason first. */
static enum jwt_reason
check_header(const struct jwt_verifier *v, const json_t *hdr, const struct jwt_key **key)
{
    static const char *const forbidden[] = {"crit", "jku", "x5u", "x5c", "jwk"};
    const json_t *alg = json_object_get(hdr, "alg");
    const json_t *typ = json_object_get(hdr, "typ");
    const json_t *kid = json_object_get(hdr, "kid");

    *key = NULL;
    if (!json_is_string(alg))
        return JWT_R_MALFORMED;
    if (strcasecmp(json_string_value(alg), "none") == 0)
        return JWT_R_ALG_NONE;
    for (size_t i = 0; i < sizeof forbidden / sizeof forbidden[0]; i++)
        if (json_object_get(hdr, forbidden[i]) != NULL)
            return JWT_R_BAD_HEADER;
    if (typ != NULL && (!json_is_string(typ) || strcasecmp(json_string_value(typ), "JWT") != 0))
        return JWT_R_BAD_HEADER;
    if (!json_is_string(kid) ||
        (*key = key_find(v, json_string_value(kid), json_string_length(kid))) == NULL)
        return JWT_R_UNKNOWN_KID;
    /* Exact, case-sensitive: this is what stops HS256-with-the-RSA-public-key confusion. */
    if (strcmp(json_string_value(alg), jwt_alg_name((*key)->alg)) != 0)
        return JWT_R_ALG_MISMATCH;
    return JWT_R_OK;
}

/* The signature must be canonical base64url of the right size before libjwt sees it; libjwt then
 * verifies with the pinned key, and we check it used the pinned algorithm. */
static enum jwt_reason
check_signature(const struct jwt_key *key, const struct jwt_parts *parts, const char *token,
                size_t len)
{
    uint8_t sig[JWT_SIG_MAX];
    char text[JWT_TOKEN_MAX + 1];
    size_t sig_len = 0, text_used = 0;
    jwt_t *j = NULL;
    enum jwt_reason r = JWT_R_BAD_SIGNATURE;
    int rc;

    if (key == NULL) /* check_header admits no token without its pinned key */
        return JWT_R_UNKNOWN_KID;
    if (parts->len[2] == 0 ||
        b64_url_decode(sig, sizeof sig, &sig_len, parts->p[2], parts->len[2]) != ST_OK)
        goto out;
    if ((key->alg == JWT_HS256 && sig_len != JWT_HS256_SIG_BYTES) ||
        (key->alg == JWT_ES256 && sig_len != JWT_ES256_SIG_BYTES))
        goto out;
    memcpy(text, token, len);
    text[len] = '\0';
    text_used = len + 1;
    if (key->alg == JWT_HS256)
        rc = jwt_decode(&j, text, secret_ro(key->hs), (int)secret_len(key->hs));
    else
        rc = jwt_decode(&j, text, (const unsigned char *)key->pem, (int)key->pem_len);
    if (rc != 0 || j == NULL)
        goto out;
    if (jwt_get_alg(j) != (key->alg == JWT_HS256   ? JWT_ALG_HS256
                           : key->alg == JWT_RS256 ? JWT_ALG_RS256
                                                   : JWT_ALG_ES256))
        goto out;
    r = JWT_R_OK;
out:
    jwt_free(j); /* libjwt scrubs its copy of the key */
    /* The token (a bearer credential) and its signature: no copy stays on this stack. */
    sodium_memzero(text, text_used);
    sodium_memzero(sig, sizeof sig);
    return r;
}

/* A NumericDate: an integer, or a finite real (floored). false for any other type or a value
 * beyond +-2^62 (so later arithmetic cannot overflow). *present false when absent. */
static bool
get_time(const json_t *claims, const char *name, bool *present, int64_t *out)
{
    const json_t *j = json_object_get(claims, name);
    double d;

    *present = j != NULL;
    *out = 0;
    if (j == NULL)
        return true;
    if (json_is_integer(j)) {
        d = (double)json_integer_value(j);
        *out = (int64_t)json_integer_value(j);
    } else if (json_is_real(j)) {
        d = floor(json_real_value(j));
        *out = isfinite(d) && fabs(d) < JWT_TIME_LIMIT ? (int64_t)d : 0;
    } else {
        return false;
    }
    return isfinite(d) && fabs(d) < JWT_TIME_LIMIT;
}

static enum jwt_reason
check_times(const struct jwt_verifier *v, const json_t *claims, int64_t now, int64_t *exp)
{
    bool has_exp, has_nbf, has_iat;
    int64_t nbf, iat;

    if (!get_time(claims, "exp", &has_exp, exp) || !get_time(claims, "nbf", &has_nbf, &nbf) ||
        !get_time(claims, "iat", &has_iat, &iat))
        return JWT_R_MALFORMED;
    if (!has_exp)
        return JWT_R_MISSING_EXP;
    if (now - v->leeway >= *exp)
        return JWT_R_EXPIRED;
    if ((has_nbf && nbf > now + v->leeway) || (has_iat && iat > now + v->leeway))
        return JWT_R_NOT_YET_VALID;
    return JWT_R_OK;
}

static bool
str_is(const json_t *j, const char *want, size_t want_len)
{
    return json_is_string(j) && json_string_length(j) == want_len &&
           memcmp(json_string_value(j), want, want_len) == 0;
}

static enum jwt_reason
check_iss_aud(const struct jwt_verifier *v, const json_t *claims)
{
    const json_t *aud = json_object_get(claims, "aud"), *a;
    bool found = false;
    size_t i;

    if (!str_is(json_object_get(claims, "iss"), v->issuer, v->issuer_len))
        return JWT_R_WRONG_ISSUER;
    if (json_is_array(aud)) {
        json_array_foreach (aud, i, a) {
            if (!json_is_string(a))
                return JWT_R_MALFORMED;
            found = found || str_is(a, v->audience, v->audience_len);
        }
    } else {
        found = str_is(aud, v->audience, v->audience_len);
    }
    return found ? JWT_R_OK : JWT_R_WRONG_AUDIENCE;
}

static uint32_t
role_scopes(const struct jwt_verifier *v, const json_t *role)
{
    for (size_t i = 0; json_is_string(role) && i < v->n_roles; i++)
        if (str_is(role, v->roles[i].name, v->roles[i].len))
            return v->roles[i].scopes;
    return 0;
}

/* The role claim: a string or an array of strings; unknown roles grant nothing. */
static enum jwt_reason
map_roles(const struct jwt_verifier *v, const json_t *claims, uint32_t *scopes)
{
    const json_t *role = json_object_get(claims, v->role_claim), *r;
    size_t i;

    *scopes = 0;
    if (json_is_array(role)) {
        json_array_foreach (role, i, r) {
            if (!json_is_string(r))
                return JWT_R_MALFORMED;
            *scopes |= role_scopes(v, r);
        }
    } else if (role != NULL && !json_is_string(role)) {
        return JWT_R_MALFORMED;
    } else {
        *scopes = role_scopes(v, role);
    }
    return *scopes != 0 ? JWT_R_OK : JWT_R_NO_ROLE;
}

/* Claims after the signature: times, issuer and audience, sub, roles. */
static enum jwt_reason
check_claims(const struct jwt_verifier *v, const json_t *claims, int64_t now,
             struct jwt_claims *out)
{
    const json_t *sub = json_object_get(claims, "sub");
    uint32_t scopes = 0;
    enum jwt_reason r;

    if ((r = check_times(v, claims, now, &out->exp)) != JWT_R_OK ||
        (r = check_iss_aud(v, claims)) != JWT_R_OK)
        return r;
    if (sub != NULL && (!json_is_string(sub) || json_string_length(sub) >= JWT_SUB_MAX ||
                        strlen(json_string_value(sub)) != json_string_length(sub)))
        return JWT_R_MALFORMED;
    if ((r = map_roles(v, claims, &scopes)) != JWT_R_OK)
        return r;
    memcpy(out->iss, v->issuer, v->issuer_len + 1);
    if (sub != NULL)
        memcpy(out->sub, json_string_value(sub), json_string_length(sub) + 1);
    out->scopes = scopes;
    return JWT_R_OK;
}

enum status
jwt_verify(const struct jwt_verifier *v, const char *token, size_t len, int64_t now,
           struct jwt_claims *out)
{
    const struct jwt_key *key = NULL;
    struct jwt_parts parts;
    json_t *hdr = NULL, *claims = NULL;
    enum jwt_reason r = JWT_R_MALFORMED;

    memset(out, 0, sizeof *out);
    if (token == NULL || len == 0 || len > JWT_TOKEN_MAX || !split(&parts, token, len) ||
        (hdr = decode_object(parts.p[0], parts.len[0])) == NULL)
        goto out;
    r = check_header(v, hdr, &key);
    if (key != NULL)
        memcpy(out->kid, key->kid, sizeof out->kid);
    if (r != JWT_R_OK)
        goto out;
    if ((claims = decode_object(parts.p[1], parts.len[1])) == NULL) {
        r = JWT_R_MALFORMED;
        goto out;
    }
    if ((r = check_signature(key, &parts, token, len)) != JWT_R_OK)
        goto out;
    r = check_claims(v, claims, now, out);
out:
    json_decref(claims);
    json_decref(hdr);
    if (r != JWT_R_OK) {
        char kid[JWT_KID_MAX];
        memcpy(kid, out->kid, sizeof kid);
        memset(out, 0, sizeof *out);
        memcpy(out->kid, kid, sizeof kid);
        atomic_fetch_add_explicit(&v->failures[r], 1, memory_order_relaxed);
    }
    out->reason = r;
    return r == JWT_R_OK ? ST_OK : ST_UNAUTHENTICATED;
}

uint64_t
jwt_verifier_failures(const struct jwt_verifier *v, enum jwt_reason r)
{
    return (unsigned)r < JWT_R__COUNT ? atomic_load_explicit(&v->failures[r], memory_order_relaxed)
                                      : 0;
}
