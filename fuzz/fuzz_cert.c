/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz/fuzz_cert.c -- certificate input (crypto/cert.h): PEM bundles (with other blocks such as
 * keys among them) and DER, and chain verification over what parsed. Oracles: every certificate
 * has at least one and at most CERT_SET_MAX members, its fingerprint is the SHA-256 of the DER
 * the set hands back, that DER parses again to the same facts, and every text field is printable
 * UTF-8 without control characters (it goes to logs, labels and JSON as is). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "common/text.h"
#include "crypto/cert.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_text(const char *s, size_t cap)
{
    char copy[1024];
    if (strnlen(s, cap) >= cap || !text_copy_safe(copy, sizeof copy, s))
        abort(); /* unterminated, or text_copy_safe would have changed it */
}

static void
check_one(const struct cert_set *s, size_t i)
{
    const struct cert_info *ci = cert_set_info(s, i);
    size_t len = 0;
    const uint8_t *der = cert_set_der(s, i, &len);
    unsigned char md[32];
    unsigned n = 0;
    char hex[65];

    if (ci == NULL || der == NULL || len == 0 ||
        EVP_Digest(der, len, md, &n, EVP_sha256(), NULL) != 1)
        abort();
    for (unsigned j = 0; j < n; j++) {
        hex[2 * j] = "0123456789abcdef"[md[j] >> 4];
        hex[2 * j + 1] = "0123456789abcdef"[md[j] & 15];
    }
    hex[64] = '\0';
    if (strcmp(hex, ci->fingerprint) != 0)
        abort();
    check_text(ci->subject, sizeof ci->subject);
    check_text(ci->subject_cn, sizeof ci->subject_cn);
    check_text(ci->issuer, sizeof ci->issuer);
    check_text(ci->issuer_cn, sizeof ci->issuer_cn);
    check_text(ci->serial, sizeof ci->serial);
    check_text(ci->sans, sizeof ci->sans);
    check_text(ci->key_type, sizeof ci->key_type);
    check_text(ci->key_curve, sizeof ci->key_curve);
    check_text(ci->sig_alg, sizeof ci->sig_alg);
    check_text(ci->sig_hash, sizeof ci->sig_hash);
    /* The DER the set keeps is one certificate with the same facts. */
    struct cert_set *again = NULL;
    char err[128];
    if (cert_set_parse(&again, der, len, err, sizeof err) != ST_OK || cert_set_count(again) != 1 ||
        memcmp(cert_set_info(again, 0), ci, sizeof *ci) != 0)
        abort();
    cert_set_free(again);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cert_set *s = NULL;
    char err[128], reason[128];

    if (cert_set_parse(&s, data, size, err, sizeof err) != ST_OK) {
        if (s != NULL)
            abort();
        return 0;
    }
    size_t n = cert_set_count(s);
    if (n == 0 || n > CERT_SET_MAX)
        abort();
    for (size_t i = 0; i < n && i < 8; i++)
        check_one(s, i);
    /* Chains: the input's own certificates as the only anchors. */
    (void)cert_verify(s, 0, NULL, s, reason, sizeof reason);
    cert_set_free(s);
    return 0;
}
