/* SPDX-License-Identifier: MIT */
#include "core/config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <regex.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "sinks/sink.h"
#include "stores/store.h"
#include "util/duration.h"
#include "util/secbuf.h"
#include "util/user.h"

#define DEFAULT_REFRESH_INTERVAL (1 * USEC_PER_HOUR)
#define DEFAULT_MAX_CONCURRENT 16
#define DEFAULT_MIN_BACKOFF (1 * USEC_PER_SEC)
#define DEFAULT_MAX_BACKOFF (5 * USEC_PER_MINUTE)
#define DEFAULT_ON_CHANGE_TIMEOUT (30 * USEC_PER_SEC)
#define DEFAULT_FILE_MODE 0600
#define DEFAULT_LEASE_DURATION (15 * USEC_PER_SEC)
#define DEFAULT_RENEW_DEADLINE (10 * USEC_PER_SEC)
#define DEFAULT_RETRY_PERIOD (2 * USEC_PER_SEC)

static const char default_owner[] = "root";

unsigned config_settle_usec = CONFIG_SETTLE_USEC;

/* ---------------------------------------------------------------- names ---- */

static const char *const file_format_table[_FILE_FORMAT_MAX] = {
        [FILE_FORMAT_ENV] = "env", [FILE_FORMAT_JSON] = "json", [FILE_FORMAT_RAW] = "raw",
        [FILE_FORMAT_DIR] = "dir", [FILE_FORMAT_TEMPLATE] = "template",
};
static const char *const creation_policy_table[_CREATION_MAX] = {
        [CREATION_OWNER] = "owner", [CREATION_MERGE] = "merge",
        [CREATION_ORPHAN] = "orphan", [CREATION_NONE] = "none",
};
static const char *const deletion_policy_table[_DELETION_MAX] = {
        [DELETION_RETAIN] = "retain", [DELETION_DELETE] = "delete",
};

static int table_lookup(const char *const *table, size_t n, const char *s) {
        for (size_t i = 0; i < n; i++)
                if (table[i] && streq(table[i], s))
                        return (int) i;
        return -EINVAL;
}

const char *file_format_to_string(FileFormat f) {
        return f >= 0 && f < _FILE_FORMAT_MAX ? file_format_table[f] : NULL;
}
const char *creation_policy_to_string(CreationPolicy p) {
        return p >= 0 && p < _CREATION_MAX ? creation_policy_table[p] : NULL;
}
const char *deletion_policy_to_string(DeletionPolicy p) {
        return p >= 0 && p < _DELETION_MAX ? deletion_policy_table[p] : NULL;
}

static const struct {
        const char *name;
        int level;
} log_levels[] = {
        { "debug", LOG_DEBUG }, { "info", LOG_INFO }, { "notice", LOG_NOTICE },
        { "warning", LOG_WARNING }, { "err", LOG_ERR },
};

const char *log_level_to_string(int level) {
        for (size_t i = 0; i < ELEMENTSOF(log_levels); i++)
                if (log_levels[i].level == level)
                        return log_levels[i].name;
        return NULL;
}

int log_level_from_string(const char *s) {
        for (size_t i = 0; i < ELEMENTSOF(log_levels); i++)
                if (streq(log_levels[i].name, s))
                        return log_levels[i].level;
        if (streq(s, "error"))
                return LOG_ERR;
        return -EINVAL;
}

/* [a-z0-9]([-a-z0-9]*[a-z0-9])?, at most 253 characters. */
bool config_name_valid(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n > 253)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!(islower((unsigned char) s[i]) || isdigit((unsigned char) s[i]) || s[i] == '-'))
                        return false;
        return s[0] != '-' && s[n - 1] != '-';
}

/* Kubernetes Secret data keys: [-._a-zA-Z0-9]+, not "." or "..". */
bool config_secret_key_valid(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n > 253 || streq(s, ".") || streq(s, ".."))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!(isalnum((unsigned char) s[i]) || strchr("-._", s[i])))
                        return false;
        return true;
}

bool config_env_name_valid(const char *s) {
        if (!*s || isdigit((unsigned char) s[0]))
                return false;
        for (const char *p = s; *p; p++)
                if (!(isalnum((unsigned char) *p) || *p == '_'))
                        return false;
        return true;
}

/* DNS-1123 label (namespaces): at most 63. */
static bool dns_label_valid(const char *s) {
        return strlen(s) <= 63 && config_name_valid(s);
}

/* DNS-1123 subdomain (Secret names): labels joined by dots, at most 253. */
static bool dns_subdomain_valid(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n > 253 || s[0] == '.' || s[n - 1] == '.' || strstr(s, ".."))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!(islower((unsigned char) s[i]) || isdigit((unsigned char) s[i]) || s[i] == '-' || s[i] == '.'))
                        return false;
        for (const char *p = s; *p; p++)
                if (*p == '-' && (p == s || p[-1] == '.' || p[1] == '.' || p[1] == 0))
                        return false;
        return true;
}

/* ---------------------------------------------------------------- errors ---- */

static unsigned setting_line(const ConfigParser *p, const config_setting_t *s) {
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
static const char *included_file(ConfigParser *p, const char *f) {
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
        const char *f = s ? included_file(p, config_setting_source_file(s)) : NULL;
        return f ? f : p->path;
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
        config_error_at(p, setting_file(p, s), setting_line(p, s), fmt, ap);
        va_end(ap);
}

/* At a line of file (NULL: the main file). */
static void config_error_at_line(ConfigParser *p, const char *file, unsigned line, const char *fmt, ...) _printf_(4, 5);
static void config_error_at_line(ConfigParser *p, const char *file, unsigned line, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        config_error_at(p, file ? file : p->path, line, fmt, ap);
        va_end(ap);
}

/* "line N" when in the same file as what the message is about, else "FILE:N". */
static const char *other_place(const char *file, const char *other, unsigned line, char *buf, size_t size) {
        if (streq_ptr(file, other))
                snprintf(buf, size, "line %u", line);
        else
                snprintf(buf, size, "%s:%u", other ? other : "the main file", line);
        return buf;
}

static const char *type_name(int t) {
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

static const config_setting_t *member(const config_setting_t *group, const char *name) {
        return group ? config_setting_get_member(group, name) : NULL;
}

static bool expect_type(ConfigParser *p, const config_setting_t *s, int type, const char *what) {
        int t = config_setting_type(s);
        if (t == type || (type == CONFIG_TYPE_INT && t == CONFIG_TYPE_INT64))
                return true;
        if (type == CONFIG_TYPE_LIST && t == CONFIG_TYPE_ARRAY && config_setting_length(s) == 0)
                return true; /* `x = [ ];` is an empty list too */
        config_error(p, s, "'%s' must be %s, not %s", what, type_name(type), type_name(t));
        return false;
}

int config_get_string(ConfigParser *p, const config_setting_t *group, const char *name, bool required,
                      char **ret) {
        const config_setting_t *s = member(group, name);
        if (!s) {
                if (required) {
                        config_error(p, group, "missing required setting '%s'", name);
                        return -EINVAL;
                }
                return 0;
        }
        if (!expect_type(p, s, CONFIG_TYPE_STRING, name))
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
        const config_setting_t *s = member(group, name);
        if (!s)
                return 0;
        if (!expect_type(p, s, CONFIG_TYPE_INT, name))
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
        const config_setting_t *s = member(group, name);
        if (!s)
                return 0;
        if (!expect_type(p, s, CONFIG_TYPE_BOOL, name))
                return -EINVAL;
        *ret = config_setting_get_bool(s);
        return 1;
}

int config_get_duration(ConfigParser *p, const config_setting_t *group, const char *name, uint64_t *ret) {
        const config_setting_t *s = member(group, name);
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
                             name, type_name(t));
                return -EINVAL;
        }
        *ret = v;
        return 1;
}

int config_get_strv(ConfigParser *p, const config_setting_t *group, const char *name, char ***ret) {
        const config_setting_t *s = member(group, name);
        if (!s)
                return 0;
        int t = config_setting_type(s);
        if (t != CONFIG_TYPE_ARRAY && t != CONFIG_TYPE_LIST) {
                config_error(p, s, "'%s' must be an array of strings [ \"...\", ... ], not %s", name, type_name(t));
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

static bool path_is_normalized_absolute(const char *path) {
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
        const config_setting_t *s = member(group, name);
        if (!path_is_normalized_absolute(*ret)) {
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

static void dump_list_open(ConfigDump *d, const char *key) {
        indent(d);
        fprintf(d->f, "%s = (\n", key);
        d->indent++;
}

static void dump_list_close(ConfigDump *d) {
        d->indent--;
        indent(d);
        fputs(");\n", d->f);
}

static void dump_item_open(ConfigDump *d) {
        indent(d);
        fputs("{\n", d->f);
        d->indent++;
}

static void dump_item_close(ConfigDump *d, bool last) {
        d->indent--;
        indent(d);
        fputs(last ? "}\n" : "},\n", d->f);
}

static void dump_remote_ref(ConfigDump *d, const char *key, const RemoteRef *r) {
        config_dump_open(d, key);
        config_dump_string(d, "key", r->key);
        if (r->property)
                config_dump_string(d, "property", r->property);
        if (r->version)
                config_dump_string(d, "version", r->version);
        config_dump_close(d);
}

static void dump_mode(ConfigDump *d, const char *key, mode_t m) {
        char b[16];
        snprintf(b, sizeof(b), "%04o", (unsigned) m);
        config_dump_string(d, key, b);
}

static void dump_store(const Store *s, ConfigDump *d) {
        config_dump_open(d, s->name);
        config_dump_string(d, "type", s->vtable->name);
        s->vtable->dump_config(s, d);
        config_dump_close(d);
}

static void dump_file_target(ConfigDump *d, const FileTarget *t) {
        config_dump_string(d, "path", t->path);
        config_dump_string(d, "format", file_format_to_string(t->format));
        if (t->key)
                config_dump_string(d, "key", t->key);
        if (t->template_file) {
                config_dump_string(d, "template_file", t->template_file);
                /* The fingerprint must change when only the file's content did. */
                if (d->fingerprint)
                        config_dump_string(d, "template", t->template_text);
        } else if (t->template_text)
                config_dump_string(d, "template", t->template_text);
        config_dump_string(d, "owner", t->owner);
        config_dump_string(d, "group", t->group);
        dump_mode(d, "mode", t->mode);
        if (t->on_change)
                config_dump_strv(d, "on_change", t->on_change);
        config_dump_duration(d, "on_change_timeout", t->on_change_timeout_usec);
}

static void dump_kube_target(ConfigDump *d, const KubeTarget *k) {
        config_dump_open(d, "kubernetes");
        config_dump_string(d, "namespace", k->namespace);
        config_dump_string(d, "name", k->name);
        config_dump_string(d, "creation_policy", creation_policy_to_string(k->creation_policy));
        config_dump_string(d, "deletion_policy", deletion_policy_to_string(k->deletion_policy));
        config_dump_string(d, "type", k->type);
        config_dump_strv(d, "labels", k->labels);
        config_dump_strv(d, "annotations", k->annotations);
        config_dump_strv(d, "rollout_restart", k->rollout_restart);
        config_dump_close(d);
}

static void dump_secret(ConfigDump *d, const SecretConfig *s) {
        config_dump_string(d, "name", s->name);
        config_dump_string(d, "store", s->store_name);
        config_dump_duration(d, "refresh_interval", s->refresh_interval_usec);
        if (s->n_data > 0) {
                dump_list_open(d, "data");
                for (size_t i = 0; i < s->n_data; i++) {
                        dump_item_open(d);
                        config_dump_string(d, "secret_key", s->data[i].secret_key);
                        dump_remote_ref(d, "remote_ref", &s->data[i].remote);
                        dump_item_close(d, i + 1 == s->n_data);
                }
                dump_list_close(d);
        }
        if (s->n_data_from > 0) {
                dump_list_open(d, "data_from");
                for (size_t i = 0; i < s->n_data_from; i++) {
                        dump_item_open(d);
                        dump_remote_ref(d, "extract", &s->data_from[i].extract);
                        dump_item_close(d, i + 1 == s->n_data_from);
                }
                dump_list_close(d);
        }
        if (s->kubernetes)
                dump_kube_target(d, s->kubernetes);
        if (s->n_files > 0) {
                dump_list_open(d, "files");
                for (size_t i = 0; i < s->n_files; i++) {
                        dump_item_open(d);
                        dump_file_target(d, &s->files[i]);
                        dump_item_close(d, i + 1 == s->n_files);
                }
                dump_list_close(d);
        }
}

int config_dump(const Config *c, FILE *f, bool redact) {
        ConfigDump d = { .f = f, .redact = redact };

        fputs("# secretsyncd effective configuration (secretsyncd --dump-config)\n", f);
        config_dump_open(&d, "daemon");
        config_dump_duration(&d, "refresh_interval", c->daemon.refresh_interval_usec);
        config_dump_int(&d, "max_concurrent_requests", c->daemon.max_concurrent_requests);
        config_dump_duration(&d, "min_backoff", c->daemon.min_backoff_usec);
        config_dump_duration(&d, "max_backoff", c->daemon.max_backoff_usec);
        config_dump_string(&d, "log_level", log_level_to_string(c->daemon.log_level));
        config_dump_string(&d, "runtime_dir", c->daemon.runtime_dir);
        config_dump_string(&d, "state_dir", c->daemon.state_dir);
        if (c->daemon.metrics_file)
                config_dump_string(&d, "metrics_file", c->daemon.metrics_file);
        config_dump_close(&d);

        config_dump_open(&d, "stores");
        for (size_t i = 0; i < c->n_stores; i++)
                dump_store(c->stores[i], &d);
        config_dump_close(&d);

        if (c->kubernetes.present) {
                const KubeConfig *k = &c->kubernetes;
                config_dump_open(&d, "kubernetes");
                if (k->kubeconfig)
                        config_dump_string(&d, "kubeconfig", k->kubeconfig);
                config_dump_open(&d, "leader_election");
                config_dump_bool(&d, "enabled", k->leader_election);
                config_dump_string(&d, "namespace", k->lease_namespace);
                config_dump_string(&d, "lease_name", k->lease_name);
                config_dump_string(&d, "identity", k->identity);
                config_dump_duration(&d, "lease_duration", k->lease_duration_usec);
                config_dump_duration(&d, "renew_deadline", k->renew_deadline_usec);
                config_dump_duration(&d, "retry_period", k->retry_period_usec);
                config_dump_close(&d);
                config_dump_close(&d);
        }

        fputs("secrets = (\n", f);
        d.indent++;
        for (size_t i = 0; i < c->n_secrets; i++) {
                dump_item_open(&d);
                dump_secret(&d, &c->secrets[i]);
                dump_item_close(&d, i + 1 == c->n_secrets);
        }
        d.indent--;
        fputs(");\n", f);
        return ferror(f) ? -EIO : 0;
}

static char *fingerprint(void (*fn)(ConfigDump *d, const void *x), const void *x) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);
        if (!f)
                return NULL;
        ConfigDump d = { .f = f, .redact = false, .fingerprint = true };
        fn(&d, x);
        fclose(f);
        return buf;
}

static void fp_store(ConfigDump *d, const void *x) {
        dump_store(x, d);
}
static void fp_secret(ConfigDump *d, const void *x) {
        dump_secret(d, x);
}

char *config_store_fingerprint(const Store *s) {
        return fingerprint(fp_store, s);
}

char *config_secret_fingerprint(const SecretConfig *s) {
        return fingerprint(fp_secret, s);
}

/* ------------------------------------------------------------------ free ---- */

static void remote_ref_done(RemoteRef *r) {
        free(r->key);
        free(r->property);
        free(r->version);
}

static void file_target_done(FileTarget *t) {
        free(t->path);
        free(t->key);
        erase_and_free(t->template_text);
        free(t->template_file);
        if (t->owner != default_owner)
                free(t->owner);
        if (t->group != default_owner)
                free(t->group);
        strv_free(t->on_change);
}

static void kube_target_free(KubeTarget *k) {
        if (!k)
                return;
        free(k->namespace);
        free(k->name);
        free(k->type);
        strv_free(k->labels);
        strv_free(k->annotations);
        strv_free(k->rollout_restart);
        free(k);
}

static void secret_config_done(SecretConfig *s) {
        free(s->name);
        free(s->store_name);
        for (size_t i = 0; i < s->n_data; i++) {
                free(s->data[i].secret_key);
                remote_ref_done(&s->data[i].remote);
        }
        free(s->data);
        for (size_t i = 0; i < s->n_data_from; i++)
                remote_ref_done(&s->data_from[i].extract);
        free(s->data_from);
        kube_target_free(s->kubernetes);
        for (size_t i = 0; i < s->n_files; i++)
                file_target_done(&s->files[i]);
        free(s->files);
}

Config *config_free(Config *c) {
        if (!c)
                return NULL;
        free(c->path);
        strv_free(c->included);
        free(c->daemon.runtime_dir);
        free(c->daemon.state_dir);
        free(c->daemon.metrics_file);
        for (size_t i = 0; i < c->n_stores; i++)
                store_free(c->stores[i]);
        free(c->stores);
        free(c->kubernetes.kubeconfig);
        free(c->kubernetes.lease_namespace);
        free(c->kubernetes.lease_name);
        free(c->kubernetes.identity);
        for (size_t i = 0; i < c->n_secrets; i++)
                secret_config_done(&c->secrets[i]);
        free(c->secrets);
        free(c);
        return NULL;
}

const SecretConfig *config_find_secret(const Config *c, const char *name) {
        for (size_t i = 0; i < c->n_secrets; i++)
                if (streq(c->secrets[i].name, name))
                        return &c->secrets[i];
        return NULL;
}

Store *config_find_store(const Config *c, const char *name) {
        for (size_t i = 0; i < c->n_stores; i++)
                if (streq(c->stores[i]->name, name))
                        return c->stores[i];
        return NULL;
}

/* ----------------------------------------------------------------- parse ---- */

static bool expect_group(ConfigParser *p, const config_setting_t *s, const char *what) {
        return expect_type(p, s, CONFIG_TYPE_GROUP, what);
}

static void parse_daemon(ConfigParser *p, const config_setting_t *g, DaemonConfig *d) {
        static const char *const keys[] = { "refresh_interval", "max_concurrent_requests", "min_backoff",
                                            "max_backoff", "log_level", "runtime_dir", "state_dir",
                                            "metrics_file", NULL };
        long long n;
        _cleanup_free_ char *level = NULL;

        if (!g)
                return;
        if (!expect_group(p, g, "daemon"))
                return;
        config_check_keys(p, g, keys);
        config_get_duration(p, g, "refresh_interval", &d->refresh_interval_usec);
        if (config_get_int(p, g, "max_concurrent_requests", 1, 1024, &n) > 0)
                d->max_concurrent_requests = (unsigned) n;
        config_get_duration(p, g, "min_backoff", &d->min_backoff_usec);
        config_get_duration(p, g, "max_backoff", &d->max_backoff_usec);
        if (d->min_backoff_usec == 0 && member(g, "min_backoff"))
                config_error(p, member(g, "min_backoff"), "'min_backoff' must be greater than zero");
        if (d->max_backoff_usec < d->min_backoff_usec)
                config_error(p, member(g, "max_backoff") ?: g, "'max_backoff' must not be shorter than 'min_backoff'");
        if (config_get_string(p, g, "log_level", false, &level) > 0) {
                int l = log_level_from_string(level);
                if (l < 0)
                        config_error(p, member(g, "log_level"),
                                     "'log_level' = \"%s\" is not one of debug, info, notice, warning, err", level);
                else
                        d->log_level = l;
        }
        if (config_get_string(p, g, "runtime_dir", false, &d->runtime_dir) > 0 &&
            !path_is_normalized_absolute(d->runtime_dir))
                config_error(p, member(g, "runtime_dir"), "'runtime_dir' must be an absolute path");
        if (config_get_string(p, g, "state_dir", false, &d->state_dir) > 0 &&
            !path_is_normalized_absolute(d->state_dir))
                config_error(p, member(g, "state_dir"), "'state_dir' must be an absolute path");
        if (config_get_string(p, g, "metrics_file", false, &d->metrics_file) > 0 &&
            !path_is_normalized_absolute(d->metrics_file))
                config_error(p, member(g, "metrics_file"), "'metrics_file' must be an absolute file path");
}

static void parse_stores(ConfigParser *p, const config_setting_t *g, Config *c) {
        if (!g)
                return;
        if (!expect_group(p, g, "stores"))
                return;
        int n = config_setting_length(g);
        c->stores = calloc((size_t) n + 1, sizeof(Store *));
        if (!c->stores)
                return;
        for (int i = 0; i < n; i++) {
                const config_setting_t *s = config_setting_get_elem(g, (unsigned) i);
                const char *name = config_setting_name(s);
                _cleanup_free_ char *type = NULL;

                if (!config_name_valid(name)) {
                        config_error(p, s, "store name '%s' is not valid: use lower case letters, digits and '-', "
                                     "starting and ending with a letter or digit", name);
                        continue;
                }
                if (!expect_group(p, s, name))
                        continue;
                if (config_get_string(p, s, "type", true, &type) <= 0)
                        continue;
                const StoreVTable *vt = store_vtable_find(type);
                if (!vt) {
                        config_error(p, member(s, "type"), "store '%s': unknown type \"%s\" (known: %s)", name, type,
                                     store_types_list());
                        continue;
                }
                Store *st = store_new(vt, name);
                if (!st)
                        return;
                st->line = setting_line(p, s);
                c->stores[c->n_stores++] = st;
                vt->parse_config(st, p, s);
        }
}

static void parse_kubernetes(ConfigParser *p, const config_setting_t *g, KubeConfig *k) {
        static const char *const keys[] = { "kubeconfig", "leader_election", NULL };
        static const char *const le_keys[] = { "enabled", "namespace", "lease_name", "identity",
                                               "lease_duration", "renew_deadline", "retry_period", NULL };
        if (!g)
                return;
        if (!expect_group(p, g, "kubernetes"))
                return;
        k->present = true;
        k->line = setting_line(p, g);
        config_check_keys(p, g, keys);
        if (config_get_string(p, g, "kubeconfig", false, &k->kubeconfig) > 0) {
                if (!*k->kubeconfig) {
                        free(k->kubeconfig);
                        k->kubeconfig = NULL;
                } else {
                        free(k->kubeconfig);
                        k->kubeconfig = NULL;
                        config_get_credential_file(p, g, "kubeconfig", false, &k->kubeconfig);
                }
        }
        const config_setting_t *le = member(g, "leader_election");
        if (le && expect_group(p, le, "leader_election")) {
                config_check_keys(p, le, le_keys);
                config_get_bool(p, le, "enabled", &k->leader_election);
                if (config_get_string(p, le, "namespace", false, &k->lease_namespace) > 0 &&
                    !dns_label_valid(k->lease_namespace))
                        config_error(p, member(le, "namespace"), "'namespace' = \"%s\" is not a valid namespace name",
                                     k->lease_namespace);
                if (config_get_string(p, le, "lease_name", false, &k->lease_name) > 0 &&
                    !dns_subdomain_valid(k->lease_name))
                        config_error(p, member(le, "lease_name"), "'lease_name' = \"%s\" is not a valid object name",
                                     k->lease_name);
                if (config_get_string(p, le, "identity", false, &k->identity) > 0 && !*k->identity)
                        config_error(p, member(le, "identity"), "'identity' must not be empty");
                config_get_duration(p, le, "lease_duration", &k->lease_duration_usec);
                config_get_duration(p, le, "renew_deadline", &k->renew_deadline_usec);
                config_get_duration(p, le, "retry_period", &k->retry_period_usec);
                if (k->renew_deadline_usec >= k->lease_duration_usec)
                        config_error(p, le, "'renew_deadline' must be shorter than 'lease_duration'");
                if (k->retry_period_usec >= k->renew_deadline_usec)
                        config_error(p, le, "'retry_period' must be shorter than 'renew_deadline'");
        }
}

static int parse_remote_ref(ConfigParser *p, const config_setting_t *g, const char *what, RemoteRef *r) {
        static const char *const keys[] = { "key", "property", "version", NULL };
        if (!expect_group(p, g, what))
                return -EINVAL;
        config_check_keys(p, g, keys);
        if (config_get_string(p, g, "key", true, &r->key) <= 0)
                return -EINVAL;
        if (config_get_string(p, g, "property", false, &r->property) > 0 && !*r->property) {
                free(r->property);
                r->property = NULL;
        }
        if (r->property && (r->property[0] == '.' || r->property[strlen(r->property) - 1] == '.' ||
                            strstr(r->property, ".."))) {
                config_error(p, member(g, "property"), "'property' = \"%s\" is not a valid (dotted) key path",
                             r->property);
                return -EINVAL;
        }
        if (config_get_string(p, g, "version", false, &r->version) > 0 && !*r->version) {
                free(r->version);
                r->version = NULL;
        }
        return 0;
}

static int parse_mode(ConfigParser *p, const config_setting_t *g, mode_t *ret) {
        const config_setting_t *s = member(g, "mode");
        if (!s)
                return 0;
        if (config_setting_type(s) != CONFIG_TYPE_STRING) {
                config_error(p, s, "'mode' must be an octal string like \"0400\", not %s",
                             type_name(config_setting_type(s)));
                return -EINVAL;
        }
        const char *m = config_setting_get_string(s);
        size_t n = strlen(m);
        if (n < 3 || n > 5 || strspn(m, "01234567") != n) {
                config_error(p, s, "'mode' = \"%s\" is not an octal file mode like \"0400\"", m);
                return -EINVAL;
        }
        unsigned long v = strtoul(m, NULL, 8);
        if (v & ~0777UL) {
                config_error(p, s, "'mode' = \"%s\": setuid, setgid and sticky bits are not allowed", m);
                return -EINVAL;
        }
        *ret = (mode_t) v;
        return 1;
}

/* owner/group: a name or a decimal id. A name unknown here is not an error: the user may be
 * created later (by the package of the service that reads the file); it is looked up
 * again at each write, and a write fails while it does not exist. */
static void parse_owner(ConfigParser *p, const config_setting_t *g, const char *key, bool user, char **name,
                        unsigned *ret_id) {
        if (config_get_string(p, g, key, false, name) < 0)
                return;
        if (!*name || streq(*name, "root")) {
                /* The default, shared by every target that does not name another (a
                 * 10,000-target file would otherwise hold 20,000 copies). */
                free(*name);
                *name = (char *) default_owner;
                *ret_id = 0;
                return;
        }
        if (!user_name_valid(*name)) {
                config_error(p, member(g, key), "'%s' = \"%s\" is not a valid %s name or id", key, *name,
                             user ? "user" : "group");
                return;
        }
        uid_t uid;
        gid_t gid;
        if (user)
                *ret_id = user_resolve(*name, &uid) >= 0 ? (unsigned) uid : (unsigned) UID_UNRESOLVED;
        else
                *ret_id = group_resolve(*name, &gid) >= 0 ? (unsigned) gid : (unsigned) GID_UNRESOLVED;
}

static int read_template_file(ConfigParser *p, const config_setting_t *s, const char *path, char **ret) {
        _cleanup_secbuf_ SecBuf *b = NULL;
        int r;
        if (p->strict_modes) {
                _cleanup_free_ char *m = NULL;
                r = config_check_file_trust(path, &m);
                if (r < 0 && m) {
                        config_error(p, s, "%s", m);
                        return r;
                }
        }
        r = secbuf_read_file(path, TEMPLATE_FILE_MAX, false, &b);
        if (r < 0) {
                config_error(p, s, "cannot read template_file %s: %s", path,
                             r == -EFBIG ? "larger than 1 MiB" : strerror(-r));
                return r;
        }
        if (memchr(b->data, 0, b->len)) {
                config_error(p, s, "template_file %s contains a NUL byte", path);
                return -EINVAL;
        }
        *ret = strdup(secbuf_str(b));
        return *ret ? 0 : -ENOMEM;
}

static void parse_file_target(ConfigParser *p, const config_setting_t *g, const SecretConfig *sec,
                              FileTarget *t) {
        static const char *const keys[] = { "path", "format", "key", "template", "template_file", "owner",
                                            "group", "mode", "on_change", "on_change_timeout", NULL };
        _cleanup_free_ char *format = NULL;
        unsigned id;

        t->file = included_file(p, config_setting_source_file(g));
        t->line = setting_line(p, g);
        t->format = _FILE_FORMAT_MAX; /* none valid yet: later checks skip this target */
        t->mode = DEFAULT_FILE_MODE;
        t->on_change_timeout_usec = DEFAULT_ON_CHANGE_TIMEOUT;
        if (!expect_group(p, g, "files"))
                return;
        config_check_keys(p, g, keys);
        if (config_get_string(p, g, "path", true, &t->path) > 0 && !path_is_normalized_absolute(t->path))
                config_error(p, member(g, "path"),
                             "secret '%s': file path \"%s\" must be absolute, without '.', '..', '//' or a trailing '/'",
                             sec->name, t->path);
        if (config_get_string(p, g, "format", true, &format) > 0) {
                int f = table_lookup(file_format_table, _FILE_FORMAT_MAX, format);
                if (f < 0)
                        config_error(p, member(g, "format"),
                                     "secret '%s': format \"%s\" is not one of env, json, raw, dir, template", sec->name,
                                     format);
                else
                        t->format = (FileFormat) f;
        } else
                return;

        config_get_string(p, g, "key", false, &t->key);
        config_get_string(p, g, "template", false, &t->template_text);
        config_get_string(p, g, "template_file", false, &t->template_file);
        if (t->format == FILE_FORMAT_RAW && !t->key)
                config_error(p, g, "secret '%s': a raw file target needs 'key' (which key's value to write)",
                             sec->name);
        if (t->format != FILE_FORMAT_RAW && t->key)
                config_error(p, member(g, "key"), "secret '%s': 'key' applies only to format \"raw\"", sec->name);
        if (t->format == FILE_FORMAT_TEMPLATE) {
                if (!!t->template_text == !!t->template_file)
                        config_error(p, g, "secret '%s': a template file target needs exactly one of 'template' or "
                                     "'template_file'", sec->name);
                else if (t->template_file) {
                        if (!path_is_normalized_absolute(t->template_file))
                                config_error(p, member(g, "template_file"), "'template_file' must be an absolute path");
                        else
                                read_template_file(p, member(g, "template_file"), t->template_file,
                                                   &t->template_text);
                }
        } else if (t->template_text || t->template_file)
                config_error(p, member(g, "template") ?: member(g, "template_file"),
                             "secret '%s': 'template' and 'template_file' apply only to format \"template\"",
                             sec->name);

        parse_owner(p, g, "owner", true, &t->owner, &id);
        t->uid = (uid_t) id;
        parse_owner(p, g, "group", false, &t->group, &id);
        t->gid = (gid_t) id;
        parse_mode(p, g, &t->mode);
        if (config_get_strv(p, g, "on_change", &t->on_change) > 0) {
                if (!t->on_change[0] || !*t->on_change[0])
                        config_error(p, member(g, "on_change"),
                                     "secret '%s': 'on_change' must name a program, like [ \"systemctl\", \"reload\", \"x.service\" ]",
                                     sec->name);
        }
        config_get_duration(p, g, "on_change_timeout", &t->on_change_timeout_usec);
        if (t->on_change_timeout_usec == 0)
                config_error(p, member(g, "on_change_timeout") ?: g, "'on_change_timeout' must be greater than zero");
}

static bool label_key_valid(const char *k) {
        const char *slash = strchr(k, '/');
        const char *name = slash ? slash + 1 : k;
        if (slash) {
                _cleanup_free_ char *prefix = strndup(k, (size_t) (slash - k));
                if (!prefix || !dns_subdomain_valid(prefix))
                        return false;
        }
        size_t n = strlen(name);
        if (n == 0 || n > 63 || !isalnum((unsigned char) name[0]) || !isalnum((unsigned char) name[n - 1]))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!(isalnum((unsigned char) name[i]) || strchr("-_.", name[i])))
                        return false;
        return true;
}

static bool label_value_valid(const char *v) {
        size_t n = strlen(v);
        if (n == 0)
                return true;
        if (n > 63 || !isalnum((unsigned char) v[0]) || !isalnum((unsigned char) v[n - 1]))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!(isalnum((unsigned char) v[i]) || strchr("-_.", v[i])))
                        return false;
        return true;
}

static void check_key_value_list(ConfigParser *p, const config_setting_t *s, const char *what, char **l,
                                 bool labels) {
        for (size_t i = 0; l && l[i]; i++) {
                char *eq = strchr(l[i], '=');
                if (!eq) {
                        config_error(p, s, "%s entry \"%s\" must be \"key=value\"", what, l[i]);
                        continue;
                }
                *eq = 0;
                if (!label_key_valid(l[i]))
                        config_error(p, s, "%s key \"%s\" is not a valid Kubernetes %s key", what, l[i],
                                     labels ? "label" : "annotation");
                else if (streq(l[i], "app.kubernetes.io/managed-by") || strncmp(l[i], "secretsyncd.io/", 15) == 0)
                        config_error(p, s, "%s key \"%s\" is reserved for secretsyncd", what, l[i]);
                else if (labels && !label_value_valid(eq + 1))
                        config_error(p, s, "label value \"%s\" of \"%s\" is not valid (at most 63 of [-_.a-zA-Z0-9])",
                                     eq + 1, l[i]);
                *eq = '=';
        }
}

static void parse_kube_target(ConfigParser *p, const config_setting_t *g, SecretConfig *sec) {
        static const char *const keys[] = { "namespace", "name", "creation_policy", "deletion_policy", "type",
                                            "labels", "annotations", "rollout_restart", NULL };
        _cleanup_free_ char *cp = NULL, *dp = NULL;

        if (!expect_group(p, g, "kubernetes"))
                return;
        KubeTarget *k = calloc(1, sizeof(KubeTarget));
        if (!k)
                return;
        sec->kubernetes = k;
        k->file = included_file(p, config_setting_source_file(g));
        k->line = setting_line(p, g);
        config_check_keys(p, g, keys);
        if (config_get_string(p, g, "namespace", true, &k->namespace) > 0 && !dns_label_valid(k->namespace))
                config_error(p, member(g, "namespace"), "secret '%s': \"%s\" is not a valid namespace name",
                             sec->name, k->namespace);
        if (config_get_string(p, g, "name", false, &k->name) > 0) {
                if (!dns_subdomain_valid(k->name))
                        config_error(p, member(g, "name"), "secret '%s': \"%s\" is not a valid Kubernetes Secret name",
                                     sec->name, k->name);
        } else
                k->name = strdup(sec->name);
        if (config_get_string(p, g, "creation_policy", false, &cp) > 0) {
                int v = table_lookup(creation_policy_table, _CREATION_MAX, cp);
                if (v < 0)
                        config_error(p, member(g, "creation_policy"),
                                     "'creation_policy' = \"%s\" is not one of owner, merge, orphan, none", cp);
                else
                        k->creation_policy = (CreationPolicy) v;
        }
        if (config_get_string(p, g, "deletion_policy", false, &dp) > 0) {
                int v = table_lookup(deletion_policy_table, _DELETION_MAX, dp);
                if (v < 0)
                        config_error(p, member(g, "deletion_policy"),
                                     "'deletion_policy' = \"%s\" is not one of retain, delete", dp);
                else
                        k->deletion_policy = (DeletionPolicy) v;
        }
        if (config_get_string(p, g, "type", false, &k->type) <= 0 || !*k->type) {
                free(k->type);
                k->type = strdup("Opaque");
        }
        config_get_strv(p, g, "labels", &k->labels);
        check_key_value_list(p, member(g, "labels"), "label", k->labels, true);
        config_get_strv(p, g, "annotations", &k->annotations);
        check_key_value_list(p, member(g, "annotations"), "annotation", k->annotations, false);
        config_get_strv(p, g, "rollout_restart", &k->rollout_restart);
        for (size_t i = 0; k->rollout_restart && k->rollout_restart[i]; i++) {
                const char *r = k->rollout_restart[i];
                const char *slash = strchr(r, '/');
                bool ok = slash && dns_subdomain_valid(slash + 1) &&
                          (strncmp(r, "deployment/", 11) == 0 || strncmp(r, "statefulset/", 12) == 0 ||
                           strncmp(r, "daemonset/", 10) == 0);
                if (!ok)
                        config_error(p, member(g, "rollout_restart"),
                                     "secret '%s': rollout_restart entry \"%s\" must be deployment/NAME, "
                                     "statefulset/NAME or daemonset/NAME",
                                     sec->name, r);
        }
}

static void parse_secret(ConfigParser *p, const config_setting_t *g, Config *c, SecretConfig *sec) {
        static const char *const keys[] = { "name", "store", "refresh_interval", "data", "data_from",
                                            "kubernetes", "files", NULL };
        const config_setting_t *s;

        sec->file = included_file(p, config_setting_source_file(g));
        sec->line = setting_line(p, g);
        sec->refresh_interval_usec = c->daemon.refresh_interval_usec;
        if (!expect_group(p, g, "secrets"))
                return;
        config_check_keys(p, g, keys);
        if (config_get_string(p, g, "name", true, &sec->name) <= 0) {
                sec->name = strdup("?");
                return;
        }
        if (!config_name_valid(sec->name))
                config_error(p, member(g, "name"),
                             "secret name '%s' is not valid: use lower case letters, digits and '-', starting and "
                             "ending with a letter or digit",
                             sec->name);
        if (config_get_string(p, g, "store", true, &sec->store_name) > 0) {
                sec->store = config_find_store(c, sec->store_name);
                if (!sec->store)
                        config_error(p, member(g, "store"), "secret '%s': store '%s' is not defined in 'stores'",
                                     sec->name, sec->store_name);
        }
        config_get_duration(p, g, "refresh_interval", &sec->refresh_interval_usec);

        if ((s = member(g, "data")) && expect_type(p, s, CONFIG_TYPE_LIST, "data")) {
                int n = config_setting_length(s);
                sec->data = calloc(MAX(n, 1), sizeof(DataRef));
                for (int i = 0; sec->data && i < n; i++) {
                        static const char *const dkeys[] = { "secret_key", "remote_ref", NULL };
                        const config_setting_t *e = config_setting_get_elem(s, (unsigned) i);
                        DataRef *d = &sec->data[sec->n_data++];
                        d->line = setting_line(p, e);
                        if (!expect_group(p, e, "data"))
                                continue;
                        config_check_keys(p, e, dkeys);
                        if (config_get_string(p, e, "secret_key", true, &d->secret_key) > 0 &&
                            !config_secret_key_valid(d->secret_key))
                                config_error(p, member(e, "secret_key"),
                                             "secret '%s': secret_key \"%s\" must be made of [-._a-zA-Z0-9]",
                                             sec->name, d->secret_key);
                        for (size_t j = 0; d->secret_key && j + 1 < sec->n_data; j++)
                                if (streq_ptr(sec->data[j].secret_key, d->secret_key))
                                        config_error(p, e, "secret '%s': secret_key \"%s\" appears twice", sec->name,
                                                     d->secret_key);
                        const config_setting_t *rr = member(e, "remote_ref");
                        if (!rr)
                                config_error(p, e, "missing required setting 'remote_ref'");
                        else
                                parse_remote_ref(p, rr, "remote_ref", &d->remote);
                }
        }
        if ((s = member(g, "data_from")) && expect_type(p, s, CONFIG_TYPE_LIST, "data_from")) {
                int n = config_setting_length(s);
                sec->data_from = calloc(MAX(n, 1), sizeof(DataFrom));
                for (int i = 0; sec->data_from && i < n; i++) {
                        static const char *const fkeys[] = { "extract", NULL };
                        const config_setting_t *e = config_setting_get_elem(s, (unsigned) i);
                        DataFrom *d = &sec->data_from[sec->n_data_from++];
                        d->line = setting_line(p, e);
                        if (!expect_group(p, e, "data_from"))
                                continue;
                        config_check_keys(p, e, fkeys);
                        const config_setting_t *x = member(e, "extract");
                        if (!x)
                                config_error(p, e, "missing required setting 'extract'");
                        else
                                parse_remote_ref(p, x, "extract", &d->extract);
                }
        }
        if (sec->n_data == 0 && sec->n_data_from == 0)
                config_error(p, g, "secret '%s' has neither 'data' nor 'data_from': nothing to fetch", sec->name);

        if ((s = member(g, "kubernetes")))
                parse_kube_target(p, s, sec);
        if ((s = member(g, "files")) && expect_type(p, s, CONFIG_TYPE_LIST, "files")) {
                int n = config_setting_length(s);
                sec->files = calloc(MAX(n, 1), sizeof(FileTarget));
                for (int i = 0; sec->files && i < n; i++)
                        parse_file_target(p, config_setting_get_elem(s, (unsigned) i), sec,
                                          &sec->files[sec->n_files++]);
        }
        if (!sec->kubernetes && sec->n_files == 0)
                config_error(p, g, "secret '%s' has no target: add 'files' or 'kubernetes'", sec->name);

        /* The store's own view of the refs (a version on a KV v1 store, say). */
        if (sec->store && sec->store->vtable->check_ref) {
                const config_setting_t *l = member(g, "data");
                for (size_t i = 0; i < sec->n_data; i++) {
                        _cleanup_free_ char *m = NULL;
                        if (sec->data[i].remote.key &&
                            sec->store->vtable->check_ref(sec->store, &sec->data[i].remote, &m) < 0)
                                config_error(p, l ? config_setting_get_elem(l, (unsigned) i) : g, "secret '%s': %s",
                                             sec->name, m ? m : "invalid remote_ref");
                }
                l = member(g, "data_from");
                for (size_t i = 0; i < sec->n_data_from; i++) {
                        _cleanup_free_ char *m = NULL;
                        if (sec->data_from[i].extract.key &&
                            sec->store->vtable->check_ref(sec->store, &sec->data_from[i].extract, &m) < 0)
                                config_error(p, l ? config_setting_get_elem(l, (unsigned) i) : g, "secret '%s': %s",
                                             sec->name, m ? m : "invalid extract");
                }
        }

        /* Checks that need the whole secret: keys known from `data` against each target. */
        _cleanup_free_ char **known = calloc(sec->n_data + 1, sizeof(char *));
        size_t nk = 0;
        for (size_t i = 0; known && i < sec->n_data; i++)
                if (sec->data[i].secret_key)
                        known[nk++] = sec->data[i].secret_key;
        for (size_t i = 0; known && i < sec->n_files; i++) {
                FileTarget *t = &sec->files[i];
                _cleanup_free_ char *m = NULL;
                if (!t->path)
                        continue;
                if (t->format == FILE_FORMAT_TEMPLATE && !t->template_text)
                        continue;
                /* Already reported: no valid format, or a raw target without a key. */
                if (t->format >= _FILE_FORMAT_MAX || (t->format == FILE_FORMAT_RAW && !t->key))
                        continue;
                if (sink_file_check(t, known, sec->n_data_from == 0, &m) < 0)
                        config_error(p, config_setting_get_elem(s, (unsigned) i), "secret '%s', file %s: %s",
                                     sec->name, t->path, m ? m : "invalid");
        }
}

static bool path_is_under(const char *path, const char *dir) {
        size_t n = strlen(dir);
        return strncmp(path, dir, n) == 0 && path[n] == '/';
}

typedef struct TargetRef {
        const FileTarget *t;
        const SecretConfig *s;
} TargetRef;

/* Path order with '/' lowest, so everything under a directory sorts right after it. */
static int path_cmp(const char *a, const char *b) {
        for (;; a++, b++) {
                unsigned char x = *a == '/' ? 1 : (unsigned char) *a, y = *b == '/' ? 1 : (unsigned char) *b;
                if (x != y || !x)
                        return (int) x - (int) y;
        }
}

static int target_ref_cmp(const void *a, const void *b) {
        const TargetRef *x = a, *y = b;
        int c = path_cmp(x->t->path, y->t->path);
        return c ? c : (int) x->t->line - (int) y->t->line;
}

static void check_targets_unique(ConfigParser *p, Config *c) {
        size_t n = 0, k = 0;
        for (size_t i = 0; i < c->n_secrets; i++)
                n += c->secrets[i].n_files;
        _cleanup_free_ TargetRef *v = calloc(n + 1, sizeof(TargetRef));
        if (!v)
                return;
        for (size_t i = 0; i < c->n_secrets; i++)
                for (size_t j = 0; j < c->secrets[i].n_files; j++)
                        if (c->secrets[i].files[j].path)
                                v[k++] = (TargetRef) { &c->secrets[i].files[j], &c->secrets[i] };
        qsort(v, k, sizeof(TargetRef), target_ref_cmp);
        for (size_t i = 0; i < k; i++) {
                char b[PATH_MAX + 32];
                if (i > 0 && streq(v[i].t->path, v[i - 1].t->path))
                        config_error_at_line(p, v[i].t->file, v[i].t->line,
                                             "secret '%s': file %s is also written by secret '%s' (%s)", v[i].s->name,
                                             v[i].t->path, v[i - 1].s->name,
                                             other_place(v[i].t->file, v[i - 1].t->file, v[i - 1].t->line, b, sizeof(b)));
                if (v[i].t->format != FILE_FORMAT_DIR)
                        continue;
                for (size_t j = i + 1; j < k && path_is_under(v[j].t->path, v[i].t->path); j++)
                        config_error_at_line(p, v[j].t->file, v[j].t->line,
                                             "secret '%s': file %s lies inside the dir target %s of secret '%s' (%s)",
                                             v[j].s->name, v[j].t->path, v[i].t->path, v[i].s->name,
                                             other_place(v[j].t->file, v[i].t->file, v[i].t->line, b, sizeof(b)));
        }

        for (size_t i = 0; i < c->n_secrets; i++) {
                const KubeTarget *kt = c->secrets[i].kubernetes;
                if (!kt || !kt->namespace || !kt->name || kt->creation_policy == CREATION_MERGE ||
                    kt->creation_policy == CREATION_NONE)
                        continue;
                /* Kubernetes targets are few (one per secret at most, usually a handful). */
                for (size_t j = 0; j < i; j++) {
                        const KubeTarget *o = c->secrets[j].kubernetes;
                        char b[PATH_MAX + 32];
                        if (o && o->namespace && o->name && streq(o->namespace, kt->namespace) &&
                            streq(o->name, kt->name) && o->creation_policy != CREATION_NONE &&
                            o->creation_policy != CREATION_MERGE)
                                config_error_at_line(p, kt->file, kt->line,
                                                     "secret '%s': Kubernetes Secret %s/%s is also owned by secret '%s' (%s)",
                                                     c->secrets[i].name, kt->namespace, kt->name, c->secrets[j].name,
                                                     other_place(kt->file, o->file, o->line, b, sizeof(b)));
                }
        }
}

static int secret_ptr_cmp(const void *a, const void *b) {
        const SecretConfig *x = *(SecretConfig *const *) a, *y = *(SecretConfig *const *) b;
        if (!x->name || !y->name)
                return !!x->name - !!y->name;
        return strcmp(x->name, y->name);
}

static char *default_identity(void) {
        char h[256] = { 0 };
        if (gethostname(h, sizeof(h) - 1) < 0 || !*h)
                return strdup("secretsyncd");
        return strdup(h);
}

static int fill_defaults(Config *c) {
        KubeConfig *k = &c->kubernetes;
        if (!c->daemon.runtime_dir && !(c->daemon.runtime_dir = strdup("/run/secretsyncd")))
                return -ENOMEM;
        if (!c->daemon.state_dir && !(c->daemon.state_dir = strdup("/var/lib/secretsyncd")))
                return -ENOMEM;
        if (!k->lease_namespace && !(k->lease_namespace = strdup("kube-system")))
                return -ENOMEM;
        if (!k->lease_name && !(k->lease_name = strdup("secretsyncd")))
                return -ENOMEM;
        if (!k->identity && !(k->identity = default_identity()))
                return -ENOMEM;
        return 0;
}

/* ------------------------------------------------------------------ read ---- */

static uint64_t now_usec(clockid_t clock) {
        struct timespec ts;
        clock_gettime(clock, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}

static uint64_t timespec_usec(const struct timespec *ts) {
        return ts->tv_sec < 0 ? 0 : (uint64_t) ts->tv_sec * USEC_PER_SEC + (uint64_t) ts->tv_nsec / 1000;
}

/* When the file's content (mtime) or inode (ctime) last changed. */
static uint64_t stat_changed_usec(const struct stat *st) {
        return MAX(timespec_usec(&st->st_mtim), timespec_usec(&st->st_ctim));
}

static bool stat_same(const struct stat *a, const struct stat *b) {
        return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
               a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
               a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

static void sleep_usec(uint64_t usec) {
        struct timespec ts = { .tv_sec = (time_t) (usec / USEC_PER_SEC), .tv_nsec = (long) (usec % USEC_PER_SEC) * 1000 };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

/* A file seen in one state since a moment (CLOCK_MONOTONIC), across attempts to load. */
typedef struct Seen {
        char *path;
        struct stat st;
        uint64_t since;
} Seen;

typedef struct SeenList {
        Seen *v;
        size_t n;
} SeenList;

static void seen_list_done(SeenList *l) {
        for (size_t i = 0; i < l->n; i++)
                free(l->v[i].path);
        free(l->v);
}

/* Notes st as path's state; returns how long (usec) path has been seen in it. */
static uint64_t seen_for(SeenList *l, const char *path, const struct stat *st) {
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        size_t i;
        for (i = 0; i < l->n && !streq(l->v[i].path, path); i++)
                ;
        if (i == l->n) {
                Seen *m = reallocarray(l->v, l->n + 1, sizeof(Seen));
                char *copy = strdup(path);
                if (!m || !copy) {
                        free(copy);
                        if (m)
                                l->v = m;
                        return 0;
                }
                l->v = m;
                l->v[l->n++] = (Seen) { .path = copy, .st = *st, .since = now };
        } else if (!stat_same(&l->v[i].st, st))
                l->v[i] = (Seen) { .path = l->v[i].path, .st = *st, .since = now };
        return now - l->v[i].since;
}

/* Whether some process has the file open for writing (a writer can stall longer than any
 * quiet time between its truncation and its first write): a read lease cannot be had then.
 * It is given back at once; a lease break meanwhile comes as SIGURG, which is ignored. Where
 * leases are not allowed (a file we do not own, NFS), only the quiet time tells. */
static bool open_for_writing(int fd) {
        if (fcntl(fd, F_SETSIG, SIGURG) < 0 || fcntl(fd, F_SETLEASE, F_RDLCK) < 0)
                return errno == EAGAIN;
        (void) fcntl(fd, F_SETLEASE, F_UNLCK);
        return false;
}

/* Settled: not open for writing, and last changed CONFIG_SETTLE_USEC before `before`
 * (CLOCK_REALTIME) or seen unchanged for that long (which covers a timestamp in the future
 * after a clock step). */
static bool settled(SeenList *l, const char *path, int fd, const struct stat *st, uint64_t before) {
        uint64_t changed = stat_changed_usec(st);
        uint64_t seen = seen_for(l, path, st);
        if (open_for_writing(fd))
                return false;
        return (changed <= before && before - changed >= config_settle_usec) || seen >= config_settle_usec;
}

typedef struct ConfigText {
        int fd;
        struct stat st; /* as it was read */
        char *text;     /* the whole text, NUL-terminated, until the split is done */
        size_t len, maplen;
} ConfigText;

static void text_unmap(ConfigText *t) {
        if (t->text)
                munmap(t->text, t->maplen);
        t->text = NULL;
}

static void text_done(ConfigText *t) {
        text_unmap(t);
        if (t->fd >= 0)
                close(t->fd);
        t->fd = -1;
}

/* Waits (up to deadline) until the file has settled, then reads it with read(): a file
 * rewritten while it is read cannot crash us, and a read during which it changed is
 * retried (-EAGAIN). The text lives in its own mapping, so that it is given back at once. */
static int read_config_text(ConfigParser *p, const char *path, bool strict_modes, SeenList *seen, uint64_t deadline,
                            ConfigText *ret) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        struct stat st;
        if (fd < 0) {
                config_error_at_line(p, NULL, 0, "cannot open: %s", strerror(errno));
                return -errno;
        }
        for (;;) {
                if (fstat(fd, &st) < 0)
                        return -errno;
                if (settled(seen, path, fd, &st, now_usec(CLOCK_REALTIME)))
                        break;
                if (now_usec(CLOCK_MONOTONIC) >= deadline) {
                        config_error_at_line(p, NULL, 0, "still being changed after %u s; not read",
                                             CONFIG_SETTLE_MAX_USEC / 1000000U);
                        return -EAGAIN;
                }
                sleep_usec(config_settle_usec / 5);
        }
        if (!S_ISREG(st.st_mode)) {
                config_error_at_line(p, NULL, 0, "not a regular file");
                return -EINVAL;
        }
        if ((uint64_t) st.st_size > CONFIG_FILE_MAX) {
                config_error_at_line(p, NULL, 0, "larger than %u bytes", CONFIG_FILE_MAX);
                return -EFBIG;
        }
        if (strict_modes) {
                _cleanup_free_ char *m = NULL;
                char proc[64];
                snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
                int r = config_check_file_trust(proc, &m);
                if (r < 0) {
                        /* Name the real path, not the /proc alias. */
                        if (st.st_uid != 0 && st.st_uid != geteuid())
                                config_error_at_line(p, NULL, 0,
                                                     "owned by uid %u, not root; refusing to trust it (fix: chown root:root %s)",
                                                     (unsigned) st.st_uid, path);
                        else
                                config_error_at_line(p, NULL, 0,
                                                     "writable by group or others (mode %04o); refusing to trust it (fix: chmod go-w %s)",
                                                     (unsigned) (st.st_mode & 07777), path);
                        return r;
                }
        }
        /* One byte more than the file, to see it grow; zero-filled, so NUL-terminated. */
        size_t len = (size_t) st.st_size, page = (size_t) sysconf(_SC_PAGESIZE), got = 0;
        size_t maplen = ((len + 1) / page + 1) * page;
        char *text = mmap(NULL, maplen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (text == MAP_FAILED)
                return -errno;
        ConfigText t = { .fd = TAKE_FD(fd), .st = st, .text = text, .len = len, .maplen = maplen };
        for (;;) {
                ssize_t n = read(t.fd, text + got, len + 1 - got);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        int r = -errno;
                        config_error_at_line(p, NULL, 0, "cannot read: %s", strerror(errno));
                        text_done(&t);
                        return r;
                }
                got += (size_t) n;
                if (n == 0 || got > len)
                        break;
        }
        if (got != len) {
                config_error_at_line(p, NULL, 0, "changed while it was read");
                text_done(&t);
                return -EAGAIN;
        }
        text[len] = 0;
        if (memchr(text, 0, len)) {
                config_error_at_line(p, NULL, 0, "contains a NUL byte");
                text_done(&t);
                return -EINVAL;
        }
        *ret = t;
        return 0;
}

/* Whether the file still is what was read (fstat before and after). */
static int text_check_unchanged(ConfigParser *p, const ConfigText *t) {
        struct stat st;
        if (fstat(t->fd, &st) < 0)
                return -errno;
        if (stat_same(&st, &t->st))
                return 0;
        config_error_at_line(p, NULL, 0, "changed while it was read");
        return -EAGAIN;
}

/* Files pulled in with @include are configuration too: the same strict modes apply, and
 * they must have settled before the read began (libconfig reads them itself, with stdio,
 * so a change only makes a bad read: -EAGAIN, to read everything again). */
static int check_included_files(ConfigParser *p, const config_t *cfg, SeenList *seen, uint64_t read_start) {
        int ret = 0;
        for (unsigned i = 0; i < cfg->num_filenames; i++) {
                _cleanup_free_ char *m = NULL;
                const char *f = included_file(p, cfg->filenames[i]);
                struct stat st;
                if (!f)
                        continue;
                if (p->strict_modes && config_check_file_trust(f, &m) < 0) {
                        config_error_at_line(p, f, 1, "%s", m ? m : "cannot check this included file");
                        ret = ret ?: -EPERM;
                        continue;
                }
                _cleanup_close_ int fd = open(f, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
                if (fd < 0 || fstat(fd, &st) < 0) {
                        config_error_at_line(p, f, 0, "cannot read: %s", strerror(errno));
                        ret = -EAGAIN;
                } else if (!settled(seen, f, fd, &st, read_start)) {
                        /* Seen only if it is still so at the deadline. */
                        config_error_at_line(p, f, 0, "still being changed after %u s; not read",
                                             CONFIG_SETTLE_MAX_USEC / 1000000U);
                        ret = -EAGAIN;
                }
        }
        return ret;
}

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

static bool split_secrets(const char *t, SecretsSplit *ret) {
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

/* The configuration text with [from, to) read as blanks, line breaks kept (so that line
 * numbers stay right). Read from the file again, so that the text is not held meanwhile. */
typedef struct BlankedText {
        int fd;
        size_t len, pos, from, to;
} BlankedText;

static ssize_t blanked_read(void *cookie, char *buf, size_t size) {
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

static void report_syntax_error(ConfigParser *p, config_t *cfg) {
        const char *text = config_error_text(cfg);
        p->syntax_error = true;
        config_error_at_line(p, included_file(p, config_error_file(cfg)),
                             (unsigned) config_error_line(cfg) + p->line_offset, "%s%s",
                             strstr(text, "syntax error") ? "" : "syntax error: ", text);
}

/* One element of the secrets list, read again from the file and parsed by libconfig on its
 * own. */
static void parse_secret_text(ConfigParser *p, int fd, const Span *e, Config *c, SecretConfig *sec) {
        size_t n = e->end - e->start;
        _cleanup_free_ char *buf = malloc(n + 6);
        config_t cfg;

        sec->line = e->line;
        sec->refresh_interval_usec = c->daemon.refresh_interval_usec;
        if (!buf)
                return;
        memcpy(buf, "x=(", 3);
        ssize_t got = pread(fd, buf + 3, n, (off_t) e->start);
        /* Cut short: an empty element, a syntax error; the check after the parse tells why. */
        memcpy(buf + 3 + MAX(got, 0), ");", 3);
        config_init(&cfg);
        config_set_options(&cfg, 0);
        p->line_offset = e->line - 1;
        if (!config_read_string(&cfg, buf))
                report_syntax_error(p, &cfg);
        else {
                const config_setting_t *l = config_lookup(&cfg, "x");
                if (l && config_setting_length(l) == 1)
                        parse_secret(p, config_setting_get_elem(l, 0), c, sec);
                else {
                        p->syntax_error = true;
                        config_error_at_line(p, NULL, e->line, "syntax error");
                }
        }
        p->line_offset = 0;
        config_destroy(&cfg);
        if (!sec->name)
                sec->name = strdup("?");
}

static Config *config_new(const char *path) {
        Config *c = calloc(1, sizeof(Config));
        if (!c)
                return NULL;
        c->path = strdup(path);
        if (!c->path)
                return config_free(c);
        c->daemon = (DaemonConfig) {
                .refresh_interval_usec = DEFAULT_REFRESH_INTERVAL,
                .max_concurrent_requests = DEFAULT_MAX_CONCURRENT,
                .min_backoff_usec = DEFAULT_MIN_BACKOFF,
                .max_backoff_usec = DEFAULT_MAX_BACKOFF,
                .log_level = LOG_INFO,
        };
        c->kubernetes = (KubeConfig) {
                .leader_election = true,
                .lease_duration_usec = DEFAULT_LEASE_DURATION,
                .renew_deadline_usec = DEFAULT_RENEW_DEADLINE,
                .retry_period_usec = DEFAULT_RETRY_PERIOD,
        };
        return c;
}

static void check_names_unique(ConfigParser *p, Config *c) {
        /* A sorted copy of pointers: a quadratic scan is too slow at 100k secrets. */
        if (c->n_secrets < 2)
                return;
        _cleanup_free_ SecretConfig **v = calloc(c->n_secrets, sizeof(SecretConfig *));
        if (!v)
                return;
        for (size_t i = 0; i < c->n_secrets; i++)
                v[i] = &c->secrets[i];
        qsort(v, c->n_secrets, sizeof(*v), secret_ptr_cmp);
        for (size_t i = 1; i < c->n_secrets; i++) {
                /* An invalid or missing name ("?") is reported already. */
                if (!v[i]->name || !v[i - 1]->name || !streq(v[i]->name, v[i - 1]->name) ||
                    !config_name_valid(v[i]->name))
                        continue;
                /* In file order: the later one is the duplicate. */
                const SecretConfig *a = v[i - 1], *b = v[i];
                if (a > b)
                        a = v[i], b = v[i - 1];
                char w[PATH_MAX + 32];
                if (streq_ptr(a->file, b->file))
                        config_error_at_line(p, b->file, b->line, "secret name '%s' is used twice (lines %u and %u)",
                                             b->name, a->line, b->line);
                else
                        config_error_at_line(p, b->file, b->line, "secret name '%s' is used twice (also at %s)",
                                             b->name, other_place(b->file, a->file, a->line, w, sizeof(w)));
        }
}

/* Parses the text into a new model: the secrets list element by element when split, else
 * the whole file at once. */
static int parse_config_text(ConfigParser *p, const ConfigText *t, const SecretsSplit *split, SeenList *seen,
                             Config **ret) {
        _cleanup_config_ Config *c = config_new(p->path);
        _cleanup_free_ char *dir = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        config_t cfg;
        int r = 0;

        if (!c)
                return -ENOMEM;
        /* libconfig reads through a stream; when split it sees `secrets = ( )`, and the
         * elements come one by one below. */
        BlankedText bt = { .fd = t->fd, .len = t->len, .from = split ? split->open + 1 : 0,
                           .to = split ? split->close : 0 };
        f = fopencookie(&bt, "r", (cookie_io_functions_t) { .read = blanked_read });
        if (!f)
                return -errno;

        config_init(&cfg);
        config_set_options(&cfg, 0);
        /* @include "x" is relative to the including file's directory. */
        dir = strdup(p->path);
        if (dir && strrchr(dir, '/')) {
                *strrchr(dir, '/') = 0;
                config_set_include_dir(&cfg, *dir ? dir : "/");
        }
        uint64_t read_start = now_usec(CLOCK_REALTIME);
        if (!config_read(&cfg, f)) {
                report_syntax_error(p, &cfg);
                config_destroy(&cfg);
                return -EINVAL;
        }
        r = check_included_files(p, &cfg, seen, read_start);
        if (r < 0) {
                config_destroy(&cfg);
                return r;
        }

        const config_setting_t *root = config_root_setting(&cfg);
        static const char *const keys[] = { "daemon", "stores", "kubernetes", "secrets", NULL };
        config_check_keys(p, root, keys);
        parse_daemon(p, member(root, "daemon"), &c->daemon);
        parse_stores(p, member(root, "stores"), c);
        parse_kubernetes(p, member(root, "kubernetes"), &c->kubernetes);

        const config_setting_t *list = member(root, "secrets");
        if (list && expect_type(p, list, CONFIG_TYPE_LIST, "secrets")) {
                size_t n = split ? split->n : (size_t) config_setting_length(list);
                if (n > CONFIG_SECRETS_MAX)
                        config_error(p, list, "too many secrets (%zu; at most %u)", n, CONFIG_SECRETS_MAX);
                else if ((c->secrets = calloc(n + 1, sizeof(SecretConfig)))) {
                        if (split) {
                                /* Everything the main tree held is in the model now. */
                                config_destroy(&cfg);
                                config_init(&cfg);
                        }
                        for (size_t i = 0; i < n && !p->syntax_error; i++) {
                                SecretConfig *sec = &c->secrets[c->n_secrets++];
                                if (split)
                                        parse_secret_text(p, t->fd, &split->elems[i], c, sec);
                                else
                                        parse_secret(p, config_setting_get_elem(list, (unsigned) i), c, sec);
                        }
                }
        }
        config_destroy(&cfg);
        if (p->syntax_error)
                return -EINVAL;
        check_names_unique(p, c);
        check_targets_unique(p, c);
        for (size_t i = 0; i < c->n_secrets; i++)
                if (c->secrets[i].kubernetes && c->secrets[i].kubernetes->creation_policy != CREATION_NONE)
                        c->kubernetes.present = true;
        r = fill_defaults(c);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(c);
        return 0;
}

static int load_once(ConfigParser *p, SeenList *seen, uint64_t deadline, Config **ret) {
        ConfigText t = { .fd = -1 };
        SecretsSplit split = { 0 };
        Config *c = NULL;

        int r = read_config_text(p, p->path, p->strict_modes, seen, deadline, &t);
        if (r < 0)
                return r;
        bool streamed = split_secrets(t.text, &split);
        text_unmap(&t);
        r = parse_config_text(p, &t, streamed ? &split : NULL, seen, &c);
        if (streamed && p->syntax_error) {
                /* Report what libconfig finds in the whole file, as it would without the split. */
                strv_free(p->errors);
                p->errors = NULL;
                p->n_errors = 0;
                p->syntax_error = false;
                c = config_free(c);
                r = parse_config_text(p, &t, NULL, seen, &c);
        }
        free(split.elems);
        /* Whatever was parsed, a file that changed meanwhile is not what the user wrote. */
        int k = text_check_unchanged(p, &t);
        text_done(&t);
        if (k < 0) {
                config_free(c);
                return k;
        }
        if (r >= 0 && p->n_errors > 0)
                r = -EINVAL;
        if (r < 0) {
                config_free(c);
                return r;
        }
        *ret = c;
        return 0;
}

int config_load(const char *path, bool strict_modes, Config **ret, char ***ret_errors) {
        uint64_t deadline = now_usec(CLOCK_MONOTONIC) + CONFIG_SETTLE_MAX_USEC;
        ConfigParser p = { .path = path, .strict_modes = strict_modes };
        SeenList seen = { 0 };
        Config *c = NULL;
        int r;

        /* A file (or an @include'd one) changed while it was read: read it again once it has
         * settled, until the deadline. */
        for (;;) {
                r = load_once(&p, &seen, deadline, &c);
                if (r != -EAGAIN || now_usec(CLOCK_MONOTONIC) >= deadline)
                        break;
                strv_free(p.errors);
                strv_free(p.included);
                p = (ConfigParser) { .path = path, .strict_modes = strict_modes };
                sleep_usec(config_settle_usec / 5);
        }
        seen_list_done(&seen);
        if (r >= 0) {
                /* The model points to the names of the included files. */
                c->included = TAKE_PTR(p.included);
                *ret = c;
                if (ret_errors)
                        *ret_errors = calloc(1, sizeof(char *));
                strv_free(p.errors);
                return 0;
        }
        strv_free(p.included);
        if (p.n_errors == 0)
                config_error_at_line(&p, NULL, 0, "%s", strerror(-r));
        if (ret_errors)
                *ret_errors = p.errors;
        else
                strv_free(p.errors);
        return r;
}
