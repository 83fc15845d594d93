/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <systemd/sd-event.h>

#include "core/config.h"
#include "util/http.h"
#include "util/secret-data.h"

typedef struct Manager Manager;
typedef struct Monitor Monitor;

/* What operators see of the running daemon, beside the journal: the status records (kept
 * in state_dir), the control socket (secretsyncctl) and the metrics file. The manager
 * tells it when a sync ends and when the configuration changed; everything else it
 * learns from the daemon's log events and the HTTP requests of the stores. */
#define MONITOR_SAVE_DELAY_USEC (5U * 1000U * 1000U)

int monitor_new(sd_event *e, Manager *m, const Config *c, HttpContext *http, Monitor **ret);
/* Saves the status, writes the metrics a last time, removes the socket. */
Monitor *monitor_free(Monitor *x);
/* The data a sync assembled (its hash is kept if the sync succeeds), and the sync's end. */
void monitor_secret_data(Monitor *x, const char *name, const SecretData *d);
void monitor_secret_done(Monitor *x, const char *name, bool ok);
/* A new configuration is in place (secrets removed, metrics_file changed). */
void monitor_reloaded(Monitor *x, const Config *c);
