/* SPDX-License-Identifier: MIT */
#include "sinks/kube-lease.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/cleanup.h"
#include "util/json.h"
#include "util/random.h"

struct KubeLease {
        sd_event *event;
        KubeClient *client;
        KubeLeaseOptions o;
        char *namespace, *name, *identity;
        char *path;
        sd_event_source *timer;
        KubeCall *call;
        bool leading;
        bool decided; /* the first attempt is over */
        char message[256];
        /* The record as we last saw it, and when (our monotonic clock) it last changed. */
        char *holder, *renew_time, *acquire_time, *rv;
        int transitions;
        uint64_t observed_at;
        uint64_t renewed_at; /* our last successful renewal, while leading */
        void (*released)(void *userdata);
        void *released_userdata;
        sd_event_source *release_done;
};

int kube_format_micro_time(uint64_t usec, char *buf, size_t size) {
        time_t t = (time_t) (usec / 1000000ULL);
        struct tm tm;
        char s[32];

        if (!gmtime_r(&t, &tm) || strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
                return -EINVAL;
        return snprintf(buf, size, "%s.%06lluZ", s, (unsigned long long) (usec % 1000000ULL)) < (int) size ? 0
                                                                                                           : -ENOBUFS;
}

static uint64_t now_mono(KubeLease *l) {
        uint64_t t = 0;
        (void) sd_event_now(l->event, CLOCK_MONOTONIC, &t);
        return t;
}

static uint64_t now_real(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

static void set_leading(KubeLease *l, bool leading, const char *message) {
        bool first = !l->decided;
        l->decided = true;
        if (l->leading == leading && !first)
                return;
        l->leading = leading;
        if (l->o.on_change)
                l->o.on_change(l, leading, message, l->o.userdata);
}

static void arm(KubeLease *l) {
        /* A candidate spreads its attempts a little (client-go: jitter 1.2 of the period). */
        uint64_t d = l->o.retry_period_usec;
        if (!l->leading)
                d += random_below(d / 5 + 1);
        if (sd_event_source_set_time_relative(l->timer, d) >= 0)
                (void) sd_event_source_set_enabled(l->timer, SD_EVENT_ONESHOT);
}

static const char *spec_str(json_object *spec, const char *k) {
        json_object *v;
        return json_object_object_get_ex(spec, k, &v) && json_object_is_type(v, json_type_string)
                       ? json_object_get_string(v)
                       : NULL;
}

static int replace(char **p, const char *v) {
        char *n = v ? strdup(v) : NULL;
        if (v && !n)
                return -ENOMEM;
        free(*p);
        *p = n;
        return 0;
}

/* Remember the record; a change of holder or renewTime restarts the expiry clock. */
static void observe(KubeLease *l, json_object *lease, int64_t *ret_duration) {
        json_object *meta = NULL, *spec = NULL, *v;
        json_object_object_get_ex(lease, "metadata", &meta);
        json_object_object_get_ex(lease, "spec", &spec);
        const char *holder = spec_str(spec, "holderIdentity"), *renew = spec_str(spec, "renewTime");

        if (!streq_ptr(holder, l->holder) || !streq_ptr(renew, l->renew_time))
                l->observed_at = now_mono(l);
        (void) replace(&l->holder, holder && *holder ? holder : NULL);
        (void) replace(&l->renew_time, renew);
        (void) replace(&l->acquire_time, spec_str(spec, "acquireTime"));
        (void) replace(&l->rv, spec_str(meta, "resourceVersion"));
        l->transitions = json_object_object_get_ex(spec, "leaseTransitions", &v) ? json_object_get_int(v) : 0;
        *ret_duration = json_object_object_get_ex(spec, "leaseDurationSeconds", &v) ? json_object_get_int64(v) : 0;
}

static int body(KubeLease *l, const char *holder, bool acquire, int duration_s, SecBuf **ret) {
        char now[40];
        json_object *o = json_object_new_object(), *meta = json_object_new_object(), *spec = json_object_new_object();
        int r = -ENOMEM;

        if (kube_format_micro_time(now_real(), now, sizeof(now)) < 0 || !o || !meta || !spec)
                goto out;
        json_object_object_add(o, "apiVersion", json_object_new_string("coordination.k8s.io/v1"));
        json_object_object_add(o, "kind", json_object_new_string("Lease"));
        json_object_object_add(meta, "name", json_object_new_string(l->name));
        json_object_object_add(meta, "namespace", json_object_new_string(l->namespace));
        if (l->rv)
                json_object_object_add(meta, "resourceVersion", json_object_new_string(l->rv));
        json_object_object_add(o, "metadata", meta);
        meta = NULL;
        json_object_object_add(spec, "holderIdentity", json_object_new_string(holder));
        json_object_object_add(spec, "leaseDurationSeconds", json_object_new_int(duration_s));
        json_object_object_add(spec, "acquireTime",
                               json_object_new_string(acquire || !l->acquire_time ? now : l->acquire_time));
        json_object_object_add(spec, "renewTime", json_object_new_string(now));
        json_object_object_add(spec, "leaseTransitions",
                               json_object_new_int(l->transitions + (acquire && l->holder ? 1 : 0)));
        json_object_object_add(o, "spec", spec);
        spec = NULL;
        SecBuf *b = secbuf_new(512);
        if (b && json_serialize(o, b) >= 0) {
                *ret = b;
                r = 0;
        } else
                secbuf_free(b);
out:
        json_object_put(meta);
        json_object_put(spec);
        json_object_put(o);
        return r;
}

static int lease_seconds(KubeLease *l) {
        return (int) MAX(1ULL, l->o.lease_duration_usec / 1000000ULL);
}

static void on_written(const KubeResponse *r, void *userdata) {
        KubeLease *l = userdata;
        int64_t duration;

        l->call = NULL;
        if (r->error == -ECANCELED)
                return;
        if (r->error < 0) {
                /* 409: someone else wrote the record first; we see who at the next attempt. */
                if (r->error != -EBUSY && r->error != -EEXIST && !l->decided) {
                        snprintf(l->message, sizeof(l->message), "cannot write Lease %s/%s: %s", l->namespace,
                                 l->name, r->message);
                        set_leading(l, false, l->message);
                }
                arm(l);
                return;
        }
        observe(l, r->object, &duration);
        if (streq_ptr(l->holder, l->identity)) {
                l->renewed_at = now_mono(l);
                set_leading(l, true, NULL);
        }
        arm(l);
}

static void write_lease(KubeLease *l, bool create, bool acquire) {
        _cleanup_secbuf_ SecBuf *b = NULL;
        _cleanup_free_ char *collection = NULL;

        if (body(l, l->identity, acquire, lease_seconds(l), &b) < 0) {
                arm(l);
                return;
        }
        if (create && asprintf(&collection, "/apis/coordination.k8s.io/v1/namespaces/%s/leases", l->namespace) < 0) {
                collection = NULL;
                arm(l);
                return;
        }
        KubeRequest req = { .method = create ? "POST" : "PUT", .path = create ? collection : l->path,
                            .content_type = "application/json", .body = b };
        if (kube_request(l->client, &req, on_written, l, &l->call) < 0)
                arm(l);
}

static void on_read(const KubeResponse *r, void *userdata) {
        KubeLease *l = userdata;
        int64_t duration = 0;

        l->call = NULL;
        if (r->error == -ECANCELED)
                return;
        if (r->error == -ENOENT) {
                (void) replace(&l->rv, NULL);
                l->transitions = 0;
                write_lease(l, true, true);
                return;
        }
        if (r->error < 0) {
                if (!l->decided) {
                        snprintf(l->message, sizeof(l->message), "cannot read Lease %s/%s: %s", l->namespace, l->name,
                                 r->message);
                        set_leading(l, false, l->message);
                }
                arm(l);
                return;
        }
        observe(l, r->object, &duration);
        if (streq_ptr(l->holder, l->identity)) {
                write_lease(l, false, false);
                return;
        }
        uint64_t d = duration > 0 ? (uint64_t) duration * 1000000ULL : l->o.lease_duration_usec;
        bool expired = !l->holder || now_mono(l) >= l->observed_at + d;
        if (l->leading || (!l->decided && !expired)) {
                snprintf(l->message, sizeof(l->message), "Lease %s/%s is held by %s", l->namespace, l->name,
                         l->holder);
                set_leading(l, false, l->message);
        }
        if (expired) {
                write_lease(l, false, true);
                return;
        }
        arm(l);
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        KubeLease *l = userdata;

        /* Stop leading before the Lease can run out for the others, even while a renewal is
         * still waiting for its answer. */
        if (l->leading && now_mono(l) > l->renewed_at + l->o.renew_deadline_usec) {
                kube_call_cancel(l->call);
                l->call = NULL;
                set_leading(l, false, "could not renew the Lease within the renew deadline");
        }
        if (l->call) {
                arm(l);
                return 0;
        }
        if (kube_request(l->client, &(KubeRequest) { .path = l->path }, on_read, l, &l->call) < 0)
                arm(l);
        return 0;
}

int kube_lease_new(sd_event *e, KubeClient *client, const KubeLeaseOptions *opts, KubeLease **ret) {
        KubeLease *l = calloc(1, sizeof(KubeLease));
        if (!l)
                return -ENOMEM;
        l->event = sd_event_ref(e);
        l->client = client;
        l->o = *opts;
        l->namespace = strdup(opts->namespace);
        l->name = strdup(opts->name);
        l->identity = strdup(opts->identity);
        if (!l->namespace || !l->name || !l->identity ||
            asprintf(&l->path, "/apis/coordination.k8s.io/v1/namespaces/%s/leases/%s", l->namespace, l->name) < 0) {
                l->path = NULL;
                kube_lease_free(l);
                return -ENOMEM;
        }
        *ret = l;
        return 0;
}

int kube_lease_start(KubeLease *l) {
        if (l->timer)
                return 0;
        int r = sd_event_add_time_relative(l->event, &l->timer, CLOCK_MONOTONIC, 0, 1000, on_timer, l);
        return r < 0 ? r : 0;
}

bool kube_lease_leading(const KubeLease *l) {
        return l && l->leading;
}

static int on_release_done(sd_event_source *s, void *userdata) {
        KubeLease *l = userdata;
        void (*done)(void *) = l->released;
        l->released = NULL;
        if (done)
                done(l->released_userdata);
        return 0;
}

static void finish_release(KubeLease *l) {
        if (!l->release_done && sd_event_add_defer(l->event, &l->release_done, on_release_done, l) < 0)
                on_release_done(NULL, l);
        else
                (void) sd_event_source_set_enabled(l->release_done, SD_EVENT_ONESHOT);
}

static void on_released(const KubeResponse *r, void *userdata) {
        KubeLease *l = userdata;
        l->call = NULL;
        finish_release(l);
}

void kube_lease_release(KubeLease *l, void (*done)(void *userdata), void *userdata) {
        _cleanup_secbuf_ SecBuf *b = NULL;

        l->released = done;
        l->released_userdata = userdata;
        if (l->timer)
                (void) sd_event_source_set_enabled(l->timer, SD_EVENT_OFF);
        kube_call_cancel(l->call);
        l->call = NULL;
        bool was_leading = l->leading;
        set_leading(l, false, "stopping");
        /* As client-go's ReleaseOnCancel: no holder, and a 1 s lease, so a successor need not
         * wait for ours to run out. */
        if (!was_leading || body(l, "", false, 1, &b) < 0 ||
            kube_request(l->client, &(KubeRequest) { .method = "PUT", .path = l->path, .content_type = "application/json", .body = b },
                         on_released, l, &l->call) < 0)
                finish_release(l);
}

KubeLease *kube_lease_free(KubeLease *l) {
        if (!l)
                return NULL;
        kube_call_cancel(l->call);
        sd_event_source_disable_unref(l->timer);
        sd_event_source_disable_unref(l->release_done);
        free(l->namespace);
        free(l->name);
        free(l->identity);
        free(l->path);
        free(l->holder);
        free(l->renew_time);
        free(l->acquire_time);
        free(l->rv);
        sd_event_unref(l->event);
        free(l);
        return NULL;
}
