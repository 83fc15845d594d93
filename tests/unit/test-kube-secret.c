/* SPDX-License-Identifier: MIT */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sinks/kube-secret.h"
#include "util/cleanup.h"

static SecretData *data(const char *const *kv) {
        SecretData *d = secret_data_new();
        ck_assert_ptr_nonnull(d);
        for (; kv[0]; kv += 2)
                ck_assert_int_eq(secret_data_set(d, kv[0], secbuf_new_from(kv[1], strlen(kv[1]))), 0);
        return d;
}

static KubeTarget target(CreationPolicy policy, const char *type) {
        static char *labels[] = { (char *) "app.kubernetes.io/part-of=chimera", NULL };
        static char *annotations[] = { (char *) "team=edge", NULL };
        return (KubeTarget) { .namespace = (char *) "chimera", .name = (char *) "postgres-secret",
                              .type = (char *) type, .creation_policy = policy, .labels = labels,
                              .annotations = annotations };
}

/* The published definition: sha256 of `jq -cjS .data` of the Secret, checked against
 * sha256sum of that text. */
START_TEST(test_data_hash) {
        _cleanup_secret_data_ SecretData *d = data((const char *[]) { "username", "chimera", "password", "pg-Pa$$w0rd", NULL });
        _cleanup_secret_data_ SecretData *empty = secret_data_new();
        char hash[KUBE_DATA_HASH_LEN + 1];

        ck_assert_int_eq(kube_secret_data_hash(d, hash), 0);
        ck_assert_str_eq(hash, "946e9082e6f8c556d787cfb89ebb6ea06169b74f6c8a4c9b2702e54d194bd246");
        ck_assert_int_eq(kube_secret_data_hash(empty, hash), 0);
        ck_assert_str_eq(hash, "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
}
END_TEST

START_TEST(test_apply_body_owner) {
        _cleanup_secret_data_ SecretData *d = data((const char *[]) { "password", "pg-Pa$$w0rd", "username", "chimera", NULL });
        _cleanup_secbuf_ SecBuf *b = NULL;
        KubeTarget t = target(CREATION_OWNER, "Opaque");

        ck_assert_int_eq(kube_secret_apply_body(&t, "postgres-credentials", d, "h", &b), 0);
        ck_assert_str_eq(secbuf_str(b),
                         "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"postgres-secret\","
                         "\"namespace\":\"chimera\",\"labels\":{\"app.kubernetes.io/managed-by\":\"secretsyncd\","
                         "\"app.kubernetes.io/part-of\":\"chimera\"},\"annotations\":{\"secretsyncd.io/secret\":"
                         "\"postgres-credentials\",\"secretsyncd.io/data-hash\":\"h\",\"team\":\"edge\"}},"
                         "\"type\":\"Opaque\",\"data\":{\"password\":\"cGctUGEkJHcwcmQ=\",\"username\":\"Y2hpbWVyYQ==\"}}");
}
END_TEST

/* merge: the Secret is someone else's: no label, no type, not their annotations. */
START_TEST(test_apply_body_merge) {
        _cleanup_secret_data_ SecretData *d = data((const char *[]) { "password", "x", NULL });
        _cleanup_secbuf_ SecBuf *b = NULL;
        KubeTarget t = target(CREATION_MERGE, NULL);

        ck_assert_int_eq(kube_secret_apply_body(&t, "s", d, "h", &b), 0);
        ck_assert_str_eq(secbuf_str(b),
                         "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"postgres-secret\","
                         "\"namespace\":\"chimera\",\"annotations\":{\"secretsyncd.io/secret\":\"s\","
                         "\"secretsyncd.io/data-hash\":\"h\"}},\"data\":{\"password\":\"eA==\"}}");
}
END_TEST

START_TEST(test_check) {
        static const struct {
                const char *type;
                const char *kv[7];
                int error;
                const char *message;
        } cases[] = {
                { "Opaque", { "ok.key-1_x", "v", NULL }, 0, NULL },
                { "Opaque", { "bad/key", "v", NULL }, -EINVAL, "key \"bad/key\" cannot be a Kubernetes Secret key" },
                { "Opaque", { "..", "v", NULL }, -EINVAL, "key \"..\"" },
                { "kubernetes.io/tls", { "tls.crt", "c", NULL }, -EINVAL, "needs keys tls.crt and tls.key" },
                { "kubernetes.io/tls", { "tls.crt", "c", "tls.key", "k", NULL }, 0, NULL },
                { "kubernetes.io/dockerconfigjson", { "x", "{}", NULL }, -EINVAL, "needs key .dockerconfigjson" },
                { "kubernetes.io/dockerconfigjson", { ".dockerconfigjson", "{not json", NULL }, -EINVAL, "must hold JSON" },
                { "kubernetes.io/dockerconfigjson", { ".dockerconfigjson", "{\"auths\":{}}", NULL }, 0, NULL },
                { "kubernetes.io/basic-auth", { "user", "x", NULL }, -EINVAL, "needs key username or password" },
                { "kubernetes.io/basic-auth", { "password", "x", NULL }, 0, NULL },
                { "kubernetes.io/ssh-auth", { "key", "x", NULL }, -EINVAL, "needs key ssh-privatekey" },
                { "kubernetes.io/service-account-token", { "token", "x", NULL }, -EINVAL, "not for synced secrets" },
                { "example.com/custom", { "anything", "x", NULL }, 0, NULL },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_secret_data_ SecretData *d = data(cases[i].kv);
                _cleanup_free_ char *error = NULL;
                KubeTarget t = target(CREATION_OWNER, cases[i].type);
                ck_assert_msg(kube_secret_check(&t, d, &error) == cases[i].error, "case %zu: %s", i, error);
                if (cases[i].message)
                        ck_assert_msg(error && strstr(error, cases[i].message), "case %zu: %s", i, error);
        }
}
END_TEST

START_TEST(test_check_size) {
        _cleanup_secret_data_ SecretData *d = secret_data_new();
        _cleanup_free_ char *error = NULL;
        KubeTarget t = target(CREATION_OWNER, "Opaque");
        SecBuf *big = secbuf_new(KUBE_SECRET_DATA_MAX);

        ck_assert_ptr_nonnull(big);
        big->len = KUBE_SECRET_DATA_MAX; /* zero bytes: fine for a size check */
        memset(big->data, 'a', big->len);
        ck_assert_int_eq(secret_data_set(d, "a", big), 0);
        ck_assert_int_eq(kube_secret_check(&t, d, &error), 0);
        ck_assert_int_eq(secret_data_set(d, "b", secbuf_new_from("x", 1)), 0);
        ck_assert_int_eq(kube_secret_check(&t, d, &error), -EFBIG);
        ck_assert_msg(strstr(error, "1048577 bytes, over Kubernetes' limit of 1048576") != NULL, "%s", error);
}
END_TEST

static void assert_value(const SecretData *d, const char *key, const char *expected) {
        const SecBuf *v = secret_data_get(d, key);
        ck_assert_msg(v != NULL, "no key %s", key);
        ck_assert_uint_eq(v->len, strlen(expected));
        ck_assert(memcmp(v->data, expected, v->len) == 0);
}

/* replace: only the template keys; merge: the data's keys too, a template key winning. */
START_TEST(test_render) {
        _cleanup_secret_data_ SecretData *d = data((const char *[]) { "password", "pw\"1", "user", "chimera", NULL });
        KubeTemplate tmpl[] = {
                { .key = (char *) "DATABASE_URL", .template_text = (char *) "postgres://{{ user }}:{{password}}@db/x" },
                { .key = (char *) "user", .template_text = (char *) "{{ user | base64 }}" },
                { .key = (char *) "cfg.json", .template_text = (char *) "{\"p\":{{ password | json }}}" },
        };
        KubeTarget t = target(CREATION_OWNER, "Opaque");
        t.templates = tmpl;
        t.n_templates = ELEMENTSOF(tmpl);

        {
                _cleanup_secret_data_ SecretData *out = NULL;
                ck_assert_int_eq(kube_secret_render(&t, d, &out, NULL), 0);
                ck_assert_uint_eq(out->n, 3);
                assert_value(out, "DATABASE_URL", "postgres://chimera:pw\"1@db/x");
                assert_value(out, "user", "Y2hpbWVyYQ==");
                assert_value(out, "cfg.json", "{\"p\":\"pw\\\"1\"}");
                ck_assert_ptr_null(secret_data_get(out, "password"));
        }
        t.merge_policy = MERGE_POLICY_MERGE;
        {
                _cleanup_secret_data_ SecretData *out = NULL;
                ck_assert_int_eq(kube_secret_render(&t, d, &out, NULL), 0);
                ck_assert_uint_eq(out->n, 4);
                assert_value(out, "password", "pw\"1");
                assert_value(out, "user", "Y2hpbWVyYQ=="); /* the template's, not the data's */
                assert_value(out, "DATABASE_URL", "postgres://chimera:pw\"1@db/x");
        }
        /* The data itself is left as it was. */
        assert_value(d, "user", "chimera");
}
END_TEST

START_TEST(test_render_unknown_key) {
        _cleanup_secret_data_ SecretData *d = data((const char *[]) { "password", "s3cr3t", NULL });
        _cleanup_secret_data_ SecretData *out = NULL;
        _cleanup_free_ char *m = NULL;
        KubeTemplate tmpl[] = { { .key = (char *) "DATABASE_URL", .template_text = (char *) "x\n{{ pasword }}" } };
        KubeTarget t = target(CREATION_OWNER, "Opaque");
        t.templates = tmpl;
        t.n_templates = 1;

        ck_assert_int_eq(kube_secret_render(&t, d, &out, &m), -ENOENT);
        ck_assert_ptr_null(out);
        ck_assert_str_eq(m, "template key \"DATABASE_URL\": template line 2: unknown key 'pasword'");
}
END_TEST

/* The 1 MiB limit is of what the Secret holds: a template replacing a data key of the same
 * name does not count twice; rendering stops at the first template past the limit. */
START_TEST(test_render_size) {
        _cleanup_free_ char *big = malloc(600 * 1024 + 1);
        ck_assert_ptr_nonnull(big);
        memset(big, 'x', 600 * 1024);
        big[600 * 1024] = 0;
        _cleanup_secret_data_ SecretData *d = data((const char *[]) { "big", big, NULL });
        KubeTemplate tmpl[] = { { .key = (char *) "big", .template_text = (char *) "{{ big }}" },
                                { .key = (char *) "copy", .template_text = (char *) "{{ big }}" } };
        KubeTarget t = target(CREATION_OWNER, "Opaque");
        t.templates = tmpl;
        t.n_templates = 1;
        t.merge_policy = MERGE_POLICY_MERGE;

        {
                _cleanup_secret_data_ SecretData *out = NULL;
                ck_assert_int_eq(kube_secret_render(&t, d, &out, NULL), 0);
                ck_assert_int_eq(kube_secret_check(&t, out, NULL), 0);
        }
        t.n_templates = 2;
        {
                _cleanup_secret_data_ SecretData *out = NULL;
                _cleanup_free_ char *m = NULL;
                ck_assert_int_eq(kube_secret_render(&t, d, &out, &m), -EFBIG);
                ck_assert_str_eq(m, "the data is over Kubernetes' limit of 1048576 bytes for a Secret once template "
                                    "key \"copy\" is rendered");
        }
}
END_TEST

int main(void) {
        Suite *s = suite_create("kube-secret");
        TCase *tc = tcase_create("core");
        tcase_add_test(tc, test_data_hash);
        tcase_add_test(tc, test_apply_body_owner);
        tcase_add_test(tc, test_apply_body_merge);
        tcase_add_test(tc, test_check);
        tcase_add_test(tc, test_check_size);
        tcase_add_test(tc, test_render);
        tcase_add_test(tc, test_render_unknown_key);
        tcase_add_test(tc, test_render_size);
        suite_add_tcase(s, tc);
        SRunner *sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
