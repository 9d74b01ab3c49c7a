/* SPDX-License-Identifier: Apache-2.0 */
/* common/sbuf.h -- a growable byte buffer for building responses. Buffers that may hold
 * plaintext are marked secret: every reallocation and the final free wipe the old bytes. */
#ifndef DG_COMMON_SBUF_H
#define DG_COMMON_SBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sbuf {
    char *p;
    size_t len, cap;
    bool secret; /* wipe on grow and free */
};

void sbuf_reserve(struct sbuf *b, size_t extra);
void sbuf_add(struct sbuf *b, const void *p, size_t n);
void sbuf_adds(struct sbuf *b, const char *s);
void sbuf_addf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append a fixed prefix and a decimal number (no printf on the hot path). */
void sbuf_add_u32(struct sbuf *b, const char *prefix, uint32_t v);
/* Append s as a JSON string literal with quotes; invalid UTF-8 is the caller's problem. */
void sbuf_add_jstr(struct sbuf *b, const char *s, size_t n);
/* Give up ownership of the bytes (caller frees; wipes if secret). */
char *sbuf_take(struct sbuf *b, size_t *len);
void sbuf_free(struct sbuf *b);
/* free() that first wipes n bytes: the free callback for secret responses. */
void sbuf_wipe_free(void *p, size_t n);

#endif
