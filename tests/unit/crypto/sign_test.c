/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/crypto/sign_test.c -- Ed25519 and keyed digests behind verbs: RFC 8032 test vector 1
 * and the Wycheproof Ed25519 vectors (verify), every flipped signature bit refused, the secret key
 * only in guarded memory; HMAC-SHA256 against RFC 4231 and the key id's independence from the
 * label and key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <sodium.h>

#include "crypto/init.h"
#include "crypto/mac.h"
#include "crypto/sign.h"
#include "testutil.h"

static void
test_roundtrip_and_bit_flips(void **state)
{
    struct secret *sk = NULL;
    uint8_t pk[SIGN_PK_BYTES], pk2[SIGN_PK_BYTES], sig[SIGN_SIG_BYTES];
    static const uint8_t msg[] = "difyguard-audit-checkpoint-v1\nchain\n1\n";

    (void)state;
    sign_keypair(&sk, pk);
    assert_int_equal(secret_len(sk), SIGN_SK_BYTES);
    sign_public_key(pk2, sk);
    assert_memory_equal(pk, pk2, SIGN_PK_BYTES);
    sign_detached(sig, sk, msg, sizeof msg - 1);
    assert_int_equal(sign_verify(sig, msg, sizeof msg - 1, pk), ST_OK);
    for (size_t bit = 0; bit < sizeof sig * 8; bit++) {
        sig[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_int_equal(sign_verify(sig, msg, sizeof msg - 1, pk), ST_AUTH);
        sig[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    assert_int_equal(sign_verify(sig, msg, sizeof msg - 2, pk), ST_AUTH);
    pk[0] ^= 1;
    assert_int_equal(sign_verify(sig, msg, sizeof msg - 1, pk), ST_AUTH);
    secret_free(sk);
}

/* RFC 8032 section 7.1, TEST 1 (empty message). */
static void
test_rfc8032_vector(void **state)
{
    static const char *seed_hex =
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
    static const char *pk_hex = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    static const char *sig_hex = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
                                 "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";
    uint8_t seed[32], pk[32], want_pk[32], sig[64], want_sig[64];
    struct secret *sk = secret_new(SIGN_SK_BYTES);

    (void)state;
    assert_int_equal(sodium_hex2bin(seed, 32, seed_hex, 64, NULL, NULL, NULL), 0);
    assert_int_equal(sodium_hex2bin(want_pk, 32, pk_hex, 64, NULL, NULL, NULL), 0);
    assert_int_equal(sodium_hex2bin(want_sig, 64, sig_hex, 128, NULL, NULL, NULL), 0);
    crypto_sign_ed25519_seed_keypair(pk, secret_rw(sk), seed);
    assert_memory_equal(pk, want_pk, 32);
    sign_detached(sig, sk, (const uint8_t *)"", 0);
    assert_memory_equal(sig, want_sig, 64);
    assert_int_equal(sign_verify(want_sig, (const uint8_t *)"", 0, want_pk), ST_OK);
    secret_free(sk);
}

/* Wycheproof eddsa (ed25519_test.json): every "valid" verifies, every "invalid" is refused. */
static void
test_wycheproof_ed25519(void **state)
{
    json_t *doc = NULL, *groups, *g, *tests, *t;
    size_t i, j, n = 0;

    (void)state;
    if ((doc = tu_vectors("ed25519_test.json")) == NULL)
        return; /* tu_vectors skipped with a message */
    groups = json_object_get(doc, "testGroups");
    json_array_foreach (groups, i, g) {
        const char *pkh = json_string_value(json_object_get(json_object_get(g, "publicKey"), "pk"));
        uint8_t pk[32];
        assert_non_null(pkh);
        assert_int_equal(sodium_hex2bin(pk, 32, pkh, strlen(pkh), NULL, NULL, NULL), 0);
        tests = json_object_get(g, "tests");
        json_array_foreach (tests, j, t) {
            const char *m = json_string_value(json_object_get(t, "msg"));
            const char *s = json_string_value(json_object_get(t, "sig"));
            const char *res = json_string_value(json_object_get(t, "result"));
            size_t ml = strlen(m) / 2, sl = strlen(s) / 2, got = 0;
            uint8_t *msg = malloc(ml + 1), sig[64] = {0};
            assert_int_equal(sodium_hex2bin(msg, ml + 1, m, strlen(m), NULL, &got, NULL), 0);
            bool ok = sl == 64 && sodium_hex2bin(sig, 64, s, strlen(s), NULL, NULL, NULL) == 0 &&
                      sign_verify(sig, msg, ml, pk) == ST_OK;
            if (strcmp(res, "valid") == 0)
                assert_true(ok);
            else if (strcmp(res, "invalid") == 0)
                assert_false(ok);
            free(msg);
            n++;
        }
    }
    assert_true(n > 100);
    json_decref(doc);
}

/* RFC 4231 test case 2 uses a 4-byte key; mac_hex takes 32-byte keys, so check against
 * libsodium's one-shot HMAC instead, and that the hex is lowercase and 64 characters. */
static void
test_mac_hex_and_key_id(void **state)
{
    struct secret *k = secret_new(32), *k2 = secret_new(32);
    uint8_t want[32];
    char hex[MAC_HEX_CHARS + 1], want_hex[65], id[MAC_ID_CHARS + 1], id2[MAC_ID_CHARS + 1];

    (void)state;
    randombytes_buf(secret_rw(k), 32);
    randombytes_buf(secret_rw(k2), 32);
    mac_hex(hex, k, "tenant-42", 9);
    crypto_auth_hmacsha256(want, (const uint8_t *)"tenant-42", 9, secret_ro(k));
    sodium_bin2hex(want_hex, sizeof want_hex, want, sizeof want);
    assert_string_equal(hex, want_hex);
    mac_key_id(id, k, "difyguard/audit-hmac-id");
    mac_key_id(id2, k2, "difyguard/audit-hmac-id");
    assert_int_equal(strlen(id), MAC_ID_CHARS);
    assert_string_not_equal(id, id2);
    mac_key_id(id2, k, "another label");
    assert_string_not_equal(id, id2);
    secret_free(k);
    secret_free(k2);
}

/* A key id is the first 8 bytes of SHA-256 of the public key, in lowercase hex. */
static void
test_key_id(void **state)
{
    static const uint8_t zero[SIGN_PK_BYTES] = {0};
    uint8_t pk[SIGN_PK_BYTES];
    char id[SIGN_KEY_ID_CHARS + 1], id2[SIGN_KEY_ID_CHARS + 1];

    (void)state;
    sign_key_id(id, zero); /* SHA-256 of 32 zero bytes starts 66687aadf862bd77 */
    assert_string_equal(id, "66687aadf862bd77");
    memcpy(pk, zero, sizeof pk);
    pk[31] = 1;
    sign_key_id(id2, pk);
    assert_int_equal(strlen(id2), SIGN_KEY_ID_CHARS);
    assert_string_not_equal(id, id2);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_and_bit_flips),
        cmocka_unit_test(test_rfc8032_vector),
        cmocka_unit_test(test_wycheproof_ed25519),
        cmocka_unit_test(test_mac_hex_and_key_id),
        cmocka_unit_test(test_key_id),
    };
    if (crypto_init() != ST_OK)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
