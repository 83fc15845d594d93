/* SPDX-License-Identifier: MIT */
/* Prometheus text format (version 0.0.4) for node_exporter's textfile collector. */
#include "core/metrics.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/manager.h"
#include "util/atomic-file.h"

/* Prometheus' default buckets, in seconds. */
static const double buckets[] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10 };
#define N_BUCKETS ELEMENTSOF(buckets)

typedef struct RequestSeries {
        char *store, *type;
        long code; /* -1: transport error */
        uint64_t count;
} RequestSeries;

typedef struct DurationSeries {
        char *store;
        uint64_t bucket[N_BUCKETS]; /* not cumulative; summed when written */
        uint64_t count;
        double sum;
} DurationSeries;

struct Metrics {
        sd_event *event;
        Manager *manager;
        StateTable *state;
        char *path;
        sd_event_source *timer;
        uint64_t last_write; /* CLOCK_MONOTONIC; 0: never */
        bool failed;         /* the last write failed: say so once, not every time */
        RequestSeries *requests;
        size_t n_requests;
        DurationSeries *durations;
        size_t n_durations;
};

int metrics_new(sd_event *e, Manager *m, StateTable *state, Metrics **ret) {
        Metrics *x = calloc(1, sizeof(Metrics));
        if (!x)
                return -ENOMEM;
        x->event = sd_event_ref(e);
        x->manager = m;
        x->state = state;
        *ret = x;
        return 0;
}

Metrics *metrics_free(Metrics *x) {
        if (!x)
                return NULL;
        sd_event_source_disable_unref(x->timer);
        sd_event_unref(x->event);
        for (size_t i = 0; i < x->n_requests; i++) {
                free(x->requests[i].store);
                free(x->requests[i].type);
        }
        for (size_t i = 0; i < x->n_durations; i++)
                free(x->durations[i].store);
        free(x->requests);
        free(x->durations);
        free(x->path);
        free(x);
        return NULL;
}

int metrics_set_path(Metrics *x, const char *path) {
        if (streq_ptr(x->path, path))
                return 0;
        char *p = path ? strdup(path) : NULL;
        if (path && !p)
                return -ENOMEM;
        free(x->path);
        x->path = p;
        x->failed = false;
        metrics_changed(x);
        return 0;
}

void metrics_note_request(Metrics *x, const char *store, const char *type, long status, uint64_t duration_usec) {
        long code = status > 0 ? status : -1;
        RequestSeries *rs = NULL;
        DurationSeries *ds = NULL;

        for (size_t i = 0; i < x->n_requests && !rs; i++)
                if (x->requests[i].code == code && streq(x->requests[i].store, store))
                        rs = &x->requests[i];
        if (!rs && x->n_requests < METRICS_STORES_MAX) {
                RequestSeries *n = realloc(x->requests, (x->n_requests + 1) * sizeof(RequestSeries));
                if (n) {
                        x->requests = n;
                        rs = &n[x->n_requests];
                        *rs = (RequestSeries) { .store = strdup(store), .type = strdup(type ?: ""), .code = code };
                        if (rs->store && rs->type)
                                x->n_requests++;
                        else {
                                free(rs->store);
                                free(rs->type);
                                rs = NULL;
                        }
                }
        }
        if (rs)
                rs->count++;

        for (size_t i = 0; i < x->n_durations && !ds; i++)
                if (streq(x->durations[i].store, store))
                        ds = &x->durations[i];
        if (!ds && x->n_durations < METRICS_STORES_MAX) {
                DurationSeries *n = realloc(x->durations, (x->n_durations + 1) * sizeof(DurationSeries));
                if (n) {
                        x->durations = n;
                        ds = &n[x->n_durations];
                        *ds = (DurationSeries) { .store = strdup(store) };
                        if (ds->store)
                                x->n_durations++;
                        else
                                ds = NULL;
                }
        }
        if (ds) {
                double s = (double) duration_usec / 1e6;
                for (size_t b = 0; b < N_BUCKETS; b++)
                        if (s <= buckets[b]) {
                                ds->bucket[b]++;
                                break;
                        }
                ds->count++;
                ds->sum += s;
        }
}

/* A label value: backslash, double quote and line feed escaped. */
static void label(TextBuf *b, const char *v) {
        textbuf_append(b, "\"", 1);
        for (const char *p = v; *p; p++) {
                if (*p == '\\')
                        textbuf_puts(b, "\\\\");
                else if (*p == '"')
                        textbuf_puts(b, "\\\"");
                else if (*p == '\n')
                        textbuf_puts(b, "\\n");
                else
                        textbuf_append(b, p, 1);
        }
        textbuf_append(b, "\"", 1);
}

static void header(TextBuf *b, const char *name, const char *type, const char *help) {
        textbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

int metrics_render(Metrics *x, TextBuf *b) {
        size_t n = manager_n_secrets(x->manager);
        ManagerSecretView v;

#define FOREACH_SECRET(r)                                                                       \
        for (size_t i = 0; i < n; i++)                                                          \
                if (manager_secret_view(x->manager, i, &v),                                     \
                    r = state_find(x->state, v.cfg->name), true)

        const SecretRecord *r;
        header(b, "secretsyncd_secret_ready", "gauge", "Whether the last sync of the secret succeeded (1) or not (0).");
        FOREACH_SECRET(r) {
                textbuf_puts(b, "secretsyncd_secret_ready{secret=");
                label(b, v.cfg->name);
                textbuf_puts(b, ",store=");
                label(b, v.cfg->store_name);
                textbuf_printf(b, "} %d\n", r && r->status == 0 ? 1 : 0);
        }
        header(b, "secretsyncd_secret_last_success_timestamp_seconds", "gauge",
               "When the secret last synced successfully, in seconds since the epoch (0: never).");
        FOREACH_SECRET(r) {
                textbuf_puts(b, "secretsyncd_secret_last_success_timestamp_seconds{secret=");
                label(b, v.cfg->name);
                uint64_t t = r ? r->last_success : 0;
                textbuf_printf(b, "} %llu.%03llu\n", (unsigned long long) (t / 1000000),
                              (unsigned long long) (t % 1000000 / 1000));
        }
        header(b, "secretsyncd_sync_total", "counter", "Syncs of the secret since the daemon started, by result.");
        FOREACH_SECRET(r) {
                for (int ok = 1; ok >= 0; ok--) {
                        textbuf_puts(b, "secretsyncd_sync_total{secret=");
                        label(b, v.cfg->name);
                        textbuf_printf(b, ",result=\"%s\"} %llu\n", ok ? "success" : "failure",
                                      (unsigned long long) (r ? (ok ? r->syncs_ok : r->syncs_failed) : 0));
                }
        }
        header(b, "secretsyncd_target_writes_total", "counter",
               "Targets of the secret written with new content since the daemon started, by kind.");
        FOREACH_SECRET(r) {
                for (int file = 1; file >= 0; file--) {
                        textbuf_puts(b, "secretsyncd_target_writes_total{secret=");
                        label(b, v.cfg->name);
                        textbuf_printf(b, ",kind=\"%s\"} %llu\n", file ? "file" : "kubernetes",
                                      (unsigned long long) (r ? (file ? r->writes_file : r->writes_kube) : 0));
                }
        }
#undef FOREACH_SECRET
        header(b, "secretsyncd_store_requests_total", "counter",
               "HTTP requests to the store since the daemon started, by HTTP status (\"error\": no answer).");
        for (size_t i = 0; i < x->n_requests; i++) {
                const RequestSeries *rs = &x->requests[i];
                textbuf_puts(b, "secretsyncd_store_requests_total{store=");
                label(b, rs->store);
                textbuf_puts(b, ",type=");
                label(b, rs->type);
                if (rs->code < 0)
                        textbuf_printf(b, ",code=\"error\"} %llu\n", (unsigned long long) rs->count);
                else
                        textbuf_printf(b, ",code=\"%ld\"} %llu\n", rs->code, (unsigned long long) rs->count);
        }
        header(b, "secretsyncd_store_request_duration_seconds", "histogram", "How long HTTP requests to the store took.");
        for (size_t i = 0; i < x->n_durations; i++) {
                const DurationSeries *ds = &x->durations[i];
                uint64_t cum = 0;
                for (size_t k = 0; k <= N_BUCKETS; k++) {
                        textbuf_puts(b, "secretsyncd_store_request_duration_seconds_bucket{store=");
                        label(b, ds->store);
                        if (k < N_BUCKETS) {
                                cum += ds->bucket[k];
                                textbuf_printf(b, ",le=\"%g\"} %llu\n", buckets[k], (unsigned long long) cum);
                        } else
                                textbuf_printf(b, ",le=\"+Inf\"} %llu\n", (unsigned long long) ds->count);
                }
                textbuf_puts(b, "secretsyncd_store_request_duration_seconds_sum{store=");
                label(b, ds->store);
                textbuf_printf(b, "} %.6f\n", ds->sum);
                textbuf_puts(b, "secretsyncd_store_request_duration_seconds_count{store=");
                label(b, ds->store);
                textbuf_printf(b, "} %llu\n", (unsigned long long) ds->count);
        }
        header(b, "secretsyncd_leader", "gauge", "Whether this node holds the Kubernetes leader election Lease.");
        textbuf_printf(b, "secretsyncd_leader %d\n", x->state->leader ? 1 : 0);
        header(b, "secretsyncd_config_last_reload_successful", "gauge",
               "Whether the last configuration reload succeeded.");
        textbuf_printf(b, "secretsyncd_config_last_reload_successful %d\n", x->state->reload_ok ? 1 : 0);
        header(b, "secretsyncd_build_info", "gauge", "The running secretsyncd's version.");
        textbuf_puts(b, "secretsyncd_build_info{version=");
        label(b, PACKAGE_VERSION);
        textbuf_puts(b, "} 1\n");
        return textbuf_error(b);
}

static int write_now(Metrics *x) {
        _cleanup_textbuf_ TextBuf b = TEXTBUF_INIT(METRICS_FILE_MAX);
        _cleanup_free_ char *err = NULL;

        (void) sd_event_now(x->event, CLOCK_MONOTONIC, &x->last_write);
        if (!x->path)
                return 0;
        int r = metrics_render(x, &b);
        if (r >= 0)
                r = atomic_file_write(x->path, b.data, b.len, geteuid(), getegid(), 0644, NULL, NULL, &err);
        if (r < 0 && !x->failed)
                log_error("cannot write the metrics file %s: %s", x->path, err ? err : strerror(-r));
        else if (r >= 0 && x->failed)
                log_info("metrics file %s written again", x->path);
        x->failed = r < 0;
        return r;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        write_now(userdata);
        return 0;
}

void metrics_changed(Metrics *x) {
        uint64_t now = 0, due;
        int enabled = SD_EVENT_OFF;

        if (!x || !x->path)
                return;
        if (x->timer && sd_event_source_get_enabled(x->timer, &enabled) >= 0 && enabled != SD_EVENT_OFF)
                return; /* a write is already due */
        (void) sd_event_now(x->event, CLOCK_MONOTONIC, &now);
        due = x->last_write ? x->last_write + METRICS_INTERVAL_USEC : now;
        if (!x->timer) {
                if (sd_event_add_time(x->event, &x->timer, CLOCK_MONOTONIC, due, 0, on_timer, x) < 0)
                        return;
                return;
        }
        sd_event_source_set_time(x->timer, due);
        sd_event_source_set_enabled(x->timer, SD_EVENT_ONESHOT);
}

void metrics_flush(Metrics *x) {
        if (x && x->path)
                (void) write_now(x);
}
