/* SPDX-License-Identifier: MIT */
#pragma once

/* What the Azure Key Vault store's two files share: store-azure.c (settings, reads, the
 * store) and azure-credentials.c (the bearer challenge, and tokens from Entra ID or the
 * instance metadata endpoint). */

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "stores/oauth.h"
#include "stores/store.h"
#include "util/http.h"
#include "util/secbuf.h"

#define AZURE_API_VERSION "7.4"
#define IMDS_API_VERSION "2018-02-01"
#define AUTHORITY_DEFAULT "https://login.microsoftonline.com"
#define IMDS_DEFAULT "http://169.254.169.254"
#define AZURE_SECRET_MAX (25U * 1024U) /* Key Vault's limit on a secret value */
#define RETRY_MAX 4
#define RETRY_BASE_USEC (500 * USEC_PER_MSEC)
#define RETRY_CAP_USEC (30 * USEC_PER_SEC)
#define ASSERTION_LIFETIME_SEC 600

typedef enum AzureAuthMethod {
        AZURE_AUTH_DEFAULT,
        AZURE_AUTH_CLIENT_SECRET,
        AZURE_AUTH_CLIENT_CERTIFICATE,
        AZURE_AUTH_MANAGED_IDENTITY,
        AZURE_AUTH_WORKLOAD_IDENTITY,
        _AZURE_AUTH_MAX,
} AzureAuthMethod;

extern const char *const azure_auth_names[_AZURE_AUTH_MAX];

typedef struct AzureRead AzureRead;

typedef struct AzureStore {
        Store base;
        /* configuration */
        char *vault_url; /* without a trailing '/' */
        char *authority;
        char *ca_file;
        char *ca_pem;
        uint64_t timeout_usec;
        AzureAuthMethod method;
        char *tenant_id;
        char *client_id;
        char *client_id_file;
        char *client_secret_file;
        char *certificate_file;
        char *imds_endpoint;
        char *token_file;
        /* run time: what `default` resolved to, from the environment at start */
        AzureAuthMethod source;
        bool secret_from_env; /* client-secret with AZURE_CLIENT_SECRET */
        char *run_tenant, *run_client_id, *run_certificate_file, *run_token_file, *run_authority;
        /* run time */
        StoreContext ctx;
        HttpPool *pool;
        char *scope;     /* from the challenge: "<resource>/.default"; NULL: not seen yet */
        char *ch_tenant; /* the tenant the challenge names */
        OAuthToken token;
        uint64_t token_serial;
        HttpCall *token_call;
        AzureRead *probe; /* the read sent without a token to draw the challenge */
        bool auth_failed_said;
        bool stopping;
        sd_event_source *kick;
        AzureRead *reads;
} AzureStore;

struct AzureRead {
        AzureStore *a;
        char *name;
        char *version;
        store_fetch_cb cb;
        void *userdata;
        HttpCall *call;
        sd_event_source *retry_timer;
        unsigned attempts;
        bool waiting;   /* for a token */
        bool retried;   /* a 401 with a token already replaced it once */
        bool with_token;
        uint64_t token_serial; /* of the token sent */
        AzureRead *prev, *next;
};

/* store-azure.c */
void azure_strip_slash(char *s);
void azure_auth_failed(AzureStore *a, int error, const char *fmt, ...) _printf_(3, 4);
/* Sends the reads that waited for a token (or fails them when there is none). */
void azure_send_waiting(AzureStore *a);

/* azure-credentials.c */
/* What `default` resolves to, from the environment, at start. */
int azure_resolve_source(AzureStore *a);
/* Reads a 401's bearer challenge: the token's scope and the vault's tenant. */
int azure_take_challenge(AzureStore *a, const HttpResponse *resp, char *msg, size_t size);
/* Starts (or joins) the one token request; azure_send_waiting() follows it. */
void azure_token_start(AzureStore *a);
