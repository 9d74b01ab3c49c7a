/* SPDX-License-Identifier: Apache-2.0 */
/* server/auth/principal.c -- scopes and principals (see principal.h). Pure. */
#include "server/auth/principal.h"

#include <string.h>

static const char *const scope_names[] = {
    "encrypt",    "decrypt",    "rewrap",     "datakey",     "datakey:plaintext", "keyrings:admin",
    "apps:admin", "audit:read", "certs:read", "certs:write", "compliance:read",   NULL,
};
#define N_SCOPES (sizeof scope_names / sizeof scope_names[0] - 1)

const char *const *
scope_all_names(void)
{
    return scope_names;
}

uint32_t
scope_parse(const char *name, size_t len)
{
    for (size_t i = 0; i < N_SCOPES; i++)
        if (strlen(scope_names[i]) == len && memcmp(scope_names[i], name, len) == 0)
            return 1u << i;
    return 0;
}

const char *
scope_name(uint32_t bit)
{
    for (size_t i = 0; i < N_SCOPES; i++)
        if (bit == 1u << i)
            return scope_names[i];
    return "unknown";
}

uint32_t
scopes_from_text(const char *text)
{
    uint32_t s = 0;
    for (const char *p = text; *p != '\0';) {
        size_t n = strcspn(p, " ");
        s |= scope_parse(p, n);
        p += n;
        p += strspn(p, " ");
    }
    return s;
}

void
scopes_to_text(char out[static STORE_SCOPES_MAX], uint32_t scopes)
{
    out[0] = '\0';
    for (size_t i = 0; i < N_SCOPES; i++) {
        if (!(scopes & (1u << i)))
            continue;
        if (out[0] != '\0')
            strcat(out, " ");
        strcat(out, scope_names[i]);
    }
}

/* Does the space-separated `list` hold `name` (len bytes) as a whole item? Exact: "tenant-42"
 * does not hold "tenant-4". */
static bool
list_has(const char *list, const char *name, size_t len)
{
    for (const char *s = list; *s != '\0';) {
        size_t n = strcspn(s, " ");
        if (n == len && memcmp(s, name, n) == 0)
            return true;
        s += n;
        s += strspn(s, " ");
    }
    return false;
}

/* Is the allow-list `inner` within `outer`? "" means every keyring on either side. */
static bool
list_within(const char *inner, const char *outer)
{
    if (outer[0] == '\0')
        return true;
    if (inner[0] == '\0')
        return false;
    for (const char *s = inner; *s != '\0';) {
        size_t n = strcspn(s, " ");
        if (n > 0 && !list_has(outer, s, n))
            return false;
        s += n;
        s += strspn(s, " ");
    }
    return true;
}

bool
principal_allows(const struct principal *p, uint32_t scopes, const char *keyring)
{
    if ((p->scopes & scopes) != scopes)
        return false;
    if (keyring == NULL || p->keyrings[0] == '\0')
        return true;
    return list_has(p->keyrings, keyring, strlen(keyring));
}

bool
principal_all_keyrings(const struct principal *p)
{
    return p->keyrings[0] == '\0';
}

const char *
grant_refusal_text(enum grant_refusal g)
{
    switch (g) {
    case GRANT_SCOPE:
        return "scope: the key would hold a scope the calling key does not hold";
    case GRANT_KEYRINGS:
        return "allow-list: the key's keyrings must be within the calling key's keyring "
               "allow-list (give \"keyrings\")";
    case GRANT_EXPIRY:
        return "expiry: the key would expire after the calling key";
    case GRANT_OK:
        break;
    }
    return "allowed";
}

enum grant_refusal
principal_may_grant(const struct principal *by, uint32_t scopes, const char *keyrings,
                    int64_t expires_at)
{
    if (by->scopes == SCOPE__ALL && principal_all_keyrings(by))
        return GRANT_OK; /* unrestricted: the admin key */
    if ((scopes & ~by->scopes) != 0)
        return GRANT_SCOPE;
    if (!list_within(keyrings != NULL ? keyrings : "", by->keyrings))
        return GRANT_KEYRINGS;
    if (by->expires_at != 0 && expires_at > by->expires_at)
        return GRANT_EXPIRY;
    return GRANT_OK;
}
