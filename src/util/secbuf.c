/* SPDX-License-Identifier: MIT */
#include "util/secbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/cleanup.h"

SecBuf *secbuf_new(size_t reserve) {
        SecBuf *b = calloc(1, sizeof(SecBuf));
        if (!b)
                return NULL;
        b->cap = reserve + 1;
        b->data = malloc(b->cap);
        if (!b->data) {
                free(b);
                return NULL;
        }
        b->data[0] = 0;
        return b;
}

SecBuf *secbuf_new_from(const void *data, size_t len) {
        SecBuf *b = secbuf_new(len);
        if (!b)
                return NULL;
        if (secbuf_append(b, data, len) < 0)
                return secbuf_free(b);
        return b;
}

SecBuf *secbuf_dup(const SecBuf *b) {
        return secbuf_new_from(b->data, b->len);
}

static int secbuf_reserve(SecBuf *b, size_t extra) {
        if (extra > SIZE_MAX / 2 - b->len)
                return -ENOMEM;
        size_t need = b->len + extra + 1;
        if (need <= b->cap)
                return 0;
        size_t cap = MAX(need, b->cap * 2);
        /* No realloc(): it may leave a copy of the old bytes behind unwiped. */
        uint8_t *n = malloc(cap);
        if (!n)
                return -ENOMEM;
        memcpy(n, b->data, b->len + 1);
        explicit_bzero(b->data, b->cap);
        free(b->data);
        b->data = n;
        b->cap = cap;
        return 0;
}

int secbuf_append(SecBuf *b, const void *data, size_t len) {
        int r = secbuf_reserve(b, len);
        if (r < 0)
                return r;
        if (len > 0)
                memcpy(b->data + b->len, data, len);
        b->len += len;
        b->data[b->len] = 0;
        return 0;
}

int secbuf_append_str(SecBuf *b, const char *s) {
        return secbuf_append(b, s, strlen(s));
}

int secbuf_append_char(SecBuf *b, char c) {
        return secbuf_append(b, &c, 1);
}

void secbuf_clear(SecBuf *b) {
        explicit_bzero(b->data, b->cap);
        b->len = 0;
}

SecBuf *secbuf_free(SecBuf *b) {
        if (!b)
                return NULL;
        if (b->data) {
                explicit_bzero(b->data, b->cap);
                free(b->data);
        }
        free(b);
        return NULL;
}

void secbuf_freep(SecBuf **b) {
        secbuf_free(*b);
}

int secbuf_equal(const SecBuf *a, const SecBuf *b) {
        if (!a || !b)
                return a == b;
        return a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}

const char *secbuf_str(const SecBuf *b) {
        return (const char *) b->data;
}

void erase_and_free(char *s) {
        if (!s)
                return;
        explicit_bzero(s, strlen(s));
        free(s);
}

void erase_and_freep(char **s) {
        erase_and_free(*s);
}

int secbuf_read_file(const char *path, size_t max, int strip, SecBuf **ret) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EINVAL;
        if ((uint64_t) st.st_size > max)
                return -EFBIG;

        _cleanup_secbuf_ SecBuf *b = secbuf_new((size_t) st.st_size);
        if (!b)
                return -ENOMEM;
        for (;;) {
                uint8_t chunk[4096];
                ssize_t n = read(fd, chunk, sizeof(chunk));
                if (n < 0) {
                        explicit_bzero(chunk, sizeof(chunk));
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                int r = b->len + (size_t) n > max ? -EFBIG : secbuf_append(b, chunk, (size_t) n);
                explicit_bzero(chunk, sizeof(chunk));
                if (r < 0)
                        return r;
        }
        if (strip) {
                size_t s = 0, e = b->len;
                /* memchr, not strchr: strchr() would also match a NUL byte (the terminator). */
                while (s < e && memchr(" \t\r\n", b->data[s], 4))
                        s++;
                while (e > s && memchr(" \t\r\n", b->data[e - 1], 4))
                        e--;
                memmove(b->data, b->data + s, e - s);
                explicit_bzero(b->data + (e - s), b->len - (e - s));
                b->len = e - s;
                b->data[b->len] = 0;
        }
        *ret = TAKE_PTR(b);
        return 0;
}
