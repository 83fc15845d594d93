/* SPDX-License-Identifier: MIT */
#include <check.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/config.h"
#include "util/secret-data.h"
#include "sinks/sink.h"
#include "util/cleanup.h"
#include "util/secbuf.h"
#include "skip.h"

static char root_dir[] = "/tmp/test-sink-file-XXXXXX";

static char *scratch_file(const char *name) {
        char *dir = NULL, *p = NULL;

        ck_assert_int_ge(asprintf(&dir, "%s/t-XXXXXX", root_dir), 0);
        ck_assert_ptr_nonnull(mkdtemp(dir));
        ck_assert_int_ge(asprintf(&p, "%s/%s", dir, name), 0);
        free(dir);
        return p;
}

static void set(SecretData *d, const char *key, const void *value, size_t len) {
        ck_assert_int_eq(secret_data_set(d, key, secbuf_new_from(value, len)), 0);
}
#define set_str(d, key, s) set(d, key, s, strlen(s))

static char *get_file(const char *path, size_t *ret_len) {
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        char *buf = malloc(1024 * 1024);
        size_t n;

        ck_assert_ptr_nonnull(f);
        ck_assert_ptr_nonnull(buf);
        n = fread(buf, 1, 1024 * 1024 - 1, f);
        buf[n] = '\0';
        *ret_len = n;
        return buf;
}

static void assert_file(const char *path, const void *content, size_t len) {
        size_t n;
        _cleanup_free_ char *got = get_file(path, &n);

        ck_assert_uint_eq(n, len);
        ck_assert_msg(memcmp(got, content, len) == 0, "%s holds '%s'", path, got);
}

static FileTarget target(FileFormat format, const char *path) {
        return (FileTarget) {
                .path = (char *) path,
                .format = format,
                .uid = 0,
                .gid = 0,
                .mode = 0600,
        };
}

static void write_ok(const FileTarget *t, const SecretData *d) {
        _cleanup_free_ char *error = NULL;
        bool changed = false;

        ck_assert_msg(sink_file_write(t, d, NULL, &changed, &error) == 0, "write failed: %s", strna(error));
        ck_assert(changed);
}

/* Expects failure r with a message naming fragment and not containing secret. */
static void write_fails(const FileTarget *t, const SecretData *d, int r, const char *fragment, const char *secret) {
        _cleanup_free_ char *error = NULL;
        bool changed = false;

        ck_assert_int_eq(sink_file_write(t, d, NULL, &changed, &error), r);
        ck_assert_ptr_nonnull(error);
        ck_assert_msg(strstr(error, fragment), "message '%s' lacks '%s'", error, fragment);
        if (secret)
                ck_assert_msg(!strstr(error, secret), "message '%s' shows the secret", error);
        ck_assert_int_ne(access(t->path, F_OK), 0);
}

/* ---- env ---- */

static const struct {
        const char *key;
        const char *value;
        size_t len;
} env_values[] = {
#define V(k, v) { k, v, sizeof(v) - 1 }
        V("PLAIN", "plain"),
        V("EMPTY", ""),
        V("QUOTES", "with \"double\" and 'single' quotes"),
        V("DOLLAR", "$HOME ${PATH} $(id) $((1+2)) `id` $ $1 $@"),
        V("BACKTICK", "`"),
        V("BACKSLASH", "back\\slash \\\\ \\n \\t \\\" \\$ \\` end\\"),
        V("BS_NEWLINE", "a\\\nb\\\n"),
        V("ONLY_BS", "\\"),
        V("NEWLINES", "line1\nline2\n\nline4\n"),
        V("TABS_CR", "\ttab\there\r\ncrlf\r"),
        V("CONTROL", "\x01\x02\x1b[31mred\x1b[0m\x7f"),
        V("SPACES", "  padded  "),
        V("COMMENT", "#not a comment ;nor this"),
        V("EQUALS", "=a=b="),
        V("UTF8", "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80\xf0\x9f\x98\x81"),
        V("C1", "\xc2\x81\xc2\x82\xc2\x85\xc2\x88\xc2\x9f"), /* bytes dash uses internally */
        V("PEM", "-----BEGIN KEY-----\nMIIB+/=\n-----END KEY-----\n"),
        V("json_lower", "{\"password\":\"p@ss\\\"w0rd\"}"),
        V("_", "underscore"),
#undef V
};

/* Runs sh to source the file and print one variable, and returns what it printed. */
static char *sh_read(const char *file, const char *key, size_t *ret_len) {
        _cleanup_free_ char *script = NULL;
        size_t cap = 4096, n = 0;
        char *buf = malloc(cap);
        int pipefd[2], status;
        pid_t pid;

        ck_assert_ptr_nonnull(buf);
        ck_assert_int_ge(asprintf(&script, "set -a; . \"$1\"; printf %%s \"$%s\"", key), 0);
        ck_assert_int_eq(pipe2(pipefd, O_CLOEXEC), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                dup2(pipefd[1], STDOUT_FILENO);
                execl("/bin/sh", "sh", "-c", script, "sh", file, (char *) NULL);
                _exit(127);
        }
        close(pipefd[1]);
        for (;;) {
                if (n == cap) {
                        cap *= 2;
                        buf = realloc(buf, cap);
                        ck_assert_ptr_nonnull(buf);
                }
                ssize_t k = read(pipefd[0], buf + n, cap - n);
                ck_assert_int_ge(k, 0);
                if (k == 0)
                        break;
                n += (size_t) k;
        }
        close(pipefd[0]);
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "sh failed on %s", file);
        *ret_len = n;
        return buf;
}

START_TEST(test_env_roundtrip_sh) {
        _cleanup_free_ char *path = scratch_file("app.env");
        _cleanup_secret_data_ SecretData *d = secret_data_new();
        FileTarget t = target(FILE_FORMAT_ENV, path);

        for (size_t i = 0; i < ELEMENTSOF(env_values); i++)
                set(d, env_values[i].key, env_values[i].value, env_values[i].len);
        write_ok(&t, d);

        for (size_t i = 0; i < ELEMENTSOF(env_values); i++) {
                size_t n;
                _cleanup_free_ char *got = sh_read(path, env_values[i].key, &n);

                ck_assert_msg(n == env_values[i].len && memcmp(got, env_values[i].value, n) == 0,
                              "%s read back through sh as '%.*s'", env_values[i].key, (int) n, got);
        }
}
END_TEST

typedef int (*load_env_file_t)(FILE *f, const char *fname, char ***ret);
typedef bool (*env_assignment_is_valid_t)(const char *e);

/* systemd's own EnvironmentFile= parser, from the systemd installed here: load_env_file() and
 * env_assignment_is_valid() (which the service manager applies before exec) of
 * libsystemd-shared. Skipped, and said so, if it is not there. */
START_TEST(test_env_roundtrip_systemd) {
        static const char *const patterns[] = {
                "/usr/lib/systemd/libsystemd-shared-*.so",
                "/usr/lib/*/systemd/libsystemd-shared-*.so",
                "/usr/lib64/systemd/libsystemd-shared-*.so",
        };
        _cleanup_free_ char *path = scratch_file("app.env");
        _cleanup_secret_data_ SecretData *d = secret_data_new();
        FileTarget t = target(FILE_FORMAT_ENV, path);
        load_env_file_t load_env_file = NULL;
        env_assignment_is_valid_t assignment_valid = NULL;
        void *lib = NULL;
        char **l = NULL;

        for (size_t i = 0; i < ELEMENTSOF(patterns) && !lib; i++) {
                glob_t g;
                if (glob(patterns[i], 0, NULL, &g) == 0) {
                        lib = dlopen(g.gl_pathv[g.gl_pathc - 1], RTLD_NOW | RTLD_LOCAL);
                        if (lib)
                                fprintf(stderr, "test_env_roundtrip_systemd: using %s\n", g.gl_pathv[g.gl_pathc - 1]);
                }
                globfree(&g);
        }
        if (lib) {
                load_env_file = (load_env_file_t) dlsym(lib, "load_env_file");
                assignment_valid = (env_assignment_is_valid_t) dlsym(lib, "env_assignment_is_valid");
        }
        if (!load_env_file || !assignment_valid)
                TEST_SKIP("libsystemd-shared (systemd's EnvironmentFile= parser) not found");

        for (size_t i = 0; i < ELEMENTSOF(env_values); i++)
                set(d, env_values[i].key, env_values[i].value, env_values[i].len);
        write_ok(&t, d);

        ck_assert_int_eq(load_env_file(NULL, path, &l), 0);
        ck_assert_ptr_nonnull(l);
        size_t n = 0;
        for (char **i = l; *i; i++, n++) {
                ck_assert_msg(assignment_valid(*i), "systemd would drop %s", *i);
                /* The file is sorted and so is the list it yields. */
                ck_assert_uint_lt(n, d->n);
                const SecretEntry *e = &d->entries[n];
                size_t kl = strlen(e->key);
                ck_assert_msg(strncmp(*i, e->key, kl) == 0 && (*i)[kl] == '=', "entry %zu is %s", n, *i);
                const char *value = *i + kl + 1;
                ck_assert_msg(strlen(value) == e->value->len && memcmp(value, e->value->data, e->value->len) == 0,
                              "%s read back through systemd as '%s'", e->key, value);
                free(*i);
        }
        free(l);
        ck_assert_uint_eq(n, d->n);
}
END_TEST

START_TEST(test_env_exact_bytes) {
        _cleanup_free_ char *path = scratch_file("app.env");
        _cleanup_secret_data_ SecretData *d = secret_data_new();
        FileTarget t = target(FILE_FORMAT_ENV, path);
        static const char expected[] = "A=\"1\"\n"
                                       "B=\"x\\\"y\\\\z\\$w\\`v\nu\"\n"
                                       "C=\"\"\n";

        set_str(d, "C", "");
        set_str(d, "B", "x\"y\\z$w`v\nu");
        set_str(d, "A", "1");
        write_ok(&t, d);
        assert_file(path, expected, sizeof(expected) - 1);
}
END_TEST

START_TEST(test_env_rejects) {
        static const struct {
                const char *key, *value;
                size_t len;
                int r;
                const char *fragment;
        } bad[] = {
                { "NUL", "sec\0ret", 7, -EINVAL, "NUL" },
                { "LATIN1", "caf\xe9-secret", 11, -EILSEQ, "UTF-8" },
                { "TRUNCATED", "secret\xe6\x97", 8, -EILSEQ, "UTF-8" },
                { "SURROGATE", "secret\xed\xa0\x80", 9, -EILSEQ, "UTF-8" },
                { "NONCHAR", "secret\xef\xb7\x90", 9, -EILSEQ, "UTF-8" },
                { "1BAD", "secret", 6, -EINVAL, "not a valid environment variable name" },
                { "bad-name", "secret", 6, -EINVAL, "not a valid environment variable name" },
                { "", "secret", 6, -EINVAL, "not a valid environment variable name" },
        };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_free_ char *path = scratch_file("app.env"), *named = NULL;
                _cleanup_secret_data_ SecretData *d = secret_data_new();
                FileTarget t = target(FILE_FORMAT_ENV, path);

                set_str(d, "GOOD", "fine");
                set(d, bad[i].key, bad[i].value, bad[i].len);
                ck_assert_int_ge(asprintf(&named, "'%s'", bad[i].key), 0);
                write_fails(&t, d, bad[i].r, named, "secret");
                write_fails(&t, d, bad[i].r, bad[i].fragment, "secret");
        }

        /* Longer than execve() passes on. */
        _cleanup_free_ char *path = scratch_file("app.env"), *big = malloc(131072);
        _cleanup_secret_data_ SecretData *d = secret_data_new();
        FileTarget t = target(FILE_FORMAT_ENV, path);
        ck_assert_ptr_nonnull(big);
        memset(big, 'a', 131072);
        /* "BIG=" + value + NUL may be 131072 bytes. */
        set(d, "BIG", big, 131072 - 4);
        write_fails(&t, d, -E2BIG, "'BIG'", NULL);
        set(d, "BIG", big, 131072 - 5);
        write_ok(&t, d);
}
END_TEST

/* ---- json, raw, template, dir ---- */

START_TEST(test_json_exact_bytes) {
        _cleanup_free_ char *path = scratch_file("app.json");
        _cleanup_secret_data_ SecretData *d = secret_data_new();
        FileTarget t = target(FILE_FORMAT_JSON, path);
        static const char expected[] = "{\"a\":\"1\",\"b\":\"q\\\"\\n\\\\\",\"c.d\":\"caf\xc3\xa9\",\"e\":\"\\u0000\"}\n";

        set_str(d, "c.d", "caf\xc3\xa9");
        set_str(d, "b", "q\"\n\\");
        set_str(d, "a", "1");
        set(d, "e", "\0", 1);
        write_ok(&t, d);
        assert_file(path, expected, sizeof(expected) - 1);

        _cleanup_secret_data_ SecretData *empty = secret_data_new();
        _cleanup_free_ char *path2 = scratch_file("empty.json");
        t.path = path2;
        write_ok(&t, empty);
        assert_file(path2, "{}\n", 3);
}
END_TEST

START_TEST(test_json_invalid_utf8) {
        _cleanup_free_ char *path = scratch_file("app.json");
        _cleanup_secret_data_ SecretData *d = secret_data_new();
        FileTarget t = target(FILE_FORMAT_JSON, path);

        set(d, "blob", "secret\xff", 7);
        write_fails(&t, d, -EILSEQ, "'blob'", "secret");
}
END_TEST

START_TEST(test_raw) {
        _cleanup_free_ char *path = scratch_file("key.bin");
        _cleanup_secret_data_ SecretData *d = secret_data_new();
        FileTarget t = target(FILE_FORMAT_RAW, path);
        bool changed = true;

        set(d, "tls.key", "a\0b\n", 4);
        set_str(d, "other", "x");
        t.key = (char *) "tls.key";
        t.mode = 0400;
        write_ok(&t, d);
        assert_file(path, "a\0b\n", 4);
        ck_assert_int_eq(sink_file_write(&t, d, NULL, &changed, NULL), 0);
        ck_assert(!changed);

        struct stat st;
        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert_uint_eq(st.st_mode & 07777, 0400);

        _cleanup_free_ char *path2 = scratch_file("missing.bin");
        t.path = path2;
        t.key = (char *) "gone";
        write_fails(&t, d, -ENOENT, "'gone'", NULL);
}
END_TEST

START_TEST(test_template) {
        _cleanup_free_ char *path = scratch_file("app.conf");
        _cleanup_secret_data_ SecretData *d = secret_data_new();
        FileTarget t = target(FILE_FORMAT_TEMPLATE, path);
        static const char expected[] = "user=alice\npass=\"p\\\"w\"\nb64=cEB3\n";

        set_str(d, "user", "alice");
        set_str(d, "pass", "p\"w");
        set_str(d, "p", "p@w");
        t.template_text = (char *) "user={{ user }}\npass={{ pass | json }}\nb64={{p|base64}}\n";
        write_ok(&t, d);
        assert_file(path, expected, sizeof(expected) - 1);

        _cleanup_free_ char *path2 = scratch_file("bad.conf");
        t.path = path2;
        t.template_text = (char *) "ok\n{{ nope }}";
        write_fails(&t, d, -ENOENT, "line 2", "alice");
}
END_TEST

START_TEST(test_dir) {
        _cleanup_free_ char *path = scratch_file("secret"), *link = NULL, *data = NULL;
        _cleanup_secret_data_ SecretData *d = secret_data_new();
        FileTarget t = target(FILE_FORMAT_DIR, path);
        _cleanup_secbuf_ SecBuf *out = NULL;
        _cleanup_free_ char *error = NULL;
        bool changed = true;

        set_str(d, "password", "hunter2");
        t.mode = 0440;
        t.uid = 1234;
        write_ok(&t, d);
        ck_assert_int_ge(asprintf(&link, "%s/password", path), 0);
        assert_file(link, "hunter2", 7);
        ck_assert_int_ge(asprintf(&data, "%s/..data", path), 0);
        struct stat st;
        ck_assert_int_eq(lstat(data, &st), 0);
        ck_assert(S_ISLNK(st.st_mode));
        ck_assert_int_eq(sink_file_write(&t, d, NULL, &changed, NULL), 0);
        ck_assert(!changed);

        ck_assert_int_eq(sink_file_render(&t, d, &out, &error), -EINVAL);
        ck_assert_ptr_null(out);
}
END_TEST

START_TEST(test_check) {
        char *good_env[] = { (char *) "DB_PASSWORD", (char *) "_X1", NULL };
        char *bad_env[] = { (char *) "DB_PASSWORD", (char *) "db.password", NULL };
        char *bad_dir[] = { (char *) "ok", (char *) "../etc/passwd", NULL };
        FileTarget env = target(FILE_FORMAT_ENV, "/x"), raw = target(FILE_FORMAT_RAW, "/x"),
                   tmpl = target(FILE_FORMAT_TEMPLATE, "/x"), dir = target(FILE_FORMAT_DIR, "/x"),
                   json = target(FILE_FORMAT_JSON, "/x");
        _cleanup_free_ char *e1 = NULL, *e2 = NULL, *e3 = NULL, *e4 = NULL, *e5 = NULL;

        ck_assert_int_eq(sink_file_check(&env, good_env, true, NULL), 0);
        ck_assert_int_eq(sink_file_check(&env, NULL, false, NULL), 0);
        ck_assert_int_eq(sink_file_check(&env, bad_env, false, &e1), -EINVAL);
        ck_assert_ptr_nonnull(strstr(e1, "'db.password'"));

        raw.key = (char *) "DB_PASSWORD";
        ck_assert_int_eq(sink_file_check(&raw, good_env, true, NULL), 0);
        raw.key = (char *) "other";
        ck_assert_int_eq(sink_file_check(&raw, good_env, true, &e2), -ENOENT);
        ck_assert_ptr_nonnull(strstr(e2, "'other'"));
        ck_assert_int_eq(sink_file_check(&raw, good_env, false, NULL), 0);
        raw.key = NULL;
        ck_assert_int_eq(sink_file_check(&raw, good_env, false, &e3), -EINVAL);

        tmpl.template_text = (char *) "{{ DB_PASSWORD }} {{ other }}";
        ck_assert_int_eq(sink_file_check(&tmpl, good_env, false, NULL), 0);
        ck_assert_int_eq(sink_file_check(&tmpl, good_env, true, &e4), -ENOENT);
        ck_assert_ptr_nonnull(strstr(e4, "'other'"));

        ck_assert_int_eq(sink_file_check(&dir, good_env, true, NULL), 0);
        ck_assert_int_eq(sink_file_check(&dir, bad_dir, true, &e5), -EINVAL);
        ck_assert_ptr_nonnull(strstr(e5, "'../etc/passwd'"));

        ck_assert_int_eq(sink_file_check(&json, bad_env, true, NULL), 0);
}
END_TEST

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) st;
        (void) ftw;
        if (flag == FTW_DP)
                return rmdir(path) < 0 ? -1 : 0;
        return unlink(path) < 0 ? -1 : 0;
}

static Suite *sink_file_suite(void) {
        Suite *s = suite_create("sink-file");
        TCase *tc = tcase_create("formats");

        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_env_roundtrip_sh);
        tcase_add_test(tc, test_env_roundtrip_systemd);
        tcase_add_test(tc, test_env_exact_bytes);
        tcase_add_test(tc, test_env_rejects);
        tcase_add_test(tc, test_json_exact_bytes);
        tcase_add_test(tc, test_json_invalid_utf8);
        tcase_add_test(tc, test_raw);
        tcase_add_test(tc, test_template);
        tcase_add_test(tc, test_dir);
        tcase_add_test(tc, test_check);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr;
        int failed;

        if (geteuid() != 0) {
                printf("SKIP: test-sink-file must run as root (it checks chown)\n");
                return 77;
        }
        if (!mkdtemp(root_dir)) {
                perror("mkdtemp");
                return EXIT_FAILURE;
        }

        test_skip_init();
        sr = srunner_create(sink_file_suite());
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);

        if (nftw(root_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) < 0)
                fprintf(stderr, "cleanup of %s incomplete: %m\n", root_dir);
        return test_skip_exit(failed);
}
