#!/bin/bash
# Disk full: a tiny tmpfs (in a private mount namespace, so nothing leaks onto the host)
# holds a good target; the disk fills up; a sync with a bigger value must fail clearly and
# leave the old file intact, with no temporary file left behind.
set -u
D=${SECRETSYNCD:-$(dirname "$0")/../../build/secretsyncd}
[ -x "$D" ] || { echo "SKIP: daemon binary not built"; exit 77; }
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root to mount a tmpfs"; exit 77; }
command -v unshare >/dev/null || { echo "SKIP: unshare missing"; exit 77; }
unshare --mount true 2>/dev/null || { echo "SKIP: cannot create a mount namespace here"; exit 77; }

S=$(mktemp -d /tmp/secretsyncd-diskfull.XXXXXX)
trap 'rm -rf "$S"' EXIT
chmod 755 "$S"
mkdir -m 755 "$S/full"

conf() { # $1: the secret value
        cat > "$S/conf" <<CONF
stores = { demo = { type = "fake"; data = ( { key = "chimera/jwt-secret"; value = "$1"; } ); }; };
secrets = ( { name = "jwt-secret"; store = "demo";
  data = ( { secret_key = "secret"; remote_ref = { key = "chimera/jwt-secret"; }; } );
  files = ( { path = "$S/full/jwt.key"; format = "raw"; key = "secret"; mode = "0400"; } ); } );
CONF
        chmod 600 "$S/conf"
}

big=$(head -c 40000 /dev/zero | tr '\0' 'B')
export D S big
conf "small-good-value"
unshare --mount --propagation private /bin/bash -c '
set -u
fail=0; pass=0
ok() { if eval "$2"; then echo "ok - $1"; pass=$((pass+1)); else echo "not ok - $1"; fail=$((fail+1)); fi; }
mount -t tmpfs -o size=64k,mode=0755 tmpfs "$S/full" || { echo "SKIP: cannot mount tmpfs"; exit 77; }
"$D" -c "$S/conf" --once 2>"$S/err1"
ok "first sync writes the file" "[ \"\$(cat $S/full/jwt.key)\" = small-good-value ]"
# fill the disk
dd if=/dev/zero of="$S/full/filler" bs=1k count=1000 2>/dev/null
sed -i "s/small-good-value/$big/" "$S/conf"
"$D" -c "$S/conf" --once 2>"$S/err2"; rc=$?
ok "sync on a full disk exits 1" "[ $rc = 1 ]"
ok "error names the target and says the disk is full" "grep -q \"$S/full/jwt.key\" $S/err2 && grep -qi \"no space\" $S/err2"
ok "old file intact" "[ \"\$(cat $S/full/jwt.key)\" = small-good-value ]"
ok "old mode intact" "[ \$(stat -c %a $S/full/jwt.key) = 400 ]"
ok "no temporary file left behind" "[ \$(ls -A $S/full | wc -l) = 2 ]"
ok "no secret value in the output" "! grep -q small-good-value $S/err1 $S/err2 && ! grep -q BBBBBBBB $S/err2"
# room again: the next sync succeeds
rm -f "$S/full/filler"
"$D" -c "$S/conf" --once 2>"$S/err3"; rc=$?
ok "after space is freed the sync succeeds" "[ $rc = 0 ] && [ \$(stat -c %s $S/full/jwt.key) = 40000 ]"
umount "$S/full"
echo "$pass passed, $fail failed"
[ $fail = 0 ]
'
