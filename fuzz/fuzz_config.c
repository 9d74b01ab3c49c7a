/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz/fuzz_config.c -- the JSON config file layer must never crash, hang or leak, whatever
 * the file holds; every option type and a secret are in the table. */
#include <stddef.h>
#include <stdint.h>

#include "common/json/config.h"

struct fuzz_settings {
    char *listen;
    char *config;
    char *database;
    char *token;
    bool json;
    bool tls_terminated_upstream;
    uint64_t workers;
    uint64_t max_body_bytes;
    int64_t rotation_period;
    int64_t timeout;
    char *policy_params;
};

static const struct opt table[] = {
    {"listen", OPT_STRING, offsetof(struct fuzz_settings, listen), "127.0.0.1:8080", "", false,
     false},
    {"config", OPT_STRING, offsetof(struct fuzz_settings, config), NULL, "", false, false},
    {"database", OPT_STRING, offsetof(struct fuzz_settings, database), NULL, "", false, false},
    {"token", OPT_STRING, offsetof(struct fuzz_settings, token), NULL, "", true, false},
    {"json", OPT_BOOL, offsetof(struct fuzz_settings, json), "false", "", false, false},
    {"tls-terminated-upstream", OPT_BOOL, offsetof(struct fuzz_settings, tls_terminated_upstream),
     NULL, "", false, false},
    {"workers", OPT_UINT, offsetof(struct fuzz_settings, workers), "4", "", false, false},
    {"max-body-bytes", OPT_SIZE, offsetof(struct fuzz_settings, max_body_bytes), "4MiB", "", false,
     false},
    {"rotation-period", OPT_DURATION, offsetof(struct fuzz_settings, rotation_period), "90d", "",
     false, true}, /* flag only: a config-file key naming it is refused */
    {"timeout", OPT_DURATION, offsetof(struct fuzz_settings, timeout), "30s", "", false, false},
    {"policy-params", OPT_JSON, offsetof(struct fuzz_settings, policy_params), NULL, "", false,
     false},
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const size_t n = sizeof table / sizeof table[0];
    struct fuzz_settings s = {0};
    char err[256];
    enum status st;

    /* Twice into the same struct: the second parse must free what the first one set. */
    st = config_parse_json(&s, table, n, (const char *)data, size, err, sizeof err);
    if (st == ST_OK)
        st = config_parse_json(&s, table, n, (const char *)data, size, err, sizeof err);
    config_free(&s, table, n);
    return 0;
}
