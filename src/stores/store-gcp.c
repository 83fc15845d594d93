/* SPDX-License-Identifier: MIT */
/* Google Secret Manager (REST v1): GET {endpoint}/v1/projects/{p}[/locations/{l}]/secrets/{s}/
 * versions/{v}:access, the payload base64-decoded and checked against its dataCrc32c. Tokens
 * come from gcp-credentials.c; a 401 replaces the token once; RESOURCE_EXHAUSTED (429) and
 * 5xx answers are retried with backoff. Each fetch is started from a deferred event, so that
 * no callback runs inside fetch(). */
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stores/gcp-credentials.h"
#include "stores/store-replies.h"
#include "stores/store-url.h"
#include "stores/store.h"
#include "util/base64.h"
#include "util/crc32c.h"
#include "util/duration.h"
#include "util/json.h"
#include "util/list.h"
#include "util/random.h"

#define GCP_ENDPOINT_DEFAULT "https://secretmanager.googleapis.com"
#define GCP_SECRET_MAX (64U * 1024U) /* Secret Manager's limit on a payload */
#define RETRY_MAX 4
#define RETRY_BASE_USEC (500 * USEC_PER_MSEC)
#define RETRY_CAP_USEC (30 * USEC_PER_SEC)

typedef struct GcpRead GcpRead;

typedef struct GcpStore {
        Store base;
        /* configuration */
        char *project;
        char *location;
        char *endpoint;
        char *ca_file;
        char *ca_pem;
        uint64_t timeout_usec;
        GcpAuthConfig auth;
        /* run time */
        StoreContext ctx;
        HttpPool *pool;
        GcpCredProvider *creds;
        char *api;     /* the endpoint in use, without a trailing '/' */
        GcpRead *reads;
        sd_event_source *defer;
        bool auth_failed_said;
        bool stopping;
} GcpStore;

struct GcpRead {
        GcpStore *g;
        char *name; /* projects/P[/locations/L]/secrets/S/versions/V */
        char *shown;
        store_fetch_cb cb;
        void *userdata;
        HttpCall *call;
        sd_event_source *retry_timer;
        unsigned attempts;
        bool started;
        bool auth_retried;
        uint64_t token_serial; /* of the token sent */
        GcpRead *start_next;
        GcpRead *prev, *next;
};

/* ------------------------------------------------------------ settings ---- */

static bool id_valid(const char *s, size_t max) {
        size_t n = strlen(s);
        return n > 0 && n <= max &&
               strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") == n;
}

static int gcp_parse_config(Store *s, ConfigParser *p, const config_setting_t *g) {
        static const char *const keys[] = { "type", "project", "location", "endpoint", "ca_file", "ca_pem", "timeout", "auth", NULL };
        static const char *const method_keys[_GCP_AUTH_MAX][2] = {
                [GCP_AUTH_DEFAULT] = { "metadata_endpoint" },
                [GCP_AUTH_SERVICE_ACCOUNT_KEY] = { "key_file" },
                [GCP_AUTH_METADATA] = { "metadata_endpoint" },
                [GCP_AUTH_EXTERNAL_ACCOUNT] = { "credentials_file" },
        };
        GcpStore *gs = (GcpStore *) s;
        GcpAuthConfig *au = &gs->auth;

        config_check_keys(p, g, keys);
        if (config_get_string(p, g, "project", false, &gs->project) > 0 && !id_valid(gs->project, 100))
                config_error(p, config_setting_get_member(g, "project"),
                             "store '%s': project \"%s\" is not a project id or number", s->name, gs->project);
        if (config_get_string(p, g, "location", false, &gs->location) > 0 && *gs->location &&
            !id_valid(gs->location, 63))
                config_error(p, config_setting_get_member(g, "location"),
                             "store '%s': location \"%s\" is not a region like \"europe-west1\"", s->name, gs->location);
        if (gs->location && !*gs->location) {
                free(gs->location);
                gs->location = NULL;
        }
        if (config_get_string(p, g, "endpoint", false, &gs->endpoint) > 0 && !store_url_valid(gs->endpoint))
                config_error(p, config_setting_get_member(g, "endpoint"),
                             "store '%s': endpoint \"%s\" must be an https:// URL (http:// only for a loopback address)",
                             s->name, gs->endpoint);
        store_parse_ca(p, s, g, &gs->ca_file, &gs->ca_pem);
        store_parse_timeout(p, s, g, &gs->timeout_usec);

        const config_setting_t *ag;
        int m;
        if (store_parse_auth_method(p, s, g, gcp_auth_names, _GCP_AUTH_MAX, &ag, &m) < 0)
                return -EINVAL;
        if (!ag)
                return 0;
        au->method = (GcpAuthMethod) m;
        const char *allowed[3] = { "method", method_keys[au->method][0] };
        config_check_keys(p, ag, allowed);
        config_get_credential_file(p, ag, "key_file", au->method == GCP_AUTH_SERVICE_ACCOUNT_KEY, &au->key_file);
        config_get_credential_file(p, ag, "credentials_file", au->method == GCP_AUTH_EXTERNAL_ACCOUNT,
                                   &au->credentials_file);
        if (config_get_string(p, ag, "metadata_endpoint", false, &au->metadata_endpoint) > 0) {
                size_t n = strlen(au->metadata_endpoint);
                while (n > 0 && au->metadata_endpoint[n - 1] == '/')
                        au->metadata_endpoint[--n] = 0;
                if (!gcp_metadata_url_valid(au->metadata_endpoint))
                        config_error(p, config_setting_get_member(ag, "metadata_endpoint"),
                                     "store '%s': metadata_endpoint \"%s\" must be %s or an https:// URL (http:// only "
                                     "for a loopback address)",
                                     s->name, au->metadata_endpoint, GCP_METADATA_DEFAULT);
        }
        return 0;
}

static void gcp_dump_config(const Store *s, ConfigDump *d) {
        const GcpStore *gs = (const GcpStore *) s;
        const GcpAuthConfig *au = &gs->auth;
        if (gs->project)
                config_dump_string(d, "project", gs->project);
        if (gs->location)
                config_dump_string(d, "location", gs->location);
        if (gs->endpoint)
                config_dump_string(d, "endpoint", gs->endpoint);
        store_dump_ca(d, gs->ca_file, gs->ca_pem);
        config_dump_duration(d, "timeout", gs->timeout_usec);
        config_dump_open(d, "auth");
        config_dump_string(d, "method", gcp_auth_names[au->method]);
        if (au->key_file)
                config_dump_string(d, "key_file", au->key_file);
        if (au->credentials_file)
                config_dump_string(d, "credentials_file", au->credentials_file);
        if (au->metadata_endpoint)
                config_dump_string(d, "metadata_endpoint", au->metadata_endpoint);
        config_dump_close(d);
}

/* --------------------------------------------------------------- reads ---- */

static void read_complete(GcpRead *r, int error, const char *message, const SecBuf *value, const char *version) {
        GcpStore *g = r->g;
        LIST_REMOVE(g->reads, r);
        StoreResult res = { .error = error, .message = message, .value = value, .version = version };
        store_fetch_cb cb = r->cb;
        void *ud = r->userdata;
        if (r->call)
                http_call_cancel(r->call);
        sd_event_source_disable_unref(r->retry_timer);
        free(r->name);
        free(r->shown);
        free(r);
        cb(&g->base, &res, ud);
}

static void read_start(GcpRead *r);

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        GcpRead *r = userdata;
        r->retry_timer = sd_event_source_disable_unref(r->retry_timer);
        read_start(r);
        return 0;
}

static int retry_later(GcpRead *r, uint64_t retry_after) {
        uint64_t delay = MAX(random_backoff(RETRY_BASE_USEC, RETRY_CAP_USEC, r->attempts), MIN(retry_after, RETRY_CAP_USEC));
        r->attempts++;
        return sd_event_add_time_relative(r->g->ctx.event, &r->retry_timer, CLOCK_MONOTONIC, delay, USEC_PER_MSEC,
                                          on_retry, r);
}

int gcp_reply_secret(const SecBuf *body, SecBuf **ret_value, char **ret_version, const char **ret_why) {
        json_object *o = NULL, *payload, *data, *crc, *name;
        _cleanup_secbuf_ SecBuf *value = NULL;
        _cleanup_free_ char *version = NULL;
        const char *why = NULL;

        if (json_parse_strict(body->data, body->len, &o) < 0 ||
            !json_object_object_get_ex(o, "payload", &payload) || !json_object_is_type(payload, json_type_object))
                why = "no payload";
        else if (!json_object_object_get_ex(payload, "data", &data))
                value = secbuf_new(0); /* an empty payload has no data */
        else if (!json_object_is_type(data, json_type_string) ||
                 base64_decode(json_object_get_string(data), (size_t) json_object_get_string_len(data), false, &value) < 0)
                why = "payload.data is not base64";
        if (!why && !value)
                why = "out of memory";
        if (!why && value->len > GCP_SECRET_MAX)
                why = "the payload is larger than Secret Manager's 64 KiB limit";
        if (!why && json_object_object_get_ex(payload, "dataCrc32c", &crc)) {
                const char *c = json_object_get_string(crc);
                char *end;
                unsigned long long want = strtoull(c ? c : "", &end, 10);
                if (!c || end == c || *end || want != crc32c(0, value->data, value->len))
                        why = "the payload does not match its dataCrc32c checksum (corrupted in transit?)";
        }
        if (!why && json_object_object_get_ex(o, "name", &name) && json_object_is_type(name, json_type_string)) {
                const char *slash = strrchr(json_object_get_string(name), '/');
                if (slash && slash[1])
                        version = strdup(slash + 1);
        }
        json_put_wiped(o);
        if (why) {
                *ret_why = why;
                return strstr(why, "memory") ? -ENOMEM : -EBADMSG;
        }
        *ret_value = TAKE_PTR(value);
        *ret_version = TAKE_PTR(version);
        return 0;
}

static void read_answer(GcpRead *r, const HttpResponse *resp) {
        _cleanup_secbuf_ SecBuf *value = NULL;
        _cleanup_free_ char *version = NULL;
        const char *why = NULL;
        char msg[768];

        int k = gcp_reply_secret(resp->body, &value, &version, &why);
        if (k < 0) {
                snprintf(msg, sizeof(msg), "reading secret %s from Secret Manager: %s", r->shown, why);
                read_complete(r, k, msg, NULL, NULL);
                return;
        }
        read_complete(r, 0, NULL, value, version);
}

static void on_answer(const HttpResponse *resp, void *userdata) {
        GcpRead *r = userdata;
        GcpStore *g = r->g;
        char msg[1024], err[OAUTH_ERROR_SHOWN_MAX + 64], code[64];
        int k;

        r->call = NULL;
        if (resp->error < 0) {
                snprintf(msg, sizeof(msg), "reading secret %s from %s: %s", r->shown, g->api, resp->message);
                read_complete(r, resp->error, msg, NULL, NULL);
                return;
        }
        if (resp->status == 200) {
                read_answer(r, resp);
                return;
        }
        oauth_error_text(resp, err, sizeof(err), code, sizeof(code));
        if (resp->status == 401 && !r->auth_retried) {
                /* Expired or revoked: one new token, then this read again. */
                r->auth_retried = true;
                gcp_credentials_invalidate(g->creds, r->token_serial);
                read_start(r);
                return;
        }
        if ((resp->status == 429 || resp->status >= 500) && r->attempts < RETRY_MAX &&
            retry_later(r, resp->retry_after_usec) >= 0)
                return;
        switch (resp->status) {
        case 401:
                snprintf(msg, sizeof(msg), "Secret Manager refused a new token reading secret %s (HTTP 401%s)", r->shown, err);
                if (!g->auth_failed_said) {
                        g->auth_failed_said = true;
                        store_emit(&g->base, &g->ctx, STORE_EVENT_AUTH_FAILED, -EACCES, msg);
                }
                k = -EACCES;
                break;
        case 403:
                snprintf(msg, sizeof(msg),
                         "permission denied reading secret %s (HTTP 403%s): the principal needs "
                         "secretmanager.versions.access (role Secret Manager Secret Accessor)",
                         r->shown, err);
                k = -EACCES;
                break;
        case 404:
                snprintf(msg, sizeof(msg), "secret %s not found in Secret Manager (HTTP 404%s)", r->shown, err);
                k = -ENOENT;
                break;
        case 400:
                if (streq(code, "FAILED_PRECONDITION"))
                        snprintf(msg, sizeof(msg), "secret %s cannot be read: the version is disabled or destroyed (HTTP 400%s)",
                                 r->shown, err);
                else
                        snprintf(msg, sizeof(msg), "Secret Manager refused to read secret %s (HTTP 400%s)", r->shown, err);
                k = streq(code, "FAILED_PRECONDITION") ? -ENOENT : -EINVAL;
                break;
        case 429:
                snprintf(msg, sizeof(msg), "Secret Manager is throttling (HTTP 429%s), still after %u retries", err,
                         r->attempts);
                k = -EAGAIN;
                break;
        default:
                snprintf(msg, sizeof(msg), "reading secret %s: HTTP %ld from Secret Manager%s%s", r->shown, resp->status,
                         err, resp->status >= 500 ? " (after retries)" : "");
                k = resp->status >= 500 ? -EIO : -EINVAL;
        }
        read_complete(r, k, msg, NULL, NULL);
}

static void on_token(int error, const char *message, const OAuthToken *token, bool fresh, const char *source,
                     void *userdata) {
        GcpRead *r = userdata;
        GcpStore *g = r->g;
        char msg[1280];

        if (error < 0) {
                snprintf(msg, sizeof(msg), "no Google access token (method %s): %s", gcp_auth_names[g->auth.method],
                         message);
                if (!g->auth_failed_said) {
                        g->auth_failed_said = true;
                        store_emit(&g->base, &g->ctx, STORE_EVENT_AUTH_FAILED, error, msg);
                }
                read_complete(r, error, msg, NULL, NULL);
                return;
        }
        if (fresh) {
                char b[DURATION_FORMAT_MAX];
                int64_t left = token->expires_at - (int64_t) time(NULL);
                snprintf(msg, sizeof(msg), "access token from %s (method %s); it expires in %s", source,
                         gcp_auth_names[g->auth.method],
                         duration_format(left > 0 ? (uint64_t) left * USEC_PER_SEC : 0, b, sizeof(b)));
                g->auth_failed_said = false;
                store_emit(&g->base, &g->ctx, STORE_EVENT_AUTH_OK, 0, msg);
        }
        _cleanup_free_ char *url = NULL;
        _cleanup_erase_ char *auth = NULL;
        char *hdr[] = { NULL, NULL };
        r->token_serial = token->serial;
        if (asprintf(&url, "%s/v1/%s:access", g->api, r->name) < 0)
                url = NULL;
        auth = secbuf_header_line("Authorization", "Bearer ", token->access_token);
        hdr[0] = auth;
        int k = url && auth ? 0 : -ENOMEM;
        if (k >= 0) {
                HttpRequest req = { .method = "GET", .url = url, .headers = hdr };
                k = http_request(g->pool, &req, on_answer, r, &r->call);
        }
        if (k < 0)
                read_complete(r, k, "cannot send the request to Secret Manager", NULL, NULL);
}

static void read_start(GcpRead *r) {
        gcp_credentials_get(r->g->creds, on_token, r);
}

/* The reads not started yet, oldest first; detached first, since a start may complete its
 * read (and the manager fetch again) at once. */
static int on_dispatch(sd_event_source *s, void *userdata) {
        GcpStore *g = userdata;
        GcpRead *start = NULL;
        for (GcpRead *r = g->reads; r; r = r->next)
                if (!r->started) {
                        r->started = true;
                        r->start_next = start;
                        start = r;
                }
        while (start) {
                GcpRead *next = start->start_next;
                read_start(start);
                start = next;
        }
        return 0;
}

/* --------------------------------------------------------------- store ---- */

/* projects/P/secrets/S, or S in the store's project; the version a number, "latest" or an
 * alias. */
static int resource_name(const GcpStore *g, const RemoteRef *ref, char **ret, char **ret_error) {
        _cleanup_free_ char *project = NULL, *secret = NULL;
        const char *k = ref->key, *v = ref->version ? ref->version : "latest";
        if (strncmp(k, "projects/", 9) == 0) {
                const char *p = k + 9, *sl = strchr(p, '/');
                if (!sl || strncmp(sl, "/secrets/", 9) != 0)
                        return asprintf(ret_error, "\"%s\" is neither a secret id nor projects/PROJECT/secrets/SECRET", k) < 0
                                       ? -ENOMEM
                                       : -EINVAL;
                project = strndup(p, (size_t) (sl - p));
                secret = strdup(sl + 9);
        } else {
                if (!g->project)
                        return asprintf(ret_error,
                                        "store '%s' has no 'project': write the key as projects/PROJECT/secrets/%s", g->base.name,
                                        k) < 0 ? -ENOMEM : -EINVAL;
                project = strdup(g->project);
                secret = strdup(k);
        }
        if (!project || !secret)
                return -ENOMEM;
        if (!id_valid(project, 100) || !id_valid(secret, 255))
                return asprintf(ret_error, "Secret Manager secret \"%s\": ids are letters, digits, '-' and '_'", k) < 0
                               ? -ENOMEM
                               : -EINVAL;
        if (!id_valid(v, 63))
                return asprintf(ret_error, "Secret Manager version \"%s\" must be a number, \"latest\" or an alias", v) < 0
                               ? -ENOMEM
                               : -EINVAL;
        if (g->location)
                return asprintf(ret, "projects/%s/locations/%s/secrets/%s/versions/%s", project, g->location, secret, v) < 0
                               ? -ENOMEM
                               : 0;
        return asprintf(ret, "projects/%s/secrets/%s/versions/%s", project, secret, v) < 0 ? -ENOMEM : 0;
}

static int gcp_check_ref(const Store *s, const RemoteRef *ref, char **ret_error) {
        _cleanup_free_ char *name = NULL;
        return resource_name((const GcpStore *) s, ref, &name, ret_error);
}

static int gcp_fetch(Store *s, const RemoteRef *ref, store_fetch_cb cb, void *userdata) {
        GcpStore *g = (GcpStore *) s;
        _cleanup_free_ char *err = NULL;
        if (g->stopping || !g->pool)
                return -ECANCELED;
        GcpRead *r = calloc(1, sizeof(GcpRead));
        if (!r)
                return -ENOMEM;
        *r = (GcpRead) { .g = g, .cb = cb, .userdata = userdata };
        int k = resource_name(g, ref, &r->name, &err);
        if (k >= 0 && asprintf(&r->shown, "%s%s%s", ref->key, ref->version ? " version " : "",
                               ref->version ? ref->version : "") < 0)
                k = -ENOMEM;
        if (k >= 0 && !g->defer)
                k = sd_event_add_defer(g->ctx.event, &g->defer, on_dispatch, g);
        if (k >= 0)
                k = sd_event_source_set_enabled(g->defer, SD_EVENT_ONESHOT);
        if (k < 0) {
                free(r->name);
                free(r->shown);
                free(r);
                return k;
        }
        LIST_PREPEND(g->reads, r);
        return 0;
}

static int gcp_start(Store *s, const StoreContext *ctx) {
        GcpStore *g = (GcpStore *) s;
        HttpPoolOptions o = { .ca_file = g->ca_file, .ca_pem = g->ca_pem, .timeout_usec = g->timeout_usec,
                              .connect_timeout_usec = MIN(g->timeout_usec, 10 * USEC_PER_SEC) };
        int r;

        g->ctx = *ctx;
        g->stopping = false;
        free(g->api);
        if (g->endpoint)
                g->api = strdup(g->endpoint);
        else if (g->location) {
                if (asprintf(&g->api, "https://secretmanager.%s.rep.googleapis.com", g->location) < 0)
                        g->api = NULL;
        } else
                g->api = strdup(GCP_ENDPOINT_DEFAULT);
        if (!g->api)
                return -ENOMEM;
        for (size_t n = strlen(g->api); n > 0 && g->api[n - 1] == '/';)
                g->api[--n] = 0;
        if ((r = http_pool_new(ctx->http, &o, &g->pool)) < 0 || (r = gcp_credentials_new(&g->auth, g->pool, &g->creds)) < 0)
                return r;
        if (strncmp(g->api, "http://", 7) == 0) {
                char msg[512];
                snprintf(msg, sizeof(msg), "endpoint %s is plain http:// (acceptable only for a local test)", g->api);
                store_emit(s, ctx, STORE_EVENT_WARNING, 0, msg);
        }
        return 0;
}

static void gcp_stop(Store *s) {
        GcpStore *g = (GcpStore *) s;
        g->stopping = true;
        g->defer = sd_event_source_disable_unref(g->defer);
        g->creds = gcp_credentials_free(g->creds); /* drops reads waiting for a token */
        while (g->reads)
                read_complete(g->reads, -ECANCELED, "cancelled", NULL, NULL);
        g->pool = http_pool_free(g->pool);
}

static void gcp_done(Store *s) {
        GcpStore *g = (GcpStore *) s;
        free(g->project);
        free(g->location);
        free(g->endpoint);
        free(g->ca_file);
        free(g->ca_pem);
        free(g->api);
        free(g->auth.key_file);
        free(g->auth.credentials_file);
        free(g->auth.metadata_endpoint);
}

const StoreVTable store_gcp_vtable = {
        .name = "gcp",
        .object_size = sizeof(GcpStore),
        .parse_config = gcp_parse_config,
        .dump_config = gcp_dump_config,
        .check_ref = gcp_check_ref,
        .start = gcp_start,
        .fetch = gcp_fetch,
        .stop = gcp_stop,
        .done = gcp_done,
};
