#!/usr/bin/env bash
# Runs every test: set up, build (tests included), then CTest on all cores.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cd build
# ctest runs a test per core and many tests start alignkit processes of several threads each; with
# more threads than cores, libgomp's long default spin costs a tiny model's step up to 60x
# (docs/performance.md). The alignkit binary bounds it itself by restarting once with
# GOMP_SPINCOUNT set; setting it here spares every test process that restart, and bounds the test
# executables' own spinning too. Waiting policies change no number.
export GOMP_SPINCOUNT=${GOMP_SPINCOUNT:-10000}
ctest --output-on-failure --no-tests=error -j "$(nproc)"
