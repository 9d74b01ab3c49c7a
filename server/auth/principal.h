/* SPDX-License-Identifier: Apache-2.0 */
/* server/auth/principal.h -- who is calling and what they may do: the scopes, the principal of
 * one request (a copy of its key row's grants, or a JWT's), and the rules that bound it (exact
 * keyring allow-lists, what a principal may grant). Plain data and pure functions: no lookup,
 * no lock, thread-safe. */
#ifndef DG_SERVER_AUTH_PRINCIPAL_H
#define DG_SERVER_AUTH_PRINCIPAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

enum scope {
    SCOPE_ENCRYPT = 1u << 0,
    SCOPE_DECRYPT = 1u << 1,
    SCOPE_REWRAP = 1u << 2,
    SCOPE_DATAKEY = 1u << 3,
    SCOPE_DATAKEY_PLAINTEXT = 1u << 4,
    SCOPE_KEYRINGS_ADMIN = 1u << 5,
    SCOPE_APPS_ADMIN = 1u << 6,
    SCOPE_AUDIT_READ = 1u << 7,
    SCOPE_CERTS_READ = 1u << 8,
    SCOPE_CERTS_WRITE = 1u << 9,
    SCOPE_COMPLIANCE_READ = 1u << 10,
    SCOPE__ALL = (1u << 11) - 1,
};

/* The authenticated caller of one request (a copy: safe after the key is revoked). */
struct principal {
    char app[STORE_NAME_MAX];
    char key_id[STORE_KEY_ID_MAX];
    uint32_t scopes;
    char keyrings[STORE_KEYRINGS_MAX]; /* space-separated allow-list, "" = all */
    int64_t expires_at;                /* when the key stops working (expiry, or the end of its
                                         * grace period); 0 = no key row (a JWT): no bound */
};

/* Parse a scope name; 0 if unknown. scope_name(bit) for one bit. */
uint32_t scope_parse(const char *name, size_t len);
const char *scope_name(uint32_t bit);
/* Every scope name, NULL-terminated (for suggestions in errors). */
const char *const *scope_all_names(void);

/* True when p holds every bit of `scopes` and, if keyring != NULL, its allow-list names the
 * keyring exactly (an empty allow-list allows every keyring). keyring == NULL is only for
 * operations that touch no keyring (apps, audit reads); anything that reads or changes one
 * keyring passes its name. */
bool principal_allows(const struct principal *p, uint32_t scopes, const char *keyring);
/* True when p has no keyring allow-list: required for changes that affect every keyring (the
 * audit signing key). */
bool principal_all_keyrings(const struct principal *p);

/* Why a principal may not issue a key (principal_may_grant), and the 403 text for it: names
 * what refused (scope, allow-list or expiry), never a secret. */
enum grant_refusal { GRANT_OK = 0, GRANT_SCOPE, GRANT_KEYRINGS, GRANT_EXPIRY };
const char *grant_refusal_text(enum grant_refusal g);
/* May `by` create (or rotate into) a key with these scopes, allow-list (space-separated, "" =
 * every keyring) and expiry? An unrestricted principal (every scope, no allow-list) may issue
 * anything. Others only a key whose scopes are a subset of theirs, whose allow-list is within
 * theirs (so a restricted principal must give one), and which expires no later than they do
 * (not bounded for principals without a key row: expires_at == 0). */
enum grant_refusal principal_may_grant(const struct principal *by, uint32_t scopes,
                                       const char *keyrings, int64_t expires_at);

/* Scope names, space-separated (as key rows store them) to bits and back; unknown names are
 * ignored when reading (a row is MAC-checked before it is read). */
uint32_t scopes_from_text(const char *text);
void scopes_to_text(char out[static STORE_SCOPES_MAX], uint32_t scopes);

#endif
