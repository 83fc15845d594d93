/* SPDX-License-Identifier: MIT */
/* convert-eso: walking a manifest field by field, and writing the configuration. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "ctl/eso-walk.h"

Field eso_field(const Field *parent, const char *key) {
        Field f = { .line = parent->line };
        f.v = yaml_tree_get(parent->v, key, &f.line);
        int k = snprintf(f.path, sizeof(f.path), "%s%s%s", parent->path, parent->path[0] ? "." : "", key);
        if (k < 0 || (size_t) k >= sizeof(f.path))
                strcpy(f.path + sizeof(f.path) - 4, "...");
        return f;
}

Field eso_item(const Field *parent, size_t i) {
        Field f = { .v = parent->v->items[i], .line = parent->v->items[i]->line };
        int k = snprintf(f.path, sizeof(f.path), "%s[%zu]", parent->path, i);
        if (k < 0 || (size_t) k >= sizeof(f.path))
                strcpy(f.path + sizeof(f.path) - 4, "...");
        return f;
}

/* Input text in a comment: one line, no control characters. */
static void eso_put_comment_text(FILE *f, const char *s) {
        for (const unsigned char *c = (const unsigned char *) s; *c; c++)
                fputc(*c < 0x20 || *c == 0x7f ? '?' : *c, f);
}

_printf_(4, 5) void eso_fail(Conv *c, const Object *o, const Field *f, const char *fmt, ...) {
        _cleanup_free_ char *m = NULL;
        va_list ap;
        va_start(ap, fmt);
        int r = vasprintf(&m, fmt, ap);
        va_end(ap);
        if (r < 0)
                m = NULL;
        const char *path = f && f->path[0] ? f->path : NULL;
        unsigned line = f ? f->line : o->line;
        c->errors++;
        Error *e = reallocarray(c->errs, c->n_errs + 1, sizeof(*c->errs));
        if (e) {
                c->errs = e;
                e = &c->errs[c->n_errs];
                *e = (Error) { .file = o->file, .line = line, .seq = c->n_errs };
                if (asprintf(&e->text, "%s:%u: %s%s%s%s", o->file, line, path ? path : "", path ? ": " : "",
                             m ? m : "out of memory", c->opt->partial ? " (not converted)" : "") >= 0)
                        c->n_errs++;
        }
        FILE *notes = c->notes ? c->notes : c->header_notes;
        if (c->opt->partial && notes) {
                fprintf(notes, "%s# not converted: %s:%u: %s%s", c->notes ? "    " : "", o->file, line, path ? path : "",
                        path ? ": " : "");
                eso_put_comment_text(notes, m ? m : "out of memory");
                fputc('\n', notes);
        }
}

static const struct {
        const char *key, *why;
} unsupported[] = {
        { "find", "finding secrets by name, path or tags has no equivalent: name each one under data or "
                  "dataFrom[].extract" },
        { "rewrite", "rewriting keys has no equivalent" },
        { "sourceRef", "a store or generator per entry has no equivalent: a secret reads one store" },
        { "generatorRef", "generators have no equivalent" },
        { "templateFrom", "templates from ConfigMaps or Secrets have no equivalent: write them in template.data" },
        { "immutable", "immutable Secrets have no equivalent" },
        { "conditions", "namespace conditions have no equivalent: the configuration says which secret reads which "
                        "store" },
        { "retrySettings", "retries per store have no equivalent: daemon.min_backoff and max_backoff apply to all" },
        { "controller", "controller classes have no equivalent" },
        { "refreshInterval", "store health checks have no equivalent" },
        { "additionalRoles", "role chains have no equivalent: auth.assume_role takes one role" },
        { "sessionTags", "session tags have no equivalent" },
        { "transitiveTagKeys", "session tags have no equivalent" },
        { "prefix", "key prefixes have no equivalent: write the whole key in each remoteRef" },
        { "secretsManager", "these settings are for PushSecret, which has no equivalent" },
        { "tls", "client certificates for the TLS connection have no equivalent: use auth.cert to log in" },
        { "readYourWrites", "has no equivalent (secretsyncd only reads)" },
        { "forwardInconsistent", "has no equivalent (secretsyncd only reads)" },
        { "finalizers", "finalizers on the Secret have no equivalent" },
        { "engineVersion", "only template engine v2 (the default) is converted" },
        { "ldap", "this Vault login method has no equivalent: tokenSecretRef, appRole, kubernetes, jwt or cert" },
        { "userPass", "this Vault login method has no equivalent: tokenSecretRef, appRole, kubernetes, jwt or cert" },
        { "iam", "this Vault login method has no equivalent: tokenSecretRef, appRole, kubernetes, jwt or cert" },
        { "workloadIdentity", "GKE workload identity needs a pod: give auth.secretRef (a key), or run on a "
                              "Google Cloud node (the metadata server)" },
        { "workloadIdentityFederation", "has no equivalent: write an external-account credentials file (auth "
                                        "method external-account)" },
        { "expirationSeconds", "the token's lifetime is the API server's choice" },
};

/* Every member of a map that no rule read. */
void eso_leftovers(Conv *c, const Object *o, const Field *f) {
        if (!f->v || f->v->kind != YAML_TREE_MAP)
                return;
        for (size_t i = 0; i < f->v->n; i++) {
                if (f->v->used[i])
                        continue;
                Field sub = eso_field(f, f->v->keys[i]);
                const char *why = "not supported by secretsyncd";
                for (size_t j = 0; j < ELEMENTSOF(unsupported); j++)
                        if (streq(unsupported[j].key, f->v->keys[i]))
                                why = unsupported[j].why;
                eso_fail(c, o, &sub, "%s", why);
        }
}

bool eso_is_map(Conv *c, const Object *o, const Field *f) {
        if (!f->v || f->v->kind == YAML_TREE_NULL)
                return false;
        if (f->v->kind == YAML_TREE_MAP)
                return true;
        eso_fail(c, o, f, "must be a mapping");
        return false;
}

bool eso_is_seq(Conv *c, const Object *o, const Field *f) {
        if (!f->v || f->v->kind == YAML_TREE_NULL)
                return false;
        if (f->v->kind == YAML_TREE_SEQ)
                return true;
        eso_fail(c, o, f, "must be a list");
        return false;
}

/* A scalar field's text; NULL when absent or null (an error when required). */
const char *eso_text(Conv *c, const Object *o, const Field *f, bool required) {
        if (f->v && f->v->kind == YAML_TREE_SCALAR)
                return f->v->text;
        if (f->v && f->v->kind != YAML_TREE_NULL)
                eso_fail(c, o, f, "must be a string");
        else if (required)
                eso_fail(c, o, f, "is required");
        return NULL;
}

const char *eso_member_text(Conv *c, const Object *o, const Field *parent, const char *key, bool required) {
        Field f = eso_field(parent, key);
        return eso_text(c, o, &f, required);
}

/* ------------------------------------------------------------ writing ---- */

void eso_put_indent(FILE *b, unsigned indent) {
        for (unsigned i = 0; i < indent; i++)
                fputs("  ", b);
}

void eso_put_str(FILE *b, unsigned indent, const char *key, const char *value) {
        eso_put_indent(b, indent);
        fprintf(b, "%s = ", key);
        config_dump_quoted(b, value);
        fputs(";\n", b);
}

_printf_(3, 4) void eso_put_comment(FILE *b, unsigned indent, const char *fmt, ...) {
        _cleanup_free_ char *m = NULL;
        va_list ap;
        va_start(ap, fmt);
        int r = vasprintf(&m, fmt, ap);
        va_end(ap);
        if (r < 0)
                return;
        eso_put_indent(b, indent);
        fputs("# ", b);
        eso_put_comment_text(b, m);
        fputc('\n', b);
}

void eso_put_strv(FILE *b, const char *const *v, size_t n) {
        fputs("[ ", b);
        for (size_t i = 0; i < n; i++) {
                config_dump_quoted(b, v[i]);
                fputs(i + 1 < n ? ", " : " ", b);
        }
        fputs("]", b);
}

/* ---------------------------------------------------- shared conversions ---- */

static bool eso_path_component_valid(const char *s) {
        if (!*s || streq(s, ".") || streq(s, ".."))
                return false;
        for (const char *p = s; *p; p++)
                if (!strchr("-._", *p) && !(*p >= 'a' && *p <= 'z') && !(*p >= 'A' && *p <= 'Z') &&
                    !(*p >= '0' && *p <= '9'))
                        return false;
        return true;
}

/* A SecretKeySelector {name, key, namespace} becomes a credential file, with a comment that
 * says which Secret's key to put there. */
static void put_ref(Conv *c, const Object *o, const Field *ref, FILE *b, unsigned indent, const char *setting,
                    const char *what, bool configmap) {
        const char *kind = configmap ? "ConfigMap" : "Secret";
        if (!eso_is_map(c, o, ref)) {
                if (!ref->v || ref->v->kind == YAML_TREE_NULL)
                        eso_fail(c, o, ref, "is required");
                return;
        }
        const char *name = eso_member_text(c, o, ref, "name", true);
        const char *key = eso_member_text(c, o, ref, "key", true);
        const char *ns = eso_member_text(c, o, ref, "namespace", false);
        if (!ns)
                ns = o->ns;
        eso_leftovers(c, o, ref);
        if (!name || !key)
                return;
        if (!ns) {
                eso_fail(c, o, ref, "a ClusterSecretStore's secret reference needs a namespace");
                return;
        }
        if (!config_dns_subdomain_valid(name) || !config_dns_label_valid(ns) || !eso_path_component_valid(key)) {
                eso_fail(c, o, ref, "%s %s/%s key \"%s\" is not a valid Kubernetes reference", kind, ns, name, key);
                return;
        }
        _cleanup_free_ char *jsonpath_key = malloc(2 * strlen(key) + 1);
        if (!jsonpath_key)
                return;
        char *j = jsonpath_key;
        for (const char *k = key; *k; k++) {
                if (*k == '.')
                        *j++ = '\\';
                *j++ = *k;
        }
        *j = 0;
        eso_put_comment(b, indent, "%s: key \"%s\" of %s %s/%s, e.g.", what, key, kind, ns, name);
        eso_put_comment(b, indent, "  kubectl get %s -n %s %s -o jsonpath='{.data.%s}'%s > %s/%s/%s/%s",
                        configmap ? "configmap" : "secret", ns, name, jsonpath_key, configmap ? "" : " | base64 -d",
                        CREDENTIAL_DIR, ns, name, key);
        eso_put_indent(b, indent);
        fprintf(b, "%s = \"%s/%s/%s/%s\";\n", setting, CREDENTIAL_DIR, ns, name, key);
}

void eso_put_secret_ref(Conv *c, const Object *o, const Field *ref, FILE *b, unsigned indent, const char *setting,
                        const char *what) {
        put_ref(c, o, ref, b, indent, setting, what, false);
}

void eso_put_configmap_ref(Conv *c, const Object *o, const Field *ref, FILE *b, unsigned indent, const char *setting,
                           const char *what) {
        put_ref(c, o, ref, b, indent, setting, what, true);
}

/* A ServiceAccountSelector {name, namespace, audiences} as `service_account = {...};`. */
void eso_put_service_account(Conv *c, const Object *o, const Field *ref, FILE *b, unsigned indent,
                                const char **ret_ns, const char **ret_name) {
        const char *name = eso_member_text(c, o, ref, "name", true);
        const char *ns = eso_member_text(c, o, ref, "namespace", false);
        Field aud = eso_field(ref, "audiences");
        const char *audiences[16];
        size_t n_aud = 0;
        if (eso_is_seq(c, o, &aud))
                for (size_t i = 0; i < aud.v->n; i++) {
                        Field a = eso_item(&aud, i);
                        const char *t = eso_text(c, o, &a, true);
                        if (t && n_aud < ELEMENTSOF(audiences))
                                audiences[n_aud++] = t;
                        else if (t)
                                eso_fail(c, o, &a, "more than %zu audiences", ELEMENTSOF(audiences));
                }
        eso_leftovers(c, o, ref);
        if (!ns)
                ns = o->ns;
        if (!name)
                return;
        if (!ns) {
                eso_fail(c, o, ref, "a ClusterSecretStore's serviceAccountRef needs a namespace");
                return;
        }
        eso_put_indent(b, indent);
        fputs("service_account = { namespace = ", b);
        config_dump_quoted(b, ns);
        fputs("; name = ", b);
        config_dump_quoted(b, name);
        fputs(";", b);
        if (n_aud > 0) {
                fputs(" audiences = ", b);
                eso_put_strv(b, audiences, n_aud);
                fputs(";", b);
        }
        fputs(" };\n", b);
        if (ret_ns)
                *ret_ns = ns;
        if (ret_name)
                *ret_name = name;
}

Object *eso_find_object(Conv *c, ObjectKind kind, const char *ns, const char *name) {
        for (size_t i = 0; i < c->n_objs; i++) {
                Object *o = &c->objs[i];
                if (o->kind == kind && o->name && streq(o->name, name) &&
                    (kind == OBJ_CLUSTER_SECRET_STORE || (o->ns && ns && streq(o->ns, ns))))
                        return o;
        }
        return NULL;
}

/* --------------------------------------------------------------- blocks ---- */

/* A block of output with the notes (--partial) gathered while it was written. */
void eso_block_begin(Conv *c, FILE **ret, char **buf, size_t *size) {
        *ret = open_memstream(buf, size);
        c->notes = open_memstream(&c->notes_buf, &c->notes_size);
}

void eso_block_end(Conv *c, FILE *out, FILE *blk, char **buf) {
        if (c->notes) {
                fclose(c->notes);
                c->notes = NULL;
                if (c->notes_buf)
                        fputs(c->notes_buf, out);
                free(c->notes_buf);
                c->notes_buf = NULL;
        }
        if (blk) {
                fclose(blk);
                if (*buf)
                        fputs(*buf, out);
        }
        free(*buf);
        *buf = NULL;
}

const char *eso_kind_name(ObjectKind k) {
        switch (k) {
        case OBJ_SECRET_STORE:
                return "SecretStore";
        case OBJ_CLUSTER_SECRET_STORE:
                return "ClusterSecretStore";
        case OBJ_EXTERNAL_SECRET:
                return "ExternalSecret";
        default:
                return "ServiceAccount";
        }
}

void eso_put_origin(FILE *b, unsigned indent, const Object *o) {
        if (o->ns)
                eso_put_comment(b, indent, "%s %s/%s (%s:%u)", eso_kind_name(o->kind), o->ns, o->name, o->file, o->line);
        else
                eso_put_comment(b, indent, "%s %s (%s:%u)", eso_kind_name(o->kind), o->name, o->file, o->line);
}
