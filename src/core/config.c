/* SPDX-License-Identifier: MIT */
#include "core/config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "core/config-read.h"
#include "core/config-scan.h"
#include "sinks/sink.h"
#include "stores/store.h"
#include "util/duration.h"

#define DEFAULT_REFRESH_INTERVAL (1 * USEC_PER_HOUR)
#define DEFAULT_MAX_CONCURRENT 16
#define DEFAULT_MIN_BACKOFF (1 * USEC_PER_SEC)
#define DEFAULT_MAX_BACKOFF (5 * USEC_PER_MINUTE)
#define DEFAULT_LEASE_DURATION (15 * USEC_PER_SEC)
#define DEFAULT_RENEW_DEADLINE (10 * USEC_PER_SEC)
#define DEFAULT_RETRY_PERIOD (2 * USEC_PER_SEC)

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
int file_format_from_string(const char *s) {
        return table_lookup(file_format_table, _FILE_FORMAT_MAX, s);
}
int creation_policy_from_string(const char *s) {
        return table_lookup(creation_policy_table, _CREATION_MAX, s);
}
int deletion_policy_from_string(const char *s) {
        return table_lookup(deletion_policy_table, _DELETION_MAX, s);
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
bool config_dns_label_valid(const char *s) {
        return strlen(s) <= 63 && config_name_valid(s);
}

/* DNS-1123 subdomain (Secret names): labels joined by dots, at most 253. */
bool config_dns_subdomain_valid(const char *s) {
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
        *ret_line = setting_line(p, s);
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

static void dump_remote_ref(ConfigDump *d, const char *key, const RemoteRef *r) {
        config_dump_open(d, key);
        config_dump_string(d, "key", r->key);
        if (r->property)
                config_dump_string(d, "property", r->property);
        if (r->version)
                config_dump_string(d, "version", r->version);
        config_dump_close(d);
}

void config_dump_mode(ConfigDump *d, const char *key, mode_t m) {
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

static void dump_secret(ConfigDump *d, const SecretConfig *s) {
        config_dump_string(d, "name", s->name);
        config_dump_string(d, "store", s->store_name);
        config_dump_duration(d, "refresh_interval", s->refresh_interval_usec);
        if (s->n_data > 0) {
                config_dump_list_open(d, "data");
                for (size_t i = 0; i < s->n_data; i++) {
                        config_dump_item_open(d);
                        config_dump_string(d, "secret_key", s->data[i].secret_key);
                        dump_remote_ref(d, "remote_ref", &s->data[i].remote);
                        config_dump_item_close(d, i + 1 == s->n_data);
                }
                config_dump_list_close(d);
        }
        if (s->n_data_from > 0) {
                config_dump_list_open(d, "data_from");
                for (size_t i = 0; i < s->n_data_from; i++) {
                        config_dump_item_open(d);
                        dump_remote_ref(d, "extract", &s->data_from[i].extract);
                        config_dump_item_close(d, i + 1 == s->n_data_from);
                }
                config_dump_list_close(d);
        }
        for (const SinkVTable *const *vt = sink_vtables; *vt; vt++)
                (*vt)->dump_config(s, d);
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
                config_dump_item_open(&d);
                dump_secret(&d, &c->secrets[i]);
                config_dump_item_close(&d, i + 1 == c->n_secrets);
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
        for (const SinkVTable *const *vt = sink_vtables; *vt; vt++)
                (*vt)->done(s);
}

Config *config_free(Config *c) {
        if (!c)
                return NULL;
        free(c->path);
        strv_free(c->included);
        free(c->daemon.runtime_dir);
        free(c->daemon.state_dir);
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
        return config_expect_type(p, s, CONFIG_TYPE_GROUP, what);
}

static void parse_daemon(ConfigParser *p, const config_setting_t *g, DaemonConfig *d) {
        static const char *const keys[] = { "refresh_interval", "max_concurrent_requests", "min_backoff",
                                            "max_backoff", "log_level", "runtime_dir", "state_dir", NULL };
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
        if (d->min_backoff_usec == 0 && config_member(g, "min_backoff"))
                config_error(p, config_member(g, "min_backoff"), "'min_backoff' must be greater than zero");
        if (d->max_backoff_usec < d->min_backoff_usec)
                config_error(p, config_member(g, "max_backoff") ?: g, "'max_backoff' must not be shorter than 'min_backoff'");
        if (config_get_string(p, g, "log_level", false, &level) > 0) {
                int l = log_level_from_string(level);
                if (l < 0)
                        config_error(p, config_member(g, "log_level"),
                                     "'log_level' = \"%s\" is not one of debug, info, notice, warning, err", level);
                else
                        d->log_level = l;
        }
        if (config_get_string(p, g, "runtime_dir", false, &d->runtime_dir) > 0 &&
            !config_path_valid(d->runtime_dir))
                config_error(p, config_member(g, "runtime_dir"), "'runtime_dir' must be an absolute path");
        if (config_get_string(p, g, "state_dir", false, &d->state_dir) > 0 &&
            !config_path_valid(d->state_dir))
                config_error(p, config_member(g, "state_dir"), "'state_dir' must be an absolute path");
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
                        config_error(p, config_member(s, "type"), "store '%s': unknown type \"%s\" (known: %s)", name, type,
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
        const config_setting_t *le = config_member(g, "leader_election");
        if (le && expect_group(p, le, "leader_election")) {
                config_check_keys(p, le, le_keys);
                config_get_bool(p, le, "enabled", &k->leader_election);
                if (config_get_string(p, le, "namespace", false, &k->lease_namespace) > 0 &&
                    !config_dns_label_valid(k->lease_namespace))
                        config_error(p, config_member(le, "namespace"), "'namespace' = \"%s\" is not a valid namespace name",
                                     k->lease_namespace);
                if (config_get_string(p, le, "lease_name", false, &k->lease_name) > 0 &&
                    !config_dns_subdomain_valid(k->lease_name))
                        config_error(p, config_member(le, "lease_name"), "'lease_name' = \"%s\" is not a valid object name",
                                     k->lease_name);
                if (config_get_string(p, le, "identity", false, &k->identity) > 0 && !*k->identity)
                        config_error(p, config_member(le, "identity"), "'identity' must not be empty");
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
                config_error(p, config_member(g, "property"), "'property' = \"%s\" is not a valid (dotted) key path",
                             r->property);
                return -EINVAL;
        }
        if (config_get_string(p, g, "version", false, &r->version) > 0 && !*r->version) {
                free(r->version);
                r->version = NULL;
        }
        return 0;
}

static void parse_secret(ConfigParser *p, const config_setting_t *g, Config *c, SecretConfig *sec) {
        static const char *const keys[] = { "name", "store", "refresh_interval", "data", "data_from",
                                            "kubernetes", "files", NULL };
        const config_setting_t *s;

        sec->file = config_included_file(p, config_setting_source_file(g));
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
                config_error(p, config_member(g, "name"),
                             "secret name '%s' is not valid: use lower case letters, digits and '-', starting and "
                             "ending with a letter or digit",
                             sec->name);
        if (config_get_string(p, g, "store", true, &sec->store_name) > 0) {
                sec->store = config_find_store(c, sec->store_name);
                if (!sec->store)
                        config_error(p, config_member(g, "store"), "secret '%s': store '%s' is not defined in 'stores'",
                                     sec->name, sec->store_name);
        }
        config_get_duration(p, g, "refresh_interval", &sec->refresh_interval_usec);

        if ((s = config_member(g, "data")) && config_expect_type(p, s, CONFIG_TYPE_LIST, "data")) {
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
                                config_error(p, config_member(e, "secret_key"),
                                             "secret '%s': secret_key \"%s\" must be made of [-._a-zA-Z0-9]",
                                             sec->name, d->secret_key);
                        for (size_t j = 0; d->secret_key && j + 1 < sec->n_data; j++)
                                if (streq_ptr(sec->data[j].secret_key, d->secret_key))
                                        config_error(p, e, "secret '%s': secret_key \"%s\" appears twice", sec->name,
                                                     d->secret_key);
                        const config_setting_t *rr = config_member(e, "remote_ref");
                        if (!rr)
                                config_error(p, e, "missing required setting 'remote_ref'");
                        else
                                parse_remote_ref(p, rr, "remote_ref", &d->remote);
                }
        }
        if ((s = config_member(g, "data_from")) && config_expect_type(p, s, CONFIG_TYPE_LIST, "data_from")) {
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
                        const config_setting_t *x = config_member(e, "extract");
                        if (!x)
                                config_error(p, e, "missing required setting 'extract'");
                        else
                                parse_remote_ref(p, x, "extract", &d->extract);
                }
        }
        if (sec->n_data == 0 && sec->n_data_from == 0)
                config_error(p, g, "secret '%s' has neither 'data' nor 'data_from': nothing to fetch", sec->name);

        size_t targets = 0;
        for (const SinkVTable *const *vt = sink_vtables; *vt; vt++)
                if ((s = config_member(g, (*vt)->setting)))
                        targets += (*vt)->parse_config(sec, p, s);
        if (targets == 0)
                config_error(p, g, "secret '%s' has no target: add 'files' or 'kubernetes'", sec->name);

        /* The store's own view of the refs (a version on a KV v1 store, say). */
        if (sec->store && sec->store->vtable->check_ref) {
                const config_setting_t *l = config_member(g, "data");
                for (size_t i = 0; i < sec->n_data; i++) {
                        _cleanup_free_ char *m = NULL;
                        if (sec->data[i].remote.key &&
                            sec->store->vtable->check_ref(sec->store, &sec->data[i].remote, &m) < 0)
                                config_error(p, l ? config_setting_get_elem(l, (unsigned) i) : g, "secret '%s': %s",
                                             sec->name, m ? m : "invalid remote_ref");
                }
                l = config_member(g, "data_from");
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
        for (const SinkVTable *const *vt = sink_vtables; known && *vt; vt++)
                if ((*vt)->check_config && (s = config_member(g, (*vt)->setting)))
                        (*vt)->check_config(sec, p, s, known, sec->n_data_from == 0);
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

static void report_syntax_error(ConfigParser *p, config_t *cfg) {
        const char *text = config_error_text(cfg);
        p->syntax_error = true;
        config_error_at_line(p, config_included_file(p, config_error_file(cfg)),
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
                                             b->name, config_other_place(b->file, a->file, a->line, w, sizeof(w)));
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
        f = fopencookie(&bt, "r", (cookie_io_functions_t) { .read = config_blanked_read });
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
        uint64_t read_start = config_now_usec(CLOCK_REALTIME);
        if (!config_read(&cfg, f)) {
                report_syntax_error(p, &cfg);
                config_destroy(&cfg);
                return -EINVAL;
        }
        r = config_check_included_files(p, &cfg, seen, read_start);
        if (r < 0) {
                config_destroy(&cfg);
                return r;
        }

        const config_setting_t *root = config_root_setting(&cfg);
        static const char *const keys[] = { "daemon", "stores", "kubernetes", "secrets", NULL };
        config_check_keys(p, root, keys);
        parse_daemon(p, config_member(root, "daemon"), &c->daemon);
        parse_stores(p, config_member(root, "stores"), c);
        parse_kubernetes(p, config_member(root, "kubernetes"), &c->kubernetes);

        const config_setting_t *list = config_member(root, "secrets");
        if (list && config_expect_type(p, list, CONFIG_TYPE_LIST, "secrets")) {
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
        for (const SinkVTable *const *vt = sink_vtables; *vt; vt++)
                (*vt)->check_all(c, p);
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

        int r = config_text_read(p, p->path, p->strict_modes, seen, deadline, &t);
        if (r < 0)
                return r;
        bool streamed = config_split_secrets(t.text, &split);
        config_text_unmap(&t);
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
        int k = config_text_check_unchanged(p, &t);
        config_text_done(&t);
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
        uint64_t deadline = config_now_usec(CLOCK_MONOTONIC) + CONFIG_SETTLE_MAX_USEC;
        ConfigParser p = { .path = path, .strict_modes = strict_modes };
        SeenList seen = { 0 };
        Config *c = NULL;
        int r;

        /* A file (or an @include'd one) changed while it was read: read it again once it has
         * settled, until the deadline. */
        for (;;) {
                r = load_once(&p, &seen, deadline, &c);
                if (r != -EAGAIN || config_now_usec(CLOCK_MONOTONIC) >= deadline)
                        break;
                strv_free(p.errors);
                strv_free(p.included);
                p = (ConfigParser) { .path = path, .strict_modes = strict_modes };
                config_sleep_usec(config_settle_usec / 5);
        }
        config_seen_done(&seen);
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
