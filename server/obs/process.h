/* SPDX-License-Identifier: Apache-2.0 */
/* server/obs/process.h -- the standard process_* series (CPU, memory, descriptors, start time,
 * read from /proc/self) and difyguard_build_info, as a metrics source. Reads files only; takes
 * no lock. */
#ifndef DG_SERVER_OBS_PROCESS_H
#define DG_SERVER_OBS_PROCESS_H

#include <stdbool.h>
#include <stdint.h>

struct metrics_out;

/* What one look at /proc/self gives (false when /proc is not mounted). */
struct process_stats {
    double cpu_seconds; /* user + system */
    double resident_bytes, virtual_bytes;
    double open_fds, max_fds;
    double start_time_seconds; /* unix time */
};
bool process_stats_read(struct process_stats *out);

/* The metrics source: self is unused (NULL). */
void process_metrics(const void *self, struct metrics_out *o);

#endif
