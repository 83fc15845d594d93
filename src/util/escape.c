/* SPDX-License-Identifier: MIT */
#include "util/escape.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* The length of the valid UTF-8 character at s (RFC 3629: no overlong forms, no
 * surrogates, nothing past U+10FFFF), or 0. */
static size_t utf8_char(const unsigned char *s) {
        unsigned char lo = 0x80, hi = 0xBF;
        size_t n;

        if (s[0] < 0x80)
                return 1;
        if (s[0] >= 0xC2 && s[0] <= 0xDF)
                n = 2;
        else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
                n = 3;
                if (s[0] == 0xE0)
                        lo = 0xA0;
                else if (s[0] == 0xED)
                        hi = 0x9F;
        } else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
                n = 4;
                if (s[0] == 0xF0)
                        lo = 0x90;
                else if (s[0] == 0xF4)
                        hi = 0x8F;
        } else
                return 0;
        if (s[1] < lo || s[1] > hi)
                return 0;
        for (size_t i = 2; i < n; i++)
                if (s[i] < 0x80 || s[i] > 0xBF)
                        return 0;
        return n;
}

char *escape_text(const char *s, char *buf, size_t size) {
        const unsigned char *p = (const unsigned char *) s;
        size_t o = 0;

        while (*p) {
                size_t n = utf8_char(p);
                /* C0 controls, DEL, and C1 controls (U+0080..U+009F: 0xC2 0x80..0x9F, which
                 * some terminals obey as escape sequences) */
                bool control = n == 1 ? (*p < 0x20 || *p == 0x7f) : n == 2 && p[0] == 0xC2 && p[1] < 0xA0;
                if (n == 0 || control) {
                        size_t k = n ? n : 1;
                        if (o + 4 * k >= size)
                                break;
                        for (size_t i = 0; i < k; i++, o += 4)
                                snprintf(buf + o, 5, "\\x%02x", p[i]);
                        p += k;
                        continue;
                }
                if (o + n >= size)
                        break;
                memcpy(buf + o, p, n);
                o += n;
                p += n;
        }
        buf[o] = 0;
        return buf;
}

bool text_has_control(const char *s) {
        for (const unsigned char *p = (const unsigned char *) s; *p; p++)
                if (*p < 0x20 || *p == 0x7f)
                        return true;
        return false;
}
