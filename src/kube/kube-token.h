/* SPDX-License-Identifier: MIT */
#pragma once

#include <json-c/json.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "util/http.h"
#include "util/secbuf.h"

/* Service-account tokens the daemon requests itself, with the TokenRequest API
 * (POST /api/v1/namespaces/NS/serviceaccounts/NAME/token), for stores that log in with a
 * Kubernetes identity (AWS web identity, Vault kubernetes and jwt) where no pod has one
 * mounted. A token is cached (wiped when dropped) and requested anew at 80% of its lifetime,
 * as the External Secrets Operator does for serviceAccountRef. */

/* What a store's `service_account` group names. */
typedef struct ServiceAccountRef {
        char *namespace;
        char *name;
        char **audiences; /* NULL or empty: the API server's own */
} ServiceAccountRef;

/* What the daemon asks for; the API server may grant another lifetime, which is used. */
#define KUBE_TOKEN_EXPIRATION_SEC 3600
#define KUBE_TOKEN_SIZE_MAX (64U * 1024U)

/* The API connection the token sources share: made from the `kubernetes` group's kubeconfig
 * (or in-cluster, or $KUBECONFIG) at the first request, and again at a later request while
 * that fails. Reference counted: each source holds one. */
typedef struct KubeTokens KubeTokens;

int kube_tokens_new(sd_event *e, HttpContext *http, const char *kubeconfig, uint64_t timeout_usec, KubeTokens **ret);
KubeTokens *kube_tokens_ref(KubeTokens *t);
/* Told when a renewal made in the background (nobody waiting) fails while the token in hand
 * is still good for usable_sec seconds: nothing has failed yet, but will if it goes on. */
typedef void (*kube_token_warn_cb)(const char *source, int error, const char *message, uint64_t usable_sec,
                                   void *userdata);
void kube_tokens_set_warning(KubeTokens *t, kube_token_warn_cb cb, void *userdata);
KubeTokens *kube_tokens_unref(KubeTokens *t);

/* One service account's token. */
typedef struct KubeTokenSource KubeTokenSource;
typedef struct KubeTokenWait KubeTokenWait;

int kube_token_source_new(KubeTokens *t, const ServiceAccountRef *sa, KubeTokenSource **ret);
KubeTokenSource *kube_token_source_free(KubeTokenSource *s); /* waiters are dropped, not called */

/* error < 0: message says why (the API's own words, and for a 403 the RBAC permission the
 * daemon lacks); never the token. */
typedef void (*kube_token_cb)(int error, const char *message, const SecBuf *token, void *userdata);

/* The token: cb runs before this returns when a usable one is cached (*ret NULL), else once
 * from the event loop (*ret lets the caller cancel until then). Callers asking while a
 * request is in flight wait for it: there is one request at a time. */
int kube_token_get(KubeTokenSource *s, kube_token_cb cb, void *userdata, KubeTokenWait **ret);
void kube_token_wait_cancel(KubeTokenWait *w);
/* The token was refused where it was presented: the next get requests another. */
void kube_token_invalidate(KubeTokenSource *s);

/* "namespace/name", for messages. */
const char *kube_token_source_name(const KubeTokenSource *s);

/* Reads a TokenRequest answer: status.token and status.expirationTimestamp (seconds since
 * the epoch). -EBADMSG if either is missing or malformed, -EFBIG for a token over
 * KUBE_TOKEN_SIZE_MAX. */
int kube_token_parse(json_object *o, SecBuf **ret_token, int64_t *ret_expiration);
