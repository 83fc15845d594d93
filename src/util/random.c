/* SPDX-License-Identifier: MIT */
#include "util/random.h"

#include <stdbool.h>
#include <sys/random.h>
#include <time.h>

static uint64_t state[2];
static bool seeded;

/* xorshift128+: jitter needs spread, not cryptographic strength. */
static uint64_t next(void) {
        if (!seeded) {
                if (getrandom(state, sizeof(state), GRND_NONBLOCK) != (ssize_t) sizeof(state)) {
                        struct timespec ts;
                        clock_gettime(CLOCK_MONOTONIC, &ts);
                        state[0] = (uint64_t) ts.tv_nsec * 0x9E3779B97F4A7C15ULL;
                        state[1] = (uint64_t) ts.tv_sec ^ 0xD1B54A32D192ED03ULL;
                }
                if (!state[0] && !state[1])
                        state[0] = 1;
                seeded = true;
        }
        uint64_t x = state[0], y = state[1];
        state[0] = y;
        x ^= x << 23;
        state[1] = x ^ y ^ (x >> 17) ^ (y >> 26);
        return state[1] + y;
}

uint64_t random_below(uint64_t n) {
        if (n == 0)
                return 0;
        /* rejection sampling keeps it uniform */
        uint64_t limit = UINT64_MAX - UINT64_MAX % n, v;
        do
                v = next();
        while (v >= limit);
        return v % n;
}

uint64_t random_backoff(uint64_t base, uint64_t cap, unsigned attempt) {
        uint64_t d = base;
        for (unsigned i = 0; i < attempt && d < cap; i++)
                d *= 2;
        if (d > cap)
                d = cap;
        return d / 2 + random_below(d / 2 + 1);
}
