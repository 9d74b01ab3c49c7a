/* SPDX-License-Identifier: Apache-2.0 */
/* server/handlers/routes.c -- THE route table: every path, its handler, the scopes required
 * before the handler runs (0: the handler decides, for routes with alternatives), its audit
 * operation (NULL: a public route, never audited) and flags. The transport matches over it and
 * names no handler; tests/integration/test_openapi_doc.py reads it to check docs/openapi.yaml
 * documents every route. One route per line, even past 100 columns: the table reads as one. */
#include "server/handlers/handlers.h"

#define AUTH ROUTE_AUTH
#define KR (ROUTE_AUTH | ROUTE_KEYRING)
#define CRYPTO (ROUTE_AUTH | ROUTE_KEYRING | ROUTE_BATCH)
#define AUDIT_ADMIN (SCOPE_AUDIT_READ | SCOPE_KEYRINGS_ADMIN)

/* clang-format off */
static const struct route v[] = {
    {"GET", "/healthz", h_healthz, 0, NULL, 0},
    {"GET", "/readyz", h_readyz, 0, NULL, 0},
    {"GET", "/metrics", h_metrics, 0, NULL, 0},
    {"GET", "/v1/keyrings", h_keyrings_list, SCOPE_KEYRINGS_ADMIN, "keyring.list", AUTH},
    {"POST", "/v1/keyrings", h_keyrings_create, SCOPE_KEYRINGS_ADMIN, "keyring.create", AUTH},
    {"GET", "/v1/keyrings/{name}", h_keyring_get, 0, "keyring.get", KR},
    {"PATCH", "/v1/keyrings/{name}", h_keyring_patch, SCOPE_KEYRINGS_ADMIN, "keyring.update", KR},
    {"DELETE", "/v1/keyrings/{name}", h_keyring_delete, SCOPE_KEYRINGS_ADMIN, "keyring.delete", KR},
    {"POST", "/v1/keyrings/{name}/rotate", h_keyring_rotate, SCOPE_KEYRINGS_ADMIN, "keyring.rotate", KR},
    {"POST", "/v1/keyrings/{name}/encrypt", h_encrypt, SCOPE_ENCRYPT, "encrypt", CRYPTO},
    {"POST", "/v1/keyrings/{name}/decrypt", h_decrypt, SCOPE_DECRYPT, "decrypt", CRYPTO},
    {"POST", "/v1/keyrings/{name}/rewrap", h_rewrap, SCOPE_REWRAP, "rewrap", CRYPTO},
    {"POST", "/v1/keyrings/{name}/datakey", h_datakey, SCOPE_DATAKEY, "datakey", CRYPTO},
    {"GET", "/v1/apps", h_apps_list, SCOPE_APPS_ADMIN, "app.list", AUTH},
    {"POST", "/v1/apps", h_apps_create, SCOPE_APPS_ADMIN, "app.create", AUTH},
    {"GET", "/v1/apps/{app}", h_app_get, SCOPE_APPS_ADMIN, "app.get", AUTH},
    {"GET", "/v1/apps/{app}/usage", h_app_usage, 0, "app.usage", AUTH},
    {"GET", "/v1/apps/{app}/keys", h_keys_list, SCOPE_APPS_ADMIN, "key.list", AUTH},
    {"POST", "/v1/apps/{app}/keys", h_keys_create, SCOPE_APPS_ADMIN, "key.create", AUTH},
    {"GET", "/v1/apps/{app}/keys/{id}", h_key_get, SCOPE_APPS_ADMIN, "key.get", AUTH},
    {"DELETE", "/v1/apps/{app}/keys/{id}", h_key_revoke, SCOPE_APPS_ADMIN, "key.revoke", AUTH},
    {"POST", "/v1/apps/{app}/keys/{id}/rotate", h_key_rotate, SCOPE_APPS_ADMIN, "key.rotate", AUTH},
    {"GET", "/v1/audit/events", h_audit_events, SCOPE_AUDIT_READ, "audit.events", AUTH},
    {"GET", "/v1/audit/export", h_audit_export, SCOPE_AUDIT_READ, "audit.export", AUTH},
    {"GET", "/v1/audit/verify", h_audit_verify, SCOPE_AUDIT_READ, "audit.verify", AUTH},
    {"GET", "/v1/audit/public-key", h_audit_public_key, SCOPE_AUDIT_READ, "audit.public_key", AUTH},
    {"POST", "/v1/audit/hash", h_audit_hash, SCOPE_AUDIT_READ, "audit.hash", AUTH},
    {"POST", "/v1/audit/rotate-key", h_audit_rotate_key, AUDIT_ADMIN, "audit.rotate_key", AUTH},
    {"GET", "/v1/certificates", h_certs_list, SCOPE_CERTS_READ, "cert.list", AUTH},
    {"POST", "/v1/certificates", h_certs_create, SCOPE_CERTS_WRITE, "cert.create", AUTH},
    {"GET", "/v1/certificates/{id}", h_cert_get, SCOPE_CERTS_READ, "cert.get", AUTH},
    {"DELETE", "/v1/certificates/{id}", h_cert_delete, SCOPE_CERTS_WRITE, "cert.delete", AUTH},
    {"GET", "/v1/certificates/{id}/history", h_cert_history, SCOPE_CERTS_READ, "cert.history", AUTH},
    {"GET", "/v1/compliance/report", h_compliance_report, SCOPE_COMPLIANCE_READ, "compliance.report", AUTH},
    {"GET", "/v1/compliance/public-key", h_compliance_public_key, SCOPE_COMPLIANCE_READ, "compliance.public_key", AUTH},
};
/* clang-format on */

const struct route_table handlers_routes = {v, sizeof v / sizeof v[0]};
