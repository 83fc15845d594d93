/* SPDX-License-Identifier: MIT */
#include "sinks/sink.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/atomic-file.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/user.h"
#include "util/template.h"

/* execve() refuses any single "KEY=value" string longer than this (the kernel's
 * MAX_ARG_STRLEN, NUL included): a longer value would load from the file but the service
 * would never start with it. */
#define ENV_ASSIGNMENT_MAX (32U * 4096U)

/* KEY="value" lines. Inside double quotes both POSIX sh and systemd's EnvironmentFile=
 * parser (v252, parse_env_file_internal) turn \" \\ \$ \` into the bare character, keep a
 * newline, tab, CR or other control character literally, and keep a backslash before any
 * other character; backslash-newline is a line continuation to both, and cannot occur as
 * every backslash of the value is escaped. So escaping exactly those four characters reads
 * back byte for byte through both.
 * What cannot: NUL (both stop at it), and bytes systemd's utf8_is_valid() refuses (invalid
 * UTF-8 and the noncharacters U+FDD0..U+FDEF, U+xxFFFE/F), for which systemd rejects the
 * whole file and the unit does not start. */
static int render_env(const SecretData *d, SecBuf *out, char **ret_error) {
        int r = 0;

        for (size_t i = 0; i < d->n && r >= 0; i++) {
                const char *key = d->entries[i].key;
                const SecBuf *v = d->entries[i].value;

                if (!config_env_name_valid(key))
                        return error_set(ret_error, -EINVAL,
                                    "key '%s' is not a valid environment variable name ([A-Za-z_][A-Za-z0-9_]*)", key);
                if (memchr(v->data, 0, v->len))
                        return error_set(ret_error, -EINVAL,
                                    "the value of key '%s' contains a NUL byte, which an environment file cannot hold",
                                    key);
                if (!template_utf8_valid(v->data, v->len, true))
                        return error_set(ret_error, -EILSEQ,
                                    "the value of key '%s' is not valid UTF-8 (or holds a Unicode noncharacter), "
                                    "which systemd's EnvironmentFile= refuses",
                                    key);
                if (strlen(key) + 2 + v->len > ENV_ASSIGNMENT_MAX)
                        return error_set(ret_error, -E2BIG,
                                    "the value of key '%s' is longer than an environment variable can be (%u bytes with its name)",
                                    key, ENV_ASSIGNMENT_MAX - 1);

                r = secbuf_append_str(out, key);
                if (r >= 0)
                        r = secbuf_append(out, "=\"", 2);
                size_t run = 0;
                for (size_t k = 0; k < v->len && r >= 0; k++) {
                        uint8_t c = v->data[k];
                        if (c != '"' && c != '\\' && c != '$' && c != '`')
                                continue;
                        r = secbuf_append(out, v->data + run, k - run);
                        if (r >= 0)
                                r = secbuf_append_char(out, '\\');
                        run = k;
                }
                if (r >= 0)
                        r = secbuf_append(out, v->data + run, v->len - run);
                if (r >= 0)
                        r = secbuf_append(out, "\"\n", 2);
        }
        if (r < 0)
                return error_set(ret_error, r, "out of memory");
        return 0;
}

/* Compact, one line: {"a":"1","b":"2"} and a newline. */
static int render_json(const SecretData *d, SecBuf *out, char **ret_error) {
        int r = secbuf_append_char(out, '{');

        for (size_t i = 0; i < d->n && r >= 0; i++) {
                const char *key = d->entries[i].key;
                const SecBuf *v = d->entries[i].value;

                if (i > 0)
                        r = secbuf_append_char(out, ',');
                if (r >= 0)
                        r = template_json_string_append(out, key, strlen(key));
                if (r == -EILSEQ)
                        return error_set(ret_error, r, "a key of the secret is not valid UTF-8");
                if (r >= 0)
                        r = secbuf_append_char(out, ':');
                if (r >= 0)
                        r = template_json_string_append(out, v->data, v->len);
                if (r == -EILSEQ)
                        return error_set(ret_error, r, "the value of key '%s' is not valid UTF-8, which JSON cannot hold",
                                    key);
        }
        if (r >= 0)
                r = secbuf_append(out, "}\n", 2);
        if (r < 0)
                return error_set(ret_error, r, "out of memory");
        return 0;
}

int sink_file_render(const FileTarget *t, const SecretData *d, SecBuf **ret, char **ret_error) {
        _cleanup_secbuf_ SecBuf *out = NULL;
        const SecBuf *v;
        int r;

        switch (t->format) {
        case FILE_FORMAT_RAW:
                if (!t->key)
                        return error_set(ret_error, -EINVAL, "a raw target needs a key");
                v = secret_data_get(d, t->key);
                if (!v)
                        return error_set(ret_error, -ENOENT, "key '%s' is not in the secret", t->key);
                out = secbuf_dup(v);
                break;
        case FILE_FORMAT_TEMPLATE:
                if (!t->template_text)
                        return error_set(ret_error, -EINVAL, "a template target needs a template");
                return template_render(t->template_text, d, ret, ret_error);
        case FILE_FORMAT_ENV:
        case FILE_FORMAT_JSON:
                out = secbuf_new(4096);
                if (!out)
                        break;
                r = (t->format == FILE_FORMAT_ENV ? render_env : render_json)(d, out, ret_error);
                if (r < 0)
                        return r;
                break;
        case FILE_FORMAT_DIR:
                return error_set(ret_error, -EINVAL, "a dir target is published as a directory, not rendered");
        default:
                return error_set(ret_error, -EINVAL, "unknown file format");
        }
        if (!out)
                return error_set(ret_error, -ENOMEM, "out of memory");
        *ret = TAKE_PTR(out);
        return 0;
}

int sink_file_write(const FileTarget *t, const SecretData *d, AtomicSyncBatch *batch, bool *ret_changed,
                    char **ret_error) {
        _cleanup_secbuf_ SecBuf *content = NULL;
        uid_t uid = t->uid;
        gid_t gid = t->gid;
        int r;

        /* Named in the configuration but unknown when it was loaded: maybe created since. */
        if (uid == UID_UNRESOLVED && (r = user_resolve(t->owner, &uid)) < 0)
                return error_set(ret_error, r, "no such user '%s' on this system (owner of %s)", t->owner, t->path);
        if (gid == GID_UNRESOLVED && (r = group_resolve(t->group, &gid)) < 0)
                return error_set(ret_error, r, "no such group '%s' on this system (group of %s)", t->group, t->path);

        if (t->format == FILE_FORMAT_DIR)
                return atomic_dir_publish(t->path, d, uid, gid, t->mode, ret_changed, ret_error);

        r = sink_file_render(t, d, &content, ret_error);
        if (r < 0)
                return r;
        return atomic_file_write(t->path, content->data, content->len, uid, gid, t->mode, batch, ret_changed,
                                 ret_error);
}

int sink_file_check(const FileTarget *t, char *const *keys, bool keys_complete, char **ret_error) {
        switch (t->format) {
        case FILE_FORMAT_ENV:
                for (char *const *k = keys; k && *k; k++)
                        if (!config_env_name_valid(*k))
                                return error_set(ret_error, -EINVAL,
                                            "key '%s' is not a valid environment variable name ([A-Za-z_][A-Za-z0-9_]*), "
                                            "as an env target needs",
                                            *k);
                return 0;
        case FILE_FORMAT_DIR:
                for (char *const *k = keys; k && *k; k++)
                        if (!atomic_dir_key_valid(*k))
                                return error_set(ret_error, -EINVAL,
                                            "key '%s' cannot name a file in a dir target: it must be a single path "
                                            "component, not starting with '..'",
                                            *k);
                return 0;
        case FILE_FORMAT_RAW:
                if (!t->key)
                        return error_set(ret_error, -EINVAL, "a raw target needs a key");
                if (keys_complete && !strv_contains(keys, t->key))
                        return error_set(ret_error, -ENOENT, "key '%s' of the raw target is not in the secret's data",
                                    t->key);
                return 0;
        case FILE_FORMAT_TEMPLATE:
                if (!t->template_text)
                        return error_set(ret_error, -EINVAL, "a template target needs template or template_file");
                return template_check(t->template_text, keys, keys_complete, ret_error);
        case FILE_FORMAT_JSON:
                return 0;
        default:
                return error_set(ret_error, -EINVAL, "unknown file format");
        }
}
