/* SPDX-License-Identifier: MIT */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/cleanup.h"
#include "util/duration.h"

static void assert_parse(const char *s, uint64_t expected) {
        uint64_t v = 12345;

        ck_assert_msg(duration_parse(s, &v) == 0, "\"%s\" was rejected", s);
        ck_assert_msg(v == expected, "\"%s\" parsed as %llu, not %llu", s, (unsigned long long) v,
                      (unsigned long long) expected);
}

static void assert_parse_fails(const char *s, int r) {
        uint64_t v = 12345;

        ck_assert_msg(duration_parse(s, &v) == r, "\"%s\" did not fail with %d", s, r);
        ck_assert_msg(v == 12345, "\"%s\" set the output on failure", s);
}

START_TEST(test_parse) {
        assert_parse("90s", 90 * USEC_PER_SEC);
        assert_parse("15m", 15 * USEC_PER_MINUTE);
        assert_parse("1h", USEC_PER_HOUR);
        assert_parse("1h30m", USEC_PER_HOUR + 30 * USEC_PER_MINUTE);
        assert_parse("24h", 24 * USEC_PER_HOUR);
        assert_parse("500ms", 500 * USEC_PER_MSEC);
        assert_parse("2d", 2 * USEC_PER_DAY);
        assert_parse("0s", 0);
        assert_parse("1m1ms", USEC_PER_MINUTE + USEC_PER_MSEC); /* "ms" is not "m" followed by "s" */
        assert_parse("1d2h3m4s5ms", USEC_PER_DAY + 2 * USEC_PER_HOUR + 3 * USEC_PER_MINUTE + 4 * USEC_PER_SEC +
                                            5 * USEC_PER_MSEC);
        assert_parse("007s", 7 * USEC_PER_SEC);
        assert_parse("365d", DURATION_MAX_USEC);
        assert_parse("8760h", DURATION_MAX_USEC);
}
END_TEST

START_TEST(test_parse_rejects) {
        static const char *const bad[] = { "", "1", "h", "1x", "-1s", "+1s", "1h1h", "30m1h", "1ms1s", " 1s",
                                           "1s ", "1 s", "1.5h", "1H", "s1", "1h-30m", "0x10s" };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                assert_parse_fails(bad[i], -EINVAL);
        assert_parse_fails(NULL, -EINVAL);
}
END_TEST

START_TEST(test_parse_overflow) {
        static const char *const big[] = { "366d", "8761h", "365d1ms", "364d24h1s", "31536001s",
                                           "99999999999999999999999999s", "18446744073709551617ms" };

        for (size_t i = 0; i < ELEMENTSOF(big); i++)
                assert_parse_fails(big[i], -ERANGE);
}
END_TEST

START_TEST(test_format_canonical) {
        static const struct {
                const char *in, *canonical;
        } t[] = {
                { "0s", "0s" },       { "90s", "1m30s" },   { "15m", "15m" },         { "1h", "1h" },
                { "1h30m", "1h30m" }, { "90m", "1h30m" },   { "24h", "1d" },          { "500ms", "500ms" },
                { "1500ms", "1s500ms" }, { "2d", "2d" },    { "3600s", "1h" },        { "1d0h0m1s", "1d1s" },
                { "365d", "365d" },   { "1h0m", "1h" },
        };
        char b[DURATION_FORMAT_MAX];

        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                uint64_t v;
                ck_assert_int_eq(duration_parse(t[i].in, &v), 0);
                ck_assert_str_eq(duration_format(v, b, sizeof(b)), t[i].canonical);
        }
        ck_assert_str_eq(duration_format(5400 * USEC_PER_SEC, b, sizeof(b)), "1h30m");
}
END_TEST

START_TEST(test_format_round_trip) {
        char b[DURATION_FORMAT_MAX];
        uint64_t v, parsed;

        /* Every value the parser can produce is a whole number of milliseconds. */
        for (v = 0; v <= 2 * USEC_PER_HOUR; v += 997 * USEC_PER_MSEC) {
                ck_assert_int_eq(duration_parse(duration_format(v, b, sizeof(b)), &parsed), 0);
                ck_assert_msg(parsed == v, "%llu -> \"%s\" -> %llu", (unsigned long long) v, b,
                              (unsigned long long) parsed);
        }
        for (v = USEC_PER_MSEC; v <= DURATION_MAX_USEC; v = v * 3 + USEC_PER_MSEC) {
                ck_assert_int_eq(duration_parse(duration_format(v, b, sizeof(b)), &parsed), 0);
                ck_assert_msg(parsed == v, "%llu -> \"%s\" -> %llu", (unsigned long long) v, b,
                              (unsigned long long) parsed);
        }
        v = DURATION_MAX_USEC - USEC_PER_MSEC;
        ck_assert_str_eq(duration_format(v, b, sizeof(b)), "364d23h59m59s999ms");
        ck_assert_int_eq(duration_parse(b, &parsed), 0);
        ck_assert(parsed == v);
}
END_TEST

static Suite *duration_suite(void) {
        Suite *s = suite_create("duration");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_parse);
        tcase_add_test(tc, test_parse_rejects);
        tcase_add_test(tc, test_parse_overflow);
        tcase_add_test(tc, test_format_canonical);
        tcase_add_test(tc, test_format_round_trip);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(duration_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
