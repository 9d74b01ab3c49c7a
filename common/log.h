/* SPDX-License-Identifier: Apache-2.0 */
/* common/log.h -- one JSON object per line on stdout (Loki/ELK/Fluent Bit ready). Each line is
 * written with a single write(2), so lines from threads never interleave. Never pass secrets:
 * log ids, names, fingerprints and statuses only. */
#ifndef DG_COMMON_LOG_H
#define DG_COMMON_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_set_level(enum log_level lvl);
/* True when lines of this level are written: skip building costly fields otherwise. */
bool log_enabled(enum log_level lvl);
/* Where lines go: stdout (the default, for serve) or stderr (the other commands, whose stdout
 * carries their result). */
void log_set_fd(int fd);
/* From now on, queue lines in a buffer of `bytes` written by a thread of its own, so a stalled
 * reader of the log never blocks the caller; a line that does not fit is dropped and counted.
 * For serve. True when buffering is on. */
bool log_set_buffered(size_t bytes);
/* Lines dropped because the buffer was full (since start). */
unsigned long long log_dropped(void);
/* Wait up to timeout_ms for the buffer to drain (at shutdown). */
void log_flush(int timeout_ms);
/* Parse "debug|info|warn|error"; returns -1 if unknown. */
int log_level_parse(const char *s);

/* msg is a fixed event name ("listening", "keyring_rotated"); then key/value pairs of strings,
 * NULL-terminated: log_msg(LOG_INFO, "listening", "addr", "127.0.0.1:8080", NULL).
 * Values are JSON-escaped. A key starting with '#' is emitted as a raw JSON number
 * ("#status", "404"). A field whose value is "" is left out. */
void log_msg(enum log_level lvl, const char *msg, ...) __attribute__((sentinel));
/* The terminator of log_msg's pairs: a typed null pointer (a bare NULL may be an int). */
#define LOG_END ((const char *)NULL)

#endif
