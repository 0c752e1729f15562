#!/usr/bin/env bash
# Regenerates the generated docs from the code (a test fails while they are stale).
set -euo pipefail
cd "$(dirname "$0")/.."
ALIGNKIT_PLUGIN_PATH= build/bin/alignkit recipe keys > docs/recipe-reference.md
echo "wrote docs/recipe-reference.md"
