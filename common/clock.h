/* SPDX-License-Identifier: Apache-2.0 */
/* common/clock.h -- the wall clock in the units the service uses (unix seconds, milliseconds)
 * and its RFC 3339 text. One place to read time; tests that need another clock inject theirs
 * where a module takes one (server/janitor.h). Thread-safe. */
#ifndef DG_COMMON_CLOCK_H
#define DG_COMMON_CLOCK_H

#include <stdint.h>

int64_t clock_now_s(void);
int64_t clock_now_ms(void);
/* The monotonic clock in nanoseconds: for durations, never for dates. */
int64_t clock_mono_ns(void);

/* Unix seconds as RFC 3339 UTC ("2026-11-28T20:21:00Z"); times past 9999-12-31 are clamped, so
 * the text is always a valid RFC 3339 value. */
void clock_rfc3339(char out[static 32], int64_t t);

#endif
