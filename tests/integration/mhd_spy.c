/* SPDX-License-Identifier: Apache-2.0 */
/* tests/integration/mhd_spy.c -- an LD_PRELOAD shim for test_secret_bodies.py, never linked into
 * difyguard. For each libmicrohttpd buffer response whose body holds an API key's text
 * ("key":"dgk_...), it appends one line to the file named by $DG_MHD_SPY: "secret" when the
 * response was made with a free callback and its closure (http.c's secret-body path, which wipes
 * the buffer before freeing it), "plain" when made with plain free. It never copies the body. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem, RTLD_NEXT (the build defines it too) */
#endif
#include <dlfcn.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <microhttpd.h>

typedef struct MHD_Response *(*with_cls_fn)(size_t, void *, MHD_ContentReaderFreeCallback, void *);
typedef struct MHD_Response *(*plain_fn)(size_t, void *, MHD_ContentReaderFreeCallback);

/* libmicrohttpd 0.9.75 implements the _cls variant by calling the plain one: that inner call is
 * part of the secret path, not a second response. */
static _Thread_local int in_cls;

static void
note(const void *buf, size_t size, const char *line)
{
    static const char marker[] = "\"key\":\"dgk_";
    const char *path = getenv("DG_MHD_SPY");
    int fd;

    if (path == NULL || buf == NULL || memmem(buf, size, marker, sizeof marker - 1) == NULL)
        return;
    if ((fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600)) < 0)
        return;
    if (write(fd, line, strlen(line)) < 0) {
        /* nothing to do: the test sees a missing line */
    }
    close(fd);
}

struct MHD_Response *
MHD_create_response_from_buffer_with_free_callback_cls(size_t size, void *buffer,
                                                       MHD_ContentReaderFreeCallback crfc,
                                                       void *crfc_cls)
{
    with_cls_fn real =
        (with_cls_fn)dlsym(RTLD_NEXT, "MHD_create_response_from_buffer_with_free_callback_cls");
    struct MHD_Response *r;

    note(buffer, size, "secret\n");
    in_cls++;
    r = real(size, buffer, crfc, crfc_cls);
    in_cls--;
    return r;
}

struct MHD_Response *
MHD_create_response_from_buffer_with_free_callback(size_t size, void *buffer,
                                                   MHD_ContentReaderFreeCallback crfc)
{
    plain_fn real =
        (plain_fn)dlsym(RTLD_NEXT, "MHD_create_response_from_buffer_with_free_callback");
    if (in_cls == 0)
        note(buffer, size, "plain\n");
    return real(size, buffer, crfc);
}
