/* SPDX-License-Identifier: Apache-2.0 */
/* server/datalock.c -- the exclusive lock on a database (see datalock.h): flock on
 * "<database>.lock", whose content names the holder (command and pid) for error messages. */
#include "server/datalock.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "common/xmem.h"
#include "store/store.h"

#define HOLDER_MAX 64

struct datalock {
    int fd;
};

/* The canonical name of the lock file of db: symlinks and relative paths resolved, so every
 * way of naming the database locks the same file. ST_NOT_FOUND when db's directory is missing. */
static enum status
lock_path(char out[static PATH_MAX], const char *db)
{
    char real[PATH_MAX], dir[PATH_MAX];
    const char *slash = strrchr(db, '/');
    int n;

    if (realpath(db, real) != NULL) {
        n = snprintf(out, PATH_MAX, "%s.lock", real);
        return n > 0 && n < PATH_MAX ? ST_OK : ST_INVALID;
    }
    if (errno != ENOENT)
        return ST_IO;
    /* The database does not exist yet: lock beside where it will be created. */
    if (slash == NULL)
        n = snprintf(dir, sizeof dir, "%s", ".");
    else
        n = snprintf(dir, sizeof dir, "%.*s", slash == db ? 1 : (int)(slash - db), db);
    if (n <= 0 || n >= (int)sizeof dir)
        return ST_INVALID;
    if (realpath(dir, real) == NULL)
        return errno == ENOENT ? ST_NOT_FOUND : ST_IO;
    n = snprintf(out, PATH_MAX, "%s/%s.lock", strcmp(real, "/") == 0 ? "" : real,
                 slash == NULL ? db : slash + 1);
    return n > 0 && n < PATH_MAX ? ST_OK : ST_INVALID;
}

/* What the lock file says about its holder, reduced to safe characters ("serve pid 123"). */
static void
holder_of(int fd, char out[static HOLDER_MAX])
{
    char buf[HOLDER_MAX];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    size_t j = 0;

    for (ssize_t i = 0; i < n && buf[i] != '\n'; i++) {
        char c = buf[i];
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == ' ')
            out[j++] = c;
    }
    out[j] = '\0';
    if (j == 0)
        snprintf(out, HOLDER_MAX, "%s", "another process");
}

static void
holder_write(int fd, const char *holder)
{
    char buf[HOLDER_MAX];
    int n = snprintf(buf, sizeof buf, "%s pid %ld\n", holder, (long)getpid());

    /* Informational only: a failure here does not weaken the lock itself. */
    if (n > 0 && n < (int)sizeof buf && ftruncate(fd, 0) == 0 &&
        pwrite(fd, buf, (size_t)n, 0) != n && ftruncate(fd, 0) != 0)
        return;
}

enum status
datalock_acquire(struct datalock **out, const char *database_url, const char *holder, char *err,
                 size_t err_len)
{
    char db[PATH_MAX], path[PATH_MAX], who[HOLDER_MAX];
    enum status st;
    int fd = -1, rc;

    *out = NULL;
    /* Not a SQLite file: nothing to lock here (store_open reports a URL it cannot use). */
    if (store_file_path(database_url, db, sizeof db) != ST_OK)
        return ST_OK;
    if ((st = lock_path(path, db)) != ST_OK) {
        if (st != ST_NOT_FOUND)
            snprintf(err, err_len, "cannot lock database %s: %s", db,
                     st == ST_IO ? strerror(errno) : "path too long");
        return st == ST_NOT_FOUND ? ST_OK : st;
    }
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
    if (fd < 0) {
        snprintf(err, err_len, "cannot open lock file %s: %s", path, strerror(errno));
        return ST_IO;
    }
    while ((rc = flock(fd, LOCK_EX | LOCK_NB)) != 0 && errno == EINTR)
        ;
    if (rc != 0) {
        st = errno == EWOULDBLOCK ? ST_CONFLICT : ST_IO;
        if (st == ST_CONFLICT) {
            holder_of(fd, who);
            snprintf(err, err_len, "database %s is in use by difyguard %s", db, who);
        } else {
            snprintf(err, err_len, "cannot lock %s: %s", path, strerror(errno));
        }
        close(fd);
        return st;
    }
    holder_write(fd, holder);
    *out = xcalloc(1, sizeof **out);
    (*out)->fd = fd;
    return ST_OK;
}

void
datalock_release(struct datalock *l)
{
    if (l == NULL)
        return;
    close(l->fd); /* drops the flock */
    free(l);
}
