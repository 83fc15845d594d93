/* SPDX-License-Identifier: MIT */
/* convert-eso: ESO's templates (Go text/template, engine v2) in secretsyncd's template
 * language, for what has an equivalent. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/eso-walk.h"

static bool template_key_char(char ch) {
        return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
               ch == '-' || ch == '.';
}

/* One Go template action's words, quotes kept. */
static size_t split_words(char *s, char **words, size_t max) {
        size_t n = 0;
        while (*s) {
                while (*s == ' ' || *s == '\t' || *s == '\n')
                        *s++ = 0;
                if (!*s)
                        break;
                if (n == max)
                        return max + 1;
                words[n++] = s;
                if (*s == '"' || *s == '`') {
                        char q = *s++;
                        while (*s && *s != q)
                                s += (*s == '\\' && q == '"' && s[1]) ? 2 : 1;
                        if (*s)
                                s++;
                } else if (*s == '(') {
                        return max + 1;
                } else
                        while (*s && *s != ' ' && *s != '\t' && *s != '\n')
                                s++;
        }
        return n;
}

/* {{ .key }}, {{ index . "key" }}, {{ .key | b64enc }}, {{ b64enc .key }}, {{ .key | toJson }} ->
 * ours; anything else is an error. */
static int template_action(const char *action, size_t len, const Object *o, FILE *b, char **ret_why) {
        /* "|" is a word of its own, with or without spaces around it */
        _cleanup_free_ char *s = malloc(3 * len + 1);
        if (!s)
                return -ENOMEM;
        char *w = s;
        char q = 0;
        for (size_t k = 0; k < len; k++) {
                if (q && action[k] == q)
                        q = 0;
                else if (!q && (action[k] == '"' || action[k] == '`'))
                        q = action[k];
                if (!q && action[k] == '|') {
                        memcpy(w, " | ", 3);
                        w += 3;
                } else
                        *w++ = action[k];
        }
        *w = 0;
        char *words[8];
        const char *key = NULL, *filter = NULL;
        size_t n = split_words(s, words, ELEMENTSOF(words));
        if (n > ELEMENTSOF(words)) {
                (void) !asprintf(ret_why, "{{%.*s}}: only a key and one of b64enc or toJson have an equivalent",
                                 (int) len, action);
                return -EINVAL;
        }
        const char *fn = NULL;
        size_t i = 0;
        if (n >= 2 && words[0][0] != '.' && !streq(words[0], "index"))
                fn = words[i++];
        if (i < n && streq(words[i], "index") && i + 2 < n && streq(words[i + 1], ".") &&
            (words[i + 2][0] == '"' || words[i + 2][0] == '`')) {
                char *k = words[i + 2] + 1;
                size_t kl = strlen(k);
                if (kl > 0 && (k[kl - 1] == '"' || k[kl - 1] == '`'))
                        k[kl - 1] = 0;
                key = k;
                i += 3;
        } else if (i < n && words[i][0] == '.' && words[i][1] && !strchr(words[i] + 1, '.')) {
                key = words[i] + 1;
                i++;
        }
        if (i < n && streq(words[i], "|") && i + 2 == n && !fn)
                fn = words[i + 1], i += 2;
        if (fn && streq(fn, "b64enc"))
                filter = "base64";
        else if (fn && (streq(fn, "toJson") || streq(fn, "toRawJson")))
                filter = "json";
        bool ok = key && i == n && (!fn || filter) && *key;
        for (const char *k = key; ok && *k; k++)
                ok = template_key_char(*k) && *k != '"' && *k != '\\';
        if (!ok) {
                (void) !asprintf(ret_why,
                                 "{{%.*s}}: only {{ .key }}, {{ index . \"key\" }} and those with | b64enc or | "
                                 "toJson have an equivalent",
                                 (int) len, action);
                return -EINVAL;
        }
        if (!eso_data_may_have(o, key)) {
                (void) !asprintf(ret_why, "{{%.*s}}: \"%s\" is not a key of this ExternalSecret's data", (int) len,
                                 action, key);
                return -EINVAL;
        }
        fprintf(b, "{{ %s%s%s }}", key, filter ? " | " : "", filter ? filter : "");
        return 0;
}

int eso_convert_template(const char *t, const Object *o, char **ret, char **ret_why) {
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        _cleanup_fclose_ FILE *b = open_memstream(&buf, &size);
        if (!b)
                return -ENOMEM;
        bool trim_next = false;
        const char *p = t;
        for (;;) {
                const char *open = strstr(p, "{{");
                const char *lit_end = open ? open : p + strlen(p);
                const char *lit = p;
                if (trim_next)
                        while (lit < lit_end && strchr(" \t\r\n", *lit))
                                lit++;
                bool trim_before = open && open[2] == '-' && strchr(" \t\r\n", open[3]);
                const char *le = lit_end;
                if (trim_before)
                        while (le > lit && strchr(" \t\r\n", le[-1]))
                                le--;
                fwrite(lit, 1, (size_t) (le - lit), b);
                if (!open)
                        break;
                const char *a = open + 2 + (trim_before ? 2 : 0);
                const char *close = a;
                for (char q = 0; *close; close++) {
                        if (q) {
                                if (*close == '\\' && q == '"' && close[1])
                                        close++;
                                else if (*close == q)
                                        q = 0;
                        } else if (*close == '"' || *close == '`')
                                q = *close;
                        else if (close[0] == '}' && close[1] == '}')
                                break;
                }
                if (!*close) {
                        *ret_why = strdup("an action that is not closed with }}");
                        return -EINVAL;
                }
                const char *ae = close;
                trim_next = ae - a >= 2 && ae[-1] == '-' && strchr(" \t\r\n", ae[-2]);
                if (trim_next)
                        ae -= 2;
                const char *s = a;
                while (s < ae && strchr(" \t\r\n", *s))
                        s++;
                if (ae - s >= 4 && strncmp(s, "/*", 2) == 0 && strncmp(ae - 2, "*/", 2) == 0)
                        ; /* a comment */
                else {
                        int r = template_action(a, (size_t) (ae - a), o, b, ret_why);
                        if (r < 0)
                                return r;
                }
                p = close + 2;
        }
        if (fflush(b) != 0)
                return -ENOMEM;
        fclose(TAKE_PTR(b));
        *ret = TAKE_PTR(buf);
        return 0;
}
