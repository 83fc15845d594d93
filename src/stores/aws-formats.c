/* SPDX-License-Identifier: MIT */
/* Just enough XML for STS replies (flat elements holding text), the SDKs' INI credentials
 * file and ISO 8601 times: small parsers with named limits, no library needed for
 * what is a handful of fields. */
#include "stores/aws-formats.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/cleanup.h"

static const char *find_mem(const char *h, size_t hlen, const char *n) {
        size_t nlen = strlen(n);
        if (nlen > hlen)
                return NULL;
        for (size_t i = 0; i + nlen <= hlen; i++)
                if (h[i] == n[0] && memcmp(h + i, n, nlen) == 0)
                        return h + i;
        return NULL;
}

static int xml_decode(const char *s, size_t len, SecBuf *out) {
        static const struct {
                const char *name;
                char c;
        } ents[] = { { "&amp;", '&' }, { "&lt;", '<' }, { "&gt;", '>' }, { "&quot;", '"' }, { "&apos;", '\'' } };
        for (size_t i = 0; i < len;) {
                if (s[i] == '<')
                        return -EBADMSG; /* nested markup: not a plain value */
                if (s[i] != '&') {
                        if (secbuf_append_char(out, s[i++]) < 0)
                                return -ENOMEM;
                        continue;
                }
                bool found = false;
                for (size_t e = 0; e < sizeof(ents) / sizeof(ents[0]); e++) {
                        size_t n = strlen(ents[e].name);
                        if (len - i >= n && memcmp(s + i, ents[e].name, n) == 0) {
                                if (secbuf_append_char(out, ents[e].c) < 0)
                                        return -ENOMEM;
                                i += n;
                                found = true;
                                break;
                        }
                }
                if (!found)
                        return -EBADMSG;
        }
        return 0;
}

int aws_xml_value(const void *xml, size_t len, const char *tag, SecBuf **ret) {
        char open[72], close[72];
        const char *doc = xml;

        if (len > AWS_XML_BODY_MAX)
                return -E2BIG;
        if (strlen(tag) > 64)
                return -EINVAL;
        snprintf(open, sizeof(open), "<%s>", tag);
        snprintf(close, sizeof(close), "</%s>", tag);
        const char *a = find_mem(doc, len, open);
        if (!a)
                return -ENOENT;
        a += strlen(open);
        const char *b = find_mem(a, len - (size_t) (a - doc), close);
        if (!b)
                return -EBADMSG;
        if ((size_t) (b - a) > AWS_XML_VALUE_MAX)
                return -E2BIG;
        _cleanup_secbuf_ SecBuf *v = secbuf_new((size_t) (b - a) + 1);
        if (!v)
                return -ENOMEM;
        int r = xml_decode(a, (size_t) (b - a), v);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(v);
        return 0;
}

static const char *skip_ws(const char *p, const char *end) {
        while (p < end && (*p == ' ' || *p == '\t'))
                p++;
        return p;
}

static const char *trim_end(const char *a, const char *e) {
        while (e > a && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
                e--;
        return e;
}

/* Does "[name]" or "[profile name]" (inner text a..e) name the profile? */
static bool section_is(const char *a, const char *e, const char *profile) {
        size_t n = strlen(profile);
        a = skip_ws(a, e);
        e = trim_end(a, e);
        if ((size_t) (e - a) > 8 && memcmp(a, "profile", 7) == 0 && (a[7] == ' ' || a[7] == '\t'))
                a = skip_ws(a + 7, e);
        return (size_t) (e - a) == n && memcmp(a, profile, n) == 0;
}

int aws_ini_value(const SecBuf *ini, const char *profile, const char *key, SecBuf **ret) {
        const char *p = (const char *) ini->data, *end = p + ini->len;
        size_t klen = strlen(key);
        bool in = false;

        while (p < end) {
                const char *nl = memchr(p, '\n', (size_t) (end - p));
                const char *le = nl ? nl : end;
                const char *a = skip_ws(p, le), *e = trim_end(a, le);
                p = nl ? nl + 1 : end;
                if (a == e || *a == '#' || *a == ';')
                        continue;
                if (*a == '[') {
                        const char *rb = memchr(a, ']', (size_t) (e - a));
                        in = rb && section_is(a + 1, rb, profile);
                        continue;
                }
                if (!in || (size_t) (e - a) <= klen || memcmp(a, key, klen) != 0)
                        continue;
                const char *q = skip_ws(a + klen, e);
                if (q == e || *q != '=')
                        continue;
                q = skip_ws(q + 1, e);
                SecBuf *v = secbuf_new_from(q, (size_t) (e - q));
                if (!v)
                        return -ENOMEM;
                *ret = v;
                return 0;
        }
        return -ENOENT;
}

int aws_parse_time(const char *s, int64_t *ret) {
        struct tm tm = { 0 };
        const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
        if (!p)
                return -EINVAL;
        if (*p == '.') /* fraction of a second */
                for (p++; *p >= '0' && *p <= '9'; p++)
                        ;
        int64_t off = 0;
        if (*p == 'Z' || *p == 'z')
                p++;
        else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':' && strspn(p + 1, "0123456789") == 2 &&
                 strspn(p + 4, "0123456789") == 2) {
                int h = (p[1] - '0') * 10 + (p[2] - '0'), m = (p[4] - '0') * 10 + (p[5] - '0');
                if (h > 23 || m > 59)
                        return -EINVAL;
                off = (int64_t) (h * 3600 + m * 60) * (*p == '+' ? 1 : -1);
                p += 6;
        } else
                return -EINVAL;
        if (*p)
                return -EINVAL;
        time_t t = timegm(&tm);
        if (t == (time_t) -1)
                return -EINVAL;
        *ret = (int64_t) t - off;
        return 0;
}

