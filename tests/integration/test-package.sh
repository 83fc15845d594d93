#!/bin/bash
# SPDX-License-Identifier: MIT
#
# The Debian package end to end, the way an operator uses it: boot a real systemd as PID 1
# of a private PID+mount namespace whose /usr, /etc and /var are copy-on-write overlays of
# the host's (see systemd-ns.sh: the host is not touched), `dpkg -i` the built .deb there,
# and check through systemctl and journalctl that
#   * the package enables and starts the service with the shipped configuration, which is
#     root:root 0600, and `systemd-analyze verify` finds nothing to say about the unit;
#   * with a real configuration (the fake store, the Chimera secrets), `systemctl start`
#     returns only after readiness (every file is there), with the right owners and modes;
#   * a transient unit with EnvironmentFile= reads an env target back byte-exactly;
#   * `systemctl reload` applies a new configuration, and a bad one leaves the service
#     active with the same PID;
#   * the journal carries the SPEC's fields, `journalctl -x` shows the catalog (compiled by
#     systemd's dpkg trigger), and no secret value appears in it;
#   * reinstalling (the upgrade path) restarts the service and keeps the configuration;
#   * the watchdog kills and restarts a hung (SIGSTOPped) daemon;
#   * `systemctl stop` ends it cleanly; `dpkg --purge` removes the unit and /etc/secretsyncd.
#
# The .deb is $SECRETSYNCD_DEB, or else it is built from this tree with
# packaging/build-deb.sh (DEB_BUILD_OPTIONS=nocheck, no lintian) into a scratch directory.
# Exits 77 (skipped) with the reason when the namespace, overlayfs, root or the build
# tools are unavailable, and inside a package build (which would recurse).

set -euo pipefail

TOP_SRCDIR=${TOP_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
export TOP_SRCDIR
STARTED=$(date +%s)

skip() {
        echo "SKIP: $*" >&2
        exit 77
}
if [ -n "${SECRETSYNCD_IN_PACKAGE_BUILD:-}" ]; then
        skip "running inside a package build (the package under test is being built)"
fi
[ "$(id -u)" = 0 ] || skip "installing a package in a systemd namespace needs root"
command -v python3 >/dev/null 2>&1 || skip "python3 is needed to check JSON output"
command -v dpkg >/dev/null 2>&1 || skip "not a Debian system (no dpkg)"

# shellcheck source=tests/integration/systemd-ns.sh
. "$TOP_SRCDIR/tests/integration/systemd-ns.sh"

# Probe the namespace machinery before spending a minute on building the package.
ns_require

PASSED=0
FAILED=0
WORK=$(mktemp -d "${TMPDIR:-/tmp}/test-package.XXXXXX")
ns_add_cleanup 'rm -rf "$WORK"'

pass() {
        printf 'ok - %s\n' "$*"
        PASSED=$((PASSED + 1))
}
fail() {
        printf 'not ok - %s\n' "$*"
        FAILED=$((FAILED + 1))
}
check() { # check DESCRIPTION COMMAND...
        local d=$1
        shift
        if "$@"; then pass "$d"; else fail "$d"; fi
}
# wait_for SECONDS DESCRIPTION COMMAND...: poll until COMMAND succeeds.
wait_for() {
        local t=$1 d=$2
        shift 2
        for _ in $(seq 1 $((t * 10))); do
                if "$@" >/dev/null 2>&1; then
                        pass "$d"
                        return 0
                fi
                sleep 0.1
        done
        fail "$d (waited ${t}s)"
        return 0
}
summary() {
        echo "# $(($(date +%s) - STARTED))s"
        echo "$PASSED passed, $FAILED failed"
}
die() {
        fail "$*"
        summary
        exit 1
}
# journal_has MATCH...: the unit's journal has an entry with these FIELD=VALUE matches.
journal_has() {
        test -n "$(ns_run journalctl --no-pager -u secretsyncd.service -o cat -n 1 "$@")"
}
unit_prop() { ns_run systemctl show -p "$1" --value secretsyncd.service; }
is_active() { test "$(ns_run systemctl is-active secretsyncd.service)" = active; }

# ---- the package --------------------------------------------------------------------------

if [ -n "${SECRETSYNCD_DEB:-}" ]; then
        [ -f "$SECRETSYNCD_DEB" ] || die "SECRETSYNCD_DEB=$SECRETSYNCD_DEB is not a file"
        DEB=$SECRETSYNCD_DEB
        echo "# package: $DEB (SECRETSYNCD_DEB)"
else
        echo "# building the package: DEB_BUILD_OPTIONS=nocheck packaging/build-deb.sh --no-lintian"
        t0=$(date +%s)
        rc=0
        # Under `make check`, the outer make's flags (-k, -s, its jobserver) are not for
        # the package build's own make.
        DEB=$(env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u MAKEOVERRIDES \
                DEB_BUILD_OPTIONS="nocheck${DEB_BUILD_OPTIONS:+ $DEB_BUILD_OPTIONS}" \
                "$TOP_SRCDIR/packaging/build-deb.sh" --no-lintian -o "$WORK/deb" 2>"$WORK/build-deb.log" |
                tail -n 1) || rc=$?
        case "$rc" in
        0) ;;
        3) skip "cannot build the package: $(grep '^build-deb:' "$WORK/build-deb.log" | tail -n 1)" ;;
        *)
                tail -n 40 "$WORK/build-deb.log" >&2
                die "packaging/build-deb.sh failed (exit $rc)"
                ;;
        esac
        [ -f "$DEB" ] || die "packaging/build-deb.sh printed no .deb"
        echo "# built $(basename "$DEB") in $(($(date +%s) - t0))s"
fi

# ---- secrets and configurations ----------------------------------------------------------

# Every value carries a token that no escaping can hide, to look for in the journal.
tok() { printf '%s%s' "$1" "$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"; }
TOK_PG=$(tok pgTOK)
TOK_PG2=$(tok pgNEW)
TOK_REDIS=$(tok rdTOK)
TOK_MINIO=$(tok mnTOK)
TOK_JWT=$(tok jwTOK)
TOK_GRAFANA=$(tok grTOK)
TOK_EXTRA=$(tok exTOK)
TOK_SLOW=$(tok slTOK)
VAULT_TOKEN=$(tok hvs.vtTOK)
TAB=$(printf '\t')
NL='
'
# Hostile to every quoting scheme: blanks at both ends, both quotes, $, ${}, backquotes,
# backslashes, a newline, a tab, '#', and UTF-8.
PG_PASSWORD=" lead \"dq\" 'sq' \$HOME \${USER} \`id\` \\back\\\\slash${NL}2nd line ✓ ünïcødé #hash${TAB}tab ${TOK_PG} trail "
PG_PASSWORD2="rotated ${TOK_PG2} \$\$ \"\\\"${NL}"
REDIS_PASSWORD="redis-${TOK_REDIS}-\"quoted\"/slash"
MINIO_PASSWORD="minio ${TOK_MINIO} ${NL}two"
JWT_SECRET="jwt-${TOK_JWT}-ünï\\x"
GRAFANA_PASSWORD="grafana ${TOK_GRAFANA} 'admin'"
EXTRA_VALUE="extra-${TOK_EXTRA}"
SLOW_VALUE="slow-${TOK_SLOW}"
ALL_TOKENS="$TOK_PG $TOK_PG2 $TOK_REDIS $TOK_MINIO $TOK_JWT $TOK_GRAFANA $TOK_EXTRA $TOK_SLOW $VAULT_TOKEN"

# quote VALUE: VALUE as a JSON (and libconfig) string literal.
quote() {
        local s=$1
        s=${s//\\/\\\\}
        s=${s//\"/\\\"}
        s=${s//$NL/\\n}
        s=${s//$TAB/\\t}
        printf '"%s"' "$s"
}

# write_config FILE PG_PASSWORD [extra]: Project Chimera with the fake store, and one secret
# from a slow stand-in Vault (so that `systemctl start` returning early would show).
write_config() {
        local file=$1 pg=$2 extra=${3:-}
        {
                cat <<'EOF'
# Project Chimera, test configuration (fake store).
daemon = { refresh_interval = "1h"; log_level = "info"; min_backoff = "1s"; max_backoff = "5s"; };
stores = {
  demo = {
    type = "fake";
    data = (
EOF
                printf '      { key = "chimera/postgres-password"; value = %s; },\n' \
                        "$(quote "{\"password\":$(quote "$pg")}")"
                printf '      { key = "chimera/redis-password"; value = %s; },\n' \
                        "$(quote "{\"password\":$(quote "$REDIS_PASSWORD")}")"
                printf '      { key = "chimera/minio-credentials"; value = %s; },\n' \
                        "$(quote "{\"username\":\"chimera-admin\",\"password\":$(quote "$MINIO_PASSWORD")}")"
                printf '      { key = "chimera/jwt-secret"; value = %s; },\n' \
                        "$(quote "{\"secret\":$(quote "$JWT_SECRET")}")"
                printf '      { key = "chimera/grafana-admin"; value = %s; },\n' \
                        "$(quote "{\"password\":$(quote "$GRAFANA_PASSWORD")}")"
                printf '      { key = "chimera/extra"; value = %s; }\n' "$(quote "$EXTRA_VALUE")"
                cat <<'EOF'
    );
  };
  vault = { type = "vault"; server = "http://127.0.0.1:8200";
            auth = { method = "token"; token_file = "/etc/chimera/vault-token"; }; };
};
secrets = (
  { name = "slow-credentials"; store = "vault";
    data = ( { secret_key = "value"; remote_ref = { key = "chimera/slow"; property = "value"; }; } );
    files = ( { path = "/etc/chimera/slow.secret"; format = "raw"; key = "value"; } ); },
  { name = "postgres-credentials"; store = "demo";
    data = ( { secret_key = "POSTGRES_PASSWORD";
               remote_ref = { key = "chimera/postgres-password"; property = "password"; }; } );
    files = ( { path = "/etc/chimera/postgres.env"; format = "env";
                owner = "chimera"; group = "chimera"; mode = "0400"; } ); },
  { name = "redis-credentials"; store = "demo";
    data = ( { secret_key = "password";
               remote_ref = { key = "chimera/redis-password"; property = "password"; }; } );
    files = ( { path = "/etc/chimera/redis.conf"; format = "template";
                template = "requirepass {{ password }}\n";
                owner = "root"; group = "chimera"; mode = "0640"; } ); },
  { name = "minio-credentials"; store = "demo";
    data_from = ( { extract = { key = "chimera/minio-credentials"; }; } );
    files = ( { path = "/etc/chimera/minio.json"; format = "json"; group = "chimera"; mode = "0640"; } ); },
  { name = "jwt-secret"; store = "demo";
    data = ( { secret_key = "secret";
               remote_ref = { key = "chimera/jwt-secret"; property = "secret"; }; } );
    files = ( { path = "/etc/chimera/jwt.secret"; format = "raw"; key = "secret"; mode = "0400"; } ); },
  { name = "grafana-credentials"; store = "demo";
    data = ( { secret_key = "admin-password";
               remote_ref = { key = "chimera/grafana-admin"; property = "password"; }; } );
    files = ( { path = "/etc/chimera/grafana"; format = "dir"; owner = "chimera"; mode = "0400"; } ); }
EOF
                if [ -n "$extra" ]; then
                        cat <<'EOF'
  ,
  { name = "extra"; store = "demo";
    data = ( { secret_key = "value"; remote_ref = { key = "chimera/extra"; }; } );
    files = ( { path = "/etc/chimera/extra.secret"; format = "raw"; key = "value"; } ); }
EOF
                fi
                echo ");"
        } >"$file"
}
write_config "$WORK/chimera.conf" "$PG_PASSWORD"
write_config "$WORK/chimera-reload.conf" "$PG_PASSWORD2" extra
printf 'secrets = ( { name = "broken"; store = "nope"; ' >"$WORK/broken.conf"
printf '%s' "$JWT_SECRET" >"$WORK/expect-jwt"
printf '%s' "$GRAFANA_PASSWORD" >"$WORK/expect-grafana"
printf '%s' "$EXTRA_VALUE" >"$WORK/expect-extra"
printf '%s' "$PG_PASSWORD" >"$WORK/expect-pg"
printf '%s' "$PG_PASSWORD2" >"$WORK/expect-pg2"
printf 'requirepass %s\n' "$REDIS_PASSWORD" >"$WORK/expect-redis"
printf '%s' "$SLOW_VALUE" >"$WORK/expect-slow"
# The stand-in Vault: the slow secret, a token that may read it, and 2 s for every read.
python3 - "$SLOW_VALUE" "$VAULT_TOKEN" >"$WORK/vault-state.json" <<'EOF'
import json, sys
print(json.dumps({"put_secret": [{"path": "chimera/slow", "data": {"value": sys.argv[1]}}],
                  "set_policy": [{"name": "chimera", "rules": {"secret/data/chimera/*": ["read"]}}],
                  "create_token": [{"id": sys.argv[2], "policies": ["chimera"]}],
                  "set_latency": [{"delay_ms": 2000}]}))
EOF

# What of the host the test could touch if the overlays did not hold, to compare after.
host_state() {
        local p
        for p in /etc/secretsyncd /lib/systemd/system/secretsyncd.service \
                /usr/lib/systemd/system/secretsyncd.service /usr/sbin/secretsyncd \
                /etc/systemd/system/multi-user.target.wants/secretsyncd.service \
                /var/lib/dpkg/info/secretsyncd.list /var/lib/secretsyncd /etc/chimera \
                /usr/lib/systemd/catalog/secretsyncd.catalog; do
                if [ -e "$p" ] || [ -L "$p" ]; then echo "present $p"; else echo "absent $p"; fi
        done
        dpkg-query -W -f='${db:Status-Abbrev} ${Version}\n' secretsyncd 2>/dev/null || echo "not known to dpkg"
        getent passwd chimera || echo "no chimera user"
        stat -c '%n %s %Y' /usr/sbin/policy-rc.d 2>/dev/null || true
}
host_state >"$WORK/host-before"

# ---- boot, install ------------------------------------------------------------------------

ns_boot
echo "# namespace booted in ${NS_BOOT_SECONDS}s ($NS_BOOT_STATE)"

# A container image's policy-rc.d ("exit 101": never start services) is not what a
# machine with systemd has; remove it in the overlay, so the package's maintainer
# scripts start the service as they would on a real host.
if ns_run test -e /usr/sbin/policy-rc.d; then
        echo "# removing the image's /usr/sbin/policy-rc.d inside the namespace"
        ns_run rm -f /usr/sbin/policy-rc.d
fi

ns_copy_in "$DEB" "/var/tmp/$(basename "$DEB")" 0644
t0=$(date +%s)
if ! ns_run env DEBIAN_FRONTEND=noninteractive dpkg -i "/var/tmp/$(basename "$DEB")" >"$WORK/dpkg-i.log" 2>&1; then
        cat "$WORK/dpkg-i.log" >&2
        die "dpkg -i $(basename "$DEB")"
fi
pass "dpkg -i $(basename "$DEB") ($(($(date +%s) - t0))s)"
check "dpkg: installed" test "$(ns_run dpkg-query -W -f='${db:Status-Abbrev}' secretsyncd)" = "ii "
check "the service is enabled" test "$(ns_run systemctl is-enabled secretsyncd.service)" = enabled
check "the service was started by the package and is active" is_active
check "readiness with the shipped configuration (no secrets): status text set" \
        test -n "$(unit_prop StatusText)"
check "/etc/secretsyncd/secretsyncd.conf is root:root 0600" \
        test "$(ns_run stat -c '%a %U %G' /etc/secretsyncd/secretsyncd.conf)" = "600 root root"
conffiles=$(ns_run dpkg-query -W -f='${Conffiles}\n' secretsyncd)
check "secretsyncd.conf is a conffile" grep -q '^ /etc/secretsyncd/secretsyncd.conf ' <<<"$conffiles"
check "/usr/sbin/secretsyncd is installed 0755" \
        test "$(ns_run stat -c '%a %U' /usr/sbin/secretsyncd)" = "755 root"
fragment=$(unit_prop FragmentPath)
check "the unit is in systemd's unit directory ($fragment)" \
        grep -qxE '(/usr)?/lib/systemd/system/secretsyncd.service' <<<"$fragment"
check "examples in /usr/share/doc/secretsyncd/examples" ns_run test -s /usr/share/doc/secretsyncd/examples/chimera.conf
check "man pages installed" ns_run test -e /usr/share/man/man8/secretsyncd.8.gz -a -e /usr/share/man/man5/secretsyncd.conf.5.gz
check "/usr/bin/secretsyncctl is installed 0755, with its man page and bash completion" \
        test "$(ns_run stat -c '%a %U' /usr/bin/secretsyncctl)" = "755 root" -a \
        "$(ns_sh 'test -e /usr/share/man/man1/secretsyncctl.1.gz && test -e /usr/share/bash-completion/completions/secretsyncctl && echo yes')" = yes
check "StateDirectory: /var/lib/secretsyncd is 0700" \
        test "$(ns_run stat -c '%a %U' /var/lib/secretsyncd)" = "700 root"
check "RuntimeDirectory: /run/secretsyncd is 0700" \
        test "$(ns_run stat -c '%a %U' /run/secretsyncd)" = "700 root"
# The catalog was compiled by systemd's dpkg trigger on /usr/lib/systemd/catalog.
check "catalog compiled on installation (dpkg trigger): every MESSAGE_ID listed" \
        test "$(ns_run journalctl --list-catalog | grep -c ' secretsyncd: ')" = \
        "$(ns_run grep -c '^-- ' /usr/lib/systemd/catalog/secretsyncd.catalog)"
if ns_run systemd-analyze verify secretsyncd.service >"$WORK/verify.txt" 2>&1 && [ ! -s "$WORK/verify.txt" ]; then
        pass "systemd-analyze verify secretsyncd.service: clean (Documentation= man pages found)"
else
        sed 's/^/  | /' "$WORK/verify.txt"
        fail "systemd-analyze verify secretsyncd.service"
fi

# ---- a real configuration -----------------------------------------------------------------

ns_run systemctl stop secretsyncd.service
ns_sh 'groupadd --system chimera && useradd --system --gid chimera --no-create-home --shell /usr/sbin/nologin chimera' ||
        die "cannot create the chimera user in the namespace"
ns_run install -d -m 0755 -o root -g root /etc/chimera
ns_copy_in "$WORK/chimera.conf" /etc/secretsyncd/secretsyncd.conf 0600
printf '%s\n' "$VAULT_TOKEN" | ns_write /etc/chimera/vault-token 0600
ns_vault "$WORK/vault-state.json" || die "cannot start the stand-in Vault in the namespace"
# What an operator adds (etc/examples/dropin-readwritepaths.conf), and the test's: a short
# watchdog (fed at 1s, so a 2s limit shows both a fed and a starved one) and aborts that
# cannot take long.
ns_write /etc/systemd/system/secretsyncd.service.d/targets.conf 0644 <<'EOF'
[Service]
ReadWritePaths=/etc/chimera
EOF
ns_write /etc/systemd/system/secretsyncd.service.d/90-test.conf 0644 <<'EOF'
[Service]
WatchdogSec=2s
TimeoutStartSec=30s
TimeoutAbortSec=10s
EOF
ns_run systemctl daemon-reload
check "configuration valid (secretsyncd --check-config)" ns_run secretsyncd --check-config

if ! NS_RUN_TIMEOUT=60 ns_run systemctl start secretsyncd.service; then
        ns_run systemctl --no-pager status secretsyncd.service || true
        die "systemctl start secretsyncd (with the Chimera configuration)"
fi
# READY=1 only after the first round: once start has returned, every file is there, also
# the one whose store takes 2 s to answer.
missing=
for f in /etc/chimera/postgres.env /etc/chimera/redis.conf /etc/chimera/minio.json \
        /etc/chimera/jwt.secret /etc/chimera/grafana/admin-password /etc/chimera/slow.secret; do
        ns_run test -e "$f" || missing="$missing $f"
done
check "systemctl start returned after readiness: every target exists${missing:+ (missing:$missing)}" test -z "$missing"
check "is-active" is_active
MAINPID=$(unit_prop MainPID)
check "main PID known ($MAINPID)" test "${MAINPID:-0}" -gt 0
check "watchdog armed: WatchdogUSec=2s" test "$(unit_prop WatchdogUSec)" = 2s

stat_of() { ns_run stat -c '%a %U %G %F' "$1"; }
check "postgres.env is 0400 chimera:chimera" test "$(stat_of /etc/chimera/postgres.env)" = "400 chimera chimera regular file"
check "redis.conf is 0640 root:chimera" test "$(stat_of /etc/chimera/redis.conf)" = "640 root chimera regular file"
check "minio.json is 0640 root:chimera" test "$(stat_of /etc/chimera/minio.json)" = "640 root chimera regular file"
check "jwt.secret is 0400 root:root" test "$(stat_of /etc/chimera/jwt.secret)" = "400 root root regular file"
check "grafana/admin-password is 0400 chimera (through ..data)" \
        test "$(ns_run stat -L -c '%a %U' /etc/chimera/grafana/admin-password)" = "400 chimera"
ns_run cat /etc/chimera/slow.secret >"$WORK/got-slow" || true
check "raw: slow.secret from the stand-in Vault" cmp -s "$WORK/expect-slow" "$WORK/got-slow"
ns_run cat /etc/chimera/jwt.secret >"$WORK/got-jwt" || true
check "raw: jwt.secret byte-exact" cmp -s "$WORK/expect-jwt" "$WORK/got-jwt"
ns_run cat /etc/chimera/redis.conf >"$WORK/got-redis" || true
check "template: redis.conf as expected" cmp -s "$WORK/expect-redis" "$WORK/got-redis"
ns_run cat /etc/chimera/grafana/admin-password >"$WORK/got-grafana" || true
check "dir: admin-password byte-exact" cmp -s "$WORK/expect-grafana" "$WORK/got-grafana"
ns_run cat /etc/chimera/minio.json >"$WORK/got-minio" || true
check "json: minio.json" python3 -c '
import json, sys
d = json.load(open(sys.argv[1], encoding="utf-8"))
assert d == {"username": "chimera-admin", "password": sys.argv[2]}, d' "$WORK/got-minio" "$MINIO_PASSWORD"

# env: a transient unit reads it through EnvironmentFile=. printenv adds one newline.
envfile_value() { # envfile_value OUT: POSTGRES_PASSWORD as a systemd unit sees it
        ns_run systemd-run --quiet --wait --pipe -p EnvironmentFile=/etc/chimera/postgres.env \
                /usr/bin/printenv POSTGRES_PASSWORD >"$1" || true
        python3 -c 'import sys; p = sys.argv[1]; d = open(p, "rb").read()
open(p, "wb").write(d[:-1] if d.endswith(b"\n") else d + b"<no newline>")' "$1"
}
envfile_value "$WORK/got-pg"
check "env: a transient unit with EnvironmentFile= reads the password back byte-exactly" \
        cmp -s "$WORK/expect-pg" "$WORK/got-pg"

# ---- reload -------------------------------------------------------------------------------

ns_copy_in "$WORK/chimera-reload.conf" /etc/secretsyncd/secretsyncd.conf 0600
check "systemctl reload (new configuration)" ns_run systemctl reload secretsyncd.service
wait_for 15 "reload: the new secret's file appears" ns_run test -e /etc/chimera/extra.secret
ns_run cat /etc/chimera/extra.secret >"$WORK/got-extra" || true
check "reload: extra.secret byte-exact" cmp -s "$WORK/expect-extra" "$WORK/got-extra"
pg2_ok() {
        envfile_value "$WORK/got-pg2"
        cmp -s "$WORK/expect-pg2" "$WORK/got-pg2"
}
wait_for 15 "reload: the rotated password reads back through EnvironmentFile=" pg2_ok
wait_for 10 "journal: SECRETSYNC_ACTION=reloaded" journal_has SECRETSYNC_ACTION=reloaded
check "reload: same main PID" test "$(unit_prop MainPID)" = "$MAINPID"

ns_copy_in "$WORK/broken.conf" /etc/secretsyncd/secretsyncd.conf 0600
ns_run systemctl reload secretsyncd.service || fail "systemctl reload (bad configuration) returned an error"
wait_for 15 "journal: SECRETSYNC_ACTION=reload-rejected" journal_has SECRETSYNC_ACTION=reload-rejected
sleep 1
check "bad configuration: still active" is_active
check "bad configuration: same main PID" test "$(unit_prop MainPID)" = "$MAINPID"
check "bad configuration: files kept" ns_run test -e /etc/chimera/extra.secret
# Back to a good file, for the restart that the watchdog causes below.
ns_copy_in "$WORK/chimera-reload.conf" /etc/secretsyncd/secretsyncd.conf 0600

# ---- journal ------------------------------------------------------------------------------

ns_run journalctl --no-pager -u secretsyncd.service -o json >"$WORK/journal.json"
check "journal: SYSLOG_IDENTIFIER, MESSAGE_ID, SECRETSYNC_ACTION, _SECRET, _TARGET" python3 - "$WORK/journal.json" <<'EOF'
import json, sys
entries = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8") if l.strip()]
ours = [e for e in entries if e.get("SYSLOG_IDENTIFIER") == "secretsyncd"]
assert ours, "no entry with SYSLOG_IDENTIFIER=secretsyncd"
assert all(len(e.get("MESSAGE_ID", "")) == 32 for e in ours if "SECRETSYNC_ACTION" in e)
actions = {e.get("SECRETSYNC_ACTION") for e in ours}
for a in ("fetched", "written", "reloaded", "reload-rejected"):
    assert a in actions, (a, actions)
written = [e for e in ours if e.get("SECRETSYNC_ACTION") == "written"]
targets = {e.get("SECRETSYNC_TARGET") for e in written}
for t in ("/etc/chimera/postgres.env", "/etc/chimera/redis.conf", "/etc/chimera/minio.json",
          "/etc/chimera/jwt.secret", "/etc/chimera/grafana", "/etc/chimera/extra.secret"):
    assert t in targets, (t, targets)
for e in written:
    assert e.get("MESSAGE_ID") == "1e9255c1cbb04d11b82373a6dcfa8afb", e
    assert e.get("SECRETSYNC_SECRET") and e.get("SECRETSYNC_STORE") == (
        "vault" if e["SECRETSYNC_SECRET"] == "slow-credentials" else "demo"), e
    assert e.get("_SYSTEMD_UNIT") == "secretsyncd.service", e
pg = [e for e in written if e["SECRETSYNC_TARGET"] == "/etc/chimera/postgres.env"]
assert pg[0]["SECRETSYNC_SECRET"] == "postgres-credentials", pg
EOF
check "journal: each event's MESSAGE_ID is its kind's in the installed catalog" \
        python3 "$TOP_SRCDIR/tests/integration/check-message-ids.py" "$WORK/journal.json" \
        <(ns_run cat /usr/lib/systemd/catalog/secretsyncd.catalog) \
        started fetched written auth-ok reloaded reload-rejected
ns_run journalctl --no-pager -x -u secretsyncd.service >"$WORK/journal-x.txt" || true
check "journalctl -x: catalog subject with the fields filled in" \
        grep -q 'Subject: Secret postgres-credentials written to /etc/chimera/postgres.env' "$WORK/journal-x.txt"
check "journalctl -x: catalog body" grep -q 'replaced atomically' "$WORK/journal-x.txt"

# ---- upgrade (the same version again) ------------------------------------------------------

if ns_run env DEBIAN_FRONTEND=noninteractive dpkg -i "/var/tmp/$(basename "$DEB")" >"$WORK/dpkg-i2.log" 2>&1; then
        pass "dpkg -i again (upgrade path)"
else
        cat "$WORK/dpkg-i2.log" >&2
        fail "dpkg -i again (upgrade path)"
fi
check "upgrade: the service was restarted (new main PID) and is active" \
        sh -c 'test "$1" != "$2" && test "$3" = active' sh "$(unit_prop MainPID)" "$MAINPID" \
        "$(ns_run systemctl is-active secretsyncd.service)"
ns_run cat /etc/secretsyncd/secretsyncd.conf >"$WORK/conf-after-upgrade" || true
check "upgrade: the administrator's configuration kept, root:root 0600" \
        sh -c 'cmp -s "$1" "$2" && test "$3" = "600 root root"' sh "$WORK/chimera-reload.conf" \
        "$WORK/conf-after-upgrade" "$(ns_run stat -c '%a %U %G' /etc/secretsyncd/secretsyncd.conf)"
MAINPID=$(unit_prop MainPID)

# ---- watchdog -----------------------------------------------------------------------------

sleep 2.5 # more than WatchdogSec=2s
check "watchdog fed: still active after WatchdogSec, same PID" \
        test "$(ns_run systemctl is-active secretsyncd.service) $(unit_prop MainPID)" = "active $MAINPID"
NRESTARTS=$(unit_prop NRestarts)
ns_run kill -STOP "$MAINPID"
# WatchdogSec=2s, then SIGABRT (+SIGCONT), then RestartSec=5s of the shipped unit.
restarted() {
        local pid
        pid=$(unit_prop MainPID)
        [ "${pid:-0}" -gt 0 ] && [ "$pid" != "$MAINPID" ] && is_active
}
wait_for 30 "watchdog: the hung daemon was killed and restarted (new main PID, active)" restarted
NEWPID=$(unit_prop MainPID)
check "watchdog: NRestarts increased ($NRESTARTS -> $(unit_prop NRestarts))" \
        test "$(unit_prop NRestarts)" -gt "$NRESTARTS"
check "watchdog: the old process is gone" ns_sh "! test -e /proc/$MAINPID"
unit_log=$(ns_run journalctl --no-pager -u secretsyncd.service -o cat)
check "watchdog: 'Watchdog timeout' in the journal" grep -q 'Watchdog timeout' <<<"$unit_log"
MAINPID=$NEWPID

# ---- no secret in the journal, stop ---------------------------------------------------------

ns_run journalctl --no-pager -o export >"$WORK/journal.export"
ns_run systemctl --no-pager show secretsyncd.service >"$WORK/show.txt"
check "leak search works (a token is found in jwt.secret)" grep -aqF "$TOK_JWT" "$WORK/got-jwt"
leaks=
for t in $ALL_TOKENS; do
        for f in journal.export show.txt; do
                grep -aqF "$t" "$WORK/$f" && leaks="$leaks $t:$f"
        done
done
check "no secret value in journalctl -o export or the unit's properties${leaks:+ (found:$leaks)}" test -z "$leaks"

check "systemctl stop" ns_run systemctl stop secretsyncd.service
state=$(ns_run systemctl is-active secretsyncd.service || true)
check "inactive after stop (got: $state)" test "$state" = inactive
check "stop: Result=success (not failed)" test "$(unit_prop Result)" = success
check "stop: main process exited 0" test "$(unit_prop ExecMainStatus)" = 0
check "journal: 'stopping' entry" journal_has MESSAGE_ID=068063212be04885a82423c228923247 _PID="$MAINPID"

# ---- purge --------------------------------------------------------------------------------

ns_run rm -rf /etc/systemd/system/secretsyncd.service.d # the test's drop-ins, not the package's
if ns_run env DEBIAN_FRONTEND=noninteractive dpkg --purge secretsyncd >"$WORK/dpkg-purge.log" 2>&1; then
        pass "dpkg --purge secretsyncd"
else
        cat "$WORK/dpkg-purge.log" >&2
        fail "dpkg --purge secretsyncd"
fi
status=$(ns_run dpkg-query -W -f='${db:Status-Abbrev}' secretsyncd 2>/dev/null || true)
check "purge: not installed any more (status '${status:-unknown}')" sh -c 'case "$1" in "" | pn*) ;; *) exit 1 ;; esac' sh "$status"
check "purge: the unit is gone" ns_sh '! test -e /lib/systemd/system/secretsyncd.service && ! test -e /usr/lib/systemd/system/secretsyncd.service'
check "purge: systemd does not know the unit" \
        test "$(ns_run systemctl show -p LoadState --value secretsyncd.service)" = not-found
check "purge: no enablement symlink" ns_sh '! test -L /etc/systemd/system/multi-user.target.wants/secretsyncd.service'
check "purge: /etc/secretsyncd removed" ns_sh '! test -e /etc/secretsyncd'
check "purge: /var/lib/secretsyncd removed" ns_sh '! test -e /var/lib/secretsyncd'
check "purge: the daemon and catalog are gone" \
        ns_sh '! test -e /usr/sbin/secretsyncd && ! test -e /usr/lib/systemd/catalog/secretsyncd.catalog'

# ---- the host is untouched ------------------------------------------------------------------

ns_dir=$NS_DIR
ns_shutdown
host_state >"$WORK/host-after"
if cmp -s "$WORK/host-before" "$WORK/host-after"; then
        pass "host untouched: no secretsyncd files, unit, dpkg state, chimera user"
else
        diff "$WORK/host-before" "$WORK/host-after" | sed 's/^/  | /'
        fail "host untouched"
fi
check "host: no mount of the namespace left" sh -c "! findmnt -rn -o TARGET,SOURCE | grep -qe '$ns_dir' -e '^[^ ]* sdns-'"
check "host: scratch directory removed" test ! -e "$ns_dir"

summary
[ "$FAILED" = 0 ]
