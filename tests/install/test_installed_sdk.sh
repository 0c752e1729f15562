#!/usr/bin/env bash
# The plugin author's path, end to end: install alignkit to a prefix, build the out-of-tree
# example plugin (docs/examples/warmup_hold_scheduler) against the *installed* CMake package,
# then have the *installed* host list it and run a recipe that uses it.
#
# usage: test_installed_sdk.sh BUILD_DIR SOURCE_DIR SCRATCH_DIR
set -euo pipefail
build=$1 source=$2 scratch=$3
prefix=$scratch/prefix
example_build=$scratch/example-build

rm -rf "$prefix" "$example_build"
cmake --install "$build" --prefix "$prefix" > "$scratch.install.log"

# The installed tree is self-contained: headers, SDK, host, plugins and the CMake package.
for f in include/alignkit/alignkit.hpp include/alignkit/version.hpp lib/libalignkit.so bin/alignkit \
         lib/alignkit/plugins/libscheduler_cosine.so lib/cmake/alignkit/alignkitConfig.cmake \
         lib/cmake/alignkit/AlignkitPlugin.cmake; do
  [ -e "$prefix/$f" ] || { echo "missing from the install: $f"; exit 1; }
done

launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S "$source/docs/examples/warmup_hold_scheduler" -B "$example_build" -G Ninja \
  -DCMAKE_PREFIX_PATH="$prefix" "${launcher[@]}" > "$scratch.configure.log"
cmake --build "$example_build" > "$scratch.build.log"

host=$prefix/bin/alignkit
plugin=$(find "$example_build" -name 'libwarmup_hold.so' -print -quit)
[ -n "$plugin" ] || { echo "the example did not produce libwarmup_hold.so"; exit 1; }

# Listed by the installed host, found through ALIGNKIT_PLUGIN_PATH, next to the installed plugins.
listing=$(ALIGNKIT_PLUGIN_PATH=$(dirname "$plugin") "$host" plugins --json)
grep -q '"name": "warmup_hold"' <<< "$listing" || { echo "warmup_hold not listed:"; echo "$listing"; exit 1; }
grep -q '"name": "cosine"' <<< "$listing" || { echo "installed plugins not listed:"; echo "$listing"; exit 1; }
grep -q '"refused": \[\]' <<< "$listing" || { echo "something was refused:"; echo "$listing"; exit 1; }

# Used by a recipe that names the plugin file explicitly.
recipe=$scratch/uses_example.toml
cat > "$recipe" <<TOML
[plugins]
paths = ["$plugin"]
[training]
max_steps = 10
[optimizer]
learning_rate = 1.0
[scheduler]
name = "warmup_hold"
warmup_steps = 2
hold_steps = 3
TOML
"$host" recipe check "$recipe"
schedule=$("$host" recipe schedule "$recipe")
echo "$schedule"
# Warmup 2 steps (0, 0.5), hold at 1 through step 4, then decay, reaching 0 only at step 10.
grep -qx '1,0.5,0.5' <<< "$schedule" || { echo "unexpected warmup"; exit 1; }
grep -qx '4,1,1' <<< "$schedule" || { echo "unexpected hold"; exit 1; }
last=$(echo "$schedule" | tail -n 1 | cut -d, -f2)
awk -v v="$last" 'BEGIN { exit !(v > 0 && v < 1) }' || { echo "unexpected decay: $last"; exit 1; }

# A recipe whose options the plugin rejects fails with the plugin's own located error.
sed -i 's/hold_steps = 3/hold_steps = 9/' "$recipe"
if out=$("$host" recipe check "$recipe" 2>&1); then echo "expected a rejection:"; echo "$out"; exit 1; fi
grep -q "$recipe:" <<< "$out" || { echo "error does not name the recipe:"; echo "$out"; exit 1; }
# An online method built the same way: listed with its kind, and its spec read by the planner
# (8 completions per prompt of 32 tokens for 2 prompts: 16 completions in the rollout).
online_build=$scratch/online-build
rm -rf "$online_build"
cmake -S "$source/docs/examples/group_reinforce" -B "$online_build" -G Ninja \
  -DCMAKE_PREFIX_PATH="$prefix" "${launcher[@]}" > "$scratch.online-configure.log"
cmake --build "$online_build" > "$scratch.online-build.log"
online=$(find "$online_build" -name 'libgroup_reinforce.so' -print -quit)
[ -n "$online" ] || { echo "the example did not produce libgroup_reinforce.so"; exit 1; }
listing=$(ALIGNKIT_PLUGIN_PATH=$(dirname "$online") "$host" plugins --json)
grep -q '"kind": "online_method",' <<< "$listing" || { echo "no online_method listed:"; echo "$listing"; exit 1; }
grep -q '"name": "group_reinforce"' <<< "$listing" || { echo "group_reinforce not listed:"; echo "$listing"; exit 1; }
online_recipe=$scratch/uses_online.toml
sed -e "s|build/libgroup_reinforce.so|$online|" -e "s|../../../tests/fixtures|$source/tests/fixtures|" \
  "$source/docs/examples/group_reinforce/recipe.toml" > "$online_recipe"
plan=$("$host" plan "$online_recipe" --json)
grep -q '16 completions (8 per prompt), 32 response tokens' <<< "$plan" ||
  { echo "the plan does not follow the method's spec:"; echo "$plan"; exit 1; }
if out=$("$host" train "$online_recipe" --output "$scratch/online-run" 2>&1); then
  echo "expected train to refuse an online method so far:"; echo "$out"; exit 1
fi
grep -q "'group_reinforce' is an online method" <<< "$out" || { echo "unexpected refusal:"; echo "$out"; exit 1; }
echo "installed SDK: ok"
