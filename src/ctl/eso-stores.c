/* SPDX-License-Identifier: MIT */
/* convert-eso: SecretStore and ClusterSecretStore providers as stores. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "ctl/eso-walk.h"
#include "util/base64.h"
#include "util/secbuf.h"

/* ------------------------------------------------------------ providers ---- */

static void conv_aws(Conv *c, const Object *o, const Field *p, FILE *b) {
        const char *service = eso_member_text(c, o, p, "service", true);
        if (service && !streq(service, "SecretsManager")) {
                Field f = eso_field(p, "service");
                eso_fail(c, o, &f, "\"%s\": only SecretsManager has a store type (aws)", service);
        }
        eso_put_str(b, 2, "type", "aws");
        const char *region = eso_member_text(c, o, p, "region", true);
        if (region)
                eso_put_str(b, 2, "region", region);
        const char *role = eso_member_text(c, o, p, "role", false);
        const char *external_id = eso_member_text(c, o, p, "externalID", false);

        fputs("    auth = {\n", b);
        Field auth = eso_field(p, "auth");
        Field jwt = eso_field(&auth, "jwt"), secret_ref = eso_field(&auth, "secretRef");
        if (jwt.v && secret_ref.v)
                eso_fail(c, o, &auth, "jwt and secretRef: give one");
        if (eso_is_map(c, o, &jwt)) {
                Field sa = eso_field(&jwt, "serviceAccountRef");
                eso_put_str(b, 3, "method", "web-identity");
                const char *sa_ns = NULL, *sa_name = NULL;
                _cleanup_free_ char *sab_text = NULL; /* freed after sab is closed */
                _cleanup_fclose_ FILE *sab = NULL;
                size_t sab_size = 0;
                sab = open_memstream(&sab_text, &sab_size);
                if (!sab)
                        return;
                if (eso_is_map(c, o, &sa))
                        eso_put_service_account(c, o, &sa, sab, 3, &sa_ns, &sa_name);
                else
                        eso_fail(c, o, &sa, "is required");
                fflush(sab);
                eso_leftovers(c, o, &jwt);
                if (sa_name) {
                        Object *acct = eso_find_object(c, OBJ_SERVICE_ACCOUNT, sa_ns, sa_name);
                        YamlTree *ann = acct ? yaml_tree_get(yaml_tree_get(acct->root, "metadata", NULL),
                                                             "annotations", NULL)
                                             : NULL;
                        const char *arn = yaml_tree_get_text(ann, "eks.amazonaws.com/role-arn");
                        if (!acct)
                                eso_fail(c, o, &sa,
                                     "the role to assume is the eks.amazonaws.com/role-arn annotation of "
                                     "ServiceAccount %s/%s, which is not among the inputs: pass its manifest too "
                                     "(kubectl get serviceaccount -n %s %s -o yaml)",
                                     sa_ns, sa_name, sa_ns, sa_name);
                        else if (!arn)
                                eso_fail(c, o, &sa,
                                     "ServiceAccount %s/%s (%s:%u) has no eks.amazonaws.com/role-arn annotation "
                                     "naming the role to assume",
                                     sa_ns, sa_name, acct->file, acct->line);
                        else {
                                eso_put_comment(b, 3, "the eks.amazonaws.com/role-arn of ServiceAccount %s/%s (%s:%u)",
                                            sa_ns, sa_name, acct->file, acct->line);
                                eso_put_str(b, 3, "role_arn", arn);
                        }
                }
                fputs(sab_text, b);
        } else if (eso_is_map(c, o, &secret_ref)) {
                eso_put_str(b, 3, "method", "static");
                Field id = eso_field(&secret_ref, "accessKeyIDSecretRef");
                Field key = eso_field(&secret_ref, "secretAccessKeySecretRef");
                Field token = eso_field(&secret_ref, "sessionTokenSecretRef");
                eso_put_secret_ref(c, o, &id, b, 3, "access_key_id_file", "the access key id");
                eso_put_secret_ref(c, o, &key, b, 3, "secret_access_key_file", "the secret access key");
                if (token.v)
                        eso_put_secret_ref(c, o, &token, b, 3, "session_token_file", "the session token");
                eso_leftovers(c, o, &secret_ref);
        } else {
                eso_put_comment(b, 3, "ESO used its own pod's credentials; on a node, the default chain: the");
                eso_put_comment(b, 3, "environment, ~/.aws files, web identity, then the instance's role (IMDS)");
                eso_put_str(b, 3, "method", "default");
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
                Field f = eso_field(p, "externalID");
                eso_fail(c, o, &f, "needs role");
        }
        fputs("    };\n", b);
        if (eso_is_map(c, o, &auth))
                eso_leftovers(c, o, &auth);
}

static void conv_vault_auth(Conv *c, const Object *o, const Field *auth, FILE *b) {
        static const char *const methods[] = { "tokenSecretRef", "appRole", "kubernetes", "jwt", "cert" };
        Field m = { 0 };
        unsigned count = 0;
        for (size_t i = 0; i < ELEMENTSOF(methods); i++) {
                Field f = eso_field(auth, methods[i]);
                if (f.v) {
                        m = f;
                        count++;
                }
        }
        bool others = false;
        for (size_t i = 0; auth->v && i < auth->v->n; i++)
                others |= !auth->v->used[i];
        eso_leftovers(c, o, auth); /* ldap, userPass, iam, gcp, ... */
        if (count != 1) {
                if (count > 1)
                        eso_fail(c, o, auth, "more than one method: give one");
                else if (others)
                        ; /* said above */
                else if (auth->v)
                        eso_fail(c, o, auth, "no method secretsyncd can use: tokenSecretRef, appRole, kubernetes, jwt "
                                         "or cert");
                else
                        eso_fail(c, o, auth, "is required");
                return;
        }
        if (!eso_is_map(c, o, &m))
                return;
        const char *name = m.path + strlen(auth->path) + 1;
        if (streq(name, "tokenSecretRef")) {
                eso_put_str(b, 3, "method", "token");
                eso_put_secret_ref(c, o, &m, b, 3, "token_file", "the Vault token");
                return;
        }
        if (streq(name, "cert")) {
                eso_put_str(b, 3, "method", "cert");
                Field cert = eso_field(&m, "clientCert"), key = eso_field(&m, "secretRef");
                eso_put_secret_ref(c, o, &cert, b, 3, "cert_file", "the client certificate");
                eso_put_secret_ref(c, o, &key, b, 3, "key_file", "the client certificate's key");
                eso_leftovers(c, o, &m);
                return;
        }
        if (streq(name, "appRole")) {
                eso_put_str(b, 3, "method", "approle");
                const char *mount = eso_member_text(c, o, &m, "path", false);
                eso_put_str(b, 3, "mount", mount ? mount : "approle");
                const char *role_id = eso_member_text(c, o, &m, "roleId", false);
                Field role_ref = eso_field(&m, "roleRef");
                if (role_ref.v)
                        eso_fail(c, o, &role_ref, "a role id kept in a Secret has no equivalent: give roleId");
                else if (!role_id) {
                        Field f = eso_field(&m, "roleId");
                        eso_fail(c, o, &f, "is required");
                }
                if (role_id)
                        eso_put_str(b, 3, "role_id", role_id);
                Field secret = eso_field(&m, "secretRef");
                eso_put_secret_ref(c, o, &secret, b, 3, "secret_id_file", "the AppRole secret id");
                eso_leftovers(c, o, &m);
                return;
        }
        /* kubernetes and jwt: a role, and a token from a service account or a Secret */
        bool kube = streq(name, "kubernetes");
        eso_put_str(b, 3, "method", kube ? "kubernetes" : "jwt");
        const char *mount = eso_member_text(c, o, &m, kube ? "mountPath" : "path", false);
        eso_put_str(b, 3, "mount", mount ? mount : kube ? "kubernetes" : "jwt");
        const char *role = eso_member_text(c, o, &m, "role", !kube ? false : true);
        if (role)
                eso_put_str(b, 3, "role", role);
        Field sa = eso_field(&m, "serviceAccountRef"), secret = eso_field(&m, "secretRef");
        if (!kube) {
                Field kt = eso_field(&m, "kubernetesServiceAccountToken");
                if (eso_is_map(c, o, &kt)) {
                        sa = eso_field(&kt, "serviceAccountRef");
                        Field aud = eso_field(&kt, "audiences");
                        if (aud.v)
                                eso_fail(c, o, &aud, "write the audiences in serviceAccountRef.audiences");
                        eso_leftovers(c, o, &kt); /* expirationSeconds */
                }
        }
        if (sa.v && secret.v)
                eso_fail(c, o, &m, "a service account and a secretRef: give one");
        else if (eso_is_map(c, o, &sa))
                eso_put_service_account(c, o, &sa, b, 3, NULL, NULL);
        else if (secret.v)
                eso_put_secret_ref(c, o, &secret, b, 3, "token_file", "the JWT");
        else
                eso_fail(c, o, &m,
                     "no serviceAccountRef or secretRef: ESO would log in with its own pod's token, which a node "
                     "does not have");
        eso_leftovers(c, o, &m);
}

static void conv_vault(Conv *c, const Object *o, const Field *p, FILE *b) {
        eso_put_str(b, 2, "type", "vault");
        const char *server = eso_member_text(c, o, p, "server", true);
        if (server)
                eso_put_str(b, 2, "server", server);
        Field path = eso_field(p, "path");
        const char *mount = eso_text(c, o, &path, false);
        if (mount)
                eso_put_str(b, 2, "mount", mount);
        else
                eso_fail(c, o, &path, "is needed: secretsyncd reads keys relative to the KV engine's mount");
        Field version = eso_field(p, "version");
        const char *v = eso_text(c, o, &version, false);
        if (v && !streq(v, "v1") && !streq(v, "v2"))
                eso_fail(c, o, &version, "\"%s\": v1 or v2", v);
        eso_put_indent(b, 2);
        fprintf(b, "kv_version = %d;\n", v && streq(v, "v1") ? 1 : 2);
        const char *ns = eso_member_text(c, o, p, "namespace", false);
        if (ns)
                eso_put_str(b, 2, "namespace", ns);

        Field bundle = eso_field(p, "caBundle"), provider = eso_field(p, "caProvider");
        const char *ca = eso_text(c, o, &bundle, false);
        if (ca && provider.v)
                eso_fail(c, o, &provider, "caBundle and caProvider: give one");
        else if (ca) {
                _cleanup_(secbuf_freep) SecBuf *pem = NULL;
                if (base64_decode(ca, strlen(ca), true, &pem) < 0 || memchr(pem->data, 0, pem->len))
                        eso_fail(c, o, &bundle, "is not base64 of PEM text");
                else {
                        _cleanup_free_ char *s = strndup((const char *) pem->data, pem->len);
                        if (s) {
                                eso_put_comment(b, 2, "caBundle, decoded");
                                eso_put_str(b, 2, "ca_pem", s);
                        }
                }
        } else if (eso_is_map(c, o, &provider)) {
                const char *type = eso_member_text(c, o, &provider, "type", true);
                if (type && !streq(type, "Secret") && !streq(type, "ConfigMap")) {
                        Field t = eso_field(&provider, "type");
                        eso_fail(c, o, &t, "\"%s\": Secret or ConfigMap", type);
                }
                /* name, key and namespace are read there; type was read above */
                if (type && streq(type, "ConfigMap"))
                        eso_put_configmap_ref(c, o, &provider, b, 2, "ca_file", "the CA");
                else
                        eso_put_secret_ref(c, o, &provider, b, 2, "ca_file", "the CA");
        }

        fputs("    auth = {\n", b);
        Field auth = eso_field(p, "auth");
        if (auth.v && !eso_is_map(c, o, &auth))
                auth.v = NULL;
        conv_vault_auth(c, o, &auth, b);
        fputs("    };\n", b);
}

static void conv_azure(Conv *c, const Object *o, const Field *p, FILE *b) {
        eso_put_str(b, 2, "type", "azure");
        const char *url = eso_member_text(c, o, p, "vaultUrl", true);
        if (url)
                eso_put_str(b, 2, "vault_url", url);
        Field env = eso_field(p, "environmentType");
        const char *e = eso_text(c, o, &env, false);
        if (e && streq(e, "USGovernmentCloud"))
                eso_put_str(b, 2, "authority", "https://login.microsoftonline.us");
        else if (e && streq(e, "ChinaCloud"))
                eso_put_str(b, 2, "authority", "https://login.chinacloudapi.cn");
        else if (e && !streq(e, "PublicCloud"))
                eso_fail(c, o, &env, "\"%s\": PublicCloud, USGovernmentCloud or ChinaCloud", e);

        Field type = eso_field(p, "authType");
        const char *t = eso_text(c, o, &type, false);
        const char *tenant = eso_member_text(c, o, p, "tenantId", false);
        fputs("    auth = {\n", b);
        if (!t || streq(t, "ServicePrincipal")) {
                Field ref = eso_field(p, "authSecretRef");
                Field cert = eso_field(&ref, "clientCertificate");
                eso_put_str(b, 3, "method", cert.v ? "client-certificate" : "client-secret");
                if (tenant)
                        eso_put_str(b, 3, "tenant_id", tenant);
                else {
                        Field f = eso_field(p, "tenantId");
                        eso_fail(c, o, &f, "is required with ServicePrincipal");
                }
                if (eso_is_map(c, o, &ref)) {
                        Field id = eso_field(&ref, "clientId");
                        eso_put_secret_ref(c, o, &id, b, 3, "client_id_file", "the client id");
                        if (cert.v)
                                eso_put_secret_ref(c, o, &cert, b, 3, "certificate_file",
                                               "the client certificate and its key (PEM)");
                        else {
                                Field secret = eso_field(&ref, "clientSecret");
                                eso_put_secret_ref(c, o, &secret, b, 3, "client_secret_file", "the client secret");
                        }
                        eso_leftovers(c, o, &ref);
                } else
                        eso_fail(c, o, &ref, "is required with ServicePrincipal");
        } else if (streq(t, "ManagedIdentity")) {
                eso_put_str(b, 3, "method", "managed-identity");
                const char *id = eso_member_text(c, o, p, "identityId", false);
                if (id)
                        eso_put_str(b, 3, "client_id", id);
        } else
                eso_fail(c, o, &type, "\"%s\": ServicePrincipal or ManagedIdentity (workload identity needs a pod)", t);
        fputs("    };\n", b);
}

static void conv_gcp(Conv *c, const Object *o, const Field *p, FILE *b) {
        eso_put_str(b, 2, "type", "gcp");
        const char *project = eso_member_text(c, o, p, "projectID", true);
        if (project)
                eso_put_str(b, 2, "project", project);
        const char *location = eso_member_text(c, o, p, "location", false);
        if (location)
                eso_put_str(b, 2, "location", location);
        fputs("    auth = {\n", b);
        Field auth = eso_field(p, "auth");
        Field secret = eso_field(&auth, "secretRef");
        if (eso_is_map(c, o, &secret)) {
                eso_put_str(b, 3, "method", "service-account-key");
                Field key = eso_field(&secret, "secretAccessKeySecretRef");
                eso_put_secret_ref(c, o, &key, b, 3, "key_file", "the service account key (JSON)");
                eso_leftovers(c, o, &secret);
        } else {
                eso_put_comment(b, 3, "ESO used its own pod's credentials; on a node: GOOGLE_APPLICATION_CREDENTIALS,");
                eso_put_comment(b, 3, "then the metadata server");
                eso_put_str(b, 3, "method", "default");
        }
        if (eso_is_map(c, o, &auth))
                eso_leftovers(c, o, &auth); /* workloadIdentity, workloadIdentityFederation */
        fputs("    };\n", b);
}

static void conv_fake(Conv *c, const Object *o, const Field *p, FILE *b) {
        eso_put_str(b, 2, "type", "fake");
        Field data = eso_field(p, "data");
        fputs("    data = (", b);
        const char *sep = "\n";
        if (eso_is_seq(c, o, &data))
                for (size_t i = 0; i < data.v->n; i++) {
                        Field d = eso_item(&data, i);
                        if (!eso_is_map(c, o, &d))
                                continue;
                        const char *key = eso_member_text(c, o, &d, "key", true);
                        const char *value = eso_member_text(c, o, &d, "value", true);
                        eso_leftovers(c, o, &d); /* version, valueMap */
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

void eso_conv_store(Conv *c, const Object *o, FILE *out) {
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
        fprintf(b, "%s = {\n", o->conf_name);
        if (eso_is_map(c, o, &spec)) {
                Field p = eso_field(&spec, "provider");
                if (eso_is_map(c, o, &p)) {
                        unsigned found = 0;
                        for (size_t i = 0; i < p.v->n; i++)
                                for (size_t j = 0; j < ELEMENTSOF(providers); j++)
                                        if (streq(p.v->keys[i], providers[j].name)) {
                                                Field pf = eso_field(&p, providers[j].name);
                                                if (found++ == 0 && eso_is_map(c, o, &pf)) {
                                                        providers[j].convert(c, o, &pf, b);
                                                        eso_leftovers(c, o, &pf);
                                                }
                                        }
                        for (size_t i = 0; i < p.v->n; i++)
                                if (!p.v->used[i]) {
                                        Field pf = eso_field(&p, p.v->keys[i]);
                                        eso_fail(c, o, &pf, "this provider has no store type in secretsyncd (aws, "
                                                        "vault, azurekv, gcpsm, fake)");
                                }
                        if (found == 0 && p.v->n == 0)
                                eso_fail(c, o, &p, "names no provider");
                        else if (found > 1)
                                eso_fail(c, o, &p, "more than one provider");
                } else
                        eso_fail(c, o, &p, "is required");
                eso_leftovers(c, o, &spec);
        } else
                eso_fail(c, o, &spec, "is required");
        eso_put_indent(b, 1);
        fputs("};\n", b);
        eso_block_end(c, out, b, &buf);
}
