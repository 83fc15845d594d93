/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>

#include "core/config.h"
#include "util/secret-data.h"
#include "util/atomic-file.h"
#include "util/secbuf.h"

/* File targets. A sink knows nothing of stores: it gets a SecretData and a target.
 * Errors come back as -errno plus a message for the operator (no secret value in it);
 * the manager logs them with the secret and target named. */

/* The bytes an env, json, raw or template target gets. */
int sink_file_render(const FileTarget *t, const SecretData *d, SecBuf **ret, char **ret_error);

/* Publish the target: atomically, with owner/group/mode in place before the content is
 * visible, and only if the content differs from what is there (*ret_changed tells). A
 * failure leaves what was there untouched. With a batch, the directory's fsync is left to
 * atomic_sync_batch_flush() (see atomic-file.h). */
int sink_file_write(const FileTarget *t, const SecretData *d, AtomicSyncBatch *batch, bool *ret_changed,
                    char **ret_error);

/* Configuration-time checks of a target, given the keys known from `data` (keys_complete
 * is false when data_from may add more at run time): env names, raw key, template keys. */
int sink_file_check(const FileTarget *t, char *const *keys, bool keys_complete, char **ret_error);
