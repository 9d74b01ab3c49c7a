/* SPDX-License-Identifier: Apache-2.0 */
/* policies/checks_keys.c -- checks of keys: keyrings' rotation and cryptoperiods, encryptions per
 * key version, the root key's source and file mode, apps and their API keys. Evidence names
 * keyrings, apps and key ids with counts and times; a key's secret is never in the snapshot. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policies/checks_priv.h"

#define SUBJECT_MAX 160

static const char *
keyring_subject(char out[static SUBJECT_MAX], const struct inv_keyring *kr)
{
    snprintf(out, SUBJECT_MAX, "keyring %s", kr->name);
    return out;
}

static const char *
key_subject(char out[static SUBJECT_MAX], const struct inv_apikey *k)
{
    snprintf(out, SUBJECT_MAX, "api key %s (app %s)", k->id, k->app);
    return out;
}

void
check_keyring_rotation_policy(const struct inventory *inv, const struct param *p,
                              struct ctl_outcome *o)
{
    char s[SUBJECT_MAX], d[32], max[32];

    fmt_duration(max, p[0].num);
    for (size_t i = 0; i < inv->n_keyrings; i++) {
        const struct inv_keyring *kr = &inv->keyrings[i];
        fmt_duration(d, kr->rotation_period);
        keyring_subject(s, kr);
        if (kr->rotation_period <= 0)
            outcome_item(o, false, s, "no automatic rotation (rotation_period 0)");
        else if (kr->rotation_period > p[0].num)
            outcome_item(o, false, s, "rotates every %s, longer than %s", d, max);
        else
            outcome_item(o, true, s, "rotates every %s", d);
    }
    outcome_close(o, "keyrings", "no keyrings");
}

static const struct inv_key_version *
latest_of(const struct inv_keyring *kr)
{
    for (size_t i = kr->n_versions; i > 0; i--)
        if (kr->versions[i - 1].version == kr->latest_version)
            return &kr->versions[i - 1];
    return kr->n_versions > 0 ? &kr->versions[kr->n_versions - 1] : NULL;
}

void
check_keyring_cryptoperiod(const struct inventory *inv, const struct param *p,
                           struct ctl_outcome *o)
{
    char s[SUBJECT_MAX], created[32], age_s[32], lim_s[32];

    for (size_t i = 0; i < inv->n_keyrings; i++) {
        const struct inv_keyring *kr = &inv->keyrings[i];
        const struct inv_key_version *v = latest_of(kr);
        int64_t limit = p[0].num;
        const char *why = "max_age";

        keyring_subject(s, kr);
        if (v == NULL) {
            outcome_item(o, false, s, "no key version");
            continue;
        }
        if (kr->rotation_period > 0 && kr->rotation_period + p[1].num < limit) {
            limit = kr->rotation_period + p[1].num;
            why = "its rotation period and grace";
        }
        int64_t age = inv->now > v->created_at ? inv->now - v->created_at : 0;
        fmt_time(created, v->created_at);
        fmt_duration(age_s, age);
        fmt_duration(lim_s, limit);
        outcome_item(o, age <= limit, s,
                     "latest version %" PRIu32 " created %s, %s old; cryptoperiod %s (%s)",
                     v->version, created, age_s, lim_s, why);
    }
    outcome_close(o, "keyrings", "no keyrings");
}

/* pct percent of bound, without overflow. */
static uint64_t
share(uint64_t bound, int64_t pct)
{
    return bound / 100 * (uint64_t)pct + bound % 100 * (uint64_t)pct / 100;
}

void
check_key_version_encryptions(const struct inventory *inv, const struct param *p,
                              struct ctl_outcome *o)
{
    const uint64_t safe = (uint64_t)p[0].num;
    char s[SUBJECT_MAX];

    for (size_t i = 0; i < inv->n_keyrings; i++) {
        const struct inv_keyring *kr = &inv->keyrings[i];
        uint64_t bound = kr->encryption_limit < safe ? kr->encryption_limit : safe;
        uint64_t allowed = share(bound, p[1].num), top = 0;
        uint32_t top_v = 0;

        keyring_subject(s, kr);
        for (size_t j = 0; j < kr->n_versions; j++) {
            uint64_t n =
                kr->versions[j].encryptions > 0 ? (uint64_t)kr->versions[j].encryptions : 0;
            if (j == 0 || n > top)
                top = n, top_v = kr->versions[j].version;
        }
        if (kr->encryption_limit > safe)
            outcome_item(o, false, s,
                         "bound of %" PRIu64 " encryptions per version is above the safe bound "
                         "%" PRIu64,
                         kr->encryption_limit, safe);
        else if (top > allowed)
            outcome_item(o, false, s,
                         "version %" PRIu32 " did %" PRIu64 " encryptions, over %" PRIu64
                         " (%" PRId64 "%% of its bound %" PRIu64 ")",
                         top_v, top, allowed, p[1].num, bound);
        else
            outcome_item(o, true, s,
                         "most used: version %" PRIu32 ", %" PRIu64 " of %" PRIu64
                         " encryptions allowed",
                         top_v, top, allowed);
    }
    outcome_close(o, "keyrings", "no keyrings");
}

void
check_root_key_protection(const struct inventory *inv, const struct param *p, struct ctl_outcome *o)
{
    const struct inv_root_key *rk = &inv->root_key;
    char s[SUBJECT_MAX];

    (void)p;
    snprintf(s, sizeof s, "root key %s", rk->id[0] != '\0' ? rk->id : "(unknown id)");
    if (rk->source == INV_KEY_ENV)
        outcome_item(o, false, s, "passed in an environment variable");
    else if (rk->source == INV_KEY_OTHER)
        outcome_item(o, true, s, "held outside a file and the environment");
    else if (rk->source != INV_KEY_FILE)
        outcome_item(o, false, s, "its source is not known");
    else if (!rk->mode_known)
        outcome_item(o, false, s, "the key file's mode could not be read");
    else if ((rk->mode & ~0600u) != 0)
        outcome_item(o, false, s,
                     "key file mode %04o: more than read and write by its owner (want 0600 or "
                     "stricter)",
                     rk->mode);
    else
        outcome_item(o, true, s, "key file mode %04o", rk->mode);
    outcome_close(o, "root keys", "no root key");
}

static bool
active(const struct inv_apikey *k, int64_t now)
{
    return k->revoked_at == 0 && (k->expires_at == 0 || k->expires_at > now);
}

void
check_apikey_expiry(const struct inventory *inv, const struct param *p, struct ctl_outcome *o)
{
    char s[SUBJECT_MAX], t[32], in[32], max[32];

    fmt_duration(max, p[0].num);
    for (size_t i = 0; i < inv->n_keys; i++) {
        const struct inv_apikey *k = &inv->keys[i];
        if (!active(k, inv->now))
            continue;
        key_subject(s, k);
        if (k->expires_at == 0) {
            outcome_item(o, false, s, "never expires");
            continue;
        }
        fmt_time(t, k->expires_at);
        fmt_duration(in, k->expires_at - inv->now);
        outcome_item(o, k->expires_at - inv->now <= p[0].num, s, "expires %s, in %s (at most %s)",
                     t, in, max);
    }
    outcome_close(o, "active API keys", "no active API keys");
}

void
check_apikey_unused(const struct inventory *inv, const struct param *p, struct ctl_outcome *o)
{
    char s[SUBJECT_MAX], t[32], idle_s[32], max[32];

    fmt_duration(max, p[0].num);
    for (size_t i = 0; i < inv->n_keys; i++) {
        const struct inv_apikey *k = &inv->keys[i];
        int64_t last = k->last_used_at != 0 ? k->last_used_at : k->created_at;
        int64_t idle = inv->now > last ? inv->now - last : 0;
        if (!active(k, inv->now))
            continue;
        key_subject(s, k);
        fmt_time(t, last);
        fmt_duration(idle_s, idle);
        outcome_item(o, idle <= p[0].num, s, "%s %s: idle %s (at most %s)",
                     k->last_used_at != 0 ? "last used" : "never used; created", t, idle_s, max);
    }
    outcome_close(o, "active API keys", "no active API keys");
}

void
check_apikey_scopes(const struct inventory *inv, const struct param *p, struct ctl_outcome *o)
{
    char s[SUBJECT_MAX];

    (void)p;
    for (size_t i = 0; i < inv->n_keys; i++) {
        const struct inv_apikey *k = &inv->keys[i];
        if (!active(k, inv->now))
            continue;
        key_subject(s, k);
        if (k->n_scopes == 0 || k->scopes[0] == '\0')
            outcome_item(o, false, s, "no scopes");
        else
            outcome_item(o, true, s, "scopes: %s", k->scopes);
    }
    outcome_close(o, "active API keys", "no active API keys");
}

static int
by_id(const void *a, const void *b)
{
    const struct inv_apikey *const *x = a, *const *y = b;
    int c = strcmp((*x)->id, (*y)->id);
    return c != 0 ? c : strcmp((*x)->app, (*y)->app);
}

/* A key id belongs to one app: the same id under two apps is one secret shared by both. */
void
check_apikey_shared(const struct inventory *inv, const struct param *p, struct ctl_outcome *o)
{
    const struct inv_apikey **v = calloc(inv->n_keys + 1, sizeof *v);
    char s[SUBJECT_MAX];

    (void)p;
    if (v == NULL)
        abort();
    for (size_t i = 0; i < inv->n_keys; i++)
        v[i] = &inv->keys[i];
    qsort(v, inv->n_keys, sizeof *v, by_id);
    for (size_t i = 0; i < inv->n_keys;) {
        size_t j = i + 1, apps = 1;
        for (; j < inv->n_keys && strcmp(v[j]->id, v[i]->id) == 0; j++)
            apps += strcmp(v[j]->app, v[j - 1]->app) != 0;
        snprintf(s, sizeof s, "api key %s", v[i]->id);
        if (apps > 1)
            outcome_item(o, false, s, "held by %zu apps, the first %s", apps, v[i]->app);
        else
            outcome_item(o, true, s, "held by app %s only", v[i]->app);
        i = j;
    }
    free(v);
    outcome_close(o, "API keys", "no API keys");
}

void
check_app_own_key(const struct inventory *inv, const struct param *p, struct ctl_outcome *o)
{
    char s[SUBJECT_MAX];

    (void)p;
    for (size_t i = 0; i < inv->n_apps; i++) {
        const struct inv_app *a = &inv->apps[i];
        snprintf(s, sizeof s, "app %s", a->name);
        if (a->active_keys == 0)
            outcome_item(o, false, s, "no active API key of its own");
        else
            outcome_item(o, true, s, "%zu active API key%s of its own", a->active_keys,
                         a->active_keys == 1 ? "" : "s");
    }
    outcome_close(o, "apps", "no apps");
}
