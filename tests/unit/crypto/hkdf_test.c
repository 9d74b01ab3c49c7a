/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/crypto/hkdf_test.c -- HKDF-SHA256 (Wycheproof and RFC 5869) and the libsodium
 * HMAC-SHA256 it is built on (Wycheproof). */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "crypto/hkdf.h"
#include "testutil.h"

static void
hkdf(uint8_t *okm, size_t size, const uint8_t *ikm, size_t ikm_len, const uint8_t *salt,
     size_t salt_len, const uint8_t *info, size_t info_len, enum status *st)
{
    uint8_t prk[HKDF_SHA256_PRK_BYTES];

    hkdf_sha256_extract(prk, salt, salt_len, ikm, ikm_len);
    *st = hkdf_sha256_expand(okm, size, prk, sizeof prk, info, info_len);
}

static void
test_rfc5869_case1(void **state)
{
    size_t il, sl, nl, ol;
    uint8_t *ikm = tu_unhex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", &il);
    uint8_t *salt = tu_unhex("000102030405060708090a0b0c", &sl);
    uint8_t *info = tu_unhex("f0f1f2f3f4f5f6f7f8f9", &nl);
    uint8_t *want = tu_unhex("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
                             "34007208d5b887185865",
                             &ol);
    uint8_t okm[42];
    enum status st;

    (void)state;
    hkdf(okm, sizeof okm, ikm, il, salt, sl, info, nl, &st);
    assert_int_equal(st, ST_OK);
    assert_memory_equal(okm, want, ol);
    free(ikm), free(salt), free(info), free(want);
}

static void
test_hkdf_wycheproof(void **state)
{
    json_t *root = tu_vectors("hkdf_sha256_test.json"), *g, *t;
    size_t i, j;
    int valid = 0, invalid = 0;

    (void)state;
    json_array_foreach (json_object_get(root, "testGroups"), i, g)
        json_array_foreach (json_object_get(g, "tests"), j, t) {
            size_t il, sl, nl, ol, size = (size_t)tu_int(t, "size");
            uint8_t *ikm = tu_unhex(tu_str(t, "ikm"), &il);
            uint8_t *salt = tu_unhex(tu_str(t, "salt"), &sl);
            uint8_t *info = tu_unhex(tu_str(t, "info"), &nl);
            uint8_t *okm = tu_unhex(tu_str(t, "okm"), &ol);
            uint8_t *out = malloc(size + 1);
            enum status st;

            assert_non_null(out);
            memset(out, 0x5a, size + 1);
            hkdf(out, size, ikm, il, salt, sl, info, nl, &st);
            if (strcmp(tu_str(t, "result"), "valid") == 0) {
                assert_int_equal(st, ST_OK);
                assert_int_equal(ol, size);
                assert_memory_equal(out, okm, size);
                valid++;
            } else {
                assert_int_equal(st, ST_INVALID);
                assert_true(sodium_is_zero(out, size));
                invalid++;
            }
            free(ikm), free(salt), free(info), free(okm), free(out);
        }
    print_message("HKDF-SHA256: %d valid, %d invalid vectors\n", valid, invalid);
    assert_true(valid > 0 && invalid > 0);
    json_decref(root);
}

/* The keyed-state path kek_derive uses gives the same bytes as the plain one. */
static void
test_expand_state_matches(void **state)
{
    uint8_t prk[32], info[40], a[300], b[300];
    crypto_auth_hmacsha256_state keyed;

    (void)state;
    randombytes_buf(prk, sizeof prk);
    randombytes_buf(info, sizeof info);
    crypto_auth_hmacsha256_init(&keyed, prk, sizeof prk);
    for (size_t n = 0; n <= sizeof a; n += 7) {
        assert_int_equal(hkdf_sha256_expand(a, n, prk, sizeof prk, info, n % sizeof info), ST_OK);
        hkdf_sha256_expand_state(b, n, &keyed, info, n % sizeof info);
        assert_memory_equal(a, b, n);
    }
    uint8_t *big = malloc(HKDF_SHA256_MAX_OUT + 1);
    assert_non_null(big);
    assert_int_equal(hkdf_sha256_expand(big, HKDF_SHA256_MAX_OUT, prk, 32, NULL, 0), ST_OK);
    memset(big, 1, HKDF_SHA256_MAX_OUT + 1);
    assert_int_equal(hkdf_sha256_expand(big, HKDF_SHA256_MAX_OUT + 1, prk, 32, NULL, 0),
                     ST_INVALID);
    assert_true(sodium_is_zero(big, HKDF_SHA256_MAX_OUT + 1));
    free(big);
}

static void
test_hmac_sha256_wycheproof(void **state)
{
    json_t *root = tu_vectors("hmac_sha256_test.json"), *g, *t;
    size_t i, j;
    int valid = 0, invalid = 0;

    (void)state;
    json_array_foreach (json_object_get(root, "testGroups"), i, g) {
        size_t tag_bytes = (size_t)tu_int(g, "tagSize") / 8;
        json_array_foreach (json_object_get(g, "tests"), j, t) {
            size_t kl, ml, tl;
            uint8_t *key = tu_unhex(tu_str(t, "key"), &kl), *msg = tu_unhex(tu_str(t, "msg"), &ml);
            uint8_t *tag = tu_unhex(tu_str(t, "tag"), &tl), mac[32];
            crypto_auth_hmacsha256_state st;

            crypto_auth_hmacsha256_init(&st, key, kl);
            crypto_auth_hmacsha256_update(&st, msg, ml);
            crypto_auth_hmacsha256_final(&st, mac);
            bool match = tl == tag_bytes && sodium_memcmp(mac, tag, tag_bytes) == 0;
            if (strcmp(tu_str(t, "result"), "valid") == 0) {
                assert_true(match);
                valid++;
            } else {
                assert_false(match);
                invalid++;
            }
            free(key), free(msg), free(tag);
        }
    }
    print_message("HMAC-SHA256: %d valid, %d invalid vectors\n", valid, invalid);
    assert_true(valid > 0 && invalid > 0);
    json_decref(root);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc5869_case1),
        cmocka_unit_test(test_hkdf_wycheproof),
        cmocka_unit_test(test_expand_state_matches),
        cmocka_unit_test(test_hmac_sha256_wycheproof),
    };
    return tu_exit(cmocka_run_group_tests(tests, tu_setup, NULL));
}
