/* SPDX-License-Identifier: Apache-2.0 */
/* cli/dotenv.c -- the dotenv parser and writer (see dotenv.h for the syntax). */
#include "cli/dotenv.h"

#include <stdlib.h>
#include <string.h>

#include "common/xmem.h"

struct cursor {
    const char *s;
    char *tmp; /* scratch for a decoded value: never longer than the file */
    size_t len, p, line;
    const char *why;
};

static bool
blank(char c)
{
    return c == ' ' || c == '\t';
}

static bool
name_start(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static bool
name_char(char c)
{
    return name_start(c) || (c >= '0' && c <= '9');
}

static void
skip_blanks(struct cursor *c)
{
    while (c->p < c->len && blank(c->s[c->p]))
        c->p++;
}

/* At the end of a line (or the file): consume the line end. False at anything else. */
static bool
end_of_line(struct cursor *c)
{
    if (c->p >= c->len)
        return true;
    if (c->s[c->p] == '\n') {
        c->p++;
        c->line++;
        return true;
    }
    if (c->s[c->p] == '\r' && c->p + 1 < c->len && c->s[c->p + 1] == '\n') {
        c->p += 2;
        c->line++;
        return true;
    }
    return false;
}

/* A comment runs to the end of the line; it may hold anything but NUL and a stray CR. */
static bool
skip_comment(struct cursor *c)
{
    while (c->p < c->len && c->s[c->p] != '\n' && c->s[c->p] != '\0' &&
           !(c->s[c->p] == '\r' && (c->p + 1 >= c->len || c->s[c->p + 1] != '\n')))
        c->p++;
    if (!end_of_line(c)) {
        c->why = c->p < c->len && c->s[c->p] == '\0' ? "NUL byte"
                                                     : "carriage return without a "
                                                       "line feed";
        return false;
    }
    return true;
}

/* A quoted value from the opening quote to the closing one, decoded into out. */
static bool
quoted(struct cursor *c, char q, char *out, size_t *n)
{
    size_t start_line = c->line;

    c->p++;
    while (c->p < c->len) {
        char ch = c->s[c->p];
        if (ch == '\0') {
            c->why = "NUL byte";
            return false;
        }
        if (ch == q) {
            c->p++;
            return true;
        }
        if (ch == '\r' && c->p + 1 < c->len && c->s[c->p + 1] == '\n') {
            c->p++; /* CRLF inside a value reads as LF */
            continue;
        }
        if (ch == '\n')
            c->line++;
        if (q == '"' && ch == '\\' && c->p + 1 < c->len) {
            char e = c->s[c->p + 1];
            const char *from = "nrt\"\\$'", *to = "\n\r\t\"\\$'";
            const char *hit = e != '\0' ? strchr(from, e) : NULL;
            if (hit != NULL) {
                out[(*n)++] = to[hit - from];
                c->p += 2;
                continue;
            }
        }
        out[(*n)++] = ch;
        c->p++;
    }
    c->line = start_line;
    c->why = q == '"' ? "unterminated double-quoted value" : "unterminated single-quoted value";
    return false;
}

/* An unquoted value: to the end of the line or a comment, ending blanks dropped. */
static bool
bare(struct cursor *c, bool after_blank, char *out, size_t *n, size_t *val_end)
{
    bool prev_blank = after_blank;

    while (c->p < c->len && c->s[c->p] != '\n') {
        char ch = c->s[c->p];
        if (ch == '\r' && c->p + 1 < c->len && c->s[c->p + 1] == '\n')
            break;
        if (ch == '\0' || ch == '\r') {
            c->why = ch == '\0' ? "NUL byte" : "carriage return without a line feed";
            return false;
        }
        if (ch == '#' && prev_blank)
            break;
        out[(*n)++] = ch;
        prev_blank = blank(ch);
        c->p++;
    }
    size_t end = c->p;
    while (*n > 0 && blank(out[*n - 1])) {
        (*n)--;
        end--;
    }
    *val_end = end;
    return true;
}

static enum status
add_var(struct dotenv *d, struct dotenv_var *v)
{
    if (d->n >= DOTENV_MAX_VARS)
        return ST_TOO_LARGE;
    for (size_t i = 0; i < d->n; i++) {
        if (strcmp(d->v[i].name, v->name) == 0) {
            v->dup_line = d->v[i].line; /* the first match is the first definition */
            d->n_dups++;
            break;
        }
    }
    if ((d->n & (d->n - 1)) == 0 || d->n == 0) /* grow at powers of two */
        d->v = xrealloc(d->v, (d->n == 0 ? 1 : d->n * 2) * sizeof *d->v);
    d->v[d->n++] = *v;
    return ST_OK;
}

/* One assignment, the cursor after the blanks that start its line. */
static enum status
assignment(struct cursor *c, struct dotenv *d)
{
    struct dotenv_var v = {.line = c->line};
    size_t start;

    if (c->len - c->p > 7 && memcmp(c->s + c->p, "export", 6) == 0 && blank(c->s[c->p + 6])) {
        c->p += 6;
        skip_blanks(c);
        v.exported = true;
    }
    start = c->p;
    if (c->p >= c->len || !name_start(c->s[c->p])) {
        c->why = "expected NAME=value, a comment or a blank line";
        return ST_INVALID;
    }
    while (c->p < c->len && name_char(c->s[c->p]))
        c->p++;
    if (c->p - start > DOTENV_NAME_MAX) {
        c->why = "variable name longer than 255 characters";
        return ST_INVALID;
    }
    size_t name_end = c->p;
    skip_blanks(c);
    if (c->p >= c->len || c->s[c->p] != '=') {
        c->why = "expected '=' after the variable name";
        return ST_INVALID;
    }
    c->p++;
    size_t before = c->p;
    skip_blanks(c);
    v.val_start = c->p;
    char *out = c->tmp;
    size_t n = 0;
    bool ok;
    if (c->p < c->len && (c->s[c->p] == '"' || c->s[c->p] == '\'')) {
        v.quote = c->s[c->p] == '"' ? DOTENV_DOUBLE : DOTENV_SINGLE;
        ok = quoted(c, c->s[c->p], out, &n);
        v.val_end = c->p;
        if (ok) {
            skip_blanks(c);
            if (c->p < c->len && c->s[c->p] == '#')
                ok = skip_comment(c);
            else if (!(ok = end_of_line(c)))
                c->why = "unexpected text after the closing quote";
        }
    } else {
        v.quote = DOTENV_BARE;
        ok = bare(c, c->p > before, out, &n, &v.val_end);
        if (ok && c->p < c->len && c->s[c->p] == '#')
            ok = skip_comment(c);
        else if (ok)
            ok = end_of_line(c);
    }
    if (!ok)
        return ST_INVALID;
    v.value = xmalloc(n + 1);
    memcpy(v.value, out, n);
    v.value[n] = '\0';
    v.value_len = n;
    v.name = xstrndup(c->s + start, name_end - start);
    enum status st = add_var(d, &v);
    if (st != ST_OK) {
        sbuf_wipe_free(v.value, v.value_len);
        free(v.name);
    }
    return st;
}

enum status
dotenv_parse(struct dotenv *d, const char *src, size_t len, size_t *err_line, const char **why)
{
    struct cursor c = {.s = src, .len = len, .line = 1};
    enum status st = ST_OK;

    memset(d, 0, sizeof *d);
    d->src = src;
    d->len = len;
    *err_line = 0;
    *why = NULL;
    if (len > DOTENV_MAX_BYTES) {
        *why = "file larger than 4 MiB";
        return ST_TOO_LARGE;
    }
    if (len >= 3 && memcmp(src, "\xEF\xBB\xBF", 3) == 0)
        c.p = 3;
    c.tmp = xmalloc(len + 1);
    while (c.p < c.len && st == ST_OK) {
        skip_blanks(&c);
        if (end_of_line(&c))
            continue;
        if (c.s[c.p] == '#')
            st = skip_comment(&c) ? ST_OK : ST_INVALID;
        else
            st = assignment(&c, d);
    }
    sbuf_wipe_free(c.tmp, len + 1);
    if (st != ST_OK) {
        *err_line = c.line;
        *why = st == ST_TOO_LARGE ? "more than 4096 variables" : c.why;
        dotenv_free(d);
        d->src = src;
        d->len = len;
    }
    return st;
}

void
dotenv_free(struct dotenv *d)
{
    if (d == NULL)
        return;
    for (size_t i = 0; i < d->n; i++) {
        sbuf_wipe_free(d->v[i].value, d->v[i].value_len);
        free(d->v[i].name);
    }
    free(d->v);
    memset(d, 0, sizeof *d);
}

/* ---- writing ----------------------------------------------------------------------------- */

static bool
bare_ok(const char *v, size_t n)
{
    if (n == 0)
        return true;
    if (blank(v[0]) || blank(v[n - 1]) || v[0] == '"' || v[0] == '\'' || v[0] == '#')
        return false;
    for (size_t i = 0; i < n; i++) {
        if (v[i] == '\n' || v[i] == '\r' || (v[i] == '#' && i > 0 && blank(v[i - 1])))
            return false;
    }
    return true;
}

static bool
single_ok(const char *v, size_t n)
{
    return memchr(v, '\'', n) == NULL && memchr(v, '\r', n) == NULL;
}

enum dotenv_quote
dotenv_quote(struct sbuf *out, const char *v, size_t n, enum dotenv_quote pref)
{
    if (pref == DOTENV_BARE && bare_ok(v, n)) {
        sbuf_add(out, v, n);
        return DOTENV_BARE;
    }
    if (pref == DOTENV_SINGLE && single_ok(v, n)) {
        sbuf_add(out, "'", 1);
        sbuf_add(out, v, n);
        sbuf_add(out, "'", 1);
        return DOTENV_SINGLE;
    }
    sbuf_add(out, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        const char *e = NULL;
        switch (v[i]) {
        case '\\':
            e = "\\\\";
            break;
        case '"':
            e = "\\\"";
            break;
        case '$':
            e = "\\$";
            break;
        case '\n':
            e = "\\n";
            break;
        case '\r':
            e = "\\r";
            break;
        default:
            break;
        }
        if (e != NULL)
            sbuf_add(out, e, 2);
        else
            sbuf_add(out, v + i, 1);
    }
    sbuf_add(out, "\"", 1);
    return DOTENV_DOUBLE;
}

void
dotenv_render(struct sbuf *out, const struct dotenv *d, const struct sbuf *repl)
{
    size_t at = 0;

    for (size_t i = 0; i < d->n; i++) {
        const struct dotenv_var *v = &d->v[i];
        sbuf_add(out, d->src + at, v->val_start - at);
        if (repl != NULL && repl[i].p != NULL)
            sbuf_add(out, repl[i].p, repl[i].len);
        else
            sbuf_add(out, d->src + v->val_start, v->val_end - v->val_start);
        at = v->val_end;
    }
    sbuf_add(out, d->src + at, d->len - at);
}

bool
dotenv_ciphertext(const char *v, size_t n, uint32_t *version)
{
    uint64_t ver = 0;
    size_t i = 4, digits = 0;

    *version = 0;
    if (n < 7 || memcmp(v, "dg:v", 4) != 0 || v[4] == '0')
        return false;
    for (; i < n && v[i] >= '0' && v[i] <= '9' && digits < 11; i++, digits++)
        ver = ver * 10 + (uint64_t)(v[i] - '0');
    if (digits == 0 || ver > UINT32_MAX || i >= n || v[i] != ':' || i + 1 >= n)
        return false;
    for (i++; i < n; i++) {
        char ch = v[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_'))
            return false;
    }
    *version = (uint32_t)ver;
    return true;
}
