/* SPDX-License-Identifier: MIT */
/* Reloading the configuration (SIGHUP, `secretsyncctl reload`): the new file is read and
 * checked whole; stores whose settings did not change keep their object (tokens,
 * connections), secrets are matched by name, and unchanged ones keep their timers and
 * status. A rejected file changes nothing. */
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "core/log.h"
#include "core/manager-internal.h"
#include "core/schedule.h"
#include "util/cleanup.h"
#include "util/secbuf.h"

/* The sinks that hold a secret's targets follow a reload (sec NULL: the secret is gone). */
static void sinks_reconfigure(Manager *m, const SecretConfig *old, const SecretConfig *sec, bool same) {
        for (size_t k = 0; sink_vtables[k]; k++)
                if (m->sinks[k] && sink_vtables[k]->reconfigure)
                        sink_vtables[k]->reconfigure(m->sinks[k], old, sec, same);
}

/* New min_backoff/max_backoff apply to retries already waiting: each failing secret's
 * retry is drawn again, counted from its last failure. */
static void reschedule_retries(Manager *m) {
        uint64_t now;
        if (sd_event_now(m->event, CLOCK_MONOTONIC, &now) < 0)
                return;
        for (size_t i = 0; i < m->n_states; i++) {
                SecretState *st = m->states[i];
                if (st->status >= 0 || st->failures == 0 || st->syncing || st->queued)
                        continue;
                uint64_t due = st->failed_at + schedule_backoff_delay(st->failures, m->config->daemon.min_backoff_usec,
                                                                      m->config->daemon.max_backoff_usec);
                manager_schedule_in(st, due > now ? due - now : 0);
        }
}

static bool fingerprints_equal(char *a, char *b) {
        bool eq = a && b && streq(a, b);
        erase_and_free(a);
        erase_and_free(b);
        return eq;
}

int manager_reload(Manager *m, char ***ret_errors) {
        _cleanup_strv_free_ char **errors = NULL;
        Config *nc = NULL;
        char b[64];
        unsigned added = 0, changed = 0, kept = 0, removed = 0;
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        snprintf(b, sizeof(b), "RELOADING=1\nMONOTONIC_USEC=%llu\n",
                 (unsigned long long) ts.tv_sec * 1000000ULL + (unsigned long long) ts.tv_nsec / 1000ULL);
        /* Before READY=1 the service is still starting: systemd ignores RELOADING=1 then, and
         * a READY=1 would end the start before the first round has been attempted. */
        if (m->notify && m->ready)
                sd_notify(false, b);

        int r = config_load(m->config_path, true, &nc, &errors);
        if (r < 0) {
                size_t n = strv_length(errors);
                for (size_t i = 0; i < n; i++)
                        log_error("%s", errors[i]);
                LogEvent ev = { .action = LOG_ACTION_RELOAD_REJECTED, .error = r };
                log_event(LOG_ERR, &ev, "reload rejected: %s has %zu error%s (first: %s); keeping the running configuration",
                          m->config_path, n, n == 1 ? "" : "s", n > 0 ? errors[0] : strerror(-r));
                manager_status_send(m, m->ready ? "READY=1\n" : NULL);
                if (ret_errors)
                        *ret_errors = TAKE_PTR(errors);
                return r;
        }

        Config *old = m->config;
        /* Stores whose settings did not change keep their object (tokens, connections). */
        _cleanup_free_ bool *store_changed = calloc(nc->n_stores + 1, sizeof(bool));
        for (size_t i = 0; i < nc->n_stores; i++) {
                Store *o = config_find_store(old, nc->stores[i]->name);
                if (o && fingerprints_equal(config_store_fingerprint(o), config_store_fingerprint(nc->stores[i]))) {
                        for (size_t k = 0; k < old->n_stores; k++)
                                if (old->stores[k] == o)
                                        old->stores[k] = nc->stores[i];
                        nc->stores[i] = o;
                } else if (store_changed)
                        store_changed[i] = true;
        }
        for (size_t i = 0; i < nc->n_secrets; i++)
                nc->secrets[i].store = config_find_store(nc, nc->secrets[i].store_name);
        manager_start_stores(m, nc);

        /* Match secrets by name; unchanged ones keep their timers and status. */
        SecretState **ns = calloc(nc->n_secrets + 1, sizeof(SecretState *));
        if (!ns) {
                log_error("reload: out of memory; keeping the running configuration");
                config_free(nc);
                manager_status_send(m, m->ready ? "READY=1\n" : NULL);
                return -ENOMEM;
        }
        bool *taken = calloc(m->n_states + 1, sizeof(bool));
        for (size_t i = 0; i < nc->n_secrets; i++) {
                SecretConfig *sec = &nc->secrets[i];
                SecretState *st = NULL;
                size_t j;
                for (j = 0; taken && j < m->n_states; j++)
                        if (!taken[j] && streq(m->states[j]->cfg->name, sec->name)) {
                                st = m->states[j];
                                taken[j] = true;
                                break;
                        }
                bool same = false, existed = !!st;
                if (st) {
                        size_t si = 0;
                        for (; si < nc->n_stores; si++)
                                if (nc->stores[si] == sec->store)
                                        break;
                        same = !(store_changed && si < nc->n_stores && store_changed[si]) &&
                               fingerprints_equal(config_secret_fingerprint(st->cfg), config_secret_fingerprint(sec));
                } else {
                        st = calloc(1, sizeof(SecretState));
                        if (!st) {
                                /* Half-swapped state cannot be undone cleanly; let systemd restart us. */
                                log_error("reload: out of memory");
                                abort();
                        }
                        *st = (SecretState) { .m = m, .status = 1 };
                        added++;
                }
                if (existed)
                        sinks_reconfigure(m, st->cfg, sec, same);
                st->cfg = sec;
                ns[i] = st;
                if (same) {
                        kept++;
                        continue;
                }
                if (existed)
                        changed++;
                st->gen++;
                st->failures = 0;
        }
        for (size_t j = 0; j < m->n_states; j++) {
                if (taken && taken[j])
                        continue;
                SecretState *st = m->states[j];
                removed++;
                manager_set_status(st, 1);
                sinks_reconfigure(m, st->cfg, NULL, false);
                st->cfg = NULL;
                manager_unschedule(st);
                manager_queue_remove(m, st);
                if (st->syncing) {
                        st->retired_next = m->retired;
                        m->retired = st;
                } else
                        manager_state_free(st);
        }
        free(taken);
        free(m->states);
        m->states = ns;
        m->n_states = nc->n_secrets;
        m->config = nc;
        manager_log_level_apply(m);
        http_context_set_limit(m->http, nc->daemon.max_concurrent_requests);
        if (old->daemon.min_backoff_usec != nc->daemon.min_backoff_usec ||
            old->daemon.max_backoff_usec != nc->daemon.max_backoff_usec)
                reschedule_retries(m);
        /* Still starting: the first round now covers the new file's secrets that have not
         * been attempted yet (kept ones in flight, added ones). Once ready, secrets added by a
         * reload are no "first round". */
        m->first_round_pending = 0;
        if (!m->ready)
                for (size_t i = 0; i < m->n_states; i++)
                        if (m->states[i]->status == 1)
                                m->first_round_pending++;

        /* Freeing the old configuration stops the stores it alone holds; their pending fetches
         * come back cancelled and the secrets involved start over on the new store. */
        config_free(old);

        for (size_t i = 0; i < m->n_states; i++) {
                SecretState *st = m->states[i];
                if (st && st->gen != st->sync_gen)
                        manager_secret_sync(st); /* while one is in flight this marks it stale */
        }
        /* Parsing freed more than the running daemon keeps: give it back. */
        malloc_trim(0);
        LogEvent ev = { .action = LOG_ACTION_RELOADED };
        log_event(LOG_INFO, &ev, "reloaded %s: %zu secrets (%u added, %u changed, %u removed, %u unchanged), %zu stores",
                  m->config_path, m->n_states, added, changed, removed, kept, nc->n_stores);
        monitor_reloaded(m->monitor, nc);
        if (m->ready)
                manager_status_send(m, "READY=1\n");
        else
                manager_first_round_check(m);
        return 0;
}

int manager_on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;
        if (!m->stopping)
                (void) manager_reload(m, NULL);
        return 0;
}

