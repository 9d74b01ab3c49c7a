/* SPDX-License-Identifier: Apache-2.0 */
/* common/xmem.h -- allocation that aborts on OOM, and a small bump arena for per-request,
 * non-secret data. Secrets never go in an arena (see crypto/secret.h). */
#ifndef DG_COMMON_XMEM_H
#define DG_COMMON_XMEM_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

/* Bump allocator; not thread-safe (one per request). arena_free is NULL-safe. */
struct arena;
struct arena *arena_new(size_t first_block);
void arena_free(struct arena *a);
void *arena_alloc(struct arena *a, size_t n); /* 16-byte aligned, never NULL */
char *arena_strndup(struct arena *a, const char *s, size_t n);

#endif
