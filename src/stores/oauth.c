/* SPDX-License-Identifier: MIT */
#include "stores/oauth.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/config.h"
#include "util/cleanup.h"
#include "util/json.h"

#define REFRESH_AHEAD_SEC 300

void oauth_token_clear(OAuthToken *t) {
        t->access_token = secbuf_free(t->access_token);
        t->expires_at = t->refresh_at = 0;
}

bool oauth_token_usable(const OAuthToken *t) {
        return t->access_token && time(NULL) < t->refresh_at;
}

/* A JSON number, or a string of digits (IMDS answers "expires_in": "3599"). */
static int64_t json_seconds(json_object *x) {
        if (json_object_is_type(x, json_type_int))
                return json_object_get_int64(x);
        if (json_object_is_type(x, json_type_string)) {
                const char *s = json_object_get_string(x);
                char *end;
                long long v = strtoll(s, &end, 10);
                return end != s && *end == 0 ? v : -1;
        }
        return -1;
}

/* "2014-10-02T15:01:23Z" or with fractional seconds. */
static int64_t rfc3339(const char *s) {
        struct tm tm = { 0 };
        const char *end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
        if (!end)
                return -1;
        if (*end == '.')
                end += 1 + strspn(end + 1, "0123456789");
        if (!streq(end, "Z"))
                return -1;
        return (int64_t) timegm(&tm);
}

int oauth_token_parse(const HttpResponse *resp, OAuthToken *ret, const char **ret_why) {
        json_object *o = NULL, *tok, *x;
        int64_t now = time(NULL), exp = -1;
        int r = -EBADMSG;

        if (json_parse_strict(resp->body->data, resp->body->len, &o) < 0 || !json_object_is_type(o, json_type_object)) {
                *ret_why = "the answer is not a JSON object";
                goto out;
        }
        if ((!json_object_object_get_ex(o, "access_token", &tok) && !json_object_object_get_ex(o, "accessToken", &tok)) ||
            !json_object_is_type(tok, json_type_string) || json_object_get_string_len(tok) == 0) {
                *ret_why = "the answer has no access_token";
                goto out;
        }
        if (json_object_object_get_ex(o, "expires_on", &x) && json_seconds(x) > 0)
                exp = json_seconds(x);
        else if (json_object_object_get_ex(o, "expires_in", &x) && json_seconds(x) > 0)
                exp = now + json_seconds(x);
        else if (json_object_object_get_ex(o, "expireTime", &x) && json_object_is_type(x, json_type_string))
                exp = rfc3339(json_object_get_string(x));
        if (exp <= now) {
                *ret_why = "the answer gives the token no lifetime in the future (expires_in, expires_on, expireTime)";
                goto out;
        }
        oauth_token_clear(ret);
        ret->access_token = secbuf_new_from(json_object_get_string(tok), (size_t) json_object_get_string_len(tok));
        if (!ret->access_token) {
                r = -ENOMEM;
                goto out;
        }
        ret->expires_at = exp;
        ret->refresh_at = exp - MIN((int64_t) REFRESH_AHEAD_SEC, (exp - now) / 2);
        r = 0;
out:
        json_put_wiped(o);
        return r;
}

int oauth_form_append(SecBuf *b, const char *name, const void *value, size_t len) {
        static const char hex[] = "0123456789ABCDEF";
        const unsigned char *v = value;
        if ((b->len && secbuf_append_char(b, '&') < 0) || secbuf_append_str(b, name) < 0 || secbuf_append_char(b, '=') < 0)
                return -ENOMEM;
        for (size_t i = 0; i < len; i++) {
                unsigned char ch = v[i];
                if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || strchr("-._~", ch)) {
                        if (secbuf_append_char(b, (char) ch) < 0)
                                return -ENOMEM;
                } else {
                        char e[3] = { '%', hex[ch >> 4], hex[ch & 15] };
                        if (secbuf_append(b, e, 3) < 0)
                                return -ENOMEM;
                }
        }
        return 0;
}

int oauth_form_append_str(SecBuf *b, const char *name, const char *value) {
        return oauth_form_append(b, name, value, strlen(value));
}

static const char *string_of(json_object *o, const char *key) {
        json_object *x;
        if (!json_object_object_get_ex(o, key, &x))
                return NULL;
        return json_object_is_type(x, json_type_string) || json_object_is_type(x, json_type_int) ? json_object_get_string(x)
                                                                                                 : NULL;
}

void oauth_error_text(const HttpResponse *r, char *buf, size_t size, char *code, size_t code_size) {
        json_object *o = NULL, *e;
        const char *c = NULL, *m = NULL;
        buf[0] = 0;
        if (code)
                code[0] = 0;
        if (!r->body || json_parse_strict(r->body->data, r->body->len, &o) < 0 || !json_object_is_type(o, json_type_object))
                goto out;
        if (json_object_object_get_ex(o, "error", &e) && json_object_is_type(e, json_type_object)) {
                json_object *inner;
                c = string_of(e, "status") ? string_of(e, "status") : string_of(e, "code");
                m = string_of(e, "message");
                /* Key Vault puts the precise reason (SecretDisabled, ...) in innererror. */
                if (json_object_object_get_ex(e, "innererror", &inner) && string_of(inner, "code"))
                        c = string_of(inner, "code");
        } else {
                c = string_of(o, "error");
                m = string_of(o, "error_description");
        }
        if (c || m)
                snprintf(buf, size, ": %s%s%.*s", c ? c : "", c && m ? ": " : "", OAUTH_ERROR_SHOWN_MAX, m ? m : "");
        if (code && c)
                snprintf(code, code_size, "%s", c);
        for (char *p = buf; *p; p++)
                if (*p == '\n' || *p == '\r' || *p == '\t')
                        *p = ' ';
out:
        json_put_wiped(o);
}

int oauth_read_credential(const char *path, const char *what, SecBuf **ret, char *msg, size_t msg_size) {
        _cleanup_free_ char *m = NULL;
        int r = config_check_file_trust(path, &m);
        if (r < 0 && m) {
                snprintf(msg, msg_size, "%s: %s", what, m);
                return r;
        }
        r = secbuf_read_file(path, OAUTH_CREDENTIAL_FILE_MAX, true, ret);
        if (r < 0) {
                snprintf(msg, msg_size, "cannot read the %s %s: %s", what, path, strerror(-r));
                return r;
        }
        if ((*ret)->len == 0) {
                snprintf(msg, msg_size, "the %s %s is empty", what, path);
                *ret = secbuf_free(*ret);
                return -EINVAL;
        }
        return 0;
}
