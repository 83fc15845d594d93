/* SPDX-License-Identifier: MIT */
/* Azure Key Vault secrets (REST API 7.4): GET {vault}/secrets/{name}/{version}.
 *
 * As the Azure SDKs do, the first read goes out without a token: Key Vault answers 401 with
 * a bearer challenge (WWW-Authenticate: Bearer authorization="<authority>/<tenant>",
 * resource="https://vault.azure.net") that names the token's audience and the vault's
 * tenant. The token comes from Microsoft Entra ID (client secret, client certificate
 * assertion, workload identity's federated token) or from the instance metadata endpoint
 * (managed identity); one token serves every read until shortly before it expires, and a
 * 401 on a read with a token replaces it once. Throttling (429) and 5xx answers are retried
 * with backoff, after Retry-After when Key Vault sends one.
 *
 * A fetch queues its read and arms `kick`, which sends the reads waiting for a token, or
 * starts (or joins) the one token request. Reads to complete are taken off the store's list
 * first: the manager's callback may fetch again at once. The challenge and the tokens are
 * azure-credentials.c's. */
#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "stores/azure.h"
#include "stores/store-replies.h"
#include "stores/store-url.h"
#include "util/duration.h"
#include "util/json.h"
#include "util/list.h"
#include "util/random.h"

const char *const azure_auth_names[_AZURE_AUTH_MAX] = {
        [AZURE_AUTH_DEFAULT] = "default",
        [AZURE_AUTH_CLIENT_SECRET] = "client-secret",
        [AZURE_AUTH_CLIENT_CERTIFICATE] = "client-certificate",
        [AZURE_AUTH_MANAGED_IDENTITY] = "managed-identity",
        [AZURE_AUTH_WORKLOAD_IDENTITY] = "workload-identity",
};

/* ------------------------------------------------------------ settings ---- */

static bool imds_url_valid(const char *u) {
        return store_url_valid(u) || streq(u, IMDS_DEFAULT) || strncmp(u, IMDS_DEFAULT ":", strlen(IMDS_DEFAULT) + 1) == 0;
}

void azure_strip_slash(char *s) {
        size_t n = s ? strlen(s) : 0;
        while (n > 0 && s[n - 1] == '/')
                s[--n] = 0;
}

static int azure_parse_config(Store *s, ConfigParser *p, const config_setting_t *g) {
        static const char *const keys[] = { "type", "vault_url", "authority", "ca_file", "ca_pem", "timeout", "auth", NULL };
        static const char *const method_keys[_AZURE_AUTH_MAX][4] = {
                [AZURE_AUTH_DEFAULT] = { "tenant_id", "client_id", "client_id_file", "imds_endpoint" },
                [AZURE_AUTH_CLIENT_SECRET] = { "tenant_id", "client_id", "client_id_file", "client_secret_file" },
                [AZURE_AUTH_CLIENT_CERTIFICATE] = { "tenant_id", "client_id", "client_id_file", "certificate_file" },
                [AZURE_AUTH_MANAGED_IDENTITY] = { "client_id", "client_id_file", "imds_endpoint" },
                [AZURE_AUTH_WORKLOAD_IDENTITY] = { "tenant_id", "client_id", "client_id_file", "token_file" },
        };
        AzureStore *a = (AzureStore *) s;

        config_check_keys(p, g, keys);
        if (config_get_string(p, g, "vault_url", true, &a->vault_url) > 0) {
                azure_strip_slash(a->vault_url);
                if (!store_url_valid(a->vault_url))
                        config_error(p, config_setting_get_member(g, "vault_url"),
                                     "store '%s': vault_url \"%s\" must be an https:// URL like "
                                     "\"https://NAME.vault.azure.net\" (http:// only for a loopback address)",
                                     s->name, a->vault_url);
        }
        if (config_get_string(p, g, "authority", false, &a->authority) > 0) {
                azure_strip_slash(a->authority);
                if (!store_url_valid(a->authority))
                        config_error(p, config_setting_get_member(g, "authority"),
                                     "store '%s': authority \"%s\" must be an https:// URL like \"%s\"", s->name,
                                     a->authority, AUTHORITY_DEFAULT);
        }
        store_parse_ca(p, s, g, &a->ca_file, &a->ca_pem);
        store_parse_timeout(p, s, g, &a->timeout_usec);

        const config_setting_t *ag;
        int m;
        if (store_parse_auth_method(p, s, g, azure_auth_names, _AZURE_AUTH_MAX, &ag, &m) < 0)
                return -EINVAL;
        if (!ag)
                return 0; /* method "default" */
        a->method = (AzureAuthMethod) m;
        const char *allowed[6] = { "method" };
        for (size_t i = 0; i < 4 && method_keys[a->method][i]; i++)
                allowed[1 + i] = method_keys[a->method][i];
        config_check_keys(p, ag, allowed);

        bool needs_app = a->method == AZURE_AUTH_CLIENT_SECRET || a->method == AZURE_AUTH_CLIENT_CERTIFICATE;
        config_get_string(p, ag, "tenant_id", false, &a->tenant_id);
        config_get_string(p, ag, "client_id", false, &a->client_id);
        config_get_credential_file(p, ag, "client_id_file", false, &a->client_id_file);
        if (a->client_id && a->client_id_file)
                config_error(p, ag, "store '%s': set 'client_id' or 'client_id_file', not both", s->name);
        if (needs_app && !a->client_id && !a->client_id_file)
                config_error(p, ag, "store '%s': method %s needs 'client_id' (or 'client_id_file')", s->name,
                             azure_auth_names[a->method]);
        config_get_credential_file(p, ag, "client_secret_file", a->method == AZURE_AUTH_CLIENT_SECRET,
                                   &a->client_secret_file);
        config_get_credential_file(p, ag, "certificate_file", a->method == AZURE_AUTH_CLIENT_CERTIFICATE,
                                   &a->certificate_file);
        config_get_credential_file(p, ag, "token_file", false, &a->token_file);
        if (a->method == AZURE_AUTH_WORKLOAD_IDENTITY && !a->token_file && !getenv("AZURE_FEDERATED_TOKEN_FILE"))
                config_error(p, ag,
                             "store '%s': method workload-identity needs 'token_file' (or AZURE_FEDERATED_TOKEN_FILE in "
                             "the daemon's environment)",
                             s->name);
        if (config_get_string(p, ag, "imds_endpoint", false, &a->imds_endpoint) > 0) {
                azure_strip_slash(a->imds_endpoint);
                if (!imds_url_valid(a->imds_endpoint))
                        config_error(p, config_setting_get_member(ag, "imds_endpoint"),
                                     "store '%s': imds_endpoint \"%s\" must be %s or an https:// URL (http:// only for "
                                     "a loopback address)",
                                     s->name, a->imds_endpoint, IMDS_DEFAULT);
        }
        return 0;
}

static void azure_dump_config(const Store *s, ConfigDump *d) {
        const AzureStore *a = (const AzureStore *) s;
        config_dump_string(d, "vault_url", a->vault_url);
        if (a->authority)
                config_dump_string(d, "authority", a->authority);
        store_dump_ca(d, a->ca_file, a->ca_pem);
        config_dump_duration(d, "timeout", a->timeout_usec);
        config_dump_open(d, "auth");
        config_dump_string(d, "method", azure_auth_names[a->method]);
        const struct {
                const char *key, *value;
        } opt[] = { { "tenant_id", a->tenant_id },
                    { "client_id", a->client_id },
                    { "client_id_file", a->client_id_file },
                    { "client_secret_file", a->client_secret_file },
                    { "certificate_file", a->certificate_file },
                    { "imds_endpoint", a->imds_endpoint },
                    { "token_file", a->token_file } };
        for (size_t i = 0; i < ELEMENTSOF(opt); i++)
                if (opt[i].value)
                        config_dump_string(d, opt[i].key, opt[i].value);
        config_dump_close(d);
}

/* --------------------------------------------------------------- reads ---- */

static void kick(AzureStore *a) {
        if (!a->stopping)
                sd_event_source_set_enabled(a->kick, SD_EVENT_ONESHOT);
}

static void read_free(AzureRead *r) {
        if (r->call)
                http_call_cancel(r->call);
        sd_event_source_disable_unref(r->retry_timer);
        free(r->name);
        free(r->version);
        free(r);
}

/* Completes a read that is on no list; the callback may fetch again. */
static void read_done(AzureRead *r, int error, const char *message, const SecBuf *value, const char *version) {
        AzureStore *a = r->a;
        StoreResult res = { .error = error, .message = message, .value = value, .version = version };
        store_fetch_cb cb = r->cb;
        void *ud = r->userdata;
        if (a->probe == r) { /* it drew no challenge: the next read tries */
                a->probe = NULL;
                kick(a);
        }
        read_free(r);
        cb(&a->base, &res, ud);
}

static void read_complete(AzureRead *r, int error, const char *message, const SecBuf *value, const char *version) {
        LIST_REMOVE(r->a->reads, r);
        read_done(r, error, message, value, version);
}

static const char *read_shown(const AzureRead *r, char *buf, size_t size) {
        snprintf(buf, size, "%s%s%s", r->name, r->version ? " version " : "", r->version ? r->version : "");
        return buf;
}

/* Every read waiting for a token fails with the reason (the manager retries later). */
void azure_auth_failed(AzureStore *a, int error, const char *fmt, ...) {
        char msg[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        a->auth_failed_said = true;
        store_emit(&a->base, &a->ctx, STORE_EVENT_AUTH_FAILED, error, msg);
        AzureRead *batch = NULL;
        for (AzureRead *r = a->reads, *next; r; r = next) {
                next = r->next;
                if (r->waiting) {
                        LIST_REMOVE(a->reads, r);
                        LIST_PREPEND(batch, r);
                }
        }
        while (batch) {
                AzureRead *r = batch;
                LIST_REMOVE(batch, r);
                read_done(r, error, msg, NULL, NULL);
        }
}

/* --------------------------------------------------------------- reads ---- */

static void read_send(AzureRead *r);

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        AzureRead *r = userdata;
        r->retry_timer = sd_event_source_disable_unref(r->retry_timer);
        read_send(r);
        return 0;
}

/* Exponential backoff with jitter, or Key Vault's Retry-After if longer. */
static int retry_later(AzureRead *r, uint64_t retry_after) {
        uint64_t delay = MAX(random_backoff(RETRY_BASE_USEC, RETRY_CAP_USEC, r->attempts), MIN(retry_after, RETRY_CAP_USEC));
        r->attempts++;
        return sd_event_add_time_relative(r->a->ctx.event, &r->retry_timer, CLOCK_MONOTONIC, delay, USEC_PER_MSEC, on_retry,
                                          r);
}

int azure_reply_secret(const SecBuf *body, SecBuf **ret_value, char **ret_version, const char **ret_why) {
        json_object *o = NULL, *val, *id;
        _cleanup_secbuf_ SecBuf *value = NULL;
        _cleanup_free_ char *version = NULL;

        if (json_parse_strict(body->data, body->len, &o) < 0 || !json_object_object_get_ex(o, "value", &val) ||
            !json_object_is_type(val, json_type_string)) {
                json_put_wiped(o);
                *ret_why = "malformed answer (no \"value\" string)";
                return -EBADMSG;
        }
        if ((size_t) json_object_get_string_len(val) > AZURE_SECRET_MAX) {
                json_put_wiped(o);
                *ret_why = "larger than Key Vault's 25 KiB limit";
                return -EFBIG;
        }
        value = secbuf_new_from(json_object_get_string(val), (size_t) json_object_get_string_len(val));
        if (json_object_object_get_ex(o, "id", &id) && json_object_is_type(id, json_type_string)) {
                const char *slash = strrchr(json_object_get_string(id), '/');
                if (slash && slash[1])
                        version = strdup(slash + 1);
        }
        json_put_wiped(o);
        if (!value) {
                *ret_why = "out of memory";
                return -ENOMEM;
        }
        *ret_value = TAKE_PTR(value);
        *ret_version = TAKE_PTR(version);
        return 0;
}

static void read_answer(AzureRead *r, const HttpResponse *resp) {
        _cleanup_secbuf_ SecBuf *value = NULL;
        _cleanup_free_ char *version = NULL;
        const char *why = NULL;
        char msg[768], shown[512];

        int k = azure_reply_secret(resp->body, &value, &version, &why);
        if (k < 0) {
                read_shown(r, shown, sizeof(shown));
                if (k == -EFBIG)
                        snprintf(msg, sizeof(msg), "secret %s is %s", shown, why);
                else
                        snprintf(msg, sizeof(msg), "reading secret %s from %s: %s", shown, r->a->vault_url, why);
                read_complete(r, k, msg, NULL, NULL);
                return;
        }
        read_complete(r, 0, NULL, value, version);
}

static void on_read(const HttpResponse *resp, void *userdata) {
        AzureRead *r = userdata;
        AzureStore *a = r->a;
        char msg[1024], shown[512], err[OAUTH_ERROR_SHOWN_MAX + 64], code[64];
        int k;

        r->call = NULL;
        read_shown(r, shown, sizeof(shown));
        if (resp->error < 0) {
                snprintf(msg, sizeof(msg), "reading secret %s from %s: %s", shown, a->vault_url, resp->message);
                read_complete(r, resp->error, msg, NULL, NULL);
                return;
        }
        if (resp->status == 200) {
                read_answer(r, resp);
                return;
        }
        oauth_error_text(resp, err, sizeof(err), code, sizeof(code));
        if (resp->status == 401 && (!r->with_token || !r->retried)) {
                if (a->probe == r)
                        a->probe = NULL;
                if ((k = azure_take_challenge(a, resp, msg, sizeof(msg))) < 0) {
                        store_emit(&a->base, &a->ctx, STORE_EVENT_AUTH_FAILED, k, msg);
                        read_complete(r, k, msg, NULL, NULL);
                        return;
                }
                /* Expired or revoked: one new token (unless another read already got
                 * one since this read went out), then this read again. */
                if (r->with_token) {
                        r->retried = true;
                        if (r->token_serial == a->token.serial)
                                oauth_token_clear(&a->token);
                }
                r->waiting = true;
                kick(a);
                return;
        }
        if ((resp->status == 429 || resp->status >= 500) && r->attempts < RETRY_MAX &&
            retry_later(r, resp->retry_after_usec) >= 0)
                return;
        switch (resp->status) {
        case 401:
                snprintf(msg, sizeof(msg), "Key Vault %s refused a new token reading secret %s (HTTP 401%s)", a->vault_url,
                         shown, err);
                if (!a->auth_failed_said) {
                        a->auth_failed_said = true;
                        store_emit(&a->base, &a->ctx, STORE_EVENT_AUTH_FAILED, -EACCES, msg);
                }
                k = -EACCES;
                break;
        case 403:
                if (streq(code, "SecretDisabled"))
                        snprintf(msg, sizeof(msg), "secret %s is disabled in Key Vault %s (HTTP 403%s)", shown, a->vault_url,
                                 err);
                else
                        snprintf(msg, sizeof(msg),
                                 "permission denied reading secret %s from Key Vault %s (HTTP 403%s): the identity needs "
                                 "\"get\" on secrets (access policy) or the Key Vault Secrets User role",
                                 shown, a->vault_url, err);
                k = -EACCES;
                break;
        case 404:
                snprintf(msg, sizeof(msg), "secret %s not found in Key Vault %s (HTTP 404%s)", shown, a->vault_url, err);
                k = -ENOENT;
                break;
        case 429:
                snprintf(msg, sizeof(msg), "Key Vault %s is throttling (HTTP 429%s), still after %u retries", a->vault_url,
                         err, r->attempts);
                k = -EAGAIN;
                break;
        default:
                snprintf(msg, sizeof(msg), "reading secret %s from Key Vault %s: HTTP %ld%s%s", shown, a->vault_url,
                         resp->status, err, resp->status >= 500 ? " (after retries)" : "");
                k = resp->status >= 500 ? -EIO : -EINVAL;
        }
        read_complete(r, k, msg, NULL, NULL);
}

static void read_send(AzureRead *r) {
        AzureStore *a = r->a;
        _cleanup_free_ char *url = NULL;
        _cleanup_erase_ char *auth = NULL;
        char *hdr[2] = { NULL, NULL };
        int k;

        r->with_token = a->token.access_token != NULL;
        r->token_serial = a->token.serial;
        if (asprintf(&url, "%s/secrets/%s/%s?api-version=" AZURE_API_VERSION, a->vault_url, r->name,
                     r->version ? r->version : "") < 0)
                url = NULL;
        if (r->with_token)
                auth = secbuf_header_line("Authorization", "Bearer ", a->token.access_token);
        hdr[0] = auth;
        if (!url || (r->with_token && !auth)) {
                read_complete(r, -ENOMEM, "out of memory", NULL, NULL);
                return;
        }
        HttpRequest req = { .method = "GET", .url = url, .headers = hdr };
        k = http_request(a->pool, &req, on_read, r, &r->call);
        if (k < 0)
                read_complete(r, k, "cannot send the request to Key Vault", NULL, NULL);
}

/* Sends the reads that waited for a token. They are detached first: a send can fail (and
 * its read complete, and the manager fetch again) at once. */
void azure_send_waiting(AzureStore *a) {
        AzureRead *batch = NULL;
        for (AzureRead *r = a->reads, *next; r; r = next) {
                next = r->next;
                if (r->waiting) {
                        LIST_REMOVE(a->reads, r);
                        LIST_PREPEND(batch, r);
                }
        }
        while (batch) {
                AzureRead *r = batch;
                LIST_REMOVE(batch, r);
                LIST_PREPEND(a->reads, r);
                r->waiting = false;
                read_send(r);
        }
}

static int on_kick(sd_event_source *s, void *userdata) {
        AzureStore *a = userdata;
        if (oauth_token_usable(&a->token)) {
                azure_send_waiting(a);
                return 0;
        }
        if (a->scope) {
                azure_token_start(a);
                return 0;
        }
        /* No challenge seen yet: one read goes without a token to draw it. */
        if (a->probe)
                return 0;
        AzureRead *oldest = NULL;
        for (AzureRead *r = a->reads; r; r = r->next)
                if (r->waiting)
                        oldest = r;
        if (oldest) {
                a->probe = oldest;
                oldest->waiting = false;
                oauth_token_clear(&a->token);
                read_send(oldest);
        }
        return 0;
}

/* --------------------------------------------------------------- store ---- */

static bool name_valid(const char *s, size_t max) {
        size_t n = strlen(s);
        return n > 0 && n <= max &&
               strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") == n;
}

static int azure_check_ref(const Store *s, const RemoteRef *ref, char **ret_error) {
        const char *k = ref->key;
        if (strncmp(k, "cert/", 5) == 0 || strncmp(k, "key/", 4) == 0)
                return asprintf(ret_error,
                                "\"%s\": store '%s' reads Key Vault secrets only, not certificates or keys (a certificate's "
                                "private key is readable as the secret of the same name: secret/NAME)",
                                k, s->name) < 0 ? -ENOMEM : -EINVAL;
        if (strncmp(k, "secret/", 7) == 0)
                k += 7;
        if (!name_valid(k, 127))
                return asprintf(ret_error,
                                "Key Vault secret name \"%s\" must be 1 to 127 letters, digits and dashes (optionally "
                                "written secret/NAME)",
                                ref->key) < 0 ? -ENOMEM : -EINVAL;
        if (ref->version && !name_valid(ref->version, 64))
                return asprintf(ret_error, "Key Vault secret version \"%s\" must be a version id (32 hex digits)",
                                ref->version) < 0 ? -ENOMEM : -EINVAL;
        return 0;
}

static int azure_fetch(Store *s, const RemoteRef *ref, store_fetch_cb cb, void *userdata) {
        AzureStore *a = (AzureStore *) s;
        if (a->stopping || !a->pool)
                return -ECANCELED;
        const char *name = strncmp(ref->key, "secret/", 7) == 0 ? ref->key + 7 : ref->key;
        AzureRead *r = calloc(1, sizeof(AzureRead));
        if (!r)
                return -ENOMEM;
        *r = (AzureRead) { .a = a, .cb = cb, .userdata = userdata, .name = strdup(name), .waiting = true,
                           .version = ref->version ? strdup(ref->version) : NULL };
        if (!r->name || (ref->version && !r->version)) {
                read_free(r);
                return -ENOMEM;
        }
        int k = sd_event_source_set_enabled(a->kick, SD_EVENT_ONESHOT);
        if (k < 0) {
                read_free(r);
                return k;
        }
        LIST_PREPEND(a->reads, r);
        return 0;
}

static int azure_start(Store *s, const StoreContext *ctx) {
        AzureStore *a = (AzureStore *) s;
        HttpPoolOptions o = { .ca_file = a->ca_file, .ca_pem = a->ca_pem, .timeout_usec = a->timeout_usec,
                              .connect_timeout_usec = MIN(a->timeout_usec, 10 * USEC_PER_SEC) };
        char msg[512];

        a->ctx = *ctx;
        a->stopping = false;
        int r = azure_resolve_source(a);
        if (r == -EPROTONOSUPPORT) {
                store_emit(s, ctx, STORE_EVENT_WARNING, 0,
                           "AZURE_AUTHORITY_HOST in the environment is not https:// (http:// only to loopback)");
                return r;
        }
        if (r < 0)
                return r;
        r = sd_event_add_defer(ctx->event, &a->kick, on_kick, a);
        if (r < 0)
                return r;
        r = sd_event_source_set_enabled(a->kick, SD_EVENT_OFF);
        if (r >= 0)
                r = http_pool_new(ctx->http, &o, &a->pool);
        if (r < 0) {
                a->kick = sd_event_source_disable_unref(a->kick);
                return r;
        }
        if (strncmp(a->vault_url, "http://", 7) == 0) {
                snprintf(msg, sizeof(msg), "vault_url %s is plain http:// (acceptable only for a local test)", a->vault_url);
                store_emit(s, ctx, STORE_EVENT_WARNING, 0, msg);
        }
        return 0;
}

static void azure_stop(Store *s) {
        AzureStore *a = (AzureStore *) s;
        a->stopping = true;
        if (a->token_call)
                http_call_cancel(TAKE_PTR(a->token_call));
        a->kick = sd_event_source_disable_unref(a->kick);
        while (a->reads)
                read_complete(a->reads, -ECANCELED, "cancelled", NULL, NULL);
        a->pool = http_pool_free(a->pool);
        oauth_token_clear(&a->token);
        a->probe = NULL;
}

static void azure_done(Store *s) {
        AzureStore *a = (AzureStore *) s;
        oauth_token_clear(&a->token);
        free(a->vault_url);
        free(a->authority);
        free(a->ca_file);
        free(a->ca_pem);
        free(a->tenant_id);
        free(a->client_id);
        free(a->client_id_file);
        free(a->client_secret_file);
        free(a->certificate_file);
        free(a->imds_endpoint);
        free(a->token_file);
        free(a->run_tenant);
        free(a->run_client_id);
        free(a->run_certificate_file);
        free(a->run_token_file);
        free(a->run_authority);
        free(a->scope);
        free(a->ch_tenant);
}

const StoreVTable store_azure_vtable = {
        .name = "azure",
        .object_size = sizeof(AzureStore),
        .parse_config = azure_parse_config,
        .dump_config = azure_dump_config,
        .check_ref = azure_check_ref,
        .start = azure_start,
        .fetch = azure_fetch,
        .stop = azure_stop,
        .done = azure_done,
};
