/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/policies/policies_test.c -- the compliance evaluator from tables: every check against
 * hand-written inventories, one row per check and outcome (checks_table.json over
 * inventories.json); every pack of policies/packs loads and every control gives its expected
 * result on a compliant, a non-compliant and a certificate-less inventory (packs_expect.json);
 * malformed packs and overrides are clear errors at load; evidence keeps failing items first. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "invjson.h"
#include "policies/builtin.h"
#include "policies/eval.h"
#include "policies/pack.h"

static json_t *inventories;

static json_t *
load_json(const char *rel)
{
    size_t len;
    char *text = invjson_read_source(rel, &len);
    json_error_t je;
    json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (j == NULL)
        fail_msg("%s: line %d: %s", rel, je.line, je.text);
    free(text);
    return j;
}

static bool
mentions(const struct ctl_outcome *o, const char *words)
{
    if (strstr(o->summary, words) != NULL)
        return true;
    for (size_t i = 0; i < o->n_findings; i++)
        if (strstr(o->findings[i].detail, words) != NULL ||
            strstr(o->findings[i].subject, words) != NULL)
            return true;
    return false;
}

/* A row's parameters: the check's defaults, then the row's values. */
static void
row_params(struct param *p, const struct check *c, const json_t *given, size_t row)
{
    const char *why = NULL, *key;
    json_t *v;
    char num[32];

    for (size_t i = 0; i < c->n_params; i++) {
        const struct param_def *d = &c->params[i];
        const json_t *g = json_object_get(given, d->name);
        const char *text = d->def;
        if (json_is_string(g)) {
            text = json_string_value(g);
        } else if (json_is_integer(g)) {
            snprintf(num, sizeof num, "%lld", (long long)json_integer_value(g));
            text = num;
        }
        if (text == NULL || !param_parse(&p[i], d, text, strlen(text), &why))
            fail_msg("row %zu: parameter %s: %s", row, d->name, why ? why : "missing");
    }
    json_object_foreach ((json_t *)given, key, v) {
        size_t i = 0;
        while (i < c->n_params && strcmp(c->params[i].name, key) != 0)
            i++;
        if (i == c->n_params)
            fail_msg("row %zu: check %s has no parameter %s", row, c->name, key);
    }
}

static void
test_checks_table(void **state)
{
    json_t *table = load_json("tests/unit/policies/checks_table.json"), *row;
    size_t n_checks, i;
    const struct check *all = checks_all(&n_checks);
    bool *seen = calloc(n_checks, sizeof *seen);

    (void)state;
    json_array_foreach (json_object_get(table, "rows"), i, row) {
        const char *name = json_string_value(json_array_get(row, 0));
        const char *inv_name = json_string_value(json_array_get(row, 2));
        const char *want = json_string_value(json_array_get(row, 3));
        const char *words = json_string_value(json_array_get(row, 4));
        const struct check *c = check_find(name);
        struct param params[CHECK_MAX_PARAMS];
        struct inventory inv;
        struct ctl_outcome out;

        if (c == NULL || inv_name == NULL || want == NULL || words == NULL)
            fail_msg("row %zu: malformed (unknown check %s?)", i, name ? name : "?");
        seen[c - all] = true;
        row_params(params, c, json_array_get(row, 1), i);
        invjson_load(&inv, inventories, inv_name);
        check_run(c, &inv, params, &out);
        if (strcmp(ctl_result_name(out.result), want) != 0 || !mentions(&out, words))
            fail_msg("row %zu (%s on %s): want %s \"%s\", got %s: %s%s%s", i, name, inv_name, want,
                     words, ctl_result_name(out.result), out.summary, out.n_findings ? " / " : "",
                     out.n_findings ? out.findings[0].detail : "");
        assert_true(out.checked >= out.failing);
        assert_true((out.result == CTL_FAIL) == (out.failing > 0));
        inventory_free(&inv);
    }
    for (i = 0; i < n_checks; i++)
        if (!seen[i])
            fail_msg("check %s has no row in checks_table.json", all[i].name);
    free(seen);
    json_decref(table);
}

static struct pack *
pack_file(const char *name)
{
    char rel[256], err[256];
    size_t len;
    struct pack *p = NULL;

    snprintf(rel, sizeof rel, "policies/packs/%s", name);
    char *text = invjson_read_source(rel, &len);
    if (pack_parse(&p, text, len, err, sizeof err) != ST_OK)
        fail_msg("%s: %s", rel, err);
    free(text);
    return p;
}

/* Each pack's controls against the three inventories; both lists must match exactly. */
static void
pack_expectations(const struct pack *p, const json_t *want)
{
    static const char *const invs[] = {"compliant", "noncompliant", "no_certs"};
    const char *key;
    json_t *v;

    if (!json_is_object(want))
        fail_msg("pack %s has no entry in packs_expect.json", p->id);
    json_object_foreach ((json_t *)want, key, v) {
        if (pack_control(p, key) == NULL)
            fail_msg("packs_expect.json: %s/%s is not a control of the pack", p->id, key);
    }
    for (size_t k = 0; k < 3; k++) {
        struct inventory inv;
        struct evaluation ev;
        invjson_load(&inv, inventories, invs[k]);
        eval_run(&ev, p, &inv);
        assert_int_equal(ev.n, p->n_controls);
        assert_int_equal(ev.evaluated_at, inv.now);
        size_t total = 0;
        for (size_t r = 0; r < CTL__COUNT; r++)
            total += ev.counts[r];
        assert_int_equal(total, ev.n);
        for (size_t i = 0; i < ev.n; i++) {
            const char *id = ev.items[i].control->id;
            const char *exp = json_string_value(json_array_get(json_object_get(want, id), k));
            const char *got = ctl_result_name(ev.items[i].out.result);
            if (exp == NULL)
                fail_msg("packs_expect.json lacks %s/%s", p->id, id);
            if (strcmp(exp, got) != 0)
                fail_msg("%s/%s on %s: want %s, got %s: %s", p->id, id, invs[k], exp, got,
                         ev.items[i].out.summary);
        }
        eval_free(&ev);
        inventory_free(&inv);
    }
}

static void
test_every_pack(void **state)
{
    json_t *expect = load_json("tests/unit/policies/packs_expect.json");
    const char *src = getenv("DG_SOURCE_DIR");
    char dirpath[1024];
    struct dirent *e;
    size_t n = 0;

    (void)state;
    snprintf(dirpath, sizeof dirpath, "%s/policies/packs", src != NULL ? src : ".");
    DIR *d = opendir(dirpath);
    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".json") != 0)
            continue;
        struct pack *p = pack_file(e->d_name);
        assert_true(p->n_controls > 0);
        for (size_t i = 0; i < p->n_controls; i++)
            assert_non_null(check_find(p->controls[i].check->name));
        pack_expectations(p, json_object_get(expect, p->id));
        pack_free(p);
        n++;
    }
    closedir(d);
    assert_int_equal(n, json_object_size(expect) - 1); /* every entry but "_" is a pack */
    json_decref(expect);
}

/* The packs the issue names are all there. */
static void
test_the_five_frameworks(void **state)
{
    static const char *const files[] = {"baseline.json", "pci-dss-4.0.json", "soc2.json",
                                        "iso27001-2022.json", "mlps-2.0.json"};
    (void)state;
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        struct pack *p = pack_file(files[i]);
        pack_free(p);
    }
    struct pack *pci = pack_file("pci-dss-4.0.json");
    const struct control *c = pack_control(pci, "pci-10.5.1-retention");
    assert_non_null(c);
    assert_string_equal(c->refs[0], "PCI DSS 10.5.1");
    assert_int_equal(c->params[0].num, 365 * 86400);
    pack_free(pci);
}

/* The packs built into the binary are the files of policies/packs, byte for byte. */
static void
test_builtin_packs_are_the_files(void **state)
{
    (void)state;
    assert_int_equal(policies_builtin_n, 5);
    for (size_t i = 0; i < policies_builtin_n; i++) {
        char rel[256];
        size_t len;
        snprintf(rel, sizeof rel, "policies/packs/%s", policies_builtin_packs[i].file);
        char *text = invjson_read_source(rel, &len);
        assert_int_equal(len, policies_builtin_packs[i].len);
        assert_memory_equal(text, policies_builtin_packs[i].text, len);
        free(text);
    }
}

#define GOOD_HEAD                                                                                  \
    "{\"format\":\"difyguard-policy-pack-v1\",\"id\":\"t\",\"name\":\"T\","                        \
    "\"framework\":\"F\",\"version\":\"1\",\"controls\":["
#define CTL(rest) "{\"id\":\"c1\",\"title\":\"T\",\"refs\":[\"R 1\"],\"severity\":\"low\"," rest "}"

static void
test_bad_packs(void **state)
{
    static const struct {
        const char *text, *words;
    } cases[] = {
        {"", "not JSON"},
        {"[]", "a pack must be a JSON object"},
        {"{\"format\":\"x\"}", "\"format\" must be \"difyguard-policy-pack-v1\""},
        {GOOD_HEAD "]}", "\"controls\" must be a list of 1 to"},
        {GOOD_HEAD CTL("\"check\":\"no_such_check\"") "]}",
         "controls[0] (id c1): unknown check \"no_such_check\""},
        {GOOD_HEAD CTL("\"check\":\"manual\"") "]}",
         "parameter \"evidence\" of check \"manual\" is required"},
        {GOOD_HEAD CTL("\"check\":\"apikey_unused\",\"params\":{\"max_idel\":\"1d\"}") "]}",
         "check \"apikey_unused\" has no parameter \"max_idel\""},
        {GOOD_HEAD CTL("\"check\":\"apikey_unused\",\"params\":{\"max_idle\":\"soon\"}") "]}",
         "parameter \"max_idle\" is not a duration"},
        {GOOD_HEAD CTL("\"check\":\"apikey_unused\",\"params\":{\"max_idle\":-5}") "]}",
         "parameter \"max_idle\" must be a string or a non-negative integer"},
        {GOOD_HEAD CTL(
             "\"check\":\"key_version_encryptions\",\"params\":{\"max_percent\":101}") "]}",
         "is not an integer from 1 to 100"},
        {GOOD_HEAD CTL("\"check\":\"apikey_scopes\",\"params\":[]") "]}",
         "\"params\" must be an object"},
        {GOOD_HEAD CTL("\"check\":\"apikey_scopes\"") "," CTL("\"check\":\"apikey_scopes\"") "]}",
         "controls[1]: id \"c1\" is used twice"},
        {GOOD_HEAD CTL("\"check\":\"apikey_scopes\",\"extra\":1") "]}",
         "controls[0] (id c1): unknown member \"extra\""},
        {GOOD_HEAD "{\"id\":\"C 1\"}]}", "\"id\" must match"},
        {GOOD_HEAD "{\"id\":\"c1\",\"title\":\"a\\u0007b\",\"refs\":[\"R\"],\"severity\":\"low\","
                   "\"check\":\"apikey_scopes\"}]}",
         "\"title\" must be a string of printable UTF-8"},
        {GOOD_HEAD "{\"id\":\"c1\",\"title\":\"T\",\"refs\":[],\"severity\":\"low\",\"check\":"
                   "\"apikey_scopes\"}]}",
         "\"refs\" must be a list of 1 to"},
        {GOOD_HEAD "{\"id\":\"c1\",\"title\":\"T\",\"refs\":[\"R\"],\"severity\":\"urgent\","
                   "\"check\":\"apikey_scopes\"}]}",
         "severity must be low, medium, high or critical"},
        {GOOD_HEAD "{\"id\":\"c1\",\"title\":\"T\",\"refs\":[\"R\"],\"severity\":\"low\"}]}",
         "\"check\" is required"},
        {GOOD_HEAD CTL("\"check\":\"apikey_scopes\"") "], \"id\":\"t\"}",
         "not JSON"}, /* duplicate key */
        {"{\"format\":\"difyguard-policy-pack-v1\",\"id\":\"t\",\"extra\":1}",
         "pack: unknown member \"extra\""},
    };
    char err[256];
    struct pack *p = (struct pack *)1;

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        err[0] = '\0';
        if (pack_parse(&p, cases[i].text, strlen(cases[i].text), err, sizeof err) != ST_INVALID ||
            p != NULL || strstr(err, cases[i].words) == NULL)
            fail_msg("case %zu: want \"%s\", got \"%s\"", i, cases[i].words, err);
    }
    /* A good one parses, with the check's defaults. */
    const char good[] = GOOD_HEAD CTL("\"check\":\"apikey_unused\"") "]}";
    assert_int_equal(pack_parse(&p, good, strlen(good), err, sizeof err), ST_OK);
    assert_string_equal(p->controls[0].params[0].text, "90d");
    pack_free(p);
    /* Too big. */
    size_t big = PACK_TEXT_MAX + 1;
    char *text = calloc(1, big + 1);
    memset(text, ' ', big);
    assert_int_equal(pack_parse(&p, text, big, err, sizeof err), ST_INVALID);
    assert_non_null(strstr(err, "larger than"));
    free(text);
}

static void
test_overrides(void **state)
{
    static const struct {
        const char *text, *words;
    } bad[] = {
        {"{\"nope\":{}}", "no pack \"nope\" is loaded"},
        {"{\"baseline\":{\"nope\":{}}}", "pack \"baseline\" has no control \"nope\""},
        {"{\"baseline\":{\"api-key-unused\":{\"max_age\":\"1d\"}}}",
         "has no parameter \"max_age\""},
        {"{\"baseline\":{\"api-key-unused\":{\"max_idle\":\"x\"}}}", "is not a duration"},
        {"{\"baseline\":{\"api-key-unused\":5}}", "must be an object of parameters"},
        {"[1]", "must be an object of pack ids"},
        {"{", "not JSON"},
    };
    struct pack *p = pack_file("baseline.json");
    struct pack *packs[] = {p};
    const char *ok = "{\"baseline\":{\"key-cryptoperiod\":{\"max_age\":\"180d\"},"
                     "\"api-key-unused\":{\"max_idle\":2592000}}}";
    const char *half = "{\"baseline\":{\"key-cryptoperiod\":{\"max_age\":\"1d\"},"
                       "\"api-key-unused\":{\"max_idle\":\"x\"}}}";
    char err[256];

    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        if (packs_override(packs, 1, bad[i].text, strlen(bad[i].text), err, sizeof err) !=
                ST_INVALID ||
            strstr(err, bad[i].words) == NULL)
            fail_msg("override %zu: want \"%s\", got \"%s\"", i, bad[i].words, err);
    }
    assert_int_equal(packs_override(packs, 1, ok, strlen(ok), err, sizeof err), ST_OK);
    assert_string_equal(pack_control(p, "key-cryptoperiod")->params[0].text, "180d");
    assert_int_equal(pack_control(p, "api-key-unused")->params[0].num, 30 * 86400);
    assert_string_equal(pack_control(p, "api-key-unused")->params[0].text, "30d");
    /* all or nothing: a bad value later leaves the earlier good one unapplied */
    assert_int_equal(packs_override(packs, 1, half, strlen(half), err, sizeof err), ST_INVALID);
    assert_string_equal(pack_control(p, "key-cryptoperiod")->params[0].text, "180d");
    pack_free(p);
}

/* 30 passing keyrings and one failing: the failing one is kept among the 20 findings. */
static void
test_findings_keep_failures(void **state)
{
    struct inventory inv;
    struct ctl_outcome out;
    struct param p[CHECK_MAX_PARAMS];
    const struct check *c = check_find("keyring_rotation_policy");
    const char *why;

    (void)state;
    invjson_load(&inv, inventories, "compliant");
    free(inv.keyrings[0].versions);
    free(inv.keyrings[1].versions);
    free(inv.keyrings);
    inv.n_keyrings = 31;
    inv.keyrings = calloc(31, sizeof *inv.keyrings);
    for (size_t i = 0; i < 31; i++) {
        snprintf(inv.keyrings[i].name, sizeof inv.keyrings[i].name, "kr-%zu", i);
        inv.keyrings[i].rotation_period = i == 30 ? 0 : 86400;
    }
    assert_true(param_parse(&p[0], &c->params[0], "365d", 4, &why));
    check_run(c, &inv, p, &out);
    assert_int_equal(out.result, CTL_FAIL);
    assert_int_equal(out.checked, 31);
    assert_int_equal(out.failing, 1);
    assert_int_equal(out.n_findings, OUTCOME_FINDINGS_MAX);
    bool kept = false;
    for (size_t i = 0; i < out.n_findings; i++)
        kept |= !out.findings[i].ok && strcmp(out.findings[i].subject, "keyring kr-30") == 0;
    assert_true(kept);
    assert_string_equal(out.summary, "1 of 31 keyrings fail");
    inventory_free(&inv);
}

static void
test_param_spellings(void **state)
{
    static const struct param_def dur = {"d", PARAM_DURATION, "1d", ""};
    static const struct param_def cnt = {"c", PARAM_COUNT, "1", ""};
    static const struct param_def txt = {"t", PARAM_TEXT, "x", ""};
    struct param p;
    const char *why;

    (void)state;
    assert_true(param_parse(&p, &dur, "86400", 5, &why));
    assert_string_equal(p.text, "1d");
    assert_true(param_parse(&p, &dur, "90m", 3, &why));
    assert_string_equal(p.text, "90m");
    assert_true(param_parse(&p, &dur, "3601", 4, &why));
    assert_string_equal(p.text, "3601s");
    assert_false(param_parse(&p, &dur, "3651d", 5, &why));
    assert_false(param_parse(&p, &cnt, "-1", 2, &why));
    assert_false(param_parse(&p, &cnt, "1234567890123456789", 19, &why));
    assert_true(param_parse(&p, &cnt, "4294967296", 10, &why));
    assert_int_equal(p.num, INT64_C(4294967296));
    assert_false(param_parse(&p, &txt, "", 0, &why));
    assert_false(param_parse(&p, &txt, "a\nb", 3, &why));
    assert_false(param_parse(&p, &txt, "a\0b", 3, &why));
    assert_true(param_parse(&p, &txt, "密评 report", strlen("密评 report"), &why));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checks_table),
        cmocka_unit_test(test_every_pack),
        cmocka_unit_test(test_the_five_frameworks),
        cmocka_unit_test(test_bad_packs),
        cmocka_unit_test(test_overrides),
        cmocka_unit_test(test_findings_keep_failures),
        cmocka_unit_test(test_param_spellings),
        cmocka_unit_test(test_builtin_packs_are_the_files),
    };
    inventories = load_json("tests/unit/policies/inventories.json");
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    json_decref(inventories);
    return rc;
}
