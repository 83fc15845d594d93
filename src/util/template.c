/* SPDX-License-Identifier: MIT */
#include "util/template.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/base64.h"
#include "util/cleanup.h"
#include "util/error.h"

typedef enum Filter {
        FILTER_NONE,
        FILTER_BASE64,
        FILTER_JSON,
} Filter;

typedef int (*text_cb)(const char *p, size_t len, void *userdata, char **ret_error);
typedef int (*expr_cb)(const char *key, Filter filter, unsigned line, void *userdata, char **ret_error);

bool template_utf8_valid(const void *p, size_t len, bool reject_noncharacters) {
        const uint8_t *s = p;

        for (size_t i = 0; i < len;) {
                uint8_t c = s[i];
                uint32_t cp;
                size_t n;

                if (c < 0x80) {
                        i++;
                        continue;
                }
                if (c >= 0xc2 && c <= 0xdf) {
                        n = 2;
                        cp = c & 0x1f;
                } else if ((c & 0xf0) == 0xe0) {
                        n = 3;
                        cp = c & 0x0f;
                } else if (c >= 0xf0 && c <= 0xf4) {
                        n = 4;
                        cp = c & 0x07;
                } else
                        return false; /* continuation byte, 0xc0/0xc1 (overlong) or 0xf5+ */

                if (len - i < n)
                        return false;
                for (size_t k = 1; k < n; k++) {
                        if ((s[i + k] & 0xc0) != 0x80)
                                return false;
                        cp = (cp << 6) | (s[i + k] & 0x3f);
                }
                if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
                    (cp >= 0xd800 && cp <= 0xdfff))
                        return false;
                if (reject_noncharacters && ((cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) == 0xfffe))
                        return false;
                i += n;
        }
        return true;
}

int template_json_string_append(SecBuf *b, const void *p, size_t len) {
        static const char hex[] = "0123456789abcdef";
        const uint8_t *s = p;
        size_t run = 0; /* start of the pending run of bytes that need no escaping */
        int r;

        if (!template_utf8_valid(p, len, false))
                return -EILSEQ;

        r = secbuf_append_char(b, '"');
        if (r < 0)
                return r;
        for (size_t i = 0; i < len; i++) {
                char esc[7];
                size_t n;

                if (s[i] == '"' || s[i] == '\\') {
                        esc[0] = '\\';
                        esc[1] = (char) s[i];
                        n = 2;
                } else if (s[i] < 0x20) {
                        const char *named = s[i] == '\n' ? "\\n" : s[i] == '\t' ? "\\t" : s[i] == '\r' ? "\\r"
                                          : s[i] == '\b' ? "\\b" : s[i] == '\f' ? "\\f" : NULL;
                        if (named) {
                                memcpy(esc, named, 2);
                                n = 2;
                        } else {
                                memcpy(esc, "\\u00", 4);
                                esc[4] = hex[s[i] >> 4];
                                esc[5] = hex[s[i] & 0xf];
                                n = 6;
                        }
                } else
                        continue;

                r = secbuf_append(b, s + run, i - run);
                if (r >= 0)
                        r = secbuf_append(b, esc, n);
                explicit_bzero(esc, sizeof(esc));
                if (r < 0)
                        return r;
                run = i + 1;
        }
        r = secbuf_append(b, s + run, len - run);
        if (r < 0)
                return r;
        return secbuf_append_char(b, '"');
}

static bool is_key_char(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
               c == '.' || c == '_';
}

static bool is_filter_char(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static const char *skip_blanks(const char *p, const char *end) {
        while (p < end && (*p == ' ' || *p == '\t'))
                p++;
        return p;
}

/* One pass over the template, handing literal text and expressions to the callbacks. Both
 * render and check use it, so they cannot disagree about the syntax. */
static int template_walk(const char *tmpl, text_cb on_text, expr_cb on_expr, void *userdata, char **ret_error) {
        unsigned line = 1;
        const char *p = tmpl;
        int r;

        for (;;) {
                const char *open = strstr(p, "{{");
                const char *text_end = open ?: p + strlen(p);

                for (const char *q = p; q < text_end; q++)
                        if (*q == '\n')
                                line++;
                if (text_end > p) {
                        r = on_text(p, (size_t) (text_end - p), userdata, ret_error);
                        if (r < 0)
                                return r;
                }
                if (!open)
                        return 0;

                /* An expression lives on one line: a lone "{{" must not swallow the rest of the
                 * file and report an error far away from where the mistake is. */
                const char *inner = open + 2;
                const char *close = strstr(inner, "}}");
                if (!close || memchr(inner, '\n', (size_t) (close - inner)))
                        return error_set(ret_error, -EINVAL,
                                    "template line %u: unterminated '{{' (no '}}' on the same line)", line);

                const char *q = skip_blanks(inner, close);
                const char *key = q;
                while (q < close && is_key_char(*q))
                        q++;
                size_t key_len = (size_t) (q - key);
                if (key_len == 0)
                        return error_set(ret_error, -EINVAL,
                                    "template line %u: expected a key name ([-._a-zA-Z0-9]+) after '{{'", line);

                Filter filter = FILTER_NONE;
                q = skip_blanks(q, close);
                if (q < close && *q == '|') {
                        q = skip_blanks(q + 1, close);
                        const char *f = q;
                        while (q < close && is_filter_char(*q))
                                q++;
                        size_t f_len = (size_t) (q - f);
                        if (f_len == 0)
                                return error_set(ret_error, -EINVAL,
                                            "template line %u: expected a filter name after '|' for key '%.*s'", line,
                                            (int) MIN(key_len, (size_t) 128), key);
                        if (f_len == 6 && memcmp(f, "base64", 6) == 0)
                                filter = FILTER_BASE64;
                        else if (f_len == 4 && memcmp(f, "json", 4) == 0)
                                filter = FILTER_JSON;
                        else
                                return error_set(ret_error, -EINVAL,
                                            "template line %u: unknown filter '%.*s' for key '%.*s' (known: base64, json)",
                                            line, (int) MIN(f_len, (size_t) 64), f, (int) MIN(key_len, (size_t) 128),
                                            key);
                        q = skip_blanks(q, close);
                }
                if (q != close)
                        return error_set(ret_error, -EINVAL,
                                    "template line %u: unexpected '%c' in the expression for key '%.*s' "
                                    "(expected '{{ key }}' or '{{ key | filter }}')",
                                    line, *q, (int) MIN(key_len, (size_t) 128), key);

                _cleanup_free_ char *k = strndup(key, key_len);
                if (!k)
                        return error_set(ret_error, -ENOMEM, "out of memory");
                r = on_expr(k, filter, line, userdata, ret_error);
                if (r < 0)
                        return r;
                p = close + 2;
        }
}

static int check_size(size_t len, char **ret_error) {
        if (len > TEMPLATE_OUTPUT_MAX)
                return error_set(ret_error, -EFBIG, "rendered template is larger than %u MiB",
                            TEMPLATE_OUTPUT_MAX / (1024U * 1024U));
        return 0;
}

typedef struct RenderContext {
        SecBuf *out;
        const SecretData *data;
} RenderContext;

static int render_text(const char *p, size_t len, void *userdata, char **ret_error) {
        RenderContext *c = userdata;

        if (secbuf_append(c->out, p, len) < 0)
                return error_set(ret_error, -ENOMEM, "out of memory");
        return check_size(c->out->len, ret_error);
}

static int render_expr(const char *key, Filter filter, unsigned line, void *userdata, char **ret_error) {
        RenderContext *c = userdata;
        const SecBuf *v = secret_data_get(c->data, key);
        int r;

        if (!v)
                return error_set(ret_error, -ENOENT, "template line %u: unknown key '%s'", line, key);
        /* Refuse before encoding, so a huge value is not first copied in full. */
        r = check_size(v->len > TEMPLATE_OUTPUT_MAX ? v->len : c->out->len + v->len, ret_error);
        if (r < 0)
                return r;

        switch (filter) {
        case FILTER_BASE64:
                r = base64_encode_append(c->out, v->data, v->len);
                break;
        case FILTER_JSON:
                r = template_json_string_append(c->out, v->data, v->len);
                if (r == -EILSEQ)
                        return error_set(ret_error, r,
                                    "template line %u: the value of key '%s' is not valid UTF-8, which the json filter cannot encode",
                                    line, key);
                break;
        default:
                r = secbuf_append(c->out, v->data, v->len);
        }
        if (r < 0)
                return error_set(ret_error, r, "out of memory");
        return check_size(c->out->len, ret_error);
}

int template_render(const char *tmpl, const SecretData *d, SecBuf **ret, char **ret_error) {
        _cleanup_secbuf_ SecBuf *b = secbuf_new(strlen(tmpl));
        int r;

        if (!b)
                return error_set(ret_error, -ENOMEM, "out of memory");

        RenderContext c = { .out = b, .data = d };
        r = template_walk(tmpl, render_text, render_expr, &c, ret_error);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(b);
        return 0;
}

static int check_text(_unused_ const char *p, _unused_ size_t len, _unused_ void *userdata,
                      _unused_ char **ret_error) {
        return 0;
}

typedef struct CheckContext {
        char *const *keys;
        bool keys_complete;
} CheckContext;

static int check_expr(const char *key, _unused_ Filter filter, unsigned line, void *userdata, char **ret_error) {
        CheckContext *c = userdata;

        if (!c->keys_complete)
                return 0;
        for (char *const *k = c->keys; k && *k; k++)
                if (streq(*k, key))
                        return 0;
        return error_set(ret_error, -ENOENT, "template line %u: unknown key '%s'", line, key);
}

int template_check(const char *tmpl, char *const *keys, bool keys_complete, char **ret_error) {
        CheckContext c = { .keys = keys, .keys_complete = keys_complete };

        return template_walk(tmpl, check_text, check_expr, &c, ret_error);
}
