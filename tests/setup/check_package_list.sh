#!/usr/bin/env bash
# Every program and library the build looks for (find_package, find_program, pkg_check_modules,
# find_library, find_path in any CMake file) maps to a Debian package that scripts/setup.sh
# installs: the runtime list for what the host and plugins need, the full list for the tests'.
# A new lookup without an entry below fails this test, so nobody forgets the package (pkg-config
# was once missing, and every fresh machine failed at configure).
set -euo pipefail
src=$1

# name looked up -> Debian package; "runtime" marks what the quickstart's set-up must install.
declare -A package=(
  [Torch]=libtorch-dev [Boost]=libboost-dev [program_options]=libboost-program-options-dev
  [filesystem]=libboost-filesystem-dev [tomlplusplus]=libtomlplusplus-dev [fmt]=libfmt-dev
  [nlohmann_json]=nlohmann-json3-dev [PkgConfig]=pkg-config [libpcre2-8]=libpcre2-dev
  [icu-uc]=libicu-dev [ZLIB]=zlib1g-dev [OpenMP]=g++ [xxhash]=libxxhash-dev [xxhash.h]=libxxhash-dev
  [jemalloc]=libjemalloc-dev [ccache]=ccache [GTest]=libgtest-dev [python3]=python3-torch
  [node]=nodejs [clang++]=clang [alignkit]=-
)
declare -A runtime=(
  [Torch]=1 [Boost]=1 [program_options]=1 [filesystem]=1 [tomlplusplus]=1 [fmt]=1 [nlohmann_json]=1
  [PkgConfig]=1 [libpcre2-8]=1 [icu-uc]=1 [ZLIB]=1 [OpenMP]=1 [xxhash]=1 [xxhash.h]=1 [jemalloc]=1 [ccache]=1
)

runtime_list=" $(bash "$src/scripts/setup.sh" --print-packages runtime) "
all_list=" $(bash "$src/scripts/setup.sh" --print-packages all) "
for tool in cmake ninja-build g++; do
  [[ $runtime_list == *" $tool "* ]] || { echo "setup.sh's runtime list lacks $tool"; exit 1; }
done

# The names each lookup asks for: find_package's package and components, pkg_check_modules'
# modules, find_program/find_library/find_path's NAMES (or the single name after the variable).
names=$(cd "$src" && find . -path ./build -prune -o -path '*/node_modules' -prune -o -path ./docs -prune -o \
          \( -name CMakeLists.txt -o -name '*.cmake' \) -print |
        xargs /usr/bin/python3 -c '
import re, sys
for path in sys.argv[1:]:
    text = "\n".join(line.split("#", 1)[0] for line in open(path))
    for kind, args in re.findall(r"\b(find_package|find_program|pkg_check_modules|find_library|find_path)\s*\(([^)]*)\)", text):
        words = args.split()
        if kind == "find_package":
            out = [words[0]]
            if "COMPONENTS" in words:
                out += [w for w in words[words.index("COMPONENTS") + 1:] if w.isidentifier() and not w.isupper()]
        elif kind == "pkg_check_modules":
            out = [w for w in words[1:] if w not in ("REQUIRED", "QUIET", "IMPORTED_TARGET", "GLOBAL")]
        else:
            rest = words[1:]
            if "NAMES" in rest:
                rest = rest[rest.index("NAMES") + 1:]
            stop = [i for i, w in enumerate(rest) if w.isupper()]
            out = rest[:stop[0]] if stop else rest
            out = out[:1]  # the first name is the one the package must provide
        for name in out:
            print(f"{path}\t{name}")
')

status=0
while IFS=$'\t' read -r file name; do
  pkg=${package[$name]:-}
  if [ -z "$pkg" ]; then
    echo "$file looks for '$name', which this test does not map to a Debian package: add it to setup.sh and here"
    status=1
    continue
  fi
  [ "$pkg" = - ] && continue
  if [ -n "${runtime[$name]:-}" ]; then
    [[ $runtime_list == *" $pkg "* ]] || { echo "$file looks for '$name' ($pkg), missing from setup.sh's runtime packages"; status=1; }
  else
    [[ $all_list == *" $pkg "* ]] || { echo "$file looks for '$name' ($pkg), missing from setup.sh's packages"; status=1; }
  fi
  echo "ok: $name -> $pkg ($file)"
done <<< "$names"
exit $status
