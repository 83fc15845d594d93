/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "util/cleanup.h"

/* (Not "strbuf": libconfig exports strbuf_append() and would call ours.)
 * A growing text buffer with a hard cap (as curl's dynbuf): what the control socket, the
 * state file and the metrics file are composed in. Not for secrets (not wiped). Once an
 * append fails (-ENOMEM, or -E2BIG past max) the buffer stays failed: check textbuf_error()
 * once at the end instead of after every append. */
typedef struct TextBuf {
        char *data; /* NUL-terminated while len > 0 */
        size_t len, cap, max;
        int error;
} TextBuf;

#define TEXTBUF_INIT(m) ((TextBuf) { .max = (m) })

void textbuf_append(TextBuf *b, const char *s, size_t len);
void textbuf_puts(TextBuf *b, const char *s);
void textbuf_printf(TextBuf *b, const char *fmt, ...) _printf_(2, 3);
/* A JSON string literal (quotes included); NULL appends null. */
void textbuf_json_string(TextBuf *b, const char *s);
/* Drop the first n bytes (what a socket took). */
void textbuf_consume(TextBuf *b, size_t n);
void textbuf_done(TextBuf *b);
static inline int textbuf_error(const TextBuf *b) {
        return b->error;
}
static inline void textbuf_donep(TextBuf *b) {
        textbuf_done(b);
}
#define _cleanup_textbuf_ _cleanup_(textbuf_donep)
