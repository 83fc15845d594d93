/* SPDX-License-Identifier: MIT */
/* The file sink's settings (a secret's `files` list) and its vtable; the writing itself is
 * in sink-file.c. */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
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

/* owner/group: a name or a decimal id. A name unknown here is not an error: the user may be
 * created later (by the package of the service that reads the file); it is looked up
 * again at each write, and a write fails while it does not exist. */
static int parse_owner(ConfigParser *p, const config_setting_t *g, const ConfigSetting *s, void *obj, void *parent) {
        FileTarget *t = obj;
        bool user = streq(s->name, "owner");
        char **name = user ? &t->owner : &t->group;
        unsigned id;

        int r = config_get_string(p, g, s->name, false, name);
        if (r < 0)
                return r;
        if (!*name || streq(*name, "root")) {
                /* The default, shared by every target that does not name another (a
                 * 10,000-target file would otherwise hold 20,000 copies). */
                free(*name);
                *name = (char *) default_owner;
                id = 0;
        } else if (!user_name_valid(*name)) {
                config_error(p, config_member(g, s->name), "'%s' = \"%s\" is not a valid %s name or id", s->name,
                             *name, user ? "user" : "group");
                return -EINVAL;
        } else {
                uid_t uid;
                gid_t gid;
                if (user)
                        id = user_resolve(*name, &uid) >= 0 ? (unsigned) uid : (unsigned) UID_UNRESOLVED;
                else
                        id = group_resolve(*name, &gid) >= 0 ? (unsigned) gid : (unsigned) GID_UNRESOLVED;
        }
        if (user)
                t->uid = (uid_t) id;
        else
                t->gid = (gid_t) id;
        return r;
}

static void owner_done(const ConfigSetting *s, void *obj) {
        FileTarget *t = obj;
        char *name = streq(s->name, "owner") ? t->owner : t->group;
        if (name != default_owner)
                free(name);
}

/* A format that is not one of them reads as not set: the target is checked no further. */
static int parse_format(ConfigParser *p, const config_setting_t *g, const ConfigSetting *s, void *obj,
                        void *parent) {
        _cleanup_free_ char *format = NULL;
        FileTarget *t = obj;
        const SecretConfig *sec = parent;

        int r = config_get_string(p, g, s->name, true, &format);
        if (r <= 0)
                return r;
        int f = file_format_from_string(format);
        if (f < 0) {
                config_error(p, config_member(g, s->name),
                             "secret '%s': format \"%s\" is not one of env, json, raw, dir, template", sec->name, format);
                return 0;
        }
        t->format = (FileFormat) f;
        return 1;
}

static void template_done(const ConfigSetting *s, void *obj) {
        erase_and_free(((FileTarget *) obj)->template_text);
}

static void dump_template(ConfigDump *d, const ConfigSetting *s, const void *obj) {
        const FileTarget *t = obj;
        sink_dump_template(d, t->template_file, t->template_text);
}

static bool check_path(ConfigParser *p, const config_setting_t *g, const config_setting_t *s, void *obj,
                       void *parent) {
        const FileTarget *t = obj;
        if (config_path_valid(t->path))
                return true;
        config_error(p, s, "secret '%s': file path \"%s\" must be absolute, without '.', '..', '//' or a trailing '/'",
                     ((const SecretConfig *) parent)->name, t->path);
        return false;
}

/* Once key, template and template_file are read: which the format needs, and the
 * template_file's text. */
static bool check_format_settings(ConfigParser *p, const config_setting_t *g, const config_setting_t *s, void *obj,
                                  void *parent) {
        FileTarget *t = obj;
        const char *name = ((const SecretConfig *) parent)->name;

        if (t->format == FILE_FORMAT_RAW && !t->key)
                config_error(p, g, "secret '%s': a raw file target needs 'key' (which key's value to write)", name);
        if (t->format != FILE_FORMAT_RAW && t->key)
                config_error(p, config_member(g, "key"), "secret '%s': 'key' applies only to format \"raw\"", name);
        if (t->format == FILE_FORMAT_TEMPLATE) {
                if (!!t->template_text == !!t->template_file)
                        config_error(p, g, "secret '%s': a template file target needs exactly one of 'template' or "
                                     "'template_file'", name);
                else if (t->template_file) {
                        if (!config_path_valid(t->template_file))
                                config_error(p, s, "'template_file' must be an absolute path");
                        else
                                sink_read_template_file(p, s, t->template_file, &t->template_text);
                }
        } else if (t->template_text || t->template_file)
                config_error(p, config_member(g, "template") ?: s,
                             "secret '%s': 'template' and 'template_file' apply only to format \"template\"", name);
        return true;
}

static bool check_on_change(ConfigParser *p, const config_setting_t *g, const config_setting_t *s, void *obj,
                            void *parent) {
        const FileTarget *t = obj;
        if (t->on_change[0] && *t->on_change[0])
                return true;
        config_error(p, s,
                     "secret '%s': 'on_change' must name a program, like [ \"systemctl\", \"reload\", \"x.service\" ]",
                     ((const SecretConfig *) parent)->name);
        return false;
}

static bool check_on_change_timeout(ConfigParser *p, const config_setting_t *g, const config_setting_t *s, void *obj,
                                    void *parent) {
        if (((const FileTarget *) obj)->on_change_timeout_usec > 0)
                return true;
        config_error(p, s ?: g, "'on_change_timeout' must be greater than zero");
        return false;
}

/* Checks get the SecretConfig as parent. */
static const ConfigSetting file_target_settings[] = {
        { "path", CONFIG_SETTING_STRING, offsetof(FileTarget, path), CONFIG_SETTING_REQUIRED, .check = check_path },
        /* default: none valid yet, and later checks skip the target */
        { "format", CONFIG_SETTING_ENUM, offsetof(FileTarget, format),
          CONFIG_SETTING_REQUIRED | CONFIG_SETTING_STOP_UNREAD, .def = _FILE_FORMAT_MAX, .parse = parse_format,
          .to_string = file_format_to_string },
        { "key", CONFIG_SETTING_STRING, offsetof(FileTarget, key), CONFIG_SETTING_DUMP_IF_SET },
        { "template", CONFIG_SETTING_STRING, offsetof(FileTarget, template_text), CONFIG_SETTING_MULTILINE,
          .dump = sink_dump_nothing,
          .done = template_done },
        { "template_file", CONFIG_SETTING_STRING, offsetof(FileTarget, template_file), CONFIG_SETTING_CHECK_ALWAYS,
          .check = check_format_settings, .dump = dump_template },
        { "owner", CONFIG_SETTING_STRING, offsetof(FileTarget, owner), .parse = parse_owner, .done = owner_done },
        { "group", CONFIG_SETTING_STRING, offsetof(FileTarget, group), .parse = parse_owner, .done = owner_done },
        { "mode", CONFIG_SETTING_MODE, offsetof(FileTarget, mode), .def = DEFAULT_FILE_MODE },
        { "on_change", CONFIG_SETTING_STRV, offsetof(FileTarget, on_change), CONFIG_SETTING_DUMP_IF_SET,
          .check = check_on_change },
        { "on_change_timeout", CONFIG_SETTING_DURATION, offsetof(FileTarget, on_change_timeout_usec),
          CONFIG_SETTING_CHECK_ALWAYS, .def = DEFAULT_ON_CHANGE_TIMEOUT, .check = check_on_change_timeout },
        {}
};

static size_t file_parse_config(SecretConfig *sec, ConfigParser *p, const config_setting_t *s) {
        if (!config_expect_type(p, s, CONFIG_TYPE_LIST, "files"))
                return 0;
        int n = config_setting_length(s);
        sec->files = calloc(MAX(n, 1), sizeof(FileTarget));
        for (int i = 0; sec->files && i < n; i++) {
                const config_setting_t *g = config_setting_get_elem(s, (unsigned) i);
                FileTarget *t = &sec->files[sec->n_files++];

                config_setting_place(p, g, &t->file, &t->line);
                config_settings_defaults(file_target_settings, t);
                if (config_expect_type(p, g, CONFIG_TYPE_GROUP, "files"))
                        (void) config_settings_parse(p, g, file_target_settings, t, sec, NULL);
        }
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

static void file_dump_config(const SecretConfig *sec, ConfigDump *d) {
        if (sec->n_files == 0)
                return;
        config_dump_list_open(d, "files");
        for (size_t i = 0; i < sec->n_files; i++) {
                config_dump_item_open(d);
                config_settings_dump(d, file_target_settings, &sec->files[i]);
                config_dump_item_close(d, i + 1 == sec->n_files);
        }
        config_dump_list_close(d);
}

static void file_done(SecretConfig *sec) {
        for (size_t i = 0; i < sec->n_files; i++)
                config_settings_done(file_target_settings, &sec->files[i]);
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

typedef struct CleanUp {
        const SinkContext *ctx;
        const SecretConfig **secrets; /* of each path, or NULL: the dir target below */
        const char **paths;
        const SecretConfig *sec;
        const char *path;
} CleanUp;

static void on_removed(size_t index, const char *name, void *userdata) {
        const CleanUp *x = userdata;
        x->ctx->on_event(&(SinkEvent) { .sink = &sink_file_vtable, .kind = SINK_EVENT_CLEANED,
                                        .secret = x->paths ? x->secrets[index]->name : x->sec->name,
                                        .target = x->paths ? x->paths[index] : x->path, .message = name },
                         x->ctx->userdata);
}

static void file_clean_up(const SinkContext *ctx, const Config *c) {
        size_t n = 0, k = 0;

        for (size_t i = 0; i < c->n_secrets; i++)
                n += c->secrets[i].n_files;
        _cleanup_free_ const char **paths = calloc(n + 1, sizeof(char *));
        _cleanup_free_ const SecretConfig **secrets = calloc(n + 1, sizeof(SecretConfig *));
        if (!paths || !secrets)
                return;

        for (size_t i = 0; i < c->n_secrets; i++)
                for (size_t j = 0; j < c->secrets[i].n_files; j++) {
                        const FileTarget *t = &c->secrets[i].files[j];
                        if (t->format != FILE_FORMAT_DIR) {
                                secrets[k] = &c->secrets[i];
                                paths[k++] = t->path;
                                continue;
                        }
                        uid_t uid = t->uid;
                        if (uid == UID_UNRESOLVED && user_resolve(t->owner, &uid) < 0)
                                uid = 0;
                        atomic_dir_clean_up(t->path, uid, on_removed,
                                            &(CleanUp) { .ctx = ctx, .sec = &c->secrets[i], .path = t->path });
                }
        (void) atomic_file_clean_up(paths, k, on_removed, &(CleanUp) { .ctx = ctx, .secrets = secrets, .paths = paths });
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
        .clean_up = file_clean_up,
        .write = file_write,
};
