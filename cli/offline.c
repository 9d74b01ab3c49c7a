/* SPDX-License-Identifier: Apache-2.0 */
/* cli/offline.c -- files, repeatable flags, times and public keys for the offline verifiers. */
#include "cli/offline.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "server/audit/format.h"

enum status
cli_read_file(struct sbuf *b, const char *path, size_t max, char *err, size_t err_len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rbe");
    size_t n;
    enum status st = ST_IO;

    if (f == NULL) {
        snprintf(err, err_len, "%s: %s", path, strerror(errno));
        goto out;
    }
    do {
        sbuf_reserve(b, (size_t)1 << 16);
        n = fread(b->p + b->len, 1, b->cap - b->len - 1, f);
        b->len += n;
        b->p[b->len] = '\0';
    } while (n > 0 && (max == 0 || b->len <= max));
    if (ferror(f)) {
        snprintf(err, err_len, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (max != 0 && b->len > max) {
        snprintf(err, err_len, "%s: larger than %zu bytes", path, max);
        goto out;
    }
    st = ST_OK;
out:
    if (f != NULL && f != stdin)
        fclose(f);
    return st;
}

enum status
cli_take_flag(const char *flag, const char **vals, size_t *n, int *argc, char **argv, char *err,
              size_t err_len)
{
    const size_t fl = strlen(flag);
    bool done = false;
    int out = 1;

    for (int i = 1; i < *argc; i++) {
        const char *a = argv[i];
        done |= strcmp(a, "--") == 0;
        if (!done && strncmp(a, flag, fl) == 0 && a[fl] == '=') {
            vals[(*n)++] = a + fl + 1;
        } else if (!done && strcmp(a, flag) == 0) {
            if (i + 1 >= *argc || strncmp(argv[i + 1], "--", 2) == 0) {
                snprintf(err, err_len, "option %s needs a value", flag);
                return ST_INVALID;
            }
            vals[(*n)++] = argv[++i];
        } else {
            argv[out++] = argv[i];
        }
    }
    argv[out] = NULL;
    *argc = out;
    return ST_OK;
}

static enum status
key_add(uint8_t (*keys)[PUBKEY_BYTES], size_t *n, const char *text, size_t len, const char *src,
        char *err, size_t err_len)
{
    if (*n == PUBKEYS_MAX) {
        snprintf(err, err_len, "more than %d public keys", PUBKEYS_MAX);
        return ST_INVALID;
    }
    if (auditfmt_parse_public_key(keys[*n], text, len) != ST_OK) {
        snprintf(err, err_len, "%.200s: not a base64 Ed25519 public key (44 characters)", src);
        return ST_INVALID;
    }
    (*n)++;
    return ST_OK;
}

/* {"keys": [{"public_key": "..."}, ...]}: what the service's public-key routes answer. */
static enum status
keys_from_json(uint8_t (*keys)[PUBKEY_BYTES], size_t *n, const struct sbuf *b, const char *arg,
               char *err, size_t err_len)
{
    json_t *root = json_loadb(b->p, b->len, JSON_REJECT_DUPLICATES, NULL), *e;
    const json_t *list = json_object_get(root, "keys");
    enum status st = ST_INVALID;
    size_t i;

    if (!json_is_array(list) || json_array_size(list) == 0) {
        snprintf(err, err_len,
                 "%.200s: JSON without a \"keys\" list (expected what GET "
                 "/v1/audit/public-key or /v1/compliance/public-key returns)",
                 arg);
        goto out;
    }
    st = ST_OK;
    json_array_foreach (list, i, e) {
        const json_t *pk = json_object_get(e, "public_key");
        if (!json_is_string(pk)) {
            snprintf(err, err_len, "%.200s: keys[%zu] has no \"public_key\" string", arg, i);
            st = ST_INVALID;
            break;
        }
        if ((st = key_add(keys, n, json_string_value(pk), json_string_length(pk), arg, err,
                          err_len)) != ST_OK)
            break;
    }
out:
    json_decref(root);
    return st;
}

enum status
pubkeys_add(uint8_t (*keys)[PUBKEY_BYTES], size_t *n, const char *arg, char *err, size_t err_len)
{
    static const char ws[] = " \t\r\n";
    struct sbuf b = {0};
    size_t pos = 0, len, before = *n;
    enum status st;

    if (arg[0] != '@')
        return key_add(keys, n, arg, strlen(arg), "--public-key", err, err_len);
    if ((st = cli_read_file(&b, arg + 1, PUBKEY_FILE_MAX, err, err_len)) != ST_OK)
        goto out;
    pos = b.len > 0 ? strspn(b.p, ws) : 0;
    if (pos < b.len && b.p[pos] == '{') {
        st = keys_from_json(keys, n, &b, arg, err, err_len);
        goto out;
    }
    while (st == ST_OK && pos < b.len) {
        pos += strspn(b.p + pos, ws);
        if ((len = strcspn(b.p + pos, ws)) > 0)
            st = key_add(keys, n, b.p + pos, len, arg, err, err_len);
        pos += len;
    }
    if (st == ST_OK && *n == before) {
        snprintf(err, err_len, "%.200s: holds no public key", arg);
        st = ST_INVALID;
    }
out:
    sbuf_free(&b);
    return st;
}

bool
cli_time_parse(const char *s, int64_t *ms)
{
    static const int64_t max_s = INT64_C(253402300799); /* 9999-12-31T23:59:59Z */
    struct tm tm = {0};
    const char *end;
    char *num_end;
    int64_t secs, frac = 0;

    *ms = 0;
    if (s[0] >= '0' && s[0] <= '9' && strspn(s, "0123456789") == strlen(s)) {
        if (strlen(s) > 12)
            return false;
        secs = strtoll(s, &num_end, 10);
    } else {
        if ((end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm)) == NULL || strlen(s) < 20)
            return false;
        if (*end == '.') {
            size_t d = strspn(end + 1, "0123456789");
            if (d == 0 || d > 3)
                return false;
            for (size_t i = 0; i < 3; i++)
                frac = frac * 10 + (i < d ? end[1 + i] - '0' : 0);
            end += 1 + d;
        }
        if (strcmp(end, "Z") != 0)
            return false;
        secs = (int64_t)timegm(&tm);
    }
    if (secs < 0 || secs > max_s)
        return false;
    *ms = secs * 1000 + frac;
    return true;
}
