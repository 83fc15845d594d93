/* SPDX-License-Identifier: MIT */
/* libFuzzer: the configuration parser, validation and dump, on arbitrary file content. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char path[] = "/tmp/fuzz-config.XXXXXX";
        config_settle_usec = 0; /* the file is written just before */
        int fd = mkstemp(path);
        if (fd < 0)
                return 0;
        /* Closed before the load: a file open for writing has not settled. */
        bool written = write(fd, data, size) == (ssize_t) size;
        close(fd);
        if (written) {
                Config *c = NULL;
                char **errors = NULL;
                if (config_load(path, false, &c, &errors) >= 0) {
                        FILE *f = fopen("/dev/null", "we");
                        if (f) {
                                config_dump(c, f, true);
                                fclose(f);
                        }
                        config_free(c);
                }
                strv_free(errors);
        }
        unlink(path);
        return 0;
}
