/* SPDX-License-Identifier: MIT */
/* libFuzzer: kubeconfig files (YAML), as kubectl and k3s write them or as anyone might. */
#include <stdlib.h>

#include "kube/kubeconfig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        KubeConnection *c = NULL;
        char *error = NULL;

        if (kubeconfig_parse("/etc/secretsyncd/kubeconfig", (const char *) data, size, &c, &error) >= 0) {
                /* A parsed connection is complete: a server, and a key only with its certificate. */
                if (!c->server || (!!(c->cert_file || c->cert_pem) != !!(c->key_file || c->key_pem)))
                        abort();
        } else if (!error)
                abort(); /* every refusal says why */
        kube_connection_free(c);
        free(error);
        return 0;
}
