#!/bin/sh
# Build the libFuzzer harnesses with clang (ASan + UBSan) and run each for a while.
#   tests/fuzz/run.sh [SECONDS] [HARNESS...]   (default 30 s each, every harness)
# CI runs every harness briefly (.ci/run); a long run is a benchmark, e.g. an hour in all:
#   tests/fuzz/run.sh 300
# The corpora grow in build-fuzz/corpus-NAME and are kept from run to run; the seeds are in
# tests/fuzz/seeds/NAME (what the tests and the stand-in servers send).
set -e
cd "$(dirname "$0")/../.."
secs=${1:-30}
[ $# -gt 0 ] && shift
# libconfig 1.5 leaks a scanner buffer on some inputs; that is not ours to fix.
export LSAN_OPTIONS="suppressions=$(pwd)/tests/lsan.supp"
command -v clang >/dev/null || { echo "SKIP: clang missing"; exit 77; }
out=build-fuzz
mkdir -p "$out/obj"
[ -x configure ] || ./autogen.sh >/dev/null 2>&1
[ -f build/config.h ] || { mkdir -p build && (cd build && ../configure --quiet); }
# The library's sources: not the programs' (each has a main()). Compiled once, then linked
# with each harness.
SRC=$(grep -o 'src/[a-z0-9/-]*\.c' Makefile.am | grep -v -e main.c -e src/ctl/secretsyncctl.c | sort -u)
CFLAGS="-g -O1 -std=gnu11 -fsanitize=address,undefined -Isrc -include build/config.h $(pkg-config --cflags json-c libsystemd libconfig yaml-0.1)"
LIBS="$(pkg-config --libs libcurl json-c libcrypto libssl libsystemd libconfig yaml-0.1) -lm"
export CFLAGS out
echo "$SRC" | xargs -P "$(nproc)" -I{} sh -c 'o="$out/obj/$(echo {} | tr / _).o"; clang $CFLAGS -fsanitize=fuzzer-no-link -c {} -o "$o"'
OBJ=$(for f in $SRC; do echo "$out/obj/$(echo "$f" | tr / _).o"; done)
harnesses=${*:-$(ls tests/fuzz/fuzz-*.c)}
for h in $harnesses; do
        n=$(basename "$h" .c)
        clang $CFLAGS -fsanitize=fuzzer "tests/fuzz/$n.c" $OBJ -o "$out/$n" $LIBS
        mkdir -p "$out/corpus-$n"
        [ -d "tests/fuzz/seeds/$n" ] && cp -n tests/fuzz/seeds/$n/* "$out/corpus-$n/" 2>/dev/null || true
        echo "== $n ($secs s)"
        rc=0
        (cd "$out" && "./$n" -max_total_time="$secs" -max_len=4096 -print_final_stats=1 "corpus-$n" >"$n.log" 2>&1) || rc=$?
        grep -E "stat::number_of_executed_units|stat::average_exec_per_sec" "$out/$n.log" || true
        if [ "$rc" != 0 ]; then
                grep -A30 -E "ERROR|SUMMARY" "$out/$n.log" | head -n 40
                echo "FAIL: $n found a crash (input saved in $out)"
                failed=1
        fi
done
exit ${failed:-0}
