/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/store/schema_test.c -- every SQLite migration has a PostgreSQL twin defining the same
 * tables, columns and indexes (reads migrations/ from DG_SOURCE_DIR). */
#include <ctype.h>
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fixtures.h"

/* --- the two schemas stay in step --- */

#define MAX_TOKENS 4096
#define MAX_NAMES 256

struct toks {
    char t[MAX_TOKENS][64];
    size_t n;
};

/* Identifiers (lower-cased), quoted strings and single punctuation; comments skipped. */
static void
tokenize(const char *src, struct toks *out)
{
    const char *p = src;

    out->n = 0;
    while (*p != '\0' && out->n < MAX_TOKENS) {
        size_t len = 0;
        if (isspace((unsigned char)*p)) {
            p++;
            continue;
        }
        if (p[0] == '-' && p[1] == '-') {
            while (*p != '\0' && *p != '\n')
                p++;
            continue;
        }
        if (isalnum((unsigned char)*p) || *p == '_') {
            while (isalnum((unsigned char)p[len]) || p[len] == '_')
                len++;
        } else if (*p == '\'' || *p == '"') {
            len = 1;
            while (p[len] != '\0' && p[len] != *p)
                len++;
            len += p[len] != '\0';
        } else {
            len = 1;
        }
        size_t keep = len < 63 ? len : 63;
        for (size_t i = 0; i < keep; i++)
            out->t[out->n][i] = (char)tolower((unsigned char)p[i]);
        out->t[out->n][keep] = '\0';
        out->n++;
        p += len;
    }
}

static int
cmp_str(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

/* "table.column" for every column of every CREATE TABLE, "index:name" for every index; sorted. */
static size_t
schema_names(const char *path, char names[MAX_NAMES][160])
{
    static struct toks tk;
    size_t count = 0;
    char *src = NULL;
    long len;
    FILE *fp = fopen(path, "rb");

    if (fp == NULL)
        fail_msg("cannot open %s", path);
    fseek(fp, 0, SEEK_END);
    len = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    src = calloc(1, (size_t)len + 1);
    assert_non_null(src);
    assert_int_equal(fread(src, 1, (size_t)len, fp), (size_t)len);
    fclose(fp);
    tokenize(src, &tk);
    free(src);

    for (size_t i = 0; i + 2 < tk.n; i++) {
        if (i + 5 < tk.n && strcmp(tk.t[i], "alter") == 0 && strcmp(tk.t[i + 1], "table") == 0 &&
            strcmp(tk.t[i + 3], "add") == 0 && strcmp(tk.t[i + 4], "column") == 0) {
            assert_true(count < MAX_NAMES);
            snprintf(names[count++], 160, "%s.%s", tk.t[i + 2], tk.t[i + 5]);
            continue;
        }
        if (strcmp(tk.t[i], "create") != 0)
            continue;
        size_t j = i + 1;
        if (strcmp(tk.t[j], "unique") == 0)
            j++;
        bool table = strcmp(tk.t[j], "table") == 0, index = strcmp(tk.t[j], "index") == 0;
        if (!table && !index)
            continue;
        j++;
        if (strcmp(tk.t[j], "if") == 0) /* IF NOT EXISTS */
            j += 3;
        const char *name = tk.t[j++];
        if (index) {
            snprintf(names[count++], 160, "index:%s", name);
            continue;
        }
        assert_string_equal(tk.t[j], "(");
        int depth = 1;
        bool first = true; /* at the first token of a column definition */
        for (j++; j < tk.n && depth > 0; j++) {
            const char *t = tk.t[j];
            if (strcmp(t, "(") == 0) {
                depth++;
            } else if (strcmp(t, ")") == 0) {
                depth--;
            } else if (depth == 1 && strcmp(t, ",") == 0) {
                first = true;
            } else if (first && depth == 1) {
                first = false;
                if (strcmp(t, "primary") != 0 && strcmp(t, "unique") != 0 &&
                    strcmp(t, "foreign") != 0 && strcmp(t, "check") != 0 &&
                    strcmp(t, "constraint") != 0) {
                    assert_true(count < MAX_NAMES);
                    snprintf(names[count++], 160, "%s.%s", name, t);
                }
            }
        }
    }
    qsort(names, count, sizeof names[0], cmp_str);
    return count;
}

/* Compare one migration's two dialects; returns the number of names in the SQLite file. */
static size_t
compare_schemas(const char *src, const char *file)
{
    static char lite[MAX_NAMES][160], pg[MAX_NAMES][160];
    char path[512];
    size_t nl, np, bad = 0;

    snprintf(path, sizeof path, "%s/migrations/sqlite/%s", src, file);
    nl = schema_names(path, lite);
    snprintf(path, sizeof path, "%s/migrations/postgres/%s", src, file);
    np = schema_names(path, pg);
    for (size_t i = 0, j = 0; i < nl || j < np;) {
        int c = i == nl ? 1 : j == np ? -1 : strcmp(lite[i], pg[j]);
        if (c == 0) {
            i++;
            j++;
        } else if (c < 0) {
            fprintf(stderr, "%s: only in sqlite: %s\n", file, lite[i++]);
            bad++;
        } else {
            fprintf(stderr, "%s: only in postgres: %s\n", file, pg[j++]);
            bad++;
        }
    }
    assert_int_equal(bad, 0);
    if (strcmp(file, "0001_init.sql") == 0) {
        /* The parser did find the schema: 7 tables, 41 columns and an index. */
        assert_int_equal(nl, 42);
        const char *const expect[] = {"api_keys.revoked_at", "index:api_keys_by_app",
                                      "key_versions.mac", "keyrings.min_encryption_version",
                                      "schema_version.applied_at"};
        for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++)
            assert_non_null(bsearch(expect[i], lite, nl, sizeof lite[0], cmp_str));
    }
    return nl;
}

/* Every SQLite migration has a PostgreSQL twin with the same tables, columns and indexes. */
static void
test_schemas_in_step(void **state)
{
    const char *src = getenv("DG_SOURCE_DIR");
    char dir[512];
    struct dirent *e;
    int files = 0;

    (void)state;
    if (src == NULL)
        fail_msg("DG_SOURCE_DIR is not set (run through ctest)");
    snprintf(dir, sizeof dir, "%s/migrations/sqlite", src);
    DIR *d = opendir(dir);
    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n < 5 || strcmp(e->d_name + n - 4, ".sql") != 0)
            continue;
        assert_true(compare_schemas(src, e->d_name) > 0);
        files++;
    }
    closedir(d);
    assert_int_equal(files, SCHEMA);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schemas_in_step),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
