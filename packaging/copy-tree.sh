#!/bin/sh
# copy-tree.sh SRC DEST: a clean copy of the source tree for a package build. In a git
# checkout (SRC its top level): the tracked and new, not ignored files as they are in the
# working tree, so uncommitted changes are built. Otherwise (a tarball, also one unpacked
# under a checkout's ignored build directory as in make distcheck): every file but build
# products.
set -e
SRC=$1
DEST=$2
if command -v git >/dev/null 2>&1 &&
   [ "$(git -C "$SRC" rev-parse --show-toplevel 2>/dev/null)" = "$(cd "$SRC" && pwd -P)" ]; then
        echo "copying the git working tree (tracked and new files) of $SRC" >&2
        (cd "$SRC" && git ls-files -z --cached --others --exclude-standard |
                xargs -0 sh -c 'for f; do [ -e "$f" ] || [ -L "$f" ] && printf "%s\0" "$f"; done' sh |
                tar --null --no-recursion -c -f - -T -) | tar -xf - -C "$DEST"
else
        echo "copying $SRC (not a git checkout, or git does not trust it)" >&2
        (cd "$SRC" && tar --exclude=./.git --exclude='./build*' --exclude=./_build --exclude=./_inst \
                --exclude=./autom4te.cache --exclude=./debian --exclude='*.o' --exclude='*.a' -cf - .) |
                tar -xf - -C "$DEST"
fi
[ -f "$DEST/configure.ac" ] || { echo "copying the tree failed" >&2; exit 1; }
