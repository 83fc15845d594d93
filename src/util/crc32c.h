/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as Google Cloud checks payloads
 * (Secret Manager's dataCrc32c). crc32c(0, p, n) is the checksum of p; pass a previous
 * result to continue over more bytes. */
uint32_t crc32c(uint32_t crc, const void *p, size_t len);
