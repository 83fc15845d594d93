/* SPDX-License-Identifier: MIT */
#include <check.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "util/secret-data.h"
#include "util/cleanup.h"
#include "util/secbuf.h"
#include "util/template.h"

static void set(SecretData *d, const char *key, const void *value, size_t len) {
        ck_assert_int_eq(secret_data_set(d, key, secbuf_new_from(value, len)), 0);
}

/* A SecretData from NULL-terminated key, value string pairs. */
static SecretData *data_of(const char *key, ...) {
        SecretData *d = secret_data_new();
        va_list ap;

        ck_assert_ptr_nonnull(d);
        va_start(ap, key);
        for (const char *k = key; k; k = va_arg(ap, const char *)) {
                const char *v = va_arg(ap, const char *);
                set(d, k, v, strlen(v));
        }
        va_end(ap);
        return d;
}

/* Renders and checks the output byte for byte. */
static void assert_render(const SecretData *d, const char *tmpl, const void *expected, size_t expected_len) {
        _cleanup_secbuf_ SecBuf *out = NULL;
        _cleanup_free_ char *error = NULL;

        ck_assert_msg(template_render(tmpl, d, &out, &error) == 0, "render of '%s' failed: %s", tmpl, strna(error));
        ck_assert_ptr_null(error);
        ck_assert_uint_eq(out->len, expected_len);
        ck_assert_msg(memcmp(out->data, expected, expected_len) == 0, "'%s' rendered as '%s'", tmpl,
                      secbuf_str(out));
}
#define assert_render_str(d, tmpl, expected) assert_render(d, tmpl, expected, strlen(expected))

/* Expects failure r, with an error message that holds every one of the given fragments. */
static void assert_render_fails(const SecretData *d, const char *tmpl, int r, const char *fragment, ...) {
        _cleanup_secbuf_ SecBuf *out = NULL;
        _cleanup_free_ char *error = NULL;
        va_list ap;

        ck_assert_int_eq(template_render(tmpl, d, &out, &error), r);
        ck_assert_ptr_null(out);
        ck_assert_ptr_nonnull(error);
        va_start(ap, fragment);
        for (const char *f = fragment; f; f = va_arg(ap, const char *))
                ck_assert_msg(strstr(error, f), "message '%s' lacks '%s'", error, f);
        va_end(ap);
}

START_TEST(test_plain_substitution) {
        _cleanup_secret_data_ SecretData *d = data_of("user", "alice", "pass", "s3cr3t", NULL);

        assert_render_str(d, "", "");
        assert_render_str(d, "no expressions at all\n", "no expressions at all\n");
        assert_render_str(d, "u={{ user }} p={{pass}}\n", "u=alice p=s3cr3t\n");
        assert_render_str(d, "{{\tuser\t}}{{  pass  }}", "alices3cr3t");
        /* What is not an expression is copied verbatim. */
        assert_render_str(d, "} }} { {x} {user}\n", "} }} { {x} {user}\n");
}
END_TEST

START_TEST(test_key_charset) {
        _cleanup_secret_data_ SecretData *d = data_of("a-b.c_D9", "ok", NULL);

        assert_render_str(d, "[{{ a-b.c_D9 }}]", "[ok]");
}
END_TEST

START_TEST(test_base64) {
        static const struct {
                const char *in, *out;
        } vectors[] = {
                /* RFC 4648, section 10 */
                { "", "" },          { "f", "Zg==" },         { "fo", "Zm8=" },         { "foo", "Zm9v" },
                { "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
        };

        for (size_t i = 0; i < ELEMENTSOF(vectors); i++) {
                _cleanup_secret_data_ SecretData *d = data_of("k", vectors[i].in, NULL);
                assert_render_str(d, "{{ k | base64 }}", vectors[i].out);
                assert_render_str(d, "{{k|base64}}", vectors[i].out);
        }
}
END_TEST

START_TEST(test_base64_binary) {
        _cleanup_secret_data_ SecretData *d = secret_data_new();
        static const unsigned char bin[] = { 0x00, 0xff, 0xfe, 0x01, 0x80 };

        set(d, "bin", bin, sizeof(bin));
        assert_render_str(d, "key: {{ bin | base64 }}\n", "key: AP/+AYA=\n");
        /* Without a filter the bytes go through as they are, NUL included. */
        assert_render(d, "<{{ bin }}>", "<\x00\xff\xfe\x01\x80>", 7);
}
END_TEST

START_TEST(test_json) {
        _cleanup_secret_data_ SecretData *d = secret_data_new();
        static const char v[] = "a\"b\\c/\n\t\r\b\f\x01\x1f\x7f caf\xc3\xa9 \xe6\x97\xa5 \xf0\x9f\x98\x80";

        set(d, "v", v, sizeof(v) - 1);
        set(d, "empty", "", 0);
        set(d, "nul", "a\0b", 3);
        assert_render_str(d, "{\"v\": {{ v | json }}}",
                          "{\"v\": \"a\\\"b\\\\c/\\n\\t\\r\\b\\f\\u0001\\u001f\x7f caf\xc3\xa9 \xe6\x97\xa5 \xf0\x9f\x98\x80\"}");
        assert_render_str(d, "{{empty|json}}", "\"\"");
        assert_render_str(d, "{{ nul | json }}", "\"a\\u0000b\"");
}
END_TEST

START_TEST(test_json_invalid_utf8) {
        _cleanup_secret_data_ SecretData *d = secret_data_new();

        set(d, "bad", "ok\xff", 3);
        assert_render_fails(d, "line one\n{{ bad | json }}", -EILSEQ, "'bad'", "line 2", "UTF-8", NULL);
        /* base64 takes any bytes. */
        assert_render_str(d, "{{ bad | base64 }}", "b2v/");
}
END_TEST

START_TEST(test_unknown_key) {
        _cleanup_secret_data_ SecretData *d = data_of("user", "topsecretvalue", NULL);
        _cleanup_free_ char *error = NULL;
        _cleanup_secbuf_ SecBuf *out = NULL;

        assert_render_fails(d, "a\nb {{ user }}\nc {{ nope }}\n", -ENOENT, "'nope'", "line 3", NULL);
        ck_assert_int_lt(template_render("{{ user }} {{ nope | json }}", d, &out, &error), 0);
        ck_assert_ptr_nonnull(error);
        ck_assert_ptr_null(strstr(error, "topsecretvalue"));
}
END_TEST

START_TEST(test_unknown_filter) {
        _cleanup_secret_data_ SecretData *d = data_of("user", "alice", NULL);

        assert_render_fails(d, "\n\n\n{{ user | upper }}", -EINVAL, "'upper'", "line 4", "base64", NULL);
        assert_render_fails(d, "{{ user | }}", -EINVAL, "filter", "line 1", NULL);
}
END_TEST

START_TEST(test_syntax_errors) {
        _cleanup_secret_data_ SecretData *d = data_of("user", "alice", NULL);

        assert_render_fails(d, "ok\n{{ user", -EINVAL, "unterminated", "line 2", NULL);
        assert_render_fails(d, "{{ user \n }}", -EINVAL, "unterminated", "line 1", NULL);
        assert_render_fails(d, "x {{", -EINVAL, "unterminated", "line 1", NULL);
        assert_render_fails(d, "{{ }}", -EINVAL, "key name", "line 1", NULL);
        assert_render_fails(d, "{{ us$er }}", -EINVAL, "line 1", NULL);
        assert_render_fails(d, "\n{{ user user }}", -EINVAL, "line 2", NULL);
        assert_render_fails(d, "{{ user | json json }}", -EINVAL, "line 1", NULL);
        /* Lines are the template's, whatever newlines the values bring. */
        _cleanup_secret_data_ SecretData *m = data_of("multi", "1\n2\n3\n", NULL);
        assert_render_fails(m, "{{ multi }}\n{{ multi }}\n{{ gone }}", -ENOENT, "line 3", NULL);
}
END_TEST

START_TEST(test_output_limit) {
        _cleanup_secret_data_ SecretData *d = secret_data_new();
        _cleanup_free_ char *big = malloc(1024 * 1024);
        char tmpl[17 * sizeof("{{ big }}")] = "";

        ck_assert_ptr_nonnull(big);
        memset(big, 'x', 1024 * 1024);
        set(d, "big", big, 1024 * 1024);
        for (int i = 0; i < 17; i++)
                strcat(tmpl, "{{ big }}");
        assert_render_fails(d, tmpl, -EFBIG, "MiB", NULL);
}
END_TEST

START_TEST(test_check) {
        char *keys[] = { (char *) "user", (char *) "pass", NULL };
        _cleanup_free_ char *e1 = NULL, *e2 = NULL, *e3 = NULL, *e4 = NULL;

        ck_assert_int_eq(template_check("{{ user }}:{{ pass | base64 }}", keys, true, NULL), 0);
        ck_assert_int_eq(template_check("x\n{{ other }}", keys, true, &e1), -ENOENT);
        ck_assert_ptr_nonnull(strstr(e1, "'other'"));
        ck_assert_ptr_nonnull(strstr(e1, "line 2"));
        /* data_from may still bring it. */
        ck_assert_int_eq(template_check("{{ other }}", keys, false, NULL), 0);
        ck_assert_int_eq(template_check("{{ other }}", NULL, false, NULL), 0);
        /* Syntax is checked either way. */
        ck_assert_int_eq(template_check("{{ other | rot13 }}", keys, false, &e2), -EINVAL);
        ck_assert_ptr_nonnull(strstr(e2, "'rot13'"));
        ck_assert_int_eq(template_check("{{ other", NULL, false, &e3), -EINVAL);
        ck_assert_ptr_nonnull(strstr(e3, "unterminated"));
        ck_assert_int_eq(template_check("{{ user }}", NULL, true, &e4), -ENOENT);
}
END_TEST

START_TEST(test_utf8_validation) {
        ck_assert(template_utf8_valid("", 0, true));
        ck_assert(template_utf8_valid("a\0b", 3, true));
        ck_assert(template_utf8_valid("caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80", 17, true));
        ck_assert(template_utf8_valid("\xef\xbf\xbd\xf4\x8f\xbf\xbd", 7, true)); /* U+FFFD, U+10FFFD */
        ck_assert(!template_utf8_valid("\xff", 1, false));
        ck_assert(!template_utf8_valid("\x80", 1, false));         /* lone continuation */
        ck_assert(!template_utf8_valid("\xc3", 1, false));         /* truncated */
        ck_assert(!template_utf8_valid("\xc0\xaf", 2, false));     /* overlong '/' */
        ck_assert(!template_utf8_valid("\xe0\x80\xaf", 3, false)); /* overlong '/' */
        ck_assert(!template_utf8_valid("\xed\xa0\x80", 3, false)); /* surrogate */
        ck_assert(!template_utf8_valid("\xf4\x90\x80\x80", 4, false)); /* past U+10FFFF */
        ck_assert(!template_utf8_valid("\xe6\x97", 2, false));
        /* Noncharacters: valid UTF-8, refused by systemd. */
        ck_assert(template_utf8_valid("\xef\xb7\x90", 3, false));
        ck_assert(!template_utf8_valid("\xef\xb7\x90", 3, true)); /* U+FDD0 */
        ck_assert(!template_utf8_valid("\xef\xbf\xbe", 3, true)); /* U+FFFE */
        ck_assert(!template_utf8_valid("\xf0\x9f\xbf\xbf", 4, true)); /* U+1FFFF */
}
END_TEST

static Suite *template_suite(void) {
        Suite *s = suite_create("template");
        TCase *tc = tcase_create("core");

        tcase_set_timeout(tc, 30);
        tcase_add_test(tc, test_plain_substitution);
        tcase_add_test(tc, test_key_charset);
        tcase_add_test(tc, test_base64);
        tcase_add_test(tc, test_base64_binary);
        tcase_add_test(tc, test_json);
        tcase_add_test(tc, test_json_invalid_utf8);
        tcase_add_test(tc, test_unknown_key);
        tcase_add_test(tc, test_unknown_filter);
        tcase_add_test(tc, test_syntax_errors);
        tcase_add_test(tc, test_output_limit);
        tcase_add_test(tc, test_check);
        tcase_add_test(tc, test_utf8_validation);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(template_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
