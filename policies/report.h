/* SPDX-License-Identifier: Apache-2.0 */
/* policies/report.h -- compliance reports from evaluations: the signed JSON an auditor verifies
 * offline, and CSV and HTML renderings of the same results. Pure: the caller evaluates, gives the
 * audit chain heads and the time, and holds the signing key (a struct secret: signing never
 * copies it). The format is permanent (auditors keep reports): docs/compliance.md specifies it.
 *
 * A signed report is exactly
 *   {"report":BODY,"signature":{"algorithm":"ed25519","key_id":"<16 hex>","sig":"<base64>"}}\n
 * where BODY is a JSON object and the Ed25519 signature covers
 *   "difyguard-compliance-report-v1\n" || BODY   (BODY's bytes as they stand in the file).
 * Any changed byte of the file fails verification. */
#ifndef DG_POLICIES_REPORT_H
#define DG_POLICIES_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "common/sbuf.h"
#include "common/status.h"
#include "crypto/secret.h"
#include "crypto/sign.h"
#include "policies/eval.h"

#define REPORT_FORMAT "difyguard-compliance-report-v1"
#define REPORT_CHAIN_ID_MAX 128
#define REPORT_HASH_HEX 64
#define REPORT_TEXT_MAX ((size_t)64 << 20) /* bytes of a report file report_verify reads */

/* One audit chain's head at report time. */
struct report_head {
    char chain_id[REPORT_CHAIN_ID_MAX + 1];
    uint64_t seq;
    char hash[REPORT_HASH_HEX + 1]; /* lowercase hex */
};

/* Who made the report, when, and the trail's heads then. Strings are printable text. */
struct report_meta {
    const char *service; /* "difyguard" */
    const char *version;
    const char *instance;    /* this node's audit chain id; "" when auditing is off */
    const char *root_key_id; /* an id, never key material */
    int64_t generated_at;    /* unix seconds */
    const struct report_head *heads;
    size_t n_heads;
};

/* The report body (the signed JSON object) of evaluations ev[0..n), one per pack. */
void report_json_body(struct sbuf *out, const struct report_meta *m, const struct evaluation *ev,
                      size_t n);
/* The signed file for body (from report_json_body) under sk (SIGN_SK_BYTES). */
void report_sign(struct sbuf *out, const char *body, size_t len, const struct secret *sk);

/* CSV (RFC 4180, a header row, one control per row) and one self-contained HTML page (inline CSS
 * and SVG, no script, no external asset: summary counts, a chart of results by framework, failing
 * controls first with their evidence, the audit heads) of the same evaluations. */
void report_csv(struct sbuf *out, const struct report_meta *m, const struct evaluation *ev,
                size_t n);
void report_html(struct sbuf *out, const struct report_meta *m, const struct evaluation *ev,
                 size_t n);

/* What a verified report says, for the auditor. */
struct report_summary {
    char key_id[SIGN_KEY_ID_CHARS + 1];
    char generated_at[32];
    char version[32];
    char instance[REPORT_CHAIN_ID_MAX + 1];
    size_t packs, controls;
    size_t counts[CTL__COUNT];
    struct report_head *heads; /* malloc'd: free with report_summary_free */
    size_t n_heads;
};

/* Verify a signed report (text of len bytes) against the public keys keys[0..n_keys): its exact
 * form, a key id that names one of the keys, and the signature over its body. ST_OK fills *out;
 * ST_AUTH (err: one line, no quote of the input beyond short ids) for anything else, ST_INVALID
 * for unusable arguments. Treats every byte as hostile. */
NODISCARD enum status report_verify(const char *text, size_t len,
                                    const uint8_t (*keys)[SIGN_PK_BYTES], size_t n_keys,
                                    struct report_summary *out, char *err, size_t err_len);
void report_summary_free(struct report_summary *s); /* NULL-safe */

#endif
