#!/bin/bash
# The shipped configuration and every example validate with the real binary; the shipped
# configuration starts and idles with no secrets; the man pages render without warnings.
set -u
D=${SECRETSYNCD:-$(dirname "$0")/../../build/secretsyncd}
SRC=${TOP_SRCDIR:-$(dirname "$0")/../..}
[ -x "$D" ] || { echo "SKIP: daemon binary not built"; exit 77; }
S=$(mktemp -d)
trap 'rm -rf "$S"' EXIT
pass=0 fail=0
ok() { if eval "$2"; then echo "ok - $1"; pass=$((pass+1)); else echo "not ok - $1"; fail=$((fail+1)); fi; }

for f in "$SRC"/etc/secretsyncd.conf "$SRC"/etc/examples/*.conf; do
        case "$f" in *dropin*) continue ;; esac
        install -m 0600 "$f" "$S/x.conf"
        [ "$(basename "$f")" = demo.conf ] && sed -i "s|@OUT@|$S/out|" "$S/x.conf"
        ok "$(basename "$f") passes --check-config" "'$D' -c '$S/x.conf' --check-config 2>'$S/err' || { cat '$S/err'; false; }"
        ok "$(basename "$f") dumps to a fixed point" "'$D' -c '$S/x.conf' --dump-config > '$S/d1.conf' && chmod 600 '$S/d1.conf' && '$D' -c '$S/d1.conf' --dump-config > '$S/d2.conf' && cmp -s '$S/d1.conf' '$S/d2.conf'"
done

install -m 0600 "$SRC/etc/secretsyncd.conf" "$S/idle.conf"
# Its socket and status in the scratch directory, not the host's /run and /var/lib.
sed -i "s|^daemon = {|daemon = { runtime_dir = \"$S/run\"; state_dir = \"$S/state\";|" "$S/idle.conf"
"$D" -c "$S/idle.conf" > "$S/idle.log" 2>&1 &
pid=$!
sleep 1
ok "the shipped configuration starts and idles" "kill -0 $pid"
kill -TERM $pid
wait $pid
ok "... and stops with exit 0" "[ $? = 0 ]"
ok "... having synced nothing" "grep -q '0 secrets' '$S/idle.log'"
ok "... with its socket in its runtime_dir, removed at exit" "grep -q 'idle.conf' '$S/idle.log' && [ -d '$S/run' ] && [ ! -e '$S/run/io.secretsyncd' ]"

if command -v groff >/dev/null; then
        for m in "$SRC"/docs/secretsyncd.8 "$SRC"/docs/secretsyncd.conf.5 "$SRC"/docs/secretsyncctl.1; do
                ok "$(basename "$m") renders without groff warnings" "[ -z \"\$(groff -man -ww -z '$m' 2>&1)\" ]"
        done
else
        echo "# groff missing: man page rendering not checked"
fi
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
