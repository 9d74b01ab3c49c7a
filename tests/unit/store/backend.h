/* SPDX-License-Identifier: Apache-2.0 */
/* tests/unit/store/backend.h -- what the store contract test needs from a database that store.h
 * does not offer: a fresh, empty database per test, and SQL run behind the store's back (to count
 * rows, tamper, or make a write fail). One implementation per backend, chosen by the URL the run
 * was given in DG_STORE_URL (unset: SQLite files in a temporary directory). */
#ifndef DG_TESTS_UNIT_STORE_BACKEND_H
#define DG_TESTS_UNIT_STORE_BACKEND_H

#include <stddef.h>
#include <stdint.h>

/* Read DG_STORE_URL and prepare (a temporary directory for SQLite). 0 on success; on failure
 * prints why (an unknown scheme, a backend whose test support is not built) and returns -1. */
int tb_init(void);
void tb_fini(void);
/* "sqlite" or "postgres": the backend the run exercises. */
const char *tb_backend(void);
/* A scratch directory for files of the run (removed by tb_fini when empty). */
const char *tb_dir(void);
/* Write into url (n bytes) the URL of a new, empty database; tb_drop removes it. */
void tb_fresh(char *url, size_t n);
void tb_drop(const char *url);
/* Run one statement, or read one integer (the first column of the first row; -1 when none). */
void tb_exec(const char *url, const char *sql);
int64_t tb_int(const char *url, const char *sql);
/* From now on, UPDATEs of table rows matching where (SQL over the new row, NEW.col) fail;
 * tb_allow_updates lifts it. */
void tb_refuse_updates(const char *url, const char *table, const char *where);
void tb_allow_updates(const char *url, const char *table);

#endif
