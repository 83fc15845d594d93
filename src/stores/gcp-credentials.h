/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "stores/oauth.h"
#include "util/http.h"

/* Google access tokens, as Google's auth libraries get them: a service account key (an RS256
 * JWT exchanged at its token_uri), workload identity federation (an external_account file:
 * a subject token from a file or URL, exchanged at STS, then optionally for a service
 * account's token at IAM Credentials), or the GCE/GKE metadata server. One token is cached
 * until shortly before it expires; credential files are read at each acquisition. */

typedef enum GcpAuthMethod {
        GCP_AUTH_DEFAULT,
        GCP_AUTH_SERVICE_ACCOUNT_KEY,
        GCP_AUTH_METADATA,
        GCP_AUTH_EXTERNAL_ACCOUNT,
        _GCP_AUTH_MAX,
} GcpAuthMethod;

extern const char *const gcp_auth_names[_GCP_AUTH_MAX];

typedef struct GcpAuthConfig {
        GcpAuthMethod method;
        char *key_file;          /* service-account-key */
        char *credentials_file;  /* external-account */
        char *metadata_endpoint; /* metadata; NULL: GCE_METADATA_HOST, else the default */
} GcpAuthConfig;

#define GCP_METADATA_DEFAULT "http://metadata.google.internal"

bool gcp_metadata_url_valid(const char *u);

typedef struct GcpCredProvider GcpCredProvider;

/* error < 0: message says why (no secret in it). On success, token is valid for this call
 * only; fresh: it was just obtained from `source`. */
typedef void (*gcp_token_cb)(int error, const char *message, const OAuthToken *token, bool fresh, const char *source,
                             void *userdata);

int gcp_credentials_new(const GcpAuthConfig *cfg, HttpPool *pool, GcpCredProvider **ret);
GcpCredProvider *gcp_credentials_free(GcpCredProvider *p); /* waiters are dropped, not called */
/* A token now (cached) or later from the event loop. */
void gcp_credentials_get(GcpCredProvider *p, gcp_token_cb cb, void *userdata);
/* Google refused the token with this serial: unless a newer one is there already, the next
 * get obtains a new one. */
void gcp_credentials_invalidate(GcpCredProvider *p, uint64_t serial);
