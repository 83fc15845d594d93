/* SPDX-License-Identifier: MIT */
/* libFuzzer: JSON secrets as stores return them: property paths and extract. */
#include <stdlib.h>

#include "util/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        SecBuf *doc = secbuf_new_from(data, size);
        if (!doc)
                return 0;
        SecBuf *v = NULL;
        if (json_secret_property(doc, "password", &v) >= 0)
                secbuf_free(v);
        v = NULL;
        if (json_secret_property(doc, "db.credentials.password", &v) >= 0)
                secbuf_free(v);
        v = NULL;
        if (json_secret_property(doc, "hosts.1.a\\.b", &v) >= 0)
                secbuf_free(v);
        SecretData *d = secret_data_new();
        if (d)
                json_secret_extract(doc, d);
        secret_data_free(d);
        secbuf_free(doc);
        return 0;
}
