/* SPDX-License-Identifier: MIT */
#pragma once

#include <libconfig.h>
#include <stddef.h>
#include <systemd/sd-event.h>

#include "core/config.h"
#include "kube/kube-token.h"
#include "util/secbuf.h"

/* The provider interface. A store turns a RemoteRef into the secret's bytes, asynchronously:
 * fetch() returns at once and the callback runs later from the event loop (never from inside
 * fetch()). A store knows nothing of sinks. */

typedef struct StoreResult {
        int error;           /* 0, or -errno */
        const char *message; /* on error: what went wrong, for the operator; no secret in it */
        const SecBuf *value; /* on success: the whole secret string */
        const char *version; /* remote version id, if the store has one */
} StoreResult;

typedef void (*store_fetch_cb)(Store *s, const StoreResult *result, void *userdata);

/* What a store tells the manager besides fetch results (the manager logs them; stores do
 * not log above debug). */
typedef enum StoreEventKind {
        STORE_EVENT_AUTH_OK,
        STORE_EVENT_AUTH_FAILED,
        STORE_EVENT_WARNING,
} StoreEventKind;

typedef struct StoreEvent {
        StoreEventKind kind;
        int error;           /* -errno, for AUTH_FAILED */
        const char *message; /* for the operator; never a token or secret */
} StoreEvent;

typedef struct HttpContext HttpContext;

/* What the manager lends a store when it starts it. */
typedef struct StoreContext {
        sd_event *event;
        HttpContext *http; /* shared by all stores: bounds requests in flight across them */
        void (*on_event)(Store *s, const StoreEvent *e, void *userdata);
        void *userdata;
        /* Service-account tokens (TokenRequest) with the `kubernetes` group's credentials,
         * shared by the stores started together; NULL when out of memory. Valid during
         * start() only: a store takes a token source (a reference) from it then. */
        KubeTokens *kube_tokens;
} StoreContext;

static inline void store_emit(Store *s, const StoreContext *ctx, StoreEventKind kind, int error, const char *message) {
        if (ctx && ctx->on_event)
                ctx->on_event(s, &(StoreEvent) { .kind = kind, .error = error, .message = message }, ctx->userdata);
}

typedef struct StoreVTable {
        const char *name; /* the value of `type` */
        size_t object_size;
        /* Settings other than `type`; errors go to the parser with file and line. */
        int (*parse_config)(Store *s, ConfigParser *p, const config_setting_t *setting);
        void (*dump_config)(const Store *s, ConfigDump *d);
        /* Optional: is this remote_ref something the store can read? Checked at load time. */
        int (*check_ref)(const Store *s, const RemoteRef *ref, char **ret_error);
        int (*start)(Store *s, const StoreContext *ctx);
        int (*fetch)(Store *s, const RemoteRef *ref, store_fetch_cb cb, void *userdata);
        /* Cancel everything in flight: each pending fetch's callback runs once more, at once,
         * with error -ECANCELED. */
        void (*stop)(Store *s);
        /* Free the provider's own fields (not the object itself). */
        void (*done)(Store *s);
} StoreVTable;

struct Store {
        const StoreVTable *vtable;
        char *name;
        unsigned line;
        bool started;
};

extern const StoreVTable store_fake_vtable;
extern const StoreVTable store_vault_vtable;
extern const StoreVTable store_aws_vtable;
extern const StoreVTable store_azure_vtable;
extern const StoreVTable store_gcp_vtable;

const StoreVTable *store_vtable_find(const char *type);
const char *store_types_list(void);

/* Settings the stores share, parsed alike. ca_file (a credential file) or ca_pem (the PEM
 * text), at most one of them: */
void store_parse_ca(ConfigParser *p, const Store *s, const config_setting_t *g, char **ret_file, char **ret_pem);
void store_dump_ca(ConfigDump *d, const char *file, const char *pem);
/* timeout: the longest one request may take (default STORE_TIMEOUT_DEFAULT_USEC), at least
 * 100ms. */
#define STORE_TIMEOUT_DEFAULT_USEC (60ULL * 1000000ULL)
void store_parse_timeout(ConfigParser *p, const Store *s, const config_setting_t *g, uint64_t *ret_usec);
/* The auth group and its method, one of names[0..n) (names[0], "default", when unset):
 * *ret_group is NULL when there is no auth group. -EINVAL after an error. */
int store_parse_auth_method(ConfigParser *p, const Store *s, const config_setting_t *g, const char *const *names,
                            size_t n, const config_setting_t **ret_group, int *ret_method);

/* auth.service_account = { namespace; name; audiences; } (*ret NULL when not set); an unset
 * audiences gets default_audiences (NULL-terminated; NULL: none, the API server's own). */
void store_parse_service_account(ConfigParser *p, const Store *s, const config_setting_t *auth,
                                 const char *const *default_audiences, ServiceAccountRef **ret);
void store_dump_service_account(ConfigDump *d, const ServiceAccountRef *sa);
ServiceAccountRef *store_service_account_free(ServiceAccountRef *sa);
/* The token source for sa, from the manager's shared connection (*ret NULL without sa). */
int store_token_source(const StoreContext *ctx, const ServiceAccountRef *sa, KubeTokenSource **ret);

Store *store_new(const StoreVTable *vt, const char *name);
Store *store_free(Store *s);
int store_start(Store *s, const StoreContext *ctx);
int store_fetch(Store *s, const RemoteRef *ref, store_fetch_cb cb, void *userdata);
void store_stop(Store *s);
