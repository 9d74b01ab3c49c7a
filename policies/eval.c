/* SPDX-License-Identifier: Apache-2.0 */
/* policies/eval.c -- a pack's controls against one snapshot (see eval.h). */
#include "policies/eval.h"

#include <stdlib.h>
#include <string.h>

#include "common/xmem.h"

void
eval_run(struct evaluation *out, const struct pack *p, const struct inventory *inv)
{
    memset(out, 0, sizeof *out);
    out->pack = p;
    out->evaluated_at = inv->now;
    out->items = xcalloc(p->n_controls + 1, sizeof *out->items);
    for (size_t i = 0; i < p->n_controls; i++) {
        struct ctl_eval *e = &out->items[out->n++];
        e->control = &p->controls[i];
        check_run(e->control->check, inv, e->control->params, &e->out);
        out->counts[e->out.result]++;
    }
}

void
eval_free(struct evaluation *e)
{
    if (e == NULL)
        return;
    free(e->items);
    memset(e, 0, sizeof *e);
}
