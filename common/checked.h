/* SPDX-License-Identifier: Apache-2.0 */
/* common/checked.h -- overflow-checked integer arithmetic for times and durations, and the
 * bounds every time input is held to. Header-only, libc only. Never wraps silently: a result
 * that does not fit is reported (checked_*) or clamped to the bound (checked_time_add). */
#ifndef DG_COMMON_CHECKED_H
#define DG_COMMON_CHECKED_H

#include <stdbool.h>
#include <stdint.h>

/* The longest duration any input (flag, variable, config file, JSON body) may give: 3650 days,
 * about 10 years. Anything longer is a usage error or a 400, never a wrapped time. */
#define DURATION_MAX_SECONDS (INT64_C(3650) * 86400)
/* The latest timestamp any input may give: 9999-12-31T23:59:59Z (Unix seconds). */
#define TIME_MAX_SECONDS INT64_C(253402300799)

/* *out = a + b; false (and *out untouched) when the sum does not fit in int64_t. */
static inline bool
checked_add(int64_t *out, int64_t a, int64_t b)
{
    int64_t r;

    if (__builtin_add_overflow(a, b, &r))
        return false;
    *out = r;
    return true;
}

/* *out = a * b; false (and *out untouched) when the product does not fit in int64_t. */
static inline bool
checked_mul(int64_t *out, int64_t a, int64_t b)
{
    int64_t r;

    if (__builtin_mul_overflow(a, b, &r))
        return false;
    *out = r;
    return true;
}

/* A deadline: time t plus duration d (d >= 0), clamped to TIME_MAX_SECONDS. For values read
 * back from storage that older versions may have accepted unbounded: "never" stays far in the
 * future instead of wrapping into the past. */
static inline int64_t
checked_time_add(int64_t t, int64_t d)
{
    int64_t r;

    if (!checked_add(&r, t, d) || r > TIME_MAX_SECONDS)
        return TIME_MAX_SECONDS;
    return r;
}

#endif
