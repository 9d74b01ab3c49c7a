/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/crypto/rowmac_test.c -- the row MAC's byte encoding (pinned), field separation,
 * constant-time check and state wiping. */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "crypto/rowmac.h"
#include "testutil.h"

static struct secret *
key_of(uint8_t fill)
{
    struct secret *k = secret_new(32);

    memset(secret_rw(k), fill, 32);
    return k;
}

/* HMAC(key, u32be(8) "keyrings" || i64be(-2) || u32be(2) "ab" || FFFFFFFF || u32be(0)),
 * computed independently. */
static void
test_known_encoding(void **state)
{
    struct secret *k = key_of(0x33);
    struct rowmac m;
    uint8_t mac[ROWMAC_BYTES];
    char *hex;

    (void)state;
    rowmac_init(&m, k, "keyrings");
    rowmac_i64(&m, -2);
    rowmac_str(&m, "ab");
    rowmac_str(&m, NULL);
    rowmac_bytes(&m, (const uint8_t *)"", 0);
    rowmac_final(&m, mac);
    hex = tu_hex(mac, sizeof mac);
    assert_string_equal(hex, "1e4c7f131b06acef6d134e3a96d7542e631533d426d991b37059d80fa4aa0da0");
    assert_true(sodium_is_zero((const uint8_t *)&m, sizeof m)); /* state wiped */
    free(hex);
    secret_free(k);
}

static void
mac2(uint8_t out[ROWMAC_BYTES], const struct secret *k, const char *table, const char *a,
     const char *b)
{
    struct rowmac m;

    rowmac_init(&m, k, table);
    rowmac_str(&m, a);
    rowmac_str(&m, b);
    rowmac_final(&m, out);
}

static void
test_fields_are_separated(void **state)
{
    struct secret *k = key_of(1), *k2 = key_of(2);
    uint8_t a[32], b[32];

    (void)state;
    mac2(a, k, "t", "ab", "c");
    mac2(b, k, "t", "a", "bc");
    assert_memory_not_equal(a, b, 32);
    mac2(b, k, "t", "", "abc");
    assert_memory_not_equal(a, b, 32);
    mac2(a, k, "t", NULL, "x");
    mac2(b, k, "t", "", "x");
    assert_memory_not_equal(a, b, 32); /* NULL and "" differ */
    mac2(a, k, "keyrings", "x", "y");
    mac2(b, k, "apikeys", "x", "y");
    assert_memory_not_equal(a, b, 32); /* table label matters */
    mac2(b, k2, "keyrings", "x", "y");
    assert_memory_not_equal(a, b, 32); /* key matters */
    mac2(b, k, "keyrings", "x", "y");
    assert_memory_equal(a, b, 32); /* deterministic */
    secret_free(k);
    secret_free(k2);
}

static void
test_check(void **state)
{
    struct secret *k = key_of(7);
    struct rowmac m;
    uint8_t mac[ROWMAC_BYTES];

    (void)state;
    rowmac_init(&m, k, "key_versions");
    rowmac_i64(&m, INT64_MIN);
    rowmac_bytes(&m, (const uint8_t *)"\x01\x02", 2);
    rowmac_final(&m, mac);
    for (size_t bit = 0; bit <= sizeof mac * 8; bit++) {
        if (bit < sizeof mac * 8)
            mac[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        rowmac_init(&m, k, "key_versions");
        rowmac_i64(&m, INT64_MIN);
        rowmac_bytes(&m, (const uint8_t *)"\x01\x02", 2);
        assert_int_equal(rowmac_check(&m, mac, sizeof mac), bit == sizeof mac * 8);
        assert_true(sodium_is_zero((const uint8_t *)&m, sizeof m));
        if (bit < sizeof mac * 8)
            mac[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    rowmac_init(&m, k, "key_versions");
    rowmac_i64(&m, INT64_MIN);
    rowmac_bytes(&m, (const uint8_t *)"\x01\x02", 2);
    assert_false(rowmac_check(&m, mac, sizeof mac - 1)); /* wrong length */
    secret_free(k);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_encoding),
        cmocka_unit_test(test_fields_are_separated),
        cmocka_unit_test(test_check),
    };
    return cmocka_run_group_tests(tests, tu_setup, NULL);
}
