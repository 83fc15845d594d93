/* SPDX-License-Identifier: MIT */
#pragma once

#include <libconfig.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "util/cleanup.h"

/* Named maximums for everything the configuration can make us hold. */
#define CONFIG_FILE_MAX (4U * 1024U * 1024U)
#define CONFIG_SECRETS_MAX 100000U
#define CONFIG_ERRORS_MAX 100U
#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#define CONFIG_DEFAULT_PATH SYSCONFDIR "/secretsyncd/secretsyncd.conf"
#define TEMPLATE_FILE_MAX (1024U * 1024U)
/* A configuration file is read only once it has settled: not changed for CONFIG_SETTLE_USEC
 * (a file rewritten in place reads as empty or cut short until its writer is done). Waiting
 * for that is bounded by CONFIG_SETTLE_MAX_USEC; after that the load fails. */
#define CONFIG_SETTLE_USEC (100U * 1000U)
#define CONFIG_SETTLE_MAX_USEC (2U * 1000U * 1000U)
/* CONFIG_SETTLE_USEC; the fuzzers, which write a file and load it at once, set 0. */
extern unsigned config_settle_usec;

typedef struct Store Store;

typedef struct RemoteRef {
        char *key;
        char *property; /* NULL: the whole secret string */
        char *version;  /* NULL: latest */
} RemoteRef;

typedef struct DataRef {
        char *secret_key;
        RemoteRef remote;
        unsigned line;
} DataRef;

typedef struct DataFrom {
        RemoteRef extract;
        unsigned line;
} DataFrom;

typedef enum FileFormat {
        FILE_FORMAT_ENV,
        FILE_FORMAT_JSON,
        FILE_FORMAT_RAW,
        FILE_FORMAT_DIR,
        FILE_FORMAT_TEMPLATE,
        _FILE_FORMAT_MAX,
} FileFormat;

typedef struct FileTarget {
        char *path;
        FileFormat format;
        char *key;           /* raw */
        char *template_text; /* template: inline, or the content of template_file */
        char *template_file;
        char *owner, *group;
        uid_t uid;
        gid_t gid;
        mode_t mode;
        char **on_change; /* argv, NULL-terminated; NULL if none */
        uint64_t on_change_timeout_usec;
        const char *file; /* where it is set: NULL for the main file, else an @include'd one */
        unsigned line;
} FileTarget;

typedef enum CreationPolicy {
        CREATION_OWNER,
        CREATION_MERGE,
        CREATION_ORPHAN,
        CREATION_NONE,
        _CREATION_MAX,
} CreationPolicy;

typedef enum DeletionPolicy {
        DELETION_RETAIN,
        DELETION_DELETE,
        _DELETION_MAX,
} DeletionPolicy;

typedef enum MergePolicy {
        MERGE_POLICY_REPLACE, /* with templates: only the template keys */
        MERGE_POLICY_MERGE,   /* the data's keys and the template keys (those win) */
        _MERGE_POLICY_MAX,
} MergePolicy;

/* A key of a Kubernetes target computed from the data (ESO's target.template.data). */
typedef struct KubeTemplate {
        char *key;
        char *template_text; /* inline, or the content of template_file */
        char *template_file;
        unsigned line;
} KubeTemplate;

typedef struct KubeTarget {
        char *namespace;
        char *name;
        char *type;
        CreationPolicy creation_policy;
        DeletionPolicy deletion_policy;
        char **labels;      /* "key=value" */
        char **annotations; /* "key=value" */
        char **rollout_restart;
        KubeTemplate *templates;
        size_t n_templates;
        MergePolicy merge_policy;
        const char *file;
        unsigned line;
} KubeTarget;

typedef struct SecretConfig {
        char *name;
        char *store_name;
        Store *store; /* resolved, borrowed from Config.stores */
        uint64_t refresh_interval_usec;
        DataRef *data;
        size_t n_data;
        DataFrom *data_from;
        size_t n_data_from;
        KubeTarget *kubernetes; /* NULL: no Kubernetes target */
        FileTarget *files;
        size_t n_files;
        const char *file;
        unsigned line;
} SecretConfig;

typedef struct KubeConfig {
        bool present;
        char *kubeconfig; /* NULL: in-cluster service account */
        bool leader_election;
        char *lease_namespace;
        char *lease_name;
        char *identity;
        uint64_t lease_duration_usec;
        uint64_t renew_deadline_usec;
        uint64_t retry_period_usec;
        uint64_t timeout_usec; /* each API request (not a watch) */
        unsigned line;
} KubeConfig;

typedef struct DaemonConfig {
        uint64_t refresh_interval_usec;
        unsigned max_concurrent_requests;
        uint64_t min_backoff_usec;
        uint64_t max_backoff_usec;
        int log_level; /* syslog priority */
        char *runtime_dir;
        char *state_dir;
        char *metrics_file; /* NULL: no metrics */
} DaemonConfig;

typedef struct Config {
        char *path;
        char **included; /* the @include'd files, as they can be opened; the model points here */
        DaemonConfig daemon;
        Store **stores;
        size_t n_stores;
        KubeConfig kubernetes;
        SecretConfig *secrets;
        size_t n_secrets;
} Config;

/* Errors are collected, each "FILE:LINE: message", so --check-config reports them all. */
typedef struct ConfigParser {
        const char *path;
        char **errors;
        size_t n_errors;
        bool strict_modes;
        bool syntax_error;
        unsigned line_offset; /* lines before the text libconfig is parsing now */
        char **included;      /* names of @include'd files, resolved (see setting_file()) */
} ConfigParser;

/* Parse and validate. On failure returns -EINVAL (or -errno for I/O), and the messages are
 * in *ret_errors (a strv, also on success when NULL is not passed: empty). */
int config_load(const char *path, bool strict_modes, Config **ret, char ***ret_errors);
Config *config_free(Config *c);
static inline void config_freep(Config **c) {
        config_free(*c);
}
#define _cleanup_config_ _cleanup_(config_freep)

/* libconfig syntax with defaults filled in; secrets shown as "<redacted>" when redact. */
int config_dump(const Config *c, FILE *f, bool redact);
/* Canonical unredacted text of one store or secret, to tell on reload what changed.
 * The caller wipes and frees it (it may hold fake-store values). */
char *config_store_fingerprint(const Store *s);
char *config_secret_fingerprint(const SecretConfig *s);

const SecretConfig *config_find_secret(const Config *c, const char *name);
Store *config_find_store(const Config *c, const char *name);

/* Names of the enums; an int, not the enum, as ConfigSetting.to_string/from_string take. */
const char *file_format_to_string(int f);
const char *creation_policy_to_string(int p);
const char *deletion_policy_to_string(int p);
const char *merge_policy_to_string(int p);
int file_format_from_string(const char *s);
int creation_policy_from_string(const char *s);
int deletion_policy_from_string(const char *s);
int merge_policy_from_string(const char *s);
const char *log_level_to_string(int level);
int log_level_from_string(const char *s);

bool config_name_valid(const char *s);
bool config_secret_key_valid(const char *s);
bool config_env_name_valid(const char *s);
bool config_dns_label_valid(const char *s);     /* namespaces */
bool config_dns_subdomain_valid(const char *s); /* object names */
/* Absolute, without '.', '..', '//' or a trailing '/'. */
bool config_path_valid(const char *path);

/* ---- helpers for providers' parse_config/dump_config ---- */
void config_error(ConfigParser *p, const config_setting_t *s, const char *fmt, ...) _printf_(3, 4);
/* At a line of file (NULL: the main file). */
void config_error_at_line(ConfigParser *p, const char *file, unsigned line, const char *fmt, ...) _printf_(4, 5);
/* The name of an included file as the user can open it (NULL: the main file). */
const char *config_included_file(ConfigParser *p, const char *f);
unsigned config_setting_line(const ConfigParser *p, const config_setting_t *s);
/* Where s is set: the file (NULL for the main file; the model may point to it) and line. */
void config_setting_place(ConfigParser *p, const config_setting_t *s, const char **ret_file, unsigned *ret_line);
/* "line N" when in the same file as what the message is about, else "FILE:N". */
const char *config_other_place(const char *file, const char *other, unsigned line, char *buf, size_t size);
const char *config_type_name(int type);
const config_setting_t *config_member(const config_setting_t *group, const char *name);
/* Reports a setting that is not of type (an empty array passes as an empty list). */
bool config_expect_type(ConfigParser *p, const config_setting_t *s, int type, const char *what);
/* Every member of group must be in allowed (NULL-terminated); reports the others. */
void config_check_keys(ConfigParser *p, const config_setting_t *group, const char *const *allowed);
int config_get_string(ConfigParser *p, const config_setting_t *group, const char *name, bool required,
                      char **ret);
int config_get_int(ConfigParser *p, const config_setting_t *group, const char *name, long long min,
                   long long max, long long *ret);
int config_get_bool(ConfigParser *p, const config_setting_t *group, const char *name, bool *ret);
int config_get_duration(ConfigParser *p, const config_setting_t *group, const char *name, uint64_t *ret);
int config_get_strv(ConfigParser *p, const config_setting_t *group, const char *name, char ***ret);
/* A path to a credential: absolute; if it exists, strict modes are checked. */
int config_get_credential_file(ConfigParser *p, const config_setting_t *group, const char *name,
                               bool required, char **ret);
/* Strict modes for a credential path given by default rather than by a setting. */
int config_check_credential_path(ConfigParser *p, const config_setting_t *s, const char *path);
/* OpenSSH-style strict modes: owned by root (or us), not writable by group or others. The
 * message names the file and the fix. */
int config_check_file_trust(const char *path, char **ret_message);

/* ---- settings described once (as systemd's gperf tables and OpenSSH's keyword table) ----
 * Each setting of a group: its name, type, where it lands (offsetof into the group's
 * object), its default and its check. Parsing, dumping (and so the reload fingerprint),
 * defaults and freeing all walk the same table, in its order. */
typedef enum ConfigSettingType {
        CONFIG_SETTING_STRING,     /* char *; with .valid, a value it refuses is an error */
        CONFIG_SETTING_PATH,       /* char *: an absolute path (.what: "file path", say) */
        CONFIG_SETTING_CREDENTIAL, /* char *: an absolute path to a credential (strict modes) */
        CONFIG_SETTING_DURATION,   /* uint64_t, usec */
        CONFIG_SETTING_UNSIGNED,   /* unsigned, in [min, max] */
        CONFIG_SETTING_BOOL,       /* bool */
        CONFIG_SETTING_STRV,       /* char **, from an array of strings */
        CONFIG_SETTING_MODE,       /* mode_t, from an octal string ("0400"); no setuid, setgid, sticky */
        CONFIG_SETTING_ENUM,       /* int, by name through from_string/to_string */
        CONFIG_SETTING_GROUP,      /* the settings of .group, in the object at offset */
        CONFIG_SETTING_LIST,       /* ( { .group }, ... ): array at offset, count at n_offset */
} ConfigSettingType;

enum {
        CONFIG_SETTING_REQUIRED = 1 << 0,    /* missing or empty is an error */
        CONFIG_SETTING_NONEMPTY = 1 << 1,    /* "" is an error */
        CONFIG_SETTING_EMPTY_UNSET = 1 << 2, /* "" reads as not set */
        CONFIG_SETTING_DUMP_IF_SET = 1 << 3, /* left out of the dump when not set */
        CONFIG_SETTING_STOP_UNREAD = 1 << 4, /* the rest of the group is not read without it */
        CONFIG_SETTING_STOP_INVALID = 1 << 5, /* ...nor when its check fails */
        CONFIG_SETTING_CHECK_ALWAYS = 1 << 6, /* its check runs also when it is not set (s NULL) */
        CONFIG_SETTING_MULTILINE = 1 << 7,    /* may hold control characters (a template) */
};

typedef struct ConfigDump ConfigDump;
typedef struct ConfigSetting ConfigSetting;
struct ConfigSetting {
        const char *name;
        ConfigSettingType type;
        size_t offset;
        unsigned flags;
        uint64_t def;              /* DURATION, UNSIGNED, BOOL, ENUM: the default */
        const char *def_string;    /* strings: the default, filled in once parsed */
        long long min, max;        /* UNSIGNED */
        int (*from_string)(const char *s); /* ENUM */
        const char *(*to_string)(int v);   /* ENUM */
        const char *choices;       /* ENUM: named in the error */
        bool (*valid)(const char *s); /* STRING: "'name' = \"value\" is not a valid <what>" */
        const char *what;
        const ConfigSetting *group; /* GROUP, LIST: the members' settings, ending with a NULL name */
        size_t n_offset, size, line_offset; /* LIST: the count, an element's size, where its line goes */
        /* After the setting is read (a GROUP: all of it); false if invalid. obj is the group's
         * object, parent the object above it (for a list's elements: the list's owner). */
        bool (*check)(ConfigParser *p, const config_setting_t *group, const config_setting_t *s, void *obj,
                      void *parent);
        /* Optional, in place of the type's own: read (as config_get_*() return), dump, free. */
        int (*parse)(ConfigParser *p, const config_setting_t *group, const ConfigSetting *t, void *obj, void *parent);
        void (*dump)(ConfigDump *d, const ConfigSetting *t, const void *obj);
        void (*done)(const ConfigSetting *t, void *obj);
};

/* Reads group (a group) into obj; extra_keys (may be NULL) are more members that are not
 * unknown. Returns -EINVAL when a STOP_* setting stopped it. */
int config_settings_parse(ConfigParser *p, const config_setting_t *group, const ConfigSetting *table, void *obj,
                          void *parent, const char *const *extra_keys);
void config_settings_defaults(const ConfigSetting *table, void *obj);
int config_settings_fill(const ConfigSetting *table, void *obj); /* the string defaults */
void config_settings_done(const ConfigSetting *table, void *obj);

struct ConfigDump {
        FILE *f;
        int indent;
        bool redact;
        bool fingerprint; /* for change detection, not for people: may add derived values */
};
void config_dump_string(ConfigDump *d, const char *key, const char *value);
void config_dump_secret(ConfigDump *d, const char *key, const char *value);
void config_dump_int(ConfigDump *d, const char *key, long long value);
void config_dump_bool(ConfigDump *d, const char *key, bool value);
void config_dump_duration(ConfigDump *d, const char *key, uint64_t usec);
void config_dump_strv(ConfigDump *d, const char *key, char *const *l);
void config_dump_mode(ConfigDump *d, const char *key, mode_t mode);
void config_dump_open(ConfigDump *d, const char *key);
void config_dump_close(ConfigDump *d);
/* key = ( { ... }, { ... } ); */
void config_dump_list_open(ConfigDump *d, const char *key);
void config_dump_list_close(ConfigDump *d);
void config_dump_item_open(ConfigDump *d);
void config_dump_item_close(ConfigDump *d, bool last);
void config_dump_quoted(FILE *f, const char *s);
void config_settings_dump(ConfigDump *d, const ConfigSetting *table, const void *obj);
