/* SPDX-License-Identifier: Apache-2.0 */
/* common/text.c -- safe text from untrusted bytes (see text.h). Never allocates. */
#include "common/text.h"

#include <stdint.h>
#include <string.h>

size_t
text_utf8_len(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t len;
    uint32_t cp;

    if (n == 0)
        return 0;
    if (p[0] < 0x80)
        return 1;
    if (p[0] >= 0xc2 && p[0] <= 0xdf)
        len = 2, cp = p[0] & 0x1fu;
    else if (p[0] >= 0xe0 && p[0] <= 0xef)
        len = 3, cp = p[0] & 0x0fu;
    else if (p[0] >= 0xf0 && p[0] <= 0xf4)
        len = 4, cp = p[0] & 0x07u;
    else
        return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3fu);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

bool
text_copy_safe(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src), i = 0, o = 0;
    bool same = true;

    while (i < n) {
        size_t k = text_utf8_len(src + i, n - i);
        unsigned char c = (unsigned char)src[i];

        if (k == 1 && (c < 0x20 || c == 0x7f))
            k = 0; /* a control character */
        if (o + (k ? k : 1) >= cap) {
            same = false;
            break;
        }
        if (k == 0) {
            dst[o++] = '?';
            i++;
            same = false;
        } else {
            memcpy(dst + o, src + i, k);
            o += k;
            i += k;
        }
    }
    dst[o] = '\0';
    return same;
}
