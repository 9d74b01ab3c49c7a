/* SPDX-License-Identifier: Apache-2.0 */
/* crypto/init.h -- the process-wide crypto start-up. */
#ifndef DG_CRYPTO_INIT_H
#define DG_CRYPTO_INIT_H

#include "common/status.h"

/* sodium_init, the OpenSSL ciphers fetched once, core dumps off (PR_SET_DUMPABLE 0,
 * RLIMIT_CORE 0) so key material never reaches a core file or a ptrace-ing sibling.
 * Call once from main (or a test's set-up) before any thread starts. */
NODISCARD enum status crypto_init(void);

#endif
