/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* `secretsyncctl convert-eso`: External Secrets Operator manifests (SecretStore,
 * ClusterSecretStore, ExternalSecret, ServiceAccount; external-secrets.io/v1 and v1beta1)
 * in, a secretsyncd.conf out. Everything that cannot be expressed is an error
 * "FILE:LINE: field: why"; nothing is dropped silently. */

typedef struct EsoInput {
        const char *name; /* shown in comments and errors ("<stdin>" for -) */
        const char *data;
        size_t size;
} EsoInput;

typedef struct EsoOptions {
        const char *namespace; /* for objects without metadata.namespace; NULL: an error */
        bool partial;          /* convert what can be, write the rest as comments, exit 0 */
} EsoOptions;

/* Writes the configuration to out (nothing when it fails) and the errors to err. Returns 0,
 * or 2 when something could not be converted. */
int convert_eso(const EsoInput *in, size_t n, const EsoOptions *o, FILE *out, FILE *err);
