/* SPDX-License-Identifier: MIT */
/* The machinery of settings: errors with file and line, reading one setting, dumping one,
 * and the walks over a table of settings (ConfigSetting, see config.h): parse, dump,
 * defaults and free, each from the one description. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/config.h"
#include "util/cleanup.h"
#include "util/duration.h"
#include "util/escape.h"

/* ---------------------------------------------------------------- errors ---- */

unsigned config_setting_line(const ConfigParser *p, const config_setting_t *s) {
        for (; s; s = config_setting_parent(s)) {
                unsigned l = config_setting_source_line(s);
                if (l > 0)
                        return l + p->line_offset;
        }
        return 0;
}

/* The name of a file libconfig read, as the user can open it: libconfig records an @include
 * as written, relative to the main file's directory. NULL for the main file. The name is kept
 * in p->included (the model points to it). */
const char *config_included_file(ConfigParser *p, const char *f) {
        _cleanup_free_ char *full = NULL;
        const char *slash = strrchr(p->path, '/');
        size_t n = strv_length(p->included);

        if (!f || streq(f, p->path))
                return NULL;
        if (f[0] != '/' && slash && asprintf(&full, "%.*s/%s", (int) (slash - p->path), p->path, f) < 0)
                return p->path;
        if (!full && !(full = strdup(f)))
                return p->path;
        for (size_t i = 0; i < n; i++)
                if (streq(p->included[i], full))
                        return p->included[i];
        char **m = reallocarray(p->included, n + 2, sizeof(char *));
        if (!m)
                return p->path;
        p->included = m;
        m[n] = TAKE_PTR(full);
        m[n + 1] = NULL;
        return m[n];
}

static const char *setting_file(ConfigParser *p, const config_setting_t *s) {
        const char *f = s ? config_included_file(p, config_setting_source_file(s)) : NULL;
        return f ? f : p->path;
}

void config_setting_place(ConfigParser *p, const config_setting_t *s, const char **ret_file, unsigned *ret_line) {
        *ret_file = config_included_file(p, config_setting_source_file(s));
        *ret_line = config_setting_line(p, s);
}

static void config_error_at(ConfigParser *p, const char *file, unsigned line, const char *fmt, va_list ap) {
        char msg[1024];
        char *e = NULL;
        vsnprintf(msg, sizeof(msg), fmt, ap);
        if (p->n_errors >= CONFIG_ERRORS_MAX)
                return;
        if (asprintf(&e, "%s:%u: %s", file, line, msg) < 0)
                return;
        char **n = reallocarray(p->errors, p->n_errors + 2, sizeof(char *));
        if (!n) {
                free(e);
                return;
        }
        p->errors = n;
        p->errors[p->n_errors++] = e;
        p->errors[p->n_errors] = NULL;
}

void config_error(ConfigParser *p, const config_setting_t *s, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        config_error_at(p, setting_file(p, s), config_setting_line(p, s), fmt, ap);
        va_end(ap);
}

void config_error_at_line(ConfigParser *p, const char *file, unsigned line, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        config_error_at(p, file ? file : p->path, line, fmt, ap);
        va_end(ap);
}

/* "line N" when in the same file as what the message is about, else "FILE:N". */
const char *config_other_place(const char *file, const char *other, unsigned line, char *buf, size_t size) {
        if (streq_ptr(file, other))
                snprintf(buf, size, "line %u", line);
        else
                snprintf(buf, size, "%s:%u", other ? other : "the main file", line);
        return buf;
}

const char *config_type_name(int t) {
        switch (t) {
        case CONFIG_TYPE_GROUP:
                return "a group { ... }";
        case CONFIG_TYPE_INT:
        case CONFIG_TYPE_INT64:
                return "an integer";
        case CONFIG_TYPE_FLOAT:
                return "a number";
        case CONFIG_TYPE_STRING:
                return "a string";
        case CONFIG_TYPE_BOOL:
                return "a boolean";
        case CONFIG_TYPE_ARRAY:
                return "an array [ ... ]";
        case CONFIG_TYPE_LIST:
                return "a list ( ... )";
        default:
                return "something else";
        }
}

static const char *setting_path(const config_setting_t *s, char *buf, size_t size) {
        /* "secrets.[2].files.[0].mode"-like, but friendlier: only named members. */
        const char *name = config_setting_name(s);
        snprintf(buf, size, "%s", name ? name : "element");
        return buf;
}

void config_check_keys(ConfigParser *p, const config_setting_t *group, const char *const *allowed) {
        if (!group || !config_setting_is_group(group))
                return;
        int n = config_setting_length(group);
        for (int i = 0; i < n; i++) {
                const config_setting_t *m = config_setting_get_elem(group, (unsigned) i);
                const char *name = config_setting_name(m);
                bool ok = false;
                for (const char *const *a = allowed; *a; a++)
                        if (streq(*a, name)) {
                                ok = true;
                                break;
                        }
                if (!ok) {
                        char b[256];
                        const char *parent = config_setting_name(group);
                        config_error(p, m, "unknown setting '%s'%s%s", name,
                                     parent ? " in " : "", parent ? setting_path(group, b, sizeof(b)) : "");
                }
        }
}

const config_setting_t *config_member(const config_setting_t *group, const char *name) {
        return group ? config_setting_get_member(group, name) : NULL;
}

bool config_expect_type(ConfigParser *p, const config_setting_t *s, int type, const char *what) {
        int t = config_setting_type(s);
        if (t == type || (type == CONFIG_TYPE_INT && t == CONFIG_TYPE_INT64))
                return true;
        if (type == CONFIG_TYPE_LIST && t == CONFIG_TYPE_ARRAY && config_setting_length(s) == 0)
                return true; /* `x = [ ];` is an empty list too */
        config_error(p, s, "'%s' must be %s, not %s", what, config_type_name(type), config_type_name(t));
        return false;
}

int config_get_string(ConfigParser *p, const config_setting_t *group, const char *name, bool required,
                      char **ret) {
        const config_setting_t *s = config_member(group, name);
        if (!s) {
                if (required) {
                        config_error(p, group, "missing required setting '%s'", name);
                        return -EINVAL;
                }
                return 0;
        }
        if (!config_expect_type(p, s, CONFIG_TYPE_STRING, name))
                return -EINVAL;
        const char *v = config_setting_get_string(s);
        if (required && (!v || !*v)) {
                config_error(p, s, "'%s' must not be empty", name);
                return -EINVAL;
        }
        char *c = strdup(v ? v : "");
        if (!c)
                return -ENOMEM;
        free(*ret);
        *ret = c;
        return 1;
}

int config_get_int(ConfigParser *p, const config_setting_t *group, const char *name, long long min,
                   long long max, long long *ret) {
        const config_setting_t *s = config_member(group, name);
        if (!s)
                return 0;
        if (!config_expect_type(p, s, CONFIG_TYPE_INT, name))
                return -EINVAL;
        long long v = config_setting_get_int64(s);
        if (v < min || v > max) {
                config_error(p, s, "'%s' must be between %lld and %lld, not %lld", name, min, max, v);
                return -ERANGE;
        }
        *ret = v;
        return 1;
}

int config_get_bool(ConfigParser *p, const config_setting_t *group, const char *name, bool *ret) {
        const config_setting_t *s = config_member(group, name);
        if (!s)
                return 0;
        if (!config_expect_type(p, s, CONFIG_TYPE_BOOL, name))
                return -EINVAL;
        *ret = config_setting_get_bool(s);
        return 1;
}

int config_get_duration(ConfigParser *p, const config_setting_t *group, const char *name, uint64_t *ret) {
        const config_setting_t *s = config_member(group, name);
        uint64_t v;
        if (!s)
                return 0;
        int t = config_setting_type(s);
        if (t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64) {
                long long n = config_setting_get_int64(s);
                if (n < 0 || (uint64_t) n > DURATION_MAX_USEC / USEC_PER_SEC) {
                        config_error(p, s, "'%s' must be between 0 and %llu seconds", name,
                                     (unsigned long long) (DURATION_MAX_USEC / USEC_PER_SEC));
                        return -ERANGE;
                }
                v = (uint64_t) n * USEC_PER_SEC;
        } else if (t == CONFIG_TYPE_STRING) {
                const char *str = config_setting_get_string(s);
                int r = duration_parse(str, &v);
                if (r == -ERANGE) {
                        config_error(p, s, "'%s' = \"%s\" is too long (at most 365d)", name, str);
                        return r;
                }
                if (r < 0) {
                        config_error(p, s, "'%s' = \"%s\" is not a duration (like \"90s\", \"15m\", \"1h30m\", \"24h\")",
                                     name, str);
                        return r;
                }
        } else {
                config_error(p, s, "'%s' must be a duration string like \"1h\" or a number of seconds, not %s",
                             name, config_type_name(t));
                return -EINVAL;
        }
        *ret = v;
        return 1;
}

int config_get_strv(ConfigParser *p, const config_setting_t *group, const char *name, char ***ret) {
        const config_setting_t *s = config_member(group, name);
        if (!s)
                return 0;
        int t = config_setting_type(s);
        if (t != CONFIG_TYPE_ARRAY && t != CONFIG_TYPE_LIST) {
                config_error(p, s, "'%s' must be an array of strings [ \"...\", ... ], not %s", name, config_type_name(t));
                return -EINVAL;
        }
        int n = config_setting_length(s);
        _cleanup_strv_free_ char **l = calloc((size_t) n + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        for (int i = 0; i < n; i++) {
                const config_setting_t *e = config_setting_get_elem(s, (unsigned) i);
                if (config_setting_type(e) != CONFIG_TYPE_STRING) {
                        config_error(p, s, "'%s' must hold only strings", name);
                        return -EINVAL;
                }
                l[i] = strdup(config_setting_get_string(e));
                if (!l[i])
                        return -ENOMEM;
        }
        strv_free(*ret);
        *ret = TAKE_PTR(l);
        return 1;
}

int config_check_file_trust(const char *path, char **ret_message) {
        struct stat st;
        int r;

        if (stat(path, &st) < 0)
                return -errno;
        if (st.st_uid != 0 && st.st_uid != geteuid()) {
                r = asprintf(ret_message,
                             "%s is owned by uid %u, not root; refusing to trust it (fix: chown root:root %s)",
                             path, (unsigned) st.st_uid, path);
                return r < 0 ? -ENOMEM : -EPERM;
        }
        if (st.st_mode & (S_IWGRP | S_IWOTH)) {
                r = asprintf(ret_message,
                             "%s is writable by group or others (mode %04o); refusing to trust it (fix: chmod go-w %s)",
                             path, (unsigned) (st.st_mode & 07777), path);
                return r < 0 ? -ENOMEM : -EPERM;
        }
        return 0;
}

bool config_path_valid(const char *path) {
        if (path[0] != '/' || streq(path, "/"))
                return false;
        if (strstr(path, "//") || path[strlen(path) - 1] == '/')
                return false;
        for (const char *c = path; c; c = strchr(c + 1, '/')) {
                const char *comp = c + 1;
                size_t len = strcspn(comp, "/");
                if ((len == 1 && comp[0] == '.') || (len == 2 && comp[0] == '.' && comp[1] == '.'))
                        return false;
        }
        return true;
}

int config_check_credential_path(ConfigParser *p, const config_setting_t *s, const char *path) {
        _cleanup_free_ char *m = NULL;
        if (!p->strict_modes)
                return 0;
        int r = config_check_file_trust(path, &m);
        /* A credential that does not exist yet (a token another service writes later) is a
         * run-time failure, not a configuration error. */
        if (r < 0 && r != -ENOENT) {
                if (m)
                        config_error(p, s, "%s", m);
                else
                        config_error(p, s, "cannot check %s: %s", path, strerror(-r));
                return r;
        }
        return 0;
}

int config_get_credential_file(ConfigParser *p, const config_setting_t *group, const char *name,
                               bool required, char **ret) {
        int r = config_get_string(p, group, name, required, ret);
        if (r <= 0)
                return r;
        const config_setting_t *s = config_member(group, name);
        if (!config_path_valid(*ret)) {
                config_error(p, s, "'%s' = \"%s\" must be an absolute path", name, *ret);
                return -EINVAL;
        }
        r = config_check_credential_path(p, s, *ret);
        return r < 0 ? r : 1;
}

/* ------------------------------------------------------------------ dump ---- */

void config_dump_quoted(FILE *f, const char *s) {
        fputc('"', f);
        for (const unsigned char *c = (const unsigned char *) s; *c; c++) {
                switch (*c) {
                case '"':
                        fputs("\\\"", f);
                        break;
                case '\\':
                        fputs("\\\\", f);
                        break;
                case '\n':
                        fputs("\\n", f);
                        break;
                case '\t':
                        fputs("\\t", f);
                        break;
                case '\r':
                        fputs("\\r", f);
                        break;
                case '\f':
                        fputs("\\f", f);
                        break;
                default:
                        if (*c < 0x20 || *c == 0x7f)
                                fprintf(f, "\\x%02x", *c);
                        else
                                fputc(*c, f);
                }
        }
        fputc('"', f);
}

static void indent(ConfigDump *d) {
        for (int i = 0; i < d->indent; i++)
                fputs("  ", d->f);
}

void config_dump_string(ConfigDump *d, const char *key, const char *value) {
        indent(d);
        fprintf(d->f, "%s = ", key);
        config_dump_quoted(d->f, value ? value : "");
        fputs(";\n", d->f);
}

void config_dump_secret(ConfigDump *d, const char *key, const char *value) {
        config_dump_string(d, key, d->redact ? "<redacted>" : value);
}

void config_dump_int(ConfigDump *d, const char *key, long long value) {
        indent(d);
        fprintf(d->f, "%s = %lld;\n", key, value);
}

void config_dump_bool(ConfigDump *d, const char *key, bool value) {
        indent(d);
        fprintf(d->f, "%s = %s;\n", key, value ? "true" : "false");
}

void config_dump_duration(ConfigDump *d, const char *key, uint64_t usec) {
        char b[DURATION_FORMAT_MAX];
        config_dump_string(d, key, duration_format(usec, b, sizeof(b)));
}

void config_dump_strv(ConfigDump *d, const char *key, char *const *l) {
        indent(d);
        fprintf(d->f, "%s = [", key);
        for (size_t i = 0; l && l[i]; i++) {
                fputs(i ? ", " : " ", d->f);
                config_dump_quoted(d->f, l[i]);
        }
        fputs(" ];\n", d->f);
}

void config_dump_open(ConfigDump *d, const char *key) {
        indent(d);
        if (key)
                fprintf(d->f, "%s = {\n", key);
        else
                fputs("{\n", d->f);
        d->indent++;
}

void config_dump_close(ConfigDump *d) {
        d->indent--;
        indent(d);
        fputs("};\n", d->f);
}

void config_dump_list_open(ConfigDump *d, const char *key) {
        indent(d);
        fprintf(d->f, "%s = (\n", key);
        d->indent++;
}

void config_dump_list_close(ConfigDump *d) {
        d->indent--;
        indent(d);
        fputs(");\n", d->f);
}

void config_dump_item_open(ConfigDump *d) {
        indent(d);
        fputs("{\n", d->f);
        d->indent++;
}

void config_dump_item_close(ConfigDump *d, bool last) {
        d->indent--;
        indent(d);
        fputs(last ? "}\n" : "},\n", d->f);
}

void config_dump_mode(ConfigDump *d, const char *key, mode_t m) {
        char b[16];
        snprintf(b, sizeof(b), "%04o", (unsigned) m);
        config_dump_string(d, key, b);
}

/* ---------------------------------------------------------------- tables ---- */

#define SETTINGS_MAX 32

#define FIELD(obj, t, type) ((type *) ((char *) (obj) + (t)->offset))

static bool is_string(const ConfigSetting *t) {
        return t->type == CONFIG_SETTING_STRING || t->type == CONFIG_SETTING_PATH ||
               t->type == CONFIG_SETTING_CREDENTIAL;
}

/* > 0: read (and stored), 0: not set, < 0: could not be read (reported). */
static int parse_string(ConfigParser *p, const config_setting_t *g, const config_setting_t *s,
                        const ConfigSetting *t, char **v) {
        int r = config_get_string(p, g, t->name, t->flags & CONFIG_SETTING_REQUIRED, v);
        if (r <= 0)
                return r;
        if (!**v && (t->flags & CONFIG_SETTING_EMPTY_UNSET)) {
                free(*v);
                *v = NULL;
                return 0;
        }
        if (!**v && (t->flags & CONFIG_SETTING_NONEMPTY)) {
                config_error(p, s, "'%s' must not be empty", t->name);
                return -EINVAL;
        }
        /* A line break or an escape in a name, key or path would go on into the journal, a
         * file name or a request: only a template may span lines. */
        if (!(t->flags & CONFIG_SETTING_MULTILINE) && text_has_control(*v)) {
                config_error(p, s, "'%s' must not contain control characters (line breaks, escapes)", t->name);
                return -EINVAL;
        }
        if (t->valid && !t->valid(*v)) {
                config_error(p, s, "'%s' = \"%s\" is not a valid %s", t->name, *v, t->what);
                return -EINVAL;
        }
        if (t->type == CONFIG_SETTING_PATH && !config_path_valid(*v)) {
                config_error(p, s, "'%s' must be an absolute %s", t->name, t->what ?: "path");
                return -EINVAL;
        }
        if (t->type == CONFIG_SETTING_CREDENTIAL) {
                if (!config_path_valid(*v)) {
                        config_error(p, s, "'%s' = \"%s\" must be an absolute path", t->name, *v);
                        return -EINVAL;
                }
                r = config_check_credential_path(p, s, *v);
                if (r < 0)
                        return r;
        }
        return 1;
}

static int parse_enum(ConfigParser *p, const config_setting_t *g, const config_setting_t *s,
                      const ConfigSetting *t, int *v) {
        _cleanup_free_ char *name = NULL;
        int r = config_get_string(p, g, t->name, t->flags & CONFIG_SETTING_REQUIRED, &name);
        if (r <= 0)
                return r;
        int e = t->from_string(name);
        if (e < 0) {
                config_error(p, s, "'%s' = \"%s\" is not one of %s", t->name, name, t->choices);
                return -EINVAL;
        }
        *v = e;
        return 1;
}

static int parse_mode(ConfigParser *p, const config_setting_t *s, const ConfigSetting *t, mode_t *ret) {
        if (!s)
                return 0;
        if (config_setting_type(s) != CONFIG_TYPE_STRING) {
                config_error(p, s, "'%s' must be an octal string like \"0400\", not %s", t->name,
                             config_type_name(config_setting_type(s)));
                return -EINVAL;
        }
        const char *m = config_setting_get_string(s);
        size_t n = strlen(m);
        if (n < 3 || n > 5 || strspn(m, "01234567") != n) {
                config_error(p, s, "'%s' = \"%s\" is not an octal file mode like \"0400\"", t->name, m);
                return -EINVAL;
        }
        unsigned long v = strtoul(m, NULL, 8);
        if (v & ~0777UL) {
                config_error(p, s, "'%s' = \"%s\": setuid, setgid and sticky bits are not allowed", t->name, m);
                return -EINVAL;
        }
        *ret = (mode_t) v;
        return 1;
}

static int parse_list(ConfigParser *p, const config_setting_t *s, const ConfigSetting *t, void *obj) {
        void **array = FIELD(obj, t, void *);
        size_t *n = (size_t *) ((char *) obj + t->n_offset);

        if (!config_expect_type(p, s, CONFIG_TYPE_LIST, t->name))
                return -EINVAL;
        int len = config_setting_length(s);
        *array = calloc(MAX(len, 1), t->size);
        for (int i = 0; *array && i < len; i++) {
                const config_setting_t *e = config_setting_get_elem(s, (unsigned) i);
                void *elem = (char *) *array + t->size * (*n)++;
                const char *file;
                config_setting_place(p, e, &file, (unsigned *) ((char *) elem + t->line_offset));
                if (config_expect_type(p, e, CONFIG_TYPE_GROUP, t->name))
                        (void) config_settings_parse(p, e, t->group, elem, obj, NULL);
        }
        return 1;
}

static int parse_one(ConfigParser *p, const config_setting_t *g, const ConfigSetting *t, void *obj, void *parent) {
        const config_setting_t *s = config_member(g, t->name);
        long long n;
        int r;

        if (t->parse)
                return t->parse(p, g, t, obj, parent);
        switch (t->type) {
        case CONFIG_SETTING_STRING:
        case CONFIG_SETTING_PATH:
        case CONFIG_SETTING_CREDENTIAL:
                return parse_string(p, g, s, t, FIELD(obj, t, char *));
        case CONFIG_SETTING_DURATION:
                return config_get_duration(p, g, t->name, FIELD(obj, t, uint64_t));
        case CONFIG_SETTING_UNSIGNED:
                r = config_get_int(p, g, t->name, t->min, t->max, &n);
                if (r > 0)
                        *FIELD(obj, t, unsigned) = (unsigned) n;
                return r;
        case CONFIG_SETTING_BOOL:
                return config_get_bool(p, g, t->name, FIELD(obj, t, bool));
        case CONFIG_SETTING_STRV:
                return config_get_strv(p, g, t->name, FIELD(obj, t, char **));
        case CONFIG_SETTING_MODE:
                return parse_mode(p, s, t, FIELD(obj, t, mode_t));
        case CONFIG_SETTING_ENUM:
                return parse_enum(p, g, s, t, FIELD(obj, t, int));
        case CONFIG_SETTING_GROUP:
                if (!s) {
                        if (t->flags & CONFIG_SETTING_REQUIRED)
                                config_error(p, g, "missing required setting '%s'", t->name);
                        return t->flags & CONFIG_SETTING_REQUIRED ? -EINVAL : 0;
                }
                if (!config_expect_type(p, s, CONFIG_TYPE_GROUP, t->name))
                        return -EINVAL;
                r = config_settings_parse(p, s, t->group, FIELD(obj, t, char), obj, NULL);
                return r < 0 ? r : 1;
        case CONFIG_SETTING_LIST:
                return s ? parse_list(p, s, t, obj) : 0;
        }
        return -EINVAL;
}

int config_settings_parse(ConfigParser *p, const config_setting_t *group, const ConfigSetting *table, void *obj,
                          void *parent, const char *const *extra_keys) {
        const char *keys[SETTINGS_MAX + 1];
        size_t n = 0;

        for (const ConfigSetting *t = table; t->name && n < SETTINGS_MAX; t++)
                keys[n++] = t->name;
        for (const char *const *k = extra_keys; k && *k && n < SETTINGS_MAX; k++)
                keys[n++] = *k;
        keys[n] = NULL;
        config_check_keys(p, group, keys);

        for (const ConfigSetting *t = table; t->name; t++) {
                int r = parse_one(p, group, t, obj, parent);
                if (r < 0 && (t->flags & CONFIG_SETTING_STOP_UNREAD))
                        return r;
                if (!t->check || (r <= 0 && !(t->flags & CONFIG_SETTING_CHECK_ALWAYS)))
                        continue;
                void *o = t->type == CONFIG_SETTING_GROUP ? FIELD(obj, t, char) : obj;
                if (!t->check(p, group, config_member(group, t->name), o, t->type == CONFIG_SETTING_GROUP ? obj : parent) &&
                    (t->flags & CONFIG_SETTING_STOP_INVALID))
                        return -EINVAL;
        }
        return 0;
}

void config_settings_defaults(const ConfigSetting *table, void *obj) {
        for (const ConfigSetting *t = table; t->name; t++)
                switch (t->type) {
                case CONFIG_SETTING_DURATION:
                        *FIELD(obj, t, uint64_t) = t->def;
                        break;
                case CONFIG_SETTING_UNSIGNED:
                        *FIELD(obj, t, unsigned) = (unsigned) t->def;
                        break;
                case CONFIG_SETTING_BOOL:
                        *FIELD(obj, t, bool) = !!t->def;
                        break;
                case CONFIG_SETTING_MODE:
                        *FIELD(obj, t, mode_t) = (mode_t) t->def;
                        break;
                case CONFIG_SETTING_ENUM:
                        *FIELD(obj, t, int) = (int) t->def;
                        break;
                case CONFIG_SETTING_GROUP:
                        config_settings_defaults(t->group, FIELD(obj, t, char));
                        break;
                default:
                        break;
                }
}

int config_settings_fill(const ConfigSetting *table, void *obj) {
        for (const ConfigSetting *t = table; t->name; t++) {
                if (t->type == CONFIG_SETTING_GROUP) {
                        int r = config_settings_fill(t->group, FIELD(obj, t, char));
                        if (r < 0)
                                return r;
                } else if (is_string(t) && t->def_string && !*FIELD(obj, t, char *) &&
                           !(*FIELD(obj, t, char *) = strdup(t->def_string)))
                        return -ENOMEM;
        }
        return 0;
}

void config_settings_done(const ConfigSetting *table, void *obj) {
        for (const ConfigSetting *t = table; t->name; t++)
                if (t->done)
                        t->done(t, obj);
                else if (is_string(t))
                        free(*FIELD(obj, t, char *));
                else if (t->type == CONFIG_SETTING_STRV)
                        strv_free(*FIELD(obj, t, char **));
                else if (t->type == CONFIG_SETTING_GROUP)
                        config_settings_done(t->group, FIELD(obj, t, char));
                else if (t->type == CONFIG_SETTING_LIST) {
                        char *array = *FIELD(obj, t, char *);
                        size_t n = *(size_t *) ((char *) obj + t->n_offset);
                        for (size_t i = 0; i < n; i++)
                                config_settings_done(t->group, array + i * t->size);
                        free(array);
                }
}

void config_settings_dump(ConfigDump *d, const ConfigSetting *table, const void *obj) {
        for (const ConfigSetting *t = table; t->name; t++) {
                const char *v = is_string(t) ? *FIELD(obj, t, char *) : NULL;
                if (is_string(t) && !v && (t->flags & CONFIG_SETTING_DUMP_IF_SET))
                        continue;
                if (t->dump) {
                        t->dump(d, t, obj);
                        continue;
                }
                switch (t->type) {
                case CONFIG_SETTING_STRING:
                case CONFIG_SETTING_PATH:
                case CONFIG_SETTING_CREDENTIAL:
                        config_dump_string(d, t->name, v);
                        break;
                case CONFIG_SETTING_DURATION:
                        config_dump_duration(d, t->name, *FIELD(obj, t, uint64_t));
                        break;
                case CONFIG_SETTING_UNSIGNED:
                        config_dump_int(d, t->name, *FIELD(obj, t, unsigned));
                        break;
                case CONFIG_SETTING_BOOL:
                        config_dump_bool(d, t->name, *FIELD(obj, t, bool));
                        break;
                case CONFIG_SETTING_MODE:
                        config_dump_mode(d, t->name, *FIELD(obj, t, mode_t));
                        break;
                case CONFIG_SETTING_STRV:
                        if (*FIELD(obj, t, char **) || !(t->flags & CONFIG_SETTING_DUMP_IF_SET))
                                config_dump_strv(d, t->name, *FIELD(obj, t, char **));
                        break;
                case CONFIG_SETTING_ENUM:
                        config_dump_string(d, t->name, t->to_string(*FIELD(obj, t, int)));
                        break;
                case CONFIG_SETTING_GROUP:
                        config_dump_open(d, t->name);
                        config_settings_dump(d, t->group, FIELD(obj, t, char));
                        config_dump_close(d);
                        break;
                case CONFIG_SETTING_LIST: {
                        const char *array = *FIELD(obj, t, char *);
                        size_t n = *(const size_t *) ((const char *) obj + t->n_offset);
                        if (n == 0)
                                break;
                        config_dump_list_open(d, t->name);
                        for (size_t i = 0; i < n; i++) {
                                config_dump_item_open(d);
                                config_settings_dump(d, t->group, array + i * t->size);
                                config_dump_item_close(d, i + 1 == n);
                        }
                        config_dump_list_close(d);
                        break;
                }
                }
        }
}
