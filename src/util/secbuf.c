/* SPDX-License-Identifier: MIT */
#include "util/secbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/cleanup.h"

/* Secret bytes go to OpenSSL's secure heap once secbuf_secure_heap_init() made one: pages
 * left out of core dumps and locked in memory. When it is full, or there is none, to the
 * ordinary heap; wiped on free either way. No file and line: a full secure heap is no error
 * to leave on OpenSSL's error queue. */
static uint8_t *data_alloc(size_t n) {
        void *p = CRYPTO_secure_malloc(n, NULL, 0);
        return p ?: CRYPTO_malloc(n, NULL, 0);
}

static void data_free(uint8_t *p, size_t n) {
        CRYPTO_secure_clear_free(p, n, NULL, 0);
}

int secbuf_secure_heap_init(size_t size) {
        int r = CRYPTO_secure_malloc_init(size, 32);
        return r == 0 ? -ENOMEM : r == 2 ? 0 : 1;
}

void secbuf_wiping_free(void *p) {
        if (p)
                explicit_bzero(p, malloc_usable_size(p));
        free(p);
}

void *secbuf_wiping_realloc(void *p, size_t n) {
        if (!p)
                return malloc(n);
        if (n == 0) {
                secbuf_wiping_free(p);
                return NULL;
        }
        size_t old = malloc_usable_size(p);
        /* Not realloc(): it may move the bytes and free the old place unwiped. */
        void *q = malloc(n);
        if (!q)
                return NULL;
        memcpy(q, p, MIN(old, n));
        secbuf_wiping_free(p);
        return q;
}

#if defined(__x86_64__)
#define ZERO_ZMM(n) "vpxord %%zmm" #n ", %%zmm" #n ", %%zmm" #n "\n\t"
#define ZERO_XMM(n) "pxor %%xmm" #n ", %%xmm" #n "\n\t"
#define XMM_CLOBBERS                                                                                  \
        "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", \
                "xmm12", "xmm13", "xmm14", "xmm15"
#endif

void secbuf_wipe_registers(void) {
#if defined(__x86_64__)
        /* Not inline, and nothing is kept in vector registers across a call: only scratch is
         * zeroed. zmm16-31 are out of the compiler's reach without -mavx512f (glibc's memcpy
         * uses them on CPUs that have them). */
        if (__builtin_cpu_supports("avx512f"))
                __asm__ volatile(ZERO_ZMM(16) ZERO_ZMM(17) ZERO_ZMM(18) ZERO_ZMM(19) ZERO_ZMM(20) ZERO_ZMM(21)
                                 ZERO_ZMM(22) ZERO_ZMM(23) ZERO_ZMM(24) ZERO_ZMM(25) ZERO_ZMM(26) ZERO_ZMM(27)
                                 ZERO_ZMM(28) ZERO_ZMM(29) ZERO_ZMM(30) ZERO_ZMM(31)::);
        if (__builtin_cpu_supports("avx"))
                __asm__ volatile("vzeroall" ::: XMM_CLOBBERS);
        else
                __asm__ volatile(ZERO_XMM(0) ZERO_XMM(1) ZERO_XMM(2) ZERO_XMM(3) ZERO_XMM(4) ZERO_XMM(5) ZERO_XMM(6)
                                 ZERO_XMM(7) ZERO_XMM(8) ZERO_XMM(9) ZERO_XMM(10) ZERO_XMM(11) ZERO_XMM(12)
                                 ZERO_XMM(13) ZERO_XMM(14) ZERO_XMM(15)::: XMM_CLOBBERS);
#endif
}

SecBuf *secbuf_new(size_t reserve) {
        SecBuf *b = calloc(1, sizeof(SecBuf));
        if (!b)
                return NULL;
        b->cap = reserve + 1;
        b->data = data_alloc(b->cap);
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
        uint8_t *n = data_alloc(cap);
        if (!n)
                return -ENOMEM;
        memcpy(n, b->data, b->len + 1);
        data_free(b->data, b->cap);
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
        if (b->data)
                data_free(b->data, b->cap);
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

char *secbuf_header_line(const char *name, const char *prefix, const SecBuf *value) {
        size_t n = strlen(name), p = strlen(prefix);
        char *s = malloc(n + 2 + p + value->len + 1);
        if (!s)
                return NULL;
        memcpy(s, name, n);
        memcpy(s + n, ": ", 2);
        memcpy(s + n + 2, prefix, p);
        memcpy(s + n + 2 + p, value->data, value->len);
        s[n + 2 + p + value->len] = 0;
        return s;
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
