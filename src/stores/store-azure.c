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
 * first: the manager's callback may fetch again at once. */
#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "stores/oauth.h"
#include "stores/store-replies.h"
#include "stores/store-url.h"
#include "stores/store.h"
#include "util/duration.h"
#include "util/http.h"
#include "util/json.h"
#include "util/urlencode.h"
#include "util/jwt.h"
#include "util/list.h"
#include "util/random.h"

#define AZURE_API_VERSION "7.4"
#define IMDS_API_VERSION "2018-02-01"
#define AUTHORITY_DEFAULT "https://login.microsoftonline.com"
#define IMDS_DEFAULT "http://169.254.169.254"
#define AZURE_SECRET_MAX (25U * 1024U) /* Key Vault's limit on a secret value */
#define RETRY_MAX 4
#define RETRY_BASE_USEC (500 * USEC_PER_MSEC)
#define RETRY_CAP_USEC (30 * USEC_PER_SEC)
#define ASSERTION_LIFETIME_SEC 600

typedef enum AzureAuthMethod {
        AZURE_AUTH_DEFAULT,
        AZURE_AUTH_CLIENT_SECRET,
        AZURE_AUTH_CLIENT_CERTIFICATE,
        AZURE_AUTH_MANAGED_IDENTITY,
        AZURE_AUTH_WORKLOAD_IDENTITY,
        _AZURE_AUTH_MAX,
} AzureAuthMethod;

static const char *const auth_names[_AZURE_AUTH_MAX] = {
        [AZURE_AUTH_DEFAULT] = "default",
        [AZURE_AUTH_CLIENT_SECRET] = "client-secret",
        [AZURE_AUTH_CLIENT_CERTIFICATE] = "client-certificate",
        [AZURE_AUTH_MANAGED_IDENTITY] = "managed-identity",
        [AZURE_AUTH_WORKLOAD_IDENTITY] = "workload-identity",
};

typedef struct AzureRead AzureRead;

typedef struct AzureStore {
        Store base;
        /* configuration */
        char *vault_url; /* without a trailing '/' */
        char *authority;
        char *ca_file;
        char *ca_pem;
        uint64_t timeout_usec;
        AzureAuthMethod method;
        char *tenant_id;
        char *client_id;
        char *client_id_file;
        char *client_secret_file;
        char *certificate_file;
        char *imds_endpoint;
        char *token_file;
        /* run time: what `default` resolved to, from the environment at start */
        AzureAuthMethod source;
        bool secret_from_env; /* client-secret with AZURE_CLIENT_SECRET */
        char *run_tenant, *run_client_id, *run_certificate_file, *run_token_file, *run_authority;
        /* run time */
        StoreContext ctx;
        HttpPool *pool;
        char *scope;     /* from the challenge: "<resource>/.default"; NULL: not seen yet */
        char *ch_tenant; /* the tenant the challenge names */
        OAuthToken token;
        uint64_t token_serial;
        HttpCall *token_call;
        AzureRead *probe; /* the read sent without a token to draw the challenge */
        bool auth_failed_said;
        bool stopping;
        sd_event_source *kick;
        AzureRead *reads;
} AzureStore;

struct AzureRead {
        AzureStore *a;
        char *name;
        char *version;
        store_fetch_cb cb;
        void *userdata;
        HttpCall *call;
        sd_event_source *retry_timer;
        unsigned attempts;
        bool waiting;   /* for a token */
        bool retried;   /* a 401 with a token already replaced it once */
        bool with_token;
        uint64_t token_serial; /* of the token sent */
        AzureRead *prev, *next;
};

/* ------------------------------------------------------------ settings ---- */

static bool imds_url_valid(const char *u) {
        return store_url_valid(u) || streq(u, IMDS_DEFAULT) || strncmp(u, IMDS_DEFAULT ":", strlen(IMDS_DEFAULT) + 1) == 0;
}

static void strip_slash(char *s) {
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
                strip_slash(a->vault_url);
                if (!store_url_valid(a->vault_url))
                        config_error(p, config_setting_get_member(g, "vault_url"),
                                     "store '%s': vault_url \"%s\" must be an https:// URL like "
                                     "\"https://NAME.vault.azure.net\" (http:// only for a loopback address)",
                                     s->name, a->vault_url);
        }
        if (config_get_string(p, g, "authority", false, &a->authority) > 0) {
                strip_slash(a->authority);
                if (!store_url_valid(a->authority))
                        config_error(p, config_setting_get_member(g, "authority"),
                                     "store '%s': authority \"%s\" must be an https:// URL like \"%s\"", s->name,
                                     a->authority, AUTHORITY_DEFAULT);
        }
        store_parse_ca(p, s, g, &a->ca_file, &a->ca_pem);
        store_parse_timeout(p, s, g, &a->timeout_usec);

        const config_setting_t *ag;
        int m;
        if (store_parse_auth_method(p, s, g, auth_names, _AZURE_AUTH_MAX, &ag, &m) < 0)
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
                             auth_names[a->method]);
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
                strip_slash(a->imds_endpoint);
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
        config_dump_string(d, "method", auth_names[a->method]);
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
static void auth_failed(AzureStore *a, int error, const char *fmt, ...) _printf_(3, 4);
static void auth_failed(AzureStore *a, int error, const char *fmt, ...) {
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

/* ---------------------------------------------------------- challenge ---- */

/* The value of one auth-param of a Bearer challenge, quoted or not. */
static char *challenge_param(const char *h, const char *name) {
        size_t n = strlen(name);
        for (const char *p = h; (p = strstr(p, name)); p += n) {
                if (p != h && !strchr(" ,", p[-1]))
                        continue;
                const char *v = p + n;
                while (*v == ' ')
                        v++;
                if (*v++ != '=')
                        continue;
                while (*v == ' ')
                        v++;
                size_t len = *v == '"' ? strcspn(++v, "\"") : strcspn(v, " ,");
                return strndup(v, len);
        }
        return NULL;
}

/* The host of an https:// URL, lower case; NULL if it has none. */
static char *url_host(const char *u) {
        const char *h = strstr(u, "://");
        if (!h)
                return NULL;
        h += 3;
        size_t n = strcspn(h, "/:?#");
        char *r = strndup(h, n);
        for (char *c = r; c && *c; c++)
                if (*c >= 'A' && *c <= 'Z')
                        *c = (char) (*c - 'A' + 'a');
        return r;
}

static bool loopback_host(const char *h) {
        return streq(h, "localhost") || strncmp(h, "127.", 4) == 0 || streq(h, "[::1]");
}

/* As the SDKs verify it: the token's audience must be the vault's own domain (the resource
 * host is the vault host or a parent domain of it), so that a server posing as the vault
 * cannot draw a token for anything else. A loopback vault (a test server) is exempt. */
static bool resource_matches_vault(const AzureStore *a, const char *resource) {
        _cleanup_free_ char *vh = url_host(a->vault_url), *rh = url_host(resource);
        if (!vh || !rh || strncmp(resource, "https://", 8) != 0)
                return false;
        if (loopback_host(vh))
                return true;
        size_t vn = strlen(vh), rn = strlen(rh);
        return streq(vh, rh) || (vn > rn && vh[vn - rn - 1] == '.' && streq(vh + vn - rn, rh));
}

/* Takes the scope and tenant from a 401's challenge; < 0 if there is none or it is not
 * acceptable (then msg says why). */
static int take_challenge(AzureStore *a, const HttpResponse *resp, char *msg, size_t size) {
        const char *h = resp->www_authenticate;
        if (!h || strncasecmp(h, "Bearer", 6) != 0) {
                snprintf(msg, size, "Key Vault at %s answered 401 without a Bearer challenge (WWW-Authenticate)", a->vault_url);
                return -EPROTO;
        }
        _cleanup_free_ char *resource = challenge_param(h, "resource"), *scope = challenge_param(h, "scope"),
                            *authz = challenge_param(h, "authorization");
        if (!authz)
                authz = challenge_param(h, "authorization_uri");
        if (!resource && scope) {
                /* "https://vault.azure.net/.default" */
                char *x = strstr(scope, "/.default");
                if (x)
                        *x = 0;
                resource = TAKE_PTR(scope);
        }
        if (!resource || !*resource) {
                snprintf(msg, size, "Key Vault's challenge names no resource or scope: %s", h);
                return -EPROTO;
        }
        strip_slash(resource);
        if (!resource_matches_vault(a, resource)) {
                snprintf(msg, size,
                         "Key Vault's challenge asks for a token for %s, which is not the domain of %s; refusing to send "
                         "one",
                         resource, a->vault_url);
                return -EPERM;
        }
        free(a->scope);
        if (asprintf(&a->scope, "%s/.default", resource) < 0) {
                a->scope = NULL;
                return -ENOMEM;
        }
        if (authz) {
                strip_slash(authz);
                const char *t = strrchr(authz, '/');
                if (t && t[1] && !strstr(t, "://")) {
                        free(a->ch_tenant);
                        a->ch_tenant = strdup(t + 1);
                }
        }
        return 0;
}

/* ------------------------------------------------------------- tokens ---- */

static void send_waiting(AzureStore *a);

static const char *tenant(const AzureStore *a) {
        return a->run_tenant ? a->run_tenant : a->ch_tenant;
}

static void token_done(AzureStore *a, const char *source) {
        char msg[512], b[DURATION_FORMAT_MAX];
        int64_t left = a->token.expires_at - (int64_t) time(NULL);
        snprintf(msg, sizeof(msg), "token for %s from %s (method %s); it expires in %s", a->vault_url, source,
                 auth_names[a->method], duration_format(left > 0 ? (uint64_t) left * USEC_PER_SEC : 0, b, sizeof(b)));
        a->auth_failed_said = false;
        store_emit(&a->base, &a->ctx, STORE_EVENT_AUTH_OK, 0, msg);
        send_waiting(a);
}

static void on_token(const HttpResponse *resp, void *userdata) {
        AzureStore *a = userdata;
        char err[OAUTH_ERROR_SHOWN_MAX + 64], src[256];
        const char *why = NULL;
        bool imds = a->source == AZURE_AUTH_MANAGED_IDENTITY;

        a->token_call = NULL;
        if (imds)
                snprintf(src, sizeof(src), "managed identity at %s", a->imds_endpoint ? a->imds_endpoint : IMDS_DEFAULT);
        else
                snprintf(src, sizeof(src), "%s/%s", a->run_authority, tenant(a));
        if (resp->error < 0) {
                auth_failed(a, resp->error, "token request to %s failed: %s", src, resp->message);
                return;
        }
        if (resp->status != 200) {
                oauth_error_text(resp, err, sizeof(err), NULL, 0);
                auth_failed(a, resp->status == 400 || resp->status == 401 || resp->status == 403 ? -EACCES : -EIO,
                            "token request to %s refused: HTTP %ld%s", src, resp->status, err);
                return;
        }
        int r = oauth_token_parse(resp, &a->token, &why);
        if (r < 0) {
                auth_failed(a, r, "token from %s: %s", src, why ? why : strerror(-r));
                return;
        }
        a->token.serial = ++a->token_serial;
        token_done(a, src);
}

/* client_id, from the setting, its file (read at each use) or the environment. */
static int client_id(AzureStore *a, bool required, SecBuf **ret, char *msg, size_t size) {
        if (a->client_id_file)
                return oauth_read_credential(a->client_id_file, "client_id_file", ret, msg, size);
        if (!a->run_client_id) {
                *ret = NULL;
                if (!required)
                        return 0;
                snprintf(msg, size, "no client_id: set it, or AZURE_CLIENT_ID in the daemon's environment");
                return -EINVAL;
        }
        *ret = secbuf_new_from(a->run_client_id, strlen(a->run_client_id));
        return *ret ? 0 : -ENOMEM;
}

/* The client assertion for a certificate: a JWT signed with the PEM's key, naming the
 * certificate by its SHA-256 thumbprint, for the token endpoint as audience. */
static int certificate_assertion(AzureStore *a, const char *cid, const char *token_url, SecBuf **ret, char *msg,
                                 size_t size) {
        _cleanup_secbuf_ SecBuf *pem = NULL, *claims = secbuf_new(512);
        _cleanup_free_ char *x5t = NULL, *header = NULL;
        char jti[JWT_ID_LEN + 1];
        int64_t now = time(NULL);
        int r = oauth_read_credential(a->run_certificate_file, "certificate_file", &pem, msg, size);
        if (r < 0)
                return r;
        if ((r = jwt_x5t_s256(pem, &x5t)) < 0) {
                snprintf(msg, size, "certificate_file %s holds no PEM certificate", a->run_certificate_file);
                return r;
        }
        if (!claims || asprintf(&header, "{\"alg\":\"RS256\",\"typ\":\"JWT\",\"x5t#S256\":\"%s\"}", x5t) < 0)
                return -ENOMEM;
        if ((r = jwt_new_id(jti)) < 0)
                return r;
        r = secbuf_append_str(claims, "{\"aud\":");
        r = r < 0 ? r : json_append_string(claims, token_url, strlen(token_url));
        r = r < 0 ? r : secbuf_append_str(claims, ",\"iss\":");
        r = r < 0 ? r : json_append_string(claims, cid, strlen(cid));
        r = r < 0 ? r : secbuf_append_str(claims, ",\"sub\":");
        r = r < 0 ? r : json_append_string(claims, cid, strlen(cid));
        if (r >= 0) {
                char tail[160];
                snprintf(tail, sizeof(tail), ",\"jti\":\"%s\",\"iat\":%lld,\"nbf\":%lld,\"exp\":%lld}", jti, (long long) now,
                         (long long) now, (long long) (now + ASSERTION_LIFETIME_SEC));
                r = secbuf_append_str(claims, tail);
        }
        if (r < 0)
                return r;
        r = jwt_sign_rs256(header, claims, pem, ret);
        if (r < 0)
                snprintf(msg, size, "cannot sign the client assertion: certificate_file %s holds no unencrypted RSA "
                         "private key", a->run_certificate_file);
        return r;
}

static int imds_start(AzureStore *a, char *msg, size_t size) {
        _cleanup_secbuf_ SecBuf *cid = NULL, *q = secbuf_new(256);
        _cleanup_free_ char *url = NULL, *resource = strndup(a->scope, strlen(a->scope) - strlen("/.default"));
        char *hdr[] = { (char *) "Metadata: true", NULL };
        int r = client_id(a, false, &cid, msg, size);
        if (r < 0)
                return r;
        if (!q || !resource)
                return -ENOMEM;
        r = url_form_append_str(q, "api-version", IMDS_API_VERSION);
        r = r < 0 ? r : url_form_append_str(q, "resource", resource);
        if (r >= 0 && cid)
                r = url_form_append(q, "client_id", cid->data, cid->len);
        if (r < 0)
                return r;
        if (asprintf(&url, "%s/metadata/identity/oauth2/token?%s", a->imds_endpoint ? a->imds_endpoint : IMDS_DEFAULT,
                     secbuf_str(q)) < 0) {
                url = NULL;
                return -ENOMEM;
        }
        HttpRequest req = { .method = "GET", .url = url, .headers = hdr };
        return http_request(a->pool, &req, on_token, a, &a->token_call);
}

static int entra_start(AzureStore *a, char *msg, size_t size) {
        _cleanup_secbuf_ SecBuf *cid = NULL, *cred = NULL, *body = secbuf_new(1024);
        _cleanup_free_ char *url = NULL;
        char *hdr[] = { (char *) "Content-Type: application/x-www-form-urlencoded", NULL };
        int r;

        if (!tenant(a)) {
                snprintf(msg, size, "no tenant: set tenant_id (or AZURE_TENANT_ID), or let Key Vault's challenge name it");
                return -EINVAL;
        }
        if ((r = client_id(a, true, &cid, msg, size)) < 0)
                return r;
        if (!body || asprintf(&url, "%s/%s/oauth2/v2.0/token", a->run_authority, tenant(a)) < 0) {
                url = NULL;
                return -ENOMEM;
        }
        switch (a->source) {
        case AZURE_AUTH_CLIENT_SECRET:
                if (a->secret_from_env) {
                        const char *e = getenv("AZURE_CLIENT_SECRET");
                        cred = e && *e ? secbuf_new_from(e, strlen(e)) : NULL;
                        if (!cred) {
                                snprintf(msg, size, "AZURE_CLIENT_SECRET is no longer set");
                                return -EINVAL;
                        }
                } else if ((r = oauth_read_credential(a->client_secret_file, "client_secret_file", &cred, msg, size)) < 0)
                        return r;
                break;
        case AZURE_AUTH_CLIENT_CERTIFICATE:
                if ((r = certificate_assertion(a, secbuf_str(cid), url, &cred, msg, size)) < 0)
                        return r;
                break;
        default: /* workload identity: the federated token is the assertion, re-read at each use */
                if ((r = oauth_read_credential(a->run_token_file, "federated token file", &cred, msg, size)) < 0)
                        return r;
        }
        r = url_form_append_str(body, "grant_type", "client_credentials");
        r = r < 0 ? r : url_form_append(body, "client_id", cid->data, cid->len);
        r = r < 0 ? r : url_form_append_str(body, "scope", a->scope);
        if (r >= 0 && a->source == AZURE_AUTH_CLIENT_SECRET)
                r = url_form_append(body, "client_secret", cred->data, cred->len);
        else if (r >= 0) {
                r = url_form_append_str(body, "client_assertion_type",
                                          "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
                r = r < 0 ? r : url_form_append(body, "client_assertion", cred->data, cred->len);
        }
        if (r < 0)
                return r;
        HttpRequest req = { .method = "POST", .url = url, .headers = hdr, .body = body };
        return http_request(a->pool, &req, on_token, a, &a->token_call);
}

static void token_start(AzureStore *a) {
        char msg[768] = "";
        if (a->token_call || a->stopping)
                return;
        int r = a->source == AZURE_AUTH_MANAGED_IDENTITY ? imds_start(a, msg, sizeof(msg)) : entra_start(a, msg, sizeof(msg));
        if (r < 0)
                auth_failed(a, r, "no token for %s (method %s): %s", a->vault_url, auth_names[a->method],
                            *msg ? msg : strerror(-r));
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
        uint64_t cap = MIN(RETRY_BASE_USEC << r->attempts, RETRY_CAP_USEC);
        uint64_t delay = MAX(cap / 2 + random_below(cap / 2 + 1), MIN(retry_after, RETRY_CAP_USEC));
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
                if ((k = take_challenge(a, resp, msg, sizeof(msg))) < 0) {
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
static void send_waiting(AzureStore *a) {
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
                send_waiting(a);
                return 0;
        }
        if (a->scope) {
                token_start(a);
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

static const char *env(const char *name) {
        const char *v = getenv(name);
        return v && *v ? v : NULL;
}

static int dup_or_null(const char *s, char **ret) {
        free(*ret);
        *ret = s ? strdup(s) : NULL;
        return !s || *ret ? 0 : -ENOMEM;
}

/* The credential in use, and its settings: the configured ones, or, for `default`, from the
 * environment as DefaultAzureCredential takes them (client secret, client certificate,
 * workload identity), then managed identity. */
static int resolve_source(AzureStore *a) {
        const char *tn = a->tenant_id ? a->tenant_id : env("AZURE_TENANT_ID");
        const char *cid = a->client_id ? a->client_id : env("AZURE_CLIENT_ID");
        const char *cert = a->certificate_file, *tok = a->token_file ? a->token_file : env("AZURE_FEDERATED_TOKEN_FILE");
        const char *auth = a->authority ? a->authority : env("AZURE_AUTHORITY_HOST");
        int r;

        a->source = a->method;
        a->secret_from_env = false;
        if (a->method == AZURE_AUTH_DEFAULT) {
                bool app = tn && (cid || a->client_id_file);
                if (app && env("AZURE_CLIENT_SECRET")) {
                        a->source = AZURE_AUTH_CLIENT_SECRET;
                        a->secret_from_env = true;
                } else if (app && env("AZURE_CLIENT_CERTIFICATE_PATH")) {
                        a->source = AZURE_AUTH_CLIENT_CERTIFICATE;
                        cert = env("AZURE_CLIENT_CERTIFICATE_PATH");
                } else if (app && tok)
                        a->source = AZURE_AUTH_WORKLOAD_IDENTITY;
                else
                        a->source = AZURE_AUTH_MANAGED_IDENTITY;
        }
        _cleanup_free_ char *authority = strdup(auth ? auth : AUTHORITY_DEFAULT);
        if (!authority)
                return -ENOMEM;
        strip_slash(authority);
        if (!store_url_valid(authority))
                return -EPROTONOSUPPORT;
        free(a->run_authority);
        a->run_authority = TAKE_PTR(authority);
        if ((r = dup_or_null(tn, &a->run_tenant)) < 0 || (r = dup_or_null(cid, &a->run_client_id)) < 0 ||
            (r = dup_or_null(cert, &a->run_certificate_file)) < 0 || (r = dup_or_null(tok, &a->run_token_file)) < 0)
                return r;
        return 0;
}

static int azure_start(Store *s, const StoreContext *ctx) {
        AzureStore *a = (AzureStore *) s;
        HttpPoolOptions o = { .ca_file = a->ca_file, .ca_pem = a->ca_pem, .timeout_usec = a->timeout_usec,
                              .connect_timeout_usec = MIN(a->timeout_usec, 10 * USEC_PER_SEC) };
        char msg[512];

        a->ctx = *ctx;
        a->stopping = false;
        int r = resolve_source(a);
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
