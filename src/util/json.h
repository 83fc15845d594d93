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

/* The value at a property path of a JSON object or array, as ESO's gjson paths read it:
 * components separated by '.', an array element by its index ("hosts.0.name"), '\' taking
 * the next character literally ("fav\.movie"); a path with dots that is itself a top-level
 * key selects that key. A string gives its bytes, null an empty value, anything else its
 * compact JSON. -EBADMSG if the document is not a JSON object or array, -ENOENT if the path
 * does not exist. */
int json_secret_property(const SecBuf *doc, const char *path, SecBuf **ret);
/* Whether path is one json_secret_property() reads as ESO would: gjson's wildcards, pipes,
 * queries, modifiers and multipaths are refused (with a message), not misread. */
int json_property_path_check(const char *path, char **ret_error);

/* Every top-level key of a JSON object into d (strings as bytes, others as compact JSON). */
int json_secret_extract(const SecBuf *doc, SecretData *d);
