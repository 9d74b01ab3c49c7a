/* SPDX-License-Identifier: Apache-2.0 */
/* server/datalock.h -- one difyguard process at a time on a database: an exclusive flock(2) on a
 * lock file beside the SQLite database ("<database>.lock", 0600), held by `serve` for its whole
 * life and by the maintenance commands (rotate-root-key, migrate, init) for their run. The
 * kernel drops the lock when the process exits, however it exits. Advisory: it keeps difyguard
 * commands apart; admin-key deliberately does not take it (break-glass works while serving). */
#ifndef DG_SERVER_DATALOCK_H
#define DG_SERVER_DATALOCK_H

#include <stddef.h>

#include "common/status.h"

struct datalock;

/* Take the lock of the database at `database_url` for `holder` (a command name, recorded in the
 * lock file with the pid so a refused process can say who holds it). Never waits.
 * ST_OK: *out holds the lock, or is NULL when there is nothing to lock (not a SQLite file, such
 * as ":memory:" or a URL store_open will refuse; or the database's directory does not exist yet,
 * as before `init`). ST_CONFLICT: another process holds it; err names it in one line. ST_INVALID
 * (path too long) or ST_IO (the lock file cannot be opened or locked): err says why. */
NODISCARD enum status datalock_acquire(struct datalock **out, const char *database_url,
                                       const char *holder, char *err, size_t err_len);

/* Release and free (NULL-safe). The lock file stays: removing it would race the next locker. */
void datalock_release(struct datalock *l);

#endif
