/* SPDX-License-Identifier: MIT */
#include "core/config-read.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "util/duration.h"

uint64_t config_now_usec(clockid_t clock) {
        struct timespec ts;
        clock_gettime(clock, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}

static uint64_t timespec_usec(const struct timespec *ts) {
        return ts->tv_sec < 0 ? 0 : (uint64_t) ts->tv_sec * USEC_PER_SEC + (uint64_t) ts->tv_nsec / 1000;
}

/* When the file's content (mtime) or inode (ctime) last changed. */
static uint64_t stat_changed_usec(const struct stat *st) {
        return MAX(timespec_usec(&st->st_mtim), timespec_usec(&st->st_ctim));
}

static bool stat_same(const struct stat *a, const struct stat *b) {
        return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
               a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
               a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

void config_sleep_usec(uint64_t usec) {
        struct timespec ts = { .tv_sec = (time_t) (usec / USEC_PER_SEC), .tv_nsec = (long) (usec % USEC_PER_SEC) * 1000 };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

void config_seen_done(SeenList *l) {
        for (size_t i = 0; i < l->n; i++)
                free(l->v[i].path);
        free(l->v);
}

/* Notes st as path's state; returns how long (usec) path has been seen in it. */
static uint64_t seen_for(SeenList *l, const char *path, const struct stat *st) {
        uint64_t now = config_now_usec(CLOCK_MONOTONIC);
        size_t i;
        for (i = 0; i < l->n && !streq(l->v[i].path, path); i++)
                ;
        if (i == l->n) {
                Seen *m = reallocarray(l->v, l->n + 1, sizeof(Seen));
                char *copy = strdup(path);
                if (!m || !copy) {
                        free(copy);
                        if (m)
                                l->v = m;
                        return 0;
                }
                l->v = m;
                l->v[l->n++] = (Seen) { .path = copy, .st = *st, .since = now };
        } else if (!stat_same(&l->v[i].st, st))
                l->v[i] = (Seen) { .path = l->v[i].path, .st = *st, .since = now };
        return now - l->v[i].since;
}

/* Whether some process has the file open for writing (a writer can stall longer than any
 * quiet time between its truncation and its first write): a read lease cannot be had then.
 * It is given back at once; a lease break meanwhile comes as SIGURG, which is ignored. Where
 * leases are not allowed (a file we do not own, NFS), only the quiet time tells. */
static bool open_for_writing(int fd) {
        if (fcntl(fd, F_SETSIG, SIGURG) < 0 || fcntl(fd, F_SETLEASE, F_RDLCK) < 0)
                return errno == EAGAIN;
        (void) fcntl(fd, F_SETLEASE, F_UNLCK);
        return false;
}

/* Settled: not open for writing, and last changed CONFIG_SETTLE_USEC before `before`
 * (CLOCK_REALTIME) or seen unchanged for that long (which covers a timestamp in the future
 * after a clock step). */
static bool settled(SeenList *l, const char *path, int fd, const struct stat *st, uint64_t before) {
        uint64_t changed = stat_changed_usec(st);
        uint64_t seen = seen_for(l, path, st);
        if (open_for_writing(fd))
                return false;
        return (changed <= before && before - changed >= config_settle_usec) || seen >= config_settle_usec;
}

void config_text_unmap(ConfigText *t) {
        if (t->text)
                munmap(t->text, t->maplen);
        t->text = NULL;
}

void config_text_done(ConfigText *t) {
        config_text_unmap(t);
        if (t->fd >= 0)
                close(t->fd);
        t->fd = -1;
}

int config_text_read(ConfigParser *p, const char *path, bool strict_modes, SeenList *seen, uint64_t deadline,
                     ConfigText *ret) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        struct stat st;
        if (fd < 0) {
                config_error_at_line(p, NULL, 0, "cannot open: %s", strerror(errno));
                return -errno;
        }
        for (;;) {
                if (fstat(fd, &st) < 0)
                        return -errno;
                if (settled(seen, path, fd, &st, config_now_usec(CLOCK_REALTIME)))
                        break;
                if (config_now_usec(CLOCK_MONOTONIC) >= deadline) {
                        config_error_at_line(p, NULL, 0, "still being changed after %u s; not read",
                                             CONFIG_SETTLE_MAX_USEC / 1000000U);
                        return -EAGAIN;
                }
                config_sleep_usec(config_settle_usec / 5);
        }
        if (!S_ISREG(st.st_mode)) {
                config_error_at_line(p, NULL, 0, "not a regular file");
                return -EINVAL;
        }
        if ((uint64_t) st.st_size > CONFIG_FILE_MAX) {
                config_error_at_line(p, NULL, 0, "larger than %u bytes", CONFIG_FILE_MAX);
                return -EFBIG;
        }
        if (strict_modes) {
                _cleanup_free_ char *m = NULL;
                char proc[64];
                snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
                int r = config_check_file_trust(proc, &m);
                if (r < 0) {
                        /* Name the real path, not the /proc alias. */
                        if (st.st_uid != 0 && st.st_uid != geteuid())
                                config_error_at_line(p, NULL, 0,
                                                     "owned by uid %u, not root; refusing to trust it (fix: chown root:root %s)",
                                                     (unsigned) st.st_uid, path);
                        else
                                config_error_at_line(p, NULL, 0,
                                                     "writable by group or others (mode %04o); refusing to trust it (fix: chmod go-w %s)",
                                                     (unsigned) (st.st_mode & 07777), path);
                        return r;
                }
        }
        /* One byte more than the file, to see it grow; zero-filled, so NUL-terminated. */
        size_t len = (size_t) st.st_size, page = (size_t) sysconf(_SC_PAGESIZE), got = 0;
        size_t maplen = ((len + 1) / page + 1) * page;
        char *text = mmap(NULL, maplen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (text == MAP_FAILED)
                return -errno;
        ConfigText t = { .fd = TAKE_FD(fd), .st = st, .text = text, .len = len, .maplen = maplen };
        for (;;) {
                ssize_t n = read(t.fd, text + got, len + 1 - got);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        int r = -errno;
                        config_error_at_line(p, NULL, 0, "cannot read: %s", strerror(errno));
                        config_text_done(&t);
                        return r;
                }
                got += (size_t) n;
                if (n == 0 || got > len)
                        break;
        }
        if (got != len) {
                config_error_at_line(p, NULL, 0, "changed while it was read");
                config_text_done(&t);
                return -EAGAIN;
        }
        text[len] = 0;
        if (memchr(text, 0, len)) {
                config_error_at_line(p, NULL, 0, "contains a NUL byte");
                config_text_done(&t);
                return -EINVAL;
        }
        *ret = t;
        return 0;
}

int config_text_check_unchanged(ConfigParser *p, const ConfigText *t) {
        struct stat st;
        if (fstat(t->fd, &st) < 0)
                return -errno;
        if (stat_same(&st, &t->st))
                return 0;
        config_error_at_line(p, NULL, 0, "changed while it was read");
        return -EAGAIN;
}

/* Files pulled in with @include are configuration too: the same strict modes apply, and
 * they must have settled before the read began (libconfig reads them itself, with stdio,
 * so a change only makes a bad read: -EAGAIN, to read everything again). */
int config_check_included_files(ConfigParser *p, const config_t *cfg, SeenList *seen, uint64_t read_start) {
        int ret = 0;
        for (unsigned i = 0; i < cfg->num_filenames; i++) {
                _cleanup_free_ char *m = NULL;
                const char *f = config_included_file(p, cfg->filenames[i]);
                struct stat st;
                if (!f)
                        continue;
                if (p->strict_modes && config_check_file_trust(f, &m) < 0) {
                        config_error_at_line(p, f, 1, "%s", m ? m : "cannot check this included file");
                        ret = ret ?: -EPERM;
                        continue;
                }
                _cleanup_close_ int fd = open(f, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
                if (fd < 0 || fstat(fd, &st) < 0) {
                        config_error_at_line(p, f, 0, "cannot read: %s", strerror(errno));
                        ret = -EAGAIN;
                } else if (!settled(seen, f, fd, &st, read_start)) {
                        /* Seen only if it is still so at the deadline. */
                        config_error_at_line(p, f, 0, "still being changed after %u s; not read",
                                             CONFIG_SETTLE_MAX_USEC / 1000000U);
                        ret = -EAGAIN;
                }
        }
        return ret;
}

