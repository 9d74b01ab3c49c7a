/* SPDX-License-Identifier: Apache-2.0 */
/* server/audit/flood.c -- folding of refusals (401s, requests refused before routing) into one
 * event per flood and second, so a flood costs the trail one line per second and client, and
 * never a wait for the disk. Bounded whatever the flood: a hash table of pending floods, and past
 * FLOOD_FINE_MAX distinct clients or keys in a second, one coarse flood per route and status.
 * Writer thread only: no locks. */
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/xmem.h"
#include "server/audit/priv.h"

#define FLOOD_SLOTS 8192    /* a power of two */
#define FLOOD_FINE_MAX 4096 /* floods told apart by client and key, per second */
#define FLOOD_LOAD_MAX (FLOOD_SLOTS / 8 * 7)

/* Records of one flood: same second, client, route, method, status and known key id. Unknown
 * key ids (made up by the flood) do not tell floods apart: the first one's HMAC stands for all. */
static bool
same_flood(const struct audit_rec *f, const struct audit_rec *r)
{
    return f->time_ms / 1000 == r->time_ms / 1000 && f->status == r->status &&
           strcmp(f->h_client, r->h_client) == 0 && strcmp(f->route, r->route) == 0 &&
           strcmp(f->method, r->method) == 0 && strcmp(f->key_id, r->key_id) == 0 &&
           strcmp(f->client_cert, r->client_cert) == 0;
}

static uint64_t
mix(uint64_t h, const char *s)
{
    for (; *s != '\0'; s++)
        h = (h ^ (unsigned char)*s) * UINT64_C(1099511628211);
    return (h ^ 0xff) * UINT64_C(1099511628211);
}

static size_t
slot_of(const struct audit_rec *r)
{
    uint64_t h = UINT64_C(14695981039346656037) ^ (uint64_t)(r->time_ms / 1000);
    h = (h ^ r->status) * UINT64_C(1099511628211);
    h = mix(mix(mix(mix(mix(h, r->h_client), r->route), r->method), r->key_id), r->client_cert);
    return (size_t)(h ^ (h >> 29)) & (FLOOD_SLOTS - 1);
}

static struct audit_rec **
find(struct audit *a, const struct audit_rec *r)
{
    size_t i = slot_of(r);
    while (a->flood_slots[i] != NULL && !same_flood(a->flood_slots[i], r))
        i = (i + 1) & (FLOOD_SLOTS - 1);
    return &a->flood_slots[i];
}

/* Past the per-second bound: fold by route, method and status only. */
static void
coarsen(struct audit_rec *r)
{
    r->h_client[0] = r->h_key_id[0] = r->key_id[0] = r->app[0] = r->h_keyring[0] = '\0';
    r->client_cert[0] = '\0';
}

struct audit_rec *
audit__fold(struct audit *a, struct audit_rec *list, size_t *n)
{
    struct audit_rec *keep = NULL, **tail = &keep;

    if (a->flood_slots == NULL)
        a->flood_slots = xcalloc(FLOOD_SLOTS, sizeof *a->flood_slots);
    for (struct audit_rec *r = list, *next; r != NULL; r = next) {
        next = r->next;
        r->next = NULL;
        struct audit_rec **slot = r->coalesce ? find(a, r) : NULL;
        if (slot != NULL && *slot == NULL && a->flood_fine >= FLOOD_FINE_MAX) {
            coarsen(r);
            slot = find(a, r);
        }
        if (slot != NULL && *slot != NULL) {
            (*slot)->count = ((*slot)->count ? (*slot)->count : 1) + 1;
            audit__rec_free(r);
            (*n)--;
        } else if (slot != NULL && a->flood_n < FLOOD_LOAD_MAX) {
            *slot = r;
            a->flood_n++;
            a->flood_fine += r->h_client[0] != '\0';
            r->next = a->floods;
            a->floods = r;
            (*n)--;
        } else { /* not folded (or no room): committed as it is */
            *tail = r;
            tail = &r->next;
        }
    }
    return keep;
}

struct audit_rec *
audit__floods_due(struct audit *a, struct audit_rec *list, size_t *n, bool all)
{
    int64_t sec = clock_now_ms() / 1000;
    bool moved = false;

    for (struct audit_rec **pp = &a->floods; *pp != NULL;) {
        struct audit_rec *f = *pp;
        if (all || f->time_ms / 1000 < sec) {
            *pp = f->next;
            f->next = list;
            list = f;
            (*n)++;
            moved = true;
        } else {
            pp = &f->next;
        }
    }
    if (moved && a->flood_slots != NULL) { /* index what is left: this second's floods */
        memset(a->flood_slots, 0, FLOOD_SLOTS * sizeof *a->flood_slots);
        a->flood_n = a->flood_fine = 0;
        for (struct audit_rec *f = a->floods; f != NULL; f = f->next) {
            *find(a, f) = f;
            a->flood_n++;
            a->flood_fine += f->h_client[0] != '\0';
        }
    }
    return list;
}

void
audit__floods_free(struct audit *a)
{
    for (struct audit_rec *f = a->floods, *next; f != NULL; f = next) {
        next = f->next;
        audit__rec_free(f);
    }
    a->floods = NULL;
    free(a->flood_slots);
    a->flood_slots = NULL;
}
