/* SPDX-License-Identifier: MIT */
#include "util/urlencode.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static bool unreserved(unsigned char ch) {
        return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
               (ch && strchr("-._~", ch));
}

static const char hex[] = "0123456789ABCDEF";

int url_form_append(SecBuf *b, const char *name, const void *value, size_t len) {
        const unsigned char *v = value;
        if ((b->len && secbuf_append_char(b, '&') < 0) || secbuf_append_str(b, name) < 0 || secbuf_append_char(b, '=') < 0)
                return -ENOMEM;
        for (size_t i = 0; i < len; i++) {
                if (unreserved(v[i])) {
                        if (secbuf_append_char(b, (char) v[i]) < 0)
                                return -ENOMEM;
                        continue;
                }
                char e[3] = { '%', hex[v[i] >> 4], hex[v[i] & 15] };
                int r = secbuf_append(b, e, 3);
                explicit_bzero(e, sizeof(e));
                if (r < 0)
                        return -ENOMEM;
        }
        return 0;
}

int url_form_append_str(SecBuf *b, const char *name, const char *value) {
        return url_form_append(b, name, value, strlen(value));
}

char *url_escape(const char *s) {
        char *out = malloc(strlen(s) * 3 + 1), *o = out;
        if (!out)
                return NULL;
        for (const unsigned char *p = (const unsigned char *) s; *p; p++)
                if (unreserved(*p))
                        *o++ = (char) *p;
                else {
                        *o++ = '%';
                        *o++ = hex[*p >> 4];
                        *o++ = hex[*p & 15];
                }
        *o = '\0';
        return out;
}
