/* SPDX-License-Identifier: MIT */
/* External Secrets Operator manifests -> secretsyncd.conf: the objects of all inputs
 * (yaml-tree.c), their names in the configuration, ExternalSecrets as secrets, and the
 * output. Stores are eso-stores.c's, templates eso-template.c's; eso-walk.c walks fields. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "ctl/eso-walk.h"
#include "util/duration.h"

/* ------------------------------------------------------- external secret ---- */

/* Go's time.ParseDuration, whole seconds. */
static int go_duration(const char *s, uint64_t *ret_usec) {
        static const struct {
                const char *unit;
                double usec;
        } units[] = { { "ns", 1e-3 }, { "us", 1 }, { "\xc2\xb5s", 1 }, { "\xce\xbcs", 1 }, { "ms", 1e3 },
                      { "s", 1e6 },   { "m", 6e7 }, { "h", 3.6e9 } };
        double total = 0;
        if (streq(s, "0")) {
                *ret_usec = 0;
                return 0;
        }
        if (!*s)
                return -EINVAL;
        while (*s) {
                char *end;
                if (!strchr("0123456789.", *s))
                        return -EINVAL;
                double v = strtod(s, &end);
                if (end == s)
                        return -EINVAL;
                s = end;
                size_t best = 0, best_len = 0;
                for (size_t i = 0; i < ELEMENTSOF(units); i++) {
                        size_t l = strlen(units[i].unit);
                        if (strncmp(s, units[i].unit, l) == 0 && l > best_len) {
                                best = i;
                                best_len = l;
                        }
                }
                if (best_len == 0)
                        return -EINVAL;
                total += v * units[best].usec;
                s += best_len;
        }
        if (total > (double) DURATION_MAX_USEC)
                return -ERANGE;
        double secs = round(total / 1e6);
        if (fabs(secs * 1e6 - total) > 1)
                return -EDOM;
        *ret_usec = (uint64_t) secs * USEC_PER_SEC;
        return 0;
}

/* What our property paths take of gjson's: keys, indexes, and \. for a dot in a key. */
static bool gjson_path_plain(const char *s) {
        for (const char *p = s; *p; p++)
                if (*p == '\\' && p[1])
                        p++;
                else if (strchr("*?#|@!=<>%{}[],", *p))
                        return false;
        return s[0] != '.' && s[strlen(s) - 1] != '.' && !strstr(s, "..");
}

/* remoteRef / extract: key, property, version (and the strategies, when they change nothing). */
static void put_remote_ref(Conv *c, const Object *o, const Field *r, const char *group, FILE *b) {
        const char *key = eso_member_text(c, o, r, "key", true);
        Field prop = eso_field(r, "property");
        const char *property = eso_text(c, o, &prop, false);
        const char *version = eso_member_text(c, o, r, "version", false);
        static const struct {
                const char *field, *neutral, *why;
        } strategies[] = {
                { "conversionStrategy", "Default", "only Default (no conversion) has an equivalent" },
                { "decodingStrategy", "None", "decoding has no equivalent: store the value decoded" },
                { "metadataPolicy", "None", "fetching the secret's metadata has no equivalent" },
        };
        for (size_t i = 0; i < ELEMENTSOF(strategies); i++) {
                Field f = eso_field(r, strategies[i].field);
                const char *v = eso_text(c, o, &f, false);
                if (v && !streq(v, strategies[i].neutral))
                        eso_fail(c, o, &f, "\"%s\": %s", v, strategies[i].why);
        }
        eso_leftovers(c, o, r);
        if (property && !*property)
                property = NULL;
        if (property && !gjson_path_plain(property)) {
                eso_fail(c, o, &prop, "\"%s\": only plain paths (a.b, hosts.0.name, a\\.b) have an "
                                  "equivalent, no gjson queries, wildcards or modifiers",
                     property);
                property = NULL;
        }
        fprintf(b, "%s = { key = ", group);
        config_dump_quoted(b, key ? key : "");
        if (property) {
                fputs("; property = ", b);
                config_dump_quoted(b, property);
        }
        if (version) {
                fputs("; version = ", b);
                config_dump_quoted(b, version);
        }
        fputs("; };", b);
}

static void conv_template(Conv *c, const Object *o, const Field *tmpl, FILE *b) {
        if (!eso_is_map(c, o, tmpl))
                return;
        Field ev = eso_field(tmpl, "engineVersion");
        const char *engine = eso_text(c, o, &ev, false);
        if (engine && !streq(engine, "v2"))
                eso_fail(c, o, &ev, "\"%s\": only v2 templates are converted", engine);
        const char *type = eso_member_text(c, o, tmpl, "type", false);
        if (type)
                eso_put_str(b, 3, "type", type);
        Field meta = eso_field(tmpl, "metadata");
        if (eso_is_map(c, o, &meta)) {
                static const char *const lists[] = { "labels", "annotations" };
                for (size_t l = 0; l < ELEMENTSOF(lists); l++) {
                        Field m = eso_field(&meta, lists[l]);
                        if (!eso_is_map(c, o, &m) || m.v->n == 0)
                                continue;
                        eso_put_indent(b, 3);
                        fprintf(b, "%s = [ ", lists[l]);
                        for (size_t i = 0; i < m.v->n; i++) {
                                Field kv = eso_field(&m, m.v->keys[i]);
                                const char *v = eso_text(c, o, &kv, false);
                                _cleanup_free_ char *s = NULL;
                                if (asprintf(&s, "%s=%s", m.v->keys[i], v ? v : "") < 0)
                                        return;
                                config_dump_quoted(b, s);
                                fputs(i + 1 < m.v->n ? ", " : " ", b);
                        }
                        fputs("];\n", b);
                }
                eso_leftovers(c, o, &meta);
        }
        Field data = eso_field(tmpl, "data");
        Field mp = eso_field(tmpl, "mergePolicy");
        const char *merge = eso_text(c, o, &mp, false);
        if (eso_is_map(c, o, &data) && data.v->n > 0) {
                const char *sep = "\n";
                eso_put_indent(b, 3);
                fputs("templates = (", b);
                for (size_t i = 0; i < data.v->n; i++) {
                        Field d = eso_field(&data, data.v->keys[i]);
                        const char *t = eso_text(c, o, &d, false);
                        _cleanup_free_ char *ours = NULL, *why = NULL;
                        if (!config_secret_key_valid(data.v->keys[i]))
                                eso_fail(c, o, &d, "is not a valid Secret key ([-._a-zA-Z0-9])");
                        else if (t && eso_convert_template(t, o, &ours, &why) < 0)
                                eso_fail(c, o, &d, "%s", why ? why : "out of memory");
                        if (!ours)
                                continue;
                        fputs(sep, b);
                        sep = ",\n";
                        eso_put_indent(b, 4);
                        fputs("{ key = ", b);
                        config_dump_quoted(b, data.v->keys[i]);
                        fputs("; template = ", b);
                        config_dump_quoted(b, ours);
                        fputs("; }", b);
                }
                fputs("\n", b);
                eso_put_indent(b, 3);
                fputs(");\n", b);
        }
        if (merge && streq(merge, "Merge"))
                eso_put_str(b, 3, "merge_policy", "merge");
        else if (merge && !streq(merge, "Replace"))
                eso_fail(c, o, &mp, "\"%s\": Replace or Merge", merge);
        eso_leftovers(c, o, tmpl);
}

static void conv_target(Conv *c, const Object *o, const Field *spec, FILE *b) {
        Field target = eso_field(spec, "target");
        if (target.v && !eso_is_map(c, o, &target))
                target.v = NULL;
        fputs("    kubernetes = {\n", b);
        eso_put_str(b, 3, "namespace", o->ns);
        const char *name = eso_member_text(c, o, &target, "name", false);
        if (name && !config_dns_subdomain_valid(name)) {
                Field f = eso_field(&target, "name");
                eso_fail(c, o, &f, "\"%s\" is not a valid Secret name", name);
        }
        eso_put_str(b, 3, "name", name ? name : o->name);

        Field cp = eso_field(&target, "creationPolicy");
        const char *creation = eso_text(c, o, &cp, false);
        if (!creation || streq(creation, "Owner")) {
                eso_put_comment(b, 3, "ESO's Owner: the Secret goes when the ExternalSecret goes");
                eso_put_str(b, 3, "creation_policy", "owner");
                eso_put_str(b, 3, "deletion_policy", "delete");
        } else if (streq(creation, "Orphan")) {
                eso_put_str(b, 3, "creation_policy", "orphan");
        } else if (streq(creation, "Merge")) {
                eso_put_str(b, 3, "creation_policy", "merge");
        } else if (streq(creation, "None"))
                eso_fail(c, o, &cp, "None writes no Secret: give the secret files instead (secretsyncd.conf(5))");
        else
                eso_fail(c, o, &cp, "\"%s\": Owner, Orphan or Merge", creation);

        Field dp = eso_field(&target, "deletionPolicy");
        const char *deletion = eso_text(c, o, &dp, false);
        if (deletion && !streq(deletion, "Retain"))
                eso_fail(c, o, &dp,
                     "\"%s\": secretsyncd keeps the last good data when the store no longer has it (Retain); "
                     "removing the Secret or its keys then has no equivalent",
                     deletion);

        Field tmpl = eso_field(&target, "template");
        conv_template(c, o, &tmpl, b);
        eso_leftovers(c, o, &target);
        fputs("    };\n", b);
}

static void conv_secret(Conv *c, Object *o, FILE *out) {
        FILE *b;
        char *buf = NULL;
        size_t size = 0;
        eso_block_begin(c, &b, &buf, &size);
        if (!b)
                return;
        Field spec = { .line = o->line, .path = "spec" };
        spec.v = yaml_tree_get(o->root, "spec", &spec.line);
        eso_put_origin(b, 1, o);
        eso_put_indent(b, 1);
        fputs("{\n", b);
        eso_put_str(b, 2, "name", o->conf_name);
        if (!eso_is_map(c, o, &spec)) {
                eso_fail(c, o, &spec, "is required");
                goto end;
        }

        Field ref = eso_field(&spec, "secretStoreRef");
        const char *store = NULL;
        if (eso_is_map(c, o, &ref)) {
                const char *name = eso_member_text(c, o, &ref, "name", true);
                Field kf = eso_field(&ref, "kind");
                const char *kind = eso_text(c, o, &kf, false);
                eso_leftovers(c, o, &ref);
                ObjectKind k = OBJ_SECRET_STORE;
                if (kind && streq(kind, "ClusterSecretStore"))
                        k = OBJ_CLUSTER_SECRET_STORE;
                else if (kind && !streq(kind, "SecretStore"))
                        eso_fail(c, o, &kf, "\"%s\": SecretStore or ClusterSecretStore", kind);
                Object *s = name ? eso_find_object(c, k, o->ns, name) : NULL;
                if (s && !s->conf_name)
                        eso_fail(c, o, &ref, "its store has no name secretsyncd can use (see the error above)");
                else if (s)
                        store = s->conf_name;
                else if (name)
                        eso_fail(c, o, &ref, "%s %s%s%s is not among the inputs: pass its manifest too", eso_kind_name(k),
                             k == OBJ_SECRET_STORE ? o->ns : "", k == OBJ_SECRET_STORE ? "/" : "", name);
        } else
                eso_fail(c, o, &ref, "is required");
        eso_put_str(b, 2, "store", store ? store : "");

        Field ri = eso_field(&spec, "refreshInterval");
        const char *interval = eso_text(c, o, &ri, false);
        uint64_t usec = USEC_PER_HOUR;
        if (interval) {
                int r = go_duration(interval, &usec);
                if (r == -EDOM)
                        eso_fail(c, o, &ri, "\"%s\": secretsyncd counts in whole seconds", interval);
                else if (r < 0)
                        eso_fail(c, o, &ri, "\"%s\" is not a duration of at most a year", interval);
                else if (usec == 0)
                        eso_fail(c, o, &ri, "0 (sync once, never again) has no equivalent: secretsyncd refreshes");
        }
        char dbuf[DURATION_FORMAT_MAX];
        if (usec > 0)
                eso_put_str(b, 2, "refresh_interval", duration_format(usec, dbuf, sizeof(dbuf)));
        Field rp = eso_field(&spec, "refreshPolicy");
        const char *policy = eso_text(c, o, &rp, false);
        if (policy && !streq(policy, "Periodic"))
                eso_fail(c, o, &rp, "\"%s\": only Periodic has an equivalent", policy);

        Field data = eso_field(&spec, "data");
        if (eso_is_seq(c, o, &data) && data.v->n > 0) {
                const char *sep = "\n";
                fputs("    data = (", b);
                for (size_t i = 0; i < data.v->n; i++) {
                        Field d = eso_item(&data, i);
                        if (!eso_is_map(c, o, &d))
                                continue;
                        Field sk = eso_field(&d, "secretKey");
                        const char *key = eso_text(c, o, &sk, true);
                        if (key && !config_secret_key_valid(key))
                                eso_fail(c, o, &sk, "\"%s\" is not a valid Secret key ([-._a-zA-Z0-9])", key);
                        Field rr = eso_field(&d, "remoteRef");
                        fprintf(b, "%s      { secret_key = ", sep);
                        sep = ",\n";
                        config_dump_quoted(b, key ? key : "");
                        fputs("; ", b);
                        if (eso_is_map(c, o, &rr))
                                put_remote_ref(c, o, &rr, "remote_ref", b);
                        else
                                eso_fail(c, o, &rr, "is required");
                        fputs(" }", b);
                        eso_leftovers(c, o, &d);
                }
                fputs("\n    );\n", b);
        }
        Field from = eso_field(&spec, "dataFrom");
        if (eso_is_seq(c, o, &from) && from.v->n > 0) {
                const char *sep = "\n";
                fputs("    data_from = (", b);
                for (size_t i = 0; i < from.v->n; i++) {
                        Field d = eso_item(&from, i);
                        if (!eso_is_map(c, o, &d))
                                continue;
                        Field ex = eso_field(&d, "extract");
                        eso_leftovers(c, o, &d); /* find, rewrite, sourceRef */
                        if (!eso_is_map(c, o, &ex)) {
                                if (!ex.v && d.v->n == 0)
                                        eso_fail(c, o, &d, "is empty");
                                continue;
                        }
                        fprintf(b, "%s      { ", sep);
                        sep = ",\n";
                        put_remote_ref(c, o, &ex, "extract", b);
                        fputs(" }", b);
                }
                fputs("\n    );\n", b);
        }
        if ((!data.v || data.v->kind != YAML_TREE_SEQ || data.v->n == 0) &&
            (!from.v || from.v->kind != YAML_TREE_SEQ || from.v->n == 0))
                eso_fail(c, o, &spec, "neither data nor dataFrom: nothing to fetch");
        conv_target(c, o, &spec, b);
        eso_leftovers(c, o, &spec);
end:
        eso_put_indent(b, 1);
        fputs("}", b);
        eso_block_end(c, out, b, &buf);
}

/* --------------------------------------------------------------- objects ---- */

static void add_object(Conv *c, const char *file, YamlTree *t, ObjectKind kind) {
        Object *n = reallocarray(c->objs, c->n_objs + 1, sizeof(*c->objs));
        if (!n)
                return;
        c->objs = n;
        Object *o = &c->objs[c->n_objs++];
        *o = (Object) { .kind = kind, .file = file, .root = t, .line = t->line };
        YamlTree *meta = yaml_tree_get(t, "metadata", NULL);
        o->name = yaml_tree_get_text(meta, "name");
        o->ns = kind == OBJ_CLUSTER_SECRET_STORE ? NULL : yaml_tree_get_text(meta, "namespace");
        if (!o->ns && kind != OBJ_CLUSTER_SECRET_STORE)
                o->ns = c->opt->namespace;
        Field f = { .line = t->line, .path = "metadata" };
        f.v = yaml_tree_get(t, "metadata", &f.line);
        if (!o->name) {
                Field nf = eso_field(&f, "name");
                eso_fail(c, o, &nf, "is required");
        } else if (!o->ns && kind != OBJ_CLUSTER_SECRET_STORE) {
                Field nf = eso_field(&f, "namespace");
                eso_fail(c, o, &nf, "unset: give it, or --namespace");
        }
}

static void collect(Conv *c, const char *file, YamlTree *t, unsigned depth) {
        Object tmp = { .file = file, .line = t->line };
        if (t->kind != YAML_TREE_MAP) {
                eso_fail(c, &tmp, NULL, "a document that is not a Kubernetes object");
                return;
        }
        const char *kind = yaml_tree_get_text(t, "kind");
        const char *api = yaml_tree_get_text(t, "apiVersion");
        if (!kind || !api) {
                eso_fail(c, &tmp, NULL, "a document without kind or apiVersion");
                return;
        }
        YamlTree *items = yaml_tree_get(t, "items", NULL);
        size_t kl = strlen(kind);
        if (kl >= 4 && streq(kind + kl - 4, "List") && depth == 0) {
                if (!items || items->kind != YAML_TREE_SEQ) {
                        eso_fail(c, &tmp, NULL, "a %s without items", kind);
                        return;
                }
                for (size_t i = 0; i < items->n; i++)
                        collect(c, file, items->items[i], depth + 1);
                return;
        }
        const char *slash = strchr(api, '/');
        if (slash && strncmp(api, "external-secrets.io/", strlen("external-secrets.io/")) == 0) {
                if (!streq(slash + 1, "v1") && !streq(slash + 1, "v1beta1")) {
                        eso_fail(c, &tmp, NULL, "%s %s: convert-eso reads external-secrets.io/v1 and v1beta1", api, kind);
                        return;
                }
                if (streq(kind, "SecretStore"))
                        add_object(c, file, t, OBJ_SECRET_STORE);
                else if (streq(kind, "ClusterSecretStore"))
                        add_object(c, file, t, OBJ_CLUSTER_SECRET_STORE);
                else if (streq(kind, "ExternalSecret"))
                        add_object(c, file, t, OBJ_EXTERNAL_SECRET);
                else if (streq(kind, "PushSecret") || streq(kind, "ClusterPushSecret"))
                        eso_fail(c, &tmp, NULL, "%s: pushing secrets to a store has no equivalent", kind);
                else if (streq(kind, "ClusterExternalSecret"))
                        eso_fail(c, &tmp, NULL,
                             "ClusterExternalSecret: write one ExternalSecret per namespace (secretsyncd has no "
                             "namespace selectors)");
                else
                        eso_fail(c, &tmp, NULL, "%s %s is not converted", api, kind);
                return;
        }
        if (strstr(api, "external-secrets.io/")) {
                eso_fail(c, &tmp, NULL, "%s %s: generators and other External Secrets objects have no equivalent", api,
                     kind);
                return;
        }
        if (streq(api, "v1") && streq(kind, "ServiceAccount")) {
                add_object(c, file, t, OBJ_SERVICE_ACCOUNT);
                return;
        }
        YamlTree *meta = yaml_tree_get(t, "metadata", NULL);
        const char *name = yaml_tree_get_text(meta, "name"), *ns = yaml_tree_get_text(meta, "namespace");
        char *s = NULL;
        if (asprintf(&s, "%s %s%s%s (%s:%u): not an External Secrets object", kind, ns ? ns : "", ns ? "/" : "",
                     name ? name : "?", file, t->line) < 0)
                return;
        char **n = reallocarray(c->skipped, c->n_skipped + 1, sizeof(char *));
        if (!n) {
                free(s);
                return;
        }
        c->skipped = n;
        c->skipped[c->n_skipped++] = s;
}

/* Names in the configuration: the object's name, "<namespace>-<name>" when the same name
 * is used in several namespaces, dots made dashes. */
static void assign_names(Conv *c) {
        for (size_t i = 0; i < c->n_objs; i++) {
                Object *o = &c->objs[i];
                if (o->kind == OBJ_SERVICE_ACCOUNT || !o->name)
                        continue;
                bool store = o->kind != OBJ_EXTERNAL_SECRET;
                bool clash = false;
                for (size_t j = 0; j < c->n_objs && !clash; j++) {
                        const Object *p = &c->objs[j];
                        clash = j != i && p->name && streq(p->name, o->name) && (p->kind != OBJ_EXTERNAL_SECRET) == store &&
                                p->kind != OBJ_SERVICE_ACCOUNT;
                }
                if (asprintf(&o->conf_name, "%s%s%s", clash && o->ns ? o->ns : "", clash && o->ns ? "-" : "",
                             o->name) < 0) {
                        o->conf_name = NULL;
                        continue;
                }
                for (char *p = o->conf_name; *p; p++)
                        if (*p == '.')
                                *p = '-';
                Field f = { .v = yaml_tree_get(o->root, "metadata", NULL), .line = o->line, .path = "metadata" };
                Field nf = eso_field(&f, "name");
                /* a block without a valid, unique name is not written, not even with --partial */
                if (!config_name_valid(o->conf_name) || strlen(o->conf_name) > 253) {
                        eso_fail(c, o, &nf, "\"%s\" cannot be a %s name in secretsyncd ([a-z0-9-])", o->conf_name,
                             store ? "store" : "secret");
                        o->conf_name = mfree(o->conf_name);
                        continue;
                }
                /* a store's name is a libconfig setting's name, which starts with a letter */
                if (store && !(o->conf_name[0] >= 'a' && o->conf_name[0] <= 'z')) {
                        eso_fail(c, o, &nf, "\"%s\" cannot be a store name in secretsyncd: it must start with a letter",
                                 o->conf_name);
                        o->conf_name = mfree(o->conf_name);
                        continue;
                }
                for (size_t j = 0; j < i; j++) {
                        const Object *p = &c->objs[j];
                        if (p->conf_name && streq(p->conf_name, o->conf_name) &&
                            (p->kind != OBJ_EXTERNAL_SECRET) == store) {
                                eso_fail(c, o, &nf, "\"%s\" is also the name of %s %s (%s:%u)", o->conf_name,
                                     eso_kind_name(p->kind), p->name, p->file, p->line);
                                o->conf_name = mfree(o->conf_name);
                                break;
                        }
                }
        }
}

bool eso_data_may_have(const Object *o, const char *key) {
        /* peeked, not marked used: the conversion reads these fields itself */
        YamlTree *spec = yaml_tree_peek(o->root, "spec"), *from = yaml_tree_peek(spec, "dataFrom"),
                 *data = yaml_tree_peek(spec, "data");
        if (from && from->kind == YAML_TREE_SEQ && from->n > 0)
                return true;
        for (size_t i = 0; data && data->kind == YAML_TREE_SEQ && i < data->n; i++) {
                YamlTree *k = yaml_tree_peek(data->items[i], "secretKey");
                if (k && k->kind == YAML_TREE_SCALAR && streq(k->text, key))
                        return true;
        }
        return false;
}

static size_t input_index(const Conv *c, const char *file) {
        for (size_t i = 0; i < c->n_in; i++)
                if (c->in[i].name == file)
                        return i;
        return c->n_in;
}

static const Conv *sort_conv;
static int error_cmp(const void *a, const void *b) {
        const Error *x = a, *y = b;
        size_t fx = input_index(sort_conv, x->file), fy = input_index(sort_conv, y->file);
        if (fx != fy)
                return fx < fy ? -1 : 1;
        if (x->line != y->line)
                return x->line < y->line ? -1 : 1;
        return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void print_errors(Conv *c, FILE *err) {
        sort_conv = c;
        if (c->n_errs > 0)
                qsort(c->errs, c->n_errs, sizeof(*c->errs), error_cmp);
        for (size_t i = 0; i < c->n_errs; i++) {
                fprintf(err, "%s\n", c->errs[i].text);
                free(c->errs[i].text);
        }
        free(c->errs);
}

int convert_eso(const EsoInput *in, size_t n, const EsoOptions *opt, FILE *out, FILE *err) {
        Conv c = { .opt = opt, .in = in, .n_in = n };
        _cleanup_free_ YamlTree ***docs = calloc(n ? n : 1, sizeof(*docs));
        _cleanup_free_ size_t *n_docs = calloc(n ? n : 1, sizeof(*n_docs));
        int ret = 2;

        _cleanup_free_ char *header_notes = NULL;
        size_t header_notes_size = 0;
        if (!docs || !n_docs)
                return 2;
        c.header_notes = open_memstream(&header_notes, &header_notes_size);
        if (!c.header_notes)
                return 2;

        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *e = NULL;
                docs[i] = NULL;
                n_docs[i] = 0;
                int r = yaml_tree_load(in[i].data, in[i].size, &docs[i], &n_docs[i], &e);
                if (r < 0) {
                        Object o = { .file = in[i].name };
                        unsigned line = 0;
                        char *msg = NULL;
                        if (e)
                                line = (unsigned) strtoul(e, &msg, 10);
                        o.line = line;
                        eso_fail(&c, &o, NULL, "not valid YAML: %s", msg && *msg == ':' ? msg + 2 : "out of memory");
                        continue;
                }
                for (size_t j = 0; j < n_docs[i]; j++)
                        collect(&c, in[i].name, docs[i][j], 0);
        }
        assign_names(&c);

        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        FILE *o = open_memstream(&buf, &size);
        if (!o)
                goto finish;
        fputs("# secretsyncd.conf, converted by `secretsyncctl convert-eso` from External Secrets Operator\n"
              "# manifests:\n",
              o);
        for (size_t i = 0; i < n; i++)
                eso_put_comment(o, 0, "  %s", in[i].name);
        for (size_t i = 0; i < c.n_skipped; i++)
                eso_put_comment(o, 0, "skipped %s", c.skipped[i]);
        fclose(c.header_notes);
        c.header_notes = NULL;
        if (header_notes)
                fputs(header_notes, o);
        fputs("# Check it with `secretsyncd --check-config -c FILE`; see secretsyncd.conf(5).\n\n", o);

        bool any_secret = false, any_store = false;
        for (size_t i = 0; i < c.n_objs; i++) {
                any_secret |= c.objs[i].kind == OBJ_EXTERNAL_SECRET;
                any_store |= c.objs[i].kind == OBJ_SECRET_STORE || c.objs[i].kind == OBJ_CLUSTER_SECRET_STORE;
        }
        if (any_secret)
                fputs("kubernetes = {\n"
                      "  # unset: the in-cluster service account when KUBERNETES_SERVICE_HOST is set, else\n"
                      "  # $KUBECONFIG; on a k3s node, for one:\n"
                      "  # kubeconfig = \"/etc/rancher/k3s/k3s.yaml\";\n"
                      "  # one node at a time writes the Secrets, as ESO's one controller did\n"
                      "  leader_election = { enabled = true; };\n"
                      "};\n\n",
                      o);
        if (any_store) {
                fputs("stores = {\n", o);
                for (size_t i = 0; i < c.n_objs; i++)
                        if ((c.objs[i].kind == OBJ_SECRET_STORE || c.objs[i].kind == OBJ_CLUSTER_SECRET_STORE) &&
                            c.objs[i].conf_name)
                                eso_conv_store(&c, &c.objs[i], o);
                fputs("};\n\n", o);
        }
        if (any_secret) {
                fputs("secrets = (\n", o);
                bool first = true;
                for (size_t i = 0; i < c.n_objs; i++)
                        if (c.objs[i].kind == OBJ_EXTERNAL_SECRET && c.objs[i].conf_name && c.objs[i].ns) {
                                if (!first)
                                        fputs(",\n", o);
                                first = false;
                                conv_secret(&c, &c.objs[i], o);
                        }
                fputs("\n);\n", o);
        }
        if (!any_store && !any_secret && c.errors == 0) {
                fprintf(err, "secretsyncctl: convert-eso: no SecretStore, ClusterSecretStore or ExternalSecret in "
                             "the input\n");
                c.errors++;
        }
        print_errors(&c, err);
        if (fclose(o) != 0)
                goto finish;
        if (c.errors == 0 || opt->partial) {
                fputs(buf, out);
                ret = 0;
        } else
                fprintf(err, "secretsyncctl: convert-eso: %u field%s could not be converted (--partial converts "
                             "the rest)\n",
                        c.errors, c.errors == 1 ? "" : "s");
finish:
        if (c.header_notes)
                fclose(c.header_notes);
        for (size_t i = 0; i < c.n_objs; i++)
                free(c.objs[i].conf_name);
        free(c.objs);
        for (size_t i = 0; i < c.n_skipped; i++)
                free(c.skipped[i]);
        free(c.skipped);
        for (size_t i = 0; i < n; i++)
                yaml_tree_free_docs(docs[i], n_docs[i]);
        return ret;
}
