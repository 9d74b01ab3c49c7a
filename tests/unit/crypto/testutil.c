/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/crypto/testutil.c -- see testutil.h. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "crypto/init.h"
#include "crypto/secret.h"
#include "testutil.h"

int
tu_setup(void **state)
{
    (void)state;
    return crypto_init() == ST_OK ? 0 : -1;
}

uint8_t *
tu_unhex(const char *hex, size_t *len)
{
    size_t n = strlen(hex);
    uint8_t *p = malloc(n / 2 + 1);

    assert_non_null(p);
    assert_int_equal(n % 2, 0);
    assert_int_equal(sodium_hex2bin(p, n / 2 + 1, hex, n, NULL, len, NULL), 0);
    assert_int_equal(*len, n / 2);
    return p;
}

char *
tu_hex(const uint8_t *p, size_t n)
{
    char *h = malloc(2 * n + 1);

    assert_non_null(h);
    sodium_bin2hex(h, 2 * n + 1, p, n);
    return h;
}

static bool vectors_skipped;

/* Vectors are required (CI, scripts/test.sh beside ../shared): a missing file fails the test. */
static bool
vectors_required(void)
{
    const char *req = getenv("DG_REQUIRE_VECTORS");
    return req != NULL && strcmp(req, "1") == 0;
}

json_t *
tu_vectors(const char *file)
{
    const char *dir = getenv("DG_VECTORS_DIR");
    char path[4096];
    json_error_t err;
    json_t *root;

    if (dir == NULL || dir[0] == '\0') {
        if (vectors_required())
            fail_msg("DG_REQUIRE_VECTORS=1 but DG_VECTORS_DIR is not set (Wycheproof %s)", file);
        print_message("SKIP: DG_VECTORS_DIR is not set; Wycheproof %s not checked\n", file);
        vectors_skipped = true;
        skip();
    }
    snprintf(path, sizeof path, "%s/%s", dir, file);
    if (access(path, R_OK) != 0) {
        if (vectors_required())
            fail_msg("DG_REQUIRE_VECTORS=1 but %s is absent", path);
        print_message("SKIP: %s is absent; Wycheproof vectors not checked\n", path);
        vectors_skipped = true;
        skip();
    }
    root = json_load_file(path, 0, &err);
    if (root == NULL)
        fail_msg("%s: %s (line %d)", path, err.text, err.line);
    return root;
}

int
tu_exit(int cmocka_failures)
{
    if (cmocka_failures != 0)
        return cmocka_failures;
    return vectors_skipped ? TU_SKIPPED : 0;
}

const char *
tu_str(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);

    assert_true(json_is_string(v));
    return json_string_value(v);
}

long long
tu_int(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);

    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

char *
tu_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    char *t = NULL;

    assert_true(asprintf(&t, "%s/dgtest.XXXXXX", base != NULL ? base : "/tmp") > 0);
    assert_non_null(mkdtemp(t));
    return t;
}

char *
tu_path(const char *dir, const char *name)
{
    char *p = NULL;

    assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
    return p;
}

void
tu_rmtree(char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char *p = tu_path(dir, e->d_name);
        assert_int_equal(unlink(p), 0);
        free(p);
    }
    closedir(d);
    assert_int_equal(rmdir(dir), 0);
    free(dir);
}

void
tu_write_file(const char *path, const char *content, unsigned mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    assert_int_equal(fchmod(fd, (mode_t)mode), 0);
    assert_int_equal(close(fd), 0);
}

struct rootkey *
tu_rootkey(uint8_t fill)
{
    uint8_t key[ROOTKEY_BYTES];

    memset(key, fill, sizeof key);
    return rootkey_from_bytes(key);
}

uint8_t *
tu_kek_aad(size_t *len, const struct rootkey *rk, const char *keyring, uint32_t version)
{
    size_t name = strlen(keyring);
    uint8_t *aad = malloc(16 + 4 + name + 4 + ROOTKEY_ID_CHARS), *p = aad;

    assert_non_null(aad);
    memcpy(p, "difyguard/v1/kek", 16);
    p += 16;
    *p++ = (uint8_t)(name >> 24);
    *p++ = (uint8_t)(name >> 16);
    *p++ = (uint8_t)(name >> 8);
    *p++ = (uint8_t)name;
    memcpy(p, keyring, name);
    p += name;
    *p++ = (uint8_t)(version >> 24);
    *p++ = (uint8_t)(version >> 16);
    *p++ = (uint8_t)(version >> 8);
    *p++ = (uint8_t)version;
    memcpy(p, rootkey_id(rk), ROOTKEY_ID_CHARS);
    *len = (size_t)(p + ROOTKEY_ID_CHARS - aad);
    return aad;
}

struct kek *
tu_kek(const struct rootkey *rk, const char *keyring, uint32_t version,
       const uint8_t key[static KEK_BYTES])
{
    uint8_t wrapped[KEK_WRAPPED_BYTES];
    size_t aad_len = 0, wrapped_len = 0;
    uint8_t *aad = tu_kek_aad(&aad_len, rk, keyring, version);
    struct kek *k = NULL;

    assert_int_equal(
        rootkey_wrap(rk, wrapped, sizeof wrapped, &wrapped_len, key, KEK_BYTES, aad, aad_len),
        ST_OK);
    assert_int_equal(wrapped_len, KEK_WRAPPED_BYTES);
    assert_int_equal(kek_unwrap(&k, rk, keyring, version, wrapped, wrapped_len), ST_OK);
    assert_non_null(k);
    free(aad);
    return k;
}
