/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdint.h>

/* The next refresh: interval with +-10% jitter, so secrets configured alike spread out
 * instead of hitting the store together. 0 stays 0 (no periodic refresh). */
uint64_t schedule_refresh_delay(uint64_t interval_usec);

/* The retry delay after the failures-th consecutive failure (1, 2, ...): uniform in
 * [min * 2^(failures-1), min * 2^failures], capped to [max/2, max], never below min. */
uint64_t schedule_backoff_delay(unsigned failures, uint64_t min_usec, uint64_t max_usec);
