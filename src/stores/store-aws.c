/* SPDX-License-Identifier: MIT */
/* AWS Secrets Manager. This file holds the provider's configuration: its settings are
 * validated and dumped now; reading from AWS is not in this build yet, and a fetch says so
 * plainly instead of pretending. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "stores/store-url.h"
#include "stores/store.h"

typedef enum AwsAuthMethod {
        AWS_AUTH_DEFAULT,
        AWS_AUTH_STATIC,
        AWS_AUTH_SHARED_FILE,
        AWS_AUTH_WEB_IDENTITY,
        AWS_AUTH_IMDS,
        AWS_AUTH_CONTAINER,
        _AWS_AUTH_MAX,
} AwsAuthMethod;

static const char *const auth_names[_AWS_AUTH_MAX] = {
        [AWS_AUTH_DEFAULT] = "default", [AWS_AUTH_STATIC] = "static",
        [AWS_AUTH_SHARED_FILE] = "shared-file", [AWS_AUTH_WEB_IDENTITY] = "web-identity",
        [AWS_AUTH_IMDS] = "imds", [AWS_AUTH_CONTAINER] = "container",
};

typedef struct AwsStore {
        Store base;
        char *region;
        char *endpoint;
        char *sts_endpoint;
        char *ca_file;
        AwsAuthMethod method;
        char *access_key_id;
        char *secret_access_key_file;
        char *credentials_file;
        char *profile;
        char *role_arn;
        char *token_file;
        bool assume_role;
        char *assume_role_arn;
        char *external_id;
        char *session_name;
} AwsStore;

static bool region_valid(const char *r) {
        size_t n = strlen(r);
        if (n < 3 || n > 32)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((r[i] >= 'a' && r[i] <= 'z') || (r[i] >= '0' && r[i] <= '9') || r[i] == '-'))
                        return false;
        return true;
}

static void get_url(ConfigParser *p, Store *s, const config_setting_t *g, const char *key, char **ret) {
        if (config_get_string(p, g, key, false, ret) > 0 && !store_url_valid(*ret))
                config_error(p, config_setting_get_member(g, key),
                             "store '%s': %s \"%s\" must be an https:// URL (http:// only for a loopback address)",
                             s->name, key, *ret);
}

static int aws_parse_config(Store *s, ConfigParser *p, const config_setting_t *g) {
        static const char *const keys[] = { "type", "region", "endpoint", "sts_endpoint", "ca_file", "auth", NULL };
        static const char *const method_keys[_AWS_AUTH_MAX][4] = {
                [AWS_AUTH_STATIC] = { "access_key_id", "secret_access_key_file" },
                [AWS_AUTH_SHARED_FILE] = { "credentials_file", "profile" },
                [AWS_AUTH_WEB_IDENTITY] = { "role_arn", "token_file" },
        };
        static const char *const ar_keys[] = { "role_arn", "external_id", "session_name", NULL };
        AwsStore *a = (AwsStore *) s;
        _cleanup_free_ char *method = NULL;

        config_check_keys(p, g, keys);
        if (config_get_string(p, g, "region", true, &a->region) > 0 && !region_valid(a->region))
                config_error(p, config_setting_get_member(g, "region"),
                             "store '%s': region \"%s\" is not an AWS region name like \"us-east-1\"", s->name,
                             a->region);
        get_url(p, s, g, "endpoint", &a->endpoint);
        get_url(p, s, g, "sts_endpoint", &a->sts_endpoint);
        config_get_credential_file(p, g, "ca_file", false, &a->ca_file);

        const config_setting_t *au = config_setting_get_member(g, "auth");
        if (!au)
                return 0; /* method "default" */
        if (config_setting_type(au) != CONFIG_TYPE_GROUP) {
                config_error(p, au, "store '%s': 'auth' must be a group { method = ...; }", s->name);
                return -EINVAL;
        }
        if (config_get_string(p, au, "method", false, &method) > 0) {
                int m = -1;
                for (int i = 0; i < _AWS_AUTH_MAX; i++)
                        if (streq(auth_names[i], method))
                                m = i;
                if (m < 0) {
                        config_error(p, config_setting_get_member(au, "method"),
                                     "store '%s': auth method \"%s\" is not one of default, static, shared-file, "
                                     "web-identity, imds, container",
                                     s->name, method);
                        return -EINVAL;
                }
                a->method = (AwsAuthMethod) m;
        }
        const char *allowed[8] = { "method", "assume_role" };
        for (size_t i = 0; i < 4 && method_keys[a->method][i]; i++)
                allowed[2 + i] = method_keys[a->method][i];
        config_check_keys(p, au, allowed);

        switch (a->method) {
        case AWS_AUTH_STATIC:
                config_get_string(p, au, "access_key_id", true, &a->access_key_id);
                config_get_credential_file(p, au, "secret_access_key_file", true, &a->secret_access_key_file);
                break;
        case AWS_AUTH_SHARED_FILE:
                if (config_get_credential_file(p, au, "credentials_file", false, &a->credentials_file) == 0) {
                        a->credentials_file = strdup("/root/.aws/credentials");
                        config_check_credential_path(p, au, "/root/.aws/credentials");
                }
                if (config_get_string(p, au, "profile", false, &a->profile) <= 0 || !*a->profile) {
                        free(a->profile);
                        a->profile = strdup("default");
                }
                break;
        case AWS_AUTH_WEB_IDENTITY:
                config_get_string(p, au, "role_arn", true, &a->role_arn);
                config_get_credential_file(p, au, "token_file", true, &a->token_file);
                break;
        default:
                break;
        }

        const config_setting_t *ar = config_setting_get_member(au, "assume_role");
        if (ar) {
                if (config_setting_type(ar) != CONFIG_TYPE_GROUP) {
                        config_error(p, ar, "store '%s': 'assume_role' must be a group { role_arn = ...; }", s->name);
                        return -EINVAL;
                }
                a->assume_role = true;
                config_check_keys(p, ar, ar_keys);
                if (config_get_string(p, ar, "role_arn", true, &a->assume_role_arn) > 0 &&
                    strncmp(a->assume_role_arn, "arn:", 4) != 0)
                        config_error(p, config_setting_get_member(ar, "role_arn"),
                                     "store '%s': role_arn \"%s\" is not an ARN", s->name, a->assume_role_arn);
                config_get_string(p, ar, "external_id", false, &a->external_id);
                if (config_get_string(p, ar, "session_name", false, &a->session_name) <= 0 || !*a->session_name) {
                        free(a->session_name);
                        a->session_name = strdup("secretsyncd");
                }
        }
        if (a->role_arn && strncmp(a->role_arn, "arn:", 4) != 0)
                config_error(p, config_setting_get_member(au, "role_arn"), "store '%s': role_arn \"%s\" is not an ARN",
                             s->name, a->role_arn);
        return 0;
}

static void aws_dump_config(const Store *s, ConfigDump *d) {
        const AwsStore *a = (const AwsStore *) s;
        config_dump_string(d, "region", a->region);
        if (a->endpoint)
                config_dump_string(d, "endpoint", a->endpoint);
        if (a->sts_endpoint)
                config_dump_string(d, "sts_endpoint", a->sts_endpoint);
        if (a->ca_file)
                config_dump_string(d, "ca_file", a->ca_file);
        config_dump_open(d, "auth");
        config_dump_string(d, "method", auth_names[a->method]);
        if (a->access_key_id)
                config_dump_secret(d, "access_key_id", a->access_key_id);
        if (a->secret_access_key_file)
                config_dump_string(d, "secret_access_key_file", a->secret_access_key_file);
        if (a->credentials_file)
                config_dump_string(d, "credentials_file", a->credentials_file);
        if (a->profile)
                config_dump_string(d, "profile", a->profile);
        if (a->role_arn)
                config_dump_string(d, "role_arn", a->role_arn);
        if (a->token_file)
                config_dump_string(d, "token_file", a->token_file);
        if (a->assume_role) {
                config_dump_open(d, "assume_role");
                config_dump_string(d, "role_arn", a->assume_role_arn);
                if (a->external_id)
                        config_dump_string(d, "external_id", a->external_id);
                config_dump_string(d, "session_name", a->session_name);
                config_dump_close(d);
        }
        config_dump_close(d);
}

static int aws_fetch(Store *s, const RemoteRef *ref, store_fetch_cb cb, void *userdata) {
        return -EOPNOTSUPP;
}

static void aws_done(Store *s) {
        AwsStore *a = (AwsStore *) s;
        free(a->region);
        free(a->endpoint);
        free(a->sts_endpoint);
        free(a->ca_file);
        erase_and_free(a->access_key_id);
        free(a->secret_access_key_file);
        free(a->credentials_file);
        free(a->profile);
        free(a->role_arn);
        free(a->token_file);
        free(a->assume_role_arn);
        free(a->external_id);
        free(a->session_name);
}

const StoreVTable store_aws_vtable = {
        .name = "aws",
        .object_size = sizeof(AwsStore),
        .parse_config = aws_parse_config,
        .dump_config = aws_dump_config,
        .fetch = aws_fetch,
        .done = aws_done,
};
