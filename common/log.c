/* SPDX-License-Identifier: Apache-2.0 */
/* common/log.c -- JSON lines on stdout (or log_set_fd's fd), built in an 8 KiB stack buffer
 * and written with one write(2).
 * Hot path: no heap allocation. Escapes everything it is given; it cannot tell a secret from an
 * id, so callers must never pass one (STYLE rule 22). */
#include "common/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 8192 /* longest line, newline included; longer values are cut */
#define LOG_TAIL ",\"truncated\":true}\n"
#define LOG_NUMBER_MAX 64 /* longest text emitted as a raw JSON number */

static atomic_int log_min = LOG_INFO;
static atomic_int log_fd = STDOUT_FILENO;
/* Held only around write(2): a line longer than PIPE_BUF, or a short write, must still not
 * interleave with another thread's line. */
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = {
    [LOG_DEBUG] = "debug",
    [LOG_INFO] = "info",
    [LOG_WARN] = "warn",
    [LOG_ERROR] = "error",
};

/* The line being built. `lim` keeps room for LOG_TAIL, so a cut line still closes cleanly. */
struct line {
    char p[LOG_LINE_MAX];
    size_t len;
    size_t lim;
    bool cut;
};

bool
log_enabled(enum log_level lvl)
{
    return (int)lvl >= atomic_load_explicit(&log_min, memory_order_relaxed);
}

void
log_set_fd(int fd)
{
    atomic_store(&log_fd, fd);
}

void
log_set_level(enum log_level lvl)
{
    if (lvl < LOG_DEBUG)
        lvl = LOG_DEBUG;
    if (lvl > LOG_ERROR)
        lvl = LOG_ERROR;
    atomic_store_explicit(&log_min, (int)lvl, memory_order_relaxed);
}

int
log_level_parse(const char *s)
{
    if (s == NULL)
        return -1;
    for (int i = LOG_DEBUG; i <= LOG_ERROR; i++) {
        if (strcasecmp(s, level_names[i]) == 0)
            return i;
    }
    return strcasecmp(s, "warning") == 0 ? LOG_WARN : -1;
}

static bool
line_add(struct line *l, const char *s, size_t n)
{
    if (l->lim - l->len < n)
        return false;
    memcpy(l->p + l->len, s, n);
    l->len += n;
    return true;
}

/* Length of the well-formed UTF-8 sequence at s (RFC 3629: no overlongs, no surrogates,
 * nothing above U+10FFFF), or 0. s is NUL-terminated, and NUL is never a continuation byte,
 * so this never reads past the end. */
static size_t
utf8_seq(const unsigned char *s)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xbf;
    size_t n;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4;
    else
        return 0;
    if (c == 0xe0)
        lo = 0xa0;
    else if (c == 0xed)
        hi = 0x9f;
    else if (c == 0xf0)
        lo = 0x90;
    else if (c == 0xf4)
        hi = 0x8f;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++) {
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    }
    return n;
}

/* Append s as a JSON string. When the line is full, stop at a character boundary, close the
 * quote and mark the line cut (the room for the quote is kept back). Returns false if cut. */
static bool
line_str(struct line *l, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    size_t lim = l->lim;

    if (lim - l->len < 2)
        return false;
    l->lim = lim - 1; /* the closing quote always fits */
    l->p[l->len++] = '"';
    while (*u != '\0') {
        char esc[6] = {'\\', 0, 0, 0, 0, 0};
        size_t n = utf8_seq(u), outn = 2;

        if (n == 0) { /* invalid byte: U+FFFD, resync on the next byte */
            memcpy(esc, "\\ufffd", 6);
            outn = 6;
            n = 1;
        } else if (*u == '"' || *u == '\\') {
            esc[1] = (char)*u;
        } else if (*u == '\n' || *u == '\r' || *u == '\t') {
            esc[1] = *u == '\n' ? 'n' : *u == '\r' ? 'r' : 't';
        } else if (*u < 0x20 || *u == 0x7f) {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[*u >> 4];
            esc[5] = hex[*u & 0xf];
            outn = 6;
        } else {
            outn = 0; /* copied as is */
        }
        if (!(outn ? line_add(l, esc, outn) : line_add(l, (const char *)u, n))) {
            l->cut = true;
            break;
        }
        u += n;
    }
    l->lim = lim;
    l->p[l->len++] = '"';
    return !l->cut;
}

/* JSON number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool
is_json_number(const char *s)
{
    const char *p = s;

    if (*p == '-')
        p++;
    if (*p == '0')
        p++;
    else if (*p >= '1' && *p <= '9')
        p += strspn(p, "0123456789");
    else
        return false;
    if (*p == '.') {
        size_t d = strspn(++p, "0123456789");
        if (d == 0)
            return false;
        p += d;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        size_t d = strspn(p, "0123456789");
        if (d == 0)
            return false;
        p += d;
    }
    return *p == '\0' && (size_t)(p - s) <= LOG_NUMBER_MAX;
}

/* ,"key":value -- a field that cannot fit at all is dropped; a string value is cut short. */
static void
line_field(struct line *l, const char *key, const char *val)
{
    size_t mark = l->len;
    bool raw = key[0] == '#';

    if (val != NULL && val[0] == '\0')
        return; /* empty fields are left out (issue 14): absent means "none" */
    if (line_add(l, ",", 1) && line_str(l, raw ? key + 1 : key) && line_add(l, ":", 1)) {
        if (val != NULL && !(raw && is_json_number(val))) {
            line_str(l, val); /* keeps what fits and marks the line cut */
            return;
        }
        if (val == NULL ? line_add(l, "null", 4) : line_add(l, val, strlen(val)))
            return;
    }
    l->len = mark;
    l->cut = true;
}

static void
line_start(struct line *l, enum log_level lvl, const char *msg)
{
    struct timespec ts;
    struct tm tm;
    char stamp[48];

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(stamp + n, sizeof stamp - n, ".%03dZ", (int)(ts.tv_nsec / 1000000));
    l->len = 0;
    l->lim = sizeof l->p - (sizeof LOG_TAIL - 1);
    l->cut = false;
    line_add(l, "{\"ts\":\"", 7);
    line_add(l, stamp, strlen(stamp));
    line_add(l, "\",\"level\":\"", 11);
    line_add(l, level_names[lvl], strlen(level_names[lvl]));
    line_add(l, "\",\"msg\":", 8);
    line_str(l, msg ? msg : "");
}

/* ---- the bounded buffer (serve): a stalled stdout never blocks a request thread --------------
 * Lines are copied into a ring under ring_mu and written by one thread; when the ring is full
 * the line is dropped and counted (log_dropped), and a log_lines_dropped line says so later. */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t more, drained;
    char *p;
    size_t cap, head, len; /* bytes [head, head + len) mod cap are queued */
    bool on, writing;
    atomic_ullong dropped;
    atomic_ullong reported;
    pthread_t thread;
} ring = {.mu = PTHREAD_MUTEX_INITIALIZER,
          .more = PTHREAD_COND_INITIALIZER,
          .drained = PTHREAD_COND_INITIALIZER};

static void
fd_write_all(const char *p, size_t n)
{
    size_t off = 0;
    while (off < n) {
        ssize_t w = write(atomic_load(&log_fd), p + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break; /* stdout is gone: nowhere left to say so */
        off += (size_t)w;
    }
}

static void *
ring_writer(void *arg)
{
    static char chunk[1 << 16];
    (void)arg;
    pthread_mutex_lock(&ring.mu);
    for (;;) {
        while (ring.len == 0)
            pthread_cond_wait(&ring.more, &ring.mu);
        size_t n = ring.len < sizeof chunk ? ring.len : sizeof chunk;
        size_t first = ring.cap - ring.head < n ? ring.cap - ring.head : n;
        memcpy(chunk, ring.p + ring.head, first);
        memcpy(chunk + first, ring.p, n - first);
        ring.writing = true;
        pthread_mutex_unlock(&ring.mu);
        fd_write_all(chunk, n); /* may block: only this thread waits */
        pthread_mutex_lock(&ring.mu);
        ring.head = (ring.head + n) % ring.cap;
        ring.len -= n;
        ring.writing = false;
        if (ring.len == 0)
            pthread_cond_broadcast(&ring.drained);
    }
    return NULL;
}

/* Queue whole lines only; false when the ring has no room (the caller counts the drop). */
static bool
ring_put(const char *p, size_t n)
{
    pthread_mutex_lock(&ring.mu);
    bool ok = ring.cap - ring.len >= n;
    if (ok) {
        size_t tail = (ring.head + ring.len) % ring.cap;
        size_t first = ring.cap - tail < n ? ring.cap - tail : n;
        memcpy(ring.p + tail, p, first);
        memcpy(ring.p, p + first, n - first);
        ring.len += n;
        pthread_cond_signal(&ring.more);
    }
    pthread_mutex_unlock(&ring.mu);
    return ok;
}

bool
log_set_buffered(size_t bytes)
{
    static char *mem;
    if (ring.on || bytes < LOG_LINE_MAX * 2 || (mem = calloc(1, bytes)) == NULL)
        return ring.on;
    ring.p = mem;
    ring.cap = bytes;
    if (pthread_create(&ring.thread, NULL, ring_writer, NULL) != 0)
        return false;
    pthread_detach(ring.thread);
    ring.on = true;
    return true;
}

unsigned long long
log_dropped(void)
{
    return atomic_load(&ring.dropped);
}

void
log_flush(int timeout_ms)
{
    struct timespec dl;
    if (!ring.on)
        return;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += timeout_ms / 1000;
    dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&ring.mu);
    while (ring.len > 0 && pthread_cond_timedwait(&ring.drained, &ring.mu, &dl) == 0)
        ;
    pthread_mutex_unlock(&ring.mu);
}

static void
line_write(const struct line *l)
{
    size_t off = 0;

    if (ring.on) {
        if (!ring_put(l->p, l->len))
            atomic_fetch_add(&ring.dropped, 1);
        return;
    }
    pthread_mutex_lock(&log_mu);
    while (off < l->len) {
        ssize_t w = write(atomic_load(&log_fd), l->p + off, l->len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break; /* stdout is gone: nowhere left to say so */
        off += (size_t)w;
    }
    pthread_mutex_unlock(&log_mu);
}

void
log_msg(enum log_level lvl, const char *msg, ...)
{
    struct line l;
    va_list ap;
    const char *key;
    int saved = errno; /* callers log, then report errno */

    if ((unsigned)lvl > LOG_ERROR ||
        (int)lvl < atomic_load_explicit(&log_min, memory_order_relaxed))
        return;
    line_start(&l, lvl, msg);
    va_start(ap, msg);
    while (!l.cut && (key = va_arg(ap, const char *)) != NULL) {
        const char *val = va_arg(ap, const char *);
        line_field(&l, key, val);
    }
    va_end(ap);
    l.lim = sizeof l.p; /* release the room kept for the tail */
    if (l.cut)
        line_add(&l, LOG_TAIL, sizeof LOG_TAIL - 1);
    else
        line_add(&l, "}\n", 2);
    line_write(&l);
    /* Say once the ring has room again that lines were dropped (and how many in all). */
    unsigned long long d = ring.on ? atomic_load(&ring.dropped) : 0;
    if (d != 0 && atomic_exchange(&ring.reported, d) != d &&
        strcmp(msg, "log_lines_dropped") != 0) {
        char n[32];
        snprintf(n, sizeof n, "%llu", d);
        log_msg(LOG_WARN, "log_lines_dropped", "#dropped_total", n, "detail",
                "log lines were dropped: the log output (stdout) was not read fast enough",
                LOG_END);
    }
    errno = saved;
}
