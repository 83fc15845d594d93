/* SPDX-License-Identifier: MIT */
#include "sinks/sink-kubernetes.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kube/kube-client.h"
#include "sinks/kube-informer.h"
#include "sinks/kube-lease.h"
#include "sinks/kube-secret.h"
#include "kube/kubeconfig.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/json.h"
#include "util/list.h"
#include "util/random.h"
#include "util/urlencode.h"


typedef struct Target Target;

struct Target {
        KubeSink *k;
        KubeInformer *ns; /* its namespace's */
        char *secret;
        char *name;
        char *shown; /* "namespace/name" */
        const KubeTarget *cfg;
        char **keys;
        SecBuf *body;
        char hash[KUBE_DATA_HASH_LEN + 1];
        KubeCall *call;
        bool dirty;    /* evaluate again once the call in flight ends */
        bool creating; /* the call in flight is a create */
        bool existed;  /* the Secret existed (with other data) before this write */
        bool wrote;    /* a write succeeded since the last report (then re-evaluated) */
        char before[KUBE_DATA_HASH_LEN + 1];
        char sent[KUBE_DATA_HASH_LEN + 1]; /* the data hash of the body in flight */
        kube_write_cb cb;
        void *cb_userdata;
        sd_event_source *retry;
        unsigned failures;
        Target *next;
};

/* A request that outlives its target: a rollout restart, a deletion. */
typedef struct Detached {
        KubeSink *k;
        char *secret, *namespace, *what;
        bool deletion;
        KubeCall *call;
        struct Detached *prev, *next;
} Detached;

struct KubeSink {
        sd_event *event;
        KubeClient *client;
        KubeLease *lease;
        bool once;
        bool decided; /* without election: always; with: after the Lease's first answer */
        bool stopping;
        char skip_reason[256];
        KubeSinkEvents ev;
        KubeInformer **informers; /* one per namespace with targets */
        size_t n_informers;
        Target *targets;
        Detached *detached;
        void (*stopped)(void *userdata);
        void *stopped_userdata;
};

static void target_eval(Target *t);

/* ------------------------------------------------------------- comparing ---- */

static bool has_pair(char *const *l, const char *key, const char *value) {
        size_t kl = strlen(key);
        for (; l && *l; l++)
                if (strncmp(*l, key, kl) == 0 && (*l)[kl] == '=' && streq(*l + kl + 1, value))
                        return true;
        return false;
}

static bool has_all(char *const *have, char *const *want) {
        for (; want && *want; want++)
                if (!strv_contains(have, *want))
                        return false;
        return true;
}

/* The Secret already is what the target asks for: data, our label and annotations, the
 * configured ones, the type. Labels others added do not matter. */
static bool observed_matches(const Target *t, const KubeObserved *o) {
        return streq(o->data_hash, t->hash) && has_pair(o->labels, KUBE_MANAGED_BY_LABEL, KUBE_MANAGED_BY_VALUE) &&
               has_pair(o->annotations, KUBE_DATA_HASH_ANNOTATION, t->hash) &&
               has_pair(o->annotations, KUBE_SECRET_ANNOTATION, t->secret) && has_all(o->labels, t->cfg->labels) &&
               has_all(o->annotations, t->cfg->annotations) && streq(o->type, t->cfg->type ?: "Opaque");
}

/* ------------------------------------------------------------- namespaces ---- */

static void on_informer_synced(KubeInformer *i, void *userdata) {
        KubeSink *k = userdata;
        for (Target *t = k->targets; t; t = t->next)
                if (t->ns == i)
                        target_eval(t);
}

static void on_informer_changed(KubeInformer *i, const char *name, void *userdata) {
        KubeSink *k = userdata;
        for (Target *t = k->targets; t; t = t->next)
                if (t->ns == i && streq(t->name, name))
                        target_eval(t);
}

static KubeInformer *informer_get(KubeSink *k, const char *namespace) {
        for (size_t j = 0; j < k->n_informers; j++)
                if (streq(kube_informer_namespace(k->informers[j]), namespace))
                        return k->informers[j];
        KubeInformerEvents ev = { .on_synced = on_informer_synced, .on_changed = on_informer_changed, .userdata = k };
        KubeInformer **l = reallocarray(k->informers, k->n_informers + 1, sizeof(KubeInformer *));
        if (!l)
                return NULL;
        k->informers = l;
        if (kube_informer_new(k->event, k->client, namespace, !k->once, &ev, &l[k->n_informers]) < 0)
                return NULL;
        return l[k->n_informers++];
}

/* ---------------------------------------------------------------- targets ---- */

static void target_report(Target *t, KubeWriteOutcome outcome, int error, const char *message) {
        KubeWriteResult r = { .outcome = outcome, .error = error, .message = message, .repair = !t->cb };
        kube_write_cb cb = t->cb;
        void *ud = t->cb_userdata;

        t->cb = NULL;
        if (outcome == KUBE_WRITE_UNCHANGED && t->wrote)
                r.outcome = outcome = KUBE_WRITE_WRITTEN;
        t->wrote = false;
        if (outcome == KUBE_WRITE_FAILED && !cb) {
                /* A repair of our own failed: try again later (a manager's write is retried by the
                 * manager's backoff). */
                uint64_t d = kube_retry_delay(++t->failures);
                if (t->retry) {
                        (void) sd_event_source_set_time_relative(t->retry, d);
                        (void) sd_event_source_set_enabled(t->retry, SD_EVENT_ONESHOT);
                }
        } else if (outcome != KUBE_WRITE_FAILED)
                t->failures = 0;
        if (cb)
                cb(&r, ud);
        else if (outcome != KUBE_WRITE_UNCHANGED && outcome != KUBE_WRITE_SKIPPED && t->k->ev.on_write)
                t->k->ev.on_write(t->k, t->secret, t->shown, &r, t->k->ev.userdata);
}

static void restart_workloads(Target *t);

static int on_target_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        target_eval(userdata);
        return 0;
}

static void on_written(const KubeResponse *r, void *userdata);

static void send(Target *t, const char *method, const char *query, const char *content_type, bool creating) {
        _cleanup_free_ char *path = NULL;
        int r;

        if (asprintf(&path, "/api/v1/namespaces/%s/secrets%s%s%s", kube_informer_namespace(t->ns), creating ? "" : "/",
                     creating ? "" : t->name, query) < 0)
                return target_report(t, KUBE_WRITE_FAILED, -ENOMEM, "out of memory");
        t->creating = creating;
        memcpy(t->sent, t->hash, sizeof(t->sent));
        r = kube_request(t->k->client,
                         &(KubeRequest) { .method = method, .path = path, .content_type = content_type, .body = t->body },
                         on_written, t, &t->call);
        if (r < 0)
                target_report(t, KUBE_WRITE_FAILED, r, "cannot send the request");
}

static void apply(Target *t, bool force) {
        send(t, "PATCH", force ? "?fieldManager=secretsyncd&force=true" : "?fieldManager=secretsyncd",
             "application/apply-patch+yaml", false);
}

static void on_existing(const KubeResponse *r, void *userdata) {
        Target *t = userdata;
        json_object *meta = NULL, *labels = NULL, *data = NULL;
        _cleanup_free_ char *msg = NULL;

        t->call = NULL;
        if (r->error == -ECANCELED)
                return target_report(t, KUBE_WRITE_FAILED, r->error, "cancelled");
        if (r->error == -ENOENT && t->cfg->creation_policy == CREATION_MERGE) {
                if (asprintf(&msg, "Secret %s does not exist; creation_policy = \"merge\" only adds keys to an existing one",
                             t->shown) < 0)
                        msg = NULL;
                return target_report(t, KUBE_WRITE_FAILED, -ENOENT, msg ?: "Secret does not exist");
        }
        if (r->error == -ENOENT) /* gone again since our create failed: create it */
                return target_eval(t);
        if (r->error < 0) {
                if (asprintf(&msg, "cannot read Secret %s: %s", t->shown, r->message) < 0)
                        msg = NULL;
                return target_report(t, KUBE_WRITE_FAILED, r->error, msg ?: r->message);
        }
        json_object_object_get_ex(r->object, "metadata", &meta);
        json_object_object_get_ex(meta, "labels", &labels);
        json_object_object_get_ex(r->object, "data", &data);
        if (t->cfg->creation_policy == CREATION_MERGE) {
                json_object *annotations = NULL;
                char have[KUBE_DATA_HASH_LEN + 1];
                json_object_object_get_ex(meta, "annotations", &annotations);
                if (kube_observed_data_hash(data, t->keys, have) >= 0 && streq(have, t->hash) &&
                    streq_ptr(kube_json_str(annotations, KUBE_DATA_HASH_ANNOTATION), t->hash) &&
                    streq_ptr(kube_json_str(annotations, KUBE_SECRET_ANNOTATION), t->secret))
                        return target_report(t, KUBE_WRITE_UNCHANGED, 0, NULL);
                t->existed = kube_observed_data_hash(data, t->keys, t->before) >= 0;
                return apply(t, false);
        }
        if (!streq_ptr(kube_json_str(labels, KUBE_MANAGED_BY_LABEL), KUBE_MANAGED_BY_VALUE)) {
                if (asprintf(&msg,
                             "Secret %s exists and is not managed by secretsyncd (it has no label " KUBE_MANAGED_BY_LABEL
                             "=" KUBE_MANAGED_BY_VALUE "): it is left alone; remove it, or use creation_policy = "
                             "\"merge\" to add keys to it",
                             t->shown) < 0)
                        msg = NULL;
                return target_report(t, KUBE_WRITE_FAILED, -EEXIST, msg ?: "Secret exists and is not ours");
        }
        /* Ours, and the watch had not shown it yet. */
        kube_informer_upsert(t->ns, r->object);
        t->existed = kube_observed_data_hash(data, NULL, t->before) >= 0;
        apply(t, true);
}

static void get_existing(Target *t) {
        _cleanup_free_ char *path = NULL;
        if (asprintf(&path, "/api/v1/namespaces/%s/secrets/%s", kube_informer_namespace(t->ns), t->name) < 0 ||
            kube_request(t->k->client, &(KubeRequest) { .path = path }, on_existing, t, &t->call) < 0)
                target_report(t, KUBE_WRITE_FAILED, -ENOMEM, "out of memory");
}

static void on_written(const KubeResponse *r, void *userdata) {
        Target *t = userdata;
        _cleanup_free_ char *msg = NULL;
        bool creating = t->creating;

        t->call = NULL;
        if (r->error == -ECANCELED)
                return target_report(t, KUBE_WRITE_FAILED, r->error, "cancelled");
        if (creating && r->error == -EEXIST)
                return get_existing(t); /* ours but not seen yet, or someone else's */
        if (r->error < 0) {
                const char *what = creating ? "create" : "apply";
                if (r->error == -EBUSY && t->cfg->creation_policy == CREATION_MERGE)
                        what = "merge our keys into"; /* another field manager owns one of them */
                if (asprintf(&msg, "cannot %s Secret %s: %s", what, t->shown, r->message) < 0)
                        msg = NULL;
                return target_report(t, KUBE_WRITE_FAILED, r->error, msg ?: r->message);
        }
        if (t->cfg->creation_policy != CREATION_MERGE)
                kube_informer_upsert(t->ns, r->object);
        /* The data of an existing Secret changed: restart its workloads, once, whatever
         * comes next. */
        if (t->existed && !streq(t->before, t->sent))
                restart_workloads(t);
        t->existed = false;
        if (t->dirty) { /* something changed while the write was out: look again */
                t->wrote = true;
                t->dirty = false;
                return target_eval(t);
        }
        target_report(t, KUBE_WRITE_WRITTEN, 0, NULL);
}

static void target_eval(Target *t) {
        KubeSink *k = t->k;

        if (t->call) {
                t->dirty = true;
                return;
        }
        t->dirty = false;
        if (!t->body || k->stopping)
                return;
        if (!k->decided)
                return; /* the Lease's first answer evaluates every target */
        if (k->lease && !kube_lease_leading(k->lease)) {
                if (t->cb)
                        target_report(t, KUBE_WRITE_SKIPPED, 0, k->skip_reason);
                return;
        }
        if (t->cfg->creation_policy == CREATION_MERGE)
                return get_existing(t);
        if (!kube_informer_synced(t->ns)) {
                if (kube_informer_error(t->ns) && t->cb)
                        return target_report(t, KUBE_WRITE_FAILED, -EIO, kube_informer_error(t->ns));
                return kube_informer_list(t->ns); /* the list's end evaluates this target */
        }
        const KubeObserved *o = kube_informer_find(t->ns, t->name);
        if (o && observed_matches(t, o))
                return target_report(t, KUBE_WRITE_UNCHANGED, 0, NULL);
        t->existed = !!o;
        if (o) {
                memcpy(t->before, o->data_hash, sizeof(t->before));
                return apply(t, true);
        }
        send(t, "POST", "?fieldManager=secretsyncd", "application/json", true);
}

static Target *target_find(KubeSink *k, const char *secret) {
        for (Target *t = k->targets; t; t = t->next)
                if (streq(t->secret, secret))
                        return t;
        return NULL;
}

static void target_free(Target *t) {
        kube_call_cancel(t->call);
        sd_event_source_disable_unref(t->retry);
        secbuf_free(t->body);
        strv_free(t->keys);
        free(t->secret);
        free(t->name);
        free(t->shown);
        free(t);
}

static void target_unlink(KubeSink *k, Target *t) {
        for (Target **p = &k->targets; *p; p = &(*p)->next)
                if (*p == t) {
                        *p = t->next;
                        return;
                }
}

/* -------------------------------------------------------------- detached ---- */

static void detached_free(Detached *d) {
        LIST_REMOVE(d->k->detached, d);
        free(d->secret);
        free(d->namespace);
        free(d->what);
        free(d);
}

static void maybe_stopped(KubeSink *k);

static void on_detached_done(const KubeResponse *r, void *userdata) {
        Detached *d = userdata;
        KubeSink *k = d->k;

        d->call = NULL;
        if (r->error != -ECANCELED) {
                if (d->deletion && k->ev.on_write) {
                        KubeWriteResult w = { .outcome = r->error < 0 && r->error != -ENOENT ? KUBE_WRITE_FAILED
                                                                                               : KUBE_WRITE_WRITTEN,
                                              .error = r->error, .message = r->message };
                        k->ev.on_write(k, d->secret, d->what, &w, k->ev.userdata);
                } else if (!d->deletion && k->ev.on_restart)
                        k->ev.on_restart(k, d->secret, d->namespace, d->what, r->error, r->message, k->ev.userdata);
        }
        detached_free(d);
        maybe_stopped(k);
}

static void detached_send(KubeSink *k, const char *secret, const char *namespace, const char *what, bool deletion,
                          const KubeRequest *req) {
        Detached *d = calloc(1, sizeof(Detached));
        if (!d)
                return;
        d->k = k;
        d->deletion = deletion;
        d->secret = strdup(secret);
        d->namespace = strdup(namespace);
        d->what = strdup(what);
        LIST_PREPEND(k->detached, d);
        if (!d->secret || !d->namespace || !d->what || kube_request(k->client, req, on_detached_done, d, &d->call) < 0)
                detached_free(d);
}

/* As `kubectl rollout restart` does it: a pod template annotation with the time. */
static void restart_workloads(Target *t) {
        static const struct {
                const char *prefix, *resource;
        } kinds[] = { { "deployment/", "deployments" }, { "statefulset/", "statefulsets" }, { "daemonset/", "daemonsets" } };
        char now[32];
        time_t tt = time(NULL);
        struct tm tm;

        if (!gmtime_r(&tt, &tm) || strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                return;
        for (char **w = t->cfg->rollout_restart; w && *w; w++)
                for (size_t i = 0; i < ELEMENTSOF(kinds); i++) {
                        size_t n = strlen(kinds[i].prefix);
                        if (strncmp(*w, kinds[i].prefix, n) != 0)
                                continue;
                        _cleanup_free_ char *path = NULL, *patch = NULL;
                        _cleanup_secbuf_ SecBuf *body = NULL;
                        if (asprintf(&path, "/apis/apps/v1/namespaces/%s/%s/%s", kube_informer_namespace(t->ns), kinds[i].resource,
                                     *w + n) < 0 ||
                            asprintf(&patch,
                                     "{\"spec\":{\"template\":{\"metadata\":{\"annotations\":{"
                                     "\"kubectl.kubernetes.io/restartedAt\":\"%s\"}}}}}",
                                     now) < 0 ||
                            !(body = secbuf_new_from(patch, strlen(patch))))
                                continue;
                        detached_send(t->k, t->secret, kube_informer_namespace(t->ns), *w, false,
                                      &(KubeRequest) { .method = "PATCH", .path = path,
                                                       .content_type = "application/strategic-merge-patch+json",
                                                       .body = body });
                }
}

/* ------------------------------------------------------------------ lease ---- */

static void on_leader(KubeLease *l, bool leading, const char *message, void *userdata) {
        KubeSink *k = userdata;
        bool first = !k->decided;

        k->decided = true;
        snprintf(k->skip_reason, sizeof(k->skip_reason), "not the leader: %s", message ? message : "");
        if (k->ev.on_leader && (!first || leading))
                k->ev.on_leader(k, leading, message, k->ev.userdata);
        if (leading || first)
                for (Target *t = k->targets; t; t = t->next)
                        target_eval(t);
}

/* ---------------------------------------------------------------- public ---- */

int kube_sink_new(sd_event *e, HttpContext *http, const KubeConfig *cfg, bool once, const KubeSinkEvents *ev,
                  KubeSink **ret, char **ret_error) {
        _cleanup_(kube_connection_freep) KubeConnection *conn = NULL;
        KubeSink *k;
        int r;

        r = kube_connection_resolve(cfg->kubeconfig, &conn, ret_error);
        if (r < 0)
                return r;
        k = calloc(1, sizeof(KubeSink));
        if (!k)
                return error_set(ret_error, -ENOMEM, "out of memory");
        k->event = sd_event_ref(e);
        k->once = once;
        k->ev = *ev;
        r = kube_client_new(e, http, TAKE_PTR(conn), cfg->timeout_usec, &k->client);
        if (r < 0) {
                kube_sink_free(k);
                return error_set(ret_error, r, "cannot set up the Kubernetes client: %s", strerror(-r));
        }
        if (!cfg->leader_election) {
                k->decided = true;
                *ret = k;
                return 0;
        }
        char host[256] = "";
        if (!cfg->identity && gethostname(host, sizeof(host) - 1) < 0)
                snprintf(host, sizeof(host), "secretsyncd");
        KubeLeaseOptions o = { .namespace = cfg->lease_namespace, .name = cfg->lease_name,
                               .identity = cfg->identity ?: host, .lease_duration_usec = cfg->lease_duration_usec,
                               .renew_deadline_usec = cfg->renew_deadline_usec,
                               .retry_period_usec = cfg->retry_period_usec, .on_change = on_leader, .userdata = k };
        r = kube_lease_new(e, k->client, &o, &k->lease);
        if (r >= 0)
                r = kube_lease_start(k->lease);
        if (r < 0) {
                kube_sink_free(k);
                return error_set(ret_error, r, "cannot start leader election: %s", strerror(-r));
        }
        *ret = k;
        return 0;
}

KubeSink *kube_sink_free(KubeSink *k) {
        if (!k)
                return NULL;
        k->stopping = true;
        while (k->targets) {
                Target *t = k->targets;
                k->targets = t->next;
                target_free(t);
        }
        while (k->detached) {
                Detached *d = k->detached;
                kube_call_cancel(d->call);
                detached_free(d);
        }
        for (size_t i = 0; i < k->n_informers; i++)
                kube_informer_free(k->informers[i]);
        free(k->informers);
        kube_lease_free(k->lease);
        kube_client_free(k->client);
        sd_event_unref(k->event);
        free(k);
        return NULL;
}

bool kube_sink_leading(const KubeSink *k) {
        return k && (!k->lease || kube_lease_leading(k->lease));
}

int kube_sink_write(KubeSink *k, const char *secret, const KubeTarget *cfg, const SecretData *d, kube_write_cb cb,
                    void *userdata) {
        _cleanup_free_ char *error = NULL;
        _cleanup_secbuf_ SecBuf *body = NULL;
        _cleanup_secret_data_ SecretData *rendered = NULL;
        char hash[KUBE_DATA_HASH_LEN + 1];
        Target *t = target_find(k, secret);
        int r = 0;

        /* From here on d is what the Secret holds: the hash, the body and so every later
         * comparison and repair are of the rendered data. */
        if (cfg->n_templates > 0) {
                r = kube_secret_render(cfg, d, &rendered, &error);
                d = rendered;
        }
        if (r >= 0)
                r = kube_secret_check(cfg, d, &error);
        if (r >= 0)
                r = kube_secret_data_hash(d, hash);
        if (r >= 0)
                r = kube_secret_apply_body(cfg, secret, d, hash, &body);
        if (r < 0) {
                /* Nothing is written: whatever the Secret holds stays. */
                KubeWriteResult res = { .outcome = KUBE_WRITE_FAILED, .error = r, .message = error ?: strerror(-r) };
                cb(&res, userdata);
                return 0;
        }
        if (t && !(streq(kube_informer_namespace(t->ns), cfg->namespace) && streq(t->name, cfg->name))) {
                target_unlink(k, t);
                target_free(t);
                t = NULL;
        }
        if (!t) {
                t = calloc(1, sizeof(Target));
                if (!t)
                        return -ENOMEM;
                t->k = k;
                t->ns = informer_get(k, cfg->namespace);
                t->secret = strdup(secret);
                t->name = strdup(cfg->name);
                if (asprintf(&t->shown, "%s/%s", cfg->namespace, cfg->name) < 0)
                        t->shown = NULL;
                if (!t->ns || !t->secret || !t->name || !t->shown ||
                    sd_event_add_time_relative(k->event, &t->retry, CLOCK_MONOTONIC, 0, 1000, on_target_retry, t) < 0) {
                        target_free(t);
                        return -ENOMEM;
                }
                (void) sd_event_source_set_enabled(t->retry, SD_EVENT_OFF);
                t->next = k->targets;
                k->targets = t;
        }
        char **keys = calloc(d->n + 1, sizeof(char *));
        for (size_t i = 0; keys && i < d->n; i++)
                if (!(keys[i] = strdup(d->entries[i].key))) {
                        strv_free(keys);
                        keys = NULL;
                }
        if (!keys)
                return -ENOMEM;
        strv_free(t->keys);
        t->keys = keys;
        t->cfg = cfg;
        secbuf_free(t->body);
        t->body = TAKE_PTR(body);
        memcpy(t->hash, hash, sizeof(hash));
        t->cb = cb;
        t->cb_userdata = userdata;
        (void) sd_event_source_set_enabled(t->retry, SD_EVENT_OFF);
        target_eval(t);
        return 0;
}

void kube_sink_forget(KubeSink *k, const char *secret, bool delete) {
        Target *t = target_find(k, secret);
        if (!t)
                return;
        const KubeObserved *o = kube_informer_synced(t->ns) ? kube_informer_find(t->ns, t->name) : NULL;
        /* Only a Secret that is ours and says so: another secret's, or a foreign one, stays. */
        if (delete && o && has_pair(o->annotations, KUBE_SECRET_ANNOTATION, secret) && kube_sink_leading(k)) {
                _cleanup_free_ char *path = NULL;
                if (asprintf(&path, "/api/v1/namespaces/%s/secrets/%s", kube_informer_namespace(t->ns), t->name) >= 0)
                        detached_send(k, secret, kube_informer_namespace(t->ns), t->shown, true,
                                      &(KubeRequest) { .method = "DELETE", .path = path });
        }
        kube_write_cb cb = t->cb;
        void *ud = t->cb_userdata;
        target_unlink(k, t);
        target_free(t);
        if (cb)
                cb(&(KubeWriteResult) { .outcome = KUBE_WRITE_FAILED, .error = -ECANCELED, .message = "removed" }, ud);
}

static void maybe_stopped(KubeSink *k) {
        if (!k->stopping || !k->stopped || k->detached)
                return;
        void (*done)(void *) = k->stopped;
        k->stopped = NULL;
        if (k->lease)
                kube_lease_release(k->lease, done, k->stopped_userdata);
        else
                done(k->stopped_userdata);
}

void kube_sink_stop(KubeSink *k, void (*done)(void *userdata), void *userdata) {
        k->stopping = true;
        k->stopped = done;
        k->stopped_userdata = userdata;
        for (size_t i = 0; i < k->n_informers; i++)
                kube_informer_stop(k->informers[i]);
        for (Target *t = k->targets; t; t = t->next) {
                kube_call_cancel(t->call);
                t->call = NULL;
                if (t->cb)
                        target_report(t, KUBE_WRITE_FAILED, -ECANCELED, "stopping");
        }
        /* Deletions and restarts already sent are let finish: they were decided. */
        maybe_stopped(k);
}

void kube_sink_retarget(KubeSink *k, const char *secret, const KubeTarget *cfg) {
        Target *t = target_find(k, secret);
        if (t)
                t->cfg = cfg;
}
