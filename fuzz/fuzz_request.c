/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz/fuzz_request.c -- request JSON decoding of the crypto routes (encrypt, decrypt, rewrap,
 * datakey; single and batch) must never crash, hang or leak on any body. The first byte picks
 * the operation. */
#include <stddef.h>
#include <stdint.h>

#include "common/json/jsonx.h"
#include "server/handlers/handlers.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    size_t n = 0;
    if (!init) {
        jx_init();
        init = 1;
    }
    if (size < 1)
        return 0;
    enum crypto_op op = (enum crypto_op)(data[0] % 4);
    (void)crypto_request_check(op, (const char *)data + 1, size - 1, &n);
    return 0;
}
