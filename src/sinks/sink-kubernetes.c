/* SPDX-License-Identifier: MIT */
#include "sinks/sink-kubernetes.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sinks/kube-client.h"
#include "sinks/kube-lease.h"
#include "sinks/kube-secret.h"
#include "sinks/kubeconfig.h"
#include "util/cleanup.h"
#include "util/error.h"
#include "util/json.h"
#include "util/list.h"
#include "util/random.h"
#include "util/urlencode.h"

#define LIST_PAGE 250
#define WATCH_TIMEOUT_SEC 290
#define RETRY_MIN_USEC (1ULL * 1000000ULL)
#define RETRY_MAX_USEC (30ULL * 1000000ULL)
#define SELECTOR "labelSelector=app.kubernetes.io%2Fmanaged-by%3Dsecretsyncd"

typedef struct Target Target;

/* A managed Secret as the API server last showed it: what a comparison needs, no values. */
typedef struct Observed {
        char *name;
        char *type;
        char **labels;      /* "key=value" */
        char **annotations; /* "key=value" */
        char data_hash[KUBE_DATA_HASH_LEN + 1];
} Observed;

typedef struct Namespace {
        KubeSink *k;
        char *name;
        Observed **obs, **building; /* what we know; what a list being paged in has so far */
        size_t n_obs, n_building;
        char *rv;
        char *cont;
        bool synced;
        bool relist;
        KubeCall *call;
        sd_event_source *retry;
        unsigned failures;
        char *error; /* why the last list failed */
        struct Namespace *next;
} Namespace;

struct Target {
        KubeSink *k;
        Namespace *ns;
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
        Namespace *namespaces;
        Target *targets;
        Detached *detached;
        void (*stopped)(void *userdata);
        void *stopped_userdata;
};

static void target_eval(Target *t);
static void ns_list(Namespace *ns);

/* -------------------------------------------------------------- observed ---- */

static Observed *observed_free(Observed *o) {
        if (!o)
                return NULL;
        free(o->name);
        free(o->type);
        strv_free(o->labels);
        strv_free(o->annotations);
        free(o);
        return NULL;
}

static const char *str_of(json_object *o, const char *key) {
        json_object *v;
        return o && json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
                       ? json_object_get_string(v)
                       : NULL;
}

static int pairs_of(json_object *map, char ***ret) {
        size_t n = 0;
        char **l = calloc((map && json_object_is_type(map, json_type_object) ? json_object_object_length(map) : 0) + 1,
                          sizeof(char *));
        if (!l)
                return -ENOMEM;
        if (map && json_object_is_type(map, json_type_object)) {
                json_object_object_foreach(map, key, v) {
                        if (asprintf(&l[n], "%s=%s", key, json_object_get_string(v)) < 0) {
                                l[n] = NULL;
                                strv_free(l);
                                return -ENOMEM;
                        }
                        n++;
                }
        }
        *ret = l;
        return 0;
}

static bool strv_contains(char *const *l, const char *s) {
        for (; l && *l; l++)
                if (streq(*l, s))
                        return true;
        return false;
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* The data hash of a Secret as the API server holds it (base64 values as they are), over
 * only keys when given (merge: our keys in someone else's Secret). Same definition as
 * kube_secret_data_hash(): compact JSON, keys sorted. */
static int observed_data_hash(json_object *data, char *const *keys, char ret[KUBE_DATA_HASH_LEN + 1]) {
        _cleanup_secbuf_ SecBuf *b = secbuf_new(256);
        _cleanup_free_ const char **names = NULL;
        size_t n = 0;
        unsigned char md[32];
        unsigned mdn = 0;
        int r = 0;

        if (!b)
                return -ENOMEM;
        bool is_map = data && json_object_is_type(data, json_type_object);
        names = calloc((is_map ? json_object_object_length(data) : 0) + 1, sizeof(char *));
        if (!names)
                return -ENOMEM;
        if (is_map) {
                json_object_object_foreach(data, key, v) {
                        (void) v;
                        if (!keys || strv_contains(keys, key))
                                names[n++] = key;
                }
        }
        qsort(names, n, sizeof(char *), cmp_str);
        r = secbuf_append_char(b, '{');
        for (size_t i = 0; r >= 0 && i < n; i++) {
                json_object *v = NULL;
                json_object_object_get_ex(data, names[i], &v);
                const char *s = json_object_get_string(v);
                if (i > 0)
                        r = secbuf_append_char(b, ',');
                if (r >= 0)
                        r = json_append_string(b, names[i], strlen(names[i]));
                if (r >= 0)
                        r = secbuf_append_char(b, ':');
                if (r >= 0)
                        r = json_append_string(b, s, strlen(s));
        }
        if (r >= 0)
                r = secbuf_append_char(b, '}');
        if (r < 0)
                return r;
        if (!EVP_Digest(b->data, b->len, md, &mdn, EVP_sha256(), NULL))
                return -EIO;
        for (size_t i = 0; i < sizeof(md); i++)
                snprintf(ret + 2 * i, 3, "%02x", md[i]);
        return 0;
}

static int observed_new(json_object *secret, Observed **ret) {
        json_object *meta = NULL, *labels = NULL, *annotations = NULL, *data = NULL;
        Observed *o = calloc(1, sizeof(Observed));
        int r;

        if (!o)
                return -ENOMEM;
        json_object_object_get_ex(secret, "metadata", &meta);
        json_object_object_get_ex(meta, "labels", &labels);
        json_object_object_get_ex(meta, "annotations", &annotations);
        json_object_object_get_ex(secret, "data", &data);
        const char *name = str_of(meta, "name");
        if (!name) {
                observed_free(o);
                return -EBADMSG;
        }
        o->name = strdup(name);
        o->type = strdup(str_of(secret, "type") ?: "Opaque");
        if (!o->name || !o->type || (r = pairs_of(labels, &o->labels)) < 0 ||
            (r = pairs_of(annotations, &o->annotations)) < 0 || (r = observed_data_hash(data, NULL, o->data_hash)) < 0) {
                observed_free(o);
                return -ENOMEM;
        }
        *ret = o;
        return 0;
}

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
static bool observed_matches(const Target *t, const Observed *o) {
        return streq(o->data_hash, t->hash) && has_pair(o->labels, KUBE_MANAGED_BY_LABEL, KUBE_MANAGED_BY_VALUE) &&
               has_pair(o->annotations, KUBE_DATA_HASH_ANNOTATION, t->hash) &&
               has_pair(o->annotations, KUBE_SECRET_ANNOTATION, t->secret) && has_all(o->labels, t->cfg->labels) &&
               has_all(o->annotations, t->cfg->annotations) && streq(o->type, t->cfg->type ?: "Opaque");
}

/* ------------------------------------------------------------- namespaces ---- */

static Observed **obs_find(Namespace *ns, const char *name) {
        for (size_t i = 0; i < ns->n_obs; i++)
                if (streq(ns->obs[i]->name, name))
                        return &ns->obs[i];
        return NULL;
}

static void obs_remove(Namespace *ns, const char *name) {
        Observed **o = obs_find(ns, name);
        if (!o)
                return;
        observed_free(*o);
        *o = ns->obs[--ns->n_obs];
}

static int obs_add(Observed ***l, size_t *n, Observed *o) {
        Observed **nl = reallocarray(*l, *n + 1, sizeof(Observed *));
        if (!nl) {
                observed_free(o);
                return -ENOMEM;
        }
        nl[(*n)++] = o;
        *l = nl;
        return 0;
}

static void obs_upsert(Namespace *ns, json_object *secret) {
        Observed *o = NULL;
        if (observed_new(secret, &o) < 0)
                return;
        Observed **old = obs_find(ns, o->name);
        if (old) {
                observed_free(*old);
                *old = o;
        } else
                (void) obs_add(&ns->obs, &ns->n_obs, o);
}

static void obs_clear(Observed ***l, size_t *n) {
        for (size_t i = 0; i < *n; i++)
                observed_free((*l)[i]);
        free(*l);
        *l = NULL;
        *n = 0;
}

static Namespace *ns_get(KubeSink *k, const char *name) {
        for (Namespace *ns = k->namespaces; ns; ns = ns->next)
                if (streq(ns->name, name))
                        return ns;
        Namespace *ns = calloc(1, sizeof(Namespace));
        if (!ns || !(ns->name = strdup(name))) {
                free(ns);
                return NULL;
        }
        ns->k = k;
        ns->next = k->namespaces;
        k->namespaces = ns;
        return ns;
}

static void ns_free(Namespace *ns) {
        kube_call_cancel(ns->call);
        sd_event_source_disable_unref(ns->retry);
        obs_clear(&ns->obs, &ns->n_obs);
        obs_clear(&ns->building, &ns->n_building);
        free(ns->name);
        free(ns->rv);
        free(ns->cont);
        free(ns->error);
        free(ns);
}

static void ns_eval_targets(Namespace *ns) {
        for (Target *t = ns->k->targets; t; t = t->next)
                if (t->ns == ns)
                        target_eval(t);
}

static int on_ns_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        ns_list(userdata);
        return 0;
}

static uint64_t backoff(unsigned failures) {
        uint64_t d = RETRY_MIN_USEC;
        for (unsigned i = 1; i < failures && d < RETRY_MAX_USEC; i++)
                d *= 2;
        d = MIN(d, RETRY_MAX_USEC);
        return d / 2 + random_below(d / 2 + 1);
}

static void ns_retry_later(Namespace *ns) {
        uint64_t d = backoff(++ns->failures);
        if (ns->retry) {
                (void) sd_event_source_set_time_relative(ns->retry, d);
                (void) sd_event_source_set_enabled(ns->retry, SD_EVENT_ONESHOT);
        } else
                (void) sd_event_add_time_relative(ns->k->event, &ns->retry, CLOCK_MONOTONIC, d, 1000, on_ns_retry, ns);
}

static void ns_watch(Namespace *ns);

static void on_watch_event(const char *type, json_object *object, void *userdata) {
        Namespace *ns = userdata;
        json_object *meta = NULL;
        json_object_object_get_ex(object, "metadata", &meta);
        const char *rv = str_of(meta, "resourceVersion"), *name = str_of(meta, "name");

        if (streq(type, "ERROR")) {
                /* 410 Gone: our resourceVersion is too old; anything else: start over too. */
                ns->relist = true;
                return;
        }
        if (rv) {
                free(ns->rv);
                ns->rv = strdup(rv);
        }
        if (streq(type, "BOOKMARK") || !name)
                return;
        if (streq(type, "DELETED"))
                obs_remove(ns, name);
        else
                obs_upsert(ns, object);
        for (Target *t = ns->k->targets; t; t = t->next)
                if (t->ns == ns && streq(t->name, name))
                        target_eval(t);
}

static void on_watch_end(const KubeResponse *r, void *userdata) {
        Namespace *ns = userdata;
        ns->call = NULL;
        if (r->error == -ECANCELED || ns->k->stopping)
                return;
        if (ns->relist || r->error == -ESTALE || !ns->rv) {
                ns->relist = false;
                ns_list(ns);
        } else if (r->error < 0) {
                ns->synced = false;
                ns_retry_later(ns);
        } else
                ns_watch(ns); /* the server's timeout: carry on from where we are */
}

static void ns_watch(Namespace *ns) {
        _cleanup_free_ char *path = NULL;
        if (asprintf(&path, "/api/v1/namespaces/%s/secrets?watch=1&%s&resourceVersion=%s"
                                  "&allowWatchBookmarks=true&timeoutSeconds=%d",
                     ns->name, SELECTOR, ns->rv, WATCH_TIMEOUT_SEC) < 0 ||
            kube_watch(ns->k->client, path, (WATCH_TIMEOUT_SEC + 30) * 1000000ULL, on_watch_event, on_watch_end, ns,
                       &ns->call) < 0) {
                ns->synced = false;
                ns_retry_later(ns);
        }
}

static void on_list(const KubeResponse *r, void *userdata) {
        Namespace *ns = userdata;
        json_object *items = NULL, *meta = NULL;

        ns->call = NULL;
        if (r->error == -ECANCELED)
                return;
        if (r->error < 0) {
                free(ns->error);
                if (asprintf(&ns->error, "cannot list the Secrets in namespace %s: %s", ns->name, r->message) < 0)
                        ns->error = NULL;
                obs_clear(&ns->building, &ns->n_building);
                free(ns->cont);
                ns->cont = NULL;
                ns_eval_targets(ns); /* they fail with ns->error */
                ns_retry_later(ns);
                return;
        }
        json_object_object_get_ex(r->object, "items", &items);
        json_object_object_get_ex(r->object, "metadata", &meta);
        for (size_t i = 0; items && i < json_object_array_length(items); i++) {
                Observed *o = NULL;
                if (observed_new(json_object_array_get_idx(items, i), &o) >= 0)
                        (void) obs_add(&ns->building, &ns->n_building, o);
        }
        const char *cont = str_of(meta, "continue");
        free(ns->cont);
        ns->cont = cont && *cont ? strdup(cont) : NULL;
        if (ns->cont) {
                ns_list(ns);
                return;
        }
        obs_clear(&ns->obs, &ns->n_obs);
        ns->obs = TAKE_PTR(ns->building);
        ns->n_obs = ns->n_building;
        ns->n_building = 0;
        free(ns->rv);
        ns->rv = str_of(meta, "resourceVersion") ? strdup(str_of(meta, "resourceVersion")) : NULL;
        ns->synced = true;
        ns->failures = 0;
        free(ns->error);
        ns->error = NULL;
        if (!ns->k->once)
                ns_watch(ns);
        ns_eval_targets(ns);
}

/* A list (page by page), then a watch from its resourceVersion. */
static void ns_list(Namespace *ns) {
        _cleanup_free_ char *path = NULL, *cont = NULL;

        if (ns->call || ns->k->stopping)
                return;
        if (ns->cont && !(cont = url_escape(ns->cont)))
                return ns_retry_later(ns);
        if (asprintf(&path, "/api/v1/namespaces/%s/secrets?%s&limit=%d%s%s", ns->name, SELECTOR, LIST_PAGE,
                     cont ? "&continue=" : "", cont ? cont : "") < 0 ||
            kube_request(ns->k->client, &(KubeRequest) { .path = path }, on_list, ns, &ns->call) < 0)
                ns_retry_later(ns);
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
                uint64_t d = backoff(++t->failures);
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

        if (asprintf(&path, "/api/v1/namespaces/%s/secrets%s%s%s", t->ns->name, creating ? "" : "/",
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
                if (observed_data_hash(data, t->keys, have) >= 0 && streq(have, t->hash) &&
                    streq_ptr(str_of(annotations, KUBE_DATA_HASH_ANNOTATION), t->hash) &&
                    streq_ptr(str_of(annotations, KUBE_SECRET_ANNOTATION), t->secret))
                        return target_report(t, KUBE_WRITE_UNCHANGED, 0, NULL);
                t->existed = observed_data_hash(data, t->keys, t->before) >= 0;
                return apply(t, false);
        }
        if (!streq_ptr(str_of(labels, KUBE_MANAGED_BY_LABEL), KUBE_MANAGED_BY_VALUE)) {
                if (asprintf(&msg,
                             "Secret %s exists and is not managed by secretsyncd (it has no label " KUBE_MANAGED_BY_LABEL
                             "=" KUBE_MANAGED_BY_VALUE "): it is left alone; remove it, or use creation_policy = "
                             "\"merge\" to add keys to it",
                             t->shown) < 0)
                        msg = NULL;
                return target_report(t, KUBE_WRITE_FAILED, -EEXIST, msg ?: "Secret exists and is not ours");
        }
        /* Ours, and the watch had not shown it yet. */
        obs_upsert(t->ns, r->object);
        t->existed = observed_data_hash(data, NULL, t->before) >= 0;
        apply(t, true);
}

static void get_existing(Target *t) {
        _cleanup_free_ char *path = NULL;
        if (asprintf(&path, "/api/v1/namespaces/%s/secrets/%s", t->ns->name, t->name) < 0 ||
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
                obs_upsert(t->ns, r->object);
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
        if (!t->ns->synced) {
                if (t->ns->error && t->cb)
                        return target_report(t, KUBE_WRITE_FAILED, -EIO, t->ns->error);
                return ns_list(t->ns); /* the list's end evaluates this target */
        }
        Observed **o = obs_find(t->ns, t->name);
        if (o && observed_matches(t, *o))
                return target_report(t, KUBE_WRITE_UNCHANGED, 0, NULL);
        t->existed = !!o;
        if (o) {
                memcpy(t->before, (*o)->data_hash, sizeof(t->before));
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
                        if (asprintf(&path, "/apis/apps/v1/namespaces/%s/%s/%s", t->ns->name, kinds[i].resource,
                                     *w + n) < 0 ||
                            asprintf(&patch,
                                     "{\"spec\":{\"template\":{\"metadata\":{\"annotations\":{"
                                     "\"kubectl.kubernetes.io/restartedAt\":\"%s\"}}}}}",
                                     now) < 0 ||
                            !(body = secbuf_new_from(patch, strlen(patch))))
                                continue;
                        detached_send(t->k, t->secret, t->ns->name, *w, false,
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
        r = kube_client_new(e, http, TAKE_PTR(conn), &k->client);
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
        while (k->namespaces) {
                Namespace *ns = k->namespaces;
                k->namespaces = ns->next;
                ns_free(ns);
        }
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
        char hash[KUBE_DATA_HASH_LEN + 1];
        Target *t = target_find(k, secret);
        int r;

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
        if (t && !(streq(t->ns->name, cfg->namespace) && streq(t->name, cfg->name))) {
                target_unlink(k, t);
                target_free(t);
                t = NULL;
        }
        if (!t) {
                t = calloc(1, sizeof(Target));
                if (!t)
                        return -ENOMEM;
                t->k = k;
                t->ns = ns_get(k, cfg->namespace);
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
        Observed **o = t->ns->synced ? obs_find(t->ns, t->name) : NULL;
        /* Only a Secret that is ours and says so: another secret's, or a foreign one, stays. */
        if (delete && o && has_pair((*o)->annotations, KUBE_SECRET_ANNOTATION, secret) && kube_sink_leading(k)) {
                _cleanup_free_ char *path = NULL;
                if (asprintf(&path, "/api/v1/namespaces/%s/secrets/%s", t->ns->name, t->name) >= 0)
                        detached_send(k, secret, t->ns->name, t->shown, true,
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
        for (Namespace *ns = k->namespaces; ns; ns = ns->next) {
                kube_call_cancel(ns->call);
                ns->call = NULL;
        }
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
