/* SPDX-License-Identifier: Apache-2.0 */
/* crypto/init.c -- the process-wide crypto start-up. */
#include "crypto/init.h"

#include <stdio.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <sodium.h>

#include "crypto/aead.h"

enum status
crypto_init(void)
{
    const struct rlimit no_core = {0, 0};

    if (sodium_init() < 0) {
        fprintf(stderr, "difyguard: sodium_init failed\n");
        return ST_INTERNAL;
    }
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 || setrlimit(RLIMIT_CORE, &no_core) != 0) {
        perror("difyguard: disabling core dumps");
        return ST_INTERNAL;
    }
    return aead_init();
}
