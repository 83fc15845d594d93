/* SPDX-License-Identifier: MIT */
#include "kube/kube-client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/cleanup.h"
#include "util/json.h"
#include "util/random.h"

/* One watch event is one line; a Secret is at most 1 MiB of data, which base64 and JSON make
 * at most about 1.4 MiB. */
#define KUBE_EVENT_LINE_MAX (4U * 1024U * 1024U)
#define TOKEN_FILE_MAX (64U * 1024U)

struct KubeClient {
        sd_event *event;
        KubeConnection *conn;
        HttpPool *pool;
};

struct KubeCall {
        KubeClient *client;
        HttpCall *http;
        kube_done_cb cb;
        kube_event_cb on_event;
        void *userdata;
        SecBuf *line;   /* a watch's partial event line */
        SecBuf *events; /* complete event lines not delivered yet, each ending in '\n' */
        sd_event_source *defer;
        bool dispatching, cancelled;
        int stream_error;
        char stream_message[128];
};

int kube_client_new(sd_event *e, HttpContext *http, KubeConnection *conn, uint64_t timeout_usec, KubeClient **ret) {
        KubeClient *c = calloc(1, sizeof(KubeClient));
        int r;

        if (!c) {
                kube_connection_free(conn);
                return -ENOMEM;
        }
        c->event = sd_event_ref(e);
        c->conn = conn;
        HttpPoolOptions o = { .ca_file = conn->ca_file, .ca_pem = conn->ca_pem, .cert_file = conn->cert_file,
                              .key_file = conn->key_file, .cert_pem = conn->cert_pem, .key_pem = conn->key_pem,
                              .timeout_usec = timeout_usec };
        r = http_pool_new(http, &o, &c->pool);
        if (r < 0) {
                kube_client_free(c);
                return r;
        }
        *ret = c;
        return 0;
}

KubeClient *kube_client_free(KubeClient *c) {
        if (!c)
                return NULL;
        http_pool_free(c->pool); /* cancels calls: their callbacks run with -ECANCELED */
        kube_connection_free(c->conn);
        sd_event_unref(c->event);
        free(c);
        return NULL;
}

const KubeConnection *kube_client_connection(const KubeClient *c) {
        return c->conn;
}

uint64_t kube_retry_delay(unsigned failures) {
        return random_backoff(KUBE_RETRY_MIN_USEC, KUBE_RETRY_MAX_USEC, failures > 0 ? failures - 1 : 0);
}

static void call_free(KubeCall *k) {
        if (!k)
                return;
        if (k->dispatching) { /* freed when the delivery loop sees it */
                k->cancelled = true;
                return;
        }
        secbuf_free(k->line);
        secbuf_free(k->events);
        sd_event_source_disable_unref(k->defer);
        free(k);
}

/* The one place HTTP statuses of the API become -errno. */
static int status_to_errno(long status, const char *reason) {
        switch (status) {
        case 401:
                return -EACCES;
        case 403:
                return -EPERM;
        case 404:
                return -ENOENT;
        case 409:
                return reason && streq(reason, "AlreadyExists") ? -EEXIST : -EBUSY;
        case 410:
                return -ESTALE;
        case 413:
        case 422:
                return -EINVAL;
        case 429:
                return -EAGAIN;
        default:
                return status >= 500 ? -EIO : -EPROTO;
        }
}

const char *kube_json_str(json_object *o, const char *key) {
        json_object *v;
        return o && json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
                       ? json_object_get_string(v)
                       : NULL;
}

static void deliver(KubeCall *k, const HttpResponse *h) {
        KubeResponse r = { .error = h->error, .status = h->status, .message = h->message };
        json_object *o = NULL;
        char msg[160];

        if (r.error == 0 && k->stream_error < 0) {
                r.error = k->stream_error;
                r.message = k->stream_message;
        } else if (r.error == 0) {
                if (h->body && h->body->len > 0 && json_parse_strict(h->body->data, h->body->len, &o) < 0)
                        o = NULL;
                if (h->status >= 200 && h->status < 300)
                        r.object = o;
                else {
                        r.reason = kube_json_str(o, "reason");
                        r.error = status_to_errno(h->status, r.reason);
                        r.message = kube_json_str(o, "message");
                        if (!r.message || !*r.message) {
                                snprintf(msg, sizeof(msg), "HTTP %ld from the Kubernetes API", h->status);
                                r.message = msg;
                        }
                }
        }
        if (k->cb)
                k->cb(&r, k->userdata);
        json_put_wiped(o);
        call_free(k);
}

static void on_http_done(const HttpResponse *h, void *userdata) {
        deliver(userdata, h);
}

/* "Authorization: Bearer ..." from the inline token or the token file, read now. */
static int auth_header(KubeClient *c, char **ret) {
        _cleanup_secbuf_ SecBuf *file = NULL;
        const SecBuf *tok = c->conn->token;
        int r;

        *ret = NULL;
        if (!tok && c->conn->token_file) {
                r = secbuf_read_file(c->conn->token_file, TOKEN_FILE_MAX, true, &file);
                if (r < 0)
                        return r;
                tok = file;
        }
        if (!tok)
                return 0;
        *ret = secbuf_header_line("Authorization", "Bearer ", tok);
        if (!*ret)
                return -ENOMEM;
        return 0;
}

static int start(KubeClient *c, KubeCall *k, const char *method, const char *path, const char *content_type,
                 const SecBuf *body, int (*on_data)(long, const void *, size_t, void *), uint64_t timeout_usec,
                 http_done_cb done) {
        _cleanup_erase_ char *auth = NULL;
        _cleanup_free_ char *url = NULL, *ct = NULL;
        char *headers[4] = { (char *) "Accept: application/json" };
        size_t n = 1;
        int r;

        r = auth_header(c, &auth);
        if (r < 0)
                return r;
        if (asprintf(&url, "%s%s", c->conn->server, path) < 0) {
                url = NULL;
                return -ENOMEM;
        }
        if (auth)
                headers[n++] = auth;
        if (content_type) {
                if (asprintf(&ct, "Content-Type: %s", content_type) < 0) {
                        ct = NULL;
                        return -ENOMEM;
                }
                headers[n++] = ct;
        }
        HttpRequest req = { .method = method, .url = url, .headers = headers, .body = body, .on_data = on_data,
                            .timeout_usec = timeout_usec };
        return http_request(c->pool, &req, done, k, &k->http);
}

int kube_request(KubeClient *c, const KubeRequest *req, kube_done_cb cb, void *userdata, KubeCall **ret) {
        KubeCall *k = calloc(1, sizeof(KubeCall));
        int r;

        if (!k)
                return -ENOMEM;
        *k = (KubeCall) { .client = c, .cb = cb, .userdata = userdata };
        r = start(c, k, req->method, req->path, req->content_type, req->body, NULL, 0, on_http_done);
        if (r < 0) {
                call_free(k);
                return r;
        }
        if (ret)
                *ret = k;
        return 0;
}

void kube_call_cancel(KubeCall *k) {
        if (!k)
                return;
        http_call_cancel(k->http);
        call_free(k);
}

static int watch_line(KubeCall *k, const uint8_t *line, size_t len) {
        json_object *o = NULL, *object;
        const char *type;

        if (len == 0)
                return 0;
        if (json_parse_strict(line, len, &o) < 0 || !(type = kube_json_str(o, "type")) ||
            !json_object_object_get_ex(o, "object", &object)) {
                json_put_wiped(o);
                k->stream_error = -EBADMSG;
                snprintf(k->stream_message, sizeof(k->stream_message), "a watch event that is not valid JSON");
                return -EBADMSG;
        }
        k->on_event(type, object, k->userdata);
        json_put_wiped(o);
        return 0;
}

/* Delivers the complete event lines received so far. From the event loop only: what an
 * event leads to (a request) cannot start inside libcurl's callbacks. */
static bool deliver_events(KubeCall *k) {
        size_t at = 0;

        k->dispatching = true;
        while (at < k->events->len && !k->cancelled && k->stream_error == 0) {
                const uint8_t *nl = memchr(k->events->data + at, '\n', k->events->len - at);
                size_t n = (size_t) (nl - (k->events->data + at));
                (void) watch_line(k, k->events->data + at, n);
                at += n + 1;
        }
        k->dispatching = false;
        secbuf_clear(k->events);
        return k->cancelled; /* then the caller frees k */
}

static int on_events(sd_event_source *s, void *userdata) {
        KubeCall *k = userdata;
        if (deliver_events(k))
                call_free(k);
        return 0;
}

static int on_watch_data(long status, const void *data, size_t len, void *userdata) {
        KubeCall *k = userdata;
        const char *p = data, *end = p + len;

        if (k->stream_error < 0)
                return k->stream_error;

        /* An error status comes with one Status object as the body: collect it as is. */
        while (p < end) {
                const char *nl = status >= 200 && status < 300 ? memchr(p, '\n', (size_t) (end - p)) : NULL;
                size_t n = nl ? (size_t) (nl - p) : (size_t) (end - p);
                if (k->line->len + n > KUBE_EVENT_LINE_MAX) {
                        k->stream_error = -EFBIG;
                        snprintf(k->stream_message, sizeof(k->stream_message), "a watch event over %u bytes",
                                 KUBE_EVENT_LINE_MAX);
                        return -EFBIG;
                }
                if (secbuf_append(k->line, p, n) < 0)
                        return -ENOMEM;
                p += n;
                if (nl) {
                        p++;
                        if (secbuf_append(k->events, k->line->data, k->line->len) < 0 ||
                            secbuf_append_char(k->events, '\n') < 0)
                                return -ENOMEM;
                        secbuf_clear(k->line);
                        if (sd_event_source_set_enabled(k->defer, SD_EVENT_ONESHOT) < 0)
                                return -EIO;
                }
        }
        return 0;
}

static void on_watch_done(const HttpResponse *h, void *userdata) {
        KubeCall *k = userdata;
        /* Events not delivered yet go first (this runs from the loop, not inside curl). */
        if (k->events->len > 0) {
                k->http = NULL; /* done: nothing to cancel any more */
                if (deliver_events(k)) {
                        call_free(k); /* cancelled meanwhile: no on_end */
                        return;
                }
                (void) sd_event_source_set_enabled(k->defer, SD_EVENT_OFF);
        }
        /* Without an error status, a last line without its newline still counts. */
        if (h->error == 0 && h->status >= 200 && h->status < 300) {
                (void) watch_line(k, k->line->data, k->line->len);
                HttpResponse ok = *h;
                ok.body = NULL;
                deliver(k, &ok);
                return;
        }
        HttpResponse e = *h;
        e.body = k->line; /* the error status's Status object */
        deliver(k, &e);
}

int kube_watch(KubeClient *c, const char *path, uint64_t timeout_usec, kube_event_cb on_event, kube_done_cb on_end,
               void *userdata, KubeCall **ret) {
        KubeCall *k = calloc(1, sizeof(KubeCall));
        int r;

        if (!k)
                return -ENOMEM;
        *k = (KubeCall) { .client = c, .cb = on_end, .on_event = on_event, .userdata = userdata };
        k->line = secbuf_new(4096);
        k->events = secbuf_new(4096);
        if (!k->line || !k->events || sd_event_add_defer(c->event, &k->defer, on_events, k) < 0) {
                call_free(k);
                return -ENOMEM;
        }
        (void) sd_event_source_set_enabled(k->defer, SD_EVENT_OFF);
        r = start(c, k, NULL, path, NULL, NULL, on_watch_data, timeout_usec, on_watch_done);
        if (r < 0) {
                call_free(k);
                return r;
        }
        if (ret)
                *ret = k;
        return 0;
}
