/* SPDX-License-Identifier: MIT */
#pragma once

#include <json-c/json.h>
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
/* What is read from the credential files, apart from the I/O so that tests/fuzz can feed
 * it anything. The token request body for a service account key (a JSON key as IAM issues
 * it): an RS256 assertion signed with its private_key; *ret_token_uri points into key; on
 * failure *ret_why says what the key file lacks. */
int gcp_key_assertion(json_object *key, int64_t now, SecBuf **ret_body, const char **ret_token_uri,
                      const char **ret_why);
/* The subject token out of a subject token file's or URL's content, as the external
 * account file's credential_source.format says: the text, or a field of JSON. */
int gcp_subject_token(json_object *ext, const SecBuf *raw, SecBuf **ret);

/* A token now (cached) or later from the event loop. */
void gcp_credentials_get(GcpCredProvider *p, gcp_token_cb cb, void *userdata);
/* Google refused the token with this serial: unless a newer one is there already, the next
 * get obtains a new one. */
void gcp_credentials_invalidate(GcpCredProvider *p, uint64_t serial);
