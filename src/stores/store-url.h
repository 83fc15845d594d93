/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <string.h>

/* Plain http:// is allowed only to a loopback address (a local agent or a test server). */
static inline bool store_url_is_loopback_http(const char *u) {
        static const char *const ok[] = { "http://127.", "http://localhost:", "http://localhost/",
                                          "http://[::1]:", "http://[::1]/" };
        for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
                if (strncmp(u, ok[i], strlen(ok[i])) == 0)
                        return true;
        return strcmp(u, "http://localhost") == 0 || strcmp(u, "http://[::1]") == 0;
}

static inline bool store_url_valid(const char *u) {
        if (strncmp(u, "https://", 8) == 0)
                return u[8] != 0 && u[8] != '/';
        return store_url_is_loopback_http(u);
}
