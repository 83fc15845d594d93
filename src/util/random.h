/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdint.h>

/* Uniform in [0, n) (0 for n = 0): for jitter, which needs spread across nodes and
 * secrets, not cryptographic strength. Seeded from getrandom() on first use. */
uint64_t random_below(uint64_t n);
