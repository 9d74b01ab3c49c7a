/* SPDX-License-Identifier: Apache-2.0 */
/* policies/builtin.h -- the policy packs difyguard ships (policies/packs/, embedded at build
 * time by policies/embed_packs.cmake): their file names and texts, for the compliance manager
 * to parse like any other pack. */
#ifndef DG_POLICIES_BUILTIN_H
#define DG_POLICIES_BUILTIN_H

#include <stddef.h>

struct policies_builtin {
    const char *file; /* "pci-dss-4.0.json" */
    const char *text;
    size_t len;
};

extern const struct policies_builtin policies_builtin_packs[];
extern const size_t policies_builtin_n;

#endif
