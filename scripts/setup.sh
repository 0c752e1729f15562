#!/usr/bin/env bash
# Installs what alignkit needs on Debian 12 and builds it. Idempotent: a second run installs
# nothing and rebuilds only what changed (the build folder and ccache are reused), and a run that
# failed half-way (a package missing, a configure that stopped) is repaired by running it again.
#
# usage: scripts/setup.sh [TARGET]    (run as root, or as a user with sudo)
#   TARGET `runtime`: the host and its plugins, with only the packages they need (the quickstart);
#   `configure`: install and configure, build nothing;
#   anything else (default `all`): also the tests and what they run (Node.js, clang, PyTorch).
# ALIGNKIT_BUILD_DIR (default build) is the build folder; ALIGNKIT_CMAKE_ARGS adds configure
# arguments (e.g. -DCMAKE_PREFIX_PATH=... for another LibTorch).
#        scripts/setup.sh --print-packages [runtime|all]   lists the Debian packages and exits
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages only: what a user's machine and CI reach. Every program and library the build
# looks for (find_program, find_package, pkg_check_modules, find_library) is here; the test
# Setup.PackageListCoversTheBuild checks that against the CMake files.
# - libopenblas0-openmp makes libblas.so.3 OpenBLAS (~30x the reference BLAS on matrix products);
# - pkg-config finds PCRE2 and ICU for the tokenizer; xxhash keys the precomputed-reference cache;
#   jemalloc is the binary's allocator; python3 prints the quickstart's table.
runtime_packages=(cmake ninja-build g++ pkg-config ccache python3
                  libtorch-dev libboost-dev libboost-program-options-dev libboost-filesystem-dev
                  libtomlplusplus-dev libfmt-dev nlohmann-json3-dev libopenblas0-openmp
                  libjemalloc-dev libpcre2-dev libicu-dev zlib1g-dev libxxhash-dev)
# The tests' extra needs: GoogleTest; python3-torch runs the Python references the tests compare
# against; clang builds the libFuzzer targets; libblas3 is the reference BLAS, which a test
# preloads to check the host's warning about it; Node.js runs Hugging Face's own tokenizer and
# chat-template code as the oracle.
test_packages=(libgtest-dev python3-torch python3-numpy clang libclang-rt-14-dev libblas3)

target=${1:-all}
if [ "$target" = --print-packages ]; then
  mode=${2:-all}
  [ "$mode" = runtime ] && echo "${runtime_packages[*]}" || echo "${runtime_packages[*]} ${test_packages[*]} nodejs npm"
  exit 0
fi

packages=("${runtime_packages[@]}")
if [ "$target" != runtime ]; then
  packages+=("${test_packages[@]}")
  # A machine that already has a node (e.g. from nodesource) keeps it.
  command -v node >/dev/null && command -v npm >/dev/null || packages+=(nodejs npm)
fi

# Which of the given packages are installed, one a line, sorted.
# dpkg-query exits 1 when any of them is unknown (on a fresh machine, most are): not an error here.
installed() {
  { dpkg-query -W -f='${Package} ${Status}\n' "$@" 2>/dev/null || true; } | awk '$4 == "installed" { print $1 }' | sort
}
installed_packages() { installed "${packages[@]}"; }
missing=$(comm -13 <(installed_packages) <(printf '%s\n' "${packages[@]}" | sort))
if [ -n "$missing" ]; then
  echo "setup: installing" $missing
  sudo=()
  [ "$(id -u)" -ne 0 ] && sudo=(sudo)
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  # shellcheck disable=SC2086
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
  still=$(comm -13 <(installed_packages) <(printf '%s\n' "${packages[@]}" | sort))
  if [ -n "$still" ]; then
    echo "setup: error: apt-get did not install:" $still >&2
    exit 1
  fi
fi

if [ "$target" != runtime ]; then
  # The oracles' npm packages, pinned by tests/js/package-lock.json; reinstalled only when it changes.
  if [ ! -f tests/js/node_modules/.package-lock.json ] ||
     ! cmp -s tests/js/package-lock.json tests/js/node_modules/.installed-lock.json; then
    (cd tests/js && npm ci --no-audit --no-fund --loglevel=error && cp package-lock.json node_modules/.installed-lock.json)
  fi
fi

# ccache's default folder is per user, so fresh clones on this machine share it; paths under the
# checkout are hashed relative to it, so two clones (or worktrees) hit each other's entries.
export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-5G}
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$PWD} CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-true}

# Configure when the build folder has no complete configure, or when what it was configured with
# changed (a package installed since may turn on the tests or a library; other arguments). A
# configure that stopped leaves CMakeCache.txt without build.ninja; its cached answers ("not
# found", a wrong path) are dropped, so the rerun after the fix succeeds without anyone deleting
# the build folder.
build=${ALIGNKIT_BUILD_DIR:-build}
read -r -a cmake_args <<< "${ALIGNKIT_CMAKE_ARGS:-}"
every_package=("${runtime_packages[@]}" "${test_packages[@]}" nodejs npm)
configured_with() { installed "${every_package[@]}"; echo "cmake arguments: ${cmake_args[*]}"; }
stamp=$build/.configured-with
if [ ! -f "$build/build.ninja" ] || ! cmp -s "$stamp" <(configured_with); then
  if [ ! -f "$build/build.ninja" ] && [ -f "$build/CMakeCache.txt" ]; then
    echo "setup: $build/ holds a configure that did not finish; configuring again"
    rm -rf "$build/CMakeCache.txt" "$build/CMakeFiles"
  fi
  mkdir -p "$build"
  rm -f "$stamp"
  if ! cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "${cmake_args[@]}" > "$build/configure.log" 2>&1; then
    cat "$build/configure.log" >&2
    echo "setup: error: CMake could not configure the build (the log above is in $build/configure.log);" \
         "fix what it names and run this command again" >&2
    exit 1
  fi
  configured_with > "$stamp"
fi
[ "$target" = configure ] || cmake --build "$build" --target "$target"
