/* SPDX-License-Identifier: Apache-2.0 */
/* server/janitor.c -- the periodic duties' thread (see janitor.h). Duties run one at a time, in
 * their registration order, outside the janitor's own lock. */
#include "server/janitor.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/xmem.h"

struct slot {
    struct duty d;
    int64_t next_ms; /* 0: at the first tick */
    bool kicked;
};

struct janitor {
    struct slot *v;
    size_t n;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    bool started, stopping;
};

struct janitor *
janitor_new(const struct duty *d, size_t n)
{
    struct janitor *j = xcalloc(1, sizeof *j);

    j->v = xcalloc(n ? n : 1, sizeof *j->v);
    j->n = n;
    for (size_t i = 0; i < n; i++)
        j->v[i].d = d[i];
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    return j;
}

void
janitor_tick(struct janitor *j, int64_t now_ms)
{
    for (size_t i = 0; i < j->n; i++) {
        struct slot *s = &j->v[i];
        pthread_mutex_lock(&j->mu);
        bool due = s->kicked || now_ms >= s->next_ms;
        if (due) {
            s->kicked = false;
            s->next_ms = now_ms + s->d.every_ms;
        }
        pthread_mutex_unlock(&j->mu);
        if (due)
            s->d.run(s->d.arg, now_ms);
    }
}

/* With mu held: the earliest next run, or now when one was kicked. */
static int64_t
next_due(const struct janitor *j, int64_t now_ms)
{
    int64_t t = now_ms + 60 * 1000;
    for (size_t i = 0; i < j->n; i++) {
        if (j->v[i].kicked)
            return now_ms;
        if (j->v[i].next_ms < t)
            t = j->v[i].next_ms;
    }
    return t;
}

static void *
janitor_main(void *arg)
{
    struct janitor *j = arg;

    pthread_mutex_lock(&j->mu);
    while (!j->stopping) {
        int64_t now = clock_now_ms(), at = next_due(j, now);
        if (at > now) {
            struct timespec until = {.tv_sec = at / 1000, .tv_nsec = (long)(at % 1000) * 1000000};
            pthread_cond_timedwait(&j->cv, &j->mu, &until);
            continue; /* woken: look again (stopping, a kick, or time) */
        }
        pthread_mutex_unlock(&j->mu);
        janitor_tick(j, now);
        pthread_mutex_lock(&j->mu);
    }
    pthread_mutex_unlock(&j->mu);
    return NULL;
}

enum status
janitor_start(struct janitor *j)
{
    if (pthread_create(&j->thread, NULL, janitor_main, j) != 0)
        return ST_INTERNAL;
    j->started = true;
    return ST_OK;
}

void
janitor_kick(struct janitor *j, const char *name)
{
    if (j == NULL)
        return;
    pthread_mutex_lock(&j->mu);
    for (size_t i = 0; i < j->n; i++) {
        if (strcmp(j->v[i].d.name, name) == 0)
            j->v[i].kicked = true;
    }
    pthread_cond_signal(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

void
janitor_free(struct janitor *j)
{
    if (j == NULL)
        return;
    if (j->started) {
        pthread_mutex_lock(&j->mu);
        j->stopping = true;
        pthread_cond_signal(&j->cv);
        pthread_mutex_unlock(&j->mu);
        pthread_join(j->thread, NULL);
    }
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    free(j->v);
    free(j);
}
