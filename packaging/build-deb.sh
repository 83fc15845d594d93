#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Build the secretsyncd Debian package from this tree:
#
#       packaging/build-deb.sh [-o OUTDIR] [--no-lintian] [--keep]
#
# 1. copies the tree into a scratch directory: in a git checkout, every file git knows
#    of plus new files that are not ignored, as they are in the working tree (so
#    uncommitted changes are built, and generated files such as configure or build
#    directories are not); outside git (an unpacked `make dist` tarball), everything
#    but build output;
# 2. puts packaging/debian there as debian/ (dpkg-buildpackage wants it at the root);
# 3. installs missing build dependencies with `apt-get build-dep` (root only);
# 4. runs `dpkg-buildpackage -us -uc -b`, honouring DEB_BUILD_OPTIONS (nocheck skips
#    `make check` and the test-only build dependencies; parallel=N defaults to nproc);
# 5. runs `lintian --fail-on error` on the result;
# 6. leaves the .deb (and the -dbgsym .deb, .buildinfo, .changes) in OUTDIR (default
#    build-packages/).
#
# The last line of output is the path of the .deb. Exit status: 0 built (and lintian
# found no error), 1 the build or lintian failed, 3 the build dependencies are missing
# and cannot be installed (not root, or apt-get failed: no network).

set -eu

SRC=$(cd "$(dirname "$0")/.." && pwd)
OUT=$SRC/build-packages
LINTIAN=1
KEEP=0
while [ $# -gt 0 ]; do
        case "$1" in
        -o | --output) OUT=$2; shift 2 ;;
        --no-lintian) LINTIAN=0; shift ;;
        --keep) KEEP=1; shift ;;
        -h | --help) sed -n '3,/^$/s/^# \{0,1\}//p' "$0"; exit 0 ;;
        *) echo "usage: $0 [-o OUTDIR] [--no-lintian] [--keep]" >&2; exit 2 ;;
        esac
done
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

say() { printf 'build-deb: %s\n' "$*" >&2; }
cannot() { say "$*"; exit 3; }

is_root() { [ "$(id -u)" = 0 ]; }
apt_install() {
        is_root || cannot "missing: $* (run as root to install them)"
        say "installing $*"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2 ||
                { apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2; } ||
                cannot "apt-get could not install $*"
}

# The tools themselves first: dpkg-checkbuilddeps is in dpkg-dev.
need=
command -v dpkg-buildpackage >/dev/null 2>&1 || need="$need dpkg-dev"
command -v dh >/dev/null 2>&1 || need="$need debhelper"
[ "$LINTIAN" = 0 ] || command -v lintian >/dev/null 2>&1 || need="$need lintian"
# shellcheck disable=SC2086
[ -z "$need" ] || apt_install $need

VERSION=$(dpkg-parsechangelog -l "$SRC/packaging/debian/changelog" -S Version)
UPSTREAM=${VERSION%-*}
WORK=$(mktemp -d "$OUT/deb-work.XXXXXX")
cleanup() {
        if [ "$KEEP" = 1 ]; then
                say "kept $WORK"
        else
                rm -rf "$WORK"
        fi
}
trap cleanup EXIT
TREE=$WORK/secretsyncd-$UPSTREAM
mkdir "$TREE"

# ---- 1. a clean copy of the tree ----
sh "$SRC/packaging/copy-tree.sh" "$SRC" "$TREE"

# ---- 2. debian/ at the root ----
rm -rf "$TREE/debian"
cp -a "$SRC/packaging/debian" "$TREE/debian"
rm -rf "$TREE/debian/.debhelper"

# ---- 3. build dependencies ----
opts=" ${DEB_BUILD_OPTIONS:-} "
profiles=${DEB_BUILD_PROFILES:-}
case "$opts" in
*" nocheck "*) profiles="${profiles:+$profiles,}nocheck" ;;
esac
case "$opts" in
*" parallel="*) ;;
*) opts="$opts parallel=$(nproc 2>/dev/null || echo 1)" ;;
esac
DEB_BUILD_OPTIONS=$(printf '%s' "$opts" | tr -s ' ' | sed 's/^ //; s/ $//')
export DEB_BUILD_OPTIONS
if [ -n "$profiles" ]; then
        DEB_BUILD_PROFILES=$(echo "$profiles" | tr ',' ' ')
        export DEB_BUILD_PROFILES
fi
if ! missing=$(cd "$TREE" && dpkg-checkbuilddeps 2>&1); then
        say "$missing"
        is_root || cannot "build dependencies are missing (run as root to install them)"
        say "installing the build dependencies (apt-get build-dep)"
        (cd "$WORK" && DEBIAN_FRONTEND=noninteractive apt-get build-dep -y -qq --no-install-recommends \
                ${profiles:+-P "$profiles"} "./${TREE##*/}" >&2) ||
                { apt-get update -qq >&2 && (cd "$WORK" && DEBIAN_FRONTEND=noninteractive apt-get build-dep -y -qq \
                        --no-install-recommends ${profiles:+-P "$profiles"} "./${TREE##*/}" >&2); } ||
                cannot "apt-get build-dep failed (no network?)"
fi

# ---- 4. build ----
say "dpkg-buildpackage -us -uc -b (DEB_BUILD_OPTIONS='$DEB_BUILD_OPTIONS'${profiles:+, profiles $profiles})"
(cd "$TREE" && dpkg-buildpackage -us -uc -b ${profiles:+-P"$profiles"}) >&2 ||
        { say "dpkg-buildpackage failed"; exit 1; }

ARCH=$(dpkg-architecture -qDEB_HOST_ARCH)
DEB=$WORK/secretsyncd_${VERSION}_$ARCH.deb
CHANGES=$WORK/secretsyncd_${VERSION}_$ARCH.changes
[ -f "$DEB" ] || { say "no $DEB after the build"; exit 1; }

# ---- 5. lintian ----
if [ "$LINTIAN" = 1 ]; then
        say "lintian --fail-on error $(basename "$CHANGES")"
        lintian --fail-on error --display-info "$CHANGES" >&2 || { say "lintian reported errors"; exit 1; }
        say "lintian: no errors"
fi

# ---- 6. results ----
# The -dbgsym package (detached debug symbols) too.
cp -f "$WORK"/*.deb "$CHANGES" "$WORK"/secretsyncd_"${VERSION}"_"$ARCH".buildinfo "$OUT"/
say "built $OUT/$(basename "$DEB")"
echo "$OUT/$(basename "$DEB")"
