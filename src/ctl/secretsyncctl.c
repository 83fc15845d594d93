/* SPDX-License-Identifier: MIT */
/* secretsyncctl: asks the running secretsyncd over its control socket (Varlink). A plain
 * blocking client: one request, one reply. convert-eso (convert-eso.c) needs no daemon. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ctl/convert-eso.h"
#include "util/cleanup.h"
#include "util/duration.h"
#include "util/textbuf.h"

#define DEFAULT_SOCKET "/run/secretsyncd/io.secretsyncd"
#define REPLY_MAX (256U * 1024U * 1024U)
#define REPLY_DEPTH_MAX 16

enum { EXIT_FAILED = 1, EXIT_USAGE = 2, EXIT_NOT_RUNNING = 3 };

static const char *arg_socket = DEFAULT_SOCKET;
static bool arg_json = false, arg_all = false, arg_no_wait = false, arg_color = false, arg_partial = false;
static const char *arg_namespace = NULL;

static void help(void) {
        printf("Usage: secretsyncctl [OPTIONS] COMMAND [NAME...]\n"
               "Ask the running secretsyncd how its secrets are doing, and tell it what to do.\n\n"
               "Commands:\n"
               "  status [NAME...]       every secret in a table, or the named ones in detail\n"
               "  refresh NAME...|--all  sync those secrets now, wait and print the result\n"
               "  reload                 reload the configuration; print its errors if rejected\n"
               "  convert-eso FILE...|-  External Secrets Operator manifests to a configuration\n\n"
               "Options:\n"
               "      --json             print the daemon's answer as JSON\n"
               "      --socket PATH      the control socket (default %s)\n"
               "      --all              refresh: every secret\n"
               "      --no-wait          refresh: return once the syncs have started\n"
               "      --namespace NS     convert-eso: for objects without metadata.namespace\n"
               "      --partial          convert-eso: convert what can be, the rest as comments\n"
               "      --version          print the version\n"
               "  -h, --help             this help\n\n"
               "Exit status: 0 success, 1 a secret or the reload failed, 2 usage error,\n"
               "3 the daemon is not running. See secretsyncctl(1).\n",
               DEFAULT_SOCKET);
}

/* ------------------------------------------------------------ the call ---- */

static int call(const char *request, json_object **ret_params, char **ret_error) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -EBADF;
        _cleanup_textbuf_ TextBuf in = TEXTBUF_INIT(REPLY_MAX);

        if (strlen(arg_socket) >= sizeof(sa.sun_path)) {
                fprintf(stderr, "secretsyncctl: %s: the path is too long for a socket\n", arg_socket);
                return -EXIT_USAGE;
        }
        strcpy(sa.sun_path, arg_socket);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                int e = errno;
                if (e == ENOENT || e == ECONNREFUSED || e == ENOTDIR) {
                        fprintf(stderr, "secretsyncctl: secretsyncd is not running (nothing listens on %s)\n", arg_socket);
                        return -EXIT_NOT_RUNNING;
                }
                fprintf(stderr, "secretsyncctl: cannot connect to %s: %s%s\n", arg_socket, strerror(e),
                        e == EACCES ? " (only root may talk to secretsyncd)" : "");
                return -EXIT_FAILED;
        }
        size_t len = strlen(request) + 1; /* with its NUL */
        for (size_t done = 0; done < len;) {
                ssize_t n = send(fd, request + done, len - done, MSG_NOSIGNAL);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        /* The daemon may have answered (a refusal) and hung up: read that. */
                        if (errno == EPIPE || errno == ECONNRESET)
                                break;
                        fprintf(stderr, "secretsyncctl: cannot send to %s: %s\n", arg_socket, strerror(errno));
                        return -EXIT_FAILED;
                }
                done += (size_t) n;
        }
        for (;;) {
                char buf[65536];
                ssize_t n = recv(fd, buf, sizeof(buf), 0);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        fprintf(stderr, "secretsyncctl: %s closed the connection without an answer%s\n", arg_socket,
                                n < 0 ? "" : " (is this user allowed to talk to secretsyncd? only root is)");
                        return -EXIT_FAILED;
                }
                char *nul = memchr(buf, 0, (size_t) n);
                textbuf_append(&in, buf, nul ? (size_t) (nul - buf) : (size_t) n);
                if (textbuf_error(&in) < 0) {
                        fprintf(stderr, "secretsyncctl: the answer is over %u bytes\n", REPLY_MAX);
                        return -EXIT_FAILED;
                }
                if (nul)
                        break;
        }

        json_tokener *tok = json_tokener_new_ex(REPLY_DEPTH_MAX);
        if (!tok)
                return -EXIT_FAILED;
        json_object *reply = json_tokener_parse_ex(tok, in.data ?: "", (int) in.len);
        bool bad = json_tokener_get_error(tok) != json_tokener_success || !json_object_is_type(reply, json_type_object);
        json_tokener_free(tok);
        json_object *params = NULL, *error = NULL;
        if (bad) {
                json_object_put(reply);
                fprintf(stderr, "secretsyncctl: the daemon's answer is not valid Varlink\n");
                return -EXIT_FAILED;
        }
        if (!json_object_object_get_ex(reply, "parameters", &params) || !json_object_is_type(params, json_type_object))
                params = json_object_new_object();
        else
                json_object_get(params);
        if (json_object_object_get_ex(reply, "error", &error) && json_object_is_type(error, json_type_string))
                *ret_error = strdup(json_object_get_string(error));
        json_object_put(reply);
        *ret_params = params;
        return 0;
}

static json_object *get(json_object *o, const char *key) {
        json_object *v = NULL;
        return o && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static const char *get_str(json_object *o, const char *key) {
        json_object *v = get(o, key);
        return json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static int64_t get_int(json_object *o, const char *key) {
        json_object *v = get(o, key);
        return json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : 0;
}

/* The parameters object as JSON, one line. */
static void print_json(json_object *params) {
        puts(json_object_to_json_string_ext(params, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
}

/* Errors every command may get: prints them, returns the exit code. */
static int common_error(const char *error, json_object *params) {
        if (streq(error, "io.secretsyncd.NoSuchSecret"))
                fprintf(stderr, "secretsyncctl: no secret named '%s' in the running configuration\n",
                        strna(get_str(params, "name")));
        else if (streq(error, "org.varlink.service.PermissionDenied"))
                fprintf(stderr, "secretsyncctl: permission denied: only root may talk to secretsyncd\n");
        else
                fprintf(stderr, "secretsyncctl: the daemon answered with error %s %s\n", error,
                        json_object_to_json_string_ext(params, JSON_C_TO_STRING_PLAIN));
        return EXIT_FAILED;
}

/* -------------------------------------------------------------- status ---- */

static const char *color(const char *status) {
        if (!arg_color)
                return "";
        if (streq(status, "Synced"))
                return "\033[32m";
        if (streq(status, "Failed"))
                return "\033[31m";
        if (streq(status, "Retrying"))
                return "\033[33m";
        return "";
}

static void relative(int64_t t, time_t now, char *buf, size_t size) {
        char d[DURATION_FORMAT_MAX];
        if (t <= 0) {
                snprintf(buf, size, "-");
                return;
        }
        int64_t delta = t - (int64_t) now;
        uint64_t secs = (uint64_t) (delta < 0 ? -delta : delta);
        if (secs == 0) {
                snprintf(buf, size, "now");
                return;
        }
        duration_format(secs * 1000000ULL, d, sizeof(d));
        snprintf(buf, size, delta < 0 ? "%s ago" : "in %s", d);
}

static void absolute(int64_t t, time_t now, char *buf, size_t size) {
        char rel[DURATION_FORMAT_MAX + 8];
        struct tm tm;
        time_t tt = (time_t) t;
        if (t <= 0 || !localtime_r(&tt, &tm)) {
                snprintf(buf, size, "-");
                return;
        }
        size_t n = strftime(buf, size, "%Y-%m-%d %H:%M:%S %Z", &tm);
        relative(t, now, rel, sizeof(rel));
        snprintf(buf + n, size - n, " (%s)", rel);
}

typedef struct Row {
        char *cell[7];
        const char *status;
} Row;

static int print_table(json_object *secrets, time_t now) {
        static const char *const heads[7] = { "NAME", "STORE", "REFRESH", "STATUS", "LAST-SYNC", "NEXT", "TARGETS" };
        size_t n = json_object_array_length(secrets), width[7];
        Row *rows = calloc(n + 1, sizeof(Row));
        if (!rows)
                return EXIT_FAILED;
        for (int k = 0; k < 7; k++)
                width[k] = strlen(heads[k]);
        for (size_t i = 0; i < n; i++) {
                json_object *s = json_object_array_get_idx(secrets, i);
                char refresh[DURATION_FORMAT_MAX], last[64], next[64];
                int64_t ok = get_int(s, "targets_ready"), total = get_int(s, "targets_total");
                int64_t interval = get_int(s, "refresh_interval");
                if (interval > 0)
                        duration_format((uint64_t) interval * 1000000ULL, refresh, sizeof(refresh));
                else
                        snprintf(refresh, sizeof(refresh), "never");
                relative(get_int(s, "last_sync"), now, last, sizeof(last));
                if (json_object_get_boolean(get(s, "syncing")))
                        snprintf(next, sizeof(next), "now");
                else
                        relative(get_int(s, "next_refresh"), now, next, sizeof(next));
                rows[i].status = get_str(s, "status") ?: "?";
                rows[i].cell[0] = strdup(get_str(s, "name") ?: "?");
                rows[i].cell[1] = strdup(get_str(s, "store") ?: "?");
                rows[i].cell[2] = strdup(refresh);
                rows[i].cell[3] = strdup(rows[i].status);
                rows[i].cell[4] = strdup(last);
                rows[i].cell[5] = strdup(next);
                if (asprintf(&rows[i].cell[6], "%lld/%lld", (long long) ok, (long long) total) < 0)
                        rows[i].cell[6] = NULL;
                for (int k = 0; k < 7; k++) {
                        if (!rows[i].cell[k])
                                return EXIT_FAILED;
                        width[k] = MAX(width[k], strlen(rows[i].cell[k]));
                }
        }
        for (int k = 0; k < 6; k++)
                printf("%-*s  ", (int) width[k], heads[k]);
        printf("%s\n", heads[6]);
        for (size_t i = 0; i < n; i++) {
                for (int k = 0; k < 7; k++) {
                        if (k == 3 && arg_color)
                                printf("%s%-*s\033[0m  ", color(rows[i].status), (int) width[k], rows[i].cell[k]);
                        else if (k < 6)
                                printf("%-*s  ", (int) width[k], rows[i].cell[k]);
                        else
                                printf("%s\n", rows[i].cell[k]);
                        free(rows[i].cell[k]);
                }
        }
        free(rows);
        return 0;
}

static void print_detail(json_object *s, time_t now) {
        char b[128];
        json_object *a;
        const char *status = get_str(s, "status") ?: "?";

        printf("Name:          %s\n", strna(get_str(s, "name")));
        printf("Store:         %s\n", strna(get_str(s, "store")));
        printf("Status:        %s%s%s%s\n", color(status), status, arg_color ? "\033[0m" : "",
               json_object_get_boolean(get(s, "syncing")) ? " (syncing now)" : "");
        int64_t interval = get_int(s, "refresh_interval");
        if (interval > 0)
                duration_format((uint64_t) interval * 1000000ULL, b, sizeof(b));
        printf("Refresh:       %s\n", interval > 0 ? b : "never (synced at start and on refresh only)");
        absolute(get_int(s, "last_sync"), now, b, sizeof(b));
        printf("Last sync:     %s\n", b);
        absolute(get_int(s, "last_attempt"), now, b, sizeof(b));
        printf("Last attempt:  %s\n", b);
        absolute(get_int(s, "next_refresh"), now, b, sizeof(b));
        printf("Next refresh:  %s\n", b);
        printf("Last error:    %s\n", get_str(s, "last_error") ?: "-");
        printf("Data hash:     %s\n", get_str(s, "data_hash") ?: "-");
        printf("Targets:\n");
        a = get(s, "targets");
        for (size_t i = 0; json_object_is_type(a, json_type_array) && i < json_object_array_length(a); i++) {
                json_object *t = json_object_array_get_idx(a, i);
                absolute(get_int(t, "time"), now, b, sizeof(b));
                printf("  %-10s  %-9s  %s%s%s", strna(get_str(t, "kind")), strna(get_str(t, "state")),
                       strna(get_str(t, "target")), get_int(t, "time") > 0 ? "  " : "", get_int(t, "time") > 0 ? b : "");
                if (get_str(t, "message"))
                        printf("\n              %s", get_str(t, "message"));
                printf("\n");
        }
        printf("Remote keys:\n");
        a = get(s, "remote_keys");
        for (size_t i = 0; json_object_is_type(a, json_type_array) && i < json_object_array_length(a); i++) {
                json_object *k = json_object_array_get_idx(a, i);
                const char *v = get_str(k, "version");
                printf("  %s%s%s\n", strna(get_str(k, "key")), v ? "  version " : "", v ?: "");
        }
        printf("Events:\n");
        a = get(s, "events");
        size_t n = json_object_is_type(a, json_type_array) ? json_object_array_length(a) : 0;
        if (n == 0)
                printf("  (none since the daemon started)\n");
        for (size_t i = 0; i < n; i++) {
                json_object *e = json_object_array_get_idx(a, i);
                time_t t = (time_t) get_int(e, "time");
                struct tm tm;
                if (!localtime_r(&t, &tm) || strftime(b, sizeof(b), "%Y-%m-%d %H:%M:%S", &tm) == 0)
                        snprintf(b, sizeof(b), "-");
                printf("  %s  %s\n", b, strna(get_str(e, "message")));
        }
}

/* A JSON array of the names, for a request. */
static void names_json(TextBuf *b, char **names, int n) {
        textbuf_puts(b, "[");
        for (int i = 0; i < n; i++) {
                if (i)
                        textbuf_puts(b, ",");
                textbuf_json_string(b, names[i]);
        }
        textbuf_puts(b, "]");
}

static int do_status(char **names, int n) {
        _cleanup_textbuf_ TextBuf req = TEXTBUF_INIT(1024U * 1024U);
        _cleanup_free_ char *error = NULL;
        json_object *params = NULL;

        textbuf_puts(&req, "{\"method\":\"io.secretsyncd.Status\",\"parameters\":{\"names\":");
        names_json(&req, names, n);
        textbuf_puts(&req, "}}");
        if (textbuf_error(&req) < 0) {
                fprintf(stderr, "secretsyncctl: too many names\n");
                return EXIT_USAGE;
        }
        int r = call(req.data, &params, &error);
        if (r < 0)
                return -r;
        if (error) {
                r = common_error(error, params);
                json_object_put(params);
                return r;
        }
        json_object *secrets = get(params, "secrets");
        time_t now = time(NULL);
        if (arg_json)
                print_json(params);
        else if (!json_object_is_type(secrets, json_type_array))
                r = EXIT_FAILED;
        else if (n == 0)
                r = print_table(secrets, now);
        else
                for (size_t i = 0; i < json_object_array_length(secrets); i++) {
                        if (i)
                                printf("\n");
                        print_detail(json_object_array_get_idx(secrets, i), now);
                }
        json_object_put(params);
        return r;
}

static int do_refresh(char **names, int n) {
        _cleanup_textbuf_ TextBuf req = TEXTBUF_INIT(1024U * 1024U);
        _cleanup_free_ char *error = NULL;
        json_object *params = NULL;
        int ret = 0;

        if ((n == 0) == !arg_all) {
                fprintf(stderr, "secretsyncctl: refresh takes secret names or --all (not both)\n");
                return EXIT_USAGE;
        }
        textbuf_puts(&req, "{\"method\":\"io.secretsyncd.Refresh\",\"parameters\":{\"names\":");
        names_json(&req, names, n);
        textbuf_printf(&req, ",\"all\":%s,\"wait\":%s}}", arg_all ? "true" : "false", arg_no_wait ? "false" : "true");
        if (textbuf_error(&req) < 0) {
                fprintf(stderr, "secretsyncctl: too many names\n");
                return EXIT_USAGE;
        }
        int r = call(req.data, &params, &error);
        if (r < 0)
                return -r;
        if (error) {
                r = common_error(error, params);
                json_object_put(params);
                return r;
        }
        json_object *results = get(params, "results");
        for (size_t i = 0; json_object_is_type(results, json_type_array) && i < json_object_array_length(results); i++) {
                json_object *x = json_object_array_get_idx(results, i);
                const char *status = strna(get_str(x, "status")), *err = get_str(x, "error");
                if (streq(status, "Failed") || streq(status, "Removed"))
                        ret = EXIT_FAILED;
                if (arg_json)
                        continue;
                if (streq(status, "Started"))
                        printf("%s: sync started\n", strna(get_str(x, "name")));
                else
                        printf("%s: %s%s%s\n", strna(get_str(x, "name")), color(status), status,
                               arg_color && *color(status) ? "\033[0m" : "");
                if (err)
                        printf("  %s\n", err);
        }
        if (arg_json)
                print_json(params);
        json_object_put(params);
        return ret;
}

static int do_reload(void) {
        _cleanup_free_ char *error = NULL;
        json_object *params = NULL;
        int r = call("{\"method\":\"io.secretsyncd.Reload\"}", &params, &error);
        if (r < 0)
                return -r;
        if (arg_json)
                print_json(params);
        if (error && streq(error, "io.secretsyncd.ReloadRejected")) {
                json_object *errors = get(params, "errors");
                for (size_t i = 0; json_object_is_type(errors, json_type_array) && i < json_object_array_length(errors);
                     i++)
                        fprintf(stderr, "%s\n", json_object_get_string(json_object_array_get_idx(errors, i)));
                fprintf(stderr, "secretsyncctl: reload rejected; secretsyncd keeps running with its previous configuration\n");
                r = EXIT_FAILED;
        } else if (error)
                r = common_error(error, params);
        json_object_put(params);
        return r;
}

/* ------------------------------------------------------------ convert-eso ---- */

#define MANIFEST_MAX (64U * 1024U * 1024U)

static int read_manifest(const char *path, TextBuf *b) {
        _cleanup_close_ int fd = streq(path, "-") ? dup(STDIN_FILENO) : open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        for (;;) {
                char chunk[65536];
                ssize_t k = read(fd, chunk, sizeof(chunk));
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        break;
                textbuf_append(b, chunk, (size_t) k);
                if (textbuf_error(b) < 0)
                        return textbuf_error(b);
        }
        return 0;
}

static int do_convert_eso(char **files, int n) {
        if (n == 0) {
                fprintf(stderr, "secretsyncctl: convert-eso needs manifest files, or - for standard input\n");
                return EXIT_USAGE;
        }
        _cleanup_free_ TextBuf *bufs = calloc((size_t) n, sizeof(TextBuf));
        _cleanup_free_ EsoInput *in = calloc((size_t) n, sizeof(EsoInput));
        int ret = EXIT_USAGE;
        if (!bufs || !in)
                return EXIT_FAILED;
        for (int i = 0; i < n; i++) {
                bufs[i] = TEXTBUF_INIT(MANIFEST_MAX);
                int r = read_manifest(files[i], &bufs[i]);
                if (r < 0) {
                        fprintf(stderr, "secretsyncctl: %s: %s\n", streq(files[i], "-") ? "<stdin>" : files[i],
                                r == -E2BIG ? "larger than 64 MiB" : strerror(-r));
                        goto done;
                }
                in[i] = (EsoInput) { .name = streq(files[i], "-") ? "<stdin>" : files[i],
                                     .data = bufs[i].data ? bufs[i].data : "", .size = bufs[i].len };
        }
        ret = convert_eso(in, (size_t) n, &(EsoOptions) { .namespace = arg_namespace, .partial = arg_partial }, stdout,
                          stderr);
        if (fflush(stdout) != 0) {
                fprintf(stderr, "secretsyncctl: writing the configuration: %m\n");
                ret = EXIT_FAILED;
        }
done:
        for (int i = 0; i < n; i++)
                textbuf_done(&bufs[i]);
        return ret;
}

int main(int argc, char *argv[]) {
        enum { ARG_JSON = 0x100, ARG_SOCKET, ARG_ALL, ARG_NO_WAIT, ARG_VERSION, ARG_NAMESPACE, ARG_PARTIAL };
        static const struct option options[] = {
                { "json", no_argument, NULL, ARG_JSON },         { "socket", required_argument, NULL, ARG_SOCKET },
                { "all", no_argument, NULL, ARG_ALL },           { "no-wait", no_argument, NULL, ARG_NO_WAIT },
                { "version", no_argument, NULL, ARG_VERSION },   { "help", no_argument, NULL, 'h' },
                { "namespace", required_argument, NULL, ARG_NAMESPACE },
                { "partial", no_argument, NULL, ARG_PARTIAL },
                {},
        };
        int c;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case ARG_JSON:
                        arg_json = true;
                        break;
                case ARG_SOCKET:
                        arg_socket = optarg;
                        break;
                case ARG_ALL:
                        arg_all = true;
                        break;
                case ARG_NO_WAIT:
                        arg_no_wait = true;
                        break;
                case ARG_NAMESPACE:
                        arg_namespace = optarg;
                        break;
                case ARG_PARTIAL:
                        arg_partial = true;
                        break;
                case ARG_VERSION:
                        printf("secretsyncctl %s\n", PACKAGE_VERSION);
                        return 0;
                case 'h':
                        help();
                        return 0;
                default:
                        fprintf(stderr, "Try 'secretsyncctl --help'.\n");
                        return EXIT_USAGE;
                }
        }
        if (optind >= argc) {
                fprintf(stderr, "secretsyncctl: a command is needed: status, refresh, reload or convert-eso\nTry 'secretsyncctl --help'.\n");
                return EXIT_USAGE;
        }
        const char *env_no_color = getenv("NO_COLOR"), *term = getenv("TERM");
        arg_color = !arg_json && isatty(STDOUT_FILENO) && !(env_no_color && *env_no_color) && !(term && streq(term, "dumb"));
        const char *cmd = argv[optind];
        char **names = argv + optind + 1;
        int n = argc - optind - 1;

        if ((arg_namespace || arg_partial) && !streq(cmd, "convert-eso")) {
                fprintf(stderr, "secretsyncctl: --namespace and --partial are for convert-eso\n");
                return EXIT_USAGE;
        }
        if (streq(cmd, "convert-eso"))
                return do_convert_eso(names, n);
        if ((arg_all || arg_no_wait) && !streq(cmd, "refresh")) {
                fprintf(stderr, "secretsyncctl: --all and --no-wait are for refresh\n");
                return EXIT_USAGE;
        }
        if (streq(cmd, "status"))
                return do_status(names, n);
        if (streq(cmd, "refresh"))
                return do_refresh(names, n);
        if (streq(cmd, "reload")) {
                if (n > 0) {
                        fprintf(stderr, "secretsyncctl: reload takes no arguments\n");
                        return EXIT_USAGE;
                }
                return do_reload();
        }
        fprintf(stderr, "secretsyncctl: unknown command '%s'\nTry 'secretsyncctl --help'.\n", cmd);
        return EXIT_USAGE;
}
