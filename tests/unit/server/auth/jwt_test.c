/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/server/auth/jwt_test.c -- JWT verification attacked: alg none, algorithm confusion,
 * kids, issuer, audience, time claims and leeway, signatures, strict base64url and JSON, roles,
 * and the JSON config loader's errors. Keys are made here (OpenSSL), tokens signed with libjwt. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <sodium.h>

#include "crypto/b64.h"
#include "crypto/init.h"
#include "crypto/secret.h"
#include "server/apps.h"
#include "server/auth/jwt.h"

#define NOW 1700000000LL

static const char hs1_secret[] = "hs1-0123456789abcdef0123456789abcdef";
static const char hs2_secret[] = "hs2-fedcba9876543210fedcba9876543210";

/* Fixture: one verifier with four keys (hs1, hs2: HS256; rs1: RS256; es1: ES256). */
static struct {
    char dir[64];
    char *rsa_priv, *rsa_pub, *ec_priv, *ec_pub, *rsa_small_pub; /* PEM texts */
    struct jwt_verifier *v;
} fx;

static char *
path_in(const char *name)
{
    static char buf[4][128];
    static int next;
    char *p = buf[next++ % 4];

    snprintf(p, sizeof buf[0], "%s/%s", fx.dir, name);
    return p;
}

/* Written 0600, as a key file must be (secret_file modes are checked: test_secret_file_mode). */
static void
write_file(const char *path, const char *text, size_t len)
{
    FILE *f = fopen(path, "wb");

    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, 0600), 0);
}

static char *
pem_of(EVP_PKEY *k, int priv)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL, *out;
    long n;

    assert_non_null(bio);
    assert_int_equal(priv ? PEM_write_bio_PrivateKey(bio, k, NULL, NULL, 0, NULL, NULL)
                          : PEM_write_bio_PUBKEY(bio, k),
                     1);
    n = BIO_get_mem_data(bio, &data);
    out = strndup(data, (size_t)n);
    BIO_free(bio);
    return out;
}

static char *
cfg_text(const char *role_claim)
{
    static char buf[2048];

    snprintf(buf, sizeof buf,
             "{\"issuer\":\"https://idp.example\",\"audience\":\"difyguard\",\"leeway\":30,"
             "\"role_claim\":\"%s\",\"roles\":{\"dify-api\":[\"encrypt\",\"decrypt\"],"
             "\"auditor\":\"audit:read  certs:read\"},\"keys\":["
             "{\"kid\":\"hs1\",\"alg\":\"HS256\",\"secret_file\":\"%s\"},"
             "{\"kid\":\"hs2\",\"alg\":\"HS256\",\"secret_file\":\"%s\"},"
             "{\"kid\":\"rs1\",\"alg\":\"RS256\",\"public_key_file\":\"%s\"},"
             "{\"kid\":\"es1\",\"alg\":\"ES256\",\"public_key_file\":\"%s\"}]}",
             role_claim, path_in("hs1"), path_in("hs2"), path_in("rs1.pem"), path_in("es1.pem"));
    return buf;
}

static struct jwt_verifier *
load(const char *text, enum status want, char *err, size_t err_len)
{
    struct jwt_verifier *v = NULL;
    json_error_t je;
    json_t *cfg = json_loads(text, 0, &je);

    assert_non_null(cfg);
    assert_int_equal(jwt_verifier_from_json(&v, err, err_len, cfg), want);
    json_decref(cfg);
    return v;
}

static int
group_setup(void **state)
{
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    EVP_PKEY *small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    char err[256], line[128];

    (void)state;
    if (crypto_init() != ST_OK || rsa == NULL || ec == NULL || small == NULL)
        return -1;
    snprintf(fx.dir, sizeof fx.dir, "/tmp/dg_jwt_test_XXXXXX");
    if (mkdtemp(fx.dir) == NULL)
        return -1;
    fx.rsa_priv = pem_of(rsa, 1);
    fx.rsa_pub = pem_of(rsa, 0);
    fx.ec_priv = pem_of(ec, 1);
    fx.ec_pub = pem_of(ec, 0);
    fx.rsa_small_pub = pem_of(small, 0);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(small);
    EVP_PKEY_free(ec);
    /* hs1 ends in a newline, as `echo secret > file` leaves it: the loader drops it. */
    snprintf(line, sizeof line, "%s\n", hs1_secret);
    write_file(path_in("hs1"), line, strlen(line));
    write_file(path_in("hs2"), hs2_secret, strlen(hs2_secret));
    write_file(path_in("rs1.pem"), fx.rsa_pub, strlen(fx.rsa_pub));
    write_file(path_in("es1.pem"), fx.ec_pub, strlen(fx.ec_pub));
    write_file(path_in("small.pem"), fx.rsa_small_pub, strlen(fx.rsa_small_pub));
    fx.v = load(cfg_text("role"), ST_OK, err, sizeof err);
    return fx.v != NULL ? 0 : -1;
}

static int
group_teardown(void **state)
{
    const char *names[] = {"hs1", "hs2", "rs1.pem", "es1.pem", "small.pem", "short", "pemsecret"};

    (void)state;
    jwt_verifier_free(fx.v);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        unlink(path_in(names[i]));
    rmdir(fx.dir);
    free(fx.rsa_priv);
    free(fx.rsa_pub);
    free(fx.ec_priv);
    free(fx.ec_pub);
    free(fx.rsa_small_pub);
    return 0;
}

/* ---- token makers ---- */

/* Signed by libjwt. kid NULL: no kid header. The caller frees the result. */
static char *
mint(const char *alg, const void *key, size_t key_len, const char *kid, const char *grants)
{
    jwt_t *j = NULL;
    char *tok;

    assert_int_equal(jwt_new(&j), 0);
    assert_int_equal(jwt_set_alg(j, jwt_str_alg(alg), key, (int)key_len), 0);
    if (kid != NULL)
        assert_int_equal(jwt_add_header(j, "kid", kid), 0);
    assert_int_equal(jwt_add_grants_json(j, grants), 0);
    tok = jwt_encode_str(j);
    assert_non_null(tok);
    jwt_free(j);
    return tok;
}

static char *
mint_hs1(const char *grants)
{
    return mint("HS256", hs1_secret, strlen(hs1_secret), "hs1", grants);
}

static void
b64url(char *out, size_t cap, const void *p, size_t n)
{
    b64_url_encode_public(out, cap, p, n);
}

/* Hand-built: header and payload JSON as given, HMAC-SHA256 under key (NULL: empty signature). */
static char *
craft(const char *header, const char *payload, const char *key)
{
    char *tok = malloc(16384);
    unsigned char mac[32];
    unsigned mac_len = 0;
    size_t n;

    assert_non_null(tok);
    b64url(tok, 8192, header, strlen(header));
    strcat(tok, ".");
    n = strlen(tok);
    b64url(tok + n, 8192, payload, strlen(payload));
    strcat(tok, ".");
    n = strlen(tok);
    if (key != NULL) {
        assert_non_null(
            HMAC(EVP_sha256(), key, (int)strlen(key), (unsigned char *)tok, n - 1, mac, &mac_len));
        b64url(tok + n, 64, mac, mac_len);
    }
    return tok;
}

/* Standard good claims plus `extra` (a JSON fragment starting with ',' or ""). */
static const char *
claims(const char *extra)
{
    static char buf[8192];

    snprintf(buf, sizeof buf,
             "{\"iss\":\"https://idp.example\",\"aud\":\"difyguard\",\"sub\":\"user-7\","
             "\"exp\":%lld,\"iat\":%lld,\"role\":\"dify-api\"%s}",
             NOW + 300, NOW - 10, extra);
    return buf;
}

static enum jwt_reason
verify_v(const struct jwt_verifier *v, const char *tok, struct jwt_claims *c)
{
    enum status st = jwt_verify(v, tok, strlen(tok), NOW, c);

    assert_int_equal(st, c->reason == JWT_R_OK ? ST_OK : ST_UNAUTHENTICATED);
    if (st != ST_OK) {
        assert_int_equal(c->scopes, 0);
        assert_string_equal(c->sub, "");
        assert_string_equal(c->iss, "");
    }
    return c->reason;
}

static enum jwt_reason
verify(const char *tok)
{
    struct jwt_claims c;

    return verify_v(fx.v, tok, &c);
}

/* verify() of a libjwt HS256 token for hs1 with the given claims; frees it. */
static enum jwt_reason
verify_hs1(const char *grants)
{
    char *tok = mint_hs1(grants);
    enum jwt_reason r = verify(tok);

    free(tok);
    return r;
}

/* ---- valid tokens ---- */

static void
test_valid_hs256(void **state)
{
    char *tok = mint_hs1(claims(""));
    struct jwt_claims c;

    (void)state;
    assert_int_equal(verify_v(fx.v, tok, &c), JWT_R_OK);
    assert_string_equal(c.kid, "hs1");
    assert_string_equal(c.iss, "https://idp.example");
    assert_string_equal(c.sub, "user-7");
    assert_int_equal(c.scopes, SCOPE_ENCRYPT | SCOPE_DECRYPT);
    assert_int_equal(c.exp, NOW + 300);
    free(tok);
    tok = mint("HS256", hs2_secret, strlen(hs2_secret), "hs2", claims(""));
    assert_int_equal(verify(tok), JWT_R_OK);
    free(tok);
}

static void
test_valid_rs256_es256(void **state)
{
    char *rs = mint("RS256", fx.rsa_priv, strlen(fx.rsa_priv), "rs1", claims(""));
    char *es = mint("ES256", fx.ec_priv, strlen(fx.ec_priv), "es1", claims(""));
    struct jwt_claims c;

    (void)state;
    assert_int_equal(verify_v(fx.v, rs, &c), JWT_R_OK);
    assert_string_equal(c.kid, "rs1");
    assert_int_equal(c.scopes, SCOPE_ENCRYPT | SCOPE_DECRYPT);
    assert_int_equal(verify_v(fx.v, es, &c), JWT_R_OK);
    assert_string_equal(c.kid, "es1");
    free(rs);
    free(es);
}

static void
test_hand_built_hs256_without_typ(void **state)
{
    char *tok = craft("{\"alg\":\"HS256\",\"kid\":\"hs1\"}", claims(""), hs1_secret);

    (void)state;
    assert_int_equal(verify(tok), JWT_R_OK);
    free(tok);
    tok = craft("{\"alg\":\"HS256\",\"kid\":\"hs1\",\"typ\":\"jwt\"}", claims(""), hs1_secret);
    assert_int_equal(verify(tok), JWT_R_OK);
    free(tok);
}

/* ---- alg none and algorithm confusion ---- */

static void
test_alg_none(void **state)
{
    char payload[1024], tok[2048];
    char *t2;

    (void)state;
    b64url(payload, sizeof payload, claims(""), strlen(claims("")));
    snprintf(tok, sizeof tok, "eyJhbGciOiJub25lIn0.%s.", payload);
    assert_int_equal(verify(tok), JWT_R_ALG_NONE);
    t2 = craft("{\"alg\":\"none\",\"kid\":\"hs1\"}", claims(""), NULL);
    assert_int_equal(verify(t2), JWT_R_ALG_NONE);
    free(t2);
    t2 = craft("{\"alg\":\"NoNe\",\"kid\":\"hs1\"}", claims(""), hs1_secret);
    assert_int_equal(verify(t2), JWT_R_ALG_NONE);
    free(t2);
    /* An alg the kid is not pinned to, even a real one. */
    t2 = craft("{\"alg\":\"HS512\",\"kid\":\"hs1\"}", claims(""), hs1_secret);
    assert_int_equal(verify(t2), JWT_R_ALG_MISMATCH);
    free(t2);
    t2 = craft("{\"alg\":\"hs256\",\"kid\":\"hs1\"}", claims(""), hs1_secret);
    assert_int_equal(verify(t2), JWT_R_ALG_MISMATCH);
    free(t2);
}

static void
test_algorithm_confusion(void **state)
{
    /* HS256 whose HMAC key is the RSA public key's PEM bytes: the classic forgery. */
    char *tok = mint("HS256", fx.rsa_pub, strlen(fx.rsa_pub), "rs1", claims(""));
    struct jwt_claims c;

    (void)state;
    assert_int_equal(verify_v(fx.v, tok, &c), JWT_R_ALG_MISMATCH);
    assert_string_equal(c.kid, "rs1");
    free(tok);
    tok = mint("HS256", fx.ec_pub, strlen(fx.ec_pub), "es1", claims(""));
    assert_int_equal(verify(tok), JWT_R_ALG_MISMATCH);
    free(tok);
    /* The same forgery presented with an HS kid: the secret is different, so bad signature. */
    tok = mint("HS256", fx.rsa_pub, strlen(fx.rsa_pub), "hs2", claims(""));
    assert_int_equal(verify(tok), JWT_R_BAD_SIGNATURE);
    free(tok);
    /* Real RS256 and ES256 tokens under the wrong kids. */
    tok = mint("RS256", fx.rsa_priv, strlen(fx.rsa_priv), "hs1", claims(""));
    assert_int_equal(verify(tok), JWT_R_ALG_MISMATCH);
    free(tok);
    tok = mint("RS256", fx.rsa_priv, strlen(fx.rsa_priv), "es1", claims(""));
    assert_int_equal(verify(tok), JWT_R_ALG_MISMATCH);
    free(tok);
    tok = mint("ES256", fx.ec_priv, strlen(fx.ec_priv), "rs1", claims(""));
    assert_int_equal(verify(tok), JWT_R_ALG_MISMATCH);
    free(tok);
    /* hs1's token presented as hs2 (another HS key): bad signature. */
    tok = mint("HS256", hs1_secret, strlen(hs1_secret), "hs2", claims(""));
    assert_int_equal(verify(tok), JWT_R_BAD_SIGNATURE);
    free(tok);
}

/* ---- kid ---- */

static void
test_kid(void **state)
{
    char *tok = mint("HS256", hs1_secret, strlen(hs1_secret), "nope", claims(""));
    struct jwt_claims c;

    (void)state;
    assert_int_equal(verify_v(fx.v, tok, &c), JWT_R_UNKNOWN_KID);
    assert_string_equal(c.kid, ""); /* an unknown kid is never echoed */
    free(tok);
    tok = mint("HS256", hs1_secret, strlen(hs1_secret), NULL, claims(""));
    assert_int_equal(verify(tok), JWT_R_UNKNOWN_KID);
    free(tok);
    tok = craft("{\"alg\":\"HS256\",\"kid\":7}", claims(""), hs1_secret);
    assert_int_equal(verify(tok), JWT_R_UNKNOWN_KID);
    free(tok);
    tok = craft("{\"alg\":\"HS256\",\"kid\":\"hs1\\u0000x\"}", claims(""), hs1_secret);
    assert_int_equal(verify(tok), JWT_R_MALFORMED); /* jansson refuses \u0000 */
    free(tok);
    tok = craft("{\"alg\":\"HS256\",\"kid\":\"HS1\"}", claims(""), hs1_secret);
    assert_int_equal(verify(tok), JWT_R_UNKNOWN_KID);
    free(tok);
}

/* ---- header fields ---- */

static void
test_forbidden_headers(void **state)
{
    static const char *const hdrs[] = {
        "{\"alg\":\"HS256\",\"kid\":\"hs1\",\"crit\":[\"exp\"]}",
        "{\"alg\":\"HS256\",\"kid\":\"hs1\",\"jku\":\"https://evil/jwks\"}",
        "{\"alg\":\"HS256\",\"kid\":\"hs1\",\"x5u\":\"https://evil/cert\"}",
        "{\"alg\":\"HS256\",\"kid\":\"hs1\",\"x5c\":[\"MIIB\"]}",
        "{\"alg\":\"HS256\",\"kid\":\"hs1\",\"jwk\":{\"kty\":\"oct\",\"k\":\"AAAA\"}}",
        "{\"alg\":\"HS256\",\"kid\":\"hs1\",\"typ\":\"JOSE\"}",
        "{\"alg\":\"HS256\",\"kid\":\"hs1\",\"typ\":1}",
    };

    (void)state;
    for (size_t i = 0; i < sizeof hdrs / sizeof hdrs[0]; i++) {
        char *tok = craft(hdrs[i], claims(""), hs1_secret);
        assert_int_equal(verify(tok), JWT_R_BAD_HEADER);
        free(tok);
    }
}

/* ---- issuer and audience ---- */

static void
test_issuer_audience(void **state)
{
    char grants[512];

    (void)state;
    snprintf(grants, sizeof grants,
             "{\"iss\":\"https://evil.example\",\"aud\":\"difyguard\",\"exp\":%lld,"
             "\"role\":\"dify-api\"}",
             NOW + 60);
    assert_int_equal(verify_hs1(grants), JWT_R_WRONG_ISSUER);
    snprintf(grants, sizeof grants,
             "{\"iss\":\"https://idp.example/\",\"aud\":\"difyguard\",\"exp\":%lld,"
             "\"role\":\"dify-api\"}",
             NOW + 60);
    assert_int_equal(verify_hs1(grants), JWT_R_WRONG_ISSUER);
    snprintf(grants, sizeof grants, "{\"aud\":\"difyguard\",\"exp\":%lld,\"role\":\"dify-api\"}",
             NOW + 60);
    assert_int_equal(verify_hs1(grants), JWT_R_WRONG_ISSUER);
    snprintf(grants, sizeof grants,
             "{\"iss\":\"https://idp.example\",\"aud\":\"other\",\"exp\":%lld,"
             "\"role\":\"dify-api\"}",
             NOW + 60);
    assert_int_equal(verify_hs1(grants), JWT_R_WRONG_AUDIENCE);
    snprintf(grants, sizeof grants,
             "{\"iss\":\"https://idp.example\",\"exp\":%lld,\"role\":\"dify-api\"}", NOW + 60);
    assert_int_equal(verify_hs1(grants), JWT_R_WRONG_AUDIENCE);
    snprintf(grants, sizeof grants,
             "{\"iss\":\"https://idp.example\",\"aud\":[],\"exp\":%lld,\"role\":\"dify-api\"}",
             NOW + 60);
    assert_int_equal(verify_hs1(grants), JWT_R_WRONG_AUDIENCE);
    snprintf(grants, sizeof grants,
             "{\"iss\":\"https://idp.example\",\"aud\":[\"a\",\"difyguard\"],\"exp\":%lld,"
             "\"role\":\"dify-api\"}",
             NOW + 60);
    assert_int_equal(verify_hs1(grants), JWT_R_OK);
    snprintf(grants, sizeof grants,
             "{\"iss\":\"https://idp.example\",\"aud\":[\"difyguard\",3],\"exp\":%lld,"
             "\"role\":\"dify-api\"}",
             NOW + 60);
    assert_int_equal(verify_hs1(grants), JWT_R_MALFORMED);
}

/* ---- time claims ---- */

static char *
times(char *buf, size_t cap, const char *fields)
{
    snprintf(buf, cap,
             "{\"iss\":\"https://idp.example\",\"aud\":\"difyguard\",\"role\":\"dify-api\",%s}",
             fields);
    return buf;
}

static void
test_times(void **state)
{
    char f[128], g[512];

    (void)state;
    snprintf(f, sizeof f, "\"exp\":%lld", NOW - 31);
    assert_int_equal(verify_hs1(times(g, sizeof g, f)), JWT_R_EXPIRED);
    snprintf(f, sizeof f, "\"exp\":%lld", NOW - 30); /* exactly at the leeway edge */
    assert_int_equal(verify_hs1(times(g, sizeof g, f)), JWT_R_EXPIRED);
    snprintf(f, sizeof f, "\"exp\":%lld", NOW - 29); /* within the leeway */
    assert_int_equal(verify_hs1(times(g, sizeof g, f)), JWT_R_OK);
    assert_int_equal(verify_hs1(times(g, sizeof g, "\"sub\":\"x\"")), JWT_R_MISSING_EXP);
    assert_int_equal(verify_hs1(times(g, sizeof g, "\"exp\":\"soon\"")), JWT_R_MALFORMED);
    assert_int_equal(verify_hs1(times(g, sizeof g, "\"exp\":1e300")), JWT_R_MALFORMED);
    snprintf(f, sizeof f, "\"exp\":%lld.75", NOW + 5); /* reals are fine */
    assert_int_equal(verify_hs1(times(g, sizeof g, f)), JWT_R_OK);
    snprintf(f, sizeof f, "\"exp\":%lld,\"nbf\":%lld", NOW + 300, NOW + 31);
    assert_int_equal(verify_hs1(times(g, sizeof g, f)), JWT_R_NOT_YET_VALID);
    snprintf(f, sizeof f, "\"exp\":%lld,\"nbf\":%lld", NOW + 300, NOW + 30);
    assert_int_equal(verify_hs1(times(g, sizeof g, f)), JWT_R_OK);
    snprintf(f, sizeof f, "\"exp\":%lld,\"iat\":%lld", NOW + 300, NOW + 3600);
    assert_int_equal(verify_hs1(times(g, sizeof g, f)), JWT_R_NOT_YET_VALID);
    snprintf(f, sizeof f, "\"exp\":%lld,\"nbf\":null", NOW + 300);
    assert_int_equal(verify_hs1(times(g, sizeof g, f)), JWT_R_MALFORMED);
    snprintf(f, sizeof f, "\"exp\":%lld,\"nbf\":-9223372036854775807", NOW + 300);
    assert_int_equal(verify_hs1(times(g, sizeof g, f)), JWT_R_MALFORMED);
}

/* ---- signatures ---- */

static void
test_bad_signature(void **state)
{
    static const char b64u[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const char *keys[][3] = {
        {"HS256", hs1_secret, "hs1"}, {"RS256", NULL, "rs1"}, {"ES256", NULL, "es1"}};

    (void)state;
    keys[1][1] = fx.rsa_priv;
    keys[2][1] = fx.ec_priv;
    for (size_t k = 0; k < 3; k++) {
        char *tok = mint(keys[k][0], keys[k][1], strlen(keys[k][1]), keys[k][2], claims(""));
        size_t len = strlen(tok), sig = (size_t)(strrchr(tok, '.') - tok) + 1;
        assert_int_equal(verify(tok), JWT_R_OK);
        /* Every signature character changed to another: never accepted. */
        for (size_t i = sig; i < len; i++) {
            char was = tok[i];
            tok[i] = b64u[(strchr(b64u, was) - b64u + 1 + (long)(i % 7)) % 64];
            enum jwt_reason r = verify(tok);
            assert_true(r == JWT_R_BAD_SIGNATURE || r == JWT_R_MALFORMED);
            tok[i] = was;
        }
        tok[len - 1] = '\0'; /* truncated signature */
        assert_int_not_equal(verify(tok), JWT_R_OK);
        tok[sig] = '\0'; /* empty signature */
        assert_int_equal(verify(tok), JWT_R_BAD_SIGNATURE);
        free(tok);
    }
}

static void
test_payload_swap(void **state)
{
    /* The header and signature of one token with the payload of another: bad signature. */
    char *a = mint_hs1(claims(""));
    char *b = mint_hs1(claims(",\"extra\":1"));
    char spliced[4096];
    const char *a_dot = strchr(a, '.'), *b_dot = strchr(b, '.');

    (void)state;
    snprintf(spliced, sizeof spliced, "%.*s.%.*s%s", (int)(a_dot - a), a,
             (int)(strrchr(b, '.') - b_dot - 1), b_dot + 1, strrchr(a, '.'));
    assert_int_equal(verify(spliced), JWT_R_BAD_SIGNATURE);
    free(a);
    free(b);
}

/* ---- malformed ---- */

static void
test_malformed(void **state)
{
    char *good = mint_hs1(claims(""));
    char buf[16384];
    char *tok;
    size_t len = strlen(good);
    struct jwt_claims c;

    (void)state;
    assert_int_equal(verify(good), JWT_R_OK);
    assert_int_equal(verify(""), JWT_R_MALFORMED);
    assert_int_equal(verify("."), JWT_R_MALFORMED);
    assert_int_equal(verify(".."), JWT_R_MALFORMED);
    /* two parts */
    snprintf(buf, sizeof buf, "%.*s", (int)(strrchr(good, '.') - good), good);
    assert_int_equal(verify(buf), JWT_R_MALFORMED);
    /* four parts */
    snprintf(buf, sizeof buf, "%s.AAAA", good);
    assert_int_equal(verify(buf), JWT_R_MALFORMED);
    /* standard base64 characters and padding are not base64url */
    snprintf(buf, sizeof buf, "%s", good);
    buf[3] = '+';
    assert_int_equal(verify(buf), JWT_R_MALFORMED);
    snprintf(buf, sizeof buf, "%.*s=.%s", (int)(strchr(good, '.') - good), good,
             strchr(good, '.') + 1);
    assert_int_equal(verify(buf), JWT_R_MALFORMED);
    /* whitespace */
    snprintf(buf, sizeof buf, " %s", good);
    assert_int_equal(verify(buf), JWT_R_MALFORMED);
    /* embedded NUL: len covers it */
    memcpy(buf, good, len + 1);
    buf[5] = '\0';
    assert_int_equal(jwt_verify(fx.v, buf, len, NOW, &c), ST_UNAUTHENTICATED);
    assert_int_equal(c.reason, JWT_R_MALFORMED);
    /* non-canonical base64url: "e30" is "{}", "e31" has non-zero trailing bits */
    tok = craft("{\"alg\":\"HS256\",\"kid\":\"hs1\",\"x\":1}", claims(""), hs1_secret);
    assert_int_equal(verify(tok), JWT_R_OK);
    free(tok);
    assert_int_equal(verify("e31.e30.AAAA"), JWT_R_MALFORMED);
    assert_int_equal(verify("e30.e31.AAAA"), JWT_R_MALFORMED);
    /* header or payload not a JSON object */
    assert_int_equal(verify("W10.e30.AAAA"), JWT_R_MALFORMED);
    tok = craft("{\"alg\":\"HS256\",\"kid\":\"hs1\"}", "[1]", hs1_secret);
    assert_int_equal(verify(tok), JWT_R_MALFORMED);
    free(tok);
    tok = craft("{\"alg\":\"HS256\",\"kid\":\"hs1\"} x", claims(""), hs1_secret);
    assert_int_equal(verify(tok), JWT_R_MALFORMED);
    free(tok);
    /* duplicate keys, in the header and in the claims (a second "role" must not win) */
    tok = craft("{\"alg\":\"HS256\",\"kid\":\"hs2\",\"kid\":\"hs1\"}", claims(""), hs1_secret);
    assert_int_equal(verify(tok), JWT_R_MALFORMED);
    free(tok);
    tok = craft("{\"alg\":\"none\",\"alg\":\"HS256\",\"kid\":\"hs1\"}", claims(""), hs1_secret);
    assert_int_equal(verify(tok), JWT_R_MALFORMED);
    free(tok);
    tok = craft("{\"alg\":\"HS256\",\"kid\":\"hs1\"}", claims(",\"role\":\"auditor\""), hs1_secret);
    assert_int_equal(verify(tok), JWT_R_MALFORMED);
    free(tok);
    tok = craft("{\"kid\":\"hs1\"}", claims(""), hs1_secret); /* no alg */
    assert_int_equal(verify(tok), JWT_R_MALFORMED);
    free(tok);
    /* huge: over 8 KiB is refused unread, even if well-formed */
    memset(buf, 'A', sizeof buf);
    buf[100] = '.';
    buf[200] = '.';
    assert_int_equal(jwt_verify(fx.v, buf, JWT_TOKEN_MAX + 1, NOW, &c), ST_UNAUTHENTICATED);
    assert_int_equal(c.reason, JWT_R_MALFORMED);
    assert_int_equal(jwt_verify(fx.v, NULL, 0, NOW, &c), ST_UNAUTHENTICATED);
    free(good);
}

static void
test_big_but_allowed(void **state)
{
    char pad[7000], extra[7100];
    char *tok;

    (void)state;
    memset(pad, 'x', sizeof pad - 1);
    pad[sizeof pad - 1] = '\0';
    snprintf(extra, sizeof extra, ",\"pad\":\"%.5000s\"", pad);
    tok = mint_hs1(claims(extra));
    assert_true(strlen(tok) <= JWT_TOKEN_MAX);
    assert_int_equal(verify(tok), JWT_R_OK);
    free(tok);
    snprintf(extra, sizeof extra, ",\"pad\":\"%.6500s\"", pad);
    tok = mint_hs1(claims(extra));
    assert_true(strlen(tok) > JWT_TOKEN_MAX);
    assert_int_equal(verify(tok), JWT_R_MALFORMED);
    free(tok);
}

/* ---- roles ---- */

static void
test_roles(void **state)
{
    char g[512];
    struct jwt_claims c;
    char *tok;

    (void)state;
    snprintf(g, sizeof g,
             "{\"iss\":\"https://idp.example\",\"aud\":\"difyguard\",\"exp\":%lld,"
             "\"role\":[\"auditor\",\"nobody\",\"dify-api\"]}",
             NOW + 60);
    tok = mint_hs1(g);
    assert_int_equal(verify_v(fx.v, tok, &c), JWT_R_OK);
    assert_int_equal(c.scopes, SCOPE_ENCRYPT | SCOPE_DECRYPT | SCOPE_AUDIT_READ | SCOPE_CERTS_READ);
    assert_string_equal(c.sub, ""); /* no sub claim */
    free(tok);
    snprintf(g, sizeof g,
             "{\"iss\":\"https://idp.example\",\"aud\":\"difyguard\",\"exp\":%lld,"
             "\"role\":\"auditor\"}",
             NOW + 60);
    tok = mint_hs1(g);
    assert_int_equal(verify_v(fx.v, tok, &c), JWT_R_OK);
    assert_int_equal(c.scopes, SCOPE_AUDIT_READ | SCOPE_CERTS_READ);
    free(tok);
    snprintf(g, sizeof g,
             "{\"iss\":\"https://idp.example\",\"aud\":\"difyguard\",\"exp\":%lld,"
             "\"role\":\"admin\"}",
             NOW + 60);
    assert_int_equal(verify_hs1(g), JWT_R_NO_ROLE);
    snprintf(g, sizeof g, "{\"iss\":\"https://idp.example\",\"aud\":\"difyguard\",\"exp\":%lld}",
             NOW + 60);
    assert_int_equal(verify_hs1(g), JWT_R_NO_ROLE);
    snprintf(g, sizeof g,
             "{\"iss\":\"https://idp.example\",\"aud\":\"difyguard\",\"exp\":%lld,"
             "\"role\":[]}",
             NOW + 60);
    assert_int_equal(verify_hs1(g), JWT_R_NO_ROLE);
    snprintf(g, sizeof g,
             "{\"iss\":\"https://idp.example\",\"aud\":\"difyguard\",\"exp\":%lld,"
             "\"role\":7}",
             NOW + 60);
    assert_int_equal(verify_hs1(g), JWT_R_MALFORMED);
    snprintf(g, sizeof g,
             "{\"iss\":\"https://idp.example\",\"aud\":\"difyguard\",\"exp\":%lld,"
             "\"role\":[\"dify-api\",{}]}",
             NOW + 60);
    assert_int_equal(verify_hs1(g), JWT_R_MALFORMED);
    snprintf(g, sizeof g,
             "{\"iss\":\"https://idp.example\",\"aud\":\"difyguard\",\"exp\":%lld,"
             "\"role\":\"Dify-API\"}",
             NOW + 60); /* role names are exact */
    assert_int_equal(verify_hs1(g), JWT_R_NO_ROLE);
}

static void
test_custom_role_claim(void **state)
{
    char err[256], g[512];
    struct jwt_verifier *v = load(cfg_text("groups"), ST_OK, err, sizeof err);
    struct jwt_claims c;
    char *tok;

    (void)state;
    snprintf(g, sizeof g,
             "{\"iss\":\"https://idp.example\",\"aud\":\"difyguard\",\"exp\":%lld,"
             "\"groups\":[\"auditor\"],\"role\":\"dify-api\"}",
             NOW + 60);
    tok = mint_hs1(g);
    assert_int_equal(verify_v(v, tok, &c), JWT_R_OK);
    assert_int_equal(c.scopes, SCOPE_AUDIT_READ | SCOPE_CERTS_READ);
    free(tok);
    jwt_verifier_free(v);
}

static void
test_sub(void **state)
{
    char sub[400], extra[500];

    (void)state;
    memset(sub, 's', 256);
    sub[256] = '\0';
    snprintf(extra, sizeof extra,
             "{\"iss\":\"https://idp.example\",\"aud\":\"difyguard\","
             "\"exp\":%lld,\"role\":\"dify-api\",\"sub\":\"%s\"}",
             NOW + 60, sub);
    assert_int_equal(verify_hs1(extra), JWT_R_MALFORMED); /* 256 bytes + NUL does not fit */
    sub[255] = '\0';
    snprintf(extra, sizeof extra,
             "{\"iss\":\"https://idp.example\",\"aud\":\"difyguard\","
             "\"exp\":%lld,\"role\":\"dify-api\",\"sub\":\"%s\"}",
             NOW + 60, sub);
    assert_int_equal(verify_hs1(extra), JWT_R_OK);
    snprintf(extra, sizeof extra,
             "{\"iss\":\"https://idp.example\",\"aud\":\"difyguard\","
             "\"exp\":%lld,\"role\":\"dify-api\",\"sub\":42}",
             NOW + 60);
    assert_int_equal(verify_hs1(extra), JWT_R_MALFORMED);
}

static void
test_failure_counters(void **state)
{
    char err[256];
    struct jwt_verifier *v = load(cfg_text("role"), ST_OK, err, sizeof err);
    struct jwt_claims c;
    char *tok = mint_hs1(claims(""));

    (void)state;
    assert_int_equal(verify_v(v, "x.y", &c), JWT_R_MALFORMED);
    assert_int_equal(verify_v(v, "x.y", &c), JWT_R_MALFORMED);
    assert_int_equal(verify_v(v, tok, &c), JWT_R_OK);
    assert_int_equal(jwt_verifier_failures(v, JWT_R_MALFORMED), 2);
    assert_int_equal(jwt_verifier_failures(v, JWT_R_OK), 0);
    assert_int_equal(jwt_verifier_failures(v, JWT_R_EXPIRED), 0);
    assert_string_equal(jwt_reason_name(JWT_R_ALG_NONE), "alg_none");
    assert_string_equal(jwt_reason_name(JWT_R_NO_ROLE), "no_role");
    assert_string_equal(jwt_reason_name(JWT_R__COUNT), "unknown");
    free(tok);
    jwt_verifier_free(v);
}

/* ---- config loader ---- */

static void
expect_cfg_error(const char *text, enum status want, const char *needle)
{
    char err[256] = "";
    struct jwt_verifier *v = load(text, want, err, sizeof err);

    assert_null(v);
    if (strstr(err, needle) == NULL)
        fail_msg("error \"%s\" lacks \"%s\"", err, needle);
    assert_null(strstr(err, "hs1-0123")); /* never the secret */
    assert_null(strstr(err, "MII"));      /* never key bytes */
}

static void
test_config_errors(void **state)
{
    char t[2048];
    const char *head = "{\"issuer\":\"i\",\"audience\":\"a\",\"roles\":{\"r\":[\"encrypt\"]},";

    (void)state;
    expect_cfg_error("[]", ST_INVALID, "must be an object");
    expect_cfg_error("{\"issuer\":\"i\",\"audience\":\"a\",\"roles\":{\"r\":[\"encrypt\"]},"
                     "\"keys\":[],\"extra\":1}",
                     ST_INVALID, "unknown field \"extra\"");
    expect_cfg_error("{\"audience\":\"a\",\"roles\":{\"r\":[\"encrypt\"]},\"keys\":[]}", ST_INVALID,
                     "issuer");
    expect_cfg_error("{\"issuer\":\"i\",\"roles\":{\"r\":[\"encrypt\"]},\"keys\":[]}", ST_INVALID,
                     "audience");
    expect_cfg_error("{\"issuer\":\"i\",\"audience\":\"a\",\"leeway\":9999,"
                     "\"roles\":{\"r\":[\"encrypt\"]},\"keys\":[]}",
                     ST_INVALID, "leeway");
    expect_cfg_error("{\"issuer\":\"i\",\"audience\":\"a\",\"leeway\":\"30\","
                     "\"roles\":{\"r\":[\"encrypt\"]},\"keys\":[]}",
                     ST_INVALID, "leeway");
    expect_cfg_error("{\"issuer\":\"i\",\"audience\":\"a\",\"roles\":{},\"keys\":[]}", ST_INVALID,
                     "roles");
    expect_cfg_error("{\"issuer\":\"i\",\"audience\":\"a\",\"roles\":{\"r\":[\"nope\"]},"
                     "\"keys\":[]}",
                     ST_INVALID, "known scopes");
    expect_cfg_error("{\"issuer\":\"i\",\"audience\":\"a\",\"roles\":{\"r\":\"encrypt bogus\"},"
                     "\"keys\":[]}",
                     ST_INVALID, "known scopes");
    snprintf(t, sizeof t, "%s\"keys\":[]}", head);
    expect_cfg_error(t, ST_INVALID, "keys");
    snprintf(t, sizeof t, "%s\"keys\":[{\"kid\":\"k\",\"alg\":\"HS512\",\"secret_file\":\"%s\"}]}",
             head, path_in("hs1"));
    expect_cfg_error(t, ST_INVALID, "keys[0]");
    snprintf(t, sizeof t, "%s\"keys\":[{\"kid\":\"k\",\"alg\":\"none\",\"secret_file\":\"%s\"}]}",
             head, path_in("hs1"));
    expect_cfg_error(t, ST_INVALID, "keys[0]");
    snprintf(t, sizeof t,
             "%s\"keys\":[{\"kid\":\"k\",\"alg\":\"HS256\",\"public_key_file\":\"%s\"}"
             "]}",
             head, path_in("rs1.pem"));
    expect_cfg_error(t, ST_INVALID, "secret_file only");
    snprintf(t, sizeof t, "%s\"keys\":[{\"kid\":\"k\",\"alg\":\"RS256\",\"secret_file\":\"%s\"}]}",
             head, path_in("hs1"));
    expect_cfg_error(t, ST_INVALID, "public_key");
    snprintf(t, sizeof t,
             "%s\"keys\":[{\"kid\":\"k\",\"alg\":\"HS256\",\"secret_file\":\"%s\"},"
             "{\"kid\":\"k\",\"alg\":\"HS256\",\"secret_file\":\"%s\"}]}",
             head, path_in("hs1"), path_in("hs2"));
    expect_cfg_error(t, ST_INVALID, "keys[1]: duplicate kid");
    snprintf(t, sizeof t,
             "%s\"keys\":[{\"kid\":\"a b\",\"alg\":\"HS256\",\"secret_file\":\"%s\"}"
             "]}",
             head, path_in("hs1"));
    expect_cfg_error(t, ST_INVALID, "kid must be");
    snprintf(t, sizeof t, "%s\"keys\":[{\"kid\":\"k\",\"alg\":\"HS256\",\"secret_file\":\"%s\"}]}",
             head, path_in("missing"));
    expect_cfg_error(t, ST_IO, "keys[0].secret_file: cannot open");
    snprintf(t, sizeof t, "%s\"keys\":[{\"kid\":\"k\",\"alg\":\"HS256\",\"secret_file\":\"%s\"}]}",
             head, fx.dir);
    expect_cfg_error(t, ST_INVALID, "regular file");
    write_file(path_in("short"), "short-secret\n", 13);
    snprintf(t, sizeof t, "%s\"keys\":[{\"kid\":\"k\",\"alg\":\"HS256\",\"secret_file\":\"%s\"}]}",
             head, path_in("short"));
    expect_cfg_error(t, ST_INVALID, "at least 32 bytes");
    /* A public key pasted as an HMAC secret is exactly the confusion attack: refused. */
    write_file(path_in("pemsecret"), fx.rsa_pub, strlen(fx.rsa_pub));
    snprintf(t, sizeof t, "%s\"keys\":[{\"kid\":\"k\",\"alg\":\"HS256\",\"secret_file\":\"%s\"}]}",
             head, path_in("pemsecret"));
    expect_cfg_error(t, ST_INVALID, "looks like a PEM");
    snprintf(t, sizeof t,
             "%s\"keys\":[{\"kid\":\"k\",\"alg\":\"ES256\",\"public_key_file\":\"%s\"}"
             "]}",
             head, path_in("rs1.pem"));
    expect_cfg_error(t, ST_INVALID, "EC P-256");
    snprintf(t, sizeof t,
             "%s\"keys\":[{\"kid\":\"k\",\"alg\":\"RS256\",\"public_key_file\":\"%s\"}"
             "]}",
             head, path_in("es1.pem"));
    expect_cfg_error(t, ST_INVALID, "RSA");
    snprintf(t, sizeof t,
             "%s\"keys\":[{\"kid\":\"k\",\"alg\":\"RS256\",\"public_key_file\":\"%s\"}"
             "]}",
             head, path_in("small.pem"));
    expect_cfg_error(t, ST_INVALID, "2048");
    snprintf(t, sizeof t, "%s\"keys\":[{\"kid\":\"k\",\"alg\":\"RS256\",\"public_key\":\"junk\"}]}",
             head);
    expect_cfg_error(t, ST_INVALID, "not a PEM public key");
    snprintf(t, sizeof t,
             "%s\"keys\":[{\"kid\":\"k\",\"alg\":\"RS256\",\"public_key\":\"x\","
             "\"public_key_file\":\"%s\"}]}",
             head, path_in("rs1.pem"));
    expect_cfg_error(t, ST_INVALID, "one of");
    snprintf(t, sizeof t, "%s\"keys\":[{\"kid\":\"k\",\"alg\":\"RS256\",\"pubkey\":\"x\"}]}", head);
    expect_cfg_error(t, ST_INVALID, "unknown field \"pubkey\"");
    snprintf(t, sizeof t, "%s\"keys\":[\"k\"]}", head);
    expect_cfg_error(t, ST_INVALID, "keys[0]: must be an object");
}

static void
test_config_inline_public_key(void **state)
{
    json_t *cfg = json_pack("{s:s, s:s, s:{s:[s]}, s:[{s:s, s:s, s:s}]}", "issuer",
                            "https://idp.example", "audience", "difyguard", "roles", "r", "encrypt",
                            "keys", "kid", "rs1", "alg", "RS256", "public_key", fx.rsa_pub);
    struct jwt_verifier *v = NULL;
    char err[256], g[512];
    struct jwt_claims c;
    char *tok;

    (void)state;
    assert_int_equal(jwt_verifier_from_json(&v, err, sizeof err, cfg), ST_OK);
    snprintf(g, sizeof g,
             "{\"iss\":\"https://idp.example\",\"aud\":\"difyguard\",\"exp\":%lld,"
             "\"role\":\"r\"}",
             NOW + 60);
    tok = mint("RS256", fx.rsa_priv, strlen(fx.rsa_priv), "rs1", g);
    assert_int_equal(verify_v(v, tok, &c), JWT_R_OK);
    assert_int_equal(c.scopes, SCOPE_ENCRYPT);
    free(tok);
    jwt_verifier_free(v);
    json_decref(cfg);
}

/* A secret_file follows the root key's rule: not readable or writable by others, not writable
 * by its group; a symlink is followed to the file it names (issue 6, finding 5). */
static void
test_secret_file_mode(void **state)
{
    static const mode_t ok[] = {0600, 0400, 0640, 0440};
    static const mode_t bad[] = {0644, 0604, 0620, 0602, 0666, 0660};
    const char *head = "{\"issuer\":\"i\",\"audience\":\"a\",\"roles\":{\"r\":[\"encrypt\"]},";
    char t[2048], err[256], link[160], wanted[256];
    struct jwt_verifier *v;

    (void)state;
    write_file(path_in("modes"), hs1_secret, strlen(hs1_secret));
    snprintf(t, sizeof t, "%s\"keys\":[{\"kid\":\"k\",\"alg\":\"HS256\",\"secret_file\":\"%s\"}]}",
             head, path_in("modes"));
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        assert_int_equal(chmod(path_in("modes"), ok[i]), 0);
        v = load(t, ST_OK, err, sizeof err);
        jwt_verifier_free(v);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(chmod(path_in("modes"), bad[i]), 0);
        snprintf(wanted, sizeof wanted, "keys[0].secret_file %s: mode %04o is too open",
                 path_in("modes"), (unsigned)bad[i]);
        expect_cfg_error(t, ST_FORBIDDEN, wanted);
    }
    /* through a symlink (a Kubernetes secret mount): the target's mode counts */
    snprintf(link, sizeof link, "%s", path_in("modes-link"));
    assert_int_equal(symlink(path_in("modes"), link), 0);
    snprintf(t, sizeof t, "%s\"keys\":[{\"kid\":\"k\",\"alg\":\"HS256\",\"secret_file\":\"%s\"}]}",
             head, link);
    expect_cfg_error(t, ST_FORBIDDEN, "too open"); /* still 0660 */
    assert_int_equal(chmod(path_in("modes"), 0400), 0);
    v = load(t, ST_OK, err, sizeof err);
    jwt_verifier_free(v);
    /* public keys are public: their mode is not checked */
    assert_int_equal(chmod(path_in("rs1.pem"), 0644), 0);
    snprintf(t, sizeof t,
             "%s\"keys\":[{\"kid\":\"k\",\"alg\":\"RS256\","
             "\"public_key_file\":\"%s\"}]}",
             head, path_in("rs1.pem"));
    v = load(t, ST_OK, err, sizeof err);
    jwt_verifier_free(v);
    unlink(link);
    unlink(path_in("modes"));
}

/* rate and burst (issue 6, finding 4): optional, integers 0..1000000, 0 = unlimited. */
static void
test_config_rate(void **state)
{
    static const char *const bad[] = {"\"rate\":-1",    "\"rate\":1000001", "\"burst\":-5",
                                      "\"rate\":\"5\"", "\"rate\":1.5",     "\"burst\":null"};
    const char *head = "{\"issuer\":\"i\",\"audience\":\"a\",\"roles\":{\"r\":[\"encrypt\"]},";
    char t[2048], err[256];
    int64_t rate = -1, burst = -1;
    struct jwt_verifier *v;

    (void)state;
    jwt_verifier_rate(fx.v, &rate, &burst);
    assert_int_equal(rate, 0); /* absent: unlimited */
    assert_int_equal(burst, 0);
    snprintf(t, sizeof t,
             "%s\"rate\":5,\"burst\":10,\"keys\":[{\"kid\":\"k\",\"alg\":\"HS256\","
             "\"secret_file\":\"%s\"}]}",
             head, path_in("hs1"));
    v = load(t, ST_OK, err, sizeof err);
    jwt_verifier_rate(v, &rate, &burst);
    assert_int_equal(rate, 5);
    assert_int_equal(burst, 10);
    jwt_verifier_free(v);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(t, sizeof t,
                 "%s%s,\"keys\":[{\"kid\":\"k\",\"alg\":\"HS256\","
                 "\"secret_file\":\"%s\"}]}",
                 head, bad[i], path_in("hs1"));
        expect_cfg_error(t, ST_INVALID, "rate and burst must be integers");
    }
}

/* One bucket per (iss, sub), never an API key id, the subject not in clear. */
static void
test_bucket(void **state)
{
    struct jwt_claims a = {0}, b = {0};
    char ba[JWT_BUCKET_BYTES], bb[JWT_BUCKET_BYTES], again[JWT_BUCKET_BYTES];

    (void)state;
    snprintf(a.iss, sizeof a.iss, "https://idp.example");
    snprintf(a.sub, sizeof a.sub, "user-1");
    b = a;
    snprintf(b.sub, sizeof b.sub, "user-2");
    jwt_bucket(ba, &a);
    jwt_bucket(bb, &b);
    jwt_bucket(again, &a);
    assert_string_equal(ba, again);
    assert_string_not_equal(ba, bb);
    assert_int_equal(strlen(ba), JWT_BUCKET_BYTES - 1);
    assert_int_equal(ba[0], '\002');
    assert_null(strstr(ba, "user-1"));
    /* (iss "ab", sub "c") and (iss "a", sub "bc") are different principals */
    snprintf(a.iss, sizeof a.iss, "ab");
    snprintf(a.sub, sizeof a.sub, "c");
    snprintf(b.iss, sizeof b.iss, "a");
    snprintf(b.sub, sizeof b.sub, "bc");
    jwt_bucket(ba, &a);
    jwt_bucket(bb, &b);
    assert_string_not_equal(ba, bb);
}

static void
test_api_contract(void **state)
{
    struct jwt_verifier *v = NULL;
    const char *err = NULL;
    uint8_t key[32] = {0};

    (void)state;
    assert_int_equal(jwt_verifier_new(&v, &err, "", "a", 30, "role"), ST_INVALID);
    assert_null(v);
    assert_non_null(err);
    assert_int_equal(jwt_verifier_new(&v, &err, "i", "a\n", 30, "role"), ST_INVALID);
    assert_int_equal(jwt_verifier_new(&v, &err, "i", "a", -1, "role"), ST_INVALID);
    assert_int_equal(jwt_verifier_new(&v, &err, "i", "a", 30, ""), ST_INVALID);
    assert_int_equal(jwt_verifier_new(&v, &err, "i", "a", 0, "role"), ST_OK);
    assert_int_equal(jwt_verifier_add_key(v, &err, "k", JWT_HS256, key, 31), ST_INVALID);
    assert_int_equal(jwt_verifier_add_key(v, &err, "k", (enum jwt_key_alg)99, key, 32), ST_INVALID);
    assert_int_equal(jwt_verifier_add_key(v, &err, "", JWT_HS256, key, 32), ST_INVALID);
    assert_int_equal(jwt_verifier_add_key(v, &err, "k", JWT_HS256, key, 32), ST_OK);
    assert_int_equal(jwt_verifier_add_role(v, &err, "r", SCOPE_ENCRYPT), ST_OK);
    assert_int_equal(jwt_verifier_add_role(v, &err, "r", SCOPE_DECRYPT), ST_OK);
    assert_int_equal(jwt_verifier_add_role(v, &err, "", SCOPE_DECRYPT), ST_INVALID);
    for (int i = 0; i < JWT_MAX_KEYS - 1; i++) {
        char kid[16];
        snprintf(kid, sizeof kid, "k%d", i);
        assert_int_equal(jwt_verifier_add_key(v, &err, kid, JWT_HS256, key, 32), ST_OK);
    }
    assert_int_equal(jwt_verifier_add_key(v, &err, "one-more", JWT_HS256, key, 32), ST_INVALID);
    jwt_verifier_free(v);
    jwt_verifier_free(NULL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_hs256),
        cmocka_unit_test(test_valid_rs256_es256),
        cmocka_unit_test(test_hand_built_hs256_without_typ),
        cmocka_unit_test(test_alg_none),
        cmocka_unit_test(test_algorithm_confusion),
        cmocka_unit_test(test_kid),
        cmocka_unit_test(test_forbidden_headers),
        cmocka_unit_test(test_issuer_audience),
        cmocka_unit_test(test_times),
        cmocka_unit_test(test_bad_signature),
        cmocka_unit_test(test_payload_swap),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_big_but_allowed),
        cmocka_unit_test(test_roles),
        cmocka_unit_test(test_custom_role_claim),
        cmocka_unit_test(test_sub),
        cmocka_unit_test(test_failure_counters),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_config_inline_public_key),
        cmocka_unit_test(test_secret_file_mode),
        cmocka_unit_test(test_config_rate),
        cmocka_unit_test(test_bucket),
        cmocka_unit_test(test_api_contract),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
