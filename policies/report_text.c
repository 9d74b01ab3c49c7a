/* SPDX-License-Identifier: Apache-2.0 */
/* policies/report_text.c -- the CSV and HTML renderings of a report (see report.h): the same
 * evaluations as the signed JSON, for spreadsheets and for reading and printing. Every value is
 * escaped for its format; the HTML page needs nothing but itself (inline CSS and SVG, no script). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/xmem.h"
#include "policies/report.h"

/* --- CSV (RFC 4180) --- */

/* One field: quoted when it holds a comma, quote or line break; a leading =, +, -, @ or tab is
 * prefixed with ' so no spreadsheet reads it as a formula. */
static void
csv_field(struct sbuf *b, const char *s, bool last)
{
    bool quote = strpbrk(s, ",\"\r\n") != NULL;

    if (quote)
        sbuf_add(b, "\"", 1);
    if (strchr("=+-@\t", s[0]) != NULL && s[0] != '\0')
        sbuf_add(b, "'", 1);
    for (const char *p = s; *p != '\0'; p++) {
        if (*p == '"')
            sbuf_add(b, "\"", 1);
        sbuf_add(b, p, 1);
    }
    if (quote)
        sbuf_add(b, "\"", 1);
    sbuf_add(b, last ? "\r\n" : ",", last ? 2 : 1);
}

static void
csv_row(struct sbuf *b, const struct evaluation *ev, const struct ctl_eval *e)
{
    const struct control *c = e->control;
    struct sbuf refs = {0}, params = {0};
    char num[2][24], at[32];

    for (size_t i = 0; i < c->n_refs; i++)
        sbuf_addf(&refs, "%s%s", i > 0 ? "; " : "", c->refs[i]);
    for (size_t i = 0; i < c->check->n_params; i++)
        sbuf_addf(&params, "%s%s=%s", i > 0 ? "; " : "", c->check->params[i].name,
                  c->params[i].text);
    snprintf(num[0], sizeof num[0], "%" PRIu64, e->out.checked);
    snprintf(num[1], sizeof num[1], "%" PRIu64, e->out.failing);
    clock_rfc3339(at, ev->evaluated_at);
    csv_field(b, ev->pack->id, false);
    csv_field(b, c->id, false);
    csv_field(b, c->title, false);
    csv_field(b, refs.p != NULL ? refs.p : "", false);
    csv_field(b, severity_name(c->severity), false);
    csv_field(b, c->check->name, false);
    csv_field(b, params.p != NULL ? params.p : "", false);
    csv_field(b, ctl_result_name(e->out.result), false);
    csv_field(b, e->out.summary, false);
    csv_field(b, num[0], false);
    csv_field(b, num[1], false);
    csv_field(b, at, true);
    sbuf_free(&refs);
    sbuf_free(&params);
}

void
report_csv(struct sbuf *out, const struct report_meta *m, const struct evaluation *ev, size_t n)
{
    (void)m;
    sbuf_adds(out, "pack,control,title,refs,severity,check,params,result,summary,checked,failing,"
                   "evaluated_at\r\n");
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < ev[i].n; j++)
            csv_row(out, &ev[i], &ev[i].items[j]);
}

/* --- HTML --- */

static void
h(struct sbuf *b, const char *s)
{
    for (; *s != '\0'; s++) {
        switch (*s) {
        case '&':
            sbuf_adds(b, "&amp;");
            break;
        case '<':
            sbuf_adds(b, "&lt;");
            break;
        case '>':
            sbuf_adds(b, "&gt;");
            break;
        case '"':
            sbuf_adds(b, "&quot;");
            break;
        case '\'':
            sbuf_adds(b, "&#39;");
            break;
        default:
            sbuf_add(b, s, 1);
        }
    }
}

static const char *const colour[CTL__COUNT] = {"#2e7d32", "#c62828", "#9e9e9e", "#ef6c00"};

static const char css[] =
    "body{font-family:sans-serif;margin:2em;color:#222;max-width:70em}"
    "h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:1.6em;"
    "border-bottom:1px solid #ccc}h3{font-size:1em;margin:.2em 0}.meta{color:#555}"
    ".counts span{display:inline-block;margin:.3em .8em .3em 0;padding:.4em .8em;"
    "border-radius:4px;color:#fff;font-weight:bold}"
    ".pass{background:#2e7d32}.fail{background:#c62828}.manual{background:#ef6c00}"
    ".not_applicable{background:#9e9e9e}.badge{color:#fff;padding:.1em .5em;border-radius:3px;"
    "font-size:.85em;text-transform:uppercase}"
    ".control{border:1px solid #ddd;border-left-width:6px;margin:.8em 0;padding:.5em .8em;"
    "page-break-inside:avoid;break-inside:avoid}"
    ".control.r-fail{border-left-color:#c62828}.control.r-pass{border-left-color:#2e7d32}"
    ".control.r-manual{border-left-color:#ef6c00}.control.r-not_applicable{border-left-color:"
    "#9e9e9e}table{border-collapse:collapse;width:100%;font-size:.9em}"
    "td,th{border:1px solid #ddd;padding:.25em .5em;text-align:left;vertical-align:top}"
    "th{background:#f4f4f4}.small{font-size:.85em;color:#555}code{font-size:.9em}"
    "@media print{body{margin:0}a{color:#222}}";

static void
html_counts(struct sbuf *b, const size_t counts[static CTL__COUNT])
{
    static const char *const label[CTL__COUNT] = {"passed", "failed", "not applicable", "manual"};
    static const enum ctl_result order[] = {CTL_FAIL, CTL_MANUAL, CTL_PASS, CTL_NOT_APPLICABLE};

    sbuf_adds(b, "<p class=\"counts\">");
    for (size_t i = 0; i < 4; i++)
        sbuf_addf(b, "<span class=\"%s\">%zu %s</span>", ctl_result_name(order[i]),
                  counts[order[i]], label[order[i]]);
    sbuf_adds(b, "</p>\n");
}

/* A stacked bar per pack (SVG inline: draws without script or external files), with the counts
 * written out as text too. */
static void
html_chart(struct sbuf *b, const struct evaluation *ev, size_t n)
{
    const int w = 480, x0 = 190, row = 28;

    sbuf_addf(b,
              "<svg role=\"img\" aria-label=\"Results by framework\" width=\"%d\" height=\"%zu\" "
              "xmlns=\"http://www.w3.org/2000/svg\" font-family=\"sans-serif\" font-size=\"12\">\n",
              x0 + w + 10, n * (size_t)row + 30);
    for (size_t i = 0; i < n; i++) {
        double x = x0, y = (double)i * row + 4;
        sbuf_addf(b, "<text x=\"0\" y=\"%.0f\">", y + 15);
        h(b, ev[i].pack->framework);
        sbuf_adds(b, "</text>\n");
        for (size_t r = 0; r < CTL__COUNT && ev[i].n > 0; r++) {
            double width = (double)w * (double)ev[i].counts[r] / (double)ev[i].n;
            if (ev[i].counts[r] == 0)
                continue;
            sbuf_addf(b,
                      "<rect x=\"%.1f\" y=\"%.0f\" width=\"%.1f\" height=\"20\" fill=\"%s\">"
                      "<title>%s: %zu</title></rect><text x=\"%.1f\" y=\"%.0f\" fill=\"#fff\">"
                      "%zu</text>\n",
                      x, y, width, colour[r], ctl_result_name((enum ctl_result)r), ev[i].counts[r],
                      x + 4, y + 15, ev[i].counts[r]);
            x += width;
        }
    }
    double ly = (double)n * row + 20, lx = x0;
    for (size_t r = 0; r < CTL__COUNT; r++, lx += 110)
        sbuf_addf(b,
                  "<rect x=\"%.0f\" y=\"%.0f\" width=\"12\" height=\"12\" fill=\"%s\"/>"
                  "<text x=\"%.0f\" y=\"%.0f\">%s</text>\n",
                  lx, ly - 10, colour[r], lx + 16, ly, ctl_result_name((enum ctl_result)r));
    sbuf_adds(b, "</svg>\n");
}

static void
html_control(struct sbuf *b, const struct evaluation *ev, const struct ctl_eval *e)
{
    const struct control *c = e->control;
    const char *r = ctl_result_name(e->out.result);

    sbuf_addf(b, "<div class=\"control r-%s\" id=\"", r);
    h(b, ev->pack->id);
    sbuf_adds(b, "--");
    h(b, c->id);
    sbuf_addf(b, "\"><h3><span class=\"badge %s\">%s</span> ", r, r);
    h(b, c->title);
    sbuf_adds(b, "</h3><p class=\"small\">");
    h(b, ev->pack->name);
    sbuf_adds(b, " &middot; <code>");
    h(b, c->id);
    sbuf_addf(b, "</code> &middot; severity %s &middot; ", severity_name(c->severity));
    for (size_t i = 0; i < c->n_refs; i++) {
        sbuf_adds(b, i > 0 ? "; " : "");
        h(b, c->refs[i]);
    }
    sbuf_adds(b, " &middot; check <code>");
    h(b, c->check->name);
    for (size_t i = 0; i < c->check->n_params; i++) {
        sbuf_addf(b, "%s%s=", i == 0 ? " " : ", ", c->check->params[i].name);
        h(b, c->params[i].text);
    }
    sbuf_adds(b, "</code></p><p>");
    h(b, e->out.summary);
    sbuf_adds(b, "</p>\n");
    if (e->out.n_findings > 0) {
        sbuf_adds(b, "<table><tr><th>examined</th><th>result</th><th>evidence</th></tr>\n");
        for (size_t i = 0; i < e->out.n_findings; i++) {
            const struct finding *f = &e->out.findings[i];
            sbuf_adds(b, "<tr><td>");
            h(b, f->subject);
            sbuf_addf(b, "</td><td>%s</td><td>", f->ok ? "ok" : "FAIL");
            h(b, f->detail);
            sbuf_adds(b, "</td></tr>\n");
        }
        sbuf_adds(b, "</table>\n");
        if (e->out.checked > e->out.n_findings)
            sbuf_addf(b, "<p class=\"small\">%zu of %" PRIu64 " items shown, failing first.</p>",
                      e->out.n_findings, e->out.checked);
    }
    sbuf_adds(b, "</div>\n");
}

struct ref {
    const struct evaluation *ev;
    const struct ctl_eval *e;
};

static int
rank(const struct ctl_eval *e)
{
    static const int by_result[CTL__COUNT] = {2, 0, 3, 1}; /* fail, manual, pass, n/a */
    return by_result[e->out.result] * SEV__COUNT + (SEV__COUNT - 1 - (int)e->control->severity);
}

static int
by_rank(const void *a, const void *b)
{
    const struct ref *x = a, *y = b;
    int d = rank(x->e) - rank(y->e);
    if (d != 0)
        return d;
    return x->e < y->e ? -1 : x->e > y->e; /* stable: pack order, then control order */
}

static void
html_heads(struct sbuf *b, const struct report_meta *m)
{
    sbuf_adds(b, "<h2>Audit trail heads at report time</h2>\n");
    if (m->n_heads == 0) {
        sbuf_adds(b, "<p>No audit chain (auditing is off, or the trail is empty).</p>\n");
        return;
    }
    sbuf_adds(b, "<table><tr><th>chain</th><th>seq</th><th>hash</th></tr>\n");
    for (size_t i = 0; i < m->n_heads; i++) {
        sbuf_adds(b, "<tr><td><code>");
        h(b, m->heads[i].chain_id);
        sbuf_addf(b, "</code></td><td>%" PRIu64 "</td><td><code>%s</code></td></tr>\n",
                  m->heads[i].seq, m->heads[i].hash);
    }
    sbuf_adds(b, "</table>\n<p class=\"small\">Check an audit export against them: "
                 "<code>difyguard audit verify EXPORT --public-key @audit-keys.json "
                 "--expect-head CHAIN:SEQ:HASH</code></p>\n");
}

void
report_html(struct sbuf *out, const struct report_meta *m, const struct evaluation *ev, size_t n)
{
    size_t counts[CTL__COUNT] = {0}, total = 0, k = 0;
    char at[32];
    struct ref *all;

    for (size_t i = 0; i < n; i++) {
        total += ev[i].n;
        for (size_t r = 0; r < CTL__COUNT; r++)
            counts[r] += ev[i].counts[r];
    }
    all = xcalloc(total + 1, sizeof *all);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < ev[i].n; j++)
            all[k++] = (struct ref){&ev[i], &ev[i].items[j]};
    qsort(all, total, sizeof *all, by_rank);
    clock_rfc3339(at, m->generated_at);
    sbuf_addf(out,
              "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
              "<title>difyguard compliance report %s</title><style>%s</style></head>"
              "<body>\n<h1>difyguard compliance report</h1>\n<p class=\"meta\">",
              at, css);
    sbuf_addf(out, "Generated %s by ", at);
    h(out, m->service);
    sbuf_adds(out, " ");
    h(out, m->version);
    sbuf_adds(out, " (instance <code>");
    h(out, m->instance[0] != '\0' ? m->instance : "-");
    sbuf_adds(out, "</code>, root key <code>");
    h(out, m->root_key_id);
    sbuf_addf(out, "</code>). %zu controls in %zu pack%s.</p>\n", total, n, n == 1 ? "" : "s");
    html_counts(out, counts);
    sbuf_adds(out, "<h2>Results by framework</h2>\n");
    html_chart(out, ev, n);
    sbuf_adds(out, "<h2>Controls, failing first</h2>\n");
    for (size_t i = 0; i < total; i++)
        html_control(out, all[i].ev, all[i].e);
    html_heads(out, m);
    sbuf_adds(out, "<p class=\"small\">Manual controls are never counted as passed. This page is "
                   "for reading; the signed form is <code>format=json</code>, checked offline "
                   "with <code>difyguard report verify</code>.</p>\n</body></html>\n");
    free(all);
}
