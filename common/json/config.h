/* SPDX-License-Identifier: Apache-2.0 */
/* common/json/config.h -- one option engine for every command: each command declares a table of
 * options; values come from flags, then DIFYGUARD_* variables, then a JSON config file, then
 * defaults (flags win). Knows nothing about what the options mean. */
#ifndef DG_COMMON_JSON_CONFIG_H
#define DG_COMMON_JSON_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/status.h"

enum opt_type {
    OPT_STRING, /* char *, malloc'd (config_free frees it) */
    OPT_BOOL, /* bool; a bare flag sets true; flags/env take true/false/1/0, the file JSON bools */
    OPT_UINT, /* uint64_t, decimal */
    OPT_SIZE, /* uint64_t bytes: 4096, "64k", "4MiB", "1m" */
    OPT_DURATION,    /* int64_t seconds: integer, or "90d", "12h", "30m", "45s", "1h30m" */
    OPT_DURATION_MS, /* int64_t milliseconds: as OPT_DURATION (integer: seconds), plus "500ms" */
    OPT_JSON, /* char *, malloc'd JSON text: flags, variables and defaults give the text (it must
               * parse), the config file any JSON value (kept compact); the command reads it */
};

struct opt {
    const char *name; /* long flag without dashes, also the JSON key: "max-body-bytes" */
    enum opt_type type;
    size_t offset;    /* offsetof() into the command's settings struct */
    const char *def;  /* default as text, NULL = unset (string NULL / zero) */
    const char *help; /* one line */
    bool secret;      /* env var unset after reading; never echoed in errors */
    bool flag_only;   /* only from argv: never from DIFYGUARD_* nor a config file. For
                              * options that state what a command grants or changes, so a
                              * stray variable cannot widen it. Not with `secret`. */
};
/* The env variable is DIFYGUARD_ + upper(name) with '-' -> '_' (none for flag_only options). */

/* Fill `settings` (zeroed by the caller) from defaults, the JSON config file named by
 * --config / DIFYGUARD_CONFIG (only when the table has a "config" option), the environment and
 * argv; flag_only options from defaults and argv alone, a config file naming one is an error
 * (argv[0] is the command name; "--name value", "--name=value" and bare "--flag" for
 * booleans). Positional arguments go to *positional (NULL-terminated, pointers into argv; may be
 * NULL when the command takes none: then any positional is an error).
 * Returns ST_OK, ST_INVALID (usage error: err holds one line naming the option and the source)
 * or ST_NOT_FOUND when --help/-h was given (print config_help). Unknown flags, unknown JSON
 * keys, bad numbers and wrong JSON types are ST_INVALID. */
NODISCARD enum status config_parse(void *settings, const struct opt *table, size_t n_opts, int argc,
                                   char **argv, const char ***positional, char *err,
                                   size_t err_len);

/* Parse a JSON config file's text (fuzzed): same rules as above, file layer only. */
NODISCARD enum status config_parse_json(void *settings, const struct opt *table, size_t n_opts,
                                        const char *text, size_t len, char *err, size_t err_len);

/* Free OPT_STRING members. */
void config_free(void *settings, const struct opt *table, size_t n_opts);

/* Print usage: "usage: difyguard <cmd> <synopsis>", the summary, then each option with its
 * env variable (or "flag only") and default. */
void config_help(FILE *out, const char *cmd, const char *synopsis, const char *summary,
                 const struct opt *table, size_t n_opts);

/* Duration and size parsers shared with the HTTP layer ("90d" -> 7776000). ST_INVALID on junk,
 * negatives or overflow; a duration is also refused above DURATION_MAX_SECONDS (3650 days,
 * common/checked.h), so adding one to a sane time never overflows. *out is 0 on failure. */
NODISCARD enum status config_duration(int64_t *out, const char *s, size_t len);
/* The same text as milliseconds, sub-second terms included ("500ms", "1s500ms"). */
NODISCARD enum status config_duration_ms(int64_t *out, const char *s, size_t len);
/* The same bound for a duration given as integer seconds (JSON numbers). */
NODISCARD enum status config_duration_seconds(int64_t *out, int64_t secs);
NODISCARD enum status config_size(uint64_t *out, const char *s, size_t len);

#endif
