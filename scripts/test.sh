#!/usr/bin/env bash
# Runs every test: set up, build (tests included), then CTest on all cores.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cd build
ctest --output-on-failure -j "$(nproc)"
