/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "util/http.h"
#include "util/secbuf.h"

/* What Azure's and Google's stores share: OAuth 2.0 bearer tokens as their token endpoints,
 * instance metadata servers and IAM issue them, cached until shortly before they expire;
 * form bodies; their JSON error bodies; credential files read at each use. */

#define OAUTH_CREDENTIAL_FILE_MAX (64U * 1024U)
#define OAUTH_ERROR_SHOWN_MAX 300

typedef struct OAuthToken {
        SecBuf *access_token;
        int64_t expires_at; /* seconds since the epoch */
        int64_t refresh_at; /* replaced from then on: 5 minutes early, or at half a short lifetime */
        uint64_t serial;    /* set by the owner: which token a refused request carried */
} OAuthToken;

void oauth_token_clear(OAuthToken *t);
bool oauth_token_usable(const OAuthToken *t);

/* A token answer: "access_token" (OAuth 2.0) or "accessToken" (IAM), and its lifetime from
 * "expires_in" or "expires_on" (a number or a string of digits) or "expireTime" (RFC 3339).
 * On error *ret_why says what is missing. */
int oauth_token_parse(const HttpResponse *resp, OAuthToken *ret, const char **ret_why);

/* name=value, percent-encoded as application/x-www-form-urlencoded, '&' between pairs. */
int oauth_form_append(SecBuf *b, const char *name, const void *value, size_t len);
int oauth_form_append_str(SecBuf *b, const char *name, const char *value);

/* ": <code>: <message>" from {"error":{"code","message","status"}} (Key Vault, Google APIs)
 * or {"error","error_description"} (OAuth 2.0 token endpoints), shortened, on one line;
 * "" if the body has neither. *ret_code (may be NULL) gets the code or status string. */
void oauth_error_text(const HttpResponse *r, char *buf, size_t size, char *code, size_t code_size);

/* A credential file, trusted only with strict modes, white space around it stripped; on
 * failure msg says which file and why. */
int oauth_read_credential(const char *path, const char *what, SecBuf **ret, char *msg, size_t msg_size);
