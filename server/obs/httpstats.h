/* SPDX-License-Identifier: Apache-2.0 */
/* server/obs/httpstats.h -- what the transport counts: request duration histograms by route
 * template, method and status class (OpenTelemetry's buckets, seconds), requests in flight, open
 * connections, body bytes in and out, and 413/429 answers. Routes are the route table's templates
 * (given once at creation), never a raw path, so the label set is fixed. Every update is an atomic
 * add: request threads never take a lock here, and rendering never waits for them. */
#ifndef DG_SERVER_OBS_HTTPSTATS_H
#define DG_SERVER_OBS_HTTPSTATS_H

#include <stddef.h>
#include <stdint.h>

struct http_stats;
struct metrics_out;

/* n routes (method and template of each, static strings); slot n counts requests that matched
 * no route (route "_unmatched", method "_any"). */
struct http_stats *http_stats_new(const char *const *methods, const char *const *paths, size_t n);
void http_stats_free(struct http_stats *s); /* NULL-safe */
/* The slot of (method, path), or the unmatched slot. */
size_t http_stats_slot(const struct http_stats *s, const char *method, const char *path);

/* A finished request: its slot, HTTP status, duration and body sizes. */
void http_stats_request(struct http_stats *s, size_t slot, unsigned code, uint64_t duration_ns,
                        uint64_t bytes_in, uint64_t bytes_out);
void http_stats_in_flight(struct http_stats *s, int delta);
void http_stats_connections(struct http_stats *s, int delta);

/* The metrics source (self: the struct http_stats). */
void http_stats_metrics(const void *self, struct metrics_out *o);

#endif
