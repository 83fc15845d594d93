/* SPDX-License-Identifier: MIT */
#pragma once

#include <syslog.h>

#include "util/cleanup.h"

/* Audit events. Each kind has a fixed MESSAGE_ID, documented in systemd/secretsyncd.catalog.
 * Keep the two in step. */
typedef enum LogAction {
        LOG_ACTION_NONE,
        LOG_ACTION_FETCHED,
        LOG_ACTION_WRITTEN,
        LOG_ACTION_UNCHANGED,
        LOG_ACTION_FAILED,
        LOG_ACTION_DELETED,
        LOG_ACTION_AUTH_OK,
        LOG_ACTION_AUTH_FAILED,
        LOG_ACTION_RELOADED,
        LOG_ACTION_RELOAD_REJECTED,
        LOG_ACTION_COMMAND_RUN,
        LOG_ACTION_COMMAND_FAILED,
        LOG_ACTION_LEADER_ACQUIRED,
        LOG_ACTION_LEADER_LOST,
        /* lifecycle: a MESSAGE_ID, but no SECRETSYNC_ACTION */
        LOG_ACTION_STARTED,
        LOG_ACTION_STOPPED,
        _LOG_ACTION_MAX,
} LogAction;

#define SD_MESSAGE_SECRETSYNC_FETCHED "4b90018454b14388a4dd4b0dc8812145"
#define SD_MESSAGE_SECRETSYNC_WRITTEN "1e9255c1cbb04d11b82373a6dcfa8afb"
#define SD_MESSAGE_SECRETSYNC_UNCHANGED "b0387a9a09794c2d8a3e2ad74ad04830"
#define SD_MESSAGE_SECRETSYNC_FAILED "b45ff796851a4868922389c08678129e"
#define SD_MESSAGE_SECRETSYNC_DELETED "243744da00864f48a1b40d800e0d7157"
#define SD_MESSAGE_SECRETSYNC_AUTH_OK "03e6371d8b274aad805055e76873ec96"
#define SD_MESSAGE_SECRETSYNC_AUTH_FAILED "7cb77181315c46e597d9ba5efd6f8901"
#define SD_MESSAGE_SECRETSYNC_RELOADED "e75064b4f6834088b92ccef9e28b54fc"
#define SD_MESSAGE_SECRETSYNC_RELOAD_REJECTED "cf19323e375d41019370069c55c576e3"
#define SD_MESSAGE_SECRETSYNC_COMMAND_RUN "7c23c4e472ba4b1b953305e8a9584564"
#define SD_MESSAGE_SECRETSYNC_COMMAND_FAILED "54ab0baccf68402bade9847308c2c407"
#define SD_MESSAGE_SECRETSYNC_LEADER_ACQUIRED "5cf345603c19411c8eda22f61afbcafc"
#define SD_MESSAGE_SECRETSYNC_LEADER_LOST "d6306b5fc2434856974d222379e8fc73"
#define SD_MESSAGE_SECRETSYNC_STARTED "c33e65ac5430432ba4a1d783f0cf2f9c"
#define SD_MESSAGE_SECRETSYNC_STOPPED "068063212be04885a82423c228923247"

typedef struct LogEvent {
        LogAction action;
        const char *secret;
        const char *store;
        const char *target;
        const char *remote_key;
        const char *version;
        int error; /* errno (positive or negative), 0 for none */
} LogEvent;

/* Decide between the journal (stderr is the stream systemd connected: JOURNAL_STREAM) and
 * human-readable lines on stderr. */
void log_setup(void);
void log_set_max_level(int level);
const char *log_action_to_string(LogAction a);

/* One event: one journal entry with the SECRETSYNC_* fields, or one line on stderr.
 * Never pass a secret value, token or key in any argument. Returns -abs(ev->error) if set,
 * so callers can `return log_event(...)`. */
int log_event(int priority, const LogEvent *ev, const char *format, ...) _printf_(3, 4);

/* One observer sees every event (LogEvent with an action), whatever the log level: what
 * secretsyncctl status and the metrics report is built from the same events as the journal. */
typedef void (*log_event_observer)(int priority, const LogEvent *ev, const char *message, void *userdata);
void log_set_event_observer(log_event_observer fn, void *userdata);

#define log_debug(...) log_event(LOG_DEBUG, NULL, __VA_ARGS__)
#define log_info(...) log_event(LOG_INFO, NULL, __VA_ARGS__)
#define log_notice(...) log_event(LOG_NOTICE, NULL, __VA_ARGS__)
#define log_warning(...) log_event(LOG_WARNING, NULL, __VA_ARGS__)
#define log_error(...) log_event(LOG_ERR, NULL, __VA_ARGS__)
