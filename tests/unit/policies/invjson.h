/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/policies/invjson.h -- hand-written inventory snapshots (inventories.json) for the
 * policy tests: named objects, each optionally based on another, with times relative to `now`.
 * Test code: aborts the test (cmocka fail_msg) on a malformed file. */
#ifndef DG_TESTS_UNIT_POLICIES_INVJSON_H
#define DG_TESTS_UNIT_POLICIES_INVJSON_H

#include <jansson.h>

#include "policies/inventory.h"

/* The inventory `name` of all (the parsed inventories.json); free with inventory_free. */
void invjson_load(struct inventory *out, const json_t *all, const char *name);
/* The whole text of a file of the source tree (DG_SOURCE_DIR), NUL-terminated; free(). */
char *invjson_read_source(const char *rel, size_t *len);

#endif
