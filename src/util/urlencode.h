/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>

#include "util/secbuf.h"

/* Percent-encoding (RFC 3986: everything but A-Z a-z 0-9 - . _ ~), for form bodies
 * (application/x-www-form-urlencoded: STS, OAuth token endpoints) and query values. Values
 * may be secret (client secrets, assertions): the form is built in wiped memory. */

/* Appends "&name=value" ("name=value" into an empty buffer). */
int url_form_append(SecBuf *b, const char *name, const void *value, size_t len);
int url_form_append_str(SecBuf *b, const char *name, const char *value);

/* s percent-encoded, in a new string (not secret: names, continue tokens). */
char *url_escape(const char *s);
