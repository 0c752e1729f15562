#!/usr/bin/env bash
# Runs every test: set up, build (tests included), then CTest on all cores.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cd build
# ctest runs a test per core and many tests start alignkit processes of several threads each; with
# more threads than cores, libgomp's spinning workers (OMP_WAIT_POLICY's default) cost a tiny
# model's step up to 50x (docs/performance.md). Passive waiting changes no number.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
ctest --output-on-failure -j "$(nproc)"
