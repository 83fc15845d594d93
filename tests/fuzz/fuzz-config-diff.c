/* SPDX-License-Identifier: MIT */
/* libFuzzer, differential: each input is loaded twice, as it is (the secrets list is
 * pre-scanned and parsed element by element) and with an @include of an empty file in front
 * of its first line (which makes config_load() hand the whole file to libconfig, with the
 * same line numbers). Both must give the same model, or the same errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *load(const char *path, bool *ok) {
        Config *c = NULL;
        char **errors = NULL, *out = NULL;
        size_t n = 0;
        FILE *f = open_memstream(&out, &n);
        if (!f)
                abort();
        *ok = config_load(path, false, &c, &errors) >= 0;
        if (*ok)
                config_dump(c, f, false);
        for (char **e = errors; e && *e; e++)
                fprintf(f, "%s\n", *e);
        fclose(f);
        config_free(c);
        strv_free(errors);
        return out;
}

static void put(const char *path, const char *prefix, const uint8_t *data, size_t size) {
        FILE *f = fopen(path, "we");
        if (!f || fputs(prefix, f) < 0 || fwrite(data, 1, size, f) != size || fclose(f) != 0)
                abort();
}

static char dir[] = "/tmp/fuzz-config-diff.XXXXXX", a[64], b[64], empty[64];

static void remove_files(void) {
        unlink(a);
        unlink(b);
        unlink(empty);
        rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        /* Both ways are the whole-file one already. */
        if (memchr(data, '@', size))
                return 0;
        if (!a[0]) {
                config_settle_usec = 0;
                if (!mkdtemp(dir))
                        abort();
                atexit(remove_files);
                snprintf(a, sizeof(a), "%s/a.conf", dir);
                snprintf(b, sizeof(b), "%s/b.conf", dir);
                snprintf(empty, sizeof(empty), "%s/empty.conf", dir);
                put(empty, "", data, 0);
        }
        put(a, "", data, size);
        put(b, "@include \"empty.conf\" ", data, size);
        bool ok_a, ok_b;
        char *x = load(a, &ok_a), *y = load(b, &ok_b);
        /* The errors name the file: compare them under one name. */
        for (char *p = y; (p = strstr(p, b)); p += strlen(b))
                memcpy(p, a, strlen(a));
        if (ok_a != ok_b || strcmp(x, y) != 0) {
                fprintf(stderr, "streamed (%s):\n%s\nwhole file (%s):\n%s\n", ok_a ? "ok" : "failed", x,
                        ok_b ? "ok" : "failed", y);
                abort();
        }
        free(x);
        free(y);
        return 0;
}
