/* SPDX-License-Identifier: Apache-2.0 */
/* server/auth/authz.c -- classify an Authorization header. Pure and allocation-free; never logs or
 * copies the credential, only points into it. */
#include "server/auth/authz.h"

#include <stdbool.h>
#include <string.h>

#include "server/auth/jwt.h"

#define AUTHZ_SCHEME "Bearer "
#define AUTHZ_SCHEME_LEN (sizeof AUTHZ_SCHEME - 1)

_Static_assert(AUTHZ_HEADER_MAX == AUTHZ_SCHEME_LEN + JWT_TOKEN_MAX, "header bound");

/* ASCII case-insensitive, whatever the locale. */
static bool
scheme_ok(const char *h)
{
    for (size_t i = 0; i < AUTHZ_SCHEME_LEN - 1; i++) {
        char c = h[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != "bearer"[i])
            return false;
    }
    return h[AUTHZ_SCHEME_LEN - 1] == ' ';
}

static bool
b64url_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

/* header.payload.signature over the base64url alphabet; jwt_verify does the strict decoding. */
static bool
jwt_shape(const char *t, size_t len)
{
    size_t dots = 0, part = 0;

    if (len > JWT_TOKEN_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (t[i] == '.') {
            if (part == 0 && dots < 2) /* header and payload are never empty */
                return false;
            dots++;
            part = 0;
        } else if (b64url_char(t[i])) {
            part++;
        } else {
            return false;
        }
    }
    return dots == 2;
}

enum status
authz_parse(const char *header, size_t len, struct authz *out)
{
    const char *t;
    size_t n;
    enum status st = ST_UNAUTHENTICATED;

    memset(out, 0, sizeof *out);
    if (header == NULL || len <= AUTHZ_SCHEME_LEN || len > AUTHZ_HEADER_MAX || !scheme_ok(header))
        goto out;
    t = header + AUTHZ_SCHEME_LEN;
    n = len - AUTHZ_SCHEME_LEN;
    if (n >= 4 && memcmp(t, APIKEY_PREFIX, 4) == 0) {
        if (apikey_parse(out->key_id, t, n) != ST_OK)
            goto out;
        out->kind = AUTHZ_APIKEY;
    } else if (jwt_shape(t, n)) {
        out->kind = AUTHZ_JWT;
    } else {
        goto out;
    }
    out->token = t;
    out->token_len = n;
    st = ST_OK;
out:
    if (st != ST_OK)
        memset(out, 0, sizeof *out);
    return st;
}
