/* SPDX-License-Identifier: MIT */
/* on_change commands: queued when their target is written, run once the fsyncs of the
 * directories of that burst of writes are done (one fsync per directory for a burst), with
 * their timeout; the daemon waits for them before it exits. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/manager-internal.h"
#include "util/cleanup.h"
#include "util/list.h"

/* ------------------------------------------------------------- on_change ---- */

static void pending_command_free(PendingCommand *pc) {
        Manager *m = pc->m;
        LIST_REMOVE(m->commands, pc);
        command_free(pc->cmd);
        free(pc->secret);
        free(pc->target);
        free(pc->program);
        free(pc);
}

static void on_command_done(Command *c, int status, int sig, void *userdata) {
        PendingCommand *pc = userdata;
        Manager *m = pc->m;
        LogEvent ev = { .secret = pc->secret, .target = pc->target };

        if (status == 0) {
                ev.action = LOG_ACTION_COMMAND_RUN;
                log_event(LOG_INFO, &ev, "secret '%s': on_change command %s for %s succeeded", pc->secret,
                          pc->program, pc->target);
        } else {
                ev.action = LOG_ACTION_COMMAND_FAILED;
                if (status == -ETIME) {
                        ev.error = ETIME;
                        log_event(LOG_ERR, &ev, "secret '%s': on_change command %s for %s timed out and was killed",
                                  pc->secret, pc->program, pc->target);
                } else if (sig)
                        log_event(LOG_ERR, &ev, "secret '%s': on_change command %s for %s was killed by signal %d",
                                  pc->secret, pc->program, pc->target, sig);
                else
                        log_event(LOG_ERR, &ev, "secret '%s': on_change command %s for %s exited with status %d",
                                  pc->secret, pc->program, pc->target, status);
        }
        pending_command_free(pc);
        manager_maybe_exit(m);
}

static void run_command(Manager *m, QueuedCommand *q) {
        PendingCommand *pc = calloc(1, sizeof(PendingCommand));
        LogEvent ev = { .action = LOG_ACTION_COMMAND_FAILED, .secret = q->secret, .target = q->target };
        int r = -ENOMEM;

        if (pc && (pc->program = strdup(q->argv[0]))) {
                pc->m = m;
                r = command_run(m->event, q->argv, q->secret, q->target, q->timeout_usec, on_command_done, pc,
                                &pc->cmd);
        }
        if (r < 0) {
                ev.error = r;
                log_event(LOG_ERR, &ev, "secret '%s': cannot start on_change command %s for %s: %s", q->secret,
                          q->argv[0], q->target, strerror(-r));
                if (pc)
                        free(pc->program);
                free(pc);
                return;
        }
        pc->secret = TAKE_PTR(q->secret);
        pc->target = TAKE_PTR(q->target);
        LIST_PREPEND(m->commands, pc);
}

static void queued_command_free(QueuedCommand *q) {
        strv_free(q->argv);
        free(q->secret);
        free(q->target);
        free(q);
}

static int on_flush(sd_event_source *s, void *userdata) {
        Manager *m = userdata;
        (void) atomic_sync_batch_flush(&m->sync_batch);
        while (m->queued) {
                QueuedCommand *q = m->queued;
                m->queued = q->next;
                /* Also while stopping: the file changed, its service must hear of it. */
                run_command(m, q);
                queued_command_free(q);
        }
        m->queued_tail = &m->queued;
        manager_maybe_exit(m);
        return 0;
}

void manager_flush_soon(Manager *m) {
        if (!m->flush_source) {
                if (sd_event_add_defer(m->event, &m->flush_source, on_flush, m) < 0) {
                        on_flush(NULL, m);
                        return;
                }
                sd_event_source_set_priority(m->flush_source, SD_EVENT_PRIORITY_IDLE);
        }
        sd_event_source_set_enabled(m->flush_source, SD_EVENT_ONESHOT);
}

void manager_queue_on_change(Manager *m, const char *secret, const char *target, char *const *argv,
                            uint64_t timeout_usec) {
        QueuedCommand *q = calloc(1, sizeof(QueuedCommand));
        size_t n = strv_length((char **) argv);
        if (q && (q->argv = calloc(n + 1, sizeof(char *))) && (q->secret = strdup(secret)) &&
            (q->target = strdup(target))) {
                size_t i;
                for (i = 0; i < n && (q->argv[i] = strdup(argv[i])); i++)
                        ;
                if (i == n) {
                        q->timeout_usec = timeout_usec;
                        *m->queued_tail = q;
                        m->queued_tail = &q->next;
                        return;
                }
        }
        if (q)
                queued_command_free(q);
        log_event(LOG_ERR, &(LogEvent) { .action = LOG_ACTION_COMMAND_FAILED, .secret = secret, .target = target,
                                         .error = ENOMEM },
                  "secret '%s': cannot run on_change for %s: out of memory", secret, target);
}

void manager_commands_free(Manager *m) {
        while (m->commands)
                pending_command_free(m->commands);
        (void) atomic_sync_batch_flush(&m->sync_batch);
        while (m->queued) {
                QueuedCommand *q = m->queued;
                m->queued = q->next;
                queued_command_free(q);
        }
}
