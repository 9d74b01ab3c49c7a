/* SPDX-License-Identifier: Apache-2.0 */
/* policies/checks_priv.h -- what the check files share: recording the items a check examined and
 * deciding its result, and the text forms of durations and times used in evidence. Only
 * policies/checks*.c include it. */
#ifndef DG_POLICIES_CHECKS_PRIV_H
#define DG_POLICIES_CHECKS_PRIV_H

#include <stdbool.h>
#include <stdint.h>

#include "policies/checks.h"

/* One item examined: counted, and kept as a finding (a failing one displaces a passing one when
 * the list is full). detail is printf-formatted. */
void outcome_item(struct ctl_outcome *o, bool ok, const char *subject, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Decide from the items: NOT_APPLICABLE when none was examined (summary `none`), FAIL when one
 * fails, else PASS; the summary counts `what` ("keyrings"). */
void outcome_close(struct ctl_outcome *o, const char *what, const char *none);
/* Set the result and summary directly (MANUAL, NOT_APPLICABLE with a reason). */
void outcome_set(struct ctl_outcome *o, enum ctl_result r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* "400d", "36h", "90m", "45s" (the largest unit that divides it; "0s"). */
void fmt_duration(char out[static 32], int64_t secs);
/* RFC 3339 UTC seconds, or "never" for 0. */
void fmt_time(char out[static 32], int64_t t);

/* The checks, by file. */
void check_keyring_rotation_policy(const struct inventory *, const struct param *,
                                   struct ctl_outcome *);
void check_keyring_cryptoperiod(const struct inventory *, const struct param *,
                                struct ctl_outcome *);
void check_key_version_encryptions(const struct inventory *, const struct param *,
                                   struct ctl_outcome *);
void check_root_key_protection(const struct inventory *, const struct param *,
                               struct ctl_outcome *);
void check_apikey_expiry(const struct inventory *, const struct param *, struct ctl_outcome *);
void check_apikey_unused(const struct inventory *, const struct param *, struct ctl_outcome *);
void check_apikey_scopes(const struct inventory *, const struct param *, struct ctl_outcome *);
void check_apikey_shared(const struct inventory *, const struct param *, struct ctl_outcome *);
void check_app_own_key(const struct inventory *, const struct param *, struct ctl_outcome *);
void check_listener_tls(const struct inventory *, const struct param *, struct ctl_outcome *);
void check_cert_expiry(const struct inventory *, const struct param *, struct ctl_outcome *);
void check_cert_renewal(const struct inventory *, const struct param *, struct ctl_outcome *);
void check_cert_weak(const struct inventory *, const struct param *, struct ctl_outcome *);
void check_audit_verified(const struct inventory *, const struct param *, struct ctl_outcome *);
void check_audit_write_failures(const struct inventory *, const struct param *,
                                struct ctl_outcome *);
void check_audit_durable(const struct inventory *, const struct param *, struct ctl_outcome *);
void check_audit_retention(const struct inventory *, const struct param *, struct ctl_outcome *);
void check_manual(const struct inventory *, const struct param *, struct ctl_outcome *);

#endif
