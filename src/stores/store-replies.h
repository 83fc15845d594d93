/* SPDX-License-Identifier: MIT */
#pragma once

#include <json-c/json.h>

#include "util/secbuf.h"

/* What each store reads out of its server's answer to a secret read. Pure functions (no
 * I/O, no store state), each defined beside the rest of its store, so that tests/fuzz can
 * feed them anything a server might send. On success the value (wiped memory) and the
 * version (NULL when the answer names none); on failure -errno and *ret_why, what is wrong
 * with the answer (-EFBIG: over the store's size limit). */

/* Vault's KV read: {"data": {...}} (v1) or {"data": {"data": {...}, "metadata": {"version"}}}
 * (v2); the value is the secret's JSON object. -ENOMSG: a v2 answer without data.data (the
 * mount is likely KV version 1). */
int vault_reply_secret(const SecBuf *body, int kv_version, SecBuf **ret_value, char **ret_version,
                       const char **ret_why);

/* AWS GetSecretValue's answer, or one SecretValues[] entry of BatchGetSecretValue's:
 * SecretString as is, SecretBinary decoded. *ret_version points into o. */
int aws_reply_secret(json_object *o, SecBuf **ret_value, const char **ret_version, const char **ret_why);

/* Key Vault's secret bundle: {"value": "...", "id": ".../secrets/{name}/{version}"}. */
int azure_reply_secret(const SecBuf *body, SecBuf **ret_value, char **ret_version, const char **ret_why);

/* Secret Manager's access answer: {"name": ".../versions/3", "payload": {"data": "<base64>",
 * "dataCrc32c": "<decimal>"}}, the checksum verified. */
int gcp_reply_secret(const SecBuf *body, SecBuf **ret_value, char **ret_version, const char **ret_why);
