/* SPDX-License-Identifier: MIT */
/* The manager: the only module that knows both stores and sinks. One sd-event loop drives
 * per-secret timers, store fetches, file writes, on_change commands, signals and sd_notify.
 * Reloading is manager-reload.c's, on_change commands manager-commands.c's; the state they
 * share is in manager-internal.h. */
#include "core/manager-internal.h"

#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>
#include <time.h>

#include "core/command.h"
#include "core/log.h"
#include "core/monitor.h"
#include "core/schedule.h"
#include "kube/kube-token.h"
#include "util/secret-data.h"
#include "sinks/sink.h"
#include "stores/store.h"
#include "util/duration.h"
#include "util/http.h"
#include "util/json.h"
#include "util/list.h"

static void secret_finish(SecretState *st);
static void secret_done(SecretState *st, bool ok);

/* ---------------------------------------------------------------- status ---- */

void manager_status_send(Manager *m, const char *extra) {
        if (!m->notify)
                return;
        char b[256];
        snprintf(b, sizeof(b), "%sSTATUS=%zu secrets: %u synced, %u failing%s", extra ? extra : "", m->n_states,
                 m->n_synced, m->n_failing,
                 m->first_round_pending > 0 ? ", first round in progress" : "");
        sd_notify(false, b);
}

static int on_status_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        manager_status_send(userdata, NULL);
        return 0;
}

static void status_changed(Manager *m) {
        if (!m->notify || m->stopping)
                return;
        /* Coalesce: one STATUS= per STATUS_DELAY_USEC, and no timer at all while idle. */
        if (!m->status_timer) {
                if (sd_event_add_time_relative(m->event, &m->status_timer, CLOCK_MONOTONIC, STATUS_DELAY_USEC,
                                               STATUS_DELAY_USEC, on_status_timer, m) < 0)
                        return;
                return;
        }
        int enabled = SD_EVENT_OFF;
        sd_event_source_get_enabled(m->status_timer, &enabled);
        if (enabled == SD_EVENT_OFF) {
                sd_event_source_set_time_relative(m->status_timer, STATUS_DELAY_USEC);
                sd_event_source_set_enabled(m->status_timer, SD_EVENT_ONESHOT);
        }
}

void manager_set_status(SecretState *st, int status) {
        Manager *m = st->m;
        if (st->status == status)
                return;
        if (st->status == 0)
                m->n_synced--;
        else if (st->status < 0)
                m->n_failing--;
        if (status == 0)
                m->n_synced++;
        else if (status < 0)
                m->n_failing++;
        st->status = status;
        status_changed(m);
}

/* ----------------------------------------------------------------- slots ---- */

static void slots_free(SecretState *st) {
        for (size_t i = 0; i < st->n_slots; i++) {
                free(st->slots[i].key);
                free(st->slots[i].version_wanted);
                secbuf_free(st->slots[i].value);
                free(st->slots[i].version);
                free(st->slots[i].message);
        }
        free(st->slots);
        st->slots = NULL;
        st->n_slots = 0;
}

static Slot *slot_find(SecretState *st, const RemoteRef *r) {
        for (size_t i = 0; i < st->n_slots; i++)
                if (streq(st->slots[i].key, r->key) && streq_ptr(st->slots[i].version_wanted, r->version))
                        return &st->slots[i];
        return NULL;
}

static int slot_add(SecretState *st, const RemoteRef *r) {
        if (slot_find(st, r))
                return 0;
        Slot *s = &st->slots[st->n_slots];
        *s = (Slot) { .state = st, .key = strdup(r->key), .version_wanted = r->version ? strdup(r->version) : NULL };
        if (!s->key || (r->version && !s->version_wanted)) {
                free(s->key);
                free(s->version_wanted);
                return -ENOMEM;
        }
        st->n_slots++;
        return 0;
}

/* ----------------------------------------------------------------- state ---- */

SecretState *manager_state_free(SecretState *st) {
        if (!st)
                return NULL;
        sd_event_source_disable_unref(st->timer);
        slots_free(st);
        free(st);
        return NULL;
}

static int on_secret_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        manager_secret_sync(userdata);
        return 0;
}

void manager_schedule_in(SecretState *st, uint64_t delay) {
        Manager *m = st->m;
        if (m->once || m->stopping)
                return;
        if (!st->timer) {
                if (sd_event_add_time_relative(m->event, &st->timer, CLOCK_MONOTONIC, delay, TIMER_ACCURACY_USEC,
                                               on_secret_timer, st) < 0) {
                        log_error("secret '%s': cannot arm its timer", st->cfg->name);
                        return;
                }
                return;
        }
        sd_event_source_set_time_relative(st->timer, delay);
        sd_event_source_set_enabled(st->timer, SD_EVENT_ONESHOT);
}

void manager_unschedule(SecretState *st) {
        if (st->timer)
                sd_event_source_set_enabled(st->timer, SD_EVENT_OFF);
}

/* ----------------------------------------------------------- sync queue ---- */

static unsigned sync_limit(Manager *m) {
        return MAX(1U, m->config->daemon.max_concurrent_requests) * SYNCS_PER_REQUEST_SLOT;
}

static void queue_push(Manager *m, SecretState *st) {
        if (st->queued)
                return;
        st->queued = true;
        st->queue_next = NULL;
        *m->queue_tail = st;
        m->queue_tail = &st->queue_next;
}

void manager_queue_remove(Manager *m, SecretState *st) {
        if (!st->queued)
                return;
        for (SecretState **p = &m->queue_head; *p; p = &(*p)->queue_next)
                if (*p == st) {
                        *p = st->queue_next;
                        if (m->queue_tail == &st->queue_next)
                                m->queue_tail = p;
                        break;
                }
        st->queued = false;
}

static void queue_clear(Manager *m) {
        while (m->queue_head) {
                SecretState *st = m->queue_head;
                m->queue_head = st->queue_next;
                st->queued = false;
        }
        m->queue_tail = &m->queue_head;
}

static int on_pump(sd_event_source *s, void *userdata) {
        Manager *m = userdata;
        /* A loop, not recursion: a sync that fails at once frees its place right away. */
        while (m->queue_head && m->syncs_running < sync_limit(m) && !m->stopping) {
                SecretState *st = m->queue_head;
                m->queue_head = st->queue_next;
                if (!m->queue_head)
                        m->queue_tail = &m->queue_head;
                st->queued = false;
                manager_secret_sync(st);
        }
        return 0;
}

/* A place among the syncs in flight came free: start queued ones from the loop. */
static void sync_ended(SecretState *st) {
        Manager *m = st->m;
        st->syncing = false;
        m->syncs_running--;
        if (!m->queue_head || m->stopping)
                return;
        if (!m->pump_source) {
                if (sd_event_add_defer(m->event, &m->pump_source, on_pump, m) < 0)
                        return;
        }
        sd_event_source_set_enabled(m->pump_source, SD_EVENT_ONESHOT);
}

/* ------------------------------------------------------------------ sync ---- */

static int assemble(SecretState *st, SecretData **ret, char **ret_error) {
        const SecretConfig *sec = st->cfg;
        _cleanup_secret_data_ SecretData *d = secret_data_new();
        int r;

        if (!d)
                return -ENOMEM;
        /* data_from first, so explicit `data` entries win over extracted keys. */
        for (size_t i = 0; i < sec->n_data_from; i++) {
                const RemoteRef *x = &sec->data_from[i].extract;
                Slot *s = slot_find(st, x);
                _cleanup_secbuf_ SecBuf *sub = NULL;
                _cleanup_secret_data_ SecretData *e = secret_data_new();
                const SecBuf *doc = s->value;
                if (!e)
                        return -ENOMEM;
                if (x->property) {
                        r = json_secret_property(s->value, x->property, &sub);
                        if (r < 0)
                                goto property_error;
                        doc = sub;
                }
                r = json_secret_extract(doc, e);
                if (r == -EBADMSG) {
                        if (asprintf(ret_error, "data_from: remote key '%s'%s%s is not a JSON object, so its keys cannot be extracted",
                                     x->key, x->property ? " property " : "", x->property ? x->property : "") < 0)
                                *ret_error = NULL;
                        return r;
                }
                if (r < 0)
                        return r;
                for (size_t k = 0; k < e->n; k++) {
                        if (!config_secret_key_valid(e->entries[k].key)) {
                                if (asprintf(ret_error, "data_from: remote key '%s' has a key \"%s\" that is not a valid secret key ([-._a-zA-Z0-9]+)",
                                             x->key, e->entries[k].key) < 0)
                                        *ret_error = NULL;
                                return -EINVAL;
                        }
                        r = secret_data_set(d, e->entries[k].key, TAKE_PTR(e->entries[k].value));
                        if (r < 0)
                                return r;
                }
                continue;
        property_error:
                if (asprintf(ret_error,
                             r == -ENOENT ? "remote key '%s' has no property '%s'"
                                          : "remote key '%s' is not a JSON object or array, so property '%s' cannot be selected",
                             x->key, x->property) < 0)
                        *ret_error = NULL;
                return r;
        }
        for (size_t i = 0; i < sec->n_data; i++) {
                const DataRef *dr = &sec->data[i];
                Slot *s = slot_find(st, &dr->remote);
                SecBuf *v = NULL;
                if (dr->remote.property) {
                        r = json_secret_property(s->value, dr->remote.property, &v);
                        if (r < 0) {
                                if (asprintf(ret_error,
                                             r == -ENOENT ? "secret_key '%s': remote key '%s' has no property '%s'"
                                                          : "secret_key '%s': remote key '%s' is not a JSON object or array, so property '%s' cannot be selected",
                                             dr->secret_key, dr->remote.key, dr->remote.property) < 0)
                                        *ret_error = NULL;
                                return r;
                        }
                } else if (!(v = secbuf_dup(s->value)))
                        return -ENOMEM;
                r = secret_data_set(d, dr->secret_key, v);
                if (r < 0)
                        return r;
        }
        size_t total = 0;
        for (size_t i = 0; i < d->n; i++)
                total += d->entries[i].value->len;
        if (total > SECRET_DATA_BYTES_MAX) {
                if (asprintf(ret_error, "the secret's data is %zu bytes, over the limit of %u", total,
                             SECRET_DATA_BYTES_MAX) < 0)
                        *ret_error = NULL;
                return -EFBIG;
        }
        *ret = TAKE_PTR(d);
        return 0;
}

/* ---------------------------------------------------------------- sinks ---- */

static void on_sink_event(const SinkEvent *e, void *userdata) {
        LogEvent ev = { .secret = e->secret, .target = e->target, .error = e->error };
        switch (e->kind) {
        case SINK_EVENT_FAILED:
                ev.action = LOG_ACTION_FAILED;
                log_event(LOG_ERR, &ev, "secret '%s': %s", e->secret, e->message ? e->message : strerror(-e->error));
                break;
        case SINK_EVENT_DELETED:
                ev.action = LOG_ACTION_DELETED;
                log_event(LOG_INFO, &ev, "secret '%s': deleted %s%s (deletion_policy = delete)", e->secret,
                          e->sink->noun, e->target);
                break;
        case SINK_EVENT_REPAIRED:
                ev.action = LOG_ACTION_WRITTEN;
                log_event(LOG_INFO, &ev, "secret '%s': %s%s was edited or deleted; put it back", e->secret,
                          e->sink->noun, e->target);
                break;
        case SINK_EVENT_RESTARTED:
                if (e->error < 0) {
                        ev.action = LOG_ACTION_FAILED;
                        log_event(LOG_ERR, &ev, "secret '%s': cannot restart %s: %s", e->secret, e->target, e->message);
                } else {
                        ev.action = LOG_ACTION_WRITTEN;
                        log_event(LOG_INFO, &ev, "secret '%s': restarted %s (rollout restart) for the Secret's new data",
                                  e->secret, e->target);
                }
                break;
        case SINK_EVENT_CLEANED:
                log_event(LOG_NOTICE, &ev, "secret '%s': removed %s beside %s%s, left by a write that was interrupted",
                          e->secret, e->message, e->sink->noun, e->target);
                break;
        case SINK_EVENT_LEADER_ACQUIRED:
                log_event(LOG_INFO, &(LogEvent) { .action = LOG_ACTION_LEADER_ACQUIRED },
                          "leader: this node writes the Kubernetes Secrets now");
                break;
        case SINK_EVENT_LEADER_LOST:
                log_event(LOG_NOTICE, &(LogEvent) { .action = LOG_ACTION_LEADER_LOST }, "no longer the leader: %s",
                          e->message ? e->message : "");
                break;
        }
}

static int sink_get(Manager *m, size_t k, void **ret, char **ret_error) {
        int r = 0;
        if (!m->sinks[k])
                r = sink_vtables[k]->new(&m->sink_ctx, m->config, &m->sinks[k], ret_error);
        if (r >= 0)
                *ret = m->sinks[k];
        return r;
}

/* One target's write of a sync. */
typedef struct TargetWrite {
        SecretState *st;
        size_t sink, index;
} TargetWrite;

static void writes_done(SecretState *st);

static void on_written(const SinkWriteResult *r, void *userdata) {
        TargetWrite w = *(TargetWrite *) userdata;
        SecretState *st = w.st;
        const SinkVTable *vt = sink_vtables[w.sink];
        const SecretConfig *sec = st->cfg;
        char target[PATH_MAX + 32];

        free(userdata);
        if (r->error == -ECANCELED)
                /* The sink stopped, or a reload replaced the target: finish, or start over. */
                st->writes_cancelled = true;
        else if (sec && w.index < vt->n_targets(sec)) {
                vt->target_name(sec, w.index, target, sizeof(target));
                LogEvent ev = { .secret = sec->name, .store = sec->store_name, .target = target };
                switch (r->outcome) {
                case SINK_FAILED:
                        ev.action = LOG_ACTION_FAILED;
                        ev.error = r->error;
                        log_event(LOG_ERR, &ev, "secret '%s': cannot write %s%s: %s", sec->name, vt->noun, target,
                                  r->message ? r->message : strerror(-r->error));
                        st->writes_ok = false;
                        break;
                case SINK_WRITTEN:
                        ev.action = LOG_ACTION_WRITTEN;
                        log_event(LOG_INFO, &ev, "secret '%s': wrote %s%s%s", sec->name, vt->noun, target,
                                  r->detail ? r->detail : "");
                        if (r->on_change)
                                manager_queue_on_change(st->m, sec->name, target, r->on_change, r->on_change_timeout_usec);
                        if (r->flush)
                                manager_flush_soon(st->m);
                        break;
                case SINK_UNCHANGED:
                        ev.action = LOG_ACTION_UNCHANGED;
                        log_event(LOG_INFO, &ev, "secret '%s': %s%s is up to date", sec->name, vt->noun, target);
                        break;
                case SINK_SKIPPED:
                        log_event(st->m->once ? LOG_NOTICE : LOG_DEBUG, &ev, "secret '%s': skipped %s%s: %s",
                                  sec->name, vt->noun, target, r->message);
                        break;
                }
        } else if (r->outcome == SINK_FAILED)
                st->writes_ok = false;
        if (--st->writes == 0)
                writes_done(st);
}

/* Starts the write of every target; the sync ends in writes_done(), maybe before this
 * returns. */
static void write_targets(SecretState *st, const SecretData *d) {
        Manager *m = st->m;
        const SecretConfig *sec = st->cfg;
        char target[PATH_MAX + 32];

        /* Count first: a sink may call back before write() returns. */
        st->writes = 1;
        st->writes_ok = true;
        st->writes_cancelled = false;
        for (size_t k = 0; sink_vtables[k]; k++) {
                const SinkVTable *vt = sink_vtables[k];
                size_t n = vt->n_targets(sec);
                for (size_t i = 0; i < n; i++) {
                        _cleanup_free_ char *error = NULL;
                        TargetWrite *w = malloc(sizeof(TargetWrite));
                        void *sink = NULL;
                        int r = -ENOMEM;

                        st->writes++;
                        if (w) {
                                *w = (TargetWrite) { .st = st, .sink = k, .index = i };
                                r = sink_get(m, k, &sink, &error);
                        }
                        if (r >= 0)
                                r = vt->write(sink, sec, i, d, on_written, w, &error);
                        if (r >= 0)
                                continue;
                        free(w);
                        vt->target_name(sec, i, target, sizeof(target));
                        LogEvent ev = { .action = LOG_ACTION_FAILED, .secret = sec->name, .store = sec->store_name,
                                        .target = target, .error = r };
                        log_event(LOG_ERR, &ev, "secret '%s': cannot write %s%s: %s", sec->name, vt->noun, target,
                                  error ? error : strerror(-r));
                        st->writes_ok = false;
                        st->writes--;
                }
        }
        if (--st->writes == 0)
                writes_done(st);
}

/* READY=1 once every secret of the first round has been attempted. */
void manager_first_round_check(Manager *m) {
        if (m->first_round_pending > 0 || m->ready)
                return;
        m->ready = true;
        manager_status_send(m, "READY=1\n");
        log_info("first round done: %u of %zu secrets synced, %u failing", m->n_synced, m->n_states, m->n_failing);
}

static void secret_done(SecretState *st, bool ok) {
        Manager *m = st->m;
        const SecretConfig *sec = st->cfg;
        bool first = st->status == 1;

        if (ok) {
                st->failures = 0;
                manager_set_status(st, 0);
                manager_schedule_in(st, schedule_refresh_delay(sec->refresh_interval_usec));
                if (sec->refresh_interval_usec == 0)
                        manager_unschedule(st);
        } else {
                char b[DURATION_FORMAT_MAX];
                st->failures++;
                m->any_failed = true;
                manager_set_status(st, -1);
                (void) sd_event_now(m->event, CLOCK_MONOTONIC, &st->failed_at);
                uint64_t delay = schedule_backoff_delay(st->failures, m->config->daemon.min_backoff_usec,
                                                        m->config->daemon.max_backoff_usec);
                if (!m->once)
                        log_info("secret '%s': attempt %u failed; retrying in %s", sec->name, st->failures,
                                 duration_format(delay, b, sizeof(b)));
                manager_schedule_in(st, delay);
        }
        monitor_secret_done(m->monitor, sec->name, ok);
        if (first && m->first_round_pending > 0) {
                m->first_round_pending--;
                manager_first_round_check(m);
        }
}

static void secret_finish(SecretState *st) {
        Manager *m = st->m;
        bool cancelled = false, ok = true;

        if (!st->cfg) { /* removed by a reload while in flight */
                sync_ended(st);
                SecretState **p = &m->retired;
                while (*p && *p != st)
                        p = &(*p)->retired_next;
                if (*p)
                        *p = st->retired_next;
                manager_state_free(st);
                manager_maybe_exit(m);
                return;
        }
        for (size_t i = 0; i < st->n_slots; i++)
                if (st->slots[i].error == -ECANCELED)
                        cancelled = true;
        if (m->stopping) {
                slots_free(st);
                sync_ended(st);
                manager_maybe_exit(m);
                return;
        }
        if (cancelled || st->sync_gen != st->gen || st->resync) {
                /* Stale: the configuration or the store changed underneath, or a refresh was
                 * asked for meanwhile. Start over with what is current. */
                slots_free(st);
                sync_ended(st);
                st->resync = false;
                manager_secret_sync(st);
                return;
        }

        const SecretConfig *sec = st->cfg;
        for (size_t i = 0; i < st->n_slots; i++) {
                Slot *s = &st->slots[i];
                LogEvent ev = { .secret = sec->name, .store = sec->store_name, .remote_key = s->key };
                if (s->error < 0) {
                        ev.action = LOG_ACTION_FAILED;
                        ev.error = s->error;
                        log_event(LOG_ERR, &ev, "secret '%s': cannot fetch '%s' from store '%s': %s", sec->name, s->key,
                                  sec->store_name, s->message ? s->message : strerror(-s->error));
                        ok = false;
                } else {
                        ev.action = LOG_ACTION_FETCHED;
                        ev.version = s->version;
                        log_event(LOG_INFO, &ev, "secret '%s': fetched '%s' from store '%s'%s%s", sec->name, s->key,
                                  sec->store_name, s->version ? ", version " : "", s->version ? s->version : "");
                }
        }
        if (ok) {
                _cleanup_secret_data_ SecretData *d = NULL;
                _cleanup_free_ char *err = NULL;
                int r = assemble(st, &d, &err);
                slots_free(st); /* wipe fetched values as soon as they are not needed */
                if (r < 0) {
                        LogEvent ev = { .action = LOG_ACTION_FAILED, .secret = sec->name, .store = sec->store_name,
                                        .error = r };
                        log_event(LOG_ERR, &ev, "secret '%s': %s", sec->name, err ? err : strerror(-r));
                        ok = false;
                } else {
                        monitor_secret_data(m->monitor, sec->name, d);
                        write_targets(st, d);
                        return;
                }
        }
        slots_free(st);
        sync_ended(st);
        secret_done(st, ok);
        manager_maybe_exit(m);
}

/* The end of a sync whose targets were written (or tried). */
static void writes_done(SecretState *st) {
        Manager *m = st->m;

        slots_free(st);
        if (st->writes_cancelled) {
                if (!st->cfg || m->stopping) {
                        secret_finish(st);
                        return;
                }
                sync_ended(st);
                manager_secret_sync(st);
                return;
        }
        if (!st->cfg) {
                secret_finish(st); /* frees a retired state */
                return;
        }
        sync_ended(st);
        secret_done(st, st->writes_ok);
        /* A refresh asked for (or a reload) while a write was out: sync again. */
        if (st->resync && !m->stopping) {
                st->resync = false;
                manager_secret_sync(st);
        }
        manager_maybe_exit(m);
}

static void on_fetched(Store *store, const StoreResult *res, void *userdata) {
        Slot *s = userdata;
        SecretState *st = s->state;

        s->error = res->error;
        if (res->error < 0)
                s->message = res->message ? strdup(res->message) : NULL;
        else {
                s->value = secbuf_dup(res->value);
                s->version = res->version ? strdup(res->version) : NULL;
                if (!s->value)
                        s->error = -ENOMEM;
        }
        if (--st->outstanding == 0)
                secret_finish(st);
}

void manager_secret_sync(SecretState *st) {
        Manager *m = st->m;
        const SecretConfig *sec = st->cfg;

        if (m->stopping || !sec)
                return;
        if (st->syncing) {
                st->resync = true;
                return;
        }
        manager_unschedule(st);
        if (m->syncs_running >= sync_limit(m)) {
                queue_push(m, st);
                return;
        }
        m->syncs_running++;
        st->syncing = true;
        st->resync = false;
        st->sync_gen = st->gen;
        st->slots = calloc(sec->n_data + sec->n_data_from + 1, sizeof(Slot));
        if (!st->slots) {
                sync_ended(st);
                secret_done(st, false);
                return;
        }
        for (size_t i = 0; i < sec->n_data_from; i++)
                if (slot_add(st, &sec->data_from[i].extract) < 0)
                        goto oom;
        for (size_t i = 0; i < sec->n_data; i++)
                if (slot_add(st, &sec->data[i].remote) < 0)
                        goto oom;

        /* Count first: a store may complete a fetch only from the event loop, never inside
         * store_fetch(), but be safe against a provider that fails synchronously. */
        st->outstanding = (unsigned) st->n_slots + 1;
        for (size_t i = 0; i < st->n_slots; i++) {
                Slot *s = &st->slots[i];
                RemoteRef ref = { .key = s->key, .version = s->version_wanted };
                int r = store_fetch(sec->store, &ref, on_fetched, s);
                if (r < 0) {
                        s->error = r;
                        if (r == -EOPNOTSUPP && asprintf(&s->message, "stores of type %s are not supported by this build of secretsyncd yet",
                                                         sec->store->vtable->name) < 0)
                                s->message = NULL;
                        st->outstanding--;
                }
        }
        if (--st->outstanding == 0)
                secret_finish(st);
        return;
oom:
        slots_free(st);
        sync_ended(st);
        secret_done(st, false);
}

/* --------------------------------------------------------------- lifecycle ---- */

static void on_sink_stopped(void *userdata) {
        Manager *m = userdata;
        m->sinks_stopping--;
        manager_maybe_exit(m);
}

/* Before exiting, the sinks finish what they sent (the Kubernetes one lets go of the Lease). */
static bool sinks_stopped(Manager *m) {
        if (!m->sinks_stop_started) {
                m->sinks_stop_started = true;
                for (size_t k = 0; sink_vtables[k]; k++)
                        if (m->sinks[k] && sink_vtables[k]->stop)
                                m->sinks_stopping++;
                for (size_t k = 0; sink_vtables[k]; k++)
                        if (m->sinks[k] && sink_vtables[k]->stop)
                                sink_vtables[k]->stop(m->sinks[k], on_sink_stopped, m);
        }
        return m->sinks_stopping == 0;
}

void manager_maybe_exit(Manager *m) {
        if (m->commands || m->retired || m->queued || !atomic_sync_batch_empty(&m->sync_batch))
                return;
        if (m->stopping) {
                for (size_t i = 0; i < m->n_states; i++)
                        if (m->states[i]->syncing)
                                return;
                if (!sinks_stopped(m))
                        return;
                /* --once stopped early did not sync everything: that is not a success. */
                sd_event_exit(m->event, m->once && (m->any_failed || m->first_round_pending > 0) ? 1 : 0);
                return;
        }
        if (m->once && m->first_round_pending == 0 && sinks_stopped(m))
                sd_event_exit(m->event, m->any_failed ? 1 : 0);
}

/* A service-account token's renewal failed in the background: the stores still log in with
 * the one in hand, but the operator should know before it runs out. */
static void on_token_warning(const char *source, int error, const char *message, uint64_t usable_sec,
                             void *userdata) {
        LogEvent ev = { .action = LOG_ACTION_AUTH_FAILED, .error = error };
        log_event(LOG_WARNING, &ev, "service account %s: renewing its token failed (the current one is good for "
                  "%llu s more; retrying): %s", source, (unsigned long long) usable_sec, message);
}

int manager_start_stores(Manager *m, Config *c) {
        int ret = 0;
        /* Stores started now request service-account tokens with c's kubernetes group (the
         * connection is resolved at the first request); running ones keep theirs. */
        m->kube_tokens = kube_tokens_unref(m->kube_tokens);
        if (kube_tokens_new(m->event, m->http, c->kubernetes.kubeconfig, c->kubernetes.timeout_usec, &m->kube_tokens) < 0)
                m->kube_tokens = NULL;
        else
                kube_tokens_set_warning(m->kube_tokens, on_token_warning, m);
        m->store_ctx.kube_tokens = m->kube_tokens;
        for (size_t i = 0; i < c->n_stores; i++) {
                int r = store_start(c->stores[i], &m->store_ctx);
                if (r < 0) {
                        LogEvent ev = { .action = LOG_ACTION_FAILED, .store = c->stores[i]->name, .error = r };
                        log_event(LOG_ERR, &ev, "store '%s': cannot start: %s", c->stores[i]->name, strerror(-r));
                        ret = r;
                }
        }
        return ret;
}

static int states_create(Manager *m) {
        m->states = calloc(m->config->n_secrets + 1, sizeof(SecretState *));
        if (!m->states)
                return -ENOMEM;
        for (size_t i = 0; i < m->config->n_secrets; i++) {
                SecretState *st = calloc(1, sizeof(SecretState));
                if (!st)
                        return -ENOMEM;
                *st = (SecretState) { .m = m, .cfg = &m->config->secrets[i], .status = 1 };
                m->states[m->n_states++] = st;
        }
        m->first_round_pending = (unsigned) m->n_states;
        return 0;
}

static void begin_stop(Manager *m) {
        if (m->stopping)
                return;
        m->stopping = true;
        if (m->notify)
                sd_notify(false, "STOPPING=1\nSTATUS=Stopping");
        log_event(LOG_INFO, &(LogEvent) { .action = LOG_ACTION_STOPPED }, "stopping%s",
                  m->commands ? ": waiting for on_change commands to finish" : "");
        for (size_t i = 0; i < m->n_states; i++)
                manager_unschedule(m->states[i]);
        queue_clear(m);
        /* Cancel fetches; their callbacks come back with -ECANCELED and write nothing. */
        for (size_t i = 0; i < m->config->n_stores; i++)
                store_stop(m->config->stores[i]);
        /* Sink writes in flight come back cancelled; the Lease is released. */
        (void) sinks_stopped(m);
        manager_maybe_exit(m);
}

static int on_sigterm(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        begin_stop(userdata);
        return 0;
}

static int on_sigusr1(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;
        log_info("SIGUSR1: refreshing all %zu secrets now", m->n_states);
        for (size_t i = 0; i < m->n_states; i++)
                manager_secret_sync(m->states[i]);
        return 0;
}

static void on_store_event(Store *s, const StoreEvent *e, void *userdata) {
        LogEvent ev = { .store = s->name, .error = e->error };
        switch (e->kind) {
        case STORE_EVENT_AUTH_OK:
                ev.action = LOG_ACTION_AUTH_OK;
                log_event(LOG_INFO, &ev, "store '%s': %s", s->name, e->message);
                break;
        case STORE_EVENT_AUTH_FAILED:
                ev.action = LOG_ACTION_AUTH_FAILED;
                log_event(LOG_ERR, &ev, "store '%s': %s", s->name, e->message);
                break;
        case STORE_EVENT_WARNING:
                log_event(LOG_WARNING, &ev, "store '%s': %s", s->name, e->message);
                break;
        }
}

void manager_log_level_apply(Manager *m) {
        log_set_max_level(m->cli_log_level >= 0 ? m->cli_log_level : m->config->daemon.log_level);
}

int manager_new(const ManagerOptions *opts, Config *config, Manager **ret) {
        Manager *m = calloc(1, sizeof(Manager));
        int r;

        if (!m) {
                config_free(config);
                return -ENOMEM;
        }
        m->config = config;
        m->once = opts->once;
        m->cli_log_level = opts->log_level;
        m->config_path = strdup(opts->config_path);
        m->notify = !!getenv("NOTIFY_SOCKET");
        m->queued_tail = &m->queued;
        m->queue_tail = &m->queue_head;
        if (!m->config_path) {
                manager_free(m);
                return -ENOMEM;
        }
        manager_log_level_apply(m);

        r = sd_event_default(&m->event);
        if (r < 0)
                goto fail;
        r = http_context_new(m->event, config->daemon.max_concurrent_requests, &m->http);
        if (r < 0)
                goto fail;
        m->store_ctx = (StoreContext) { .event = m->event, .http = m->http, .on_event = on_store_event,
                                        .userdata = m };
        m->sink_ctx = (SinkContext) { .event = m->event, .http = m->http, .batch = &m->sync_batch, .once = m->once,
                                      .on_event = on_sink_event, .userdata = m };
        size_t n_sinks = 0;
        while (sink_vtables[n_sinks])
                n_sinks++;
        m->sinks = calloc(n_sinks, sizeof(void *));
        if (!m->sinks) {
                r = -ENOMEM;
                goto fail;
        }
        sigset_t ss;
        sigemptyset(&ss);
        sigaddset(&ss, SIGTERM);
        sigaddset(&ss, SIGINT);
        sigaddset(&ss, SIGHUP);
        sigaddset(&ss, SIGUSR1);
        sigaddset(&ss, SIGCHLD);
        sigprocmask(SIG_BLOCK, &ss, NULL);
        if ((r = sd_event_add_signal(m->event, NULL, SIGTERM, on_sigterm, m)) < 0 ||
            (r = sd_event_add_signal(m->event, NULL, SIGINT, on_sigterm, m)) < 0)
                goto fail;
        if (!m->once) {
                if ((r = sd_event_add_signal(m->event, NULL, SIGHUP, manager_on_sighup, m)) < 0 ||
                    (r = sd_event_add_signal(m->event, NULL, SIGUSR1, on_sigusr1, m)) < 0)
                        goto fail;
                /* WATCHDOG=1 at half of WATCHDOG_USEC, when systemd asks for it. */
                r = sd_event_set_watchdog(m->event, true);
                if (r < 0)
                        goto fail;
        }
        log_event(LOG_INFO, &(LogEvent) { .action = LOG_ACTION_STARTED },
                  "secretsyncd %s starting%s: %zu secrets, %zu stores, configuration %s", PACKAGE_VERSION,
                  m->once ? " (--once)" : "", config->n_secrets, config->n_stores, m->config_path);
        /* Before the first write: what a crash or SIGKILL of an earlier run left beside the
         * targets (temporary files, unpublished directories) goes. Before the secrets' state
         * exists, too: its lists of every target are the largest the daemon makes, and with
         * them gone first a large configuration peaks lower. */
        for (size_t k = 0; sink_vtables[k]; k++)
                if (sink_vtables[k]->clean_up)
                        sink_vtables[k]->clean_up(&m->sink_ctx, config);
        r = states_create(m);
        if (r < 0)
                goto fail;
        if (!m->once) {
                r = monitor_new(m->event, m, m->config, m->http, &m->monitor);
                if (r < 0)
                        goto fail;
        }
        *ret = m;
        return 0;
fail:
        manager_free(m);
        return r;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        m->monitor = monitor_free(m->monitor); /* reads the secrets' status one last time */
        manager_commands_free(m);
        sd_event_source_disable_unref(m->flush_source);
        sd_event_source_disable_unref(m->pump_source);
        queue_clear(m);
        m->stopping = true;
        if (m->config)
                for (size_t i = 0; i < m->config->n_stores; i++)
                        store_stop(m->config->stores[i]);
        for (size_t i = 0; i < m->n_states; i++)
                manager_state_free(m->states[i]);
        while (m->retired) {
                SecretState *n = m->retired->retired_next;
                manager_state_free(m->retired);
                m->retired = n;
        }
        free(m->states);
        sd_event_source_disable_unref(m->status_timer);
        for (size_t k = 0; m->sinks && sink_vtables[k]; k++)
                if (m->sinks[k])
                        sink_vtables[k]->free(m->sinks[k]);
        free(m->sinks);
        config_free(m->config); /* stops the stores: before the HTTP context goes */
        m->config = NULL;
        kube_tokens_unref(m->kube_tokens);
        http_context_free(m->http);
        sd_event_unref(m->event);
        free(m->config_path);
        free(m);
        return NULL;
}

int manager_run(Manager *m) {
        int r;
        manager_start_stores(m, m->config);
        malloc_trim(0); /* what parsing the configuration freed */
        if (m->n_states == 0) {
                m->ready = true;
                manager_status_send(m, "READY=1\n");
                if (m->once) {
                        log_info("no secrets configured; nothing to do");
                        return 0;
                }
        }
        for (size_t i = 0; i < m->n_states; i++)
                manager_secret_sync(m->states[i]);

        r = sd_event_loop(m->event);
        if (r < 0) {
                log_error("event loop failed: %s", strerror(-r));
                return 1;
        }
        if (m->once) {
                if (m->any_failed)
                        log_error("--once: %u of %zu secrets failed", m->n_failing, m->n_states);
                else
                        log_info("--once: all %zu secrets synced", m->n_states);
        }
        return r;
}

/* ------------------------------------------------------- what status sees ---- */

size_t manager_n_secrets(Manager *m) {
        return m->n_states;
}

void manager_secret_view(Manager *m, size_t i, ManagerSecretView *ret) {
        const SecretState *st = m->states[i];
        uint64_t due, mono, real;
        int enabled = SD_EVENT_OFF;

        *ret = (ManagerSecretView) { .cfg = st->cfg, .syncing = st->syncing || st->queued };
        if (st->timer && sd_event_source_get_enabled(st->timer, &enabled) >= 0 && enabled != SD_EVENT_OFF &&
            sd_event_source_get_time(st->timer, &due) >= 0 && sd_event_now(m->event, CLOCK_MONOTONIC, &mono) >= 0 &&
            sd_event_now(m->event, CLOCK_REALTIME, &real) >= 0)
                ret->next_usec = real + (due > mono ? due - mono : 0);
}

int manager_find_secret(Manager *m, const char *name, size_t *ret_index) {
        for (size_t i = 0; i < m->n_states; i++)
                if (streq(m->states[i]->cfg->name, name)) {
                        *ret_index = i;
                        return 0;
                }
        return -ENOENT;
}

void manager_refresh(Manager *m, size_t i) {
        manager_secret_sync(m->states[i]);
}
