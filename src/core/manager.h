/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>

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
/* Runs the event loop. Returns the process exit code (0, or 1 if --once saw a failure). */
int manager_run(Manager *m);
