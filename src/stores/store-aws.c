/* SPDX-License-Identifier: MIT */
/* AWS Secrets Manager: GetSecretValue (version stages, uuid/<VersionId>, names or ARNs,
 * SecretString and SecretBinary), and BatchGetSecretValue for the fetches that arrive in
 * one turn of the event loop (20 ids a call). Where the batch action is denied, one
 * GetSecretValue per secret for a while. Throttling and 5xx answers are retried with
 * backoff and jitter; credentials AWS refuses are refreshed once. Signing is libcurl's
 * (aws-request.c), credentials come from aws-credentials.c. */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stores/aws-credentials.h"
#include "stores/aws-formats.h"
#include "stores/aws-request.h"
#include "stores/store-replies.h"
#include "stores/store-url.h"
#include "stores/store.h"
#include "util/base64.h"
#include "util/duration.h"
#include "util/http.h"
#include "util/json.h"
#include "util/random.h"
#include "util/list.h"

#define AWS_BATCH_MAX 20                       /* ids in one BatchGetSecretValue */
#define AWS_SECRET_MAX (64U * 1024U)           /* Secrets Manager's limit on a secret */
#define AWS_BATCH_OFF_USEC (3600 * USEC_PER_SEC) /* after the batch action was denied */
#define AWS_RETRY_MAX 4                        /* throttling and 5xx: attempts after the first */
#define AWS_RETRY_BASE_USEC (200 * USEC_PER_MSEC)
#define AWS_RETRY_CAP_USEC (10 * USEC_PER_SEC)

typedef struct AwsRead AwsRead;
typedef struct AwsCall AwsCall;

typedef struct AwsStore {
        Store base;
        /* configuration */
        char *region;
        char *endpoint;
        char *sts_endpoint;
        char *ca_file;
        char *ca_pem;
        uint64_t timeout_usec; /* a whole request, to Secrets Manager or for credentials */
        AwsAuthConfig auth;
        /* run time */
        StoreContext ctx;
        HttpPool *pool;
        AwsCredProvider *creds;
        KubeTokenSource *sa_tokens; /* web identity from a service account */
        char *sm_url;  /* resolved endpoints */
        char *sts_url;
        char *sign_region;
        AwsRead *reads;   /* every fetch not yet answered */
        AwsCall *calls;   /* requests waiting for credentials, in flight or waiting to retry */
        unsigned batches_in_flight;
        sd_event_source *defer;
        uint64_t batch_off_until; /* CLOCK_MONOTONIC usec: no batch calls before */
        bool batch_denied_said;
        bool auth_failed_said;
        bool stopping;
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

static const char *env_region(void) {
        const char *r = getenv("AWS_REGION");
        if (!r || !*r)
                r = getenv("AWS_DEFAULT_REGION");
        return r && *r ? r : NULL;
}

static void check_arn(ConfigParser *p, Store *s, const config_setting_t *g, const char *key, const char *v) {
        if (v && strncmp(v, "arn:", 4) != 0)
                config_error(p, config_setting_get_member(g, key), "store '%s': %s \"%s\" is not an ARN", s->name, key, v);
}

static int aws_parse_config(Store *s, ConfigParser *p, const config_setting_t *g) {
        static const char *const keys[] = { "type", "region", "endpoint", "sts_endpoint", "ca_file", "ca_pem", "timeout", "auth", NULL };
        static const char *const method_keys[_AWS_AUTH_MAX][5] = {
                [AWS_AUTH_STATIC] = { "access_key_id", "access_key_id_file", "secret_access_key_file", "session_token_file" },
                [AWS_AUTH_SHARED_FILE] = { "credentials_file", "profile" },
                [AWS_AUTH_WEB_IDENTITY] = { "role_arn", "token_file", "service_account" },
        };
        static const char *const ar_keys[] = { "role_arn", "external_id", "session_name", NULL };
        /* What STS expects of an identity token (EKS IRSA's audience). */
        static const char *const sa_audiences[] = { "sts.amazonaws.com", NULL };
        AwsStore *a = (AwsStore *) s;
        AwsAuthConfig *au = &a->auth;

        config_check_keys(p, g, keys);
        if (config_get_string(p, g, "region", false, &a->region) > 0) {
                if (!region_valid(a->region))
                        config_error(p, config_setting_get_member(g, "region"),
                                     "store '%s': region \"%s\" is not an AWS region name like \"us-east-1\"", s->name,
                                     a->region);
        } else if (!env_region() || !region_valid(env_region()))
                config_error(p, g, "store '%s': no region: set 'region', or AWS_REGION in the daemon's environment",
                             s->name);
        get_url(p, s, g, "endpoint", &a->endpoint);
        get_url(p, s, g, "sts_endpoint", &a->sts_endpoint);
        store_parse_ca(p, s, g, &a->ca_file, &a->ca_pem);
        a->timeout_usec = 60 * USEC_PER_SEC;
        if (config_get_duration(p, g, "timeout", &a->timeout_usec) > 0 && a->timeout_usec < 100 * USEC_PER_MSEC)
                config_error(p, config_setting_get_member(g, "timeout"), "store '%s': 'timeout' must be at least 100ms",
                             s->name);

        const config_setting_t *ag;
        int m;
        if (store_parse_auth_method(p, s, g, aws_auth_names, AWS_AUTH_ENVIRONMENT, &ag, &m) < 0)
                return -EINVAL;
        if (!ag)
                return 0; /* method "default" */
        au->method = (AwsAuthMethod) m;
        const char *allowed[8] = { "method", "assume_role" };
        for (size_t i = 0; i < 5 && method_keys[au->method][i]; i++)
                allowed[2 + i] = method_keys[au->method][i];
        config_check_keys(p, ag, allowed);

        switch (au->method) {
        case AWS_AUTH_STATIC:
                config_get_string(p, ag, "access_key_id", false, &au->access_key_id);
                config_get_credential_file(p, ag, "access_key_id_file", false, &au->access_key_id_file);
                if (!au->access_key_id == !au->access_key_id_file)
                        config_error(p, ag, "store '%s': method static takes one of 'access_key_id' and 'access_key_id_file'",
                                     s->name);
                config_get_credential_file(p, ag, "secret_access_key_file", true, &au->secret_access_key_file);
                config_get_credential_file(p, ag, "session_token_file", false, &au->session_token_file);
                break;
        case AWS_AUTH_SHARED_FILE:
                config_get_credential_file(p, ag, "credentials_file", false, &au->credentials_file);
                config_get_string(p, ag, "profile", false, &au->profile);
                break;
        case AWS_AUTH_WEB_IDENTITY:
                config_get_string(p, ag, "role_arn", false, &au->role_arn);
                config_get_credential_file(p, ag, "token_file", false, &au->token_file);
                store_parse_service_account(p, s, ag, sa_audiences, &au->service_account);
                if (au->token_file && au->service_account)
                        config_error(p, config_setting_get_member(ag, "service_account"),
                                     "store '%s': set 'token_file' or 'service_account', not both", s->name);
                else if ((!au->role_arn && !getenv("AWS_ROLE_ARN")) ||
                         (!au->token_file && !au->service_account && !getenv("AWS_WEB_IDENTITY_TOKEN_FILE")))
                        config_error(p, ag,
                                     "store '%s': method web-identity needs 'role_arn' and 'token_file' or 'service_account' "
                                     "(or AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE in the daemon's environment)",
                                     s->name);
                check_arn(p, s, ag, "role_arn", au->role_arn);
                break;
        default:
                break;
        }

        const config_setting_t *ar = config_setting_get_member(ag, "assume_role");
        if (ar) {
                if (config_setting_type(ar) != CONFIG_TYPE_GROUP) {
                        config_error(p, ar, "store '%s': 'assume_role' must be a group { role_arn = ...; }", s->name);
                        return -EINVAL;
                }
                config_check_keys(p, ar, ar_keys);
                if (config_get_string(p, ar, "role_arn", true, &au->assume_role_arn) > 0)
                        check_arn(p, s, ar, "role_arn", au->assume_role_arn);
                config_get_string(p, ar, "external_id", false, &au->external_id);
                if (config_get_string(p, ar, "session_name", false, &au->session_name) <= 0 || !*au->session_name) {
                        free(au->session_name);
                        au->session_name = strdup("secretsyncd");
                }
        }
        return 0;
}

static void aws_dump_config(const Store *s, ConfigDump *d) {
        const AwsStore *a = (const AwsStore *) s;
        const AwsAuthConfig *au = &a->auth;
        if (a->region)
                config_dump_string(d, "region", a->region);
        if (a->endpoint)
                config_dump_string(d, "endpoint", a->endpoint);
        if (a->sts_endpoint)
                config_dump_string(d, "sts_endpoint", a->sts_endpoint);
        store_dump_ca(d, a->ca_file, a->ca_pem);
        config_dump_duration(d, "timeout", a->timeout_usec);
        config_dump_open(d, "auth");
        config_dump_string(d, "method", aws_auth_names[au->method]);
        if (au->access_key_id)
                config_dump_secret(d, "access_key_id", au->access_key_id);
        if (au->access_key_id_file)
                config_dump_string(d, "access_key_id_file", au->access_key_id_file);
        if (au->secret_access_key_file)
                config_dump_string(d, "secret_access_key_file", au->secret_access_key_file);
        if (au->session_token_file)
                config_dump_string(d, "session_token_file", au->session_token_file);
        if (au->credentials_file)
                config_dump_string(d, "credentials_file", au->credentials_file);
        if (au->profile)
                config_dump_string(d, "profile", au->profile);
        if (au->role_arn)
                config_dump_string(d, "role_arn", au->role_arn);
        if (au->token_file)
                config_dump_string(d, "token_file", au->token_file);
        store_dump_service_account(d, au->service_account);
        if (au->assume_role_arn) {
                config_dump_open(d, "assume_role");
                config_dump_string(d, "role_arn", au->assume_role_arn);
                if (au->external_id)
                        config_dump_string(d, "external_id", au->external_id);
                config_dump_string(d, "session_name", au->session_name);
                config_dump_close(d);
        }
        config_dump_close(d);
}

/* ---------------------------------------------------------------- reads ---- */

struct AwsRead {
        AwsStore *a;
        char *key;
        char *version; /* a stage, or "uuid/<VersionId>"; NULL: AWSCURRENT */
        store_fetch_cb cb;
        void *userdata;
        bool single;   /* goes out as GetSecretValue (pinned version, or the batch failed) */
        bool assigned; /* part of a call */
        AwsRead *prev, *next;
};

struct AwsCall {
        AwsStore *a;
        bool batch;
        AwsRead *reads[AWS_BATCH_MAX * 4]; /* several reads may share a key */
        size_t n_reads;
        HttpCall *http;
        sd_event_source *retry_timer;
        unsigned attempts;
        bool auth_retried;
        AwsCall *start_next; /* on_dispatch()'s list of calls to start */
        AwsCall *prev, *next;
};

static uint64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000U;
}

static void schedule_dispatch(AwsStore *a);

static void read_complete(AwsRead *r, int error, const char *message, const SecBuf *value, const char *version) {
        AwsStore *a = r->a;
        LIST_REMOVE(a->reads, r);
        StoreResult res = { .error = error, .message = message, .value = value, .version = version };
        store_fetch_cb cb = r->cb;
        void *ud = r->userdata;
        free(r->key);
        free(r->version);
        free(r);
        cb(&a->base, &res, ud);
}

static void call_free(AwsCall *c) {
        AwsStore *a = c->a;
        LIST_REMOVE(a->calls, c);
        if (c->http)
                http_call_cancel(c->http);
        sd_event_source_disable_unref(c->retry_timer);
        if (c->batch) {
                a->batches_in_flight--;
                schedule_dispatch(a); /* reads held back for a fuller batch go now */
        }
        free(c);
}

/* Every read of the call gets the same failure; the call ends. */
static void call_fail(AwsCall *c, int error, const char *message) {
        AwsRead *reads[ELEMENTSOF(c->reads)];
        size_t n = c->n_reads;
        memcpy(reads, c->reads, n * sizeof(reads[0]));
        call_free(c);
        for (size_t i = 0; i < n; i++)
                read_complete(reads[i], error, message, NULL, NULL);
}

/* The call's reads go back to be sent one GetSecretValue each. */
static void call_requeue_single(AwsCall *c) {
        for (size_t i = 0; i < c->n_reads; i++) {
                c->reads[i]->single = true;
                c->reads[i]->assigned = false;
        }
        AwsStore *a = c->a;
        call_free(c);
        schedule_dispatch(a);
}

static const char *read_shown(const AwsRead *r, char *buf, size_t size) {
        snprintf(buf, size, "%s%s%s", r->key, r->version ? " version " : "", r->version ? r->version : "");
        return buf;
}

/* A value from a GetSecretValue answer or a SecretValues[] entry: SecretString as is,
 * SecretBinary decoded, byte-exact. */
int aws_reply_secret(json_object *o, SecBuf **ret, const char **ret_version, const char **ret_why) {
        json_object *str, *bin, *ver;
        *ret_version = json_object_object_get_ex(o, "VersionId", &ver) && json_object_is_type(ver, json_type_string)
                               ? json_object_get_string(ver)
                               : NULL;
        if (json_object_object_get_ex(o, "SecretString", &str) && json_object_is_type(str, json_type_string)) {
                if ((size_t) json_object_get_string_len(str) > AWS_SECRET_MAX) {
                        *ret_why = "the secret is larger than Secrets Manager's 64 KiB limit";
                        return -EFBIG;
                }
                *ret = secbuf_new_from(json_object_get_string(str), (size_t) json_object_get_string_len(str));
                return *ret ? 0 : -ENOMEM;
        }
        if (json_object_object_get_ex(o, "SecretBinary", &bin) && json_object_is_type(bin, json_type_string)) {
                int r = base64_decode(json_object_get_string(bin), (size_t) json_object_get_string_len(bin), false, ret);
                if (r < 0) {
                        *ret_why = "SecretBinary is not base64";
                        return r;
                }
                if ((*ret)->len > AWS_SECRET_MAX) {
                        *ret = secbuf_free(*ret);
                        *ret_why = "the secret is larger than Secrets Manager's 64 KiB limit";
                        return -EFBIG;
                }
                return 0;
        }
        *ret_why = "the answer has neither SecretString nor SecretBinary";
        return -EBADMSG;
}

/* An AWS error code about one secret -> -errno and a sentence naming the secret. */
static int secret_error(AwsStore *a, const AwsRead *r, const char *action, const char *code, const char *msg,
                        long status, char *buf, size_t size) {
        char shown[512];
        read_shown(r, shown, sizeof(shown));
        const char *sep = *msg ? ": " : "";
        if (streq(code, "ResourceNotFoundException")) {
                snprintf(buf, size, "secret %s not found in AWS Secrets Manager (region %s): %s%s%s", shown,
                         a->sign_region, code, sep, msg);
                return -ENOENT;
        }
        if (streq(code, "AccessDeniedException") || streq(code, "AccessDenied")) {
                snprintf(buf, size, "access denied: secretsmanager:%s on secret %s (%s%s%s)", action, shown, code, sep, msg);
                return -EACCES;
        }
        if (streq(code, "DecryptionFailure")) {
                snprintf(buf, size, "AWS cannot decrypt secret %s with its KMS key (%s%s%s)", shown, code, sep, msg);
                return -EIO;
        }
        if (streq(code, "InvalidRequestException") || streq(code, "InvalidParameterException") ||
            streq(code, "ValidationException")) {
                snprintf(buf, size, "AWS refused to read secret %s (%s%s%s)", shown, code, sep, msg);
                return -EINVAL;
        }
        snprintf(buf, size, "reading secret %s: HTTP %ld %s%s%s", shown, status, *code ? code : "from AWS", sep, msg);
        return status >= 500 ? -EIO : -EINVAL;
}

static bool is_throttling(const char *code, long status) {
        return status == 429 || streq(code, "ThrottlingException") || streq(code, "TooManyRequestsException") ||
               streq(code, "RequestLimitExceeded") || streq(code, "Throttling") || streq(code, "LimitExceededException");
}

static bool is_auth_refused(const char *code) {
        static const char *const codes[] = { "ExpiredTokenException", "ExpiredToken", "UnrecognizedClientException",
                                             "InvalidClientTokenId", "InvalidSignatureException", "SignatureDoesNotMatch",
                                             "IncompleteSignature", "MissingAuthenticationToken", "InvalidAccessKeyId" };
        for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
                if (streq(code, codes[i]))
                        return true;
        return false;
}

/* --------------------------------------------------------------- calls ---- */

static void call_start(AwsCall *c);

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        AwsCall *c = userdata;
        c->retry_timer = sd_event_source_disable_unref(c->retry_timer);
        call_start(c);
        return 0;
}

/* Exponential backoff with full jitter, as the AWS SDKs retry. */
static int call_retry_later(AwsCall *c) {
        uint64_t delay = random_backoff(AWS_RETRY_BASE_USEC, AWS_RETRY_CAP_USEC, c->attempts);
        c->attempts++;
        return sd_event_add_time_relative(c->a->ctx.event, &c->retry_timer, CLOCK_MONOTONIC, delay, USEC_PER_MSEC,
                                          on_retry, c);
}

static void batch_denied(AwsCall *c, const char *code, const char *msg) {
        AwsStore *a = c->a;
        char b[DURATION_FORMAT_MAX], text[768];
        a->batch_off_until = now_usec() + AWS_BATCH_OFF_USEC;
        if (!a->batch_denied_said) {
                a->batch_denied_said = true;
                snprintf(text, sizeof(text),
                         "BatchGetSecretValue is denied (%s%s%s); reading one secret per GetSecretValue call for the next "
                         "%s (grant secretsmanager:BatchGetSecretValue to read 20 secrets a call)",
                         code, *msg ? ": " : "", msg, duration_format(AWS_BATCH_OFF_USEC, b, sizeof(b)));
                store_emit(&a->base, &a->ctx, STORE_EVENT_WARNING, 0, text);
        }
        call_requeue_single(c);
}

static void on_batch_answer(AwsCall *c, const HttpResponse *resp) {
        json_object *o = NULL, *vals, *errs, *x;
        char msg[1024];
        if (json_parse_strict(resp->body->data, resp->body->len, &o) < 0 ||
            !json_object_object_get_ex(o, "SecretValues", &vals) || !json_object_is_type(vals, json_type_array)) {
                json_put_wiped(o);
                call_requeue_single(c); /* cannot tell who got what: ask one by one */
                return;
        }
        if (!json_object_object_get_ex(o, "Errors", &errs) || !json_object_is_type(errs, json_type_array))
                errs = NULL;
        AwsCall copy = *c;
        c->n_reads = 0;
        call_free(c); /* the reads are answered below (or go back one by one) */
        bool requeued = false;
        for (size_t i = 0; i < copy.n_reads; i++) {
                AwsRead *r = copy.reads[i];
                bool done = false;
                for (size_t k = 0; !done && k < json_object_array_length(vals); k++) {
                        json_object *e = json_object_array_get_idx(vals, k), *name, *arn;
                        if (!((json_object_object_get_ex(e, "Name", &name) && streq_ptr(json_object_get_string(name), r->key)) ||
                              (json_object_object_get_ex(e, "ARN", &arn) && streq_ptr(json_object_get_string(arn), r->key))))
                                continue;
                        _cleanup_secbuf_ SecBuf *v = NULL;
                        const char *version, *why = NULL;
                        int k2 = aws_reply_secret(e, &v, &version, &why);
                        if (k2 < 0) {
                                snprintf(msg, sizeof(msg), "reading secret %s: %s", r->key, why ? why : strerror(-k2));
                                read_complete(r, k2, msg, NULL, NULL);
                        } else
                                read_complete(r, 0, NULL, v, version);
                        done = true;
                }
                for (size_t k = 0; !done && errs && k < json_object_array_length(errs); k++) {
                        json_object *e = json_object_array_get_idx(errs, k), *id, *code, *m;
                        if (!json_object_object_get_ex(e, "SecretId", &id) || !streq_ptr(json_object_get_string(id), r->key))
                                continue;
                        const char *cs = json_object_object_get_ex(e, "ErrorCode", &code) ? json_object_get_string(code) : NULL;
                        const char *ms = json_object_object_get_ex(e, "Message", &m) ? json_object_get_string(m) : NULL;
                        char cb[AWS_ERROR_CODE_MAX], mb[AWS_ERROR_MESSAGE_MAX];
                        snprintf(cb, sizeof(cb), "%s", cs ? cs : "");
                        snprintf(mb, sizeof(mb), "%s", ms ? ms : "");
                        int err = secret_error(copy.a, r, "GetSecretValue", cb, mb, 400, msg, sizeof(msg));
                        read_complete(r, err, msg, NULL, NULL);
                        done = true;
                }
                if (!done) { /* not in the answer (paged, or named differently): ask alone */
                        r->single = true;
                        r->assigned = false;
                        requeued = true;
                }
        }
        (void) x;
        json_put_wiped(o);
        if (requeued)
                schedule_dispatch(copy.a);
}

static void on_answer(const HttpResponse *resp, void *userdata) {
        AwsCall *c = userdata;
        AwsStore *a = c->a;
        char code[AWS_ERROR_CODE_MAX], emsg[AWS_ERROR_MESSAGE_MAX], skew[192], msg[1024], shown[512];
        const char *action = c->batch ? "BatchGetSecretValue" : "GetSecretValue";

        c->http = NULL;
        if (resp->error < 0) {
                snprintf(msg, sizeof(msg), "%s at %s: %s", action, a->sm_url, resp->message);
                call_fail(c, resp->error, msg);
                return;
        }
        if (resp->status != 200) {
                aws_error_parse(resp, code, emsg);
                if ((is_throttling(code, resp->status) || resp->status >= 500) && c->attempts < AWS_RETRY_MAX &&
                    call_retry_later(c) >= 0)
                        return;
                if (is_auth_refused(code) && !c->auth_retried) {
                        /* Expired or revoked credentials: new ones once, then the same call. */
                        c->auth_retried = true;
                        aws_credentials_invalidate(a->creds);
                        call_start(c);
                        return;
                }
                if (is_throttling(code, resp->status) || resp->status >= 500) {
                        snprintf(msg, sizeof(msg), "%s at %s: HTTP %ld %s%s%s, still after %u retries", action, a->sm_url,
                                 resp->status, *code ? code : "", *emsg ? ": " : "", emsg, c->attempts);
                        call_fail(c, -EAGAIN, msg);
                        return;
                }
                if (is_auth_refused(code)) {
                        aws_clock_skew_text(resp, skew, sizeof(skew));
                        snprintf(msg, sizeof(msg), "AWS refused the credentials from %s (%s%s%s)%s", a->sm_url, code,
                                 *emsg ? ": " : "", emsg, skew);
                        a->auth_failed_said = true;
                        store_emit(&a->base, &a->ctx, STORE_EVENT_AUTH_FAILED, -EACCES, msg);
                        call_fail(c, -EACCES, msg);
                        return;
                }
                if (c->batch) {
                        if (streq(code, "AccessDeniedException") || streq(code, "AccessDenied"))
                                batch_denied(c, code, emsg);
                        else
                                call_requeue_single(c);
                        return;
                }
                int err = secret_error(a, c->reads[0], action, code, emsg, resp->status, msg, sizeof(msg));
                call_fail(c, err, msg);
                return;
        }
        if (c->batch) {
                on_batch_answer(c, resp);
                return;
        }

        json_object *o = NULL;
        _cleanup_secbuf_ SecBuf *v = NULL;
        const char *version = NULL, *why = "malformed JSON";
        int r = json_parse_strict(resp->body->data, resp->body->len, &o);
        if (r >= 0)
                r = aws_reply_secret(o, &v, &version, &why);
        if (r < 0) {
                json_put_wiped(o);
                snprintf(msg, sizeof(msg), "reading secret %s: %s", read_shown(c->reads[0], shown, sizeof(shown)), why);
                call_fail(c, r == -ENOMEM ? r : r == -EFBIG ? r : -EBADMSG, msg);
                return;
        }
        _cleanup_free_ char *ver = version ? strdup(version) : NULL;
        json_put_wiped(o);
        AwsRead *reads[ELEMENTSOF(c->reads)];
        size_t n = c->n_reads;
        memcpy(reads, c->reads, n * sizeof(reads[0]));
        call_free(c);
        for (size_t i = 0; i < n; i++)
                read_complete(reads[i], 0, NULL, v, ver);
}

static int call_body(AwsCall *c, SecBuf **ret) {
        _cleanup_secbuf_ SecBuf *b = secbuf_new(64 + c->n_reads * 64);
        int r = b ? 0 : -ENOMEM;
        if (c->batch) {
                r = r < 0 ? r : secbuf_append_str(b, "{\"SecretIdList\":[");
                for (size_t i = 0, n = 0; r >= 0 && i < c->n_reads; i++) {
                        bool dup = false;
                        for (size_t k = 0; k < i; k++)
                                dup = dup || streq(c->reads[k]->key, c->reads[i]->key);
                        if (dup)
                                continue;
                        if (n++ > 0)
                                r = secbuf_append_char(b, ',');
                        if (r >= 0)
                                r = json_append_string(b, c->reads[i]->key, strlen(c->reads[i]->key));
                }
                r = r < 0 ? r : secbuf_append_str(b, "]}");
        } else {
                const AwsRead *rd = c->reads[0];
                r = r < 0 ? r : secbuf_append_str(b, "{\"SecretId\":");
                r = r < 0 ? r : json_append_string(b, rd->key, strlen(rd->key));
                if (r >= 0 && rd->version && strncmp(rd->version, "uuid/", 5) == 0) {
                        r = secbuf_append_str(b, ",\"VersionId\":");
                        r = r < 0 ? r : json_append_string(b, rd->version + 5, strlen(rd->version + 5));
                } else if (r >= 0 && rd->version) {
                        r = secbuf_append_str(b, ",\"VersionStage\":");
                        r = r < 0 ? r : json_append_string(b, rd->version, strlen(rd->version));
                }
                r = r < 0 ? r : secbuf_append_char(b, '}');
        }
        if (r < 0)
                return r;
        *ret = TAKE_PTR(b);
        return 0;
}

static void on_creds(int error, const char *message, const AwsCredentials *creds, bool fresh, const char *source,
                     void *userdata) {
        AwsCall *c = userdata;
        AwsStore *a = c->a;
        char msg[1400];

        if (error < 0) {
                snprintf(msg, sizeof(msg), "no AWS credentials (method %s): %s", aws_auth_names[a->auth.method], message);
                if (!a->auth_failed_said) {
                        a->auth_failed_said = true;
                        store_emit(&a->base, &a->ctx, STORE_EVENT_AUTH_FAILED, error, msg);
                }
                call_fail(c, error, msg);
                return;
        }
        if (fresh || a->auth_failed_said) {
                char b[DURATION_FORMAT_MAX], exp[DURATION_FORMAT_MAX + 32] = "";
                int64_t left = creds->expiration - (int64_t) time(NULL);
                if (creds->expiration > 0)
                        snprintf(exp, sizeof(exp), "; they expire in %s",
                                 duration_format(left > 0 ? (uint64_t) left * USEC_PER_SEC : 0, b, sizeof(b)));
                snprintf(msg, sizeof(msg), "AWS credentials from %s (method %s)%s", source, aws_auth_names[a->auth.method], exp);
                a->auth_failed_said = false;
                store_emit(&a->base, &a->ctx, STORE_EVENT_AUTH_OK, 0, msg);
        }
        _cleanup_secbuf_ SecBuf *body = NULL;
        int r = call_body(c, &body);
        if (r >= 0) {
                char target[64];
                snprintf(target, sizeof(target), "secretsmanager.%s", c->batch ? "BatchGetSecretValue" : "GetSecretValue");
                AwsRequest req = { .url = a->sm_url, .region = a->sign_region, .service = "secretsmanager",
                                   .target = target, .content_type = "application/x-amz-json-1.1", .body = body,
                                   .creds = creds };
                r = aws_send(a->pool, &req, on_answer, c, &c->http);
        }
        if (r < 0)
                call_fail(c, r, "cannot send the request to AWS Secrets Manager");
}

static void call_start(AwsCall *c) {
        aws_credentials_get(c->a->creds, on_creds, c);
}

static AwsCall *call_new(AwsStore *a, bool batch) {
        AwsCall *c = calloc(1, sizeof(AwsCall));
        if (!c)
                return NULL;
        c->a = a;
        c->batch = batch;
        LIST_PREPEND(a->calls, c);
        if (batch)
                a->batches_in_flight++;
        return c;
}

static void call_add(AwsCall *c, AwsRead *r) {
        r->assigned = true;
        c->reads[c->n_reads++] = r;
}

static bool call_has_key(const AwsCall *c, const char *key) {
        for (size_t i = 0; i < c->n_reads; i++)
                if (streq(c->reads[i]->key, key))
                        return true;
        return false;
}

/* Sends what is waiting, oldest first: pinned versions alone (and everything while the
 * batch action is denied), the rest 20 ids a batch. A last, partial batch waits while
 * other batches are out: when one is answered, the syncs it completes make room for more
 * fetches, which join it. Calls start only after the grouping, since a call can fail (and
 * its reads complete) at once. */
static int on_dispatch(sd_event_source *s, void *userdata) {
        AwsStore *a = userdata;
        bool batching = now_usec() >= a->batch_off_until;
        AwsCall *start = NULL, *c = NULL;
        AwsRead *tail = NULL;
        size_t keys = 0;

        for (AwsRead *r = a->reads; r; r = r->next)
                tail = r;
        for (AwsRead *r = tail; r; r = r->prev) {
                if (r->assigned || (batching && !r->single))
                        continue;
                AwsCall *one = call_new(a, false);
                if (!one)
                        break;
                call_add(one, r);
                for (AwsRead *q = r->prev; q && one->n_reads < ELEMENTSOF(one->reads); q = q->prev)
                        if (!q->assigned && (!batching || q->single) && streq(q->key, r->key) &&
                            streq_ptr(q->version, r->version))
                                call_add(one, q);
                one->start_next = start;
                start = one;
        }
        for (AwsRead *r = tail; batching && r; r = r->prev) {
                if (r->assigned || r->single)
                        continue;
                bool known = c && call_has_key(c, r->key);
                if (c && ((keys == AWS_BATCH_MAX && !known) || c->n_reads == ELEMENTSOF(c->reads))) {
                        c->start_next = start;
                        start = c;
                        c = NULL;
                }
                if (!c) {
                        if (!(c = call_new(a, true)))
                                break;
                        keys = 0;
                        known = false;
                }
                keys += !known;
                call_add(c, r);
        }
        if (c && a->batches_in_flight > 1) {
                /* hold back */
                for (size_t i = 0; i < c->n_reads; i++)
                        c->reads[i]->assigned = false;
                LIST_REMOVE(a->calls, c);
                a->batches_in_flight--;
                free(c);
        } else if (c) {
                if (keys == 1) { /* one id: the plain call needs no batch permission */
                        c->batch = false;
                        a->batches_in_flight--;
                }
                c->start_next = start;
                start = c;
        }
        while (start) {
                AwsCall *next = start->start_next;
                call_start(start);
                start = next;
        }
        return 0;
}

static void schedule_dispatch(AwsStore *a) {
        if (a->stopping)
                return;
        if (!a->defer && sd_event_add_defer(a->ctx.event, &a->defer, on_dispatch, a) < 0)
                return;
        sd_event_source_set_enabled(a->defer, SD_EVENT_ONESHOT);
}

/* ---------------------------------------------------------------- store ---- */

static int aws_check_ref(const Store *s, const RemoteRef *ref, char **ret_error) {
        size_t n = strlen(ref->key);
        if (n == 0 || n > 2048)
                return asprintf(ret_error, "an AWS secret id is 1 to 2048 characters") < 0 ? -ENOMEM : -EINVAL;
        if (strncmp(ref->key, "arn:", 4) == 0 && !strstr(ref->key, ":secretsmanager:"))
                return asprintf(ret_error, "\"%s\" is not a Secrets Manager secret ARN (arn:aws:secretsmanager:...)",
                                ref->key) < 0 ? -ENOMEM : -EINVAL;
        if (ref->version) {
                const char *v = ref->version;
                bool uuid = strncmp(v, "uuid/", 5) == 0;
                const char *body = uuid ? v + 5 : v;
                size_t len = strlen(body);
                if (len == 0 || len > (uuid ? 64 : 256) ||
                    strspn(body, uuid ? "0123456789abcdefABCDEF-" : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_+=.@-") != len)
                        return asprintf(ret_error,
                                        "AWS version \"%s\" is neither a version stage (AWSCURRENT, AWSPREVIOUS, a custom "
                                        "label) nor uuid/<VersionId>",
                                        v) < 0 ? -ENOMEM : -EINVAL;
        }
        return 0;
}

static int aws_fetch(Store *s, const RemoteRef *ref, store_fetch_cb cb, void *userdata) {
        AwsStore *a = (AwsStore *) s;
        if (a->stopping || !a->pool)
                return -ECANCELED;
        AwsRead *r = calloc(1, sizeof(AwsRead));
        if (!r)
                return -ENOMEM;
        *r = (AwsRead) { .a = a, .cb = cb, .userdata = userdata, .key = strdup(ref->key),
                         .version = ref->version ? strdup(ref->version) : NULL, .single = ref->version != NULL };
        if (!r->key || (ref->version && !r->version)) {
                free(r->key);
                free(r->version);
                free(r);
                return -ENOMEM;
        }
        LIST_PREPEND(a->reads, r);
        schedule_dispatch(a); /* every fetch of this loop turn goes out together */
        return 0;
}

/* The configured endpoint, else AWS_ENDPOINT_URL_<SERVICE>, else AWS_ENDPOINT_URL, else AWS's. */
static int resolve_endpoint(const char *configured, const char *env_service, const char *host, const char *region,
                            char **ret) {
        const char *e = configured;
        if (!e)
                e = getenv(env_service);
        if (!e || !*e)
                e = getenv("AWS_ENDPOINT_URL");
        if (e && *e) {
                if (!store_url_valid(e))
                        return -EPROTONOSUPPORT;
                *ret = strdup(e);
        } else if (asprintf(ret, "https://%s.%s.amazonaws.com", host, region) < 0)
                *ret = NULL;
        return *ret ? 0 : -ENOMEM;
}

static int aws_start(Store *s, const StoreContext *ctx) {
        AwsStore *a = (AwsStore *) s;
        const char *region = a->region ? a->region : env_region();
        HttpPoolOptions o = { .ca_file = a->ca_file, .ca_pem = a->ca_pem, .timeout_usec = a->timeout_usec,
                              .connect_timeout_usec = MIN(a->timeout_usec, 10 * USEC_PER_SEC),
                              .store_name = s->name, .store_type = s->vtable->name };
        char msg[512];
        int r;

        a->ctx = *ctx;
        a->stopping = false;
        if (!region)
                return -EINVAL;
        free(a->sign_region);
        free(a->sm_url);
        free(a->sts_url);
        a->sm_url = a->sts_url = NULL;
        if (!(a->sign_region = strdup(region)))
                return -ENOMEM;
        if ((r = resolve_endpoint(a->endpoint, "AWS_ENDPOINT_URL_SECRETS_MANAGER", "secretsmanager", region, &a->sm_url)) < 0 ||
            (r = resolve_endpoint(a->sts_endpoint, "AWS_ENDPOINT_URL_STS", "sts", region, &a->sts_url)) < 0) {
                if (r == -EPROTONOSUPPORT) {
                        snprintf(msg, sizeof(msg), "an AWS_ENDPOINT_URL* in the environment is not https:// (http:// only to loopback)");
                        store_emit(s, ctx, STORE_EVENT_WARNING, 0, msg);
                }
                return r;
        }
        if ((r = http_pool_new(ctx->http, &o, &a->pool)) < 0 ||
            (r = store_token_source(ctx, a->auth.service_account, &a->sa_tokens)) < 0 ||
            (r = aws_credentials_new(&a->auth, a->pool, a->sa_tokens, region, a->sts_url, &a->creds)) < 0)
                return r;
        if (strncmp(a->sm_url, "http://", 7) == 0) {
                snprintf(msg, sizeof(msg), "endpoint %s is plain http:// (acceptable only for a local test)", a->sm_url);
                store_emit(s, ctx, STORE_EVENT_WARNING, 0, msg);
        }
        return 0;
}

static void aws_stop(Store *s) {
        AwsStore *a = (AwsStore *) s;
        a->stopping = true;
        a->defer = sd_event_source_disable_unref(a->defer);
        a->creds = aws_credentials_free(a->creds); /* drops calls waiting for credentials */
        a->sa_tokens = kube_token_source_free(a->sa_tokens);
        while (a->calls) {
                AwsCall *c = a->calls;
                c->n_reads = 0;
                call_free(c);
        }
        while (a->reads)
                read_complete(a->reads, -ECANCELED, "cancelled", NULL, NULL);
        a->pool = http_pool_free(a->pool);
        a->batches_in_flight = 0;
}

static void aws_done(Store *s) {
        AwsStore *a = (AwsStore *) s;
        AwsAuthConfig *au = &a->auth;
        free(a->region);
        free(a->endpoint);
        free(a->sts_endpoint);
        free(a->ca_file);
        free(a->ca_pem);
        free(a->sm_url);
        free(a->sts_url);
        free(a->sign_region);
        erase_and_free(au->access_key_id);
        free(au->access_key_id_file);
        free(au->secret_access_key_file);
        free(au->session_token_file);
        free(au->credentials_file);
        free(au->profile);
        free(au->role_arn);
        free(au->token_file);
        store_service_account_free(au->service_account);
        free(au->assume_role_arn);
        free(au->external_id);
        free(au->session_name);
}

const StoreVTable store_aws_vtable = {
        .name = "aws",
        .object_size = sizeof(AwsStore),
        .parse_config = aws_parse_config,
        .dump_config = aws_dump_config,
        .check_ref = aws_check_ref,
        .start = aws_start,
        .fetch = aws_fetch,
        .stop = aws_stop,
        .done = aws_done,
};
