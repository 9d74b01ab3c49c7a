/* SPDX-License-Identifier: Apache-2.0 */
/* crypto/keyfile.c -- the permission rule for secret key files, applied to an open descriptor.
 * Never reads a file's content; messages name the path and mode only. */
#include "crypto/keyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

__attribute__((format(printf, 3, 4))) static void
set_err(char *err, size_t err_len, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || err_len == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

bool
keyfile_mode_ok(unsigned mode)
{
    return (mode & (S_IROTH | S_IWOTH | S_IWGRP)) == 0;
}

enum status
keyfile_check_fd(int fd, const char *what, const char *path, char *err, size_t err_len)
{
    struct stat sb;

    if (fstat(fd, &sb) != 0) {
        set_err(err, err_len, "%s %s: %s", what, path, strerror(errno));
        return ST_IO;
    }
    if (!S_ISREG(sb.st_mode)) {
        set_err(err, err_len, "%s %s: not a regular file", what, path);
        return ST_INVALID;
    }
    if (!keyfile_mode_ok((unsigned)sb.st_mode)) {
        set_err(err, err_len,
                "%s %s: mode %04o is too open (refused: no access for others, no "
                "group write; use chmod 600, or defaultMode 0400 or 0440 for a Kubernetes "
                "secret volume)",
                what, path, (unsigned)(sb.st_mode & 07777));
        return ST_FORBIDDEN;
    }
    return ST_OK;
}

enum status
keyfile_open(int *fd_out, const char *what, const char *path, char *err, size_t err_len)
{
    /* O_NONBLOCK: a FIFO planted at the path must not hang the open; it fails the check. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    enum status st = ST_IO;

    *fd_out = -1;
    if (fd < 0) {
        set_err(err, err_len, "%s %s: %s", what, path, strerror(errno));
        goto out;
    }
    if ((st = keyfile_check_fd(fd, what, path, err, err_len)) != ST_OK)
        goto out;
    *fd_out = fd;
    fd = -1;
out:
    if (fd >= 0)
        close(fd);
    return st;
}
