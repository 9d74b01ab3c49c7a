/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz/fuzz_client_config.c -- the client config file (~/.config/difyguard/client.json,
 * cli/admin.c). Oracles: never crash; an accepted file sets only DIFYGUARD_ADDR,
 * DIFYGUARD_CACERT and DIFYGUARD_TOKEN, each at most once; a refused one sets nothing and says
 * why in one line that names the file. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli/admin.h"

struct seen {
    int addr, cacert, token, other;
};

static void
record(void *arg, const char *var, const char *value)
{
    struct seen *s = arg;
    (void)value;
    if (strcmp(var, "DIFYGUARD_ADDR") == 0)
        s->addr++;
    else if (strcmp(var, "DIFYGUARD_CACERT") == 0)
        s->cacert++;
    else if (strcmp(var, "DIFYGUARD_TOKEN") == 0)
        s->token++;
    else
        s->other++;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct seen s = {0, 0, 0, 0};
    char err[512] = "";
    enum status st = admin_client_config_parse((const char *)data, size, "client.json", record, &s,
                                               err, sizeof err);
    if (s.other != 0 || s.addr > 1 || s.cacert > 1 || s.token > 1)
        abort();
    if (st != ST_OK && (s.addr + s.cacert + s.token != 0 || strstr(err, "client.json") == NULL ||
                        strchr(err, '\n') != NULL))
        abort();
    if (st == ST_OK && err[0] != '\0')
        abort();
    return 0;
}
