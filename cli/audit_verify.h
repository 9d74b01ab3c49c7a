/* SPDX-License-Identifier: Apache-2.0 */
/* cli/audit_verify.h -- the `difyguard audit` commands that run offline: `audit verify` checks an
 * export against the auditor's public keys. Reads local files only; never needs the service. */
#ifndef DG_CLI_AUDIT_VERIFY_H
#define DG_CLI_AUDIT_VERIFY_H

/* argv[0] is "audit", argv[argc] is NULL; argv may be permuted. Prints one result line on stdout
 * (or JSON with --json) and any failure as one line on stderr. Returns the exit code: 0 verified,
 * 1 not verified or a file could not be read, 2 usage error. Expects crypto_init() done. */
int cmd_audit(int argc, char **argv);

#endif
