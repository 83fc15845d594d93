/* SPDX-License-Identifier: MIT */
#pragma once

#include <json-c/json.h>

#include "util/secret-data.h"
#include "util/secbuf.h"

#define JSON_DEPTH_MAX 32

/* Strict, depth-limited parse of a whole buffer (trailing garbage is an error). The caller
 * releases the tree with json_put_wiped(), which wipes every string in it first. */
int json_parse_strict(const void *data, size_t len, json_object **ret);
void json_put_wiped(json_object *o);

/* Compact JSON of o, written straight into wiped memory (json-c's own serializer leaves
 * copies behind). */
int json_serialize(json_object *o, SecBuf *b);
/* A JSON string literal (quotes included) of s, appended to b. */
int json_append_string(SecBuf *b, const char *s, size_t len);

/* The value at a dotted path ("db.password") of a JSON object: a string as its bytes,
 * anything else as compact JSON. -EBADMSG if the document is not a JSON object, -ENOENT if
 * the path does not exist. */
int json_secret_property(const SecBuf *doc, const char *path, SecBuf **ret);

/* Every top-level key of a JSON object into d (strings as bytes, others as compact JSON). */
int json_secret_extract(const SecBuf *doc, SecretData *d);
