/* SPDX-License-Identifier: Apache-2.0 */
/* common/clock.c -- the wall clock and its RFC 3339 text (see clock.h). */
#include "common/clock.h"

#include <string.h>
#include <time.h>

#include "common/checked.h"

int64_t
clock_now_s(void)
{
    return (int64_t)time(NULL);
}

int64_t
clock_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
clock_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void
clock_rfc3339(char out[static 32], int64_t t)
{
    struct tm tm = {0};
    time_t tt = (time_t)(t > TIME_MAX_SECONDS ? TIME_MAX_SECONDS : t);

    if (gmtime_r(&tt, &tm) == NULL)
        memset(&tm, 0, sizeof tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}
