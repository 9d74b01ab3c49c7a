/* SPDX-License-Identifier: Apache-2.0 */
/* cli/cmd_env.h -- `difyguard env encrypt|decrypt|exec|check`: encrypted dotenv files for the
 * init container (cmd_env.c over the parser in dotenv.c and the client in client.c). Each value
 * is a difyguard ciphertext whose context binds the variable name and the environment, so a
 * value moved to another variable or environment fails to decrypt. Never prints a value. */
#ifndef DG_CLI_CMD_ENV_H
#define DG_CLI_CMD_ENV_H

/* argv[0] is "env", argv[1] the subcommand. Returns the exit code: 0 ok, 1 runtime failure
 * (including a bad file or any API error), 2 usage error; `env exec` does not return when it
 * runs the command (difyguard becomes the command, so its exit status and signals are the
 * command's), and returns 127 (126) when the command cannot be found (run). Expects
 * crypto_init() and jx_init() done (main does both). */
int cmd_env(int argc, char **argv);

#endif
