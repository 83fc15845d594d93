/* SPDX-License-Identifier: MIT */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "util/escape.h"

static const char *const cases[][2] = {
        { "plain text", "plain text" },
        { "line\nforged\r", "line\\x0aforged\\x0d" },
        { "\x1b[31mred\x7f", "\\x1b[31mred\\x7f" },
        { "caf\xc3\xa9 \xe2\x98\x83 \xf0\x9f\x94\x91", "caf\xc3\xa9 \xe2\x98\x83 \xf0\x9f\x94\x91" }, /* UTF-8 stays */
        { "\xc2\x9b" "2J", "\\xc2\\x9b2J" },                 /* C1 CSI */
        { "\xff\xfe", "\\xff\\xfe" },                        /* not UTF-8 */
        { "\xc3\x28", "\\xc3(" },                            /* a lead byte without its tail */
        { "\xc0\xaf", "\\xc0\\xaf" },                        /* overlong '/' */
        { "\xed\xa0\x80", "\\xed\\xa0\\x80" },               /* a surrogate */
        { "\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80" },      /* past U+10FFFF */
        { "\xe2\x98", "\\xe2\\x98" },                        /* cut short at the end */
};

START_TEST(test_cases) {
        char b[128];
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
                ck_assert_str_eq(escape_text(cases[i][0], b, sizeof(b)), cases[i][1]);
}
END_TEST

START_TEST(test_cut_to_fit) {
        char b[8];
        ck_assert_str_eq(escape_text("abcdefghij", b, sizeof(b)), "abcdefg");
        ck_assert_str_eq(escape_text("abcde\n", b, sizeof(b)), "abcde"); /* no half escape */
        ck_assert_str_eq(escape_text("abcde\xe2\x98\x83", b, sizeof(b)), "abcde"); /* no half character */
        ck_assert_str_eq(escape_text("x", b, 1), "");
}
END_TEST

START_TEST(test_has_control) {
        ck_assert(!text_has_control("X-Vault-Token: hvs.abc"));
        ck_assert(text_has_control("X-Vault-Token: hvs.abc\r\nX-Injected: 1"));
        ck_assert(text_has_control("tab\there"));
        ck_assert(!text_has_control("caf\xc3\xa9"));
}
END_TEST

int main(void) {
        Suite *s = suite_create("escape");
        TCase *tc = tcase_create("escape");
        tcase_add_test(tc, test_cases);
        tcase_add_test(tc, test_cut_to_fit);
        tcase_add_test(tc, test_has_control);
        suite_add_tcase(s, tc);
        SRunner *sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
