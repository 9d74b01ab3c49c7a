/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz/fuzz_jwt.c -- jwt_verify on arbitrary bytes must never crash, hang, leak or accept a token
 * it should not: one HS256, one RS256 and one ES256 key, built in memory. The seed corpus holds
 * tokens signed for these keys (valid until 2100 at the fixed clock below); the private keys
 * were thrown away after signing them.
 *
 * The oracle: the fuzzer cannot sign, so a token that verifies must be byte for byte one of the
 * seed tokens that verify (read from DG_FUZZ_SEEDS, the source corpus, at start). Anything else
 * accepted -- a changed claim, another encoding of the same bytes, trailing junk -- is a token
 * wrongly accepted. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/apps.h"
#include "server/auth/jwt.h"

#define FUZZ_NOW 1700000000

static const char hs_secret[] = "fuzz-hs256-secret-0123456789abcdef";

static const char rsa_pub[] = "-----BEGIN PUBLIC KEY-----\n"
                              "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA1EL16u63XvgBoiz3IysX\n"
                              "64obYDGxQBPGBg/RX3epXaQYY2Piy7ik1P6mcIH2zj+aTQyVBwnpGkBzC6Z5gwXh\n"
                              "HD1thG8Y/AnVcp18KmeQ8j4tfGFG6u1u0U2mwlWMSRgB+z+cRzbMnG9QdV4wuZMe\n"
                              "Tyvh6KCAIm+97JUiIqM7bVbbPRjuGOL/WUEhMNWoDaieB8XBQJcNDtVcQPVMhxad\n"
                              "oysSLRawzi4aNHTwPYHXnix6C14C0ZLoXo+ADnL7ju77pos1Cvaq4DW2IlgD7s35\n"
                              "icKUWS45sZn5EvE1mAEEO6s9kvS7ASnrH13KpJB9GUTFNafKdJHPxfaV64HoT41Q\n"
                              "8QIDAQAB\n"
                              "-----END PUBLIC KEY-----\n";

static const char ec_pub[] = "-----BEGIN PUBLIC KEY-----\n"
                             "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEZ3n1WDrNbfL4SMQbWCTHuvkFiBFC\n"
                             "R9jK5b0Dlsr6jG9ph8/o2Q+c6EXhylvufUWiMDRL0tRy1A6BPm0fTZYegQ==\n"
                             "-----END PUBLIC KEY-----\n";

#ifndef DG_FUZZ_SEEDS
#error "DG_FUZZ_SEEDS: the folder of this target's seed corpus"
#endif

#define MAX_VALID 64

static struct jwt_verifier *verifier;
static char *valid[MAX_VALID]; /* the seed tokens that verify */
static size_t valid_len[MAX_VALID], n_valid;

static void
load_valid_seeds(void)
{
    DIR *d = opendir(DG_FUZZ_SEEDS);
    struct dirent *e;
    static char buf[1 << 16];

    if (d == NULL)
        abort();
    while ((e = readdir(d)) != NULL) {
        char path[4096];
        struct jwt_claims c;
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", DG_FUZZ_SEEDS, e->d_name);
        FILE *f = fopen(path, "rb");
        if (f == NULL)
            abort();
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        if (jwt_verify(verifier, buf, n, FUZZ_NOW, &c) != ST_OK)
            continue;
        if (n_valid == MAX_VALID || (valid[n_valid] = malloc(n ? n : 1)) == NULL)
            abort();
        memcpy(valid[n_valid], buf, n);
        valid_len[n_valid++] = n;
    }
    closedir(d);
    if (n_valid == 0)
        abort(); /* no genuine token: the oracle would prove nothing */
}

static int
is_seed_token(const uint8_t *data, size_t size)
{
    for (size_t i = 0; i < n_valid; i++)
        if (valid_len[i] == size && memcmp(valid[i], data, size) == 0)
            return 1;
    return 0;
}

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
                              sizeof hs_secret - 1),
         err);
    must(jwt_verifier_add_key(verifier, &err, "rs1", JWT_RS256, (const uint8_t *)rsa_pub,
                              sizeof rsa_pub - 1),
         err);
    must(jwt_verifier_add_key(verifier, &err, "es1", JWT_ES256, (const uint8_t *)ec_pub,
                              sizeof ec_pub - 1),
         err);
    must(jwt_verifier_add_role(verifier, &err, "dify-api", SCOPE_ENCRYPT | SCOPE_DECRYPT), err);
    must(jwt_verifier_add_role(verifier, &err, "auditor", SCOPE_AUDIT_READ), err);
    load_valid_seeds();
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
    if (st == ST_OK && !is_seed_token(data, size))
        abort(); /* accepted a token nobody signed */
    return 0;
}
