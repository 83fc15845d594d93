/* SPDX-License-Identifier: MIT */
/* Building and signing AWS requests, and reading AWS error replies. The signature is
 * libcurl's (CURLOPT_AWS_SIGV4): it signs the method, path, query, every header given and
 * the body, which tests/unit/test-aws.c checks against the AWS documentation's examples. */
#include "stores/aws-request.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stores/aws-formats.h"
#include "util/cleanup.h"
#include "util/json.h"

#define AWS_SKEW_MAX_SEC (5 * 60)

int aws_send(HttpPool *p, const AwsRequest *r, http_done_cb cb, void *userdata, HttpCall **ret) {
        _cleanup_free_ char *sig = NULL, *target = NULL, *ctype = NULL, *host = NULL, *date = NULL;
        _cleanup_erase_ char *token = NULL;
        char *hdr[6];
        size_t n = 0;

        if ((r->target && asprintf(&target, "X-Amz-Target: %s", r->target) < 0) ||
            (r->content_type && asprintf(&ctype, "Content-Type: %s", r->content_type) < 0) ||
            (r->host && asprintf(&host, "Host: %s", r->host) < 0) ||
            (r->amz_date && asprintf(&date, "X-Amz-Date: %s", r->amz_date) < 0) ||
            (r->creds && r->creds->session_token &&
             !(token = secbuf_header_line("X-Amz-Security-Token", "", r->creds->session_token))) ||
            (r->creds && asprintf(&sig, "aws:amz:%s:%s", r->region, r->service) < 0))
                return -ENOMEM;
        if (host)
                hdr[n++] = host;
        if (ctype)
                hdr[n++] = ctype;
        if (target)
                hdr[n++] = target;
        if (date)
                hdr[n++] = date;
        if (token)
                hdr[n++] = token;
        hdr[n] = NULL;
        HttpRequest req = {
                .method = r->body ? "POST" : "GET",
                .url = r->url,
                .headers = hdr,
                .body = r->body,
                .aws_sigv4 = sig,
                .aws_key_id = r->creds ? r->creds->key_id : NULL,
                .aws_secret_key = r->creds ? r->creds->secret_key : NULL,
        };
        return http_request(p, &req, cb, userdata, ret);
}

static void copy_clean(char *dst, size_t size, const char *src, size_t len) {
        size_t n = MIN(len, size - 1);
        for (size_t i = 0; i < n; i++)
                dst[i] = (src[i] == '\n' || src[i] == '\r' || src[i] == '\t') ? ' ' : src[i];
        dst[n] = 0;
}

void aws_error_parse(const HttpResponse *r, char code[static AWS_ERROR_CODE_MAX],
                     char message[static AWS_ERROR_MESSAGE_MAX]) {
        json_object *o = NULL, *x;
        code[0] = message[0] = 0;
        if (!r->body || r->body->len == 0)
                return;
        if (r->body->data[0] == '<') {
                _cleanup_secbuf_ SecBuf *c = NULL, *m = NULL;
                if (aws_xml_value(r->body->data, r->body->len, "Code", &c) >= 0)
                        copy_clean(code, AWS_ERROR_CODE_MAX, (const char *) c->data, c->len);
                if (aws_xml_value(r->body->data, r->body->len, "Message", &m) >= 0)
                        copy_clean(message, AWS_ERROR_MESSAGE_MAX, (const char *) m->data, m->len);
                return;
        }
        if (json_parse_strict(r->body->data, r->body->len, &o) < 0)
                return;
        if (json_object_object_get_ex(o, "__type", &x) && json_object_is_type(x, json_type_string)) {
                const char *t = json_object_get_string(x), *h = strrchr(t, '#');
                t = h ? h + 1 : t;
                copy_clean(code, AWS_ERROR_CODE_MAX, t, strlen(t));
        }
        if ((json_object_object_get_ex(o, "message", &x) || json_object_object_get_ex(o, "Message", &x)) &&
            json_object_is_type(x, json_type_string))
                copy_clean(message, AWS_ERROR_MESSAGE_MAX, json_object_get_string(x),
                           (size_t) json_object_get_string_len(x));
        json_put_wiped(o);
}

void aws_clock_skew_text(const HttpResponse *r, char *buf, size_t size) {
        buf[0] = 0;
        if (r->date <= 0)
                return;
        int64_t skew = (int64_t) time(NULL) - r->date;
        if (skew > AWS_SKEW_MAX_SEC || skew < -AWS_SKEW_MAX_SEC)
                snprintf(buf, size,
                         "; this system's clock is %lld seconds %s the server's, and AWS refuses signatures more than "
                         "5 minutes off: fix the clock (NTP)",
                         (long long) (skew > 0 ? skew : -skew), skew > 0 ? "ahead of" : "behind");
}
