/* SPDX-License-Identifier: Apache-2.0 */
/* common/text.h -- safe text from untrusted bytes: bounded copies that never cut a UTF-8
 * character and never carry control characters. Pure, allocation-free, thread-safe. */
#ifndef DG_COMMON_TEXT_H
#define DG_COMMON_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* Length of the valid UTF-8 sequence (1..4) starting at s[0] within n bytes, or 0 when the
 * bytes there are not one (overlong forms, surrogates and values above U+10FFFF refused). */
size_t text_utf8_len(const char *s, size_t n);

/* Copy src (NUL-terminated) into dst[cap] (cap >= 1) as printable UTF-8: each byte that does not
 * start a valid sequence and each control character becomes '?', and the copy stops before a
 * character that would not fit, so the result is always valid UTF-8 without controls.
 * Returns true when src was copied whole and unchanged. */
bool text_copy_safe(char *dst, size_t cap, const char *src);

#endif
