/* SPDX-License-Identifier: Apache-2.0 */
/* server/certs_probe.c -- the TLS endpoint probe of the certificate inventory: connect with a
 * timeout, handshake (any version and cipher: the probe observes what a server presents, it does
 * not trust it, so an expired or self-signed certificate is still seen), and hand back the chain
 * as PEM. Every wait is bounded by the timeout; nothing is sent after the handshake. Runs on the
 * inventory's prober thread, never on a request. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "common/clock.h"
#include "common/xmem.h"
#include "server/certs_priv.h"

/* "host:port" or "[v6]:port" into its parts. */
static bool
split_target(const char *t, char host[static 256], char port[static 8])
{
    const char *colon;

    if (t[0] == '[') {
        const char *end = strchr(t, ']');
        if (end == NULL || end[1] != ':' || end - t - 1 <= 0 || end - t - 1 >= 256)
            return false;
        snprintf(host, 256, "%.*s", (int)(end - t - 1), t + 1);
        colon = end + 1;
    } else {
        colon = strrchr(t, ':');
        if (colon == NULL || colon == t || colon - t >= 256)
            return false;
        snprintf(host, 256, "%.*s", (int)(colon - t), t);
    }
    size_t n = strlen(colon + 1);
    if (n == 0 || n > 5 || strspn(colon + 1, "0123456789") != n)
        return false;
    long p = strtol(colon + 1, NULL, 10);
    if (p < 1 || p > 65535)
        return false;
    snprintf(port, 8, "%ld", p);
    return true;
}

static int
ms_left(int64_t deadline_ms)
{
    int64_t left = deadline_ms - clock_now_ms();
    return left <= 0 ? 0 : left > 60000 ? 60000 : (int)left;
}

/* Wait for fd to be ready (POLLIN/POLLOUT) until the deadline: 1 ready, 0 timed out. */
static int
wait_fd(int fd, short events, int64_t deadline_ms)
{
    struct pollfd p = {.fd = fd, .events = events};
    int rc;

    do {
        rc = poll(&p, 1, ms_left(deadline_ms));
    } while (rc < 0 && errno == EINTR);
    return rc > 0 ? 1 : 0;
}

/* A non-blocking connect to one address, finished within the deadline: the fd, or -1. */
static int
connect_one(const struct addrinfo *ai, int64_t deadline_ms, char *err, size_t err_len)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int soerr = 0;
    socklen_t sl = sizeof soerr;

    if (fd < 0) {
        snprintf(err, err_len, "socket: %s", strerror(errno));
        return -1;
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
        snprintf(err, err_len, "connect: %s", strerror(errno));
        goto fail;
    }
    if (!wait_fd(fd, POLLOUT, deadline_ms)) {
        snprintf(err, err_len, "connect: timed out");
        goto fail;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0) {
        snprintf(err, err_len, "connect: %s", strerror(soerr != 0 ? soerr : errno));
        goto fail;
    }
    return fd;
fail:
    close(fd);
    return -1;
}

static int
connect_target(const char *host, const char *port, int64_t deadline_ms, char *err, size_t err_len)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV}, *res = NULL;
    int fd = -1, rc = getaddrinfo(host, port, &hints, &res);

    if (rc != 0) {
        snprintf(err, err_len, "cannot resolve %s: %s", host, gai_strerror(rc));
        return -1;
    }
    for (const struct addrinfo *ai = res; ai != NULL && fd < 0 && ms_left(deadline_ms) > 0;
         ai = ai->ai_next)
        fd = connect_one(ai, deadline_ms, err, err_len);
    if (fd < 0 && ms_left(deadline_ms) == 0)
        snprintf(err, err_len, "connect: timed out");
    freeaddrinfo(res);
    return fd;
}

static bool
is_ip(const char *host)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

/* Handshake on the connected fd until the deadline. */
static bool
handshake(SSL *ssl, int fd, int64_t deadline_ms, char *err, size_t err_len)
{
    for (;;) {
        int rc = SSL_connect(ssl);
        if (rc == 1)
            return true;
        int e = SSL_get_error(ssl, rc);
        short ev = e == SSL_ERROR_WANT_READ ? POLLIN : e == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
        if (ev == 0) {
            unsigned long code = ERR_peek_last_error();
            char why[160] = "the connection closed";
            if (code != 0)
                ERR_error_string_n(code, why, sizeof why);
            snprintf(err, err_len, "TLS handshake failed: %s", why);
            return false;
        }
        if (!wait_fd(fd, ev, deadline_ms)) {
            snprintf(err, err_len, "TLS handshake: timed out");
            return false;
        }
    }
}

/* The peer's chain (leaf first) as PEM text. */
static char *
chain_pem(SSL *ssl, size_t *len)
{
    STACK_OF(X509) *chain = SSL_get_peer_cert_chain(ssl);
    BIO *b = BIO_new(BIO_s_mem());
    char *out = NULL, *data = NULL;

    *len = 0;
    for (int i = 0; b != NULL && chain != NULL && i < sk_X509_num(chain); i++)
        (void)PEM_write_bio_X509(b, sk_X509_value(chain, i));
    long n = b != NULL ? BIO_get_mem_data(b, &data) : 0;
    if (n > 0) {
        out = xstrndup(data, (size_t)n);
        *len = (size_t)n;
    }
    BIO_free(b);
    return out;
}

static SSL_CTX *
probe_ctx(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

    if (ctx == NULL)
        return NULL;
    /* Observe whatever a server offers, however weak: nothing is trusted or sent. */
    SSL_CTX_set_security_level(ctx, 0);
    (void)SSL_CTX_set_min_proto_version(ctx, 0);
    (void)SSL_CTX_set_cipher_list(ctx, "ALL:@SECLEVEL=0");
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    return ctx;
}

enum status
certs_probe(const char *target, const char *sni, int64_t timeout_s, char **pem, size_t *len,
            char *err, size_t err_len)
{
    char host[256], port[8];
    int64_t deadline = clock_now_ms() + (timeout_s > 0 ? timeout_s : 5) * 1000;
    SSL_CTX *ctx = NULL;
    SSL *ssl = NULL;
    int fd = -1;
    enum status st = ST_UNAVAILABLE;

    *pem = NULL;
    *len = 0;
    if (!split_target(target, host, port)) {
        snprintf(err, err_len, "not host:port");
        return ST_INVALID;
    }
    if ((fd = connect_target(host, port, deadline, err, err_len)) < 0)
        goto out;
    if ((ctx = probe_ctx()) == NULL || (ssl = SSL_new(ctx)) == NULL || SSL_set_fd(ssl, fd) != 1) {
        snprintf(err, err_len, "cannot set up TLS");
        st = ST_INTERNAL;
        goto out;
    }
    const char *name = sni != NULL && sni[0] != '\0' ? sni : is_ip(host) ? NULL : host;
    if (name != NULL && SSL_set_tlsext_host_name(ssl, name) != 1) {
        snprintf(err, err_len, "cannot set the server name");
        goto out;
    }
    if (!handshake(ssl, fd, deadline, err, err_len))
        goto out;
    if ((*pem = chain_pem(ssl, len)) == NULL) {
        snprintf(err, err_len, "the server presented no certificate");
        goto out;
    }
    st = ST_OK;
out:
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    if (fd >= 0)
        close(fd);
    ERR_clear_error();
    return st;
}
