/* SPDX-License-Identifier: MIT */
/* HashiCorp Vault: KV v1 and v2 reads, five auth methods, and the token's lifecycle (looked
 * up after login, renewed at about 2/3 of its TTL, replaced by a fresh login when renewal
 * fails or the TTL stops growing; a 403 on a read triggers one re-login).
 *
 * A fetch only queues its read and arms `kick`, which sends the queued reads or starts (or
 * joins) the one login from the event loop. Completing a read runs the manager's callback,
 * which may fetch again at once: lists of reads are never walked while reads complete; the
 * reads to complete are detached first, and new fetches queue on the store's list. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <time.h>

#include "stores/store-replies.h"
#include "stores/store-url.h"
#include "stores/store.h"
#include "util/duration.h"
#include "util/escape.h"
#include "util/http.h"
#include "util/json.h"
#include "util/random.h"
#include "util/list.h"

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

#define CREDENTIAL_FILE_MAX (64U * 1024U)
#define VAULT_ERROR_SHOWN_MAX 200

typedef struct VaultRead VaultRead;

typedef struct VaultStore {
        Store base;
        /* run time */
        StoreContext ctx;
        HttpPool *pool;
        SecBuf *token;           /* the client token in use; NULL until a login succeeded */
        SecBuf *pending_token;   /* a new token being looked up */
        HttpCall *auth_call;     /* login, lookup-self or renew-self in flight */
        bool logging_in;         /* login or its lookup-self in flight: joined, never doubled */
        bool stopping;
        uint64_t ttl_usec;       /* of the token in use; 0: does not expire */
        uint64_t lease_usec;     /* the TTL the last login or renewal granted */
        uint64_t token_expiry;   /* CLOCK_MONOTONIC usec; 0: none */
        bool renewable;
        sd_event_source *renew_timer;
        sd_event_source *kick;   /* defer: send the waiting reads, or log in */
        VaultRead *reads;        /* waiting for a token or in flight */
        KubeTokenSource *sa_tokens; /* kubernetes, jwt: the JWT from a service account */
        KubeTokenWait *sa_wait;
        /* configuration */
        char *server;
        char *mount;
        long long kv_version;
        char *namespace;
        char *ca_file;
        char *ca_pem;
        char *ca_path;
        VaultAuthMethod method;
        char *auth_mount;
        char *role;
        char *token_file;
        ServiceAccountRef *service_account;
        char *role_id;
        char *secret_id_file;
        char *cert_file;
        char *key_file;
        char *cert_name;
        uint64_t timeout_usec; /* a whole request, login or read */
} VaultStore;

static int vault_parse_config(Store *s, ConfigParser *p, const config_setting_t *g) {
        static const char *const keys[] = { "type", "server", "mount", "kv_version", "namespace", "ca_file",
                                            "ca_pem", "ca_path", "timeout", "auth", NULL };
        /* settings each method takes, beyond `method` and `mount` */
        static const char *const method_keys[_VAULT_AUTH_MAX][5] = {
                [VAULT_AUTH_TOKEN] = { "token_file" },
                [VAULT_AUTH_APPROLE] = { "role_id", "secret_id_file" },
                [VAULT_AUTH_KUBERNETES] = { "role", "token_file", "service_account" },
                [VAULT_AUTH_JWT] = { "role", "token_file", "service_account" },
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
        if (v->mount && !*v->mount)
                config_error(p, config_setting_get_member(g, "mount"),
                             "store '%s': 'mount' must name a secrets engine, like \"secret\", not only '/'", s->name);
        config_get_int(p, g, "kv_version", 1, 2, &v->kv_version);
        v->timeout_usec = 60 * USEC_PER_SEC;
        if (config_get_duration(p, g, "timeout", &v->timeout_usec) > 0 && v->timeout_usec < 100 * USEC_PER_MSEC)
                config_error(p, config_setting_get_member(g, "timeout"), "store '%s': 'timeout' must be at least 100ms",
                             s->name);
        if (config_get_string(p, g, "namespace", false, &v->namespace) > 0 && text_has_control(v->namespace))
                config_error(p, config_setting_get_member(g, "namespace"),
                             "store '%s': 'namespace' must not contain control characters (it is sent as a header)", s->name);
        store_parse_ca(p, s, g, &v->ca_file, &v->ca_pem);
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
        case VAULT_AUTH_JWT:
                config_get_string(p, a, "role", true, &v->role);
                /* No default audiences: the API server's own, which Vault's kubernetes auth
                 * accepts unless the role names an audience. */
                store_parse_service_account(p, s, a, NULL, &v->service_account);
                if (config_get_credential_file(p, a, "token_file", false, &v->token_file) > 0 && v->service_account)
                        config_error(p, config_setting_get_member(a, "service_account"),
                                     "store '%s': set 'token_file' or 'service_account', not both", s->name);
                else if (!v->token_file && !v->service_account && v->method == VAULT_AUTH_JWT)
                        config_error(p, a, "store '%s': auth method jwt needs 'token_file' or 'service_account'",
                                     s->name);
                else if (!v->token_file && !v->service_account) {
                        v->token_file = strdup(K8S_SA_TOKEN);
                        config_check_credential_path(p, a, K8S_SA_TOKEN);
                }
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
        store_dump_ca(d, v->ca_file, v->ca_pem);
        if (v->ca_path)
                config_dump_string(d, "ca_path", v->ca_path);
        config_dump_duration(d, "timeout", v->timeout_usec);
        config_dump_open(d, "auth");
        config_dump_string(d, "method", auth_names[v->method]);
        if (v->auth_mount)
                config_dump_string(d, "mount", v->auth_mount);
        if (v->role)
                config_dump_string(d, "role", v->role);
        if (v->token_file)
                config_dump_string(d, "token_file", v->token_file);
        store_dump_service_account(d, v->service_account);
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

/* ------------------------------------------------------------- helpers ---- */

struct VaultRead {
        VaultStore *v;
        char *key;
        char *version;
        store_fetch_cb cb;
        void *userdata;
        HttpCall *call;
        bool waiting; /* for a token */
        bool retried; /* a 403 already caused one re-login */
        VaultRead *prev, *next;
};

static uint64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000U;
}

/* "chimera/postgres" -> "chimera/postgres"; anything but unreserved characters and '/' is
 * percent-encoded. */
static char *path_escape(const char *s) {
        static const char hex[] = "0123456789ABCDEF";
        char *r = malloc(strlen(s) * 3 + 1), *o = r;
        if (!r)
                return NULL;
        for (const unsigned char *c = (const unsigned char *) s; *c; c++) {
                if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                    strchr("-._~/", *c))
                        *o++ = (char) *c;
                else {
                        *o++ = '%';
                        *o++ = hex[*c >> 4];
                        *o++ = hex[*c & 15];
                }
        }
        *o = 0;
        return r;
}

static char *url_for(const VaultStore *v, const char *path) {
        char *u = NULL;
        const char *sep = v->server[strlen(v->server) - 1] == '/' ? "" : "/";
        if (asprintf(&u, "%s%sv1/%s", v->server, sep, path) < 0)
                return NULL;
        return u;
}

/* Vault's {"errors": [...]}, first message, shortened; "" if none. Vault's error texts name
 * paths and reasons, never secret values. */
static void vault_error_text(const HttpResponse *r, char *buf, size_t size) {
        json_object *o = NULL, *errs;
        buf[0] = 0;
        if (!r->body || json_parse_strict(r->body->data, r->body->len, &o) < 0)
                return;
        if (json_object_object_get_ex(o, "errors", &errs) && json_object_is_type(errs, json_type_array) &&
            json_object_array_length(errs) > 0) {
                const char *e = json_object_get_string(json_object_array_get_idx(errs, 0));
                if (e) {
                        snprintf(buf, size, ": %.*s", VAULT_ERROR_SHOWN_MAX, e);
                        for (char *c = buf; *c; c++)
                                if (*c == '\n' || *c == '\t')
                                        *c = ' ';
                }
        }
        json_put_wiped(o);
}

static int vault_send(VaultStore *v, const char *method, const char *path, const SecBuf *token, const SecBuf *body,
                      http_done_cb cb, void *userdata, HttpCall **ret) {
        _cleanup_free_ char *url = url_for(v, path), *ns_line = NULL;
        _cleanup_erase_ char *token_line = NULL;
        char *hdr[3];
        size_t n = 0;

        if (!url)
                return -ENOMEM;
        if (token) {
                token_line = secbuf_header_line("X-Vault-Token", "", token);
                if (!token_line)
                        return -ENOMEM;
                hdr[n++] = token_line;
        }
        if (v->namespace && *v->namespace) {
                if (asprintf(&ns_line, "X-Vault-Namespace: %s", v->namespace) < 0) {
                        ns_line = NULL;
                        return -ENOMEM;
                }
                hdr[n++] = ns_line;
        }
        hdr[n] = NULL;
        HttpRequest req = { .method = method, .url = url, .headers = hdr, .body = body };
        return http_request(v->pool, &req, cb, userdata, ret);
}

static void read_free(VaultRead *r) {
        if (r->call)
                http_call_cancel(r->call);
        free(r->key);
        free(r->version);
        free(r);
}

/* Completes a read that is on no list; the callback may fetch again. */
static void read_done(VaultRead *r, int error, const char *message, const SecBuf *value, const char *version) {
        VaultStore *v = r->v;
        StoreResult res = { .error = error, .message = message, .value = value, .version = version };
        store_fetch_cb cb = r->cb;
        void *ud = r->userdata;
        read_free(r);
        cb(&v->base, &res, ud);
}

static void read_complete(VaultRead *r, int error, const char *message, const SecBuf *value, const char *version) {
        LIST_REMOVE(r->v->reads, r);
        read_done(r, error, message, value, version);
}

/* Moves the reads waiting for a token off the store's list, oldest first. */
static VaultRead *take_waiting(VaultStore *v) {
        VaultRead *batch = NULL;
        for (VaultRead *r = v->reads, *next; r; r = next) {
                next = r->next;
                if (r->waiting) {
                        LIST_REMOVE(v->reads, r);
                        LIST_PREPEND(batch, r);
                }
        }
        return batch;
}

static void login_start(VaultStore *v);
static void read_send(VaultRead *r);

/* ------------------------------------------------------------- the token ---- */

static void auth_failed(VaultStore *v, int error, const char *fmt, ...) _printf_(3, 4);
static void auth_failed(VaultStore *v, int error, const char *fmt, ...) {
        char msg[1200];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        v->logging_in = false;
        v->pending_token = secbuf_free(v->pending_token);
        store_emit(&v->base, &v->ctx, STORE_EVENT_AUTH_FAILED, error, msg);
        /* Every read waiting for a token fails with the reason; the manager retries later.
         * Fetches made meanwhile queue for the next login. */
        VaultRead *batch = take_waiting(v);
        while (batch) {
                VaultRead *r = batch;
                LIST_REMOVE(batch, r);
                read_done(r, error, msg, NULL, NULL);
        }
}

static void token_installed(VaultStore *v) {
        /* Reads that waited for a token go now. */
        VaultRead *batch = take_waiting(v);
        while (batch) {
                VaultRead *r = batch;
                LIST_REMOVE(batch, r);
                LIST_PREPEND(v->reads, r);
                r->waiting = false;
                read_send(r);
        }
}

static int on_renew_timer(sd_event_source *s, uint64_t usec, void *userdata);

static void schedule_refresh(VaultStore *v, uint64_t delay) {
        if (!v->renew_timer) {
                if (sd_event_add_time_relative(v->ctx.event, &v->renew_timer, CLOCK_MONOTONIC, delay, USEC_PER_SEC,
                                               on_renew_timer, v) < 0)
                        return;
                return;
        }
        sd_event_source_set_time_relative(v->renew_timer, delay);
        sd_event_source_set_enabled(v->renew_timer, SD_EVENT_ONESHOT);
}

/* Renew at about 2/3 of the TTL, with jitter so that many daemons do not renew together. */
static void schedule_renewal(VaultStore *v) {
        if (v->ttl_usec == 0) {
                if (v->renew_timer)
                        sd_event_source_set_enabled(v->renew_timer, SD_EVENT_OFF);
                return;
        }
        uint64_t base = v->ttl_usec * 2 / 3;
        schedule_refresh(v, MAX(base - base / 10 + random_below(base / 5 + 1), USEC_PER_SEC / 10));
}

static void on_lookup(const HttpResponse *resp, void *userdata) {
        VaultStore *v = userdata;
        json_object *o = NULL, *data, *x;
        char err[VAULT_ERROR_SHOWN_MAX + 8];

        v->auth_call = NULL;
        if (resp->error < 0) {
                auth_failed(v, resp->error, "token lookup (auth/token/lookup-self) failed: %s", resp->message);
                return;
        }
        if (resp->status != 200) {
                vault_error_text(resp, err, sizeof(err));
                auth_failed(v, resp->status == 403 ? -EACCES : -EIO,
                            "token lookup (auth/token/lookup-self) refused: HTTP %ld%s", resp->status, err);
                return;
        }
        if (json_parse_strict(resp->body->data, resp->body->len, &o) < 0 ||
            !json_object_object_get_ex(o, "data", &data) || !json_object_is_type(data, json_type_object)) {
                json_put_wiped(o);
                auth_failed(v, -EBADMSG, "token lookup: malformed answer from Vault");
                return;
        }
        int64_t ttl = json_object_object_get_ex(data, "ttl", &x) ? json_object_get_int64(x) : 0;
        bool renewable = json_object_object_get_ex(data, "renewable", &x) && json_object_get_boolean(x);
        json_put_wiped(o);

        secbuf_free(v->token);
        v->token = TAKE_PTR(v->pending_token);
        v->logging_in = false;
        v->ttl_usec = ttl > 0 ? (uint64_t) ttl * USEC_PER_SEC : 0;
        v->lease_usec = v->ttl_usec;
        v->token_expiry = ttl > 0 ? now_usec() + v->ttl_usec : 0;
        v->renewable = renewable;

        char msg[256], b[DURATION_FORMAT_MAX];
        snprintf(msg, sizeof(msg), "authenticated to %s with method %s%s%s; token TTL %s%s", v->server,
                 auth_names[v->method], v->role ? ", role " : "", v->role ? v->role : "",
                 ttl > 0 ? duration_format(v->ttl_usec, b, sizeof(b)) : "unlimited",
                 ttl > 0 ? (renewable ? ", renewable" : ", not renewable") : "");
        store_emit(&v->base, &v->ctx, STORE_EVENT_AUTH_OK, 0, msg);
        schedule_renewal(v);
        token_installed(v);
}

static void lookup_start(VaultStore *v) {
        int r = vault_send(v, "GET", "auth/token/lookup-self", v->pending_token, NULL, on_lookup, v, &v->auth_call);
        if (r < 0)
                auth_failed(v, r, "cannot send the token lookup: %s", strerror(-r));
}

static void on_login(const HttpResponse *resp, void *userdata) {
        VaultStore *v = userdata;
        json_object *o = NULL, *auth, *tok;
        char err[VAULT_ERROR_SHOWN_MAX + 8];

        v->auth_call = NULL;
        if (resp->error < 0) {
                auth_failed(v, resp->error, "login with method %s (auth/%s/login) failed: %s", auth_names[v->method],
                            v->auth_mount, resp->message);
                return;
        }
        if (resp->status != 200) {
                if (v->sa_tokens && (resp->status == 403 || resp->status == 400))
                        kube_token_invalidate(v->sa_tokens); /* the next login presents a new one */
                vault_error_text(resp, err, sizeof(err));
                auth_failed(v, resp->status == 403 || resp->status == 400 ? -EACCES : -EIO,
                            "login with method %s (auth/%s/login) refused: HTTP %ld%s", auth_names[v->method],
                            v->auth_mount, resp->status, err);
                return;
        }
        if (json_parse_strict(resp->body->data, resp->body->len, &o) < 0 ||
            !json_object_object_get_ex(o, "auth", &auth) || !json_object_is_type(auth, json_type_object) ||
            !json_object_object_get_ex(auth, "client_token", &tok) || !json_object_is_type(tok, json_type_string)) {
                json_put_wiped(o);
                auth_failed(v, -EBADMSG, "login with method %s: malformed answer from Vault (no auth.client_token)",
                            auth_names[v->method]);
                return;
        }
        secbuf_free(v->pending_token);
        v->pending_token = secbuf_new_from(json_object_get_string(tok), (size_t) json_object_get_string_len(tok));
        json_put_wiped(o);
        if (!v->pending_token) {
                auth_failed(v, -ENOMEM, "out of memory");
                return;
        }
        lookup_start(v);
}

/* Credential files are read at each use (projected tokens rotate), trusted only with strict
 * modes, and stripped of surrounding white space. */
static int read_credential(VaultStore *v, const char *path, const char *what, SecBuf **ret) {
        _cleanup_free_ char *m = NULL;
        int r = config_check_file_trust(path, &m);
        if (r < 0 && m) {
                auth_failed(v, r, "%s: %s", what, m);
                return r;
        }
        r = secbuf_read_file(path, CREDENTIAL_FILE_MAX, true, ret);
        if (r < 0) {
                auth_failed(v, r, "cannot read the %s %s: %s", what, path, strerror(-r));
                return r;
        }
        if ((*ret)->len == 0) {
                auth_failed(v, -EINVAL, "the %s %s is empty", what, path);
                *ret = secbuf_free(*ret);
                return -EINVAL;
        }
        return 0;
}

/* The login request of the methods other than token, with the credential read for it. */
static void login_send(VaultStore *v, const SecBuf *cred) {
        _cleanup_secbuf_ SecBuf *body = secbuf_new(256);
        _cleanup_free_ char *path = NULL;
        int r = 0;

        if (!body || asprintf(&path, "auth/%s/login", v->auth_mount) < 0) {
                path = NULL;
                auth_failed(v, -ENOMEM, "out of memory");
                return;
        }
        switch (v->method) {
        case VAULT_AUTH_APPROLE:
                r = secbuf_append_str(body, "{\"role_id\":");
                if (r >= 0)
                        r = json_append_string(body, v->role_id, strlen(v->role_id));
                if (r >= 0)
                        r = secbuf_append_str(body, ",\"secret_id\":");
                break;
        case VAULT_AUTH_KUBERNETES:
        case VAULT_AUTH_JWT:
                r = secbuf_append_str(body, "{\"role\":");
                if (r >= 0)
                        r = json_append_string(body, v->role, strlen(v->role));
                if (r >= 0)
                        r = secbuf_append_str(body, ",\"jwt\":");
                break;
        case VAULT_AUTH_CERT:
                r = secbuf_append_str(body, "{");
                if (r >= 0 && v->cert_name) {
                        r = secbuf_append_str(body, "\"name\":");
                        if (r >= 0)
                                r = json_append_string(body, v->cert_name, strlen(v->cert_name));
                }
                if (r >= 0)
                        r = secbuf_append_str(body, "}");
                break;
        default:
                r = -EINVAL;
        }
        if (r >= 0 && cred) {
                r = json_append_string(body, (const char *) cred->data, cred->len);
                if (r >= 0)
                        r = secbuf_append_str(body, "}");
        }
        if (r >= 0)
                r = vault_send(v, "POST", path, NULL, body, on_login, v, &v->auth_call);
        if (r < 0)
                auth_failed(v, r, "cannot send the login request: %s", strerror(-r));
}

static void on_sa_token(int error, const char *message, const SecBuf *token, void *userdata) {
        VaultStore *v = userdata;
        v->sa_wait = NULL;
        if (error < 0) {
                auth_failed(v, error, "login with method %s: %s", auth_names[v->method], message);
                return;
        }
        login_send(v, token);
}

static void login_start(VaultStore *v) {
        _cleanup_secbuf_ SecBuf *cred = NULL;
        int r;

        if (v->logging_in || v->stopping)
                return;
        /* A fresh login replaces a renewal in flight. */
        if (v->auth_call)
                http_call_cancel(TAKE_PTR(v->auth_call));
        v->logging_in = true;

        switch (v->method) {
        case VAULT_AUTH_TOKEN:
                if (read_credential(v, v->token_file, "token file", &cred) < 0)
                        return;
                secbuf_free(v->pending_token);
                v->pending_token = TAKE_PTR(cred);
                lookup_start(v);
                return;
        case VAULT_AUTH_APPROLE:
                if (read_credential(v, v->secret_id_file, "secret_id file", &cred) < 0)
                        return;
                break;
        case VAULT_AUTH_KUBERNETES:
        case VAULT_AUTH_JWT:
                if (v->sa_tokens) {
                        r = kube_token_get(v->sa_tokens, on_sa_token, v, &v->sa_wait);
                        if (r < 0)
                                auth_failed(v, r, "cannot request the service account token: %s", strerror(-r));
                        return;
                }
                if (read_credential(v, v->token_file,
                                    v->method == VAULT_AUTH_KUBERNETES ? "service account token file" : "JWT file",
                                    &cred) < 0)
                        return;
                break;
        default:
                break;
        }
        login_send(v, cred);
}

static void on_renew(const HttpResponse *resp, void *userdata) {
        VaultStore *v = userdata;
        json_object *o = NULL, *auth, *x;

        v->auth_call = NULL;
        int64_t lease = -1;
        if (resp->error >= 0 && resp->status == 200 && json_parse_strict(resp->body->data, resp->body->len, &o) >= 0 &&
            json_object_object_get_ex(o, "auth", &auth) && json_object_object_get_ex(auth, "lease_duration", &x))
                lease = json_object_get_int64(x);
        json_put_wiped(o);

        uint64_t granted = lease > 0 ? (uint64_t) lease * USEC_PER_SEC : 0;
        /* A renewal that failed, or that granted less than last time (the token is reaching its
         * max TTL), means a fresh login; the current token serves until the new one is there. */
        if (lease <= 0 || granted < v->lease_usec) {
                login_start(v);
                return;
        }
        v->ttl_usec = v->lease_usec = granted;
        v->token_expiry = now_usec() + granted;
        schedule_renewal(v);
}

static int on_renew_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        VaultStore *v = userdata;
        if (v->logging_in || v->auth_call || v->stopping)
                return 0;
        if (!v->renewable || !v->token) {
                login_start(v);
                return 0;
        }
        _cleanup_secbuf_ SecBuf *body = secbuf_new_from("{}", 2);
        if (!body || vault_send(v, "POST", "auth/token/renew-self", v->token, body, on_renew, v, &v->auth_call) < 0)
                login_start(v);
        return 0;
}

/* ------------------------------------------------------------------ reads ---- */

static char *read_path(const VaultStore *v, const VaultRead *r) {
        _cleanup_free_ char *k = path_escape(r->key);
        char *p = NULL;
        int n;
        if (!k)
                return NULL;
        if (v->kv_version == 2)
                n = asprintf(&p, "%s/data/%s%s%s", v->mount, k, r->version ? "?version=" : "",
                             r->version ? r->version : "");
        else
                n = asprintf(&p, "%s/%s", v->mount, k);
        return n < 0 ? NULL : p;
}

static void on_read(const HttpResponse *resp, void *userdata) {
        VaultRead *r = userdata;
        VaultStore *v = r->v;
        char msg[512], err[VAULT_ERROR_SHOWN_MAX + 8];
        _cleanup_free_ char *path = read_path(v, r);
        const char *shown = path ? path : r->key;

        r->call = NULL;
        if (resp->error < 0) {
                snprintf(msg, sizeof(msg), "reading %s from %s: %s", shown, v->server, resp->message);
                read_complete(r, resp->error, msg, NULL, NULL);
                return;
        }
        vault_error_text(resp, err, sizeof(err));
        switch (resp->status) {
        case 200:
                break;
        case 403:
                if (!r->retried) {
                        /* The token may have expired or been revoked: one fresh login, then
                         * the read again. */
                        r->retried = true;
                        r->waiting = true;
                        v->token = secbuf_free(v->token);
                        login_start(v);
                        return;
                }
                snprintf(msg, sizeof(msg),
                         "permission denied reading %s (HTTP 403%s): the token's policies must grant \"read\" on %s",
                         shown, err, path ? path : r->key);
                read_complete(r, -EACCES, msg, NULL, NULL);
                return;
        case 404:
                snprintf(msg, sizeof(msg), "%s%s%s not found in Vault at %s (HTTP 404)", r->key,
                         r->version ? " version " : "", r->version ? r->version : "", shown);
                read_complete(r, -ENOENT, msg, NULL, NULL);
                return;
        case 503:
                snprintf(msg, sizeof(msg), "Vault at %s is sealed or in standby (HTTP 503%s)", v->server, err);
                read_complete(r, -EAGAIN, msg, NULL, NULL);
                return;
        default:
                snprintf(msg, sizeof(msg), "reading %s: HTTP %ld from Vault%s", shown, resp->status, err);
                read_complete(r, resp->status >= 500 || resp->status == 429 ? -EIO : -EINVAL, msg, NULL, NULL);
                return;
        }

        _cleanup_secbuf_ SecBuf *value = NULL;
        _cleanup_free_ char *version = NULL;
        const char *why = NULL;
        int k = vault_reply_secret(resp->body, v->kv_version, &value, &version, &why);
        if (k == -ENOMSG)
                snprintf(msg, sizeof(msg),
                         "reading %s: no data.data in the answer (is %s a KV version 2 mount? set kv_version = 1 for version 1)",
                         shown, v->mount);
        else if (k < 0)
                snprintf(msg, sizeof(msg), "reading %s: %s", shown, why);
        if (k < 0) {
                read_complete(r, k == -ENOMEM ? k : -EBADMSG, msg, NULL, NULL);
                return;
        }
        read_complete(r, 0, NULL, value, version);
}

int vault_reply_secret(const SecBuf *body, int kv_version, SecBuf **ret_value, char **ret_version,
                       const char **ret_why) {
        json_object *o = NULL, *data, *inner, *meta, *ver;
        _cleanup_secbuf_ SecBuf *value = NULL;
        _cleanup_free_ char *version = NULL;

        if (json_parse_strict(body->data, body->len, &o) < 0 || !json_object_object_get_ex(o, "data", &data) ||
            !json_object_is_type(data, json_type_object)) {
                json_put_wiped(o);
                *ret_why = "malformed JSON from Vault";
                return -EBADMSG;
        }
        if (kv_version == 2) {
                if (!json_object_object_get_ex(data, "data", &inner) || !json_object_is_type(inner, json_type_object)) {
                        json_put_wiped(o);
                        *ret_why = "no data.data in the answer";
                        return -ENOMSG;
                }
                if (json_object_object_get_ex(data, "metadata", &meta) && json_object_object_get_ex(meta, "version", &ver) &&
                    asprintf(&version, "%" PRId64, json_object_get_int64(ver)) < 0)
                        version = NULL;
                data = inner;
        }
        value = secbuf_new(256);
        int k = value ? json_serialize(data, value) : -ENOMEM;
        json_put_wiped(o);
        if (k < 0) {
                *ret_why = "out of memory";
                return k;
        }
        *ret_value = TAKE_PTR(value);
        *ret_version = TAKE_PTR(version);
        return 0;
}

static void read_send(VaultRead *r) {
        VaultStore *v = r->v;
        _cleanup_free_ char *path = read_path(v, r);
        int k = path ? vault_send(v, "GET", path, v->token, NULL, on_read, r, &r->call) : -ENOMEM;
        if (k < 0)
                read_complete(r, k, "cannot send the request", NULL, NULL);
}

static int vault_check_ref(const Store *s, const RemoteRef *ref, char **ret_error) {
        const VaultStore *v = (const VaultStore *) s;
        if (ref->version && v->kv_version != 2)
                return asprintf(ret_error, "store '%s' is KV version 1, which has no versions; remove 'version'",
                                s->name) < 0 ? -ENOMEM : -EINVAL;
        if (ref->version && strspn(ref->version, "0123456789") != strlen(ref->version))
                return asprintf(ret_error, "a Vault KV version is a number, not \"%s\"", ref->version) < 0 ? -ENOMEM
                                                                                                   : -EINVAL;
        if (ref->key[0] == '/' || strstr(ref->key, "//") || strstr(ref->key, ".."))
                return asprintf(ret_error, "Vault key \"%s\" must be a relative path like \"chimera/postgres\"",
                                ref->key) < 0 ? -ENOMEM : -EINVAL;
        return 0;
}

static bool token_usable(const VaultStore *v) {
        return v->token && !(v->token_expiry && now_usec() >= v->token_expiry);
}

static int on_kick(sd_event_source *s, void *userdata) {
        VaultStore *v = userdata;
        if (token_usable(v))
                token_installed(v);
        else
                login_start(v);
        return 0;
}

static int vault_fetch(Store *s, const RemoteRef *ref, store_fetch_cb cb, void *userdata) {
        VaultStore *v = (VaultStore *) s;
        if (v->stopping)
                return -ECANCELED;
        VaultRead *r = calloc(1, sizeof(VaultRead));
        if (!r)
                return -ENOMEM;
        *r = (VaultRead) { .v = v, .cb = cb, .userdata = userdata, .key = strdup(ref->key), .waiting = true,
                           .version = ref->version ? strdup(ref->version) : NULL };
        if (!r->key || (ref->version && !r->version)) {
                read_free(r);
                return -ENOMEM;
        }
        int k = sd_event_source_set_enabled(v->kick, SD_EVENT_ONESHOT);
        if (k < 0) {
                read_free(r);
                return k;
        }
        LIST_PREPEND(v->reads, r);
        return 0;
}

static int vault_start(Store *s, const StoreContext *ctx) {
        VaultStore *v = (VaultStore *) s;
        HttpPoolOptions o = { .ca_file = v->ca_file, .ca_pem = v->ca_pem, .ca_path = v->ca_path, .timeout_usec = v->timeout_usec,
                              .connect_timeout_usec = MIN(v->timeout_usec, 10 * USEC_PER_SEC),
                              .store_name = s->name, .store_type = s->vtable->name };
        if (v->method == VAULT_AUTH_CERT) {
                o.cert_file = v->cert_file;
                o.key_file = v->key_file;
        }
        v->ctx = *ctx;
        v->stopping = false;
        int r = sd_event_add_defer(ctx->event, &v->kick, on_kick, v);
        if (r < 0)
                return r;
        r = sd_event_source_set_enabled(v->kick, SD_EVENT_OFF);
        if (r >= 0)
                r = http_pool_new(ctx->http, &o, &v->pool);
        if (r >= 0)
                r = store_token_source(ctx, v->service_account, &v->sa_tokens);
        if (r < 0) {
                v->kick = sd_event_source_disable_unref(v->kick);
                v->pool = http_pool_free(v->pool);
                return r;
        }
        if (strncmp(v->server, "http://", 7) == 0) {
                char msg[512];
                snprintf(msg, sizeof(msg), "server %s is plain http:// (acceptable only for a local agent or a test)",
                         v->server);
                store_emit(s, ctx, STORE_EVENT_WARNING, 0, msg);
        }
        return 0;
}

static void vault_stop(Store *s) {
        VaultStore *v = (VaultStore *) s;
        v->stopping = true;
        if (v->auth_call)
                http_call_cancel(TAKE_PTR(v->auth_call));
        v->renew_timer = sd_event_source_disable_unref(v->renew_timer);
        v->kick = sd_event_source_disable_unref(v->kick);
        while (v->reads)
                read_complete(v->reads, -ECANCELED, "cancelled", NULL, NULL);
        kube_token_wait_cancel(TAKE_PTR(v->sa_wait));
        v->sa_tokens = kube_token_source_free(v->sa_tokens);
        v->pool = http_pool_free(v->pool);
        v->token = secbuf_free(v->token);
        v->pending_token = secbuf_free(v->pending_token);
        v->logging_in = false;
}

static void vault_done(Store *s) {
        VaultStore *v = (VaultStore *) s;
        secbuf_free(v->token);
        secbuf_free(v->pending_token);
        free(v->server);
        free(v->mount);
        free(v->namespace);
        free(v->ca_file);
        free(v->ca_pem);
        free(v->ca_path);
        free(v->auth_mount);
        free(v->role);
        free(v->token_file);
        store_service_account_free(v->service_account);
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
        .check_ref = vault_check_ref,
        .start = vault_start,
        .fetch = vault_fetch,
        .stop = vault_stop,
        .done = vault_done,
};
