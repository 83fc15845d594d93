/* SPDX-License-Identifier: MIT */
#include "sinks/sink.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/cleanup.h"
#include "util/secbuf.h"

/* The registry: a new sink is one file and one line here. In the order of a secret's
 * settings, which is the order they are read, dumped and written in. */
const SinkVTable *const sink_vtables[] = {
        &sink_kubernetes_vtable,
        &sink_file_vtable,
        NULL,
};

int sink_read_template_file(ConfigParser *p, const config_setting_t *s, const char *path, char **ret) {
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

void sink_dump_template(ConfigDump *d, const char *template_file, const char *template_text) {
        if (template_file) {
                config_dump_string(d, "template_file", template_file);
                if (d->fingerprint)
                        config_dump_string(d, "template", template_text);
        } else if (template_text)
                config_dump_string(d, "template", template_text);
}

void sink_dump_nothing(ConfigDump *d, const ConfigSetting *s, const void *obj) {
}
