/* SPDX-License-Identifier: MIT */
/* The AWS credential sources, as the SDKs define them: static keys, the shared credentials
 * file, the environment, a web identity token exchanged at STS (AssumeRoleWithWebIdentity,
 * unsigned), EC2 instance metadata (IMDSv2: a session token first), the ECS / EKS Pod
 * Identity container endpoint; "default" tries them in the SDKs' order; assume_role (signed
 * STS AssumeRole) goes on top of any of them. Credentials that expire are cached until 15
 * minutes before they do; files are read at each use. */
#include "stores/aws-credentials.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/config.h"
#include "stores/aws-formats.h"
#include "stores/aws-request.h"
#include "stores/store-url.h"
#include "util/cleanup.h"
#include "util/json.h"
#include "util/urlencode.h"

#define CREDENTIAL_FILE_MAX (64U * 1024U)
#define REFRESH_AHEAD_SEC (15 * 60)
#define IMDS_DEFAULT "http://169.254.169.254"
#define IMDS_TOKEN_TTL "21600"
#define ECS_DEFAULT_HOST "http://169.254.170.2"
#define STS_VERSION "2011-06-15"
#define STS_DURATION "3600"

const char *const aws_auth_names[_AWS_AUTH_MAX] = {
        [AWS_AUTH_DEFAULT] = "default",         [AWS_AUTH_STATIC] = "static",
        [AWS_AUTH_SHARED_FILE] = "shared-file", [AWS_AUTH_WEB_IDENTITY] = "web-identity",
        [AWS_AUTH_IMDS] = "imds",               [AWS_AUTH_CONTAINER] = "container",
        [AWS_AUTH_ENVIRONMENT] = "environment",
};

typedef struct Waiter Waiter;
struct Waiter {
        aws_credentials_cb cb;
        void *userdata;
        Waiter *next;
};

typedef enum Step { STEP_NONE, STEP_WEB_IDENTITY, STEP_IMDS_TOKEN, STEP_IMDS_ROLE, STEP_IMDS_CREDS,
                    STEP_CONTAINER, STEP_ASSUME_ROLE } Step;

struct AwsCredProvider {
        const AwsAuthConfig *cfg;
        HttpPool *pool;
        KubeTokenSource *sa;
        KubeTokenWait *sa_wait;
        char *region;
        char *sts_url;
        AwsCredentials cached;
        bool have;
        int64_t refresh_at; /* 0: re-read at each use (file-based, no assume_role) */
        /* an acquisition in flight */
        Step step;
        HttpCall *call;
        AwsCredentials base; /* what assume_role signs with */
        SecBuf *imds_token;
        char *imds_base;
        char source[384];
        Waiter *waiters, **waiters_tail;
};

void aws_credentials_clear(AwsCredentials *c) {
        c->key_id = secbuf_free(c->key_id);
        c->secret_key = secbuf_free(c->secret_key);
        c->session_token = secbuf_free(c->session_token);
        c->expiration = 0;
}

static bool creds_equal(const AwsCredentials *a, const AwsCredentials *b) {
        return secbuf_equal(a->key_id, b->key_id) && secbuf_equal(a->secret_key, b->secret_key) &&
               ((!a->session_token && !b->session_token) ||
                (a->session_token && b->session_token && secbuf_equal(a->session_token, b->session_token)));
}

static const char *env(const char *name) {
        const char *v = getenv(name);
        return v && *v ? v : NULL;
}

/* ------------------------------------------------------------ finishing ---- */

static void finish(AwsCredProvider *p, int error, const char *message, AwsCredentials *c) {
        bool fresh = false;
        p->step = STEP_NONE;
        p->call = NULL;
        aws_credentials_clear(&p->base);
        p->imds_token = secbuf_free(p->imds_token);
        if (error >= 0) {
                fresh = !p->have || !creds_equal(&p->cached, c);
                aws_credentials_clear(&p->cached);
                p->cached = *c;
                *c = (AwsCredentials) { 0 };
                p->have = true;
                int64_t now = time(NULL), exp = p->cached.expiration;
                if (exp > 0)
                        p->refresh_at = exp - now > 2 * REFRESH_AHEAD_SEC ? exp - REFRESH_AHEAD_SEC : now + (exp - now) / 2;
                else if (p->cfg->assume_role_arn || p->cached.session_token)
                        p->refresh_at = now + REFRESH_AHEAD_SEC; /* from an endpoint that named no expiry */
                else
                        p->refresh_at = 0;
        }
        Waiter *w = p->waiters;
        p->waiters = NULL;
        p->waiters_tail = &p->waiters;
        while (w) {
                Waiter *next = w->next;
                w->cb(error, message, error >= 0 ? &p->cached : NULL, fresh, p->source, w->userdata);
                free(w);
                w = next;
        }
}

static void failf(AwsCredProvider *p, int error, const char *fmt, ...) _printf_(3, 4);
static void failf(AwsCredProvider *p, int error, const char *fmt, ...) {
        char msg[1200];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        finish(p, error, msg, NULL);
}

/* ------------------------------------------------------------- file reads ---- */

static int read_file(AwsCredProvider *p, const char *path, const char *what, SecBuf **ret) {
        _cleanup_free_ char *m = NULL;
        int r = config_check_file_trust(path, &m);
        if (r < 0 && m) {
                failf(p, r, "%s: %s", what, m);
                return r;
        }
        r = secbuf_read_file(path, CREDENTIAL_FILE_MAX, true, ret);
        if (r < 0) {
                failf(p, r, "cannot read the %s %s: %s", what, path, strerror(-r));
                return r;
        }
        if ((*ret)->len == 0) {
                *ret = secbuf_free(*ret);
                failf(p, -EINVAL, "the %s %s is empty", what, path);
                return -EINVAL;
        }
        return 0;
}

static int read_static(AwsCredProvider *p, AwsCredentials *c) {
        const AwsAuthConfig *a = p->cfg;
        if (a->access_key_id_file) {
                if (read_file(p, a->access_key_id_file, "access key id file", &c->key_id) < 0)
                        return -EINVAL;
        } else if (!(c->key_id = secbuf_new_from(a->access_key_id, strlen(a->access_key_id)))) {
                failf(p, -ENOMEM, "out of memory");
                return -ENOMEM;
        }
        if (read_file(p, a->secret_access_key_file, "secret access key file", &c->secret_key) < 0)
                return -EINVAL;
        if (a->session_token_file && read_file(p, a->session_token_file, "session token file", &c->session_token) < 0)
                return -EINVAL;
        snprintf(p->source, sizeof(p->source), "static keys (secret key file %s)", a->secret_access_key_file);
        return 0;
}

static int read_environment(AwsCredProvider *p, AwsCredentials *c) {
        const char *id = env("AWS_ACCESS_KEY_ID"), *key = env("AWS_SECRET_ACCESS_KEY"), *tok = env("AWS_SESSION_TOKEN");
        if (!id || !key) {
                failf(p, -ENOKEY, "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not both set");
                return -ENOKEY;
        }
        if (!(c->key_id = secbuf_new_from(id, strlen(id))) || !(c->secret_key = secbuf_new_from(key, strlen(key))) ||
            (tok && !(c->session_token = secbuf_new_from(tok, strlen(tok))))) {
                failf(p, -ENOMEM, "out of memory");
                return -ENOMEM;
        }
        snprintf(p->source, sizeof(p->source), "the environment (AWS_ACCESS_KEY_ID%s)",
                 tok ? ", AWS_SESSION_TOKEN" : "");
        return 0;
}

static char *shared_file_path(const AwsAuthConfig *a) {
        char *path = NULL;
        if (a->credentials_file)
                return strdup(a->credentials_file);
        if (env("AWS_SHARED_CREDENTIALS_FILE"))
                return strdup(env("AWS_SHARED_CREDENTIALS_FILE"));
        if (asprintf(&path, "%s/.aws/credentials", env("HOME") ? env("HOME") : "/root") < 0)
                return NULL;
        return path;
}

static const char *shared_profile(const AwsAuthConfig *a) {
        return a->profile ? a->profile : env("AWS_PROFILE") ? env("AWS_PROFILE") : "default";
}

static int read_shared_file(AwsCredProvider *p, AwsCredentials *c) {
        _cleanup_free_ char *path = shared_file_path(p->cfg);
        _cleanup_secbuf_ SecBuf *ini = NULL;
        const char *profile = shared_profile(p->cfg);
        if (!path) {
                failf(p, -ENOMEM, "out of memory");
                return -ENOMEM;
        }
        _cleanup_free_ char *m = NULL;
        int r = config_check_file_trust(path, &m);
        if (r < 0 && m) {
                failf(p, r, "shared credentials file: %s", m);
                return r;
        }
        r = secbuf_read_file(path, AWS_INI_FILE_MAX, false, &ini);
        if (r < 0) {
                failf(p, r, "cannot read the shared credentials file %s: %s", path, strerror(-r));
                return r;
        }
        if (aws_ini_value(ini, profile, "aws_access_key_id", &c->key_id) < 0 ||
            aws_ini_value(ini, profile, "aws_secret_access_key", &c->secret_key) < 0) {
                failf(p, -ENOKEY, "the shared credentials file %s has no aws_access_key_id and aws_secret_access_key in profile [%s]",
                      path, profile);
                return -ENOKEY;
        }
        (void) aws_ini_value(ini, profile, "aws_session_token", &c->session_token);
        snprintf(p->source, sizeof(p->source), "shared credentials file %s, profile %s", path, profile);
        return 0;
}

/* ----------------------------------------------------------- JSON creds ---- */

/* {"AccessKeyId", "SecretAccessKey", "Token", "Expiration"}: IMDS and the container endpoint. */
static int parse_json_creds(const HttpResponse *resp, AwsCredentials *c, const char **ret_why) {
        json_object *o = NULL, *id, *key, *tok, *exp, *code;
        int r = -EBADMSG;
        *ret_why = "not a JSON object with AccessKeyId, SecretAccessKey and Token";
        if (json_parse_strict(resp->body->data, resp->body->len, &o) < 0)
                goto out;
        if (json_object_object_get_ex(o, "Code", &code) && json_object_is_type(code, json_type_string) &&
            !streq(json_object_get_string(code), "Success")) {
                *ret_why = "the endpoint says the credentials are not available (Code is not Success)";
                goto out;
        }
        if (!json_object_object_get_ex(o, "AccessKeyId", &id) || !json_object_is_type(id, json_type_string) ||
            !json_object_object_get_ex(o, "SecretAccessKey", &key) || !json_object_is_type(key, json_type_string))
                goto out;
        c->key_id = secbuf_new_from(json_object_get_string(id), (size_t) json_object_get_string_len(id));
        c->secret_key = secbuf_new_from(json_object_get_string(key), (size_t) json_object_get_string_len(key));
        if (json_object_object_get_ex(o, "Token", &tok) && json_object_is_type(tok, json_type_string))
                c->session_token = secbuf_new_from(json_object_get_string(tok), (size_t) json_object_get_string_len(tok));
        if (!c->key_id || !c->secret_key) {
                r = -ENOMEM;
                *ret_why = "out of memory";
                goto out;
        }
        if (json_object_object_get_ex(o, "Expiration", &exp) && json_object_is_type(exp, json_type_string) &&
            aws_parse_time(json_object_get_string(exp), &c->expiration) < 0) {
                *ret_why = "Expiration is not an ISO 8601 time";
                goto out;
        }
        r = 0;
out:
        json_put_wiped(o);
        if (r < 0)
                aws_credentials_clear(c);
        return r;
}

/* ------------------------------------------------------------------ STS ---- */

static void assume_role_start(AwsCredProvider *p);

/* The method's own credentials are in: with assume_role they only sign AssumeRole. */
static void got_base(AwsCredProvider *p, AwsCredentials *c) {
        if (p->cfg->assume_role_arn) {
                p->base = *c;
                assume_role_start(p);
                return;
        }
        finish(p, 0, NULL, c);
}

/* <Credentials><AccessKeyId/><SecretAccessKey/><SessionToken/><Expiration/></Credentials> */
static int parse_sts_creds(const HttpResponse *resp, AwsCredentials *c) {
        _cleanup_secbuf_ SecBuf *exp = NULL;
        const void *d = resp->body->data;
        size_t n = resp->body->len;
        int r;
        if ((r = aws_xml_value(d, n, "AccessKeyId", &c->key_id)) < 0 ||
            (r = aws_xml_value(d, n, "SecretAccessKey", &c->secret_key)) < 0 ||
            (r = aws_xml_value(d, n, "SessionToken", &c->session_token)) < 0 ||
            (r = aws_xml_value(d, n, "Expiration", &exp)) < 0 ||
            (r = aws_parse_time(secbuf_str(exp), &c->expiration)) < 0) {
                aws_credentials_clear(c);
                return r;
        }
        return 0;
}

static void on_sts(const HttpResponse *resp, void *userdata) {
        AwsCredProvider *p = userdata;
        const char *action = p->step == STEP_ASSUME_ROLE ? "AssumeRole" : "AssumeRoleWithWebIdentity";
        const char *role = p->step == STEP_ASSUME_ROLE ? p->cfg->assume_role_arn
                                                       : (p->cfg->role_arn ? p->cfg->role_arn : env("AWS_ROLE_ARN"));
        char code[AWS_ERROR_CODE_MAX], msg[AWS_ERROR_MESSAGE_MAX], skew[192];
        AwsCredentials c = { 0 };

        p->call = NULL;
        if (resp->error < 0) {
                failf(p, resp->error, "STS %s for role %s at %s failed: %s", action, role, p->sts_url, resp->message);
                return;
        }
        if (resp->status != 200) {
                if (p->step == STEP_WEB_IDENTITY && p->sa && (resp->status == 400 || resp->status == 403))
                        kube_token_invalidate(p->sa); /* the next attempt presents a new one */
                aws_error_parse(resp, code, msg);
                aws_clock_skew_text(resp, skew, sizeof(skew));
                failf(p, resp->status == 403 || resp->status == 400 ? -EACCES : -EIO,
                      "STS %s for role %s refused: HTTP %ld %s%s%s%s", action, role, resp->status, *code ? code : "",
                      *msg ? ": " : "", msg, skew);
                return;
        }
        int r = parse_sts_creds(resp, &c);
        if (r < 0) {
                failf(p, r == -ENOMEM ? r : -EBADMSG, "STS %s for role %s: malformed reply (no Credentials with AccessKeyId, SecretAccessKey, SessionToken, Expiration)",
                      action, role);
                return;
        }
        size_t l = strlen(p->source);
        if (p->step == STEP_ASSUME_ROLE)
                snprintf(p->source + l, sizeof(p->source) - l, ", then role %s (STS AssumeRole)", role);
        else
                snprintf(p->source, sizeof(p->source), "web identity token%s%s for role %s (STS AssumeRoleWithWebIdentity)",
                         p->sa ? " of service account " : "", p->sa ? kube_token_source_name(p->sa) : "", role);
        if (p->step == STEP_WEB_IDENTITY && p->cfg->assume_role_arn) {
                p->base = c;
                assume_role_start(p);
                return;
        }
        finish(p, 0, NULL, &c);
}

static void sts_send(AwsCredProvider *p, const SecBuf *body, const AwsCredentials *signer) {
        AwsRequest req = { .url = p->sts_url, .region = p->region, .service = "sts",
                           .content_type = "application/x-www-form-urlencoded; charset=utf-8", .body = body,
                           .creds = signer };
        int r = aws_send(p->pool, &req, on_sts, p, &p->call);
        if (r < 0)
                failf(p, r, "cannot send the STS request: %s", strerror(-r));
}

static void web_identity_send(AwsCredProvider *p, const char *role, const SecBuf *token) {
        const char *session = env("AWS_ROLE_SESSION_NAME") ? env("AWS_ROLE_SESSION_NAME") : "secretsyncd";
        _cleanup_secbuf_ SecBuf *body = secbuf_new(2048);

        if (!body || url_form_append_str(body, "Action", "AssumeRoleWithWebIdentity") < 0 ||
            url_form_append_str(body, "Version", STS_VERSION) < 0 || url_form_append_str(body, "RoleArn", role) < 0 ||
            url_form_append_str(body, "RoleSessionName", session) < 0 ||
            url_form_append_str(body, "DurationSeconds", STS_DURATION) < 0 ||
            url_form_append(body, "WebIdentityToken", token->data, token->len) < 0) {
                failf(p, -ENOMEM, "out of memory");
                return;
        }
        p->step = STEP_WEB_IDENTITY;
        sts_send(p, body, NULL); /* unsigned: the token is the proof */
}

static void on_sa_token(int error, const char *message, const SecBuf *token, void *userdata) {
        AwsCredProvider *p = userdata;
        p->sa_wait = NULL;
        if (error < 0) {
                failf(p, error, "web identity: %s", message);
                return;
        }
        web_identity_send(p, p->cfg->role_arn ? p->cfg->role_arn : env("AWS_ROLE_ARN"), token);
}

static void web_identity_start(AwsCredProvider *p) {
        const char *role = p->cfg->role_arn ? p->cfg->role_arn : env("AWS_ROLE_ARN");
        const char *file = p->cfg->token_file ? p->cfg->token_file : env("AWS_WEB_IDENTITY_TOKEN_FILE");
        _cleanup_secbuf_ SecBuf *token = NULL;

        if (!role || (!file && !p->sa)) {
                failf(p, -ENOKEY, "web identity: no role ARN and token file (set role_arn and token_file, or AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE)");
                return;
        }
        if (p->sa) {
                p->step = STEP_WEB_IDENTITY;
                int r = kube_token_get(p->sa, on_sa_token, p, &p->sa_wait);
                if (r < 0)
                        failf(p, r, "web identity: cannot request the service account token: %s", strerror(-r));
                return;
        }
        if (read_file(p, file, "web identity token file", &token) < 0)
                return;
        web_identity_send(p, role, token);
}

static void assume_role_start(AwsCredProvider *p) {
        const AwsAuthConfig *a = p->cfg;
        _cleanup_secbuf_ SecBuf *body = secbuf_new(512);
        if (!body || url_form_append_str(body, "Action", "AssumeRole") < 0 || url_form_append_str(body, "Version", STS_VERSION) < 0 ||
            url_form_append_str(body, "RoleArn", a->assume_role_arn) < 0 ||
            url_form_append_str(body, "RoleSessionName", a->session_name ? a->session_name : "secretsyncd") < 0 ||
            url_form_append_str(body, "DurationSeconds", STS_DURATION) < 0 ||
            (a->external_id && url_form_append_str(body, "ExternalId", a->external_id) < 0)) {
                failf(p, -ENOMEM, "out of memory");
                return;
        }
        p->step = STEP_ASSUME_ROLE;
        sts_send(p, body, &p->base);
}

/* ----------------------------------------------------------------- IMDS ---- */

static void imds_send(AwsCredProvider *p, Step step, const char *method, const char *path);

static void on_imds(const HttpResponse *resp, void *userdata) {
        AwsCredProvider *p = userdata;
        static const char *const what[] = { [STEP_IMDS_TOKEN] = "session token (PUT /latest/api/token)",
                                            [STEP_IMDS_ROLE] = "role name", [STEP_IMDS_CREDS] = "role credentials" };
        p->call = NULL;
        if (resp->error < 0) {
                failf(p, resp->error, "EC2 instance metadata at %s: %s: %s", p->imds_base, what[p->step], resp->message);
                return;
        }
        if (resp->status != 200) {
                failf(p, resp->status == 404 ? -ENOKEY : -EACCES, "EC2 instance metadata at %s: %s: HTTP %ld%s",
                      p->imds_base, what[p->step], resp->status,
                      resp->status == 404 && p->step != STEP_IMDS_TOKEN ? " (no IAM role attached to the instance?)" : "");
                return;
        }
        if (p->step == STEP_IMDS_TOKEN) {
                p->imds_token = secbuf_dup(resp->body);
                if (!p->imds_token) {
                        failf(p, -ENOMEM, "out of memory");
                        return;
                }
                imds_send(p, STEP_IMDS_ROLE, "GET", "/latest/meta-data/iam/security-credentials/");
                return;
        }
        if (p->step == STEP_IMDS_ROLE) {
                _cleanup_free_ char *path = NULL, *role = strndup((const char *) resp->body->data,
                                                                  strcspn((const char *) resp->body->data, "\r\n"));
                if (!role || !*role || strchr(role, '/') || asprintf(&path, "/latest/meta-data/iam/security-credentials/%s", role) < 0) {
                        failf(p, -EBADMSG, "EC2 instance metadata at %s: no IAM role name in the answer", p->imds_base);
                        return;
                }
                snprintf(p->source, sizeof(p->source), "EC2 instance metadata (role %s)", role);
                imds_send(p, STEP_IMDS_CREDS, "GET", path);
                return;
        }
        AwsCredentials c = { 0 };
        const char *why;
        int r = parse_json_creds(resp, &c, &why);
        if (r < 0) {
                failf(p, r, "EC2 instance metadata at %s: role credentials: %s", p->imds_base, why);
                return;
        }
        got_base(p, &c);
}

static void imds_send(AwsCredProvider *p, Step step, const char *method, const char *path) {
        _cleanup_free_ char *url = NULL;
        _cleanup_erase_ char *h = NULL;
        char *hdr[2] = { NULL, NULL };
        int r;
        if (asprintf(&url, "%s%s", p->imds_base, path) < 0)
                url = NULL;
        if (step == STEP_IMDS_TOKEN)
                r = asprintf(&h, "X-aws-ec2-metadata-token-ttl-seconds: %s", IMDS_TOKEN_TTL);
        else
                r = (h = secbuf_header_line("X-aws-ec2-metadata-token", "", p->imds_token)) ? 0 : -1;
        if (r < 0 || !url) {
                h = NULL;
                failf(p, -ENOMEM, "out of memory");
                return;
        }
        hdr[0] = h;
        p->step = step;
        HttpRequest req = { .method = method, .url = url, .headers = hdr };
        r = http_request(p->pool, &req, on_imds, p, &p->call);
        if (r < 0)
                failf(p, r, "cannot send the instance metadata request: %s", strerror(-r));
}

static void imds_start(AwsCredProvider *p) {
        const char *base = env("AWS_EC2_METADATA_SERVICE_ENDPOINT") ? env("AWS_EC2_METADATA_SERVICE_ENDPOINT") : IMDS_DEFAULT;
        free(p->imds_base);
        p->imds_base = strdup(base);
        if (!p->imds_base) {
                failf(p, -ENOMEM, "out of memory");
                return;
        }
        size_t n = strlen(p->imds_base);
        while (n > 0 && p->imds_base[n - 1] == '/')
                p->imds_base[--n] = 0;
        snprintf(p->source, sizeof(p->source), "EC2 instance metadata");
        imds_send(p, STEP_IMDS_TOKEN, "PUT", "/latest/api/token");
}

/* ------------------------------------------------------------ container ---- */

/* As the SDKs: plain http only to loopback or the ECS / EKS Pod Identity link-local hosts. */
static bool container_url_allowed(const char *u) {
        static const char *const ok[] = { "http://169.254.170.2/", "http://169.254.170.2:", "http://169.254.170.23/",
                                          "http://169.254.170.23:", "http://[fd00:ec2::23]/", "http://[fd00:ec2::23]:" };
        if (store_url_valid(u))
                return true;
        for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
                if (strncmp(u, ok[i], strlen(ok[i])) == 0)
                        return true;
        return false;
}

static void on_container(const HttpResponse *resp, void *userdata) {
        AwsCredProvider *p = userdata;
        AwsCredentials c = { 0 };
        const char *why;
        p->call = NULL;
        if (resp->error < 0) {
                failf(p, resp->error, "%s: %s", p->source, resp->message);
                return;
        }
        if (resp->status != 200) {
                failf(p, resp->status == 401 || resp->status == 403 ? -EACCES : -EIO, "%s: HTTP %ld%s", p->source,
                      resp->status, resp->status == 401 || resp->status == 403 ? " (is the authorization token right?)" : "");
                return;
        }
        int r = parse_json_creds(resp, &c, &why);
        if (r < 0) {
                failf(p, r, "%s: %s", p->source, why);
                return;
        }
        got_base(p, &c);
}

static void container_start(AwsCredProvider *p) {
        const char *full = env("AWS_CONTAINER_CREDENTIALS_FULL_URI"), *rel = env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
        const char *tok_file = env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
        _cleanup_free_ char *url = NULL;
        _cleanup_erase_ char *auth = NULL;
        _cleanup_secbuf_ SecBuf *token = NULL;
        char *hdr[2] = { NULL, NULL };

        if (rel) {
                if (asprintf(&url, "%s%s%s", ECS_DEFAULT_HOST, rel[0] == '/' ? "" : "/", rel) < 0)
                        url = NULL;
        } else if (full)
                url = strdup(full);
        else {
                failf(p, -ENOKEY, "container credentials: neither AWS_CONTAINER_CREDENTIALS_RELATIVE_URI nor AWS_CONTAINER_CREDENTIALS_FULL_URI is set");
                return;
        }
        if (!url) {
                failf(p, -ENOMEM, "out of memory");
                return;
        }
        snprintf(p->source, sizeof(p->source), "container credentials endpoint %s", url);
        if (!container_url_allowed(url)) {
                failf(p, -EPERM, "%s: must be https://, or http:// to loopback, 169.254.170.2 or 169.254.170.23", p->source);
                return;
        }
        if (tok_file) {
                if (read_file(p, tok_file, "container authorization token file", &token) < 0)
                        return;
        } else if (env("AWS_CONTAINER_AUTHORIZATION_TOKEN"))
                token = secbuf_new_from(env("AWS_CONTAINER_AUTHORIZATION_TOKEN"), strlen(env("AWS_CONTAINER_AUTHORIZATION_TOKEN")));
        if (token) {
                if (memchr(token->data, '\n', token->len) || memchr(token->data, '\r', token->len) ||
                    !(auth = secbuf_header_line("Authorization", "", token))) {
                        failf(p, -EINVAL, "%s: the authorization token is not a single line", p->source);
                        return;
                }
                hdr[0] = auth;
        }
        p->step = STEP_CONTAINER;
        HttpRequest req = { .url = url, .headers = hdr };
        int r = http_request(p->pool, &req, on_container, p, &p->call);
        if (r < 0)
                failf(p, r, "cannot send the container credentials request: %s", strerror(-r));
}

/* -------------------------------------------------------------- choosing ---- */

static bool shared_file_has_profile(const AwsAuthConfig *a) {
        _cleanup_free_ char *path = shared_file_path(a);
        _cleanup_secbuf_ SecBuf *ini = NULL, *v = NULL;
        return path && secbuf_read_file(path, AWS_INI_FILE_MAX, false, &ini) >= 0 &&
               aws_ini_value(ini, shared_profile(a), "aws_access_key_id", &v) >= 0;
}

/* The SDKs' default order: environment, web identity, shared file, container, IMDS. */
static AwsAuthMethod default_source(const AwsAuthConfig *a) {
        if (env("AWS_ACCESS_KEY_ID") && env("AWS_SECRET_ACCESS_KEY"))
                return AWS_AUTH_ENVIRONMENT;
        if (env("AWS_ROLE_ARN") && env("AWS_WEB_IDENTITY_TOKEN_FILE"))
                return AWS_AUTH_WEB_IDENTITY;
        if (shared_file_has_profile(a))
                return AWS_AUTH_SHARED_FILE;
        if (env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") || env("AWS_CONTAINER_CREDENTIALS_FULL_URI"))
                return AWS_AUTH_CONTAINER;
        return AWS_AUTH_IMDS;
}

static void acquire(AwsCredProvider *p) {
        AwsAuthMethod m = p->cfg->method == AWS_AUTH_DEFAULT ? default_source(p->cfg) : p->cfg->method;
        AwsCredentials c = { 0 };
        int r;

        p->source[0] = 0;
        switch (m) {
        case AWS_AUTH_STATIC:
        case AWS_AUTH_ENVIRONMENT:
        case AWS_AUTH_SHARED_FILE:
                r = m == AWS_AUTH_STATIC ? read_static(p, &c) : m == AWS_AUTH_ENVIRONMENT ? read_environment(p, &c)
                                                                                          : read_shared_file(p, &c);
                if (r < 0) {
                        aws_credentials_clear(&c);
                        return; /* failed (and said why) */
                }
                got_base(p, &c);
                return;
        case AWS_AUTH_WEB_IDENTITY:
                web_identity_start(p);
                return;
        case AWS_AUTH_IMDS:
                imds_start(p);
                return;
        case AWS_AUTH_CONTAINER:
                container_start(p);
                return;
        default:
                failf(p, -EINVAL, "no credential source");
        }
}

/* --------------------------------------------------------------- public ---- */

int aws_credentials_new(const AwsAuthConfig *cfg, HttpPool *pool, KubeTokenSource *sa, const char *region,
                        const char *sts_url, AwsCredProvider **ret) {
        AwsCredProvider *p = calloc(1, sizeof(AwsCredProvider));
        if (!p)
                return -ENOMEM;
        p->cfg = cfg;
        p->pool = pool;
        p->sa = sa;
        p->waiters_tail = &p->waiters;
        p->region = strdup(region);
        p->sts_url = strdup(sts_url);
        if (!p->region || !p->sts_url) {
                aws_credentials_free(p);
                return -ENOMEM;
        }
        *ret = p;
        return 0;
}

AwsCredProvider *aws_credentials_free(AwsCredProvider *p) {
        if (!p)
                return NULL;
        if (p->call)
                http_call_cancel(p->call);
        kube_token_wait_cancel(p->sa_wait);
        while (p->waiters) {
                Waiter *w = p->waiters;
                p->waiters = w->next;
                free(w);
        }
        aws_credentials_clear(&p->cached);
        aws_credentials_clear(&p->base);
        secbuf_free(p->imds_token);
        free(p->imds_base);
        free(p->region);
        free(p->sts_url);
        free(p);
        return NULL;
}

void aws_credentials_get(AwsCredProvider *p, aws_credentials_cb cb, void *userdata) {
        if (p->have && p->refresh_at > 0 && time(NULL) < p->refresh_at) {
                cb(0, NULL, &p->cached, false, p->source, userdata);
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

void aws_credentials_invalidate(AwsCredProvider *p) {
        p->refresh_at = 0;
        p->have = false;
        aws_credentials_clear(&p->cached);
}
