/* SPDX-License-Identifier: Apache-2.0 */
/* crypto/keyfile.h -- the one rule for files that hold secret keys (the root key, JWT HMAC
 * secrets, the TLS private key): a regular file, reached through symlinks (Kubernetes secret
 * mounts are symlinks), that gives others no access and its group no write. Checks the open
 * descriptor itself (fstat), so the file checked is the file read. Never reads the content. */
#ifndef DG_CRYPTO_KEYFILE_H
#define DG_CRYPTO_KEYFILE_H

#include <stdbool.h>
#include <stddef.h>

#include "common/status.h"

/* True when a file of this st_mode may hold a secret: not readable or writable by others, not
 * writable by its group (0600, 0400, 0640 and 0440 pass; 0644, 0620, 0602 do not). */
bool keyfile_mode_ok(unsigned mode);

/* Check the file open on fd. ST_OK; ST_INVALID when it is not a regular file; ST_FORBIDDEN
 * when its mode breaks the rule; ST_IO when fstat fails. err gets one line starting
 * "<what> <path>: " that names the fix (chmod 600; Kubernetes defaultMode 0400 or 0440),
 * never file content. */
NODISCARD enum status keyfile_check_fd(int fd, const char *what, const char *path, char *err,
                                       size_t err_len);

/* Open path read-only (O_CLOEXEC, following symlinks) and keyfile_check_fd it. On ST_OK *fd_out
 * is the descriptor (the caller closes it), else -1; ST_IO when it cannot be opened. */
NODISCARD enum status keyfile_open(int *fd_out, const char *what, const char *path, char *err,
                                   size_t err_len);

#endif
