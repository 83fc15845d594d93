/* SPDX-License-Identifier: MIT */
/* The lexical pre-scan of the `secrets` list (see config-scan.h). */
#include "core/config-scan.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/cleanup.h"

static size_t skip_blank(const char *t, size_t i, unsigned *line) {
        for (;;) {
                if (t[i] == '\n')
                        (*line)++, i++;
                else if (t[i] == ' ' || t[i] == '\t' || t[i] == '\r' || t[i] == '\f')
                        i++;
                else if (t[i] == '#' || (t[i] == '/' && t[i + 1] == '/'))
                        while (t[i] && t[i] != '\n')
                                i++;
                else if (t[i] == '/' && t[i + 1] == '*') {
                        for (i += 2; t[i] && !(t[i] == '*' && t[i + 1] == '/'); i++)
                                if (t[i] == '\n')
                                        (*line)++;
                        if (t[i])
                                i += 2;
                } else
                        return i;
        }
}

bool config_split_secrets(const char *t, SecretsSplit *ret) {
        SecretsSplit sp = { 0 };
        unsigned line = 1;
        int depth = 0;
        bool found = false, expect_name = true;
        size_t i = 0, cap = 0;

        for (;;) {
                i = skip_blank(t, i, &line);
                char ch = t[i];
                if (!ch)
                        break;
                if (ch == '@')
                        goto no;
                if (ch == '"') {
                        for (i++; t[i] && t[i] != '"'; i++)
                                if (t[i] == '\\' && t[i + 1])
                                        i++;
                                else if (t[i] == '\n')
                                        line++;
                        if (!t[i])
                                goto no;
                        i++;
                        expect_name = false;
                        continue;
                }
                if (depth == 0 && expect_name && (isalpha((unsigned char) ch) || ch == '*')) {
                        size_t s0 = i;
                        while (t[i] && (isalnum((unsigned char) t[i]) || strchr("-_*", t[i])))
                                i++;
                        bool is_secrets = i - s0 == 7 && strncmp(t + s0, "secrets", 7) == 0;
                        i = skip_blank(t, i, &line);
                        if (t[i] != '=' && t[i] != ':')
                                goto no;
                        i = skip_blank(t, i + 1, &line);
                        expect_name = false;
                        if (!is_secrets)
                                continue;
                        if (found || t[i] != '(')
                                goto no;
                        found = true;
                        sp.open = i++;
                        /* the elements, split at top-level commas */
                        int d = 0;
                        size_t es = i;
                        unsigned eline = line;
                        bool any = false;
                        for (;;) {
                                size_t j = skip_blank(t, i, &line);
                                if (!t[j])
                                        goto no;
                                if (t[j] == '"') {
                                        for (j++; t[j] && t[j] != '"'; j++)
                                                if (t[j] == '\\' && t[j + 1])
                                                        j++;
                                                else if (t[j] == '\n')
                                                        line++;
                                        if (!t[j])
                                                goto no;
                                        i = j + 1;
                                        any = true;
                                        continue;
                                }
                                if (t[j] == '@')
                                        goto no;
                                if (d == 0 && (t[j] == ',' || t[j] == ')')) {
                                        /* An empty element, as in `( , x )` or `( x, )`:
                                         * libconfig's to report. */
                                        if (!any && (t[j] == ',' || sp.n > 0))
                                                goto no;
                                        if (any) {
                                                if (sp.n == cap) {
                                                        cap = cap ? cap * 2 : 64;
                                                        Span *m = reallocarray(sp.elems, cap, sizeof(Span));
                                                        if (!m)
                                                                goto no;
                                                        sp.elems = m;
                                                }
                                                sp.elems[sp.n++] = (Span) { es, j, eline };
                                        }
                                        if (t[j] == ')') {
                                                sp.close = j;
                                                i = j + 1;
                                                break;
                                        }
                                        i = es = j + 1;
                                        eline = line;
                                        any = false;
                                        continue;
                                }
                                if (strchr("({[", t[j]))
                                        d++;
                                else if (strchr(")}]", t[j]) && --d < 0)
                                        goto no;
                                any = true;
                                i = j + 1;
                        }
                        continue;
                }
                if (strchr("({[", ch))
                        depth++, expect_name = true;
                else if (strchr(")}]", ch)) {
                        if (--depth < 0)
                                goto no;
                } else if (depth == 0 && (ch == ';' || ch == ','))
                        expect_name = true;
                else if (depth == 0)
                        expect_name = false;
                i++;
        }
        if (!found || depth != 0)
                goto no;
        *ret = sp;
        return true;
no:
        free(sp.elems);
        return false;
}

ssize_t config_blanked_read(void *cookie, char *buf, size_t size) {
        BlankedText *b = cookie;
        ssize_t n = pread(b->fd, buf, MIN(size, b->len - b->pos), (off_t) b->pos);
        /* A file cut short reads as ending early; the check after the parse rejects it. */
        if (n <= 0)
                return n < 0 ? -1 : 0;
        for (ssize_t i = 0; i < n; i++, b->pos++)
                if (b->pos >= b->from && b->pos < b->to && buf[i] != '\n')
                        buf[i] = ' ';
        return n;
}

