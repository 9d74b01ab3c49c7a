/* SPDX-License-Identifier: Apache-2.0 */
/* server/janitor.h -- the one thread that runs the service's periodic duties: due key rotations
 * and pending crypto-shred flushes (keyrings), audit checkpoints and retention, and, as they
 * land, certificate probes, compliance runs and the database breaker's probe. One place to read
 * what runs in the background, and one clock to pin in tests: janitor_new + janitor_tick run the
 * same duties without a thread, at any time a test chooses. A duty must not block for long: a
 * probe with a network timeout belongs in its own worker, kicked from here. */
#ifndef DG_SERVER_JANITOR_H
#define DG_SERVER_JANITOR_H

#include <stddef.h>
#include <stdint.h>

#include "common/status.h"

struct duty {
    const char *name; /* "rotation", "audit_checkpoint", ... (unique) */
    int64_t every_ms; /* > 0 */
    void (*run)(void *arg, int64_t now_ms);
    void *arg;
};

struct janitor;

/* A janitor that runs nothing by itself: janitor_tick drives it (tests). Duties are copied. */
struct janitor *janitor_new(const struct duty *d, size_t n);
/* Run every duty due at now_ms (each runs at most once per call): first calls run all. */
void janitor_tick(struct janitor *j, int64_t now_ms);
/* Its thread, on the wall clock (CLOCK_REALTIME milliseconds). ST_INTERNAL if it cannot start. */
NODISCARD enum status janitor_start(struct janitor *j);
/* Run that duty at the next wake, soon (e.g. a key version passed 90% of its bound).
 * Thread-safe; unknown names are ignored. */
void janitor_kick(struct janitor *j, const char *name);
/* Stop the thread (if started, joining it) and free. NULL-safe. */
void janitor_free(struct janitor *j);

#endif
