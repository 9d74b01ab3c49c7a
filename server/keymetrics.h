/* SPDX-License-Identifier: Apache-2.0 */
/* server/keymetrics.h -- API key series for the metrics registry: each live key's expiry and last
 * use, by app and key id (public ids, never a secret). Rendering must not wait on the store (the
 * audit writer holds it during a group commit), so a janitor duty reads the keys from the store
 * into a snapshot, and rendering reads the snapshot under its own short lock. At most
 * KEYMETRICS_MAX_KEYS keys (the soonest to expire first), so the series count stays bounded. */
#ifndef DG_SERVER_KEYMETRICS_H
#define DG_SERVER_KEYMETRICS_H

#include <stdint.h>

#include "store/store.h"

#define KEYMETRICS_MAX_KEYS 1000
#define KEYMETRICS_EVERY_MS 15000 /* how often the janitor refreshes the snapshot */

struct keymetrics;
struct metrics_out;

struct keymetrics *keymetrics_new(struct store *st);
void keymetrics_free(struct keymetrics *k); /* NULL-safe */
/* The janitor's duty: a new snapshot of the live keys (not revoked, not past expiry or grace). */
void keymetrics_refresh(void *k, int64_t now_ms);
/* The metrics source (self: the struct keymetrics). */
void keymetrics_metrics(const void *self, struct metrics_out *o);

#endif
