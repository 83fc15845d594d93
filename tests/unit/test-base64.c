/* SPDX-License-Identifier: MIT */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/base64.h"
#include "util/cleanup.h"

/* RFC 4648 section 10 test vectors. */
static const char *const vectors[][2] = {
        { "", "" },         { "f", "Zg==" },         { "fo", "Zm8=" },         { "foo", "Zm9v" },
        { "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
};

START_TEST(test_rfc4648) {
        for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
                _cleanup_secbuf_ SecBuf *e = secbuf_new(0), *d = NULL;
                ck_assert_int_ge(base64_encode_append(e, vectors[i][0], strlen(vectors[i][0])), 0);
                ck_assert_str_eq(secbuf_str(e), vectors[i][1]);
                ck_assert_int_eq(base64_decode(vectors[i][1], strlen(vectors[i][1]), false, &d), 0);
                ck_assert_uint_eq(d->len, strlen(vectors[i][0]));
                ck_assert_int_eq(memcmp(d->data, vectors[i][0], d->len), 0);
        }
}
END_TEST

START_TEST(test_binary_round_trip) {
        unsigned char all[256];
        for (int i = 0; i < 256; i++)
                all[i] = (unsigned char) i;
        for (size_t n = 0; n <= sizeof(all); n += 37) {
                _cleanup_secbuf_ SecBuf *e = secbuf_new(0), *d = NULL;
                ck_assert_int_ge(base64_encode_append(e, all, n), 0);
                ck_assert_int_eq(base64_decode((const char *) e->data, e->len, false, &d), 0);
                ck_assert_uint_eq(d->len, n);
                ck_assert_int_eq(memcmp(d->data, all, n), 0);
        }
}
END_TEST

START_TEST(test_decode_variants) {
        _cleanup_secbuf_ SecBuf *d = NULL;
        /* Padding is optional; white space only where allowed. */
        ck_assert_int_eq(base64_decode("Zm8", 3, false, &d), 0);
        ck_assert_str_eq(secbuf_str(d), "fo");
        d = secbuf_free(d);
        ck_assert_int_eq(base64_decode("Zm9v\nYmFy\n", 10, true, &d), 0);
        ck_assert_str_eq(secbuf_str(d), "foobar");
        d = secbuf_free(d);
        ck_assert_int_eq(base64_decode("Zm9v\nYmFy", 9, false, &d), -EINVAL);
        ck_assert_ptr_null(d);
}
END_TEST

START_TEST(test_decode_rejects) {
        static const char *const bad[] = { "Z", "Zm9vY", "Zg=", "Zg===", "Zg==Zg==", "Z=g=", "Zm9v=", "Zm_v",
                                           "Zm-v", "Zm9v!" };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                SecBuf *d = NULL;
                ck_assert_msg(base64_decode(bad[i], strlen(bad[i]), true, &d) == -EINVAL, "accepted \"%s\"", bad[i]);
                ck_assert_ptr_null(d);
        }
        SecBuf *d = NULL;
        ck_assert_int_eq(base64_decode("Zg\0=", 4, true, &d), -EINVAL);
}
END_TEST

int main(void) {
        Suite *s = suite_create("base64");
        TCase *tc = tcase_create("core");
        tcase_add_test(tc, test_rfc4648);
        tcase_add_test(tc, test_binary_round_trip);
        tcase_add_test(tc, test_decode_variants);
        tcase_add_test(tc, test_decode_rejects);
        suite_add_tcase(s, tc);
        SRunner *sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
