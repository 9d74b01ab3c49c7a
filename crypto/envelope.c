/* SPDX-License-Identifier: Apache-2.0 */
/* crypto/envelope.c -- seal and open values in the permanent ciphertext format (envelope.h).
 * Per-value keys exist only in this thread's guarded scratch and are wiped before returning. */
#include "crypto/envelope.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>
#include <sodium.h>

#include "common/bytes.h"
#include "common/xmem.h"
#include "crypto/aead.h"
#include "crypto/b64.h"

#define LABEL_BYTES 16 /* strlen of either label below */
#define DEK_LABEL "difyguard/v1/dek"
#define SIV_LABEL "difyguard/v1/siv"
#define DEK_BYTES 32
#define SIV_KEY_BYTES 64
#define SIV_BYTES 16
#define AAD_STACK_BYTES 512

_Static_assert(sizeof DEK_LABEL - 1 == LABEL_BYTES && sizeof SIV_LABEL - 1 == LABEL_BYTES,
               "labels are 16 bytes");
_Static_assert(ENVELOPE_HEADER_BYTES + ENVELOPE_SALT_BYTES + AEAD_TAG_BYTES <=
                   ENVELOPE_MAX_OVERHEAD,
               "DESIGN.md bounds the overhead at 64 bytes");

static bool
format_known(enum envelope_format fmt)
{
    return fmt == ENVELOPE_AES256GCM || fmt == ENVELOPE_XCHACHA20POLY1305 ||
           fmt == ENVELOPE_AES256SIV;
}

/* Body bytes besides the ciphertext: salt and tag, or the SIV. */
static size_t
body_overhead(enum envelope_format fmt)
{
    return fmt == ENVELOPE_AES256SIV ? SIV_BYTES : ENVELOPE_SALT_BYTES + AEAD_TAG_BYTES;
}

static enum aead_alg
format_alg(enum envelope_format fmt)
{
    return fmt == ENVELOPE_AES256GCM           ? AEAD_AES256GCM
           : fmt == ENVELOPE_XCHACHA20POLY1305 ? AEAD_XCHACHA20POLY1305
                                               : AEAD_AES256SIV;
}

static void
contract(const char *what)
{
    fprintf(stderr, "difyguard: envelope: %s\n", what);
    abort();
}

/* Salts are public (they travel in the ciphertext) but must never repeat under a KEK: each
 * thread draws them from a pool refilled by OpenSSL's DRBG, one call per SALT_POOL_BYTES / 32
 * values. A forked child empties its pool, so parent and child never hand out the same salt. */
#define SALT_POOL_BYTES 4096
static _Thread_local uint8_t salt_pool[SALT_POOL_BYTES];
static _Thread_local size_t salt_pos = SALT_POOL_BYTES;
static pthread_once_t salt_once = PTHREAD_ONCE_INIT;

static void
salt_pool_forget(void)
{
    sodium_memzero(salt_pool, sizeof salt_pool);
    salt_pos = SALT_POOL_BYTES;
}

static void
salt_pool_register(void)
{
    if (pthread_atfork(NULL, NULL, salt_pool_forget) != 0)
        contract("pthread_atfork failed");
}

static bool
salt_next(uint8_t out[static ENVELOPE_SALT_BYTES])
{
    pthread_once(&salt_once, salt_pool_register);
    if (salt_pos + ENVELOPE_SALT_BYTES > SALT_POOL_BYTES) {
        if (RAND_bytes(salt_pool, SALT_POOL_BYTES) != 1)
            return false;
        salt_pos = 0;
    }
    memcpy(out, salt_pool + salt_pos, ENVELOPE_SALT_BYTES);
    sodium_memzero(salt_pool + salt_pos, ENVELOPE_SALT_BYTES); /* used once, then gone */
    salt_pos += ENVELOPE_SALT_BYTES;
    return true;
}

size_t
envelope_blob_len(enum envelope_format fmt, size_t pt_len)
{
    if (!format_known(fmt))
        return 0;
    return ENVELOPE_HEADER_BYTES + body_overhead(fmt) + pt_len;
}

static size_t
decimal_digits(uint32_t v)
{
    size_t n = 1;

    while (v >= 10) {
        v /= 10;
        n++;
    }
    return n;
}

size_t
envelope_text_len(uint32_t version, size_t blob_len)
{
    return strlen(ENVELOPE_TEXT_PREFIX) + decimal_digits(version) + 1 + b64_url_len(blob_len);
}

/* The derivation input and the AAD share one buffer: label(16) || header(5) || context.
 * AAD = buf + 16; the SIV key's info is the whole buffer. Small contexts stay on the stack. */
struct aad_buf {
    uint8_t *p;
    size_t len; /* of the whole buffer, label included */
    uint8_t stack[AAD_STACK_BYTES];
};

static void
aad_build(struct aad_buf *a, const uint8_t header[static ENVELOPE_HEADER_BYTES], const uint8_t *ctx,
          size_t ctx_len)
{
    a->len = LABEL_BYTES + ENVELOPE_HEADER_BYTES + ctx_len;
    if (a->len < ctx_len)
        contract("context too large");
    a->p = a->len <= sizeof a->stack ? a->stack : xmalloc(a->len);
    memcpy(a->p, SIV_LABEL, LABEL_BYTES);
    memcpy(a->p + LABEL_BYTES, header, ENVELOPE_HEADER_BYTES);
    if (ctx_len > 0)
        memcpy(a->p + LABEL_BYTES + ENVELOPE_HEADER_BYTES, ctx, ctx_len);
}

static void
aad_free(struct aad_buf *a)
{
    if (a->p != a->stack)
        free(a->p);
}

/* The per-value key into key (in the scratch area): for random formats HKDF(KEK, "dek" label
 * || header || salt), for SIV HKDF(KEK, "siv" label || header || context). */
static void
derive_key(uint8_t *key, const struct kek *kek, enum envelope_format fmt, const struct aad_buf *a,
           const uint8_t *salt)
{
    uint8_t info[LABEL_BYTES + ENVELOPE_HEADER_BYTES + ENVELOPE_SALT_BYTES];

    if (fmt == ENVELOPE_AES256SIV) {
        kek_derive(kek, key, SIV_KEY_BYTES, a->p, a->len);
        return;
    }
    memcpy(info, DEK_LABEL, LABEL_BYTES);
    memcpy(info + LABEL_BYTES, a->p + LABEL_BYTES, ENVELOPE_HEADER_BYTES);
    memcpy(info + LABEL_BYTES + ENVELOPE_HEADER_BYTES, salt, ENVELOPE_SALT_BYTES);
    kek_derive(kek, key, DEK_BYTES, info, sizeof info);
}

static void
put_header(uint8_t h[static ENVELOPE_HEADER_BYTES], enum envelope_format fmt, uint32_t version)
{
    h[0] = (uint8_t)fmt;
    put_u32be(h + 1, version);
}

enum status
envelope_seal(uint8_t *blob, size_t blob_cap, size_t *blob_len, enum envelope_format fmt,
              const struct kek *kek, const uint8_t *ctx, size_t ctx_len, const uint8_t *pt,
              size_t pt_len)
{
    static const uint8_t zero_nonce[24]; /* each DEK seals exactly one value */
    struct aad_buf a = {.p = NULL};
    uint8_t *key = secret_scratch();
    size_t need = envelope_blob_len(fmt, pt_len);
    enum status st = ST_INVALID;

    *blob_len = 0;
    if (!format_known(fmt) || kek_version(kek) == 0)
        goto out;
    if (blob_cap < need || need < pt_len)
        contract("envelope_seal: blob buffer too small");
    put_header(blob, fmt, kek_version(kek));
    aad_build(&a, blob, ctx, ctx_len);
    uint8_t *body = blob + ENVELOPE_HEADER_BYTES;
    enum aead_alg alg = format_alg(fmt);
    if (fmt == ENVELOPE_AES256SIV) {
        derive_key(key, kek, fmt, &a, NULL);
        st = aead_seal(alg, body + SIV_BYTES, body, key, SIV_KEY_BYTES, NULL, 0, a.p + LABEL_BYTES,
                       a.len - LABEL_BYTES, pt, pt_len);
    } else {
        if (!salt_next(body)) {
            st = ST_INTERNAL;
            goto out;
        }
        derive_key(key, kek, fmt, &a, body);
        st = aead_seal(alg, body + ENVELOPE_SALT_BYTES, body + ENVELOPE_SALT_BYTES + pt_len, key,
                       DEK_BYTES, zero_nonce, aead_nonce_bytes(alg), a.p + LABEL_BYTES,
                       a.len - LABEL_BYTES, pt, pt_len);
    }
    if (st == ST_OK)
        *blob_len = need;
    else
        sodium_memzero(blob, need);
out:
    sodium_memzero(key, SIV_KEY_BYTES);
    if (a.p != NULL)
        aad_free(&a);
    return st;
}

enum status
envelope_parse_blob(struct envelope *env, const uint8_t *blob, size_t blob_len)
{
    enum status st = ST_MALFORMED_CT;

    memset(env, 0, sizeof *env);
    if (blob_len < ENVELOPE_HEADER_BYTES || !format_known((enum envelope_format)blob[0]))
        goto out;
    enum envelope_format fmt = (enum envelope_format)blob[0];
    uint32_t version =
        (uint32_t)blob[1] << 24 | (uint32_t)blob[2] << 16 | (uint32_t)blob[3] << 8 | blob[4];
    if (version == 0 || blob_len < ENVELOPE_HEADER_BYTES + body_overhead(fmt))
        goto out;
    env->format = fmt;
    env->version = version;
    env->blob = blob;
    env->blob_len = blob_len;
    st = ST_OK;
out:
    return st;
}

/* "<digits>:" -> version in 1..UINT32_MAX, no sign, no leading zero. Returns the bytes used
 * (colon included) or 0 when malformed. */
static size_t
parse_version(uint32_t *version, const char *s, size_t len)
{
    uint64_t v = 0;
    size_t i = 0;

    *version = 0;
    if (len == 0 || s[0] < '1' || s[0] > '9')
        return 0;
    for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
        v = v * 10 + (uint64_t)(s[i] - '0');
        if (v > UINT32_MAX)
            return 0;
    }
    if (i == len || s[i] != ':')
        return 0;
    *version = (uint32_t)v;
    return i + 1;
}

enum status
envelope_parse_text(struct envelope *env, uint8_t *blob, size_t blob_cap, const char *text,
                    size_t text_len)
{
    const size_t plen = strlen(ENVELOPE_TEXT_PREFIX);
    uint32_t version = 0;
    size_t used, blob_len = 0;
    enum status st = ST_MALFORMED_CT;

    memset(env, 0, sizeof *env);
    if (text_len < plen || memcmp(text, ENVELOPE_TEXT_PREFIX, plen) != 0) /* public */
        goto out;
    if ((used = parse_version(&version, text + plen, text_len - plen)) == 0)
        goto out;
    used += plen;
    if (b64_url_decode(blob, blob_cap, &blob_len, text + used, text_len - used) != ST_OK ||
        envelope_parse_blob(env, blob, blob_len) != ST_OK)
        goto out;
    if (env->version != version) {
        memset(env, 0, sizeof *env);
        goto out;
    }
    st = ST_OK;
out:
    return st;
}

size_t
envelope_plaintext_len(const struct envelope *env)
{
    if (env == NULL || !format_known(env->format) ||
        env->blob_len < ENVELOPE_HEADER_BYTES + body_overhead(env->format))
        return 0;
    return env->blob_len - ENVELOPE_HEADER_BYTES - body_overhead(env->format);
}

enum status
envelope_open(uint8_t *pt, size_t pt_cap, size_t *pt_len, const struct envelope *env,
              const struct kek *kek, const uint8_t *ctx, size_t ctx_len)
{
    static const uint8_t zero_nonce[24];
    struct aad_buf a = {.p = NULL};
    struct envelope v;
    uint8_t *key = secret_scratch();
    size_t n = envelope_plaintext_len(env);
    enum status st = ST_MALFORMED_CT;

    *pt_len = 0;
    if (pt_cap < n)
        contract("envelope_open: plaintext buffer too small");
    if (n > 0)
        sodium_memzero(pt, n);
    /* Re-read the view from the bytes: the header bytes are what the AAD authenticates. */
    if (env == NULL || env->blob == NULL ||
        envelope_parse_blob(&v, env->blob, env->blob_len) != ST_OK || v.format != env->format ||
        v.version != env->version)
        goto out;
    st = ST_AUTH; /* a caller bug, but never a reason to try another key */
    if (kek_version(kek) != v.version)
        goto out;
    aad_build(&a, v.blob, ctx, ctx_len);
    const uint8_t *body = v.blob + ENVELOPE_HEADER_BYTES;
    enum aead_alg alg = format_alg(v.format);
    if (v.format == ENVELOPE_AES256SIV) {
        derive_key(key, kek, v.format, &a, NULL);
        st = aead_open(alg, pt, key, SIV_KEY_BYTES, NULL, 0, a.p + LABEL_BYTES, a.len - LABEL_BYTES,
                       body + SIV_BYTES, n, body);
    } else {
        derive_key(key, kek, v.format, &a, body);
        st = aead_open(alg, pt, key, DEK_BYTES, zero_nonce, aead_nonce_bytes(alg),
                       a.p + LABEL_BYTES, a.len - LABEL_BYTES, body + ENVELOPE_SALT_BYTES, n,
                       body + ENVELOPE_SALT_BYTES + n);
    }
    if (st != ST_OK)
        st = ST_AUTH; /* no oracle: every failure reads the same */
    else
        *pt_len = n;
out:
    sodium_memzero(key, SIV_KEY_BYTES);
    if (st != ST_OK && n > 0)
        sodium_memzero(pt, n);
    if (a.p != NULL)
        aad_free(&a);
    return st;
}

size_t
envelope_format_text(char *out, size_t out_cap, uint32_t version, const uint8_t *blob,
                     size_t blob_len)
{
    size_t len = envelope_text_len(version, blob_len);

    if (out_cap <= len)
        contract("envelope_format_text: output buffer too small");
    int n = snprintf(out, out_cap, ENVELOPE_TEXT_PREFIX "%u:", (unsigned)version);
    b64_url_encode_public(out + n, out_cap - (size_t)n, blob, blob_len); /* public bytes */
    return len;
}
