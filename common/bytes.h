/* SPDX-License-Identifier: Apache-2.0 */
/* common/bytes.h -- big-endian integer encoding for the permanent byte formats (ciphertext
 * header, canonical context, KEK AAD, row MACs). */
#ifndef DG_COMMON_BYTES_H
#define DG_COMMON_BYTES_H

#include <stdint.h>

/* Write v as 4 bytes big-endian at p; returns p + 4. */
static inline uint8_t *
put_u32be(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
    return p + 4;
}

#endif
