/* SPDX-License-Identifier: Apache-2.0 */
/* crypto/sign.c -- Ed25519 (libsodium) behind verbs: the secret key never leaves guarded
 * memory; no stack copy of it is made. */
#include "crypto/sign.h"

#include <assert.h>

#include <sodium.h>

_Static_assert(SIGN_PK_BYTES == crypto_sign_ed25519_PUBLICKEYBYTES, "pk size");
_Static_assert(SIGN_SK_BYTES == crypto_sign_ed25519_SECRETKEYBYTES, "sk size");
_Static_assert(SIGN_SIG_BYTES == crypto_sign_ed25519_BYTES, "sig size");

void
sign_keypair(struct secret **sk, uint8_t pk[static SIGN_PK_BYTES])
{
    *sk = secret_new(SIGN_SK_BYTES);
    crypto_sign_ed25519_keypair(pk, secret_rw(*sk));
}

void
sign_public_key(uint8_t pk[static SIGN_PK_BYTES], const struct secret *sk)
{
    assert(secret_len(sk) == SIGN_SK_BYTES);
    crypto_sign_ed25519_sk_to_pk(pk, secret_ro(sk));
}

void
sign_detached(uint8_t sig[static SIGN_SIG_BYTES], const struct secret *sk, const uint8_t *msg,
              size_t len)
{
    assert(secret_len(sk) == SIGN_SK_BYTES);
    crypto_sign_ed25519_detached(sig, NULL, msg, len, secret_ro(sk));
}

enum status
sign_verify(const uint8_t sig[static SIGN_SIG_BYTES], const uint8_t *msg, size_t len,
            const uint8_t pk[static SIGN_PK_BYTES])
{
    return crypto_sign_ed25519_verify_detached(sig, msg, len, pk) == 0 ? ST_OK : ST_AUTH;
}

void
sign_key_id(char out[static SIGN_KEY_ID_CHARS + 1], const uint8_t pk[static SIGN_PK_BYTES])
{
    uint8_t h[crypto_hash_sha256_BYTES];

    crypto_hash_sha256(h, pk, SIGN_PK_BYTES);
    sodium_bin2hex(out, SIGN_KEY_ID_CHARS + 1, h, SIGN_KEY_ID_CHARS / 2);
}
