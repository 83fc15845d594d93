/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "util/secbuf.h"

/* HTTPS for the stores: libcurl's multi interface driven by the sd-event loop, so the
 * requests of every store run concurrently without threads. This is the only module that
 * includes curl.h. TLS verification is always on, TLS 1.2 at least, no redirects, a hard
 * cap on response size. Plain http:// only to a loopback address (the caller checks). */

#define HTTP_BODY_MAX (4U * 1024U * 1024U)

/* Shared by all stores: the event loop and the limit on requests in flight across them
 * (each pool may have one in flight beyond it, so that no store waits for the timeouts of
 * another whose server hangs). */
typedef struct HttpContext HttpContext;
/* One per store: its own connection cache (keep-alive) and TLS settings. */
typedef struct HttpPool HttpPool;
/* One request in flight (or waiting for a place). */
typedef struct HttpCall HttpCall;

typedef struct HttpPoolOptions {
        const char *ca_file; /* NULL: the system's CA bundle */
        const char *ca_path;
        const char *cert_file; /* TLS client certificate (Vault cert auth) */
        const char *key_file;
        const char *ca_pem;    /* PEM text instead of ca_file (kubeconfig's *-data, ca_pem) */
        const char *cert_pem;  /* client certificate as PEM text */
        const SecBuf *key_pem; /* its key as PEM text (copied into wiped memory) */
        uint64_t connect_timeout_usec; /* 0: 10 s */
        uint64_t timeout_usec;         /* 0: 60 s, whole request */
        size_t body_max;               /* 0: HTTP_BODY_MAX */
        /* For the request observer (metrics): the store this pool serves and its type. Borrowed:
         * they must outlive the pool. NULL: the pool's requests are not observed. */
        const char *store_name;
        const char *store_type;
} HttpPoolOptions;

typedef struct HttpRequest {
        const char *method; /* "GET", "POST", "PUT"; NULL: GET */
        const char *url;
        char *const *headers; /* "Name: value", NULL-terminated; may hold tokens: never logged */
        const SecBuf *body;   /* copied; may be secret (login bodies): wiped */
        /* Streaming (a Kubernetes watch): the body goes to on_data as it arrives instead of
         * being collected (the callback then gets no body). Such a call may last for minutes:
         * it holds no place among the requests in flight, and timeout_usec (0: none) replaces
         * the pool's. on_data returns < 0 to end the call (it must not cancel it). */
        int (*on_data)(long status, const void *data, size_t len, void *userdata);
        uint64_t timeout_usec;
        /* AWS Signature Version 4, signed by libcurl: "aws:amz:<region>:<service>", with the
         * access key id and secret key (copied, wiped). A session token goes in the headers
         * as X-Amz-Security-Token (libcurl signs every header it is given). */
        const char *aws_sigv4;
        const SecBuf *aws_key_id;
        const SecBuf *aws_secret_key;
} HttpRequest;

typedef struct HttpResponse {
        int error;           /* 0, or -errno for a transport failure (then status is 0) */
        const char *message; /* on transport failure: what went wrong (no secret in it) */
        long status;         /* HTTP status */
        const SecBuf *body;  /* the body (wiped after the callback returns) */
        int64_t date;        /* the Date header, seconds since the epoch; 0: none */
        const char *www_authenticate; /* that header (Azure's bearer challenge); NULL: none */
        uint64_t retry_after_usec;    /* Retry-After in seconds, or its date; 0: none */
} HttpResponse;

typedef void (*http_done_cb)(const HttpResponse *r, void *userdata);

/* Whether url may name a store's server: https:// with a host, or plain http:// only to a
 * loopback host (127.0.0.0/8, [::1], localhost), so that a token never crosses a network in
 * clear text. The URL is parsed as libcurl will parse it; user info, a query or a fragment
 * are refused (a base URL has none, and they are the usual ways to disguise a host). */
bool http_url_allowed(const char *url);

int http_context_new(sd_event *e, unsigned max_in_flight, HttpContext **ret);
HttpContext *http_context_free(HttpContext *ctx);
void http_context_set_limit(HttpContext *ctx, unsigned max_in_flight);
/* Called once for each finished (not cancelled) request of a pool with a store_name:
 * the HTTP status (0 on a transport error) and how long it took. */
typedef void (*http_request_observer)(const char *store_name, const char *store_type, long status,
                                      uint64_t duration_usec, void *userdata);
void http_context_set_observer(HttpContext *ctx, http_request_observer fn, void *userdata);

int http_pool_new(HttpContext *ctx, const HttpPoolOptions *opts, HttpPool **ret);
/* Cancels the pool's calls (their callbacks run with -ECANCELED) and frees it. */
HttpPool *http_pool_free(HttpPool *p);

/* Starts a request (or queues it for a place); cb runs once, from the event loop. With
 * ret, the call can be cancelled (callback not run) until it completes. -EINVAL (and no
 * callback) if a header holds a control character: a line break would start another. */
int http_request(HttpPool *p, const HttpRequest *req, http_done_cb cb, void *userdata, HttpCall **ret);
void http_call_cancel(HttpCall *c);
