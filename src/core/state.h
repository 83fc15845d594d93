/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "core/log.h"
#include "util/textbuf.h"

/* What secretsyncctl status and the metrics report of each secret, beyond what the
 * configuration says: built from the daemon's own events (the same ones the journal gets),
 * and kept in state_dir so that it survives a restart. */

#define STATE_FILE_NAME "status.json"
#define STATE_FILE_MAX (64U * 1024U * 1024U)
#define STATE_EVENTS_MAX 512U    /* recent events, across all secrets */
#define STATE_TARGETS_MAX 64U    /* per secret: files, the Kubernetes Secret, restarts */
#define STATE_KEYS_MAX 256U      /* per secret: remote keys with their versions */
#define STATE_MESSAGE_MAX 512U

typedef enum TargetState {
        TARGET_PENDING,
        TARGET_WRITTEN,
        TARGET_UNCHANGED,
        TARGET_FAILED,
        TARGET_DELETED,
        _TARGET_STATE_MAX,
} TargetState;

typedef enum TargetKind {
        TARGET_KIND_FILE,
        TARGET_KIND_KUBERNETES,
        TARGET_KIND_RESTART,
} TargetKind;
TargetKind target_kind(const char *target);

typedef struct TargetRecord {
        char *target;  /* a file path, or namespace/name */
        char *message; /* the failure, if failed */
        uint64_t time; /* CLOCK_REALTIME, µs */
        TargetState state;
} TargetRecord;

typedef struct KeyRecord {
        char *key;
        char *version; /* NULL: the store has no versions */
} KeyRecord;

typedef struct SecretRecord {
        char *name;
        int status;                /* 1: no sync finished yet, 0: the last one succeeded, -1: failed */
        uint64_t last_success;     /* CLOCK_REALTIME µs; 0: never */
        uint64_t last_attempt;
        char *last_error;          /* of the last failed sync; NULL after a success */
        char data_hash[65];        /* sha256 of the data last synced (as a Secret's data-hash), or "" */
        char pending_hash[65];     /* of the data of the sync in progress */
        TargetRecord *targets;
        KeyRecord *keys;
        uint16_t n_targets, n_keys;
        uint64_t syncs_ok, syncs_failed, writes_file, writes_kube; /* since start */
} SecretRecord;

typedef struct EventRecord {
        uint64_t time;
        char *secret;
        char *text; /* "action: message" */
} EventRecord;

typedef struct StateTable {
        SecretRecord **slots; /* open addressing by name */
        size_t n_slots, n;
        EventRecord events[STATE_EVENTS_MAX];
        unsigned events_next;
        bool leader;
        bool reload_ok;
        bool dirty;
} StateTable;

int state_table_new(StateTable **ret);
StateTable *state_table_free(StateTable *t);

SecretRecord *state_find(StateTable *t, const char *name);
/* Finds, or adds an empty record. NULL only when out of memory. */
SecretRecord *state_get(StateTable *t, const char *name);
/* Drop records of secrets for which keep(name) is false (removed from the configuration). */
void state_prune(StateTable *t, bool (*keep)(const char *name, void *userdata), void *userdata);

/* An event the daemon logged (see log_set_event_observer()). */
void state_note_event(StateTable *t, const LogEvent *ev, const char *message);
void state_note_data(StateTable *t, const char *name, const char *data_hash);
void state_note_sync(StateTable *t, const char *name, bool ok);

/* The events of one secret, oldest first, through fn. */
void state_events_foreach(StateTable *t, const char *secret, void (*fn)(const EventRecord *e, void *userdata),
                          void *userdata);
const char *target_state_to_string(TargetState s);

/* The state file in dir: loaded at start (a corrupt or foreign file is ignored, with the
 * reason in *ret_warning), saved atomically (mode 0600). */
int state_load(StateTable *t, const char *dir, char **ret_warning);
int state_save(StateTable *t, const char *dir, char **ret_error);
