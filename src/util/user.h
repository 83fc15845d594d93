/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

/* Not resolved yet: a user or group named in the configuration that does not exist (yet)
 * on this machine is looked up again when a file is written. */
#define UID_UNRESOLVED ((uid_t) -1)
#define GID_UNRESOLVED ((gid_t) -1)

/* A plausible user or group name (as useradd accepts), or a decimal id. */
bool user_name_valid(const char *s);
/* Decimal ids are taken as they are. -ENOENT if no such user or group. */
int user_resolve(const char *name, uid_t *ret);
int group_resolve(const char *name, gid_t *ret);
