/* SPDX-License-Identifier: Apache-2.0 */
/* crypto/rootkey.c -- the root key file (create once, load with permission checks), its id,
 * and XChaCha20-Poly1305 wrapping of the keys below it. Root key bytes never leave this file. */
#include "crypto/rootkey.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "common/xmem.h"
#include "crypto/aead.h"
#include "crypto/b64.h"
#include "crypto/keyfile.h"

#define WRAP_FORMAT_V1 0x01
#define WRAP_NONCE_BYTES 24
#define ID_LABEL "difyguard/v1/root-key-id"
/* File: base64 of 32 bytes (44 chars) and an optional newline; anything longer is not ours. */
#define FILE_MAX_BYTES 64

struct rootkey {
    struct secret *key;
    char id[ROOTKEY_ID_CHARS + 1];
};

__attribute__((format(printf, 3, 4))) static void
set_err(char *err, size_t err_len, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || err_len == 0)
        return;
    va_start(ap, fmt);
    /* NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): a false positive, see va_start */
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

/* Takes ownership of key (32 bytes) and computes the id: a keyed BLAKE2b, so the id reveals
 * nothing of the key yet is stable for it. */
static struct rootkey *
rootkey_adopt(struct secret *key)
{
    struct rootkey *rk = xcalloc(1, sizeof *rk);
    uint8_t digest[32];

    rk->key = key;
    crypto_generichash(digest, sizeof digest, (const uint8_t *)ID_LABEL, strlen(ID_LABEL),
                       secret_ro(key), ROOTKEY_BYTES);
    sodium_bin2hex(rk->id, sizeof rk->id, digest, ROOTKEY_ID_CHARS / 2);
    return rk;
}

struct rootkey *
rootkey_from_bytes(const uint8_t key[static ROOTKEY_BYTES])
{
    struct secret *s = secret_new(ROOTKEY_BYTES);

    memcpy(secret_rw(s), key, ROOTKEY_BYTES);
    return rootkey_adopt(s);
}

void
rootkey_free(struct rootkey *rk)
{
    if (rk == NULL)
        return;
    secret_free(rk->key);
    free(rk);
}

const char *
rootkey_id(const struct rootkey *rk)
{
    return rk->id;
}

static int
write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* fsync the directory holding path so the new name itself is durable. */
static int
fsync_parent(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir =
        slash == NULL ? xstrdup(".") : xstrndup(path, slash == path ? 1 : (size_t)(slash - path));
    int fd, rc = -1;

    if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
        rc = fsync(fd);
        close(fd);
    }
    free(dir);
    return rc;
}

enum status
rootkey_create(const char *path, char *err, size_t err_len)
{
    struct secret *key = NULL, *text = NULL;
    enum status st = ST_IO;
    bool created = false;
    int fd, rc, e;

    set_err(err, err_len, "%s", "");
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
    if (fd < 0) {
        e = errno;
        st = e == EEXIST ? ST_CONFLICT : ST_IO;
        set_err(err, err_len, "root key file %s: %s%s", path, strerror(e),
                e == EEXIST ? " (an existing root key is never overwritten)" : "");
        goto out;
    }
    created = true;
    key = secret_new(ROOTKEY_BYTES);
    text = secret_new(FILE_MAX_BYTES);
    char *t = (char *)secret_rw(text);
    randombytes_buf(secret_rw(key), ROOTKEY_BYTES);
    size_t n = b64_std_encode(t, FILE_MAX_BYTES, secret_ro(key), ROOTKEY_BYTES);
    t[n++] = '\n';
    if (write_all(fd, (const uint8_t *)t, n) != 0 || fsync(fd) != 0) {
        set_err(err, err_len, "root key file %s: write: %s", path, strerror(errno));
        goto out;
    }
    rc = close(fd);
    fd = -1;
    if (rc != 0 || fsync_parent(path) != 0) {
        set_err(err, err_len, "root key file %s: close or fsync: %s", path, strerror(errno));
        goto out;
    }
    st = ST_OK;
out:
    if (fd >= 0)
        close(fd);
    if (st != ST_OK && created)
        unlink(path); /* ours (O_EXCL) and not durable: let a retry start over */
    secret_free(text);
    secret_free(key);
    return st;
}

/* Read at most FILE_MAX_BYTES into buf; more than that is not a root key file. */
static enum status
read_small(int fd, uint8_t *buf, size_t *len)
{
    *len = 0;
    for (;;) {
        ssize_t r = read(fd, buf + *len, FILE_MAX_BYTES - *len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return ST_IO;
        if (r == 0)
            return ST_OK;
        *len += (size_t)r;
        if (*len == FILE_MAX_BYTES)
            return ST_INVALID;
    }
}

enum status
rootkey_load(struct rootkey **out, const char *path, char *err, size_t err_len)
{
    struct secret *text = secret_new(FILE_MAX_BYTES);
    struct secret *key = secret_new(ROOTKEY_BYTES);
    size_t len = 0, n = 0;
    enum status st;
    int fd = -1;

    *out = NULL;
    set_err(err, err_len, "%s", "");
    if ((st = keyfile_open(&fd, "root key file", path, err, err_len)) != ST_OK)
        goto out;
    if ((st = read_small(fd, secret_rw(text), &len)) != ST_OK) {
        set_err(err, err_len, "root key file %s: %s", path,
                st == ST_IO ? strerror(errno) : "too large for a root key");
        goto out;
    }
    const char *t = (const char *)secret_ro(text);
    if (len > 0 && t[len - 1] == '\n')
        len--;
    if (b64_std_decode(secret_rw(key), ROOTKEY_BYTES, &n, t, len) != ST_OK || n != ROOTKEY_BYTES) {
        st = ST_INVALID;
        set_err(err, err_len, "root key file %s: not the base64 of %d bytes", path, ROOTKEY_BYTES);
        goto out;
    }
    *out = rootkey_adopt(key);
    key = NULL;
out:
    if (fd >= 0)
        close(fd);
    secret_free(key);
    secret_free(text);
    return st;
}

enum status
rootkey_wrap(const struct rootkey *rk, uint8_t *out, size_t out_cap, size_t *out_len,
             const uint8_t *key, size_t key_len, const uint8_t *aad, size_t aad_len)
{
    enum status st;

    *out_len = 0;
    if (out_cap < key_len + ROOTKEY_WRAP_OVERHEAD || key_len > SIZE_MAX - ROOTKEY_WRAP_OVERHEAD) {
        fprintf(stderr, "difyguard: rootkey_wrap: output buffer too small\n");
        abort();
    }
    out[0] = WRAP_FORMAT_V1;
    randombytes_buf(out + 1, WRAP_NONCE_BYTES);
    st = aead_seal(AEAD_XCHACHA20POLY1305, out + 1 + WRAP_NONCE_BYTES,
                   out + 1 + WRAP_NONCE_BYTES + key_len, secret_ro(rk->key), ROOTKEY_BYTES, out + 1,
                   WRAP_NONCE_BYTES, aad, aad_len, key, key_len);
    if (st == ST_OK)
        *out_len = key_len + ROOTKEY_WRAP_OVERHEAD;
    else
        sodium_memzero(out, key_len + ROOTKEY_WRAP_OVERHEAD);
    return st;
}

enum status
rootkey_unwrap(const struct rootkey *rk, struct secret **out, const uint8_t *wrapped,
               size_t wrapped_len, const uint8_t *aad, size_t aad_len)
{
    struct secret *s = NULL;
    enum status st = ST_INVALID;

    *out = NULL;
    if (wrapped_len < ROOTKEY_WRAP_OVERHEAD || wrapped[0] != WRAP_FORMAT_V1)
        goto out;
    size_t n = wrapped_len - ROOTKEY_WRAP_OVERHEAD;
    s = secret_new(n);
    /* Any failure reads ST_AUTH: wrong root key, AAD or bytes are not told apart. */
    st = aead_open(AEAD_XCHACHA20POLY1305, secret_rw(s), secret_ro(rk->key), ROOTKEY_BYTES,
                   wrapped + 1, WRAP_NONCE_BYTES, aad, aad_len, wrapped + 1 + WRAP_NONCE_BYTES, n,
                   wrapped + 1 + WRAP_NONCE_BYTES + n);
    if (st != ST_OK)
        goto out;
    *out = s;
    s = NULL;
out:
    secret_free(s);
    return st;
}
