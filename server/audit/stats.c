/* SPDX-License-Identifier: Apache-2.0 */
/* server/audit/stats.c -- the audit writer's series for the metrics registry: backlog, group
 * commits (size and duration histograms), write failures, the last checkpoint, the last
 * whole-trail verification. Reads atomics only: rendering never waits for the writer's locks. */
#include <stdatomic.h>

#include "server/audit/priv.h"
#include "server/obs/metrics.h"

void
audit__stats_init(struct audit *a)
{
    metrics_hist_init(&a->group_size, &metrics_buckets_items);
    metrics_hist_init(&a->commit_seconds, &metrics_buckets_short_seconds);
}

void
audit__stats_fini(struct audit *a)
{
    metrics_hist_fini(&a->group_size);
    metrics_hist_fini(&a->commit_seconds);
}

void
audit__stats_commit(struct audit *a, size_t n, int64_t ns)
{
    metrics_hist_observe(&a->group_size, n);
    metrics_hist_observe(&a->commit_seconds, ns > 0 ? (uint64_t)ns : 0);
}

void
audit_metrics(const void *self, struct metrics_out *o)
{
    const struct audit *a = self;
    int64_t verified = atomic_load(&a->verified_at_ms);

    metrics_counter(o, "difyguard_audit_write_failures_total",
                    "Audit events that could not be written (their requests were answered 503).",
                    atomic_load(&a->failures));
    metrics_gauge(o, "difyguard_audit_backlog", "Audit events queued and not yet written.",
                  (double)atomic_load(&a->q_len));
    metrics_counter(o, "difyguard_audit_unverified_chains_total",
                    "Stored chains of other nodes an export could not verify (left out or cut "
                    "short).",
                    atomic_load(&a->unverified));
    metrics_family(o, "difyguard_audit_group_commit_events", "histogram",
                   "Events per group commit (one transaction and one fsync each).");
    metrics_hist_render(o, "difyguard_audit_group_commit_events", NULL, 0, &a->group_size);
    metrics_family(o, "difyguard_audit_group_commit_seconds", "histogram",
                   "Time to chain, write and commit (fsync) one group of events.");
    metrics_hist_render(o, "difyguard_audit_group_commit_seconds", NULL, 0, &a->commit_seconds);
    metrics_gauge(o, "difyguard_audit_last_checkpoint_timestamp_seconds",
                  "When this node's chain got its last signed checkpoint, unix seconds (0: none "
                  "since start).",
                  (double)atomic_load(&a->checkpoint_ms) / 1000.0);
    metrics_gauge(o, "difyguard_audit_last_verified_timestamp_seconds",
                  "When the whole trail was last verified (GET /v1/audit/verify, the compliance "
                  "report), unix seconds (0: not since start).",
                  (double)verified / 1000.0);
    metrics_gauge(o, "difyguard_audit_chain_valid",
                  "1 when the last whole-trail verification passed, 0 when it failed, -1 when "
                  "none ran since start.",
                  verified == 0                  ? -1
                  : atomic_load(&a->verified_ok) ? 1
                                                 : 0);
}
