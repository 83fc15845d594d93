/* SPDX-License-Identifier: MIT */
#pragma once

/* Check knows no "skipped": a test that returns early counts as passed. A test that cannot
 * run here (a missing library, no tmpfs) says so with TEST_SKIP("why"), which notes the
 * reason in a file (the test may run in a forked child) and returns. main() calls
 * test_skip_init() first and ends with `return test_skip_exit(failed);`, which prints each
 * reason as "SKIP: ..." and turns an otherwise clean run into exit 77, so that automake
 * reports the suite as SKIP, not PASS (and tests/run.sh names the reason). */

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char test_skip_path[] = "/tmp/secretsyncd-unit-skips.XXXXXX";

static inline void test_skip_init(void) {
        int fd = mkstemp(test_skip_path);
        if (fd < 0) {
                perror("mkstemp");
                exit(EXIT_FAILURE);
        }
        close(fd);
}

static inline void test_skip_note(const char *test, const char *why) {
        FILE *f = fopen(test_skip_path, "ae");
        if (f) {
                fprintf(f, "%s: %s\n", test, why);
                fclose(f);
        }
}

#define TEST_SKIP(why)                               \
        do {                                         \
                test_skip_note(__func__, (why));     \
                return;                              \
        } while (0)

static inline int test_skip_exit(int failed) {
        char line[512];
        int skipped = 0;
        FILE *f = fopen(test_skip_path, "re");

        while (f && fgets(line, sizeof(line), f)) {
                printf("SKIP: %s", line);
                skipped++;
        }
        if (f)
                fclose(f);
        unlink(test_skip_path);
        if (failed)
                return EXIT_FAILURE;
        return skipped ? 77 : EXIT_SUCCESS;
}
