/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz/fuzz_audit_verify.c -- the offline audit export verifier must never crash, hang or leak,
 * whatever the file holds, and must never accept what nobody signed. Input: an export, or a
 * --since text, a form feed, then the export. The accepted key is the one the seed corpus is
 * signed with (the corpus is written by tests/unit/server/audit/format_test.c with
 * DG_WRITE_FUZZ_CORPUS=1), so mutations get past the signatures into the chain logic.
 *
 * The oracle: the fuzzer holds no signing key, so whatever verifies must be made of genuine
 * lines. Every event line of an accepted input is byte for byte an event line of a seed (the
 * event hash covers every byte), and every checkpoint line is a seed's checkpoint up to its
 * signatures (the signed fields; extra signatures by unknown keys are ignored by design).
 * Lines may be dropped (a periodic checkpoint, a whole chain) or interleaved: that is allowed.
 * The seeds are read from DG_FUZZ_SEEDS (the source corpus) at start. */
#include <dirent.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "server/audit/format.h"

#ifndef DG_FUZZ_SEEDS
#error "DG_FUZZ_SEEDS: the folder of this target's seed corpus"
#endif

#define MAX_GENUINE 1024

static uint8_t pk[1][AUDIT_PK_BYTES];
static uint8_t genuine[MAX_GENUINE][crypto_hash_sha256_BYTES];
static size_t n_genuine;

/* The part of a line that must be genuine: all of an event, a checkpoint up to its
 * signatures. Returns false for a line of neither kind. */
static bool
signed_part(const char *line, size_t len, size_t *part)
{
    static const char ev[] = "{\"type\":\"event\",", cp[] = "{\"type\":\"checkpoint\",";
    static const char sigs[] = ",\"signatures\":";

    if (len >= sizeof ev - 1 && memcmp(line, ev, sizeof ev - 1) == 0) {
        *part = len;
        return true;
    }
    if (len < sizeof cp - 1 || memcmp(line, cp, sizeof cp - 1) != 0)
        return false;
    for (size_t i = 0; i + sizeof sigs - 1 <= len; i++) {
        if (memcmp(line + i, sigs, sizeof sigs - 1) == 0) {
            *part = i;
            return true;
        }
    }
    return false;
}

static void
digest(uint8_t out[static crypto_hash_sha256_BYTES], const char *p, size_t n)
{
    crypto_hash_sha256(out, (const unsigned char *)p, n);
}

static bool
is_genuine(const char *line, size_t len)
{
    uint8_t d[crypto_hash_sha256_BYTES];
    size_t part;

    if (!signed_part(line, len, &part))
        return false;
    digest(d, line, part);
    for (size_t i = 0; i < n_genuine; i++)
        if (memcmp(d, genuine[i], sizeof d) == 0)
            return true;
    return false;
}

/* Each line of p[0..n) (lines end with "\n" or a form feed), given to fn. */
static bool
each_line(const char *p, size_t n, bool (*fn)(const char *, size_t))
{
    for (size_t pos = 0; pos < n;) {
        size_t end = pos;
        while (end < n && p[end] != '\n' && p[end] != '\f')
            end++;
        if (end > pos && !fn(p + pos, end - pos))
            return false;
        pos = end + 1;
    }
    return true;
}

static bool
remember(const char *line, size_t len)
{
    size_t part;

    if (signed_part(line, len, &part)) {
        if (n_genuine == MAX_GENUINE)
            abort();
        digest(genuine[n_genuine++], line, part);
    }
    return true;
}

/* Every line of every seed file is genuine. No seeds: the oracle would accept nothing. */
static void
load_seeds(void)
{
    DIR *d = opendir(DG_FUZZ_SEEDS);
    struct dirent *e;
    static char buf[1 << 20];

    if (d == NULL)
        abort();
    while ((e = readdir(d)) != NULL) {
        char path[4096];
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", DG_FUZZ_SEEDS, e->d_name);
        FILE *f = fopen(path, "rb");
        if (f == NULL)
            abort();
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        (void)each_line(buf, n, remember);
    }
    closedir(d);
    if (n_genuine == 0)
        abort();
}

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
        seed[i] = (uint8_t)(i + 1); /* key K0 of auditfmt_test.c */
    crypto_sign_ed25519_seed_keypair(pk[0], sk, seed);
    load_seeds();
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
    /* Accepted: every line (of the --since text too) is one somebody with the key signed. */
    if (st == ST_OK && !each_line(text, size, is_genuine))
        __builtin_trap();
    return 0;
}
