/* SPDX-License-Identifier: Apache-2.0 */
/* server/audit/format_priv.h -- internals shared by the audit line writer (format.c) and the
 * offline verifier (verify.c, verify_checkpoint.c). Not a public header: nothing else includes it. */
#ifndef DG_SERVER_AUDIT_FORMAT_PRIV_H
#define DG_SERVER_AUDIT_FORMAT_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#include "common/sbuf.h"
#include "server/audit/format.h"

#define EVENT_DOMAIN "difyguard-audit-v1\n"
#define CHECKPOINT_DOMAIN "difyguard-audit-checkpoint-v1\n"
#define HASH_HEX (2 * AUDIT_HASH_BYTES)
#define HASH_KEY ",\"hash\":\""
#define HASH_SUFFIX_LEN (sizeof HASH_KEY - 1 + HASH_HEX + 2) /* ,"hash":"<hex>"} */
#define TIME_CHARS AUDIT_TIME_CHARS
#define TIME_MAX_MS INT64_C(253402300799999) /* 9999-12-31T23:59:59.999Z */
#define DAY_MS INT64_C(86400000)
#define SIG_BYTES crypto_sign_ed25519_BYTES
#define SIG_B64_CHARS 88
#define PK_B64_CHARS 44
#define CHAIN_ID_MAX AUDIT_CHAIN_ID_MAX
#define VERIFY_MAX_KEYS 64 /* given plus learned from key changes */
#define VERIFY_MAX_SIGS 8  /* signatures on one checkpoint */
#define VERIFY_LINE_MAX ((size_t)16 << 20)
#define SHOW_MAX 40 /* characters of input quoted in an error */
#define SHOW_BYTES (SHOW_MAX + 4)

enum cp_kind { CP_PERIODIC, CP_EXPORT, CP_ANCHOR, CP_KEY_CHANGE, CP__COUNT };
extern const char *const afmt_kind_names[CP__COUNT];

/* The signed fields of a checkpoint as text, shared by the writer and the verifier. */
struct cp_text {
    const char *chain_id;
    size_t chain_len;
    uint64_t seq;
    enum cp_kind kind;
    char hash[HASH_HEX + 1];
    char time[TIME_CHARS + 1];
    char new_key_id[AUDIT_KEY_ID_CHARS + 1]; /* "" unless key_change */
    char new_pk[PK_B64_CHARS + 1];           /* "" unless key_change */
};

/* Valid UTF-8 without control characters (a line stays one line; the signed checkpoint
 * message stays unambiguous). */
bool afmt_text_ok(const char *s, size_t len);
bool afmt_chain_id_ok(const char *s, size_t len);
/* Exactly 2n lowercase hex digits (one spelling per value). */
bool afmt_hex_decode(uint8_t *out, size_t n, const char *s, size_t len);
/* A time exactly as the writer formats it (RFC 3339 UTC with milliseconds). */
bool afmt_time_ok(const char *s, size_t len);
/* hash = SHA-256(EVENT_DOMAIN || body || "}"). */
void afmt_event_hash(uint8_t hash[static AUDIT_HASH_BYTES], const char *body, size_t len);
/* The message a checkpoint's signatures cover (m is reset first). */
void afmt_cp_message(struct sbuf *m, const struct cp_text *t);
bool afmt_kind_parse(enum cp_kind *out, const char *s);

#endif
