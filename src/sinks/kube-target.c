/* SPDX-License-Identifier: MIT */
/* The Kubernetes sink's settings (a secret's `kubernetes` group) and its vtable, over the
 * sink in sink-kubernetes.c. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sinks/kube-secret.h"
#include "sinks/sink-kubernetes.h"
#include "sinks/sink.h"
#include "util/cleanup.h"
#include "util/template.h"

static bool label_key_valid(const char *k) {
        const char *slash = strchr(k, '/');
        const char *name = slash ? slash + 1 : k;
        if (slash) {
                _cleanup_free_ char *prefix = strndup(k, (size_t) (slash - k));
                if (!prefix || !config_dns_subdomain_valid(prefix))
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

static bool check_namespace(ConfigParser *p, const config_setting_t *g, const config_setting_t *s, void *obj,
                            void *parent) {
        const KubeTarget *k = obj;
        const SecretConfig *sec = parent;
        if (config_dns_label_valid(k->namespace))
                return true;
        config_error(p, s, "secret '%s': \"%s\" is not a valid namespace name", sec->name, k->namespace);
        return false;
}

static bool check_name(ConfigParser *p, const config_setting_t *g, const config_setting_t *s, void *obj,
                       void *parent) {
        const KubeTarget *k = obj;
        const SecretConfig *sec = parent;
        if (config_dns_subdomain_valid(k->name))
                return true;
        config_error(p, s, "secret '%s': \"%s\" is not a valid Kubernetes Secret name", sec->name, k->name);
        return false;
}

static bool check_labels(ConfigParser *p, const config_setting_t *g, const config_setting_t *s, void *obj,
                         void *parent) {
        check_key_value_list(p, s, "label", ((KubeTarget *) obj)->labels, true);
        return true;
}

static bool check_annotations(ConfigParser *p, const config_setting_t *g, const config_setting_t *s, void *obj,
                              void *parent) {
        check_key_value_list(p, s, "annotation", ((KubeTarget *) obj)->annotations, false);
        return true;
}

static bool check_rollout_restart(ConfigParser *p, const config_setting_t *g, const config_setting_t *s, void *obj,
                                  void *parent) {
        const KubeTarget *k = obj;
        const SecretConfig *sec = parent;
        for (size_t i = 0; k->rollout_restart[i]; i++) {
                const char *r = k->rollout_restart[i];
                const char *slash = strchr(r, '/');
                bool ok = slash && config_dns_subdomain_valid(slash + 1) &&
                          (strncmp(r, "deployment/", 11) == 0 || strncmp(r, "statefulset/", 12) == 0 ||
                           strncmp(r, "daemonset/", 10) == 0);
                if (!ok)
                        config_error(p, s,
                                     "secret '%s': rollout_restart entry \"%s\" must be deployment/NAME, "
                                     "statefulset/NAME or daemonset/NAME",
                                     sec->name, r);
        }
        return true;
}

static void template_done(const ConfigSetting *s, void *obj) {
        erase_and_free(((KubeTemplate *) obj)->template_text);
}

static void dump_template(ConfigDump *d, const ConfigSetting *s, const void *obj) {
        const KubeTemplate *t = obj;
        sink_dump_template(d, t->template_file, t->template_text);
}

/* Which of template and template_file is set, and the file's text: read_templates(); the
 * keys and texts are checked with the secret's keys: kube_check_config(). */
static const ConfigSetting kube_template_settings[] = {
        { "key", CONFIG_SETTING_STRING, offsetof(KubeTemplate, key), CONFIG_SETTING_REQUIRED },
        { "template", CONFIG_SETTING_STRING, offsetof(KubeTemplate, template_text), CONFIG_SETTING_MULTILINE,
          .dump = sink_dump_nothing, .done = template_done },
        { "template_file", CONFIG_SETTING_STRING, offsetof(KubeTemplate, template_file), .dump = dump_template },
        {}
};

/* Checks get the SecretConfig as parent. */
static const ConfigSetting kube_target_settings[] = {
        { "namespace", CONFIG_SETTING_STRING, offsetof(KubeTarget, namespace), CONFIG_SETTING_REQUIRED,
          .check = check_namespace },
        /* default: the secret's name (kube_parse_config()) */
        { "name", CONFIG_SETTING_STRING, offsetof(KubeTarget, name), .check = check_name },
        { "creation_policy", CONFIG_SETTING_ENUM, offsetof(KubeTarget, creation_policy),
          .from_string = creation_policy_from_string, .to_string = creation_policy_to_string,
          .choices = "owner, merge, orphan, none" },
        { "deletion_policy", CONFIG_SETTING_ENUM, offsetof(KubeTarget, deletion_policy),
          .from_string = deletion_policy_from_string, .to_string = deletion_policy_to_string,
          .choices = "retain, delete" },
        { "type", CONFIG_SETTING_STRING, offsetof(KubeTarget, type), CONFIG_SETTING_EMPTY_UNSET,
          .def_string = "Opaque" },
        { "labels", CONFIG_SETTING_STRV, offsetof(KubeTarget, labels), .check = check_labels },
        { "annotations", CONFIG_SETTING_STRV, offsetof(KubeTarget, annotations), .check = check_annotations },
        { "rollout_restart", CONFIG_SETTING_STRV, offsetof(KubeTarget, rollout_restart),
          .check = check_rollout_restart },
        { "templates", CONFIG_SETTING_LIST, offsetof(KubeTarget, templates),
          .n_offset = offsetof(KubeTarget, n_templates), .size = sizeof(KubeTemplate),
          .line_offset = offsetof(KubeTemplate, line), .group = kube_template_settings },
        /* as ESO's target.template.mergePolicy, whose default is Replace */
        { "merge_policy", CONFIG_SETTING_ENUM, offsetof(KubeTarget, merge_policy),
          .from_string = merge_policy_from_string, .to_string = merge_policy_to_string, .choices = "replace, merge" },
        {}
};

static void read_templates(SecretConfig *sec, ConfigParser *p, const config_setting_t *g) {
        const KubeTarget *k = sec->kubernetes;
        const config_setting_t *l = config_member(g, "templates");

        for (size_t i = 0; i < k->n_templates; i++) {
                KubeTemplate *t = &k->templates[i];
                const config_setting_t *e = config_setting_get_elem(l, (unsigned) i);
                const config_setting_t *f = config_member(e, "template_file");
                if (!!t->template_text == !!t->template_file)
                        config_error(p, e, "secret '%s': a Kubernetes template needs exactly one of 'template' or "
                                     "'template_file'", sec->name);
                else if (t->template_file && !config_path_valid(t->template_file))
                        config_error(p, f, "secret '%s': 'template_file' must be an absolute path", sec->name);
                else if (t->template_file)
                        (void) sink_read_template_file(p, f, t->template_file, &t->template_text);
        }
}

static size_t kube_parse_config(SecretConfig *sec, ConfigParser *p, const config_setting_t *g) {
        if (!config_expect_type(p, g, CONFIG_TYPE_GROUP, "kubernetes"))
                return 0;
        KubeTarget *k = calloc(1, sizeof(KubeTarget));
        if (!k)
                return 0;
        sec->kubernetes = k;
        config_setting_place(p, g, &k->file, &k->line);
        (void) config_settings_parse(p, g, kube_target_settings, k, sec, NULL);
        (void) config_settings_fill(kube_target_settings, k);
        read_templates(sec, p, g);
        if (!k->name)
                k->name = strdup(sec->name);
        return 1;
}

/* With the secret's keys known: each template's key and text. */
static void kube_check_config(const SecretConfig *sec, ConfigParser *p, const config_setting_t *s, char *const *keys,
                              bool keys_complete) {
        const KubeTarget *k = sec->kubernetes;
        const config_setting_t *l = config_member(s, "templates");

        for (size_t i = 0; k && i < k->n_templates; i++) {
                const KubeTemplate *t = &k->templates[i];
                const config_setting_t *e = l ? config_setting_get_elem(l, (unsigned) i) : s;
                _cleanup_free_ char *m = NULL;
                if (!t->key)
                        continue;
                if (!kube_secret_key_valid(t->key))
                        config_error(p, e, "secret '%s': template key \"%s\" cannot be a Kubernetes Secret key "
                                     "(at most 253 of [-._a-zA-Z0-9])", sec->name, t->key);
                for (size_t j = 0; j < i; j++)
                        if (streq_ptr(k->templates[j].key, t->key))
                                config_error(p, e, "secret '%s': template key \"%s\" appears twice", sec->name, t->key);
                if (t->template_text && template_check(t->template_text, keys, keys_complete, &m) < 0)
                        config_error(p, e, "secret '%s', Kubernetes Secret %s/%s, template key \"%s\": %s", sec->name,
                                     k->namespace, k->name, t->key, m ?: "invalid");
        }
}

static bool owns(const KubeTarget *k) {
        return k && k->namespace && k->name && k->creation_policy != CREATION_MERGE &&
               k->creation_policy != CREATION_NONE;
}

/* No Secret owned by two secrets; a target that writes implies the `kubernetes` block. */
static void kube_check_all(Config *c, ConfigParser *p) {
        for (size_t i = 0; i < c->n_secrets; i++) {
                const KubeTarget *kt = c->secrets[i].kubernetes;
                if (!owns(kt))
                        continue;
                /* Kubernetes targets are few (one per secret at most, usually a handful). */
                for (size_t j = 0; j < i; j++) {
                        const KubeTarget *o = c->secrets[j].kubernetes;
                        char b[PATH_MAX + 32];
                        if (owns(o) && streq(o->namespace, kt->namespace) && streq(o->name, kt->name))
                                config_error_at_line(p, kt->file, kt->line,
                                                     "secret '%s': Kubernetes Secret %s/%s is also owned by secret '%s' (%s)",
                                                     c->secrets[i].name, kt->namespace, kt->name, c->secrets[j].name,
                                                     config_other_place(kt->file, o->file, o->line, b, sizeof(b)));
                }
        }
        for (size_t i = 0; i < c->n_secrets; i++)
                if (c->secrets[i].kubernetes && c->secrets[i].kubernetes->creation_policy != CREATION_NONE)
                        c->kubernetes.present = true;
}

static void kube_dump_config(const SecretConfig *sec, ConfigDump *d) {
        if (!sec->kubernetes)
                return;
        config_dump_open(d, "kubernetes");
        config_settings_dump(d, kube_target_settings, sec->kubernetes);
        config_dump_close(d);
}

static void kube_done(SecretConfig *sec) {
        if (!sec->kubernetes)
                return;
        config_settings_done(kube_target_settings, sec->kubernetes);
        free(sec->kubernetes);
}

/* creation_policy = "none": the Secret is left to others. */
static size_t kube_n_targets(const SecretConfig *sec) {
        return sec->kubernetes && sec->kubernetes->creation_policy != CREATION_NONE ? 1 : 0;
}

static void kube_target_name(const SecretConfig *sec, size_t i, char *buf, size_t size) {
        snprintf(buf, size, "%s/%s", sec->kubernetes->namespace, sec->kubernetes->name);
}

/* ------------------------------------------------------------------ run ---- */

typedef struct KubeInstance {
        KubeSink *sink;
        SinkContext ctx;
} KubeInstance;

static void emit(KubeInstance *k, SinkEventKind kind, const char *secret, const char *target, int error,
                 const char *message) {
        if (k->ctx.on_event)
                k->ctx.on_event(&(SinkEvent) { .sink = &sink_kubernetes_vtable, .kind = kind, .secret = secret,
                                               .target = target, .error = error, .message = message },
                                k->ctx.userdata);
}

static void on_write(KubeSink *s, const char *secret, const char *target, const KubeWriteResult *r, void *userdata) {
        SinkEventKind kind = r->outcome == KUBE_WRITE_FAILED ? SINK_EVENT_FAILED
                             : r->repair                     ? SINK_EVENT_REPAIRED
                                                             : SINK_EVENT_DELETED;
        emit(userdata, kind, secret, target, r->error, r->message);
}

static void on_restart(KubeSink *s, const char *secret, const char *namespace, const char *workload, int error,
                       const char *message, void *userdata) {
        char target[512];
        snprintf(target, sizeof(target), "%s/%s", namespace, workload);
        emit(userdata, SINK_EVENT_RESTARTED, secret, target, error, message);
}

static void on_leader(KubeSink *s, bool leading, const char *message, void *userdata) {
        emit(userdata, leading ? SINK_EVENT_LEADER_ACQUIRED : SINK_EVENT_LEADER_LOST, NULL, NULL, 0, message);
}

static int kube_new(const SinkContext *ctx, const Config *c, void **ret, char **ret_error) {
        KubeInstance *k = calloc(1, sizeof(KubeInstance));
        if (!k)
                return -ENOMEM;
        k->ctx = *ctx;
        KubeSinkEvents ev = { .on_write = on_write, .on_restart = on_restart, .on_leader = on_leader, .userdata = k };
        int r = kube_sink_new(ctx->event, ctx->http, &c->kubernetes, ctx->once, &ev, &k->sink, ret_error);
        if (r < 0) {
                free(k);
                return r;
        }
        *ret = k;
        return 0;
}

static void kube_free(void *sink) {
        KubeInstance *k = sink;
        if (!k)
                return;
        kube_sink_free(k->sink);
        free(k);
}

/* One write's callback, translated. */
typedef struct KubeWrite {
        sink_write_cb cb;
        void *userdata;
} KubeWrite;

static void on_written(const KubeWriteResult *r, void *userdata) {
        static const SinkOutcome outcomes[] = {
                [KUBE_WRITE_FAILED] = SINK_FAILED, [KUBE_WRITE_WRITTEN] = SINK_WRITTEN,
                [KUBE_WRITE_UNCHANGED] = SINK_UNCHANGED, [KUBE_WRITE_SKIPPED] = SINK_SKIPPED,
        };
        KubeWrite w = *(KubeWrite *) userdata;
        free(userdata);
        w.cb(&(SinkWriteResult) { .outcome = outcomes[r->outcome], .error = r->error, .message = r->message },
             w.userdata);
}

static int kube_write(void *sink, const SecretConfig *sec, size_t i, const SecretData *d, sink_write_cb cb,
                      void *userdata, char **ret_error) {
        KubeInstance *k = sink;
        KubeWrite *w = malloc(sizeof(KubeWrite));
        if (!w)
                return -ENOMEM;
        *w = (KubeWrite) { .cb = cb, .userdata = userdata };
        int r = kube_sink_write(k->sink, sec->name, sec->kubernetes, d, on_written, w);
        if (r < 0)
                free(w);
        return r;
}

static bool same_secret(const KubeTarget *a, const KubeTarget *b) {
        return a && b && streq(a->namespace, b->namespace) && streq(a->name, b->name);
}

/* The sink holds the target: point it at the new configuration's; where it changed, let go
 * of it (the sync about to start sets it up anew), and delete the Secret of a target that is
 * gone where deletion_policy = "delete" says so. */
static void kube_reconfigure(void *sink, const SecretConfig *old, const SecretConfig *sec, bool same) {
        KubeInstance *k = sink;
        const KubeTarget *o = old->kubernetes;
        if (same)
                kube_sink_retarget(k->sink, sec->name, sec->kubernetes);
        else
                kube_sink_forget(k->sink, old->name,
                                 !(sec && same_secret(sec->kubernetes, o)) && o &&
                                         o->deletion_policy == DELETION_DELETE && o->creation_policy == CREATION_OWNER);
}

static void kube_stop(void *sink, void (*done)(void *userdata), void *userdata) {
        KubeInstance *k = sink;
        kube_sink_stop(k->sink, done, userdata);
}

const SinkVTable sink_kubernetes_vtable = {
        .name = "kubernetes",
        .setting = "kubernetes",
        .noun = "Kubernetes Secret ",
        .parse_config = kube_parse_config,
        .check_config = kube_check_config,
        .dump_config = kube_dump_config,
        .check_all = kube_check_all,
        .done = kube_done,
        .n_targets = kube_n_targets,
        .target_name = kube_target_name,
        .new = kube_new,
        .free = kube_free,
        .write = kube_write,
        .reconfigure = kube_reconfigure,
        .stop = kube_stop,
};
