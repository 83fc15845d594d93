/* SPDX-License-Identifier: MIT */
#include "util/crc32c.h"

uint32_t crc32c(uint32_t crc, const void *p, size_t len) {
        const uint8_t *s = p;
        crc = ~crc;
        for (size_t i = 0; i < len; i++) {
                crc ^= s[i];
                for (int k = 0; k < 8; k++)
                        crc = (crc >> 1) ^ (0x82F63B78U & (0U - (crc & 1U)));
        }
        return ~crc;
}
