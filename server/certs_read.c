/* SPDX-License-Identifier: Apache-2.0 */
/* server/certs_read.c -- reading a certificate source: a PEM or DER file (a bundle: every
 * certificate), a Kubernetes-style secret directory (tls.crt and ca.crt, the ca.crt anchoring
 * the tls.crt of its directory; subdirectories when recursive, never ".*" ones such as the
 * "..data" links of a secret mount), or uploaded PEM; and the judgement of one certificate
 * (status, renewal-due time, weak reasons). Never reads more than CERT_INPUT_MAX of a file. */
#include <dirent.h>
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/text.h"
#include "common/xmem.h"
#include "server/certs_priv.h"

#define DAY 86400
#define LEAF_MAX_VALIDITY (398 * DAY)

void
certs__say(char *dst, size_t cap, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    (void)text_copy_safe(dst, cap, buf);
}

void
cert_read_free(struct cert_read *r)
{
    free(r->v);
    memset(r, 0, sizeof *r);
}

/* --- judging one certificate --- */

static int64_t
renewal_due(const struct cert_info *ci, int64_t renew_before)
{
    int64_t life = ci->not_after - ci->not_before;

    if (renew_before > 0) {
        int64_t due = ci->not_after - renew_before;
        return due > ci->not_before ? due : ci->not_before;
    }
    /* cert-manager's default: renew two thirds of the way through the lifetime. */
    return ci->not_before + (life > 0 ? life / 3 * 2 + (life % 3) * 2 / 3 : 0);
}

static uint32_t
weak_reasons(const struct cert_info *ci, bool leaf, bool expect_chain)
{
    bool root = !leaf && ci->is_ca && ci->self_signed;
    uint32_t w = 0;

    if ((strcmp(ci->key_type, "rsa") == 0 || strcmp(ci->key_type, "rsa-pss") == 0) &&
        ci->key_bits < 2048)
        w |= CERT_WEAK_RSA;
    if (strcmp(ci->key_type, "ec") == 0 && ci->key_bits < 256)
        w |= CERT_WEAK_EC;
    /* A trust anchor's self-signature is never checked by anyone: its hash does not matter. */
    if (!root && strcmp(ci->sig_hash, "sha1") == 0)
        w |= CERT_WEAK_SHA1;
    if (!root && strcmp(ci->sig_hash, "md5") == 0)
        w |= CERT_WEAK_MD5;
    if (leaf && ci->not_after - ci->not_before > LEAF_MAX_VALIDITY)
        w |= CERT_WEAK_VALIDITY;
    if (leaf && ci->n_sans == 0)
        w |= CERT_WEAK_NO_SAN;
    if (leaf && ci->self_signed && expect_chain)
        w |= CERT_WEAK_SELF_SIGNED;
    return w;
}

void
cert_judge(struct cert_judgement *out, const struct cert_info *ci, bool leaf,
           const struct cert_spec *s, const struct certs_settings *set, int64_t now)
{
    int64_t warning = s->warning > 0 ? s->warning : set->warning;
    int64_t critical = s->critical > 0 ? s->critical : set->critical;
    int64_t left = ci->not_after - now;

    memset(out, 0, sizeof *out);
    if (now < ci->not_before)
        out->status = CERT_NOT_YET_VALID;
    else if (left <= 0)
        out->status = CERT_EXPIRED;
    else if (left <= critical)
        out->status = CERT_CRITICAL;
    else if (left <= warning)
        out->status = CERT_WARNING;
    else
        out->status = CERT_OK;
    out->renewal_due = renewal_due(ci, s->renew_before);
    out->renewal_overdue = leaf && now >= out->renewal_due;
    out->weak = weak_reasons(ci, leaf, s->expect_chain);
}

/* --- reading --- */

static struct cert_entry *
entry_add(struct cert_read *r)
{
    r->v = xrealloc(r->v, (r->n + 1) * sizeof *r->v);
    struct cert_entry *e = &r->v[r->n++];
    memset(e, 0, sizeof *e);
    e->chain = -1;
    return e;
}

/* Taken by an entry before the last one (the last is the one being named). */
static bool
slot_taken(const struct cert_read *r, const char *slot)
{
    for (size_t i = 0; i + 1 < r->n; i++) {
        if (strcmp(r->v[i].slot, slot) == 0)
            return true;
    }
    return false;
}

/* "<prefix>leaf" for a leaf in first place, else "<prefix>#<subject>" (a CA keeps its subject
 * when it is reissued); "~2", "~3"... when the slot is taken already (cross-signed twins). */
static void
slot_of(char out[static STORE_CERT_SLOT_MAX], const struct cert_read *r, const char *prefix,
        const struct cert_info *ci, bool leaf)
{
    char base[STORE_CERT_SLOT_MAX - 8];

    if (leaf)
        certs__say(base, sizeof base, "%sleaf", prefix);
    else
        certs__say(base, sizeof base, "%s#%s", prefix, ci->subject);
    memcpy(out, base, sizeof base);
    for (int k = 2; slot_taken(r, out) && k < 1000; k++)
        certs__say(out, STORE_CERT_SLOT_MAX, "%s~%d", base, k);
}

enum status
certs_read_text(struct cert_read *r, const char *prefix, const uint8_t *text, size_t len,
                bool served, const struct cert_trust *trust, const struct cert_set *extra)
{
    struct cert_set *set = NULL;
    char err[CERTS_ERROR_MAX];
    enum status st = cert_set_parse(&set, text, len, err, sizeof err);

    if (st != ST_OK) {
        certs__say(r->error, sizeof r->error, "%s", err);
        return ST_INVALID;
    }
    for (size_t i = 0; i < cert_set_count(set); i++) {
        struct cert_entry *e = entry_add(r);
        e->has_cert = true;
        e->info = *cert_set_info(set, i);
        e->leaf = i == 0 && (served || !e->info.is_ca);
        slot_of(e->slot, r, prefix, &e->info, e->leaf);
        enum status v = cert_verify(set, i, trust, extra, e->chain_error, sizeof e->chain_error);
        e->chain = v == ST_OK ? 1 : v == ST_AUTH ? 0 : -1;
    }
    cert_set_free(set);
    return ST_OK;
}

/* The whole file (at most CERT_INPUT_MAX bytes) into a malloc'd buffer; NULL with err set. */
static uint8_t *
slurp(const char *path, size_t *len, char *err, size_t err_len)
{
    struct stat sb;
    uint8_t *buf = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);

    *len = 0;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        certs__say(err, err_len, "cannot read %s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(sb.st_mode)) {
        certs__say(err, err_len, "%s is not a regular file", path);
        goto out;
    }
    if (sb.st_size > (off_t)CERT_INPUT_MAX) {
        certs__say(err, err_len, "%s is larger than %u bytes", path, CERT_INPUT_MAX);
        goto out;
    }
    buf = xmalloc((size_t)sb.st_size + 1);
    ssize_t n = read(fd, buf, (size_t)sb.st_size);
    if (n < 0 || n != sb.st_size) {
        certs__say(err, err_len, "cannot read %s: %s", path,
                   n < 0 ? strerror(errno) : "short read");
        free(buf);
        buf = NULL;
        goto out;
    }
    *len = (size_t)n;
out:
    if (fd >= 0)
        close(fd);
    return buf;
}

uint8_t *
certs__slurp(const char *path, size_t *len)
{
    char err[CERTS_ERROR_MAX];
    return slurp(path, len, err, sizeof err);
}

static void
read_file(struct cert_read *r, const char *path, const struct cert_trust *trust)
{
    size_t len = 0;
    uint8_t *buf = slurp(path, &len, r->error, sizeof r->error);

    if (buf != NULL && certs_read_text(r, "", buf, len, false, trust, NULL) != ST_OK) {
        char why[CERTS_ERROR_MAX];
        memcpy(why, r->error, sizeof why);
        certs__say(r->error, sizeof r->error, "%s: %s", path, why);
    }
    free(buf);
}

/* A directory walk's state. */
struct walk {
    struct cert_read *r;
    const char *root;
    const struct cert_trust *trust;
    bool recursive;
    size_t files;
};

/* One file of a directory ("<rel>/tls.crt" or ca.crt): its certificates, or an error entry. */
static void
read_member(struct walk *w, const char *rel, const char *name, const struct cert_set *anchors)
{
    char path[4096], prefix[STORE_CERT_SLOT_MAX / 2], err[CERTS_ERROR_MAX];
    struct cert_read one = {0};
    size_t len = 0;

    if ((size_t)snprintf(path, sizeof path, "%s%s%s/%s", w->root, rel[0] ? "/" : "", rel, name) >=
        sizeof path)
        path[0] = '\0'; /* too long: reads as "cannot read" */
    certs__say(prefix, sizeof prefix, "%s%s%s|", rel, rel[0] ? "/" : "", name);
    uint8_t *buf = slurp(path, &len, err, sizeof err);
    /* tls.crt is what a server serves: its first certificate is the leaf. */
    if (buf != NULL && certs_read_text(&one, prefix, buf, len, strcmp(name, "tls.crt") == 0,
                                       w->trust, anchors) != ST_OK)
        certs__say(err, sizeof err, "%s", one.error);
    free(buf);
    if (one.n == 0) { /* unreadable or not a certificate: listed, with why */
        struct cert_entry *e = entry_add(w->r);
        certs__say(e->slot, sizeof e->slot, "%s%s%s", rel, rel[0] ? "/" : "", name);
        certs__say(e->error, sizeof e->error, "%s", err);
    }
    for (size_t i = 0; i < one.n; i++)
        *entry_add(w->r) = one.v[i];
    cert_read_free(&one);
    w->files++;
}

/* The ca.crt of a directory, parsed, to anchor its tls.crt (NULL when absent or unusable). */
static struct cert_set *
dir_anchors(const char *dir)
{
    char path[4096], err[CERTS_ERROR_MAX];
    struct cert_set *set = NULL;
    size_t len = 0;

    if ((size_t)snprintf(path, sizeof path, "%s/ca.crt", dir) >= sizeof path)
        return NULL;
    uint8_t *buf = slurp(path, &len, err, sizeof err);
    if (buf != NULL && cert_set_parse(&set, buf, len, err, sizeof err) != ST_OK)
        set = NULL;
    free(buf);
    return set;
}

static bool
is_file(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static void
walk_dir(struct walk *w, const char *rel, int depth)
{
    char dir[4096], sub[4096];
    if ((size_t)snprintf(dir, sizeof dir, "%s%s%s", w->root, rel[0] ? "/" : "", rel) >= sizeof dir)
        return;
    struct cert_set *anchors = dir_anchors(dir);
    static const char *const members[] = {"tls.crt", "ca.crt"};

    for (size_t i = 0; i < 2 && w->files < CERTS_DIR_MAX_FILES; i++) {
        if ((size_t)snprintf(sub, sizeof sub, "%s/%s", dir, members[i]) < sizeof sub &&
            is_file(sub))
            read_member(w, rel, members[i], i == 0 ? anchors : NULL);
    }
    cert_set_free(anchors);
    DIR *d = w->recursive && depth < CERTS_DIR_MAX_DEPTH ? opendir(dir) : NULL;
    struct dirent *de;
    while (d != NULL && (de = readdir(d)) != NULL && w->files < CERTS_DIR_MAX_FILES) {
        struct stat sb;
        if (de->d_name[0] == '.') /* ".", "..", and a secret mount's "..data" links */
            continue;
        if ((size_t)snprintf(sub, sizeof sub, "%s/%s", dir, de->d_name) >= sizeof sub ||
            stat(sub, &sb) != 0 || !S_ISDIR(sb.st_mode))
            continue;
        if ((size_t)snprintf(sub, sizeof sub, "%s%s%s", rel, rel[0] ? "/" : "", de->d_name) >=
            sizeof sub)
            continue;
        walk_dir(w, sub, depth + 1);
    }
    if (d != NULL)
        closedir(d);
}

static void
read_dir(struct cert_read *r, const struct cert_spec *s, const struct cert_trust *trust)
{
    struct walk w = {r, s->target, trust, s->recursive, 0};
    struct stat sb;

    if (stat(s->target, &sb) != 0) {
        certs__say(r->error, sizeof r->error, "cannot read directory %s: %s", s->target,
                   strerror(errno));
        return;
    }
    if (!S_ISDIR(sb.st_mode)) {
        certs__say(r->error, sizeof r->error, "%s is not a directory", s->target);
        return;
    }
    walk_dir(&w, "", 0);
    if (w.files == 0)
        certs__say(r->error, sizeof r->error, "no tls.crt or ca.crt in %s%s", s->target,
                   s->recursive ? " or below" : "");
}

void
certs_read_source(struct cert_read *r, const struct cert_spec *s, const struct cert_trust *trust)
{
    memset(r, 0, sizeof *r);
    switch (s->kind) {
    case CERT_FILE:
        read_file(r, s->target, trust);
        break;
    case CERT_DIR:
        read_dir(r, s, trust);
        break;
    case CERT_PEM:
        if (certs_read_text(r, "", (const uint8_t *)(s->pem ? s->pem : ""),
                            s->pem ? strlen(s->pem) : 0, false, trust, NULL) != ST_OK)
            break; /* r->error says why */
        break;
    default:
        snprintf(r->error, sizeof r->error, "not a source that is read");
        break;
    }
}
