/* SPDX-License-Identifier: Apache-2.0 */
/* server/handlers/handlers.h -- one function per route; each replies exactly once through the
 * req_reply_* / req_fail calls of server/http/http.h. Authentication has happened before (for /v1);
 * each handler checks its own scopes. */
#ifndef DG_SERVER_HANDLERS_H
#define DG_SERVER_HANDLERS_H

#include "server/http/http.h"

enum crypto_op { OP_ENCRYPT, OP_DECRYPT, OP_REWRAP, OP_DATAKEY };

void h_healthz(struct req *r);
void h_readyz(struct req *r);
void h_metrics(struct req *r);

void h_keyrings_list(struct req *r);
void h_keyrings_create(struct req *r);
void h_keyring_get(struct req *r);
void h_keyring_patch(struct req *r);
void h_keyring_delete(struct req *r);
void h_keyring_rotate(struct req *r);

void h_crypto(struct req *r, enum crypto_op op);
void h_encrypt(struct req *r);
void h_decrypt(struct req *r);
void h_rewrap(struct req *r);
void h_datakey(struct req *r);

void h_apps_list(struct req *r);
void h_apps_create(struct req *r);
void h_app_get(struct req *r);
void h_keys_list(struct req *r);
void h_keys_create(struct req *r);
void h_key_revoke(struct req *r);
void h_key_rotate(struct req *r);
void h_app_usage(struct req *r);

void h_audit_events(struct req *r);
void h_audit_export(struct req *r);
void h_audit_verify(struct req *r);
void h_audit_public_key(struct req *r);
void h_audit_hash(struct req *r);
void h_audit_rotate_key(struct req *r);

/* Parse a crypto request body the way the handler does, without keys or crypto: for the fuzzer
 * and tests. *n_items counts the items that parsed. */
NODISCARD enum status crypto_request_check(enum crypto_op op, const char *body, size_t len,
                                           size_t *n_items);

/* Reply with a jansson value (takes the reference), as a secret body: wiped when freed. */
void reply_jansson(struct req *r, unsigned code, json_t *j);

#endif
