/* SPDX-License-Identifier: MIT */
#include "util/user.h"

#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static bool parse_id(const char *s, unsigned *ret) {
        char *end;
        if (!*s || !isdigit((unsigned char) *s))
                return false;
        errno = 0;
        unsigned long v = strtoul(s, &end, 10);
        if (*end || errno != 0 || v >= UINT32_MAX)
                return false;
        *ret = (unsigned) v;
        return true;
}

bool user_name_valid(const char *s) {
        unsigned id;
        size_t n = strlen(s);
        if (parse_id(s, &id))
                return true;
        if (n == 0 || n > 32)
                return false;
        if (!(isalpha((unsigned char) s[0]) || s[0] == '_'))
                return false;
        for (size_t i = 1; i < n; i++)
                if (!(isalnum((unsigned char) s[i]) || strchr("_.-", s[i]) || (s[i] == '$' && i == n - 1)))
                        return false;
        return true;
}

int user_resolve(const char *name, uid_t *ret) {
        unsigned id;
        if (parse_id(name, &id)) {
                *ret = (uid_t) id;
                return 0;
        }
        errno = 0;
        struct passwd *pw = getpwnam(name);
        if (!pw)
                return errno > 0 ? -errno : -ENOENT;
        *ret = pw->pw_uid;
        return 0;
}

int group_resolve(const char *name, gid_t *ret) {
        unsigned id;
        if (parse_id(name, &id)) {
                *ret = (gid_t) id;
                return 0;
        }
        errno = 0;
        struct group *gr = getgrnam(name);
        if (!gr)
                return errno > 0 ? -errno : -ENOENT;
        *ret = gr->gr_gid;
        return 0;
}
