/* SPDX-License-Identifier: MIT */
#include "util/http.h"

#include <curl/curl.h>
#include <openssl/ssl.h>
#include <arpa/inet.h>
#include <errno.h>
#include <strings.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>

#include "util/cleanup.h"
#include "util/duration.h"
#include "util/escape.h"
#include "util/list.h"

#define DEFAULT_CONNECT_TIMEOUT_USEC (10ULL * 1000000ULL)
#define DEFAULT_TIMEOUT_USEC (60ULL * 1000000ULL)

static bool host_is_loopback(const char *host) {
        struct in_addr a4;
        struct in6_addr a6;
        char b[INET6_ADDRSTRLEN + 2];
        size_t n = strlen(host);

        if (strcasecmp(host, "localhost") == 0)
                return true;
        if (inet_pton(AF_INET, host, &a4) == 1)
                return (ntohl(a4.s_addr) >> 24) == 127;
        if (n < 3 || n >= sizeof(b) || host[0] != '[' || host[n - 1] != ']')
                return false;
        memcpy(b, host + 1, n - 2);
        b[n - 2] = 0;
        return inet_pton(AF_INET6, b, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

bool http_url_allowed(const char *url) {
        static const CURLUPart refused[] = { CURLUPART_USER, CURLUPART_PASSWORD, CURLUPART_OPTIONS,
                                             CURLUPART_QUERY, CURLUPART_FRAGMENT };
        CURLU *u = curl_url();
        char *scheme = NULL, *host = NULL;
        bool ok = false;

        if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
            curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
            curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !*host)
                goto out;
        for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
                char *x = NULL;
                CURLUcode c = curl_url_get(u, refused[i], &x, 0);
                curl_free(x);
                if (c == CURLUE_OK)
                        goto out;
        }
        if (strcasecmp(scheme, "https") == 0)
                ok = true;
        else if (strcasecmp(scheme, "http") == 0)
                ok = host_is_loopback(host);
out:
        curl_free(scheme);
        curl_free(host);
        curl_url_cleanup(u);
        return ok;
}

struct HttpContext {
        sd_event *event;
        unsigned max_in_flight;
        unsigned in_flight;
        HttpCall *queue_head, **queue_tail; /* waiting for a place, across pools */
        http_request_observer observer;
        void *observer_userdata;
};

struct HttpPool {
        HttpContext *ctx;
        CURLM *multi;
        sd_event_source *timer;
        HttpPoolOptions opts;
        char *ca_file, *ca_path, *cert_file, *key_file, *ca_pem, *cert_pem;
        SecBuf *key_pem;
        HttpCall *calls;    /* all of this pool's calls, queued or in flight */
        unsigned in_flight; /* of them, started and not streaming */
};

struct HttpCall {
        HttpPool *pool;
        CURL *easy;
        struct curl_slist *headers;
        SecBuf *request_body;
        SecBuf *response_body;
        char *aws_key_id, *aws_secret_key; /* curl keeps its own copies: see call_free() */
        bool too_big;
        bool headers_wiped;
        bool started;   /* in the multi handle (else queued) */
        bool streaming; /* on_data gets the body; holds no place among those in flight */
        uint64_t started_usec; /* CLOCK_MONOTONIC, for the request observer */
        int (*on_data)(long status, const void *data, size_t len, void *userdata);
        char errbuf[CURL_ERROR_SIZE];
        http_done_cb cb;
        void *userdata;
        HttpCall *prev, *next;     /* pool's list */
        HttpCall *queue_next;      /* context's queue */
};

static void pump(HttpContext *ctx);

/* A place among the requests in flight, taken (+1) or given back (-1). */
static void place(HttpCall *c, int d) {
        c->pool->ctx->in_flight += d;
        c->pool->in_flight += d;
}

/* ------------------------------------------------------------ errors ---- */

/* The one place CURLcode becomes -errno (and a message fit for the operator). */
static int curl_code_to_errno(CURLcode c, bool too_big, const char *errbuf, const char **ret_message) {
        switch (c) {
        case CURLE_OK:
                return 0;
        case CURLE_OPERATION_TIMEDOUT:
                *ret_message = "timed out";
                return -ETIMEDOUT;
        case CURLE_COULDNT_CONNECT:
                *ret_message = *errbuf ? errbuf : "connection refused";
                return -ECONNREFUSED;
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
                *ret_message = *errbuf ? errbuf : "cannot resolve the host name";
                return -EHOSTUNREACH;
        case CURLE_PEER_FAILED_VERIFICATION:
#if LIBCURL_VERSION_NUM < 0x073e00
        case CURLE_SSL_CACERT:
#endif
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_SSL_ISSUER_ERROR:
        case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
                *ret_message = *errbuf ? errbuf : "TLS handshake or certificate verification failed";
                return -EPROTO;
        case CURLE_WRITE_ERROR:
                if (too_big) {
                        *ret_message = "response body too large";
                        return -EFBIG;
                }
                *ret_message = "cannot store the response";
                return -ENOMEM;
        case CURLE_OUT_OF_MEMORY:
                *ret_message = "out of memory";
                return -ENOMEM;
        case CURLE_GOT_NOTHING:
        case CURLE_RECV_ERROR:
        case CURLE_SEND_ERROR:
        case CURLE_PARTIAL_FILE:
                *ret_message = *errbuf ? errbuf : "connection closed before the response was complete";
                return -ECONNRESET;
        case CURLE_UNSUPPORTED_PROTOCOL:
                *ret_message = "unsupported protocol (only https://, and http:// to loopback)";
                return -EPROTONOSUPPORT;
        default:
                *ret_message = *errbuf ? errbuf : curl_easy_strerror(c);
                return -EIO;
        }
}

/* ------------------------------------------------------------ calls ---- */

/* What curl holds while a transfer lasts is not wiped by its free(): a watch, or a
 * kept-alive connection, would keep the request's token headers and the last body bytes
 * (Secret data) in live memory. Once the answer arrives the request is sent for good (no
 * redirects are followed, and curl retries a request only before any answer): its headers
 * are wiped then; and each piece of the body once taken. */
static void wipe_request_headers(HttpCall *c) {
        if (c->headers_wiped)
                return;
        c->headers_wiped = true;
        for (struct curl_slist *h = c->headers; h; h = h->next)
                explicit_bzero(h->data, strlen(h->data));
}

static void call_free(HttpCall *c) {
        HttpPool *p = c->pool;
        LIST_REMOVE(p->calls, c);
        if (c->easy) {
                if (c->started)
                        curl_multi_remove_handle(p->multi, c->easy);
                curl_easy_cleanup(c->easy);
        }
        wipe_request_headers(c); /* if no answer came */
        curl_slist_free_all(c->headers);
        secbuf_free(c->request_body);
        secbuf_free(c->response_body);
        erase_and_free(c->aws_key_id);
        erase_and_free(c->aws_secret_key);
        free(c);
}

static void queue_remove(HttpContext *ctx, HttpCall *c) {
        for (HttpCall **q = &ctx->queue_head; *q; q = &(*q)->queue_next)
                if (*q == c) {
                        *q = c->queue_next;
                        if (ctx->queue_tail == &c->queue_next)
                                ctx->queue_tail = q;
                        return;
                }
}

static void call_finish(HttpCall *c, const HttpResponse *r) {
        HttpContext *ctx = c->pool->ctx;
        http_done_cb cb = c->cb;
        void *ud = c->userdata;

        if (ctx->observer && c->pool->opts.store_name && c->started && r->error != -ECANCELED) {
                uint64_t now = 0;
                (void) sd_event_now(ctx->event, CLOCK_MONOTONIC, &now);
                ctx->observer(c->pool->opts.store_name, c->pool->opts.store_type, r->status,
                              now > c->started_usec ? now - c->started_usec : 0, ctx->observer_userdata);
        }

        /* Give the place to the next request before the callback runs, so that what the
         * callback does (writing and fsyncing files) does not hold a place. */
        if (c->started) {
                curl_multi_remove_handle(c->pool->multi, c->easy);
                c->started = false;
                if (!c->streaming) {
                        place(c, -1);
                        pump(ctx);
                }
        }
        c->cb = NULL;
        if (cb)
                cb(r, ud);
        call_free(c);
}

/* The request's header as sent (tokens in it): wiped once it is on its way. */
static int on_debug(CURL *e, curl_infotype type, char *data, size_t size, void *userdata) {
        if (type == CURLINFO_HEADER_OUT)
                explicit_bzero(data, size);
        return 0;
}

static size_t on_write(char *ptr, size_t size, size_t n, void *userdata) {
        HttpCall *c = userdata;
        size_t len = size * n;
        size_t max = c->pool->opts.body_max;
        size_t ret = len;

        wipe_request_headers(c);
        if (c->on_data) {
                long status = 0;
                curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
                if (c->on_data(status, ptr, len, c->userdata) < 0)
                        ret = 0;
        } else if (c->response_body->len + len > max) {
                c->too_big = true;
                ret = 0; /* makes curl fail with CURLE_WRITE_ERROR */
        } else if (secbuf_append(c->response_body, ptr, len) < 0)
                ret = 0;
        explicit_bzero(ptr, len);
        return ret;
}

/* A decrypted record stays in OpenSSL's read buffer until the next one overwrites it, also
 * on a kept-alive connection that sits idle until the next refresh: wiped as soon as curl
 * has it. */
static CURLcode on_ssl_ctx(CURL *e, void *ssl_ctx, void *userdata) {
        SSL_CTX_set_options(ssl_ctx, SSL_OP_CLEANSE_PLAINTEXT);
        return CURLE_OK;
}

static void start(HttpCall *c) {
        HttpContext *ctx = c->pool->ctx;
        (void) sd_event_now(ctx->event, CLOCK_MONOTONIC, &c->started_usec);
        CURLMcode mc = curl_multi_add_handle(c->pool->multi, c->easy);
        if (mc != CURLM_OK) {
                HttpResponse r = { .error = -EIO, .message = curl_multi_strerror(mc) };
                c->started = false;
                http_done_cb cb = c->cb;
                c->cb = NULL;
                if (cb)
                        cb(&r, c->userdata);
                call_free(c);
                return;
        }
        if (!c->streaming)
                place(c, +1);
        c->started = true;
}

/* Starts waiting calls in order while there are places, and beyond the limit the first
 * call of each pool that has none in flight: a store whose requests all hang (a server
 * that stopped answering) holds the shared places until they time out, and the other
 * stores must not wait for that. */
static void pump(HttpContext *ctx) {
        for (;;) {
                HttpCall **q = &ctx->queue_head;
                while (*q && ctx->in_flight >= ctx->max_in_flight && (*q)->pool->in_flight > 0)
                        q = &(*q)->queue_next;
                HttpCall *c = *q;
                if (!c)
                        return;
                *q = c->queue_next;
                if (ctx->queue_tail == &c->queue_next)
                        ctx->queue_tail = q;
                c->queue_next = NULL;
                start(c); /* from the head again: a failed start's callback may queue more */
        }
}

/* Retry-After: delay-seconds or an HTTP date; capped at an hour. */
static uint64_t retry_after(const char *v) {
        char *end;
        errno = 0;
        unsigned long long n = strtoull(v, &end, 10);
        if (end != v && *end == 0 && errno == 0)
                return MIN(n, 3600ULL) * USEC_PER_SEC;
        time_t t = curl_getdate(v, NULL), now = time(NULL);
        return t > now ? (uint64_t) MIN(t - now, 3600) * USEC_PER_SEC : 0;
}

static void check_finished(HttpPool *p) {
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(p->multi, &left))) {
                if (msg->msg != CURLMSG_DONE)
                        continue;
                HttpCall *c = NULL;
                curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &c);
                if (!c)
                        continue;
                HttpResponse r = { 0 };
                r.error = curl_code_to_errno(msg->data.result, c->too_big, c->errbuf, &r.message);
                if (r.error == 0) {
                        struct curl_header *h = NULL;
                        curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &r.status);
                        r.body = c->response_body;
                        if (curl_easy_header(c->easy, "Date", 0, CURLH_HEADER, -1, &h) == CURLHE_OK && h->value) {
                                time_t t = curl_getdate(h->value, NULL);
                                r.date = t > 0 ? (int64_t) t : 0;
                        }
                        if (curl_easy_header(c->easy, "Retry-After", 0, CURLH_HEADER, -1, &h) == CURLHE_OK && h->value)
                                r.retry_after_usec = retry_after(h->value);
                        /* Last: the value stays valid while the callback runs. */
                        if (curl_easy_header(c->easy, "WWW-Authenticate", 0, CURLH_HEADER, -1, &h) == CURLHE_OK)
                                r.www_authenticate = h->value;
                }
                call_finish(c, &r);
        }
}

/* ------------------------------------------------ curl <-> sd-event glue ---- */

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        HttpPool *p = userdata;
        int action = 0, running;
        if (revents & EPOLLIN)
                action |= CURL_CSELECT_IN;
        if (revents & EPOLLOUT)
                action |= CURL_CSELECT_OUT;
        if (revents & (EPOLLERR | EPOLLHUP))
                action |= CURL_CSELECT_ERR;
        curl_multi_socket_action(p->multi, fd, action, &running);
        check_finished(p);
        return 0;
}

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp) {
        HttpPool *p = userp;
        sd_event_source *s = socketp;

        if (what == CURL_POLL_REMOVE) {
                if (s) {
                        sd_event_source_disable_unref(s);
                        curl_multi_assign(p->multi, fd, NULL);
                }
                return 0;
        }
        uint32_t events = what == CURL_POLL_IN ? EPOLLIN : what == CURL_POLL_OUT ? EPOLLOUT : EPOLLIN | EPOLLOUT;
        if (s) {
                if (sd_event_source_set_io_events(s, events) < 0 ||
                    sd_event_source_set_enabled(s, SD_EVENT_ON) < 0)
                        return -1;
                return 0;
        }
        if (sd_event_add_io(p->ctx->event, &s, fd, events, on_io, p) < 0)
                return -1;
        curl_multi_assign(p->multi, fd, s);
        return 0;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        HttpPool *p = userdata;
        int running;
        curl_multi_socket_action(p->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        check_finished(p);
        return 0;
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp) {
        HttpPool *p = userp;
        if (timeout_ms < 0)
                return p->timer ? (sd_event_source_set_enabled(p->timer, SD_EVENT_OFF) < 0 ? -1 : 0) : 0;
        uint64_t usec = (uint64_t) timeout_ms * 1000ULL + 1;
        /* Accuracy 1 us: sd-event reads 0 as "the default", which is 250 ms of slack, and curl's
         * timeouts (often "now") would wait that long. */
        if (!p->timer)
                return sd_event_add_time_relative(p->ctx->event, &p->timer, CLOCK_MONOTONIC, usec, 1, on_timer, p) < 0
                               ? -1
                               : 0;
        if (sd_event_source_set_time_relative(p->timer, usec) < 0 ||
            sd_event_source_set_enabled(p->timer, SD_EVENT_ONESHOT) < 0)
                return -1;
        return 0;
}

/* ------------------------------------------------------------- public ---- */

int http_context_new(sd_event *e, unsigned max_in_flight, HttpContext **ret) {
        HttpContext *ctx = calloc(1, sizeof(HttpContext));
        if (!ctx)
                return -ENOMEM;
        ctx->event = sd_event_ref(e);
        ctx->max_in_flight = MAX(1U, max_in_flight);
        ctx->queue_tail = &ctx->queue_head;
        *ret = ctx;
        return 0;
}

HttpContext *http_context_free(HttpContext *ctx) {
        if (!ctx)
                return NULL;
        sd_event_unref(ctx->event);
        free(ctx);
        return NULL;
}

void http_context_set_observer(HttpContext *ctx, http_request_observer fn, void *userdata) {
        ctx->observer = fn;
        ctx->observer_userdata = userdata;
}

void http_context_set_limit(HttpContext *ctx, unsigned max_in_flight) {
        ctx->max_in_flight = MAX(1U, max_in_flight);
        pump(ctx);
}

int http_pool_new(HttpContext *ctx, const HttpPoolOptions *opts, HttpPool **ret) {
        /* Not at start: curl (and OpenSSL) cost megabytes that a daemon with only local
         * stores does not need. */
        static bool initialized;
        if (!initialized) {
                /* What libcurl frees (its receive buffer, the request it built with the
                 * headers) may hold a secret or a token: wiped first. */
                if (curl_global_init_mem(CURL_GLOBAL_DEFAULT, malloc, secbuf_wiping_free, secbuf_wiping_realloc, strdup,
                                         calloc) != CURLE_OK)
                        return -EIO;
                initialized = true;
        }
        HttpPool *p = calloc(1, sizeof(HttpPool));
        if (!p)
                return -ENOMEM;
        p->ctx = ctx;
        p->opts = *opts;
        if (!p->opts.connect_timeout_usec)
                p->opts.connect_timeout_usec = DEFAULT_CONNECT_TIMEOUT_USEC;
        if (!p->opts.timeout_usec)
                p->opts.timeout_usec = DEFAULT_TIMEOUT_USEC;
        if (!p->opts.body_max)
                p->opts.body_max = HTTP_BODY_MAX;
        if ((opts->ca_file && !(p->ca_file = strdup(opts->ca_file))) ||
            (opts->ca_path && !(p->ca_path = strdup(opts->ca_path))) ||
            (opts->cert_file && !(p->cert_file = strdup(opts->cert_file))) ||
            (opts->key_file && !(p->key_file = strdup(opts->key_file))) ||
            (opts->ca_pem && !(p->ca_pem = strdup(opts->ca_pem))) ||
            (opts->cert_pem && !(p->cert_pem = strdup(opts->cert_pem))) ||
            (opts->key_pem && !(p->key_pem = secbuf_dup(opts->key_pem))))
                goto oom;
        p->multi = curl_multi_init();
        if (!p->multi)
                goto oom;
        curl_multi_setopt(p->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
        curl_multi_setopt(p->multi, CURLMOPT_SOCKETDATA, p);
        curl_multi_setopt(p->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
        curl_multi_setopt(p->multi, CURLMOPT_TIMERDATA, p);
        /* Keep connections to reuse: as many as may be in flight at once. */
        curl_multi_setopt(p->multi, CURLMOPT_MAXCONNECTS, (long) MAX(4U, ctx->max_in_flight));
        *ret = p;
        return 0;
oom:
        http_pool_free(p);
        return -ENOMEM;
}

HttpPool *http_pool_free(HttpPool *p) {
        if (!p)
                return NULL;
        HttpResponse r = { .error = -ECANCELED, .message = "cancelled" };
        while (p->calls) {
                HttpCall *c = p->calls;
                if (!c->started)
                        queue_remove(p->ctx, c);
                call_finish(c, &r);
        }
        sd_event_source_disable_unref(p->timer);
        p->timer = NULL;
        if (p->multi)
                curl_multi_cleanup(p->multi);
        free(p->ca_file);
        free(p->ca_path);
        free(p->cert_file);
        free(p->key_file);
        free(p->ca_pem);
        free(p->cert_pem);
        secbuf_free(p->key_pem);
        free(p);
        return NULL;
}

int http_request(HttpPool *p, const HttpRequest *req, http_done_cb cb, void *userdata, HttpCall **ret) {
        const char *method = req->method ? req->method : "GET";
        /* curl sends a header as it is given: a line break in a value (a token from a file or
         * from a server) would start a header of the value's choosing. */
        for (char *const *h = req->headers; h && *h; h++)
                if (text_has_control(*h))
                        return -EINVAL;
        HttpCall *c = calloc(1, sizeof(HttpCall));
        if (!c)
                return -ENOMEM;
        c->pool = p;
        c->cb = cb;
        c->userdata = userdata;
        c->on_data = req->on_data;
        c->streaming = !!req->on_data;
        LIST_PREPEND(p->calls, c);

        c->response_body = secbuf_new(1024);
        c->easy = curl_easy_init();
        if (!c->response_body || !c->easy)
                goto oom;
        for (char *const *h = req->headers; h && *h; h++) {
                struct curl_slist *n = curl_slist_append(c->headers, *h);
                if (!n)
                        goto oom;
                c->headers = n;
        }

        CURL *e = c->easy;
        curl_easy_setopt(e, CURLOPT_URL, req->url);
        curl_easy_setopt(e, CURLOPT_PRIVATE, c);
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->errbuf);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https,http");
        curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(e, CURLOPT_SSLVERSION, (long) CURL_SSLVERSION_TLSv1_2);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
        curl_easy_setopt(e, CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx);
        if (p->ca_file)
                curl_easy_setopt(e, CURLOPT_CAINFO, p->ca_file);
        if (p->ca_path)
                curl_easy_setopt(e, CURLOPT_CAPATH, p->ca_path);
        if (p->cert_file)
                curl_easy_setopt(e, CURLOPT_SSLCERT, p->cert_file);
        if (p->key_file)
                curl_easy_setopt(e, CURLOPT_SSLKEY, p->key_file);
        /* NOCOPY: curl reads the pool's copies, which outlive every call of the pool (and the
         * key's is wiped memory). */
        if (p->ca_pem) {
                struct curl_blob blob = { p->ca_pem, strlen(p->ca_pem), CURL_BLOB_NOCOPY };
                curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &blob);
        }
        if (p->cert_pem) {
                struct curl_blob blob = { p->cert_pem, strlen(p->cert_pem), CURL_BLOB_NOCOPY };
                curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &blob);
                curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
        }
        if (p->key_pem) {
                struct curl_blob blob = { p->key_pem->data, p->key_pem->len, CURL_BLOB_NOCOPY };
                curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &blob);
                curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
        }
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long) (p->opts.connect_timeout_usec / 1000));
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS,
                         (long) ((req->on_data ? req->timeout_usec : p->opts.timeout_usec) / 1000));
        curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
        curl_easy_setopt(e, CURLOPT_USERAGENT, "secretsyncd/" PACKAGE_VERSION);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
        /* Wait for a connection to be reusable (HTTP/2 multiplexing) rather than open more. */
        curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
        if (c->headers)
                curl_easy_setopt(e, CURLOPT_HTTPHEADER, c->headers);
        /* A watch keeps the request as curl formatted and sent it (tokens in it) in its send
         * buffer as long as it runs; the only way to reach it is curl's debug hook. Other
         * calls end soon, and curl's free() wipes. */
        if (req->on_data) {
                curl_easy_setopt(e, CURLOPT_DEBUGFUNCTION, on_debug);
                curl_easy_setopt(e, CURLOPT_VERBOSE, 1L);
        }
        if (req->aws_sigv4) {
                /* curl copies these strings and frees them unwiped when the handle goes
                 * (curl_easy_cleanup in call_free), so its copies live only as long as the call. */
                if (!req->aws_key_id || !req->aws_secret_key ||
                    !(c->aws_key_id = strdup(secbuf_str(req->aws_key_id))) ||
                    !(c->aws_secret_key = strdup(secbuf_str(req->aws_secret_key))))
                        goto oom;
                curl_easy_setopt(e, CURLOPT_AWS_SIGV4, req->aws_sigv4);
                curl_easy_setopt(e, CURLOPT_USERNAME, c->aws_key_id);
                curl_easy_setopt(e, CURLOPT_PASSWORD, c->aws_secret_key);
        }
        if (req->body || !streq(method, "GET")) {
                c->request_body = req->body ? secbuf_dup(req->body) : secbuf_new(0);
                if (!c->request_body)
                        goto oom;
                curl_easy_setopt(e, CURLOPT_POSTFIELDS, (const char *) c->request_body->data);
                curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long) c->request_body->len);
                if (!streq(method, "POST"))
                        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
        }

        HttpContext *ctx = p->ctx;
        if (ret)
                *ret = c;
        if (c->streaming) {
                start(c);
                return 0;
        }
        c->queue_next = NULL;
        *ctx->queue_tail = c;
        ctx->queue_tail = &c->queue_next;
        pump(ctx);
        return 0;
oom:
        c->cb = NULL;
        call_free(c);
        return -ENOMEM;
}

void http_call_cancel(HttpCall *c) {
        if (!c)
                return;
        HttpContext *ctx = c->pool->ctx;
        bool was_counted = c->started && !c->streaming;
        if (!c->started)
                queue_remove(ctx, c);
        if (was_counted)
                place(c, -1);
        c->cb = NULL;
        call_free(c);
        if (was_counted)
                pump(ctx);
}
