#!/bin/sh
# The demo: build secretsyncd, sync the Project Chimera secrets from the fake store into
# files under ./demo-out (one of each format), and show what was written.
set -e
cd "$(dirname "$0")"
top=$(pwd)
sh tests/install-deps.sh --build
if [ ! -x build/secretsyncd ]; then
        [ -x configure ] || ./autogen.sh >/dev/null 2>&1
        mkdir -p build
        (cd build && ../configure --quiet && make -j"$(nproc)" --quiet secretsyncd >/dev/null)
fi

out="$top/demo-out"
# secretsyncd refuses to write under a directory that root does not own or that others
# can write (a checkout in a home directory, say): use a private directory then.
d=$top
while [ "$d" != / ]; do
        if [ "$(stat -c %u "$d")" != 0 ] || { [ -n "$(find "$d" -maxdepth 0 -perm /022)" ] &&
                                               [ -z "$(find "$d" -maxdepth 0 -perm -1000)" ]; }; then
                out=$(mktemp -d /var/tmp/secretsyncd-demo.XXXXXX)/out
                break
        fi
        d=$(dirname "$d")
done
conf="$top/build/demo.conf"
umask 077
sed "s|@OUT@|$out|g" etc/examples/demo.conf > "$conf"
chmod 600 "$conf"

echo "== secretsyncd --once -c $conf"
build/secretsyncd -c "$conf" --once
echo
echo "== what was written ($out)"
find "$out" -mindepth 1 \( -type f -o -type l \) -printf '%M %u:%g %p\n' | sort
echo
for f in postgres.env redis-auth.conf minio.json jwt.key grafana.ini minio/username; do
        printf -- '-- %s\n' "$f"
        cat "$out/$f"
        echo
done
