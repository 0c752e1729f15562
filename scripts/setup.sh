#!/usr/bin/env bash
# Installs what alignkit needs on Debian 12 and builds it. Idempotent: a second run installs
# nothing and rebuilds only what changed (the build folder and ccache are reused).
#
# usage: scripts/setup.sh [TARGET]    (run as root, or as a user with sudo; default: everything)
set -euo pipefail
cd "$(dirname "$0")/.."

target=${1:-all}

# Debian packages only: what a user's machine and CI reach. libopenblas0-openmp makes
# libblas.so.3 OpenBLAS (~30x the reference BLAS on matrix products); libblas3 is the reference
# BLAS itself, which a test preloads to check the host's warning about it. clang builds the
# libFuzzer targets; python3-torch runs the Python reference forward the tests compare against;
# xxhash keys the precomputed-reference cache; jemalloc is the binary's allocator.
packages=(cmake ninja-build g++ ccache python3 python3-torch clang libclang-rt-14-dev
          libtorch-dev libboost-dev libboost-program-options-dev libboost-filesystem-dev
          libtomlplusplus-dev libfmt-dev libgtest-dev nlohmann-json3-dev
          libopenblas0-openmp libblas3 libjemalloc-dev libpcre2-dev libicu-dev zlib1g-dev libxxhash-dev)
# Node.js runs Hugging Face's own tokenizer and chat-template code as the tests' oracle; a machine
# that already has a node (e.g. from nodesource) keeps it.
command -v node >/dev/null && command -v npm >/dev/null || packages+=(nodejs npm)

missing=()
for p in "${packages[@]}"; do
  [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo=()
  [ "$(id -u)" -ne 0 ] && sudo=(sudo)
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The oracles' npm packages, pinned by tests/js/package-lock.json; reinstalled only when it changes.
if [ ! -f tests/js/node_modules/.package-lock.json ] ||
   ! cmp -s tests/js/package-lock.json tests/js/node_modules/.installed-lock.json; then
  (cd tests/js && npm ci --no-audit --no-fund --loglevel=error && cp package-lock.json node_modules/.installed-lock.json)
fi

# ccache's default folder is per user, so fresh clones on this machine share it; paths under the
# checkout are hashed relative to it, so two clones (or worktrees) hit each other's entries.
export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-5G}
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$PWD} CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-true}
[ -f build/CMakeCache.txt ] || cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build --target "$target"
