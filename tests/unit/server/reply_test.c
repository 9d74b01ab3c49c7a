/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/server/reply_test.c -- the handlers' JSON answers (reply_jansson, which the key
 * create and key rotate routes answer through) take the secret-body path, so a new API key's
 * text is wiped when the response is freed (issue 6, finding 6). handlers/common.c is compiled
 * in; the HTTP layer and the counters it reads are stubbed here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <sodium.h>

#include "common/json/jsonx.h"
#include "server/audit/audit.h"
#include "server/handlers/handlers.h"
#include "server/service.h"

/* What the last reply handed to the HTTP layer. */
static struct {
    int calls;
    unsigned code;
    bool secret;
    char body[512];
} got;

static void
record(unsigned code, struct sbuf *b)
{
    size_t n = 0;
    char *p = sbuf_take(b, &n);

    got.calls++;
    got.code = code;
    got.secret = b->secret; /* sbuf_take leaves the flag: queue() reads it after taking */
    snprintf(got.body, sizeof got.body, "%.*s", (int)n, p);
    sbuf_wipe_free(p, n);
}

void
req_reply_json(struct req *r, unsigned code, struct sbuf *body)
{
    (void)r;
    record(code, body);
}

void
req_reply_raw(struct req *r, unsigned code, const char *content_type, struct sbuf *body)
{
    (void)r;
    (void)content_type;
    record(code, body);
}

bool
service_db_ready(struct service *s)
{
    (void)s;
    return true;
}

void
req_fail(struct req *r, enum status st, const char *msg)
{
    (void)r;
    (void)msg;
    got.calls++;
    got.code = (unsigned)st;
}

static void
test_json_answers_are_secret_bodies(void **state)
{
    static const char key[] = "dgk_AAAAAAAAAAAAAAAAsecretsecretsecretsecretsecretsecretsecr000000";
    struct req r = {0};

    (void)state;
    memset(&got, 0, sizeof got);
    /* the shape of a key create / rotate answer: the key object with its text */
    reply_jansson(
        &r, 201,
        json_pack("{s:s, s:s, s:[s]}", "id", "AAAAAAAAAAAAAAAA", "key", key, "scopes", "encrypt"));
    assert_int_equal(got.calls, 1);
    assert_int_equal(got.code, 201);
    assert_true(got.secret);
    assert_non_null(strstr(got.body, key));
    /* any other JSON answer too: nothing depends on a handler remembering to ask */
    memset(&got, 0, sizeof got);
    reply_jansson(&r, 200, json_pack("{s:[]}", "keyrings"));
    assert_int_equal(got.calls, 1);
    assert_true(got.secret);
    assert_string_equal(got.body, "{\"keyrings\":[]}");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_answers_are_secret_bodies),
    };

    if (sodium_init() < 0)
        return 1;
    jx_init();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
