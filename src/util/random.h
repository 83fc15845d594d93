/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdint.h>

/* Uniform in [0, n) (0 for n = 0): for jitter, which needs spread across nodes and
 * secrets, not cryptographic strength. Seeded from getrandom() on first use. */
uint64_t random_below(uint64_t n);

/* A retry's delay: base doubled `attempt` times (attempt 0: base itself), at most cap, then
 * jittered uniformly into [d/2, d], so that many clients retrying at once spread out. */
uint64_t random_backoff(uint64_t base, uint64_t cap, unsigned attempt);
