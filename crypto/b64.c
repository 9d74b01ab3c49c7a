/* SPDX-License-Identifier: Apache-2.0 */
/* crypto/b64.c -- strict base64 codecs over libsodium's constant-time ones. Accepts only the
 * canonical encoding of some byte string: one text per value, no lenient decoding. */
#include "crypto/b64.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include <sodium.h>

size_t
b64_std_len(size_t n)
{
    return (n + 2) / 3 * 4;
}

size_t
b64_url_len(size_t n)
{
    return n / 3 * 4 + (n % 3 == 0 ? 0 : n % 3 + 1);
}

size_t
b64_decoded_max(size_t n)
{
    return n / 4 * 3 + (n % 4) * 3 / 4;
}

static size_t
encode(char *out, size_t out_cap, const uint8_t *in, size_t in_len, size_t len, int variant)
{
    if (out_cap <= len) {
        fprintf(stderr, "difyguard: b64 encode: output buffer too small\n");
        abort();
    }
    sodium_bin2base64(out, out_cap, in, in_len, variant);
    return len;
}

size_t
b64_std_encode(char *out, size_t out_cap, const uint8_t *in, size_t in_len)
{
    return encode(out, out_cap, in, in_len, b64_std_len(in_len), sodium_base64_VARIANT_ORIGINAL);
}

size_t
b64_url_encode(char *out, size_t out_cap, const uint8_t *in, size_t in_len)
{
    return encode(out, out_cap, in, in_len, b64_url_len(in_len),
                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

size_t
b64_url_encode_public(char *out, size_t out_cap, const uint8_t *in, size_t in_len)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t len = b64_url_len(in_len), o = 0, i = 0;

    if (out_cap <= len) {
        fprintf(stderr, "difyguard: b64 encode: output buffer too small\n");
        abort();
    }
    for (; i + 3 <= in_len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = tab[(v >> 6) & 63];
        out[o++] = tab[v & 63];
    }
    if (in_len - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
    } else if (in_len - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = tab[(v >> 6) & 63];
    }
    out[o] = '\0';
    return o;
}

/* libsodium 1.0.18 reads the text as signed char and so decodes every byte >= 0x80 as if it
 * were a base64 character (found by fuzz_envelope): check the alphabet ourselves first. */
static bool
alphabet_ok(const char *text, size_t len, bool url)
{
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  (url ? c == '-' || c == '_' : c == '+' || c == '/' || c == '=');
        if (!ok)
            return false;
    }
    return true;
}

/* libsodium then checks the padding of the padded variant and that the unused trailing bits are
 * zero; no ignore set means whitespace is rejected; we insist it consumed everything. */
static enum status
decode(uint8_t *out, size_t out_cap, size_t *out_len, const char *text, size_t text_len,
       int variant)
{
    const char *end = NULL;
    size_t n = 0, max = b64_decoded_max(text_len);
    enum status st = ST_INVALID;

    *out_len = 0;
    if (text_len == 0) {
        st = ST_OK;
        goto out;
    }
    if (!alphabet_ok(text, text_len, variant == sodium_base64_VARIANT_URLSAFE_NO_PADDING) ||
        sodium_base642bin(out, out_cap, text, text_len, NULL, &n, &end, variant) != 0 ||
        end != text + text_len)
        goto out;
    *out_len = n;
    st = ST_OK;
out:
    if (st != ST_OK && out != NULL) /* the text may have been a key: leave nothing behind */
        sodium_memzero(out, max < out_cap ? max : out_cap);
    return st;
}

enum status
b64_std_decode(uint8_t *out, size_t out_cap, size_t *out_len, const char *text, size_t text_len)
{
    return decode(out, out_cap, out_len, text, text_len, sodium_base64_VARIANT_ORIGINAL);
}

enum status
b64_url_decode(uint8_t *out, size_t out_cap, size_t *out_len, const char *text, size_t text_len)
{
    return decode(out, out_cap, out_len, text, text_len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}
