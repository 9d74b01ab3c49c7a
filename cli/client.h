/* SPDX-License-Identifier: Apache-2.0 */
/* cli/client.h -- the admin commands' HTTP client: one JSON call at a time to the difyguard API
 * over libcurl. Owns the bearer token; never prints it, never puts it in an error message and
 * wipes every copy it or libcurl made. Not thread-safe (one client per command run). */
#ifndef DG_CLI_CLIENT_H
#define DG_CLI_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "common/json/config.h"
#include "common/status.h"

#define CLIENT_DEFAULT_ADDR "http://127.0.0.1:8080"

/* Connection settings; every admin command embeds one in its settings struct. */
struct client_opts {
    char *addr;      /* base URL: http[s]://HOST[:PORT][/prefix], the scheme required */
    char *token;     /* the API key (or JWT); secret: DIFYGUARD_TOKEN only, never a flag */
    char *cacert;    /* PEM CA file for https; NULL = the system store */
    int64_t timeout; /* milliseconds one call may take in all ("30s", "500ms") */
};

/* The option table entries for the struct client_opts member `m` of the settings type `T`:
 * global settings, so each also reads its DIFYGUARD_* variable (the token only from there). */
/* clang-format off */
/* m is a member designator (offsetof), which parentheses would break. */
/* NOLINTBEGIN(bugprone-macro-parentheses) */
#define CLIENT_OPTS(T, m)                                                                      \
    {"addr", OPT_STRING, offsetof(T, m.addr), CLIENT_DEFAULT_ADDR,                            \
     "difyguard API base URL", false, false},                                                  \
    {"token", OPT_STRING, offsetof(T, m.token), NULL,                                          \
     "API key to call the API with (apps:admin, keyrings:admin)", true, false},                \
    {"cacert", OPT_STRING, offsetof(T, m.cacert), NULL,                                        \
     "PEM CA file that signed the server's certificate (https)", false, false},                \
    {"timeout", OPT_DURATION_MS, offsetof(T, m.timeout), "30s",                                \
     "give up on a call after this long", false, false}
/* NOLINTEND(bugprone-macro-parentheses) */
/* clang-format on */

struct client;

/* Check the settings and prepare a connection. Returns ST_OK; ST_INVALID when the token is
 * missing or unusable, the address is not an http(s) URL or carries credentials (a usage error:
 * err holds one line, never the token); ST_INTERNAL when libcurl cannot start.
 * Expects jx_init() done, so jansson's copies of responses are wiped when freed. */
NODISCARD enum status client_new(struct client **out, const struct client_opts *o, char *err,
                                 size_t err_len);

/* NULL-safe. Wipes the token and anything libcurl allocated. */
void client_free(struct client *c);

/* One call: METHOD (GET, POST, DELETE, ...) path ("/v1/apps", from client_path()) with an
 * optional JSON body. On 2xx: ST_OK and *resp is the parsed body (NULL when empty), owned by
 * the caller; *code is the HTTP status (may be NULL). Otherwise prints one line on stderr,
 * "difyguard: METHOD path: STATUS error.code: error.message" (or the transport failure), and
 * returns ST_IO (no answer), ST_INTERNAL (an answer that is not JSON) or the status matching
 * the HTTP code (ST_NOT_FOUND, ST_CONFLICT, ...). Response bytes are wiped after parsing. */
NODISCARD enum status client_call(struct client *c, json_t **resp, long *code, const char *method,
                                  const char *path, const json_t *body);

/* While buf is not NULL (cap > 0), client_call keeps its error line in buf (cap bytes, with the
 * line end) instead of printing it: for callers that retry. client_quiet(c, NULL, 0) prints
 * again. */
void client_quiet(struct client *c, char *buf, size_t cap);

/* Whether the last client_call failed in a way a retry may cure: the service unreachable, not
 * answering in time or dropping the connection, or answering 429, 502, 503 or 504. TLS failures,
 * other HTTP errors and bad answers are not. */
bool client_retryable(const struct client *c);

/* One call whose 2xx answer is streamed to f as it comes (an NDJSON export); other answers are
 * reported as client_call does. */
NODISCARD enum status client_call_file(struct client *c, const char *method, const char *path,
                                       FILE *f);

/* Build a path from `fmt`, whose only conversions are "%s": each argument is percent-escaped
 * (everything but A-Z a-z 0-9 - . _ ~), so names can go in path segments and query values.
 * Returns a malloc'd string (free()). */
char *client_path(const char *fmt, ...);

/* Copy at most max characters of s into out (capacity max + 4), replacing anything but
 * printable ASCII with '?', and marking a cut with "...": for quoting text in error lines. */
const char *client_printable(char *out, size_t max, const char *s);

#endif
