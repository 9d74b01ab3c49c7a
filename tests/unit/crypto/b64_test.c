/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/crypto/b64_test.c -- RFC 4648 known answers and strictness: one canonical text per
 * byte string (trailing bits, padding, alphabet, whitespace, capacity). */
#include <string.h>

#include <sodium.h>

#include "crypto/b64.h"
#include "testutil.h"

static const struct {
    const char *in, *std, *url;
} rfc4648[] = {
    {"", "", ""},
    {"f", "Zg==", "Zg"},
    {"fo", "Zm8=", "Zm8"},
    {"foo", "Zm9v", "Zm9v"},
    {"foob", "Zm9vYg==", "Zm9vYg"},
    {"fooba", "Zm9vYmE=", "Zm9vYmE"},
    {"foobar", "Zm9vYmFy", "Zm9vYmFy"},
};

static void
test_known_answers(void **state)
{
    char out[32];
    uint8_t bin[32];
    size_t n;

    (void)state;
    for (size_t i = 0; i < sizeof rfc4648 / sizeof rfc4648[0]; i++) {
        size_t len = strlen(rfc4648[i].in);
        const uint8_t *in = (const uint8_t *)rfc4648[i].in;
        assert_int_equal(b64_std_len(len), strlen(rfc4648[i].std));
        assert_int_equal(b64_url_len(len), strlen(rfc4648[i].url));
        assert_int_equal(b64_std_encode(out, sizeof out, in, len), strlen(rfc4648[i].std));
        assert_string_equal(out, rfc4648[i].std);
        assert_int_equal(b64_url_encode(out, sizeof out, in, len), strlen(rfc4648[i].url));
        assert_string_equal(out, rfc4648[i].url);
        assert_int_equal(
            b64_std_decode(bin, sizeof bin, &n, rfc4648[i].std, strlen(rfc4648[i].std)), ST_OK);
        assert_int_equal(n, len);
        assert_memory_equal(bin, in, len);
        assert_int_equal(
            b64_url_decode(bin, sizeof bin, &n, rfc4648[i].url, strlen(rfc4648[i].url)), ST_OK);
        assert_int_equal(n, len);
        assert_memory_equal(bin, in, len);
        assert_true(b64_decoded_max(strlen(rfc4648[i].url)) >= len);
        assert_int_equal(b64_decoded_max(strlen(rfc4648[i].url)), len);
    }
    /* The url alphabet uses - and _ where the standard one has + and /. */
    const uint8_t hi[] = {0xfb, 0xff, 0xbf};
    assert_int_equal(b64_std_encode(out, sizeof out, hi, 3), 4);
    assert_string_equal(out, "+/+/");
    assert_int_equal(b64_url_encode(out, sizeof out, hi, 3), 4);
    assert_string_equal(out, "-_-_");
}

static void
test_round_trips(void **state)
{
    uint8_t in[100], bin[100];
    char text[200];
    size_t n;

    (void)state;
    for (size_t len = 0; len <= sizeof in; len++) {
        randombytes_buf(in, len);
        size_t tl = b64_url_encode(text, sizeof text, in, len);
        assert_int_equal(b64_url_decode(bin, sizeof bin, &n, text, tl), ST_OK);
        assert_int_equal(n, len);
        assert_memory_equal(bin, in, len);
        tl = b64_std_encode(text, sizeof text, in, len);
        assert_int_equal(b64_std_decode(bin, sizeof bin, &n, text, tl), ST_OK);
        assert_int_equal(n, len);
        assert_memory_equal(bin, in, len);
    }
}

static enum status
std_dec(const char *t)
{
    uint8_t bin[64];
    size_t n = 99;
    enum status st = b64_std_decode(bin, sizeof bin, &n, t, strlen(t));

    if (st != ST_OK)
        assert_int_equal(n, 0);
    return st;
}

static enum status
url_dec(const char *t)
{
    uint8_t bin[64];
    size_t n = 99;
    enum status st = b64_url_decode(bin, sizeof bin, &n, t, strlen(t));

    if (st != ST_OK)
        assert_int_equal(n, 0);
    return st;
}

static void
test_rejects_non_canonical(void **state)
{
    static const char *const bad_std[] = {
        "Zh==", "Zm9=",   "Zm8",   "Zg",    "Zg=",      "Zg===",  "Zm9v=", "Zm9vY", "=Zm9",
        "Z===", "Zm9v\n", " Zm9v", "Zm 9v", "Zm9v\r\n", "Zm\t9v", "-_-_",  "Zm9v!", "Zm9vYg==Zg==",
    };
    static const char *const bad_url[] = {
        "Zh", "Zm9", "Zg==", "Zm8=", "Z", "Zm9vY", "+/+/", "Zm9v\n", " Zm9v", "Zm 9v", "Zm9v=",
    };

    (void)state;
    for (size_t i = 0; i < sizeof bad_std / sizeof bad_std[0]; i++)
        if (std_dec(bad_std[i]) != ST_INVALID)
            fail_msg("standard base64 accepted \"%s\"", bad_std[i]);
    for (size_t i = 0; i < sizeof bad_url / sizeof bad_url[0]; i++)
        if (url_dec(bad_url[i]) != ST_INVALID)
            fail_msg("base64url accepted \"%s\"", bad_url[i]);
    assert_int_equal(std_dec("Zg=="), ST_OK);
    assert_int_equal(url_dec("Zm8"), ST_OK);
    assert_int_equal(url_dec("-_-_"), ST_OK);
    /* An embedded NUL is just another invalid character, and so is every non-ASCII byte
     * (libsodium 1.0.18 alone would decode those as '/' or '_'). */
    uint8_t bin[8];
    size_t n;
    assert_int_equal(b64_url_decode(bin, sizeof bin, &n, "Zm\0v", 4), ST_INVALID);
    for (int c = 0x80; c <= 0xff; c++) {
        char t[4] = {'Z', 'm', '9', (char)c};
        assert_int_equal(b64_url_decode(bin, sizeof bin, &n, t, 4), ST_INVALID);
        assert_int_equal(b64_std_decode(bin, sizeof bin, &n, t, 4), ST_INVALID);
    }
}

/* Every last character of a 1- or 2-byte tail whose unused bits are non-zero is refused. */
static void
test_rejects_every_non_zero_trailing_bits(void **state)
{
    static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char t[4] = {'Z', 'm', 0, 0};
    int accepted2 = 0, accepted3 = 0;

    (void)state;
    for (int i = 0; i < 64; i++) {
        t[1] = alpha[i]; /* "Z?": 12 bits for 1 byte, 4 must be zero */
        accepted2 += url_dec((char[]){t[0], t[1], 0}) == ST_OK;
        t[1] = 'm';
        t[2] = alpha[i]; /* "Zm?": 18 bits for 2 bytes, 2 must be zero */
        accepted3 += url_dec((char[]){t[0], t[1], t[2], 0}) == ST_OK;
    }
    assert_int_equal(accepted2, 4);
    assert_int_equal(accepted3, 16);
}

static void
test_capacity_is_respected(void **state)
{
    uint8_t bin[3] = {9, 9, 9};
    size_t n = 7;

    (void)state;
    assert_int_equal(b64_std_decode(bin, 2, &n, "Zm9v", 4), ST_INVALID);
    assert_int_equal(n, 0);
    assert_int_equal(b64_std_decode(bin, 3, &n, "Zm9v", 4), ST_OK);
    assert_int_equal(n, 3);
    assert_int_equal(b64_url_decode(bin, 0, &n, "", 0), ST_OK);
    assert_int_equal(n, 0);
}

/* The fast encoder for public bytes must agree with the constant-time one at every length. */
static void
test_public_encoder_matches(void **state)
{
    uint8_t in[200];
    char a[300], b[300];
    (void)state;
    randombytes_buf(in, sizeof in);
    for (size_t n = 0; n <= sizeof in; n++) {
        size_t la = b64_url_encode(a, sizeof a, in, n);
        size_t lb = b64_url_encode_public(b, sizeof b, in, n);
        assert_int_equal(la, lb);
        assert_string_equal(a, b);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answers),
        cmocka_unit_test(test_public_encoder_matches),
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_rejects_non_canonical),
        cmocka_unit_test(test_rejects_every_non_zero_trailing_bits),
        cmocka_unit_test(test_capacity_is_respected),
    };
    return cmocka_run_group_tests(tests, tu_setup, NULL);
}
