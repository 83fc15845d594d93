/* SPDX-License-Identifier: MIT */
#include "core/log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-journal.h>

#include "util/escape.h"

static int max_level = LOG_INFO;
static bool use_journal = false;

static const struct {
        const char *action; /* NULL: no SECRETSYNC_ACTION field */
        const char *message_id;
} actions[_LOG_ACTION_MAX] = {
        [LOG_ACTION_NONE] = { NULL, NULL },
        [LOG_ACTION_FETCHED] = { "fetched", SD_MESSAGE_SECRETSYNC_FETCHED },
        [LOG_ACTION_WRITTEN] = { "written", SD_MESSAGE_SECRETSYNC_WRITTEN },
        [LOG_ACTION_UNCHANGED] = { "unchanged", SD_MESSAGE_SECRETSYNC_UNCHANGED },
        [LOG_ACTION_FAILED] = { "failed", SD_MESSAGE_SECRETSYNC_FAILED },
        [LOG_ACTION_DELETED] = { "deleted", SD_MESSAGE_SECRETSYNC_DELETED },
        [LOG_ACTION_AUTH_OK] = { "auth-ok", SD_MESSAGE_SECRETSYNC_AUTH_OK },
        [LOG_ACTION_AUTH_FAILED] = { "auth-failed", SD_MESSAGE_SECRETSYNC_AUTH_FAILED },
        [LOG_ACTION_RELOADED] = { "reloaded", SD_MESSAGE_SECRETSYNC_RELOADED },
        [LOG_ACTION_RELOAD_REJECTED] = { "reload-rejected", SD_MESSAGE_SECRETSYNC_RELOAD_REJECTED },
        [LOG_ACTION_COMMAND_RUN] = { "command-run", SD_MESSAGE_SECRETSYNC_COMMAND_RUN },
        [LOG_ACTION_COMMAND_FAILED] = { "command-failed", SD_MESSAGE_SECRETSYNC_COMMAND_FAILED },
        [LOG_ACTION_LEADER_ACQUIRED] = { "leader-acquired", SD_MESSAGE_SECRETSYNC_LEADER_ACQUIRED },
        [LOG_ACTION_LEADER_LOST] = { "leader-lost", SD_MESSAGE_SECRETSYNC_LEADER_LOST },
        [LOG_ACTION_STARTED] = { NULL, SD_MESSAGE_SECRETSYNC_STARTED },
        [LOG_ACTION_STOPPED] = { NULL, SD_MESSAGE_SECRETSYNC_STOPPED },
};

static bool stderr_is_journal(void) {
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;

        if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
                return false;
        if (fstat(STDERR_FILENO, &st) < 0)
                return false;
        return (unsigned long long) st.st_dev == dev && (unsigned long long) st.st_ino == ino;
}

/* sd_journal_send() quietly drops an entry when journald's socket is missing (a unit with
 * RootDirectory=, a container): write to stderr then, which still reaches the journal
 * through the stream systemd connected it to. */
static bool journal_socket_present(void) {
        struct stat st;
        return stat("/run/systemd/journal/socket", &st) >= 0 && S_ISSOCK(st.st_mode);
}

void log_setup(void) {
        use_journal = stderr_is_journal() && journal_socket_present();
}

static log_event_observer observer;
static void *observer_userdata;

void log_set_event_observer(log_event_observer fn, void *userdata) {
        observer = fn;
        observer_userdata = userdata;
}

void log_set_max_level(int level) {
        max_level = level;
}

const char *log_action_to_string(LogAction a) {
        if (a < 0 || a >= _LOG_ACTION_MAX)
                return NULL;
        return actions[a].action;
}

static const char *priority_name(int p) {
        static const char *const names[] = { "emerg", "alert", "crit", "error", "warning", "notice", "info", "debug" };
        return p >= 0 && p <= 7 ? names[p] : "info";
}

int log_event(int priority, const LogEvent *ev, const char *format, ...) {
        int ret = ev && ev->error ? -abs(ev->error) : 0;
        char raw[2048], msg[2048], field[1024];
        va_list ap;

        bool observed = observer && ev && ev->action != LOG_ACTION_NONE;
        if (priority > max_level && !observed)
                return ret;

        va_start(ap, format);
        vsnprintf(raw, sizeof(raw), format, ap);
        va_end(ap);
        /* Messages quote what came from outside (a store's error text, a remote key): no
         * line break may forge a second entry, no escape sequence reach a terminal. */
        escape_text(raw, msg, sizeof(msg));
        if (observed)
                observer(priority, ev, msg, observer_userdata);
        if (priority > max_level)
                return ret;

        if (use_journal) {
                /* sd_journal_send() takes a NULL-terminated list; build one with only the
                 * fields that apply. */
                struct iovec iov[12];
                char *f[12] = { 0 };
                size_t n = 0;

#define ADD(...)                                                                       \
        do {                                                                           \
                if (asprintf(&f[n], __VA_ARGS__) >= 0) {                               \
                        iov[n] = (struct iovec) { .iov_base = f[n], .iov_len = strlen(f[n]) }; \
                        n++;                                                           \
                }                                                                      \
        } while (0)
                ADD("MESSAGE=%s", msg);
                ADD("PRIORITY=%d", priority);
                ADD("SYSLOG_IDENTIFIER=secretsyncd");
                if (ev) {
                        if (actions[ev->action].message_id)
                                ADD("MESSAGE_ID=%s", actions[ev->action].message_id);
                        if (actions[ev->action].action)
                                ADD("SECRETSYNC_ACTION=%s", actions[ev->action].action);
                        if (ev->secret)
                                ADD("SECRETSYNC_SECRET=%s", escape_text(ev->secret, field, sizeof(field)));
                        if (ev->store)
                                ADD("SECRETSYNC_STORE=%s", escape_text(ev->store, field, sizeof(field)));
                        if (ev->target)
                                ADD("SECRETSYNC_TARGET=%s", escape_text(ev->target, field, sizeof(field)));
                        if (ev->remote_key)
                                ADD("SECRETSYNC_REMOTE_KEY=%s", escape_text(ev->remote_key, field, sizeof(field)));
                        if (ev->version)
                                ADD("SECRETSYNC_VERSION=%s", escape_text(ev->version, field, sizeof(field)));
                        if (ev->error)
                                ADD("ERRNO=%d", abs(ev->error));
                }
#undef ADD
                if (sd_journal_sendv(iov, (int) n) >= 0) {
                        for (size_t i = 0; i < n; i++)
                                free(f[i]);
                        return ret;
                }
                for (size_t i = 0; i < n; i++)
                        free(f[i]);
                /* journald gone: fall through to stderr, which systemd still reads */
        }

        fprintf(stderr, "secretsyncd[%s]: %s%s%s\n", priority_name(priority),
                ev && actions[ev->action].action ? actions[ev->action].action : "",
                ev && actions[ev->action].action ? ": " : "", msg);
        return ret;
}
