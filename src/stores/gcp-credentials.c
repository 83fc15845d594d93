/* SPDX-License-Identifier: MIT */
#include "stores/gcp-credentials.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stores/store-url.h"
#include "util/cleanup.h"
#include "util/json.h"
#include "util/urlencode.h"
#include "util/jwt.h"

#define SCOPE "https://www.googleapis.com/auth/cloud-platform"
#define JWT_BEARER "urn:ietf:params:oauth:grant-type:jwt-bearer"
#define TOKEN_EXCHANGE "urn:ietf:params:oauth:grant-type:token-exchange"
#define ACCESS_TOKEN_TYPE "urn:ietf:params:oauth:token-type:access_token"
#define ASSERTION_LIFETIME_SEC 3600

const char *const gcp_auth_names[_GCP_AUTH_MAX] = {
        [GCP_AUTH_DEFAULT] = "default",
        [GCP_AUTH_SERVICE_ACCOUNT_KEY] = "service-account-key",
        [GCP_AUTH_METADATA] = "metadata",
        [GCP_AUTH_EXTERNAL_ACCOUNT] = "external-account",
};

typedef struct Waiter Waiter;
struct Waiter {
        gcp_token_cb cb;
        void *userdata;
        Waiter *next;
};

typedef enum Step { STEP_NONE, STEP_TOKEN, STEP_SUBJECT, STEP_STS, STEP_IMPERSONATE } Step;

struct GcpCredProvider {
        const GcpAuthConfig *cfg;
        HttpPool *pool;
        OAuthToken token;
        uint64_t serial;
        Step step;
        HttpCall *call;
        json_object *ext;   /* the external_account file, while a token is acquired */
        char source[384];
        Waiter *waiters, **waiters_tail;
};

bool gcp_metadata_url_valid(const char *u) {
        return store_url_valid(u) || streq(u, GCP_METADATA_DEFAULT) || streq(u, "http://169.254.169.254");
}

static const char *env(const char *name) {
        const char *v = getenv(name);
        return v && *v ? v : NULL;
}

/* -------------------------------------------------------------- finishing ---- */

static void finish(GcpCredProvider *p, int error, const char *message) {
        p->step = STEP_NONE;
        p->call = NULL;
        json_put_wiped(p->ext);
        p->ext = NULL;
        Waiter *w = p->waiters;
        p->waiters = NULL;
        p->waiters_tail = &p->waiters;
        while (w) {
                Waiter *next = w->next;
                w->cb(error, message, error >= 0 ? &p->token : NULL, error >= 0, p->source, w->userdata);
                free(w);
                w = next;
        }
}

static void failf(GcpCredProvider *p, int error, const char *fmt, ...) _printf_(3, 4);
static void failf(GcpCredProvider *p, int error, const char *fmt, ...) {
        char msg[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        oauth_token_clear(&p->token);
        finish(p, error, msg);
}

static const char *step_what(Step s) {
        switch (s) {
        case STEP_SUBJECT:
                return "subject token URL";
        case STEP_STS:
                return "STS token exchange";
        case STEP_IMPERSONATE:
                return "service account impersonation (generateAccessToken)";
        default:
                return "token request";
        }
}

static void impersonate_start(GcpCredProvider *p, const OAuthToken *sts);
static void sts_start(GcpCredProvider *p, const SecBuf *subject);

/* A token answer: the end, or the STS token that impersonation trades in. */
static void on_token(const HttpResponse *resp, void *userdata) {
        GcpCredProvider *p = userdata;
        char err[OAUTH_ERROR_SHOWN_MAX + 64];
        const char *why = NULL;
        Step step = p->step;
        OAuthToken t = { 0 };
        json_object *imp;

        p->call = NULL;
        if (resp->error < 0) {
                failf(p, resp->error, "%s (%s) failed: %s", step_what(step), p->source, resp->message);
                return;
        }
        if (resp->status != 200) {
                oauth_error_text(resp, err, sizeof(err), NULL, 0);
                failf(p, resp->status >= 500 ? -EIO : -EACCES, "%s (%s) refused: HTTP %ld%s", step_what(step), p->source,
                      resp->status, err);
                return;
        }
        int r = oauth_token_parse(resp, &t, &why);
        if (r < 0) {
                failf(p, r, "%s (%s): %s", step_what(step), p->source, why ? why : strerror(-r));
                return;
        }
        if (step == STEP_STS && p->ext && json_object_object_get_ex(p->ext, "service_account_impersonation_url", &imp)) {
                impersonate_start(p, &t);
                oauth_token_clear(&t);
                return;
        }
        oauth_token_clear(&p->token);
        p->token = t;
        p->token.serial = ++p->serial;
        finish(p, 0, NULL);
}

static int token_send(GcpCredProvider *p, Step step, const char *method, const char *url, char **hdr, const SecBuf *body) {
        p->step = step;
        HttpRequest req = { .method = method, .url = url, .headers = hdr, .body = body };
        int r = http_request(p->pool, &req, on_token, p, &p->call);
        if (r < 0)
                failf(p, r, "cannot send the %s: %s", step_what(step), strerror(-r));
        return r;
}

/* --------------------------------------------------- service account key ---- */

static const char *jstr(json_object *o, const char *key) {
        json_object *x;
        return json_object_object_get_ex(o, key, &x) && json_object_is_type(x, json_type_string) ? json_object_get_string(x)
                                                                                               : NULL;
}

static int parse_file(GcpCredProvider *p, const char *path, const char *what, json_object **ret) {
        _cleanup_secbuf_ SecBuf *b = NULL;
        char msg[768];
        int r = oauth_read_credential(path, what, &b, msg, sizeof(msg));
        if (r < 0) {
                failf(p, r, "%s", msg);
                return r;
        }
        if (json_parse_strict(b->data, b->len, ret) < 0 || !json_object_is_type(*ret, json_type_object)) {
                json_put_wiped(*ret);
                failf(p, -EBADMSG, "the %s %s is not a JSON object", what, path);
                return -EBADMSG;
        }
        return 0;
}

int gcp_key_assertion(json_object *key, int64_t now, SecBuf **ret_body, const char **ret_token_uri,
                      const char **ret_why) {
        const char *email = jstr(key, "client_email"), *pk = jstr(key, "private_key"), *kid = jstr(key, "private_key_id"),
                   *uri = jstr(key, "token_uri");
        _cleanup_secbuf_ SecBuf *claims = secbuf_new(512), *pem = NULL, *jwt = NULL, *body = secbuf_new(1024);
        _cleanup_free_ char *header = NULL;
        int r;

        if (!email || !pk || !uri) {
                *ret_why = "lacks client_email, private_key or token_uri (is it a service account key?)";
                return -EINVAL;
        }
        if (!store_url_valid(uri)) {
                *ret_why = "names a token_uri that is not https://";
                return -EINVAL;
        }
        /* private_key_id is hex as IAM issues it; anything else is left out of the header. */
        bool kid_ok = kid && *kid && strspn(kid, "0123456789abcdefABCDEF") == strlen(kid);
        if (!claims || !body || !(pem = secbuf_new_from(pk, strlen(pk))) ||
            asprintf(&header, "{\"alg\":\"RS256\",\"typ\":\"JWT\"%s%s%s}", kid_ok ? ",\"kid\":\"" : "",
                     kid_ok ? kid : "", kid_ok ? "\"" : "") < 0) {
                header = NULL;
                *ret_why = "out of memory";
                return -ENOMEM;
        }
        r = secbuf_append_str(claims, "{\"iss\":");
        r = r < 0 ? r : json_append_string(claims, email, strlen(email));
        r = r < 0 ? r : secbuf_append_str(claims, ",\"scope\":\"" SCOPE "\",\"aud\":");
        r = r < 0 ? r : json_append_string(claims, uri, strlen(uri));
        if (r >= 0) {
                char tail[96];
                snprintf(tail, sizeof(tail), ",\"iat\":%lld,\"exp\":%lld}", (long long) now,
                         (long long) (now + ASSERTION_LIFETIME_SEC));
                r = secbuf_append_str(claims, tail);
        }
        if (r >= 0 && (r = jwt_sign_rs256(header, claims, pem, &jwt)) == -EINVAL) {
                *ret_why = "has a private_key that is not an unencrypted RSA key";
                return r;
        }
        r = r < 0 ? r : url_form_append_str(body, "grant_type", JWT_BEARER);
        r = r < 0 ? r : url_form_append(body, "assertion", jwt->data, jwt->len);
        if (r < 0) {
                *ret_why = "cannot be made into an assertion";
                return r;
        }
        *ret_body = TAKE_PTR(body);
        *ret_token_uri = uri;
        return 0;
}

static void service_account_start(GcpCredProvider *p, json_object *key, const char *path) {
        const char *email = jstr(key, "client_email"), *uri = NULL, *why = NULL;
        _cleanup_secbuf_ SecBuf *body = NULL;
        char *hdr[] = { (char *) "Content-Type: application/x-www-form-urlencoded", NULL };

        snprintf(p->source, sizeof(p->source), "service account key %s (%s)", path, email ? email : "?");
        int r = gcp_key_assertion(key, time(NULL), &body, &uri, &why);
        if (r < 0) {
                const char *bad_uri = jstr(key, "token_uri");
                if (bad_uri && !store_url_valid(bad_uri))
                        failf(p, r, "the key file %s %s (%s)", path, why, bad_uri);
                else
                        failf(p, r, "the key file %s %s", path, why);
                return;
        }
        token_send(p, STEP_TOKEN, "POST", uri, hdr, body);
}

/* ---------------------------------------------------- external account ---- */

int gcp_subject_token(json_object *ext, const SecBuf *raw, SecBuf **ret) {
        json_object *src, *fmt;
        const char *type = NULL, *field = NULL;
        if (json_object_object_get_ex(ext, "credential_source", &src) &&
            json_object_object_get_ex(src, "format", &fmt)) {
                type = jstr(fmt, "type");
                field = jstr(fmt, "subject_token_field_name");
        }
        if (!type || streq(type, "text")) {
                *ret = secbuf_dup(raw);
                return *ret ? 0 : -ENOMEM;
        }
        json_object *o = NULL;
        const char *v;
        int r = -EBADMSG;
        if (streq(type, "json") && field && json_parse_strict(raw->data, raw->len, &o) >= 0 && (v = jstr(o, field))) {
                *ret = secbuf_new_from(v, strlen(v));
                r = *ret ? 0 : -ENOMEM;
        }
        json_put_wiped(o);
        return r;
}

static void on_subject(const HttpResponse *resp, void *userdata) {
        GcpCredProvider *p = userdata;
        _cleanup_secbuf_ SecBuf *subject = NULL;
        p->call = NULL;
        if (resp->error < 0 || resp->status != 200) {
                failf(p, resp->error < 0 ? resp->error : -EACCES, "the subject token URL (%s) failed: %s%ld", p->source,
                      resp->error < 0 ? resp->message : "HTTP ", resp->error < 0 ? 0L : resp->status);
                return;
        }
        if (gcp_subject_token(p->ext, resp->body, &subject) < 0) {
                failf(p, -EBADMSG, "the subject token URL's answer has no subject token in the format the file names");
                return;
        }
        sts_start(p, subject);
}

static void sts_start(GcpCredProvider *p, const SecBuf *subject) {
        const char *url = jstr(p->ext, "token_url"), *aud = jstr(p->ext, "audience"),
                   *type = jstr(p->ext, "subject_token_type");
        _cleanup_secbuf_ SecBuf *body = secbuf_new(1024);
        char *hdr[] = { (char *) "Content-Type: application/x-www-form-urlencoded", NULL };
        json_object *imp;
        int r;
        if (!url || !aud || !type || !store_url_valid(url)) {
                failf(p, -EINVAL, "the external account file needs token_url (https://), audience and subject_token_type");
                return;
        }
        bool impersonate = json_object_object_get_ex(p->ext, "service_account_impersonation_url", &imp);
        r = body ? url_form_append_str(body, "grant_type", TOKEN_EXCHANGE) : -ENOMEM;
        r = r < 0 ? r : url_form_append_str(body, "audience", aud);
        /* STS's token is for IAM Credentials when it is traded in again. */
        r = r < 0 ? r : url_form_append_str(body, "scope", impersonate ? "https://www.googleapis.com/auth/iam" : SCOPE);
        r = r < 0 ? r : url_form_append_str(body, "requested_token_type", ACCESS_TOKEN_TYPE);
        r = r < 0 ? r : url_form_append_str(body, "subject_token_type", type);
        r = r < 0 ? r : url_form_append(body, "subject_token", subject->data, subject->len);
        if (r < 0) {
                failf(p, r, "out of memory");
                return;
        }
        token_send(p, STEP_STS, "POST", url, hdr, body);
}

static void impersonate_start(GcpCredProvider *p, const OAuthToken *sts) {
        const char *url = jstr(p->ext, "service_account_impersonation_url");
        _cleanup_secbuf_ SecBuf *body = secbuf_new_from("{\"scope\":[\"" SCOPE "\"],\"lifetime\":\"3600s\"}",
                                                        strlen("{\"scope\":[\"" SCOPE "\"],\"lifetime\":\"3600s\"}"));
        _cleanup_erase_ char *auth = NULL;
        char *hdr[] = { (char *) "Content-Type: application/json", NULL, NULL };
        if (!url || !store_url_valid(url)) {
                failf(p, -EINVAL, "service_account_impersonation_url must be an https:// URL");
                return;
        }
        if (body)
                auth = secbuf_header_line("Authorization", "Bearer ", sts->access_token);
        if (!auth) {
                failf(p, -ENOMEM, "out of memory");
                return;
        }
        hdr[1] = auth;
        token_send(p, STEP_IMPERSONATE, "POST", url, hdr, body);
}

static void external_start(GcpCredProvider *p, const char *path) {
        json_object *src, *x;
        const char *file = NULL, *url = NULL;
        if (parse_file(p, path, "external account file", &p->ext) < 0)
                return;
        snprintf(p->source, sizeof(p->source), "workload identity federation (%s)", path);
        if (json_object_object_get_ex(p->ext, "credential_source", &src)) {
                file = jstr(src, "file");
                url = jstr(src, "url");
        }
        if (file) {
                _cleanup_secbuf_ SecBuf *raw = NULL, *subject = NULL;
                char msg[768];
                int r = oauth_read_credential(file, "subject token file", &raw, msg, sizeof(msg));
                if (r < 0) {
                        failf(p, r, "%s", msg);
                        return;
                }
                if (gcp_subject_token(p->ext, raw, &subject) < 0) {
                        failf(p, -EBADMSG, "the subject token file %s has no token in the format %s names", file, path);
                        return;
                }
                sts_start(p, subject);
                return;
        }
        if (!url || !gcp_metadata_url_valid(url)) {
                failf(p, -EINVAL, "%s: credential_source needs a file or an https:// (or loopback) url; executable and "
                      "AWS sources are not supported", path);
                return;
        }
        /* The headers the file names, such as Metadata: True for Azure's IMDS. */
        char *hdr[9] = { NULL };
        size_t n = 0;
        if (json_object_object_get_ex(src, "headers", &x) && json_object_is_type(x, json_type_object)) {
                json_object_object_foreach(x, k, v) {
                        if (n < ELEMENTSOF(hdr) - 1 && json_object_is_type(v, json_type_string) &&
                            asprintf(&hdr[n], "%s: %s", k, json_object_get_string(v)) >= 0)
                                n++;
                }
        }
        p->step = STEP_SUBJECT;
        HttpRequest req = { .method = "GET", .url = url, .headers = hdr };
        int r = http_request(p->pool, &req, on_subject, p, &p->call);
        for (size_t i = 0; i < n; i++)
                erase_and_free(hdr[i]);
        if (r < 0)
                failf(p, r, "cannot send the subject token request: %s", strerror(-r));
}

/* ------------------------------------------------------------- metadata ---- */

static void metadata_start(GcpCredProvider *p) {
        _cleanup_free_ char *url = NULL, *base = NULL;
        char *hdr[] = { (char *) "Metadata-Flavor: Google", NULL };
        if (p->cfg->metadata_endpoint)
                base = strdup(p->cfg->metadata_endpoint);
        else if (env("GCE_METADATA_HOST")) {
                if (asprintf(&base, "http://%s", env("GCE_METADATA_HOST")) < 0)
                        base = NULL;
        } else
                base = strdup(GCP_METADATA_DEFAULT);
        if (!base || asprintf(&url, "%s/computeMetadata/v1/instance/service-accounts/default/token?scopes=%s", base,
                              SCOPE) < 0) {
                url = NULL;
                failf(p, -ENOMEM, "out of memory");
                return;
        }
        snprintf(p->source, sizeof(p->source), "the metadata server %s", base);
        if (!gcp_metadata_url_valid(base)) {
                failf(p, -EINVAL, "the metadata server %s must be %s, or https:// or loopback (GCE_METADATA_HOST)", base,
                      GCP_METADATA_DEFAULT);
                return;
        }
        token_send(p, STEP_TOKEN, "GET", url, hdr, NULL);
}

/* --------------------------------------------------------------- public ---- */

static void acquire(GcpCredProvider *p) {
        GcpAuthMethod m = p->cfg->method;
        const char *path = m == GCP_AUTH_SERVICE_ACCOUNT_KEY ? p->cfg->key_file
                         : m == GCP_AUTH_EXTERNAL_ACCOUNT  ? p->cfg->credentials_file
                                                           : NULL;
        json_object *o = NULL;

        p->step = STEP_TOKEN; /* joined from here on */
        if (m == GCP_AUTH_DEFAULT) {
                path = env("GOOGLE_APPLICATION_CREDENTIALS");
                if (!path) {
                        metadata_start(p);
                        return;
                }
                if (parse_file(p, path, "GOOGLE_APPLICATION_CREDENTIALS file", &o) < 0)
                        return;
                const char *type = jstr(o, "type");
                m = type && streq(type, "external_account") ? GCP_AUTH_EXTERNAL_ACCOUNT : GCP_AUTH_SERVICE_ACCOUNT_KEY;
                json_put_wiped(o);
                o = NULL;
        }
        if (m == GCP_AUTH_METADATA) {
                metadata_start(p);
                return;
        }
        if (m == GCP_AUTH_EXTERNAL_ACCOUNT) {
                external_start(p, path);
                return;
        }
        if (parse_file(p, path, "service account key file", &o) < 0)
                return;
        service_account_start(p, o, path);
        json_put_wiped(o);
}

int gcp_credentials_new(const GcpAuthConfig *cfg, HttpPool *pool, GcpCredProvider **ret) {
        GcpCredProvider *p = calloc(1, sizeof(GcpCredProvider));
        if (!p)
                return -ENOMEM;
        p->cfg = cfg;
        p->pool = pool;
        p->waiters_tail = &p->waiters;
        *ret = p;
        return 0;
}

GcpCredProvider *gcp_credentials_free(GcpCredProvider *p) {
        if (!p)
                return NULL;
        if (p->call)
                http_call_cancel(p->call);
        while (p->waiters) {
                Waiter *w = p->waiters;
                p->waiters = w->next;
                free(w);
        }
        json_put_wiped(p->ext);
        oauth_token_clear(&p->token);
        free(p);
        return NULL;
}

void gcp_credentials_get(GcpCredProvider *p, gcp_token_cb cb, void *userdata) {
        if (p->step == STEP_NONE && oauth_token_usable(&p->token)) {
                cb(0, NULL, &p->token, false, p->source, userdata);
                return;
        }
        Waiter *w = calloc(1, sizeof(Waiter));
        if (!w) {
                cb(-ENOMEM, "out of memory", NULL, false, p->source, userdata);
                return;
        }
        *w = (Waiter) { .cb = cb, .userdata = userdata };
        *p->waiters_tail = w;
        p->waiters_tail = &w->next;
        if (p->step == STEP_NONE)
                acquire(p);
}

void gcp_credentials_invalidate(GcpCredProvider *p, uint64_t serial) {
        if (p->token.serial == serial)
                oauth_token_clear(&p->token);
}
