/* SPDX-License-Identifier: MIT */
#include "stores/store.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/duration.h"

/* The registry: adding a provider is one file and one line here. */
static const StoreVTable *const store_registry[] = {
        &store_fake_vtable,
        &store_vault_vtable,
        &store_aws_vtable,
        &store_azure_vtable,
        &store_gcp_vtable,
};

const StoreVTable *store_vtable_find(const char *type) {
        for (size_t i = 0; i < ELEMENTSOF(store_registry); i++)
                if (streq(store_registry[i]->name, type))
                        return store_registry[i];
        return NULL;
}

const char *store_types_list(void) {
        /* From the registry, so that a new provider is listed without another edit. */
        static char list[256];
        if (!list[0])
                for (size_t i = 0; i < ELEMENTSOF(store_registry); i++)
                        snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "",
                                 store_registry[i]->name);
        return list;
}

void store_parse_ca(ConfigParser *p, const Store *s, const config_setting_t *g, char **ret_file, char **ret_pem) {
        config_get_credential_file(p, g, "ca_file", false, ret_file);
        if (config_get_string(p, g, "ca_pem", false, ret_pem) > 0 && *ret_file)
                config_error(p, config_setting_get_member(g, "ca_pem"), "store '%s': set 'ca_file' or 'ca_pem', not both",
                             s->name);
}

void store_dump_ca(ConfigDump *d, const char *file, const char *pem) {
        if (file)
                config_dump_string(d, "ca_file", file);
        if (pem)
                config_dump_string(d, "ca_pem", pem);
}

void store_parse_timeout(ConfigParser *p, const Store *s, const config_setting_t *g, uint64_t *ret_usec) {
        *ret_usec = STORE_TIMEOUT_DEFAULT_USEC;
        if (config_get_duration(p, g, "timeout", ret_usec) > 0 && *ret_usec < 100 * USEC_PER_MSEC)
                config_error(p, config_setting_get_member(g, "timeout"), "store '%s': 'timeout' must be at least 100ms",
                             s->name);
}

int store_parse_auth_method(ConfigParser *p, const Store *s, const config_setting_t *g, const char *const *names,
                            size_t n, const config_setting_t **ret_group, int *ret_method) {
        _cleanup_free_ char *method = NULL;
        const config_setting_t *ag = config_setting_get_member(g, "auth");

        *ret_group = NULL;
        *ret_method = 0;
        if (!ag)
                return 0;
        if (config_setting_type(ag) != CONFIG_TYPE_GROUP) {
                config_error(p, ag, "store '%s': 'auth' must be a group { method = ...; }", s->name);
                return -EINVAL;
        }
        *ret_group = ag;
        if (config_get_string(p, ag, "method", false, &method) <= 0)
                return 0;
        for (size_t i = 0; i < n; i++)
                if (streq(names[i], method)) {
                        *ret_method = (int) i;
                        return 0;
                }
        char list[256] = "";
        for (size_t i = 0; i < n; i++)
                snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "", names[i]);
        config_error(p, config_setting_get_member(ag, "method"), "store '%s': auth method \"%s\" is not one of %s",
                     s->name, method, list);
        return -EINVAL;
}

static bool check_audiences(ConfigParser *p, const config_setting_t *g, const config_setting_t *s, void *obj,
                            void *parent) {
        const ServiceAccountRef *sa = obj;
        for (char **a = sa->audiences; a && *a; a++)
                if (!**a) {
                        config_error(p, s, "'audiences' must not hold an empty string");
                        return false;
                }
        return true;
}

static const ConfigSetting service_account_settings[] = {
        { "namespace", CONFIG_SETTING_STRING, offsetof(ServiceAccountRef, namespace), CONFIG_SETTING_REQUIRED,
          .valid = config_dns_label_valid, .what = "namespace name" },
        { "name", CONFIG_SETTING_STRING, offsetof(ServiceAccountRef, name), CONFIG_SETTING_REQUIRED,
          .valid = config_dns_subdomain_valid, .what = "service account name" },
        { "audiences", CONFIG_SETTING_STRV, offsetof(ServiceAccountRef, audiences), .check = check_audiences },
        {}
};

void store_parse_service_account(ConfigParser *p, const Store *s, const config_setting_t *auth,
                                 const char *const *default_audiences, ServiceAccountRef **ret) {
        const config_setting_t *g = config_setting_get_member(auth, "service_account");
        ServiceAccountRef *sa;

        *ret = NULL;
        if (!g)
                return;
        if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
                config_error(p, g, "store '%s': 'service_account' must be a group { namespace = ...; name = ...; }",
                             s->name);
                return;
        }
        sa = calloc(1, sizeof(ServiceAccountRef));
        if (!sa)
                return;
        (void) config_settings_parse(p, g, service_account_settings, sa, NULL, NULL);
        if (!config_member(g, "audiences") && default_audiences) {
                size_t n = 0;
                while (default_audiences[n])
                        n++;
                sa->audiences = calloc(n + 1, sizeof(char *));
                for (size_t i = 0; sa->audiences && i < n; i++)
                        if (!(sa->audiences[i] = strdup(default_audiences[i])))
                                break;
                if (!sa->audiences || strv_length(sa->audiences) != n)
                        config_error(p, g, "out of memory");
        }
        *ret = sa;
}

void store_dump_service_account(ConfigDump *d, const ServiceAccountRef *sa) {
        if (!sa)
                return;
        config_dump_open(d, "service_account");
        config_settings_dump(d, service_account_settings, sa);
        config_dump_close(d);
}

ServiceAccountRef *store_service_account_free(ServiceAccountRef *sa) {
        if (sa) {
                config_settings_done(service_account_settings, sa);
                free(sa);
        }
        return NULL;
}

int store_token_source(const StoreContext *ctx, const ServiceAccountRef *sa, KubeTokenSource **ret) {
        *ret = NULL;
        if (!sa)
                return 0;
        return ctx->kube_tokens ? kube_token_source_new(ctx->kube_tokens, sa, ret) : -ENOMEM;
}

Store *store_new(const StoreVTable *vt, const char *name) {
        Store *s = calloc(1, vt->object_size);
        if (!s)
                return NULL;
        s->vtable = vt;
        s->name = strdup(name);
        if (!s->name) {
                free(s);
                return NULL;
        }
        return s;
}

Store *store_free(Store *s) {
        if (!s)
                return NULL;
        store_stop(s);
        if (s->vtable->done)
                s->vtable->done(s);
        free(s->name);
        free(s);
        return NULL;
}

int store_start(Store *s, const StoreContext *ctx) {
        if (s->started)
                return 0;
        int r = s->vtable->start ? s->vtable->start(s, ctx) : 0;
        if (r >= 0)
                s->started = true;
        return r;
}

int store_fetch(Store *s, const RemoteRef *ref, store_fetch_cb cb, void *userdata) {
        if (!s->started)
                return -ESTALE;
        return s->vtable->fetch(s, ref, cb, userdata);
}

void store_stop(Store *s) {
        if (!s->started)
                return;
        if (s->vtable->stop)
                s->vtable->stop(s);
        s->started = false;
}
