/* SPDX-License-Identifier: Apache-2.0 */
/* crypto/rowmac.c -- HMAC-SHA256 over length-prefixed row fields, so no two rows (or tables)
 * serialise alike. The state is key-derived: _final and _check always wipe it. */
#include "crypto/rowmac.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/bytes.h"

#define NULL_MARK UINT32_MAX /* length prefix of a NULL field */

static void
put_len(struct rowmac *m, size_t n)
{
    uint8_t b[4];

    if (n >= NULL_MARK) {
        fprintf(stderr, "difyguard: rowmac: field too long\n");
        abort();
    }
    put_u32be(b, (uint32_t)n);
    crypto_auth_hmacsha256_update(&m->st, b, sizeof b);
}

void
rowmac_init(struct rowmac *m, const struct secret *key, const char *table)
{
    if (secret_len(key) != 32) {
        fprintf(stderr, "difyguard: rowmac: the key must be 32 bytes\n");
        abort();
    }
    crypto_auth_hmacsha256_init(&m->st, secret_ro(key), secret_len(key));
    rowmac_str(m, table);
}

void
rowmac_bytes(struct rowmac *m, const uint8_t *p, size_t n)
{
    static const uint8_t null_mark[4] = {0xFF, 0xFF, 0xFF, 0xFF};

    if (p == NULL) {
        crypto_auth_hmacsha256_update(&m->st, null_mark, sizeof null_mark);
        return;
    }
    put_len(m, n);
    crypto_auth_hmacsha256_update(&m->st, p, n);
}

void
rowmac_str(struct rowmac *m, const char *s)
{
    rowmac_bytes(m, (const uint8_t *)s, s != NULL ? strlen(s) : 0);
}

void
rowmac_i64(struct rowmac *m, int64_t v)
{
    uint64_t u = (uint64_t)v;
    uint8_t b[8];

    for (int i = 7; i >= 0; i--, u >>= 8)
        b[i] = (uint8_t)u;
    crypto_auth_hmacsha256_update(&m->st, b, sizeof b);
}

void
rowmac_final(struct rowmac *m, uint8_t out[static ROWMAC_BYTES])
{
    crypto_auth_hmacsha256_final(&m->st, out);
    sodium_memzero(m, sizeof *m);
}

bool
rowmac_check(struct rowmac *m, const uint8_t *stored, size_t stored_len)
{
    uint8_t mac[ROWMAC_BYTES];

    rowmac_final(m, mac);
    bool ok = stored_len == ROWMAC_BYTES && sodium_memcmp(mac, stored, ROWMAC_BYTES) == 0;
    sodium_memzero(mac, sizeof mac);
    return ok;
}
