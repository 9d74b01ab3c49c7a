/* SPDX-License-Identifier: Apache-2.0 */
/* common/names.h -- the one rule for names chosen by operators (keyrings, apps):
 * [a-z0-9][a-z0-9._-]{0,62}. ASCII only, so a valid name is always safe text for logs, metrics
 * labels and the audit trail. Pure, thread-safe. */
#ifndef DG_COMMON_NAMES_H
#define DG_COMMON_NAMES_H

#include <stdbool.h>

#define NAMES_MAX 63

bool names_valid(const char *s);

#endif
