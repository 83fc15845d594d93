/* SPDX-License-Identifier: MIT */
/* kube_token_parse(): what a TokenRequest answer must hold, as the API reference shows it. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube/kube-token.h"
#include "util/json.h"

static int parse(const char *text, SecBuf **ret_token, int64_t *ret_exp) {
        json_object *o = NULL;
        ck_assert_int_eq(json_parse_strict(text, strlen(text), &o), 0);
        int r = kube_token_parse(o, ret_token, ret_exp);
        json_put_wiped(o);
        return r;
}

START_TEST(test_answer) {
        SecBuf *t = NULL;
        int64_t exp = 0;
        ck_assert_int_eq(parse("{\"kind\":\"TokenRequest\",\"apiVersion\":\"authentication.k8s.io/v1\","
                               "\"metadata\":{\"name\":\"sa\",\"namespace\":\"chimera\",\"creationTimestamp\":null},"
                               "\"spec\":{\"audiences\":[\"vault\"],\"expirationSeconds\":3600,\"boundObjectRef\":null},"
                               "\"status\":{\"token\":\"eyJ.a.b\",\"expirationTimestamp\":\"2026-11-29T13:00:00Z\"}}",
                               &t, &exp),
                         0);
        ck_assert_str_eq(secbuf_str(t), "eyJ.a.b");
        ck_assert_int_eq(exp, 1795957200);
        secbuf_free(t);
        /* metav1.Time may carry a fraction. */
        ck_assert_int_eq(parse("{\"status\":{\"token\":\"x\",\"expirationTimestamp\":\"1970-01-01T00:01:00.250Z\"}}", &t,
                               &exp),
                         0);
        ck_assert_int_eq(exp, 60);
        secbuf_free(t);
}
END_TEST

START_TEST(test_malformed) {
        static const char *const bad[] = {
                "{}",
                "{\"status\":{}}",
                "{\"status\":{\"token\":\"x\"}}",
                "{\"status\":{\"expirationTimestamp\":\"2026-11-29T13:00:00Z\"}}",
                "{\"status\":{\"token\":\"\",\"expirationTimestamp\":\"2026-11-29T13:00:00Z\"}}",
                "{\"status\":{\"token\":7,\"expirationTimestamp\":\"2026-11-29T13:00:00Z\"}}",
                "{\"status\":{\"token\":\"x\",\"expirationTimestamp\":\"2026-11-29 13:00:00\"}}",
                "{\"status\":{\"token\":\"x\",\"expirationTimestamp\":\"2026-11-29T13:00:00+01:00\"}}",
                "{\"status\":{\"token\":\"x\",\"expirationTimestamp\":3600}}",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                SecBuf *t = NULL;
                int64_t exp = -7;
                ck_assert_msg(parse(bad[i], &t, &exp) == -EBADMSG, "%s", bad[i]);
                ck_assert_ptr_null(t);
                ck_assert_int_eq(exp, -7);
        }
        ck_assert_int_eq(kube_token_parse(NULL, &(SecBuf *) { NULL }, &(int64_t) { 0 }), -EBADMSG);
}
END_TEST

START_TEST(test_oversize) {
        size_t n = KUBE_TOKEN_SIZE_MAX + 1;
        char *text = malloc(n + 100), *p = text;
        ck_assert_ptr_nonnull(text);
        p += sprintf(p, "{\"status\":{\"expirationTimestamp\":\"2026-11-29T13:00:00Z\",\"token\":\"");
        memset(p, 'a', n);
        strcpy(p + n, "\"}}");
        SecBuf *t = NULL;
        int64_t exp = 0;
        ck_assert_int_eq(parse(text, &t, &exp), -EFBIG);
        ck_assert_ptr_null(t);
        free(text);
}
END_TEST

int main(void) {
        Suite *s = suite_create("kube-token");
        TCase *tc = tcase_create("core");
        tcase_add_test(tc, test_answer);
        tcase_add_test(tc, test_malformed);
        tcase_add_test(tc, test_oversize);
        suite_add_tcase(s, tc);
        SRunner *sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
