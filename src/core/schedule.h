/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdint.h>

/* A uniformly random number in [0, n) (n > 0), from a generator seeded by getrandom(). */
uint64_t schedule_random(uint64_t n);

/* The next refresh: interval with +-10% jitter, so secrets configured alike spread out
 * instead of hitting the store together. 0 stays 0 (no periodic refresh). */
uint64_t schedule_refresh_delay(uint64_t interval_usec);

/* The retry delay after the failures-th consecutive failure (1, 2, ...): min * 2^(failures-1),
 * capped at max, then jittered into [base/2, base] and clamped to [min, max]. */
uint64_t schedule_backoff_delay(unsigned failures, uint64_t min_usec, uint64_t max_usec);
