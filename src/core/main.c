/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <getopt.h>
#include <openssl/crypto.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <systemd/sd-event.h>

#include "core/config.h"
#include "core/log.h"
#include "core/manager.h"
#include "util/escape.h"
#include "util/secbuf.h"

#define EXIT_USAGE 2
/* For SecBuf: tokens, keys and secret values being written. Locked in memory (the default
 * RLIMIT_MEMLOCK, 8 MiB, allows it); larger or further secrets go to the ordinary heap. */
#define SECURE_HEAP_SIZE (1U << 20)

/* OpenSSL's allocations (TLS records, keys) are wiped when freed. */
static void *crypto_malloc(size_t n, const char *file, int line) {
        return malloc(n);
}

static void *crypto_realloc(void *p, size_t n, const char *file, int line) {
        return secbuf_wiping_realloc(p, n);
}

static void crypto_free(void *p, const char *file, int line) {
        secbuf_wiping_free(p);
}

/* After each turn of the event loop, before it sleeps. */
static int on_post(sd_event_source *s, void *userdata) {
        secbuf_wipe_registers();
        return 0;
}

static void help(void) {
        printf("Usage: secretsyncd [OPTIONS]\n"
               "Sync secrets from AWS Secrets Manager, HashiCorp Vault or a fake store into\n"
               "Kubernetes Secrets and root-owned files on this node.\n\n"
               "  -c, --config FILE      configuration file (default %s)\n"
               "      --once             sync every secret once, write all targets, exit\n"
               "                         (1 if any secret failed)\n"
               "      --check-config     validate the configuration; print errors as FILE:LINE: message\n"
               "      --dump-config      print the effective configuration, secrets redacted\n"
               "      --log-level LEVEL  debug, info, notice, warning or err\n"
               "      --version          print the version\n"
               "  -h, --help             this help\n\n"
               "Signals: SIGHUP reloads the configuration, SIGUSR1 refreshes every secret now,\n"
               "SIGTERM/SIGINT finish writes in flight and exit.\n"
               "See secretsyncd(8) and secretsyncd.conf(5).\n",
               CONFIG_DEFAULT_PATH);
}

static void print_errors(char **errors) {
        char b[2048];
        for (size_t i = 0; errors && errors[i]; i++)
                fprintf(stderr, "%s\n", escape_text(errors[i], b, sizeof(b)));
}

int main(int argc, char *argv[]) {
        enum { ARG_ONCE = 0x100, ARG_CHECK, ARG_DUMP, ARG_LOG_LEVEL, ARG_VERSION };
        static const struct option options[] = {
                { "config", required_argument, NULL, 'c' },
                { "once", no_argument, NULL, ARG_ONCE },
                { "check-config", no_argument, NULL, ARG_CHECK },
                { "dump-config", no_argument, NULL, ARG_DUMP },
                { "log-level", required_argument, NULL, ARG_LOG_LEVEL },
                { "version", no_argument, NULL, ARG_VERSION },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        const char *config_path = CONFIG_DEFAULT_PATH;
        bool once = false, check = false, dump = false;
        int log_level = -1, c;

        /* Before OpenSSL's first allocation, which fixes its allocator. */
        CRYPTO_set_mem_functions(crypto_malloc, crypto_realloc, crypto_free);
        /* Secrets live in this process's memory: no core dumps, no ptrace by other users. */
        prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
        setrlimit(RLIMIT_CORE, &(struct rlimit) { 0, 0 });
        umask(0077);
        /* As systemd's own daemons do: the soft limit of 1024 is for select() users, and we
         * use epoll. Hundreds of connections, targets and commands need more. */
        struct rlimit nofile;
        if (getrlimit(RLIMIT_NOFILE, &nofile) >= 0 && nofile.rlim_cur < nofile.rlim_max) {
                nofile.rlim_cur = nofile.rlim_max;
                (void) setrlimit(RLIMIT_NOFILE, &nofile);
        }

        while ((c = getopt_long(argc, argv, "c:h", options, NULL)) >= 0) {
                switch (c) {
                case 'c':
                        config_path = optarg;
                        break;
                case ARG_ONCE:
                        once = true;
                        break;
                case ARG_CHECK:
                        check = true;
                        break;
                case ARG_DUMP:
                        dump = true;
                        break;
                case ARG_LOG_LEVEL:
                        log_level = log_level_from_string(optarg);
                        if (log_level < 0) {
                                fprintf(stderr, "secretsyncd: --log-level: \"%s\" is not one of debug, info, notice, warning, err\n",
                                        optarg);
                                return EXIT_USAGE;
                        }
                        break;
                case ARG_VERSION:
                        printf("secretsyncd %s\n", PACKAGE_VERSION);
                        return 0;
                case 'h':
                        help();
                        return 0;
                default:
                        fprintf(stderr, "Try 'secretsyncd --help'.\n");
                        return EXIT_USAGE;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "secretsyncd: unexpected argument '%s'\nTry 'secretsyncd --help'.\n", argv[optind]);
                return EXIT_USAGE;
        }
        if ((int) once + (int) check + (int) dump > 1) {
                fprintf(stderr, "secretsyncd: --once, --check-config and --dump-config exclude each other\n");
                return EXIT_USAGE;
        }

        log_setup();
        if (log_level >= 0)
                log_set_max_level(log_level);
        (void) secbuf_secure_heap_init(SECURE_HEAP_SIZE);

        Config *config = NULL;
        char **errors = NULL;
        int r = config_load(config_path, true, &config, &errors);
        if (r < 0) {
                if (check || dump)
                        print_errors(errors);
                else
                        for (size_t i = 0; errors && errors[i]; i++)
                                log_error("%s", errors[i]);
                strv_free(errors);
                return EXIT_USAGE;
        }
        strv_free(errors);

        if (check) {
                config_free(config);
                return 0;
        }
        if (dump) {
                r = config_dump(config, stdout, true);
                config_free(config);
                return r < 0 || fflush(stdout) != 0 ? 1 : 0;
        }

        Manager *m = NULL;
        ManagerOptions opts = { .config_path = config_path, .once = once, .log_level = log_level };
        r = manager_new(&opts, config, &m);
        if (r < 0) {
                log_error("cannot start: %s", strerror(-r));
                return 1;
        }
        sd_event *e = NULL;
        if (sd_event_default(&e) >= 0) {
                (void) sd_event_add_post(e, NULL, on_post, NULL);
                sd_event_unref(e);
        }
        r = manager_run(m);
        manager_free(m);
        return r;
}
