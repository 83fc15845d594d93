/* SPDX-License-Identifier: MIT */
#include "kube/kube-token.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kube/kube-client.h"
#include "kube/kubeconfig.h"
#include "util/cleanup.h"
#include "util/duration.h"
#include "util/error.h"
#include "util/json.h"
#include "util/list.h"

/* Requested anew at 80% of its lifetime; handed out until 90% (while a renewal is in flight
 * or failing), then callers wait for a new one. */
#define REFRESH_PERCENT 80U
#define USABLE_PERCENT 90U
#define MESSAGE_MAX 1024

struct KubeTokens {
        unsigned n_ref;
        sd_event *event;
        HttpContext *http;
        char *kubeconfig;
        uint64_t timeout_usec;
        KubeClient *client; /* NULL until the connection could be resolved */
        kube_token_warn_cb warn;
        void *warn_userdata;
};

struct KubeTokenWait {
        KubeTokenSource *source;
        kube_token_cb cb;
        void *userdata;
        KubeTokenWait *prev, *next;
};

struct KubeTokenSource {
        KubeTokens *tokens;
        char *namespace, *name, *label;
        char **audiences;
        SecBuf *token;
        uint64_t refresh_at, usable_until; /* CLOCK_BOOTTIME usec: timers must count suspend too */
        uint64_t requested_at;             /* CLOCK_REALTIME usec, of the request in flight */
        uint64_t requested_boot;
        unsigned failures;
        KubeCall *call;
        sd_event_source *timer;
        KubeTokenWait *waiters;
};

/* ---------------------------------------------------------------- tokens ---- */

void kube_tokens_set_warning(KubeTokens *t, kube_token_warn_cb cb, void *userdata) {
        t->warn = cb;
        t->warn_userdata = userdata;
}

int kube_tokens_new(sd_event *e, HttpContext *http, const char *kubeconfig, uint64_t timeout_usec, KubeTokens **ret) {
        KubeTokens *t = calloc(1, sizeof(KubeTokens));
        if (!t || (kubeconfig && !(t->kubeconfig = strdup(kubeconfig)))) {
                free(t);
                return -ENOMEM;
        }
        t->timeout_usec = timeout_usec;
        t->n_ref = 1;
        t->event = sd_event_ref(e);
        t->http = http;
        *ret = t;
        return 0;
}

KubeTokens *kube_tokens_ref(KubeTokens *t) {
        t->n_ref++;
        return t;
}

KubeTokens *kube_tokens_unref(KubeTokens *t) {
        if (!t || --t->n_ref > 0)
                return NULL;
        kube_client_free(t->client);
        sd_event_unref(t->event);
        free(t->kubeconfig);
        free(t);
        return NULL;
}

static int tokens_client(KubeTokens *t, KubeClient **ret, char **ret_error) {
        KubeConnection *conn = NULL;
        int r;

        if (!t->client) {
                r = kube_connection_resolve(t->kubeconfig, &conn, ret_error);
                if (r < 0)
                        return r;
                r = kube_client_new(t->event, t->http, conn, t->timeout_usec, &t->client);
                if (r < 0)
                        return error_set(ret_error, r, "cannot set up the Kubernetes client: %s", strerror(-r));
        }
        *ret = t->client;
        return 0;
}

/* ---------------------------------------------------------------- parsing ---- */

/* metav1.Time: "2026-11-29T12:00:00Z", fractional seconds allowed. */
static int parse_time(const char *s, int64_t *ret) {
        struct tm tm = { 0 };
        const char *end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
        if (!end)
                return -EBADMSG;
        if (*end == '.')
                end += 1 + strspn(end + 1, "0123456789");
        if (!streq(end, "Z"))
                return -EBADMSG;
        *ret = (int64_t) timegm(&tm);
        return 0;
}

int kube_token_parse(json_object *o, SecBuf **ret_token, int64_t *ret_expiration) {
        json_object *status;
        const char *tok, *exp;
        int64_t t;

        if (!o || !json_object_object_get_ex(o, "status", &status) || !(tok = kube_json_str(status, "token")) ||
            !*tok || !(exp = kube_json_str(status, "expirationTimestamp")) || parse_time(exp, &t) < 0)
                return -EBADMSG;
        size_t n = strlen(tok);
        if (n > KUBE_TOKEN_SIZE_MAX)
                return -EFBIG;
        SecBuf *b = secbuf_new_from(tok, n);
        if (!b)
                return -ENOMEM;
        *ret_token = b;
        *ret_expiration = t;
        return 0;
}

/* --------------------------------------------------------------- a source ---- */

static uint64_t boot_now(KubeTokenSource *s) {
        uint64_t now;
        if (sd_event_now(s->tokens->event, CLOCK_BOOTTIME, &now) < 0)
                now = 0;
        return now;
}

static void request_start(KubeTokenSource *s);

static int on_timer(sd_event_source *es, uint64_t usec, void *userdata) {
        request_start(userdata);
        return 0;
}

static int arm_timer(KubeTokenSource *s, uint64_t at) {
        int r;
        if (!s->timer) {
                r = sd_event_add_time(s->tokens->event, &s->timer, CLOCK_BOOTTIME, at, 0, on_timer, s);
                if (r < 0)
                        s->timer = NULL;
                return r;
        }
        r = sd_event_source_set_time(s->timer, at);
        return r < 0 ? r : sd_event_source_set_enabled(s->timer, SD_EVENT_ONESHOT);
}

/* Every waiter gets the outcome; a waiter's callback may get again (it joins the next round). */
static void deliver(KubeTokenSource *s, int error, const char *message) {
        KubeTokenWait *list = s->waiters;
        s->waiters = NULL;
        while (list) {
                KubeTokenWait *w = list;
                LIST_REMOVE(list, w);
                kube_token_cb cb = w->cb;
                void *ud = w->userdata;
                free(w);
                cb(error, message, error < 0 ? NULL : s->token, ud);
        }
}

static void fail(KubeTokenSource *s, int error, const char *fmt, ...) _printf_(3, 4);
static void fail(KubeTokenSource *s, int error, const char *fmt, ...) {
        char msg[MESSAGE_MAX];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        s->call = NULL;
        s->failures++;
        /* A token that is still usable is kept, and its renewal retried before it runs out. */
        uint64_t now = boot_now(s);
        if (s->token && now < s->usable_until) {
                (void) arm_timer(s, now + MIN(kube_retry_delay(s->failures), s->usable_until - now));
                if (!s->waiters && s->tokens->warn)
                        s->tokens->warn(s->label, error, msg, (s->usable_until - now) / USEC_PER_SEC,
                                        s->tokens->warn_userdata);
        } else
                s->token = secbuf_free(s->token);
        deliver(s, error, msg);
}

/* What a refusal means, in the words of the API and of the RBAC rule that is missing. */
static void refused(KubeTokenSource *s, const KubeResponse *r, const char *who) {
        switch (r->status) {
        case 403:
                fail(s, -EACCES,
                     "TokenRequest for service account %s refused: the daemon's Kubernetes identity (%s) lacks the RBAC "
                     "permission to create serviceaccounts/token in namespace \"%s\" (verb \"create\", resource "
                     "\"serviceaccounts/token\", resourceNames [\"%s\"]): %s",
                     s->label, who, s->namespace, s->name, r->message);
                return;
        case 404:
                fail(s, -ENOENT, "TokenRequest for service account %s: no such service account: %s", s->label,
                     r->message);
                return;
        case 401:
                fail(s, -EACCES, "TokenRequest for service account %s: the API server refused the daemon's credentials (%s): %s",
                     s->label, who, r->message);
                return;
        default:
                fail(s, r->error, "TokenRequest for service account %s failed: %s", s->label, r->message);
        }
}

static void on_answer(const KubeResponse *r, void *userdata) {
        KubeTokenSource *s = userdata;
        const char *who = s->tokens->client ? kube_client_connection(s->tokens->client)->source : "?";
        SecBuf *token = NULL;
        int64_t exp;

        s->call = NULL;
        if (r->error == -ECANCELED)
                return; /* the client went away with its source */
        if (r->error < 0 && r->status == 0) {
                fail(s, r->error, "TokenRequest for service account %s: cannot reach the Kubernetes API (%s): %s",
                     s->label, who, r->message);
                return;
        }
        if (r->error < 0) {
                refused(s, r, who);
                return;
        }
        int k = kube_token_parse(r->object, &token, &exp);
        if (k < 0) {
                fail(s, k, "TokenRequest for service account %s: %s", s->label,
                     k == -EFBIG ? "the token is larger than 64 KiB"
                                 : "malformed answer (no status.token and status.expirationTimestamp)");
                return;
        }
        /* The lifetime the server granted, on our clock: from when we asked to when it ends. */
        uint64_t life_usec = KUBE_TOKEN_EXPIRATION_SEC * USEC_PER_SEC; /* the clocks disagree: what we asked for */
        if (exp > 0 && (uint64_t) exp * USEC_PER_SEC > s->requested_at)
                life_usec = (uint64_t) exp * USEC_PER_SEC - s->requested_at;
        secbuf_free(s->token);
        s->token = token;
        s->failures = 0;
        s->refresh_at = s->requested_boot + life_usec / 100 * REFRESH_PERCENT;
        s->usable_until = s->requested_boot + life_usec / 100 * USABLE_PERCENT;
        (void) arm_timer(s, s->refresh_at); /* if not: the first get past refresh_at renews it */
        deliver(s, 0, NULL);
}

static int request_body(KubeTokenSource *s, SecBuf **ret) {
        _cleanup_secbuf_ SecBuf *b = secbuf_new(256);
        int r;

        if (!b)
                return -ENOMEM;
        r = secbuf_append_str(b, "{\"apiVersion\":\"authentication.k8s.io/v1\",\"kind\":\"TokenRequest\",\"spec\":{");
        if (r >= 0 && s->audiences && s->audiences[0]) {
                r = secbuf_append_str(b, "\"audiences\":[");
                for (size_t i = 0; r >= 0 && s->audiences[i]; i++) {
                        if (i > 0)
                                r = secbuf_append_char(b, ',');
                        if (r >= 0)
                                r = json_append_string(b, s->audiences[i], strlen(s->audiences[i]));
                }
                if (r >= 0)
                        r = secbuf_append_str(b, "],");
        }
        char exp[64];
        snprintf(exp, sizeof(exp), "\"expirationSeconds\":%u}}", KUBE_TOKEN_EXPIRATION_SEC);
        if (r >= 0)
                r = secbuf_append_str(b, exp);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(b);
        return 0;
}

static void request_start(KubeTokenSource *s) {
        _cleanup_free_ char *error = NULL, *path = NULL;
        _cleanup_secbuf_ SecBuf *body = NULL;
        KubeClient *c = NULL;
        int r;

        if (s->call)
                return;
        r = tokens_client(s->tokens, &c, &error);
        if (r < 0) {
                fail(s, r, "service account %s: no Kubernetes API to request its token from: %s", s->label, error);
                return;
        }
        if (asprintf(&path, "/api/v1/namespaces/%s/serviceaccounts/%s/token", s->namespace, s->name) < 0) {
                path = NULL;
                fail(s, -ENOMEM, "out of memory");
                return;
        }
        r = request_body(s, &body);
        if (r < 0) {
                fail(s, r, "out of memory");
                return;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        s->requested_at = (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000U;
        s->requested_boot = boot_now(s);
        KubeRequest req = { .method = "POST", .path = path, .content_type = "application/json", .body = body };
        r = kube_request(c, &req, on_answer, s, &s->call);
        if (r < 0)
                fail(s, r, "TokenRequest for service account %s: cannot send it: %s", s->label, strerror(-r));
}

int kube_token_source_new(KubeTokens *t, const ServiceAccountRef *sa, KubeTokenSource **ret) {
        KubeTokenSource *s = calloc(1, sizeof(KubeTokenSource));
        if (!s)
                return -ENOMEM;
        s->tokens = kube_tokens_ref(t);
        s->namespace = strdup(sa->namespace);
        s->name = strdup(sa->name);
        size_t n = strv_length(sa->audiences);
        s->audiences = calloc(n + 1, sizeof(char *));
        bool ok = s->namespace && s->name && s->audiences &&
                  asprintf(&s->label, "%s/%s", sa->namespace, sa->name) >= 0;
        for (size_t i = 0; ok && i < n; i++)
                ok = !!(s->audiences[i] = strdup(sa->audiences[i]));
        if (!ok) {
                kube_token_source_free(s);
                return -ENOMEM;
        }
        *ret = s;
        return 0;
}

KubeTokenSource *kube_token_source_free(KubeTokenSource *s) {
        if (!s)
                return NULL;
        kube_call_cancel(s->call);
        while (s->waiters) {
                KubeTokenWait *w = s->waiters;
                LIST_REMOVE(s->waiters, w);
                free(w);
        }
        sd_event_source_disable_unref(s->timer);
        secbuf_free(s->token);
        free(s->namespace);
        free(s->name);
        free(s->label);
        strv_free(s->audiences);
        kube_tokens_unref(s->tokens);
        free(s);
        return NULL;
}

int kube_token_get(KubeTokenSource *s, kube_token_cb cb, void *userdata, KubeTokenWait **ret) {
        uint64_t now = boot_now(s);

        *ret = NULL;
        if (s->token && now < s->usable_until) {
                if (now >= s->refresh_at)
                        request_start(s); /* overdue (the timer could not be armed): renew meanwhile */
                cb(0, NULL, s->token, userdata);
                return 0;
        }
        KubeTokenWait *w = calloc(1, sizeof(KubeTokenWait));
        if (!w)
                return -ENOMEM;
        /* The request goes from the event loop, so that cb never runs inside this call. */
        int r = s->call ? 0 : arm_timer(s, now);
        if (r < 0) {
                free(w);
                return r;
        }
        *w = (KubeTokenWait) { .source = s, .cb = cb, .userdata = userdata };
        LIST_PREPEND(s->waiters, w);
        *ret = w;
        return 0;
}

void kube_token_wait_cancel(KubeTokenWait *w) {
        if (!w)
                return;
        LIST_REMOVE(w->source->waiters, w);
        free(w);
}

void kube_token_invalidate(KubeTokenSource *s) {
        s->token = secbuf_free(s->token);
        s->usable_until = s->refresh_at = 0;
}

const char *kube_token_source_name(const KubeTokenSource *s) {
        return s->label;
}
