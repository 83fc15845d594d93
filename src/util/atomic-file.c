/* SPDX-License-Identifier: MIT */
#include "util/atomic-file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/cleanup.h"
#include "util/error.h"

#define DATA_LINK "..data"
#define DATA_LINK_TMP "..data_tmp"
#define KEY_LINK_TMP "..link_tmp"
#define TEMP_NAME_ATTEMPTS 100
/* A temporary file is ".#<name>.XXXXXX", the name shortened to this, so that a long target
 * name still leaves room under NAME_MAX. */
#define TEMP_NAME_PREFIX_MAX 200
#define TEMP_SUFFIX_LEN 6
/* Directory fds a sync batch holds at most: past that it is flushed first, so targets spread
 * over thousands of directories never run the process out of descriptors. */
#define SYNC_BATCH_DIRS_MAX 64

/* Sets *ret_error (if wanted) and returns r. errno is set to -r first, so "%m" names it. */
static mode_t dir_mode(mode_t file_mode) {
        mode_t m = file_mode & 0777;

        /* A directory is only usable with x where r is granted; nobody but us may write to it,
         * or they could swap ..data under the readers. */
        if (m & 0400)
                m |= 0100;
        if (m & 0040)
                m |= 0010;
        if (m & 0004)
                m |= 0001;
        return m & ~(mode_t) 022;
}

static int check_dir_trusted(int fd, const char *shown, char **ret_error) {
        struct stat st;

        if (fstat(fd, &st) < 0)
                return error_set(ret_error, -errno, "stat %s: %m", shown);
        if (st.st_uid != 0 && st.st_uid != geteuid())
                return error_set(ret_error, -EPERM, "directory %s is owned by uid %u, not root; fix with: chown root %s",
                            shown, (unsigned) st.st_uid, shown);
        /* A root-owned sticky directory (/tmp) is fine: nobody else may rename or remove what
         * we create there, and whatever we pass through next is checked in turn. */
        if ((st.st_mode & 022) && !((st.st_mode & S_ISVTX) && st.st_uid == 0))
                return error_set(ret_error, -EPERM, "directory %s is writable by group or others; fix with: chmod go-w %s",
                            shown, shown);
        return 0;
}

/* Explains why openat(O_NOFOLLOW) of name failed with r, naming symlinks for what they are. */
static int fail_open(int dirfd, const char *name, const char *shown, int r, char **ret_error) {
        struct stat st;

        if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) >= 0) {
                if (S_ISLNK(st.st_mode))
                        return error_set(ret_error, -ELOOP,
                                    "%s is a symlink; refusing to follow it (configure the real path)", shown);
                if (!S_ISDIR(st.st_mode))
                        return error_set(ret_error, -ENOTDIR, "%s exists and is not a directory", shown);
        }
        return error_set(ret_error, r, "open %s: %m", shown);
}

/* Opens directory name below dirfd without following a symlink, creating it root:root 0755
 * when missing (if create), and checks it may be trusted. */
static int open_parent_component(int dirfd, const char *name, const char *shown, bool create, int *ret_fd,
                                 char **ret_error) {
        _cleanup_close_ int fd = -EBADF;
        bool created = false;
        int r;

        fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT && create) {
                if (mkdirat(dirfd, name, 0755) >= 0)
                        created = true;
                else if (errno != EEXIST)
                        return error_set(ret_error, -errno, "mkdir %s: %m", shown);
                fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        }
        if (fd < 0)
                return fail_open(dirfd, name, shown, -errno, ret_error);

        if (created) {
                /* Exactly as documented, whatever the umask or a setgid parent made of it. */
                if (geteuid() == 0 && fchown(fd, 0, 0) < 0)
                        return error_set(ret_error, -errno, "chown %s: %m", shown);
                if (fchmod(fd, 0755) < 0)
                        return error_set(ret_error, -errno, "chmod %s: %m", shown);
                if (fsync(dirfd) < 0)
                        return error_set(ret_error, -errno, "fsync parent of %s: %m", shown);
        }

        r = check_dir_trusted(fd, shown, ret_error);
        if (r < 0)
                return r;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

/* Walks the absolute path from "/" and returns an fd of its parent directory and its last
 * component. Nothing is resolved by the kernel but single names relative to a checked fd.
 * Missing directories are created if create, else -ENOENT. */
static int open_parent(const char *path, bool create, int *ret_fd, char **ret_name, char **ret_error) {
        _cleanup_free_ char *copy = NULL, *shown = NULL, *name = NULL;
        _cleanup_close_ int fd = -EBADF;
        char *save = NULL, *comp, *next;
        int r;

        if (!path || path[0] != '/')
                return error_set(ret_error, -EINVAL, "path %s is not absolute", strna(path));
        if (strlen(path) >= PATH_MAX)
                return error_set(ret_error, -ENAMETOOLONG, "path %.64s... is too long", path);

        /* Refused rather than resolved ("a/../b" hides where a file really goes), and before
         * anything is created. */
        for (const char *c = path; *c; c += strcspn(c, "/")) {
                c += strspn(c, "/");
                size_t n = strcspn(c, "/");
                if ((n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
                        return error_set(ret_error, -EINVAL, "path %s contains a '.' or '..' component", path);
        }

        copy = strdup(path);
        shown = calloc(1, strlen(path) + 2);
        if (!copy || !shown)
                return error_set(ret_error, -ENOMEM, "out of memory");

        comp = strtok_r(copy, "/", &save);
        if (!comp)
                return error_set(ret_error, -EINVAL, "path %s names no file", path);

        fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return error_set(ret_error, -errno, "open /: %m");
        r = check_dir_trusted(fd, "/", ret_error);
        if (r < 0)
                return r;

        for (;; comp = next) {
                int child = -EBADF;

                next = strtok_r(NULL, "/", &save);
                if (!next)
                        break;

                strcat(shown, "/");
                strcat(shown, comp);
                r = open_parent_component(fd, comp, shown, create, &child, ret_error);
                if (r < 0)
                        return r;
                close(fd);
                fd = child;
        }

        name = strdup(comp);
        if (!name)
                return error_set(ret_error, -ENOMEM, "out of memory");
        *ret_fd = TAKE_FD(fd);
        *ret_name = TAKE_PTR(name);
        return 0;
}

/* Whether dirfd/name is a regular file with exactly this content, owner, group and mode. */
static bool file_matches(int dirfd, const char *name, const void *data, size_t len, uid_t uid, gid_t gid,
                         mode_t mode) {
        _cleanup_close_ int fd = -EBADF;
        uint8_t buf[16384];
        struct stat st;
        size_t off = 0;
        bool same = true;

        fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) < 0)
                return false;
        if (!S_ISREG(st.st_mode) || st.st_uid != uid || st.st_gid != gid ||
            (st.st_mode & 07777) != (mode & 07777) || (uint64_t) st.st_size != len)
                return false;

        for (;;) {
                ssize_t n = read(fd, buf, sizeof(buf));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        same = n == 0;
                        break;
                }
                if ((size_t) n > len - off || memcmp(buf, (const uint8_t *) data + off, (size_t) n) != 0) {
                        same = false;
                        break;
                }
                off += (size_t) n;
        }
        explicit_bzero(buf, sizeof(buf));
        return same && off == len;
}

/* Gives a new, empty file its owner and mode, then its content, durably. Owner and mode come
 * first so that the content is never readable by anyone it is not meant for. */
static int fill_file(int fd, const void *data, size_t len, uid_t uid, gid_t gid, mode_t mode, const char *shown,
                     char **ret_error) {
        const uint8_t *p = data;

        if (fchown(fd, uid, gid) < 0)
                return error_set(ret_error, -errno, "%s: chown to %u:%u: %m", shown, (unsigned) uid, (unsigned) gid);
        /* After fchown(), which clears set-id bits. */
        if (fchmod(fd, mode & 07777) < 0)
                return error_set(ret_error, -errno, "%s: chmod to %04o: %m", shown, (unsigned) (mode & 07777));

        while (len > 0) {
                ssize_t n = write(fd, p, MIN(len, (size_t) SSIZE_MAX));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return error_set(ret_error, -errno, "%s: write: %m", shown);
                if (n == 0)
                        return error_set(ret_error, -EIO, "%s: write: %m", shown);
                p += n;
                len -= (size_t) n;
        }
        if (fsync(fd) < 0)
                return error_set(ret_error, -errno, "%s: fsync: %m", shown);
        return 0;
}

static void random_suffix(char ret[static TEMP_SUFFIX_LEN + 1]) {
        static const char chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        static unsigned counter;
        uint8_t rnd[TEMP_SUFFIX_LEN];

        if (getrandom(rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t) sizeof(rnd)) {
                /* Uniqueness, not secrecy, is what matters here: O_EXCL catches collisions. */
                struct timespec ts;
                clock_gettime(CLOCK_MONOTONIC, &ts);
                uint64_t v = (uint64_t) ts.tv_nsec ^ ((uint64_t) ts.tv_sec << 30) ^ ((uint64_t) getpid() << 12) ^
                             counter++;
                for (size_t i = 0; i < sizeof(rnd); i++)
                        rnd[i] = (uint8_t) (v >> (8 * i));
        }
        for (size_t i = 0; i < sizeof(rnd); i++)
                ret[i] = chars[rnd[i] % (sizeof(chars) - 1)];
        ret[TEMP_SUFFIX_LEN] = '\0';
}

static int batch_add(AtomicSyncBatch *b, int dirfd) {
        struct stat st;
        if (fstat(dirfd, &st) < 0)
                return -errno;
        for (size_t i = 0; i < b->n; i++)
                if (b->dirs[i].dev == st.st_dev && b->dirs[i].ino == st.st_ino)
                        return 0;
        if (b->n >= SYNC_BATCH_DIRS_MAX)
                (void) atomic_sync_batch_flush(b);
        if (b->n == b->cap) {
                size_t cap = b->cap ? b->cap * 2 : 8;
                struct AtomicSyncDir *n = reallocarray(b->dirs, cap, sizeof(*n));
                if (!n)
                        return -ENOMEM;
                b->dirs = n;
                b->cap = cap;
        }
        int fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
                return -errno;
        b->dirs[b->n++] = (struct AtomicSyncDir) { st.st_dev, st.st_ino, fd };
        return 0;
}

int atomic_sync_batch_flush(AtomicSyncBatch *b) {
        int r = 0;
        for (size_t i = 0; i < b->n; i++) {
                if (fsync(b->dirs[i].fd) < 0 && r == 0)
                        r = -errno;
                close(b->dirs[i].fd);
        }
        free(b->dirs);
        *b = (AtomicSyncBatch) { 0 };
        return r;
}

int atomic_file_write(const char *path, const void *data, size_t len, uid_t uid, gid_t gid, mode_t mode,
                      AtomicSyncBatch *batch, bool *ret_changed, char **ret_error) {
        _cleanup_free_ char *name = NULL, *tmp = NULL;
        _cleanup_close_ int dirfd = -EBADF, fd = -EBADF;
        struct stat st;
        int r;

        r = open_parent(path, true, &dirfd, &name, ret_error);
        if (r < 0)
                return r;

        if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) >= 0) {
                if (S_ISLNK(st.st_mode))
                        return error_set(ret_error, -ELOOP, "%s is a symlink; refusing to write through it", path);
                if (!S_ISREG(st.st_mode))
                        return error_set(ret_error, -EEXIST, "%s exists and is not a regular file", path);
                if (file_matches(dirfd, name, data, len, uid, gid, mode)) {
                        if (ret_changed)
                                *ret_changed = false;
                        return 0;
                }
        } else if (errno != ENOENT)
                return error_set(ret_error, -errno, "stat %s: %m", path);

        /* Same content but wrong owner or mode also goes the whole way: a chmod in place would
         * briefly show the content with the wrong mode. */
        for (unsigned i = 0; fd < 0; i++) {
                char suffix[TEMP_SUFFIX_LEN + 1];

                random_suffix(suffix);
                free(tmp);
                if (asprintf(&tmp, ".#%.*s.%s", TEMP_NAME_PREFIX_MAX, name, suffix) < 0) {
                        tmp = NULL;
                        return error_set(ret_error, -ENOMEM, "out of memory");
                }
                fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC, 0600);
                if (fd < 0 && (errno != EEXIST || i >= TEMP_NAME_ATTEMPTS))
                        return error_set(ret_error, -errno, "%s: create temporary file: %m", path);
        }

        r = fill_file(fd, data, len, uid, gid, mode, path, ret_error);
        if (r < 0) {
                (void) unlinkat(dirfd, tmp, 0);
                return r;
        }
        if (close(TAKE_FD(fd)) < 0) {
                r = -errno;
                (void) unlinkat(dirfd, tmp, 0);
                return error_set(ret_error, r, "%s: close: %m", path);
        }
        /* rename() replaces the directory entry itself: even a symlink put there since the check
         * above is replaced, never written through. */
        if (renameat(dirfd, tmp, dirfd, name) < 0) {
                r = -errno;
                (void) unlinkat(dirfd, tmp, 0);
                return error_set(ret_error, r, "%s: rename into place: %m", path);
        }
        /* The new content is visible now. A failure here is not reported as one: the next round
         * would find the content unchanged and on_change would never run for it. */
        if (!batch || batch_add(batch, dirfd) < 0)
                (void) fsync(dirfd);

        if (ret_changed)
                *ret_changed = true;
        return 0;
}

bool atomic_dir_key_valid(const char *key) {
        return key && key[0] != '\0' && !streq(key, ".") && strncmp(key, "..", 2) != 0 && !strchr(key, '/') &&
               strlen(key) <= NAME_MAX;
}

/* "..2024_01_31_12_00_00.123456789": the hidden directories we (and kubelet) publish into. */
static bool is_hidden_data_dir(const char *name) {
        if (strncmp(name, "..", 2) != 0 || name[2] < '0' || name[2] > '9')
                return false;
        return name[strspn(name + 2, "0123456789_.") + 2] == '\0';
}

/* Names in dirfd but "." and "..", as a strv. */
static int list_dir(int dirfd, char ***ret) {
        _cleanup_strv_free_ char **l = calloc(1, sizeof(char *));
        size_t n = 0, cap = 1;
        struct dirent *de;
        DIR *dir;
        int fd, r = 0;

        if (!l)
                return -ENOMEM;
        fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        dir = fdopendir(fd);
        if (!dir) {
                r = -errno;
                close(fd);
                return r;
        }
        for (;;) {
                errno = 0;
                de = readdir(dir);
                if (!de) {
                        r = errno > 0 ? -errno : 0;
                        break;
                }
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                if (n + 2 > cap) {
                        char **m = reallocarray(l, cap * 2, sizeof(char *));
                        if (!m) {
                                r = -ENOMEM;
                                break;
                        }
                        l = m;
                        cap *= 2;
                }
                l[n] = strdup(de->d_name);
                if (!l[n]) {
                        r = -ENOMEM;
                        break;
                }
                l[++n] = NULL;
        }
        closedir(dir);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(l);
        return 0;
}

static bool link_points_to(int dirfd, const char *name, const char *target) {
        char buf[PATH_MAX];
        ssize_t n = readlinkat(dirfd, name, buf, sizeof(buf) - 1);

        if (n < 0)
                return false;
        buf[n] = '\0';
        return streq(buf, target);
}

static bool is_key_link_of(int dirfd, const char *name) {
        char target[sizeof(DATA_LINK "/") + NAME_MAX];

        if (strlen(name) > NAME_MAX)
                return false;
        snprintf(target, sizeof(target), DATA_LINK "/%s", name);
        return link_points_to(dirfd, name, target);
}

/* Best effort: the files we put in a hidden directory, then the directory. Nothing in it is
 * followed; a subdirectory someone else made keeps it (and itself) in place. */
static void remove_hidden_dir(int dirfd, const char *name) {
        _cleanup_strv_free_ char **l = NULL;
        _cleanup_close_ int fd = -EBADF;

        fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return;
        if (list_dir(fd, &l) >= 0)
                for (char **i = l; *i; i++)
                        (void) unlinkat(fd, *i, 0);
        (void) unlinkat(dirfd, name, AT_REMOVEDIR);
}

/* Opens the target directory itself, creating it if missing. Its owner and mode are made
 * right here, before any new content can become visible through it. */
static int open_target_dir(int parentfd, const char *name, const char *path, uid_t uid, gid_t gid, mode_t dmode,
                           int *ret_fd, bool *ret_fixed, char **ret_error) {
        _cleanup_close_ int fd = -EBADF;
        bool created = false;
        struct stat st;

        fd = openat(parentfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT) {
                if (mkdirat(parentfd, name, 0700) >= 0)
                        created = true;
                else if (errno != EEXIST)
                        return error_set(ret_error, -errno, "mkdir %s: %m", path);
                fd = openat(parentfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        }
        if (fd < 0)
                return fail_open(parentfd, name, path, -errno, ret_error);
        if (fstat(fd, &st) < 0)
                return error_set(ret_error, -errno, "stat %s: %m", path);
        if (!created && st.st_uid != uid && st.st_uid != 0)
                return error_set(ret_error, -EPERM,
                            "directory %s is owned by uid %u, expected %u or root; fix with: chown %u %s", path,
                            (unsigned) st.st_uid, (unsigned) uid, (unsigned) uid, path);

        bool fix = st.st_uid != uid || st.st_gid != gid || (st.st_mode & 07777) != dmode;
        if (fix) {
                if (fchown(fd, uid, gid) < 0)
                        return error_set(ret_error, -errno, "%s: chown to %u:%u: %m", path, (unsigned) uid,
                                    (unsigned) gid);
                if (fchmod(fd, dmode) < 0)
                        return error_set(ret_error, -errno, "%s: chmod to %04o: %m", path, (unsigned) dmode);
        }
        if (created && fsync(parentfd) < 0)
                return error_set(ret_error, -errno, "fsync parent of %s: %m", path);

        *ret_fd = TAKE_FD(fd);
        *ret_fixed = fix && !created;
        return 0;
}

/* Whether the published state already is exactly d: ..data names a hidden directory holding
 * exactly d's keys with d's bytes, owner and mode, every key link is in place and no stale
 * one is left. */
static bool dir_is_current(int dfd, const SecretData *d, uid_t uid, gid_t gid, mode_t mode) {
        _cleanup_strv_free_ char **data_names = NULL, **names = NULL;
        _cleanup_close_ int fd = -EBADF;
        char target[PATH_MAX];
        struct stat st;
        ssize_t n;

        n = readlinkat(dfd, DATA_LINK, target, sizeof(target) - 1);
        if (n < 0)
                return false;
        target[n] = '\0';
        if (!is_hidden_data_dir(target))
                return false;
        fd = openat(dfd, target, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) < 0)
                return false;
        if (st.st_uid != uid || st.st_gid != gid || (st.st_mode & 07777) != dir_mode(mode))
                return false;

        if (list_dir(fd, &data_names) < 0 || strv_length(data_names) != d->n)
                return false;
        for (size_t i = 0; i < d->n; i++) {
                const SecretEntry *e = &d->entries[i];
                if (!file_matches(fd, e->key, e->value->data, e->value->len, uid, gid, mode) ||
                    !is_key_link_of(dfd, e->key))
                        return false;
        }

        if (list_dir(dfd, &names) < 0)
                return false;
        for (char **i = names; *i; i++)
                if (strncmp(*i, "..", 2) != 0 && !secret_data_get(d, *i) && is_key_link_of(dfd, *i))
                        return false;
        return true;
}

/* A fresh hidden directory with one file per key, owner and mode in place before content,
 * all of it fsynced. On failure the caller removes *ret_name if set. */
static int make_hidden_dir(int dfd, const char *path, const SecretData *d, uid_t uid, gid_t gid, mode_t mode,
                           char **ret_name, char **ret_error) {
        _cleanup_close_ int fd = -EBADF;
        char name[64];
        int r;

        for (unsigned i = 0;; i++) {
                struct timespec ts;
                struct tm tm;
                char stamp[32];

                if (clock_gettime(CLOCK_REALTIME, &ts) < 0 || !gmtime_r(&ts.tv_sec, &tm) ||
                    strftime(stamp, sizeof(stamp), "%Y_%m_%d_%H_%M_%S", &tm) == 0)
                        return error_set(ret_error, -EINVAL, "%s: cannot read the clock", path);
                snprintf(name, sizeof(name), "..%s.%09ld", stamp, (long) ts.tv_nsec);
                if (mkdirat(dfd, name, 0700) >= 0)
                        break;
                if (errno != EEXIST || i >= TEMP_NAME_ATTEMPTS)
                        return error_set(ret_error, -errno, "%s: mkdir %s: %m", path, name);
        }
        *ret_name = strdup(name);
        if (!*ret_name)
                return error_set(ret_error, -ENOMEM, "out of memory");

        fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return error_set(ret_error, -errno, "%s: open %s: %m", path, name);
        if (fchown(fd, uid, gid) < 0)
                return error_set(ret_error, -errno, "%s: chown %s to %u:%u: %m", path, name, (unsigned) uid,
                            (unsigned) gid);
        if (fchmod(fd, dir_mode(mode)) < 0)
                return error_set(ret_error, -errno, "%s: chmod %s: %m", path, name);

        for (size_t i = 0; i < d->n; i++) {
                const SecretEntry *e = &d->entries[i];
                _cleanup_free_ char *shown = NULL;
                _cleanup_close_ int kfd = -EBADF;

                if (asprintf(&shown, "%s/%s/%s", path, name, e->key) < 0) {
                        shown = NULL;
                        return error_set(ret_error, -ENOMEM, "out of memory");
                }
                kfd = openat(fd, e->key, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC, 0600);
                if (kfd < 0)
                        return error_set(ret_error, -errno, "%s: create: %m", shown);
                r = fill_file(kfd, e->value->data, e->value->len, uid, gid, mode, shown, ret_error);
                if (r < 0)
                        return r;
                if (close(TAKE_FD(kfd)) < 0)
                        return error_set(ret_error, -errno, "%s: close: %m", shown);
        }
        if (fsync(fd) < 0)
                return error_set(ret_error, -errno, "%s: fsync %s: %m", path, name);
        return 0;
}

/* Points name at target by renaming a fresh symlink over it: atomic, and never leaves name
 * missing for a moment. */
static int replace_symlink(int dfd, const char *tmp, const char *target, const char *name, const char *path,
                           char **ret_error) {
        int r;

        if (unlinkat(dfd, tmp, 0) < 0 && errno != ENOENT)
                return error_set(ret_error, -errno, "%s: remove stale %s: %m", path, tmp);
        if (symlinkat(target, dfd, tmp) < 0)
                return error_set(ret_error, -errno, "%s: symlink %s: %m", path, tmp);
        if (renameat(dfd, tmp, dfd, name) < 0) {
                r = -errno;
                (void) unlinkat(dfd, tmp, 0);
                return error_set(ret_error, r, "%s: rename symlink over %s: %m", path, name);
        }
        return 0;
}

/* Makes every missing "<key>" -> "..data/<key>" link; *ret_made lists the ones made (also on
 * failure, for the caller to remove). */
static int make_key_links(int dfd, const SecretData *d, const char *path, char ***ret_made, char **ret_error) {
        size_t n = 0;
        int r;

        *ret_made = calloc(d->n + 1, sizeof(char *));
        if (!*ret_made)
                return error_set(ret_error, -ENOMEM, "out of memory");
        for (size_t i = 0; i < d->n; i++) {
                const char *key = d->entries[i].key;
                _cleanup_free_ char *target = NULL;

                if (is_key_link_of(dfd, key))
                        continue;
                if (asprintf(&target, DATA_LINK "/%s", key) < 0) {
                        target = NULL;
                        return error_set(ret_error, -ENOMEM, "out of memory");
                }
                r = replace_symlink(dfd, KEY_LINK_TMP, target, key, path, ret_error);
                if (r < 0)
                        return r;
                /* Not on the list if out of memory: then the link stays, pointing at ..data/<key>,
                 * which the next publish makes good. */
                (*ret_made)[n] = strdup(key);
                if ((*ret_made)[n])
                        n++;
        }
        return 0;
}

int atomic_dir_publish(const char *path, const SecretData *d, uid_t uid, gid_t gid, mode_t mode, bool *ret_changed,
                       char **ret_error) {
        _cleanup_strv_free_ char **names = NULL, **made = NULL;
        _cleanup_free_ char *name = NULL, *hidden = NULL;
        _cleanup_close_ int parentfd = -EBADF, dfd = -EBADF;
        bool fixed = false;
        int r;

        for (size_t i = 0; i < d->n; i++)
                if (!atomic_dir_key_valid(d->entries[i].key))
                        return error_set(ret_error, -EINVAL,
                                    "key '%s' cannot name a file in directory %s: it must be a single path component, "
                                    "not starting with '..'",
                                    d->entries[i].key, path);

        r = open_parent(path, true, &parentfd, &name, ret_error);
        if (r < 0)
                return r;
        r = open_target_dir(parentfd, name, path, uid, gid, dir_mode(mode), &dfd, &fixed, ret_error);
        if (r < 0)
                return r;

        if (dir_is_current(dfd, d, uid, gid, mode)) {
                if (ret_changed)
                        *ret_changed = fixed;
                return 0;
        }

        /* Key links first, ..data last: a link that cannot be made (a directory in its place,
         * say) fails the publish before anything changed, and nothing is left behind. A new
         * key's link dangles until ..data is switched, which reads as the key not there yet. */
        r = make_hidden_dir(dfd, path, d, uid, gid, mode, &hidden, ret_error);
        if (r >= 0)
                r = make_key_links(dfd, d, path, &made, ret_error);
        if (r >= 0)
                r = replace_symlink(dfd, DATA_LINK_TMP, hidden, DATA_LINK, path, ret_error);
        if (r < 0) {
                for (char **i = made; i && *i; i++)
                        (void) unlinkat(dfd, *i, 0);
                if (hidden)
                        remove_hidden_dir(dfd, hidden);
                return r;
        }
        /* Not reported if it fails: the new data is visible already, and a failure would make
         * the next round find it unchanged and never run on_change for it. */
        (void) fsync(dfd);

        /* The new data is published. Tidying up is best effort: a stale link left dangles
         * (reads as a removed key), and the next publish tries again. */
        if (list_dir(dfd, &names) >= 0)
                for (char **i = names; *i; i++) {
                        if (is_hidden_data_dir(*i) && !streq(*i, hidden))
                                remove_hidden_dir(dfd, *i);
                        else if (strncmp(*i, "..", 2) != 0 && !secret_data_get(d, *i) && is_key_link_of(dfd, *i))
                                (void) unlinkat(dfd, *i, 0);
                }
        (void) fsync(dfd);

        if (ret_changed)
                *ret_changed = true;
        return 0;
}

/* ---- clean-up at start ---- */

typedef struct CleanName {
        const char *dir; /* the path up to its last '/', not NUL-terminated there */
        size_t dir_len;
        const char *name; /* the last component, shortened as a temporary name has it */
        size_t name_len;
        size_t index;
} CleanName;

static int clean_name_cmp(const void *a, const void *b) {
        const CleanName *x = a, *y = b;
        int c = memcmp(x->dir, y->dir, MIN(x->dir_len, y->dir_len));
        if (c == 0 && x->dir_len != y->dir_len)
                c = x->dir_len < y->dir_len ? -1 : 1;
        if (c == 0)
                c = memcmp(x->name, y->name, MIN(x->name_len, y->name_len));
        if (c == 0 && x->name_len != y->name_len)
                c = x->name_len < y->name_len ? -1 : 1;
        return c;
}

/* The target name a temporary file ".#<name>.XXXXXX" was made for, or NULL. */
static const char *temp_name_target(const char *entry, size_t *ret_len) {
        size_t n = strlen(entry);

        if (n < 2 + 1 + 1 + TEMP_SUFFIX_LEN || entry[0] != '.' || entry[1] != '#' ||
            entry[n - TEMP_SUFFIX_LEN - 1] != '.')
                return NULL;
        for (size_t i = n - TEMP_SUFFIX_LEN; i < n; i++)
                if (!((entry[i] >= 'a' && entry[i] <= 'z') || (entry[i] >= 'A' && entry[i] <= 'Z') ||
                      (entry[i] >= '0' && entry[i] <= '9')))
                        return NULL;
        *ret_len = n - 2 - TEMP_SUFFIX_LEN - 1;
        return entry + 2;
}

/* One directory: v[0..n) are the targets in it. */
static void clean_up_files_in(CleanName *v, size_t n, const char *path, atomic_removed_cb cb, void *userdata) {
        _cleanup_strv_free_ char **names = NULL;
        _cleanup_free_ char *name = NULL;
        _cleanup_close_ int fd = -EBADF;
        struct stat st;

        /* path is one of the targets: its parent is the directory, reached as a write would. */
        if (open_parent(path, false, &fd, &name, NULL) < 0 || fstat(fd, &st) < 0 || list_dir(fd, &names) < 0)
                return;
        /* Only root could have made anything here, unless it is a sticky directory such as /tmp:
         * there, files of others are theirs. */
        bool shared = st.st_mode & 022;

        for (char **i = names; *i; i++) {
                CleanName key = { .dir = v[0].dir, .dir_len = v[0].dir_len };
                struct stat fst;

                key.name = temp_name_target(*i, &key.name_len);
                if (!key.name)
                        continue;
                const CleanName *hit = bsearch(&key, v, n, sizeof(CleanName), clean_name_cmp);
                if (!hit || fstatat(fd, *i, &fst, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(fst.st_mode) ||
                    (shared && fst.st_uid != 0 && fst.st_uid != geteuid()))
                        continue;
                if (unlinkat(fd, *i, 0) >= 0 && cb)
                        cb(hit->index, *i, userdata);
        }
}

int atomic_file_clean_up(const char *const *paths, size_t n, atomic_removed_cb cb, void *userdata) {
        _cleanup_free_ CleanName *v = calloc(n + 1, sizeof(CleanName));
        size_t k = 0;

        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                const char *slash = paths[i] ? strrchr(paths[i], '/') : NULL;
                if (!slash)
                        continue;
                v[k++] = (CleanName) { .dir = paths[i], .dir_len = (size_t) (slash - paths[i]), .name = slash + 1,
                                       .name_len = MIN(strlen(slash + 1), (size_t) TEMP_NAME_PREFIX_MAX),
                                       .index = i };
        }
        qsort(v, k, sizeof(CleanName), clean_name_cmp);
        for (size_t i = 0, j; i < k; i = j) {
                for (j = i + 1; j < k && v[j].dir_len == v[i].dir_len && memcmp(v[j].dir, v[i].dir, v[i].dir_len) == 0;
                     j++)
                        ;
                clean_up_files_in(v + i, j - i, paths[v[i].index], cb, userdata);
        }
        return 0;
}

void atomic_dir_clean_up(const char *path, uid_t uid, atomic_removed_cb cb, void *userdata) {
        _cleanup_strv_free_ char **names = NULL;
        _cleanup_free_ char *name = NULL;
        _cleanup_close_ int parentfd = -EBADF, dfd = -EBADF;
        char data[PATH_MAX] = "";
        struct stat st;

        if (open_parent(path, false, &parentfd, &name, NULL) < 0)
                return;
        dfd = openat(parentfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        /* Not a directory a publish would accept either: not ours to tidy. */
        if (dfd < 0 || fstat(dfd, &st) < 0 || (st.st_uid != 0 && st.st_uid != uid) || list_dir(dfd, &names) < 0)
                return;
        ssize_t n = readlinkat(dfd, DATA_LINK, data, sizeof(data) - 1);
        data[MAX(n, 0)] = '\0';

        for (char **i = names; *i; i++) {
                struct stat lst;

                if (fstatat(dfd, *i, &lst, AT_SYMLINK_NOFOLLOW) < 0)
                        continue;
                if (is_hidden_data_dir(*i) && S_ISDIR(lst.st_mode) && !streq(*i, data))
                        remove_hidden_dir(dfd, *i);
                else if ((streq(*i, DATA_LINK_TMP) || streq(*i, KEY_LINK_TMP)) && S_ISLNK(lst.st_mode))
                        (void) unlinkat(dfd, *i, 0);
                else if (strncmp(*i, "..", 2) != 0 && S_ISLNK(lst.st_mode) && is_key_link_of(dfd, *i)) {
                        /* A key's link made for a ..data that never came, or one it no longer has. */
                        char through[sizeof(DATA_LINK "/") + NAME_MAX];
                        struct stat tst;
                        snprintf(through, sizeof(through), DATA_LINK "/%s", *i);
                        if (fstatat(dfd, through, &tst, 0) >= 0 || errno != ENOENT)
                                continue;
                        (void) unlinkat(dfd, *i, 0);
                } else
                        continue;
                if (cb && fstatat(dfd, *i, &lst, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT)
                        cb(0, *i, userdata);
        }
}
