/* SPDX-License-Identifier: Apache-2.0 */
/* server/audit/verify_heads.c -- what an auditor brings to the offline verifier beyond keys: heads
 * the export must pass through (from a signed compliance report) and a time its checkpoints must
 * not predate; and the heads it verified, for the auditor to keep. Pure, like verify.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xmem.h"
#include "server/audit/verify_priv.h"

static bool
same_chain(const struct audit_head *h, const struct chain *c)
{
    return strlen(h->chain_id) == c->id_len && memcmp(h->chain_id, c->id, c->id_len) == 0;
}

static const char *
hex_of(char out[static HASH_HEX + 1], const uint8_t h[static AUDIT_HASH_BYTES])
{
    sodium_bin2hex(out, HASH_HEX + 1, h, AUDIT_HASH_BYTES);
    return out;
}

enum status
verify__expect_at(struct verifier *v, const struct chain *c)
{
    char sh[SHOW_BYTES], want[HASH_HEX + 1], got[HASH_HEX + 1];

    if (v->quiet)
        return ST_OK;
    for (size_t i = 0; i < v->n_expect; i++) {
        const struct audit_head *h = &v->expect[i];
        if (v->matched[i] || h->seq != c->seq || !same_chain(h, c))
            continue;
        /* Public values (hashes in the clear in the export): no constant time needed. */
        if (memcmp(h->hash, c->hash, AUDIT_HASH_BYTES) != 0)
            return verify__reject(v,
                                  "chain \"%s\": seq %llu has hash %s, not the expected head %s: "
                                  "the trail was rewritten after the head was taken",
                                  verify__shown(sh, c->id, c->id_len), (unsigned long long)c->seq,
                                  hex_of(got, c->hash), hex_of(want, h->hash));
        v->matched[i] = true;
    }
    return ST_OK;
}

static const struct chain *
chain_named(const struct verifier *v, const char *id)
{
    for (size_t i = 0; i < v->cap; i++) {
        const struct chain *c = &v->chains[i];
        if (c->id != NULL && strlen(id) == c->id_len && memcmp(id, c->id, c->id_len) == 0)
            return c;
    }
    return NULL;
}

/* After the end rules: every expected head was passed, every last checkpoint is recent enough. */
enum status
verify__expect_end(struct verifier *v)
{
    char sh[SHOW_BYTES];

    for (size_t i = 0; i < v->n_expect; i++) {
        const struct audit_head *h = &v->expect[i];
        const struct chain *c = chain_named(v, h->chain_id);
        if (v->matched[i])
            continue;
        verify__shown(sh, h->chain_id, strlen(h->chain_id));
        if (c == NULL || c->lines == 0)
            return verify__reject(v, "chain \"%s\" of an expected head is not in the export", sh);
        if (c->seq < h->seq)
            return verify__reject(v,
                                  "chain \"%s\" ends at seq %llu, before the expected head at seq "
                                  "%llu: the export was cut back to an earlier checkpoint",
                                  sh, (unsigned long long)c->seq, (unsigned long long)h->seq);
        return verify__reject(v,
                              "chain \"%s\": the expected head at seq %llu lies before the start "
                              "of the export (seq %llu: pruned behind an anchor, or --since); it "
                              "cannot be checked",
                              sh, (unsigned long long)h->seq, (unsigned long long)c->start_seq);
    }
    for (size_t i = 0; v->not_before != NULL && i < v->cap; i++) {
        const struct chain *c = &v->chains[i];
        /* The fixed-width checkpoint form orders like the time it writes. */
        if (c->id == NULL || c->lines == 0 || strcmp(c->cp_time, v->not_before) >= 0)
            continue;
        return verify__reject(v,
                              "chain \"%s\": its last checkpoint (%s) is older than --not-before "
                              "%s: an older export",
                              verify__shown(sh, c->id, c->id_len), c->cp_time, v->not_before);
    }
    return ST_OK;
}

void
verify__heads_out(const struct verifier *v, struct audit_head **heads, size_t *n)
{
    struct audit_head *out = xcalloc(v->n_chains + 1, sizeof *out);
    size_t k = 0;

    for (size_t i = 0; i < v->cap; i++) {
        const struct chain *c = &v->chains[i];
        if (c->id == NULL || c->lines == 0 || c->order >= v->n_chains)
            continue;
        struct audit_head *h = &out[c->order];
        snprintf(h->chain_id, sizeof h->chain_id, "%.*s", (int)c->id_len, c->id);
        h->seq = c->seq;
        memcpy(h->hash, c->hash, AUDIT_HASH_BYTES);
        memcpy(h->cp_time, c->cp_time, sizeof h->cp_time);
    }
    /* Close the gaps left by chains without lines (a --since chain missing fails earlier). */
    for (size_t i = 0; i < v->n_chains; i++) {
        if (out[i].chain_id[0] != '\0')
            out[k++] = out[i];
    }
    *heads = out;
    *n = k;
}
