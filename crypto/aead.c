/* SPDX-License-Identifier: Apache-2.0 */
/* crypto/aead.c -- AES-256-GCM and AES-256-SIV through OpenSSL EVP (ciphers fetched once, one
 * cached context per thread and cipher), XChaCha20-Poly1305 through libsodium. Holds no keys. */
#include "crypto/aead.h"

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <sodium.h>

#include "common/xmem.h"

static EVP_CIPHER *cipher_gcm;
static EVP_CIPHER *cipher_siv;
static EVP_MAC *mac_cmac; /* only for SIV over an empty plaintext, see below */
static pthread_once_t fetch_once = PTHREAD_ONCE_INIT;

/* Per-thread contexts: reinitialising a context that already has its cipher only resets the
 * key and IV, which is much cheaper than a fresh EVP_CIPHER_CTX per call. */
struct aead_tls {
    EVP_CIPHER_CTX *gcm;
    EVP_CIPHER_CTX *siv;
};
static pthread_key_t tls_key;
static _Thread_local struct aead_tls *tls;

static void
tls_destroy(void *p)
{
    struct aead_tls *t = p;

    EVP_CIPHER_CTX_free(t->gcm); /* EVP_CIPHER_CTX_free cleanses the key schedule */
    EVP_CIPHER_CTX_free(t->siv);
    free(t);
}

static void
fetch_ciphers(void)
{
    cipher_gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
    cipher_siv = EVP_CIPHER_fetch(NULL, "AES-256-SIV", NULL);
    mac_cmac = EVP_MAC_fetch(NULL, "CMAC", NULL);
    if (pthread_key_create(&tls_key, tls_destroy) != 0) {
        fprintf(stderr, "difyguard: pthread_key_create failed\n");
        abort();
    }
}

enum status
aead_init(void)
{
    if (pthread_once(&fetch_once, fetch_ciphers) != 0 || cipher_gcm == NULL || cipher_siv == NULL ||
        mac_cmac == NULL) {
        fprintf(stderr, "difyguard: OpenSSL lacks AES-256-GCM, AES-256-SIV or CMAC\n");
        return ST_INTERNAL;
    }
    return ST_OK;
}

/* This thread's context for alg, initialised with its cipher on first use; NULL on failure. */
static EVP_CIPHER_CTX *
thread_ctx(enum aead_alg alg)
{
    if (aead_init() != ST_OK)
        return NULL;
    if (tls == NULL) {
        struct aead_tls *t = xcalloc(1, sizeof *t);
        t->gcm = EVP_CIPHER_CTX_new();
        t->siv = EVP_CIPHER_CTX_new();
        if (t->gcm == NULL || t->siv == NULL ||
            EVP_CipherInit_ex2(t->gcm, cipher_gcm, NULL, NULL, 1, NULL) != 1 ||
            EVP_CipherInit_ex2(t->siv, cipher_siv, NULL, NULL, 1, NULL) != 1 ||
            pthread_setspecific(tls_key, t) != 0) {
            tls_destroy(t);
            return NULL;
        }
        tls = t;
    }
    return alg == AEAD_AES256GCM ? tls->gcm : tls->siv;
}

size_t
aead_key_bytes(enum aead_alg alg)
{
    switch (alg) {
    case AEAD_AES256GCM:
        return 32;
    case AEAD_XCHACHA20POLY1305:
        return crypto_aead_xchacha20poly1305_ietf_KEYBYTES;
    case AEAD_AES256SIV:
        return 64;
    }
    return 0;
}

size_t
aead_nonce_bytes(enum aead_alg alg)
{
    switch (alg) {
    case AEAD_AES256GCM:
        return 12;
    case AEAD_XCHACHA20POLY1305:
        return crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
    case AEAD_AES256SIV:
        return 0;
    }
    return 0;
}

static bool
sizes_ok(enum aead_alg alg, size_t key_len, size_t nonce_len, size_t aad_len, size_t len)
{
    return aead_key_bytes(alg) != 0 && key_len == aead_key_bytes(alg) &&
           nonce_len == aead_nonce_bytes(alg) && aad_len <= INT_MAX && len <= INT_MAX;
}

/* OpenSSL's AES-SIV cannot take an empty plaintext (openssl/openssl#17268: zero-length updates
 * are ignored, so Final finds no result). For that one case the SIV is computed as RFC 5297
 * section 2.4 defines S2V for one AAD component and an empty final string, from OpenSSL's CMAC
 * under K1 (the first half of the key; the CTR key K2 has nothing to encrypt):
 *   D = dbl(CMAC(K1, 0^128)) xor CMAC(K1, aad);  V = CMAC(K1, dbl(D) xor 10^127)
 * The Wycheproof empty-message vectors check it (aead_test.c). */
static void
dbl(uint8_t b[static 16])
{
    uint8_t carry = (uint8_t)(b[0] >> 7);

    for (int i = 0; i < 15; i++)
        b[i] = (uint8_t)(b[i] << 1 | b[i + 1] >> 7);
    b[15] = (uint8_t)(((unsigned)b[15] << 1) ^ (0x87u & (0u - carry)));
}

static int
cmac(EVP_MAC_CTX *m, uint8_t out[static 16], const uint8_t k1[static 32], const uint8_t *in,
     size_t len)
{
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_CIPHER, (char *)"AES-256-CBC", 0),
        OSSL_PARAM_construct_end(),
    };
    size_t n = 0;

    return EVP_MAC_init(m, k1, 32, params) == 1 && EVP_MAC_update(m, in, len) == 1 &&
           EVP_MAC_final(m, out, &n, 16) == 1 && n == 16;
}

static int
siv_empty(uint8_t v[static 16], const uint8_t k1[static 32], const uint8_t *aad, size_t aad_len)
{
    static const uint8_t zero[16];
    EVP_MAC_CTX *m = EVP_MAC_CTX_new(mac_cmac);
    uint8_t d[16], t[16];
    int ok = m != NULL && cmac(m, d, k1, zero, sizeof zero) && cmac(m, t, k1, aad, aad_len);

    if (ok) {
        dbl(d);
        for (int i = 0; i < 16; i++)
            d[i] ^= t[i];
        dbl(d);
        d[0] ^= 0x80;
        ok = cmac(m, v, k1, d, sizeof d);
    }
    EVP_MAC_CTX_free(m);
    sodium_memzero(d, sizeof d);
    sodium_memzero(t, sizeof t);
    return ok;
}

/* One EVP pass (GCM or SIV). For SIV the tag must be set before the data (it is the IV);
 * for GCM before Final. Returns 1 on success, 0 on any failure including a tag mismatch. */
static int
evp_run(EVP_CIPHER_CTX *c, int enc, enum aead_alg alg, uint8_t *out, uint8_t tag[static 16],
        const uint8_t *key, const uint8_t *nonce, const uint8_t *aad, size_t aad_len,
        const uint8_t *in, size_t len)
{
    uint8_t fin[32]; /* GCM and SIV emit nothing at Final */
    int n = 0;
    int ok = EVP_CipherInit_ex2(c, NULL, key, nonce, enc, NULL) == 1;

    if (ok && !enc)
        ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, AEAD_TAG_BYTES, tag) == 1;
    /* A zero-length AAD update still counts as one (empty) S2V component for SIV. */
    if (ok && (aad_len > 0 || alg == AEAD_AES256SIV))
        ok = EVP_CipherUpdate(c, NULL, &n, aad_len > 0 ? aad : (const uint8_t *)"", (int)aad_len) ==
             1;
    if (ok && len > 0)
        ok = EVP_CipherUpdate(c, out, &n, in, (int)len) == 1 && (size_t)n == len;
    if (ok)
        ok = EVP_CipherFinal_ex(c, fin, &n) == 1 && n == 0;
    if (ok && enc)
        ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, AEAD_TAG_BYTES, tag) == 1;
    return ok;
}

enum status
aead_seal(enum aead_alg alg, uint8_t *ct, uint8_t tag[static AEAD_TAG_BYTES], const uint8_t *key,
          size_t key_len, const uint8_t *nonce, size_t nonce_len, const uint8_t *aad,
          size_t aad_len, const uint8_t *pt, size_t pt_len)
{
    enum status st = ST_INVALID;
    EVP_CIPHER_CTX *c;

    if (!sizes_ok(alg, key_len, nonce_len, aad_len, pt_len))
        goto out;
    st = ST_INTERNAL;
    if (alg == AEAD_XCHACHA20POLY1305) {
        if (crypto_aead_xchacha20poly1305_ietf_encrypt_detached(ct, tag, NULL, pt, pt_len, aad,
                                                                aad_len, NULL, nonce, key) == 0)
            st = ST_OK;
        goto out;
    }
    if (alg == AEAD_AES256SIV && pt_len == 0) {
        if (aead_init() == ST_OK && siv_empty(tag, key, aad, aad_len))
            st = ST_OK;
        goto out;
    }
    if ((c = thread_ctx(alg)) != NULL &&
        evp_run(c, 1, alg, ct, tag, key, nonce, aad, aad_len, pt, pt_len))
        st = ST_OK;
out:
    if (st != ST_OK) {
        if (ct != NULL)
            sodium_memzero(ct, pt_len);
        sodium_memzero(tag, AEAD_TAG_BYTES);
    }
    return st;
}

enum status
aead_open(enum aead_alg alg, uint8_t *pt, const uint8_t *key, size_t key_len, const uint8_t *nonce,
          size_t nonce_len, const uint8_t *aad, size_t aad_len, const uint8_t *ct, size_t ct_len,
          const uint8_t tag[static AEAD_TAG_BYTES])
{
    uint8_t t[AEAD_TAG_BYTES];
    enum status st = ST_INVALID;
    EVP_CIPHER_CTX *c;

    memcpy(t, tag, sizeof t); /* OpenSSL's ctrl takes a non-const pointer */
    if (!sizes_ok(alg, key_len, nonce_len, aad_len, ct_len))
        goto out;
    st = ST_AUTH;
    if (alg == AEAD_XCHACHA20POLY1305) {
        if (crypto_aead_xchacha20poly1305_ietf_decrypt_detached(pt, NULL, ct, ct_len, t, aad,
                                                                aad_len, nonce, key) == 0)
            st = ST_OK;
        goto out;
    }
    if (alg == AEAD_AES256SIV && ct_len == 0) {
        uint8_t v[AEAD_TAG_BYTES];
        if (aead_init() != ST_OK || !siv_empty(v, key, aad, aad_len))
            st = ST_INTERNAL;
        else if (sodium_memcmp(v, t, sizeof v) == 0)
            st = ST_OK;
        goto out;
    }
    if ((c = thread_ctx(alg)) == NULL)
        st = ST_INTERNAL;
    else if (evp_run(c, 0, alg, pt, t, key, nonce, aad, aad_len, ct, ct_len))
        st = ST_OK;
out:
    if (st != ST_OK && pt != NULL)
        sodium_memzero(pt, ct_len);
    return st;
}
