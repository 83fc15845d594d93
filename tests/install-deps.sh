#!/bin/sh
# Install what building and testing secretsyncd needs on Debian 12 (as root). Quiet when
# everything is already there. debhelper and dpkg-dev build the .deb that
# tests/integration/test-package.sh installs; lintian and rpm serve packaging/build-deb.sh
# and packaging/build-rpm.sh. strace shows tests/integration/test-write-order.py the order of
# the system calls that replace a target (fsync, fchown, fchmod, rename).
# prometheus-node-exporter and prometheus (for promtool) read the metrics file in
# tests/integration/test-metrics.py, as they would on a node. nodejs (with its npm) runs the
# Azure and Google client libraries that prove the cloud stand-ins
# (tests/integration/test-azure-sdk.py, test-gcp-sdk.py; npm ci installs them). gdb's gcore
# takes the core dump that tests/integration/test-memory-secrets.py searches for secrets;
# valgrind serves the soak benchmark (tests/bench/soak.py --valgrind).
set -e
#   tests/install-deps.sh          everything the tests, fuzzing and packaging need
#   tests/install-deps.sh --build  only what building the daemon needs (the demo)
PKGS="build-essential autoconf automake autoconf-archive libtool pkg-config
      libcurl4-openssl-dev libjson-c-dev libssl-dev libsystemd-dev libconfig-dev libyaml-dev"
[ "${1:-}" = --build ] || PKGS="$PKGS check
      python3 python3-hvac openssl nodejs systemd dbus util-linux procps time groff-base strace gdb valgrind
      clang libclang-rt-14-dev
      debhelper dpkg-dev lintian rpm xz-utils
      prometheus-node-exporter prometheus"
missing=""
for p in $PKGS; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
        echo "missing packages:$missing (run as root to install them)" >&2
        exit 1
fi
echo "installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing >/dev/null
