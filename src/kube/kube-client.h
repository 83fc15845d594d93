/* SPDX-License-Identifier: MIT */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <systemd/sd-event.h>

#include "kube/kubeconfig.h"
#include "util/http.h"
#include "util/secbuf.h"

/* Requests to the Kubernetes API on the shared HTTP layer: the connection's server, CA,
 * client certificate or bearer token (a token file is read at each request: it rotates). */

typedef struct KubeClient KubeClient;
typedef struct KubeCall KubeCall;

typedef struct KubeResponse {
        int error;           /* 0, or -errno: transport failure or HTTP error status (see below) */
        long status;         /* HTTP status; 0 on transport failure */
        const char *reason;  /* the API's Status.reason on errors: "NotFound", "Conflict", ... */
        const char *message; /* on error: for the operator (the API's own message); no secret */
        json_object *object; /* on success with a body: the object; wiped and freed after the callback */
} KubeResponse;

/* How statuses map to errors: 401 -EACCES, 403 -EPERM, 404 -ENOENT, 409 -EEXIST
 * (AlreadyExists) or -EBUSY (Conflict), 410 -ESTALE, 413/422 -EINVAL, 429 -EAGAIN, other
 * 4xx -EPROTO, 5xx -EIO. */
typedef void (*kube_done_cb)(const KubeResponse *r, void *userdata);

typedef struct KubeRequest {
        const char *method; /* NULL: GET */
        const char *path;   /* "/api/v1/namespaces/chimera/secrets/x", query included */
        const char *content_type;
        const SecBuf *body;
} KubeRequest;

/* A string member of an API object, or NULL. */
const char *kube_json_str(json_object *o, const char *key);

/* Retries of our own (a list, a repair): 1 s doubling to 30 s, jittered into [d/2, d]. */
#define KUBE_RETRY_MIN_USEC (1ULL * 1000000ULL)
#define KUBE_RETRY_MAX_USEC (30ULL * 1000000ULL)
uint64_t kube_retry_delay(unsigned failures);

/* Takes conn. timeout_usec bounds each request (a watch has its own). */
int kube_client_new(sd_event *e, HttpContext *http, KubeConnection *conn, uint64_t timeout_usec, KubeClient **ret);
KubeClient *kube_client_free(KubeClient *c);
const KubeConnection *kube_client_connection(const KubeClient *c);

/* cb runs once, from the event loop. With ret, the call can be cancelled until then. */
int kube_request(KubeClient *c, const KubeRequest *req, kube_done_cb cb, void *userdata, KubeCall **ret);
void kube_call_cancel(KubeCall *call);

/* A watch (path with ?watch=1...): on_event for each event ("ADDED", "MODIFIED", "DELETED",
 * "BOOKMARK", "ERROR" with a Status object); the object is wiped and freed after it returns.
 * on_end once when the stream ends: r->error 0 when the server closed it normally. */
typedef void (*kube_event_cb)(const char *type, json_object *object, void *userdata);
int kube_watch(KubeClient *c, const char *path, uint64_t timeout_usec, kube_event_cb on_event, kube_done_cb on_end,
               void *userdata, KubeCall **ret);
