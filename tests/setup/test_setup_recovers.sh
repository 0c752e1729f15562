#!/usr/bin/env bash
# A configure that fails leaves CMakeCache.txt (with the bad answer cached) and no build.ninja.
# setup.sh must say what failed, and a rerun after the fix must configure without anyone deleting
# the build folder (once, setup.sh skipped CMake whenever a cache existed and every rerun died at
# "ninja: error: loading 'build.ninja'").
set -euo pipefail
src=$1
build=$2
rm -rf "$build"

# The first run: a compiler that is not there (a cached wrong answer, as a missing pkg-config was).
set +e
out=$(ALIGNKIT_BUILD_DIR=$build ALIGNKIT_CMAKE_ARGS=-DCMAKE_CXX_COMPILER=/nonexistent/g++ \
      bash "$src/scripts/setup.sh" configure 2>&1)
rc=$?
set -e
[ $rc -ne 0 ] || { echo "the failing configure exited 0"; exit 1; }
grep -qF "/nonexistent/g++" <<< "$out" || { echo "the failure does not name the missing compiler:"; echo "$out"; exit 1; }
grep -qF "fix what it names and run this command again" <<< "$out" || { echo "no advice:"; echo "$out"; exit 1; }
[ -f "$build/CMakeCache.txt" ] && [ ! -f "$build/build.ninja" ] || { echo "expected a cache without build.ninja"; exit 1; }
echo "first run failed as expected (exit $rc)"

# The rerun after the fix, in the same folder.
out=$(ALIGNKIT_BUILD_DIR=$build bash "$src/scripts/setup.sh" configure 2>&1) || { echo "the rerun failed:"; echo "$out"; exit 1; }
grep -qF "holds a configure that did not finish" <<< "$out" || { echo "the rerun did not say it reconfigured:"; echo "$out"; exit 1; }
[ -f "$build/build.ninja" ] || { echo "the rerun left no build.ninja"; exit 1; }
ninja -C "$build" -n alignkit_cli > /dev/null || { echo "the reconfigured build cannot plan alignkit_cli"; exit 1; }

# A third run has nothing to do: no configure.
out=$(ALIGNKIT_BUILD_DIR=$build bash "$src/scripts/setup.sh" configure 2>&1)
[ -z "$out" ] || { echo "a rerun with nothing to do printed:"; echo "$out"; exit 1; }
echo "the rerun configured the same folder; a third run did nothing"
