/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/store/fixtures.h -- the per-test store (a fresh database from backend.h), row
 * builders and field-by-field comparisons shared by the store tests. */
#ifndef DG_TESTS_UNIT_STORE_FIXTURES_H
#define DG_TESTS_UNIT_STORE_FIXTURES_H

#include <stdint.h>

#include "store/store.h"

/* Migrations shipped: migrations/<backend>/NNNN_*.sql. */
#define SCHEMA 4

struct fx {
    char url[600];
    char err[256];
    struct store *s;
};

/* cmocka group and per-test fixtures: *state is a struct fx with an open store on a fresh
 * database, closed and dropped after the test. */
int fx_group_setup(void **state);
int fx_group_teardown(void **state);
int fx_setup(void **state);
int fx_teardown(void **state);

struct store_keyring mk_keyring(const char *name);
struct store_version mk_version(uint32_t version, uint8_t fill);
struct store_apikey mk_apikey(const char *id, int64_t app_id, int64_t created_at);
struct store_app mk_app(const char *name);
void assert_keyring_eq(const struct store_keyring *a, const struct store_keyring *b);
void assert_version_eq(const struct store_version *a, const struct store_version *b);
void assert_apikey_eq(const struct store_apikey *a, const struct store_apikey *b);

#endif
