/* SPDX-License-Identifier: Apache-2.0 */
/* server/auth/jwt_config.c -- jwt_verifier_from_json: the verifier built from the "jwt" object of
 * the config file (keys from files or inline, role mappings, rate), strictly: unknown fields,
 * wrong types, over-open secret files and unusable keys are refused with the field named, never
 * the key bytes. Key files are read into guarded memory and wiped after use. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "common/xmem.h"
#include "crypto/b64.h"
#include "crypto/keyfile.h"
#include "crypto/secret.h"
#include "server/auth/jwt.h"
#include "server/auth/principal.h"

static void errf(char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
errf(char *err, size_t err_len, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || err_len == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

/* The first key of obj not in `allowed` (NULL-terminated), or NULL. */
static const char *
unknown_field(const json_t *obj, const char *const *allowed)
{
    const char *name;
    const json_t *val;

    json_object_foreach ((json_t *)obj, name, val) {
        size_t i = 0;
        while (allowed[i] != NULL && strcmp(allowed[i], name) != 0)
            i++;
        if (allowed[i] == NULL)
            return name;
    }
    return NULL;
}

/* A small regular file, read whole into *out (xmalloc; the caller wipes and frees it). Plain
 * read(2), no stdio: stdio would leave a copy of a secret in its buffer. A secret file must
 * also pass the key-file rule (crypto/keyfile.h), as the root key does: ST_FORBIDDEN. */
static enum status
read_small_file(uint8_t **out, size_t *out_len, const char *path, bool secret, char *err,
                size_t err_len, const char *field)
{
    uint8_t *buf = NULL;
    struct stat sb;
    size_t n = 0, cap = 0;
    ssize_t got = 1;
    int fd = -1;
    enum status st = ST_IO;

    *out = NULL;
    *out_len = 0;
    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0 || fstat(fd, &sb) != 0) {
        errf(err, err_len, "%s: cannot open %.200s: %s", field, path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(sb.st_mode) || sb.st_size <= 0 || sb.st_size > JWT_KEY_FILE_MAX) {
        errf(err, err_len, "%s: %.200s must be a regular file of 1..65536 bytes", field, path);
        st = ST_INVALID;
        goto out;
    }
    if (secret && (st = keyfile_check_fd(fd, field, path, err, err_len)) != ST_OK)
        goto out;
    st = ST_IO;
    cap = (size_t)sb.st_size + 1;
    buf = xmalloc(cap);
    while (n < cap && got > 0)
        if ((got = read(fd, buf + n, cap - n)) > 0)
            n += (size_t)got;
    if (got < 0 || n == 0 || n >= cap) {
        errf(err, err_len, "%s: %.200s changed or could not be read", field, path);
        goto out;
    }
    *out = buf;
    *out_len = n;
    buf = NULL;
    st = ST_OK;
out:
    if (buf != NULL) {
        sodium_memzero(buf, cap);
        free(buf);
    }
    if (fd >= 0)
        close(fd);
    return st;
}

static bool
alg_parse(const char *s, enum jwt_key_alg *alg)
{
    *alg = strcmp(s, "HS256") == 0   ? JWT_HS256
           : strcmp(s, "RS256") == 0 ? JWT_RS256
           : strcmp(s, "ES256") == 0 ? JWT_ES256
                                     : 0;
    return *alg != 0;
}

/* Where a key's bytes come from: secret_file for HS256, public_key_file or public_key otherwise. */
static enum status
key_material(uint8_t **out, size_t *out_len, const json_t *k, enum jwt_key_alg alg, size_t idx,
             char *err, size_t err_len)
{
    const json_t *sf = json_object_get(k, "secret_file");
    const json_t *pf = json_object_get(k, "public_key_file");
    const json_t *pk = json_object_get(k, "public_key");
    char field[48];
    enum status st = ST_INVALID;

    *out = NULL;
    *out_len = 0;
    if (alg == JWT_HS256 && (sf == NULL || pf != NULL || pk != NULL))
        errf(err, err_len, "keys[%zu]: HS256 takes secret_file only", idx);
    else if (alg != JWT_HS256 && (sf != NULL || (pf == NULL) == (pk == NULL)))
        errf(err, err_len, "keys[%zu]: %s takes one of public_key_file, public_key", idx,
             jwt_alg_name(alg));
    else if (!json_is_string(sf ? sf : pf ? pf : pk))
        errf(err, err_len, "keys[%zu]: %s must be a string", idx,
             sf   ? "secret_file"
             : pf ? "public_key_file"
                  : "public_key");
    else
        st = ST_OK;
    if (st != ST_OK)
        goto out;
    if (pk != NULL) {
        *out_len = json_string_length(pk);
        *out = xmalloc(*out_len + 1);
        memcpy(*out, json_string_value(pk), *out_len);
        goto out;
    }
    snprintf(field, sizeof field, "keys[%zu].%s", idx, sf ? "secret_file" : "public_key_file");
    st = read_small_file(out, out_len, json_string_value(sf ? sf : pf), sf != NULL, err, err_len,
                         field);
    /* A secret written with echo ends in a newline that the token issuer does not use. */
    if (st == ST_OK && sf != NULL && *out_len > 0 && (*out)[*out_len - 1] == '\n')
        (*out_len)--;
    if (st == ST_OK && sf != NULL && *out_len > 0 && (*out)[*out_len - 1] == '\r')
        (*out_len)--;
out:
    return st;
}

static enum status
load_key(struct jwt_verifier *v, const json_t *k, size_t idx, char *err, size_t err_len)
{
    static const char *const fields[] = {"kid",        "alg", "secret_file", "public_key_file",
                                         "public_key", NULL};
    const json_t *kid = json_object_get(k, "kid"), *alg = json_object_get(k, "alg");
    const char *bad = NULL, *msg = NULL;
    uint8_t *bytes = NULL;
    size_t n = 0;
    enum jwt_key_alg a = 0;
    enum status st = ST_INVALID;

    if (!json_is_object(k)) {
        errf(err, err_len, "keys[%zu]: must be an object", idx);
        goto out;
    }
    if ((bad = unknown_field(k, fields)) != NULL) {
        errf(err, err_len, "keys[%zu]: unknown field \"%.40s\"", idx, bad);
        goto out;
    }
    if (!json_is_string(kid) || !json_is_string(alg) || !alg_parse(json_string_value(alg), &a)) {
        errf(err, err_len, "keys[%zu]: needs \"kid\" and \"alg\" (HS256, RS256 or ES256)", idx);
        goto out;
    }
    if ((st = key_material(&bytes, &n, k, a, idx, err, err_len)) != ST_OK)
        goto out;
    if ((st = jwt_verifier_add_key(v, &msg, json_string_value(kid), a, bytes, n)) != ST_OK)
        errf(err, err_len, "keys[%zu]: %s", idx, msg);
out:
    if (bytes != NULL) {
        sodium_memzero(bytes, n);
        free(bytes);
    }
    return st;
}

/* One role's scopes: an array of scope names or one space-separated string. */
static bool
role_value(const json_t *val, uint32_t *scopes)
{
    const json_t *s;
    size_t i;

    *scopes = 0;
    if (json_is_string(val)) {
        const char *p = json_string_value(val);
        while (*p != '\0') {
            size_t n = strcspn(p, " ");
            uint32_t bit = n > 0 ? scope_parse(p, n) : 0;
            if (n > 0 && bit == 0)
                return false;
            *scopes |= bit;
            p += n + strspn(p + n, " ");
        }
        return *scopes != 0;
    }
    if (!json_is_array(val))
        return false;
    json_array_foreach (val, i, s) {
        uint32_t bit =
            json_is_string(s) ? scope_parse(json_string_value(s), json_string_length(s)) : 0;
        if (bit == 0)
            return false;
        *scopes |= bit;
    }
    return *scopes != 0;
}

static enum status
load_roles(struct jwt_verifier *v, const json_t *roles, char *err, size_t err_len)
{
    const char *name, *msg = NULL;
    const json_t *val;
    uint32_t scopes;
    enum status st = ST_INVALID;

    if (!json_is_object(roles) || json_object_size(roles) == 0) {
        errf(err, err_len, "roles: must be a non-empty object {role: [scope, ...]}");
        goto out;
    }
    json_object_foreach ((json_t *)roles, name, val) {
        if (!role_value(val, &scopes)) {
            errf(err, err_len, "roles: the value of \"%.40s\" must list known scopes", name);
            goto out;
        }
        if (jwt_verifier_add_role(v, &msg, name, scopes) != ST_OK) {
            errf(err, err_len, "roles: %s", msg);
            goto out;
        }
    }
    st = ST_OK;
out:
    return st;
}

static enum status
load_keys(struct jwt_verifier *v, const json_t *keys, char *err, size_t err_len)
{
    const json_t *k;
    size_t i;
    enum status st = ST_INVALID;

    if (!json_is_array(keys) || json_array_size(keys) == 0) {
        errf(err, err_len, "keys: must be a non-empty array");
        goto out;
    }
    json_array_foreach (keys, i, k) {
        if ((st = load_key(v, k, i, err, err_len)) != ST_OK)
            goto out;
    }
out:
    return st;
}

enum status
jwt_verifier_from_json(struct jwt_verifier **out, char *err, size_t err_len, const json_t *cfg)
{
    static const char *const fields[] = {"issuer", "audience", "leeway", "role_claim", "roles",
                                         "keys",   "rate",     "burst",  NULL};
    const json_t *leeway = json_object_get(cfg, "leeway");
    const json_t *claim = json_object_get(cfg, "role_claim");
    const json_t *rate = json_object_get(cfg, "rate"), *burst = json_object_get(cfg, "burst");
    struct jwt_verifier *v = NULL;
    const char *bad = NULL, *msg = NULL;
    enum status st = ST_INVALID;

    *out = NULL;
    errf(err, err_len, "%s", "");
    if (!json_is_object(cfg)) {
        errf(err, err_len, "jwt config must be an object");
        goto out;
    }
    if ((bad = unknown_field(cfg, fields)) != NULL) {
        errf(err, err_len, "unknown field \"%.40s\"", bad);
        goto out;
    }
    if ((leeway != NULL && !json_is_integer(leeway)) || (claim != NULL && !json_is_string(claim))) {
        errf(err, err_len, "leeway must be an integer and role_claim a string");
        goto out;
    }
    if (jwt_verifier_new(&v, &msg, json_string_value(json_object_get(cfg, "issuer")),
                         json_string_value(json_object_get(cfg, "audience")),
                         leeway ? json_integer_value(leeway) : JWT_LEEWAY_DEFAULT,
                         claim ? json_string_value(claim) : "role") != ST_OK) {
        errf(err, err_len, "%s", msg);
        goto out;
    }
    if ((rate != NULL && !json_is_integer(rate)) || (burst != NULL && !json_is_integer(burst)) ||
        jwt_verifier_set_rate(v, rate ? json_integer_value(rate) : 0,
                              burst ? json_integer_value(burst) : 0) != ST_OK) {
        errf(err, err_len, "rate and burst must be integers from 0 (unlimited) to 1000000");
        goto out;
    }
    if ((st = load_roles(v, json_object_get(cfg, "roles"), err, err_len)) != ST_OK ||
        (st = load_keys(v, json_object_get(cfg, "keys"), err, err_len)) != ST_OK)
        goto out;
    *out = v;
    v = NULL;
out:
    jwt_verifier_free(v);
    return st;
}
