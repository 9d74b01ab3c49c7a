/* SPDX-License-Identifier: Apache-2.0 */
/* cli/cmd_admin.h -- `difyguard app|key|keyring ...` (cmd_app.c, cmd_key.c, cmd_keyring.c over
 * the engine in admin.c): the admin client over the HTTP API
 * (DIFYGUARD_ADDR, DIFYGUARD_TOKEN, DIFYGUARD_CACERT). Secrets never travel in argv: the token
 * comes from the environment only, and a new API key is printed once on stdout, then wiped. */
#ifndef DG_CLI_CMD_ADMIN_H
#define DG_CLI_CMD_ADMIN_H

/* argv[0] is the command name ("app", "key", "keyring"), argv[1] the subcommand, argv[argc] is
 * NULL; argv may be permuted. Prints results on stdout (a table or lines, or the API's JSON with
 * --json) and each failure as one line on stderr, never the token or a key. Returns the exit
 * code: 0 ok, 1 runtime failure (including any API error), 2 usage error.
 * Expects crypto_init() and jx_init() done (main does both). */
int cmd_app(int argc, char **argv);
int cmd_key(int argc, char **argv);
int cmd_keyring(int argc, char **argv);
int cmd_cert(int argc, char **argv); /* cmd_cert.c: the certificate inventory (issue 9) */
/* cmd_audit.c: `difyguard audit ...`: events|public-key|export over the API, and verify (offline,
 * cmd_audit of cli/audit_verify.h) and the group's help. */
int cmd_audit_all(int argc, char **argv);

#endif
