/* SPDX-License-Identifier: MIT */
#include "core/monitor.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/control.h"
#include "core/log.h"
#include "core/manager.h"
#include "core/metrics.h"
#include "core/state.h"
#include "sinks/kube-secret.h"

struct Monitor {
        sd_event *event;
        Manager *manager;
        HttpContext *http;
        char *state_dir;
        StateTable *state;
        Metrics *metrics;
        Control *control;
        sd_event_source *save_timer;
        bool save_failed;
};

static void save(Monitor *x) {
        _cleanup_free_ char *err = NULL;
        if (!x->state->dirty)
                return;
        int r = state_save(x->state, x->state_dir, &err);
        if (r < 0 && !x->save_failed)
                log_warning("cannot save the status in %s: %s", x->state_dir, err ? err : strerror(-r));
        x->save_failed = r < 0;
}

static int on_save_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        save(userdata);
        return 0;
}

static void changed(Monitor *x) {
        int enabled = SD_EVENT_OFF;
        metrics_changed(x->metrics);
        if (!x->save_timer) {
                (void) sd_event_add_time_relative(x->event, &x->save_timer, CLOCK_MONOTONIC, MONITOR_SAVE_DELAY_USEC,
                                                  1000000U, on_save_timer, x);
                return;
        }
        if (sd_event_source_get_enabled(x->save_timer, &enabled) >= 0 && enabled == SD_EVENT_OFF) {
                (void) sd_event_source_set_time_relative(x->save_timer, MONITOR_SAVE_DELAY_USEC);
                (void) sd_event_source_set_enabled(x->save_timer, SD_EVENT_ONESHOT);
        }
}

static void on_log_event(int priority, const LogEvent *ev, const char *message, void *userdata) {
        Monitor *x = userdata;
        state_note_event(x->state, ev, message);
        if (ev->action == LOG_ACTION_LEADER_ACQUIRED || ev->action == LOG_ACTION_LEADER_LOST ||
            ev->action == LOG_ACTION_RELOADED || ev->action == LOG_ACTION_RELOAD_REJECTED)
                metrics_changed(x->metrics);
}

static void on_request(const char *store, const char *type, long status, uint64_t usec, void *userdata) {
        Monitor *x = userdata;
        metrics_note_request(x->metrics, store, type, status, usec);
}

static bool secret_configured(const char *name, void *userdata) {
        size_t i;
        return manager_find_secret(userdata, name, &i) >= 0;
}

/* runtime_dir and state_dir: created 0700 where missing (systemd makes them for the unit). */
static int mkdir_p(const char *dir) {
        _cleanup_free_ char *p = strdup(dir);
        if (!p)
                return -ENOMEM;
        for (char *s = strchr(p + 1, '/');; s = strchr(s + 1, '/')) {
                if (s)
                        *s = 0;
                if (mkdir(p, 0700) < 0 && errno != EEXIST)
                        return -errno;
                if (!s)
                        return 0;
                *s = '/';
        }
}

int monitor_new(sd_event *e, Manager *m, const Config *c, HttpContext *http, Monitor **ret) {
        _cleanup_free_ char *warning = NULL, *error = NULL;
        Monitor *x = calloc(1, sizeof(Monitor));
        int r;

        if (!x)
                return -ENOMEM;
        x->event = sd_event_ref(e);
        x->manager = m;
        x->http = http;
        if (!(x->state_dir = strdup(c->daemon.state_dir)) || state_table_new(&x->state) < 0 ||
            metrics_new(e, m, x->state, &x->metrics) < 0) {
                monitor_free(x);
                return -ENOMEM;
        }
        r = mkdir_p(c->daemon.runtime_dir);
        if (r < 0)
                log_error("cannot create the runtime directory %s: %s", c->daemon.runtime_dir, strerror(-r));
        r = control_new(e, m, x->state, c->daemon.runtime_dir, &x->control, &error);
        if (r == -EADDRINUSE) {
                /* Another instance owns the socket, and the status in state_dir with it. */
                log_warning("control socket: %s; this instance has no control socket and keeps no status",
                            error ? error : strerror(-r));
                *ret = x;
                return 0;
        }
        if (r < 0)
                log_error("control socket: %s; secretsyncctl cannot reach this daemon",
                          error ? error : strerror(-r));
        r = mkdir_p(x->state_dir);
        if (r < 0)
                log_warning("cannot create the state directory %s: %s", x->state_dir, strerror(-r));
        if (state_load(x->state, x->state_dir, &warning) < 0 && warning)
                log_warning("%s", warning);
        state_prune(x->state, secret_configured, m);
        x->state->dirty = false;
        log_set_event_observer(on_log_event, x);
        http_context_set_observer(http, on_request, x);
        (void) metrics_set_path(x->metrics, c->daemon.metrics_file);
        *ret = x;
        return 0;
}

Monitor *monitor_free(Monitor *x) {
        if (!x)
                return NULL;
        x->control = control_free(x->control);
        if (x->save_timer || x->state->dirty) {
                log_set_event_observer(NULL, NULL);
                save(x);
        }
        log_set_event_observer(NULL, NULL);
        if (x->http)
                http_context_set_observer(x->http, NULL, NULL);
        metrics_flush(x->metrics);
        sd_event_source_disable_unref(x->save_timer);
        metrics_free(x->metrics);
        state_table_free(x->state);
        sd_event_unref(x->event);
        free(x->state_dir);
        free(x);
        return NULL;
}

/* Hashing loads OpenSSL: only a daemon (which keeps status) pays for it, not --once. */
void monitor_secret_data(Monitor *x, const char *name, const SecretData *d) {
        char hash[KUBE_DATA_HASH_LEN + 1];
        if (x && kube_secret_data_hash(d, hash) >= 0)
                state_note_data(x->state, name, hash);
}

void monitor_secret_done(Monitor *x, const char *name, bool ok) {
        if (!x)
                return;
        state_note_sync(x->state, name, ok);
        control_secret_done(x->control, name, ok);
        changed(x);
}

void monitor_reloaded(Monitor *x, const Config *c) {
        if (!x)
                return;
        state_prune(x->state, secret_configured, x->manager);
        control_prune(x->control, secret_configured, x->manager);
        (void) metrics_set_path(x->metrics, c->daemon.metrics_file);
        changed(x);
}
