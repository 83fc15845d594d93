/* SPDX-License-Identifier: MIT */
#include "core/schedule.h"

#include "util/cleanup.h"
#include "util/random.h"


uint64_t schedule_refresh_delay(uint64_t interval) {
        if (interval == 0)
                return 0;
        uint64_t spread = interval / 10;
        return interval - spread + random_below(2 * spread + 1);
}

/* The n-th consecutive failure waits between min·2^(n-1) and min·2^n, uniformly: the first
 * retries of many secrets that failed together spread out instead of arriving as one. At
 * the cap the range is [max/2, max]; never below min, never above max. */
uint64_t schedule_backoff_delay(unsigned failures, uint64_t min, uint64_t max) {
        uint64_t top = min;
        for (unsigned i = 0; i < MAX(failures, 1U) && top < max; i++)
                top = top > max / 2 ? max : top * 2;
        if (top > max)
                top = max;
        uint64_t low = MAX(top / 2, min);
        if (low >= top)
                return top;
        return low + random_below(top - low + 1);
}
