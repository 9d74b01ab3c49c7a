/* SPDX-License-Identifier: Apache-2.0 */
/* cli/dotenv.h -- the dotenv parser behind `difyguard env` (pure: libc and common/ only; fuzzed
 * by fuzz_dotenv). A parsed file keeps its source: rendering it back with no value replaced
 * gives the input byte for byte, so comments, order, blank lines, `export` prefixes, quoting,
 * CRLF line ends and a UTF-8 byte order mark all survive a rewrite of some values.
 *
 * The syntax (README "Encrypted dotenv"):
 *   - a line is blank, a comment (`#` after optional blanks) or `[export ]NAME=VALUE`;
 *     NAME is [A-Za-z_][A-Za-z0-9_]*; blanks (space, tab) may surround `=`
 *   - VALUE unquoted: up to the end of the line, ending blanks dropped; a `#` after a blank
 *     starts a comment; everything else is literal (backslashes, quotes inside, `=`)
 *   - VALUE in single quotes: literal, may span lines
 *   - VALUE in double quotes: may span lines; escapes \n \r \t \" \\ \$ and \' are decoded,
 *     any other backslash is kept as written
 *   - after a closing quote only blanks and a comment may follow
 *   - LF or CRLF line ends; a CRLF inside a quoted value reads as LF; no variable expansion
 *   - a NUL byte, a stray CR or any other line is a syntax error (reported by line number,
 *     never by quoting the line, which may hold a secret) */
#ifndef DG_CLI_DOTENV_H
#define DG_CLI_DOTENV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/sbuf.h"
#include "common/status.h"

#define DOTENV_MAX_BYTES ((size_t)4 << 20) /* the largest file read */
#define DOTENV_MAX_VARS 4096
#define DOTENV_NAME_MAX 255

enum dotenv_quote { DOTENV_BARE, DOTENV_SINGLE, DOTENV_DOUBLE };

struct dotenv_var {
    size_t line;               /* 1-based line of the name */
    size_t val_start, val_end; /* the value as written, quotes included: offsets into src */
    char *name;
    char *value; /* decoded, NUL-terminated (a value holds no NUL); wiped when freed */
    size_t value_len;
    enum dotenv_quote quote;
    bool exported;
    size_t dup_line; /* line of the first definition of the same name; 0 when none */
};

struct dotenv {
    const char *src; /* borrowed */
    size_t len;
    struct dotenv_var *v;
    size_t n;
    size_t n_dups; /* names defined more than once (each repeat counts) */
};

/* Parse src (len bytes, not NUL-terminated). ST_OK, or ST_INVALID with *err_line (1-based) and
 * *why (a static text) set and d empty; ST_TOO_LARGE beyond DOTENV_MAX_BYTES or
 * DOTENV_MAX_VARS. d borrows src, which must outlive it. */
NODISCARD enum status dotenv_parse(struct dotenv *d, const char *src, size_t len, size_t *err_line,
                                   const char **why);

/* Wipes the values. NULL-safe; leaves d empty. */
void dotenv_free(struct dotenv *d);

/* Append the value v as it is written in a file, in the style `pref` when that style can hold
 * it, otherwise in double quotes. Returns the style used. Parsing what it appends gives v back
 * (v holds no NUL). */
enum dotenv_quote dotenv_quote(struct sbuf *out, const char *v, size_t n, enum dotenv_quote pref);

/* The file again, with the value of variable i written as repl[i] (already quoted) where
 * repl[i].p is not NULL, and as in the source elsewhere. repl may be NULL. */
void dotenv_render(struct sbuf *out, const struct dotenv *d, const struct sbuf *repl);

/* Whether v has the shape of a difyguard ciphertext text, `dg:v<N>:<base64url>` (N without
 * leading zeros, at most 4294967295); *version gets N. The service checks the rest. */
bool dotenv_ciphertext(const char *v, size_t n, uint32_t *version);

#endif
