/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "util/secret-data.h"

typedef struct AtomicSyncBatch {
        struct AtomicSyncDir {
                dev_t dev;
                ino_t ino;
                int fd;
        } *dirs;
        size_t n, cap;
} AtomicSyncBatch;

/* Publishing secrets on disk. Both functions take an absolute path and
 *
 *  - reach its parent by walking from "/" one component at a time with O_NOFOLLOW: a symlink
 *    anywhere in the path is an error naming it; "." and ".." components are refused;
 *  - create missing parent directories root:root 0755;
 *  - require every parent directory to be owned by root (or by us) and not writable by
 *    group or others. A root-owned sticky directory such as /tmp is accepted too: nobody
 *    else can rename or remove what we create in it, and the next component is checked
 *    in turn;
 *  - apply owner, group and mode before any content is written, and fsync content and
 *    directory (see AtomicSyncBatch), so readers see the old or the new state, never a mix, also after a crash;
 *  - change nothing if what is on disk already has the same content, owner, group and mode
 *    (*ret_changed = false);
 *  - on failure leave what was there untouched, remove their temporary files and return
 *    -errno with an operator message in *ret_error (malloc'd, no secret bytes in it). Only
 *    then is *ret_error set; *ret_changed is set only on success. Either may be NULL. */

int atomic_file_write(const char *path, const void *data, size_t len, uid_t uid, gid_t gid, mode_t mode,
                      AtomicSyncBatch *batch, bool *ret_changed, char **ret_error);

/* The fsync of a directory after a rename only makes the new name durable; the content was
 * fsynced before the rename, so readers (and a crash) see the old or the new file either
 * way. Writing many files, one fsync per directory is enough: with a batch,
 * atomic_file_write() remembers the directory instead of syncing it, and
 * atomic_sync_batch_flush() syncs each remembered directory once. A batch holds at most 64
 * directories open; the write that would add one more flushes it first. */
int atomic_sync_batch_flush(AtomicSyncBatch *b);
static inline bool atomic_sync_batch_empty(const AtomicSyncBatch *b) {
        return b->n == 0;
}

/* The "dir" format, published as kubelet publishes a Secret volume: path is a directory
 * (owned uid:gid, mode = `mode` plus x wherever r is set, minus group/other write) holding
 * a hidden directory "..<UTC timestamp>" with one file per key, the symlink "..data"
 * pointing at it (swapped by rename, so all keys change at once) and one symlink
 * "<key>" -> "..data/<key>" per key. Stale key links and the previous hidden directory are
 * removed after the switch. */
int atomic_dir_publish(const char *path, const SecretData *d, uid_t uid, gid_t gid, mode_t mode, bool *ret_changed,
                       char **ret_error);

/* Clean-up at start, before the first write: what a write or publish interrupted by a crash
 * or SIGKILL left behind is removed, and nothing else. Directories are reached as a write
 * reaches them (no symlink followed, trusted parents) but none is created; what cannot be
 * reached is skipped. cb (if set) is told of each name removed, with the index of the
 * target it belonged to.
 *
 * atomic_file_clean_up(): for each target path, the temporary files ".#<name>.XXXXXX" beside
 * it (regular files only; in a sticky directory such as /tmp only those owned by root or
 * us). Each directory is listed once, however many targets it holds. */
typedef void (*atomic_removed_cb)(size_t index, const char *name, void *userdata);
int atomic_file_clean_up(const char *const *paths, size_t n, atomic_removed_cb cb, void *userdata);

/* For a dir target (owned by root or uid): the hidden "..<timestamp>" directories that
 * ..data does not point at, "..data_tmp" and "..link_tmp", and key links "<key>" ->
 * "..data/<key>" that lead nowhere. Other entries stay. cb gets index 0. */
void atomic_dir_clean_up(const char *path, uid_t uid, atomic_removed_cb cb, void *userdata);

/* A key usable as a file name in a dir target: one path component, not "", "." or "..",
 * and not starting with ".." (names reserved for the publishing machinery). */
bool atomic_dir_key_valid(const char *key);
