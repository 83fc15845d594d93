/* SPDX-License-Identifier: MIT */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <systemd/sd-event.h>

#include "kube/kube-client.h"
#include "sinks/kube-secret.h"

/* What the API server has of the Secrets secretsyncd manages in one namespace (label
 * app.kubernetes.io/managed-by=secretsyncd): a paged list, then a watch from its
 * resourceVersion (bookmarks; a new list on 410 Gone or a broken stream; backoff on errors).
 * It keeps what a comparison needs of each Secret, never a value. */

/* A managed Secret as the API server last showed it. */
typedef struct KubeObserved {
        char *name;
        char *type;
        char **labels;      /* "key=value" */
        char **annotations; /* "key=value" */
        char data_hash[KUBE_DATA_HASH_LEN + 1];
} KubeObserved;

/* What a comparison needs of a Secret object as a list or a watch event shows it (what the
 * API server sends: anything, for all the parser knows). -EBADMSG without metadata.name. */
int kube_observed_new(json_object *secret, KubeObserved **ret);
KubeObserved *kube_observed_free(KubeObserved *o);

typedef struct KubeInformer KubeInformer;

typedef struct KubeInformerEvents {
        /* A list ended: kube_informer_synced() says whether it succeeded, and
         * kube_informer_error() why not. */
        void (*on_synced)(KubeInformer *i, void *userdata);
        /* The watch showed the Secret of that name changed, created or deleted. */
        void (*on_changed)(KubeInformer *i, const char *name, void *userdata);
        void *userdata;
} KubeInformerEvents;

/* watch: keep watching after the list (not for --once). */
int kube_informer_new(sd_event *e, KubeClient *client, const char *namespace, bool watch,
                      const KubeInformerEvents *ev, KubeInformer **ret);
KubeInformer *kube_informer_free(KubeInformer *i);
/* Lists (unless a list or watch is out already). */
void kube_informer_list(KubeInformer *i);
/* Cancels what is out; nothing more is sent. */
void kube_informer_stop(KubeInformer *i);

const char *kube_informer_namespace(const KubeInformer *i);
bool kube_informer_synced(const KubeInformer *i);
const char *kube_informer_error(const KubeInformer *i);
const KubeObserved *kube_informer_find(KubeInformer *i, const char *name);
/* A Secret as a write of ours answered it: known before the watch shows it. */
void kube_informer_upsert(KubeInformer *i, json_object *secret);

/* The data hash of a Secret's data as the API server holds it (base64 values as they are),
 * over only keys when given (merge: our keys in someone else's Secret). The same definition
 * as kube_secret_data_hash(): compact JSON, keys sorted. */
int kube_observed_data_hash(json_object *data, char *const *keys, char ret[KUBE_DATA_HASH_LEN + 1]);
