/* SPDX-License-Identifier: Apache-2.0 */
/* store/private/ops.h -- private: the table of functions a backend fills in. store.c checks
 * arguments and sets out-params, then calls through here; backends see only valid input. */
#ifndef DG_STORE_PRIVATE_OPS_H
#define DG_STORE_PRIVATE_OPS_H

#include "store/store.h"

/* Every entry is required (but pool_stats: store.c reports zeroes without it). Out-params arrive zeroed (NULL, 0, empty struct); a backend may leave
 * partial data in them on failure, store.c clears it again. Each call is one transaction and must
 * be safe to call from many threads at once. */
struct store_ops {
    const char *name; /* "sqlite", "postgres" */
    void (*close)(struct store *s);
    int (*schema_version)(struct store *s);
    void (*pool_stats)(const struct store *s, struct store_pool_stats *out); /* no lock */
    enum status (*ping)(struct store *s); /* optional: NULL is always reachable */
    void (*watch)(struct store *s, store_change_fn cb, void *arg); /* optional */

    enum status (*meta_get)(struct store *s, const char *key, char *val, size_t val_cap);
    enum status (*meta_set)(struct store *s, const char *key, const char *val);

    enum status (*svckey_get)(struct store *s, const char *purpose, struct store_svckey *out);
    enum status (*svckey_put)(struct store *s, const struct store_svckey *k);
    enum status (*svckey_add)(struct store *s, const struct store_svckey *k);
    enum status (*svckey_list)(struct store *s, struct store_svckey **out, size_t *n);
    enum status (*svckey_put_all)(struct store *s, const struct store_svckey *keys, size_t n,
                                  const char *root_key_id);

    enum status (*keyring_create)(struct store *s, struct store_keyring *kr,
                                  struct store_version *v1, const struct store_audit_row *ev);
    enum status (*keyring_get)(struct store *s, const char *name, struct store_keyring *out);
    enum status (*keyring_list)(struct store *s, struct store_keyring **out, size_t *n);
    enum status (*keyring_update)(struct store *s, const struct store_keyring *kr,
                                  const struct store_audit_row *ev);
    enum status (*keyring_rotate)(struct store *s, const struct store_keyring *kr,
                                  const struct store_version *v, uint32_t prev_latest,
                                  const struct store_audit_row *ev);
    enum status (*keyring_delete)(struct store *s, int64_t keyring_id,
                                  const struct store_audit_row *ev);
    enum status (*shred_flush)(struct store *s);

    enum status (*version_list)(struct store *s, int64_t keyring_id, struct store_version **out,
                                size_t *n);
    enum status (*version_get)(struct store *s, int64_t keyring_id, uint32_t version,
                               struct store_version *out);
    enum status (*version_reserve)(struct store *s, int64_t keyring_id, uint32_t version,
                                   int64_t reserved, const uint8_t mac[static STORE_MAC_BYTES]);
    enum status (*version_reserve_from)(struct store *s, int64_t keyring_id, uint32_t version,
                                        int64_t expected, int64_t reserved,
                                        const uint8_t mac[static STORE_MAC_BYTES]);
    enum status (*version_rewrap)(struct store *s, const struct store_version *v);
    enum status (*version_list_all)(struct store *s, struct store_version **out, size_t *n);

    enum status (*app_create)(struct store *s, struct store_app *app, store_app_seal_fn seal,
                              void *arg, const struct store_audit_row *ev);
    enum status (*app_seal)(struct store *s, const struct store_app *app);
    enum status (*app_get)(struct store *s, const char *name, struct store_app *out);
    enum status (*app_list)(struct store *s, struct store_app **out, size_t *n);

    enum status (*apikey_create)(struct store *s, const struct store_apikey *k,
                                 const struct store_audit_row *ev);
    enum status (*apikey_get)(struct store *s, const char *id, struct store_apikey *out);
    enum status (*apikey_list)(struct store *s, int64_t app_id, struct store_apikey **out,
                               size_t *n);
    enum status (*apikey_revoke)(struct store *s, const char *id, int64_t revoked_at,
                                 const uint8_t mac[static STORE_MAC_BYTES],
                                 const struct store_audit_row *ev);
    enum status (*apikey_update)(struct store *s, const struct store_apikey *k,
                                 const struct store_audit_row *ev);
    enum status (*apikey_rotate)(struct store *s, const struct store_apikey *fresh,
                                 const struct store_apikey *old, const struct store_audit_row *ev);
    enum status (*apikey_touch)(struct store *s, const char *id, int64_t last_used_at);
    enum status (*apikey_ids_since)(struct store *s, int64_t since, char (**out)[STORE_KEY_ID_MAX],
                                    size_t *n);

    enum status (*audit_append)(struct store *s, const struct store_audit_row *rows, size_t n,
                                const struct store_usage *usage, size_t nu);
    enum status (*audit_head)(struct store *s, const char *chain_id, uint64_t *seq,
                              uint8_t hash[static 32]);
    enum status (*audit_checkpoint_add)(struct store *s, const char *chain_id, uint64_t seq,
                                        const char *kind, int64_t time_ms, const char *line);
    enum status (*audit_checkpoint_last)(struct store *s, const char *chain_id, const char *kind,
                                         char **line, uint64_t *seq);
    enum status (*audit_list)(struct store *s, const struct store_audit_filter *f,
                              struct store_audit_row **out, size_t *n);
    enum status (*audit_lines)(struct store *s, const char *chain_id, uint64_t after_seq,
                               uint64_t upto_seq, store_line_cb cb, void *arg);
    enum status (*audit_chains)(struct store *s, char (**out)[STORE_CHAIN_ID_MAX], size_t *n);
    enum status (*audit_prune)(struct store *s, const char *chain_id, uint64_t upto);
    enum status (*audit_seq_before)(struct store *s, const char *chain_id, int64_t time_ms,
                                    uint64_t *seq, uint8_t hash[static 32]);
    enum status (*usage_list)(struct store *s, const char *app, const char *from_day,
                              const char *to_day, struct store_usage **out, size_t *n);

    /* certificates (issue 9) */
    enum status (*cert_source_create)(struct store *s, const struct store_cert_source *c,
                                      const struct store_audit_row *ev);
    enum status (*cert_source_list)(struct store *s, struct store_cert_source **out, size_t *n);
    enum status (*cert_source_delete)(struct store *s, const char *id,
                                      const struct store_audit_row *ev);
    enum status (*cert_seen_add)(struct store *s, struct store_cert_seen *c,
                                 const struct store_audit_row *ev);
    enum status (*cert_seen_list)(struct store *s, const char *source_id,
                                  struct store_cert_seen **out, size_t *n);
};

/* The head of every backend's handle: backends embed it as their first member. */
struct store {
    const struct store_ops *ops;
};

/* Open a SQLite database file (created 0600 if missing) and migrate it. path is a file name or
 * ":memory:". On failure *out is NULL and err holds one line. */
NODISCARD enum status store_sqlite_open(struct store **out, const char *path, char *err,
                                        size_t err_len);
/* Connect to PostgreSQL (conninfo: a URL or key=value string), migrate under an advisory lock
 * and keep a pool (store/postgres/). */
NODISCARD enum status store_postgres_open(struct store **out, const char *conninfo, char *err,
                                          size_t err_len);
/* conninfo without its password, for logs (store_url_display). */
void store_postgres_display(const char *conninfo, char *out, size_t cap);

/* The client library each backend links, for store_library_versions: "3.40.1", and libpq's
 * PQlibVersion() (150004 for 15.4). */
const char *store_sqlite_library_version(void);
int store_postgres_library_version(void);

#endif
