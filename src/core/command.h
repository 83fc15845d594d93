/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdint.h>
#include <systemd/sd-event.h>

/* on_change commands: run without a shell, watched from the event loop, killed at the
 * timeout. The child gets a minimal environment (PATH, LANG=C.UTF-8, and the non-secret
 * SECRETSYNC_SECRET and SECRETSYNC_TARGET), stdin from /dev/null, our stdout/stderr. */

typedef struct Command Command;

/* status: exit code (>= 0), or -ETIME on timeout, -errno if it could not start; signal set
 * when it died of one. */
typedef void (*command_done_cb)(Command *c, int status, int signal, void *userdata);

int command_run(sd_event *e, char *const *argv, const char *secret, const char *target, uint64_t timeout_usec,
                command_done_cb cb, void *userdata, Command **ret);
/* Stop watching (the process is left to finish); no callback afterwards. */
Command *command_free(Command *c);
