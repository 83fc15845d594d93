/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"

typedef struct Manager Manager;

typedef struct ManagerOptions {
        const char *config_path;
        bool once;          /* sync every secret once, then exit */
        int log_level;      /* -1: from the configuration */
} ManagerOptions;

/* Takes ownership of config. */
int manager_new(const ManagerOptions *opts, Config *config, Manager **ret);
Manager *manager_free(Manager *m);
/* Reads the configuration file again and swaps it in if valid (SIGHUP). On rejection
 * returns < 0 and, with ret_errors, the "FILE:LINE: message" lines. */
int manager_reload(Manager *m, char ***ret_errors);

/* What secretsyncctl and the metrics see of the secrets, by index (0 .. n-1, the
 * configuration's order; valid until the next reload). */
typedef struct ManagerSecretView {
        const SecretConfig *cfg;
        bool syncing;       /* a sync is in flight or waiting for a place */
        uint64_t next_usec; /* CLOCK_REALTIME µs of the next sync; 0: none planned */
} ManagerSecretView;
size_t manager_n_secrets(Manager *m);
void manager_secret_view(Manager *m, size_t i, ManagerSecretView *ret);
int manager_find_secret(Manager *m, const char *name, size_t *ret_index);
/* Sync it now (after the sync in flight, if any), as SIGUSR1 does for all. */
void manager_refresh(Manager *m, size_t i);

/* Runs the event loop. Returns the process exit code (0, or 1 if --once saw a failure). */
int manager_run(Manager *m);
