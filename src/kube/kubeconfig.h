/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>

#include "util/secbuf.h"

/* Where the Kubernetes API is and how to authenticate to it: from a kubeconfig file (its
 * current context), or from the in-cluster service account. */

#define KUBECONFIG_SIZE_MAX (1024U * 1024U)
#define KUBE_SERVICE_ACCOUNT_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

typedef struct KubeConnection {
        char *source;    /* for messages: "kubeconfig /etc/rancher/k3s/k3s.yaml", "in-cluster service account" */
        char *server;    /* https://host[:port][/path], no trailing slash */
        char *ca_file;   /* at most one of ca_file and ca_pem; neither: the system's CAs */
        char *ca_pem;
        char *cert_file; /* client certificate: files, or PEM text */
        char *key_file;
        char *cert_pem;
        SecBuf *key_pem;
        SecBuf *token;    /* a bearer token given inline */
        char *token_file; /* a bearer token read at each use (it rotates) */
        char *namespace;  /* the context's or the service account's; NULL if none */
} KubeConnection;

KubeConnection *kube_connection_free(KubeConnection *c);
static inline void kube_connection_freep(KubeConnection **c) {
        kube_connection_free(*c);
}
#define _cleanup_kube_connection_ __attribute__((cleanup(kube_connection_freep)))

/* Parses a kubeconfig's text (path names it in messages, and relative file names in it are
 * relative to its directory, as kubectl reads them). Errors are "PATH:LINE: message". */
int kubeconfig_parse(const char *path, const char *text, size_t len, KubeConnection **ret, char **ret_error);

/* Reads and parses a kubeconfig file (strict modes: it holds credentials). */
int kubeconfig_load(const char *path, KubeConnection **ret, char **ret_error);

/* The in-cluster service account: KUBERNETES_SERVICE_HOST and _PORT, and dir's token (read
 * at each use), ca.crt and namespace. */
int kube_connection_in_cluster(const char *dir, KubeConnection **ret, char **ret_error);

/* The daemon's choice, per secretsyncd.conf(5): the configured kubeconfig if set; else the
 * in-cluster account when KUBERNETES_SERVICE_HOST is set; else $KUBECONFIG. */
int kube_connection_resolve(const char *kubeconfig, KubeConnection **ret, char **ret_error);
