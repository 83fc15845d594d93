/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* Text from outside (a store's error message, a remote key, a configured name) made fit for
 * one log line, a journal field or a terminal: control characters (C0, DEL and C1) and
 * bytes that are not UTF-8 become \xNN; valid UTF-8 stays as it is. The result is cut, on
 * a character boundary, to fit size (at least 1), and always NUL-terminated. Returns buf. */
char *escape_text(const char *s, char *buf, size_t size);

/* Whether s holds a C0 control character or DEL (a line break would start a new log line,
 * or a new header). */
bool text_has_control(const char *s);
