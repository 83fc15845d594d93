/* SPDX-License-Identifier: MIT */
#include "core/command.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "util/cleanup.h"

struct Command {
        sd_event_source *child;
        sd_event_source *timer;
        pid_t pid;
        bool timed_out;
        command_done_cb cb;
        void *userdata;
};

Command *command_free(Command *c) {
        if (!c)
                return NULL;
        sd_event_source_disable_unref(c->child);
        sd_event_source_disable_unref(c->timer);
        free(c);
        return NULL;
}

static int on_child(sd_event_source *s, const siginfo_t *si, void *userdata) {
        Command *c = userdata;
        int status, sig = 0;

        if (si->si_code == CLD_EXITED)
                status = si->si_status;
        else {
                sig = si->si_status;
                status = c->timed_out ? -ETIME : 128 + sig;
        }
        command_done_cb cb = c->cb;
        void *ud = c->userdata;
        c->cb = NULL;
        if (cb)
                cb(c, status, sig, ud);
        return 0;
}

static int on_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        Command *c = userdata;
        c->timed_out = true;
        /* The whole process group: a command that forked must not linger. */
        kill(-c->pid, SIGKILL);
        kill(c->pid, SIGKILL);
        return 0;
}

extern char **environ;

int command_run(sd_event *e, char *const *argv, const char *secret, const char *target, uint64_t timeout_usec,
                command_done_cb cb, void *userdata, Command **ret) {
        _cleanup_free_ char *env_secret = NULL, *env_target = NULL;
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t attr;
        sigset_t none, all;
        int r;

        if (asprintf(&env_secret, "SECRETSYNC_SECRET=%s", secret) < 0 ||
            asprintf(&env_target, "SECRETSYNC_TARGET=%s", target) < 0)
                return -ENOMEM;
        char *envp[] = {
                (char *) "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                (char *) "LANG=C.UTF-8",
                env_secret,
                env_target,
                NULL,
        };

        Command *c = calloc(1, sizeof(Command));
        if (!c)
                return -ENOMEM;
        c->cb = cb;
        c->userdata = userdata;

        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
        /* Only fds 0-2 reach the command: libcurl's connections to the stores (live,
         * authenticated TLS sessions) are not close-on-exec. */
        posix_spawn_file_actions_addclosefrom_np(&fa, STDERR_FILENO + 1);
        posix_spawnattr_init(&attr);
        sigemptyset(&none);
        sigfillset(&all);
        posix_spawnattr_setsigmask(&attr, &none);
        posix_spawnattr_setsigdefault(&attr, &all);
        posix_spawnattr_setpgroup(&attr, 0);
        posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);

        /* posix_spawnp() searches PATH from our environment; look it up in the child's. */
        char *const *saved = environ;
        environ = envp;
        r = posix_spawnp(&c->pid, argv[0], &fa, &attr, argv, envp);
        environ = (char **) saved;
        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&attr);
        if (r != 0) {
                free(c);
                return -r;
        }

        r = sd_event_add_child(e, &c->child, c->pid, WEXITED, on_child, c);
        if (r >= 0)
                r = sd_event_add_time_relative(e, &c->timer, CLOCK_MONOTONIC, timeout_usec, 0, on_timeout, c);
        if (r < 0) {
                kill(c->pid, SIGKILL);
                command_free(c);
                return r;
        }
        *ret = c;
        return 0;
}
