/* SPDX-License-Identifier: MIT */
#include "core/secret.h"

#include <errno.h>
#include <openssl/evp.h>
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

bool secret_data_equal(const SecretData *a, const SecretData *b) {
        if (!a || !b)
                return a == b;
        if (a->n != b->n)
                return false;
        for (size_t i = 0; i < a->n; i++)
                if (!streq(a->entries[i].key, b->entries[i].key) ||
                    !secbuf_equal(a->entries[i].value, b->entries[i].value))
                        return false;
        return true;
}

void secret_data_hash(const SecretData *d, char ret_hex[65]) {
        unsigned char md[32];
        unsigned int mdlen = 0;
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();

        ret_hex[0] = 0;
        if (!ctx)
                return;
        EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
        for (size_t i = 0; d && i < d->n; i++) {
                unsigned char len[8];
                uint64_t l = d->entries[i].value->len;
                for (int k = 7; k >= 0; k--, l >>= 8)
                        len[k] = (unsigned char) (l & 0xff);
                EVP_DigestUpdate(ctx, d->entries[i].key, strlen(d->entries[i].key) + 1);
                EVP_DigestUpdate(ctx, len, sizeof(len));
                EVP_DigestUpdate(ctx, d->entries[i].value->data, d->entries[i].value->len);
        }
        EVP_DigestFinal_ex(ctx, md, &mdlen);
        EVP_MD_CTX_free(ctx);
        for (unsigned i = 0; i < mdlen; i++)
                sprintf(ret_hex + 2 * i, "%02x", md[i]);
        ret_hex[2 * mdlen] = 0;
}
