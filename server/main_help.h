/* SPDX-License-Identifier: Apache-2.0 */
/* server/main_help.h -- the command line about itself (main_help.c): usage, help, version and
 * completion. */
#ifndef DG_SERVER_MAIN_HELP_H
#define DG_SERVER_MAIN_HELP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

void main_usage(FILE *f);
/* `difyguard help [CMD [SUB]]`: runs `CMD [SUB] --help` through run (main's dispatcher). */
int main_help(int argc, char **argv, int (*run)(int argc, char **argv));
/* `difyguard version [--json]`. */
int main_version(int argc, char **argv);
/* The libraries' versions as one line of text. */
void main_version_libraries(char *out, size_t cap);
/* The source commit this binary was built from ("unknown" outside git). */
const char *main_revision(void);
/* `difyguard completion bash|zsh`. */
int main_completion(int argc, char **argv);

#endif
