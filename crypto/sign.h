/* SPDX-License-Identifier: Apache-2.0 */
/* crypto/sign.h -- Ed25519 behind verbs, for audit checkpoints and signed reports. A secret key
 * exists only in struct secret (guarded memory); callers hold public keys and signatures.
 * Thread-safe: a secret key is read-only once made. */
#ifndef DG_CRYPTO_SIGN_H
#define DG_CRYPTO_SIGN_H

#include <stddef.h>
#include <stdint.h>

#include "common/status.h"
#include "crypto/secret.h"

#define SIGN_PK_BYTES 32
#define SIGN_SK_BYTES 64 /* libsodium's form: seed || public key */
#define SIGN_SIG_BYTES 64
#define SIGN_KEY_ID_CHARS 16 /* hex of the first 8 bytes of SHA-256(public key) */

/* A new keypair; *sk is a fresh secret (free with secret_free). OOM aborts. */
void sign_keypair(struct secret **sk, uint8_t pk[static SIGN_PK_BYTES]);
/* The public key of a secret key (SIGN_SK_BYTES long: asserted). */
void sign_public_key(uint8_t pk[static SIGN_PK_BYTES], const struct secret *sk);
void sign_detached(uint8_t sig[static SIGN_SIG_BYTES], const struct secret *sk, const uint8_t *msg,
                   size_t len);
/* The id of a public key: lowercase hex of the first 8 bytes of SHA-256(pk), as audit key ids
 * (server/audit/format.h) and compliance report keys are named. */
void sign_key_id(char out[static SIGN_KEY_ID_CHARS + 1], const uint8_t pk[static SIGN_PK_BYTES]);
/* ST_OK, or ST_AUTH for any signature that does not verify (never says why: no oracle). */
NODISCARD enum status sign_verify(const uint8_t sig[static SIGN_SIG_BYTES], const uint8_t *msg,
                                  size_t len, const uint8_t pk[static SIGN_PK_BYTES]);

#endif
