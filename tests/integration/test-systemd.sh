#!/bin/bash
# SPDX-License-Identifier: MIT
#
# secretsyncd under a real systemd (PID 1 of a private namespace, see systemd-ns.sh):
# the shipped unit and catalog, Type=notify readiness, file targets of every format
# with owners and modes, the journal fields, catalog text and the absence of secret
# values in the journal, EnvironmentFile= read-back, on_change through systemctl from
# inside the sandbox, reload (good and bad configuration), watchdog, clean stop; a
# secret from a slow stand-in Vault (2 s per read) so that a READY=1 sent before the
# first round is over is caught; the MESSAGE_ID of every event against the catalog.
#
# Environment (from `make check`): SECRETSYNCD (the built daemon), TOP_SRCDIR,
# TOP_BUILDDIR. Exits 77 when the daemon or the namespace machinery is missing.

set -euo pipefail

TOP_SRCDIR=${TOP_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
export TOP_SRCDIR

if [ -z "${SECRETSYNCD:-}" ] || [ ! -x "$SECRETSYNCD" ]; then
        echo "SKIP: \$SECRETSYNCD (the built secretsyncd) is not set or not executable" >&2
        exit 77
fi
command -v python3 >/dev/null 2>&1 || {
        echo "SKIP: python3 is needed to check JSON output" >&2
        exit 77
}

# shellcheck source=tests/integration/systemd-ns.sh
. "$TOP_SRCDIR/tests/integration/systemd-ns.sh"

FAILED=0
WORK=$(mktemp -d "${TMPDIR:-/tmp}/test-systemd.XXXXXX")
ns_add_cleanup 'rm -rf "$WORK"'

pass() { printf 'ok   %s\n' "$*"; }
fail() {
        printf 'FAIL %s\n' "$*" >&2
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
        return 0 # recorded; go on with the other checks
}
die() {
        printf 'FAIL %s\n' "$*" >&2
        exit 1
}
# journal_has MATCH...: the unit's journal has an entry with these FIELD=VALUE matches.
journal_has() {
        test -n "$(ns_run journalctl --no-pager -u secretsyncd.service -o cat -n 1 "$@")"
}

UNIT_SRC="$TOP_SRCDIR/systemd/secretsyncd.service.in"
CATALOG_SRC="$TOP_SRCDIR/systemd/secretsyncd.catalog"
mkdir -p "$WORK/unit"
sed -e 's|@sbindir@|/usr/sbin|g' -e 's|@sysconfdir@|/etc|g' "$UNIT_SRC" >"$WORK/unit/secretsyncd.service"

# ---- secrets ----------------------------------------------------------------------------

# Every value carries a token that no escaping can hide, to look for in the journal.
TOK_PG="pgTOK$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
TOK_PG2="pgNEW$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
TOK_REDIS="rdTOK$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
TOK_MINIO="mnTOK$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
TOK_JWT="jwTOK$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
TOK_GRAFANA="grTOK$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
TOK_EXTRA="exTOK$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
TOK_SLOW="slTOK$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
VAULT_TOKEN="hvs.vtTOK$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
TAB=$(printf '\t')
NL='
'
# The PostgreSQL password is hostile to every quoting scheme: leading and trailing
# blanks, both quotes, $, ${}, backquotes, backslashes (single and double), a newline,
# a tab, '#', and UTF-8.
PG_PASSWORD=" lead \"dq\" 'sq' \$HOME \${USER} \`id\` \\back\\\\slash${NL}2nd line ✓ ünïcødé #hash${TAB}tab ${TOK_PG} trail "
PG_PASSWORD2="rotated ${TOK_PG2} \$\$ \"\\\"${NL}"
REDIS_PASSWORD="redis-${TOK_REDIS}-\"quoted\"/slash"
MINIO_PASSWORD="minio ${TOK_MINIO} ${NL}two"
JWT_SECRET="jwt-${TOK_JWT}-ünï\\x"
GRAFANA_PASSWORD="grafana ${TOK_GRAFANA} 'admin'"
EXTRA_VALUE="extra-${TOK_EXTRA}"
SLOW_VALUE="slow-${TOK_SLOW}"
ALL_TOKENS="$TOK_PG $TOK_PG2 $TOK_REDIS $TOK_MINIO $TOK_JWT $TOK_GRAFANA $TOK_EXTRA $TOK_SLOW $VAULT_TOKEN"

# json_str VALUE: VALUE as a JSON string literal.
json_str() {
        local s=$1
        s=${s//\\/\\\\}
        s=${s//\"/\\\"}
        s=${s//$NL/\\n}
        s=${s//$TAB/\\t}
        printf '"%s"' "$s"
}
# lc_str VALUE: VALUE as a libconfig string literal.
lc_str() {
        local s=$1
        s=${s//\\/\\\\}
        s=${s//\"/\\\"}
        s=${s//$NL/\\n}
        s=${s//$TAB/\\t}
        printf '"%s"' "$s"
}

# write_config FILE PG_PASSWORD [extra]: the Project Chimera configuration with the fake
# store, and one secret from the stand-in Vault. At log level debug: the journal is
# searched for every value below.
write_config() {
        local file=$1 pg=$2 extra=${3:-}
        {
                cat <<'EOF'
# Project Chimera, test configuration (fake store).
daemon = {
  refresh_interval = "1h";
  log_level = "debug";
  min_backoff = "1s";
  max_backoff = "5s";
};

stores = {
  demo = {
    type = "fake";
    data = (
EOF
                printf '      { key = "chimera/postgres-password"; value = %s; },\n' \
                        "$(lc_str "{\"password\":$(json_str "$pg")}")"
                printf '      { key = "chimera/redis-password"; value = %s; },\n' \
                        "$(lc_str "{\"password\":$(json_str "$REDIS_PASSWORD")}")"
                printf '      { key = "chimera/minio-credentials"; value = %s; },\n' \
                        "$(lc_str "{\"username\":\"chimera-admin\",\"password\":$(json_str "$MINIO_PASSWORD")}")"
                printf '      { key = "chimera/jwt-secret"; value = %s; },\n' \
                        "$(lc_str "{\"secret\":$(json_str "$JWT_SECRET")}")"
                printf '      { key = "chimera/grafana-admin"; value = %s; },\n' \
                        "$(lc_str "{\"password\":$(json_str "$GRAFANA_PASSWORD")}")"
                printf '      { key = "chimera/extra"; value = %s; }\n' \
                        "$(lc_str "$EXTRA_VALUE")"
                cat <<'EOF'
    );
  };
  vault = {
    type = "vault";
    server = "http://127.0.0.1:8200";
    auth = { method = "token"; token_file = "/etc/secretsyncd/vault-token"; };
  };
};

secrets = (
  {
    name = "slow-credentials";
    store = "vault";
    data = ( { secret_key = "value"; remote_ref = { key = "chimera/slow"; property = "value"; }; } );
    files = ( { path = "/etc/chimera/slow.secret"; format = "raw"; key = "value"; } );
  },
  {
    name = "postgres-credentials";
    store = "demo";
    data = ( { secret_key = "POSTGRES_PASSWORD";
               remote_ref = { key = "chimera/postgres-password"; property = "password"; }; } );
    files = (
      { path = "/etc/chimera/postgres.env"; format = "env";
        owner = "chimera"; group = "chimera"; mode = "0400";
        on_change = [ "systemctl", "try-reload-or-restart", "chimera-db.service" ]; }
    );
  },
  {
    name = "redis-credentials";
    store = "demo";
    data = ( { secret_key = "password";
               remote_ref = { key = "chimera/redis-password"; property = "password"; }; } );
    files = (
      { path = "/etc/chimera/redis.conf"; format = "template";
        template = "requirepass {{ password }}\nmasterauth {{ password | json }}\nb64 {{ password | base64 }}\n";
        owner = "root"; group = "chimera"; mode = "0640"; }
    );
  },
  {
    name = "minio-credentials";
    store = "demo";
    data_from = ( { extract = { key = "chimera/minio-credentials"; }; } );
    files = (
      { path = "/etc/chimera/minio.json"; format = "json"; group = "chimera"; mode = "0640"; }
    );
  },
  {
    name = "jwt-secret";
    store = "demo";
    data = ( { secret_key = "secret";
               remote_ref = { key = "chimera/jwt-secret"; property = "secret"; }; } );
    files = (
      { path = "/etc/chimera/jwt.secret"; format = "raw"; key = "secret"; mode = "0400";
        on_change = [ "/bin/false" ]; }
    );
  },
  {
    name = "grafana-credentials";
    store = "demo";
    data = ( { secret_key = "admin-password";
               remote_ref = { key = "chimera/grafana-admin"; property = "password"; }; } );
    files = (
      { path = "/etc/chimera/grafana"; format = "dir"; owner = "chimera"; mode = "0400"; }
    );
  }
EOF
                if [ -n "$extra" ]; then
                        # extra.secret is new; /var/lib/chimera-outside is outside the
                        # unit's writable paths, so writing there must fail with EROFS.
                        cat <<'EOF'
  ,
  {
    name = "extra";
    store = "demo";
    data = ( { secret_key = "value"; remote_ref = { key = "chimera/extra"; }; } );
    files = ( { path = "/etc/chimera/extra.secret"; format = "raw"; key = "value"; } );
  },
  {
    name = "outside";
    store = "demo";
    data = ( { secret_key = "value"; remote_ref = { key = "chimera/extra"; }; } );
    files = ( { path = "/var/lib/chimera-outside/outside.secret"; format = "raw"; key = "value"; } );
  }
EOF
                fi
                echo ");"
        } >"$file"
}

write_config "$WORK/secretsyncd.conf" "$PG_PASSWORD"
write_config "$WORK/secretsyncd-reload.conf" "$PG_PASSWORD2" extra
printf 'secrets = ( { name = "broken"; store = "nope"; ' >"$WORK/secretsyncd-broken.conf"

# The expected content of the files whose format is fully specified.
printf '%s' "$JWT_SECRET" >"$WORK/expect-jwt"
printf '%s' "$GRAFANA_PASSWORD" >"$WORK/expect-grafana"
printf '%s' "$EXTRA_VALUE" >"$WORK/expect-extra"
printf '%s' "$SLOW_VALUE" >"$WORK/expect-slow"
# The stand-in Vault: the slow secret, a token that may read it, and 2 s for every read.
python3 - "$SLOW_VALUE" "$VAULT_TOKEN" >"$WORK/vault-state.json" <<'EOF'
import json, sys
print(json.dumps({"put_secret": [{"path": "chimera/slow", "data": {"value": sys.argv[1]}}],
                  "set_policy": [{"name": "chimera", "rules": {"secret/data/chimera/*": ["read"]}}],
                  "create_token": [{"id": sys.argv[2], "policies": ["chimera"]}],
                  "set_latency": [{"delay_ms": 2000}]}))
EOF
{
        printf 'requirepass %s\n' "$REDIS_PASSWORD"
        printf 'masterauth %s\n' "$(python3 -c 'import json, sys; print(json.dumps(sys.argv[1], ensure_ascii=False))' "$REDIS_PASSWORD")"
        printf 'b64 %s\n' "$(printf '%s' "$REDIS_PASSWORD" | base64 -w0)"
} >"$WORK/expect-redis"

# ---- boot -------------------------------------------------------------------------------

ns_boot
echo "# namespace booted in ${NS_BOOT_SECONDS}s ($NS_BOOT_STATE)"

# Install what `make install` would, into the namespace's overlays.
ns_copy_in "$SECRETSYNCD" /usr/sbin/secretsyncd 0755
ns_copy_in "${SECRETSYNCCTL:-$(dirname "$SECRETSYNCD")/secretsyncctl}" /usr/bin/secretsyncctl 0755
ns_copy_in "$WORK/unit/secretsyncd.service" /etc/systemd/system/secretsyncd.service 0644
ns_copy_in "$CATALOG_SRC" /usr/lib/systemd/catalog/secretsyncd.catalog 0644
ns_run journalctl --update-catalog || die "journalctl --update-catalog failed"
check "catalog compiles and lists every MESSAGE_ID" \
        test "$(ns_run journalctl --list-catalog | grep -c ' secretsyncd: ')" = \
        "$(grep -c '^-- ' "$CATALOG_SRC")"

ns_sh 'groupadd --system chimera && useradd --system --gid chimera --no-create-home --shell /usr/sbin/nologin chimera' ||
        die "cannot create the chimera user in the namespace"

# The daemon's default configuration path must be the unit's (no -c in ExecStart).
default_conf=$("$SECRETSYNCD" --help 2>&1 | sed -n 's/.*(default \(\/[^)]*\)).*/\1/p' | head -n 1)
if [ -n "$default_conf" ] && [ "$default_conf" != /etc/secretsyncd/secretsyncd.conf ]; then
        # A build with its own --prefix (make distcheck) keeps its configuration under it;
        # point the unit at /etc for this test.
        echo "# note: this build's default configuration is $default_conf; the test's unit passes -c /etc/secretsyncd/secretsyncd.conf"
        printf '[Service]\nExecStart=\nExecStart=/usr/sbin/secretsyncd -c /etc/secretsyncd/secretsyncd.conf\n' |
                ns_write /etc/systemd/system/secretsyncd.service.d/50-config-path.conf 0644
fi

ns_sh 'install -d -m 0755 -o root -g root /etc/chimera /var/lib/chimera-outside && install -d -m 0700 /etc/secretsyncd'
ns_copy_in "$WORK/secretsyncd.conf" /etc/secretsyncd/secretsyncd.conf 0600
printf '%s\n' "$VAULT_TOKEN" | ns_write /etc/secretsyncd/vault-token 0600
ns_vault "$WORK/vault-state.json" || die "cannot start the stand-in Vault in the namespace"
# What an operator adds (documented in the unit), plus test-only tweaks: a short watchdog
# to see it being fed, a short start timeout to fail fast.
ns_write /etc/systemd/system/secretsyncd.service.d/10-targets.conf 0644 <<'EOF'
[Service]
ReadWritePaths=/etc/chimera
EOF
ns_write /etc/systemd/system/secretsyncd.service.d/90-test.conf 0644 <<'EOF'
[Service]
WatchdogSec=2s
TimeoutStartSec=30s
Restart=no
EOF
# A sanitizer build keeps the sandbox, but LeakSanitizer cannot work in it: it stops the
# process's threads with ptrace(), which the seccomp filter and the missing
# CAP_SYS_PTRACE (the daemon is not dumpable) forbid. Leaks are checked by the tests that
# run the daemon outside systemd; here ASan and UBSan still report to the journal.
if grep -aq -e __asan_init -e __ubsan_handle "$SECRETSYNCD"; then
        echo "# sanitizer build: LeakSanitizer disabled inside the unit"
        ns_write /etc/systemd/system/secretsyncd.service.d/91-sanitizers.conf 0644 <<'EOF'
[Service]
Environment=ASAN_OPTIONS=detect_leaks=0:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1
EOF
fi
# The service whose on_change reload the daemon triggers.
ns_write /etc/systemd/system/chimera-db.service 0644 <<'EOF'
[Unit]
Description=Stand-in for the database that reads /etc/chimera/postgres.env
[Service]
ExecStart=/bin/sleep infinity
ExecReload=/bin/sh -c 'date +%%s.%%N >>/run/chimera-db.reloads'
EOF
ns_run systemctl daemon-reload
ns_run systemctl start chimera-db.service || die "cannot start chimera-db.service"

check "systemd-analyze verify (in the namespace)" \
        ns_run systemd-analyze verify --man=no /etc/systemd/system/secretsyncd.service
# The shipped unit as it is, without the drop-ins. (systemd-analyze writes to
# /run/systemd, so it runs in the namespace too.)
ns_copy_in "$WORK/unit/secretsyncd.service" /run/analyze/secretsyncd.service 0644
exposure=$(ns_sh 'cd /run/analyze && systemd-analyze security --offline=true --no-pager secretsyncd.service 2>/dev/null' |
        sed -n 's/.*Overall exposure level for secretsyncd.service: \([0-9.]*\).*/\1/p') || true
if [ -n "$exposure" ]; then
        check "systemd-analyze security: exposure $exposure <= 2.0" \
                awk -v e="$exposure" 'BEGIN { exit !(e <= 2.0) }'
else
        echo "# this systemd-analyze cannot assess units offline; exposure not checked"
fi

# ---- start ------------------------------------------------------------------------------

if ! NS_RUN_TIMEOUT=60 ns_run systemctl start secretsyncd.service; then
        ns_run systemctl --no-pager status secretsyncd.service || true
        ns_run journalctl --no-pager -u secretsyncd.service -n 50 || true
        die "systemctl start secretsyncd failed"
fi
pass "systemctl start secretsyncd"

# READY=1 only after the first round: once start has returned, every file is there, also
# the one whose store takes 2 s to answer.
ready_files_ok=1
for f in /etc/chimera/postgres.env /etc/chimera/redis.conf /etc/chimera/minio.json \
        /etc/chimera/jwt.secret /etc/chimera/grafana/admin-password /etc/chimera/slow.secret; do
        ns_run test -e "$f" || {
                ready_files_ok=0
                echo "  missing right after start: $f" >&2
        }
done
check "every target exists when systemctl start returns (READY=1 after the first round)" test "$ready_files_ok" = 1
check "is-active" test "$(ns_run systemctl is-active secretsyncd.service)" = active
MAINPID=$(ns_run systemctl show -p MainPID --value secretsyncd.service)
check "main PID known ($MAINPID)" test "${MAINPID:-0}" -gt 0
check "status text set" test -n "$(ns_run systemctl show -p StatusText --value secretsyncd.service)"

# The sandbox is in force, and the daemon works in it: only CAP_CHOWN, CAP_DAC_OVERRIDE,
# CAP_FOWNER (0xb), seccomp filter on, no new privileges.
ns_run cat "/proc/$MAINPID/status" >"$WORK/status" || true
check "sandbox: capabilities are chown, dac_override, fowner" \
        grep -Eq '^CapEff:[[:space:]]+0*b$' "$WORK/status"
check "sandbox: bounding set is chown, dac_override, fowner" \
        grep -Eq '^CapBnd:[[:space:]]+0*b$' "$WORK/status"
check "sandbox: seccomp filter and no_new_privs" \
        sh -c "grep -Eq '^Seccomp:[[:space:]]+2$' '$WORK/status' && grep -Eq '^NoNewPrivs:[[:space:]]+1$' '$WORK/status'"

# ---- the files ------------------------------------------------------------------------

stat_of() { ns_run stat -c '%a %U %G %F' "$1"; }
check "postgres.env is 0400 chimera:chimera" test "$(stat_of /etc/chimera/postgres.env)" = "400 chimera chimera regular file"
check "redis.conf is 0640 root:chimera" test "$(stat_of /etc/chimera/redis.conf)" = "640 root chimera regular file"
check "minio.json is 0640 root:chimera" test "$(stat_of /etc/chimera/minio.json)" = "640 root chimera regular file"
check "jwt.secret is 0400 root:root" test "$(stat_of /etc/chimera/jwt.secret)" = "400 root root regular file"

ns_run cat /etc/chimera/slow.secret >"$WORK/got-slow" || true
check "raw: slow.secret from the stand-in Vault" cmp -s "$WORK/expect-slow" "$WORK/got-slow"
ns_run cat /etc/chimera/jwt.secret >"$WORK/got-jwt" || true
check "raw: jwt.secret holds exactly the secret, no newline" cmp -s "$WORK/expect-jwt" "$WORK/got-jwt"
ns_run cat /etc/chimera/redis.conf >"$WORK/got-redis" || true
check "template: redis.conf as expected (plain, json, base64)" cmp -s "$WORK/expect-redis" "$WORK/got-redis"
ns_run cat /etc/chimera/minio.json >"$WORK/got-minio" || true
check "json: minio.json has username and password, sorted" python3 - "$WORK/got-minio" "$MINIO_PASSWORD" <<'EOF'
import json, sys
raw = open(sys.argv[1], encoding="utf-8").read()
d = json.loads(raw)
assert d == {"username": "chimera-admin", "password": sys.argv[2]}, d
assert list(d) == sorted(d), list(d)
EOF

# dir: kubelet's layout.
check "dir: ..data is a symlink to a hidden directory" \
        ns_sh 'l=$(readlink /etc/chimera/grafana/..data) && case "$l" in ..?*) test -d "/etc/chimera/grafana/$l" ;; *) false ;; esac'
check "dir: admin-password is a symlink to ..data/admin-password" \
        test "$(ns_run readlink /etc/chimera/grafana/admin-password)" = "..data/admin-password"
ns_run cat /etc/chimera/grafana/admin-password >"$WORK/got-grafana" || true
check "dir: admin-password content" cmp -s "$WORK/expect-grafana" "$WORK/got-grafana"
check "dir: key file is 0400 chimera" \
        test "$(ns_run stat -L -c '%a %U' /etc/chimera/grafana/admin-password)" = "400 chimera"

# env: read back through systemd's EnvironmentFile= and through sh and bash.
printf '%s' "$PG_PASSWORD" >"$WORK/expect-pg"
ns_run systemd-run --quiet --wait --pipe -p EnvironmentFile=/etc/chimera/postgres.env \
        /usr/bin/printenv POSTGRES_PASSWORD >"$WORK/got-pg-systemd" || true
# printenv adds one newline.
python3 -c 'import sys; d = open(sys.argv[1], "rb").read(); open(sys.argv[1], "wb").write(d[:-1] if d.endswith(b"\n") else d + b"<no newline>")' \
        "$WORK/got-pg-systemd"
check "env: EnvironmentFile= reads POSTGRES_PASSWORD back byte-exactly" cmp -s "$WORK/expect-pg" "$WORK/got-pg-systemd"
ns_sh 'set -a; . /etc/chimera/postgres.env; printf %s "$POSTGRES_PASSWORD"' >"$WORK/got-pg-sh" || true
check "env: sh (. file) reads it back byte-exactly" cmp -s "$WORK/expect-pg" "$WORK/got-pg-sh"
ns_run bash -c 'set -a; . /etc/chimera/postgres.env; printf %s "$POSTGRES_PASSWORD"' >"$WORK/got-pg-bash" || true
check "env: bash (. file) reads it back byte-exactly" cmp -s "$WORK/expect-pg" "$WORK/got-pg-bash"

# on_change: systemctl try-reload-or-restart, from inside the sandbox.
wait_for 15 "on_change reloaded chimera-db.service (systemctl works inside the sandbox)" \
        ns_run test -s /run/chimera-db.reloads

# ---- the journal ------------------------------------------------------------------------

ns_run journalctl --no-pager -u secretsyncd.service -o json >"$WORK/journal-unit.json"
check "journal: an entry per event kind with all fields" python3 - "$WORK/journal-unit.json" <<'EOF'
import json, sys
entries = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8") if l.strip()]
ours = [e for e in entries if e.get("SYSLOG_IDENTIFIER") == "secretsyncd"]
assert ours, "no entry with SYSLOG_IDENTIFIER=secretsyncd"
written = [e for e in ours if e.get("SECRETSYNC_ACTION") == "written"]
assert written, "no SECRETSYNC_ACTION=written entry"
for e in written:
    assert e.get("MESSAGE_ID") == "1e9255c1cbb04d11b82373a6dcfa8afb", e.get("MESSAGE_ID")
    for f in ("SECRETSYNC_SECRET", "SECRETSYNC_TARGET", "SECRETSYNC_STORE"):
        assert e.get(f), (f, e)
    assert e["SECRETSYNC_STORE"] == ("vault" if e["SECRETSYNC_SECRET"] == "slow-credentials" else "demo"), e
targets = {e["SECRETSYNC_TARGET"] for e in written}
for t in ("/etc/chimera/postgres.env", "/etc/chimera/redis.conf", "/etc/chimera/minio.json",
          "/etc/chimera/jwt.secret", "/etc/chimera/grafana"):
    assert t in targets, (t, targets)
pg = [e for e in written if e["SECRETSYNC_TARGET"] == "/etc/chimera/postgres.env"]
assert pg[0]["SECRETSYNC_SECRET"] == "postgres-credentials", pg
keys = {e.get("SECRETSYNC_REMOTE_KEY") for e in ours if e.get("SECRETSYNC_REMOTE_KEY")}
assert "chimera/postgres-password" in keys and "chimera/jwt-secret" in keys, keys
fetched = [e for e in ours if e.get("SECRETSYNC_ACTION") == "fetched"]
assert fetched and all(e.get("MESSAGE_ID") == "4b90018454b14388a4dd4b0dc8812145" for e in fetched)
assert any(e.get("MESSAGE_ID") == "c33e65ac5430432ba4a1d783f0cf2f9c" for e in ours), "no 'started' entry"
runs = [e for e in ours if e.get("SECRETSYNC_ACTION") == "command-run"]
assert runs and runs[0].get("MESSAGE_ID") == "7c23c4e472ba4b1b953305e8a9584564", "no command-run entry"
assert runs[0].get("SECRETSYNC_TARGET") == "/etc/chimera/postgres.env", runs[0]
for e in ours:
    assert e.get("_SYSTEMD_UNIT") == "secretsyncd.service", e.get("_SYSTEMD_UNIT")
EOF

ns_run journalctl --no-pager -x -u secretsyncd.service >"$WORK/journal-x.txt"
check "journalctl -x shows the catalog text with fields filled in" \
        grep -q 'Subject: Secret postgres-credentials written to /etc/chimera/postgres.env' "$WORK/journal-x.txt"
check "journalctl -x shows the catalog body" grep -q 'replaced atomically' "$WORK/journal-x.txt"

# ---- reload -----------------------------------------------------------------------------

ns_copy_in "$WORK/secretsyncd-reload.conf" /etc/secretsyncd/secretsyncd.conf 0600
check "systemctl reload (new configuration)" ns_run systemctl reload secretsyncd.service
# systemd 252 has no Type=notify-reload: `systemctl reload` returns once kill -HUP is
# sent, so wait for the effect.
wait_for 15 "reload: the new secret's file appears" ns_run test -e /etc/chimera/extra.secret
ns_run cat /etc/chimera/extra.secret >"$WORK/got-extra" || true
check "reload: extra.secret content" cmp -s "$WORK/expect-extra" "$WORK/got-extra"
wait_for 15 "reload: a target outside ReadWritePaths fails with EROFS (ERRNO=30)" \
        journal_has SECRETSYNC_ACTION=failed SECRETSYNC_TARGET=/var/lib/chimera-outside/outside.secret ERRNO=30
check "reload: nothing written outside ReadWritePaths" ns_run test ! -e /var/lib/chimera-outside/outside.secret
printf '%s' "$PG_PASSWORD2" >"$WORK/expect-pg2"
pg2_ok() {
        ns_sh 'set -a; . /etc/chimera/postgres.env; printf %s "$POSTGRES_PASSWORD"' >"$WORK/got-pg2" &&
                cmp -s "$WORK/expect-pg2" "$WORK/got-pg2"
}
wait_for 15 "reload: rotated password written to postgres.env" pg2_ok
reloads_ge() {
        test "$(ns_run cat /run/chimera-db.reloads 2>/dev/null | wc -l)" -ge "$1"
}
wait_for 15 "reload: on_change ran again for the rotated password" reloads_ge 2
wait_for 10 "journal: SECRETSYNC_ACTION=reloaded" \
        journal_has SECRETSYNC_ACTION=reloaded MESSAGE_ID=e75064b4f6834088b92ccef9e28b54fc
check "still active after reload" test "$(ns_run systemctl is-active secretsyncd.service)" = active

ns_copy_in "$WORK/secretsyncd-broken.conf" /etc/secretsyncd/secretsyncd.conf 0600
ns_run systemctl reload secretsyncd.service || fail "systemctl reload (broken configuration) returned an error"
wait_for 15 "journal: SECRETSYNC_ACTION=reload-rejected" \
        journal_has SECRETSYNC_ACTION=reload-rejected MESSAGE_ID=cf19323e375d41019370069c55c576e3
sleep 1
check "broken configuration: service still active" test "$(ns_run systemctl is-active secretsyncd.service)" = active
check "broken configuration: same main PID (not restarted)" \
        test "$(ns_run systemctl show -p MainPID --value secretsyncd.service)" = "$MAINPID"
check "broken configuration: files kept" ns_run test -e /etc/chimera/extra.secret

# ---- secretsyncctl ------------------------------------------------------------------------

check "control socket /run/secretsyncd/io.secretsyncd is a socket, root 0600" \
        test "$(ns_run stat -c '%F %a %U' /run/secretsyncd/io.secretsyncd)" = "socket 600 root"
ns_run secretsyncctl status >"$WORK/ctl-status.txt" 2>&1 || true
check "secretsyncctl status lists postgres-credentials as Synced" \
        grep -qE '^postgres-credentials +[^ ]+ +[^ ]+ +Synced' "$WORK/ctl-status.txt"
rc=0
ns_run secretsyncctl reload >"$WORK/ctl-reload.txt" 2>&1 || rc=$?
check "secretsyncctl reload of the broken file: exit 1 with FILE:LINE" \
        test "$rc" = 1 -a -n "$(grep -E '^/etc/secretsyncd/secretsyncd.conf:[0-9]+:' "$WORK/ctl-reload.txt")"
wait_for 10 "status kept in /var/lib/secretsyncd (StateDirectory=)" ns_run test -s /var/lib/secretsyncd/status.json

# ---- watchdog and hygiene ----------------------------------------------------------------

sleep 2.5 # more than WatchdogSec=2s of the test drop-in
check "watchdog fed: still active after WatchdogSec" test "$(ns_run systemctl is-active secretsyncd.service)" = active
check "watchdog fed: WatchdogTimestamp set" \
        test -n "$(ns_run systemctl show -p WatchdogTimestamp --value secretsyncd.service)"

ns_run cat "/proc/$MAINPID/environ" >"$WORK/environ" 2>/dev/null || true
ns_run cat "/proc/$MAINPID/cmdline" >"$WORK/cmdline" 2>/dev/null || true
check "main process environment and command line are readable" test -s "$WORK/environ"

ns_run systemctl --no-pager show secretsyncd.service >"$WORK/show.txt"
ns_run journalctl --no-pager -o json >"$WORK/journal-all.json"
ns_run journalctl --no-pager -o export >"$WORK/journal-all.export"
# Positive control: the search finds a token where it is.
check "leak search works (token found in jwt.secret)" grep -aqF "$TOK_JWT" "$WORK/got-jwt"
leaks=
for tok in $ALL_TOKENS; do
        for f in journal-all.json journal-all.export environ cmdline show.txt; do
                if grep -aqF "$tok" "$WORK/$f"; then
                        leaks="$leaks $tok:$f"
                fi
        done
done
if [ -n "$NS_DIR" ] && [ -f "$NS_DIR/console.log" ]; then
        for tok in $ALL_TOKENS; do
                grep -aqF "$tok" "$NS_DIR/console.log" && leaks="$leaks $tok:console"
        done
fi
check "no secret value in the journal, the unit's properties, or the daemon's environment and command line${leaks:+ (found:$leaks)}" \
        test -z "$leaks"

# ---- stop -------------------------------------------------------------------------------

check "systemctl stop" ns_run systemctl stop secretsyncd.service
state=$(ns_run systemctl is-active secretsyncd.service || true)
check "inactive after stop (got: $state)" test "$state" = inactive
check "not failed after stop" test "$(ns_run systemctl show -p Result --value secretsyncd.service)" = success
check "the control socket is gone after stop" ns_run test ! -e /run/secretsyncd/io.secretsyncd
rc=0
ns_run secretsyncctl status >/dev/null 2>&1 || rc=$?
check "secretsyncctl status after stop: exit 3 (not running)" test "$rc" = 3
check "main process exited 0" test "$(ns_run systemctl show -p ExecMainStatus --value secretsyncd.service)" = 0
check "journal: 'stopping' entry" journal_has MESSAGE_ID=068063212be04885a82423c228923247

# Every event's MESSAGE_ID is the one the catalog documents for its kind. The IDs are a
# fixed contract (operators filter on them), so the table is spelled out here, and each
# must be in the shipped catalog with a subject that names its kind.
ns_run journalctl --no-pager -u secretsyncd.service -o json >"$WORK/journal-final.json"
check "journal: every event kind this test provokes carries its catalog MESSAGE_ID" \
        python3 "$TOP_SRCDIR/tests/integration/check-message-ids.py" "$WORK/journal-final.json" "$CATALOG_SRC" \
        started stopping fetched written unchanged failed auth-ok reloaded reload-rejected command-run command-failed

ns_run journalctl --no-pager -u secretsyncd.service -o cat >"$WORK/journal-unit.txt"
check "no sanitizer report in the daemon's journal" \
        sh -c "! grep -E 'Sanitizer|runtime error:' '$WORK/journal-unit.txt'"

if [ "$FAILED" -ne 0 ]; then
        echo "# $FAILED check(s) failed"
        exit 1
fi
echo "# all checks passed"
exit 0
