/* SPDX-License-Identifier: MIT */
#pragma once

/* What convert-eso's parts share: the objects read, the conversion's state, and walking a
 * manifest field by field (every spec field read is marked; eso_leftovers() reports the
 * rest, so nothing is dropped unseen). */

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "ctl/convert-eso.h"
#include "ctl/yaml-tree.h"
#include "util/cleanup.h"

#define CREDENTIAL_DIR "/etc/secretsyncd/eso"

static inline void *mfree(void *p) {
        free(p);
        return NULL;
}

typedef enum ObjectKind { OBJ_SECRET_STORE, OBJ_CLUSTER_SECRET_STORE, OBJ_EXTERNAL_SECRET, OBJ_SERVICE_ACCOUNT } ObjectKind;

typedef struct Object {
        ObjectKind kind;
        const char *file;
        YamlTree *root;
        unsigned line;
        const char *name, *ns; /* ns: metadata.namespace, else --namespace; NULL for cluster objects */
        char *conf_name;       /* the store's or secret's name in the configuration */
} Object;

typedef struct Error {
        const char *file;
        unsigned line;
        size_t seq;
        char *text;
} Error;

typedef struct Conv {
        const EsoOptions *opt;
        const EsoInput *in;
        size_t n_in;
        Error *errs; /* printed at the end, by file and line */
        size_t n_errs;
        unsigned errors;
        FILE *notes; /* --partial: the unconverted fields of the block being written */
        FILE *header_notes; /* ... or of the objects themselves, said at the top */
        char *notes_buf;
        size_t notes_size;
        Object *objs;
        size_t n_objs;
        char **skipped; /* objects that are not External Secrets ones, said in the header */
        size_t n_skipped;
} Conv;

/* A field of an object: its value (NULL when absent), the line of its key, its path. */
typedef struct Field {
        YamlTree *v;
        unsigned line;
        char path[256];
} Field;

Field eso_field(const Field *parent, const char *key);
Field eso_item(const Field *parent, size_t i);
/* An error FILE:LINE: field: why (f NULL: the object's line, no field); with --partial
 * also a comment in the block being written. */
_printf_(4, 5) void eso_fail(Conv *c, const Object *o, const Field *f, const char *fmt, ...);
/* Every member of a map that no rule read is an error. */
void eso_leftovers(Conv *c, const Object *o, const Field *f);
bool eso_is_map(Conv *c, const Object *o, const Field *f);
bool eso_is_seq(Conv *c, const Object *o, const Field *f);
/* A scalar field's text; NULL when absent or null (an error when required). */
const char *eso_text(Conv *c, const Object *o, const Field *f, bool required);
const char *eso_member_text(Conv *c, const Object *o, const Field *parent, const char *key, bool required);

/* Writing libconfig text. */
void eso_put_indent(FILE *b, unsigned indent);
void eso_put_str(FILE *b, unsigned indent, const char *key, const char *value);
_printf_(3, 4) void eso_put_comment(FILE *b, unsigned indent, const char *fmt, ...);
void eso_put_strv(FILE *b, const char *const *v, size_t n);
/* A SecretKeySelector as a credential file, with a comment on how to fill it. */
void eso_put_secret_ref(Conv *c, const Object *o, const Field *ref, FILE *b, unsigned indent, const char *setting,
                        const char *what);
/* The same for a ConfigMap's key (a Vault caProvider of type ConfigMap). */
void eso_put_configmap_ref(Conv *c, const Object *o, const Field *ref, FILE *b, unsigned indent, const char *setting,
                           const char *what);
/* A ServiceAccountSelector as `service_account = {...};` */
void eso_put_service_account(Conv *c, const Object *o, const Field *ref, FILE *b, unsigned indent,
                             const char **ret_ns, const char **ret_name);
Object *eso_find_object(Conv *c, ObjectKind kind, const char *ns, const char *name);

/* A block of output, with the notes (--partial) gathered while it was written. */
void eso_block_begin(Conv *c, FILE **ret, char **buf, size_t *size);
void eso_block_end(Conv *c, FILE *out, FILE *blk, char **buf);
const char *eso_kind_name(ObjectKind k);
void eso_put_origin(FILE *b, unsigned indent, const Object *o);

/* eso-stores.c: a SecretStore or ClusterSecretStore as a store block. */
void eso_conv_store(Conv *c, const Object *o, FILE *out);

/* Whether an ExternalSecret's data may hold key: one of its data[].secretKey, or anything
 * when it has a dataFrom (known only at run time). */
bool eso_data_may_have(const Object *o, const char *key);

/* eso-template.c: an ESO (Go, engine v2) template in ours, or why not. */
int eso_convert_template(const char *t, const Object *o, char **ret, char **ret_why);
