/* SPDX-License-Identifier: Apache-2.0 */
/* policies/checks.c -- the table of checks and their parameters, parameter values, and the
 * evidence helpers every check uses. The checks themselves are in checks_keys.c (keyrings, key
 * versions, the root key, apps and API keys) and checks_ops.c (listeners, certificates, the
 * audit trail, manual evidence). */
#include "policies/checks.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/json/config.h"
#include "common/text.h"
#include "policies/checks_priv.h"

/* clang-format off */
static const struct check table[] = {
    {"keyring_rotation_policy",
     "every keyring rotates automatically, with a period no longer than max_period",
     {{"max_period", PARAM_DURATION, "365d", "longest rotation period allowed"}}, 1,
     check_keyring_rotation_policy},
    {"keyring_cryptoperiod",
     "every keyring's latest key version is younger than its rotation period (plus grace for the "
     "scheduler) and than max_age",
     {{"max_age", PARAM_DURATION, "365d", "cryptoperiod: oldest a latest version may be"},
      {"grace", PARAM_DURATION, "1h", "time a due rotation may take"}}, 2,
     check_keyring_cryptoperiod},
    {"key_version_encryptions",
     "no key version has done more encryptions than max_percent of its bound, and no bound is "
     "above safe_bound",
     {{"safe_bound", PARAM_COUNT, "4294967296", "encryptions per key version that are safe"},
      {"max_percent", PARAM_PERCENT, "100", "share of the bound a version may use"}}, 2,
     check_key_version_encryptions},
    {"root_key_protection",
     "the root key comes from a file (not an environment variable) of mode 0600 or stricter",
     {{0}}, 0, check_root_key_protection},
    {"apikey_expiry",
     "every active API key expires, within max_lifetime from now",
     {{"max_lifetime", PARAM_DURATION, "365d", "longest time a key may stay valid"}}, 1,
     check_apikey_expiry},
    {"apikey_unused",
     "no active API key has gone unused for longer than max_idle",
     {{"max_idle", PARAM_DURATION, "90d", "longest time without use"}}, 1, check_apikey_unused},
    {"apikey_scopes", "every active API key is limited to named scopes", {{0}}, 0,
     check_apikey_scopes},
    {"apikey_shared", "no API key is shared between apps", {{0}}, 0, check_apikey_shared},
    {"app_own_key", "every app calls with an active API key of its own", {{0}}, 0,
     check_app_own_key},
    {"listener_tls",
     "every non-loopback listener serves TLS itself; plain HTTP behind a TLS-terminating proxy "
     "is flagged for manual evidence",
     {{"listeners", PARAM_TEXT, "*", "space-separated listener names, or * for all"}}, 1,
     check_listener_tls},
    {"cert_expiry",
     "every tracked certificate is readable and has at least min_left before it expires",
     {{"min_left", PARAM_DURATION, "30d", "shortest time left before not-after"}}, 1,
     check_cert_expiry},
    {"cert_renewal", "no tracked certificate is past its renewal-due time without renewal",
     {{0}}, 0, check_cert_renewal},
    {"cert_weak", "no tracked certificate is weak (key size, signature, lifetime, SAN)", {{0}}, 0,
     check_cert_weak},
    {"audit_verified",
     "the whole audit trail verified within max_age, and every chain in it verified",
     {{"max_age", PARAM_DURATION, "24h", "oldest a whole-trail verification may be"}}, 1,
     check_audit_verified},
    {"audit_write_failures", "the audit trail has had no write failures", {{0}}, 0,
     check_audit_write_failures},
    {"audit_durable",
     "every request waits for its audit event to be durable (fail closed)", {{0}}, 0,
     check_audit_durable},
    {"audit_retention",
     "audit events are kept at least min_retention before they are pruned",
     {{"min_retention", PARAM_DURATION, "365d", "shortest retention allowed"}}, 1,
     check_audit_retention},
    {"manual",
     "evidence a machine cannot judge: listed with what to attach, never counted as passed",
     {{"evidence", PARAM_TEXT, NULL, "what the auditor should be given"}}, 1, check_manual},
};
/* clang-format on */

const struct check *
checks_all(size_t *n)
{
    *n = sizeof table / sizeof table[0];
    return table;
}

const struct check *
check_find(const char *name)
{
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcmp(table[i].name, name) == 0)
            return &table[i];
    return NULL;
}

const char *
ctl_result_name(enum ctl_result r)
{
    static const char *const names[CTL__COUNT] = {"pass", "fail", "not_applicable", "manual"};
    return (unsigned)r < CTL__COUNT ? names[r] : "?";
}

void
check_run(const struct check *c, const struct inventory *inv, const struct param *params,
          struct ctl_outcome *out)
{
    memset(out, 0, sizeof *out);
    c->run(inv, params, out);
}

/* A non-negative decimal integer of at most 18 digits (no sign, no spaces). */
static bool
count_parse(int64_t *out, const char *s, size_t len)
{
    if (len == 0 || len > 18 || strspn(s, "0123456789") < len)
        return false;
    *out = 0;
    for (size_t i = 0; i < len; i++)
        *out = *out * 10 + (s[i] - '0');
    return true;
}

bool
param_parse(struct param *p, const struct param_def *d, const char *text, size_t len,
            const char **why)
{
    memset(p, 0, sizeof *p);
    *why = NULL;
    if (memchr(text, '\0', len) != NULL || len >= PARAM_TEXT_MAX) {
        *why = "is not a short text";
        return false;
    }
    switch (d->type) {
    case PARAM_DURATION:
        if (config_duration(&p->num, text, len) != ST_OK) {
            *why = "is not a duration (seconds, or 45s, 30m, 12h, 90d; at most 3650d)";
            return false;
        }
        fmt_duration(p->text, p->num);
        return true;
    case PARAM_COUNT:
    case PARAM_PERCENT:
        if (!count_parse(&p->num, text, len) ||
            (d->type == PARAM_PERCENT && (p->num < 1 || p->num > 100))) {
            *why = d->type == PARAM_COUNT ? "is not a non-negative integer"
                                          : "is not an integer from 1 to 100";
            return false;
        }
        snprintf(p->text, sizeof p->text, "%" PRId64, p->num);
        return true;
    case PARAM_TEXT: {
        char raw[PARAM_TEXT_MAX];
        memcpy(raw, text, len);
        raw[len] = '\0';
        if (len == 0 || !text_copy_safe(p->text, sizeof p->text, raw)) {
            *why = "is not printable UTF-8 text";
            return false;
        }
        return true;
    }
    }
    *why = "has an unknown type";
    return false;
}

/* --- evidence --- */

void
outcome_item(struct ctl_outcome *o, bool ok, const char *subject, const char *fmt, ...)
{
    struct finding *f = NULL;
    char raw[OUTCOME_TEXT_MAX];
    va_list ap;

    o->checked++;
    o->failing += !ok;
    if (o->n_findings < OUTCOME_FINDINGS_MAX) {
        f = &o->findings[o->n_findings++];
    } else if (!ok) {
        for (size_t i = 0; i < o->n_findings && f == NULL; i++)
            if (o->findings[i].ok)
                f = &o->findings[i];
    }
    if (f == NULL)
        return;
    f->ok = ok;
    text_copy_safe(f->subject, sizeof f->subject, subject);
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    text_copy_safe(f->detail, sizeof f->detail, raw);
}

void
outcome_close(struct ctl_outcome *o, const char *what, const char *none)
{
    if (o->checked == 0) {
        outcome_set(o, CTL_NOT_APPLICABLE, "%s", none);
    } else if (o->failing > 0) {
        outcome_set(o, CTL_FAIL, "%" PRIu64 " of %" PRIu64 " %s fail", o->failing, o->checked,
                    what);
    } else {
        outcome_set(o, CTL_PASS, "all %" PRIu64 " %s pass", o->checked, what);
    }
}

void
outcome_set(struct ctl_outcome *o, enum ctl_result r, const char *fmt, ...)
{
    char raw[OUTCOME_TEXT_MAX];
    va_list ap;

    o->result = r;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    text_copy_safe(o->summary, sizeof o->summary, raw);
}

void
fmt_duration(char out[static 32], int64_t secs)
{
    static const struct {
        int64_t n;
        char unit;
    } units[] = {{86400, 'd'}, {3600, 'h'}, {60, 'm'}};

    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (secs != 0 && secs % units[i].n == 0) {
            snprintf(out, 32, "%" PRId64 "%c", secs / units[i].n, units[i].unit);
            return;
        }
    }
    snprintf(out, 32, "%" PRId64 "s", secs);
}

void
fmt_time(char out[static 32], int64_t t)
{
    if (t == 0)
        snprintf(out, 32, "never");
    else
        clock_rfc3339(out, t);
}
