/* SPDX-License-Identifier: Apache-2.0 */
/* common/names.c -- operator-chosen names (see names.h). */
#include "common/names.h"

#include <string.h>

bool
names_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > NAMES_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-')))
            return false;
    }
    return true;
}
