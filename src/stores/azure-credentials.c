/* SPDX-License-Identifier: MIT */
/* Azure Key Vault credentials: the bearer challenge Key Vault answers an unauthenticated
 * read with, and the token it asks for, from Microsoft Entra ID (client secret, client
 * certificate assertion, workload identity's federated token) or the instance metadata
 * endpoint (managed identity); `default` resolved from the environment as
 * DefaultAzureCredential does. One token request at a time; the reads wait for it. */
#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "stores/azure.h"
#include "stores/store-url.h"
#include "util/duration.h"
#include "util/json.h"
#include "util/jwt.h"
#include "util/urlencode.h"

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
int azure_take_challenge(AzureStore *a, const HttpResponse *resp, char *msg, size_t size) {
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
        azure_strip_slash(resource);
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
                azure_strip_slash(authz);
                const char *t = strrchr(authz, '/');
                if (t && t[1] && !strstr(t, "://")) {
                        free(a->ch_tenant);
                        a->ch_tenant = strdup(t + 1);
                }
        }
        return 0;
}

/* ------------------------------------------------------------- tokens ---- */


static const char *tenant(const AzureStore *a) {
        return a->run_tenant ? a->run_tenant : a->ch_tenant;
}

static void token_done(AzureStore *a, const char *source) {
        char msg[512], b[DURATION_FORMAT_MAX];
        int64_t left = a->token.expires_at - (int64_t) time(NULL);
        snprintf(msg, sizeof(msg), "token for %s from %s (method %s); it expires in %s", a->vault_url, source,
                 azure_auth_names[a->method], duration_format(left > 0 ? (uint64_t) left * USEC_PER_SEC : 0, b, sizeof(b)));
        a->auth_failed_said = false;
        store_emit(&a->base, &a->ctx, STORE_EVENT_AUTH_OK, 0, msg);
        azure_send_waiting(a);
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
                azure_auth_failed(a, resp->error, "token request to %s failed: %s", src, resp->message);
                return;
        }
        if (resp->status != 200) {
                oauth_error_text(resp, err, sizeof(err), NULL, 0);
                azure_auth_failed(a, resp->status == 400 || resp->status == 401 || resp->status == 403 ? -EACCES : -EIO,
                            "token request to %s refused: HTTP %ld%s", src, resp->status, err);
                return;
        }
        int r = oauth_token_parse(resp, &a->token, &why);
        if (r < 0) {
                azure_auth_failed(a, r, "token from %s: %s", src, why ? why : strerror(-r));
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

void azure_token_start(AzureStore *a) {
        char msg[768] = "";
        if (a->token_call || a->stopping)
                return;
        int r = a->source == AZURE_AUTH_MANAGED_IDENTITY ? imds_start(a, msg, sizeof(msg)) : entra_start(a, msg, sizeof(msg));
        if (r < 0)
                azure_auth_failed(a, r, "no token for %s (method %s): %s", a->vault_url, azure_auth_names[a->method],
                            *msg ? msg : strerror(-r));
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
int azure_resolve_source(AzureStore *a) {
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
        azure_strip_slash(authority);
        if (!store_url_valid(authority))
                return -EPROTONOSUPPORT;
        free(a->run_authority);
        a->run_authority = TAKE_PTR(authority);
        if ((r = dup_or_null(tn, &a->run_tenant)) < 0 || (r = dup_or_null(cid, &a->run_client_id)) < 0 ||
            (r = dup_or_null(cert, &a->run_certificate_file)) < 0 || (r = dup_or_null(tok, &a->run_token_file)) < 0)
                return r;
        return 0;
}
