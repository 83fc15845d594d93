/* SPDX-License-Identifier: MIT */
/* HashiCorp Vault (KV v1/v2). This file holds the provider's configuration: its settings are
 * validated and dumped now; reading from Vault is not in this build yet, and a fetch says
 * so plainly instead of pretending. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "stores/store-url.h"
#include "stores/store.h"

typedef enum VaultAuthMethod {
        VAULT_AUTH_TOKEN,
        VAULT_AUTH_APPROLE,
        VAULT_AUTH_KUBERNETES,
        VAULT_AUTH_JWT,
        VAULT_AUTH_CERT,
        _VAULT_AUTH_MAX,
} VaultAuthMethod;

static const char *const auth_names[_VAULT_AUTH_MAX] = {
        [VAULT_AUTH_TOKEN] = "token", [VAULT_AUTH_APPROLE] = "approle",
        [VAULT_AUTH_KUBERNETES] = "kubernetes", [VAULT_AUTH_JWT] = "jwt", [VAULT_AUTH_CERT] = "cert",
};

#define K8S_SA_TOKEN "/var/run/secrets/kubernetes.io/serviceaccount/token"

typedef struct VaultStore {
        Store base;
        char *server;
        char *mount;
        long long kv_version;
        char *namespace;
        char *ca_file;
        char *ca_path;
        VaultAuthMethod method;
        char *auth_mount;
        char *role;
        char *token_file;
        char *role_id;
        char *secret_id_file;
        char *cert_file;
        char *key_file;
        char *cert_name;
} VaultStore;

static int vault_parse_config(Store *s, ConfigParser *p, const config_setting_t *g) {
        static const char *const keys[] = { "type", "server", "mount", "kv_version", "namespace", "ca_file",
                                            "ca_path", "auth", NULL };
        /* settings each method takes, beyond `method` and `mount` */
        static const char *const method_keys[_VAULT_AUTH_MAX][5] = {
                [VAULT_AUTH_TOKEN] = { "token_file" },
                [VAULT_AUTH_APPROLE] = { "role_id", "secret_id_file" },
                [VAULT_AUTH_KUBERNETES] = { "role", "token_file" },
                [VAULT_AUTH_JWT] = { "role", "token_file" },
                [VAULT_AUTH_CERT] = { "cert_file", "key_file", "name" },
        };
        VaultStore *v = (VaultStore *) s;
        _cleanup_free_ char *method = NULL;

        v->kv_version = 2;
        config_check_keys(p, g, keys);
        if (config_get_string(p, g, "server", true, &v->server) > 0 && !store_url_valid(v->server))
                config_error(p, config_setting_get_member(g, "server"),
                             "store '%s': server \"%s\" must be an https:// URL (http:// only for a loopback address)",
                             s->name, v->server);
        if (config_get_string(p, g, "mount", false, &v->mount) <= 0 || !*v->mount) {
                free(v->mount);
                v->mount = strdup("secret");
        }
        while (v->mount && *v->mount && v->mount[strlen(v->mount) - 1] == '/')
                v->mount[strlen(v->mount) - 1] = 0;
        config_get_int(p, g, "kv_version", 1, 2, &v->kv_version);
        config_get_string(p, g, "namespace", false, &v->namespace);
        config_get_credential_file(p, g, "ca_file", false, &v->ca_file);
        config_get_string(p, g, "ca_path", false, &v->ca_path);

        const config_setting_t *a = config_setting_get_member(g, "auth");
        if (!a) {
                config_error(p, g, "store '%s': missing required setting 'auth'", s->name);
                return -EINVAL;
        }
        if (config_setting_type(a) != CONFIG_TYPE_GROUP) {
                config_error(p, a, "store '%s': 'auth' must be a group { method = ...; }", s->name);
                return -EINVAL;
        }
        if (config_get_string(p, a, "method", true, &method) <= 0)
                return -EINVAL;
        int m = -1;
        for (int i = 0; i < _VAULT_AUTH_MAX; i++)
                if (streq(auth_names[i], method))
                        m = i;
        if (m < 0) {
                config_error(p, config_setting_get_member(a, "method"),
                             "store '%s': auth method \"%s\" is not one of token, approle, kubernetes, jwt, cert",
                             s->name, method);
                return -EINVAL;
        }
        v->method = (VaultAuthMethod) m;
        const char *allowed[8] = { "method", "mount" };
        for (size_t i = 0; i < 5 && method_keys[m][i]; i++)
                allowed[2 + i] = method_keys[m][i];
        config_check_keys(p, a, allowed);

        if (v->method != VAULT_AUTH_TOKEN) {
                if (config_get_string(p, a, "mount", false, &v->auth_mount) <= 0 || !*v->auth_mount) {
                        free(v->auth_mount);
                        v->auth_mount = strdup(method);
                }
        } else if (config_setting_get_member(a, "mount"))
                config_error(p, config_setting_get_member(a, "mount"),
                             "store '%s': auth method token takes no 'mount'", s->name);

        switch (v->method) {
        case VAULT_AUTH_TOKEN:
                config_get_credential_file(p, a, "token_file", true, &v->token_file);
                break;
        case VAULT_AUTH_APPROLE:
                config_get_string(p, a, "role_id", true, &v->role_id);
                config_get_credential_file(p, a, "secret_id_file", true, &v->secret_id_file);
                break;
        case VAULT_AUTH_KUBERNETES:
                config_get_string(p, a, "role", true, &v->role);
                if (config_get_credential_file(p, a, "token_file", false, &v->token_file) == 0) {
                        v->token_file = strdup(K8S_SA_TOKEN);
                        config_check_credential_path(p, a, K8S_SA_TOKEN);
                }
                break;
        case VAULT_AUTH_JWT:
                config_get_string(p, a, "role", true, &v->role);
                config_get_credential_file(p, a, "token_file", true, &v->token_file);
                break;
        case VAULT_AUTH_CERT:
                config_get_credential_file(p, a, "cert_file", true, &v->cert_file);
                config_get_credential_file(p, a, "key_file", true, &v->key_file);
                config_get_string(p, a, "name", false, &v->cert_name);
                break;
        default:
                break;
        }
        return 0;
}

static void vault_dump_config(const Store *s, ConfigDump *d) {
        const VaultStore *v = (const VaultStore *) s;
        config_dump_string(d, "server", v->server);
        config_dump_string(d, "mount", v->mount);
        config_dump_int(d, "kv_version", v->kv_version);
        config_dump_string(d, "namespace", v->namespace ? v->namespace : "");
        if (v->ca_file)
                config_dump_string(d, "ca_file", v->ca_file);
        if (v->ca_path)
                config_dump_string(d, "ca_path", v->ca_path);
        config_dump_open(d, "auth");
        config_dump_string(d, "method", auth_names[v->method]);
        if (v->auth_mount)
                config_dump_string(d, "mount", v->auth_mount);
        if (v->role)
                config_dump_string(d, "role", v->role);
        if (v->token_file)
                config_dump_string(d, "token_file", v->token_file);
        if (v->role_id)
                config_dump_secret(d, "role_id", v->role_id);
        if (v->secret_id_file)
                config_dump_string(d, "secret_id_file", v->secret_id_file);
        if (v->cert_file)
                config_dump_string(d, "cert_file", v->cert_file);
        if (v->key_file)
                config_dump_string(d, "key_file", v->key_file);
        if (v->cert_name)
                config_dump_string(d, "name", v->cert_name);
        config_dump_close(d);
}

static int vault_fetch(Store *s, const RemoteRef *ref, store_fetch_cb cb, void *userdata) {
        return -EOPNOTSUPP;
}

static void vault_done(Store *s) {
        VaultStore *v = (VaultStore *) s;
        free(v->server);
        free(v->mount);
        free(v->namespace);
        free(v->ca_file);
        free(v->ca_path);
        free(v->auth_mount);
        free(v->role);
        free(v->token_file);
        erase_and_free(v->role_id);
        free(v->secret_id_file);
        free(v->cert_file);
        free(v->key_file);
        free(v->cert_name);
}

const StoreVTable store_vault_vtable = {
        .name = "vault",
        .object_size = sizeof(VaultStore),
        .parse_config = vault_parse_config,
        .dump_config = vault_dump_config,
        .fetch = vault_fetch,
        .done = vault_done,
};
