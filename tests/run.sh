#!/bin/sh
# Build secretsyncd and run the whole test suite: Check unit suites and integration tests
# that start the real daemon. `tests/run.sh --sanitizers` builds with ASan+UBSan instead.
# Prints "N passed, N failed, N skipped" last; exits non-zero if anything failed. A test
# skips (exit 77) when this machine lacks what it needs, and the reason is printed; with
# SECRETSYNCD_NO_SKIP=1 (CI, whose machine has everything) a skip is a failure too.
set -e
cd "$(dirname "$0")/.."
sh tests/install-deps.sh
flavour=werror
flags="--enable-werror"
if [ "${1:-}" = "--sanitizers" ]; then
        flavour=sanitizers
        flags="--enable-sanitizers --disable-hardening"
fi
./autogen.sh >/dev/null 2>&1
dir="build-test-$flavour"
rm -rf "$dir"
mkdir "$dir"
cd "$dir"
../configure --quiet $flags
make -j"$(nproc)" --quiet >/dev/null
set +e
# libconfig 1.5 leaks a scanner buffer on some inputs; that is not ours to fix.
LSAN_OPTIONS="suppressions=$(cd .. && pwd)/tests/lsan.supp" ASAN_OPTIONS=detect_leaks=1 make -j"$(nproc)" check >check.out 2>&1
rc=$?
set -e
grep -E '^(PASS|FAIL|SKIP|XFAIL|XPASS|ERROR):' check.out || true
for f in $(grep -lE '^:test-result: (FAIL|ERROR)' $(find tests -name '*.trs') 2>/dev/null); do
        echo "---- ${f%.trs}.log"
        tail -n 60 "${f%.trs}.log"
done
pass=$(sed -n 's/^# PASS: *//p' check.out)
fail=$(sed -n 's/^# FAIL: *//p' check.out)
err=$(sed -n 's/^# ERROR: *//p' check.out)
skip=$(sed -n 's/^# SKIP: *//p' check.out)
for f in $(grep -lE '^:test-result: SKIP' $(find tests -name '*.trs') 2>/dev/null); do
        echo "skipped ${f%.trs}:"
        grep '^SKIP' "${f%.trs}.log" | sed 's/^/        /' || echo "        (no reason given)"
done
echo "${pass:-0} passed, $(( ${fail:-0} + ${err:-0} )) failed, ${skip:-0} skipped"
if [ "${SECRETSYNCD_NO_SKIP:-0}" = 1 ] && [ "${skip:-0}" -gt 0 ]; then
        echo "FAIL: ${skip} skipped, and SECRETSYNCD_NO_SKIP=1 allows none (this machine should have everything)"
        [ "$rc" != 0 ] || rc=1
fi
exit $rc
