/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/server/auth/authz_test.c -- the Authorization header classifier: scheme case, exact
 * spacing, API keys with their checksum, JWT shape, and everything in between refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "crypto/apikey.h"
#include "crypto/init.h"
#include "crypto/secret.h"
#include "server/auth/authz.h"

static enum authz_kind
kind_of(const char *h)
{
    struct authz a;
    enum status st = authz_parse(h, h ? strlen(h) : 0, &a);

    assert_int_equal(st, a.kind == AUTHZ_INVALID ? ST_UNAUTHENTICATED : ST_OK);
    if (st != ST_OK) {
        assert_null(a.token);
        assert_int_equal(a.token_len, 0);
        assert_string_equal(a.key_id, "");
    }
    return a.kind;
}

static void
test_api_key(void **state)
{
    char key[APIKEY_TEXT_CHARS + 1], id[APIKEY_ID_CHARS + 1], h[128];
    const char *schemes[] = {"Bearer", "bearer", "BEARER", "bEaReR"};
    struct authz a;

    (void)state;
    apikey_generate(key, id);
    for (size_t i = 0; i < 4; i++) {
        snprintf(h, sizeof h, "%s %s", schemes[i], key);
        assert_int_equal(authz_parse(h, strlen(h), &a), ST_OK);
        assert_int_equal(a.kind, AUTHZ_APIKEY);
        assert_string_equal(a.key_id, id);
        assert_ptr_equal(a.token, h + 7);
        assert_int_equal(a.token_len, APIKEY_TEXT_CHARS);
    }
    /* Any changed character breaks the checksum or the alphabet. */
    snprintf(h, sizeof h, "Bearer %s", key);
    for (size_t i = 7; i < strlen(h); i++) {
        char was = h[i];
        h[i] = was == 'a' ? 'b' : 'a';
        assert_int_equal(kind_of(h), AUTHZ_INVALID);
        h[i] = was;
    }
    snprintf(h, sizeof h, "Bearer %s ", key);
    assert_int_equal(kind_of(h), AUTHZ_INVALID);
    snprintf(h, sizeof h, "Bearer %sA", key);
    assert_int_equal(kind_of(h), AUTHZ_INVALID);
    h[strlen(h) - 2] = '\0';
    assert_int_equal(kind_of(h), AUTHZ_INVALID);
    assert_int_equal(kind_of("Bearer dgk_"), AUTHZ_INVALID);
    /* A key with a dgk_ prefix is never reinterpreted as a JWT. */
    assert_int_equal(kind_of("Bearer dgk_a.b.c"), AUTHZ_INVALID);
}

static void
test_jwt_shape(void **state)
{
    struct authz a;
    const char *h = "Bearer eyJhbGciOiJIUzI1NiJ9.e30.c2ln";

    (void)state;
    assert_int_equal(authz_parse(h, strlen(h), &a), ST_OK);
    assert_int_equal(a.kind, AUTHZ_JWT);
    assert_int_equal(a.token_len, strlen(h) - 7);
    assert_string_equal(a.key_id, "");
    assert_int_equal(kind_of("bearer a.b."), AUTHZ_JWT); /* alg none shape: jwt_verify says */
    assert_int_equal(kind_of("Bearer a-_.b.c"), AUTHZ_JWT);
    assert_int_equal(kind_of("Bearer a.b"), AUTHZ_INVALID);
    assert_int_equal(kind_of("Bearer a..c"), AUTHZ_INVALID);
    assert_int_equal(kind_of("Bearer .b.c"), AUTHZ_INVALID);
    assert_int_equal(kind_of("Bearer a.b.c.d"), AUTHZ_INVALID);
    assert_int_equal(kind_of("Bearer a.b.c="), AUTHZ_INVALID);
    assert_int_equal(kind_of("Bearer a+.b.c"), AUTHZ_INVALID);
    assert_int_equal(kind_of("Bearer a.b.c "), AUTHZ_INVALID);
    assert_int_equal(kind_of("Bearer a.b.c\r\n"), AUTHZ_INVALID);
    assert_int_equal(kind_of("Bearer abc"), AUTHZ_INVALID);
}

static void
test_scheme_and_spacing(void **state)
{
    struct authz a;
    char big[AUTHZ_HEADER_MAX + 8];

    (void)state;
    assert_int_equal(kind_of(NULL), AUTHZ_INVALID);
    assert_int_equal(kind_of(""), AUTHZ_INVALID);
    assert_int_equal(kind_of("Bearer"), AUTHZ_INVALID);
    assert_int_equal(kind_of("Bearer "), AUTHZ_INVALID);
    assert_int_equal(kind_of("Bearer  a.b.c"), AUTHZ_INVALID);
    assert_int_equal(kind_of(" Bearer a.b.c"), AUTHZ_INVALID);
    assert_int_equal(kind_of("Bearer\ta.b.c"), AUTHZ_INVALID);
    assert_int_equal(kind_of("Bearera.b.c"), AUTHZ_INVALID);
    assert_int_equal(kind_of("Basic dXNlcjpwYXNz"), AUTHZ_INVALID);
    assert_int_equal(kind_of("Token a.b.c"), AUTHZ_INVALID);
    assert_int_equal(kind_of("Bearen a.b.c"), AUTHZ_INVALID);
    /* Embedded NUL: the length counts, not the terminator. */
    assert_int_equal(authz_parse("Bearer a.b.c\0x", 14, &a), ST_UNAUTHENTICATED);
    assert_int_equal(authz_parse("Bea\0er a.b.c", 12, &a), ST_UNAUTHENTICATED);
    /* Length bound: the largest JWT passes, one more byte does not. */
    memset(big, 'A', sizeof big);
    memcpy(big, "Bearer ", 7);
    big[20] = '.';
    big[30] = '.';
    assert_int_equal(authz_parse(big, AUTHZ_HEADER_MAX, &a), ST_OK);
    assert_int_equal(a.kind, AUTHZ_JWT);
    assert_int_equal(authz_parse(big, AUTHZ_HEADER_MAX + 1, &a), ST_UNAUTHENTICATED);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_api_key),
        cmocka_unit_test(test_jwt_shape),
        cmocka_unit_test(test_scheme_and_spacing),
    };
    if (crypto_init() != ST_OK)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
