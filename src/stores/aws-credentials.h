/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "kube/kube-token.h"
#include "util/http.h"
#include "util/secbuf.h"

/* AWS credentials: where they come from (the SDKs' sources and their default order), how
 * they are cached (until 15 minutes before they expire) and refreshed. Nothing here is
 * ever written anywhere or logged. */

typedef enum AwsAuthMethod {
        AWS_AUTH_DEFAULT,
        AWS_AUTH_STATIC,
        AWS_AUTH_SHARED_FILE,
        AWS_AUTH_WEB_IDENTITY,
        AWS_AUTH_IMDS,
        AWS_AUTH_CONTAINER,
        AWS_AUTH_ENVIRONMENT, /* only as a step of "default" */
        _AWS_AUTH_MAX,
} AwsAuthMethod;

extern const char *const aws_auth_names[_AWS_AUTH_MAX];

/* The store's auth settings (owned by the store's configuration). */
typedef struct AwsAuthConfig {
        AwsAuthMethod method;
        char *access_key_id;
        char *access_key_id_file;
        char *secret_access_key_file;
        char *session_token_file;
        char *credentials_file; /* NULL: AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/credentials */
        char *profile;          /* NULL: AWS_PROFILE, else "default" */
        char *role_arn;         /* web-identity; NULL: AWS_ROLE_ARN */
        char *token_file;       /* web-identity; NULL: AWS_WEB_IDENTITY_TOKEN_FILE */
        ServiceAccountRef *service_account; /* web-identity: instead of token_file, TokenRequest */
        char *assume_role_arn;  /* NULL: no assume_role */
        char *external_id;
        char *session_name;
} AwsAuthConfig;

typedef struct AwsCredentials {
        SecBuf *key_id;
        SecBuf *secret_key;
        SecBuf *session_token; /* NULL: long-term keys */
        int64_t expiration;    /* seconds since the epoch; 0: does not expire */
} AwsCredentials;

void aws_credentials_clear(AwsCredentials *c);

typedef struct AwsCredProvider AwsCredProvider;

/* error < 0: message says why (no secret in it). fresh: these credentials were just
 * obtained (a login worth reporting), described by `source`. */
typedef void (*aws_credentials_cb)(int error, const char *message, const AwsCredentials *creds, bool fresh,
                                   const char *source, void *userdata);

/* sa: the web identity token's source when cfg->service_account is set (borrowed). */
int aws_credentials_new(const AwsAuthConfig *cfg, HttpPool *pool, KubeTokenSource *sa, const char *region,
                        const char *sts_url, AwsCredProvider **ret);
AwsCredProvider *aws_credentials_free(AwsCredProvider *p); /* waiters are dropped, not called */

/* Credentials now (cached, re-read or obtained). cb may run before this returns (cached or
 * file-based credentials) or later from the event loop. */
void aws_credentials_get(AwsCredProvider *p, aws_credentials_cb cb, void *userdata);
/* Forget the cached credentials (AWS refused them): the next get obtains new ones. */
void aws_credentials_invalidate(AwsCredProvider *p);
