/* SPDX-License-Identifier: MIT */
#pragma once

/* Reading a configuration file once it has settled (see CONFIG_SETTLE_USEC), for
 * config_load(); not for providers. */

#include <libconfig.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "core/config.h"

/* A file seen in one state since a moment (CLOCK_MONOTONIC), across attempts to load. */
typedef struct Seen {
        char *path;
        struct stat st;
        uint64_t since;
} Seen;

typedef struct SeenList {
        Seen *v;
        size_t n;
} SeenList;

void config_seen_done(SeenList *l);

typedef struct ConfigText {
        int fd;
        struct stat st; /* as it was read */
        char *text;     /* the whole text, NUL-terminated, until the split is done */
        size_t len, maplen;
} ConfigText;

uint64_t config_now_usec(clockid_t clock);
void config_sleep_usec(uint64_t usec);

/* Waits (up to deadline) until the file has settled, then reads it with read(): a file
 * rewritten while it is read cannot crash us, and a read during which it changed is
 * retried (-EAGAIN). The text lives in its own mapping, so that it is given back at once. */
int config_text_read(ConfigParser *p, const char *path, bool strict_modes, SeenList *seen, uint64_t deadline,
                     ConfigText *ret);
void config_text_unmap(ConfigText *t);
void config_text_done(ConfigText *t);
/* Whether the file still is what was read (fstat before and after); -EAGAIN if not. */
int config_text_check_unchanged(ConfigParser *p, const ConfigText *t);
/* Files pulled in with @include are configuration too: the same strict modes apply, and
 * they must have settled before read_start (CLOCK_REALTIME). */
int config_check_included_files(ConfigParser *p, const config_t *cfg, SeenList *seen, uint64_t read_start);
