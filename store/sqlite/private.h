/* SPDX-License-Identifier: Apache-2.0 */
/* store/sqlite/private.h -- what the files of the SQLite backend share: statement ids, the
 * backend struct, row readers and the operations sqlite.c puts in its ops table. Nothing outside
 * store/sqlite/ includes it. */
#ifndef DG_STORE_SQLITE_PRIVATE_H
#define DG_STORE_SQLITE_PRIVATE_H

#include <stddef.h>
#include <stdint.h>

#include "store/private/ops.h"
#include "store/sqlite/db.h"

enum sq_id {
    SQ_META_GET,
    SQ_META_SET,
    SQ_SVC_GET,
    SQ_SVC_PUT,
    SQ_SVC_ADD,
    SQ_SVC_LIST,
    SQ_KR_INSERT,
    SQ_KR_GET,
    SQ_KR_LIST,
    SQ_KR_UPDATE,
    SQ_KR_ROTATE,
    SQ_KR_EXISTS,
    SQ_KR_DELETE_VERSIONS,
    SQ_KR_DELETE,
    SQ_V_INSERT,
    SQ_V_GET,
    SQ_V_LIST,
    SQ_V_LIST_ALL,
    SQ_V_RESERVE,
    SQ_V_RESERVE_FROM,
    SQ_V_EXISTS,
    SQ_V_REWRAP,
    SQ_APP_INSERT,
    SQ_APP_GET,
    SQ_APP_LIST,
    SQ_APP_MAC,
    SQ_APP_SEAL,
    SQ_KEY_INSERT,
    SQ_KEY_GET,
    SQ_KEY_LIST,
    SQ_KEY_REVOKE,
    SQ_KEY_UPDATE,
    SQ_KEY_TOUCH,
    SQ_KEY_IDS_SINCE,
    SQ_AU_INSERT,
    SQ_AU_USAGE,
    SQ_AU_HEAD,
    SQ_AU_CP_ADD,
    SQ_AU_CP_LAST,
    SQ_AU_LIST,
    SQ_AU_LIST_DESC,
    SQ_AU_LINES,
    SQ_AU_CHAINS,
    SQ_AU_PRUNE_EV,
    SQ_AU_PRUNE_CP,
    SQ_AU_BEFORE,
    SQ_USAGE_LIST,
    /* certificates (issue 9): certs.c */
    SQ_CERT_SRC_INSERT,
    SQ_CERT_SRC_LIST,
    SQ_CERT_SRC_PEM,
    SQ_CERT_SRC_DELETE,
    SQ_CERT_SEEN_DELETE,
    SQ_CERT_SEEN_INSERT,
    SQ_CERT_SEEN_LIST,
    SQ_CERT_SEEN_LIST_ALL,
    SQ__COUNT
};

struct sq {
    struct store base; /* first: a struct store * is a struct sq * */
    struct sqdb *d;
};

/* Lock the connection for one whole operation (see sqdb_lock). */
static inline struct sqdb *
sq_lock(struct store *s)
{
    struct sqdb *d = ((struct sq *)s)->d;

    sqdb_lock(d);
    return d;
}

/* sqlite.c: rows shared by the statements of several files, and list reading */
void sq_read_keyring(struct sqdb_row *r, void *dst);
void sq_read_version(struct sqdb_row *r, void *dst);
void sq_read_app(struct sqdb_row *r, void *dst);
void sq_read_apikey(struct sqdb_row *r, void *dst);
enum status sq_list(struct store *s, enum sq_id id, sqdb_reader read, size_t size, void **out,
                    size_t *n);

/* keyrings.c: service keys' neighbours, keyrings and key versions (the *0 forms run inside the caller's transaction) */
enum status sq_keyring_create0(struct store *s, struct store_keyring *kr, struct store_version *v1);
enum status sq_keyring_get(struct store *s, const char *name, struct store_keyring *out);
enum status sq_keyring_list(struct store *s, struct store_keyring **out, size_t *n);
enum status sq_keyring_update0(struct store *s, const struct store_keyring *kr);
enum status sq_keyring_rotate0(struct store *s, const struct store_keyring *kr,
                               const struct store_version *v, uint32_t prev_latest);
enum status sq_keyring_delete0(struct store *s, int64_t keyring_id);
enum status sq_version_list(struct store *s, int64_t keyring_id, struct store_version **out,
                            size_t *n);
enum status sq_version_get(struct store *s, int64_t keyring_id, uint32_t version,
                           struct store_version *out);
enum status sq_version_reserve(struct store *s, int64_t keyring_id, uint32_t version,
                               int64_t reserved, const uint8_t mac[static STORE_MAC_BYTES]);
enum status sq_version_reserve_from(struct store *s, int64_t keyring_id, uint32_t version,
                                    int64_t expected, int64_t reserved,
                                    const uint8_t mac[static STORE_MAC_BYTES]);
enum status sq_version_rewrap(struct store *s, const struct store_version *v);
enum status sq_version_list_all(struct store *s, struct store_version **out, size_t *n);

/* apps.c: apps and API keys (the *0 forms run inside the caller's transaction) */
enum status sq_app_create0(struct store *s, struct store_app *app, store_app_seal_fn seal,
                           void *arg);
enum status sq_app_seal(struct store *s, const struct store_app *app);
enum status sq_app_get(struct store *s, const char *name, struct store_app *out);
enum status sq_app_list(struct store *s, struct store_app **out, size_t *n);
enum status sq_apikey_create0(struct store *s, const struct store_apikey *k);
enum status sq_apikey_get(struct store *s, const char *id, struct store_apikey *out);
enum status sq_apikey_list(struct store *s, int64_t app_id, struct store_apikey **out, size_t *n);
enum status sq_apikey_revoke0(struct store *s, const char *id, int64_t revoked_at,
                              const uint8_t mac[static STORE_MAC_BYTES]);
enum status sq_apikey_update0(struct store *s, const struct store_apikey *k);
enum status sq_apikey_ids_since(struct store *s, int64_t since, char (**out)[STORE_KEY_ID_MAX],
                                size_t *n);
enum status sq_apikey_touch(struct store *s, const char *id, int64_t last_used_at);

/* audit.c: the audit trail and usage roll-ups */
enum status sq_audit_insert(struct sqdb *d, const struct store_audit_row *a);
enum status sq_audit_append(struct store *s, const struct store_audit_row *rows, size_t n,
                            const struct store_usage *usage, size_t nu);
enum status sq_audit_head(struct store *s, const char *chain_id, uint64_t *seq,
                          uint8_t hash[static 32]);
enum status sq_audit_seq_before(struct store *s, const char *chain_id, int64_t time_ms,
                                uint64_t *seq, uint8_t hash[static 32]);
enum status sq_audit_checkpoint_add(struct store *s, const char *chain_id, uint64_t seq,
                                    const char *kind, int64_t time_ms, const char *line);
enum status sq_audit_checkpoint_last(struct store *s, const char *chain_id, const char *kind,
                                     char **line, uint64_t *seq);
enum status sq_audit_list(struct store *s, const struct store_audit_filter *f,
                          struct store_audit_row **out, size_t *n);
enum status sq_audit_lines(struct store *s, const char *chain_id, uint64_t after_seq,
                           uint64_t upto_seq, store_line_cb cb, void *arg);
enum status sq_audit_chains(struct store *s, char (**out)[STORE_CHAIN_ID_MAX], size_t *n);
enum status sq_audit_prune(struct store *s, const char *chain_id, uint64_t upto);
enum status sq_usage_list(struct store *s, const char *app, const char *from_day,
                          const char *to_day, struct store_usage **out, size_t *n);

/* certs.c: certificate sources and the certificates seen (the *0 forms run inside the caller's
 * transaction) */
enum status sq_cert_source_create0(struct store *s, const struct store_cert_source *c);
enum status sq_cert_source_list(struct store *s, struct store_cert_source **out, size_t *n);
enum status sq_cert_source_delete0(struct store *s, const char *id);
enum status sq_cert_seen_add0(struct store *s, struct store_cert_seen *c);
enum status sq_cert_seen_list(struct store *s, const char *source_id, struct store_cert_seen **out,
                              size_t *n);

#endif
