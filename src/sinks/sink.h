/* SPDX-License-Identifier: MIT */
#pragma once

#include <libconfig.h>
#include <stdbool.h>
#include <systemd/sd-event.h>

#include "core/config.h"
#include "util/secret-data.h"
#include "util/atomic-file.h"
#include "util/http.h"
#include "util/secbuf.h"

/* The sink interface. A sink publishes a secret's data to the targets a secret names in one
 * of its settings ("files", "kubernetes"). It reads and checks those settings (into its own
 * typed targets in the SecretConfig), and at run time writes a target, asynchronously: write()
 * returns at once and the callback runs once, from the event loop or, for a sink that writes
 * synchronously (file), before write() returns. A sink knows nothing of stores; it does not
 * log above debug: errors come back as -errno plus a message for the operator (no secret
 * value in it), and the manager logs them with the secret and target named. */

typedef enum SinkOutcome {
        SINK_FAILED,
        SINK_WRITTEN,
        SINK_UNCHANGED,
        SINK_SKIPPED, /* not this node's to write (another holds the Lease) */
} SinkOutcome;

typedef struct SinkWriteResult {
        SinkOutcome outcome;
        int error;           /* -errno when FAILED */
        const char *message; /* FAILED: what went wrong; SKIPPED: why */
        const char *detail;  /* WRITTEN: shown after the target, like " (env, root:root 0600)" */
        bool flush;          /* WRITTEN: durable only once the context's batch is flushed */
        char *const *on_change; /* WRITTEN: run after the flush (argv), NULL if none */
        uint64_t on_change_timeout_usec;
} SinkWriteResult;

typedef void (*sink_write_cb)(const SinkWriteResult *r, void *userdata);

/* What a sink does by itself, for the journal. */
typedef enum SinkEventKind {
        SINK_EVENT_FAILED,    /* a write it did by itself failed */
        SINK_EVENT_REPAIRED,  /* put back a target someone edited or deleted */
        SINK_EVENT_DELETED,   /* deleted a target of a secret that is gone */
        SINK_EVENT_RESTARTED, /* restarted a workload for new data; error < 0: could not */
        SINK_EVENT_CLEANED,   /* removed `message`, which an interrupted write left beside a target */
        SINK_EVENT_LEADER_ACQUIRED,
        SINK_EVENT_LEADER_LOST,
} SinkEventKind;

typedef struct SinkVTable SinkVTable;

typedef struct SinkEvent {
        const SinkVTable *sink;
        SinkEventKind kind;
        const char *secret;
        const char *target;
        int error;
        const char *message;
} SinkEvent;

/* What the manager lends a sink when it makes one. */
typedef struct SinkContext {
        sd_event *event;
        HttpContext *http;
        AtomicSyncBatch *batch; /* directory fsyncs left to the manager's flush */
        bool once;              /* --once */
        void (*on_event)(const SinkEvent *e, void *userdata);
        void *userdata;
} SinkContext;

struct SinkVTable {
        const char *name;
        const char *setting; /* the secret's setting that holds the targets */
        const char *noun;    /* how messages name a target, before its name: "Kubernetes Secret " */

        /* Settings. parse_config() reads the setting into sec and returns how many targets
         * it holds (also invalid ones, which are reported to the parser). check_config()
         * (optional) runs once the secret is read, with the keys known from `data`
         * (keys_complete is false when data_from may add more); check_all() once every
         * secret is read. */
        size_t (*parse_config)(SecretConfig *sec, ConfigParser *p, const config_setting_t *setting);
        void (*check_config)(const SecretConfig *sec, ConfigParser *p, const config_setting_t *setting,
                             char *const *keys, bool keys_complete);
        void (*check_all)(Config *c, ConfigParser *p);
        void (*dump_config)(const SecretConfig *sec, ConfigDump *d);
        void (*done)(SecretConfig *sec);

        /* Run time. n_targets() tells how many targets of sec to write; target_name() names
         * one in messages and the journal's TARGET field. */
        size_t (*n_targets)(const SecretConfig *sec);
        void (*target_name)(const SecretConfig *sec, size_t i, char *buf, size_t size);
        int (*new)(const SinkContext *ctx, const Config *c, void **ret, char **ret_error);
        /* Optional. At start, before the first write: remove what a run that crashed or was
         * killed left behind beside the targets of c, and nothing else; each removal is
         * reported through ctx->on_event (SINK_EVENT_CLEANED). */
        void (*clean_up)(const SinkContext *ctx, const Config *c);
        void (*free)(void *sink);
        /* < 0 (with a message for the operator): cb never runs. Else cb runs exactly once.
         * sec stays valid until the next write or reconfigure of the same secret. */
        int (*write)(void *sink, const SecretConfig *sec, size_t i, const SecretData *d, sink_write_cb cb,
                     void *userdata, char **ret_error);
        /* Optional. A reload: the secret's configuration is now sec (NULL: removed); same
         * when nothing of it changed. A write in flight may come back with -ECANCELED. */
        void (*reconfigure)(void *sink, const SecretConfig *old, const SecretConfig *sec, bool same);
        /* Optional. Finish (writes in flight come back with -ECANCELED), then done(userdata). */
        void (*stop)(void *sink, void (*done)(void *userdata), void *userdata);
};

extern const SinkVTable sink_file_vtable;
extern const SinkVTable sink_kubernetes_vtable;

/* Every sink, in the order a sync writes them; NULL-terminated. */
extern const SinkVTable *const sink_vtables[];

/* A template_file's text (file and Kubernetes targets), read at configuration time: strict
 * modes when the parser has them, at most TEMPLATE_FILE_MAX, no NUL byte. Errors go to the
 * parser at s. */
int sink_read_template_file(ConfigParser *p, const config_setting_t *s, const char *path, char **ret);
/* template and template_file are dumped together, from template_file's entry (template's own
 * is sink_dump_nothing): the text only when it is inline, or in the fingerprint, which must
 * change when only the file's content did. */
void sink_dump_template(ConfigDump *d, const char *template_file, const char *template_text);
void sink_dump_nothing(ConfigDump *d, const ConfigSetting *s, const void *obj);

/* ---- the file sink's own API ---- */

/* The bytes an env, json, raw or template target gets. */
int sink_file_render(const FileTarget *t, const SecretData *d, SecBuf **ret, char **ret_error);

/* Publish the target: atomically, with owner/group/mode in place before the content is
 * visible, and only if the content differs from what is there (*ret_changed tells). A
 * failure leaves what was there untouched. With a batch, the directory's fsync is left to
 * atomic_sync_batch_flush() (see atomic-file.h). */
int sink_file_write(const FileTarget *t, const SecretData *d, AtomicSyncBatch *batch, bool *ret_changed,
                    char **ret_error);

/* Configuration-time checks of a target, given the keys known from `data` (keys_complete
 * is false when data_from may add more at run time): env names, raw key, template keys. */
int sink_file_check(const FileTarget *t, char *const *keys, bool keys_complete, char **ret_error);
