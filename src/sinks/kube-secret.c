/* SPDX-License-Identifier: MIT */
#include "sinks/kube-secret.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/base64.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/json.h"
#include "util/template.h"

bool kube_secret_key_valid(const char *key) {
        size_t n = strlen(key);
        if (n == 0 || n > 253 || streq(key, ".") || streq(key, ".."))
                return false;
        return strspn(key, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._") == n;
}

static bool has(const SecretData *d, const char *key) {
        return secret_data_get(d, key) != NULL;
}

static int json_valid(const SecBuf *v) {
        json_object *o = NULL;
        int r = json_parse_strict(v->data, v->len, &o);
        json_put_wiped(o);
        return r;
}

int kube_secret_check(const KubeTarget *t, const SecretData *d, char **ret_error) {
        size_t total = 0;

        for (size_t i = 0; i < d->n; i++) {
                if (!kube_secret_key_valid(d->entries[i].key))
                        return error_set(ret_error, -EINVAL,
                                         "key \"%s\" cannot be a Kubernetes Secret key (at most 253 of [-._a-zA-Z0-9])",
                                         d->entries[i].key);
                total += d->entries[i].value->len;
        }
        if (total > KUBE_SECRET_DATA_MAX)
                return error_set(ret_error, -EFBIG, "the data is %zu bytes, over Kubernetes' limit of %u for a Secret",
                                 total, KUBE_SECRET_DATA_MAX);
        if (t->creation_policy == CREATION_MERGE)
                return 0; /* the type is the existing Secret's */

        const char *type = t->type ? t->type : "Opaque";
        if (streq(type, "kubernetes.io/tls") && !(has(d, "tls.crt") && has(d, "tls.key")))
                return error_set(ret_error, -EINVAL, "a Secret of type kubernetes.io/tls needs keys tls.crt and tls.key");
        if (streq(type, "kubernetes.io/ssh-auth") && !has(d, "ssh-privatekey"))
                return error_set(ret_error, -EINVAL, "a Secret of type kubernetes.io/ssh-auth needs key ssh-privatekey");
        if (streq(type, "kubernetes.io/basic-auth") && !has(d, "username") && !has(d, "password"))
                return error_set(ret_error, -EINVAL,
                                 "a Secret of type kubernetes.io/basic-auth needs key username or password");
        static const char *const json_types[][2] = { { "kubernetes.io/dockerconfigjson", ".dockerconfigjson" },
                                                     { "kubernetes.io/dockercfg", ".dockercfg" } };
        for (size_t i = 0; i < ELEMENTSOF(json_types); i++) {
                if (!streq(type, json_types[i][0]))
                        continue;
                const SecBuf *v = secret_data_get(d, json_types[i][1]);
                if (!v)
                        return error_set(ret_error, -EINVAL, "a Secret of type %s needs key %s", type, json_types[i][1]);
                if (json_valid(v) < 0)
                        return error_set(ret_error, -EINVAL, "key %s of a Secret of type %s must hold JSON",
                                         json_types[i][1], type);
        }
        if (streq(type, "kubernetes.io/service-account-token"))
                return error_set(ret_error, -EINVAL,
                                 "type kubernetes.io/service-account-token is for tokens the API server makes, not for "
                                 "synced secrets");
        return 0;
}

int kube_secret_render(const KubeTarget *t, const SecretData *d, SecretData **ret, char **ret_error) {
        _cleanup_secret_data_ SecretData *out = secret_data_new();
        size_t total = 0; /* the bytes of the values so far */
        int r;

        if (!out)
                return error_set(ret_error, -ENOMEM, "out of memory");
        for (size_t i = 0; t->merge_policy == MERGE_POLICY_MERGE && i < d->n; i++) {
                SecBuf *v = secbuf_dup(d->entries[i].value);
                total += d->entries[i].value->len;
                r = v ? secret_data_set(out, d->entries[i].key, v) : -ENOMEM;
                if (r < 0)
                        return error_set(ret_error, r, "out of memory");
        }
        for (size_t i = 0; i < t->n_templates; i++) {
                _cleanup_free_ char *m = NULL;
                SecBuf *v = NULL;
                r = template_render(t->templates[i].template_text, d, &v, &m);
                if (r < 0)
                        return error_set(ret_error, r, "template key \"%s\": %s", t->templates[i].key,
                                         m ?: strerror(-r));
                const SecBuf *replaced = secret_data_get(out, t->templates[i].key);
                total = total - (replaced ? replaced->len : 0) + v->len;
                r = secret_data_set(out, t->templates[i].key, v);
                if (r < 0)
                        return error_set(ret_error, r, "out of memory");
                /* Stop before rendering the rest: each template may make up to 16 MiB. */
                if (total > KUBE_SECRET_DATA_MAX)
                        return error_set(ret_error, -EFBIG,
                                         "the data is over Kubernetes' limit of %u bytes for a Secret once template "
                                         "key \"%s\" is rendered",
                                         KUBE_SECRET_DATA_MAX, t->templates[i].key);
        }
        *ret = TAKE_PTR(out);
        return 0;
}

/* {"key":"base64",...}, sorted (SecretData keeps keys sorted). */
static int append_data(SecBuf *b, const SecretData *d) {
        int r = secbuf_append_char(b, '{');
        for (size_t i = 0; r >= 0 && i < d->n; i++) {
                if (i > 0)
                        r = secbuf_append_char(b, ',');
                if (r >= 0)
                        r = json_append_string(b, d->entries[i].key, strlen(d->entries[i].key));
                if (r >= 0)
                        r = secbuf_append(b, ":\"", 2);
                if (r >= 0)
                        r = base64_encode_append(b, d->entries[i].value->data, d->entries[i].value->len);
                if (r >= 0)
                        r = secbuf_append_char(b, '"');
        }
        return r >= 0 ? secbuf_append_char(b, '}') : r;
}

int kube_secret_data_hash(const SecretData *d, char ret[KUBE_DATA_HASH_LEN + 1]) {
        _cleanup_secbuf_ SecBuf *b = secbuf_new(256);
        unsigned char md[32];
        unsigned n = 0;

        if (!b || append_data(b, d) < 0)
                return -ENOMEM;
        if (!EVP_Digest(b->data, b->len, md, &n, EVP_sha256(), NULL) || n != sizeof(md))
                return -EIO;
        for (size_t i = 0; i < sizeof(md); i++)
                snprintf(ret + 2 * i, 3, "%02x", md[i]);
        return 0;
}

static int append_pair(SecBuf *b, bool *first, const char *key, size_t key_len, const char *value) {
        int r = *first ? 0 : secbuf_append_char(b, ',');
        *first = false;
        if (r >= 0)
                r = json_append_string(b, key, key_len);
        if (r >= 0)
                r = secbuf_append_char(b, ':');
        return r >= 0 ? json_append_string(b, value, strlen(value)) : r;
}

/* "key=value" entries of the configuration. */
static int append_pairs(SecBuf *b, bool *first, char *const *l) {
        int r = 0;
        for (size_t i = 0; r >= 0 && l && l[i]; i++) {
                const char *eq = strchr(l[i], '=');
                if (eq)
                        r = append_pair(b, first, l[i], (size_t) (eq - l[i]), eq + 1);
        }
        return r;
}

#define APPEND(s) (r >= 0 ? (r = secbuf_append_str(b, s)) : r)
#define STRING(s) (r >= 0 ? (r = json_append_string(b, s, strlen(s))) : r)

int kube_secret_apply_body(const KubeTarget *t, const char *secret_name, const SecretData *d, const char *data_hash,
                           SecBuf **ret) {
        _cleanup_secbuf_ SecBuf *b = secbuf_new(1024);
        bool merge = t->creation_policy == CREATION_MERGE, first;
        int r = 0;

        if (!b)
                return -ENOMEM;
        APPEND("{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":");
        STRING(t->name);
        APPEND(",\"namespace\":");
        STRING(t->namespace);
        if (!merge) {
                APPEND(",\"labels\":{");
                first = true;
                if (r >= 0)
                        r = append_pair(b, &first, KUBE_MANAGED_BY_LABEL, strlen(KUBE_MANAGED_BY_LABEL),
                                        KUBE_MANAGED_BY_VALUE);
                if (r >= 0)
                        r = append_pairs(b, &first, t->labels);
                APPEND("}");
        }
        APPEND(",\"annotations\":{");
        first = true;
        if (r >= 0)
                r = append_pair(b, &first, KUBE_SECRET_ANNOTATION, strlen(KUBE_SECRET_ANNOTATION), secret_name);
        if (r >= 0)
                r = append_pair(b, &first, KUBE_DATA_HASH_ANNOTATION, strlen(KUBE_DATA_HASH_ANNOTATION), data_hash);
        if (r >= 0 && !merge)
                r = append_pairs(b, &first, t->annotations);
        APPEND("}}");
        if (!merge) {
                APPEND(",\"type\":");
                STRING(t->type ? t->type : "Opaque");
        }
        APPEND(",\"data\":");
        if (r >= 0)
                r = append_data(b, d);
        APPEND("}");
        if (r < 0)
                return r;
        *ret = TAKE_PTR(b);
        return 0;
}
