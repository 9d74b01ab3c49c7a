/* SPDX-License-Identifier: Apache-2.0 */
/* crypto/apikey.c -- API key text: generation, offline shape/checksum check, keyed hash.
 * The key text is a secret: it is only ever hashed, never stored or logged. */
#include "crypto/apikey.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#define PREFIX_LEN (sizeof APIKEY_PREFIX - 1)
#define BODY_LEN (PREFIX_LEN + APIKEY_ID_CHARS + APIKEY_SECRET_CHARS) /* what the CRC covers */

static const char alphabet[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

_Static_assert(sizeof alphabet - 1 == 62, "base62");
_Static_assert(BODY_LEN + APIKEY_CRC_CHARS == APIKEY_TEXT_CHARS, "layout");

/* The digit value of c, or -1 outside the alphabet. */
static int
b62_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'Z')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 36;
    return -1;
}

/* Bitwise CRC-32 (reflected, polynomial 0xEDB88320): a checksum for scanners, not crypto. */
uint32_t
apikey_crc32(const uint8_t *p, size_t n)
{
    uint32_t crc = 0xFFFFFFFFu;

    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

static void
crc_encode(char out[static APIKEY_CRC_CHARS], uint32_t crc)
{
    for (int i = APIKEY_CRC_CHARS - 1; i >= 0; i--, crc /= 62)
        out[i] = alphabet[crc % 62];
}

void
apikey_generate(char text[static APIKEY_TEXT_CHARS + 1], char id[static APIKEY_ID_CHARS + 1])
{
    memcpy(text, APIKEY_PREFIX, PREFIX_LEN);
    /* randombytes_uniform rejects biased draws, so every character is uniform. */
    for (size_t i = PREFIX_LEN; i < BODY_LEN; i++)
        text[i] = alphabet[randombytes_uniform(62)];
    crc_encode(text + BODY_LEN, apikey_crc32((const uint8_t *)text, BODY_LEN));
    text[APIKEY_TEXT_CHARS] = '\0';
    memcpy(id, text + PREFIX_LEN, APIKEY_ID_CHARS);
    id[APIKEY_ID_CHARS] = '\0';
}

enum status
apikey_parse(char id[static APIKEY_ID_CHARS + 1], const char *text, size_t len)
{
    uint64_t crc = 0;
    enum status st = ST_UNAUTHENTICATED;

    id[0] = '\0';
    /* The prefix and the checksum are public; plain comparisons leak nothing secret. */
    /* the prefix is public: a plain memcmp is fine */
    if (len != APIKEY_TEXT_CHARS || memcmp(text, APIKEY_PREFIX, PREFIX_LEN) != 0)
        goto out;
    for (size_t i = PREFIX_LEN; i < APIKEY_TEXT_CHARS; i++)
        if (b62_value(text[i]) < 0)
            goto out;
    for (size_t i = BODY_LEN; i < APIKEY_TEXT_CHARS; i++)
        crc = crc * 62 + (uint64_t)b62_value(text[i]);
    if (crc != apikey_crc32((const uint8_t *)text, BODY_LEN))
        goto out;
    memcpy(id, text + PREFIX_LEN, APIKEY_ID_CHARS);
    id[APIKEY_ID_CHARS] = '\0';
    st = ST_OK;
out:
    return st;
}

void
apikey_hash(uint8_t out[static APIKEY_HASH_BYTES], const struct secret *hash_key, const char *text,
            size_t len)
{
    if (secret_len(hash_key) != APIKEY_HASH_KEY_BYTES) {
        fprintf(stderr, "difyguard: apikey_hash: the key must be %d bytes\n",
                APIKEY_HASH_KEY_BYTES);
        abort();
    }
    crypto_generichash(out, APIKEY_HASH_BYTES, (const uint8_t *)text, len, secret_ro(hash_key),
                       APIKEY_HASH_KEY_BYTES);
}

bool
apikey_hash_equal(const uint8_t a[static APIKEY_HASH_BYTES],
                  const uint8_t b[static APIKEY_HASH_BYTES])
{
    return sodium_memcmp(a, b, APIKEY_HASH_BYTES) == 0;
}
