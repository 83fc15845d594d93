/* SPDX-License-Identifier: MIT */
#include "kube/kubeconfig.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#include "core/config.h"
#include "util/base64.h"
#include "util/cleanup.h"
#include "util/error.h"

KubeConnection *kube_connection_free(KubeConnection *c) {
        if (!c)
                return NULL;
        free(c->source);
        free(c->server);
        free(c->ca_file);
        free(c->ca_pem);
        free(c->cert_file);
        free(c->key_file);
        free(c->cert_pem);
        secbuf_free(c->key_pem);
        secbuf_free(c->token);
        free(c->token_file);
        free(c->namespace);
        free(c);
        return NULL;
}

/* ------------------------------------------------------------ YAML walk ---- */

typedef struct Walk {
        yaml_document_t *doc;
        const char *path;
        char *dir; /* the kubeconfig's directory, for relative file names */
        char **error;
} Walk;

_printf_(3, 4) static int fail(Walk *w, const yaml_node_t *at, const char *fmt, ...) {
        _cleanup_free_ char *msg = NULL;
        va_list ap;

        va_start(ap, fmt);
        if (vasprintf(&msg, fmt, ap) < 0)
                msg = NULL;
        va_end(ap);
        if (at)
                return error_set(w->error, -EINVAL, "%s:%zu: %s", w->path, at->start_mark.line + 1,
                                 msg ? msg : "out of memory");
        return error_set(w->error, -EINVAL, "%s: %s", w->path, msg ? msg : "out of memory");
}

/* A scalar's text, or NULL for anything else and for YAML's null ("", "~", "null"). */
static const char *scalar(const yaml_node_t *n) {
        if (!n || n->type != YAML_SCALAR_NODE)
                return NULL;
        const char *s = (const char *) n->data.scalar.value;
        if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
            (s[0] == '\0' || streq(s, "~") || streq(s, "null") || streq(s, "Null") || streq(s, "NULL")))
                return NULL;
        /* An embedded NUL would cut the value short without anyone noticing. */
        if (strlen(s) != n->data.scalar.length)
                return NULL;
        return s;
}

static yaml_node_pair_t *pair(Walk *w, const yaml_node_t *map, const char *key) {
        if (!map || map->type != YAML_MAPPING_NODE)
                return NULL;
        for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
                const char *k = scalar(yaml_document_get_node(w->doc, p->key));
                if (k && streq(k, key))
                        return p;
        }
        return NULL;
}

static yaml_node_t *member(Walk *w, const yaml_node_t *map, const char *key) {
        yaml_node_pair_t *p = pair(w, map, key);
        return p ? yaml_document_get_node(w->doc, p->value) : NULL;
}

/* The key's node, for messages: "exec:" is on the line the user looks for. */
static yaml_node_t *member_key(Walk *w, const yaml_node_t *map, const char *key) {
        yaml_node_pair_t *p = pair(w, map, key);
        return p ? yaml_document_get_node(w->doc, p->key) : NULL;
}

static const char *member_string(Walk *w, const yaml_node_t *map, const char *key) {
        return scalar(member(w, map, key));
}

/* kubeconfig's named lists: `clusters: [ { name: N, cluster: {...} } ]`. */
static yaml_node_t *named(Walk *w, const yaml_node_t *root, const char *list, const char *field, const char *name,
                          const yaml_node_t *referrer, int *ret) {
        yaml_node_t *seq = member(w, root, list);
        if (seq && seq->type == YAML_SEQUENCE_NODE)
                for (yaml_node_item_t *i = seq->data.sequence.items.start; i < seq->data.sequence.items.top; i++) {
                        yaml_node_t *item = yaml_document_get_node(w->doc, *i);
                        const char *n = member_string(w, item, "name");
                        if (n && streq(n, name)) {
                                yaml_node_t *v = member(w, item, field);
                                if (!v || v->type != YAML_MAPPING_NODE) {
                                        *ret = fail(w, item, "%s \"%s\" has no %s mapping", list, name, field);
                                        return NULL;
                                }
                                return v;
                        }
                }
        *ret = fail(w, referrer, "%s \"%s\" is not among the %s", field, name, list);
        return NULL;
}

static int take_path(Walk *w, const char *value, char **ret) {
        if (value[0] == '/')
                *ret = strdup(value);
        else if (asprintf(ret, "%s/%s", w->dir, value) < 0)
                *ret = NULL;
        return *ret ? 0 : -ENOMEM;
}

/* One of FIELD (a file name) and FIELD-data (base64 of the content). */
static int file_or_data(Walk *w, const yaml_node_t *map, const char *field, char **ret_file, SecBuf **ret_data) {
        char data_field[64];
        snprintf(data_field, sizeof(data_field), "%s-data", field);
        const yaml_node_t *fn = member(w, map, field), *dn = member(w, map, data_field);
        const char *f = scalar(fn), *d = scalar(dn);

        if (f && d)
                return fail(w, dn, "%s and %s are both set; keep one", field, data_field);
        if (f)
                return take_path(w, f, ret_file);
        if (d && base64_decode(d, strlen(d), true, ret_data) < 0)
                return fail(w, dn, "%s is not valid base64", data_field);
        return 0;
}

static int parse_cluster(Walk *w, const yaml_node_t *cluster, const char *name, KubeConnection *c) {
        _cleanup_secbuf_ SecBuf *ca = NULL;
        const yaml_node_t *n;
        const char *s;
        int r;

        n = member(w, cluster, "server");
        s = scalar(n);
        if (!s)
                return fail(w, cluster, "cluster \"%s\" has no server", name);
        if (strncmp(s, "https://", 8) != 0 || !s[8])
                return fail(w, n, "cluster \"%s\": server \"%s\" must be an https:// URL", name, s);
        c->server = strdup(s);
        if (!c->server)
                return -ENOMEM;
        size_t l = strlen(c->server);
        while (l > 8 && c->server[l - 1] == '/')
                c->server[--l] = '\0';

        n = member(w, cluster, "insecure-skip-tls-verify");
        if ((s = scalar(n)) && streq(s, "true"))
                return fail(w, n,
                            "cluster \"%s\": insecure-skip-tls-verify is refused: secretsyncd always verifies the API "
                            "server; set certificate-authority or certificate-authority-data",
                            name);
        static const char *const unsupported[] = { "proxy-url", "tls-server-name" };
        for (size_t i = 0; i < ELEMENTSOF(unsupported); i++)
                if ((n = member(w, cluster, unsupported[i])) && scalar(n))
                        return fail(w, n, "cluster \"%s\": %s is not supported", name, unsupported[i]);

        r = file_or_data(w, cluster, "certificate-authority", &c->ca_file, &ca);
        if (r < 0)
                return r;
        if (ca && !(c->ca_pem = strndup((const char *) ca->data, ca->len)))
                return -ENOMEM;
        return 0;
}

static int parse_user(Walk *w, const yaml_node_t *user, const char *name, KubeConnection *c) {
        _cleanup_secbuf_ SecBuf *cert = NULL;
        const yaml_node_t *n;
        const char *s;
        int r;

        if ((n = member_key(w, user, "exec")))
                return fail(w, n,
                            "user \"%s\": exec credential plugins are not supported (secretsyncd runs no programs "
                            "to get credentials); use a token, a tokenFile or a client certificate",
                            name);
        if ((n = member_key(w, user, "auth-provider")))
                return fail(w, n, "user \"%s\": auth-provider is not supported; use a token, a tokenFile or a client "
                                  "certificate", name);
        if ((n = member_key(w, user, "username")) || (n = member_key(w, user, "password")))
                return fail(w, n, "user \"%s\": basic authentication is not supported by Kubernetes; use a token or a "
                                  "client certificate", name);
        if ((n = member_key(w, user, "as")))
                return fail(w, n, "user \"%s\": impersonation (as) is not supported", name);

        r = file_or_data(w, user, "client-certificate", &c->cert_file, &cert);
        if (r < 0)
                return r;
        if (cert && !(c->cert_pem = strndup((const char *) cert->data, cert->len)))
                return -ENOMEM;
        r = file_or_data(w, user, "client-key", &c->key_file, &c->key_pem);
        if (r < 0)
                return r;
        if (!!(c->cert_file || c->cert_pem) != !!(c->key_file || c->key_pem))
                return fail(w, user, "user \"%s\": a client certificate needs both its certificate and its key", name);

        const char *token = member_string(w, user, "token");
        n = member(w, user, "tokenFile");
        if (token && (s = scalar(n)))
                return fail(w, n, "user \"%s\": token and tokenFile are both set; keep one", name);
        if (token && !(c->token = secbuf_new_from(token, strlen(token))))
                return -ENOMEM;
        if ((s = scalar(n)) && take_path(w, s, &c->token_file) < 0)
                return -ENOMEM;
        return 0;
}

static int parse_document(Walk *w, KubeConnection *c) {
        yaml_node_t *root = yaml_document_get_root_node(w->doc), *n;
        const char *current, *s;
        int r = 0;

        if (!root || root->type != YAML_MAPPING_NODE)
                return fail(w, root, "not a kubeconfig (expected a mapping with clusters, contexts and users)");
        n = member(w, root, "current-context");
        current = scalar(n);
        if (!current || !*current)
                return fail(w, n ? n : root, "no current-context is set (kubectl config use-context NAME)");

        yaml_node_t *context = named(w, root, "contexts", "context", current, n, &r);
        if (!context)
                return r;
        n = member(w, context, "cluster");
        if (!(s = scalar(n)))
                return fail(w, context, "context \"%s\" names no cluster", current);
        yaml_node_t *cluster = named(w, root, "clusters", "cluster", s, n, &r);
        if (!cluster)
                return r;
        r = parse_cluster(w, cluster, s, c);
        if (r < 0)
                return r;

        /* A context without a user authenticates with the CA alone: an API server that allows
         * anonymous requests (tests) or answers 401, which names the problem then. */
        n = member(w, context, "user");
        if ((s = scalar(n))) {
                yaml_node_t *user = named(w, root, "users", "user", s, n, &r);
                if (!user)
                        return r;
                r = parse_user(w, user, s, c);
                if (r < 0)
                        return r;
        }
        if ((s = member_string(w, context, "namespace")) && !(c->namespace = strdup(s)))
                return -ENOMEM;
        return 0;
}

/* libyaml frees without wiping: tokens and keys must not stay behind in freed memory. */
static void wipe_document(yaml_document_t *doc) {
        for (yaml_node_t *n = doc->nodes.start; n < doc->nodes.top; n++)
                if (n->type == YAML_SCALAR_NODE)
                        explicit_bzero(n->data.scalar.value, n->data.scalar.length);
}

static void wipe_parser(yaml_parser_t *p) {
        if (p->buffer.start)
                explicit_bzero(p->buffer.start, (size_t) (p->buffer.end - p->buffer.start));
        if (p->raw_buffer.start)
                explicit_bzero(p->raw_buffer.start, (size_t) (p->raw_buffer.end - p->raw_buffer.start));
}

int kubeconfig_parse(const char *path, const char *text, size_t len, KubeConnection **ret, char **ret_error) {
        _cleanup_(kube_connection_freep) KubeConnection *c = calloc(1, sizeof(KubeConnection));
        _cleanup_free_ char *dir = NULL;
        yaml_parser_t parser;
        yaml_document_t doc;
        int r;

        if (!c || !(dir = strdup(path)))
                return error_set(ret_error, -ENOMEM, "out of memory");
        char *slash = strrchr(dir, '/');
        if (slash)
                *(slash == dir ? slash + 1 : slash) = '\0';
        else
                strcpy(dir, ".");
        if (asprintf(&c->source, "kubeconfig %s", path) < 0) {
                c->source = NULL;
                return error_set(ret_error, -ENOMEM, "out of memory");
        }

        if (!yaml_parser_initialize(&parser))
                return error_set(ret_error, -ENOMEM, "out of memory");
        yaml_parser_set_input_string(&parser, (const unsigned char *) text, len);
        if (!yaml_parser_load(&parser, &doc)) {
                r = error_set(ret_error, -EINVAL, "%s:%zu: not valid YAML: %s", path, parser.problem_mark.line + 1,
                              parser.problem ? parser.problem : "parse error");
                wipe_parser(&parser);
                yaml_parser_delete(&parser);
                return r;
        }
        Walk w = { .doc = &doc, .path = path, .dir = dir, .error = ret_error };
        r = parse_document(&w, c);
        if (r == -ENOMEM)
                error_set(ret_error, r, "out of memory");
        wipe_document(&doc);
        yaml_document_delete(&doc);
        wipe_parser(&parser);
        yaml_parser_delete(&parser);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(c);
        return 0;
}

int kubeconfig_load(const char *path, KubeConnection **ret, char **ret_error) {
        _cleanup_secbuf_ SecBuf *text = NULL;
        _cleanup_free_ char *why = NULL;
        int r;

        r = config_check_file_trust(path, &why);
        if (r < 0)
                return error_set(ret_error, r, "kubeconfig %s: %s", path, why ? why : strerror(-r));
        r = secbuf_read_file(path, KUBECONFIG_SIZE_MAX, false, &text);
        if (r == -EFBIG)
                return error_set(ret_error, r, "kubeconfig %s is larger than %u bytes", path, KUBECONFIG_SIZE_MAX);
        if (r < 0)
                return error_set(ret_error, r, "cannot read kubeconfig %s: %s", path, strerror(-r));
        return kubeconfig_parse(path, (const char *) text->data, text->len, ret, ret_error);
}

int kube_connection_in_cluster(const char *dir, KubeConnection **ret, char **ret_error) {
        _cleanup_(kube_connection_freep) KubeConnection *c = calloc(1, sizeof(KubeConnection));
        _cleanup_secbuf_ SecBuf *ns = NULL;
        const char *host = getenv("KUBERNETES_SERVICE_HOST"), *port = getenv("KUBERNETES_SERVICE_PORT");
        struct stat st;

        if (!c)
                return error_set(ret_error, -ENOMEM, "out of memory");
        if (!host || !*host)
                return error_set(ret_error, -ENXIO, "in-cluster: KUBERNETES_SERVICE_HOST is not set");
        if (!port || !*port)
                port = "443";
        if (strspn(port, "0123456789") != strlen(port) || strlen(port) > 5)
                return error_set(ret_error, -EINVAL, "in-cluster: KUBERNETES_SERVICE_PORT \"%s\" is not a port", port);
        bool v6 = strchr(host, ':') != NULL;
        if (asprintf(&c->server, "https://%s%s%s:%s", v6 ? "[" : "", host, v6 ? "]" : "", port) < 0 ||
            asprintf(&c->ca_file, "%s/ca.crt", dir) < 0 || asprintf(&c->token_file, "%s/token", dir) < 0 ||
            !(c->source = strdup("in-cluster service account"))) {
                c->server = c->ca_file = c->token_file = NULL;
                return error_set(ret_error, -ENOMEM, "out of memory");
        }
        if (stat(c->ca_file, &st) < 0 || stat(c->token_file, &st) < 0)
                return error_set(ret_error, -errno, "in-cluster: %s/ca.crt and token: %m (is a service account token mounted?)",
                                 dir);
        _cleanup_free_ char *ns_file = NULL;
        if (asprintf(&ns_file, "%s/namespace", dir) < 0)
                return error_set(ret_error, -ENOMEM, "out of memory");
        if (secbuf_read_file(ns_file, 256, true, &ns) >= 0 && ns->len > 0 &&
            !(c->namespace = strndup((const char *) ns->data, ns->len)))
                return error_set(ret_error, -ENOMEM, "out of memory");
        *ret = TAKE_PTR(c);
        return 0;
}

int kube_connection_resolve(const char *kubeconfig, KubeConnection **ret, char **ret_error) {
        if (kubeconfig)
                return kubeconfig_load(kubeconfig, ret, ret_error);
        const char *host = getenv("KUBERNETES_SERVICE_HOST");
        if (host && *host)
                return kube_connection_in_cluster(KUBE_SERVICE_ACCOUNT_DIR, ret, ret_error);
        const char *env = getenv("KUBECONFIG");
        if (env && *env) {
                /* kubectl merges a list of files; we read the first, and say so if there are more. */
                _cleanup_free_ char *first = strndup(env, strcspn(env, ":"));
                if (!first)
                        return error_set(ret_error, -ENOMEM, "out of memory");
                if (first[0] != '/')
                        return error_set(ret_error, -EINVAL, "KUBECONFIG=%s: the file name must be absolute", env);
                return kubeconfig_load(first, ret, ret_error);
        }
        return error_set(ret_error, -ENXIO,
                         "no Kubernetes API to talk to: set kubernetes.kubeconfig, or run where KUBERNETES_SERVICE_HOST "
                         "is set (in a pod), or set KUBECONFIG");
}
