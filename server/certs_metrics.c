/* SPDX-License-Identifier: Apache-2.0 */
/* server/certs_metrics.c -- the certificate inventory's series (server/obs/metrics.h), named in
 * the style of x509-certificate-exporter with absolute timestamps: not before, not after,
 * renewal due, expired, renewal overdue, weak (one series per reason of the fixed list, 0 or 1),
 * read errors and rotations per source. Labels are bounded: the source id, the slot, the
 * subject CN and the serial of certificates the inventory holds (at most CERT_SET_MAX per read
 * of a source, CERTS_MAX_SOURCES sources). Every family is present, with zero series, when
 * nothing is configured; difyguard_cert_sources and difyguard_certs{status} always have one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "server/certs_priv.h"
#include "server/obs/metrics.h"

#define CERT_LABELS 4

/* One family: its HELP and TYPE, then fn's value for every certificate. */
static void
per_cert(struct metrics_out *o, const struct cert_source_view *v, size_t nv, const char *name,
         const char *help, double (*fn)(const struct cert_view *))
{
    metrics_family(o, name, "gauge", help);
    for (size_t i = 0; i < nv; i++) {
        for (size_t j = 0; j < v[i].n_certs; j++) {
            const struct cert_view *cv = &v[i].certs[j];
            if (!cv->has_cert)
                continue;
            const struct metrics_label l[CERT_LABELS] = {{"source_id", v[i].spec.id},
                                                         {"slot", cv->slot},
                                                         {"subject_cn", cv->info.subject_cn},
                                                         {"serial", cv->info.serial}};
            metrics_sample_l(o, name, l, CERT_LABELS, fn(cv));
        }
    }
}

static double
not_after(const struct cert_view *cv)
{
    return (double)cv->info.not_after;
}

static double
not_before(const struct cert_view *cv)
{
    return (double)cv->info.not_before;
}

static double
renewal_due(const struct cert_view *cv)
{
    return (double)cv->j.renewal_due;
}

static double
expired(const struct cert_view *cv)
{
    return cv->j.status == CERT_EXPIRED ? 1 : 0;
}

static double
overdue(const struct cert_view *cv)
{
    return cv->j.renewal_overdue ? 1 : 0;
}

static void
weak(struct metrics_out *o, const struct cert_source_view *v, size_t nv)
{
    static const char name[] = "difyguard_cert_weak";
    metrics_family(o, name, "gauge",
                   "1 when the certificate is weak for the reason: rsa_lt_2048, ec_lt_p256, "
                   "sha1_signature, md5_signature, validity_over_398d, no_san, self_signed_leaf");
    for (size_t i = 0; i < nv; i++) {
        for (size_t j = 0; j < v[i].n_certs; j++) {
            const struct cert_view *cv = &v[i].certs[j];
            for (unsigned r = 0; cv->has_cert && r < CERT__WEAK_COUNT; r++) {
                const struct metrics_label l[CERT_LABELS + 1] = {
                    {"source_id", v[i].spec.id},
                    {"slot", cv->slot},
                    {"subject_cn", cv->info.subject_cn},
                    {"serial", cv->info.serial},
                    {"reason", cert_weak_name(1u << r)}};
                metrics_sample_l(o, name, l, CERT_LABELS + 1, (cv->j.weak >> r) & 1u);
            }
        }
    }
}

static void
per_source(struct metrics_out *o, const struct cert_source_view *v, size_t nv)
{
    metrics_family(o, "difyguard_cert_read_errors_total", "counter",
                   "reads and probes of a source that failed (unreadable, not a certificate, "
                   "refused, timed out) since the service started");
    for (size_t i = 0; i < nv; i++)
        metrics_sample1(o, "difyguard_cert_read_errors_total", "source_id", v[i].spec.id,
                        (double)v[i].read_errors);
    metrics_family(o, "difyguard_cert_rotations_total", "counter",
                   "certificates replaced at a source (a changed fingerprint at a slot) since "
                   "the service started");
    for (size_t i = 0; i < nv; i++)
        metrics_sample1(o, "difyguard_cert_rotations_total", "source_id", v[i].spec.id,
                        (double)v[i].rotations);
    metrics_family(o, "difyguard_cert_source_error", "gauge",
                   "1 while the last read or probe of the source failed");
    for (size_t i = 0; i < nv; i++)
        metrics_sample1(o, "difyguard_cert_source_error", "source_id", v[i].spec.id,
                        v[i].error[0] != '\0' ? 1 : 0);
}

static void
totals(struct metrics_out *o, const struct cert_source_view *v, size_t nv)
{
    uint64_t by[CERT__STATUS_COUNT] = {0};

    for (size_t i = 0; i < nv; i++) {
        for (size_t j = 0; j < v[i].n_certs; j++)
            by[v[i].certs[j].j.status]++;
        if (v[i].n_certs == 0 && v[i].error[0] != '\0')
            by[CERT_ERROR]++; /* a source never read counts once */
    }
    metrics_gauge(o, "difyguard_cert_sources", "certificate sources in the inventory", (double)nv);
    metrics_family(o, "difyguard_certs", "gauge", "certificates in the inventory by status");
    for (unsigned s = 0; s < CERT__STATUS_COUNT; s++)
        metrics_sample1(o, "difyguard_certs", "status", cert_status_name(s), (double)by[s]);
}

void
certs_metrics(const void *self, struct metrics_out *o)
{
    struct certs *c = (struct certs *)self; /* the views take its lock */
    struct cert_source_view *v = NULL;
    size_t nv = 0;

    if (certs_list(c, clock_now_s(), &v, &nv) != ST_OK)
        return;
    totals(o, v, nv);
    per_cert(o, v, nv, "difyguard_cert_not_before_timestamp_seconds",
             "the certificate's notBefore (Unix seconds)", not_before);
    per_cert(o, v, nv, "difyguard_cert_not_after_timestamp_seconds",
             "the certificate's notAfter (Unix seconds)", not_after);
    per_cert(o, v, nv, "difyguard_cert_renewal_due_timestamp_seconds",
             "when the certificate is due for renewal: notAfter - renew_before, else two thirds "
             "of its lifetime (Unix seconds)",
             renewal_due);
    per_cert(o, v, nv, "difyguard_cert_expired", "1 when the certificate has expired", expired);
    per_cert(o, v, nv, "difyguard_cert_renewal_overdue",
             "1 when a leaf certificate is past its renewal-due time and has not been replaced",
             overdue);
    weak(o, v, nv);
    per_source(o, v, nv);
    cert_source_views_free(v, nv);
}
