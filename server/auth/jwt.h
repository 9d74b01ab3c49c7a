/* SPDX-License-Identifier: Apache-2.0 */
/* server/auth/jwt.h -- JWT bearer tokens (DESIGN.md "API keys"): static HS secrets or PEM public keys
 * per kid, each pinned to one algorithm. We parse the header ourselves (strict base64url, no
 * duplicate keys, pinned alg) before libjwt checks the signature.
 * Never logs or returns key bytes. */
#ifndef DG_SERVER_AUTH_JWT_H
#define DG_SERVER_AUTH_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/status.h"

#define JWT_TOKEN_MAX 8192 /* longer tokens are refused unread ("malformed") */
#define JWT_KID_MAX 129    /* kid: 1..128 printable ASCII + NUL */
#define JWT_ISS_MAX 256    /* iss and aud in config: 1..255 bytes + NUL */
#define JWT_SUB_MAX 256    /* sub claim: 0..255 bytes + NUL ("" when absent) */
#define JWT_MAX_KEYS 64
#define JWT_MAX_ROLES 64
#define JWT_HS_SECRET_MIN 32 /* RFC 7518 3.2: an HS256 key is at least the hash size */
#define JWT_LEEWAY_DEFAULT 30
#define JWT_LEEWAY_MAX 600
#define JWT_RATE_MAX 1000000 /* requests per second, as for API keys */
#define JWT_BUCKET_BYTES 38  /* "\002jwt:" + 32 hex + NUL */

/* The only algorithms accepted; each kid is pinned to exactly one. (Not "enum jwt_alg": libjwt
 * owns that name, and this header must be includable next to <jwt.h>.) */
enum jwt_key_alg { JWT_HS256 = 1, JWT_RS256, JWT_ES256 };

/* Key material (a PEM public key, an HS256 secret) is at most this large. */
#define JWT_KEY_FILE_MAX 65536

/* "HS256", "RS256" or "ES256". */
const char *jwt_alg_name(enum jwt_key_alg alg);

/* Why a token was refused: fixed codes for metrics labels and logs (jwt_reason_name). The HTTP
 * reply is always 401 unauthenticated, never the reason (no oracle for token forgers). */
enum jwt_reason {
    JWT_R_OK = 0,
    JWT_R_MALFORMED,    /* size, split, base64url, JSON, duplicate keys, claim types */
    JWT_R_ALG_NONE,     /* "alg":"none" in any case */
    JWT_R_BAD_HEADER,   /* crit, jku, x5u, x5c or jwk present, or typ not "JWT" (any case) */
    JWT_R_UNKNOWN_KID,  /* kid missing or not configured */
    JWT_R_ALG_MISMATCH, /* alg is not the one pinned for the kid (algorithm confusion) */
    JWT_R_BAD_SIGNATURE,
    JWT_R_MISSING_EXP,
    JWT_R_EXPIRED,
    JWT_R_NOT_YET_VALID, /* nbf, or iat, later than now + leeway */
    JWT_R_WRONG_ISSUER,
    JWT_R_WRONG_AUDIENCE,
    JWT_R_NO_ROLE, /* no role claim, or none of its roles maps to a scope */
    JWT_R__COUNT
};

/* "ok", "malformed", "alg_none", "bad_header", "unknown_kid", "alg_mismatch", "bad_signature",
 * "missing_exp", "expired", "not_yet_valid", "wrong_issuer", "wrong_audience", "no_role". */
const char *jwt_reason_name(enum jwt_reason r);

/* The verified identity. Plain copies: valid after the token buffer is gone. */
struct jwt_claims {
    enum jwt_reason reason; /* JWT_R_OK on success, else why the token was refused */
    char kid[JWT_KID_MAX];  /* set once the kid is known, even on later failures */
    char iss[JWT_ISS_MAX];  /* on success: the configured issuer (audit app "jwt:<iss>") */
    char sub[JWT_SUB_MAX];  /* on success: sub as sent; the caller HMACs it for the audit */
    uint32_t scopes;        /* enum scope bits (server/apps.h) from the role claim */
    int64_t exp;
};

/* Immutable once built: jwt_verify may run on any number of threads at once (the failure
 * counters are atomics). Building (new/add/free) is single-threaded. */
struct jwt_verifier;

/* An empty verifier. issuer and audience are exact strings (1..255 bytes); leeway_s in
 * 0..JWT_LEEWAY_MAX; role_claim names the top-level claim holding a role string or an array of
 * role strings. ST_INVALID (with *err set to a fixed message) on a bad argument. */
NODISCARD enum status jwt_verifier_new(struct jwt_verifier **out, const char **err,
                                       const char *issuer, const char *audience, int64_t leeway_s,
                                       const char *role_claim);
void jwt_verifier_free(struct jwt_verifier *v); /* NULL-safe; wipes HS secrets */

/* Add a key. HS256: `key` is the secret (>= JWT_HS_SECRET_MIN bytes; a PEM text is refused so an
 * operator cannot paste a public key as an HMAC secret); it is copied into guarded memory, and the
 * caller wipes its copy. RS256 / ES256: `key` is a PEM public key (SubjectPublicKeyInfo), RSA of
 * at least 2048 bits or EC P-256. ST_INVALID (*err set) for a bad or duplicate kid, too many keys
 * or unusable key material; the message never quotes key bytes. */
NODISCARD enum status jwt_verifier_add_key(struct jwt_verifier *v, const char **err,
                                           const char *kid, enum jwt_key_alg alg,
                                           const uint8_t *key, size_t key_len);

/* Map a role name to scope bits (ORed with any earlier mapping of the same role). */
NODISCARD enum status jwt_verifier_add_role(struct jwt_verifier *v, const char **err,
                                            const char *role, uint32_t scopes);

/* Rate limit for JWT principals: requests per second and burst, applied per (iss, sub) token
 * bucket; 0 = unlimited (the default). ST_INVALID outside 0..JWT_RATE_MAX. */
NODISCARD enum status jwt_verifier_set_rate(struct jwt_verifier *v, int64_t rate, int64_t burst);
void jwt_verifier_rate(const struct jwt_verifier *v, int64_t *rate, int64_t *burst);
/* The rate-limit bucket name of a verified principal: a hash of (iss, sub), so every subject
 * has its own bucket, names never collide with API key ids and no subject is held in clear. */
void jwt_bucket(char out[static JWT_BUCKET_BYTES], const struct jwt_claims *c);

/* Build from a JSON config object:
 *   {"issuer": "...", "audience": "...", "leeway": 30, "role_claim": "role",
 *    "rate": 10, "burst": 20,
 *    "roles": {"dify-api": ["encrypt", "decrypt"], "ops": "audit:read certs:read"},
 *    "keys": [{"kid": "k1", "alg": "HS256", "secret_file": "/path"},
 *             {"kid": "k2", "alg": "RS256", "public_key_file": "/path.pem"},
 *             {"kid": "k3", "alg": "ES256", "public_key": "-----BEGIN PUBLIC KEY-----..."}]}
 * leeway, role_claim, rate and burst are optional (30, "role", 0, 0); unknown fields are
 * refused. A secret_file is read as raw bytes with one trailing "\n" or "\r\n" removed; HS
 * secrets are never accepted inline.
 * A secret_file must pass the key-file rule of the root key (crypto/keyfile.h: not readable or
 * writable by others, not writable by its group; symlinks followed).
 * On failure: ST_INVALID (or ST_IO for an unreadable file, ST_FORBIDDEN for a secret_file whose
 * mode is too open) and err (err_len bytes) gets a one-line message naming the field, never key
 * bytes. */
NODISCARD enum status jwt_verifier_from_json(struct jwt_verifier **out, char *err, size_t err_len,
                                             const json_t *cfg);

/* Verify token (len bytes, not NUL-terminated) at time `now` (Unix seconds).
 * Order: size and strict split, header (alg none, forbidden fields, typ, kid, pinned alg),
 * payload JSON, signature by libjwt with the kid's key and alg, then exp (required), nbf, iat,
 * iss, aud (a string or an array holding ours) with the leeway, then roles.
 * Returns ST_OK with *out filled (reason JWT_R_OK, scopes != 0), or ST_UNAUTHENTICATED with
 * out->reason set and scopes 0. out is reset on entry. Thread-safe. */
NODISCARD enum status jwt_verify(const struct jwt_verifier *v, const char *token, size_t len,
                                 int64_t now, struct jwt_claims *out);

/* Refusals counted per reason since the verifier was built (metrics). Thread-safe. */
uint64_t jwt_verifier_failures(const struct jwt_verifier *v, enum jwt_reason r);

#endif
