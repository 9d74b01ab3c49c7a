/* SPDX-License-Identifier: Apache-2.0 */
/* server/sealed.c -- sealed settings rows (see sealed.h). Never logs values. */
#include "server/sealed.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/xmem.h"
#include "crypto/rowmac.h"

#define SEAL_PREFIX "v1:"
#define SEAL_HEX (2 * ROWMAC_BYTES)

static void
seal_mac(uint8_t out[static ROWMAC_BYTES], const struct secret *mac_key, const char *key,
         const char *value)
{
    struct rowmac m;
    rowmac_init(&m, mac_key, "meta");
    rowmac_str(&m, key);
    rowmac_str(&m, value);
    rowmac_final(&m, out);
}

void
sealed_text(char *out, size_t cap, const struct secret *mac_key, const char *key, const char *value)
{
    uint8_t mac[ROWMAC_BYTES];
    char hex[SEAL_HEX + 1];

    seal_mac(mac, mac_key, key, value);
    sodium_bin2hex(hex, sizeof hex, mac, sizeof mac);
    int n = snprintf(out, cap, SEAL_PREFIX "%s:%s", hex, value);
    assert(n > 0 && (size_t)n < cap);
    (void)n;
}

enum status
sealed_put(struct store *st, const struct secret *mac_key, const char *key, const char *value)
{
    size_t cap = strlen(value) + SEALED_OVERHEAD + 1;
    char *text = xmalloc(cap);

    sealed_text(text, cap, mac_key, key, value);
    enum status s = store_meta_set(st, key, text);
    free(text);
    return s;
}

enum status
sealed_get(struct store *st, const struct secret *mac_key, const char *key, char *val, size_t cap)
{
    size_t raw_cap = cap + SEALED_OVERHEAD;
    char *raw = xmalloc(raw_cap);
    uint8_t want[ROWMAC_BYTES], got[ROWMAC_BYTES];
    size_t n = 0;
    enum status s;

    val[0] = '\0';
    if ((s = store_meta_get(st, key, raw, raw_cap)) != ST_OK)
        goto out;
    if (strncmp(raw, SEAL_PREFIX, 3) != 0 || strlen(raw) < SEALED_OVERHEAD ||
        raw[SEALED_OVERHEAD - 1] != ':') {
        snprintf(val, cap, "%s", raw); /* from before seals existed */
        s = strlen(raw) < cap ? ST_INVALID : ST_INTEGRITY;
        goto out;
    }
    const char *value = raw + SEALED_OVERHEAD;
    seal_mac(want, mac_key, key, value);
    if (strlen(value) >= cap ||
        sodium_hex2bin(got, sizeof got, raw + 3, SEAL_HEX, NULL, &n, NULL) != 0 ||
        n != sizeof got || sodium_memcmp(got, want, sizeof got) != 0) {
        s = ST_INTEGRITY;
        goto out;
    }
    snprintf(val, cap, "%s", value);
    s = ST_OK;
out:
    if (s == ST_INTEGRITY)
        val[0] = '\0';
    free(raw);
    return s;
}
