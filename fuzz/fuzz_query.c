/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz/fuzz_query.c -- what the API reads from query strings and names back in errors (issue 14):
 * the time forms every endpoint accepts (server/handlers/query.c) and the unknown-field message
 * (common/json/jsonx.c). Oracles: never crash; an accepted time is within 1970..9999-12-31 (the
 * end of that day for an upper bound) and its UTC day parses back to the same day; an unknown
 * field's message shows the field's name only when it is a short plain name. Input: two
 * NUL-separated parts, the time text and the field name. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/checked.h"
#include "common/json/jsonx.h"
#include "server/handlers/handlers.h"

static void
check_time(const char *s)
{
    int64_t ms = -1, back = -1;
    char day[11], again[11];

    for (int end = 0; end <= 1; end++) {
        if (!when_parse(s, end != 0, &ms))
            continue;
        if (ms < 0 || ms > (TIME_MAX_SECONDS + 1) * 1000)
            abort();
    }
    if (!when_day(s, day))
        return;
    if (strlen(day) != 10 || !when_parse(day, false, &back) || !when_day(day, again) ||
        strcmp(day, again) != 0)
        abort();
}

static void
check_field(const char *key)
{
    static const char *const allowed[] = {"plaintext", "text", "context", "key_version", NULL};
    char msg[JX_NAME_MAX + 200];
    snprintf(msg, sizeof msg, "%s", jx_unknown_field_msg(key, allowed));
    size_t n = strlen(key);
    bool plain =
        n > 0 && n <= JX_NAME_MAX &&
        strspn(key, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.") == n;
    if (msg[0] == '\0')
        abort();
    if (!plain && strcmp(msg, jx_unknown_field_msg("not plain!", allowed)) != 0)
        abort(); /* the one fixed text: nothing of the name */
    if (plain && strstr(msg, key) == NULL)
        abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 2);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    buf[size] = buf[size + 1] = '\0';
    size_t first = strlen(buf);
    check_time(buf);
    check_field(first < size ? buf + first + 1 : "");
    free(buf);
    return 0;
}
