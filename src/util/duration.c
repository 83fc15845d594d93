/* SPDX-License-Identifier: MIT */
#include "util/duration.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

static const struct {
        const char *suffix;
        uint64_t usec;
} units[] = {
        /* Order matters: longest suffix that matches first ("ms" before "m"). */
        { "d", USEC_PER_DAY },
        { "h", USEC_PER_HOUR },
        { "ms", USEC_PER_MSEC },
        { "m", USEC_PER_MINUTE },
        { "s", USEC_PER_SEC },
};

int duration_parse(const char *s, uint64_t *ret_usec) {
        uint64_t total = 0, last_unit = UINT64_MAX;

        if (!s || !*s)
                return -EINVAL;
        while (*s) {
                if (!isdigit((unsigned char) *s))
                        return -EINVAL;
                uint64_t n = 0;
                while (isdigit((unsigned char) *s)) {
                        if (n > DURATION_MAX_USEC)
                                return -ERANGE;
                        n = n * 10 + (uint64_t) (*s - '0');
                        s++;
                }
                size_t i;
                for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
                        if (strncmp(s, units[i].suffix, strlen(units[i].suffix)) == 0)
                                break;
                if (i == sizeof(units) / sizeof(units[0]))
                        return -EINVAL;
                /* "1h30m" yes, "30m1h" or "1h1h" no. */
                if (units[i].usec >= last_unit)
                        return -EINVAL;
                last_unit = units[i].usec;
                if (n > DURATION_MAX_USEC / units[i].usec)
                        return -ERANGE;
                total += n * units[i].usec;
                if (total > DURATION_MAX_USEC)
                        return -ERANGE;
                s += strlen(units[i].suffix);
        }
        *ret_usec = total;
        return 0;
}

char *duration_format(uint64_t usec, char *buf, size_t size) {
        static const struct {
                const char *suffix;
                uint64_t usec;
        } order[] = {
                { "d", USEC_PER_DAY }, { "h", USEC_PER_HOUR }, { "m", USEC_PER_MINUTE },
                { "s", USEC_PER_SEC }, { "ms", USEC_PER_MSEC },
        };
        size_t off = 0;

        if (size == 0)
                return buf;
        buf[0] = 0;
        if (usec < USEC_PER_MSEC) {
                snprintf(buf, size, "0s");
                return buf;
        }
        for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
                uint64_t n = usec / order[i].usec;
                if (n == 0)
                        continue;
                usec -= n * order[i].usec;
                int k = snprintf(buf + off, size - off, "%llu%s", (unsigned long long) n, order[i].suffix);
                if (k < 0 || (size_t) k >= size - off)
                        break;
                off += (size_t) k;
        }
        return buf;
}
