/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define USEC_PER_SEC UINT64_C(1000000)
#define USEC_PER_MSEC UINT64_C(1000)
#define USEC_PER_MINUTE (UINT64_C(60) * USEC_PER_SEC)
#define USEC_PER_HOUR (UINT64_C(60) * USEC_PER_MINUTE)
#define USEC_PER_DAY (UINT64_C(24) * USEC_PER_HOUR)
/* Longest duration accepted anywhere in the configuration: one year. */
#define DURATION_MAX_USEC (UINT64_C(365) * USEC_PER_DAY)

/* Parse "90s", "15m", "1h30m", "500ms", "2d"; units may be combined in decreasing order.
 * Returns -EINVAL on bad syntax, -ERANGE above DURATION_MAX_USEC. */
int duration_parse(const char *s, uint64_t *ret_usec);

/* Canonical form: "1h30m", "90ms", "0s". Parsing the result gives back the same value. */
char *duration_format(uint64_t usec, char *buf, size_t size);
#define DURATION_FORMAT_MAX 64
