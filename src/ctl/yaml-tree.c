/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "ctl/yaml-tree.h"
#include "util/cleanup.h"

typedef struct Loader {
        yaml_document_t *doc;
        size_t nodes;
        char *error;
} Loader;

static void loader_fail(Loader *l, unsigned line, const char *what) {
        if (!l->error && asprintf(&l->error, "%u: %s", line, what) < 0)
                l->error = NULL;
}

static bool plain_null(const yaml_node_t *n) {
        const char *s = (const char *) n->data.scalar.value;
        return n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
               (!*s || streq(s, "~") || streq(s, "null") || streq(s, "Null") || streq(s, "NULL"));
}

static YamlTree *convert(Loader *l, int index, unsigned depth) {
        yaml_node_t *n = yaml_document_get_node(l->doc, index);
        if (!n)
                return NULL;
        unsigned line = (unsigned) n->start_mark.line + 1;
        if (depth > YAML_TREE_DEPTH_MAX) {
                loader_fail(l, line, "nested too deeply");
                return NULL;
        }
        if (++l->nodes > YAML_TREE_NODES_MAX) {
                loader_fail(l, line, "too many nodes (aliases expanding without end?)");
                return NULL;
        }
        YamlTree *t = calloc(1, sizeof(*t));
        if (!t)
                return NULL;
        t->line = line;
        switch (n->type) {
        case YAML_SCALAR_NODE:
                t->kind = plain_null(n) ? YAML_TREE_NULL : YAML_TREE_SCALAR;
                t->plain = n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
                if (memchr(n->data.scalar.value, 0, n->data.scalar.length)) {
                        loader_fail(l, line, "a NUL character in a value");
                        return yaml_tree_free(t);
                }
                t->text = strndup((const char *) n->data.scalar.value, n->data.scalar.length);
                if (!t->text)
                        return yaml_tree_free(t);
                return t;
        case YAML_SEQUENCE_NODE: {
                t->kind = YAML_TREE_SEQ;
                size_t count = (size_t) (n->data.sequence.items.top - n->data.sequence.items.start);
                t->items = calloc(count ? count : 1, sizeof(*t->items));
                if (!t->items)
                        return yaml_tree_free(t);
                for (size_t i = 0; i < count; i++) {
                        t->items[i] = convert(l, n->data.sequence.items.start[i], depth + 1);
                        if (!t->items[i])
                                return yaml_tree_free(t);
                        t->n++;
                }
                return t;
        }
        case YAML_MAPPING_NODE: {
                t->kind = YAML_TREE_MAP;
                size_t count = (size_t) (n->data.mapping.pairs.top - n->data.mapping.pairs.start);
                size_t c = count ? count : 1;
                t->keys = calloc(c, sizeof(*t->keys));
                t->key_lines = calloc(c, sizeof(*t->key_lines));
                t->used = calloc(c, sizeof(*t->used));
                t->items = calloc(c, sizeof(*t->items));
                if (!t->keys || !t->key_lines || !t->used || !t->items)
                        return yaml_tree_free(t);
                for (size_t i = 0; i < count; i++) {
                        yaml_node_pair_t *pair = &n->data.mapping.pairs.start[i];
                        yaml_node_t *k = yaml_document_get_node(l->doc, pair->key);
                        if (!k)
                                return yaml_tree_free(t);
                        unsigned kline = (unsigned) k->start_mark.line + 1;
                        if (k->type != YAML_SCALAR_NODE) {
                                loader_fail(l, kline, "a key that is not a string");
                                return yaml_tree_free(t);
                        }
                        const char *key = (const char *) k->data.scalar.value;
                        if (streq(key, "<<") && k->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
                                loader_fail(l, kline, "YAML merge keys (<<) are not supported");
                                return yaml_tree_free(t);
                        }
                        for (size_t j = 0; j < t->n; j++)
                                if (streq(t->keys[j], key)) {
                                        loader_fail(l, kline, "a key that appears twice in the same mapping");
                                        return yaml_tree_free(t);
                                }
                        t->keys[t->n] = strndup(key, k->data.scalar.length);
                        if (!t->keys[t->n])
                                return yaml_tree_free(t);
                        t->key_lines[t->n] = kline;
                        t->items[t->n] = convert(l, pair->value, depth + 1);
                        if (!t->items[t->n]) {
                                free(t->keys[t->n]);
                                return yaml_tree_free(t);
                        }
                        t->n++;
                }
                return t;
        }
        default:
                loader_fail(l, line, "an empty node");
                return yaml_tree_free(t);
        }
}

YamlTree *yaml_tree_free(YamlTree *t) {
        if (!t)
                return NULL;
        for (size_t i = 0; i < t->n; i++) {
                yaml_tree_free(t->items[i]);
                if (t->keys)
                        free(t->keys[i]);
        }
        free(t->items);
        free(t->keys);
        free(t->key_lines);
        free(t->used);
        free(t->text);
        free(t);
        return NULL;
}

void yaml_tree_free_docs(YamlTree **docs, size_t n) {
        for (size_t i = 0; i < n; i++)
                yaml_tree_free(docs[i]);
        free(docs);
}

int yaml_tree_load(const char *data, size_t size, YamlTree ***ret_docs, size_t *ret_n, char **ret_error) {
        yaml_parser_t parser;
        YamlTree **docs = NULL;
        size_t n = 0;
        int r = 0;

        *ret_error = NULL;
        if (!yaml_parser_initialize(&parser))
                return -ENOMEM;
        yaml_parser_set_input_string(&parser, (const unsigned char *) data, size);
        for (;;) {
                yaml_document_t doc;
                if (!yaml_parser_load(&parser, &doc)) {
                        if (asprintf(ret_error, "%zu: %s%s%s", parser.problem_mark.line + 1,
                                     parser.problem ? parser.problem : "not valid YAML",
                                     parser.context ? " " : "", parser.context ? parser.context : "") < 0)
                                *ret_error = NULL;
                        r = -EINVAL;
                        break;
                }
                yaml_node_t *root = yaml_document_get_root_node(&doc);
                if (!root) {
                        yaml_document_delete(&doc);
                        break;
                }
                Loader l = { .doc = &doc };
                YamlTree *t = convert(&l, 1, 0);
                yaml_document_delete(&doc);
                if (!t) {
                        r = l.error ? -EINVAL : -ENOMEM;
                        *ret_error = l.error;
                        break;
                }
                if (t->kind == YAML_TREE_NULL) { /* an empty document */
                        yaml_tree_free(t);
                        continue;
                }
                YamlTree **nd = reallocarray(docs, n + 1, sizeof(*docs));
                if (!nd) {
                        yaml_tree_free(t);
                        r = -ENOMEM;
                        break;
                }
                docs = nd;
                docs[n++] = t;
        }
        yaml_parser_delete(&parser);
        if (r < 0) {
                yaml_tree_free_docs(docs, n);
                return r;
        }
        *ret_docs = docs;
        *ret_n = n;
        return 0;
}

static ssize_t member(const YamlTree *map, const char *key) {
        for (size_t i = 0; map && map->kind == YAML_TREE_MAP && i < map->n; i++)
                if (streq(map->keys[i], key))
                        return (ssize_t) i;
        return -1;
}

YamlTree *yaml_tree_get(YamlTree *map, const char *key, unsigned *ret_line) {
        ssize_t i = member(map, key);
        if (i < 0)
                return NULL;
        map->used[i] = true;
        if (ret_line)
                *ret_line = map->key_lines[i];
        return map->items[i];
}

YamlTree *yaml_tree_peek(YamlTree *map, const char *key) {
        ssize_t i = member(map, key);
        return i < 0 ? NULL : map->items[i];
}

const char *yaml_tree_get_text(YamlTree *map, const char *key) {
        YamlTree *v = yaml_tree_get(map, key, NULL);
        return v && v->kind == YAML_TREE_SCALAR ? v->text : NULL;
}
