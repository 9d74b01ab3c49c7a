/* SPDX-License-Identifier: Apache-2.0 */
/* server/handlers/handlers.h -- one function per route; each replies exactly once through the
 * req_reply_* / req_fail calls of server/http/http.h. The route table (routes.c) says which
 * scopes a route needs: the pipeline (pipeline.c) authenticates and checks them, and a keyring
 * route's allow-list, before the handler runs; handlers check what the table cannot say
 * (alternatives, a keyring named in the body, grant bounds). Handlers call managers, never the
 * store. */
#ifndef DG_SERVER_HANDLERS_HANDLERS_H
#define DG_SERVER_HANDLERS_HANDLERS_H

#include <jansson.h>

#include "server/http/http.h"

/* The route table and the pipeline around it: what server/main hands the transport. */
extern const struct route_table handlers_routes;
extern const struct http_app handlers_app;

/* What handlers add to the request's audit event: a context value, a batch reference (both
 * HMAC-ed) and one batch item's outcome and key version. No-ops when auditing is off. */
void req_audit_context(struct req *r, const char *value, size_t len);
void req_audit_reference(struct req *r, const char *value, size_t len);
void req_audit_item(struct req *r, bool ok, uint32_t version);

/* A finished child span of the request's server span, when the request is sampled: name is a
 * static string ("key lookup", "crypto"), start_ns from trace_now_ns(), st its outcome. */
void req_span(struct req *r, const char *name, int64_t start_ns, enum status st);

/* Admin changes: the event the request will have if the change commits with `status`, to pass
 * to the store call (NULL when auditing is off; &store_audit_refused when the event cannot be
 * made, which makes the store refuse the change: pass it on either way); then report the
 * outcome. */
struct store_audit_row;
const struct store_audit_row *req_admin_event(struct req *r, unsigned status);
void req_admin_done(struct req *r, enum status st);

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
void h_key_get(struct req *r);
void h_key_revoke(struct req *r);
void h_key_rotate(struct req *r);
void h_app_usage(struct req *r);

void h_audit_events(struct req *r);
void h_audit_export(struct req *r);
void h_audit_verify(struct req *r);
void h_audit_public_key(struct req *r);
void h_audit_hash(struct req *r);
void h_audit_rotate_key(struct req *r);

/* The certificate inventory (certs.c). */
void h_certs_list(struct req *r);
void h_certs_create(struct req *r);
void h_cert_get(struct req *r);
void h_cert_delete(struct req *r);
void h_cert_history(struct req *r);
/* A certificate source's JSON object (a POST body, an entry of the --cert-sources file) into
 * *s (its pem malloc'd: cert_spec_free). ST_INVALID with a fixed *msg, never echoing input. */
struct cert_spec;
NODISCARD enum status certs_spec_parse(const json_t *o, struct cert_spec *s, const char **msg);
void h_compliance_report(struct req *r);
void h_compliance_public_key(struct req *r);

/* Parse a crypto request body the way the handler does, without keys or crypto: for the fuzzer
 * and tests. *n_items counts the items that parsed. */
NODISCARD enum status crypto_request_check(enum crypto_op op, const char *body, size_t len,
                                           size_t *n_items);

/* The message of a failure: msg, or for ST_NOT_FOUND without one, `not_found` (what was not
 * found: "keyring not found"). */
static inline const char *
or_not_found(enum status st, const char *msg, const char *not_found)
{
    return st == ST_NOT_FOUND && msg == NULL ? not_found : msg;
}

/* Query strings (issue 14): false after answering 400 when the query has a parameter outside
 * `known` (NULL-terminated), naming it and the known ones. */
bool query_only(struct req *r, const char *const *known);
/* A time as every endpoint accepts it: unix seconds, RFC 3339 ("2026-11-28T20:21:00Z", optional
 * fraction, Z or +hh:mm) or a UTC day ("2026-11-28": its first millisecond, or with end_of_day
 * the first millisecond of the next day), from 1970 to 9999-12-31T23:59:59Z, in unix ms. */
bool when_parse(const char *s, bool end_of_day, int64_t *ms);
/* Any of those forms as its UTC day, "YYYY-MM-DD". */
bool when_day(const char *s, char out[static 11]);
#define WHEN_FORMS "unix seconds, RFC 3339 or a UTC day (YYYY-MM-DD) up to 9999-12-31"

/* The 403 message for a keyring outside the caller's allow-list, naming both (pipeline.c). */
const char *allow_list_refusal(struct req *r, const char *keyring);

/* Reply with a jansson value (takes the reference), as a secret body: wiped when freed. */
void reply_jansson(struct req *r, unsigned code, json_t *j);

#endif
