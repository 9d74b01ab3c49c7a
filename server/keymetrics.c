/* SPDX-License-Identifier: Apache-2.0 */
/* server/keymetrics.c -- a snapshot of the live API keys for the metrics registry (see
 * keymetrics.h). Holds ids, app names and times only: key rows' hashes are never copied. */
#include "server/keymetrics.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/xmem.h"
#include "server/obs/metrics.h"

struct key_row {
    char app[STORE_NAME_MAX];
    char id[STORE_KEY_ID_MAX];
    int64_t expires_at, last_used_at;
};

struct keymetrics {
    struct store *store;
    pthread_mutex_t mu; /* guards the snapshot; held to swap it or to render it */
    struct key_row *rows;
    size_t n, live; /* rows kept, live keys in all */
    bool loaded;
};

struct keymetrics *
keymetrics_new(struct store *st)
{
    struct keymetrics *k = xcalloc(1, sizeof *k);
    k->store = st;
    pthread_mutex_init(&k->mu, NULL);
    return k;
}

void
keymetrics_free(struct keymetrics *k)
{
    if (k == NULL)
        return;
    free(k->rows);
    pthread_mutex_destroy(&k->mu);
    free(k);
}

static int
by_expiry(const void *a, const void *b)
{
    const struct key_row *x = a, *y = b;
    return (x->expires_at > y->expires_at) - (x->expires_at < y->expires_at);
}

void
keymetrics_refresh(void *arg, int64_t now_ms)
{
    struct keymetrics *k = arg;
    struct store_apikey *keys = NULL;
    struct key_row *rows = NULL, *old;
    size_t n = 0, m = 0;
    int64_t now = now_ms / 1000;

    if (store_apikey_list(k->store, 0, &keys, &n) != ST_OK) {
        log_msg(LOG_WARN, "key_metrics_refresh_failed", LOG_END);
        return;
    }
    rows = xcalloc(n ? n : 1, sizeof *rows);
    for (size_t i = 0; i < n; i++) {
        const struct store_apikey *s = &keys[i];
        int64_t until =
            s->grace_until != 0 && s->grace_until < s->expires_at ? s->grace_until : s->expires_at;
        if (s->revoked_at != 0 || until <= now)
            continue;
        snprintf(rows[m].app, sizeof rows[m].app, "%s", s->app_name);
        snprintf(rows[m].id, sizeof rows[m].id, "%s", s->id);
        rows[m].expires_at = until;
        rows[m].last_used_at = s->last_used_at;
        m++;
    }
    explicit_bzero(keys, n * sizeof *keys); /* key hashes */
    free(keys);
    qsort(rows, m, sizeof *rows, by_expiry);
    size_t live = m;
    if (m > KEYMETRICS_MAX_KEYS)
        m = KEYMETRICS_MAX_KEYS;
    pthread_mutex_lock(&k->mu);
    old = k->rows;
    k->rows = rows;
    k->n = m;
    k->live = live;
    k->loaded = true;
    pthread_mutex_unlock(&k->mu);
    free(old);
}

void
keymetrics_metrics(const void *self, struct metrics_out *o)
{
    struct keymetrics *k = (struct keymetrics *)(uintptr_t)self;

    pthread_mutex_lock(&k->mu);
    metrics_family(o, "difyguard_api_key_expiry_timestamp_seconds", "gauge",
                   "When each live API key expires (or its rotation grace ends), unix seconds; "
                   "the 1000 soonest to expire. Refreshed every 15 s.");
    for (size_t i = 0; i < k->n; i++)
        metrics_sample2(o, "difyguard_api_key_expiry_timestamp_seconds", "app", k->rows[i].app,
                        "key_id", k->rows[i].id, (double)k->rows[i].expires_at);
    metrics_family(o, "difyguard_api_key_last_used_timestamp_seconds", "gauge",
                   "When each live API key was last used, unix seconds (0: never; recorded at "
                   "most every 10 s).");
    for (size_t i = 0; i < k->n; i++)
        metrics_sample2(o, "difyguard_api_key_last_used_timestamp_seconds", "app", k->rows[i].app,
                        "key_id", k->rows[i].id, (double)k->rows[i].last_used_at);
    metrics_gauge(o, "difyguard_api_keys", "Live API keys (not revoked, not expired).",
                  (double)k->live);
    pthread_mutex_unlock(&k->mu);
}
