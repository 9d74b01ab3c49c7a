/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz/fuzz_audit_verify.c -- the offline audit export verifier must never crash, hang or leak,
 * whatever the file holds. Input: an export, or a --since text, a form feed, then the export.
 * The accepted key is the one the seed corpus is signed with (the corpus is written by
 * tests/unit/server/audit/format_test.c with DG_WRITE_FUZZ_CORPUS=1), so mutations get past the
 * signatures into the chain logic. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <sodium.h>

#include "server/audit/format.h"

static uint8_t pk[1][AUDIT_PK_BYTES];

int LLVMFuzzerInitialize(int *argc, char ***argv);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    uint8_t seed[crypto_sign_ed25519_SEEDBYTES], sk[crypto_sign_ed25519_SECRETKEYBYTES];

    (void)argc;
    (void)argv;
    if (sodium_init() < 0)
        return -1;
    for (size_t i = 0; i < sizeof seed; i++)
        seed[i] = (uint8_t)(i + 1);             /* key K0 of auditfmt_test.c */
    crypto_sign_ed25519_seed_keypair(pk[0], sk, seed);
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    const char *ff = memchr(text, '\f', size);
    struct audit_verify_result r;
    enum status st;

    if (ff == NULL)
        st = audit_verify(text, size, (const uint8_t(*)[AUDIT_PK_BYTES])pk, 1, NULL, 0, &r);
    else
        st = audit_verify(ff + 1, size - (size_t)(ff + 1 - text),
                          (const uint8_t(*)[AUDIT_PK_BYTES])pk, 1, text, (size_t)(ff - text), &r);
    /* A failure always says where and why; success never carries an error. */
    if ((st == ST_OK) != (r.error[0] == '\0') || (st == ST_OK && r.line != 0) ||
        memchr(r.error, '\0', sizeof r.error) == NULL)
        __builtin_trap();
    return 0;
}
