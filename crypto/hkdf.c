/* SPDX-License-Identifier: Apache-2.0 */
/* crypto/hkdf.c -- HKDF-SHA256 (RFC 5869) from libsodium's HMAC-SHA256. Every intermediate
 * (HMAC state, T(i)) is wiped before returning. */
#include "crypto/hkdf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
hkdf_sha256_extract(uint8_t prk[static HKDF_SHA256_PRK_BYTES], const uint8_t *salt, size_t salt_len,
                    const uint8_t *ikm, size_t ikm_len)
{
    crypto_auth_hmacsha256_state st;

    /* An empty salt is HMAC's all-zero key, as RFC 5869 asks. */
    crypto_auth_hmacsha256_init(&st, salt_len > 0 ? salt : (const uint8_t *)"", salt_len);
    crypto_auth_hmacsha256_update(&st, ikm, ikm_len);
    crypto_auth_hmacsha256_final(&st, prk);
    sodium_memzero(&st, sizeof st);
}

void
hkdf_sha256_expand_state(uint8_t *out, size_t out_len, const crypto_auth_hmacsha256_state *keyed,
                         const uint8_t *info, size_t info_len)
{
    crypto_auth_hmacsha256_state st;
    uint8_t t[crypto_auth_hmacsha256_BYTES];
    size_t done = 0;

    if (out_len > HKDF_SHA256_MAX_OUT) {
        fprintf(stderr, "difyguard: hkdf: output longer than 255 blocks\n");
        abort();
    }
    /* T(i) = HMAC(PRK, T(i-1) || info || i), T(0) empty. */
    for (unsigned i = 1; done < out_len; i++) {
        const uint8_t ctr = (uint8_t)i;
        size_t n = out_len - done < sizeof t ? out_len - done : sizeof t;

        st = *keyed;
        if (i > 1)
            crypto_auth_hmacsha256_update(&st, t, sizeof t);
        crypto_auth_hmacsha256_update(&st, info, info_len);
        crypto_auth_hmacsha256_update(&st, &ctr, 1);
        crypto_auth_hmacsha256_final(&st, t);
        memcpy(out + done, t, n);
        done += n;
    }
    sodium_memzero(&st, sizeof st);
    sodium_memzero(t, sizeof t);
}

enum status
hkdf_sha256_expand(uint8_t *out, size_t out_len, const uint8_t *prk, size_t prk_len,
                   const uint8_t *info, size_t info_len)
{
    crypto_auth_hmacsha256_state keyed;
    enum status st = ST_INVALID;

    if (out_len > HKDF_SHA256_MAX_OUT) {
        if (out != NULL)
            sodium_memzero(out, out_len);
        goto out;
    }
    crypto_auth_hmacsha256_init(&keyed, prk, prk_len);
    hkdf_sha256_expand_state(out, out_len, &keyed, info, info_len);
    sodium_memzero(&keyed, sizeof keyed);
    st = ST_OK;
out:
    return st;
}
