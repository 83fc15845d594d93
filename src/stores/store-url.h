/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>

#include "util/http.h"

/* A store's server URL: https://, or http:// only to a loopback host (a local agent or a
 * test server); checked on the URL as libcurl parses it, not on its text. */
static inline bool store_url_valid(const char *u) {
        return http_url_allowed(u);
}
