/* SPDX-License-Identifier: MIT */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/cleanup.h"
#include "util/secbuf.h"

/* Each test gets its own directory in base; base goes at the end, also after failures
 * (an unchecked fixture runs in the parent, which failing tests do not abort). */
static char base[] = "/tmp/test-secbuf.XXXXXX", tmpdir[128];

static void setup(void) {
        snprintf(tmpdir, sizeof(tmpdir), "%s/XXXXXX", base);
        ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void setup_base(void) {
        ck_assert_ptr_nonnull(mkdtemp(base));
}

static void teardown_base(void) {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
        ck_assert_int_eq(system(cmd), 0);
}

/* Writes content into tmpdir/name and returns the path (static buffer). */
static const char *write_file(const char *name, const void *content, size_t len) {
        static char path[256];
        snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, content, len), (ssize_t) len);
        close(fd);
        return path;
}

static void assert_content(const SecBuf *b, const void *expected, size_t len) {
        ck_assert_uint_eq(b->len, len);
        ck_assert_uint_gt(b->cap, b->len);
        ck_assert(memcmp(b->data, expected, len) == 0);
        ck_assert_uint_eq(b->data[b->len], 0);
}

START_TEST(test_append_grows) {
        _cleanup_secbuf_ SecBuf *b = secbuf_new(0);
        char expected[10000];

        ck_assert_ptr_nonnull(b);
        assert_content(b, "", 0);
        for (size_t i = 0; i < sizeof(expected); i++) {
                expected[i] = (char) ('a' + i % 26);
                ck_assert_int_eq(secbuf_append_char(b, expected[i]), 0);
                assert_content(b, expected, i + 1);
        }
        ck_assert_int_eq(secbuf_append_str(b, "END"), 0);
        ck_assert_uint_eq(b->len, sizeof(expected) + 3);
        ck_assert_str_eq(secbuf_str(b) + sizeof(expected), "END");
        ck_assert_int_eq(secbuf_append(b, "ignored", 0), 0);
        ck_assert_uint_eq(b->len, sizeof(expected) + 3);

        secbuf_clear(b);
        assert_content(b, "", 0);
        ck_assert_int_eq(secbuf_append_str(b, "again"), 0);
        assert_content(b, "again", 5);
}
END_TEST

START_TEST(test_binary) {
        static const char bin[] = { 'a', 0, 'b', 0, 0, (char) 0xff, 'c' };
        _cleanup_secbuf_ SecBuf *b = secbuf_new_from(bin, sizeof(bin));
        _cleanup_secbuf_ SecBuf *big = secbuf_new(1);

        ck_assert_ptr_nonnull(b);
        assert_content(b, bin, sizeof(bin));
        ck_assert_int_eq(secbuf_append(b, bin, sizeof(bin)), 0);
        ck_assert_uint_eq(b->len, 2 * sizeof(bin));
        ck_assert(memcmp(b->data + sizeof(bin), bin, sizeof(bin)) == 0);
        ck_assert_uint_eq(b->data[b->len], 0);

        /* Growth in big steps keeps every earlier chunk, NULs included. */
        for (int i = 0; i < 1000; i++)
                ck_assert_int_eq(secbuf_append(big, bin, sizeof(bin)), 0);
        ck_assert_uint_eq(big->len, 1000 * sizeof(bin));
        for (int i = 0; i < 1000; i++)
                ck_assert(memcmp(big->data + i * sizeof(bin), bin, sizeof(bin)) == 0);
        ck_assert_uint_eq(big->data[big->len], 0);
}
END_TEST

START_TEST(test_dup_equal) {
        _cleanup_secbuf_ SecBuf *a = secbuf_new_from("x\0y", 3);
        _cleanup_secbuf_ SecBuf *b = secbuf_dup(a);
        _cleanup_secbuf_ SecBuf *prefix = secbuf_new_from("x", 1);
        _cleanup_secbuf_ SecBuf *other = secbuf_new_from("x\0z", 3);
        _cleanup_secbuf_ SecBuf *empty1 = secbuf_new(0);
        _cleanup_secbuf_ SecBuf *empty2 = secbuf_new(100);

        ck_assert_ptr_nonnull(b);
        ck_assert_ptr_ne(a->data, b->data);
        assert_content(b, "x\0y", 3);
        ck_assert(secbuf_equal(a, b));
        ck_assert(secbuf_equal(a, a));
        /* Same C string, different bytes after the NUL. */
        ck_assert(!secbuf_equal(a, other));
        ck_assert(!secbuf_equal(a, prefix));
        ck_assert(!secbuf_equal(prefix, a));
        ck_assert(secbuf_equal(empty1, empty2));
        ck_assert(!secbuf_equal(empty1, prefix));
        ck_assert(!secbuf_equal(a, NULL));
        ck_assert(!secbuf_equal(NULL, a));
        ck_assert(secbuf_equal(NULL, NULL));
}
END_TEST

START_TEST(test_read_file_strip) {
        _cleanup_secbuf_ SecBuf *b = NULL;
        const char *p = write_file("token", " \t s3cr3t value\twith\ninner space \r\n\n", 36);
        ck_assert_uint_eq(strlen(" \t s3cr3t value\twith\ninner space \r\n\n"), 36);

        ck_assert_int_eq(secbuf_read_file(p, 4096, true, &b), 0);
        assert_content(b, "s3cr3t value\twith\ninner space", 29);
        b = secbuf_free(b);

        ck_assert_int_eq(secbuf_read_file(p, 4096, false, &b), 0);
        assert_content(b, " \t s3cr3t value\twith\ninner space \r\n\n", 36);
        b = secbuf_free(b);

        p = write_file("blank", " \n\n", 3);
        ck_assert_int_eq(secbuf_read_file(p, 4096, true, &b), 0);
        assert_content(b, "", 0);
        b = secbuf_free(b);

        p = write_file("empty", "", 0);
        ck_assert_int_eq(secbuf_read_file(p, 4096, true, &b), 0);
        assert_content(b, "", 0);
        b = secbuf_free(b);

        p = write_file("binary", "\n\0k\0\n", 5);
        ck_assert_int_eq(secbuf_read_file(p, 4096, true, &b), 0);
        assert_content(b, "\0k\0", 3);
}
END_TEST

START_TEST(test_read_file_large) {
        static char big[3 * 4096 + 17];
        _cleanup_secbuf_ SecBuf *b = NULL;

        for (size_t i = 0; i < sizeof(big); i++)
                big[i] = (char) (i * 7);
        const char *p = write_file("big", big, sizeof(big));
        ck_assert_int_eq(secbuf_read_file(p, sizeof(big), false, &b), 0);
        assert_content(b, big, sizeof(big));
        b = secbuf_free(b);

        ck_assert_int_eq(secbuf_read_file(p, sizeof(big) - 1, false, &b), -EFBIG);
        ck_assert_ptr_null(b);
}
END_TEST

START_TEST(test_read_file_errors) {
        _cleanup_secbuf_ SecBuf *b = NULL;
        char missing[256];

        snprintf(missing, sizeof(missing), "%s/does-not-exist", tmpdir);
        ck_assert_int_eq(secbuf_read_file(missing, 4096, true, &b), -ENOENT);
        ck_assert_int_eq(secbuf_read_file(tmpdir, 4096, true, &b), -EINVAL);
        ck_assert_int_eq(secbuf_read_file(write_file("x", "12345", 5), 4, true, &b), -EFBIG);
        ck_assert_ptr_null(b);
}
END_TEST

static Suite *secbuf_suite(void) {
        Suite *s = suite_create("secbuf");
        TCase *tc = tcase_create("core");

        tcase_add_unchecked_fixture(tc, setup_base, teardown_base);
        tcase_add_checked_fixture(tc, setup, NULL);
        tcase_add_test(tc, test_append_grows);
        tcase_add_test(tc, test_binary);
        tcase_add_test(tc, test_dup_equal);
        tcase_add_test(tc, test_read_file_strip);
        tcase_add_test(tc, test_read_file_large);
        tcase_add_test(tc, test_read_file_errors);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(secbuf_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
