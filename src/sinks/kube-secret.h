/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>

#include "core/config.h"
#include "util/secbuf.h"
#include "util/secret-data.h"

/* The Secret object a kubernetes target asks for: checks, the data hash and the
 * server-side apply body. Pure functions: no I/O. */

/* Kubernetes' limit on a Secret's data (the bytes of the values). */
#define KUBE_SECRET_DATA_MAX (1024U * 1024U)
#define KUBE_MANAGED_BY_LABEL "app.kubernetes.io/managed-by"
#define KUBE_MANAGED_BY_VALUE "secretsyncd"
#define KUBE_SECRET_ANNOTATION "secretsyncd.io/secret"
#define KUBE_DATA_HASH_ANNOTATION "secretsyncd.io/data-hash"
#define KUBE_DATA_HASH_LEN 64

/* A key of a Secret's data: [-._a-zA-Z0-9]+, at most 253, not "." or "..". */
bool kube_secret_key_valid(const char *key);

/* The data the Secret holds when the target has templates: each template rendered from d
 * (with d's keys); with merge_policy "merge" d's own keys too, a template key winning over a
 * data key of the same name (as ESO's mergePolicy: Merge). The message names the template's
 * key. */
int kube_secret_render(const KubeTarget *t, const SecretData *d, SecretData **ret, char **ret_error);

/* What the API server would refuse, said first and plainly: key names, the 1 MiB limit, the
 * keys a type requires (kubernetes.io/tls needs tls.crt and tls.key, ...). */
int kube_secret_check(const KubeTarget *t, const SecretData *d, char **ret_error);

/* The sha256 (lower-case hex) of the data as the Secret holds it: the compact JSON object
 * of key -> base64 value, keys sorted, as `kubectl get secret NAME -o json | jq -cjS .data`
 * prints it. */
int kube_secret_data_hash(const SecretData *d, char ret[KUBE_DATA_HASH_LEN + 1]);

/* The server-side apply body (JSON): name, namespace, type, our label and annotations (the
 * configured ones too), and data. With merge (creation_policy = "merge") only the data and
 * our annotations: the Secret is someone else's. */
int kube_secret_apply_body(const KubeTarget *t, const char *secret_name, const SecretData *d, const char *data_hash,
                           SecBuf **ret);
