/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "util/secret-data.h"
#include "util/secbuf.h"

/* Templates for file targets: everything is copied verbatim except
 *
 *     {{ key }}  {{ key | base64 }}  {{ key | json }}
 *
 * (white space inside the braces optional, keys match [-._a-zA-Z0-9]+). Error messages
 * name the key or filter and the 1-based template line, never a value. */

/* A rendering larger than this is refused: a small template repeating a large value must
 * not be able to eat all memory. */
#define TEMPLATE_OUTPUT_MAX (16U * 1024U * 1024U)

int template_render(const char *tmpl, const SecretData *d, SecBuf **ret, char **ret_error);

/* Syntax check at configuration time. keys (NULL-terminated, may be NULL) are the keys the
 * secret is known to have; when keys_complete, a key outside them is an error too. */
int template_check(const char *tmpl, char *const *keys, bool keys_complete, char **ret_error);

/* Encoders, shared with the file sink. */

/* Strict UTF-8: no overlong forms, surrogates or code points past U+10FFFF. With
 * reject_noncharacters, also none of U+FDD0..U+FDEF and U+xxFFFE/U+xxFFFF, which systemd's
 * utf8_is_valid() refuses (and with it a whole EnvironmentFile=). NUL is valid here. */
bool template_utf8_valid(const void *p, size_t len, bool reject_noncharacters);

/* Append p as a JSON string literal, quotes included. -EILSEQ if p is not valid UTF-8. */
int template_json_string_append(SecBuf *b, const void *p, size_t len);

