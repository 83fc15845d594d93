/* SPDX-License-Identifier: MIT */
#include "util/textbuf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool reserve(TextBuf *b, size_t more) {
        if (b->error)
                return false;
        if (more > b->max || b->len > b->max - more) {
                b->error = -E2BIG;
                return false;
        }
        size_t need = b->len + more + 1;
        if (need <= b->cap)
                return true;
        size_t cap = MAX(need, MAX((size_t) 256, b->cap * 2));
        char *d = realloc(b->data, cap);
        if (!d) {
                b->error = -ENOMEM;
                return false;
        }
        b->data = d;
        b->cap = cap;
        return true;
}

void textbuf_append(TextBuf *b, const char *s, size_t len) {
        if (!reserve(b, len))
                return;
        memcpy(b->data + b->len, s, len);
        b->len += len;
        b->data[b->len] = 0;
}

void textbuf_puts(TextBuf *b, const char *s) {
        textbuf_append(b, s, strlen(s));
}

void textbuf_printf(TextBuf *b, const char *fmt, ...) {
        va_list ap;
        char small[256];

        va_start(ap, fmt);
        int n = vsnprintf(small, sizeof(small), fmt, ap);
        va_end(ap);
        if (n < 0) {
                b->error = b->error ?: -EINVAL;
                return;
        }
        if ((size_t) n < sizeof(small)) {
                textbuf_append(b, small, (size_t) n);
                return;
        }
        if (!reserve(b, (size_t) n))
                return;
        va_start(ap, fmt);
        vsnprintf(b->data + b->len, (size_t) n + 1, fmt, ap);
        va_end(ap);
        b->len += (size_t) n;
}

void textbuf_json_string(TextBuf *b, const char *s) {
        if (!s) {
                textbuf_puts(b, "null");
                return;
        }
        textbuf_append(b, "\"", 1);
        const char *run = s;
        for (const char *p = s; *p; p++) {
                unsigned char c = (unsigned char) *p;
                if (c >= 0x20 && c != '"' && c != '\\')
                        continue;
                textbuf_append(b, run, (size_t) (p - run));
                if (c == '"' || c == '\\') {
                        char e[2] = { '\\', (char) c };
                        textbuf_append(b, e, 2);
                } else if (c == '\n')
                        textbuf_puts(b, "\\n");
                else if (c == '\t')
                        textbuf_puts(b, "\\t");
                else
                        textbuf_printf(b, "\\u%04x", c);
                run = p + 1;
        }
        textbuf_puts(b, run);
        textbuf_append(b, "\"", 1);
}

void textbuf_consume(TextBuf *b, size_t n) {
        if (n >= b->len) {
                b->len = 0;
                return;
        }
        memmove(b->data, b->data + n, b->len - n);
        b->len -= n;
        b->data[b->len] = 0;
}

void textbuf_done(TextBuf *b) {
        free(b->data);
        *b = TEXTBUF_INIT(b->max);
}
