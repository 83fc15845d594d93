/* SPDX-License-Identifier: MIT */
#include "core/config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "core/config-read.h"
#include "core/config-scan.h"
#include "sinks/sink.h"
#include "stores/store.h"
#include "util/duration.h"
#include "util/json.h"

#define DEFAULT_REFRESH_INTERVAL (1 * USEC_PER_HOUR)
#define DEFAULT_MAX_CONCURRENT 16
#define DEFAULT_MIN_BACKOFF (1 * USEC_PER_SEC)
#define DEFAULT_MAX_BACKOFF (5 * USEC_PER_MINUTE)
#define DEFAULT_LEASE_DURATION (15 * USEC_PER_SEC)
#define DEFAULT_RENEW_DEADLINE (10 * USEC_PER_SEC)
#define DEFAULT_RETRY_PERIOD (2 * USEC_PER_SEC)

unsigned config_settle_usec = CONFIG_SETTLE_USEC;

/* ---------------------------------------------------------------- names ---- */

static const char *const file_format_table[_FILE_FORMAT_MAX] = {
        [FILE_FORMAT_ENV] = "env", [FILE_FORMAT_JSON] = "json", [FILE_FORMAT_RAW] = "raw",
        [FILE_FORMAT_DIR] = "dir", [FILE_FORMAT_TEMPLATE] = "template",
};
static const char *const creation_policy_table[_CREATION_MAX] = {
        [CREATION_OWNER] = "owner", [CREATION_MERGE] = "merge",
        [CREATION_ORPHAN] = "orphan", [CREATION_NONE] = "none",
};
static const char *const deletion_policy_table[_DELETION_MAX] = {
        [DELETION_RETAIN] = "retain", [DELETION_DELETE] = "delete",
};

static const char *const merge_policy_table[_MERGE_POLICY_MAX] = {
        [MERGE_POLICY_REPLACE] = "replace", [MERGE_POLICY_MERGE] = "merge",
};

static int table_lookup(const char *const *table, size_t n, const char *s) {
        for (size_t i = 0; i < n; i++)
                if (table[i] && streq(table[i], s))
                        return (int) i;
        return -EINVAL;
}

const char *file_format_to_string(int f) {
        return f >= 0 && f < _FILE_FORMAT_MAX ? file_format_table[f] : NULL;
}
const char *creation_policy_to_string(int p) {
        return p >= 0 && p < _CREATION_MAX ? creation_policy_table[p] : NULL;
}
const char *deletion_policy_to_string(int p) {
        return p >= 0 && p < _DELETION_MAX ? deletion_policy_table[p] : NULL;
}
const char *merge_policy_to_string(int p) {
        return p >= 0 && p < _MERGE_POLICY_MAX ? merge_policy_table[p] : NULL;
}
int file_format_from_string(const char *s) {
        return table_lookup(file_format_table, _FILE_FORMAT_MAX, s);
}
int creation_policy_from_string(const char *s) {
        return table_lookup(creation_policy_table, _CREATION_MAX, s);
}
int deletion_policy_from_string(const char *s) {
        return table_lookup(deletion_policy_table, _DELETION_MAX, s);
}
int merge_policy_from_string(const char *s) {
        return table_lookup(merge_policy_table, _MERGE_POLICY_MAX, s);
}

static const struct {
        const char *name;
        int level;
} log_levels[] = {
        { "debug", LOG_DEBUG }, { "info", LOG_INFO }, { "notice", LOG_NOTICE },
        { "warning", LOG_WARNING }, { "err", LOG_ERR },
};

const char *log_level_to_string(int level) {
        for (size_t i = 0; i < ELEMENTSOF(log_levels); i++)
                if (log_levels[i].level == level)
                        return log_levels[i].name;
        return NULL;
}

int log_level_from_string(const char *s) {
        for (size_t i = 0; i < ELEMENTSOF(log_levels); i++)
                if (streq(log_levels[i].name, s))
                        return log_levels[i].level;
        if (streq(s, "error"))
                return LOG_ERR;
        return -EINVAL;
}

/* [a-z0-9]([-a-z0-9]*[a-z0-9])?, at most 253 characters. */
bool config_name_valid(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n > 253)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!(islower((unsigned char) s[i]) || isdigit((unsigned char) s[i]) || s[i] == '-'))
                        return false;
        return s[0] != '-' && s[n - 1] != '-';
}

/* Kubernetes Secret data keys: [-._a-zA-Z0-9]+, not "." or "..". */
bool config_secret_key_valid(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n > 253 || streq(s, ".") || streq(s, ".."))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!(isalnum((unsigned char) s[i]) || strchr("-._", s[i])))
                        return false;
        return true;
}

bool config_env_name_valid(const char *s) {
        if (!*s || isdigit((unsigned char) s[0]))
                return false;
        for (const char *p = s; *p; p++)
                if (!(isalnum((unsigned char) *p) || *p == '_'))
                        return false;
        return true;
}

/* DNS-1123 label (namespaces): at most 63. */
bool config_dns_label_valid(const char *s) {
        return strlen(s) <= 63 && config_name_valid(s);
}

/* DNS-1123 subdomain (Secret names): labels joined by dots, at most 253. */
bool config_dns_subdomain_valid(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n > 253 || s[0] == '.' || s[n - 1] == '.' || strstr(s, ".."))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!(islower((unsigned char) s[i]) || isdigit((unsigned char) s[i]) || s[i] == '-' || s[i] == '.'))
                        return false;
        for (const char *p = s; *p; p++)
                if (*p == '-' && (p == s || p[-1] == '.' || p[1] == '.' || p[1] == 0))
                        return false;
        return true;
}

/* --------------------------------------------------------------- settings ---- */

static bool check_backoff(ConfigParser *p, const config_setting_t *g, const config_setting_t *s, void *obj,
                          void *parent) {
        DaemonConfig *d = obj;
        bool ok = true;
        if (d->min_backoff_usec == 0 && config_member(g, "min_backoff")) {
                config_error(p, config_member(g, "min_backoff"), "'min_backoff' must be greater than zero");
                ok = false;
        }
        if (d->max_backoff_usec < d->min_backoff_usec) {
                config_error(p, s ?: g, "'max_backoff' must not be shorter than 'min_backoff'");
                ok = false;
        }
        return ok;
}

static const ConfigSetting daemon_settings[] = {
        { "refresh_interval", CONFIG_SETTING_DURATION, offsetof(DaemonConfig, refresh_interval_usec),
          .def = DEFAULT_REFRESH_INTERVAL },
        { "max_concurrent_requests", CONFIG_SETTING_UNSIGNED, offsetof(DaemonConfig, max_concurrent_requests),
          .def = DEFAULT_MAX_CONCURRENT, .min = 1, .max = 1024 },
        { "min_backoff", CONFIG_SETTING_DURATION, offsetof(DaemonConfig, min_backoff_usec), .def = DEFAULT_MIN_BACKOFF },
        /* checks min_backoff too: both once both are read */
        { "max_backoff", CONFIG_SETTING_DURATION, offsetof(DaemonConfig, max_backoff_usec),
          CONFIG_SETTING_CHECK_ALWAYS, .def = DEFAULT_MAX_BACKOFF, .check = check_backoff },
        { "log_level", CONFIG_SETTING_ENUM, offsetof(DaemonConfig, log_level), .def = LOG_INFO,
          .from_string = log_level_from_string, .to_string = log_level_to_string,
          .choices = "debug, info, notice, warning, err" },
        { "runtime_dir", CONFIG_SETTING_PATH, offsetof(DaemonConfig, runtime_dir), .def_string = "/run/secretsyncd" },
        { "state_dir", CONFIG_SETTING_PATH, offsetof(DaemonConfig, state_dir), .def_string = "/var/lib/secretsyncd" },
        { "metrics_file", CONFIG_SETTING_PATH, offsetof(DaemonConfig, metrics_file), CONFIG_SETTING_DUMP_IF_SET,
          .what = "file path" },
        {}
};

static bool check_lease_times(ConfigParser *p, const config_setting_t *g, const config_setting_t *s, void *obj,
                              void *parent) {
        const KubeConfig *k = obj;
        bool ok = true;
        if (k->renew_deadline_usec >= k->lease_duration_usec) {
                config_error(p, s, "'renew_deadline' must be shorter than 'lease_duration'");
                ok = false;
        }
        if (k->retry_period_usec >= k->renew_deadline_usec) {
                config_error(p, s, "'retry_period' must be shorter than 'renew_deadline'");
                ok = false;
        }
        return ok;
}

/* In the KubeConfig itself (offset 0 of the group). */
static const ConfigSetting leader_election_settings[] = {
        { "enabled", CONFIG_SETTING_BOOL, offsetof(KubeConfig, leader_election), .def = true },
        { "namespace", CONFIG_SETTING_STRING, offsetof(KubeConfig, lease_namespace), .def_string = "kube-system",
          .valid = config_dns_label_valid, .what = "namespace name" },
        { "lease_name", CONFIG_SETTING_STRING, offsetof(KubeConfig, lease_name), .def_string = "secretsyncd",
          .valid = config_dns_subdomain_valid, .what = "object name" },
        /* default: the host name (fill_defaults()) */
        { "identity", CONFIG_SETTING_STRING, offsetof(KubeConfig, identity), CONFIG_SETTING_NONEMPTY },
        { "lease_duration", CONFIG_SETTING_DURATION, offsetof(KubeConfig, lease_duration_usec),
          .def = DEFAULT_LEASE_DURATION },
        { "renew_deadline", CONFIG_SETTING_DURATION, offsetof(KubeConfig, renew_deadline_usec),
          .def = DEFAULT_RENEW_DEADLINE },
        { "retry_period", CONFIG_SETTING_DURATION, offsetof(KubeConfig, retry_period_usec),
          .def = DEFAULT_RETRY_PERIOD },
        {}
};

static bool kube_timeout_valid(ConfigParser *p, const config_setting_t *g, const config_setting_t *s, void *obj,
                               void *parent) {
        if (((const KubeConfig *) obj)->timeout_usec >= 100 * USEC_PER_MSEC)
                return true;
        config_error(p, s, "kubernetes: 'timeout' must be at least 100ms");
        return false;
}

static const ConfigSetting kubernetes_settings[] = {
        /* unset or "": the in-cluster service account */
        { "kubeconfig", CONFIG_SETTING_CREDENTIAL, offsetof(KubeConfig, kubeconfig),
          CONFIG_SETTING_EMPTY_UNSET | CONFIG_SETTING_DUMP_IF_SET },
        { "leader_election", CONFIG_SETTING_GROUP, 0, .group = leader_election_settings, .check = check_lease_times },
        { "timeout", CONFIG_SETTING_DURATION, offsetof(KubeConfig, timeout_usec), .def = 30 * USEC_PER_SEC,
          .check = kube_timeout_valid },
        {}
};

static bool check_property(ConfigParser *p, const config_setting_t *g, const config_setting_t *s, void *obj,
                           void *parent) {
        const RemoteRef *r = obj;
        _cleanup_free_ char *m = NULL;
        if (json_property_path_check(r->property, &m) >= 0)
                return true;
        config_error(p, s, "'property' = \"%s\" is not a valid key path: %s", r->property, m ?: "out of memory");
        return false;
}

static const ConfigSetting remote_ref_settings[] = {
        { "key", CONFIG_SETTING_STRING, offsetof(RemoteRef, key), CONFIG_SETTING_REQUIRED | CONFIG_SETTING_STOP_UNREAD },
        { "property", CONFIG_SETTING_STRING, offsetof(RemoteRef, property),
          CONFIG_SETTING_EMPTY_UNSET | CONFIG_SETTING_DUMP_IF_SET | CONFIG_SETTING_STOP_INVALID, .check = check_property },
        { "version", CONFIG_SETTING_STRING, offsetof(RemoteRef, version),
          CONFIG_SETTING_EMPTY_UNSET | CONFIG_SETTING_DUMP_IF_SET },
        {}
};

static bool check_secret_key(ConfigParser *p, const config_setting_t *g, const config_setting_t *s, void *obj,
                             void *parent) {
        const DataRef *d = obj;
        const SecretConfig *sec = parent;
        if (!config_secret_key_valid(d->secret_key))
                config_error(p, s, "secret '%s': secret_key \"%s\" must be made of [-._a-zA-Z0-9]", sec->name,
                             d->secret_key);
        for (const DataRef *o = sec->data; o < d; o++)
                if (streq_ptr(o->secret_key, d->secret_key))
                        config_error(p, g, "secret '%s': secret_key \"%s\" appears twice", sec->name, d->secret_key);
        return true;
}

static const ConfigSetting data_settings[] = {
        { "secret_key", CONFIG_SETTING_STRING, offsetof(DataRef, secret_key), CONFIG_SETTING_REQUIRED,
          .check = check_secret_key },
        { "remote_ref", CONFIG_SETTING_GROUP, offsetof(DataRef, remote), CONFIG_SETTING_REQUIRED,
          .group = remote_ref_settings },
        {}
};

static const ConfigSetting data_from_settings[] = {
        { "extract", CONFIG_SETTING_GROUP, offsetof(DataFrom, extract), CONFIG_SETTING_REQUIRED,
          .group = remote_ref_settings },
        {}
};

static bool check_secret_name(ConfigParser *p, const config_setting_t *g, const config_setting_t *s, void *obj,
                              void *parent) {
        const SecretConfig *sec = obj;
        if (config_name_valid(sec->name))
                return true;
        config_error(p, s,
                     "secret name '%s' is not valid: use lower case letters, digits and '-', starting and "
                     "ending with a letter or digit",
                     sec->name);
        return false;
}

/* Resolves the store (parent: the Config). */
static bool check_store(ConfigParser *p, const config_setting_t *g, const config_setting_t *s, void *obj,
                        void *parent) {
        SecretConfig *sec = obj;
        sec->store = config_find_store(parent, sec->store_name);
        if (sec->store)
                return true;
        config_error(p, s, "secret '%s': store '%s' is not defined in 'stores'", sec->name, sec->store_name);
        return false;
}

/* Then the sinks' settings (sink_vtables). */
static const ConfigSetting secret_settings[] = {
        { "name", CONFIG_SETTING_STRING, offsetof(SecretConfig, name),
          CONFIG_SETTING_REQUIRED | CONFIG_SETTING_STOP_UNREAD, .check = check_secret_name },
        { "store", CONFIG_SETTING_STRING, offsetof(SecretConfig, store_name), CONFIG_SETTING_REQUIRED,
          .check = check_store },
        /* default: daemon.refresh_interval */
        { "refresh_interval", CONFIG_SETTING_DURATION, offsetof(SecretConfig, refresh_interval_usec) },
        { "data", CONFIG_SETTING_LIST, offsetof(SecretConfig, data), .n_offset = offsetof(SecretConfig, n_data),
          .size = sizeof(DataRef), .line_offset = offsetof(DataRef, line), .group = data_settings },
        { "data_from", CONFIG_SETTING_LIST, offsetof(SecretConfig, data_from),
          .n_offset = offsetof(SecretConfig, n_data_from), .size = sizeof(DataFrom),
          .line_offset = offsetof(DataFrom, line), .group = data_from_settings },
        {}
};

/* ------------------------------------------------------------------ model ---- */

static void dump_store(const Store *s, ConfigDump *d) {
        config_dump_open(d, s->name);
        config_dump_string(d, "type", s->vtable->name);
        s->vtable->dump_config(s, d);
        config_dump_close(d);
}

static void dump_secret(ConfigDump *d, const SecretConfig *s) {
        config_settings_dump(d, secret_settings, s);
        for (const SinkVTable *const *vt = sink_vtables; *vt; vt++)
                (*vt)->dump_config(s, d);
}

int config_dump(const Config *c, FILE *f, bool redact) {
        ConfigDump d = { .f = f, .redact = redact };

        fputs("# secretsyncd effective configuration (secretsyncd --dump-config)\n", f);
        config_dump_open(&d, "daemon");
        config_settings_dump(&d, daemon_settings, &c->daemon);
        config_dump_close(&d);

        config_dump_open(&d, "stores");
        for (size_t i = 0; i < c->n_stores; i++)
                dump_store(c->stores[i], &d);
        config_dump_close(&d);

        if (c->kubernetes.present) {
                const KubeConfig *k = &c->kubernetes;
                config_dump_open(&d, "kubernetes");
                config_settings_dump(&d, kubernetes_settings, k);
                config_dump_close(&d);
        }

        fputs("secrets = (\n", f);
        d.indent++;
        for (size_t i = 0; i < c->n_secrets; i++) {
                config_dump_item_open(&d);
                dump_secret(&d, &c->secrets[i]);
                config_dump_item_close(&d, i + 1 == c->n_secrets);
        }
        d.indent--;
        fputs(");\n", f);
        return ferror(f) ? -EIO : 0;
}

static char *fingerprint(void (*fn)(ConfigDump *d, const void *x), const void *x) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);
        if (!f)
                return NULL;
        ConfigDump d = { .f = f, .redact = false, .fingerprint = true };
        fn(&d, x);
        fclose(f);
        return buf;
}

static void fp_store(ConfigDump *d, const void *x) {
        dump_store(x, d);
}
static void fp_secret(ConfigDump *d, const void *x) {
        dump_secret(d, x);
}

char *config_store_fingerprint(const Store *s) {
        return fingerprint(fp_store, s);
}

char *config_secret_fingerprint(const SecretConfig *s) {
        return fingerprint(fp_secret, s);
}

/* ------------------------------------------------------------------ free ---- */

static void secret_config_done(SecretConfig *s) {
        config_settings_done(secret_settings, s);
        for (const SinkVTable *const *vt = sink_vtables; *vt; vt++)
                (*vt)->done(s);
}

Config *config_free(Config *c) {
        if (!c)
                return NULL;
        free(c->path);
        strv_free(c->included);
        config_settings_done(daemon_settings, &c->daemon);
        for (size_t i = 0; i < c->n_stores; i++)
                store_free(c->stores[i]);
        free(c->stores);
        config_settings_done(kubernetes_settings, &c->kubernetes);
        for (size_t i = 0; i < c->n_secrets; i++)
                secret_config_done(&c->secrets[i]);
        free(c->secrets);
        free(c);
        return NULL;
}

const SecretConfig *config_find_secret(const Config *c, const char *name) {
        for (size_t i = 0; i < c->n_secrets; i++)
                if (streq(c->secrets[i].name, name))
                        return &c->secrets[i];
        return NULL;
}

Store *config_find_store(const Config *c, const char *name) {
        for (size_t i = 0; i < c->n_stores; i++)
                if (streq(c->stores[i]->name, name))
                        return c->stores[i];
        return NULL;
}

/* ----------------------------------------------------------------- parse ---- */

static bool expect_group(ConfigParser *p, const config_setting_t *s, const char *what) {
        return config_expect_type(p, s, CONFIG_TYPE_GROUP, what);
}

static void parse_stores(ConfigParser *p, const config_setting_t *g, Config *c) {
        if (!g)
                return;
        if (!expect_group(p, g, "stores"))
                return;
        int n = config_setting_length(g);
        c->stores = calloc((size_t) n + 1, sizeof(Store *));
        if (!c->stores)
                return;
        for (int i = 0; i < n; i++) {
                const config_setting_t *s = config_setting_get_elem(g, (unsigned) i);
                const char *name = config_setting_name(s);
                _cleanup_free_ char *type = NULL;

                if (!config_name_valid(name)) {
                        config_error(p, s, "store name '%s' is not valid: use lower case letters, digits and '-', "
                                     "starting and ending with a letter or digit", name);
                        continue;
                }
                if (!expect_group(p, s, name))
                        continue;
                if (config_get_string(p, s, "type", true, &type) <= 0)
                        continue;
                const StoreVTable *vt = store_vtable_find(type);
                if (!vt) {
                        config_error(p, config_member(s, "type"), "store '%s': unknown type \"%s\" (known: %s)", name, type,
                                     store_types_list());
                        continue;
                }
                Store *st = store_new(vt, name);
                if (!st)
                        return;
                st->line = config_setting_line(p, s);
                c->stores[c->n_stores++] = st;
                vt->parse_config(st, p, s);
        }
}

static void parse_kubernetes(ConfigParser *p, const config_setting_t *g, KubeConfig *k) {
        if (!g)
                return;
        if (!expect_group(p, g, "kubernetes"))
                return;
        k->present = true;
        k->line = config_setting_line(p, g);
        (void) config_settings_parse(p, g, kubernetes_settings, k, NULL, NULL);
}

static void parse_secret(ConfigParser *p, const config_setting_t *g, Config *c, SecretConfig *sec) {
        const char *sinks[8] = { 0 };
        const config_setting_t *s;

        sec->file = config_included_file(p, config_setting_source_file(g));
        sec->line = config_setting_line(p, g);
        sec->refresh_interval_usec = c->daemon.refresh_interval_usec;
        if (!expect_group(p, g, "secrets"))
                return;
        for (size_t i = 0; sink_vtables[i] && i + 1 < ELEMENTSOF(sinks); i++)
                sinks[i] = sink_vtables[i]->setting;
        if (config_settings_parse(p, g, secret_settings, sec, c, sinks) < 0) {
                if (!sec->name)
                        sec->name = strdup("?");
                return;
        }
        if (sec->n_data == 0 && sec->n_data_from == 0)
                config_error(p, g, "secret '%s' has neither 'data' nor 'data_from': nothing to fetch", sec->name);

        size_t targets = 0;
        for (const SinkVTable *const *vt = sink_vtables; *vt; vt++)
                if ((s = config_member(g, (*vt)->setting)))
                        targets += (*vt)->parse_config(sec, p, s);
        if (targets == 0)
                config_error(p, g, "secret '%s' has no target: add 'files' or 'kubernetes'", sec->name);

        /* The store's own view of the refs (a version on a KV v1 store, say). */
        if (sec->store && sec->store->vtable->check_ref) {
                const config_setting_t *l = config_member(g, "data");
                for (size_t i = 0; i < sec->n_data; i++) {
                        _cleanup_free_ char *m = NULL;
                        if (sec->data[i].remote.key &&
                            sec->store->vtable->check_ref(sec->store, &sec->data[i].remote, &m) < 0)
                                config_error(p, l ? config_setting_get_elem(l, (unsigned) i) : g, "secret '%s': %s",
                                             sec->name, m ? m : "invalid remote_ref");
                }
                l = config_member(g, "data_from");
                for (size_t i = 0; i < sec->n_data_from; i++) {
                        _cleanup_free_ char *m = NULL;
                        if (sec->data_from[i].extract.key &&
                            sec->store->vtable->check_ref(sec->store, &sec->data_from[i].extract, &m) < 0)
                                config_error(p, l ? config_setting_get_elem(l, (unsigned) i) : g, "secret '%s': %s",
                                             sec->name, m ? m : "invalid extract");
                }
        }

        /* Checks that need the whole secret: keys known from `data` against each target. */
        _cleanup_free_ char **known = calloc(sec->n_data + 1, sizeof(char *));
        size_t nk = 0;
        for (size_t i = 0; known && i < sec->n_data; i++)
                if (sec->data[i].secret_key)
                        known[nk++] = sec->data[i].secret_key;
        for (const SinkVTable *const *vt = sink_vtables; known && *vt; vt++)
                if ((*vt)->check_config && (s = config_member(g, (*vt)->setting)))
                        (*vt)->check_config(sec, p, s, known, sec->n_data_from == 0);
}

static int secret_ptr_cmp(const void *a, const void *b) {
        const SecretConfig *x = *(SecretConfig *const *) a, *y = *(SecretConfig *const *) b;
        if (!x->name || !y->name)
                return !!x->name - !!y->name;
        return strcmp(x->name, y->name);
}

static char *default_identity(void) {
        char h[256] = { 0 };
        if (gethostname(h, sizeof(h) - 1) < 0 || !*h)
                return strdup("secretsyncd");
        return strdup(h);
}

static int fill_defaults(Config *c) {
        KubeConfig *k = &c->kubernetes;
        if (config_settings_fill(daemon_settings, &c->daemon) < 0 || config_settings_fill(kubernetes_settings, k) < 0)
                return -ENOMEM;
        if (!k->identity && !(k->identity = default_identity()))
                return -ENOMEM;
        return 0;
}

static void report_syntax_error(ConfigParser *p, config_t *cfg) {
        const char *text = config_error_text(cfg);
        p->syntax_error = true;
        config_error_at_line(p, config_included_file(p, config_error_file(cfg)),
                             (unsigned) config_error_line(cfg) + p->line_offset, "%s%s",
                             strstr(text, "syntax error") ? "" : "syntax error: ", text);
}

/* One element of the secrets list, read again from the file and parsed by libconfig on its
 * own. */
static void parse_secret_text(ConfigParser *p, int fd, const Span *e, Config *c, SecretConfig *sec) {
        size_t n = e->end - e->start;
        _cleanup_free_ char *buf = malloc(n + 6);
        config_t cfg;

        sec->line = e->line;
        sec->refresh_interval_usec = c->daemon.refresh_interval_usec;
        if (!buf)
                return;
        memcpy(buf, "x=(", 3);
        ssize_t got = pread(fd, buf + 3, n, (off_t) e->start);
        /* Cut short: an empty element, a syntax error; the check after the parse tells why. */
        memcpy(buf + 3 + MAX(got, 0), ");", 3);
        config_init(&cfg);
        config_set_options(&cfg, 0);
        p->line_offset = e->line - 1;
        if (!config_read_string(&cfg, buf))
                report_syntax_error(p, &cfg);
        else {
                const config_setting_t *l = config_lookup(&cfg, "x");
                if (l && config_setting_length(l) == 1)
                        parse_secret(p, config_setting_get_elem(l, 0), c, sec);
                else {
                        p->syntax_error = true;
                        config_error_at_line(p, NULL, e->line, "syntax error");
                }
        }
        p->line_offset = 0;
        config_destroy(&cfg);
        if (!sec->name)
                sec->name = strdup("?");
}

static Config *config_new(const char *path) {
        Config *c = calloc(1, sizeof(Config));
        if (!c)
                return NULL;
        c->path = strdup(path);
        if (!c->path)
                return config_free(c);
        config_settings_defaults(daemon_settings, &c->daemon);
        config_settings_defaults(kubernetes_settings, &c->kubernetes);
        return c;
}

static void check_names_unique(ConfigParser *p, Config *c) {
        /* A sorted copy of pointers: a quadratic scan is too slow at 100k secrets. */
        if (c->n_secrets < 2)
                return;
        _cleanup_free_ SecretConfig **v = calloc(c->n_secrets, sizeof(SecretConfig *));
        if (!v)
                return;
        for (size_t i = 0; i < c->n_secrets; i++)
                v[i] = &c->secrets[i];
        qsort(v, c->n_secrets, sizeof(*v), secret_ptr_cmp);
        for (size_t i = 1; i < c->n_secrets; i++) {
                /* An invalid or missing name ("?") is reported already. */
                if (!v[i]->name || !v[i - 1]->name || !streq(v[i]->name, v[i - 1]->name) ||
                    !config_name_valid(v[i]->name))
                        continue;
                /* In file order: the later one is the duplicate. */
                const SecretConfig *a = v[i - 1], *b = v[i];
                if (a > b)
                        a = v[i], b = v[i - 1];
                char w[PATH_MAX + 32];
                if (streq_ptr(a->file, b->file))
                        config_error_at_line(p, b->file, b->line, "secret name '%s' is used twice (lines %u and %u)",
                                             b->name, a->line, b->line);
                else
                        config_error_at_line(p, b->file, b->line, "secret name '%s' is used twice (also at %s)",
                                             b->name, config_other_place(b->file, a->file, a->line, w, sizeof(w)));
        }
}

/* Parses the text into a new model: the secrets list element by element when split, else
 * the whole file at once. */
static int parse_config_text(ConfigParser *p, const ConfigText *t, const SecretsSplit *split, SeenList *seen,
                             Config **ret) {
        _cleanup_config_ Config *c = config_new(p->path);
        _cleanup_free_ char *dir = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        config_t cfg;
        int r = 0;

        if (!c)
                return -ENOMEM;
        /* libconfig reads through a stream; when split it sees `secrets = ( )`, and the
         * elements come one by one below. */
        BlankedText bt = { .fd = t->fd, .len = t->len, .from = split ? split->open + 1 : 0,
                           .to = split ? split->close : 0 };
        f = fopencookie(&bt, "r", (cookie_io_functions_t) { .read = config_blanked_read });
        if (!f)
                return -errno;

        config_init(&cfg);
        config_set_options(&cfg, 0);
        /* @include "x" is relative to the including file's directory. */
        dir = strdup(p->path);
        if (dir && strrchr(dir, '/')) {
                *strrchr(dir, '/') = 0;
                config_set_include_dir(&cfg, *dir ? dir : "/");
        }
        uint64_t read_start = config_now_usec(CLOCK_REALTIME);
        if (!config_read(&cfg, f)) {
                report_syntax_error(p, &cfg);
                config_destroy(&cfg);
                return -EINVAL;
        }
        r = config_check_included_files(p, &cfg, seen, read_start);
        if (r < 0) {
                config_destroy(&cfg);
                return r;
        }

        const config_setting_t *root = config_root_setting(&cfg);
        static const char *const keys[] = { "daemon", "stores", "kubernetes", "secrets", NULL };
        config_check_keys(p, root, keys);
        const config_setting_t *g = config_member(root, "daemon");
        if (g && expect_group(p, g, "daemon"))
                (void) config_settings_parse(p, g, daemon_settings, &c->daemon, NULL, NULL);
        parse_stores(p, config_member(root, "stores"), c);
        parse_kubernetes(p, config_member(root, "kubernetes"), &c->kubernetes);

        const config_setting_t *list = config_member(root, "secrets");
        if (list && config_expect_type(p, list, CONFIG_TYPE_LIST, "secrets")) {
                size_t n = split ? split->n : (size_t) config_setting_length(list);
                if (n > CONFIG_SECRETS_MAX)
                        config_error(p, list, "too many secrets (%zu; at most %u)", n, CONFIG_SECRETS_MAX);
                else {
                        if (split) {
                                /* Everything the main tree held is in the model now: free it
                                 * before the secrets' model grows (the peak of a large file). */
                                config_destroy(&cfg);
                                config_init(&cfg);
                        }
                        c->secrets = calloc(n + 1, sizeof(SecretConfig));
                        for (size_t i = 0; c->secrets && i < n && !p->syntax_error; i++) {
                                SecretConfig *sec = &c->secrets[c->n_secrets++];
                                if (split)
                                        parse_secret_text(p, t->fd, &split->elems[i], c, sec);
                                else
                                        parse_secret(p, config_setting_get_elem(list, (unsigned) i), c, sec);
                        }
                }
        }
        config_destroy(&cfg);
        if (p->syntax_error)
                return -EINVAL;
        check_names_unique(p, c);
        for (const SinkVTable *const *vt = sink_vtables; *vt; vt++)
                (*vt)->check_all(c, p);
        r = fill_defaults(c);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(c);
        return 0;
}

static int load_once(ConfigParser *p, SeenList *seen, uint64_t deadline, Config **ret) {
        ConfigText t = { .fd = -1 };
        SecretsSplit split = { 0 };
        Config *c = NULL;

        int r = config_text_read(p, p->path, p->strict_modes, seen, deadline, &t);
        if (r < 0)
                return r;
        bool streamed = config_split_secrets(t.text, &split);
        config_text_unmap(&t);
        r = parse_config_text(p, &t, streamed ? &split : NULL, seen, &c);
        if (streamed && p->syntax_error) {
                /* Report what libconfig finds in the whole file, as it would without the split. */
                strv_free(p->errors);
                p->errors = NULL;
                p->n_errors = 0;
                p->syntax_error = false;
                c = config_free(c);
                r = parse_config_text(p, &t, NULL, seen, &c);
        }
        free(split.elems);
        /* Whatever was parsed, a file that changed meanwhile is not what the user wrote. */
        int k = config_text_check_unchanged(p, &t);
        config_text_done(&t);
        if (k < 0) {
                config_free(c);
                return k;
        }
        if (r >= 0 && p->n_errors > 0)
                r = -EINVAL;
        if (r < 0) {
                config_free(c);
                return r;
        }
        *ret = c;
        return 0;
}

int config_load(const char *path, bool strict_modes, Config **ret, char ***ret_errors) {
        uint64_t deadline = config_now_usec(CLOCK_MONOTONIC) + CONFIG_SETTLE_MAX_USEC;
        ConfigParser p = { .path = path, .strict_modes = strict_modes };
        SeenList seen = { 0 };
        Config *c = NULL;
        int r;

        /* A file (or an @include'd one) changed while it was read: read it again once it has
         * settled, until the deadline. */
        for (;;) {
                r = load_once(&p, &seen, deadline, &c);
                if (r != -EAGAIN || config_now_usec(CLOCK_MONOTONIC) >= deadline)
                        break;
                strv_free(p.errors);
                strv_free(p.included);
                p = (ConfigParser) { .path = path, .strict_modes = strict_modes };
                config_sleep_usec(config_settle_usec / 5);
        }
        config_seen_done(&seen);
        if (r >= 0) {
                /* The model points to the names of the included files. */
                c->included = TAKE_PTR(p.included);
                *ret = c;
                if (ret_errors)
                        *ret_errors = calloc(1, sizeof(char *));
                strv_free(p.errors);
                return 0;
        }
        strv_free(p.included);
        if (p.n_errors == 0)
                config_error_at_line(&p, NULL, 0, "%s", strerror(-r));
        if (ret_errors)
                *ret_errors = p.errors;
        else
                strv_free(p.errors);
        return r;
}
