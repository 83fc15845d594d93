/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "core/state.h"

typedef struct Manager Manager;
typedef struct Metrics Metrics;

/* The Prometheus text file for node_exporter's textfile collector (daemon.metrics_file):
 * replaced atomically, mode 0644, no secret value in it, rewritten after syncs but at most
 * once every METRICS_INTERVAL_USEC. */
#define METRICS_INTERVAL_USEC (10U * 1000U * 1000U)
#define METRICS_FILE_MAX (64U * 1024U * 1024U)
#define METRICS_STORES_MAX 1024U /* store x code series kept; more are counted as code "other" */

int metrics_new(sd_event *e, Manager *m, StateTable *state, Metrics **ret);
Metrics *metrics_free(Metrics *x);
/* NULL: no metrics file (the old one, if any, is left alone). */
int metrics_set_path(Metrics *x, const char *path);
/* Something changed: write the file soon (now, or METRICS_INTERVAL_USEC after the last write). */
void metrics_changed(Metrics *x);
/* Write it now (on the way out). */
void metrics_flush(Metrics *x);
/* An HTTP request of a store finished (status 0: no answer). */
void metrics_note_request(Metrics *x, const char *store, const char *type, long status, uint64_t duration_usec);
/* The text itself, for tests and the file. */
int metrics_render(Metrics *x, TextBuf *b);
