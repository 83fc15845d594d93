/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Secret bytes: explicit length, always NUL-terminated for convenience, wiped on
 * free and on every reallocation. Never printed. They live in OpenSSL's secure heap (left
 * out of core dumps, locked in memory) once secbuf_secure_heap_init() made one and while it
 * has room, else on the ordinary heap. */
typedef struct SecBuf {
        uint8_t *data;
        size_t len;
        size_t cap;
} SecBuf;

SecBuf *secbuf_new(size_t reserve);
SecBuf *secbuf_new_from(const void *data, size_t len);
SecBuf *secbuf_dup(const SecBuf *b);
int secbuf_append(SecBuf *b, const void *data, size_t len);
int secbuf_append_str(SecBuf *b, const char *s);
int secbuf_append_char(SecBuf *b, char c);
void secbuf_clear(SecBuf *b);
SecBuf *secbuf_free(SecBuf *b);
int secbuf_equal(const SecBuf *a, const SecBuf *b);
const char *secbuf_str(const SecBuf *b);
void secbuf_freep(SecBuf **b);
#define _cleanup_secbuf_ __attribute__((cleanup(secbuf_freep)))

/* A secure heap of size bytes (a power of two) for every SecBuf made after. Returns 1 if
 * its pages are locked in memory, 0 if RLIMIT_MEMLOCK did not allow it (they are still left
 * out of core dumps), -ENOMEM if there is none. Once per process. */
int secbuf_secure_heap_init(size_t size);

/* free() and realloc() that wipe what they give back (malloc_usable_size() bytes), for
 * libraries whose allocations may hold secrets (libcurl's buffers, OpenSSL's records),
 * installed where they allow it. */
void secbuf_wiping_free(void *p);
void *secbuf_wiping_realloc(void *p, size_t n);

/* Zeroes the CPU's vector registers, which keep the last bytes memcpy() moved (secrets
 * too) and which a core dump saves. For when the process goes idle. */
void secbuf_wipe_registers(void) __attribute__((noinline));

/* "Name: <prefix>value" (prefix may be "", or "Bearer ") in memory of exactly its size, for
 * erase_and_free(): asprintf() would leave a copy behind in the larger buffer glibc
 * formats into and frees. */
char *secbuf_header_line(const char *name, const char *prefix, const SecBuf *value);

/* Wipe and free a heap string that held secret material. */
void erase_and_free(char *s);
void erase_and_freep(char **s);
#define _cleanup_erase_ __attribute__((cleanup(erase_and_freep)))

/* Read a whole (small) file into wiped memory; whitespace around the content is stripped
 * when strip is set (credential files: a trailing newline is not part of the token). */
int secbuf_read_file(const char *path, size_t max, int strip, SecBuf **ret);
