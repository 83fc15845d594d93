/* SPDX-License-Identifier: MIT */
#include "util/json.h"

#include <errno.h>
#include <json-c/printbuf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/cleanup.h"
#include "util/error.h"

int json_parse_strict(const void *data, size_t len, json_object **ret) {
        if (len > INT32_MAX)
                return -EFBIG;
        json_tokener *tok = json_tokener_new_ex(JSON_DEPTH_MAX);
        if (!tok)
                return -ENOMEM;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        /* The scratch buffer grows with realloc(), which would leave the start of a long
         * string behind in freed memory: made big enough for any string of data at once. */
        if (printbuf_memset(tok->pb, 0, 0, (int) len + 1) < 0) {
                json_tokener_free(tok);
                return -ENOMEM;
        }
        printbuf_reset(tok->pb);
        json_object *o = json_tokener_parse_ex(tok, data, (int) len);
        enum json_tokener_error e = json_tokener_get_error(tok);
        size_t end = json_tokener_get_parse_end(tok);
        /* The tokener's scratch buffer held string bytes on their way into the tree. */
        if (tok->pb && tok->pb->buf)
                explicit_bzero(tok->pb->buf, (size_t) tok->pb->size);
        json_tokener_free(tok);
        if (!o || e != json_tokener_success) {
                json_put_wiped(o);
                return e == json_tokener_error_depth ? -ELOOP : -EBADMSG;
        }
        /* Allow trailing white space only (memchr: strchr() would also match a NUL byte). */
        for (const char *p = (const char *) data + end; p < (const char *) data + len; p++)
                if (!memchr(" \t\r\n", *p, 4)) {
                        json_put_wiped(o);
                        return -EBADMSG;
                }
        *ret = o;
        return 0;
}

static void wipe_tree(json_object *o) {
        switch (json_object_get_type(o)) {
        case json_type_string:
                explicit_bzero((char *) json_object_get_string(o), (size_t) json_object_get_string_len(o));
                break;
        case json_type_object: {
                json_object_object_foreach(o, k, v) {
                        (void) k;
                        wipe_tree(v);
                }
                break;
        }
        case json_type_array:
                for (size_t i = 0; i < json_object_array_length(o); i++)
                        wipe_tree(json_object_array_get_idx(o, i));
                break;
        default:
                break;
        }
}

void json_put_wiped(json_object *o) {
        if (!o)
                return;
        wipe_tree(o);
        json_object_put(o);
}

int json_append_string(SecBuf *b, const char *s, size_t len) {
        int r = secbuf_append_char(b, '"');
        for (size_t i = 0; r >= 0 && i < len; i++) {
                unsigned char c = (unsigned char) s[i];
                char esc[8];
                if (c == '"' || c == '\\') {
                        esc[0] = '\\';
                        esc[1] = (char) c;
                        r = secbuf_append(b, esc, 2);
                } else if (c < 0x20) {
                        snprintf(esc, sizeof(esc), "\\u%04x", c);
                        r = secbuf_append(b, esc, 6);
                        explicit_bzero(esc, sizeof(esc));
                } else
                        r = secbuf_append_char(b, (char) c);
        }
        return r < 0 ? r : secbuf_append_char(b, '"');
}

int json_serialize(json_object *o, SecBuf *b) {
        int r = 0;
        switch (json_object_get_type(o)) {
        case json_type_null:
                return secbuf_append_str(b, "null");
        case json_type_boolean:
                return secbuf_append_str(b, json_object_get_boolean(o) ? "true" : "false");
        case json_type_int:
        case json_type_double: {
                /* json-c keeps the number as it was written; numbers are not secret-shaped
                 * enough to need wiping, but the scratch buffer is wiped anyway. */
                size_t len = 0;
                const char *s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &len);
                return s ? secbuf_append(b, s, len) : -ENOMEM;
        }
        case json_type_string:
                return json_append_string(b, json_object_get_string(o), (size_t) json_object_get_string_len(o));
        case json_type_array:
                r = secbuf_append_char(b, '[');
                for (size_t i = 0; r >= 0 && i < json_object_array_length(o); i++) {
                        if (i > 0)
                                r = secbuf_append_char(b, ',');
                        if (r >= 0)
                                r = json_serialize(json_object_array_get_idx(o, i), b);
                }
                return r < 0 ? r : secbuf_append_char(b, ']');
        case json_type_object: {
                bool first = true;
                r = secbuf_append_char(b, '{');
                json_object_object_foreach(o, k, v) {
                        if (r < 0)
                                break;
                        if (!first)
                                r = secbuf_append_char(b, ',');
                        first = false;
                        if (r >= 0)
                                r = json_append_string(b, k, strlen(k));
                        if (r >= 0)
                                r = secbuf_append_char(b, ':');
                        if (r >= 0)
                                r = json_serialize(v, b);
                }
                return r < 0 ? r : secbuf_append_char(b, '}');
        }
        }
        return -EINVAL;
}

static SecBuf *value_bytes(json_object *v) {
        if (json_object_is_type(v, json_type_string))
                return secbuf_new_from(json_object_get_string(v), (size_t) json_object_get_string_len(v));
        SecBuf *b = secbuf_new(64);
        if (b && json_serialize(v, b) < 0)
                return secbuf_free(b);
        return b;
}

/* The next component of a property path at *p: up to an unescaped '.', with '\' taking the
 * character after it literally. */
static char *path_component(const char **p) {
        const char *s = *p;
        char *k = malloc(strlen(s) + 1), *o = k;
        if (!k)
                return NULL;
        for (; *s && *s != '.'; s++)
                *o++ = *s == '\\' && s[1] ? *++s : *s;
        *o = 0;
        *p = *s == '.' ? s + 1 : s;
        return k;
}

/* An array index: decimal digits only, as gjson reads them. */
static bool array_index(const char *k, json_object *array, size_t *ret) {
        size_t n = strlen(k), i = 0;
        if (n == 0 || n > 9 || strspn(k, "0123456789") != n)
                return false;
        i = (size_t) strtoul(k, NULL, 10);
        if (i >= json_object_array_length(array))
                return false;
        *ret = i;
        return true;
}

static int path_walk(json_object *root, const char *path, json_object **ret) {
        json_object *cur = root;
        const char *p = path;

        /* A key that itself contains dots ("a.b") wins over the nested path a -> b, as in ESO. */
        if (strchr(path, '.') && json_object_is_type(root, json_type_object) &&
            json_object_object_get_ex(root, path, ret))
                return 0;
        while (*p) {
                _cleanup_free_ char *k = path_component(&p);
                json_object *next = NULL;
                size_t i;
                if (!k)
                        return -ENOMEM;
                if (json_object_is_type(cur, json_type_object)) {
                        if (!json_object_object_get_ex(cur, k, &next))
                                return -ENOENT;
                } else if (json_object_is_type(cur, json_type_array) && array_index(k, cur, &i))
                        next = json_object_array_get_idx(cur, i);
                else
                        return -ENOENT;
                cur = next;
        }
        *ret = cur;
        return 0;
}

int json_property_path_check(const char *path, char **ret_error) {
        bool start = true; /* of a component */

        if (!*path)
                return error_set(ret_error, -EINVAL, "an empty path");
        if (strchr("![{", *path))
                return error_set(ret_error, -EINVAL, "'%c' at the start (a gjson literal or multipath) is not supported",
                                 *path);
        for (const char *s = path; *s; s++) {
                if (*s == '\\') {
                        if (!*++s)
                                return error_set(ret_error, -EINVAL, "a '\\' at the end escapes nothing");
                        start = false;
                } else if (*s == '.') {
                        if (start)
                                return error_set(ret_error, -EINVAL, "an empty component (a leading, trailing or double '.')");
                        start = true;
                } else if (strchr("*?|", *s))
                        return error_set(ret_error, -EINVAL,
                                         "'%c' (a gjson wildcard or pipe) is not supported; write '\\%c' for the character itself",
                                         *s, *s);
                else if (start && strchr("#@", *s))
                        return error_set(ret_error, -EINVAL,
                                         "a component starting with '%c' (a gjson query or modifier) is not supported; "
                                         "write '\\%c' for the character itself",
                                         *s, *s);
                else
                        start = false;
        }
        if (start)
                return error_set(ret_error, -EINVAL, "an empty component (a leading, trailing or double '.')");
        return 0;
}

int json_secret_property(const SecBuf *doc, const char *path, SecBuf **ret) {
        json_object *root = NULL, *v = NULL;
        int r = json_parse_strict(doc->data, doc->len, &root);
        if (r < 0)
                return -EBADMSG;
        if (!json_object_is_type(root, json_type_object) && !json_object_is_type(root, json_type_array)) {
                json_put_wiped(root);
                return -EBADMSG;
        }
        r = path_walk(root, path, &v);
        /* null gives an empty value, as gjson's String() does in ESO. */
        SecBuf *b = r < 0 ? NULL : json_object_is_type(v, json_type_null) ? secbuf_new(0) : value_bytes(v);
        json_put_wiped(root);
        if (r < 0)
                return r;
        if (!b)
                return -ENOMEM;
        *ret = b;
        return 0;
}

int json_secret_extract(const SecBuf *doc, SecretData *d) {
        json_object *root = NULL;
        int r = json_parse_strict(doc->data, doc->len, &root);
        if (r < 0)
                return -EBADMSG;
        if (!json_object_is_type(root, json_type_object)) {
                json_put_wiped(root);
                return -EBADMSG;
        }
        json_object_object_foreach(root, k, v) {
                SecBuf *b = value_bytes(v);
                r = b ? secret_data_set(d, k, b) : -ENOMEM;
                if (r < 0)
                        break;
        }
        json_put_wiped(root);
        return r < 0 ? r : 0;
}
