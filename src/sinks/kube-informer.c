/* SPDX-License-Identifier: MIT */
#include "sinks/kube-informer.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/cleanup.h"
#include "util/json.h"
#include "util/urlencode.h"

#define LIST_PAGE 250
#define WATCH_TIMEOUT_SEC 290
#define SELECTOR "labelSelector=app.kubernetes.io%2Fmanaged-by%3Dsecretsyncd"

struct KubeInformer {
        sd_event *event;
        KubeClient *client;
        KubeInformerEvents ev;
        char *name;
        bool watch;
        bool stopped;
        KubeObserved **obs, **building; /* what we know; what a list being paged in has so far */
        size_t n_obs, n_building;
        char *rv;
        char *cont;
        bool synced;
        bool relist;
        KubeCall *call;
        sd_event_source *retry;
        unsigned failures;
        char *error; /* why the last list failed */
};


KubeObserved *kube_observed_free(KubeObserved *o) {
        if (!o)
                return NULL;
        free(o->name);
        free(o->type);
        strv_free(o->labels);
        strv_free(o->annotations);
        free(o);
        return NULL;
}

static int pairs_of(json_object *map, char ***ret) {
        size_t n = 0;
        char **l = calloc((map && json_object_is_type(map, json_type_object) ? json_object_object_length(map) : 0) + 1,
                          sizeof(char *));
        if (!l)
                return -ENOMEM;
        if (map && json_object_is_type(map, json_type_object)) {
                json_object_object_foreach(map, key, v) {
                        if (asprintf(&l[n], "%s=%s", key, json_object_get_string(v) ?: "") < 0) {
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

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

int kube_observed_data_hash(json_object *data, char *const *keys, char ret[KUBE_DATA_HASH_LEN + 1]) {
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
                /* A value that is not a string (null, from a broken or hostile server) as
                 * its JSON: it differs from any of ours, so the Secret is written again. */
                bool str = json_object_is_type(v, json_type_string);
                if (i > 0)
                        r = secbuf_append_char(b, ',');
                if (r >= 0)
                        r = json_append_string(b, names[i], strlen(names[i]));
                if (r >= 0)
                        r = secbuf_append_char(b, ':');
                if (r >= 0)
                        r = str ? json_append_string(b, json_object_get_string(v), strlen(json_object_get_string(v)))
                                : secbuf_append_str(b, json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
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

int kube_observed_new(json_object *secret, KubeObserved **ret) {
        json_object *meta = NULL, *labels = NULL, *annotations = NULL, *data = NULL;
        KubeObserved *o = calloc(1, sizeof(KubeObserved));
        int r;

        if (!o)
                return -ENOMEM;
        json_object_object_get_ex(secret, "metadata", &meta);
        json_object_object_get_ex(meta, "labels", &labels);
        json_object_object_get_ex(meta, "annotations", &annotations);
        json_object_object_get_ex(secret, "data", &data);
        const char *name = kube_json_str(meta, "name");
        if (!name) {
                kube_observed_free(o);
                return -EBADMSG;
        }
        o->name = strdup(name);
        o->type = strdup(kube_json_str(secret, "type") ?: "Opaque");
        if (!o->name || !o->type || (r = pairs_of(labels, &o->labels)) < 0 ||
            (r = pairs_of(annotations, &o->annotations)) < 0 || (r = kube_observed_data_hash(data, NULL, o->data_hash)) < 0) {
                kube_observed_free(o);
                return -ENOMEM;
        }
        *ret = o;
        return 0;
}


static KubeObserved **obs_find(KubeInformer *ns, const char *name) {
        for (size_t i = 0; i < ns->n_obs; i++)
                if (streq(ns->obs[i]->name, name))
                        return &ns->obs[i];
        return NULL;
}

static void obs_remove(KubeInformer *ns, const char *name) {
        KubeObserved **o = obs_find(ns, name);
        if (!o)
                return;
        kube_observed_free(*o);
        *o = ns->obs[--ns->n_obs];
}

static int obs_add(KubeObserved ***l, size_t *n, KubeObserved *o) {
        KubeObserved **nl = reallocarray(*l, *n + 1, sizeof(KubeObserved *));
        if (!nl) {
                kube_observed_free(o);
                return -ENOMEM;
        }
        nl[(*n)++] = o;
        *l = nl;
        return 0;
}

static void obs_upsert(KubeInformer *ns, json_object *secret) {
        KubeObserved *o = NULL;
        if (kube_observed_new(secret, &o) < 0)
                return;
        KubeObserved **old = obs_find(ns, o->name);
        if (old) {
                kube_observed_free(*old);
                *old = o;
        } else
                (void) obs_add(&ns->obs, &ns->n_obs, o);
}

static void obs_clear(KubeObserved ***l, size_t *n) {
        for (size_t i = 0; i < *n; i++)
                kube_observed_free((*l)[i]);
        free(*l);
        *l = NULL;
        *n = 0;
}

KubeInformer *kube_informer_free(KubeInformer *ns) {
        if (!ns)
                return NULL;
        kube_call_cancel(ns->call);
        sd_event_source_disable_unref(ns->retry);
        obs_clear(&ns->obs, &ns->n_obs);
        obs_clear(&ns->building, &ns->n_building);
        free(ns->name);
        free(ns->rv);
        free(ns->cont);
        free(ns->error);
        free(ns);
        return NULL;
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        kube_informer_list(userdata);
        return 0;
}

static void retry_later(KubeInformer *ns) {
        uint64_t d = kube_retry_delay(++ns->failures);
        if (ns->retry) {
                (void) sd_event_source_set_time_relative(ns->retry, d);
                (void) sd_event_source_set_enabled(ns->retry, SD_EVENT_ONESHOT);
        } else
                (void) sd_event_add_time_relative(ns->event, &ns->retry, CLOCK_MONOTONIC, d, 1000, on_retry, ns);
}

static void watch(KubeInformer *ns);

static void on_watch_event(const char *type, json_object *object, void *userdata) {
        KubeInformer *ns = userdata;
        json_object *meta = NULL;
        json_object_object_get_ex(object, "metadata", &meta);
        const char *rv = kube_json_str(meta, "resourceVersion"), *name = kube_json_str(meta, "name");

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
        ns->ev.on_changed(ns, name, ns->ev.userdata);
}

static void on_watch_end(const KubeResponse *r, void *userdata) {
        KubeInformer *ns = userdata;
        ns->call = NULL;
        if (r->error == -ECANCELED || ns->stopped)
                return;
        if (ns->relist || r->error == -ESTALE || !ns->rv) {
                ns->relist = false;
                kube_informer_list(ns);
        } else if (r->error < 0) {
                ns->synced = false;
                retry_later(ns);
        } else
                watch(ns); /* the server's timeout: carry on from where we are */
}

static void watch(KubeInformer *ns) {
        _cleanup_free_ char *path = NULL;
        if (asprintf(&path, "/api/v1/namespaces/%s/secrets?watch=1&%s&resourceVersion=%s"
                                  "&allowWatchBookmarks=true&timeoutSeconds=%d",
                     ns->name, SELECTOR, ns->rv, WATCH_TIMEOUT_SEC) < 0 ||
            kube_watch(ns->client, path, (WATCH_TIMEOUT_SEC + 30) * 1000000ULL, on_watch_event, on_watch_end, ns,
                       &ns->call) < 0) {
                ns->synced = false;
                retry_later(ns);
        }
}

static void on_list(const KubeResponse *r, void *userdata) {
        KubeInformer *ns = userdata;
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
                ns->ev.on_synced(ns, ns->ev.userdata); /* a failure: they fail with ns->error */
                retry_later(ns);
                return;
        }
        if (!json_object_object_get_ex(r->object, "items", &items) || !json_object_is_type(items, json_type_array))
                items = NULL; /* json-c reads any object as an array if asked */
        json_object_object_get_ex(r->object, "metadata", &meta);
        for (size_t i = 0; items && i < json_object_array_length(items); i++) {
                KubeObserved *o = NULL;
                if (kube_observed_new(json_object_array_get_idx(items, i), &o) >= 0)
                        (void) obs_add(&ns->building, &ns->n_building, o);
        }
        const char *cont = kube_json_str(meta, "continue");
        free(ns->cont);
        ns->cont = cont && *cont ? strdup(cont) : NULL;
        if (ns->cont) {
                kube_informer_list(ns);
                return;
        }
        obs_clear(&ns->obs, &ns->n_obs);
        ns->obs = TAKE_PTR(ns->building);
        ns->n_obs = ns->n_building;
        ns->n_building = 0;
        free(ns->rv);
        ns->rv = kube_json_str(meta, "resourceVersion") ? strdup(kube_json_str(meta, "resourceVersion")) : NULL;
        ns->synced = true;
        ns->failures = 0;
        free(ns->error);
        ns->error = NULL;
        if (ns->watch)
                watch(ns);
        ns->ev.on_synced(ns, ns->ev.userdata);
}

void kube_informer_list(KubeInformer *ns) {
        _cleanup_free_ char *path = NULL, *cont = NULL;

        if (ns->call || ns->stopped)
                return;
        if (ns->cont && !(cont = url_escape(ns->cont)))
                return retry_later(ns);
        if (asprintf(&path, "/api/v1/namespaces/%s/secrets?%s&limit=%d%s%s", ns->name, SELECTOR, LIST_PAGE,
                     cont ? "&continue=" : "", cont ? cont : "") < 0 ||
            kube_request(ns->client, &(KubeRequest) { .path = path }, on_list, ns, &ns->call) < 0)
                retry_later(ns);
}

int kube_informer_new(sd_event *e, KubeClient *client, const char *namespace, bool watch,
                      const KubeInformerEvents *ev, KubeInformer **ret) {
        KubeInformer *i = calloc(1, sizeof(KubeInformer));
        if (!i || !(i->name = strdup(namespace))) {
                free(i);
                return -ENOMEM;
        }
        i->event = e;
        i->client = client;
        i->ev = *ev;
        i->watch = watch;
        *ret = i;
        return 0;
}

void kube_informer_stop(KubeInformer *i) {
        i->stopped = true;
        kube_call_cancel(i->call);
        i->call = NULL;
}

const char *kube_informer_namespace(const KubeInformer *i) {
        return i->name;
}

bool kube_informer_synced(const KubeInformer *i) {
        return i->synced;
}

const char *kube_informer_error(const KubeInformer *i) {
        return i->error;
}

const KubeObserved *kube_informer_find(KubeInformer *i, const char *name) {
        KubeObserved **o = obs_find(i, name);
        return o ? *o : NULL;
}

void kube_informer_upsert(KubeInformer *i, json_object *secret) {
        obs_upsert(i, secret);
}
