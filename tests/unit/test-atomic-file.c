/* SPDX-License-Identifier: MIT */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/secret-data.h"
#include "util/atomic-file.h"
#include "util/cleanup.h"
#include "util/secbuf.h"
#include "skip.h"

/* The tests chown files to this user and group, so they must run as root. */
#define TEST_UID 1234
#define TEST_GID 1234

static char root_dir[] = "/tmp/test-atomic-file-XXXXXX";

/* A fresh directory for one test, below the suite's scratch directory. */
static char *scratch(void) {
        char *p = NULL;

        ck_assert_int_ge(asprintf(&p, "%s/t-XXXXXX", root_dir), 0);
        ck_assert_ptr_nonnull(mkdtemp(p));
        return p;
}

static char *join(const char *a, const char *b) {
        char *p = NULL;

        ck_assert_int_ge(asprintf(&p, "%s/%s", a, b), 0);
        return p;
}

static void put_file(const char *path, const char *content) {
        FILE *f = fopen(path, "we");

        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(fputs(content, f) >= 0, 1);
        ck_assert_int_eq(fclose(f), 0);
}

static char *get_file(const char *path, size_t *ret_len) {
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        char *buf = malloc(1024 * 1024);
        size_t n;

        ck_assert_ptr_nonnull(f);
        ck_assert_ptr_nonnull(buf);
        n = fread(buf, 1, 1024 * 1024 - 1, f);
        buf[n] = '\0';
        if (ret_len)
                *ret_len = n;
        return buf;
}

static void assert_file(const char *path, const void *content, size_t len) {
        size_t n;
        _cleanup_free_ char *got = get_file(path, &n);

        ck_assert_uint_eq(n, len);
        ck_assert_msg(memcmp(got, content, len) == 0, "%s has the wrong content", path);
}
#define assert_file_str(path, s) assert_file(path, s, strlen(s))

static void assert_stat(const char *path, uid_t uid, gid_t gid, mode_t mode) {
        struct stat st;

        ck_assert_int_eq(lstat(path, &st), 0);
        ck_assert_uint_eq(st.st_uid, uid);
        ck_assert_uint_eq(st.st_gid, gid);
        ck_assert_msg((st.st_mode & 07777) == mode, "%s has mode %04o, expected %04o", path,
                      (unsigned) (st.st_mode & 07777), (unsigned) mode);
}

static size_t count_entries(const char *dir, const char *prefix) {
        DIR *d = opendir(dir);
        struct dirent *de;
        size_t n = 0;

        ck_assert_ptr_nonnull(d);
        while ((de = readdir(d)))
                if (!streq(de->d_name, ".") && !streq(de->d_name, "..") &&
                    strncmp(de->d_name, prefix, strlen(prefix)) == 0)
                        n++;
        closedir(d);
        return n;
}

static void assert_no_temp_files(const char *dir) {
        ck_assert_uint_eq(count_entries(dir, ".#"), 0);
}

static bool exists(const char *path) {
        struct stat st;
        return lstat(path, &st) == 0;
}

/* Writes s, expecting success with the given changed flag. */
static void write_ok(const char *path, const char *s, uid_t uid, gid_t gid, mode_t mode, bool expect_changed) {
        _cleanup_free_ char *error = NULL;
        bool changed = !expect_changed;

        ck_assert_msg(atomic_file_write(path, s, strlen(s), uid, gid, mode, NULL, &changed, &error) == 0,
                      "writing %s failed: %s", path, strna(error));
        ck_assert_ptr_null(error);
        ck_assert_int_eq(changed, expect_changed);
}

/* Tries to write, expecting failure r and a message holding fragment. */
static void write_fails(const char *path, int r, const char *fragment) {
        static const char content[] = "SECRET-CONTENT";
        _cleanup_free_ char *error = NULL;
        bool changed = true;

        ck_assert_int_eq(atomic_file_write(path, content, strlen(content), 0, 0, 0600, NULL, &changed, &error), r);
        ck_assert_ptr_nonnull(error);
        ck_assert_msg(strstr(error, fragment), "message '%s' lacks '%s'", error, fragment);
        ck_assert_ptr_null(strstr(error, content));
}

START_TEST(test_create_with_missing_parents) {
        _cleanup_free_ char *s = scratch(), *a = join(s, "a"), *b = join(a, "b"), *f = join(b, "file");
        mode_t old = umask(077);

        write_ok(f, "hello\n", 0, 0, 0640, true);
        umask(old);
        assert_file_str(f, "hello\n");
        assert_stat(f, 0, 0, 0640);
        assert_stat(a, 0, 0, 0755);
        assert_stat(b, 0, 0, 0755);
        assert_no_temp_files(b);
        ck_assert_uint_eq(count_entries(b, ""), 1);
}
END_TEST

START_TEST(test_unchanged_is_not_touched) {
        _cleanup_free_ char *s = scratch(), *f = join(s, "file");
        struct stat st1, st2;

        write_ok(f, "same", 0, 0, 0600, true);
        ck_assert_int_eq(stat(f, &st1), 0);
        usleep(20 * 1000);
        write_ok(f, "same", 0, 0, 0600, false);
        ck_assert_int_eq(stat(f, &st2), 0);
        ck_assert_uint_eq(st1.st_ino, st2.st_ino);
        ck_assert_int_eq(st1.st_mtim.tv_sec, st2.st_mtim.tv_sec);
        ck_assert_int_eq(st1.st_mtim.tv_nsec, st2.st_mtim.tv_nsec);
        ck_assert_int_eq(st1.st_ctim.tv_nsec, st2.st_ctim.tv_nsec);
        assert_no_temp_files(s);
}
END_TEST

START_TEST(test_replace) {
        _cleanup_free_ char *s = scratch(), *f = join(s, "file");
        struct stat st1, st2;

        write_ok(f, "old content", 0, 0, 0600, true);
        ck_assert_int_eq(stat(f, &st1), 0);
        write_ok(f, "new", 0, 0, 0600, true);
        ck_assert_int_eq(stat(f, &st2), 0);
        assert_file_str(f, "new");
        /* Replaced by rename, not rewritten in place. */
        ck_assert_uint_ne(st1.st_ino, st2.st_ino);
        ck_assert_uint_eq(count_entries(s, ""), 1);
}
END_TEST

START_TEST(test_binary_and_empty) {
        _cleanup_free_ char *s = scratch(), *f = join(s, "bin"), *e = join(s, "empty");
        static const char bin[] = { 'a', 0, 'b', 0, (char) 0xff };
        bool changed = false;

        ck_assert_int_eq(atomic_file_write(f, bin, sizeof(bin), 0, 0, 0600, NULL, &changed, NULL), 0);
        ck_assert(changed);
        assert_file(f, bin, sizeof(bin));
        /* Same length, one byte different. */
        ck_assert_int_eq(atomic_file_write(f, "a\0b\0\xfe", 5, 0, 0, 0600, NULL, &changed, NULL), 0);
        ck_assert(changed);
        assert_file(f, "a\0b\0\xfe", 5);

        write_ok(e, "", 0, 0, 0600, true);
        assert_file(e, "", 0);
        write_ok(e, "", 0, 0, 0600, false);
}
END_TEST

START_TEST(test_owner_and_mode) {
        _cleanup_free_ char *s = scratch(), *f = join(s, "file");

        write_ok(f, "x", TEST_UID, TEST_GID, 0640, true);
        assert_stat(f, TEST_UID, TEST_GID, 0640);
        write_ok(f, "x", TEST_UID, TEST_GID, 0640, false);
        /* Same content, other mode, then other group: both are changes. */
        write_ok(f, "x", TEST_UID, TEST_GID, 0400, true);
        assert_stat(f, TEST_UID, TEST_GID, 0400);
        write_ok(f, "x", TEST_UID, 0, 0400, true);
        assert_stat(f, TEST_UID, 0, 0400);
        write_ok(f, "x", 0, 0, 0400, true);
        assert_stat(f, 0, 0, 0400);
        assert_no_temp_files(s);
}
END_TEST

START_TEST(test_symlink_at_target_refused) {
        _cleanup_free_ char *s = scratch(), *victim = join(s, "victim"), *f = join(s, "target"),
                            *dangling = join(s, "dangling"), *nowhere = join(s, "nowhere");

        put_file(victim, "original");
        ck_assert_int_eq(symlink(victim, f), 0);
        write_fails(f, -ELOOP, "symlink");
        assert_file_str(victim, "original");

        struct stat st;
        ck_assert_int_eq(lstat(f, &st), 0);
        ck_assert(S_ISLNK(st.st_mode));

        /* A dangling link must not create its target either. */
        ck_assert_int_eq(symlink(nowhere, dangling), 0);
        write_fails(dangling, -ELOOP, "symlink");
        ck_assert(!exists(nowhere));
        assert_no_temp_files(s);
}
END_TEST

START_TEST(test_symlink_in_parent_refused) {
        _cleanup_free_ char *s = scratch(), *real = join(s, "real"), *link = join(s, "link"),
                            *f = join(link, "file"), *deep = join(link, "sub/file"), *real_f = join(real, "file"),
                            *real_sub = join(real, "sub");

        ck_assert_int_eq(mkdir(real, 0755), 0);
        ck_assert_int_eq(symlink(real, link), 0);
        write_fails(f, -ELOOP, link);
        write_fails(deep, -ELOOP, link);
        ck_assert(!exists(real_f));
        ck_assert(!exists(real_sub));

        /* Relative links too. */
        _cleanup_free_ char *rel = join(s, "rel"), *rel_f = join(rel, "file");
        ck_assert_int_eq(symlink("real", rel), 0);
        write_fails(rel_f, -ELOOP, rel);
        ck_assert(!exists(real_f));
}
END_TEST

START_TEST(test_untrusted_parent_refused) {
        _cleanup_free_ char *s = scratch(), *gw = join(s, "gw"), *ow = join(s, "ow"), *other = join(s, "other"),
                            *gw_f = join(gw, "file"), *ow_f = join(ow, "sub/file"), *other_f = join(other, "file"),
                            *fix = NULL;

        ck_assert_int_eq(mkdir(gw, 0755), 0);
        ck_assert_int_eq(chmod(gw, 0775), 0);
        ck_assert_int_eq(mkdir(ow, 0755), 0);
        ck_assert_int_eq(chmod(ow, 0757), 0);
        ck_assert_int_eq(mkdir(other, 0755), 0);
        ck_assert_int_eq(chown(other, TEST_UID, 0), 0);

        ck_assert_int_ge(asprintf(&fix, "chmod go-w %s", gw), 0);
        write_fails(gw_f, -EPERM, fix);
        write_fails(ow_f, -EPERM, "chmod go-w");
        write_fails(other_f, -EPERM, "chown root");
        ck_assert(!exists(gw_f));
        ck_assert_uint_eq(count_entries(ow, ""), 0);
        ck_assert(!exists(other_f));
}
END_TEST

START_TEST(test_sticky_parent) {
        _cleanup_free_ char *s = scratch(), *tmp = join(s, "tmp"), *f = join(tmp, "file"), *user = join(s, "user"),
                            *user_f = join(user, "file");

        /* Like /tmp: root-owned and sticky is trusted ... */
        ck_assert_int_eq(mkdir(tmp, 0755), 0);
        ck_assert_int_eq(chmod(tmp, 01777), 0);
        write_ok(f, "x", 0, 0, 0600, true);
        /* ... but not when someone else owns it. */
        ck_assert_int_eq(mkdir(user, 0755), 0);
        ck_assert_int_eq(chmod(user, 01777), 0);
        ck_assert_int_eq(chown(user, TEST_UID, TEST_GID), 0);
        write_fails(user_f, -EPERM, user);
}
END_TEST

START_TEST(test_not_a_regular_file) {
        _cleanup_free_ char *s = scratch(), *d = join(s, "dir"), *fifo = join(s, "fifo"), *nd = join(s, "notdir"),
                            *under = join(nd, "file");

        ck_assert_int_eq(mkdir(d, 0755), 0);
        write_fails(d, -EEXIST, "not a regular file");
        ck_assert_int_eq(mkfifo(fifo, 0600), 0);
        write_fails(fifo, -EEXIST, "not a regular file");
        put_file(nd, "plain");
        write_fails(under, -ENOTDIR, "not a directory");
        assert_file_str(nd, "plain");
}
END_TEST

START_TEST(test_bad_paths) {
        _cleanup_free_ char *s = scratch(), *dots = join(s, "a/../file"), *dot = join(s, "./file");

        write_fails("relative/file", -EINVAL, "not absolute");
        write_fails("", -EINVAL, "not absolute");
        write_fails("/", -EINVAL, "names no file");
        write_fails(dots, -EINVAL, "'..'");
        write_fails(dot, -EINVAL, "'.'");
        ck_assert_uint_eq(count_entries(s, ""), 0);
}
END_TEST

START_TEST(test_write_failure_keeps_old) {
        _cleanup_free_ char *s = scratch(), *f = join(s, "file");
        _cleanup_free_ char *big = malloc(65536), *error = NULL;
        struct rlimit old, small;
        bool changed = false;
        int r;

        ck_assert_ptr_nonnull(big);
        memset(big, 'n', 65536);
        write_ok(f, "old", 0, 0, 0600, true);

        /* A file size limit makes write() fail half way, as a full disk would. */
        ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
        small = old;
        small.rlim_cur = 4096;
        signal(SIGXFSZ, SIG_IGN);
        ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &small), 0);
        r = atomic_file_write(f, big, 65536, 0, 0, 0600, NULL, &changed, &error);
        ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
        signal(SIGXFSZ, SIG_DFL);

        ck_assert_int_eq(r, -EFBIG);
        ck_assert_ptr_nonnull(error);
        ck_assert_msg(strstr(error, "write: File too large"), "message: %s", error);
        ck_assert_msg(strstr(error, f), "message: %s", error);
        assert_file_str(f, "old");
        assert_no_temp_files(s);
        ck_assert_uint_eq(count_entries(s, ""), 1);
}
END_TEST

START_TEST(test_disk_full_keeps_old) {
        _cleanup_free_ char *mnt = join(root_dir, "mnt"), *f = join(mnt, "file"), *error = NULL;
        _cleanup_free_ char *big = malloc(1024 * 1024);
        bool changed = false;
        int r;

        ck_assert_ptr_nonnull(big);
        memset(big, 'n', 1024 * 1024);
        ck_assert_int_eq(mkdir(mnt, 0755), 0);
        if (mount("tmpfs", mnt, "tmpfs", 0, "size=64k,mode=0755") < 0)
                TEST_SKIP("cannot mount a tmpfs to fill");
        write_ok(f, "old", 0, 0, 0600, true);
        r = atomic_file_write(f, big, 1024 * 1024, 0, 0, 0600, NULL, &changed, &error);
        ck_assert_int_eq(r, -ENOSPC);
        ck_assert_msg(strstr(error, "write: No space left on device"), "message: %s", error);
        assert_file_str(f, "old");
        assert_no_temp_files(mnt);
        ck_assert_uint_eq(count_entries(mnt, ""), 1);
        ck_assert_int_eq(umount(mnt), 0);
}
END_TEST

/* ---- dir targets ---- */

static SecretData *data_of(const char *key, ...) {
        SecretData *d = secret_data_new();
        va_list ap;

        ck_assert_ptr_nonnull(d);
        va_start(ap, key);
        for (const char *k = key; k; k = va_arg(ap, const char *)) {
                const char *v = va_arg(ap, const char *);
                ck_assert_int_eq(secret_data_set(d, k, secbuf_new_from(v, strlen(v))), 0);
        }
        va_end(ap);
        return d;
}

static void publish_ok(const char *path, const SecretData *d, uid_t uid, gid_t gid, mode_t mode, bool expect_changed) {
        _cleanup_free_ char *error = NULL;
        bool changed = !expect_changed;

        ck_assert_msg(atomic_dir_publish(path, d, uid, gid, mode, &changed, &error) == 0, "publishing %s failed: %s",
                      path, strna(error));
        ck_assert_int_eq(changed, expect_changed);
}

static char *data_target(const char *dir) {
        _cleanup_free_ char *link = join(dir, "..data");
        char buf[256];
        ssize_t n = readlink(link, buf, sizeof(buf) - 1);

        ck_assert_int_gt(n, 0);
        buf[n] = '\0';
        return strdup(buf);
}

static void assert_key(const char *dir, const char *key, const char *content, uid_t uid, gid_t gid, mode_t mode) {
        _cleanup_free_ char *link = join(dir, key), *expected = join("..data", key), *target = data_target(dir),
                            *hidden = join(dir, target), *file = join(hidden, key);
        char buf[512];
        ssize_t n = readlink(link, buf, sizeof(buf) - 1);

        ck_assert_int_gt(n, 0);
        buf[n] = '\0';
        ck_assert_str_eq(buf, expected);
        assert_file_str(link, content);
        assert_stat(file, uid, gid, mode);
}

START_TEST(test_dir_publish) {
        _cleanup_free_ char *s = scratch(), *dir = join(s, "parent/secret"), *target = NULL, *hidden = NULL;
        _cleanup_secret_data_ SecretData *d = data_of("password", "hunter2", "user.name", "alice", NULL);

        publish_ok(dir, d, TEST_UID, TEST_GID, 0440, true);
        assert_stat(dir, TEST_UID, TEST_GID, 0550);
        target = data_target(dir);
        ck_assert_msg(strncmp(target, "..2", 3) == 0, "..data points at %s", target);
        hidden = join(dir, target);
        assert_stat(hidden, TEST_UID, TEST_GID, 0550);
        assert_key(dir, "password", "hunter2", TEST_UID, TEST_GID, 0440);
        assert_key(dir, "user.name", "alice", TEST_UID, TEST_GID, 0440);
        /* ..data, the hidden directory and two keys; no temporary link left. */
        ck_assert_uint_eq(count_entries(dir, ""), 4);
        ck_assert_uint_eq(count_entries(hidden, ""), 2);

        /* Published again unchanged: nothing moves. */
        publish_ok(dir, d, TEST_UID, TEST_GID, 0440, false);
        _cleanup_free_ char *again = data_target(dir);
        ck_assert_str_eq(again, target);
}
END_TEST

START_TEST(test_dir_change_and_shrink) {
        _cleanup_free_ char *s = scratch(), *dir = join(s, "secret"), *old_target = NULL, *new_target = NULL,
                            *old_hidden = NULL, *b = join(dir, "b");
        _cleanup_secret_data_ SecretData *d1 = data_of("a", "1", "b", "2", NULL);
        _cleanup_secret_data_ SecretData *d2 = data_of("a", "one", "c", "3", NULL);

        publish_ok(dir, d1, 0, 0, 0600, true);
        old_target = data_target(dir);
        old_hidden = join(dir, old_target);

        publish_ok(dir, d2, 0, 0, 0600, true);
        new_target = data_target(dir);
        ck_assert_str_ne(old_target, new_target);
        assert_key(dir, "a", "one", 0, 0, 0600);
        assert_key(dir, "c", "3", 0, 0, 0600);
        ck_assert(!exists(b));
        ck_assert(!exists(old_hidden));
        ck_assert_uint_eq(count_entries(dir, ".."), 2); /* ..data and one hidden dir */
        ck_assert_uint_eq(count_entries(dir, ""), 4);
        assert_stat(dir, 0, 0, 0700);

        /* A user's own file next to the keys is left alone. */
        _cleanup_free_ char *mine = join(dir, "README");
        put_file(mine, "mine");
        publish_ok(dir, d1, 0, 0, 0600, true);
        assert_file_str(mine, "mine");
        assert_key(dir, "b", "2", 0, 0, 0600);
}
END_TEST

START_TEST(test_dir_owner_mode_and_repair) {
        _cleanup_free_ char *s = scratch(), *dir = join(s, "secret"), *link = join(dir, "k");
        _cleanup_secret_data_ SecretData *d = data_of("k", "v", NULL);

        publish_ok(dir, d, 0, 0, 0640, true);
        assert_stat(dir, 0, 0, 0750);
        publish_ok(dir, d, 0, 0, 0640, false);
        /* Same data, other mode or owner. */
        publish_ok(dir, d, 0, 0, 0400, true);
        assert_stat(dir, 0, 0, 0500);
        assert_key(dir, "k", "v", 0, 0, 0400);
        publish_ok(dir, d, TEST_UID, TEST_GID, 0400, true);
        assert_key(dir, "k", "v", TEST_UID, TEST_GID, 0400);
        assert_stat(dir, TEST_UID, TEST_GID, 0500);
        /* Back to root: the directory is now owned by neither root nor the configured user,
         * and is refused until the operator hands it over. */
        _cleanup_free_ char *error = NULL;
        ck_assert_int_eq(atomic_dir_publish(dir, d, 0, 0, 0666, NULL, &error), -EPERM);
        ck_assert_ptr_nonnull(strstr(error, "chown 0"));
        ck_assert_int_eq(chown(dir, 0, 0), 0);
        /* Group and others never get write on the directory. */
        publish_ok(dir, d, 0, 0, 0666, true);
        assert_stat(dir, 0, 0, 0755);
        assert_key(dir, "k", "v", 0, 0, 0666);
        /* A key link someone removed comes back. */
        ck_assert_int_eq(unlink(link), 0);
        publish_ok(dir, d, 0, 0, 0666, true);
        assert_key(dir, "k", "v", 0, 0, 0666);
}
END_TEST

START_TEST(test_dir_bad_keys) {
        static const char *const bad[] = { "", ".", "..", "a/b", "/abs", "..data", "..hidden", "x/" };
        _cleanup_free_ char *s = scratch(), *dir = join(s, "secret");

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_secret_data_ SecretData *d = data_of("good", "v", bad[i], "secretvalue", NULL);
                _cleanup_free_ char *error = NULL, *quoted = NULL;
                bool changed = false;

                ck_assert_int_eq(atomic_dir_publish(dir, d, 0, 0, 0600, &changed, &error), -EINVAL);
                ck_assert_int_ge(asprintf(&quoted, "key '%s'", bad[i]), 0);
                ck_assert_msg(strstr(error, quoted), "message '%s' lacks %s", error, quoted);
                ck_assert_ptr_null(strstr(error, "secretvalue"));
                ck_assert(!exists(dir));
        }
        ck_assert(atomic_dir_key_valid("password"));
        ck_assert(atomic_dir_key_valid(".hidden"));
        ck_assert(atomic_dir_key_valid("a..b"));
}
END_TEST

START_TEST(test_dir_symlinks_refused) {
        _cleanup_free_ char *s = scratch(), *real = join(s, "real"), *link = join(s, "link"), *error = NULL,
                            *via = join(link, "secret"), *real_sub = join(real, "secret");
        _cleanup_secret_data_ SecretData *d = data_of("k", "v", NULL);

        ck_assert_int_eq(mkdir(real, 0755), 0);
        ck_assert_int_eq(symlink(real, link), 0);
        /* The directory itself a symlink ... */
        ck_assert_int_eq(atomic_dir_publish(link, d, 0, 0, 0600, NULL, &error), -ELOOP);
        ck_assert_ptr_nonnull(strstr(error, "symlink"));
        ck_assert_uint_eq(count_entries(real, ""), 0);
        /* ... or one of its parents. */
        free(error);
        error = NULL;
        ck_assert_int_eq(atomic_dir_publish(via, d, 0, 0, 0600, NULL, &error), -ELOOP);
        ck_assert_ptr_nonnull(strstr(error, link));
        ck_assert(!exists(real_sub));
}
END_TEST

START_TEST(test_dir_foreign_owner_refused) {
        _cleanup_free_ char *s = scratch(), *dir = join(s, "secret"), *error = NULL;
        _cleanup_secret_data_ SecretData *d = data_of("k", "v", NULL);

        ck_assert_int_eq(mkdir(dir, 0700), 0);
        ck_assert_int_eq(chown(dir, 4321, 4321), 0);
        ck_assert_int_eq(atomic_dir_publish(dir, d, TEST_UID, TEST_GID, 0600, NULL, &error), -EPERM);
        ck_assert_ptr_nonnull(strstr(error, "owned by uid 4321"));
        ck_assert_uint_eq(count_entries(dir, ""), 0);
        /* Owned by the configured user: fine. */
        ck_assert_int_eq(chown(dir, TEST_UID, 0), 0);
        publish_ok(dir, d, TEST_UID, TEST_GID, 0600, true);
        assert_stat(dir, TEST_UID, TEST_GID, 0700);
}
END_TEST

START_TEST(test_dir_binary_values) {
        _cleanup_free_ char *s = scratch(), *dir = join(s, "secret"), *k = NULL;
        _cleanup_secret_data_ SecretData *d = secret_data_new();

        ck_assert_int_eq(secret_data_set(d, "bin", secbuf_new_from("\0\xff\0", 3)), 0);
        publish_ok(dir, d, 0, 0, 0600, true);
        k = join(dir, "bin");
        assert_file(k, "\0\xff\0", 3);
        publish_ok(dir, d, 0, 0, 0600, false);
}
END_TEST

typedef struct Removed {
        size_t n;
        size_t index[8];
        char names[8][300];
} Removed;

static void on_removed(size_t index, const char *name, void *userdata) {
        Removed *x = userdata;
        ck_assert_uint_lt(x->n, 8);
        x->index[x->n] = index;
        snprintf(x->names[x->n++], sizeof(x->names[0]), "%s", name);
}

START_TEST(test_clean_up_files) {
        _cleanup_free_ char *s = scratch(), *a = join(s, "a.env"), *other = join(s, "other"), *missing = NULL,
                            *sticky = join(s, "sticky"), *st_f = join(sticky, "f"), *t1 = join(s, ".#a.env.Ab3xY9"),
                            *t2 = NULL, *keep1 = join(s, ".#a.env.Ab3x"), *keep2 = join(s, ".#a.env.Ab3x-9"),
                            *keep3 = join(s, ".#b.env.Ab3xY9"), *link = join(s, ".#a.env.LiNk00"), *lng = NULL,
                            *lng_tmp = NULL, *theirs = join(sticky, ".#f.AAAAAA"), *ours = join(sticky, ".#f.BBBBBB"),
                            *nowhere = join(s, "nowhere");
        char name[256];
        Removed x = {};

        /* A target name of 250 characters: its temporary file has the first 200 of them. */
        memset(name, 'n', 250);
        name[250] = 0;
        lng = join(s, name);
        ck_assert_int_ge(asprintf(&lng_tmp, "%s/.#%.200s.zzzzzz", s, name), 0);
        ck_assert_int_ge(asprintf(&missing, "%s/nowhere/x", s), 0);
        ck_assert_int_ge(asprintf(&t2, "%s/.#other.000000", s), 0);
        put_file(t1, "half");
        put_file(t2, "half");
        put_file(lng_tmp, "half");
        put_file(keep1, "short suffix");
        put_file(keep2, "bad suffix");
        put_file(keep3, "no such target");
        ck_assert_int_eq(symlink(a, link), 0);
        /* In a sticky directory others may write to, only what is root's goes. */
        ck_assert_int_eq(mkdir(sticky, 0755), 0);
        ck_assert_int_eq(chmod(sticky, 01777), 0);
        put_file(theirs, "theirs");
        ck_assert_int_eq(chown(theirs, TEST_UID, TEST_GID), 0);
        put_file(ours, "ours");

        const char *paths[] = { a, missing, other, lng, st_f };
        ck_assert_int_eq(atomic_file_clean_up(paths, 5, on_removed, &x), 0);
        ck_assert_uint_eq(x.n, 4);
        ck_assert(!exists(t1) && !exists(t2) && !exists(lng_tmp) && !exists(ours));
        ck_assert(exists(keep1) && exists(keep2) && exists(keep3) && exists(theirs));
        struct stat st;
        ck_assert_int_eq(lstat(link, &st), 0);
        ck_assert(!exists(nowhere));
        for (size_t i = 0; i < x.n; i++) {
                const char *want = x.index[i] == 0 ? ".#a.env.Ab3xY9" : x.index[i] == 2 ? ".#other.000000"
                                   : x.index[i] == 4 ? ".#f.BBBBBB" : NULL;
                if (x.index[i] == 3)
                        ck_assert_str_eq(x.names[i], strrchr(lng_tmp, '/') + 1);
                else
                        ck_assert_str_eq(x.names[i], want);
        }
}
END_TEST

START_TEST(test_clean_up_dir) {
        _cleanup_free_ char *s = scratch(), *dir = join(s, "secret"), *data = NULL, *stale = NULL, *stale_f = NULL,
                            *readme = NULL, *dangling = NULL, *good = NULL, *tmp_link = join(dir, "..data_tmp");
        _cleanup_secret_data_ SecretData *d = data_of("a", "1", NULL);
        Removed x = {};

        publish_ok(dir, d, TEST_UID, TEST_GID, 0400, true);
        data = data_target(dir);
        ck_assert_int_ge(asprintf(&stale, "%s/..2020_01_01_00_00_00.000000001", dir), 0);
        ck_assert_int_ge(asprintf(&stale_f, "%s/a", stale), 0);
        ck_assert_int_eq(mkdir(stale, 0700), 0);
        put_file(stale_f, "stale");
        readme = join(dir, "README");
        put_file(readme, "mine");
        dangling = join(dir, "b");
        ck_assert_int_eq(symlink("..data/b", dangling), 0);
        ck_assert_int_eq(symlink(stale, tmp_link), 0);

        atomic_dir_clean_up(dir, TEST_UID, on_removed, &x);
        ck_assert_uint_eq(x.n, 3);
        struct stat st;
        ck_assert(!exists(stale));
        ck_assert_int_ne(lstat(tmp_link, &st), 0);
        ck_assert_int_ne(lstat(dangling, &st), 0);
        ck_assert(exists(readme));
        good = data_target(dir);
        ck_assert_str_eq(good, data);
        assert_key(dir, "a", "1", TEST_UID, TEST_GID, 0400);

        /* Owned by someone else: not ours to tidy. */
        ck_assert_int_eq(mkdir(stale, 0700), 0);
        ck_assert_int_eq(chown(dir, 4321, 4321), 0);
        x.n = 0;
        atomic_dir_clean_up(dir, TEST_UID, on_removed, &x);
        ck_assert_uint_eq(x.n, 0);
        ck_assert(exists(stale));
}
END_TEST

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) st;
        (void) ftw;
        if (flag == FTW_DP)
                return rmdir(path) < 0 ? -1 : 0;
        return unlink(path) < 0 ? -1 : 0;
}

static Suite *atomic_file_suite(void) {
        Suite *s = suite_create("atomic-file");
        TCase *tc = tcase_create("file");
        TCase *td = tcase_create("dir");

        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_create_with_missing_parents);
        tcase_add_test(tc, test_unchanged_is_not_touched);
        tcase_add_test(tc, test_replace);
        tcase_add_test(tc, test_binary_and_empty);
        tcase_add_test(tc, test_owner_and_mode);
        tcase_add_test(tc, test_symlink_at_target_refused);
        tcase_add_test(tc, test_symlink_in_parent_refused);
        tcase_add_test(tc, test_untrusted_parent_refused);
        tcase_add_test(tc, test_sticky_parent);
        tcase_add_test(tc, test_not_a_regular_file);
        tcase_add_test(tc, test_bad_paths);
        tcase_add_test(tc, test_write_failure_keeps_old);
        tcase_add_test(tc, test_disk_full_keeps_old);
        tcase_add_test(tc, test_clean_up_files);
        suite_add_tcase(s, tc);

        tcase_set_timeout(td, 60);
        tcase_add_test(td, test_dir_publish);
        tcase_add_test(td, test_dir_change_and_shrink);
        tcase_add_test(td, test_dir_owner_mode_and_repair);
        tcase_add_test(td, test_dir_bad_keys);
        tcase_add_test(td, test_dir_symlinks_refused);
        tcase_add_test(td, test_dir_foreign_owner_refused);
        tcase_add_test(td, test_dir_binary_values);
        tcase_add_test(td, test_clean_up_dir);
        suite_add_tcase(s, td);
        return s;
}

int main(void) {
        SRunner *sr;
        int failed;

        if (geteuid() != 0) {
                printf("SKIP: test-atomic-file must run as root (it checks chown)\n");
                return 77;
        }
        if (!mkdtemp(root_dir)) {
                perror("mkdtemp");
                return EXIT_FAILURE;
        }

        test_skip_init();
        sr = srunner_create(atomic_file_suite());
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);

        /* test_disk_full_keeps_old may have failed with its tmpfs still mounted. */
        char mnt[sizeof(root_dir) + 4];
        snprintf(mnt, sizeof(mnt), "%s/mnt", root_dir);
        (void) umount2(mnt, MNT_DETACH);
        if (nftw(root_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) < 0)
                fprintf(stderr, "cleanup of %s incomplete: %m\n", root_dir);
        return test_skip_exit(failed);
}
