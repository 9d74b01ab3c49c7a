/* SPDX-License-Identifier: Apache-2.0 */
/* crypto/mac.h -- keyed digests as text: HMAC-SHA256 of a value as lowercase hex (how the audit
 * trail records identifying values), and key ids that reveal nothing about their key. The key is
 * a struct secret; nothing here copies it. Thread-safe. */
#ifndef DG_CRYPTO_MAC_H
#define DG_CRYPTO_MAC_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/secret.h"

#define MAC_HEX_CHARS 64
#define MAC_ID_CHARS 16

/* HMAC-SHA256(key, value) in lowercase hex; key is 32 bytes (asserted). */
void mac_hex(char out[static MAC_HEX_CHARS + 1], const struct secret *key, const void *value,
             size_t len);
/* The first 8 bytes of BLAKE2b(key, label) in hex: names the key without revealing it. */
void mac_key_id(char out[static MAC_ID_CHARS + 1], const struct secret *key, const char *label);

#endif
