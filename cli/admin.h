/* SPDX-License-Identifier: Apache-2.0 */
/* cli/admin.h -- what the admin commands (cmd_app.c, cmd_key.c, cmd_keyring.c) share: their
 * options, one run of a subcommand, the API call, and text and JSON output (admin.c). Private
 * to cli/. */
#ifndef DG_CLI_ADMIN_H
#define DG_CLI_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cli/client.h"
#include "common/json/config.h"

#define EXIT_FAIL 1
#define EXIT_USAGE 2
#define SHOW_MAX 48    /* characters of an argument quoted back in an error */
#define CELL_BYTES 256 /* one printed value; longer ones end in "..." */
#define LABEL_WIDTH 16
#define USAGE_DEFAULT_DAYS 30

struct admin_opts {
    struct client_opts conn;
    bool json;
    char *output;                       /* json | table (--json is --output json) */
    char *description;                  /* app create */
    char *from, *to;                    /* app usage */
    char *scope, *keyring, *expires_in; /* key create */
    uint64_t rate, burst;
    char *grace_period;                /* key rotate */
    char *algorithm, *rotation_period; /* keyring create */
    bool deterministic, deletion_allowed;
    /* cert add (issue 9) */
    char *file, *dir, *pem_file, *endpoint, *server_name, *renew_before, *warning, *critical;
    bool recursive, self_signed_ok;
    /* keyring update (issue 14): strings, so "not given" differs from any value */
    char *min_decryption_version, *min_encryption_version, *deletion_allowed_s;
    /* audit events / export (issue 14) */
    char *app, *op, *outcome, *order, *out_file, *chain_id, *after_seq;
    uint64_t limit;
    bool all;
};

/* O: a global setting (also DIFYGUARD_<NAME>). F: flag only -- what a command grants or
 * changes is never taken from the environment, so a stray DIFYGUARD_SCOPE or
 * DIFYGUARD_DELETION_ALLOWED cannot widen a key or a keyring. */
/* clang-format off */
#define O(name, type, field, def, help) \
    {name, type, offsetof(struct admin_opts, field), def, help, false, false}
#define F(name, type, field, def, help) \
    {name, type, offsetof(struct admin_opts, field), def, help, false, true}
#define BASE_OPTS                                                                              \
    CLIENT_OPTS(struct admin_opts, conn),                                                      \
    O("json", OPT_BOOL, json, NULL, "print the API's JSON answer instead of text"),            \
    O("output", OPT_STRING, output, NULL, "table (text, the default) or json (as --json)")
/* clang-format on */

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Repeated flag values (config_parse keeps only the last one of a flag). */
struct strlist {
    char **v;
    size_t n;
};

/* One subcommand run. */
struct run {
    char cmd[32]; /* "key create", for messages */
    struct admin_opts o;
    const char **pos; /* positional arguments, NULL-terminated */
    struct strlist scopes, keyrings;
    struct client *c; /* made at the first call */
};

struct sub {
    const char *name, *synopsis, *summary;
    const struct opt *opts;
    size_t n_opts, n_pos; /* n_pos: exactly this many positional arguments */
    bool repeats;         /* --scope and --keyring may repeat */
    int (*fn)(struct run *r);
};

#define SUB(name, syn, sum, opts, npos, rep, fn)                                                   \
    {                                                                                              \
        name, syn, sum, opts, N(opts), npos, rep, fn                                               \
    }

/* One printed value of an object: a member shown by text(), or computed by fn. */
struct col {
    const char *head; /* table header, or "label:" for lines */
    const char *key;
    const char *if_null;
    const char *(*fn)(char out[static CELL_BYTES], const json_t *obj);
};

const char *admin_shown(char out[static SHOW_MAX + 4], const char *s);
int admin_say(const struct run *r, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
bool admin_duration_arg(const struct run *r, int64_t *out, const char *flag, const char *val);
bool admin_day_arg(const struct run *r, const char *flag, const char *val);
json_t *admin_str_array(const struct strlist *l);
int admin_api(struct run *r, json_t **resp, const char *method, char *path, json_t *body);
const char *admin_span(char out[static 32], int64_t s, const char *zero);
void admin_print_lines(const json_t *obj, const struct col *cols, size_t n);
void admin_print_rows(const json_t *arr, const struct col *cols, size_t n);
void admin_print_json(const json_t *j);
int admin_print_secret(const struct run *r, json_t *obj);
int admin_list(struct run *r, const char *title, char *path, const char *member,
               const struct col *cols, size_t n);
int admin_done(const struct run *r, int rc, json_t *obj, const struct col *cols, size_t n);
int admin_dispatch(const char *group, const struct sub *subs, size_t n, int argc, char **argv);

/* The client config file (~/.config/difyguard/client.json, or DIFYGUARD_CLIENT_CONFIG): "addr",
 * "cacert" and "token", each used when neither its flag nor its DIFYGUARD_* variable is given.
 * Refused (usage error, err set) unless it is a regular file that gives its group and others no
 * access (0600 or 0400). ST_OK when there is none. Sets the variables it supplies. */
NODISCARD enum status admin_client_config(char *err, size_t err_len);
/* The client config file's text (fuzzed): a JSON object of "addr", "cacert" and "token" strings
 * and nothing else; set(arg, "DIFYGUARD_ADDR", value) for each, only when all are valid.
 * ST_INVALID with err naming the file (path) and the bad member (a printable prefix), never
 * a value. */
NODISCARD enum status admin_client_config_parse(const char *text, size_t len, const char *path,
                                                void (*set)(void *arg, const char *var,
                                                            const char *value),
                                                void *arg, char *err, size_t err_len);
/* A raw call (NDJSON, text) streamed to f: 0, or the exit code with the failure printed. */
int admin_api_file(struct run *r, const char *method, char *path, FILE *f);

#endif
