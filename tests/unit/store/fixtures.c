/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/store/fixtures.c -- see fixtures.h. */
#include "fixtures.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "backend.h"

int
fx_group_setup(void **state)
{
    (void)state;
    return tb_init();
}

int
fx_group_teardown(void **state)
{
    (void)state;
    tb_fini();
    return 0;
}

int
fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);

    if (f == NULL)
        return -1;
    tb_fresh(f->url, sizeof f->url);
    if (store_open(&f->s, f->url, f->err, sizeof f->err) != ST_OK) {
        fprintf(stderr, "store_open: %s\n", f->err);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

int
fx_teardown(void **state)
{
    struct fx *f = *state;

    store_close(f->s);
    tb_drop(f->url);
    free(f);
    return 0;
}

/* --- builders --- */

struct store_keyring
mk_keyring(const char *name)
{
    struct store_keyring kr = {0};

    snprintf(kr.name, sizeof kr.name, "%s", name);
    snprintf(kr.algorithm, sizeof kr.algorithm, "aes-256-gcm");
    kr.rotation_period = 90 * 86400;
    kr.latest_version = kr.min_decryption_version = kr.min_encryption_version = 1;
    kr.created_at = kr.updated_at = kr.rotated_at = 1700000000;
    memset(kr.mac, 0xA1, sizeof kr.mac);
    return kr;
}

struct store_version
mk_version(uint32_t version, uint8_t fill)
{
    struct store_version v = {0};

    v.version = version;
    snprintf(v.root_key_id, sizeof v.root_key_id, "0123456789abcdef");
    v.wrapped_len = 40;
    memset(v.wrapped, fill, v.wrapped_len);
    v.created_at = 1700000000 + version;
    memset(v.mac, fill ^ 0xFF, sizeof v.mac);
    return v;
}

struct store_apikey
mk_apikey(const char *id, int64_t app_id, int64_t created_at)
{
    struct store_apikey k = {0};

    snprintf(k.id, sizeof k.id, "%s", id);
    k.app_id = app_id;
    memset(k.hash, 0x5A, sizeof k.hash);
    snprintf(k.scopes, sizeof k.scopes, "encrypt decrypt");
    snprintf(k.keyrings, sizeof k.keyrings, "tenant-a tenant-b");
    k.created_at = created_at;
    k.expires_at = created_at + 86400;
    memset(k.mac, 0x3C, sizeof k.mac);
    return k;
}

struct store_app
mk_app(const char *name)
{
    struct store_app a = {0};

    snprintf(a.name, sizeof a.name, "%s", name);
    snprintf(a.description, sizeof a.description, "the %s app", name);
    a.created_at = 1700000000;
    return a;
}

/* Field by field: struct padding is not part of the contract. */
void
assert_keyring_eq(const struct store_keyring *a, const struct store_keyring *b)
{
    assert_int_equal(a->id, b->id);
    assert_string_equal(a->name, b->name);
    assert_string_equal(a->algorithm, b->algorithm);
    assert_int_equal(a->deterministic, b->deterministic);
    assert_int_equal(a->rotation_period, b->rotation_period);
    assert_int_equal(a->deletion_allowed, b->deletion_allowed);
    assert_int_equal(a->latest_version, b->latest_version);
    assert_int_equal(a->min_decryption_version, b->min_decryption_version);
    assert_int_equal(a->min_encryption_version, b->min_encryption_version);
    assert_int_equal(a->created_at, b->created_at);
    assert_int_equal(a->updated_at, b->updated_at);
    assert_int_equal(a->rotated_at, b->rotated_at);
    assert_memory_equal(a->mac, b->mac, STORE_MAC_BYTES);
}

void
assert_version_eq(const struct store_version *a, const struct store_version *b)
{
    assert_int_equal(a->keyring_id, b->keyring_id);
    assert_int_equal(a->version, b->version);
    assert_string_equal(a->root_key_id, b->root_key_id);
    assert_int_equal(a->wrapped_len, b->wrapped_len);
    assert_memory_equal(a->wrapped, b->wrapped, a->wrapped_len);
    assert_int_equal(a->created_at, b->created_at);
    assert_int_equal(a->encryptions_reserved, b->encryptions_reserved);
    assert_memory_equal(a->mac, b->mac, STORE_MAC_BYTES);
}

void
assert_apikey_eq(const struct store_apikey *a, const struct store_apikey *b)
{
    assert_string_equal(a->id, b->id);
    assert_int_equal(a->app_id, b->app_id);
    assert_string_equal(a->app_name, b->app_name);
    assert_memory_equal(a->hash, b->hash, sizeof a->hash);
    assert_string_equal(a->scopes, b->scopes);
    assert_string_equal(a->keyrings, b->keyrings);
    assert_int_equal(a->created_at, b->created_at);
    assert_int_equal(a->expires_at, b->expires_at);
    assert_int_equal(a->revoked_at, b->revoked_at);
    assert_memory_equal(a->mac, b->mac, STORE_MAC_BYTES);
}
