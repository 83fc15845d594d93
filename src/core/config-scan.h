/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* A long `secrets` list makes a big libconfig tree (about 2 KiB a secret). To keep memory
 * small, the main file is scanned for the top-level list (lexically only: strings,
 * comments, brackets), and libconfig then parses the rest of the file, with the list
 * emptied, and each element of the list on its own. Anything unusual (an @include, a
 * second `secrets`, unbalanced brackets, an empty element) and the whole file goes to
 * libconfig as it is; so does a file in which the split finds a syntax error, so that both
 * ways give the same errors. */
typedef struct Span {
        size_t start, end; /* [start, end) of an element's text */
        unsigned line;     /* the line start is on */
} Span;

typedef struct SecretsSplit {
        size_t open, close; /* offsets of the list's ( and ) */
        Span *elems;
        size_t n;
} SecretsSplit;

/* Finds the list's elements in t (NUL-terminated); false when the file must go to libconfig
 * whole. */
bool config_split_secrets(const char *t, SecretsSplit *ret);

/* The configuration text with [from, to) read as blanks, line breaks kept (so that line
 * numbers stay right). Read from the file again, so that the text is not held meanwhile:
 * a fopencookie() read function. */
typedef struct BlankedText {
        int fd;
        size_t len, pos, from, to;
} BlankedText;

ssize_t config_blanked_read(void *cookie, char *buf, size_t size);
