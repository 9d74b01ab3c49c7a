/* SPDX-License-Identifier: Apache-2.0 */
/* common/xmem.c -- OOM is fatal (STYLE rule 13); arenas hold request data, never secrets. */
#include "common/xmem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
oom(size_t n)
{
    fprintf(stderr, "difyguard: out of memory allocating %zu bytes\n", n);
    abort();
}

void *
xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        oom(n);
    return p;
}

void *
xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL)
        oom(n * size);
    return p;
}

void *
xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        oom(n);
    return q;
}

char *
xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

char *
xstrndup(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

struct block {
    struct block *next;
    size_t cap, used;
    _Alignas(16) unsigned char data[];
};

struct arena {
    struct block *head;
    size_t next_size;
};

struct arena *
arena_new(size_t first_block)
{
    struct arena *a = xcalloc(1, sizeof *a);
    a->next_size = first_block < 256 ? 256 : first_block;
    return a;
}

void
arena_free(struct arena *a)
{
    if (a == NULL)
        return;
    for (struct block *b = a->head, *n; b != NULL; b = n) {
        n = b->next;
        free(b);
    }
    free(a);
}

void *
arena_alloc(struct arena *a, size_t n)
{
    n = (n + 15u) & ~(size_t)15u;
    struct block *b = a->head;
    if (b == NULL || b->cap - b->used < n) {
        size_t cap = a->next_size;
        while (cap < n)
            cap *= 2;
        b = xmalloc(sizeof *b + cap);
        b->cap = cap;
        b->used = 0;
        b->next = a->head;
        a->head = b;
        if (a->next_size < (1u << 20))
            a->next_size *= 2;
    }
    void *p = b->data + b->used;
    b->used += n;
    return p;
}

char *
arena_strndup(struct arena *a, const char *s, size_t n)
{
    char *p = arena_alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}
