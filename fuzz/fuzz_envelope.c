/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz/fuzz_envelope.c -- the ciphertext text parser and envelope_open on arbitrary input.
 * Oracles: parsing is canonical (formatting a parsed blob gives the input back), open never
 * succeeds on a forgery and always zeroes its output on failure, and a deterministic (SIV)
 * envelope that opens re-seals to the very same bytes. The fixed test KEK is the one the unit
 * tests' frozen ciphertexts use (tests/unit/crypto/envelope_test.c), so those seeds open. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "crypto/b64.h"
#include "crypto/envelope.h"
#include "crypto/init.h"
#include "crypto/secret.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* KEK 00 01 .. 1f, keyring "golden", version 7, wrapped under the root key 42 42 .. 42. */
static const uint8_t wrapped_kek[KEK_WRAPPED_BYTES] = {
    0x01, 0xb0, 0xe9, 0xd0, 0xa8, 0xed, 0x99, 0x12, 0x04, 0xf1, 0x5c, 0x75, 0x5e, 0xa3, 0x8d,
    0x20, 0x1c, 0xbe, 0x37, 0x51, 0x10, 0x35, 0x5e, 0x77, 0x91, 0xdb, 0xde, 0xbf, 0xc4, 0xd5,
    0xf2, 0x1f, 0xfe, 0x52, 0x5c, 0x63, 0xe9, 0x5b, 0x24, 0x8f, 0xbb, 0xbd, 0x64, 0x88, 0xb0,
    0xa0, 0x73, 0x97, 0x1e, 0x35, 0xbb, 0x6b, 0x84, 0xc2, 0xfa, 0x4d, 0x7f, 0x36, 0xc2, 0x13,
    0x30, 0x00, 0x07, 0xcc, 0x55, 0x71, 0x29, 0x32, 0xf6, 0x4d, 0xc2, 0x4f, 0x98,
};
/* {"field": "api_key", "tenant": "t1"} */
static const uint8_t ctx[] = "\x00\x00\x00\x02"
                             "\x00\x00\x00\x05"
                             "field"
                             "\x00\x00\x00\x07"
                             "api_key"
                             "\x00\x00\x00\x06"
                             "tenant"
                             "\x00\x00\x00\x02"
                             "t1";
static struct kek *kek;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    uint8_t rkb[ROOTKEY_BYTES];
    struct rootkey *rk;

    (void)argc, (void)argv;
    memset(rkb, 0x42, sizeof rkb);
    rk = rootkey_from_bytes(rkb);
    if (crypto_init() != ST_OK ||
        kek_unwrap(&kek, rk, "golden", 7, wrapped_kek, sizeof wrapped_kek) != ST_OK) {
        fprintf(stderr, "fuzz_envelope: cannot set up the test KEK\n");
        abort();
    }
    rootkey_free(rk);
    return 0;
}

static void
check_open(const struct envelope *env)
{
    size_t n = envelope_plaintext_len(env), pt_len = 1, blob_len = 0;
    uint8_t *pt = malloc(n + 1), *again = NULL;
    enum status st = envelope_open(pt, n, &pt_len, env, kek, ctx, sizeof ctx - 1);

    if (st != ST_OK) {
        if ((st != ST_AUTH && st != ST_MALFORMED_CT) || pt_len != 0 || !sodium_is_zero(pt, n))
            abort();
        goto out;
    }
    if (pt_len != n)
        abort();
    if (env->format == ENVELOPE_AES256SIV) {
        again = malloc(env->blob_len);
        if (envelope_seal(again, env->blob_len, &blob_len, env->format, kek, ctx, sizeof ctx - 1,
                          pt, pt_len) != ST_OK ||
            blob_len != env->blob_len || memcmp(again, env->blob, blob_len) != 0)
            abort();
    }
out:
    free(again);
    free(pt);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t cap = b64_decoded_max(size);
    uint8_t *blob = malloc(cap + 1);
    char *text = NULL;
    struct envelope env;

    if (envelope_parse_text(&env, blob, cap, (const char *)data, size) == ST_OK) {
        size_t tl = envelope_text_len(env.version, env.blob_len);
        text = malloc(tl + 1);
        if (envelope_format_text(text, tl + 1, env.version, env.blob, env.blob_len) != size ||
            memcmp(text, data, size) != 0)
            abort(); /* a second spelling of one ciphertext was accepted */
        check_open(&env);
    }
    if (envelope_parse_blob(&env, data, size) == ST_OK)
        check_open(&env);
    free(text);
    free(blob);
    return 0;
}
