/* SPDX-License-Identifier: Apache-2.0 */
/* crypto/mac.c -- keyed digests as text (see mac.h). Intermediate states are wiped. */
#include "crypto/mac.h"

#include <assert.h>
#include <string.h>

#include <sodium.h>

void
mac_hex(char out[static MAC_HEX_CHARS + 1], const struct secret *key, const void *value, size_t len)
{
    uint8_t mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;

    assert(secret_len(key) == 32);
    crypto_auth_hmacsha256_init(&st, secret_ro(key), secret_len(key));
    crypto_auth_hmacsha256_update(&st, value, len);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_memzero(&st, sizeof st);
    sodium_bin2hex(out, MAC_HEX_CHARS + 1, mac, sizeof mac);
}

void
mac_key_id(char out[static MAC_ID_CHARS + 1], const struct secret *key, const char *label)
{
    uint8_t digest[32];

    crypto_generichash(digest, sizeof digest, (const uint8_t *)label, strlen(label), secret_ro(key),
                       secret_len(key));
    sodium_bin2hex(out, MAC_ID_CHARS + 1, digest, MAC_ID_CHARS / 2);
}
