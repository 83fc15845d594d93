/* SPDX-License-Identifier: MIT */
#pragma once

/* What manager.c and manager-reload.c share: the manager's state, and the operations a
 * reload applies to it. Not for other modules (they use core/manager.h). */

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "core/command.h"
#include "core/manager.h"
#include "core/monitor.h"
#include "kube/kube-token.h"
#include "sinks/sink.h"
#include "stores/store.h"
#include "util/atomic-file.h"
#include "util/http.h"

/* Kubernetes' limit on a Secret, and our cap on any one secret's data. */
#define SECRET_DATA_BYTES_MAX (1024U * 1024U)
#define TIMER_ACCURACY_USEC (1 * USEC_PER_SEC)
#define STATUS_DELAY_USEC (200 * USEC_PER_MSEC)
#define SYNCS_PER_REQUEST_SLOT 4

typedef struct SecretState SecretState;

/* One remote key (and version) a sync reads; several data entries may share it. */
typedef struct Slot {
        SecretState *state;
        char *key;
        char *version_wanted;
        SecBuf *value;
        char *version;
        int error;
        char *message;
} Slot;

typedef struct PendingCommand {
        Manager *m;
        Command *cmd;
        char *secret;
        char *target;
        char *program;
        struct PendingCommand *prev, *next;
} PendingCommand;

struct SecretState {
        Manager *m;
        const SecretConfig *cfg; /* NULL once removed from the configuration */
        sd_event_source *timer;
        Slot *slots;
        size_t n_slots;
        unsigned outstanding;
        unsigned failures;
        uint64_t failed_at; /* CLOCK_MONOTONIC of the last failure, for a reload's new backoff */
        unsigned gen;      /* bumped when cfg or its store changes */
        unsigned sync_gen; /* gen the sync in flight started with */
        int status;        /* 1: not attempted yet, 0: synced, -1: failing */
        bool syncing;
        bool resync;
        bool queued;
        unsigned writes; /* a sync's target writes in flight */
        bool writes_ok;
        bool writes_cancelled;
        SecretState *queue_next;
        SecretState *retired_next;
};

/* An on_change command waiting for the directory fsyncs of its burst. */
typedef struct QueuedCommand {
        char **argv;
        char *secret;
        char *target;
        uint64_t timeout_usec;
        struct QueuedCommand *next;
} QueuedCommand;

struct Manager {
        sd_event *event;
        Config *config;
        char *config_path;
        bool once;
        int cli_log_level;
        StoreContext store_ctx;
        HttpContext *http;
        KubeTokens *kube_tokens; /* service-account tokens for the stores started last */

        SecretState **states; /* parallel to config->secrets */
        size_t n_states;
        SecretState *retired; /* removed on reload while a sync was in flight */

        /* Syncs in flight are bounded (SYNCS_PER_REQUEST_SLOT x max_concurrent_requests):
         * the rest wait in a FIFO, so 10,000 secrets due at once do not hold 10,000 fetches'
         * worth of memory. */
        unsigned syncs_running;
        SecretState *queue_head, **queue_tail;
        sd_event_source *pump_source;

        PendingCommand *commands;
        /* Files written since the last flush: their directories still need an fsync, and
         * their on_change commands wait for it. Flushed at idle priority, so a burst of
         * writes shares one fsync per directory. */
        AtomicSyncBatch sync_batch;
        QueuedCommand *queued, **queued_tail;
        sd_event_source *flush_source;
        unsigned first_round_pending;
        unsigned n_synced, n_failing;
        bool ready;
        bool stopping;
        bool any_failed;
        bool notify;
        sd_event_source *status_timer;

        Monitor *monitor; /* status, control socket, metrics; NULL with --once */
        SinkContext sink_ctx;
        /* Parallel to sink_vtables: each made on first use; NULL until then, or while it
         * cannot be made. */
        void **sinks;
        unsigned sinks_stopping;
        bool sinks_stop_started;
};

void manager_status_send(Manager *m, const char *extra);
void manager_set_status(SecretState *st, int status);
void manager_log_level_apply(Manager *m);
int manager_start_stores(Manager *m, Config *c);
SecretState *manager_state_free(SecretState *st);
void manager_schedule_in(SecretState *st, uint64_t delay);
void manager_unschedule(SecretState *st);
void manager_queue_remove(Manager *m, SecretState *st);
void manager_secret_sync(SecretState *st);
void manager_first_round_check(Manager *m);

void manager_maybe_exit(Manager *m);

/* manager-commands.c */
void manager_queue_on_change(Manager *m, const char *secret, const char *target, char *const *argv,
                             uint64_t timeout_usec);
/* The directory fsyncs, then the commands waiting for them, at idle priority. */
void manager_flush_soon(Manager *m);
void manager_commands_free(Manager *m);

/* manager-reload.c */
int manager_on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata);
