/* SPDX-License-Identifier: Apache-2.0 */
/* common/status.c -- names of statuses for logs and metric labels. */
#include "common/status.h"

#include <stddef.h>

static const char *const names[ST__COUNT] = {
    [ST_OK] = "ok",
    [ST_INVALID] = "invalid_request",
    [ST_MALFORMED_CT] = "malformed_ciphertext",
    [ST_UNAUTHENTICATED] = "unauthenticated",
    [ST_FORBIDDEN] = "forbidden",
    [ST_NOT_FOUND] = "not_found",
    [ST_METHOD] = "method_not_allowed",
    [ST_CONFLICT] = "conflict",
    [ST_TOO_LARGE] = "too_large",
    [ST_BATCH_TOO_LARGE] = "batch_too_large",
    [ST_VERSION_DISABLED] = "key_version_disabled",
    [ST_UNKNOWN_VERSION] = "unknown_key_version",
    [ST_AUTH] = "decryption_failed",
    [ST_RATE_LIMITED] = "rate_limited",
    [ST_UNAVAILABLE] = "unavailable",
    [ST_INTEGRITY] = "integrity_failure",
    [ST_INTERNAL] = "internal",
    [ST_IO] = "io_error",
};

const char *
status_name(enum status st)
{
    if ((unsigned)st >= ST__COUNT || names[st] == NULL)
        return "internal";
    return names[st];
}
