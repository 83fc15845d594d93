/* SPDX-License-Identifier: MIT */
/* libFuzzer: External Secrets Operator manifests into `secretsyncctl convert-eso`. Whatever
 * comes in, what comes out (also with --partial) is valid libconfig syntax, and a refusal
 * says why. */
#include <libconfig.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "ctl/convert-eso.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void one(const uint8_t *data, size_t size, bool partial) {
        char *out = NULL, *err = NULL;
        size_t out_size = 0, err_size = 0;
        FILE *o = open_memstream(&out, &out_size), *e = open_memstream(&err, &err_size);
        if (!o || !e)
                abort();
        EsoInput in = { .name = "fuzz.yaml", .data = (const char *) data, .size = size };
        int r = convert_eso(&in, 1, &(EsoOptions) { .namespace = "default", .partial = partial }, o, e);
        fclose(o);
        fclose(e);
        if (r != 0 && r != 2)
                abort();
        if (r == 2 && (err_size == 0 || out_size != 0))
                abort(); /* a refusal says why, and writes no configuration */
        if (r == 0) {
                config_t cfg;
                config_init(&cfg);
                if (!config_read_string(&cfg, out)) {
                        fprintf(stderr, "invalid output, line %d: %s\n%s\n", config_error_line(&cfg),
                                config_error_text(&cfg), out);
                        abort();
                }
                config_destroy(&cfg);
        }
        free(out);
        free(err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        one(data, size, false);
        one(data, size, true);
        return 0;
}
