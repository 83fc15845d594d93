# SPDX-License-Identifier: MIT
# shellcheck shell=bash
#
# systemd-ns.sh — boot a real systemd as PID 1 of a private PID/mount/UTS/IPC/cgroup
# (and, by default, network) namespace, for integration tests of units, systemctl and
# journalctl. Source it from a bash test:
#
#       . "$TOP_SRCDIR/tests/integration/systemd-ns.sh"
#       ns_add_cleanup 'rm -rf "$WORK"'   # instead of an EXIT trap of your own
#       ns_mask foo-helper.service        # optional, before ns_boot
#       ns_boot                           # exits 77 (skip) if this machine cannot do it
#       ns_copy_in ./foo /usr/sbin/foo 0755
#       ns_write /etc/foo.conf 0600 <<<"setting = 1;"
#       ns_run systemctl start foo.service
#       ns_sh 'journalctl -u foo -o json' > out.json
#       # ns_shutdown runs from the EXIT trap; calling it by hand is fine too
#
# Functions: ns_require (probe only), ns_boot, ns_run CMD..., ns_sh SCRIPT [ARGS...],
# ns_copy_in HOSTFILE PATH [MODE], ns_write PATH [MODE] <DATA, ns_mask UNIT...,
# ns_vault STATE_JSON, ns_add_cleanup CMD, ns_shutdown. ns_run enters the PID, mount, UTS, IPC, cgroup (and
# network) namespaces of the namespace's PID 1, so systemctl, journalctl and systemd-run
# there talk to that systemd; it returns the command's exit status.
#
# The namespace shares the host's file systems, so before systemd starts, the init
# script below (running as PID 1 of the new namespaces) makes everything systemd could
# write private:
#
#   * `mount --make-rprivate /`: nothing mounted inside propagates to the host;
#   * every mount of the host's is made read-only inside (NS_HOST_RO=0 turns that off),
#     so nothing outside the private trees below can be written by accident;
#   * /etc, /usr and /var are overlayfs mounts (lower: the host's trees; upper and work
#     directories on a tmpfs that exists only in the namespace), so tests may install
#     binaries, units and configuration without touching the host;
#   * fresh tmpfs on /tmp, /var/tmp and /run; a private /dev (tmpfs with bind-mounted
#     null, zero, full, random, urandom, tty, a new devpts instance, /dev/console a pty
#     copied to the scratch directory's console.log, no /dev/kmsg); /proc/sys,
#     /proc/sysrq-trigger & co. and /sys read-only;
#     a cgroup2 mount whose root is a cgroup made for this namespace;
#   * `container=` is set, so systemd runs in container mode: it reads no kernel command
#     line, manages no swap, and its final shutdown stage neither unmounts, nor
#     detaches loop/DM devices, nor swaps off — those are global kernel objects;
#   * units that would touch host-global state (tmpfiles, sysctl, modules, binfmt,
#     remount-fs, udev, clock, random seed, pstore, fsck, getty, timers, ...) are masked
#     by /dev/null links in a directory put first in SYSTEMD_UNIT_PATH (the trailing `:`
#     keeps the default path), and all generators are disabled (SYSTEMD_GENERATOR_PATH
#     points at an empty directory) so nothing is derived from the host's fstab,
#     partition table or kernel command line.
#
# Teardown kills the namespace's PID 1 with SIGKILL (the kernel then kills every other
# process in the PID namespace), removes the cgroup, and deletes the scratch directory.
# The namespace's mounts die with it. The launcher also runs with a parent-death signal,
# so even a SIGKILLed test leaves no systemd running.
#
# Knobs (environment, read by ns_boot):
#   NS_UNIT            unit systemd starts (default basic.target)
#   NS_BOOT_TIMEOUT    seconds to wait for the boot (default 60)
#   NS_NET             "private" (default: own network namespace, only lo) or "host"
#   NS_MASK            extra unit names to mask (space separated); see also ns_mask
#   NS_SCRATCH_PARENT  where the scratch directory goes (default $TOP_BUILDDIR if set,
#                      else /var/tmp); it must not be under /tmp
#   NS_KEEP=1          keep the scratch directory (console.log: systemd's early messages)
#   NS_CLEAN_SHUTDOWN  1 (default): `systemctl poweroff` first, then SIGKILL; 0: SIGKILL
#   NS_HOST_RO         1 (default): the host's mounts are read-only inside
#   NS_SYSTEMD_ARGS    extra arguments for systemd, e.g. --log-level=debug
#   NS_VERBOSE=1       log each step to stderr
#   NS_RUN_TIMEOUT     seconds after which ns_run kills its command (default 120)
#
# Variables set by ns_boot: NS_PID (host PID of the namespace's PID 1), NS_DIR (scratch
# directory), NS_CGROUP (host path of the namespace's cgroup), NS_BOOT_STATE (output of
# `systemctl is-system-running`), NS_BOOT_SECONDS.

NS_PID=
NS_LAUNCHER_PID=
NS_DIR=
NS_CGROUP=
NS_BOOT_STATE=
NS_BOOT_SECONDS=
NS_TRAP_INSTALLED=
NS__EXTRA_MASKS=
NS__CLEANUPS=()
NS_SYSTEMD_BIN=

NS_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# Units masked in every namespace (the reasons follow the list).
NS_DEFAULT_MASKS="
systemd-tmpfiles-setup.service
systemd-tmpfiles-setup-dev.service
systemd-tmpfiles-setup-dev-early.service
systemd-tmpfiles-clean.service
systemd-tmpfiles-clean.timer
systemd-sysctl.service
systemd-modules-load.service
kmod-static-nodes.service
systemd-binfmt.service
proc-sys-fs-binfmt_misc.automount
proc-sys-fs-binfmt_misc.mount
systemd-remount-fs.service
systemd-fsck-root.service
systemd-fsck@.service
systemd-udevd.service
systemd-udevd-control.socket
systemd-udevd-kernel.socket
systemd-udev-trigger.service
systemd-udev-settle.service
systemd-hwdb-update.service
sys-kernel-config.mount
sys-kernel-debug.mount
sys-kernel-tracing.mount
sys-fs-fuse-connections.mount
dev-hugepages.mount
systemd-journald-audit.socket
systemd-journal-flush.service
systemd-journal-catalog-update.service
systemd-random-seed.service
systemd-pstore.service
systemd-timesyncd.service
systemd-time-wait-sync.service
systemd-firstboot.service
systemd-machine-id-commit.service
systemd-sysusers.service
systemd-update-done.service
systemd-update-utmp.service
systemd-update-utmp-runlevel.service
systemd-repart.service
systemd-pcrphase.service
systemd-pcrphase-sysinit.service
systemd-pcrphase-initrd.service
systemd-boot-update.service
systemd-boot-system-token.service
systemd-hibernate-resume@.service
systemd-ask-password-console.path
systemd-ask-password-console.service
systemd-ask-password-wall.path
systemd-ask-password-wall.service
ldconfig.service
getty.target
getty-static.service
getty@.service
serial-getty@.service
console-getty.service
container-getty@.service
timers.target
apt-daily.timer
apt-daily-upgrade.timer
dpkg-db-backup.timer
e2scrub_all.timer
e2scrub_reap.service
fstrim.timer
man-db.timer
logrotate.timer
swap.target
"
# Why: tmpfiles would empty or re-own host paths (/tmp is "D", /home, /srv, /var are in
# its configuration); sysctl, modules-load, kmod-static-nodes, binfmt, hugepages and the
# sys-kernel mounts change kernel-global settings; remount-fs, fsck and udev act on the
# host's block devices; timesyncd sets the clock; random-seed credits entropy to the
# host's pool; pstore empties /sys/fs/pstore; pcrphase and boot-* touch the TPM and the
# ESP; getty and ask-password open terminals; the timers would start apt, man-db, fstrim;
# the rest (journal flush, catalog update, sysusers, utmp, firstboot, ldconfig) is not
# needed and only slows the boot.

ns__log() {
        if [ "${NS_VERBOSE:-0}" = 1 ]; then
                printf 'systemd-ns: %s\n' "$*" >&2
        fi
}

ns__skip() {
        printf 'SKIP: %s\n' "$*" >&2
        exit 77
}

ns__fail() {
        printf 'systemd-ns: error: %s\n' "$*" >&2
        return 1
}

# Add units to mask. Call before ns_boot.
ns_mask() {
        NS__EXTRA_MASKS="$NS__EXTRA_MASKS $*"
}

# The host cgroup2 directory in which the namespace's cgroup is made: the cgroup2
# hierarchy (unified: /sys/fs/cgroup; hybrid: /sys/fs/cgroup/unified) plus our own cgroup
# in it, so a host running systemd sees the namespace under the test's own unit.
ns__cgroup_parent() {
        local base own
        if [ "$(stat -f -c %T /sys/fs/cgroup 2>/dev/null)" = cgroup2fs ]; then
                base=/sys/fs/cgroup
        elif [ "$(stat -f -c %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ]; then
                base=/sys/fs/cgroup/unified
        else
                return 1
        fi
        own=$(sed -n 's/^0:://p' /proc/self/cgroup)
        # Inside a cgroup namespace of our own the path may start with /.. — use the base.
        case "$own" in
        /..* | "") own=/ ;;
        esac
        printf '%s%s\n' "$base" "${own%/}"
}

# Probe everything ns_boot needs; on any lack, skip the test (exit 77) naming it.
ns_require() {
        local c d probe
        [ "$(id -u)" = 0 ] || ns__skip "systemd namespace tests need root"
        for c in unshare nsenter setpriv mount umount findmnt systemctl journalctl timeout stat; do
                command -v "$c" >/dev/null 2>&1 || ns__skip "missing program: $c"
        done
        for c in /lib/systemd/systemd /usr/lib/systemd/systemd; do
                if [ -x "$c" ]; then
                        NS_SYSTEMD_BIN=$c
                        break
                fi
        done
        [ -n "$NS_SYSTEMD_BIN" ] || ns__skip "missing program: /lib/systemd/systemd"
        d=$(ns__cgroup_parent) || ns__skip "no cgroup2 hierarchy mounted (legacy cgroup v1 only)"
        probe="$d/sdns-probe.$$"
        mkdir "$probe" 2>/dev/null || ns__skip "cannot create a cgroup under $d (read-only cgroupfs?)"
        rmdir "$probe"

        if ! c=$(unshare --pid --fork --mount --uts --ipc --cgroup --net --mount-proc true 2>&1); then
                ns__skip "cannot create PID/mount/UTS/IPC/cgroup/network namespaces (unprivileged container?): $c"
        fi

        # The mounts the init script makes, in a throwaway namespace.
        d=$(mktemp -d "${NS_SCRATCH_PARENT:-${TOP_BUILDDIR:-/var/tmp}}/sdns-probe.XXXXXX") ||
                ns__skip "cannot create a scratch directory"
        # shellcheck disable=SC2016
        c=$(unshare --mount --net /bin/sh -c '
                mount() { command mount -n "$@"; }
                mount --make-rprivate / || exit 1
                mount -t tmpfs -o mode=0700 sdns-probe "$1" || { echo "tmpfs:"; exit 1; }
                mkdir "$1/u" "$1/w" "$1/m"
                mount -t overlay -o lowerdir=/etc,upperdir="$1/u",workdir="$1/w" sdns-probe "$1/m" ||
                        { echo "overlayfs (lower /etc, upper on tmpfs):"; exit 1; }
                touch "$1/m/.sdns-probe" && test -e "$1/m/passwd" || { echo "overlayfs does not work:"; exit 1; }
                { mount -t sysfs sysfs /sys || mount --bind /sys /sys; } && mount -o remount,bind,ro /sys ||
                        { echo "read-only sysfs:"; exit 1; }
        ' sh "$d" 2>&1) || {
                rmdir "$d" 2>/dev/null
                ns__skip "cannot mount $(echo $c)"
        }
        rmdir "$d" 2>/dev/null || true
        return 0
}

# Remove what a test killed by SIGKILL (no EXIT trap) left: its namespace died with it
# (parent-death signal), but its empty cgroup and scratch directory remain. Only
# cgroups that are empty and older than a minute are touched, so a namespace that
# another test is booting right now is safe.
ns__reap_stale() {
        local cgparent=$1 scratch_parent=$2 cg name
        for cg in "$cgparent"/sdns-sdns.*; do
                [ -d "$cg" ] || continue
                grep -q '^populated 0' "$cg/cgroup.events" 2>/dev/null || continue
                [ -n "$(find "$cg" -maxdepth 0 -mmin +1 2>/dev/null)" ] || continue
                find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null || continue
                name=${cg##*/sdns-}
                if [ -d "$scratch_parent/$name" ] && [ -f "$scratch_parent/$name/init.sh" ] &&
                        ! findmnt -rn -o TARGET | grep -qF "$scratch_parent/$name"; then
                        rm -rf --one-file-system "${scratch_parent:?}/$name"
                fi
                ns__log "removed stale $cg"
        done
}

# Write the script that runs as PID 1 of the namespace and execs systemd.
ns__write_init() {
        cat >"$NS_DIR/init.sh" <<'EOF'
#!/bin/sh
# PID 1 of the test namespace until it execs systemd. $1: the scratch directory.
set -eu
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
S=$1
UNIT=$2
SYSTEMD=$3
MASKS=$4
shift 4

# -n: libmount must not record these mounts in the host's /run/mount/utab (our /run is
# the host's until the tmpfs below).
mount() {
        command mount -n "$@"
}

mount --make-rprivate /

# Everything of the host's that is not replaced below (/, /root, /home, /srv, /opt, the
# source tree, ...) becomes read-only in here, so nothing a test does inside can write
# to the host by accident. The per-mount flag changes only this namespace's copies.
if [ "${NS_HOST_RO:-1}" = 1 ]; then
        findmnt -rn -o TARGET | while read -r t; do
                t=$(printf '%b' "$t")
                case "$t" in
                /proc | /proc/* | /sys | /sys/* | /dev | /dev/*) continue ;;
                esac
                mount -o remount,bind,ro "$t" 2>/dev/null ||
                        echo "systemd-ns: warning: cannot make $t read-only" >&2
        done
fi

# A tmpfs that exists only in this namespace: overlay upper/work dirs, the new /dev.
mount -t tmpfs -o mode=0700,size=50% sdns-scratch "$S/ovl"

# Kernel-global knobs: read-only (as systemd-nspawn does).
for p in /proc/sys /proc/sysrq-trigger /proc/irq /proc/bus /proc/fs /proc/acpi /proc/scsi; do
        if [ -e "$p" ]; then
                mount --bind "$p" "$p"
                mount -o remount,bind,ro "$p"
        fi
done

# A fresh, read-only sysfs (hides the host's debugfs, configfs, pstore, ... mounts), and
# cgroup2 rooted at the namespace's own cgroup. In the host's network namespace the
# kernel refuses a second sysfs mount on /sys; a non-recursive bind also drops the
# submounts.
mount -t sysfs -o nosuid,nodev,noexec sdns-sysfs /sys 2>/dev/null || mount --bind /sys /sys
mount -o remount,bind,ro,nosuid,nodev,noexec /sys
mount -t cgroup2 -o nosuid,nodev,noexec sdns-cgroup2 /sys/fs/cgroup

# Private /dev.
D="$S/ovl/dev"
mkdir "$D"
mount -t tmpfs -o mode=0755,nosuid,size=4m sdns-dev "$D"
for n in null zero full random urandom tty; do
        : >"$D/$n"
        mount --bind "/dev/$n" "$D/$n"
done
: >"$D/console"
mount --bind /dev/null "$D/console"
mkdir -m 0755 "$D/pts"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5,nosuid,noexec sdns-devpts "$D/pts"
ln -s pts/ptmx "$D/ptmx"
mkdir -m 1777 "$D/shm"
mount -t tmpfs -o mode=1777,nosuid,nodev sdns-shm "$D/shm"
ln -s /proc/self/fd "$D/fd"
ln -s /proc/self/fd/0 "$D/stdin"
ln -s /proc/self/fd/1 "$D/stdout"
ln -s /proc/self/fd/2 "$D/stderr"
mount --move "$D" /dev

# systemd (PID 1) logs to /dev/console until journald runs, reopening it for every
# message, and only if it is a terminal. Give it a pseudo-terminal whose other end a
# small reader copies to console.log (our stdout). The reader holds the terminal open
# itself, so it never sees EIO, and its argv[0] starts with "@", so the killing spree of
# systemd-shutdown spares it (with no reader, the last messages would fill the terminal
# and block). Without python3 the console stays /dev/null.
if command -v python3 >/dev/null 2>&1; then
        bash -c 'exec -a @sdns-console python3 -c "$1" "$2"' sh '
import os, sys, termios
m, s = os.openpty()
a = termios.tcgetattr(s)
a[1] &= ~termios.OPOST          # no \r added to \n
termios.tcsetattr(s, termios.TCSANOW, a)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(os.ttyname(s))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
while True:
    try:
        d = os.read(m, 65536)
    except OSError:
        break
    if not d:
        break
    os.write(1, d)
' "$S/ovl/console-tty" </dev/null 2>/dev/null &
        i=0
        while [ ! -e "$S/ovl/console-tty" ] && [ $i -lt 100 ]; do
                sleep 0.02
                i=$((i + 1))
        done
        if [ -e "$S/ovl/console-tty" ]; then
                mount --bind "$(cat "$S/ovl/console-tty")" /dev/console
        fi
fi

# Overlays: whatever is written to /etc, /usr, /var lands in the namespace's tmpfs.
for t in etc usr var; do
        mkdir "$S/ovl/$t.upper" "$S/ovl/$t.work"
        mount -t overlay -o "lowerdir=/$t,upperdir=$S/ovl/$t.upper,workdir=$S/ovl/$t.work" "sdns-$t" "/$t"
done

mount -t tmpfs -o mode=1777,nosuid,nodev sdns-tmp /tmp
mount -t tmpfs -o mode=1777,nosuid,nodev sdns-vartmp /var/tmp
mount -t tmpfs -o mode=0755,nosuid,nodev,size=20% sdns-run /run
mkdir -m 0755 /run/lock /run/user /run/sdns /run/sdns/mask /run/sdns/generators

for u in $MASKS; do
        ln -sf /dev/null "/run/sdns/mask/$u"
done

# Tell ns_boot the mounts are in place (it polls through /proc/PID/root).
: >/run/sdns/setup-done

exec env -i \
        container=secretsyncd-test \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        LANG=C.UTF-8 \
        SYSTEMD_UNIT_PATH=/run/sdns/mask: \
        SYSTEMD_GENERATOR_PATH=/run/sdns/generators \
        "$SYSTEMD" --system --unit="$UNIT" --show-status=no --log-color=no "$@"
EOF
}

ns__alive() {
        [ -n "$NS_LAUNCHER_PID" ] && kill -0 "$NS_LAUNCHER_PID" 2>/dev/null
}

ns__show_console() {
        if [ -n "$NS_DIR" ] && [ -s "$NS_DIR/console.log" ]; then
                printf -- '--- namespace console (last 40 lines) ---\n' >&2
                tail -n 40 "$NS_DIR/console.log" >&2
                printf -- '---\n' >&2
        fi
}

ns__on_exit() {
        local rc=$? c
        trap - EXIT
        if [ "$rc" != 0 ] && [ "$rc" != 77 ] && [ -n "$NS_PID" ] && ns__alive; then
                printf 'systemd-ns: test failed (exit %s); last journal lines:\n' "$rc" >&2
                NS_RUN_TIMEOUT=10 ns_run journalctl --no-pager -b -n 60 -o short-monotonic >&2 2>&1 || true
                NS_RUN_TIMEOUT=10 ns_run systemctl --no-pager --failed >&2 2>&1 || true
        fi
        ns_shutdown
        for c in "${NS__CLEANUPS[@]}"; do
                eval "$c" || true
        done
        exit "$rc"
}

# Install the EXIT (and INT/TERM/HUP) trap that shuts the namespace down and runs the
# ns_add_cleanup commands. ns_boot calls it; a test that has its own cleanup registers
# it with ns_add_cleanup instead of setting a trap of its own.
ns_trap_install() {
        if [ -z "$NS_TRAP_INSTALLED" ]; then
                trap ns__on_exit EXIT
                trap 'exit 130' INT
                trap 'exit 143' TERM
                trap 'exit 129' HUP
                NS_TRAP_INSTALLED=1
        fi
}

# ns_add_cleanup COMMAND: run COMMAND (a string, eval'ed) on exit, after ns_shutdown.
ns_add_cleanup() {
        NS__CLEANUPS+=("$1")
        ns_trap_install
}

# Boot systemd. Returns when `systemctl is-system-running --wait` says running or
# degraded (NS_BOOT_STATE); fails if it does not within NS_BOOT_TIMEOUT seconds.
ns_boot() {
        local unit=${NS_UNIT:-basic.target} timeout=${NS_BOOT_TIMEOUT:-60}
        local parent masks net_flag="--net" start now u children state

        [ -z "$NS_PID" ] || ns__fail "ns_boot: already booted" || return 1
        ns_require
        case "${NS_NET:-private}" in
        private) net_flag=--net ;;
        host) net_flag= ;;
        *) ns__fail "NS_NET must be private or host" || return 1 ;;
        esac

        parent=${NS_SCRATCH_PARENT:-${TOP_BUILDDIR:-/var/tmp}}
        case "$parent" in
        /tmp | /tmp/*) parent=/var/tmp ;; # hidden by the namespace's /tmp
        esac
        ns__reap_stale "$(ns__cgroup_parent)" "$parent"
        NS_DIR=$(mktemp -d "$parent/sdns.XXXXXX") || return 1
        mkdir "$NS_DIR/ovl"
        ns__write_init

        masks=
        for u in $NS_DEFAULT_MASKS ${NS_MASK:-} $NS__EXTRA_MASKS; do
                masks="$masks $u"
        done

        NS_CGROUP="$(ns__cgroup_parent)/sdns-$(basename "$NS_DIR")"
        mkdir "$NS_CGROUP" || return 1

        ns_trap_install

        start=$(date +%s.%N)
        # setpriv: if this shell dies (even by SIGKILL) unshare gets SIGKILL, and
        # --kill-child passes SIGKILL on to the namespace's PID 1.
        # shellcheck disable=SC2086
        setpriv --pdeathsig KILL -- /bin/sh -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' \
                sh "$NS_CGROUP" \
                unshare --pid --fork --kill-child=KILL --mount --uts --ipc --cgroup $net_flag \
                --mount-proc --propagation private \
                /bin/sh "$NS_DIR/init.sh" "$NS_DIR" "$unit" "$NS_SYSTEMD_BIN" "$masks" ${NS_SYSTEMD_ARGS:-} \
                </dev/null >"$NS_DIR/console.log" 2>&1 &
        NS_LAUNCHER_PID=$!
        ns__log "launcher pid $NS_LAUNCHER_PID, scratch $NS_DIR, cgroup $NS_CGROUP"

        # The namespace's PID 1 is unshare's only child.
        for _ in $(seq 1 100); do
                case "$(readlink "/proc/$NS_LAUNCHER_PID/exe" 2>/dev/null)" in
                */unshare)
                        children=$(cat "/proc/$NS_LAUNCHER_PID/task/$NS_LAUNCHER_PID/children" 2>/dev/null ||
                                ps -o pid= --ppid "$NS_LAUNCHER_PID" 2>/dev/null || true)
                        children=$(echo $children)
                        if [ -n "$children" ]; then
                                NS_PID=${children%% *}
                                break
                        fi
                        ;;
                esac
                ns__alive || break
                sleep 0.05
        done
        if [ -z "$NS_PID" ]; then
                ns__show_console
                ns_shutdown
                ns__fail "namespace did not start"
                return 1
        fi
        ns__log "namespace PID 1 is host PID $NS_PID"

        # Wait for systemd to be up enough for systemctl.
        for _ in $(seq 1 $((timeout * 20))); do
                if [ -S "/proc/$NS_PID/root/run/systemd/private" ]; then
                        break
                fi
                if ! ns__alive; then
                        ns__show_console
                        ns_shutdown
                        ns__fail "namespace exited during boot"
                        return 1
                fi
                sleep 0.05
        done
        if [ ! -S "/proc/$NS_PID/root/run/systemd/private" ]; then
                ns__show_console
                ns_shutdown
                ns__fail "systemd did not come up within ${timeout}s"
                return 1
        fi

        now=$(date +%s)
        state=$(timeout "$((timeout - (now - ${start%.*}) + 1))" \
                nsenter --target "$NS_PID" --mount --pid --uts --ipc --cgroup ${net_flag:+--net} --root --wd \
                env -i PATH="$NS_PATH" systemctl is-system-running --wait 2>&1) || true
        # shellcheck disable=SC2034 # read by the tests
        NS_BOOT_STATE=$state
        NS_BOOT_SECONDS=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
        ns__log "boot: $state after ${NS_BOOT_SECONDS}s"
        case "$state" in
        running) return 0 ;;
        degraded)
                printf 'systemd-ns: warning: namespace booted degraded; failed units:\n' >&2
                ns_run systemctl --no-pager --failed --plain --no-legend >&2 || true
                return 0
                ;;
        esac
        ns__show_console
        ns_run systemctl --no-pager list-jobs >&2 || true
        ns_shutdown
        ns__fail "boot did not finish (state: ${state:-none}) within ${timeout}s"
        return 1
}

# Run a command inside the namespace (as root, cwd /, a clean environment; stdin, stdout
# and stderr pass through; exit status returned). systemctl, journalctl, systemd-run
# talk to its systemd. NS_RUN_TIMEOUT (seconds, default 120) bounds it.
ns_run() {
        [ -n "$NS_PID" ] || {
                ns__fail "ns_run: namespace not booted"
                return 1
        }
        local net_flag=
        [ "${NS_NET:-private}" = private ] && net_flag=--net
        # timeout puts the command in a process group of its own and kills that whole
        # group, the process inside the namespace included. A terminal on stdin would
        # stop a reader in that background group (SIGTTIN), so it is not passed on.
        if [ -t 0 ]; then
                ns__run_in $net_flag "$@" </dev/null
        else
                ns__run_in $net_flag "$@"
        fi
}

ns__run_in() {
        local net_flag=
        if [ "$1" = --net ]; then
                net_flag=--net
                shift
        fi
        # shellcheck disable=SC2086
        timeout --kill-after=5 "${NS_RUN_TIMEOUT:-120}" \
                nsenter --target "$NS_PID" --mount --pid --uts --ipc --cgroup $net_flag --root --wd \
                env -i PATH="$NS_PATH" LANG=C.UTF-8 TERM=dumb SYSTEMD_PAGER= SYSTEMD_COLORS=0 \
                SYSTEMD_UNIT_PATH=/run/sdns/mask: "$@"
}

# ns_sh SCRIPT [ARGS...]: run a shell script inside the namespace.
ns_sh() {
        local script=$1
        shift
        ns_run /bin/sh -c "$script" sh "$@"
}

# ns_copy_in HOST_FILE NS_PATH [MODE]: copy a file into the namespace (through stdin, so
# it works whatever the host path is), creating parent directories.
ns_copy_in() {
        local src=$1 dst=$2 mode=${3:-}
        ns_sh 'set -e; mkdir -p "$(dirname "$1")"; cat >"$1.sdns-tmp"; [ -z "$2" ] || chmod "$2" "$1.sdns-tmp"; mv -f "$1.sdns-tmp" "$1"' \
                "$dst" "$mode" <"$src"
}

# ns_vault STATE_JSON: run the stand-in Vault (tests/integration/vault_server.py) inside the
# namespace as the transient service vault-stand-in.service, plain HTTP on
# http://127.0.0.1:8200 (the namespace's own loopback), its state (secrets, tokens,
# latency, ...) from the host file STATE_JSON (see VaultServer.load_state; tokens go there,
# not on its command line, which the journal records); returns once it listens.
ns_vault() {
        ns_copy_in "$1" /run/vault-stand-in/state.json 0600 || return 1
        # Copied in: the checkout may be under /tmp, which the namespace hides.
        ns_copy_in "$TOP_SRCDIR/tests/integration/vault_server.py" /run/vault-stand-in/vault_server.py 0644 ||
                return 1
        ns_run systemd-run --quiet --unit=vault-stand-in.service --property=Type=exec \
                /usr/bin/python3 /run/vault-stand-in/vault_server.py --port 8200 \
                --state-file /run/vault-stand-in/state.json \
                --ready-file /run/vault-stand-in/ready.json >/dev/null || return 1
        for _ in $(seq 1 100); do
                ns_run test -s /run/vault-stand-in/ready.json && return 0
                sleep 0.1
        done
        ns__fail "ns_vault: the stand-in Vault did not start"
        ns_run journalctl --no-pager -u vault-stand-in.service -n 20 >&2 || true
        return 1
}

# ns_write NS_PATH [MODE] <content: write stdin to a file inside the namespace.
ns_write() {
        local dst=$1 mode=${2:-}
        ns_sh 'set -e; mkdir -p "$(dirname "$1")"; cat >"$1.sdns-tmp"; [ -z "$2" ] || chmod "$2" "$1.sdns-tmp"; mv -f "$1.sdns-tmp" "$1"' \
                "$dst" "$mode"
}

# Stop the namespace and remove every trace of it. Idempotent; safe to call at any time.
ns_shutdown() {
        if [ -n "$NS_LAUNCHER_PID" ]; then
                if [ "${NS_CLEAN_SHUTDOWN:-1}" = 1 ] && [ -n "$NS_PID" ] && ns__alive; then
                        ns__log "poweroff"
                        timeout 10 nsenter --target "$NS_PID" --mount --pid --root --wd \
                                env -i PATH="$NS_PATH" systemctl poweroff --no-block >/dev/null 2>&1 || true
                        for _ in $(seq 1 300); do
                                ns__alive || break
                                sleep 0.05
                        done
                fi
                if ns__alive; then
                        ns__log "SIGKILL"
                        [ -z "$NS_PID" ] || kill -KILL "$NS_PID" 2>/dev/null || true
                        kill -KILL "$NS_LAUNCHER_PID" 2>/dev/null || true
                fi
                wait "$NS_LAUNCHER_PID" 2>/dev/null || true
        fi
        if [ -n "$NS_CGROUP" ] && [ -d "$NS_CGROUP" ]; then
                # Anything left (there should be nothing once PID 1 is gone).
                if [ -e "$NS_CGROUP/cgroup.kill" ]; then
                        echo 1 >"$NS_CGROUP/cgroup.kill" 2>/dev/null || true
                fi
                for _ in $(seq 1 100); do
                        grep -q '^populated 0' "$NS_CGROUP/cgroup.events" 2>/dev/null && break
                        sleep 0.05
                done
                find "$NS_CGROUP" -depth -type d -exec rmdir {} + 2>/dev/null || true
                [ ! -d "$NS_CGROUP" ] || ns__fail "could not remove cgroup $NS_CGROUP" || true
        fi
        if [ -n "$NS_DIR" ] && [ -d "$NS_DIR" ]; then
                if findmnt -rn -o TARGET | grep -qF "$NS_DIR"; then
                        ns__fail "mounts under $NS_DIR leaked to the host; not removing it" || true
                elif [ "${NS_KEEP:-0}" = 1 ]; then
                        printf 'systemd-ns: kept %s\n' "$NS_DIR" >&2
                else
                        rm -rf --one-file-system "$NS_DIR"
                fi
        fi
        NS_PID=
        NS_LAUNCHER_PID=
        NS_CGROUP=
        NS_DIR=
        return 0
}
