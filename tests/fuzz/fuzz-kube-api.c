/* SPDX-License-Identifier: MIT */
/* libFuzzer: what the Kubernetes API server sends about Secrets: a watch event line
 * ({"type": ..., "object": Secret}) or a list page ({"items": [Secret...]}), each Secret as
 * the informer keeps it (name, type, labels, annotations, the hash of its data). Oracle: a
 * Secret kept has a name and a 64-digit hex data hash. */
#include <stdlib.h>
#include <string.h>

#include "sinks/kube-informer.h"
#include "util/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void observe(json_object *secret) {
        KubeObserved *o = NULL;
        if (kube_observed_new(secret, &o) < 0)
                return;
        if (!o->name || !o->type || strlen(o->data_hash) != KUBE_DATA_HASH_LEN ||
            strspn(o->data_hash, "0123456789abcdef") != KUBE_DATA_HASH_LEN)
                abort();
        kube_observed_free(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        json_object *o = NULL, *x = NULL;
        char hash[KUBE_DATA_HASH_LEN + 1];
        char *const keys[] = { (char *) "password", (char *) "tls.crt", NULL };

        if (json_parse_strict(data, size, &o) < 0)
                return 0;
        if (json_object_object_get_ex(o, "object", &x))
                observe(x);
        if (json_object_object_get_ex(o, "items", &x) && json_object_is_type(x, json_type_array))
                for (size_t i = 0; i < json_object_array_length(x); i++)
                        observe(json_object_array_get_idx(x, i));
        if (json_object_object_get_ex(o, "data", &x))
                (void) kube_observed_data_hash(x, keys, hash);
        observe(o);
        json_put_wiped(o);
        return 0;
}
