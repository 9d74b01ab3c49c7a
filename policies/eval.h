/* SPDX-License-Identifier: Apache-2.0 */
/* policies/eval.h -- the evaluator: a pack and an inventory snapshot in, one result per control
 * out, evaluated at the snapshot's `now`. Pure (no I/O, no clock, no HTTP, database or request
 * parsing), so it builds, is tested from tables and is fuzzed on its own. Thread-safe for
 * distinct outputs. */
#ifndef DG_POLICIES_EVAL_H
#define DG_POLICIES_EVAL_H

#include <stddef.h>
#include <stdint.h>

#include "policies/checks.h"
#include "policies/inventory.h"
#include "policies/pack.h"

struct ctl_eval {
    const struct control *control; /* borrowed from the pack */
    struct ctl_outcome out;
};

struct evaluation {
    const struct pack *pack; /* borrowed: must outlive the evaluation */
    int64_t evaluated_at;    /* the snapshot's now */
    struct ctl_eval *items;  /* one per control, in the pack's order */
    size_t n;
    size_t counts[CTL__COUNT]; /* controls per result */
};

/* Evaluate every control of p against inv into *out (freed with eval_free). */
void eval_run(struct evaluation *out, const struct pack *p, const struct inventory *inv);
void eval_free(struct evaluation *e); /* NULL-safe; zeroes it */

#endif
