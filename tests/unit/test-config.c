/* SPDX-License-Identifier: MIT */
/* config_load() and config_dump() against the fixtures in tests/unit/fixtures. Git keeps no
 * file modes, so each test copies the fixtures it needs into a fresh scratch directory with
 * mode 0600, replacing @DIR@ by that directory, which also holds the credential files the
 * fixtures name. Bad fixtures mark each error they must produce with "#! text" at the end of
 * the line the error must name. Runs as root (strict-mode tests chown files). */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#include "core/config.h"
#include "stores/store.h"
#include "util/cleanup.h"
#include "util/duration.h"
#include "util/http.h"
#include "util/secbuf.h"

#define CREDENTIAL "CREDFILE-CONTENT\n"
#define TEMPLATE_FILE_TEXT "password: {{ password }}\nlevel: {{ log-level | json }}\n"
#define ESC "q\"b\\s\nn\tt\x01" /* needs \" \\ \n \t and \x01 in libconfig syntax */

/* Each test gets its own directory in base; base goes at the end, also after failures
 * (an unchecked fixture runs in the parent, which failing tests do not abort). */
static char base[] = "/tmp/test-config.XXXXXX", dir[128];

static const char *const credential_files[] = {
        "ca.pem", "aws.key", "web-identity.jwt", "vault-token", "secret-id", "sa-token", "ci.jwt",
        "client.pem", "client.key", "k3s.yaml",
};

/* ---------------------------------------------------------------- helpers ---- */

static char *path_in(const char *name) {
        char *p;
        ck_assert_int_ge(asprintf(&p, "%s/%s", dir, name), 0);
        return p;
}

static char *read_text(const char *path) {
        _cleanup_secbuf_ SecBuf *b = NULL;
        ck_assert_msg(secbuf_read_file(path, CONFIG_FILE_MAX, false, &b) == 0, "cannot read %s", path);
        char *s = strdup(secbuf_str(b));
        ck_assert_ptr_nonnull(s);
        return s;
}

static void write_text(const char *path, const char *text, mode_t mode) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t) strlen(text));
        ck_assert_int_eq(fchmod(fd, mode), 0);
        ck_assert_int_eq(close(fd), 0);
}

static void setup(void) {
        snprintf(dir, sizeof(dir), "%s/XXXXXX", base);
        ck_assert_ptr_nonnull(mkdtemp(dir));
        for (size_t i = 0; i < ELEMENTSOF(credential_files); i++) {
                _cleanup_free_ char *p = path_in(credential_files[i]);
                write_text(p, CREDENTIAL, 0600);
        }
        _cleanup_free_ char *t = path_in("app.yaml.tmpl");
        write_text(t, TEMPLATE_FILE_TEXT, 0600);
}

static void setup_base(void) {
        ck_assert_ptr_nonnull(mkdtemp(base));
}

static void teardown_base(void) {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
        ck_assert_int_eq(system(cmd), 0);
}

/* Copies FIXTURES/name into the scratch directory with @DIR@ replaced, mode 0600. */
static char *install(const char *name) {
        _cleanup_free_ char *src = NULL, *text = NULL, *out = NULL;
        size_t size = 0;
        char *dst = path_in(name);

        ck_assert_int_ge(asprintf(&src, "%s/%s", FIXTURES, name), 0);
        text = read_text(src);
        FILE *f = open_memstream(&out, &size);
        ck_assert_ptr_nonnull(f);
        const char *p = text;
        for (const char *at; (at = strstr(p, "@DIR@")); p = at + 5)
                fprintf(f, "%.*s%s", (int) (at - p), p, dir);
        fputs(p, f);
        ck_assert_int_eq(fclose(f), 0);
        write_text(dst, out, 0600);
        return dst;
}

/* 1-based line of the first occurrence of needle in text. */
static unsigned line_of(const char *text, const char *needle) {
        const char *at = strstr(text, needle);
        unsigned line = 1;
        ck_assert_msg(at, "'%s' not found", needle);
        for (const char *c = text; c < at; c++)
                line += *c == '\n';
        return line;
}

static char *joined(char *const *l) {
        char *s = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&s, &size);
        ck_assert_ptr_nonnull(f);
        for (size_t i = 0; l && l[i]; i++)
                fprintf(f, "  %s\n", l[i]);
        ck_assert_int_eq(fclose(f), 0);
        return s;
}

static Config *load_ok(const char *path) {
        _cleanup_strv_free_ char **errors = NULL;
        Config *c = NULL;
        int r = config_load(path, true, &c, &errors);
        if (r < 0) {
                _cleanup_free_ char *e = joined(errors);
                ck_abort_msg("%s did not load (%d):\n%s", path, r, e);
        }
        ck_assert_ptr_nonnull(c);
        ck_assert_ptr_nonnull(errors);
        ck_assert_ptr_null(errors[0]);
        return c;
}

static char **load_fails(const char *path, bool strict) {
        char **errors = NULL;
        Config *c = NULL;
        ck_assert_int_lt(config_load(path, strict, &c, &errors), 0);
        ck_assert_ptr_null(c);
        ck_assert_uint_gt(strv_length(errors), 0);
        return errors;
}

static char *dump_text(const Config *c, bool redact) {
        char *s = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&s, &size);
        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(config_dump(c, f, redact), 0);
        ck_assert_int_eq(fclose(f), 0);
        return s;
}

/* Equal texts; otherwise the first line that differs. */
static void assert_same_text(const char *a, const char *b) {
        const char *la = a, *lb = b;
        unsigned line = 1;
        for (size_t i = 0; a[i] == b[i]; i++) {
                if (!a[i])
                        return;
                if (a[i] == '\n')
                        la = a + i + 1, lb = b + i + 1, line++;
        }
        ck_abort_msg("texts differ at line %u:\n< %.*s\n> %.*s", line, (int) strcspn(la, "\n"), la,
                     (int) strcspn(lb, "\n"), lb);
}

static size_t count(const char *haystack, const char *needle) {
        size_t n = 0;
        for (const char *p = haystack; (p = strstr(p, needle)); p += strlen(needle))
                n++;
        return n;
}

typedef struct Fetched {
        bool done;
        int error;
        SecBuf *value;
} Fetched;

static void on_fetched(Store *s, const StoreResult *r, void *userdata) {
        Fetched *f = userdata;
        (void) s;
        f->done = true;
        f->error = r->error;
        f->value = r->value ? secbuf_dup(r->value) : NULL;
}

/* What the fake store gives for key (and version), through its real asynchronous fetch. */
static SecBuf *fake_fetch(Store *s, const char *key, const char *version) {
        sd_event *e = NULL;
        Fetched f = { 0 };
        RemoteRef ref = { .key = (char *) key, .version = (char *) version };

        ck_assert_int_ge(sd_event_new(&e), 0);
        ck_assert_int_eq(store_start(s, &(StoreContext) { .event = e }), 0);
        ck_assert_int_eq(store_fetch(s, &ref, on_fetched, &f), 0);
        while (!f.done)
                ck_assert_int_ge(sd_event_run(e, USEC_PER_SEC), 0);
        store_stop(s);
        sd_event_unref(e);
        ck_assert_msg(f.error == 0, "fetch of %s failed: %d", key, f.error);
        return f.value;
}

static void assert_fetch(Store *s, const char *key, const char *version, const char *expected) {
        _cleanup_secbuf_ SecBuf *v = fake_fetch(s, key, version);
        ck_assert_ptr_nonnull(v);
        ck_assert_uint_eq(v->len, strlen(expected));
        ck_assert_str_eq(secbuf_str(v), expected);
}

static void assert_strv(char *const *l, const char *const *expected, size_t n) {
        ck_assert_uint_eq(strv_length(l), n);
        for (size_t i = 0; i < n; i++)
                ck_assert_str_eq(l[i], expected[i]);
}

static void assert_contains(const char *text, const char *needle) {
        ck_assert_msg(strstr(text, needle), "'%s' not in:\n%s", needle, text);
}

/* ---------------------------------------------------------- good fixtures ---- */

START_TEST(test_complete) {
        _cleanup_free_ char *path = install("complete.conf");
        _cleanup_config_ Config *c = load_ok(path);
        const SecretConfig *s;
        const FileTarget *t;

        ck_assert_str_eq(c->path, path);
        ck_assert(c->daemon.refresh_interval_usec == 2 * USEC_PER_HOUR);
        ck_assert_uint_eq(c->daemon.max_concurrent_requests, 8);
        ck_assert(c->daemon.min_backoff_usec == 2 * USEC_PER_SEC);
        ck_assert(c->daemon.max_backoff_usec == 10 * USEC_PER_MINUTE);
        ck_assert_int_eq(c->daemon.log_level, LOG_NOTICE);
        ck_assert_str_eq(c->daemon.runtime_dir, "/run/secretsyncd-test");
        ck_assert_str_eq(c->daemon.state_dir, "/var/lib/secretsyncd-test");

        static const struct {
                const char *name;
                const StoreVTable *vt;
        } stores[] = {
                { "aws-secretsmanager", &store_aws_vtable }, { "aws-web", &store_aws_vtable },
                { "aws-default", &store_aws_vtable },        { "vault-token", &store_vault_vtable },
                { "vault-approle", &store_vault_vtable },    { "vault-backend", &store_vault_vtable },
                { "vault-jwt", &store_vault_vtable },        { "vault-cert", &store_vault_vtable },
                { "demo", &store_fake_vtable },
        };
        ck_assert_uint_eq(c->n_stores, ELEMENTSOF(stores));
        for (size_t i = 0; i < ELEMENTSOF(stores); i++) {
                ck_assert_str_eq(c->stores[i]->name, stores[i].name);
                ck_assert_ptr_eq(c->stores[i]->vtable, stores[i].vt);
                ck_assert_ptr_eq(config_find_store(c, stores[i].name), c->stores[i]);
        }
        ck_assert_ptr_null(config_find_store(c, "nope"));

        /* Provider settings are private to the providers: check them in their canonical text. */
        {
                _cleanup_erase_ char *a = config_store_fingerprint(config_find_store(c, "aws-secretsmanager"));
                _cleanup_erase_ char *ad = config_store_fingerprint(config_find_store(c, "aws-default"));
                _cleanup_erase_ char *vt = config_store_fingerprint(config_find_store(c, "vault-token"));
                _cleanup_erase_ char *va = config_store_fingerprint(config_find_store(c, "vault-approle"));
                _cleanup_erase_ char *vk = config_store_fingerprint(config_find_store(c, "vault-backend"));
                _cleanup_erase_ char *vj = config_store_fingerprint(config_find_store(c, "vault-jwt"));
                _cleanup_erase_ char *vc = config_store_fingerprint(config_find_store(c, "vault-cert"));

                assert_contains(a, "\n    method = \"static\";\n    access_key_id = \"AKIAFIXTUREKEYID0001\";\n");
                assert_contains(a, "\n      role_arn = \"arn:aws:iam::111122223333:role/chimera\";\n"
                                   "      external_id = \"ext-42\";\n      session_name = \"fixture\";\n");
                assert_contains(ad, "\n    method = \"default\";\n");
                assert_contains(vt, "\n  mount = \"kv\";\n  kv_version = 1;\n  namespace = \"team-a\";\n");
                ck_assert_uint_eq(count(vt, "mount ="), 1); /* a token needs no auth mount */
                /* Defaults: KV mount "secret", version 2, auth mount named after the method. */
                assert_contains(va, "\n  server = \"http://127.0.0.1:8200\";\n  mount = \"secret\";\n"
                                    "  kv_version = 2;\n");
                assert_contains(va, "\n    method = \"approle\";\n    mount = \"approle\";\n"
                                    "    role_id = \"ROLEID-FIXTURE-0001\";\n");
                assert_contains(vk, "\n    method = \"kubernetes\";\n    mount = \"k8s-edge\";\n"
                                    "    role = \"chimera-role\";\n");
                assert_contains(vj, "\n    method = \"jwt\";\n    mount = \"jwt\";\n");
                assert_contains(vc, "\n    method = \"cert\";\n    mount = \"cert\";\n");
                assert_contains(vc, "\n    name = \"web\";\n");
        }
        {
                Store *demo = config_find_store(c, "demo");
                assert_fetch(demo, "chimera/postgres-password", NULL, "{\"password\":\"FAKEVALUE-ONE\"}");
                assert_fetch(demo, "chimera/app-config", "v1", "FAKEVALUE-OLD");
                assert_fetch(demo, "chimera/app-config", NULL, "{\"LOG\":\"debug\",\"MODE\":\"FAKEVALUE-TWO\"}");
        }

        ck_assert(c->kubernetes.present);
        {
                _cleanup_free_ char *k = path_in("k3s.yaml");
                ck_assert_str_eq(c->kubernetes.kubeconfig, k);
        }
        ck_assert(c->kubernetes.leader_election);
        ck_assert_str_eq(c->kubernetes.lease_namespace, "kube-system");
        ck_assert_str_eq(c->kubernetes.lease_name, "secretsyncd");
        ck_assert_str_eq(c->kubernetes.identity, "node-1");
        ck_assert(c->kubernetes.lease_duration_usec == 30 * USEC_PER_SEC);
        ck_assert(c->kubernetes.renew_deadline_usec == 20 * USEC_PER_SEC);
        ck_assert(c->kubernetes.retry_period_usec == 5 * USEC_PER_SEC);

        ck_assert_uint_eq(c->n_secrets, 3);
        s = config_find_secret(c, "postgres-credentials");
        ck_assert_ptr_eq(s, &c->secrets[0]);
        ck_assert_str_eq(s->store_name, "aws-secretsmanager");
        ck_assert_ptr_eq(s->store, config_find_store(c, "aws-secretsmanager"));
        ck_assert(s->refresh_interval_usec == USEC_PER_HOUR);
        ck_assert_uint_eq(s->n_data, 1);
        ck_assert_str_eq(s->data[0].secret_key, "password");
        ck_assert_str_eq(s->data[0].remote.key, "chimera/postgres-password");
        ck_assert_str_eq(s->data[0].remote.property, "password");
        ck_assert_str_eq(s->data[0].remote.version, "AWSCURRENT");
        ck_assert_uint_eq(s->n_data_from, 1);
        ck_assert_str_eq(s->data_from[0].extract.key, "chimera/app-config");
        ck_assert_ptr_null(s->data_from[0].extract.property);
        ck_assert_ptr_null(s->data_from[0].extract.version);
        ck_assert_ptr_nonnull(s->kubernetes);
        ck_assert_str_eq(s->kubernetes->namespace, "chimera");
        ck_assert_str_eq(s->kubernetes->name, "postgres-secret");
        ck_assert_int_eq(s->kubernetes->creation_policy, CREATION_ORPHAN);
        ck_assert_int_eq(s->kubernetes->deletion_policy, DELETION_DELETE);
        ck_assert_str_eq(s->kubernetes->type, "kubernetes.io/basic-auth");
        assert_strv(s->kubernetes->labels, (const char *const[]) { "app.kubernetes.io/part-of=chimera", "tier=db" }, 2);
        assert_strv(s->kubernetes->annotations, (const char *const[]) { "example.com/owner=team a" }, 1);
        assert_strv(s->kubernetes->rollout_restart,
                    (const char *const[]) { "deployment/agent", "statefulset/db", "daemonset/node-agent" }, 3);
        ck_assert_uint_eq(s->kubernetes->n_templates, 2);
        ck_assert_str_eq(s->kubernetes->templates[0].key, "DATABASE_URL");
        ck_assert_str_eq(s->kubernetes->templates[0].template_text, "postgres://chimera:{{ password }}@postgres/chimera");
        ck_assert_str_eq(s->kubernetes->templates[1].key, "pgpass");
        ck_assert_str_eq(s->kubernetes->templates[1].template_text, "*:*:*:chimera:{{ password }}\n");
        ck_assert_ptr_null(s->kubernetes->templates[1].template_file);
        ck_assert_int_eq(s->kubernetes->merge_policy, MERGE_POLICY_MERGE);
        ck_assert_uint_eq(s->n_files, 1);
        t = &s->files[0];
        ck_assert_str_eq(t->path, "/etc/chimera/postgres.env");
        ck_assert_int_eq(t->format, FILE_FORMAT_ENV);
        ck_assert_str_eq(t->owner, "root");
        ck_assert_uint_eq(t->uid, 0);
        ck_assert_str_eq(t->group, "daemon");
        ck_assert_uint_eq(t->gid, 1); /* Debian and RHEL both give group daemon gid 1 */
        ck_assert_uint_eq(t->mode, 0400);
        assert_strv(t->on_change, (const char *const[]) { "systemctl", "try-reload-or-restart", "postgresql.service" },
                    3);
        ck_assert(t->on_change_timeout_usec == USEC_PER_MINUTE);

        s = config_find_secret(c, "app");
        ck_assert_ptr_eq(s->store, config_find_store(c, "demo"));
        ck_assert(s->refresh_interval_usec == 90 * USEC_PER_SEC); /* an integer is seconds */
        ck_assert_uint_eq(s->n_data, 2);
        ck_assert_str_eq(s->data[1].secret_key, "log-level");
        ck_assert_ptr_null(s->data[1].remote.version);
        ck_assert_uint_eq(s->n_data_from, 0);
        /* Kubernetes target defaults. */
        ck_assert_str_eq(s->kubernetes->name, "app");
        ck_assert_str_eq(s->kubernetes->type, "Opaque");
        ck_assert_int_eq(s->kubernetes->creation_policy, CREATION_OWNER);
        ck_assert_int_eq(s->kubernetes->deletion_policy, DELETION_RETAIN);
        ck_assert_uint_eq(strv_length(s->kubernetes->labels), 0);
        ck_assert_uint_eq(s->kubernetes->n_templates, 0);
        ck_assert_int_eq(s->kubernetes->merge_policy, MERGE_POLICY_REPLACE);
        ck_assert_uint_eq(s->n_files, 5);
        t = s->files;
        ck_assert_int_eq(t[0].format, FILE_FORMAT_JSON);
        ck_assert_str_eq(t[0].owner, "1");
        ck_assert_uint_eq(t[0].uid, 1);
        ck_assert_uint_eq(t[0].gid, 1);
        ck_assert_uint_eq(t[0].mode, 0440);
        ck_assert_int_eq(t[1].format, FILE_FORMAT_RAW);
        ck_assert_str_eq(t[1].key, "password");
        /* File target defaults. */
        ck_assert_uint_eq(t[1].mode, 0600);
        ck_assert_str_eq(t[1].owner, "root");
        ck_assert_str_eq(t[1].group, "root");
        ck_assert_uint_eq(t[1].uid, 0);
        ck_assert_uint_eq(t[1].gid, 0);
        ck_assert_ptr_null(t[1].on_change);
        ck_assert(t[1].on_change_timeout_usec == 30 * USEC_PER_SEC);
        ck_assert_int_eq(t[2].format, FILE_FORMAT_DIR);
        ck_assert_uint_eq(t[2].mode, 0750);
        ck_assert_int_eq(t[3].format, FILE_FORMAT_TEMPLATE);
        ck_assert_str_eq(t[3].template_text, "[db]\npassword = {{ password }}\nlog = {{ log-level | json }}\n");
        ck_assert_ptr_null(t[3].template_file);
        ck_assert_int_eq(t[4].format, FILE_FORMAT_TEMPLATE);
        ck_assert_str_eq(t[4].template_text, TEMPLATE_FILE_TEXT);
        ck_assert_str_eq(t[4].template_file + strlen(dir), "/app.yaml.tmpl");

        s = config_find_secret(c, "inherits");
        ck_assert(s->refresh_interval_usec == 2 * USEC_PER_HOUR); /* daemon.refresh_interval */
        ck_assert_ptr_null(s->kubernetes);
        ck_assert_str_eq(s->data[0].remote.version, "3");
        ck_assert_str_eq(s->files[0].owner, "daemon");
        ck_assert_uint_eq(s->files[0].uid, 1);
        ck_assert_uint_eq(s->files[0].gid, 0);
        ck_assert_ptr_null(config_find_secret(c, "nope"));
}
END_TEST

START_TEST(test_defaults) {
        _cleanup_free_ char *path = install("minimal.conf");
        _cleanup_config_ Config *c = load_ok(path);
        char host[256] = { 0 };

        ck_assert(c->daemon.refresh_interval_usec == USEC_PER_HOUR);
        ck_assert_uint_eq(c->daemon.max_concurrent_requests, 16);
        ck_assert(c->daemon.min_backoff_usec == USEC_PER_SEC);
        ck_assert(c->daemon.max_backoff_usec == 5 * USEC_PER_MINUTE);
        ck_assert_int_eq(c->daemon.log_level, LOG_INFO);
        ck_assert_str_eq(c->daemon.runtime_dir, "/run/secretsyncd");
        ck_assert_str_eq(c->daemon.state_dir, "/var/lib/secretsyncd");

        const SecretConfig *s = config_find_secret(c, "minimal");
        ck_assert_ptr_nonnull(s);
        ck_assert(s->refresh_interval_usec == USEC_PER_HOUR);
        const FileTarget *t = &s->files[0];
        ck_assert_uint_eq(t->mode, 0600);
        ck_assert_str_eq(t->owner, "root");
        ck_assert_str_eq(t->group, "root");
        ck_assert_uint_eq(t->uid, 0);
        ck_assert_uint_eq(t->gid, 0);
        ck_assert_ptr_null(t->on_change);
        ck_assert(t->on_change_timeout_usec == 30 * USEC_PER_SEC);
        ck_assert_str_eq(s->kubernetes->name, "minimal");
        ck_assert_str_eq(s->kubernetes->type, "Opaque");
        ck_assert_int_eq(s->kubernetes->creation_policy, CREATION_OWNER);
        ck_assert_int_eq(s->kubernetes->deletion_policy, DELETION_RETAIN);

        /* A Kubernetes target implies the kubernetes block, with its defaults. */
        ck_assert(c->kubernetes.present);
        ck_assert_ptr_null(c->kubernetes.kubeconfig);
        ck_assert(c->kubernetes.leader_election);
        ck_assert_str_eq(c->kubernetes.lease_namespace, "kube-system");
        ck_assert_str_eq(c->kubernetes.lease_name, "secretsyncd");
        ck_assert_int_eq(gethostname(host, sizeof(host) - 1), 0);
        ck_assert_str_eq(c->kubernetes.identity, host);
        ck_assert(c->kubernetes.lease_duration_usec == 15 * USEC_PER_SEC);
        ck_assert(c->kubernetes.renew_deadline_usec == 10 * USEC_PER_SEC);
        ck_assert(c->kubernetes.retry_period_usec == 2 * USEC_PER_SEC);

        _cleanup_erase_ char *v = config_store_fingerprint(config_find_store(c, "vault"));
        assert_contains(v, "\n  mount = \"secret\";\n  kv_version = 2;\n  namespace = \"\";\n");
        assert_contains(v, "\n    method = \"kubernetes\";\n    mount = \"kubernetes\";\n    role = \"r\";\n"
                           "    token_file = \"/var/run/secrets/kubernetes.io/serviceaccount/token\";\n");
}
END_TEST

/* ----------------------------------------------------------- bad fixtures ---- */

static const char *const bad_fixtures[] = {
        "bad-unknown.conf", "bad-values.conf", "bad-names.conf", "bad-targets.conf", "bad-stores.conf",
        "bad-syntax.conf", "bad-urls.conf",
        /* These two fail until config.c is fixed: one mistake, two errors (see the fixtures). */
        "bad-raw-key.conf", "bad-format.conf",
};

typedef struct Marker {
        unsigned line;
        char *text;
        bool seen;
} Marker;

/* The "#! text" marker ending a line, one per line (lines that are all comment only explain). */
static size_t parse_markers(const char *text, Marker *markers, size_t max) {
        size_t n = 0;
        unsigned line = 1;

        for (const char *l = text; *l; line++) {
                const char *eol = l + strcspn(l, "\n"), *m = strstr(l, "#!");
                if (l[strspn(l, " ")] != '#' && m && m < eol) {
                        const char *b = m + 2 + strspn(m + 2, " "), *e = eol;
                        while (e > b && e[-1] == ' ')
                                e--;
                        ck_assert_uint_lt(n, max);
                        markers[n++] = (Marker) { .line = line, .text = strndup(b, (size_t) (e - b)) };
                }
                l = *eol ? eol + 1 : eol;
        }
        return n;
}

/* Every error is "PATH:LINE: message" and matches one "#! text" marker on LINE; every marker
 * is matched: nothing missing, nothing extra. */
START_TEST(test_bad_fixture) {
        const char *name = bad_fixtures[_i];
        _cleanup_free_ char *path = install(name), *text = read_text(path), *problems = NULL;
        _cleanup_strv_free_ char **errors = load_fails(path, true);
        Marker markers[64];
        size_t n = parse_markers(text, markers, ELEMENTSOF(markers)), size = 0;

        ck_assert_uint_gt(n, 0);

        FILE *f = open_memstream(&problems, &size);
        ck_assert_ptr_nonnull(f);
        for (char **e = errors; *e; e++) {
                char *msg = NULL;
                unsigned long l = 0;
                bool matched = false;
                if (strncmp(*e, path, strlen(path)) == 0 && (*e)[strlen(path)] == ':')
                        l = strtoul(*e + strlen(path) + 1, &msg, 10);
                if (!msg || strncmp(msg, ": ", 2) != 0) {
                        fprintf(f, "  malformed: %s\n", *e);
                        continue;
                }
                for (size_t i = 0; i < n && !matched; i++)
                        if (!markers[i].seen && markers[i].line == l && strstr(msg + 2, markers[i].text))
                                matched = markers[i].seen = true;
                if (!matched)
                        fprintf(f, "  unexpected: %s\n", *e + strlen(dir) + 1);
        }
        for (size_t i = 0; i < n; i++) {
                if (!markers[i].seen)
                        fprintf(f, "  missing: %s:%u: ...%s...\n", name, markers[i].line, markers[i].text);
                free(markers[i].text);
        }
        ck_assert_int_eq(fclose(f), 0);
        ck_assert_msg(!*problems, "%s: %zu errors, %zu expected\n%s", name, strv_length(errors), n, problems);
}
END_TEST

/* ------------------------------------------------------------ strict modes ---- */

START_TEST(test_strict_config_file) {
        _cleanup_free_ char *path = install("minimal.conf");
        _cleanup_strv_free_ char **e = NULL, **ignored = NULL;
        _cleanup_free_ char *prefix = NULL;
        Config *c = NULL;

        ck_assert_int_eq(chmod(path, 0666), 0);
        e = load_fails(path, true);
        ck_assert_uint_eq(strv_length(e), 1);
        ck_assert_int_ge(asprintf(&prefix, "%s:0: ", path), 0);
        ck_assert(strncmp(e[0], prefix, strlen(prefix)) == 0);
        assert_contains(e[0], "chmod go-w");
        /* Without strict modes the same file loads. */
        ck_assert_int_eq(config_load(path, false, &c, &ignored), 0);
        c = config_free(c);
        /* Readable by others is fine, writable is not. */
        ck_assert_int_eq(chmod(path, 0644), 0);
        config_free(load_ok(path));
        ck_assert_int_eq(chmod(path, 0620), 0);
        strv_free(load_fails(path, true));
}
END_TEST

START_TEST(test_strict_config_file_owner) {
        _cleanup_free_ char *path = install("minimal.conf");
        _cleanup_strv_free_ char **e = NULL, **ignored = NULL;
        Config *c = NULL;

        ck_assert_int_eq(chown(path, 1234, 0), 0);
        e = load_fails(path, true);
        ck_assert_uint_eq(strv_length(e), 1);
        assert_contains(e[0], "chown root");
        assert_contains(e[0], path);
        /* Without strict modes the same file loads. */
        ck_assert_int_eq(config_load(path, false, &c, &ignored), 0);
        config_free(c);
}
END_TEST

START_TEST(test_strict_credential_file) {
        _cleanup_free_ char *path = install("complete.conf"), *text = read_text(path);
        _cleanup_free_ char *token = path_in("vault-token"), *tmpl = path_in("app.yaml.tmpl"), *prefix = NULL;
        _cleanup_strv_free_ char **e1 = NULL, **e2 = NULL, **e3 = NULL;

        ck_assert_int_ge(asprintf(&prefix, "%s:%u: ", path, line_of(text, "/vault-token\"")), 0);
        ck_assert_int_eq(chmod(token, 0620), 0);
        e1 = load_fails(path, true);
        ck_assert_uint_eq(strv_length(e1), 1);
        ck_assert_msg(strncmp(e1[0], prefix, strlen(prefix)) == 0, "'%s' does not start with '%s'", e1[0], prefix);
        assert_contains(e1[0], token);
        assert_contains(e1[0], "chmod go-w");

        ck_assert_int_eq(chmod(token, 0600), 0);
        ck_assert_int_eq(chown(token, 1234, 0), 0);
        e2 = load_fails(path, true);
        ck_assert_uint_eq(strv_length(e2), 1);
        ck_assert(strncmp(e2[0], prefix, strlen(prefix)) == 0);
        assert_contains(e2[0], token);
        assert_contains(e2[0], "chown root");

        /* A credential that does not exist (yet) is a run-time failure, not a configuration error. */
        ck_assert_int_eq(unlink(token), 0);
        config_free(load_ok(path));

        /* A template file is trusted like a credential: it decides what is written where. */
        ck_assert_int_eq(chmod(tmpl, 0606), 0);
        e3 = load_fails(path, true);
        ck_assert_uint_eq(strv_length(e3), 1);
        assert_contains(e3[0], tmpl);
        assert_contains(e3[0], "chmod go-w");
}
END_TEST

/* ------------------------------------------------------------------- dump ---- */

START_TEST(test_dump_redacted) {
        static const char *const secret_values[] = { "FAKEVALUE-ONE", "FAKEVALUE-TWO", "FAKEVALUE-OLD",
                                                     "AKIAFIXTUREKEYID0001", "ROLEID-FIXTURE-0001" };
        _cleanup_free_ char *path = install("complete.conf");
        _cleanup_config_ Config *c = load_ok(path);
        _cleanup_free_ char *redacted = dump_text(c, true), *plain = dump_text(c, false);

        for (size_t i = 0; i < ELEMENTSOF(secret_values); i++) {
                ck_assert_msg(!strstr(redacted, secret_values[i]), "%s in the redacted dump", secret_values[i]);
                assert_contains(plain, secret_values[i]);
        }
        ck_assert_uint_eq(count(redacted, "\"<redacted>\""), ELEMENTSOF(secret_values));
        ck_assert_uint_eq(count(plain, "<redacted>"), 0);
        /* Credential files are named, never read into the dump. */
        ck_assert(!strstr(redacted, "CREDFILE") && !strstr(plain, "CREDFILE"));
        /* Everything that is not secret is still there. */
        assert_contains(redacted, "secret_access_key_file = \"");
        assert_contains(redacted, "{ key = \"chimera/app-config\"; version = \"v1\"; value = \"<redacted>\"; }");
}
END_TEST

/* dump -> write over the loaded file -> load -> dump gives the same bytes. */
static void assert_fixed_point(const char *fixture, bool redact) {
        _cleanup_free_ char *path = install(fixture);
        _cleanup_config_ Config *c = load_ok(path);
        _cleanup_free_ char *first = dump_text(c, redact), *second = NULL;
        _cleanup_config_ Config *c2 = NULL;

        write_text(path, first, 0600);
        c2 = load_ok(path);
        second = dump_text(c2, redact);
        assert_same_text(first, second);
}

START_TEST(test_dump_fixed_point) {
        assert_fixed_point("complete.conf", true);
        assert_fixed_point("complete.conf", false);
        assert_fixed_point("minimal.conf", true);
        assert_fixed_point("minimal.conf", false);
        assert_fixed_point("escapes.conf", true);
        assert_fixed_point("escapes.conf", false);
        assert_fixed_point("service-account.conf", false);
}
END_TEST

/* service_account: dumped with its default audiences (AWS: STS's; Vault: none), and a change
 * of it is a change of the store on reload. */
START_TEST(test_service_account) {
        _cleanup_free_ char *path = install("service-account.conf");
        _cleanup_config_ Config *c = load_ok(path);
        _cleanup_free_ char *text = dump_text(c, true);

        ck_assert_ptr_nonnull(strstr(text, "      role_arn = \"arn:aws:iam::111122223333:role/chimera\";\n"
                                           "      service_account = {\n"
                                           "        namespace = \"chimera\";\n"
                                           "        name = \"external-secrets-sa\";\n"
                                           "        audiences = [ \"sts.amazonaws.com\" ];\n"
                                           "      };\n"));
        ck_assert_ptr_nonnull(strstr(text, "      role = \"chimera-role\";\n"
                                           "      service_account = {\n"
                                           "        namespace = \"chimera\";\n"
                                           "        name = \"external-secrets-sa\";\n"
                                           "        audiences = [ ];\n"));
        ck_assert_ptr_nonnull(strstr(text, "        audiences = [ \"vault\", \"ci\" ];\n"));
        ck_assert_ptr_null(strstr(text, "token_file"));

        /* Same file: same fingerprints; another audience or account: another store. */
        static const char *const edits[][2] = {
                { "audiences = [ \"vault\", \"ci\" ]", "audiences = [ \"vault\" ]" },
                { "namespace = \"ci\"", "namespace = \"cd\"" },
                { "name = \"deployer\"", "name = \"deployer2\"" },
        };
        _cleanup_free_ char *orig = read_text(path);
        for (size_t i = 0; i < ELEMENTSOF(edits) + 1; i++) {
                _cleanup_free_ char *edited = strdup(orig);
                ck_assert_ptr_nonnull(edited);
                if (i < ELEMENTSOF(edits)) {
                        char *at = strstr(edited, edits[i][0]);
                        ck_assert_ptr_nonnull(at);
                        _cleanup_free_ char *e = NULL;
                        ck_assert_int_ge(asprintf(&e, "%.*s%s%s", (int) (at - edited), edited, edits[i][1],
                                                  at + strlen(edits[i][0])), 0);
                        free(edited);
                        edited = TAKE_PTR(e);
                }
                write_text(path, edited, 0600);
                _cleanup_config_ Config *c2 = load_ok(path);
                char *a = config_store_fingerprint(config_find_store(c, "vault-jwt"));
                char *b = config_store_fingerprint(config_find_store(c2, "vault-jwt"));
                ck_assert_msg(streq(a, b) == (i == ELEMENTSOF(edits)), "edit %zu", i);
                erase_and_free(a);
                erase_and_free(b);
        }
}
END_TEST

START_TEST(test_dump_unredacted_reload) {
        _cleanup_free_ char *path = install("complete.conf");
        _cleanup_config_ Config *c = load_ok(path);
        _cleanup_free_ char *text = dump_text(c, false);
        _cleanup_config_ Config *c2 = NULL;

        write_text(path, text, 0600);
        c2 = load_ok(path);
        ck_assert(memcmp(&c->daemon, &c2->daemon, offsetof(DaemonConfig, runtime_dir)) == 0);
        ck_assert_str_eq(c->daemon.runtime_dir, c2->daemon.runtime_dir);
        ck_assert_str_eq(c->daemon.state_dir, c2->daemon.state_dir);
        ck_assert_str_eq(c->kubernetes.kubeconfig, c2->kubernetes.kubeconfig);
        ck_assert_str_eq(c->kubernetes.identity, c2->kubernetes.identity);
        ck_assert(c->kubernetes.lease_duration_usec == c2->kubernetes.lease_duration_usec);
        ck_assert_uint_eq(c2->n_stores, c->n_stores);
        for (size_t i = 0; i < c->n_stores; i++) {
                _cleanup_erase_ char *a = config_store_fingerprint(c->stores[i]);
                _cleanup_erase_ char *b = config_store_fingerprint(c2->stores[i]);
                assert_same_text(a, b);
        }
        ck_assert_uint_eq(c2->n_secrets, c->n_secrets);
        for (size_t i = 0; i < c->n_secrets; i++) {
                _cleanup_erase_ char *a = config_secret_fingerprint(&c->secrets[i]);
                _cleanup_erase_ char *b = config_secret_fingerprint(&c2->secrets[i]);
                assert_same_text(a, b);
                ck_assert_uint_eq(c2->secrets[i].n_files, c->secrets[i].n_files);
                for (size_t j = 0; j < c->secrets[i].n_files; j++) {
                        ck_assert_uint_eq(c2->secrets[i].files[j].uid, c->secrets[i].files[j].uid);
                        ck_assert_uint_eq(c2->secrets[i].files[j].gid, c->secrets[i].files[j].gid);
                        ck_assert_uint_eq(c2->secrets[i].files[j].mode, c->secrets[i].files[j].mode);
                }
        }
        /* The values themselves, through the reloaded fake store. */
        Store *demo = config_find_store(c2, "demo");
        assert_fetch(demo, "chimera/postgres-password", NULL, "{\"password\":\"FAKEVALUE-ONE\"}");
        assert_fetch(demo, "chimera/app-config", NULL, "{\"LOG\":\"debug\",\"MODE\":\"FAKEVALUE-TWO\"}");
        assert_fetch(demo, "chimera/app-config", "v1", "FAKEVALUE-OLD");
}
END_TEST

START_TEST(test_escapes_survive) {
        _cleanup_free_ char *path = install("escapes.conf");

        /* Round 0 checks what libconfig made of the fixture, round 1 what came back from the dump. */
        for (int round = 0; round < 2; round++) {
                _cleanup_config_ Config *c = load_ok(path);
                const SecretConfig *s = config_find_secret(c, "escapes");
                const FileTarget *t = &s->files[0];

                ck_assert_str_eq(s->data[0].remote.key, "k\"ey\\1");
                assert_strv(s->kubernetes->annotations, (const char *const[]) { "example.com/note=" ESC }, 1);
                ck_assert_str_eq(t->template_text, "a\"b\\c\nd\te\x01" "f {{ v }}\n");
                assert_strv(t->on_change, (const char *const[]) { "/bin/echo", ESC, "" }, 3);
                assert_fetch(config_find_store(c, "demo"), "k\"ey\\1", NULL, ESC "\r\f end \xc3\xa9");

                _cleanup_free_ char *text = dump_text(c, false);
                write_text(path, text, 0600);
        }
}
END_TEST


#define STORES_DEMO "stores = { demo = { type = \"fake\"; data = ( { key = \"k\"; value = \"v\"; } ); }; };"
#define SECRET_A                                                                                        \
        "{ name = \"a\"; store = \"demo\"; data = ( { secret_key = \"p\"; remote_ref = { key = \"k\"; }; } ); " \
        "files = ( { path = \"/x/a\"; format = \"env\"; } ); }"

/* ------------------------------------------------------------ store URLs ---- */

START_TEST(test_url_allowed) {
        static const struct {
                const char *url;
                bool ok;
        } cases[] = {
                { "https://vault.example.com", true },
                { "https://vault.example.com:8200/prefix", true },
                { "HTTPS://vault.example.com", true },
                { "http://127.0.0.1:8200", true },
                { "http://127.1.2.3", true },
                { "http://localhost", true },
                { "http://localhost:8200/", true },
                { "http://LOCALHOST:8200", true },
                { "HTTP://localhost:8200", true },
                { "http://[::1]:8200", true },
                { "http://[0:0:0:0:0:0:0:1]/", true },
                { "http://127.example.com:8200", false },
                { "http://127.0.0.1.nip.io", false },
                { "http://localhost.evil", false },
                { "http://localhost.", false },
                { "http://localhostx", false },
                { "http://localhost:x@vault.example.com", false },
                { "http://localhost@vault.example.com", false },
                { "http://vault.example.com@localhost", false }, /* user info: refused, even to localhost */
                { "https://user:pw@vault.example.com", false },
                { "http://127.0.0.1#@vault.example.com", false },
                { "http://127.0.0.1?@vault.example.com", false },
                { "http://[::2]:8200", false },
                { "http://[::ffff:8.8.8.8]", false },
                { "http://128.0.0.1", false },
                { "http://10.0.0.1", false },
                { "http://vault.example.com", false },
                { "ftp://localhost", false },
                { "file:///etc/passwd", false },
                { "http://", false },
                { "https://", false },
                { "https:///path", true }, /* libcurl reads the host "path": https, so allowed */
                { "localhost:8200", false },
                { "//localhost", false },
                { "", false },
                { "http:/localhost", true }, /* libcurl reads one slash as two: still localhost */
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                ck_assert_msg(http_url_allowed(cases[i].url) == cases[i].ok, "%s: expected %s", cases[i].url,
                              cases[i].ok ? "allowed" : "refused");
        /* 127.1 and 0x7f.1 are loopback addresses that libcurl writes out as 127.0.0.1; what
         * counts is the host libcurl will connect to. */
        ck_assert(http_url_allowed("http://127.1:8200"));
        ck_assert(http_url_allowed("http://0x7f.1/"));
        ck_assert(!http_url_allowed("http://0x80.1/"));
}
END_TEST

/* ------------------------------------------------- the secrets list, two ways ---- */

static const char *const list_cases[] = {
        /* a trailing comma: libconfig refuses it */
        "secrets = ( " SECRET_A ", );\n",
        /* an empty element */
        "secrets = ( , " SECRET_A " );\n",
        /* several broken elements: one syntax error, not a duplicate '?' */
        "secrets = ( " SECRET_A ",\n { x = }, { y = }, );\n",
        /* two elements without a name: each reported, not as a duplicate */
        "secrets = ( { store = \"demo\"; },\n { store = \"demo\"; } );\n",
        /* a syntax error after the list */
        "secrets = ( { x = }, " SECRET_A " );\ndaemon = { log_level = ; };\n",
        /* valid */
        "secrets = ( " SECRET_A " );\n",
};

/* The secrets list is parsed element by element, unless the file has an @include; both must
 * give the same errors, with the same lines. */
START_TEST(test_secrets_list_both_ways) {
        const char *body = list_cases[_i];
        _cleanup_free_ char *a = path_in("a.conf"), *b = path_in("b.conf"), *empty = path_in("empty.conf");
        _cleanup_free_ char *ta = NULL, *tb = NULL;
        _cleanup_strv_free_ char **ea = NULL, **eb = NULL;
        Config *ca = NULL, *cb = NULL;

        ck_assert_int_ge(asprintf(&ta, "%s\n%s", STORES_DEMO, body), 0);
        ck_assert_int_ge(asprintf(&tb, "@include \"empty.conf\" %s\n%s", STORES_DEMO, body), 0);
        write_text(empty, "", 0600);
        write_text(a, ta, 0600);
        write_text(b, tb, 0600);
        int ra = config_load(a, true, &ca, &ea), rb = config_load(b, true, &cb, &eb);
        ck_assert_int_eq(ra, rb);
        ck_assert_uint_eq(strv_length(ea), strv_length(eb));
        for (size_t i = 0; ea[i]; i++)
                ck_assert_str_eq(ea[i] + strlen(a), eb[i] + strlen(b));
        for (size_t i = 0; ea[i]; i++) {
                ck_assert_msg(!strstr(ea[i], "used twice"), "%s", ea[i]);
                ck_assert_msg(strncmp(ea[i], a, strlen(a)) == 0, "%s", ea[i]);
        }
        if (_i < 3 || _i == 4) {
                ck_assert_uint_eq(strv_length(ea), 1);
                ck_assert_ptr_nonnull(strstr(ea[0], "syntax error"));
        }
        if (_i == 3)
                ck_assert_uint_eq(strv_length(ea), 2); /* 'name' missing, twice */
        ck_assert_int_eq(ra, _i == ELEMENTSOF(list_cases) - 1 ? 0 : -EINVAL);
        config_free(ca);
        config_free(cb);
}
END_TEST

/* ------------------------------------------------------------- @include ---- */

/* Errors in an included file name it as it can be opened, with its own line numbers. */
START_TEST(test_include_errors) {
        _cleanup_free_ char *sub = path_in("sub"), *inc = path_in("sub/inc.conf"), *main = path_in("main.conf");
        _cleanup_free_ char *bad = path_in("sub/bad.conf"), *main2 = path_in("main2.conf"), *text = NULL;
        _cleanup_free_ char *at = NULL;
        ck_assert_int_eq(mkdir(sub, 0700), 0);
        ck_assert_int_ge(asprintf(&text,
                                  "%s\nsecrets = (\n"
                                  "@include \"sub/inc.conf\"\n"
                                  ", { name = \"b\"; store = \"demo\"; data = ( { secret_key = \"p\"; remote_ref = { key = \"k\"; }; } );\n"
                                  "    files = ( { path = \"/x/b\"; format = \"env\"; } ); }\n"
                                  ");\n",
                                  STORES_DEMO),
                         0);
        write_text(main, text, 0600);
        write_text(inc,
                   "# line 1\n"
                   SECRET_A ",\n"                                /* line 2 */
                   "\n" SECRET_A ",\n"                           /* line 4: twice */
                   "{ name = \"b\"; store = \"nope\";\n"         /* line 5 */
                   "  data = ( { secret_key = \"p\"; remote_ref = { key = \"k\"; }; } );\n"
                   "  files = ( { path = \"/x/c\"; format = \"env\"; } ); }\n",
                   0600);
        _cleanup_strv_free_ char **e = load_fails(main, true);
        _cleanup_free_ char *all = joined(e);
        char want[PATH_MAX + 200];

        snprintf(want, sizeof(want), "%s:4: secret name 'a' is used twice (lines 2 and 4)", inc);
        assert_contains(all, want);
        snprintf(want, sizeof(want), "%s:4: secret 'a': file /x/a is also written by secret 'a' (line 2)", inc);
        assert_contains(all, want);
        snprintf(want, sizeof(want), "%s:5: secret 'b': store 'nope' is not defined", inc);
        assert_contains(all, want);
        /* across files: the other place is named with its file */
        ck_assert_int_ge(asprintf(&at, "%s:4: secret name 'b' is used twice (also at %s:5)", main, inc), 0);
        assert_contains(all, at);
        ck_assert_uint_eq(strv_length(e), 4);

        /* a syntax error in an included file */
        write_text(bad, "daemon = {\n\n  log_level = ;\n};\n", 0600);
        free(text);
        ck_assert_int_ge(asprintf(&text, "%s\n@include \"sub/bad.conf\"\n", STORES_DEMO), 0);
        write_text(main2, text, 0600);
        _cleanup_strv_free_ char **e2 = load_fails(main2, true);
        snprintf(want, sizeof(want), "%s:3: syntax error", bad);
        ck_assert_uint_eq(strv_length(e2), 1);
        ck_assert_str_eq(e2[0], want);
}
END_TEST

/* ----------------------------------------------------- a file being written ---- */

/* A file some process holds open for writing has not settled: after the bounded wait, the
 * load fails and says why. Once closed (and quiet), it loads. */
START_TEST(test_file_being_written) {
        _cleanup_free_ char *path = install("minimal.conf");
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        _cleanup_strv_free_ char **e = load_fails(path, true);
        ck_assert_uint_eq(strv_length(e), 1);
        ck_assert_ptr_nonnull(strstr(e[0], "still being changed"));
        ck_assert_int_eq(strncmp(e[0], path, strlen(path)), 0);
        ck_assert_int_eq(close(fd), 0);
        config_free(load_ok(path));
}
END_TEST

static Suite *config_suite(void) {
        Suite *s = suite_create("config");
        TCase *tc = tcase_create("core");

        tcase_set_timeout(tc, 30);
        tcase_add_unchecked_fixture(tc, setup_base, teardown_base);
        tcase_add_checked_fixture(tc, setup, NULL);
        tcase_add_test(tc, test_complete);
        tcase_add_test(tc, test_defaults);
        tcase_add_loop_test(tc, test_bad_fixture, 0, ELEMENTSOF(bad_fixtures));
        tcase_add_test(tc, test_strict_config_file);
        tcase_add_test(tc, test_strict_config_file_owner);
        tcase_add_test(tc, test_strict_credential_file);
        tcase_add_test(tc, test_dump_redacted);
        tcase_add_test(tc, test_dump_fixed_point);
        tcase_add_test(tc, test_service_account);
        tcase_add_test(tc, test_dump_unredacted_reload);
        tcase_add_test(tc, test_escapes_survive);
        tcase_add_test(tc, test_url_allowed);
        tcase_add_loop_test(tc, test_secrets_list_both_ways, 0, ELEMENTSOF(list_cases));
        tcase_add_test(tc, test_include_errors);
        tcase_add_test(tc, test_file_being_written);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr;
        int failed;

        if (geteuid() != 0) {
                fprintf(stderr, "test-config needs root (strict-mode checks chown files)\n");
                return 77;
        }
        sr = srunner_create(config_suite());
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
