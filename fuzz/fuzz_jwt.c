/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz/fuzz_jwt.c -- jwt_verify on arbitrary bytes must never crash, hang, leak or accept a token
 * it should not: one HS256, one RS256 and one ES256 key, built in memory. The seed corpus holds
 * tokens signed for these keys (valid until 2100 at the fixed clock below); the private keys
 * were thrown away after signing them. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/apps.h"
#include "server/auth/jwt.h"

#define FUZZ_NOW 1700000000

static const char hs_secret[] = "fuzz-hs256-secret-0123456789abcdef";

static const char rsa_pub[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA1EL16u63XvgBoiz3IysX\n"
    "64obYDGxQBPGBg/RX3epXaQYY2Piy7ik1P6mcIH2zj+aTQyVBwnpGkBzC6Z5gwXh\n"
    "HD1thG8Y/AnVcp18KmeQ8j4tfGFG6u1u0U2mwlWMSRgB+z+cRzbMnG9QdV4wuZMe\n"
    "Tyvh6KCAIm+97JUiIqM7bVbbPRjuGOL/WUEhMNWoDaieB8XBQJcNDtVcQPVMhxad\n"
    "oysSLRawzi4aNHTwPYHXnix6C14C0ZLoXo+ADnL7ju77pos1Cvaq4DW2IlgD7s35\n"
    "icKUWS45sZn5EvE1mAEEO6s9kvS7ASnrH13KpJB9GUTFNafKdJHPxfaV64HoT41Q\n"
    "8QIDAQAB\n"
    "-----END PUBLIC KEY-----\n";

static const char ec_pub[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEZ3n1WDrNbfL4SMQbWCTHuvkFiBFC\n"
    "R9jK5b0Dlsr6jG9ph8/o2Q+c6EXhylvufUWiMDRL0tRy1A6BPm0fTZYegQ==\n"
    "-----END PUBLIC KEY-----\n";

static struct jwt_verifier *verifier;

static void
must(enum status st, const char *err)
{
    if (st != ST_OK) {
        (void)err;
        abort();
    }
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *err = NULL;

    (void)argc;
    (void)argv;
    must(jwt_verifier_new(&verifier, &err, "https://idp.example", "difyguard", 30, "role"), err);
    must(jwt_verifier_add_key(verifier, &err, "hs1", JWT_HS256, (const uint8_t *)hs_secret,
                              sizeof hs_secret - 1), err);
    must(jwt_verifier_add_key(verifier, &err, "rs1", JWT_RS256, (const uint8_t *)rsa_pub,
                              sizeof rsa_pub - 1), err);
    must(jwt_verifier_add_key(verifier, &err, "es1", JWT_ES256, (const uint8_t *)ec_pub,
                              sizeof ec_pub - 1), err);
    must(jwt_verifier_add_role(verifier, &err, "dify-api", SCOPE_ENCRYPT | SCOPE_DECRYPT), err);
    must(jwt_verifier_add_role(verifier, &err, "auditor", SCOPE_AUDIT_READ), err);
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct jwt_claims c;
    enum status st = jwt_verify(verifier, (const char *)data, size, FUZZ_NOW, &c);

    /* The contract: a status and a reason that agree, scopes only on success, strings ended. */
    if ((st == ST_OK) != (c.reason == JWT_R_OK) || (st != ST_OK && c.scopes != 0) ||
        (st == ST_OK && c.scopes == 0) || memchr(c.sub, 0, sizeof c.sub) == NULL ||
        memchr(c.kid, 0, sizeof c.kid) == NULL)
        abort();
    return 0;
}
