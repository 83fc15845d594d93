#!/bin/sh
# Build (if needed) and run the benchmarks; prints figures. --quick for a shorter run.
set -e
cd "$(dirname "$0")/../.."
if [ ! -x build/secretsyncd ]; then
        sh tests/install-deps.sh
        [ -x configure ] || ./autogen.sh >/dev/null 2>&1
        mkdir -p build && (cd build && ../configure --quiet && make -j"$(nproc)" --quiet secretsyncd secretsyncctl >/dev/null)
fi
SECRETSYNCD="$(pwd)/build/secretsyncd" python3 tests/bench/bench.py "$@"
SECRETSYNCD="$(pwd)/build/secretsyncd" python3 tests/bench/bench-aws.py || [ $? = 77 ]
SECRETSYNCD="$(pwd)/build/secretsyncd" python3 tests/bench/bench-kube.py
SECRETSYNCD="$(pwd)/build/secretsyncd" python3 tests/bench/bench-clouds.py
SECRETSYNCD="$(pwd)/build/secretsyncd" python3 tests/bench/bench-ctl.py
