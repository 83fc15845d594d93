/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "util/secbuf.h"

/* The data of one secret after a fetch: key -> value, keys sorted, values in wiped memory.
 * Keys are not secret (they are names like "password"); values are. */

#define SECRET_DATA_KEYS_MAX 1024U

typedef struct SecretEntry {
        char *key;
        SecBuf *value;
} SecretEntry;

typedef struct SecretData {
        SecretEntry *entries;
        size_t n;
        size_t cap;
} SecretData;

SecretData *secret_data_new(void);
SecretData *secret_data_free(SecretData *d);
static inline void secret_data_freep(SecretData **d) {
        secret_data_free(*d);
}
#define _cleanup_secret_data_ __attribute__((cleanup(secret_data_freep)))

/* Takes ownership of value (also on failure). Replaces the value of an existing key.
 * Keeps entries sorted by key (strcmp order). */
int secret_data_set(SecretData *d, const char *key, SecBuf *value);
const SecBuf *secret_data_get(const SecretData *d, const char *key);
