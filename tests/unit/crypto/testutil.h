/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/crypto/testutil.h -- helpers shared by the crypto unit tests: hex, Wycheproof
 * vector files, temporary directories and deterministic keys. Tests only. */
#ifndef DG_TESTS_UNIT_CRYPTO_TESTUTIL_H
#define DG_TESTS_UNIT_CRYPTO_TESTUTIL_H

#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <jansson.h>

#include "crypto/kek.h"
#include "crypto/rootkey.h"

/* cmocka setup: crypto_init() must succeed. */
int tu_setup(void **state);

/* Decode hex (asserting it is valid) into a malloc'd buffer of at least one byte. */
uint8_t *tu_unhex(const char *hex, size_t *len);
/* Lowercase hex of p[0..n) into a malloc'd string. */
char *tu_hex(const uint8_t *p, size_t n);

/* Load $DG_VECTORS_DIR/<file>; when the folder or file is absent, print why and skip() the
 * test (cmocka longjmps, so this never returns NULL), or fail it when DG_REQUIRE_VECTORS=1. */
json_t *tu_vectors(const char *file);
/* Exit status of a test binary that may skip vector tests: cmocka's result, or TU_SKIPPED when
 * everything that ran passed but a vector file was skipped (ctest SKIP_RETURN_CODE), so a
 * missing vector folder reads "skipped", never "passed". */
#define TU_SKIPPED 77
int tu_exit(int cmocka_failures);
/* Field accessors for a vector object (assert the field exists). */
const char *tu_str(const json_t *obj, const char *key);
long long tu_int(const json_t *obj, const char *key);

/* A fresh directory under $TMPDIR; tu_rmtree removes it and everything in it (flat). */
char *tu_tmpdir(void);
void tu_rmtree(char *dir);
/* path = dir + "/" + name, malloc'd. */
char *tu_path(const char *dir, const char *name);
void tu_write_file(const char *path, const char *content, unsigned mode);

/* A root key whose 32 bytes are all `fill`. */
struct rootkey *tu_rootkey(uint8_t fill);
/* The AAD kek.c binds a wrapped KEK to (rebuilt here, so a test pins the permanent format). */
uint8_t *tu_kek_aad(size_t *len, const struct rootkey *rk, const char *keyring, uint32_t version);
/* A KEK with known bytes: wraps `key` under rk the way kek.c does, then kek_unwrap()s it. */
struct kek *tu_kek(const struct rootkey *rk, const char *keyring, uint32_t version,
                   const uint8_t key[static KEK_BYTES]);

#endif
