/* SPDX-License-Identifier: MIT */
/* libFuzzer: template check and render against a fixed secret. */
#include <stdlib.h>
#include <string.h>

#include "util/template.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *t = strndup((const char *) data, size);
        SecretData *d = secret_data_new();
        char *keys[] = { (char *) "password", (char *) "user.name", NULL };
        if (t && d) {
                secret_data_set(d, "password", secbuf_new_from("p\"w\\\n\x01\xe2\x82\xac", 8));
                secret_data_set(d, "user.name", secbuf_new_from("", 0));
                char *err = NULL;
                SecBuf *out = NULL;
                template_check(t, keys, true, &err);
                free(err);
                err = NULL;
                if (template_render(t, d, &out, &err) >= 0)
                        secbuf_free(out);
                free(err);
        }
        secret_data_free(d);
        free(t);
        return 0;
}
