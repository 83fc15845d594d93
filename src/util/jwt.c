/* SPDX-License-Identifier: MIT */
#include "util/jwt.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/base64.h"
#include "util/cleanup.h"

/* No passphrase prompt, ever: an encrypted key is an error. */
static int no_password(char *buf, int size, int rwflag, void *u) {
        return 0;
}

static int load_rsa_key(const SecBuf *pem, EVP_PKEY **ret) {
        BIO *bio = BIO_new_mem_buf(pem->data, (int) pem->len);
        if (!bio)
                return -ENOMEM;
        EVP_PKEY *k = PEM_read_bio_PrivateKey(bio, NULL, no_password, NULL);
        BIO_free(bio);
        if (!k)
                return -EINVAL;
        if (EVP_PKEY_base_id(k) != EVP_PKEY_RSA) {
                EVP_PKEY_free(k);
                return -EINVAL;
        }
        *ret = k;
        return 0;
}

int jwt_sign_rs256(const char *header, const SecBuf *claims, const SecBuf *key_pem, SecBuf **ret) {
        _cleanup_secbuf_ SecBuf *out = secbuf_new(1024);
        EVP_PKEY *key = NULL;
        EVP_MD_CTX *md = NULL;
        unsigned char *sig = NULL;
        size_t sig_len = 0;
        int r;

        if (!out)
                return -ENOMEM;
        r = load_rsa_key(key_pem, &key);
        if (r < 0)
                goto out;
        r = base64url_encode_append(out, header, strlen(header));
        if (r >= 0)
                r = secbuf_append_char(out, '.');
        if (r >= 0)
                r = base64url_encode_append(out, claims->data, claims->len);
        if (r < 0)
                goto out;
        md = EVP_MD_CTX_new();
        if (!md) {
                r = -ENOMEM;
                goto out;
        }
        if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
            EVP_DigestSign(md, NULL, &sig_len, out->data, out->len) != 1 || !(sig = malloc(sig_len)) ||
            EVP_DigestSign(md, sig, &sig_len, out->data, out->len) != 1) {
                r = sig ? -EINVAL : -ENOMEM;
                goto out;
        }
        r = secbuf_append_char(out, '.');
        if (r >= 0)
                r = base64url_encode_append(out, sig, sig_len);
        if (r >= 0)
                *ret = TAKE_PTR(out);
out:
        free(sig);
        EVP_MD_CTX_free(md);
        EVP_PKEY_free(key);
        return r;
}

int jwt_x5t_s256(const SecBuf *pem, char **ret) {
        unsigned char digest[32];
        unsigned char *der = NULL;
        BIO *bio = BIO_new_mem_buf(pem->data, (int) pem->len);
        X509 *x = NULL;
        int r = -ENOENT, n;

        if (!bio)
                return -ENOMEM;
        x = PEM_read_bio_X509(bio, NULL, no_password, NULL);
        if (x && (n = i2d_X509(x, &der)) > 0 && EVP_Digest(der, (size_t) n, digest, NULL, EVP_sha256(), NULL) == 1) {
                _cleanup_secbuf_ SecBuf *b = secbuf_new(48);
                r = b ? base64url_encode_append(b, digest, sizeof(digest)) : -ENOMEM;
                if (r >= 0)
                        r = (*ret = strdup(secbuf_str(b))) ? 0 : -ENOMEM;
        }
        OPENSSL_free(der);
        X509_free(x);
        BIO_free(bio);
        return r;
}

int jwt_new_id(char buf[static JWT_ID_LEN + 1]) {
        unsigned char u[16];
        if (RAND_bytes(u, sizeof(u)) != 1)
                return -EIO;
        u[6] = (u[6] & 0x0f) | 0x40;
        u[8] = (u[8] & 0x3f) | 0x80;
        snprintf(buf, JWT_ID_LEN + 1, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1],
                 u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
        return 0;
}
