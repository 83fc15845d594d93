/* SPDX-License-Identifier: MIT */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kube/kubeconfig.h"
#include "util/cleanup.h"

static char base[] = "/tmp/test-kubeconfig.XXXXXX";

static void setup_base(void) {
        ck_assert_ptr_nonnull(mkdtemp(base));
}

static void teardown_base(void) {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
        ck_assert_int_eq(system(cmd), 0);
}

static const char *write_file(const char *name, const char *content, mode_t mode) {
        static char path[256];
        snprintf(path, sizeof(path), "%s/%s", base, name);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, content, strlen(content)), (ssize_t) strlen(content));
        ck_assert_int_eq(fchmod(fd, mode), 0);
        close(fd);
        return path;
}

static int parse(const char *text, KubeConnection **ret, char **error) {
        return kubeconfig_parse("/etc/secretsyncd/kubeconfig", text, strlen(text), ret, error);
}

/* As k3s writes /etc/rancher/k3s/k3s.yaml: everything inline. */
static const char k3s[] = "apiVersion: v1\n"
                          "clusters:\n"
                          "- cluster:\n"
                          "    certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCkNBCg==\n"
                          "    server: https://127.0.0.1:6443/\n"
                          "  name: default\n"
                          "contexts:\n"
                          "- context:\n"
                          "    cluster: default\n"
                          "    user: default\n"
                          "    namespace: chimera\n"
                          "  name: default\n"
                          "current-context: default\n"
                          "kind: Config\n"
                          "preferences: {}\n"
                          "users:\n"
                          "- name: default\n"
                          "  user:\n"
                          "    client-certificate-data: Q0VSVA==\n"
                          "    client-key-data: S0VZ\n";

START_TEST(test_k3s_inline) {
        _cleanup_(kube_connection_freep) KubeConnection *c = NULL;
        _cleanup_free_ char *error = NULL;

        ck_assert_int_eq(parse(k3s, &c, &error), 0);
        ck_assert_str_eq(c->server, "https://127.0.0.1:6443");
        ck_assert_str_eq(c->ca_pem, "-----BEGIN CERTIFICATE-----\nCA\n");
        ck_assert_ptr_null(c->ca_file);
        ck_assert_str_eq(c->cert_pem, "CERT");
        ck_assert_str_eq(secbuf_str(c->key_pem), "KEY");
        ck_assert_ptr_null(c->token);
        ck_assert_str_eq(c->namespace, "chimera");
        ck_assert_str_eq(c->source, "kubeconfig /etc/secretsyncd/kubeconfig");
}
END_TEST

/* Files relative to the kubeconfig's directory, as kubectl reads them; a token; the context
 * chosen by current-context among several. */
START_TEST(test_files_and_context) {
        static const char text[] = "clusters:\n"
                                   "- name: edge\n  cluster: { server: 'https://10.0.0.1:6443', certificate-authority: pki/ca.crt }\n"
                                   "- name: other\n  cluster: { server: 'https://other' }\n"
                                   "contexts:\n"
                                   "- name: a\n  context: { cluster: other, user: u1 }\n"
                                   "- name: b\n  context: { cluster: edge, user: u2 }\n"
                                   "current-context: b\n"
                                   "users:\n"
                                   "- name: u1\n  user: { token: not-this-one }\n"
                                   "- name: u2\n  user:\n    tokenFile: /var/run/token\n"
                                   "    client-certificate: /abs/client.crt\n    client-key: client.key\n";
        _cleanup_(kube_connection_freep) KubeConnection *c = NULL;
        _cleanup_free_ char *error = NULL;

        ck_assert_int_eq(parse(text, &c, &error), 0);
        ck_assert_str_eq(c->server, "https://10.0.0.1:6443");
        ck_assert_str_eq(c->ca_file, "/etc/secretsyncd/pki/ca.crt");
        ck_assert_str_eq(c->token_file, "/var/run/token");
        ck_assert_ptr_null(c->token);
        ck_assert_str_eq(c->cert_file, "/abs/client.crt");
        ck_assert_str_eq(c->key_file, "/etc/secretsyncd/client.key");
        ck_assert_ptr_null(c->namespace);
}
END_TEST

START_TEST(test_token) {
        static const char text[] = "clusters: [ { name: c, cluster: { server: 'https://k' } } ]\n"
                                   "contexts: [ { name: x, context: { cluster: c, user: u } } ]\n"
                                   "current-context: x\n"
                                   "users: [ { name: u, user: { token: \"abc.def\" } } ]\n";
        _cleanup_(kube_connection_freep) KubeConnection *c = NULL;
        _cleanup_free_ char *error = NULL;

        ck_assert_int_eq(parse(text, &c, &error), 0);
        ck_assert_str_eq(secbuf_str(c->token), "abc.def");
        ck_assert_ptr_null(c->ca_file);
        ck_assert_ptr_null(c->ca_pem);
}
END_TEST

/* Each refused input names the file, the line and what to do. */
START_TEST(test_errors) {
        static const struct {
                const char *text, *error;
        } cases[] = {
                { "clusters: [\n", "/etc/secretsyncd/kubeconfig:2: not valid YAML" },
                { "- a\n- b\n", "/etc/secretsyncd/kubeconfig:1: not a kubeconfig" },
                { "clusters: []\ncurrent-context: \"\"\n", "/etc/secretsyncd/kubeconfig:2: no current-context is set" },
                { "clusters: []\n", "/etc/secretsyncd/kubeconfig:1: no current-context is set" },
                { "contexts: []\ncurrent-context: x\n", "/etc/secretsyncd/kubeconfig:2: context \"x\" is not among the contexts" },
                { "contexts: [ { name: x, context: { cluster: c } } ]\ncurrent-context: x\nclusters:\n- name: c\n  cluster:\n    certificate-authority: /ca\n",
                  "/etc/secretsyncd/kubeconfig:6: cluster \"c\" has no server" },
                { "contexts: [ { name: x, context: { cluster: c } } ]\ncurrent-context: x\nclusters:\n- name: c\n  cluster:\n    server: http://k8s:8080\n",
                  "/etc/secretsyncd/kubeconfig:6: cluster \"c\": server \"http://k8s:8080\" must be an https:// URL" },
                { "contexts: [ { name: x, context: { cluster: c } } ]\ncurrent-context: x\nclusters:\n- name: c\n  cluster:\n    server: https://k\n    insecure-skip-tls-verify: true\n",
                  "/etc/secretsyncd/kubeconfig:7: cluster \"c\": insecure-skip-tls-verify is refused" },
                { "contexts: [ { name: x, context: { cluster: c } } ]\ncurrent-context: x\nclusters:\n- name: c\n  cluster:\n    server: https://k\n    certificate-authority-data: '%%%'\n",
                  "/etc/secretsyncd/kubeconfig:7: certificate-authority-data is not valid base64" },
                { "contexts: [ { name: x, context: { cluster: c } } ]\ncurrent-context: x\nclusters:\n- name: c\n  cluster:\n    server: https://k\n    certificate-authority: /a\n    certificate-authority-data: QQ==\n",
                  "/etc/secretsyncd/kubeconfig:8: certificate-authority and certificate-authority-data are both set" },
                { "contexts: [ { name: x, context: { cluster: c, user: u } } ]\ncurrent-context: x\nclusters: [ { name: c, cluster: { server: 'https://k' } } ]\n"
                  "users:\n- name: u\n  user:\n    exec:\n      command: aws\n",
                  "/etc/secretsyncd/kubeconfig:7: user \"u\": exec credential plugins are not supported" },
                { "contexts: [ { name: x, context: { cluster: c, user: u } } ]\ncurrent-context: x\nclusters: [ { name: c, cluster: { server: 'https://k' } } ]\n"
                  "users:\n- name: u\n  user:\n    client-certificate: /c.crt\n",
                  "/etc/secretsyncd/kubeconfig:7: user \"u\": a client certificate needs both its certificate and its key" },
                { "contexts: [ { name: x, context: { cluster: c, user: nobody } } ]\ncurrent-context: x\nclusters: [ { name: c, cluster: { server: 'https://k' } } ]\nusers: []\n",
                  "/etc/secretsyncd/kubeconfig:1: user \"nobody\" is not among the users" },
                { "contexts: [ { name: x, context: { cluster: c } } ]\ncurrent-context: x\nclusters:\n- name: c\n  cluster: just-a-word\n",
                  "/etc/secretsyncd/kubeconfig:4: clusters \"c\" has no cluster mapping" },
                { "contexts: [ { name: x, context: { cluster: c, user: u } } ]\ncurrent-context: x\nclusters: [ { name: c, cluster: { server: 'https://k' } } ]\n"
                  "users: [ { name: u, user: { username: admin, password: x } } ]\n",
                  "/etc/secretsyncd/kubeconfig:4: user \"u\": basic authentication is not supported" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                KubeConnection *c = NULL;
                _cleanup_free_ char *error = NULL;
                ck_assert_int_lt(parse(cases[i].text, &c, &error), 0);
                ck_assert_ptr_null(c);
                ck_assert_ptr_nonnull(error);
                ck_assert_msg(strncmp(error, cases[i].error, strlen(cases[i].error)) == 0,
                              "case %zu: got \"%s\", want \"%s...\"", i, error, cases[i].error);
        }
}
END_TEST

START_TEST(test_load_strict_modes) {
        _cleanup_(kube_connection_freep) KubeConnection *c = NULL;
        _cleanup_free_ char *error = NULL;

        const char *p = write_file("k3s.yaml", k3s, 0600);
        ck_assert_int_eq(kubeconfig_load(p, &c, &error), 0);
        c = kube_connection_free(c);
        p = write_file("open.yaml", k3s, 0666);
        ck_assert_int_lt(kubeconfig_load(p, &c, &error), 0);
        ck_assert_msg(strstr(error, "open.yaml") != NULL, "%s", error);
        free(error);
        error = NULL;
        ck_assert_int_eq(kubeconfig_load("/nonexistent/kubeconfig", &c, &error), -ENOENT);
        ck_assert_msg(strstr(error, "/nonexistent/kubeconfig") != NULL, "%s", error);
}
END_TEST

START_TEST(test_in_cluster) {
        _cleanup_(kube_connection_freep) KubeConnection *c = NULL;
        _cleanup_free_ char *error = NULL;
        char dir[256];

        snprintf(dir, sizeof(dir), "%s/sa", base);
        ck_assert_int_eq(mkdir(dir, 0700), 0);
        write_file("sa/token", "tok\n", 0600);
        write_file("sa/ca.crt", "CA\n", 0644);
        write_file("sa/namespace", "kube-system\n", 0644);
        setenv("KUBERNETES_SERVICE_HOST", "10.43.0.1", 1);
        setenv("KUBERNETES_SERVICE_PORT", "443", 1);
        ck_assert_int_eq(kube_connection_in_cluster(dir, &c, &error), 0);
        ck_assert_str_eq(c->server, "https://10.43.0.1:443");
        ck_assert_str_eq(c->namespace, "kube-system");
        ck_assert_str_eq(c->source, "in-cluster service account");
        ck_assert_ptr_nonnull(strstr(c->token_file, "/sa/token"));
        ck_assert_ptr_nonnull(strstr(c->ca_file, "/sa/ca.crt"));
        c = kube_connection_free(c);

        setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
        ck_assert_int_eq(kube_connection_in_cluster(dir, &c, &error), 0);
        ck_assert_str_eq(c->server, "https://[fd00::1]:443");
        c = kube_connection_free(c);

        setenv("KUBERNETES_SERVICE_PORT", "https", 1);
        ck_assert_int_eq(kube_connection_in_cluster(dir, &c, &error), -EINVAL);
        free(error);
        error = NULL;
        unsetenv("KUBERNETES_SERVICE_PORT");
        ck_assert_int_eq(kube_connection_in_cluster("/nonexistent", &c, &error), -ENOENT);
        ck_assert_msg(strstr(error, "service account token mounted") != NULL, "%s", error);
        unsetenv("KUBERNETES_SERVICE_HOST");
}
END_TEST

START_TEST(test_resolve) {
        _cleanup_(kube_connection_freep) KubeConnection *c = NULL;
        _cleanup_free_ char *error = NULL;
        char env[512];

        unsetenv("KUBERNETES_SERVICE_HOST");
        unsetenv("KUBECONFIG");
        ck_assert_int_eq(kube_connection_resolve(NULL, &c, &error), -ENXIO);
        ck_assert_msg(strstr(error, "kubernetes.kubeconfig") != NULL, "%s", error);
        free(error);
        error = NULL;

        const char *p = write_file("env.yaml", k3s, 0600);
        snprintf(env, sizeof(env), "%s:/second/ignored", p);
        setenv("KUBECONFIG", env, 1);
        ck_assert_int_eq(kube_connection_resolve(NULL, &c, &error), 0);
        ck_assert_str_eq(c->server, "https://127.0.0.1:6443");
        unsetenv("KUBECONFIG");
}
END_TEST

int main(void) {
        Suite *s = suite_create("kubeconfig");
        TCase *tc = tcase_create("core");
        tcase_add_unchecked_fixture(tc, setup_base, teardown_base);
        tcase_add_test(tc, test_k3s_inline);
        tcase_add_test(tc, test_files_and_context);
        tcase_add_test(tc, test_token);
        tcase_add_test(tc, test_errors);
        tcase_add_test(tc, test_load_strict_modes);
        tcase_add_test(tc, test_in_cluster);
        tcase_add_test(tc, test_resolve);
        suite_add_tcase(s, tc);
        SRunner *sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        int failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
