/* SPDX-License-Identifier: Apache-2.0 */
/* server/inventory.h -- the inventory snapshot (policies/inventory.h) taken from the running
 * service: keyrings and their versions, apps and their keys, the audit trail's state, the root
 * key file and the listeners. The compliance evaluator reads only the snapshot. */
#ifndef DG_SERVER_INVENTORY_H
#define DG_SERVER_INVENTORY_H

#include <stdint.h>

#include "common/status.h"
#include "policies/inventory.h"
#include "server/apps.h"
#include "server/audit/audit.h"
#include "server/certs.h"
#include "server/keyrings.h"

/* What the serving process was started with (main fills it in once). */
struct inventory_facts {
    const char *root_key_path; /* the root key file; its mode is read at each snapshot */
    const char *root_key_id;
    struct inv_listener listeners[2]; /* "api", and "metrics" when separate */
    size_t n_listeners;
};

/* The snapshot at `now` (Unix seconds). audit may be NULL (auditing off); certs may be NULL
 * (no certificate inventory: certs_tracked false). Rows that fail their MAC are left out by the
 * managers (and logged there). *out is freed with inventory_free. */
NODISCARD enum status inventory_take(struct keyrings *k, struct apps *a, const struct audit *au,
                                     struct certs *c, const struct inventory_facts *f, int64_t now,
                                     struct inventory *out);

#endif
