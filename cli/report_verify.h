/* SPDX-License-Identifier: Apache-2.0 */
/* cli/report_verify.h -- `difyguard report verify FILE --public-key KEY`: offline verification
 * of a signed compliance report (policies/report.h) for auditors. Local files only; never needs
 * the service. */
#ifndef DG_CLI_REPORT_VERIFY_H
#define DG_CLI_REPORT_VERIFY_H

/* argv[0] is "report", argv[argc] is NULL; argv may be permuted. Prints what the report says
 * (its signer, time, counts, and each audit chain head as CHAIN:SEQ:HASH, ready for
 * `audit verify --expect-head`) or, with --json, one object; a failure is one line on stderr.
 * Returns 0 verified, 1 not verified or unreadable, 2 usage error. Expects crypto_init() done. */
int cmd_report(int argc, char **argv);

#endif
