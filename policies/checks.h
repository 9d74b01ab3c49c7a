/* SPDX-License-Identifier: Apache-2.0 */
/* policies/checks.h -- the compliance checks: each judges one property of an inventory snapshot
 * (policies/inventory.h) with the parameters a pack's control gives it, and returns a result and
 * its evidence (names, ids, counts and times from the snapshot: never a secret, which the
 * snapshot does not hold). Pure: no I/O, no clock (the time is the snapshot's `now`), no global
 * state; thread-safe. Packs (policies/pack.h) name checks by their `name`. */
#ifndef DG_POLICIES_CHECKS_H
#define DG_POLICIES_CHECKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policies/inventory.h"

/* A control's result. MANUAL is evidence a machine cannot judge: it is listed with what to
 * attach and never counted as passed. */
enum ctl_result { CTL_PASS, CTL_FAIL, CTL_NOT_APPLICABLE, CTL_MANUAL, CTL__COUNT };
/* "pass", "fail", "not_applicable", "manual". */
const char *ctl_result_name(enum ctl_result r);

enum param_type {
    PARAM_DURATION, /* seconds: "90d", "12h", "30m", "45s" or an integer; at most 3650d */
    PARAM_COUNT,    /* a non-negative integer (JSON number or decimal string) */
    PARAM_PERCENT,  /* an integer 1..100 */
    PARAM_TEXT,     /* a string of 1..PARAM_TEXT_MAX-1 bytes of printable UTF-8 */
};
#define PARAM_TEXT_MAX 512
#define CHECK_MAX_PARAMS 4

/* A parameter as a check declares it; def NULL makes it required. */
struct param_def {
    const char *name;
    enum param_type type;
    const char *def;
    const char *help;
};

/* A parameter's value in a control: num for durations, counts and percents; text for text (and
 * for every type, the value in its canonical spelling, as reports show it). */
struct param {
    int64_t num;
    char text[PARAM_TEXT_MAX];
};

#define OUTCOME_FINDINGS_MAX 20
#define OUTCOME_TEXT_MAX 320

/* One item a check looked at: a keyring, a key, a listener, a certificate, the trail. */
struct finding {
    bool ok;
    char subject[OUTCOME_TEXT_MAX]; /* "keyring tenant-a", "api key k_7Hq2 (app chat)" */
    char detail[OUTCOME_TEXT_MAX];  /* "latest version 3 created 2026-01-01T00:00:00Z: 400d old" */
};

struct ctl_outcome {
    enum ctl_result result;
    char summary[OUTCOME_TEXT_MAX]; /* one sentence with the counts */
    uint64_t checked, failing;      /* items examined, and those that fail */
    /* The items examined, failing ones kept first when there are more than fit. */
    struct finding findings[OUTCOME_FINDINGS_MAX];
    size_t n_findings;
};

struct check {
    const char *name; /* "keyring_cryptoperiod" */
    const char *description;
    struct param_def params[CHECK_MAX_PARAMS];
    size_t n_params;
    /* Judge inv with params[0..n_params) (in the order of `params`, already validated). */
    void (*run)(const struct inventory *inv, const struct param *params, struct ctl_outcome *out);
};

/* The check of that name, or NULL. */
const struct check *check_find(const char *name);
/* Every check, in a fixed order. */
const struct check *checks_all(size_t *n);

/* Run one check: out is reset first. A check always decides (no errors at run time: parameters
 * were validated when the pack loaded). */
void check_run(const struct check *c, const struct inventory *inv, const struct param *params,
               struct ctl_outcome *out);

/* Parse a parameter value given as text (a pack's string, or an integer printed as text) into p,
 * with its canonical spelling in p->text. False (why gets a short reason) when it does not fit
 * the type. */
bool param_parse(struct param *p, const struct param_def *d, const char *text, size_t len,
                 const char **why);

#endif
