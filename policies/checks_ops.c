/* SPDX-License-Identifier: Apache-2.0 */
/* policies/checks_ops.c -- checks of how the service runs: TLS on its listeners, the certificate
 * inventory (not applicable while there is none), the audit trail's verification, write
 * failures, durability and retention, and manual evidence. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "policies/checks_priv.h"

#define SUBJECT_MAX 320

/* Is name one of the space-separated words of list ("*": all)? */
static bool
listed(const char *list, const char *name)
{
    size_t n = strlen(name);

    if (strcmp(list, "*") == 0)
        return true;
    for (const char *p = list; *p != '\0';) {
        size_t w = strcspn(p, " ");
        if (w == n && strncmp(p, name, n) == 0)
            return true;
        p += w + (p[w] == ' ');
    }
    return false;
}

void
check_listener_tls(const struct inventory *inv, const struct param *p, struct ctl_outcome *o)
{
    char s[SUBJECT_MAX];
    size_t upstream = 0;

    for (size_t i = 0; i < inv->n_listeners; i++) {
        const struct inv_listener *l = &inv->listeners[i];
        if (!listed(p[0].text, l->name))
            continue;
        snprintf(s, sizeof s, "listener %s (%s)", l->name, l->addr);
        if (l->tls)
            outcome_item(o, true, s, "serves TLS");
        else if (l->loopback)
            outcome_item(o, true, s, "plain HTTP on a loopback address");
        else if (l->tls_upstream)
            upstream++, outcome_item(o, true, s,
                                     "plain HTTP on a non-loopback address: TLS declared "
                                     "terminated upstream (--tls-terminated-upstream)");
        else
            outcome_item(o, false, s, "plain HTTP on a non-loopback address");
    }
    outcome_close(o, "listeners", "no listeners");
    if (o->result == CTL_PASS && upstream > 0)
        outcome_set(o, CTL_MANUAL,
                    "%zu listener%s rel%s on TLS terminated by a proxy or mesh in front: attach "
                    "that proxy's TLS configuration (protocols, certificate, the path to "
                    "difyguard)",
                    upstream, upstream == 1 ? "" : "s", upstream == 1 ? "ies" : "y");
}

static const char *
cert_subject(char out[static SUBJECT_MAX], const struct inv_cert *c)
{
    snprintf(out, SUBJECT_MAX, "certificate %s (%s)", c->id,
             c->subject[0] != '\0' ? c->subject : c->source);
    return out;
}

static bool
no_cert_inventory(const struct inventory *inv, struct ctl_outcome *o)
{
    if (inv->certs_tracked)
        return false;
    outcome_set(o, CTL_NOT_APPLICABLE, "this service keeps no certificate inventory");
    return true;
}

void
check_cert_expiry(const struct inventory *inv, const struct param *p, struct ctl_outcome *o)
{
    char s[SUBJECT_MAX], t[32], left_s[32], min[32];

    if (no_cert_inventory(inv, o))
        return;
    fmt_duration(min, p[0].num);
    for (size_t i = 0; i < inv->n_certs; i++) {
        const struct inv_cert *c = &inv->certs[i];
        int64_t left = c->not_after - inv->now;
        cert_subject(s, c);
        fmt_time(t, c->not_after);
        fmt_duration(left_s, left >= 0 ? left : -left);
        if (c->error)
            outcome_item(o, false, s, "could not be read or probed (%s)", c->source);
        else if (left < 0)
            outcome_item(o, false, s, "expired %s, %s ago", t, left_s);
        else
            outcome_item(o, left >= p[0].num, s, "expires %s, in %s (at least %s)", t, left_s, min);
    }
    outcome_close(o, "certificates", "no certificates are tracked");
}

void
check_cert_renewal(const struct inventory *inv, const struct param *p, struct ctl_outcome *o)
{
    char s[SUBJECT_MAX], due[32], rot[32];

    (void)p;
    if (no_cert_inventory(inv, o))
        return;
    for (size_t i = 0; i < inv->n_certs; i++) {
        const struct inv_cert *c = &inv->certs[i];
        cert_subject(s, c);
        fmt_time(due, c->renewal_due);
        fmt_time(rot, c->rotated_at);
        if (c->error)
            outcome_item(o, false, s, "could not be read or probed (%s)", c->source);
        else if (c->renewal_due != 0 && inv->now > c->renewal_due)
            outcome_item(o, false, s, "renewal was due %s and has not happened (last rotation %s)",
                         due, rot);
        else
            outcome_item(o, true, s, "renewal due %s (last rotation %s)", due, rot);
    }
    outcome_close(o, "certificates", "no certificates are tracked");
}

void
check_cert_weak(const struct inventory *inv, const struct param *p, struct ctl_outcome *o)
{
    char s[SUBJECT_MAX];

    (void)p;
    if (no_cert_inventory(inv, o))
        return;
    for (size_t i = 0; i < inv->n_certs; i++) {
        const struct inv_cert *c = &inv->certs[i];
        cert_subject(s, c);
        if (c->error)
            outcome_item(o, false, s, "could not be read or probed (%s)", c->source);
        else if (c->weak[0] != '\0')
            outcome_item(o, false, s, "weak: %s", c->weak);
        else
            outcome_item(o, true, s, "no weakness found");
    }
    outcome_close(o, "certificates", "no certificates are tracked");
}

/* The trail is one item; auditing off fails every audit check. */
static bool
audit_off(const struct inventory *inv, struct ctl_outcome *o)
{
    if (inv->audit.enabled)
        return false;
    outcome_item(o, false, "audit trail", "auditing is off");
    outcome_close(o, "audit trails", "");
    return true;
}

void
check_audit_verified(const struct inventory *inv, const struct param *p, struct ctl_outcome *o)
{
    const struct inv_audit *a = &inv->audit;
    int64_t age = inv->now - a->verified_at;
    char t[32], age_s[32], max[32];

    if (audit_off(inv, o))
        return;
    fmt_time(t, a->verified_at);
    fmt_duration(age_s, age > 0 ? age : 0);
    fmt_duration(max, p[0].num);
    if (a->verified_at == 0)
        outcome_item(o, false, "audit trail", "never verified as a whole");
    else if (age > p[0].num)
        outcome_item(o, false, "audit trail", "last verified %s, %s ago (at most %s)", t, age_s,
                     max);
    else if (!a->verified_ok)
        outcome_item(o, false, "audit trail", "the verification of %s failed", t);
    else if (a->unverified_chains > 0)
        outcome_item(o, false, "audit trail",
                     "verified %s, but %" PRIu64 " chain%s could not be verified by an export", t,
                     a->unverified_chains, a->unverified_chains == 1 ? "" : "s");
    else
        outcome_item(o, true, "audit trail", "verified %s, %s ago (at most %s)", t, age_s, max);
    outcome_close(o, "audit trails", "");
}

void
check_audit_write_failures(const struct inventory *inv, const struct param *p,
                           struct ctl_outcome *o)
{
    (void)p;
    if (audit_off(inv, o))
        return;
    outcome_item(o, inv->audit.write_failures == 0, "audit trail",
                 "%" PRIu64 " events could not be written", inv->audit.write_failures);
    outcome_close(o, "audit trails", "");
}

void
check_audit_durable(const struct inventory *inv, const struct param *p, struct ctl_outcome *o)
{
    (void)p;
    if (audit_off(inv, o))
        return;
    if (inv->audit.durable)
        outcome_item(o, true, "audit trail", "each answer waits for its event to be durable");
    else
        outcome_item(o, false, "audit trail",
                     "answers do not wait for their events (--audit-durable=false)");
    outcome_close(o, "audit trails", "");
}

void
check_audit_retention(const struct inventory *inv, const struct param *p, struct ctl_outcome *o)
{
    char r[32], min[32];

    if (audit_off(inv, o))
        return;
    fmt_duration(r, inv->audit.retention);
    fmt_duration(min, p[0].num);
    if (inv->audit.retention <= 0)
        outcome_item(o, true, "audit trail", "events are kept forever (no pruning)");
    else
        outcome_item(o, inv->audit.retention >= p[0].num, "audit trail",
                     "events are pruned after %s (at least %s)", r, min);
    outcome_close(o, "audit trails", "");
}

void
check_manual(const struct inventory *inv, const struct param *p, struct ctl_outcome *o)
{
    (void)inv;
    outcome_set(o, CTL_MANUAL, "attach: %s", p[0].text);
}
