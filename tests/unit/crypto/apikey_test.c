/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/crypto/apikey_test.c -- API key text: CRC-32, pinned checksum encoding, round
 * trips, rejection of every single-character change, lengths, alphabet; the keyed hash. */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "crypto/apikey.h"
#include "testutil.h"

static const char alphabet[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

static void
test_crc32_check_value(void **state)
{
    (void)state;
    assert_int_equal(apikey_crc32((const uint8_t *)"123456789", 9), 0xCBF43926u);
    assert_int_equal(apikey_crc32(NULL, 0), 0);
}

/* A key whose checksum was computed independently (zlib.crc32, base62 big-endian). */
static void
test_known_key(void **state)
{
    const char *key = "dgk_0000000000000000AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA4U69xD";
    char id[APIKEY_ID_CHARS + 1];

    (void)state;
    assert_int_equal(strlen(key), APIKEY_TEXT_CHARS);
    assert_int_equal(apikey_parse(id, key, strlen(key)), ST_OK);
    assert_string_equal(id, "0000000000000000");
}

static void
test_generate_parse_round_trip(void **state)
{
    char text[APIKEY_TEXT_CHARS + 1], id[APIKEY_ID_CHARS + 1], pid[APIKEY_ID_CHARS + 1];
    char first[APIKEY_TEXT_CHARS + 1];

    (void)state;
    for (int i = 0; i < 1000; i++) {
        apikey_generate(text, id);
        assert_int_equal(strlen(text), APIKEY_TEXT_CHARS);
        assert_memory_equal(text, "dgk_", 4);
        assert_int_equal(strspn(text + 4, alphabet), APIKEY_TEXT_CHARS - 4);
        assert_int_equal(strlen(id), APIKEY_ID_CHARS);
        assert_memory_equal(id, text + 4, APIKEY_ID_CHARS);
        assert_int_equal(apikey_parse(pid, text, strlen(text)), ST_OK);
        assert_string_equal(pid, id);
        if (i == 0)
            memcpy(first, text, sizeof first);
        else
            assert_string_not_equal(first, text);
    }
    sodium_memzero(text, sizeof text);
}

static void
test_every_changed_char_fails(void **state)
{
    char text[APIKEY_TEXT_CHARS + 1], id[APIKEY_ID_CHARS + 1];

    (void)state;
    apikey_generate(text, id);
    for (size_t i = 0; i < APIKEY_TEXT_CHARS; i++) {
        char orig = text[i];
        for (const char *c = alphabet; *c != '\0'; c++) {
            if (*c == orig)
                continue;
            text[i] = *c;
            assert_int_equal(apikey_parse(id, text, APIKEY_TEXT_CHARS), ST_UNAUTHENTICATED);
            assert_string_equal(id, "");
        }
        text[i] = orig;
    }
    assert_int_equal(apikey_parse(id, text, APIKEY_TEXT_CHARS), ST_OK);
}

static void
test_shape_errors(void **state)
{
    char text[APIKEY_TEXT_CHARS + 2], id[APIKEY_ID_CHARS + 1];
    static const char not_b62[] = {'-', '_', ' ', '\0', '+', '/', '=', '\n', (char)0xc3};

    (void)state;
    apikey_generate(text, id);
    assert_int_equal(apikey_parse(id, text, APIKEY_TEXT_CHARS - 1), ST_UNAUTHENTICATED);
    assert_int_equal(apikey_parse(id, text, 0), ST_UNAUTHENTICATED);
    text[APIKEY_TEXT_CHARS] = 'x';
    assert_int_equal(apikey_parse(id, text, APIKEY_TEXT_CHARS + 1), ST_UNAUTHENTICATED);
    text[APIKEY_TEXT_CHARS] = '\0';
    text[2] = 'K';
    assert_int_equal(apikey_parse(id, text, APIKEY_TEXT_CHARS), ST_UNAUTHENTICATED);
    text[2] = 'k';
    for (size_t i = 0; i < sizeof not_b62; i++) {
        char orig = text[30];
        text[30] = not_b62[i];
        assert_int_equal(apikey_parse(id, text, APIKEY_TEXT_CHARS), ST_UNAUTHENTICATED);
        text[30] = orig;
    }
    assert_int_equal(apikey_parse(id, text, APIKEY_TEXT_CHARS), ST_OK);
}

static void
test_hash(void **state)
{
    struct secret *k1 = secret_new(APIKEY_HASH_KEY_BYTES), *k2 = secret_new(APIKEY_HASH_KEY_BYTES);
    uint8_t a[APIKEY_HASH_BYTES], b[APIKEY_HASH_BYTES];
    char *hex;

    (void)state;
    memset(secret_rw(k1), 0x22, APIKEY_HASH_KEY_BYTES);
    memset(secret_rw(k2), 0x23, APIKEY_HASH_KEY_BYTES);
    apikey_hash(a, k1, "dgk_x", 5);
    hex = tu_hex(a, sizeof a); /* BLAKE2b-256 keyed, computed independently */
    assert_string_equal(hex, "42fd79859fa45f7df7b6ea83b0657d25aeaa7e2d416358d2129b70e383b5df78");
    apikey_hash(b, k1, "dgk_x", 5);
    assert_true(apikey_hash_equal(a, b));
    apikey_hash(b, k2, "dgk_x", 5);
    assert_false(apikey_hash_equal(a, b));
    apikey_hash(b, k1, "dgk_y", 5);
    assert_false(apikey_hash_equal(a, b));
    /* Every byte counts, the last included (a comparison one byte short would pass this). */
    apikey_hash(b, k1, "dgk_x", 5);
    for (size_t i = 0; i < sizeof b; i++) {
        b[i] ^= 0x01;
        assert_false(apikey_hash_equal(a, b));
        b[i] ^= 0x01;
    }
    assert_true(apikey_hash_equal(a, b));
    free(hex);
    secret_free(k1);
    secret_free(k2);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32_check_value),
        cmocka_unit_test(test_known_key),
        cmocka_unit_test(test_generate_parse_round_trip),
        cmocka_unit_test(test_every_changed_char_fails),
        cmocka_unit_test(test_shape_errors),
        cmocka_unit_test(test_hash),
    };
    return cmocka_run_group_tests(tests, tu_setup, NULL);
}
