/* SPDX-License-Identifier: MIT */
/* The status of each secret as operators see it (secretsyncctl, metrics), and the state
 * file that carries it across restarts. */
#include "core/state.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/atomic-file.h"
#include "util/json.h"
#include "util/secbuf.h"

#define STATE_FORMAT "secretsyncd-status-1"

static const char *const target_states[_TARGET_STATE_MAX] = {
        [TARGET_PENDING] = "pending",   [TARGET_WRITTEN] = "written", [TARGET_UNCHANGED] = "unchanged",
        [TARGET_FAILED] = "failed",     [TARGET_DELETED] = "deleted",
};

const char *target_state_to_string(TargetState s) {
        return s >= 0 && s < _TARGET_STATE_MAX ? target_states[s] : NULL;
}

static TargetState target_state_from_string(const char *s) {
        for (int i = 0; i < _TARGET_STATE_MAX; i++)
                if (streq(s, target_states[i]))
                        return (TargetState) i;
        return TARGET_PENDING;
}

static uint64_t now_realtime(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

/* --------------------------------------------------------------- records ---- */

static SecretRecord *record_free(SecretRecord *r) {
        if (!r)
                return NULL;
        for (size_t i = 0; i < r->n_targets; i++) {
                free(r->targets[i].target);
                free(r->targets[i].message);
        }
        for (size_t i = 0; i < r->n_keys; i++) {
                free(r->keys[i].key);
                free(r->keys[i].version);
        }
        free(r->targets);
        free(r->keys);
        free(r->last_error);
        free(r->name);
        free(r);
        return NULL;
}

static size_t hash(const char *s) {
        size_t h = 1469598103934665603ULL;
        for (; *s; s++)
                h = (h ^ (unsigned char) *s) * 1099511628211ULL;
        return h;
}

static size_t slot_of(const StateTable *t, const char *name) {
        size_t i = hash(name) & (t->n_slots - 1);
        while (t->slots[i] && !streq(t->slots[i]->name, name))
                i = (i + 1) & (t->n_slots - 1);
        return i;
}

static int grow(StateTable *t) {
        size_t n = t->n_slots ? t->n_slots * 2 : 64;
        SecretRecord **old = t->slots;
        size_t n_old = t->n_slots;
        t->slots = calloc(n, sizeof(SecretRecord *));
        if (!t->slots) {
                t->slots = old;
                return -ENOMEM;
        }
        t->n_slots = n;
        for (size_t i = 0; i < n_old; i++)
                if (old[i])
                        t->slots[slot_of(t, old[i]->name)] = old[i];
        free(old);
        return 0;
}

SecretRecord *state_find(StateTable *t, const char *name) {
        return t->n_slots ? t->slots[slot_of(t, name)] : NULL;
}

SecretRecord *state_get(StateTable *t, const char *name) {
        SecretRecord *r = state_find(t, name);
        if (r)
                return r;
        if ((t->n + 1) * 2 > t->n_slots && grow(t) < 0)
                return NULL;
        r = calloc(1, sizeof(SecretRecord));
        if (!r || !(r->name = strdup(name)))
                return record_free(r);
        r->status = 1;
        t->slots[slot_of(t, name)] = r;
        t->n++;
        return r;
}

void state_prune(StateTable *t, bool (*keep)(const char *name, void *userdata), void *userdata) {
        SecretRecord **old = t->slots;
        size_t n_old = t->n_slots;
        bool removed = false;

        for (size_t i = 0; i < n_old; i++)
                if (old[i] && !keep(old[i]->name, userdata)) {
                        old[i] = record_free(old[i]);
                        t->n--;
                        removed = true;
                }
        if (!removed)
                return;
        /* Open addressing: put the rest back so that no probe chain has a hole. */
        t->slots = calloc(n_old, sizeof(SecretRecord *));
        if (!t->slots) {
                /* Keep the old array: a hole only hides records, it corrupts nothing... */
                t->slots = old;
                for (size_t i = 0; i < n_old; i++)
                        if (old[i]) {
                                SecretRecord *r = old[i];
                                old[i] = NULL;
                                old[slot_of(t, r->name)] = r;
                        }
                return;
        }
        for (size_t i = 0; i < n_old; i++)
                if (old[i])
                        t->slots[slot_of(t, old[i]->name)] = old[i];
        free(old);
        t->dirty = true;
}

static TargetRecord *target_get(SecretRecord *r, const char *target) {
        for (size_t i = 0; i < r->n_targets; i++)
                if (streq(r->targets[i].target, target))
                        return &r->targets[i];
        if (r->n_targets >= STATE_TARGETS_MAX)
                return NULL;
        TargetRecord *n = realloc(r->targets, (r->n_targets + 1) * sizeof(TargetRecord));
        if (!n)
                return NULL;
        r->targets = n;
        TargetRecord *x = &n[r->n_targets];
        *x = (TargetRecord) { .target = strdup(target) };
        if (!x->target)
                return NULL;
        r->n_targets++;
        return x;
}

static void key_set(SecretRecord *r, const char *key, const char *version) {
        KeyRecord *k = NULL;
        for (size_t i = 0; i < r->n_keys && !k; i++)
                if (streq(r->keys[i].key, key))
                        k = &r->keys[i];
        if (!k) {
                if (r->n_keys >= STATE_KEYS_MAX)
                        return;
                KeyRecord *n = realloc(r->keys, (r->n_keys + 1) * sizeof(KeyRecord));
                if (!n)
                        return;
                r->keys = n;
                k = &n[r->n_keys];
                *k = (KeyRecord) { .key = strdup(key) };
                if (!k->key)
                        return;
                r->n_keys++;
        }
        if (streq_ptr(k->version, version))
                return;
        free(k->version);
        k->version = version ? strdup(version) : NULL;
}

static char *message_dup(const char *s) {
        return strndup(s, STATE_MESSAGE_MAX);
}

static void event_add(StateTable *t, const char *secret, const char *action, const char *message) {
        EventRecord *e = &t->events[t->events_next];
        free(e->secret);
        free(e->text);
        *e = (EventRecord) { .time = now_realtime(), .secret = strdup(secret) };
        if (asprintf(&e->text, "%s: %.*s", action, (int) STATE_MESSAGE_MAX, message) < 0)
                e->text = NULL;
        t->events_next = (t->events_next + 1) % STATE_EVENTS_MAX;
}

/* A file path, namespace/name (the Kubernetes Secret) or namespace/kind/name (a workload
 * restarted for it). */
TargetKind target_kind(const char *target) {
        if (target[0] == '/')
                return TARGET_KIND_FILE;
        const char *slash = strchr(target, '/');
        return slash && strchr(slash + 1, '/') ? TARGET_KIND_RESTART : TARGET_KIND_KUBERNETES;
}

void state_note_event(StateTable *t, const LogEvent *ev, const char *message) {
        switch (ev->action) {
        case LOG_ACTION_LEADER_ACQUIRED:
        case LOG_ACTION_LEADER_LOST:
                t->leader = ev->action == LOG_ACTION_LEADER_ACQUIRED;
                return;
        case LOG_ACTION_RELOADED:
        case LOG_ACTION_RELOAD_REJECTED:
                t->reload_ok = ev->action == LOG_ACTION_RELOADED;
                return;
        default:
                break;
        }
        if (!ev->secret || ev->action == LOG_ACTION_NONE)
                return;
        SecretRecord *r = state_get(t, ev->secret);
        if (!r)
                return;
        const char *action = log_action_to_string(ev->action);
        if (action)
                event_add(t, ev->secret, action, message);
        t->dirty = true;

        if (ev->action == LOG_ACTION_FETCHED && ev->remote_key) {
                key_set(r, ev->remote_key, ev->version);
                return;
        }
        if (ev->action == LOG_ACTION_FAILED) {
                free(r->last_error);
                r->last_error = message_dup(message);
        }
        if (!ev->target)
                return;
        TargetState s;
        switch (ev->action) {
        case LOG_ACTION_WRITTEN:
                s = TARGET_WRITTEN;
                break;
        case LOG_ACTION_UNCHANGED:
                s = TARGET_UNCHANGED;
                break;
        case LOG_ACTION_FAILED:
                s = TARGET_FAILED;
                break;
        case LOG_ACTION_DELETED:
                s = TARGET_DELETED;
                break;
        default:
                return; /* on_change commands: in the events only */
        }
        TargetRecord *x = target_get(r, ev->target);
        if (!x)
                return;
        x->state = s;
        x->time = now_realtime();
        free(x->message);
        x->message = s == TARGET_FAILED ? message_dup(message) : NULL;
        if (s == TARGET_WRITTEN) {
                TargetKind k = target_kind(ev->target);
                if (k == TARGET_KIND_FILE)
                        r->writes_file++;
                else if (k == TARGET_KIND_KUBERNETES)
                        r->writes_kube++;
        }
}

void state_note_data(StateTable *t, const char *name, const char *data_hash) {
        SecretRecord *r = state_get(t, name);
        if (r)
                snprintf(r->pending_hash, sizeof(r->pending_hash), "%s", data_hash);
}

void state_note_sync(StateTable *t, const char *name, bool ok) {
        SecretRecord *r = state_get(t, name);
        if (!r)
                return;
        r->last_attempt = now_realtime();
        r->status = ok ? 0 : -1;
        if (ok) {
                r->last_success = r->last_attempt;
                r->syncs_ok++;
                memcpy(r->data_hash, r->pending_hash, sizeof(r->data_hash));
                free(r->last_error);
                r->last_error = NULL;
        } else
                r->syncs_failed++;
        t->dirty = true;
}

void state_events_foreach(StateTable *t, const char *secret, void (*fn)(const EventRecord *e, void *userdata),
                          void *userdata) {
        for (unsigned i = 0; i < STATE_EVENTS_MAX; i++) {
                const EventRecord *e = &t->events[(t->events_next + i) % STATE_EVENTS_MAX];
                if (e->secret && e->text && streq(e->secret, secret))
                        fn(e, userdata);
        }
}

int state_table_new(StateTable **ret) {
        StateTable *t = calloc(1, sizeof(StateTable));
        if (!t)
                return -ENOMEM;
        t->reload_ok = true;
        *ret = t;
        return 0;
}

StateTable *state_table_free(StateTable *t) {
        if (!t)
                return NULL;
        for (size_t i = 0; i < t->n_slots; i++)
                record_free(t->slots[i]);
        free(t->slots);
        for (size_t i = 0; i < STATE_EVENTS_MAX; i++) {
                free(t->events[i].secret);
                free(t->events[i].text);
        }
        free(t);
        return NULL;
}

/* ------------------------------------------------------------------ file ---- */

static int path_join(const char *dir, char **ret) {
        return asprintf(ret, "%s/%s", dir, STATE_FILE_NAME) < 0 ? -ENOMEM : 0;
}

int state_save(StateTable *t, const char *dir, char **ret_error) {
        _cleanup_textbuf_ TextBuf b = TEXTBUF_INIT(STATE_FILE_MAX);
        _cleanup_free_ char *path = NULL;

        if (path_join(dir, &path) < 0)
                return -ENOMEM;
        textbuf_printf(&b, "{\"format\":\"%s\",\"secrets\":{", STATE_FORMAT);
        bool first = true;
        for (size_t i = 0; i < t->n_slots; i++) {
                const SecretRecord *r = t->slots[i];
                if (!r || r->status == 1)
                        continue;
                textbuf_puts(&b, first ? "\n" : ",\n");
                first = false;
                textbuf_json_string(&b, r->name);
                textbuf_printf(&b, ":{\"status\":%d,\"last_success\":%llu,\"last_attempt\":%llu,\"last_error\":",
                              r->status, (unsigned long long) r->last_success, (unsigned long long) r->last_attempt);
                textbuf_json_string(&b, r->last_error);
                textbuf_puts(&b, ",\"data_hash\":");
                textbuf_json_string(&b, r->data_hash[0] ? r->data_hash : NULL);
                textbuf_puts(&b, ",\"keys\":[");
                for (size_t k = 0; k < r->n_keys; k++) {
                        textbuf_puts(&b, k ? ",[" : "[");
                        textbuf_json_string(&b, r->keys[k].key);
                        textbuf_puts(&b, ",");
                        textbuf_json_string(&b, r->keys[k].version);
                        textbuf_puts(&b, "]");
                }
                textbuf_puts(&b, "],\"targets\":[");
                for (size_t k = 0; k < r->n_targets; k++) {
                        const TargetRecord *x = &r->targets[k];
                        textbuf_puts(&b, k ? ",[" : "[");
                        textbuf_json_string(&b, x->target);
                        textbuf_printf(&b, ",\"%s\",%llu,", target_state_to_string(x->state),
                                      (unsigned long long) x->time);
                        textbuf_json_string(&b, x->message);
                        textbuf_puts(&b, "]");
                }
                textbuf_puts(&b, "]}");
        }
        textbuf_puts(&b, "\n}}\n");
        if (textbuf_error(&b) < 0)
                return textbuf_error(&b);
        int r = atomic_file_write(path, b.data, b.len, geteuid(), getegid(), 0600, NULL, NULL, ret_error);
        if (r >= 0)
                t->dirty = false;
        return r;
}

static const char *jstr(json_object *o, const char *key) {
        json_object *v;
        return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
                       ? json_object_get_string(v)
                       : NULL;
}

static uint64_t juint(json_object *o, const char *key) {
        json_object *v;
        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
                return 0;
        int64_t n = json_object_get_int64(v);
        return n > 0 ? (uint64_t) n : 0;
}

static void load_record(StateTable *t, const char *name, json_object *o) {
        json_object *a;
        if (!json_object_is_type(o, json_type_object))
                return;
        SecretRecord *r = state_get(t, name);
        if (!r)
                return;
        json_object *st;
        r->status = json_object_object_get_ex(o, "status", &st) && json_object_is_type(st, json_type_int) &&
                                    json_object_get_int(st) == 0
                            ? 0
                            : -1;
        r->last_success = juint(o, "last_success");
        r->last_attempt = juint(o, "last_attempt");
        const char *e = jstr(o, "last_error");
        r->last_error = e ? message_dup(e) : NULL;
        const char *h = jstr(o, "data_hash");
        if (h && strlen(h) == 64 && strspn(h, "0123456789abcdef") == 64)
                memcpy(r->data_hash, h, 65);
        if (json_object_object_get_ex(o, "keys", &a) && json_object_is_type(a, json_type_array))
                for (size_t i = 0; i < json_object_array_length(a); i++) {
                        json_object *k = json_object_array_get_idx(a, i), *kk, *kv;
                        if (!json_object_is_type(k, json_type_array) || json_object_array_length(k) != 2)
                                continue;
                        kk = json_object_array_get_idx(k, 0);
                        kv = json_object_array_get_idx(k, 1);
                        if (json_object_is_type(kk, json_type_string))
                                key_set(r, json_object_get_string(kk),
                                        json_object_is_type(kv, json_type_string) ? json_object_get_string(kv) : NULL);
                }
        if (json_object_object_get_ex(o, "targets", &a) && json_object_is_type(a, json_type_array))
                for (size_t i = 0; i < json_object_array_length(a); i++) {
                        json_object *x = json_object_array_get_idx(a, i);
                        if (!json_object_is_type(x, json_type_array) || json_object_array_length(x) != 4 ||
                            !json_object_is_type(json_object_array_get_idx(x, 0), json_type_string) ||
                            !json_object_is_type(json_object_array_get_idx(x, 1), json_type_string))
                                continue;
                        TargetRecord *tr = target_get(r, json_object_get_string(json_object_array_get_idx(x, 0)));
                        if (!tr)
                                continue;
                        tr->state = target_state_from_string(json_object_get_string(json_object_array_get_idx(x, 1)));
                        int64_t when = json_object_get_int64(json_object_array_get_idx(x, 2));
                        tr->time = when > 0 ? (uint64_t) when : 0;
                        json_object *m = json_object_array_get_idx(x, 3);
                        free(tr->message);
                        tr->message = json_object_is_type(m, json_type_string) ? message_dup(json_object_get_string(m))
                                                                                 : NULL;
                }
}

int state_load(StateTable *t, const char *dir, char **ret_warning) {
        _cleanup_free_ char *path = NULL;
        _cleanup_secbuf_ SecBuf *data = NULL;
        json_object *root = NULL, *secrets;
        const char *why = NULL;
        int r;

        if (path_join(dir, &path) < 0)
                return -ENOMEM;
        r = secbuf_read_file(path, STATE_FILE_MAX, false, &data);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                why = strerror(-r);
        else if (json_parse_strict(data->data, data->len, &root) < 0)
                why = "not valid JSON";
        else if (!json_object_is_type(root, json_type_object) || !streq_ptr(jstr(root, "format"), STATE_FORMAT))
                why = "not a secretsyncd status file (no \"format\": \"" STATE_FORMAT "\")";
        else if (!json_object_object_get_ex(root, "secrets", &secrets) ||
                 !json_object_is_type(secrets, json_type_object))
                why = "no \"secrets\" object";
        else {
                json_object_object_foreach(secrets, name, rec) load_record(t, name, rec);
        }
        json_object_put(root);
        if (why) {
                if (ret_warning && asprintf(ret_warning, "%s: %s; ignoring it (status starts empty)", path, why) < 0)
                        *ret_warning = NULL;
                return -EBADMSG;
        }
        return 0;
}
