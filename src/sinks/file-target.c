/* SPDX-License-Identifier: MIT */
/* The file sink's settings (a secret's `files` list) and its vtable; the writing itself is
 * in sink-file.c. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sinks/sink.h"
#include "util/cleanup.h"
#include "util/duration.h"
#include "util/secbuf.h"
#include "util/user.h"

#define DEFAULT_ON_CHANGE_TIMEOUT (30 * USEC_PER_SEC)
#define DEFAULT_FILE_MODE 0600

static const char default_owner[] = "root";

static int parse_mode(ConfigParser *p, const config_setting_t *g, mode_t *ret) {
        const config_setting_t *s = config_member(g, "mode");
        if (!s)
                return 0;
        if (config_setting_type(s) != CONFIG_TYPE_STRING) {
                config_error(p, s, "'mode' must be an octal string like \"0400\", not %s",
                             config_type_name(config_setting_type(s)));
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
                config_error(p, config_member(g, key), "'%s' = \"%s\" is not a valid %s name or id", key, *name,
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

        config_setting_place(p, g, &t->file, &t->line);
        t->format = _FILE_FORMAT_MAX; /* none valid yet: later checks skip this target */
        t->mode = DEFAULT_FILE_MODE;
        t->on_change_timeout_usec = DEFAULT_ON_CHANGE_TIMEOUT;
        if (!config_expect_type(p, g, CONFIG_TYPE_GROUP, "files"))
                return;
        config_check_keys(p, g, keys);
        if (config_get_string(p, g, "path", true, &t->path) > 0 && !config_path_valid(t->path))
                config_error(p, config_member(g, "path"),
                             "secret '%s': file path \"%s\" must be absolute, without '.', '..', '//' or a trailing '/'",
                             sec->name, t->path);
        if (config_get_string(p, g, "format", true, &format) > 0) {
                int f = file_format_from_string(format);
                if (f < 0)
                        config_error(p, config_member(g, "format"),
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
                config_error(p, config_member(g, "key"), "secret '%s': 'key' applies only to format \"raw\"",
                             sec->name);
        if (t->format == FILE_FORMAT_TEMPLATE) {
                if (!!t->template_text == !!t->template_file)
                        config_error(p, g, "secret '%s': a template file target needs exactly one of 'template' or "
                                     "'template_file'", sec->name);
                else if (t->template_file) {
                        if (!config_path_valid(t->template_file))
                                config_error(p, config_member(g, "template_file"),
                                             "'template_file' must be an absolute path");
                        else
                                read_template_file(p, config_member(g, "template_file"), t->template_file,
                                                   &t->template_text);
                }
        } else if (t->template_text || t->template_file)
                config_error(p, config_member(g, "template") ?: config_member(g, "template_file"),
                             "secret '%s': 'template' and 'template_file' apply only to format \"template\"",
                             sec->name);

        parse_owner(p, g, "owner", true, &t->owner, &id);
        t->uid = (uid_t) id;
        parse_owner(p, g, "group", false, &t->group, &id);
        t->gid = (gid_t) id;
        parse_mode(p, g, &t->mode);
        if (config_get_strv(p, g, "on_change", &t->on_change) > 0) {
                if (!t->on_change[0] || !*t->on_change[0])
                        config_error(p, config_member(g, "on_change"),
                                     "secret '%s': 'on_change' must name a program, like [ \"systemctl\", \"reload\", \"x.service\" ]",
                                     sec->name);
        }
        config_get_duration(p, g, "on_change_timeout", &t->on_change_timeout_usec);
        if (t->on_change_timeout_usec == 0)
                config_error(p, config_member(g, "on_change_timeout") ?: g,
                             "'on_change_timeout' must be greater than zero");
}

static size_t file_parse_config(SecretConfig *sec, ConfigParser *p, const config_setting_t *s) {
        if (!config_expect_type(p, s, CONFIG_TYPE_LIST, "files"))
                return 0;
        int n = config_setting_length(s);
        sec->files = calloc(MAX(n, 1), sizeof(FileTarget));
        for (int i = 0; sec->files && i < n; i++)
                parse_file_target(p, config_setting_get_elem(s, (unsigned) i), sec, &sec->files[sec->n_files++]);
        return sec->n_files;
}

static void file_check_config(const SecretConfig *sec, ConfigParser *p, const config_setting_t *s,
                              char *const *keys, bool keys_complete) {
        for (size_t i = 0; i < sec->n_files; i++) {
                const FileTarget *t = &sec->files[i];
                _cleanup_free_ char *m = NULL;
                if (!t->path)
                        continue;
                if (t->format == FILE_FORMAT_TEMPLATE && !t->template_text)
                        continue;
                /* Already reported: no valid format, or a raw target without a key. */
                if (t->format >= _FILE_FORMAT_MAX || (t->format == FILE_FORMAT_RAW && !t->key))
                        continue;
                if (sink_file_check(t, keys, keys_complete, &m) < 0)
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

/* No file written by two secrets, nor inside another secret's dir target. */
static void file_check_all(Config *c, ConfigParser *p) {
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
                                             config_other_place(v[i].t->file, v[i - 1].t->file, v[i - 1].t->line, b,
                                                                sizeof(b)));
                if (v[i].t->format != FILE_FORMAT_DIR)
                        continue;
                for (size_t j = i + 1; j < k && path_is_under(v[j].t->path, v[i].t->path); j++)
                        config_error_at_line(p, v[j].t->file, v[j].t->line,
                                             "secret '%s': file %s lies inside the dir target %s of secret '%s' (%s)",
                                             v[j].s->name, v[j].t->path, v[i].t->path, v[i].s->name,
                                             config_other_place(v[j].t->file, v[i].t->file, v[i].t->line, b, sizeof(b)));
        }
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
        config_dump_mode(d, "mode", t->mode);
        if (t->on_change)
                config_dump_strv(d, "on_change", t->on_change);
        config_dump_duration(d, "on_change_timeout", t->on_change_timeout_usec);
}

static void file_dump_config(const SecretConfig *sec, ConfigDump *d) {
        if (sec->n_files == 0)
                return;
        config_dump_list_open(d, "files");
        for (size_t i = 0; i < sec->n_files; i++) {
                config_dump_item_open(d);
                dump_file_target(d, &sec->files[i]);
                config_dump_item_close(d, i + 1 == sec->n_files);
        }
        config_dump_list_close(d);
}

static void file_done(SecretConfig *sec) {
        for (size_t i = 0; i < sec->n_files; i++) {
                FileTarget *t = &sec->files[i];
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
        free(sec->files);
}

static size_t file_n_targets(const SecretConfig *sec) {
        return sec->n_files;
}

static void file_target_name(const SecretConfig *sec, size_t i, char *buf, size_t size) {
        snprintf(buf, size, "%s", sec->files[i].path);
}

/* The instance is the manager's batch of directories to fsync. */
static int file_new(const SinkContext *ctx, const Config *c, void **ret, char **ret_error) {
        *ret = ctx->batch;
        return 0;
}

static void file_free(void *sink) {
}

static int file_write(void *sink, const SecretConfig *sec, size_t i, const SecretData *d, sink_write_cb cb,
                      void *userdata, char **ret_error) {
        const FileTarget *t = &sec->files[i];
        bool changed = false;
        char detail[128];

        int r = sink_file_write(t, d, sink, &changed, ret_error);
        if (r < 0)
                return r;
        snprintf(detail, sizeof(detail), " (%s, %s:%s %04o)", file_format_to_string(t->format), t->owner, t->group,
                 (unsigned) t->mode);
        cb(&(SinkWriteResult) { .outcome = changed ? SINK_WRITTEN : SINK_UNCHANGED, .detail = detail, .flush = changed,
                                .on_change = t->on_change, .on_change_timeout_usec = t->on_change_timeout_usec },
           userdata);
        return 0;
}

const SinkVTable sink_file_vtable = {
        .name = "file",
        .setting = "files",
        .noun = "",
        .parse_config = file_parse_config,
        .check_config = file_check_config,
        .check_all = file_check_all,
        .dump_config = file_dump_config,
        .done = file_done,
        .n_targets = file_n_targets,
        .target_name = file_target_name,
        .new = file_new,
        .free = file_free,
        .write = file_write,
};
