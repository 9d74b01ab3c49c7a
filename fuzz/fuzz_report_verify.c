/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz/fuzz_report_verify.c -- `difyguard report verify`: the offline verifier of signed
 * compliance reports must never crash, hang or leak, whatever the file holds, and must never
 * accept what nobody signed. The accepted key is the one the seed corpus is signed with
 * (tests/unit/policies/report_test.c writes it with DG_WRITE_FUZZ_CORPUS=1), so mutations reach
 * the body and signature parsing.
 *
 * The oracle: the fuzzer holds no signing key and the signed form is exact, so an accepted input
 * is byte for byte one of the seeds (read from DG_FUZZ_SEEDS at start). */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "policies/report.h"

#ifndef DG_FUZZ_SEEDS
#error "DG_FUZZ_SEEDS: the folder of this target's seed corpus"
#endif

#define MAX_SEEDS 64

static uint8_t pk[1][SIGN_PK_BYTES];
static uint8_t seeds[MAX_SEEDS][crypto_hash_sha256_BYTES];
static size_t n_seeds;

static void
seed_add(const char *path)
{
    FILE *f = fopen(path, "rb");
    static char buf[1 << 20];
    size_t n;

    if (f == NULL || n_seeds == MAX_SEEDS)
        abort();
    n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    crypto_hash_sha256(seeds[n_seeds++], (const unsigned char *)buf, n);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    uint8_t seed[crypto_sign_ed25519_SEEDBYTES], sk[crypto_sign_ed25519_SECRETKEYBYTES];
    DIR *d;
    struct dirent *e;
    char path[4096];

    (void)argc;
    (void)argv;
    if (sodium_init() < 0)
        abort();
    for (size_t i = 0; i < sizeof seed; i++)
        seed[i] = (uint8_t)(i + 7); /* report_test.c's key 0 */
    crypto_sign_ed25519_seed_keypair(pk[0], sk, seed);
    sodium_memzero(sk, sizeof sk);
    if ((d = opendir(DG_FUZZ_SEEDS)) == NULL)
        abort();
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", DG_FUZZ_SEEDS, e->d_name);
        seed_add(path);
    }
    closedir(d);
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct report_summary s;
    uint8_t h[crypto_hash_sha256_BYTES];
    char err[256];

    if (report_verify((const char *)data, size, (const uint8_t(*)[SIGN_PK_BYTES])pk, 1, &s, err,
                      sizeof err) != ST_OK) {
        if (s.heads != NULL || err[0] == '\0')
            abort();
        return 0;
    }
    crypto_hash_sha256(h, data, size);
    for (size_t i = 0; i < n_seeds; i++) {
        if (memcmp(h, seeds[i], sizeof h) == 0) {
            report_summary_free(&s);
            return 0;
        }
    }
    abort(); /* accepted a report nobody signed */
}
