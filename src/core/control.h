/* SPDX-License-Identifier: MIT */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <systemd/sd-event.h>

#include "core/state.h"

typedef struct Manager Manager;
typedef struct Control Control;

/* The control socket secretsyncctl talks to: Varlink (JSON objects ended by a NUL byte),
 * interface io.secretsyncd, on the manager's event loop. Every client is bounded (message
 * size, connections, time without progress), so none can stall another or the syncing. */
#define CONTROL_SOCKET_NAME "io.secretsyncd"
#define CONTROL_MESSAGE_MAX (256U * 1024U)       /* a request */
#define CONTROL_REPLY_MAX (256U * 1024U * 1024U) /* a reply (status of 100,000 secrets) */
#define CONTROL_CONNECTIONS_MAX 4096U
#define CONTROL_IDLE_USEC (30U * 1000U * 1000U) /* a client that neither asks nor reads */
#define CONTROL_ACCEPT_BURST 64U

/* One request as a client sent it (a JSON object, its NUL taken off): parsed apart from
 * the socket, so that tests/fuzz can feed it anything. -EBADMSG if it is not a Varlink call
 * (a JSON object with a "method" string). Everything points into root. */
typedef struct ControlRequest {
        json_object *root;
        const char *method;
        json_object *params; /* "parameters" when an object, else NULL */
        json_object *names;  /* parameters.names when an array, else NULL */
        bool names_invalid;  /* parameters.names there, but neither an array nor null */
        bool oneway;
} ControlRequest;
int control_request_parse(const char *msg, size_t len, ControlRequest *ret);
void control_request_done(ControlRequest *r);

/* Listens on runtime_dir/io.secretsyncd (mode 0600; peers are checked with SO_PEERCRED:
 * root or our own uid). -EADDRINUSE when another daemon answers there. */
int control_new(sd_event *e, Manager *m, StateTable *state, const char *runtime_dir, Control **ret,
                char **ret_error);
/* Closes every connection and removes the socket. */
Control *control_free(Control *c);
/* A secret's sync ended: answers Refresh calls waiting for it. */
void control_secret_done(Control *c, const char *name, bool ok);
/* A reload: a Refresh waiting for a secret no longer configured is answered ("Removed"). */
void control_prune(Control *c, bool (*configured)(const char *name, void *userdata), void *userdata);
