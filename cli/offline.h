/* SPDX-License-Identifier: Apache-2.0 */
/* cli/offline.h -- what the offline verifiers (`audit verify`, `report verify`) share: reading a
 * local file, taking a repeatable flag out of argv, and public keys given as base64 text or
 * @FILE (keys separated by white space, or the JSON that GET /v1/audit/public-key and
 * GET /v1/compliance/public-key return), and times given by the user. Local files only; no
 * network. */
#ifndef DG_CLI_OFFLINE_H
#define DG_CLI_OFFLINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/sbuf.h"
#include "common/status.h"

#define PUBKEY_BYTES 32            /* Ed25519 */
#define PUBKEYS_MAX 64             /* keys one command accepts */
#define PUBKEY_FILE_MAX (64 << 10) /* bytes of a @FILE */

/* Read a whole file ("-" is stdin) into b; max 0 means no limit. ST_IO with err naming the
 * file and the reason (or the limit). */
NODISCARD enum status cli_read_file(struct sbuf *b, const char *path, size_t max, char *err,
                                    size_t err_len);

/* Move every "--flag VALUE" and "--flag=VALUE" of argv[1..) before a "--" into vals (which holds
 * argc entries), compacting argv (argv[*argc] = NULL) so the option engine, which keeps one value
 * per option, sees the rest. ST_INVALID (err) for a flag without a value. */
NODISCARD enum status cli_take_flag(const char *flag, const char **vals, size_t *n, int *argc,
                                    char **argv, char *err, size_t err_len);

/* Add the key(s) of one --public-key value to keys[*n..PUBKEYS_MAX). A @FILE holds base64 keys
 * separated by white space, or a JSON object {"keys": [{"public_key": "<base64>"}, ...]} (every
 * key listed, active or not: older checkpoints and reports verify under retired keys).
 * ST_INVALID (err says which value and why, never more than a short quote of it), ST_IO when the
 * file cannot be read. */
NODISCARD enum status pubkeys_add(uint8_t (*keys)[PUBKEY_BYTES], size_t *n, const char *arg,
                                  char *err, size_t err_len);

/* A time as users write it: RFC 3339 UTC ("2026-11-28T20:21:00Z", an optional fraction of up
 * to 3 digits) or unix seconds, from 1970 to 9999-12-31T23:59:59Z, into unix milliseconds.
 * False for anything else. */
bool cli_time_parse(const char *s, int64_t *ms);

#endif
