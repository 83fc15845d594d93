#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Build the secretsyncd RPM from this tree:
#
#       packaging/build-rpm.sh [-o OUTDIR] [--nocheck] [-- RPMBUILD-ARGS...]
#
# 1. copies the tree into a scratch directory (as packaging/build-deb.sh does: in a git
#    checkout the tracked and new, not ignored, files of the working tree);
# 2. makes the release tarball there with `./autogen.sh && configure && make dist`;
# 3. runs `rpmbuild -bb packaging/rpm/secretsyncd.spec` in the rpmbuild tree
#    OUTDIR/rpmbuild (SOURCES, SPECS, BUILD, BUILDROOT, RPMS, SRPMS);
# 4. leaves the .rpm in OUTDIR (default build-packages/) and prints its path last.
#
# --nocheck (or DEB_BUILD_OPTIONS=nocheck) skips %check, the test suite.
#
# On a system whose packages are not RPMs (Debian, where this installs the `rpm`
# package if it is missing), rpmbuild cannot see the BuildRequires in its empty
# database, so it runs with --nodeps: the build dependencies are the Debian ones
# (tests/install-deps.sh). The spec defines fallbacks for the systemd macros
# (%_unitdir, %systemd_post, ...) that Debian's rpm lacks.
#
# Exit status: 0 built, 1 the build failed, 3 rpmbuild or the autotools are missing and
# cannot be installed.

set -eu

SRC=$(cd "$(dirname "$0")/.." && pwd)
OUT=$SRC/build-packages
NOCHECK=0
case " ${DEB_BUILD_OPTIONS:-} " in
*" nocheck "*) NOCHECK=1 ;;
esac
while [ $# -gt 0 ]; do
        case "$1" in
        -o | --output) OUT=$2; shift 2 ;;
        --nocheck) NOCHECK=1; shift ;;
        --) shift; break ;;
        -h | --help) sed -n '3,/^$/s/^# \{0,1\}//p' "$0"; exit 0 ;;
        *) echo "usage: $0 [-o OUTDIR] [--nocheck] [-- RPMBUILD-ARGS...]" >&2; exit 2 ;;
        esac
done
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

say() { printf 'build-rpm: %s\n' "$*" >&2; }
cannot() { say "$*"; exit 3; }

need=
command -v rpmbuild >/dev/null 2>&1 || need="$need rpm"
command -v autoreconf >/dev/null 2>&1 || need="$need autoconf automake"
command -v xz >/dev/null 2>&1 || need="$need xz-utils"
if [ -n "$need" ]; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
                say "installing$need"
                # shellcheck disable=SC2086
                DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >&2 ||
                        { apt-get update -qq >&2 &&
                                DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >&2; } ||
                        cannot "apt-get could not install$need"
        else
                cannot "missing:$need"
        fi
fi

WORK=$(mktemp -d "$OUT/rpm-work.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
TREE=$WORK/tree
mkdir "$TREE"

# ---- 1. a clean copy of the tree ----
sh "$SRC/packaging/copy-tree.sh" "$SRC" "$TREE"

# ---- 2. the release tarball ----
say "make dist"
(
        cd "$TREE"
        ./autogen.sh
        mkdir _dist
        cd _dist
        ../configure --quiet
        make --quiet dist
) >"$WORK/dist.log" 2>&1 || {
        tail -n 30 "$WORK/dist.log" >&2
        say "make dist failed"
        exit 1
}
TARBALL=$(ls "$TREE"/_dist/secretsyncd-*.tar.xz)

# ---- 3. rpmbuild ----
TOP=$OUT/rpmbuild
rm -rf "$TOP"
mkdir -p "$TOP/SOURCES" "$TOP/SPECS" "$TOP/BUILD" "$TOP/BUILDROOT" "$TOP/RPMS" "$TOP/SRPMS"
cp "$TARBALL" "$TOP/SOURCES/"
cp "$TREE/packaging/rpm/secretsyncd.spec" "$TOP/SPECS/"

set -- --define "_topdir $TOP" "$@"
[ "$NOCHECK" = 0 ] || set -- --nocheck "$@"
# BuildRequires are checked against the rpm database; on Debian that database is empty.
if [ -e /etc/debian_version ] || ! rpm -q rpm >/dev/null 2>&1; then
        say "not an RPM-based system: rpmbuild --nodeps (build dependencies come from dpkg)"
        set -- --nodeps "$@"
fi
say "rpmbuild -bb $* SPECS/secretsyncd.spec"
rpmbuild -bb "$@" "$TOP/SPECS/secretsyncd.spec" >&2 || { say "rpmbuild failed"; exit 1; }

# ---- 4. results ----
found=
for f in "$TOP"/RPMS/*/secretsyncd-*.rpm; do
        [ -f "$f" ] || continue
        cp -f "$f" "$OUT/"
        case "${f##*/}" in
        secretsyncd-debug*) ;;
        *) found=$OUT/${f##*/} ;;
        esac
done
[ -n "$found" ] || { say "no RPM after the build"; exit 1; }
say "built $found"
echo "$found"
