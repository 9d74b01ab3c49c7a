/* SPDX-License-Identifier: Apache-2.0 */
/* server/auth/authz.h -- the Authorization header: "Bearer <api key>" or "Bearer <JWT>", nothing else.
 * Pure: classifies and checks shape only (API key checksum included); no lookup, no logging (the
 * header is a credential and is never logged). */
#ifndef DG_SERVER_AUTH_AUTHZ_H
#define DG_SERVER_AUTH_AUTHZ_H

#include <stddef.h>

#include "common/status.h"
#include "crypto/apikey.h"

#define AUTHZ_HEADER_MAX (7 + 8192) /* "Bearer " + JWT_TOKEN_MAX */

enum authz_kind {
    AUTHZ_INVALID = 0, /* missing, wrong scheme, bad spacing, bad key or token shape */
    AUTHZ_APIKEY,      /* "dgk_..." whose shape and CRC check out (crypto/apikey.h) */
    AUTHZ_JWT,         /* three base64url parts, the first two non-empty, <= 8 KiB */
};

struct authz {
    enum authz_kind kind;
    const char *token; /* points into the caller's header; NULL when invalid */
    size_t token_len;
    char key_id[APIKEY_ID_CHARS + 1]; /* AUTHZ_APIKEY: the public id, else "" */
};

/* Parse `header` (len bytes, need not be NUL-terminated; NULL means absent). The scheme is
 * "Bearer" in any case, then exactly one space, then the token to the end: no other whitespace,
 * no trailing bytes. Returns ST_OK (kind APIKEY or JWT) or ST_UNAUTHENTICATED (kind INVALID).
 * *out is reset on entry; out->token borrows from header. Thread-safe (no state). */
NODISCARD enum status authz_parse(const char *header, size_t len, struct authz *out);

#endif
