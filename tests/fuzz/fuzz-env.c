/* SPDX-License-Identifier: MIT */
/* libFuzzer: the env, json and template renderers on arbitrary values. */
#include <stdlib.h>
#include <string.h>

#include "sinks/sink.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        SecretData *d = secret_data_new();
        if (!d)
                return 0;
        /* first byte: split point between two values */
        size_t cut = size ? data[0] % (size + 1) : 0;
        secret_data_set(d, "A", secbuf_new_from(data, cut));
        secret_data_set(d, "B_2", secbuf_new_from(data + cut, size - cut));
        static const FileFormat formats[] = { FILE_FORMAT_ENV, FILE_FORMAT_JSON, FILE_FORMAT_RAW, FILE_FORMAT_TEMPLATE };
        for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
                FileTarget t = { .path = (char *) "/nonexistent", .format = formats[i], .key = (char *) "B_2",
                                 .template_text = (char *) "x={{ A | json }} y={{ B_2 | base64 }} z={{ A }}" };
                SecBuf *out = NULL;
                char *err = NULL;
                if (sink_file_render(&t, d, &out, &err) >= 0)
                        secbuf_free(out);
                free(err);
        }
        secret_data_free(d);
        return 0;
}
