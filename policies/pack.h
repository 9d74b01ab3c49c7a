/* SPDX-License-Identifier: Apache-2.0 */
/* policies/pack.h -- compliance policy packs: one JSON file per framework in policies/packs/
 * (format in policies/README.md), each control with an id, title, framework references, severity,
 * the check it uses (policies/checks.h) and that check's parameters; and the operator's parameter
 * overrides. Parsing is strict and total: any input gives a pack or ST_INVALID with one line
 * naming where and why (never a crash). Pure: the caller reads the files. A pack is immutable once
 * loaded and overridden, and may then be shared by threads. */
#ifndef DG_POLICIES_PACK_H
#define DG_POLICIES_PACK_H

#include <stddef.h>
#include <stdint.h>

#include "common/status.h"
#include "policies/checks.h"

#define PACK_FORMAT "difyguard-policy-pack-v1"
#define PACK_ID_MAX 64 /* ids of packs and controls: [a-z0-9][a-z0-9._-]{0,62} */
#define PACK_NAME_MAX 128
#define PACK_TITLE_MAX 256
#define PACK_REF_MAX 64
#define PACK_MAX_REFS 8
#define PACK_MAX_CONTROLS 200
#define PACK_TEXT_MAX ((size_t)256 << 10) /* bytes of a pack file */

enum severity { SEV_LOW, SEV_MEDIUM, SEV_HIGH, SEV_CRITICAL, SEV__COUNT };
/* "low", "medium", "high", "critical". */
const char *severity_name(enum severity s);

struct control {
    char id[PACK_ID_MAX];
    char title[PACK_TITLE_MAX];
    char refs[PACK_MAX_REFS][PACK_REF_MAX]; /* "PCI DSS 3.7.4", "ISO/IEC 27001:2022 A.8.24" */
    size_t n_refs;
    enum severity severity;
    const struct check *check;
    struct param params[CHECK_MAX_PARAMS]; /* in the order of check->params */
};

struct pack {
    char id[PACK_ID_MAX]; /* "pci-dss-4.0": metric label and ?pack= value */
    char name[PACK_NAME_MAX];
    char framework[PACK_NAME_MAX];
    char version[PACK_ID_MAX];
    char description[PACK_TITLE_MAX * 2];
    struct control *controls;
    size_t n_controls;
};

/* Parse one pack file's text. Every control must name a check that exists, give only that
 * check's parameters (the others take their defaults; a parameter without a default is
 * required), and have an id unique in the pack. ST_INVALID with err ("controls[2] (id x): unknown
 * check \"y\""). *out is freed with pack_free. */
NODISCARD enum status pack_parse(struct pack **out, const char *text, size_t len, char *err,
                                 size_t err_len);
void pack_free(struct pack *p); /* NULL-safe */

/* The control of that id, or NULL. */
const struct control *pack_control(const struct pack *p, const char *id);

/* Apply the operator's overrides, JSON text {"<pack id>": {"<control id>": {"<param>": value}}}
 * (a value is a string, or an integer for counts, percents and durations in seconds), to
 * packs[0..n). An unknown pack, control or parameter, or a bad value, is ST_INVALID with err
 * naming it: nothing is applied then (all is checked first). */
NODISCARD enum status packs_override(struct pack *const *packs, size_t n, const char *text,
                                     size_t len, char *err, size_t err_len);

#endif
