/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/crypto/kek_test.c -- KEK generate/unwrap/rewrap under root keys, the wrap AAD
 * (rebuilt independently), and kek_derive == HKDF-Expand(KEK, info). */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "crypto/hkdf.h"
#include "crypto/kek.h"
#include "testutil.h"

static void
derive(uint8_t out[40], const struct kek *k)
{
    kek_derive(k, out, 40, (const uint8_t *)"probe", 5);
}

static void
test_generate_unwrap_rewrap(void **state)
{
    struct rootkey *rk = tu_rootkey(1), *rk2 = tu_rootkey(2);
    uint8_t w[KEK_WRAPPED_BYTES], w2[KEK_WRAPPED_BYTES], a[40], b[40];
    struct kek *k = NULL, *u = NULL;

    (void)state;
    assert_int_equal(kek_generate(&k, w, rk, "tenant-a", 3), ST_OK);
    assert_non_null(k);
    assert_int_equal(kek_version(k), 3);
    assert_int_equal(kek_unwrap(&u, rk, "tenant-a", 3, w, sizeof w), ST_OK);
    assert_int_equal(kek_version(u), 3);
    derive(a, k), derive(b, u);
    assert_memory_equal(a, b, sizeof a);
    kek_free(u);
    /* Bound to the root key, keyring name, version and every byte. */
    assert_int_equal(kek_unwrap(&u, rk2, "tenant-a", 3, w, sizeof w), ST_AUTH);
    assert_null(u);
    assert_int_equal(kek_unwrap(&u, rk, "tenant-b", 3, w, sizeof w), ST_AUTH);
    assert_int_equal(kek_unwrap(&u, rk, "tenant-a", 4, w, sizeof w), ST_AUTH);
    assert_int_equal(kek_unwrap(&u, rk, "tenant-a", 3, w, sizeof w - 1), ST_INVALID);
    for (size_t bit = 0; bit < sizeof w * 8; bit++) {
        w[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_int_not_equal(kek_unwrap(&u, rk, "tenant-a", 3, w, sizeof w), ST_OK);
        assert_null(u);
        w[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    /* Rewrap: opens under the new root key only, and is the same KEK. */
    assert_int_equal(kek_rewrap(w2, rk, rk2, "tenant-a", 3, w, sizeof w), ST_OK);
    assert_int_equal(kek_unwrap(&u, rk, "tenant-a", 3, w2, sizeof w2), ST_AUTH);
    assert_int_equal(kek_unwrap(&u, rk2, "tenant-a", 3, w2, sizeof w2), ST_OK);
    derive(b, u);
    assert_memory_equal(a, b, sizeof a);
    kek_free(u);
    assert_int_equal(kek_rewrap(w2, rk2, rk, "tenant-a", 3, w, sizeof w), ST_AUTH);
    assert_true(sodium_is_zero(w2, sizeof w2));
    /* Two generations are two different keys. */
    assert_int_equal(kek_generate(&u, w2, rk, "tenant-a", 3), ST_OK);
    derive(b, u);
    assert_memory_not_equal(a, b, sizeof a);
    kek_free(u);
    assert_int_equal(kek_generate(&u, w2, rk, "tenant-a", 0), ST_INVALID);
    assert_null(u);
    kek_free(k);
    kek_free(NULL);
    rootkey_free(rk);
    rootkey_free(rk2);
}

/* The KEK bytes, recovered with the AAD rebuilt here (which pins that format), give
 * kek_derive == hkdf_sha256_expand(KEK, info) for any length and info. */
static void
test_derive_is_hkdf_expand(void **state)
{
    struct rootkey *rk = tu_rootkey(9);
    uint8_t w[KEK_WRAPPED_BYTES], info[100];
    struct kek *k = NULL;
    struct secret *raw = NULL;
    size_t aad_len = 0;
    uint8_t *aad, *a = malloc(HKDF_SHA256_MAX_OUT), *b = malloc(HKDF_SHA256_MAX_OUT);

    (void)state;
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(kek_generate(&k, w, rk, "det.ring_1", 0xfffffffe), ST_OK);
    aad = tu_kek_aad(&aad_len, rk, "det.ring_1", 0xfffffffe);
    assert_int_equal(rootkey_unwrap(rk, &raw, w, sizeof w, aad, aad_len), ST_OK);
    assert_int_equal(secret_len(raw), KEK_BYTES);
    randombytes_buf(info, sizeof info);
    static const size_t lens[] = {0, 1, 31, 32, 33, 64, 65, 255, HKDF_SHA256_MAX_OUT};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        kek_derive(k, a, lens[i], info, i * 11 % sizeof info);
        assert_int_equal(
            hkdf_sha256_expand(b, lens[i], secret_ro(raw), KEK_BYTES, info, i * 11 % sizeof info),
            ST_OK);
        assert_memory_equal(a, b, lens[i]);
    }
    /* And tu_kek (known bytes through the same AAD) agrees too. */
    struct kek *known = tu_kek(rk, "det.ring_1", 0xfffffffe, secret_ro(raw));
    kek_derive(known, a, 64, info, 10);
    kek_derive(k, b, 64, info, 10);
    assert_memory_equal(a, b, 64);
    kek_free(known);
    secret_free(raw);
    kek_free(k);
    rootkey_free(rk);
    free(aad), free(a), free(b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generate_unwrap_rewrap),
        cmocka_unit_test(test_derive_is_hkdf_expand),
    };
    return cmocka_run_group_tests(tests, tu_setup, NULL);
}
