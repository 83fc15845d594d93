/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* Kubernetes manifests as a plain tree with line numbers (libyaml's document loader
 * underneath): what convert-eso walks. Anchors and aliases are expanded; a document that
 * would expand past YAML_TREE_NODES_MAX nodes or nest deeper than YAML_TREE_DEPTH_MAX is
 * refused (a "billion laughs" file must not eat the machine). */

#define YAML_TREE_NODES_MAX 200000U
#define YAML_TREE_DEPTH_MAX 64U

typedef enum YamlKind {
        YAML_TREE_NULL, /* a plain "", "~" or "null" */
        YAML_TREE_SCALAR,
        YAML_TREE_MAP,
        YAML_TREE_SEQ,
} YamlKind;

typedef struct YamlTree YamlTree;
struct YamlTree {
        YamlKind kind;
        unsigned line; /* 1-based, where the node starts */
        char *text;    /* SCALAR (and NULL): the value, NUL-terminated */
        bool plain;    /* SCALAR: written without quotes (so true/false/numbers are not strings) */
        size_t n;      /* MAP: pairs, SEQ: items */
        char **keys;   /* MAP */
        unsigned *key_lines;
        bool *used;    /* MAP: set by yaml_tree_get(), to find what nobody read */
        YamlTree **items;
};

/* Every document of a stream (NULL documents, i.e. empty ones, are skipped). On a syntax
 * error, -EINVAL with "LINE: message" in *ret_error. */
int yaml_tree_load(const char *data, size_t size, YamlTree ***ret_docs, size_t *ret_n, char **ret_error);
YamlTree *yaml_tree_free(YamlTree *t);
void yaml_tree_free_docs(YamlTree **docs, size_t n);

/* A map's member (and marks it used), or NULL; *ret_line gets the key's line. */
YamlTree *yaml_tree_get(YamlTree *map, const char *key, unsigned *ret_line);
/* The same without marking it used. */
YamlTree *yaml_tree_peek(YamlTree *map, const char *key);
/* The scalar text of a map's member, or NULL if absent, null or not a scalar. */
const char *yaml_tree_get_text(YamlTree *map, const char *key);
