/* SPDX-License-Identifier: Apache-2.0 */
/* server/obs/opstats.c -- crypto operation counters, batch sizes and rate-limit refusals (see
 * opstats.h). */
#include "server/obs/opstats.h"

#include <stdlib.h>

#include "common/xmem.h"
#include "server/obs/metrics.h"

static const char *const op_names[OPSTATS__N] = {"encrypt", "decrypt", "rewrap", "datakey"};

struct op_stats {
    struct metrics_table *crypto, *limited;
    struct metrics_hist batch[OPSTATS__N];
};

struct op_stats *
op_stats_new(void)
{
    static const char *const crypto_labels[] = {"op", "keyring", "app", "outcome"};
    static const char *const limited_labels[] = {"app"};
    struct op_stats *s = xcalloc(1, sizeof *s);

    /* On overflow keyring and app become "_other"; op and outcome stay (fixed sets). */
    s->crypto = metrics_table_new(crypto_labels, 4, OPSTATS_MAX_SERIES, 0x6);
    s->limited = metrics_table_new(limited_labels, 1, OPSTATS_MAX_APPS, 0x1);
    for (int i = 0; i < OPSTATS__N; i++)
        metrics_hist_init(&s->batch[i], &metrics_buckets_items);
    return s;
}

void
op_stats_free(struct op_stats *s)
{
    if (s == NULL)
        return;
    metrics_table_free(s->crypto);
    metrics_table_free(s->limited);
    for (int i = 0; i < OPSTATS__N; i++)
        metrics_hist_fini(&s->batch[i]);
    free(s);
}

void
op_stats_crypto(struct op_stats *s, enum opstats_op op, const char *keyring, const char *app,
                const char *outcome, uint64_t n)
{
    const char *v[] = {op_names[op], keyring, app, outcome};
    if (s != NULL && n > 0)
        metrics_table_add(s->crypto, v, n);
}

void
op_stats_batch(struct op_stats *s, enum opstats_op op, uint64_t n)
{
    if (s != NULL)
        metrics_hist_observe(&s->batch[op], n);
}

void
op_stats_rate_limited(struct op_stats *s, const char *app)
{
    const char *v[] = {app};
    if (s != NULL)
        metrics_table_add(s->limited, v, 1);
}

void
op_stats_metrics(const void *self, struct metrics_out *o)
{
    const struct op_stats *s = self;

    metrics_table_render(o, s->crypto, "difyguard_crypto_operations_total", "counter",
                         "Crypto operations (batch items count one each) by operation, keyring, "
                         "app and outcome (ok, or the error code). Bounded: past 2048 label sets, "
                         "new keyrings and apps count as _other.");
    metrics_family(o, "difyguard_crypto_batch_items", "histogram",
                   "Items per batch request, by operation.");
    for (int i = 0; i < OPSTATS__N; i++) {
        const struct metrics_label l[] = {{"op", op_names[i]}};
        if (metrics_hist_count(&s->batch[i]) > 0)
            metrics_hist_render(o, "difyguard_crypto_batch_items", l, 1, &s->batch[i]);
    }
    metrics_table_render(o, s->limited, "difyguard_rate_limited_total", "counter",
                         "Requests refused 429 rate_limited, by app (API key or JWT caller). "
                         "Bounded: past 512 apps, new ones count as _other.");
}
