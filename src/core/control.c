/* SPDX-License-Identifier: MIT */
/* The control socket: a Varlink server on the manager's event loop. */
#include "core/control.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/config.h"
#include "core/log.h"
#include "core/manager.h"
#include "util/json.h"
#include "util/list.h"

static const char interface_description[] =
        "# secretsyncd's control interface (see secretsyncctl(1)). Times are seconds since the epoch.\n"
        "interface io.secretsyncd\n"
        "\n"
        "# kind: file, kubernetes or restart; state: pending, written, unchanged, failed or deleted\n"
        "type Target (target: string, kind: string, state: string, time: ?int, message: ?string)\n"
        "\n"
        "type RemoteKey (key: string, version: ?string)\n"
        "\n"
        "type Event (time: int, message: string)\n"
        "\n"
        "# status: Synced, Failed (never synced), Retrying (synced before, failing now) or Pending\n"
        "type Secret (\n"
        "  name: string,\n"
        "  store: string,\n"
        "  refresh_interval: int,\n"
        "  status: string,\n"
        "  syncing: bool,\n"
        "  last_sync: ?int,\n"
        "  last_attempt: ?int,\n"
        "  next_refresh: ?int,\n"
        "  last_error: ?string,\n"
        "  # targets written or up to date, of all\n"
        "  targets_ready: int,\n"
        "  targets_total: int,\n"
        "  # with names only\n"
        "  targets: ?[]Target,\n"
        "  remote_keys: ?[]RemoteKey,\n"
        "  events: ?[]Event\n"
        ")\n"
        "\n"
        "type RefreshResult (name: string, status: string, error: ?string)\n"
        "\n"
        "# Every secret in brief, or the named ones in detail (targets, remote keys, events).\n"
        "method Status(names: ?[]string) -> (secrets: []Secret)\n"
        "\n"
        "# Sync the named secrets (or all) now; with wait, reply when their syncs have ended.\n"
        "method Refresh(names: ?[]string, all: ?bool, wait: ?bool) -> (results: []RefreshResult)\n"
        "\n"
        "# Reload the configuration file, as SIGHUP does.\n"
        "method Reload() -> ()\n"
        "\n"
        "error NoSuchSecret (name: string)\n"
        "\n"
        "# errors: FILE:LINE: message\n"
        "error ReloadRejected (errors: []string)\n";

typedef struct Waited {
        char *name;
        int result; /* 1: waiting, 0: synced, -1: failed, -2: removed by a reload */
} Waited;

typedef struct Connection {
        Control *control;
        int fd;
        sd_event_source *io, *timer;
        TextBuf in, out;
        size_t out_done;
        bool close_after; /* once out is sent */
        Waited *waited;   /* a Refresh with wait, sorted by name */
        size_t n_waited, n_pending;
        struct Connection *prev, *next;
} Connection;

struct Control {
        sd_event *event;
        Manager *manager;
        StateTable *state;
        char *path;
        int fd;
        sd_event_source *listen;
        Connection *connections;
        unsigned n_connections;
        bool warned_full;
};

static void connection_free(Connection *c) {
        if (!c)
                return;
        LIST_REMOVE(c->control->connections, c);
        c->control->n_connections--;
        sd_event_source_disable_unref(c->io);
        sd_event_source_disable_unref(c->timer);
        if (c->fd >= 0)
                close(c->fd);
        textbuf_done(&c->in);
        textbuf_done(&c->out);
        for (size_t i = 0; i < c->n_waited; i++)
                free(c->waited[i].name);
        free(c->waited);
        free(c);
}

static void process(Connection *c);

/* What the connection waits for decides the epoll events and whether it may time out. */
static void connection_update(Connection *c) {
        bool sending = c->out_done < c->out.len;
        uint32_t events = sending ? EPOLLOUT : c->n_pending > 0 ? 0 : EPOLLIN;
        (void) sd_event_source_set_io_events(c->io, events);
        (void) sd_event_source_set_enabled(c->io, events ? SD_EVENT_ON : SD_EVENT_OFF);
        /* Waiting for syncs is our doing: no idle timeout then. */
        if (c->n_pending > 0)
                (void) sd_event_source_set_enabled(c->timer, SD_EVENT_OFF);
}

static void progress(Connection *c) {
        (void) sd_event_source_set_time_relative(c->timer, CONTROL_IDLE_USEC);
        (void) sd_event_source_set_enabled(c->timer, SD_EVENT_ONESHOT);
}

/* ------------------------------------------------------------- replies ---- */

static void reply_begin(Connection *c) {
        textbuf_puts(&c->out, "{\"parameters\":{");
}

static void reply_end(Connection *c) {
        textbuf_puts(&c->out, "}}");
        textbuf_append(&c->out, "", 1);
}

static void reply_error(Connection *c, const char *error, const char *param, const char *value) {
        textbuf_puts(&c->out, "{\"error\":");
        textbuf_json_string(&c->out, error);
        textbuf_puts(&c->out, ",\"parameters\":{");
        if (param) {
                textbuf_json_string(&c->out, param);
                textbuf_puts(&c->out, ":");
                textbuf_json_string(&c->out, value);
        }
        textbuf_puts(&c->out, "}}");
        textbuf_append(&c->out, "", 1);
}

static void json_time(TextBuf *b, const char *key, uint64_t usec) {
        textbuf_printf(b, ",\"%s\":", key);
        if (usec)
                textbuf_printf(b, "%llu", (unsigned long long) (usec / 1000000));
        else
                textbuf_puts(b, "null");
}

static const char *status_string(const SecretRecord *r) {
        if (!r || r->status == 1)
                return "Pending";
        if (r->status == 0)
                return "Synced";
        return r->last_success ? "Retrying" : "Failed";
}

static void target_json(TextBuf *b, bool *first, const char *target, const SecretRecord *r) {
        const TargetRecord *t = NULL;
        for (size_t i = 0; r && i < r->n_targets && !t; i++)
                if (streq(r->targets[i].target, target))
                        t = &r->targets[i];
        static const char *const kinds[] = { "file", "kubernetes", "restart" };
        textbuf_puts(b, *first ? "{\"target\":" : ",{\"target\":");
        *first = false;
        textbuf_json_string(b, target);
        textbuf_printf(b, ",\"kind\":\"%s\",\"state\":\"%s\"", kinds[target_kind(target)],
                      target_state_to_string(t ? t->state : TARGET_PENDING));
        json_time(b, "time", t ? t->time : 0);
        textbuf_puts(b, ",\"message\":");
        textbuf_json_string(b, t ? t->message : NULL);
        textbuf_puts(b, "}");
}

static bool target_configured(const SecretConfig *cfg, const char *target) {
        for (size_t i = 0; i < cfg->n_files; i++)
                if (streq(cfg->files[i].path, target))
                        return true;
        const KubeTarget *k = cfg->kubernetes;
        size_t n = k ? strlen(k->namespace) : 0;
        return k && strncmp(target, k->namespace, n) == 0 && target[n] == '/' && streq(target + n + 1, k->name);
}

static void key_json(TextBuf *b, const SecretConfig *cfg, const RemoteRef *ref, size_t until, const SecretRecord *r) {
        /* Each remote key once, though several data entries may read it. */
        for (size_t i = 0; i < cfg->n_data_from && i < until; i++)
                if (streq(cfg->data_from[i].extract.key, ref->key))
                        return;
        for (size_t i = 0; i + cfg->n_data_from < until; i++)
                if (streq(cfg->data[i].remote.key, ref->key))
                        return;
        const char *version = NULL;
        for (size_t i = 0; r && i < r->n_keys; i++)
                if (streq(r->keys[i].key, ref->key))
                        version = r->keys[i].version;
        textbuf_puts(b, until ? ",{\"key\":" : "{\"key\":");
        textbuf_json_string(b, ref->key);
        textbuf_puts(b, ",\"version\":");
        textbuf_json_string(b, version ?: ref->version);
        textbuf_puts(b, "}");
}

typedef struct EventsCtx {
        TextBuf *b;
        bool first;
} EventsCtx;

static void event_json(const EventRecord *e, void *userdata) {
        EventsCtx *x = userdata;
        textbuf_printf(x->b, "%s{\"time\":%llu,\"message\":", x->first ? "" : ",",
                      (unsigned long long) (e->time / 1000000));
        textbuf_json_string(x->b, e->text);
        textbuf_puts(x->b, "}");
        x->first = false;
}

static void secret_json(Control *ctl, TextBuf *b, size_t index, bool detail) {
        ManagerSecretView v;
        manager_secret_view(ctl->manager, index, &v);
        const SecretConfig *cfg = v.cfg;
        const SecretRecord *r = state_find(ctl->state, cfg->name);
        char kube[512];

        textbuf_puts(b, "{\"name\":");
        textbuf_json_string(b, cfg->name);
        textbuf_puts(b, ",\"store\":");
        textbuf_json_string(b, cfg->store_name);
        textbuf_printf(b, ",\"refresh_interval\":%llu,\"status\":\"%s\",\"syncing\":%s",
                      (unsigned long long) (cfg->refresh_interval_usec / 1000000), status_string(r),
                      v.syncing ? "true" : "false");
        json_time(b, "last_sync", r ? r->last_success : 0);
        json_time(b, "last_attempt", r ? r->last_attempt : 0);
        json_time(b, "next_refresh", v.next_usec);
        textbuf_puts(b, ",\"last_error\":");
        textbuf_json_string(b, r ? r->last_error : NULL);
        if (detail) {
                textbuf_puts(b, ",\"data_hash\":");
                textbuf_json_string(b, r && r->data_hash[0] ? r->data_hash : NULL);
        }

        size_t total = cfg->n_files + !!cfg->kubernetes, ready = 0;
        for (size_t i = 0; r && i < r->n_targets; i++)
                if ((r->targets[i].state == TARGET_WRITTEN || r->targets[i].state == TARGET_UNCHANGED) &&
                    target_configured(cfg, r->targets[i].target))
                        ready++;
        textbuf_printf(b, ",\"targets_ready\":%zu,\"targets_total\":%zu", ready, total);
        if (!detail) {
                textbuf_puts(b, "}");
                return;
        }
        textbuf_puts(b, ",\"targets\":[");
        bool first = true;
        for (size_t i = 0; i < cfg->n_files; i++)
                target_json(b, &first, cfg->files[i].path, r);
        if (cfg->kubernetes) {
                snprintf(kube, sizeof(kube), "%s/%s", cfg->kubernetes->namespace, cfg->kubernetes->name);
                target_json(b, &first, kube, r);
        }
        for (size_t i = 0; r && i < r->n_targets; i++)
                if (target_kind(r->targets[i].target) == TARGET_KIND_RESTART)
                        target_json(b, &first, r->targets[i].target, r);
        textbuf_puts(b, "],\"remote_keys\":[");
        for (size_t i = 0; i < cfg->n_data_from; i++)
                key_json(b, cfg, &cfg->data_from[i].extract, i, r);
        for (size_t i = 0; i < cfg->n_data; i++)
                key_json(b, cfg, &cfg->data[i].remote, cfg->n_data_from + i, r);
        textbuf_puts(b, "]");
        EventsCtx x = { .b = b, .first = true };
        textbuf_puts(b, ",\"events\":[");
        state_events_foreach(ctl->state, cfg->name, event_json, &x);
        textbuf_puts(b, "]}");
}

/* ------------------------------------------------------------- methods ---- */

/* names: a JSON array of strings, or absent. Looks each up; on an unknown one replies
 * NoSuchSecret and returns -ENOENT. */
static int lookup_names(Connection *c, json_object *names, size_t **ret, size_t *ret_n) {
        size_t n = names ? json_object_array_length(names) : 0;
        _cleanup_free_ size_t *idx = calloc(n + 1, sizeof(size_t));
        if (!idx)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                json_object *e = json_object_array_get_idx(names, i);
                if (!json_object_is_type(e, json_type_string)) {
                        reply_error(c, "org.varlink.service.InvalidParameter", "parameter", "names");
                        return -EINVAL;
                }
                if (manager_find_secret(c->control->manager, json_object_get_string(e), &idx[i]) < 0) {
                        reply_error(c, "io.secretsyncd.NoSuchSecret", "name", json_object_get_string(e));
                        return -ENOENT;
                }
        }
        *ret = TAKE_PTR(idx);
        *ret_n = n;
        return 0;
}

static void method_status(Connection *c, json_object *names) {
        Control *ctl = c->control;
        _cleanup_free_ size_t *idx = NULL;
        size_t n;

        if (lookup_names(c, names, &idx, &n) < 0)
                return;
        reply_begin(c);
        textbuf_puts(&c->out, "\"secrets\":[");
        if (n == 0)
                for (size_t i = 0; i < manager_n_secrets(ctl->manager); i++) {
                        if (i)
                                textbuf_puts(&c->out, ",\n");
                        secret_json(ctl, &c->out, i, false);
                }
        else
                for (size_t i = 0; i < n; i++) {
                        if (i)
                                textbuf_puts(&c->out, ",\n");
                        secret_json(ctl, &c->out, idx[i], true);
                }
        textbuf_puts(&c->out, "]");
        reply_end(c);
}

static int waited_cmp(const void *a, const void *b) {
        return strcmp(((const Waited *) a)->name, ((const Waited *) b)->name);
}

static void refresh_reply(Connection *c) {
        reply_begin(c);
        textbuf_puts(&c->out, "\"results\":[");
        for (size_t i = 0; i < c->n_waited; i++) {
                const Waited *w = &c->waited[i];
                const SecretRecord *r = state_find(c->control->state, w->name);
                textbuf_puts(&c->out, i ? ",{\"name\":" : "{\"name\":");
                textbuf_json_string(&c->out, w->name);
                textbuf_printf(&c->out, ",\"status\":\"%s\",\"error\":",
                              w->result == 0    ? "Synced"
                              : w->result == -2 ? "Removed"
                              : w->result < 0   ? "Failed"
                                                : "Started");
                textbuf_json_string(&c->out, w->result == -2 ? "removed from the configuration by a reload"
                                             : w->result < 0 && r ? r->last_error
                                                                  : NULL);
                textbuf_puts(&c->out, "}");
        }
        textbuf_puts(&c->out, "]");
        reply_end(c);
}

static void method_refresh(Connection *c, json_object *names, bool all, bool wait) {
        Manager *m = c->control->manager;
        _cleanup_free_ size_t *idx = NULL;
        size_t n;

        if (lookup_names(c, names, &idx, &n) < 0)
                return;
        if (all == (n > 0)) {
                reply_error(c, "org.varlink.service.InvalidParameter", "parameter", all ? "all" : "names");
                return;
        }
        if (all) {
                n = manager_n_secrets(m);
                free(idx);
                idx = calloc(n + 1, sizeof(size_t));
                if (!idx) {
                        c->close_after = true;
                        return;
                }
                for (size_t i = 0; i < n; i++)
                        idx[i] = i;
        }
        c->waited = calloc(n + 1, sizeof(Waited));
        if (!c->waited) {
                c->close_after = true;
                return;
        }
        for (size_t i = 0; i < n; i++) {
                ManagerSecretView v;
                manager_secret_view(m, idx[i], &v);
                c->waited[c->n_waited] = (Waited) { .name = strdup(v.cfg->name), .result = 1 };
                if (!c->waited[c->n_waited].name) {
                        c->close_after = true;
                        return;
                }
                c->n_waited++;
        }
        qsort(c->waited, c->n_waited, sizeof(Waited), waited_cmp);
        /* Duplicates ("refresh a a") wait once. */
        size_t k = 0;
        for (size_t i = 0; i < c->n_waited; i++) {
                if (k > 0 && streq(c->waited[k - 1].name, c->waited[i].name)) {
                        free(c->waited[i].name);
                        continue;
                }
                c->waited[k++] = c->waited[i];
        }
        c->n_waited = k;
        log_info("control: refreshing %zu secret%s now%s", n, n == 1 ? "" : "s", wait ? "" : " (not waiting)");
        if (wait)
                c->n_pending = c->n_waited;
        for (size_t i = 0; i < n; i++)
                manager_refresh(m, idx[i]);
        if (!wait || c->n_pending == 0)
                refresh_reply(c);
}

static void method_reload(Connection *c) {
        _cleanup_strv_free_ char **errors = NULL;
        int r = manager_reload(c->control->manager, &errors);
        if (r >= 0) {
                reply_begin(c);
                reply_end(c);
                return;
        }
        textbuf_puts(&c->out, "{\"error\":\"io.secretsyncd.ReloadRejected\",\"parameters\":{\"errors\":[");
        size_t n = strv_length(errors);
        for (size_t i = 0; i < n; i++) {
                if (i)
                        textbuf_puts(&c->out, ",");
                textbuf_json_string(&c->out, errors[i]);
        }
        if (n == 0) {
                char b[256];
                snprintf(b, sizeof(b), "the configuration cannot be reloaded: %s", strerror(-r));
                textbuf_json_string(&c->out, b);
        }
        textbuf_puts(&c->out, "]}}");
        textbuf_append(&c->out, "", 1);
}

static void method_get_info(Connection *c) {
        reply_begin(c);
        textbuf_printf(&c->out,
                      "\"vendor\":\"secretsyncd\",\"product\":\"secretsyncd\",\"version\":\"%s\",\"url\":\"https://github.com/secretsyncd/secretsyncd\","
                      "\"interfaces\":[\"org.varlink.service\",\"io.secretsyncd\"]",
                      PACKAGE_VERSION);
        reply_end(c);
}

static void method_describe(Connection *c, const char *interface) {
        if (!interface) {
                reply_error(c, "org.varlink.service.InvalidParameter", "parameter", "interface");
                return;
        }
        if (!streq(interface, "io.secretsyncd")) {
                reply_error(c, "org.varlink.service.InterfaceNotFound", "interface", interface);
                return;
        }
        reply_begin(c);
        textbuf_puts(&c->out, "\"description\":");
        textbuf_json_string(&c->out, interface_description);
        reply_end(c);
}

static json_object *member(json_object *o, const char *key, json_type type) {
        json_object *v;
        if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, type))
                return NULL;
        return v;
}

static bool bool_param(json_object *params, const char *key) {
        json_object *v = member(params, key, json_type_boolean);
        return v && json_object_get_boolean(v);
}

int control_request_parse(const char *msg, size_t len, ControlRequest *ret) {
        json_object *req = NULL;

        if (json_parse_strict(msg, len, &req) < 0 || !json_object_is_type(req, json_type_object) ||
            !member(req, "method", json_type_string)) {
                json_object_put(req);
                return -EBADMSG;
        }
        json_object *params = member(req, "parameters", json_type_object), *names = NULL;
        *ret = (ControlRequest) {
                .root = req,
                .method = json_object_get_string(member(req, "method", json_type_string)),
                .params = params,
                .names = member(params, "names", json_type_array),
                .oneway = bool_param(req, "oneway"),
        };
        ret->names_invalid = params && json_object_object_get_ex(params, "names", &names) && !ret->names &&
                             !json_object_is_type(names, json_type_null);
        return 0;
}

void control_request_done(ControlRequest *r) {
        json_object_put(r->root);
        *r = (ControlRequest) {};
}

static void dispatch(Connection *c, const char *msg, size_t len) {
        ControlRequest req;

        if (control_request_parse(msg, len, &req) < 0) {
                /* Not Varlink: say so and hang up, as there is no telling where it ends. */
                reply_error(c, "org.varlink.service.InvalidParameter", "parameter", "method");
                c->close_after = true;
                return;
        }
        const char *method = req.method;
        json_object *params = req.params, *names = req.names;
        bool oneway = req.oneway;
        size_t before = c->out.len;

        if (req.names_invalid)
                reply_error(c, "org.varlink.service.InvalidParameter", "parameter", "names");
        else if (streq(method, "io.secretsyncd.Status"))
                method_status(c, names);
        else if (streq(method, "io.secretsyncd.Refresh"))
                method_refresh(c, names, bool_param(params, "all"),
                               !member(params, "wait", json_type_boolean) || bool_param(params, "wait"));
        else if (streq(method, "io.secretsyncd.Reload"))
                method_reload(c);
        else if (streq(method, "org.varlink.service.GetInfo"))
                method_get_info(c);
        else if (streq(method, "org.varlink.service.GetInterfaceDescription")) {
                json_object *i = member(params, "interface", json_type_string);
                method_describe(c, i ? json_object_get_string(i) : NULL);
        } else if (strncmp(method, "io.secretsyncd.", 15) == 0 || strncmp(method, "org.varlink.service.", 20) == 0)
                reply_error(c, "org.varlink.service.MethodNotFound", "method", method);
        else {
                const char *dot = strrchr(method, '.');
                _cleanup_free_ char *interface = strndup(method, dot ? (size_t) (dot - method) : strlen(method));
                reply_error(c, "org.varlink.service.InterfaceNotFound", "interface", interface ?: "");
        }
        control_request_done(&req);
        if (textbuf_error(&c->out) < 0) {
                log_warning("control: a reply could not be composed: %s", strerror(-textbuf_error(&c->out)));
                c->close_after = true;
        }
        if (oneway && c->n_pending == 0) {
                c->out.len = before; /* oneway: no reply */
                if (c->out.data)
                        c->out.data[before] = 0;
        }
}

/* Handle the complete requests in the input, one at a time: the next only once the reply
 * to this one is out. */
static void process(Connection *c) {
        while (c->out_done >= c->out.len && c->n_pending == 0 && !c->close_after) {
                char *nul = c->in.len ? memchr(c->in.data, 0, c->in.len) : NULL;
                if (!nul)
                        break;
                textbuf_done(&c->out);
                c->out = TEXTBUF_INIT(CONTROL_REPLY_MAX);
                c->out_done = 0;
                size_t len = (size_t) (nul - c->in.data);
                dispatch(c, c->in.data, len);
                textbuf_consume(&c->in, len + 1);
        }
}

/* --------------------------------------------------------------- I/O ---- */

static int flush_out(Connection *c) {
        while (c->out_done < c->out.len) {
                ssize_t n = send(c->fd, c->out.data + c->out_done, c->out.len - c->out_done, MSG_DONTWAIT | MSG_NOSIGNAL);
                if (n < 0)
                        return errno == EAGAIN || errno == EINTR ? 0 : -errno;
                c->out_done += (size_t) n;
                progress(c);
        }
        if (c->out.len > 0) {
                textbuf_done(&c->out); /* a big reply: give the memory back at once */
                c->out = TEXTBUF_INIT(CONTROL_REPLY_MAX);
                c->out_done = 0;
        }
        return 1;
}

/* Sends what is ready, reads what came, handles it; false if the connection is done. */
static bool connection_run(Connection *c, bool readable) {
        int r = flush_out(c);
        if (r < 0)
                return false;
        if (r > 0 && c->close_after)
                return false;
        if (readable && c->n_pending == 0) {
                char buf[16384];
                ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
                if (n == 0)
                        return false;
                if (n < 0 && errno != EAGAIN && errno != EINTR)
                        return false;
                if (n > 0) {
                        progress(c);
                        textbuf_append(&c->in, buf, (size_t) n);
                        if (textbuf_error(&c->in) < 0) {
                                c->in.error = 0;
                                c->in.len = 0;
                                c->out.len = 0;
                                c->out_done = 0;
                                reply_error(c, "org.varlink.service.InvalidParameter", "parameter", "message too long");
                                c->close_after = true;
                        }
                }
        }
        process(c);
        r = flush_out(c);
        if (r < 0 || (r > 0 && c->close_after))
                return false;
        connection_update(c);
        return true;
}

static int on_connection_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Connection *c = userdata;
        if (!connection_run(c, revents & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                connection_free(c);
        return 0;
}

static int on_connection_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        Connection *c = userdata;
        log_debug("control: closing a connection idle for %us", CONTROL_IDLE_USEC / 1000000U);
        connection_free(c);
        return 0;
}

static bool peer_allowed(int fd) {
        struct ucred cred;
        socklen_t len = sizeof(cred);
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
                return false;
        if (cred.uid == 0 || cred.uid == geteuid())
                return true;
        log_warning("control: refused a client with uid %u (pid %d): only root may use %s", (unsigned) cred.uid,
                    (int) cred.pid, CONTROL_SOCKET_NAME);
        return false;
}

static void accept_one(Control *ctl, int fd) {
        Connection *c = calloc(1, sizeof(Connection));
        if (!c) {
                close(fd);
                return;
        }
        *c = (Connection) { .control = ctl, .fd = fd, .in = TEXTBUF_INIT(CONTROL_MESSAGE_MAX),
                            .out = TEXTBUF_INIT(CONTROL_REPLY_MAX) };
        LIST_PREPEND(ctl->connections, c);
        ctl->n_connections++;
        if (sd_event_add_io(ctl->event, &c->io, fd, EPOLLIN, on_connection_io, c) < 0 ||
            sd_event_add_time_relative(ctl->event, &c->timer, CLOCK_MONOTONIC, CONTROL_IDLE_USEC, 0,
                                       on_connection_timeout, c) < 0) {
                connection_free(c);
                return;
        }
        if (!peer_allowed(fd)) {
                reply_error(c, "org.varlink.service.PermissionDenied", NULL, NULL);
                c->close_after = true;
                if (!connection_run(c, false))
                        connection_free(c);
        }
}

static int on_listen(sd_event_source *s, int lfd, uint32_t revents, void *userdata) {
        Control *ctl = userdata;
        /* A burst at a time: a flood of connections takes turns with the syncing. */
        for (unsigned i = 0; i < CONTROL_ACCEPT_BURST; i++) {
                int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0) {
                        if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                                log_warning("control: accept: %s", strerror(errno));
                        return 0;
                }
                if (ctl->n_connections >= CONTROL_CONNECTIONS_MAX) {
                        if (!ctl->warned_full)
                                log_warning("control: %u connections open, the most allowed; refusing more",
                                            CONTROL_CONNECTIONS_MAX);
                        ctl->warned_full = true;
                        close(fd);
                        continue;
                }
                ctl->warned_full = false;
                accept_one(ctl, fd);
        }
        return 0;
}

/* A waited secret's sync ended (result 0 or -1), or a reload removed it (-2). */
static void waited_end(Control *ctl, const char *name, int result) {
        for (Connection *c = ctl->connections, *next; c; c = next) {
                next = c->next;
                if (c->n_pending == 0)
                        continue;
                Waited key = { .name = (char *) name };
                Waited *w = bsearch(&key, c->waited, c->n_waited, sizeof(Waited), waited_cmp);
                if (!w || w->result != 1)
                        continue;
                w->result = result;
                if (--c->n_pending > 0)
                        continue;
                refresh_reply(c);
                progress(c);
                if (!connection_run(c, false))
                        connection_free(c);
        }
}

void control_secret_done(Control *ctl, const char *name, bool ok) {
        if (ctl)
                waited_end(ctl, name, ok ? 0 : -1);
}

void control_prune(Control *ctl, bool (*configured)(const char *name, void *userdata), void *userdata) {
        if (!ctl)
                return;
        /* Names first: answering a connection may free it and its list. */
        _cleanup_strv_free_ char **gone = NULL;
        size_t n = 0;
        for (Connection *c = ctl->connections; c; c = c->next)
                for (size_t i = 0; i < c->n_waited; i++)
                        if (c->waited[i].result == 1 && !configured(c->waited[i].name, userdata)) {
                                char **l = reallocarray(gone, n + 2, sizeof(char *));
                                if (!l)
                                        return;
                                gone = l;
                                if (!(gone[n] = strdup(c->waited[i].name)))
                                        return;
                                gone[++n] = NULL;
                        }
        for (size_t i = 0; i < n; i++)
                waited_end(ctl, gone[i], -2);
}

/* ----------------------------------------------------------- lifecycle ---- */

int control_new(sd_event *e, Manager *m, StateTable *state, const char *runtime_dir, Control **ret,
                char **ret_error) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int fd = -EBADF;
        int r;

        if (asprintf(&path, "%s/%s", runtime_dir, CONTROL_SOCKET_NAME) < 0)
                return -ENOMEM;
        if (strlen(path) >= sizeof(sa.sun_path)) {
                if (asprintf(ret_error, "%s: the path is too long for a socket", path) < 0)
                        *ret_error = NULL;
                return -ENAMETOOLONG;
        }
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        /* A daemon already answering there keeps its socket; a stale one is replaced. */
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) >= 0 || errno == EAGAIN) {
                if (asprintf(ret_error, "%s: another secretsyncd is listening there", path) < 0)
                        *ret_error = NULL;
                return -EADDRINUSE;
        }
        close(fd);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        (void) unlink(path);
        mode_t old = umask(0177); /* mode 0600 from the start, not after a window */
        r = bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 ? -errno : 0;
        umask(old);
        if (r >= 0 && chmod(path, 0600) < 0)
                r = -errno;
        if (r >= 0 && listen(fd, SOMAXCONN) < 0)
                r = -errno;
        if (r < 0) {
                if (asprintf(ret_error, "cannot listen on %s: %s", path, strerror(-r)) < 0)
                        *ret_error = NULL;
                return r;
        }
        Control *ctl = calloc(1, sizeof(Control));
        if (!ctl)
                return -ENOMEM;
        *ctl = (Control) { .event = sd_event_ref(e), .manager = m, .state = state, .path = TAKE_PTR(path),
                           .fd = TAKE_FD(fd) };
        r = sd_event_add_io(e, &ctl->listen, ctl->fd, EPOLLIN, on_listen, ctl);
        if (r < 0) {
                control_free(ctl);
                return r;
        }
        *ret = ctl;
        return 0;
}

Control *control_free(Control *ctl) {
        if (!ctl)
                return NULL;
        while (ctl->connections)
                connection_free(ctl->connections);
        sd_event_source_disable_unref(ctl->listen);
        if (ctl->fd >= 0) {
                close(ctl->fd);
                (void) unlink(ctl->path);
        }
        sd_event_unref(ctl->event);
        free(ctl->path);
        free(ctl);
        return NULL;
}
