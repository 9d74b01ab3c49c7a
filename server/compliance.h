/* SPDX-License-Identifier: Apache-2.0 */
/* server/compliance.h -- the compliance manager: the policy packs (those difyguard ships, plus
 * the files of --policy-dir, which add packs or replace one by id; --policy-params overrides
 * parameters), evaluations of the inventory snapshot on a schedule (a janitor duty) and on
 * demand, each scheduled run an audit event of its own, the current result of every control as
 * metrics, and signed reports. Reports are signed with a service key of its own
 * ("compliance-sign": Ed25519, wrapped by the root key, created when first needed); its public
 * key is listed for auditors. Never holds a secret in a report, a metric or a log line (the
 * snapshot has none). Thread-safe. */
#ifndef DG_SERVER_COMPLIANCE_H
#define DG_SERVER_COMPLIANCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/sbuf.h"
#include "common/status.h"
#include "crypto/rootkey.h"
#include "server/apps.h"
#include "server/audit/audit.h"
#include "server/inventory.h"
#include "server/keyrings.h"
#include "store/store.h"

#define SVCKEY_COMPLIANCE_SIGN "compliance-sign"
/* A run (scheduled or for a report) verifies the whole audit trail first when its last
 * verification failed or is older than this: the audit_verified check (24 h in the shipped
 * packs) then passes on a healthy service. */
#define COMPLIANCE_VERIFY_EVERY (12 * 3600)

/* What the manager reads; all borrowed, outliving it. audit may be NULL (auditing off). */
struct compliance_deps {
    struct store *store;
    const struct rootkey *root;
    struct keyrings *keyrings;
    struct apps *apps;
    struct audit *audit;
    struct certs *certs; /* NULL: no certificate inventory (its controls not_applicable) */
    const struct inventory_facts *facts;
};

struct compliance;

/* Load the shipped packs, then every *.json file of policy_dir (NULL: none), then apply params
 * (JSON text, see policies/pack.h packs_override; NULL: none); load or create the signing key.
 * ST_INVALID with err naming the file and the place for a bad pack or parameter; ST_IO for an
 * unreadable directory or file; other errors from the store or the key. */
NODISCARD enum status compliance_open(struct compliance **out, const struct compliance_deps *d,
                                      const char *policy_dir, const char *params, char *err,
                                      size_t err_len);
void compliance_close(struct compliance *c); /* NULL-safe */

/* Results of one run, for the caller's audit event. */
struct compliance_counts {
    size_t controls, passed, failed, manual, not_applicable;
};

/* Evaluate every pack at `now` (unix seconds) and make the results current (metrics). Scheduled
 * runs first verify the trail when due (COMPLIANCE_VERIFY_EVERY) and record an audit event
 * (op compliance.run, method SYSTEM) whose items are the controls: total, passed, failed. */
NODISCARD enum status compliance_run(struct compliance *c, int64_t now, bool scheduled,
                                     struct compliance_counts *counts);
/* The janitor's duty (server/janitor.h): a scheduled run. */
void compliance_janitor(void *c, int64_t now_ms);

enum compliance_format { COMPLIANCE_JSON, COMPLIANCE_CSV, COMPLIANCE_HTML };

/* A report of one pack (NULL: every pack) evaluated now (an on-demand run: the trail verified
 * first when due, the results made current), with the service's identity and the head of every
 * audit chain; JSON is signed.
 * ST_NOT_FOUND when no pack has that id. */
NODISCARD enum status compliance_report(struct compliance *c, const char *pack,
                                        enum compliance_format f, int64_t now, struct sbuf *out,
                                        struct compliance_counts *counts);

/* {"keys": [{"key_id", "public_key" (base64), "algorithm": "ed25519", "created_at",
 * "active": true}]}: the report signing key (malloc'd). */
char *compliance_public_keys_json(const struct compliance *c);

/* Metrics (server/obs/metrics.h): difyguard_compliance_control_status{pack,control,result}
 * (1 for the current result, 0 for the others: pack x control x 4 series),
 * difyguard_compliance_controls{pack,result}, runs and the last run's time. */
struct metrics_out;
void compliance_metrics(const void *self, struct metrics_out *o);

#endif
