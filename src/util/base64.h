/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "util/secbuf.h"

/* Standard base64 (RFC 4648 section 4), as Kubernetes Secret data, kubeconfig's *-data
 * fields and AWS SecretBinary use it. Both work in wiped memory: the bytes may be secret. */

/* Append p in base64 with padding. */
int base64_encode_append(SecBuf *b, const void *p, size_t len);

/* Append p in base64url without padding (RFC 4648 section 5; RFC 7515's encoding of a
 * JWT's parts). */
int base64url_encode_append(SecBuf *b, const void *p, size_t len);

/* Decode s (len bytes); padding optional, and with ignore_space, white space anywhere is
 * skipped (PEM bodies, YAML folded scalars). -EINVAL for any other character or a bad
 * length. */
int base64_decode(const char *s, size_t len, bool ignore_space, SecBuf **ret);
