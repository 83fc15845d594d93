/* SPDX-License-Identifier: MIT */
#include "util/secret-data.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/cleanup.h"

SecretData *secret_data_new(void) {
        return calloc(1, sizeof(SecretData));
}

SecretData *secret_data_free(SecretData *d) {
        if (!d)
                return NULL;
        for (size_t i = 0; i < d->n; i++) {
                free(d->entries[i].key);
                secbuf_free(d->entries[i].value);
        }
        free(d->entries);
        free(d);
        return NULL;
}

static size_t find(const SecretData *d, const char *key, bool *found) {
        size_t lo = 0, hi = d->n;
        while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                int c = strcmp(d->entries[mid].key, key);
                if (c == 0) {
                        *found = true;
                        return mid;
                }
                if (c < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        *found = false;
        return lo;
}

int secret_data_set(SecretData *d, const char *key, SecBuf *value) {
        bool found;
        size_t i = find(d, key, &found);

        if (found) {
                secbuf_free(d->entries[i].value);
                d->entries[i].value = value;
                return 0;
        }
        if (d->n >= SECRET_DATA_KEYS_MAX) {
                secbuf_free(value);
                return -E2BIG;
        }
        if (d->n == d->cap) {
                size_t cap = d->cap ? d->cap * 2 : 4;
                SecretEntry *n = reallocarray(d->entries, cap, sizeof(SecretEntry));
                if (!n) {
                        secbuf_free(value);
                        return -ENOMEM;
                }
                d->entries = n;
                d->cap = cap;
        }
        char *k = strdup(key);
        if (!k) {
                secbuf_free(value);
                return -ENOMEM;
        }
        memmove(d->entries + i + 1, d->entries + i, (d->n - i) * sizeof(SecretEntry));
        d->entries[i] = (SecretEntry) { .key = k, .value = value };
        d->n++;
        return 0;
}

const SecBuf *secret_data_get(const SecretData *d, const char *key) {
        bool found;
        size_t i = find(d, key, &found);
        return found ? d->entries[i].value : NULL;
}

