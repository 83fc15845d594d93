/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <systemd/sd-event.h>

#include "core/config.h"
#include "util/http.h"
#include "util/secret-data.h"

/* Kubernetes Secret targets. The sink keeps, per target, the Secret it should be (the apply
 * body, in wiped memory) and, per namespace, what the API server has (a list, then a watch of
 * the Secrets labelled managed-by=secretsyncd). So a refresh that changes nothing sends
 * nothing, and a managed Secret someone edits or deletes is put back at once from the data
 * held here, without asking the store again. With leader election only the Lease holder
 * writes. A sink knows nothing of stores. */

typedef struct KubeSink KubeSink;

typedef enum KubeWriteOutcome {
        KUBE_WRITE_FAILED,
        KUBE_WRITE_WRITTEN,
        KUBE_WRITE_UNCHANGED,
        KUBE_WRITE_SKIPPED, /* another node holds the Lease */
} KubeWriteOutcome;

typedef struct KubeWriteResult {
        KubeWriteOutcome outcome;
        int error;           /* -errno when FAILED */
        const char *message; /* FAILED: what went wrong; SKIPPED: why; for the operator */
        bool repair;         /* a drift repair the sink did by itself */
} KubeWriteResult;

typedef struct KubeSinkEvents {
        /* The outcome of a write the sink did by itself (drift repair, or a write that waited
         * for the Lease), and each rollout restart (target "deployment/NAME"). */
        void (*on_write)(KubeSink *k, const char *secret, const char *target, const KubeWriteResult *r,
                         void *userdata);
        void (*on_restart)(KubeSink *k, const char *secret, const char *namespace, const char *workload, int error,
                           const char *message, void *userdata);
        void (*on_leader)(KubeSink *k, bool leading, const char *message, void *userdata);
        void *userdata;
} KubeSinkEvents;

typedef void (*kube_write_cb)(const KubeWriteResult *r, void *userdata);

/* once: --once (one attempt at the Lease, no watches). */
int kube_sink_new(sd_event *e, HttpContext *http, const KubeConfig *cfg, bool once, const KubeSinkEvents *ev,
                  KubeSink **ret, char **ret_error);
KubeSink *kube_sink_free(KubeSink *k);

/* Make the target's Secret hold d, or with templates what they render from d (checks first:
 * templates, keys, size, type). cb runs once, from the
 * event loop. The sink keeps t: the caller keeps it valid until the next write or forget of
 * the same secret name. */
int kube_sink_write(KubeSink *k, const char *secret, const KubeTarget *t, const SecretData *d, kube_write_cb cb,
                    void *userdata);

/* The secret left the configuration (or its target changed): stop keeping its Secret, and
 * with delete remove it if it is ours (deletion_policy = "delete", creation_policy owner). */
void kube_sink_forget(KubeSink *k, const char *secret, bool delete);

/* Finish: cancel what is in flight (write callbacks run with -ECANCELED), release the Lease,
 * then done(userdata). */
void kube_sink_stop(KubeSink *k, void (*done)(void *userdata), void *userdata);

bool kube_sink_leading(const KubeSink *k);

/* A reload kept the secret's target as it was, in a new configuration: point at it. */
void kube_sink_retarget(KubeSink *k, const char *secret, const KubeTarget *t);
