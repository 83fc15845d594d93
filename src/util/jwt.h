/* SPDX-License-Identifier: MIT */
#pragma once

#include "util/secbuf.h"

/* JSON Web Tokens that the daemon signs itself (RFC 7519, RS256 per RFC 7518): Azure's client
 * assertion for a certificate credential, Google's service-account assertion. OpenSSL signs;
 * the key never leaves wiped memory and OpenSSL's own (cleared on free). */

#define JWT_ID_LEN 36 /* a random UUID, as the "jti" claim */

/* base64url(header) "." base64url(claims) "." base64url(RSASSA-PKCS1-v1_5 SHA-256 signature),
 * signed with the RSA private key in key_pem (PEM, PKCS#8 or PKCS#1; other blocks in it, such
 * as the certificate, are skipped). -EINVAL: no unencrypted RSA private key in it. */
int jwt_sign_rs256(const char *header, const SecBuf *claims, const SecBuf *key_pem, SecBuf **ret);

/* The "x5t#S256" header value: base64url of the SHA-256 of the first certificate's DER in pem.
 * -ENOENT: no certificate in it. */
int jwt_x5t_s256(const SecBuf *pem, char **ret);

/* A random version 4 UUID, lower case, into buf (JWT_ID_LEN + 1 bytes). */
int jwt_new_id(char buf[static JWT_ID_LEN + 1]);
