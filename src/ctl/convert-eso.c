/* SPDX-License-Identifier: MIT */
/* External Secrets Operator manifests -> secretsyncd.conf. The manifests are read into a
 * tree (yaml-tree.c); each object is walked field by field, and every field of a spec that
 * no rule read is reported at the end (leftovers()), so nothing is dropped unseen. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "ctl/convert-eso.h"
#include "ctl/yaml-tree.h"
#include "util/base64.h"
#include "util/cleanup.h"
#include "util/duration.h"
#include "util/secbuf.h"

#define CREDENTIAL_DIR "/etc/secretsyncd/eso"

static inline void *mfree(void *p) {
        free(p);
        return NULL;
}

typedef enum ObjectKind { OBJ_SECRET_STORE, OBJ_CLUSTER_SECRET_STORE, OBJ_EXTERNAL_SECRET, OBJ_SERVICE_ACCOUNT } ObjectKind;

typedef struct Object {
        ObjectKind kind;
        const char *file;
        YamlTree *root;
        unsigned line;
        const char *name, *ns; /* ns: metadata.namespace, else --namespace; NULL for cluster objects */
        char *conf_name;       /* the store's or secret's name in the configuration */
        char *keys[256];       /* ExternalSecret: its data's secret keys, for the templates */
        size_t n_keys;
        bool keys_complete; /* no dataFrom: the keys above are all of them */
} Object;

typedef struct Error {
        const char *file;
        unsigned line;
        size_t seq;
        char *text;
} Error;

typedef struct Conv {
        const EsoOptions *opt;
        const EsoInput *in;
        size_t n_in;
        Error *errs; /* printed at the end, by file and line */
        size_t n_errs;
        unsigned errors;
        FILE *notes; /* --partial: the unconverted fields of the block being written */
        FILE *header_notes; /* ... or of the objects themselves, said at the top */
        char *notes_buf;
        size_t notes_size;
        Object *objs;
        size_t n_objs;
        char **skipped; /* objects that are not External Secrets ones, said in the header */
        size_t n_skipped;
} Conv;

/* A field of an object: its value (NULL when absent), the line of its key, its path. */
typedef struct Field {
        YamlTree *v;
        unsigned line;
        char path[256];
} Field;

static Field field(const Field *parent, const char *key) {
        Field f = { .line = parent->line };
        f.v = yaml_tree_get(parent->v, key, &f.line);
        int k = snprintf(f.path, sizeof(f.path), "%s%s%s", parent->path, parent->path[0] ? "." : "", key);
        if (k < 0 || (size_t) k >= sizeof(f.path))
                strcpy(f.path + sizeof(f.path) - 4, "...");
        return f;
}

static Field item(const Field *parent, size_t i) {
        Field f = { .v = parent->v->items[i], .line = parent->v->items[i]->line };
        int k = snprintf(f.path, sizeof(f.path), "%s[%zu]", parent->path, i);
        if (k < 0 || (size_t) k >= sizeof(f.path))
                strcpy(f.path + sizeof(f.path) - 4, "...");
        return f;
}

/* Input text in a comment: one line, no control characters. */
static void put_comment_text(FILE *f, const char *s) {
        for (const unsigned char *c = (const unsigned char *) s; *c; c++)
                fputc(*c < 0x20 || *c == 0x7f ? '?' : *c, f);
}

_printf_(4, 5) static void fail(Conv *c, const Object *o, const Field *f, const char *fmt, ...) {
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
                put_comment_text(notes, m ? m : "out of memory");
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
static void leftovers(Conv *c, const Object *o, const Field *f) {
        if (!f->v || f->v->kind != YAML_TREE_MAP)
                return;
        for (size_t i = 0; i < f->v->n; i++) {
                if (f->v->used[i])
                        continue;
                Field sub = field(f, f->v->keys[i]);
                const char *why = "not supported by secretsyncd";
                for (size_t j = 0; j < ELEMENTSOF(unsupported); j++)
                        if (streq(unsupported[j].key, f->v->keys[i]))
                                why = unsupported[j].why;
                fail(c, o, &sub, "%s", why);
        }
}

static bool is_map(Conv *c, const Object *o, const Field *f) {
        if (!f->v || f->v->kind == YAML_TREE_NULL)
                return false;
        if (f->v->kind == YAML_TREE_MAP)
                return true;
        fail(c, o, f, "must be a mapping");
        return false;
}

static bool is_seq(Conv *c, const Object *o, const Field *f) {
        if (!f->v || f->v->kind == YAML_TREE_NULL)
                return false;
        if (f->v->kind == YAML_TREE_SEQ)
                return true;
        fail(c, o, f, "must be a list");
        return false;
}

/* A scalar field's text; NULL when absent or null (an error when required). */
static const char *text(Conv *c, const Object *o, const Field *f, bool required) {
        if (f->v && f->v->kind == YAML_TREE_SCALAR)
                return f->v->text;
        if (f->v && f->v->kind != YAML_TREE_NULL)
                fail(c, o, f, "must be a string");
        else if (required)
                fail(c, o, f, "is required");
        return NULL;
}

static const char *member_text(Conv *c, const Object *o, const Field *parent, const char *key, bool required) {
        Field f = field(parent, key);
        return text(c, o, &f, required);
}

/* ------------------------------------------------------------ writing ---- */

static void put_indent(FILE *b, unsigned indent) {
        for (unsigned i = 0; i < indent; i++)
                fputs("  ", b);
}

static void put_str(FILE *b, unsigned indent, const char *key, const char *value) {
        put_indent(b, indent);
        fprintf(b, "%s = ", key);
        config_dump_quoted(b, value);
        fputs(";\n", b);
}

_printf_(3, 4) static void put_comment(FILE *b, unsigned indent, const char *fmt, ...) {
        _cleanup_free_ char *m = NULL;
        va_list ap;
        va_start(ap, fmt);
        int r = vasprintf(&m, fmt, ap);
        va_end(ap);
        if (r < 0)
                return;
        put_indent(b, indent);
        fputs("# ", b);
        put_comment_text(b, m);
        fputc('\n', b);
}

static void put_strv(FILE *b, const char *const *v, size_t n) {
        fputs("[ ", b);
        for (size_t i = 0; i < n; i++) {
                config_dump_quoted(b, v[i]);
                fputs(i + 1 < n ? ", " : " ", b);
        }
        fputs("]", b);
}

/* ---------------------------------------------------- shared conversions ---- */

static bool path_component_valid(const char *s) {
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
static void put_secret_ref(Conv *c, const Object *o, const Field *ref, FILE *b, unsigned indent,
                           const char *setting, const char *what) {
        if (!is_map(c, o, ref)) {
                if (!ref->v || ref->v->kind == YAML_TREE_NULL)
                        fail(c, o, ref, "is required");
                return;
        }
        const char *name = member_text(c, o, ref, "name", true);
        const char *key = member_text(c, o, ref, "key", true);
        const char *ns = member_text(c, o, ref, "namespace", false);
        if (!ns)
                ns = o->ns;
        leftovers(c, o, ref);
        if (!name || !key)
                return;
        if (!ns) {
                fail(c, o, ref, "a ClusterSecretStore's secret reference needs a namespace");
                return;
        }
        if (!config_dns_subdomain_valid(name) || !config_dns_label_valid(ns) || !path_component_valid(key)) {
                fail(c, o, ref, "Secret %s/%s key \"%s\" is not a valid Kubernetes reference", ns, name, key);
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
        put_comment(b, indent, "%s: key \"%s\" of Secret %s/%s, e.g.", what, key, ns, name);
        put_comment(b, indent, "  kubectl get secret -n %s %s -o jsonpath='{.data.%s}' | base64 -d > %s/%s/%s/%s", ns,
                    name, jsonpath_key, CREDENTIAL_DIR, ns, name, key);
        put_indent(b, indent);
        fprintf(b, "%s = \"%s/%s/%s/%s\";\n", setting, CREDENTIAL_DIR, ns, name, key);
}

/* A ServiceAccountSelector {name, namespace, audiences} as `service_account = {...};`. */
static void put_service_account(Conv *c, const Object *o, const Field *ref, FILE *b, unsigned indent,
                                const char **ret_ns, const char **ret_name) {
        const char *name = member_text(c, o, ref, "name", true);
        const char *ns = member_text(c, o, ref, "namespace", false);
        Field aud = field(ref, "audiences");
        const char *audiences[16];
        size_t n_aud = 0;
        if (is_seq(c, o, &aud))
                for (size_t i = 0; i < aud.v->n; i++) {
                        Field a = item(&aud, i);
                        const char *t = text(c, o, &a, true);
                        if (t && n_aud < ELEMENTSOF(audiences))
                                audiences[n_aud++] = t;
                        else if (t)
                                fail(c, o, &a, "more than %zu audiences", ELEMENTSOF(audiences));
                }
        leftovers(c, o, ref);
        if (!ns)
                ns = o->ns;
        if (!name)
                return;
        if (!ns) {
                fail(c, o, ref, "a ClusterSecretStore's serviceAccountRef needs a namespace");
                return;
        }
        put_indent(b, indent);
        fputs("service_account = { namespace = ", b);
        config_dump_quoted(b, ns);
        fputs("; name = ", b);
        config_dump_quoted(b, name);
        fputs(";", b);
        if (n_aud > 0) {
                fputs(" audiences = ", b);
                put_strv(b, audiences, n_aud);
                fputs(";", b);
        }
        fputs(" };\n", b);
        if (ret_ns)
                *ret_ns = ns;
        if (ret_name)
                *ret_name = name;
}

static Object *find_object(Conv *c, ObjectKind kind, const char *ns, const char *name) {
        for (size_t i = 0; i < c->n_objs; i++) {
                Object *o = &c->objs[i];
                if (o->kind == kind && o->name && streq(o->name, name) &&
                    (kind == OBJ_CLUSTER_SECRET_STORE || (o->ns && ns && streq(o->ns, ns))))
                        return o;
        }
        return NULL;
}

/* ------------------------------------------------------------ providers ---- */

static void conv_aws(Conv *c, const Object *o, const Field *p, FILE *b) {
        const char *service = member_text(c, o, p, "service", true);
        if (service && !streq(service, "SecretsManager")) {
                Field f = field(p, "service");
                fail(c, o, &f, "\"%s\": only SecretsManager has a store type (aws)", service);
        }
        put_str(b, 2, "type", "aws");
        const char *region = member_text(c, o, p, "region", true);
        if (region)
                put_str(b, 2, "region", region);
        const char *role = member_text(c, o, p, "role", false);
        const char *external_id = member_text(c, o, p, "externalID", false);

        fputs("    auth = {\n", b);
        Field auth = field(p, "auth");
        Field jwt = field(&auth, "jwt"), secret_ref = field(&auth, "secretRef");
        if (jwt.v && secret_ref.v)
                fail(c, o, &auth, "jwt and secretRef: give one");
        if (is_map(c, o, &jwt)) {
                Field sa = field(&jwt, "serviceAccountRef");
                put_str(b, 3, "method", "web-identity");
                const char *sa_ns = NULL, *sa_name = NULL;
                _cleanup_free_ char *sab_text = NULL; /* freed after sab is closed */
                _cleanup_fclose_ FILE *sab = NULL;
                size_t sab_size = 0;
                sab = open_memstream(&sab_text, &sab_size);
                if (!sab)
                        return;
                if (is_map(c, o, &sa))
                        put_service_account(c, o, &sa, sab, 3, &sa_ns, &sa_name);
                else
                        fail(c, o, &sa, "is required");
                fflush(sab);
                leftovers(c, o, &jwt);
                if (sa_name) {
                        Object *acct = find_object(c, OBJ_SERVICE_ACCOUNT, sa_ns, sa_name);
                        YamlTree *ann = acct ? yaml_tree_get(yaml_tree_get(acct->root, "metadata", NULL),
                                                             "annotations", NULL)
                                             : NULL;
                        const char *arn = yaml_tree_get_text(ann, "eks.amazonaws.com/role-arn");
                        if (!acct)
                                fail(c, o, &sa,
                                     "the role to assume is the eks.amazonaws.com/role-arn annotation of "
                                     "ServiceAccount %s/%s, which is not among the inputs: pass its manifest too "
                                     "(kubectl get serviceaccount -n %s %s -o yaml)",
                                     sa_ns, sa_name, sa_ns, sa_name);
                        else if (!arn)
                                fail(c, o, &sa,
                                     "ServiceAccount %s/%s (%s:%u) has no eks.amazonaws.com/role-arn annotation "
                                     "naming the role to assume",
                                     sa_ns, sa_name, acct->file, acct->line);
                        else {
                                put_comment(b, 3, "the eks.amazonaws.com/role-arn of ServiceAccount %s/%s (%s:%u)",
                                            sa_ns, sa_name, acct->file, acct->line);
                                put_str(b, 3, "role_arn", arn);
                        }
                }
                fputs(sab_text, b);
        } else if (is_map(c, o, &secret_ref)) {
                put_str(b, 3, "method", "static");
                Field id = field(&secret_ref, "accessKeyIDSecretRef");
                Field key = field(&secret_ref, "secretAccessKeySecretRef");
                Field token = field(&secret_ref, "sessionTokenSecretRef");
                put_secret_ref(c, o, &id, b, 3, "access_key_id_file", "the access key id");
                put_secret_ref(c, o, &key, b, 3, "secret_access_key_file", "the secret access key");
                if (token.v)
                        put_secret_ref(c, o, &token, b, 3, "session_token_file", "the session token");
                leftovers(c, o, &secret_ref);
        } else {
                put_comment(b, 3, "ESO used its own pod's credentials; on a node, the default chain: the");
                put_comment(b, 3, "environment, ~/.aws files, web identity, then the instance's role (IMDS)");
                put_str(b, 3, "method", "default");
        }
        if (role) {
                fputs("      assume_role = { role_arn = ", b);
                config_dump_quoted(b, role);
                if (external_id) {
                        fputs("; external_id = ", b);
                        config_dump_quoted(b, external_id);
                }
                fputs("; };\n", b);
        } else if (external_id) {
                Field f = field(p, "externalID");
                fail(c, o, &f, "needs role");
        }
        fputs("    };\n", b);
        if (is_map(c, o, &auth))
                leftovers(c, o, &auth);
}

static void conv_vault_auth(Conv *c, const Object *o, const Field *auth, FILE *b) {
        static const char *const methods[] = { "tokenSecretRef", "appRole", "kubernetes", "jwt", "cert" };
        Field m = { 0 };
        unsigned count = 0;
        for (size_t i = 0; i < ELEMENTSOF(methods); i++) {
                Field f = field(auth, methods[i]);
                if (f.v) {
                        m = f;
                        count++;
                }
        }
        bool others = false;
        for (size_t i = 0; auth->v && i < auth->v->n; i++)
                others |= !auth->v->used[i];
        leftovers(c, o, auth); /* ldap, userPass, iam, gcp, ... */
        if (count != 1) {
                if (count > 1)
                        fail(c, o, auth, "more than one method: give one");
                else if (others)
                        ; /* said above */
                else if (auth->v)
                        fail(c, o, auth, "no method secretsyncd can use: tokenSecretRef, appRole, kubernetes, jwt "
                                         "or cert");
                else
                        fail(c, o, auth, "is required");
                return;
        }
        if (!is_map(c, o, &m))
                return;
        const char *name = m.path + strlen(auth->path) + 1;
        if (streq(name, "tokenSecretRef")) {
                put_str(b, 3, "method", "token");
                put_secret_ref(c, o, &m, b, 3, "token_file", "the Vault token");
                return;
        }
        if (streq(name, "cert")) {
                put_str(b, 3, "method", "cert");
                Field cert = field(&m, "clientCert"), key = field(&m, "secretRef");
                put_secret_ref(c, o, &cert, b, 3, "cert_file", "the client certificate");
                put_secret_ref(c, o, &key, b, 3, "key_file", "the client certificate's key");
                leftovers(c, o, &m);
                return;
        }
        if (streq(name, "appRole")) {
                put_str(b, 3, "method", "approle");
                const char *mount = member_text(c, o, &m, "path", false);
                put_str(b, 3, "mount", mount ? mount : "approle");
                const char *role_id = member_text(c, o, &m, "roleId", false);
                Field role_ref = field(&m, "roleRef");
                if (role_ref.v)
                        fail(c, o, &role_ref, "a role id kept in a Secret has no equivalent: give roleId");
                else if (!role_id) {
                        Field f = field(&m, "roleId");
                        fail(c, o, &f, "is required");
                }
                if (role_id)
                        put_str(b, 3, "role_id", role_id);
                Field secret = field(&m, "secretRef");
                put_secret_ref(c, o, &secret, b, 3, "secret_id_file", "the AppRole secret id");
                leftovers(c, o, &m);
                return;
        }
        /* kubernetes and jwt: a role, and a token from a service account or a Secret */
        bool kube = streq(name, "kubernetes");
        put_str(b, 3, "method", kube ? "kubernetes" : "jwt");
        const char *mount = member_text(c, o, &m, kube ? "mountPath" : "path", false);
        put_str(b, 3, "mount", mount ? mount : kube ? "kubernetes" : "jwt");
        const char *role = member_text(c, o, &m, "role", !kube ? false : true);
        if (role)
                put_str(b, 3, "role", role);
        Field sa = field(&m, "serviceAccountRef"), secret = field(&m, "secretRef");
        if (!kube) {
                Field kt = field(&m, "kubernetesServiceAccountToken");
                if (is_map(c, o, &kt)) {
                        sa = field(&kt, "serviceAccountRef");
                        Field aud = field(&kt, "audiences");
                        if (aud.v)
                                fail(c, o, &aud, "write the audiences in serviceAccountRef.audiences");
                        leftovers(c, o, &kt); /* expirationSeconds */
                }
        }
        if (sa.v && secret.v)
                fail(c, o, &m, "a service account and a secretRef: give one");
        else if (is_map(c, o, &sa))
                put_service_account(c, o, &sa, b, 3, NULL, NULL);
        else if (secret.v)
                put_secret_ref(c, o, &secret, b, 3, "token_file", "the JWT");
        else
                fail(c, o, &m,
                     "no serviceAccountRef or secretRef: ESO would log in with its own pod's token, which a node "
                     "does not have");
        leftovers(c, o, &m);
}

static void conv_vault(Conv *c, const Object *o, const Field *p, FILE *b) {
        put_str(b, 2, "type", "vault");
        const char *server = member_text(c, o, p, "server", true);
        if (server)
                put_str(b, 2, "server", server);
        Field path = field(p, "path");
        const char *mount = text(c, o, &path, false);
        if (mount)
                put_str(b, 2, "mount", mount);
        else
                fail(c, o, &path, "is needed: secretsyncd reads keys relative to the KV engine's mount");
        Field version = field(p, "version");
        const char *v = text(c, o, &version, false);
        if (v && !streq(v, "v1") && !streq(v, "v2"))
                fail(c, o, &version, "\"%s\": v1 or v2", v);
        put_indent(b, 2);
        fprintf(b, "kv_version = %d;\n", v && streq(v, "v1") ? 1 : 2);
        const char *ns = member_text(c, o, p, "namespace", false);
        if (ns)
                put_str(b, 2, "namespace", ns);

        Field bundle = field(p, "caBundle"), provider = field(p, "caProvider");
        const char *ca = text(c, o, &bundle, false);
        if (ca && provider.v)
                fail(c, o, &provider, "caBundle and caProvider: give one");
        else if (ca) {
                _cleanup_(secbuf_freep) SecBuf *pem = NULL;
                if (base64_decode(ca, strlen(ca), true, &pem) < 0 || memchr(pem->data, 0, pem->len))
                        fail(c, o, &bundle, "is not base64 of PEM text");
                else {
                        _cleanup_free_ char *s = strndup((const char *) pem->data, pem->len);
                        if (s) {
                                put_comment(b, 2, "caBundle, decoded");
                                put_str(b, 2, "ca_pem", s);
                        }
                }
        } else if (is_map(c, o, &provider)) {
                const char *type = member_text(c, o, &provider, "type", true);
                if (type && !streq(type, "Secret") && !streq(type, "ConfigMap")) {
                        Field t = field(&provider, "type");
                        fail(c, o, &t, "\"%s\": Secret or ConfigMap", type);
                }
                Field sel = provider;
                put_secret_ref(c, o, &sel, b, 2, "ca_file",
                               type && streq(type, "ConfigMap") ? "the CA (a ConfigMap's key: use "
                                                                  "jsonpath '{.data...}' without base64 -d)"
                                                                : "the CA");
                /* put_secret_ref() read name, key, namespace; type was read above */
        }

        fputs("    auth = {\n", b);
        Field auth = field(p, "auth");
        if (auth.v && !is_map(c, o, &auth))
                auth.v = NULL;
        conv_vault_auth(c, o, &auth, b);
        fputs("    };\n", b);
}

static void conv_azure(Conv *c, const Object *o, const Field *p, FILE *b) {
        put_str(b, 2, "type", "azure");
        const char *url = member_text(c, o, p, "vaultUrl", true);
        if (url)
                put_str(b, 2, "vault_url", url);
        Field env = field(p, "environmentType");
        const char *e = text(c, o, &env, false);
        if (e && streq(e, "USGovernmentCloud"))
                put_str(b, 2, "authority", "https://login.microsoftonline.us");
        else if (e && streq(e, "ChinaCloud"))
                put_str(b, 2, "authority", "https://login.chinacloudapi.cn");
        else if (e && !streq(e, "PublicCloud"))
                fail(c, o, &env, "\"%s\": PublicCloud, USGovernmentCloud or ChinaCloud", e);

        Field type = field(p, "authType");
        const char *t = text(c, o, &type, false);
        const char *tenant = member_text(c, o, p, "tenantId", false);
        fputs("    auth = {\n", b);
        if (!t || streq(t, "ServicePrincipal")) {
                Field ref = field(p, "authSecretRef");
                Field cert = field(&ref, "clientCertificate");
                put_str(b, 3, "method", cert.v ? "client-certificate" : "client-secret");
                if (tenant)
                        put_str(b, 3, "tenant_id", tenant);
                else {
                        Field f = field(p, "tenantId");
                        fail(c, o, &f, "is required with ServicePrincipal");
                }
                if (is_map(c, o, &ref)) {
                        Field id = field(&ref, "clientId");
                        put_secret_ref(c, o, &id, b, 3, "client_id_file", "the client id");
                        if (cert.v)
                                put_secret_ref(c, o, &cert, b, 3, "certificate_file",
                                               "the client certificate and its key (PEM)");
                        else {
                                Field secret = field(&ref, "clientSecret");
                                put_secret_ref(c, o, &secret, b, 3, "client_secret_file", "the client secret");
                        }
                        leftovers(c, o, &ref);
                } else
                        fail(c, o, &ref, "is required with ServicePrincipal");
        } else if (streq(t, "ManagedIdentity")) {
                put_str(b, 3, "method", "managed-identity");
                const char *id = member_text(c, o, p, "identityId", false);
                if (id)
                        put_str(b, 3, "client_id", id);
        } else
                fail(c, o, &type, "\"%s\": ServicePrincipal or ManagedIdentity (workload identity needs a pod)", t);
        fputs("    };\n", b);
}

static void conv_gcp(Conv *c, const Object *o, const Field *p, FILE *b) {
        put_str(b, 2, "type", "gcp");
        const char *project = member_text(c, o, p, "projectID", true);
        if (project)
                put_str(b, 2, "project", project);
        const char *location = member_text(c, o, p, "location", false);
        if (location)
                put_str(b, 2, "location", location);
        fputs("    auth = {\n", b);
        Field auth = field(p, "auth");
        Field secret = field(&auth, "secretRef");
        if (is_map(c, o, &secret)) {
                put_str(b, 3, "method", "service-account-key");
                Field key = field(&secret, "secretAccessKeySecretRef");
                put_secret_ref(c, o, &key, b, 3, "key_file", "the service account key (JSON)");
                leftovers(c, o, &secret);
        } else {
                put_comment(b, 3, "ESO used its own pod's credentials; on a node: GOOGLE_APPLICATION_CREDENTIALS,");
                put_comment(b, 3, "then the metadata server");
                put_str(b, 3, "method", "default");
        }
        if (is_map(c, o, &auth))
                leftovers(c, o, &auth); /* workloadIdentity, workloadIdentityFederation */
        fputs("    };\n", b);
}

static void conv_fake(Conv *c, const Object *o, const Field *p, FILE *b) {
        put_str(b, 2, "type", "fake");
        Field data = field(p, "data");
        fputs("    data = (", b);
        const char *sep = "\n";
        if (is_seq(c, o, &data))
                for (size_t i = 0; i < data.v->n; i++) {
                        Field d = item(&data, i);
                        if (!is_map(c, o, &d))
                                continue;
                        const char *key = member_text(c, o, &d, "key", true);
                        const char *value = member_text(c, o, &d, "value", true);
                        leftovers(c, o, &d); /* version, valueMap */
                        if (!key || !value)
                                continue;
                        fprintf(b, "%s      { key = ", sep);
                        config_dump_quoted(b, key);
                        fputs("; value = ", b);
                        config_dump_quoted(b, value);
                        fputs("; }", b);
                        sep = ",\n";
                }
        fputs("\n    );\n", b);
}

static const struct {
        const char *name;
        void (*convert)(Conv *c, const Object *o, const Field *p, FILE *b);
} providers[] = {
        { "aws", conv_aws }, { "vault", conv_vault }, { "azurekv", conv_azure }, { "gcpsm", conv_gcp }, { "fake", conv_fake },
};

/* --------------------------------------------------------------- blocks ---- */

/* A block of output with the notes (--partial) gathered while it was written. */
static void block_begin(Conv *c, FILE **ret, char **buf, size_t *size) {
        *ret = open_memstream(buf, size);
        c->notes = open_memstream(&c->notes_buf, &c->notes_size);
}

static void block_end(Conv *c, FILE *out, FILE *blk, char **buf) {
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

static const char *kind_name(ObjectKind k) {
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

static void put_origin(FILE *b, unsigned indent, const Object *o) {
        if (o->ns)
                put_comment(b, indent, "%s %s/%s (%s:%u)", kind_name(o->kind), o->ns, o->name, o->file, o->line);
        else
                put_comment(b, indent, "%s %s (%s:%u)", kind_name(o->kind), o->name, o->file, o->line);
}

static void conv_store(Conv *c, const Object *o, FILE *out) {
        FILE *b;
        char *buf = NULL;
        size_t size = 0;
        block_begin(c, &b, &buf, &size);
        if (!b)
                return;
        Field spec = { .line = o->line, .path = "spec" };
        spec.v = yaml_tree_get(o->root, "spec", &spec.line);
        put_origin(b, 1, o);
        put_indent(b, 1);
        fprintf(b, "%s = {\n", o->conf_name);
        if (is_map(c, o, &spec)) {
                Field p = field(&spec, "provider");
                if (is_map(c, o, &p)) {
                        unsigned found = 0;
                        for (size_t i = 0; i < p.v->n; i++)
                                for (size_t j = 0; j < ELEMENTSOF(providers); j++)
                                        if (streq(p.v->keys[i], providers[j].name)) {
                                                Field pf = field(&p, providers[j].name);
                                                if (found++ == 0 && is_map(c, o, &pf)) {
                                                        providers[j].convert(c, o, &pf, b);
                                                        leftovers(c, o, &pf);
                                                }
                                        }
                        for (size_t i = 0; i < p.v->n; i++)
                                if (!p.v->used[i]) {
                                        Field pf = field(&p, p.v->keys[i]);
                                        fail(c, o, &pf, "this provider has no store type in secretsyncd (aws, "
                                                        "vault, azurekv, gcpsm, fake)");
                                }
                        if (found == 0 && p.v->n == 0)
                                fail(c, o, &p, "names no provider");
                        else if (found > 1)
                                fail(c, o, &p, "more than one provider");
                } else
                        fail(c, o, &p, "is required");
                leftovers(c, o, &spec);
        } else
                fail(c, o, &spec, "is required");
        put_indent(b, 1);
        fputs("};\n", b);
        block_end(c, out, b, &buf);
}

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

static bool gjson_path_plain(const char *s) {
        return !strpbrk(s, "*?#|@\\!=<>%") && s[0] != '.' && s[strlen(s) - 1] != '.' && !strstr(s, "..");
}

/* remoteRef / extract: key, property, version (and the strategies, when they change nothing). */
static void put_remote_ref(Conv *c, const Object *o, const Field *r, const char *group, FILE *b) {
        const char *key = member_text(c, o, r, "key", true);
        Field prop = field(r, "property");
        const char *property = text(c, o, &prop, false);
        const char *version = member_text(c, o, r, "version", false);
        static const struct {
                const char *field, *neutral, *why;
        } strategies[] = {
                { "conversionStrategy", "Default", "only Default (no conversion) has an equivalent" },
                { "decodingStrategy", "None", "decoding has no equivalent: store the value decoded" },
                { "metadataPolicy", "None", "fetching the secret's metadata has no equivalent" },
        };
        for (size_t i = 0; i < ELEMENTSOF(strategies); i++) {
                Field f = field(r, strategies[i].field);
                const char *v = text(c, o, &f, false);
                if (v && !streq(v, strategies[i].neutral))
                        fail(c, o, &f, "\"%s\": %s", v, strategies[i].why);
        }
        leftovers(c, o, r);
        if (property && !*property)
                property = NULL;
        if (property && !gjson_path_plain(property)) {
                fail(c, o, &prop, "\"%s\": only plain paths (a.b, hosts.0.name) have an equivalent, no gjson "
                                  "queries, wildcards or escapes",
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

static bool template_key_char(char ch) {
        return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
               ch == '-' || ch == '.';
}

/* One Go template action's words, quotes kept. */
static size_t split_words(char *s, char **words, size_t max) {
        size_t n = 0;
        while (*s) {
                while (*s == ' ' || *s == '\t' || *s == '\n')
                        *s++ = 0;
                if (!*s)
                        break;
                if (n == max)
                        return max + 1;
                words[n++] = s;
                if (*s == '"' || *s == '`') {
                        char q = *s++;
                        while (*s && *s != q)
                                s += (*s == '\\' && q == '"' && s[1]) ? 2 : 1;
                        if (*s)
                                s++;
                } else if (*s == '(') {
                        return max + 1;
                } else
                        while (*s && *s != ' ' && *s != '\t' && *s != '\n')
                                s++;
        }
        return n;
}

/* {{ .key }}, {{ index . "key" }}, {{ .key | b64enc }}, {{ b64enc .key }}, {{ .key | toJson }} ->
 * ours; anything else is an error. */
static int template_action(const char *action, size_t len, const Object *o, FILE *b, char **ret_why) {
        /* "|" is a word of its own, with or without spaces around it */
        _cleanup_free_ char *s = malloc(3 * len + 1);
        if (!s)
                return -ENOMEM;
        char *w = s;
        char q = 0;
        for (size_t k = 0; k < len; k++) {
                if (q && action[k] == q)
                        q = 0;
                else if (!q && (action[k] == '"' || action[k] == '`'))
                        q = action[k];
                if (!q && action[k] == '|') {
                        memcpy(w, " | ", 3);
                        w += 3;
                } else
                        *w++ = action[k];
        }
        *w = 0;
        char *words[8];
        const char *key = NULL, *filter = NULL;
        size_t n = split_words(s, words, ELEMENTSOF(words));
        if (n > ELEMENTSOF(words)) {
                (void) !asprintf(ret_why, "{{%.*s}}: only a key and one of b64enc or toJson have an equivalent",
                                 (int) len, action);
                return -EINVAL;
        }
        const char *fn = NULL;
        size_t i = 0;
        if (n >= 2 && words[0][0] != '.' && !streq(words[0], "index"))
                fn = words[i++];
        if (i < n && streq(words[i], "index") && i + 2 < n && streq(words[i + 1], ".") &&
            (words[i + 2][0] == '"' || words[i + 2][0] == '`')) {
                char *k = words[i + 2] + 1;
                size_t kl = strlen(k);
                if (kl > 0 && (k[kl - 1] == '"' || k[kl - 1] == '`'))
                        k[kl - 1] = 0;
                key = k;
                i += 3;
        } else if (i < n && words[i][0] == '.' && words[i][1] && !strchr(words[i] + 1, '.')) {
                key = words[i] + 1;
                i++;
        }
        if (i < n && streq(words[i], "|") && i + 2 == n && !fn)
                fn = words[i + 1], i += 2;
        if (fn && streq(fn, "b64enc"))
                filter = "base64";
        else if (fn && (streq(fn, "toJson") || streq(fn, "toRawJson")))
                filter = "json";
        bool ok = key && i == n && (!fn || filter) && *key;
        for (const char *k = key; ok && *k; k++)
                ok = template_key_char(*k) && *k != '"' && *k != '\\';
        if (!ok) {
                (void) !asprintf(ret_why,
                                 "{{%.*s}}: only {{ .key }}, {{ index . \"key\" }} and those with | b64enc or | "
                                 "toJson have an equivalent",
                                 (int) len, action);
                return -EINVAL;
        }
        bool known = !o->keys_complete;
        for (size_t j = 0; j < o->n_keys && !known; j++)
                known = streq(o->keys[j], key);
        if (!known) {
                (void) !asprintf(ret_why, "{{%.*s}}: \"%s\" is not a key of this ExternalSecret's data", (int) len,
                                 action, key);
                return -EINVAL;
        }
        fprintf(b, "{{ %s%s%s }}", key, filter ? " | " : "", filter ? filter : "");
        return 0;
}

static int convert_template(const char *t, const Object *o, char **ret, char **ret_why) {
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        _cleanup_fclose_ FILE *b = open_memstream(&buf, &size);
        if (!b)
                return -ENOMEM;
        bool trim_next = false;
        const char *p = t;
        for (;;) {
                const char *open = strstr(p, "{{");
                const char *lit_end = open ? open : p + strlen(p);
                const char *lit = p;
                if (trim_next)
                        while (lit < lit_end && strchr(" \t\r\n", *lit))
                                lit++;
                bool trim_before = open && open[2] == '-' && strchr(" \t\r\n", open[3]);
                const char *le = lit_end;
                if (trim_before)
                        while (le > lit && strchr(" \t\r\n", le[-1]))
                                le--;
                fwrite(lit, 1, (size_t) (le - lit), b);
                if (!open)
                        break;
                const char *a = open + 2 + (trim_before ? 2 : 0);
                const char *close = a;
                for (char q = 0; *close; close++) {
                        if (q) {
                                if (*close == '\\' && q == '"' && close[1])
                                        close++;
                                else if (*close == q)
                                        q = 0;
                        } else if (*close == '"' || *close == '`')
                                q = *close;
                        else if (close[0] == '}' && close[1] == '}')
                                break;
                }
                if (!*close) {
                        *ret_why = strdup("an action that is not closed with }}");
                        return -EINVAL;
                }
                const char *ae = close;
                trim_next = ae - a >= 2 && ae[-1] == '-' && strchr(" \t\r\n", ae[-2]);
                if (trim_next)
                        ae -= 2;
                const char *s = a;
                while (s < ae && strchr(" \t\r\n", *s))
                        s++;
                if (ae - s >= 4 && strncmp(s, "/*", 2) == 0 && strncmp(ae - 2, "*/", 2) == 0)
                        ; /* a comment */
                else {
                        int r = template_action(a, (size_t) (ae - a), o, b, ret_why);
                        if (r < 0)
                                return r;
                }
                p = close + 2;
        }
        if (fflush(b) != 0)
                return -ENOMEM;
        fclose(TAKE_PTR(b));
        *ret = TAKE_PTR(buf);
        return 0;
}

static void conv_template(Conv *c, const Object *o, const Field *tmpl, FILE *b) {
        if (!is_map(c, o, tmpl))
                return;
        Field ev = field(tmpl, "engineVersion");
        const char *engine = text(c, o, &ev, false);
        if (engine && !streq(engine, "v2"))
                fail(c, o, &ev, "\"%s\": only v2 templates are converted", engine);
        const char *type = member_text(c, o, tmpl, "type", false);
        if (type)
                put_str(b, 3, "type", type);
        Field meta = field(tmpl, "metadata");
        if (is_map(c, o, &meta)) {
                static const char *const lists[] = { "labels", "annotations" };
                for (size_t l = 0; l < ELEMENTSOF(lists); l++) {
                        Field m = field(&meta, lists[l]);
                        if (!is_map(c, o, &m) || m.v->n == 0)
                                continue;
                        put_indent(b, 3);
                        fprintf(b, "%s = [ ", lists[l]);
                        for (size_t i = 0; i < m.v->n; i++) {
                                Field kv = field(&m, m.v->keys[i]);
                                const char *v = text(c, o, &kv, false);
                                _cleanup_free_ char *s = NULL;
                                if (asprintf(&s, "%s=%s", m.v->keys[i], v ? v : "") < 0)
                                        return;
                                config_dump_quoted(b, s);
                                fputs(i + 1 < m.v->n ? ", " : " ", b);
                        }
                        fputs("];\n", b);
                }
                leftovers(c, o, &meta);
        }
        Field data = field(tmpl, "data");
        Field mp = field(tmpl, "mergePolicy");
        const char *merge = text(c, o, &mp, false);
        if (is_map(c, o, &data) && data.v->n > 0) {
                const char *sep = "\n";
                put_indent(b, 3);
                fputs("templates = (", b);
                for (size_t i = 0; i < data.v->n; i++) {
                        Field d = field(&data, data.v->keys[i]);
                        const char *t = text(c, o, &d, false);
                        _cleanup_free_ char *ours = NULL, *why = NULL;
                        if (!config_secret_key_valid(data.v->keys[i]))
                                fail(c, o, &d, "is not a valid Secret key ([-._a-zA-Z0-9])");
                        else if (t && convert_template(t, o, &ours, &why) < 0)
                                fail(c, o, &d, "%s", why ? why : "out of memory");
                        if (!ours)
                                continue;
                        fputs(sep, b);
                        sep = ",\n";
                        put_indent(b, 4);
                        fputs("{ key = ", b);
                        config_dump_quoted(b, data.v->keys[i]);
                        fputs("; template = ", b);
                        config_dump_quoted(b, ours);
                        fputs("; }", b);
                }
                fputs("\n", b);
                put_indent(b, 3);
                fputs(");\n", b);
        }
        if (merge && streq(merge, "Merge"))
                put_str(b, 3, "merge_policy", "merge");
        else if (merge && !streq(merge, "Replace"))
                fail(c, o, &mp, "\"%s\": Replace or Merge", merge);
        leftovers(c, o, tmpl);
}

static void conv_target(Conv *c, const Object *o, const Field *spec, FILE *b) {
        Field target = field(spec, "target");
        if (target.v && !is_map(c, o, &target))
                target.v = NULL;
        fputs("    kubernetes = {\n", b);
        put_str(b, 3, "namespace", o->ns);
        const char *name = member_text(c, o, &target, "name", false);
        if (name && !config_dns_subdomain_valid(name)) {
                Field f = field(&target, "name");
                fail(c, o, &f, "\"%s\" is not a valid Secret name", name);
        }
        put_str(b, 3, "name", name ? name : o->name);

        Field cp = field(&target, "creationPolicy");
        const char *creation = text(c, o, &cp, false);
        if (!creation || streq(creation, "Owner")) {
                put_comment(b, 3, "ESO's Owner: the Secret goes when the ExternalSecret goes");
                put_str(b, 3, "creation_policy", "owner");
                put_str(b, 3, "deletion_policy", "delete");
        } else if (streq(creation, "Orphan")) {
                put_str(b, 3, "creation_policy", "orphan");
        } else if (streq(creation, "Merge")) {
                put_str(b, 3, "creation_policy", "merge");
        } else if (streq(creation, "None"))
                fail(c, o, &cp, "None writes no Secret: give the secret files instead (secretsyncd.conf(5))");
        else
                fail(c, o, &cp, "\"%s\": Owner, Orphan or Merge", creation);

        Field dp = field(&target, "deletionPolicy");
        const char *deletion = text(c, o, &dp, false);
        if (deletion && !streq(deletion, "Retain"))
                fail(c, o, &dp,
                     "\"%s\": secretsyncd keeps the last good data when the store no longer has it (Retain); "
                     "removing the Secret or its keys then has no equivalent",
                     deletion);

        Field tmpl = field(&target, "template");
        conv_template(c, o, &tmpl, b);
        leftovers(c, o, &target);
        fputs("    };\n", b);
}

static void conv_secret(Conv *c, Object *o, FILE *out) {
        FILE *b;
        char *buf = NULL;
        size_t size = 0;
        block_begin(c, &b, &buf, &size);
        if (!b)
                return;
        Field spec = { .line = o->line, .path = "spec" };
        spec.v = yaml_tree_get(o->root, "spec", &spec.line);
        put_origin(b, 1, o);
        put_indent(b, 1);
        fputs("{\n", b);
        put_str(b, 2, "name", o->conf_name);
        if (!is_map(c, o, &spec)) {
                fail(c, o, &spec, "is required");
                goto end;
        }

        Field ref = field(&spec, "secretStoreRef");
        const char *store = NULL;
        if (is_map(c, o, &ref)) {
                const char *name = member_text(c, o, &ref, "name", true);
                Field kf = field(&ref, "kind");
                const char *kind = text(c, o, &kf, false);
                leftovers(c, o, &ref);
                ObjectKind k = OBJ_SECRET_STORE;
                if (kind && streq(kind, "ClusterSecretStore"))
                        k = OBJ_CLUSTER_SECRET_STORE;
                else if (kind && !streq(kind, "SecretStore"))
                        fail(c, o, &kf, "\"%s\": SecretStore or ClusterSecretStore", kind);
                Object *s = name ? find_object(c, k, o->ns, name) : NULL;
                if (s && !s->conf_name)
                        fail(c, o, &ref, "its store has no name secretsyncd can use (see the error above)");
                else if (s)
                        store = s->conf_name;
                else if (name)
                        fail(c, o, &ref, "%s %s%s%s is not among the inputs: pass its manifest too", kind_name(k),
                             k == OBJ_SECRET_STORE ? o->ns : "", k == OBJ_SECRET_STORE ? "/" : "", name);
        } else
                fail(c, o, &ref, "is required");
        put_str(b, 2, "store", store ? store : "");

        Field ri = field(&spec, "refreshInterval");
        const char *interval = text(c, o, &ri, false);
        uint64_t usec = USEC_PER_HOUR;
        if (interval) {
                int r = go_duration(interval, &usec);
                if (r == -EDOM)
                        fail(c, o, &ri, "\"%s\": secretsyncd counts in whole seconds", interval);
                else if (r < 0)
                        fail(c, o, &ri, "\"%s\" is not a duration of at most a year", interval);
                else if (usec == 0)
                        fail(c, o, &ri, "0 (sync once, never again) has no equivalent: secretsyncd refreshes");
        }
        char dbuf[DURATION_FORMAT_MAX];
        if (usec > 0)
                put_str(b, 2, "refresh_interval", duration_format(usec, dbuf, sizeof(dbuf)));
        Field rp = field(&spec, "refreshPolicy");
        const char *policy = text(c, o, &rp, false);
        if (policy && !streq(policy, "Periodic"))
                fail(c, o, &rp, "\"%s\": only Periodic has an equivalent", policy);

        Field data = field(&spec, "data");
        if (is_seq(c, o, &data) && data.v->n > 0) {
                const char *sep = "\n";
                fputs("    data = (", b);
                for (size_t i = 0; i < data.v->n; i++) {
                        Field d = item(&data, i);
                        if (!is_map(c, o, &d))
                                continue;
                        Field sk = field(&d, "secretKey");
                        const char *key = text(c, o, &sk, true);
                        if (key && !config_secret_key_valid(key))
                                fail(c, o, &sk, "\"%s\" is not a valid Secret key ([-._a-zA-Z0-9])", key);
                        Field rr = field(&d, "remoteRef");
                        fprintf(b, "%s      { secret_key = ", sep);
                        sep = ",\n";
                        config_dump_quoted(b, key ? key : "");
                        fputs("; ", b);
                        if (is_map(c, o, &rr))
                                put_remote_ref(c, o, &rr, "remote_ref", b);
                        else
                                fail(c, o, &rr, "is required");
                        fputs(" }", b);
                        leftovers(c, o, &d);
                }
                fputs("\n    );\n", b);
        }
        Field from = field(&spec, "dataFrom");
        if (is_seq(c, o, &from) && from.v->n > 0) {
                const char *sep = "\n";
                fputs("    data_from = (", b);
                for (size_t i = 0; i < from.v->n; i++) {
                        Field d = item(&from, i);
                        if (!is_map(c, o, &d))
                                continue;
                        Field ex = field(&d, "extract");
                        leftovers(c, o, &d); /* find, rewrite, sourceRef */
                        if (!is_map(c, o, &ex)) {
                                if (!ex.v && d.v->n == 0)
                                        fail(c, o, &d, "is empty");
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
                fail(c, o, &spec, "neither data nor dataFrom: nothing to fetch");
        conv_target(c, o, &spec, b);
        leftovers(c, o, &spec);
end:
        put_indent(b, 1);
        fputs("}", b);
        block_end(c, out, b, &buf);
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
                Field nf = field(&f, "name");
                fail(c, o, &nf, "is required");
        } else if (!o->ns && kind != OBJ_CLUSTER_SECRET_STORE) {
                Field nf = field(&f, "namespace");
                fail(c, o, &nf, "unset: give it, or --namespace");
        }
}

static void collect(Conv *c, const char *file, YamlTree *t, unsigned depth) {
        Object tmp = { .file = file, .line = t->line };
        if (t->kind != YAML_TREE_MAP) {
                fail(c, &tmp, NULL, "a document that is not a Kubernetes object");
                return;
        }
        const char *kind = yaml_tree_get_text(t, "kind");
        const char *api = yaml_tree_get_text(t, "apiVersion");
        if (!kind || !api) {
                fail(c, &tmp, NULL, "a document without kind or apiVersion");
                return;
        }
        YamlTree *items = yaml_tree_get(t, "items", NULL);
        size_t kl = strlen(kind);
        if (kl >= 4 && streq(kind + kl - 4, "List") && depth == 0) {
                if (!items || items->kind != YAML_TREE_SEQ) {
                        fail(c, &tmp, NULL, "a %s without items", kind);
                        return;
                }
                for (size_t i = 0; i < items->n; i++)
                        collect(c, file, items->items[i], depth + 1);
                return;
        }
        const char *slash = strchr(api, '/');
        if (slash && strncmp(api, "external-secrets.io/", strlen("external-secrets.io/")) == 0) {
                if (!streq(slash + 1, "v1") && !streq(slash + 1, "v1beta1")) {
                        fail(c, &tmp, NULL, "%s %s: convert-eso reads external-secrets.io/v1 and v1beta1", api, kind);
                        return;
                }
                if (streq(kind, "SecretStore"))
                        add_object(c, file, t, OBJ_SECRET_STORE);
                else if (streq(kind, "ClusterSecretStore"))
                        add_object(c, file, t, OBJ_CLUSTER_SECRET_STORE);
                else if (streq(kind, "ExternalSecret"))
                        add_object(c, file, t, OBJ_EXTERNAL_SECRET);
                else if (streq(kind, "PushSecret") || streq(kind, "ClusterPushSecret"))
                        fail(c, &tmp, NULL, "%s: pushing secrets to a store has no equivalent", kind);
                else if (streq(kind, "ClusterExternalSecret"))
                        fail(c, &tmp, NULL,
                             "ClusterExternalSecret: write one ExternalSecret per namespace (secretsyncd has no "
                             "namespace selectors)");
                else
                        fail(c, &tmp, NULL, "%s %s is not converted", api, kind);
                return;
        }
        if (strstr(api, "external-secrets.io/")) {
                fail(c, &tmp, NULL, "%s %s: generators and other External Secrets objects have no equivalent", api,
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
                Field nf = field(&f, "name");
                /* a block without a valid, unique name is not written, not even with --partial */
                if (!config_name_valid(o->conf_name) || strlen(o->conf_name) > 253) {
                        fail(c, o, &nf, "\"%s\" cannot be a %s name in secretsyncd ([a-z0-9-])", o->conf_name,
                             store ? "store" : "secret");
                        o->conf_name = mfree(o->conf_name);
                        continue;
                }
                for (size_t j = 0; j < i; j++) {
                        const Object *p = &c->objs[j];
                        if (p->conf_name && streq(p->conf_name, o->conf_name) &&
                            (p->kind != OBJ_EXTERNAL_SECRET) == store) {
                                fail(c, o, &nf, "\"%s\" is also the name of %s %s (%s:%u)", o->conf_name,
                                     kind_name(p->kind), p->name, p->file, p->line);
                                o->conf_name = mfree(o->conf_name);
                                break;
                        }
                }
        }
}

/* The data keys an ExternalSecret defines, which its templates may use. */
static void gather_keys(Object *o) {
        YamlTree *spec = yaml_tree_get(o->root, "spec", NULL);
        YamlTree *data = NULL;
        /* read without marking them used: the conversion reads them again */
        for (size_t i = 0; spec && spec->kind == YAML_TREE_MAP && i < spec->n; i++)
                if (streq(spec->keys[i], "data"))
                        data = spec->items[i];
        o->keys_complete = true;
        for (size_t i = 0; spec && spec->kind == YAML_TREE_MAP && i < spec->n; i++)
                if (streq(spec->keys[i], "dataFrom") && spec->items[i]->kind == YAML_TREE_SEQ &&
                    spec->items[i]->n > 0)
                        o->keys_complete = false;
        for (size_t i = 0; data && data->kind == YAML_TREE_SEQ && i < data->n; i++) {
                YamlTree *d = data->items[i];
                for (size_t j = 0; d->kind == YAML_TREE_MAP && j < d->n; j++)
                        if (streq(d->keys[j], "secretKey") && d->items[j]->kind == YAML_TREE_SCALAR &&
                            o->n_keys < ELEMENTSOF(o->keys))
                                o->keys[o->n_keys++] = d->items[j]->text;
        }
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
                        fail(&c, &o, NULL, "not valid YAML: %s", msg && *msg == ':' ? msg + 2 : "out of memory");
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
                put_comment(o, 0, "  %s", in[i].name);
        for (size_t i = 0; i < c.n_skipped; i++)
                put_comment(o, 0, "skipped %s", c.skipped[i]);
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
                                conv_store(&c, &c.objs[i], o);
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
                                gather_keys(&c.objs[i]);
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
