/* SPDX-License-Identifier: Apache-2.0 */
/* policies/inventory.c -- the inventory snapshot's memory. */
#include "policies/inventory.h"

#include <stdlib.h>
#include <string.h>

void
inventory_free(struct inventory *inv)
{
    if (inv == NULL)
        return;
    for (size_t i = 0; i < inv->n_keyrings; i++)
        free(inv->keyrings[i].versions);
    free(inv->keyrings);
    free(inv->apps);
    free(inv->keys);
    free(inv->listeners);
    free(inv->certs);
    memset(inv, 0, sizeof *inv);
}
