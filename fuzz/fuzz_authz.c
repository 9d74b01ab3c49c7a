/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz/fuzz_authz.c -- the Authorization header classifier on arbitrary bytes: never crash or
 * read out of bounds, and whatever it accepts really has the shape it claims. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/auth/authz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *h = (const char *)data;
    struct authz a;
    enum status st = authz_parse(h, size, &a);

    if (st != ST_OK) {
        if (a.kind != AUTHZ_INVALID || a.token != NULL || a.key_id[0] != '\0')
            abort();
        return 0;
    }
    /* The token is the rest of the header after "Bearer ". */
    if (a.token != h + 7 || a.token_len != size - 7)
        abort();
    if (a.kind == AUTHZ_APIKEY &&
        (a.token_len != APIKEY_TEXT_CHARS || strlen(a.key_id) != APIKEY_ID_CHARS ||
         memcmp(a.key_id, a.token + 4, APIKEY_ID_CHARS) != 0))
        abort();
    if (a.kind == AUTHZ_JWT && (memchr(a.token, ' ', a.token_len) != NULL || a.key_id[0] != '\0'))
        abort();
    return 0;
}
