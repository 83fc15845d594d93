/* SPDX-License-Identifier: MIT */
#include <check.h>
#include <stdlib.h>

#include "core/schedule.h"
#include "util/random.h"
#include "util/cleanup.h"
#include "util/duration.h"

#define DRAWS 10000

static int u64_cmp(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

static uint64_t backoff_median(unsigned failures, uint64_t min, uint64_t max) {
        static uint64_t v[DRAWS];

        for (size_t i = 0; i < DRAWS; i++) {
                v[i] = schedule_backoff_delay(failures, min, max);
                ck_assert_msg(v[i] >= min && v[i] <= max, "failure %u: %llu outside [%llu, %llu]", failures,
                              (unsigned long long) v[i], (unsigned long long) min, (unsigned long long) max);
        }
        qsort(v, DRAWS, sizeof(v[0]), u64_cmp);
        return v[DRAWS / 2];
}

START_TEST(test_random) {
        unsigned seen[10] = { 0 };

        ck_assert_uint_eq(random_below(0), 0);
        ck_assert_uint_eq(random_below(1), 0);
        for (int i = 0; i < DRAWS; i++) {
                uint64_t r = random_below(10);
                ck_assert_uint_lt(r, 10);
                seen[r]++;
        }
        /* Uniform: each bucket expects 1000; 700 is about 10 standard deviations below. */
        for (int i = 0; i < 10; i++)
                ck_assert_msg(seen[i] > 700 && seen[i] < 1300, "bucket %d drawn %u times", i, seen[i]);
}
END_TEST

/* The stores' and the Kubernetes client's retry delays: doubling from base, capped, each
 * in [d/2, d], and spread (not one value for everyone). */
START_TEST(test_random_backoff) {
        const uint64_t base = 500 * USEC_PER_MSEC, cap = 30 * USEC_PER_SEC;
        for (unsigned attempt = 0; attempt < 70; attempt++) {
                uint64_t d = base;
                for (unsigned i = 0; i < attempt && d < cap; i++)
                        d *= 2;
                d = d > cap ? cap : d;
                uint64_t lo = UINT64_MAX, hi = 0;
                for (int k = 0; k < 200; k++) {
                        uint64_t v = random_backoff(base, cap, attempt);
                        ck_assert_uint_ge(v, d / 2);
                        ck_assert_uint_le(v, d);
                        lo = v < lo ? v : lo;
                        hi = v > hi ? v : hi;
                }
                ck_assert_uint_gt(hi - lo, d / 10);
        }
}
END_TEST

START_TEST(test_refresh_jitter) {
        static const uint64_t intervals[] = { 10, 997, 90 * USEC_PER_SEC, USEC_PER_HOUR, DURATION_MAX_USEC };

        for (size_t k = 0; k < ELEMENTSOF(intervals); k++) {
                uint64_t iv = intervals[k], lo = iv - iv / 10, hi = iv + iv / 10, min = UINT64_MAX, max = 0;
                for (int i = 0; i < DRAWS; i++) {
                        uint64_t d = schedule_refresh_delay(iv);
                        ck_assert_msg(d >= lo && d <= hi, "%llu outside %llu +-10%%", (unsigned long long) d,
                                      (unsigned long long) iv);
                        min = MIN(min, d);
                        max = MAX(max, d);
                }
                /* It varies, and uses most of the window. */
                ck_assert_msg(min < iv - iv / 20 && max > iv + iv / 20, "interval %llu: draws only in [%llu, %llu]",
                              (unsigned long long) iv, (unsigned long long) min, (unsigned long long) max);
        }
        for (int i = 0; i < 100; i++)
                ck_assert_uint_eq(schedule_refresh_delay(0), 0);
        /* Too short to spread: unchanged, not below zero. */
        ck_assert_uint_eq(schedule_refresh_delay(9), 9);
}
END_TEST

START_TEST(test_backoff_grows) {
        const uint64_t min = USEC_PER_SEC, max = 5 * USEC_PER_MINUTE;
        uint64_t prev = 0;
        unsigned n;

        /* Failure n waits in [min * 2^(n-1), min * 2^n]: median 1.5 * min * 2^(n-1), until the
         * cap (300 s lies between 2^8 and 2^9 seconds: failure 9 is the first capped one). */
        for (n = 1; n <= 9; n++) {
                uint64_t m = backoff_median(n, min, max);
                ck_assert_msg(m > prev, "median at failure %u (%llu) not above failure %u (%llu)", n,
                              (unsigned long long) m, n - 1, (unsigned long long) prev);
                if (n <= 8)
                        ck_assert_msg(m > (min << (n - 1)) * 140 / 100 && m < (min << (n - 1)) * 160 / 100,
                                      "median at failure %u is %llu", n, (unsigned long long) m);
                prev = m;
        }
        /* Capped: from here on the distribution stays in [max/2, max]. */
        for (n = 9; n < 100; n += 17) {
                uint64_t m = backoff_median(n, min, max);
                ck_assert_msg(m > max * 65 / 100 && m < max * 85 / 100, "median at failure %u is %llu", n,
                              (unsigned long long) m);
        }
}
END_TEST

/* The first retry is jittered too: secrets that failed together must not all come back at
 * exactly min_backoff (issue: it was always exactly min). */
START_TEST(test_backoff_first_retry_spread) {
        const uint64_t min = USEC_PER_SEC, max = 5 * USEC_PER_MINUTE;
        unsigned buckets[4] = { 0 };
        uint64_t hi = 0, lo = UINT64_MAX;

        for (int i = 0; i < DRAWS; i++) {
                uint64_t d = schedule_backoff_delay(1, min, max);
                ck_assert_uint_ge(d, min);
                ck_assert_uint_le(d, 2 * min);
                hi = MAX(hi, d);
                lo = MIN(lo, d);
                buckets[MIN((d - min) * 4 / min, 3)]++;
        }
        ck_assert_uint_lt(lo, min * 101 / 100);
        ck_assert_uint_gt(hi, min * 199 / 100);
        /* Uniform over [min, 2 min]: each quarter expects 2500 of 10000 draws. */
        for (int i = 0; i < 4; i++)
                ck_assert_msg(buckets[i] > 2000 && buckets[i] < 3000, "quarter %d drawn %u times", i, buckets[i]);
}
END_TEST

START_TEST(test_backoff_capped) {
        const uint64_t min = 500 * USEC_PER_MSEC, max = 30 * USEC_PER_SEC;
        uint64_t hi = 0, lo = UINT64_MAX;

        for (int i = 0; i < DRAWS; i++) {
                uint64_t d = schedule_backoff_delay(1000000, min, max);
                ck_assert_uint_le(d, max);
                ck_assert_uint_ge(d, max / 2);
                hi = MAX(hi, d);
                lo = MIN(lo, d);
        }
        ck_assert_uint_gt(hi, max * 99 / 100);
        ck_assert_uint_lt(lo, max * 51 / 100);
        /* Huge failure counts and min == max are fine too. */
        ck_assert_uint_le(schedule_backoff_delay(UINT32_MAX, min, max), max);
        ck_assert_uint_eq(schedule_backoff_delay(7, max, max), max);
        ck_assert_uint_ge(schedule_backoff_delay(0, min, max), min);
        ck_assert_uint_le(schedule_backoff_delay(0, min, max), 2 * min);
        /* A max near the top of the range does not overflow the doubling. */
        ck_assert_uint_ge(schedule_backoff_delay(200, 3, UINT64_MAX - 1), (UINT64_MAX - 1) / 2);
}
END_TEST

static Suite *schedule_suite(void) {
        Suite *s = suite_create("schedule");
        TCase *tc = tcase_create("core");

        tcase_set_timeout(tc, 30);
        tcase_add_test(tc, test_random);
        tcase_add_test(tc, test_random_backoff);
        tcase_add_test(tc, test_refresh_jitter);
        tcase_add_test(tc, test_backoff_grows);
        tcase_add_test(tc, test_backoff_first_retry_spread);
        tcase_add_test(tc, test_backoff_capped);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(schedule_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
