/* SPDX-License-Identifier: Apache-2.0 */
/* crypto/kek.c -- the only holder of KEK bytes. A KEK lives here only as an HMAC-SHA256 state
 * keyed with it (in guarded memory), which is all kek_derive needs; it never leaves this file. */
#include "crypto/kek.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/bytes.h"
#include "common/xmem.h"
#include "crypto/hkdf.h"

#define KEK_AAD_LABEL "difyguard/v1/kek"

struct kek {
    uint32_t version;
    struct secret *hmac; /* crypto_auth_hmacsha256_state keyed with the KEK */
};

static const crypto_auth_hmacsha256_state *
kek_state(const struct kek *k)
{
    return (const crypto_auth_hmacsha256_state *)(const void *)secret_ro(k->hmac);
}

/* A struct kek for these 32 bytes (the caller wipes its copy). */
static struct kek *
kek_make(const uint8_t key[static KEK_BYTES], uint32_t version)
{
    struct kek *k = xcalloc(1, sizeof *k);

    k->version = version;
    k->hmac = secret_new(sizeof(crypto_auth_hmacsha256_state));
    crypto_auth_hmacsha256_init((crypto_auth_hmacsha256_state *)(void *)secret_rw(k->hmac), key,
                                KEK_BYTES);
    return k;
}

void
kek_free(struct kek *k)
{
    if (k == NULL)
        return;
    secret_free(k->hmac);
    free(k);
}

uint32_t
kek_version(const struct kek *k)
{
    return k->version;
}

/* AAD = "difyguard/v1/kek" || u32be(len) keyring || u32be(version) || root key id. xmalloc'd. */
static uint8_t *
wrap_aad(size_t *len, const struct rootkey *rk, const char *keyring, uint32_t version)
{
    size_t label = strlen(KEK_AAD_LABEL), name = strlen(keyring);
    uint8_t *aad, *p;

    if (name > UINT32_MAX) {
        fprintf(stderr, "difyguard: kek: keyring name too long\n");
        abort();
    }
    *len = label + 4 + name + 4 + ROOTKEY_ID_CHARS;
    p = aad = xmalloc(*len);
    memcpy(p, KEK_AAD_LABEL, label);
    p = put_u32be(p + label, (uint32_t)name);
    memcpy(p, keyring, name);
    p = put_u32be(p + name, version);
    memcpy(p, rootkey_id(rk), ROOTKEY_ID_CHARS);
    return aad;
}

/* Unwrap into a new 32-byte secret: ST_INVALID for a wrong length, ST_AUTH for any mismatch. */
static enum status
unwrap_bytes(struct secret **out, const struct rootkey *rk, const char *keyring, uint32_t version,
             const uint8_t *wrapped, size_t wrapped_len)
{
    uint8_t *aad = NULL;
    size_t aad_len = 0;
    enum status st = ST_INVALID;

    *out = NULL;
    if (wrapped_len != KEK_WRAPPED_BYTES)
        goto out;
    aad = wrap_aad(&aad_len, rk, keyring, version);
    st = rootkey_unwrap(rk, out, wrapped, wrapped_len, aad, aad_len);
out:
    free(aad);
    return st;
}

enum status
kek_generate(struct kek **out, uint8_t wrapped[static KEK_WRAPPED_BYTES], const struct rootkey *rk,
             const char *keyring, uint32_t version)
{
    struct secret *key = secret_new(KEK_BYTES);
    uint8_t *aad = NULL;
    size_t aad_len = 0, wrapped_len = 0;
    enum status st = ST_INVALID;

    *out = NULL;
    sodium_memzero(wrapped, KEK_WRAPPED_BYTES);
    if (version == 0)
        goto out;
    randombytes_buf(secret_rw(key), KEK_BYTES);
    aad = wrap_aad(&aad_len, rk, keyring, version);
    st = rootkey_wrap(rk, wrapped, KEK_WRAPPED_BYTES, &wrapped_len, secret_ro(key), KEK_BYTES, aad,
                      aad_len);
    if (st != ST_OK)
        goto out;
    *out = kek_make(secret_ro(key), version);
out:
    free(aad);
    secret_free(key);
    return st;
}

enum status
kek_unwrap(struct kek **out, const struct rootkey *rk, const char *keyring, uint32_t version,
           const uint8_t *wrapped, size_t wrapped_len)
{
    struct secret *key = NULL;
    enum status st;

    *out = NULL;
    if ((st = unwrap_bytes(&key, rk, keyring, version, wrapped, wrapped_len)) != ST_OK)
        goto out;
    *out = kek_make(secret_ro(key), version);
out:
    secret_free(key);
    return st;
}

enum status
kek_rewrap(uint8_t out[static KEK_WRAPPED_BYTES], const struct rootkey *from,
           const struct rootkey *to, const char *keyring, uint32_t version, const uint8_t *wrapped,
           size_t wrapped_len)
{
    struct secret *key = NULL;
    uint8_t *aad = NULL;
    size_t aad_len = 0, out_len = 0;
    enum status st;

    sodium_memzero(out, KEK_WRAPPED_BYTES);
    if ((st = unwrap_bytes(&key, from, keyring, version, wrapped, wrapped_len)) != ST_OK)
        goto out;
    aad = wrap_aad(&aad_len, to, keyring, version);
    st =
        rootkey_wrap(to, out, KEK_WRAPPED_BYTES, &out_len, secret_ro(key), KEK_BYTES, aad, aad_len);
out:
    free(aad);
    secret_free(key);
    return st;
}

void
kek_derive(const struct kek *k, uint8_t *out, size_t out_len, const uint8_t *info, size_t info_len)
{
    hkdf_sha256_expand_state(out, out_len, kek_state(k), info, info_len);
}
