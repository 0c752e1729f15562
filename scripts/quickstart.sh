#!/usr/bin/env bash
# The main job: set up and build alignkit, list its plugins, and check the quickstart recipe.
# (Training itself arrives with the offline-training work; until then the quickstart stops at
# validation, which loads and instantiates every plugin the recipe names.)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh runtime
build/bin/alignkit plugins
build/bin/alignkit recipe check recipes/quickstart.toml
