/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz/fuzz_policy_pack.c -- policy packs and the operator's overrides (policies/pack.h). Input:
 * pack text, optionally "\f" and override text for that pack. Whatever is accepted is then
 * evaluated against a small snapshot (every check runs with the parameters accepted).
 * Oracles: an accepted pack holds only valid ids and known checks, and every parameter's
 * canonical text parses back to the same value; overrides are all or nothing. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/names.h"
#include "policies/eval.h"
#include "policies/pack.h"

static struct inv_key_version versions[] = {{1, 1000, 5}, {2, 2000, 7}};
static struct inv_keyring keyrings[] = {
    {"tenant-a", "aes-256-gcm", false, 86400, 100, 2, 2, versions}};
static struct inv_app apps[] = {{"chat", 10, 1}};
static struct inv_apikey keys[] = {{"k1", "chat", "encrypt", 1, true, 10, 99999, 0, 50}};
static struct inv_listener listeners[] = {{"api", "0.0.0.0:1", false, false, true}};
static struct inv_cert certs[] = {{"c1", "file:x", "CN=x", 0, 9000, 5000, 0, false, "sha1"}};

static const struct inventory inv = {
    .now = 3000,
    .version = "fuzz",
    .root_key = {INV_KEY_FILE, "rk", true, 0600},
    .audit = {true, true, 0, 0, 100, 2000, true},
    .keyrings = keyrings,
    .n_keyrings = 1,
    .apps = apps,
    .n_apps = 1,
    .keys = keys,
    .n_keys = 1,
    .listeners = listeners,
    .n_listeners = 1,
    .certs_tracked = true,
    .certs = certs,
    .n_certs = 1,
};

static void
pack_check(const struct pack *p)
{
    if (!names_valid(p->id) || p->n_controls == 0 || p->n_controls > PACK_MAX_CONTROLS)
        abort();
    for (size_t i = 0; i < p->n_controls; i++) {
        const struct control *c = &p->controls[i];
        if (!names_valid(c->id) || c->check == NULL || check_find(c->check->name) != c->check ||
            c->n_refs == 0 || c->severity >= SEV__COUNT)
            abort();
        for (size_t k = 0; k < c->check->n_params; k++) {
            struct param again;
            const char *why;
            if (!param_parse(&again, &c->check->params[k], c->params[k].text,
                             strlen(c->params[k].text), &why) ||
                again.num != c->params[k].num || strcmp(again.text, c->params[k].text) != 0)
                abort();
        }
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data, *ff = memchr(text, '\f', size);
    size_t len = ff != NULL ? (size_t)(ff - text) : size;
    struct pack *p = NULL;
    struct evaluation ev;
    char err[256];

    if (pack_parse(&p, text, len, err, sizeof err) != ST_OK) {
        if (p != NULL || err[0] == '\0')
            abort();
        return 0;
    }
    pack_check(p);
    if (ff != NULL) {
        struct pack *before = malloc(sizeof *before);
        struct control *ctls = malloc(p->n_controls * sizeof *ctls);
        memcpy(before, p, sizeof *p);
        memcpy(ctls, p->controls, p->n_controls * sizeof *ctls);
        if (packs_override(&p, 1, ff + 1, size - len - 1, err, sizeof err) != ST_OK &&
            memcmp(ctls, p->controls, p->n_controls * sizeof *ctls) != 0)
            abort(); /* a refused override changed something */
        pack_check(p);
        free(ctls);
        free(before);
    }
    eval_run(&ev, p, &inv);
    if (ev.n != p->n_controls)
        abort();
    eval_free(&ev);
    pack_free(p);
    return 0;
}
