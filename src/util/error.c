/* SPDX-License-Identifier: MIT */
#include "util/error.h"

#include <stdarg.h>
#include <stdio.h>

int error_set(char **ret_error, int r, const char *fmt, ...) {
        va_list ap;
        char *m = NULL;

        if (ret_error) {
                va_start(ap, fmt);
                if (vasprintf(&m, fmt, ap) < 0)
                        m = NULL;
                va_end(ap);
                *ret_error = m;
        }
        return r;
}
