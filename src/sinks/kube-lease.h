/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "kube/kube-client.h"

/* Leader election with a coordination.k8s.io/v1 Lease, as client-go's leaderelection does
 * it: a candidate tries every retry period to create the Lease or take it over once its
 * holder has not renewed it for a lease duration (measured by our own clock, from when we
 * last saw the record change); the holder renews it every retry period and stops leading
 * when it has not managed to for renew_deadline, which is shorter than the lease duration,
 * so it stops before anyone else may start. Stopping releases the Lease at once. */

typedef struct KubeLease KubeLease;

typedef struct KubeLeaseOptions {
        const char *namespace;
        const char *name;
        const char *identity;
        uint64_t lease_duration_usec; /* 15 s */
        uint64_t renew_deadline_usec; /* 10 s */
        uint64_t retry_period_usec;   /* 2 s */
        /* leading: true when we became the holder, false when we stopped being it; also once
         * after the first attempt, whatever its outcome, so that the caller knows where it
         * stands (message: who holds the Lease, or the error that kept us from it). */
        void (*on_change)(KubeLease *l, bool leading, const char *message, void *userdata);
        void *userdata;
} KubeLeaseOptions;

int kube_lease_new(sd_event *e, KubeClient *client, const KubeLeaseOptions *opts, KubeLease **ret);
/* Starts trying; the first attempt goes out at once. */
int kube_lease_start(KubeLease *l);
bool kube_lease_leading(const KubeLease *l);
/* Releases the Lease if we hold it (holderIdentity emptied), then done(userdata) runs (also
 * when there was nothing to release, from the event loop). */
void kube_lease_release(KubeLease *l, void (*done)(void *userdata), void *userdata);
KubeLease *kube_lease_free(KubeLease *l);

/* "2026-11-29T09:40:00.123456Z": Kubernetes' MicroTime. */
int kube_format_micro_time(uint64_t realtime_usec, char *buf, size_t size);
