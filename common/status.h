/* SPDX-License-Identifier: Apache-2.0 */
/* common/status.h -- the one status type every fallible function returns.
 * Mapping a status to HTTP lives in server/http/request.c (one table); nothing here knows HTTP. */
#ifndef DG_COMMON_STATUS_H
#define DG_COMMON_STATUS_H

#define NODISCARD __attribute__((warn_unused_result))

enum status {
    ST_OK = 0,
    ST_INVALID,          /* client input malformed: 400 invalid_request */
    ST_MALFORMED_CT,     /* ciphertext text/blob malformed or prefix/blob version mismatch: 400 */
    ST_UNAUTHENTICATED,  /* 401 */
    ST_FORBIDDEN,        /* 403 */
    ST_NOT_FOUND,        /* 404 */
    ST_METHOD,           /* 405 */
    ST_CONFLICT,         /* 409 */
    ST_TOO_LARGE,        /* 413 too_large */
    ST_BATCH_TOO_LARGE,  /* 413 batch_too_large */
    ST_VERSION_DISABLED, /* 422 key_version_disabled */
    ST_UNKNOWN_VERSION,  /* 422 unknown_key_version */
    ST_AUTH,             /* 422 decryption_failed: wrong key, context or bytes (no oracle) */
    ST_RATE_LIMITED,     /* 429 */
    ST_UNAVAILABLE,      /* 503: storage or a dependency failed */
    ST_INTEGRITY,        /* a stored row failed its MAC: refused, 500 */
    ST_INTERNAL,         /* a bug or an unexpected library failure: 500 */
    ST_IO,               /* file or OS call failed (CLI paths) */
    ST__COUNT
};

/* A short stable name ("ok", "invalid", ...) for logs and metrics labels. */
const char *status_name(enum status st);

#endif
