/* SPDX-License-Identifier: MIT */
#pragma once

#include "util/cleanup.h"

/* For functions that return -errno plus an operator message: sets *ret_error (if non-NULL)
 * to the formatted message (%m works: errno is kept) and returns r. Never put secret bytes
 * in the message. */
int error_set(char **ret_error, int r, const char *fmt, ...) _printf_(3, 4);
