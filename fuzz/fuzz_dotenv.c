/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_dotenv -- the dotenv parser behind `difyguard env` (cli/dotenv.c). Oracles: a parsed
 * file renders back byte for byte; every value, written back in each quoting style, parses to
 * the same value; a value holds no NUL; a duplicate points at an earlier line. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli/dotenv.h"

static void
check_value(const struct dotenv_var *v, enum dotenv_quote pref)
{
    struct sbuf line = {.secret = true};
    struct dotenv d2;
    size_t err_line;
    const char *why;

    sbuf_adds(&line, "X=");
    dotenv_quote(&line, v->value, v->value_len, pref);
    sbuf_adds(&line, "\n");
    if (dotenv_parse(&d2, line.p, line.len, &err_line, &why) != ST_OK || d2.n != 1 ||
        d2.v[0].value_len != v->value_len || memcmp(d2.v[0].value, v->value, v->value_len) != 0)
        abort(); /* a value written back does not read the same */
    dotenv_free(&d2);
    sbuf_free(&line);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dotenv d;
    struct sbuf out = {.secret = true};
    size_t err_line;
    const char *why;

    if (dotenv_parse(&d, (const char *)data, size, &err_line, &why) != ST_OK) {
        if (why == NULL || err_line == 0 || d.n != 0)
            abort(); /* a refusal says why and where, and keeps nothing */
        return 0;
    }
    dotenv_render(&out, &d, NULL);
    if (out.len != size || (size > 0 && memcmp(out.p, data, size) != 0))
        abort(); /* rendering without changes is the identity */
    sbuf_free(&out);
    for (size_t i = 0; i < d.n; i++) {
        const struct dotenv_var *v = &d.v[i];
        if (memchr(v->value, '\0', v->value_len) != NULL || v->line == 0 ||
            (v->dup_line != 0 && (v->dup_line >= v->line || strcmp(v->name, "") == 0)))
            abort();
        check_value(v, DOTENV_BARE);
        check_value(v, DOTENV_SINGLE);
        check_value(v, DOTENV_DOUBLE);
    }
    dotenv_free(&d);
    return 0;
}
