/* SPDX-License-Identifier: MIT */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/secret-data.h"
#include "util/cleanup.h"
#include "util/json.h"
#include "util/secbuf.h"

/* json_secret_property on doc (len bytes) must give exactly expected (expected_len bytes). */
static void assert_property_n(const char *doc, size_t len, const char *path, const void *expected,
                              size_t expected_len) {
        _cleanup_secbuf_ SecBuf *in = secbuf_new_from(doc, len);
        _cleanup_secbuf_ SecBuf *out = NULL;
        int r = json_secret_property(in, path, &out);

        ck_assert_msg(r == 0, "property '%s' of %s failed: %d", path, doc, r);
        ck_assert_msg(out->len == expected_len && memcmp(out->data, expected, expected_len) == 0,
                      "property '%s' of %s is '%s'", path, doc, secbuf_str(out));
        ck_assert_uint_eq(out->data[out->len], 0);
}
#define assert_property(doc, path, expected) assert_property_n(doc, strlen(doc), path, expected, strlen(expected))

static void assert_property_fails_n(const char *doc, size_t len, const char *path, int expected) {
        _cleanup_secbuf_ SecBuf *in = secbuf_new_from(doc, len);
        SecBuf *out = NULL;

        ck_assert_msg(json_secret_property(in, path, &out) == expected, "property '%s' of '%s' did not fail with %d",
                      path, doc, expected);
        ck_assert_ptr_null(out);
}
#define assert_property_fails(doc, path, expected) assert_property_fails_n(doc, strlen(doc), path, expected)

/* depth nested arrays around an empty object, inside a top-level object: {"k":[[...{}...]]} */
static char *nested(unsigned depth) {
        char *s = malloc(2 * depth + 16);
        size_t n = 0;

        ck_assert_ptr_nonnull(s);
        n += (size_t) sprintf(s, "{\"k\":");
        for (unsigned i = 0; i < depth; i++)
                s[n++] = '[';
        s[n++] = '{';
        s[n++] = '}';
        for (unsigned i = 0; i < depth; i++)
                s[n++] = ']';
        s[n++] = '}';
        s[n] = 0;
        return s;
}

START_TEST(test_top_level) {
        const char *doc = "{\"user\":\"alice\",\"password\":\"s3cr3t\",\"empty\":\"\"}";

        assert_property(doc, "password", "s3cr3t");
        assert_property(doc, "user", "alice");
        assert_property(doc, "empty", "");
        assert_property(" \n{ \"a\" : \"b\" }\r\n\t ", "a", "b"); /* white space around is fine */
}
END_TEST

START_TEST(test_nested_path) {
        const char *doc = "{\"db\":{\"password\":\"nested\",\"inner\":{\"deep\":\"x\"}},\"db.user\":\"lit\","
                          "\"a.b\":\"literal\",\"a\":{\"b\":\"nested\"}}";

        assert_property(doc, "db.password", "nested");
        assert_property(doc, "db.inner.deep", "x");
        assert_property(doc, "db.user", "lit");
        /* A literal key containing a dot wins over the nested path. */
        assert_property(doc, "a.b", "literal");
        assert_property_fails(doc, "db.nope", -ENOENT);
        assert_property_fails(doc, "db.password.x", -ENOENT); /* a string has no members */
        assert_property_fails(doc, "nope.password", -ENOENT);
        assert_property_fails(doc, "nope", -ENOENT);
        assert_property_fails(doc, "Password", -ENOENT);
}
END_TEST

START_TEST(test_non_string_values) {
        const char *doc = "{ \"n\": 42, \"neg\": -7, \"f\": 1.5, \"t\": true, \"no\": false, \"z\": null,\n"
                          "  \"o\": { \"a\": 1, \"b\": [ 1, \"two\", { } ], \"c\": \"x/y\" }, \"arr\": [ ] }";

        assert_property(doc, "n", "42");
        assert_property(doc, "neg", "-7");
        assert_property(doc, "f", "1.5");
        assert_property(doc, "t", "true");
        assert_property(doc, "no", "false");
        assert_property(doc, "z", ""); /* as gjson's String() gives it in ESO */
        assert_property(doc, "o", "{\"a\":1,\"b\":[1,\"two\",{}],\"c\":\"x/y\"}");
        assert_property(doc, "o.b", "[1,\"two\",{}]");
        assert_property(doc, "arr", "[]");
}
END_TEST

START_TEST(test_escapes_and_utf8) {
        /* \u escapes (with a surrogate pair and an escaped NUL), raw UTF-8, and the short escapes. */
        const char *doc = "{\"e\":\"caf\\u00e9 \\ud83d\\ude00\",\"raw\":\"gr\xc3\xbc\xc3\x9f \xe2\x82\xac\","
                          "\"nul\":\"a\\u0000b\",\"esc\":\"q\\\"b\\\\s\\/n\\nt\\tr\\r\",\"k\\u00e9y\":\"v\"}";

        assert_property(doc, "e", "caf\xc3\xa9 \xf0\x9f\x98\x80");
        assert_property(doc, "raw", "gr\xc3\xbc\xc3\x9f \xe2\x82\xac");
        assert_property_n(doc, strlen(doc), "nul", "a\0b", 3);
        assert_property(doc, "esc", "q\"b\\s/n\nt\tr\r");
        assert_property(doc, "k\xc3\xa9y", "v");
}
END_TEST

START_TEST(test_bad_documents) {
        static const char *const bad[] = {
                "",
                "   ",
                "not json",
                "\"a string\"",
                "42",
                "null",
                "{\"a\":\"b\"} x",
                "{\"a\":\"b\"}{}",
                "{\"a\":\"b\"},",
                "{\"a\":\"b\"",
                "{\"a\":\"b\",}",   /* strict: no trailing comma */
                "{'a':'b'}",        /* strict: no single quotes */
                "{\"a\":\"b\" /* comment */}",
        };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                assert_property_fails(bad[i], "a", -EBADMSG);
        /* Bytes after the document are garbage, a NUL byte too. */
        assert_property_fails_n("{\"a\":\"b\"}\0", 10, "a", -EBADMSG);
        assert_property_fails_n("{\"a\":\"b\"}\n\0\n", 12, "a", -EBADMSG);
}
END_TEST

START_TEST(test_array_index) {
        const char *doc = "{\"hosts\":[{\"name\":\"db-0\",\"port\":5432},{\"name\":\"db-1\",\"tags\":[\"a\",\"b\"]}],"
                          "\"m\":{\"0\":\"zero-key\"},\"e\":[]}";

        assert_property(doc, "hosts.0.name", "db-0");
        assert_property(doc, "hosts.1.name", "db-1");
        assert_property(doc, "hosts.0.port", "5432");
        assert_property(doc, "hosts.1.tags.1", "b");
        assert_property(doc, "hosts.0", "{\"name\":\"db-0\",\"port\":5432}");
        assert_property(doc, "m.0", "zero-key"); /* in an object, digits are a key */
        assert_property(doc, "hosts.00.name", "db-0"); /* as gjson reads the index */
        assert_property_fails(doc, "hosts.2.name", -ENOENT);
        assert_property_fails(doc, "hosts.-1.name", -ENOENT);
        assert_property_fails(doc, "hosts.name", -ENOENT);
        assert_property_fails(doc, "hosts.1x", -ENOENT);
        assert_property_fails(doc, "e.0", -ENOENT);
        assert_property_fails(doc, "hosts.99999999999999999999", -ENOENT);
        /* A document that is an array is indexed too. */
        assert_property("[\"a\",{\"b\":\"c\"}]", "1.b", "c");
        assert_property("[\"a\",\"b\"]", "0", "a");
        assert_property_fails("[\"a\",\"b\"]", "a", -ENOENT);
}
END_TEST

START_TEST(test_escaped_dots) {
        const char *doc = "{\"fav.movie\":\"top\",\"fav\":{\"movie\":\"nested\"},"
                          "\"cfg\":{\"a.b\":\"escaped\",\"a\":{\"b\":\"deep\"}},\"back\\\\slash\":\"bs\"}";

        /* The whole path as one top-level key wins, as ESO looks it up first. */
        assert_property(doc, "fav.movie", "top");
        assert_property(doc, "fav\\.movie", "top");
        assert_property(doc, "cfg.a.b", "deep");
        assert_property(doc, "cfg.a\\.b", "escaped");
        assert_property(doc, "back\\\\slash", "bs");
}
END_TEST

START_TEST(test_path_check) {
        static const char *const good[] = { "a", "db.password", "hosts.0.name", "fav\\.movie", "a\\*b", "key#1",
                                            "x.y@z", "\\#count", "a-b_c.d" };
        static const char *const bad[] = { "", ".a", "a.", "a..b", "a\\", "a*", "h?sts", "a|b", "hosts.#",
                                           "hosts.#(name==x)", "a.@reverse", "!true", "[a,b]", "{a}" };

        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                _cleanup_free_ char *m = NULL;
                ck_assert_msg(json_property_path_check(good[i], &m) == 0, "'%s' refused: %s", good[i], m);
        }
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_free_ char *m = NULL;
                ck_assert_msg(json_property_path_check(bad[i], &m) == -EINVAL, "'%s' accepted", bad[i]);
                ck_assert_ptr_nonnull(m);
        }
}
END_TEST

START_TEST(test_depth_limit) {
        /* The document's own object is one level, the empty object at the bottom another. */
        _cleanup_free_ char *ok = nested(JSON_DEPTH_MAX - 2);
        _cleanup_free_ char *deep = nested(JSON_DEPTH_MAX - 1);
        _cleanup_free_ char *deeper = nested(1000);
        json_object *o = NULL;

        ck_assert_int_eq(json_parse_strict(ok, strlen(ok), &o), 0);
        json_put_wiped(o);
        o = NULL;
        ck_assert_int_eq(json_parse_strict(deep, strlen(deep), &o), -ELOOP);
        ck_assert_int_eq(json_parse_strict(deeper, strlen(deeper), &o), -ELOOP);
        ck_assert_ptr_null(o);

        assert_property_fails(deep, "k", -EBADMSG);
        assert_property_fails(deeper, "k", -EBADMSG);
        {
                _cleanup_secbuf_ SecBuf *in = secbuf_new_from(ok, strlen(ok));
                _cleanup_secbuf_ SecBuf *out = NULL;
                ck_assert_int_eq(json_secret_property(in, "k", &out), 0);
                ck_assert_uint_eq(out->len, strlen(ok) - 6);
        }
}
END_TEST

START_TEST(test_extract) {
        const char *doc = "{\"zeta\":\"last\",\"alpha\":\"first\",\"num\":7,\"obj\":{\"x\":[true,null]},"
                          "\"m\\u00fc\":\"\\u00fc\",\"nul\":\"a\\u0000b\"}";
        static const struct {
                const char *key;
                const char *value;
                size_t len;
        } expected[] = {
                /* strcmp order */
                { "alpha", "first", 5 },  { "m\xc3\xbc", "\xc3\xbc", 2 }, { "nul", "a\0b", 3 },
                { "num", "7", 1 },        { "obj", "{\"x\":[true,null]}", 17 }, { "zeta", "last", 4 },
        };
        _cleanup_secbuf_ SecBuf *in = secbuf_new_from(doc, strlen(doc));
        _cleanup_secret_data_ SecretData *d = secret_data_new();

        ck_assert_int_eq(json_secret_extract(in, d), 0);
        ck_assert_uint_eq(d->n, ELEMENTSOF(expected));
        for (size_t i = 0; i < ELEMENTSOF(expected); i++) {
                ck_assert_str_eq(d->entries[i].key, expected[i].key);
                ck_assert_uint_eq(d->entries[i].value->len, expected[i].len);
                ck_assert(memcmp(d->entries[i].value->data, expected[i].value, expected[i].len) == 0);
        }
}
END_TEST

START_TEST(test_extract_bad) {
        static const char *const bad[] = { "[1,2]", "\"s\"", "{\"a\":1} junk", "{", "" };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_secbuf_ SecBuf *in = secbuf_new_from(bad[i], strlen(bad[i]));
                _cleanup_secret_data_ SecretData *d = secret_data_new();
                ck_assert_msg(json_secret_extract(in, d) == -EBADMSG, "'%s' was extracted", bad[i]);
                ck_assert_uint_eq(d->n, 0);
        }
        {
                _cleanup_free_ char *deep = nested(JSON_DEPTH_MAX);
                _cleanup_secbuf_ SecBuf *in = secbuf_new_from(deep, strlen(deep));
                _cleanup_secret_data_ SecretData *d = secret_data_new();
                ck_assert_int_eq(json_secret_extract(in, d), -EBADMSG);
        }
}
END_TEST

static Suite *json_suite(void) {
        Suite *s = suite_create("json");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_top_level);
        tcase_add_test(tc, test_nested_path);
        tcase_add_test(tc, test_non_string_values);
        tcase_add_test(tc, test_escapes_and_utf8);
        tcase_add_test(tc, test_bad_documents);
        tcase_add_test(tc, test_array_index);
        tcase_add_test(tc, test_escaped_dots);
        tcase_add_test(tc, test_path_check);
        tcase_add_test(tc, test_depth_limit);
        tcase_add_test(tc, test_extract);
        tcase_add_test(tc, test_extract_bad);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(json_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
