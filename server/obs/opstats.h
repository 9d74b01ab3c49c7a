/* SPDX-License-Identifier: Apache-2.0 */
/* server/obs/opstats.h -- what the request path counts beyond HTTP: crypto operations (items) by
 * operation, keyring, app and outcome, batch sizes by operation, and rate-limit refusals by app.
 * Keyring and app labels grow with the deployment, so they are bounded (metrics_table: past
 * OPSTATS_MAX_SERIES label sets, new ones count as "_other"). Callers pass only names that exist
 * (a keyring the request used, an authenticated app): never a name a client merely tried. */
#ifndef DG_SERVER_OBS_OPSTATS_H
#define DG_SERVER_OBS_OPSTATS_H

#include <stdint.h>

#define OPSTATS_MAX_SERIES 2048 /* crypto (op, keyring, app, outcome) sets before "_other" */
#define OPSTATS_MAX_APPS 512    /* apps with their own rate-limit series */

enum opstats_op { OPSTATS_ENCRYPT, OPSTATS_DECRYPT, OPSTATS_REWRAP, OPSTATS_DATAKEY, OPSTATS__N };

struct op_stats;
struct metrics_out;

struct op_stats *op_stats_new(void);
void op_stats_free(struct op_stats *s); /* NULL-safe */
/* n items of op on keyring for app ended with outcome ("ok" or an error code). Lock-free. */
void op_stats_crypto(struct op_stats *s, enum opstats_op op, const char *keyring, const char *app,
                     const char *outcome, uint64_t n);
/* One batch request of op with n items. */
void op_stats_batch(struct op_stats *s, enum opstats_op op, uint64_t n);
void op_stats_rate_limited(struct op_stats *s, const char *app);

/* The metrics source (self: the struct op_stats). */
void op_stats_metrics(const void *self, struct metrics_out *o);

#endif
