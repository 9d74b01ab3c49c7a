/* SPDX-License-Identifier: Apache-2.0 */
/* store/private/migrations.h -- private: the numbered SQL of migrations/<backend>/, embedded
 * at build time by embed_sql.cmake. Versions run 1..n without gaps (checked when generating). */
#ifndef DG_STORE_PRIVATE_MIGRATIONS_H
#define DG_STORE_PRIVATE_MIGRATIONS_H

#include <stddef.h>

struct store_migration {
    int version;      /* NNNN of NNNN_what.sql */
    const char *name; /* "0001_init" */
    const char *sql;  /* whole file; no BEGIN/COMMIT inside */
};

extern const struct store_migration store_migrations_sqlite[];
extern const size_t store_migrations_sqlite_n;
extern const struct store_migration store_migrations_postgres[];
extern const size_t store_migrations_postgres_n;

#endif
