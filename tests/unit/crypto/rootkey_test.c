/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/crypto/rootkey_test.c -- root key file rules (never overwrite, mode checks through
 * symlinks, strict content), the pinned id, and wrapping with AAD. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "crypto/rootkey.h"
#include "testutil.h"

static char *
slurp(const char *path)
{
    static char buf[256];
    int fd = open(path, O_RDONLY);
    ssize_t n;

    assert_true(fd >= 0);
    n = read(fd, buf, sizeof buf - 1);
    assert_true(n >= 0);
    buf[n] = '\0';
    close(fd);
    return buf;
}

static void
test_create_never_overwrites(void **state)
{
    char *dir = tu_tmpdir(), *path = tu_path(dir, "root.key"), *link = tu_path(dir, "link.key");
    char err[256], before[256];
    struct stat sb;
    struct rootkey *rk = NULL;

    (void)state;
    assert_int_equal(rootkey_create(path, err, sizeof err), ST_OK);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 07777, 0600);
    strcpy(before, slurp(path));
    assert_int_equal(strlen(before), 45); /* base64 of 32 bytes + newline */
    assert_int_equal(before[44], '\n');
    assert_int_equal(rootkey_create(path, err, sizeof err), ST_CONFLICT);
    assert_non_null(strstr(err, "never overwritten"));
    assert_string_equal(slurp(path), before);
    /* Not through a symlink either, not even a dangling one. */
    assert_int_equal(symlink("nowhere", link), 0);
    assert_int_equal(rootkey_create(link, err, sizeof err), ST_CONFLICT);
    assert_int_equal(rootkey_load(&rk, path, err, sizeof err), ST_OK);
    assert_null(strstr(err, before)); /* no key bytes in messages */
    rootkey_free(rk);
    char *missing = tu_path(dir, "no/such/dir");
    assert_int_equal(rootkey_create(missing, NULL, 0), ST_IO);
    free(missing);
    free(path), free(link);
    tu_rmtree(dir);
}

static void
test_load_checks_mode(void **state)
{
    static const unsigned refused[] = {0644, 0620, 0602, 0604, 0606, 0666, 0660};
    static const unsigned accepted[] = {0600, 0400, 0640, 0440};
    char *dir = tu_tmpdir(), *path = tu_path(dir, "k"), *link = tu_path(dir, "via-link");
    char err[256];
    struct rootkey *rk = NULL;

    (void)state;
    assert_int_equal(symlink(path, link), 0);
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        tu_write_file(path, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n", refused[i]);
        assert_int_equal(rootkey_load(&rk, path, err, sizeof err), ST_FORBIDDEN);
        assert_null(rk);
        assert_non_null(strstr(err, "too open"));
        assert_int_equal(rootkey_load(&rk, link, err, sizeof err), ST_FORBIDDEN);
        unlink(path);
    }
    for (size_t i = 0; i < sizeof accepted / sizeof accepted[0]; i++) {
        tu_write_file(path, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n", accepted[i]);
        assert_int_equal(rootkey_load(&rk, link, err, sizeof err), ST_OK); /* via symlink */
        assert_non_null(rk);
        rootkey_free(rk);
        assert_int_equal(rootkey_load(&rk, path, err, sizeof err), ST_OK);
        rootkey_free(rk);
        unlink(path);
    }
    assert_int_equal(rootkey_load(&rk, path, err, sizeof err), ST_IO);     /* missing */
    assert_int_equal(rootkey_load(&rk, dir, err, sizeof err), ST_INVALID); /* a directory */
    free(path), free(link);
    tu_rmtree(dir);
}

static void
test_load_checks_content(void **state)
{
#define K "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=" /* bytes 00..1f */
    static const char *const bad[] = {
        "",
        "\n",
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8", /* no padding */
        K "\n\n",
        " " K,
        K " \n",
        K "\r\n",
        K K "\n",
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh/=\n",     /* non-canonical trailing bits */
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==\n",     /* 31 bytes */
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gIQ==\n", /* 34 bytes */
    };
#undef K
    char *dir = tu_tmpdir(), *path = tu_path(dir, "k");
    struct rootkey *a = NULL, *b = NULL;
    char err[256];

    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tu_write_file(path, bad[i], 0600);
        if (rootkey_load(&a, path, err, sizeof err) != ST_INVALID)
            fail_msg("root key content #%zu accepted", i);
        assert_null(a);
        unlink(path);
    }
    /* With or without the newline: the same key, the same id. */
    tu_write_file(path, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", 0600);
    assert_int_equal(rootkey_load(&a, path, err, sizeof err), ST_OK);
    unlink(path);
    tu_write_file(path, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n", 0400);
    assert_int_equal(rootkey_load(&b, path, err, sizeof err), ST_OK);
    assert_string_equal(rootkey_id(a), rootkey_id(b));
    rootkey_free(a);
    rootkey_free(b);
    free(path);
    tu_rmtree(dir);
}

/* id = hex(first 8 bytes of BLAKE2b-256(key = root key, "difyguard/v1/root-key-id")),
 * computed independently. */
static void
test_id_is_pinned(void **state)
{
    struct rootkey *rk = tu_rootkey(0x11), *other = tu_rootkey(0x12);

    (void)state;
    assert_string_equal(rootkey_id(rk), "1a93b8fd0879d0e1");
    assert_int_equal(strlen(rootkey_id(other)), ROOTKEY_ID_CHARS);
    assert_string_not_equal(rootkey_id(rk), rootkey_id(other));
    rootkey_free(rk);
    rootkey_free(other);
    rootkey_free(NULL);
}

static void
test_wrap_unwrap(void **state)
{
    struct rootkey *rk = tu_rootkey(1), *other = tu_rootkey(2);
    uint8_t key[48], w[48 + ROOTKEY_WRAP_OVERHEAD], w2[sizeof w];
    const uint8_t aad[] = "some-aad";
    struct secret *s = NULL;
    size_t wl = 0;

    (void)state;
    randombytes_buf(key, sizeof key);
    assert_int_equal(rootkey_wrap(rk, w, sizeof w, &wl, key, sizeof key, aad, 8), ST_OK);
    assert_int_equal(wl, sizeof w);
    assert_int_equal(w[0], 0x01);
    assert_int_equal(rootkey_wrap(rk, w2, sizeof w2, &wl, key, sizeof key, aad, 8), ST_OK);
    assert_memory_not_equal(w, w2, sizeof w); /* random nonce */
    assert_int_equal(rootkey_unwrap(rk, &s, w, sizeof w, aad, 8), ST_OK);
    assert_int_equal(secret_len(s), sizeof key);
    assert_memory_equal(secret_ro(s), key, sizeof key);
    secret_free(s);
    assert_int_equal(rootkey_unwrap(rk, &s, w, sizeof w, aad, 7), ST_AUTH);
    assert_null(s);
    assert_int_equal(rootkey_unwrap(rk, &s, w, sizeof w, (const uint8_t *)"some-aaD", 8), ST_AUTH);
    assert_int_equal(rootkey_unwrap(other, &s, w, sizeof w, aad, 8), ST_AUTH);
    assert_int_equal(rootkey_unwrap(rk, &s, w, ROOTKEY_WRAP_OVERHEAD - 1, aad, 8), ST_INVALID);
    assert_int_equal(rootkey_unwrap(rk, &s, w, sizeof w - 1, aad, 8), ST_AUTH);
    for (size_t bit = 8; bit < sizeof w * 8; bit++) {
        w[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_int_equal(rootkey_unwrap(rk, &s, w, sizeof w, aad, 8), ST_AUTH);
        assert_null(s);
        w[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    w[0] = 0x02;
    assert_int_equal(rootkey_unwrap(rk, &s, w, sizeof w, aad, 8), ST_INVALID);
    rootkey_free(rk);
    rootkey_free(other);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_never_overwrites),
        cmocka_unit_test(test_load_checks_mode),
        cmocka_unit_test(test_load_checks_content),
        cmocka_unit_test(test_id_is_pinned),
        cmocka_unit_test(test_wrap_unwrap),
    };
    return cmocka_run_group_tests(tests, tu_setup, NULL);
}
