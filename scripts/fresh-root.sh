#!/usr/bin/env bash
# Runs the README's two commands as a new user would, in a bare Debian 12 root: debootstrap
# (minbase) into a folder, chroot, git clone of this checkout's HEAD, then
#   1. bash scripts/quickstart.sh   (clone to first result: every install, the cold build, the run)
#   2. a failed configure and its repair: pkg-config removed, CMake configured by hand into a
#      second build folder (fails naming PkgConfig), then setup.sh on that same folder
#   3. bash scripts/test.sh
# and prints each step's exit code and time. Root only, opt-in, never part of the test command;
# it takes an hour or more on 2 cores (a cold build twice over, runtime then tests).
#
# usage: sudo bash scripts/fresh-root.sh [ROOT_DIR]   (default /var/tmp/alignkit-fresh-root; reused
#        when it holds a finished debootstrap, so a rerun starts from step 1 on a fresh clone;
#        FRESH=1 starts from a new root)
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "fresh-root: run as root (debootstrap and chroot need it)" >&2; exit 2; }
root=${1:-/var/tmp/alignkit-fresh-root}
mirror=${MIRROR:-http://deb.debian.org/debian}
repo=$PWD

command -v debootstrap >/dev/null ||
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null

mounted=()
cleanup() {
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[i]}" 2>/dev/null || true; done
}
trap cleanup EXIT
mount_in() {  # mount_in ARGS... TARGET
  mkdir -p "${*: -1}"
  mount "$@"
  mounted+=("${*: -1}")
}

results=()
step() {  # step NAME COMMAND...: runs it, records exit code and seconds
  local name=$1 start=$SECONDS rc=0
  shift
  echo "== fresh-root: $name"
  "$@" || rc=$?
  results+=("$(printf '%-44s exit %-3s %6s s' "$name" "$rc" $((SECONDS - start)))")
  echo "== fresh-root: $name: exit $rc in $((SECONDS - start)) s"
  return 0
}

[ "${FRESH:-0}" = 1 ] && rm -rf "$root"
if [ ! -x "$root/usr/bin/apt-get" ] || [ ! -f "$root/.debootstrap-done" ]; then
  rm -rf "$root"
  step "debootstrap bookworm (minbase)" debootstrap --variant=minbase bookworm "$root" "$mirror"
  touch "$root/.debootstrap-done"
fi
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
mount_in -t proc proc "$root/proc"
mount_in --rbind /dev "$root/dev"
mount_in -t tmpfs tmpfs "$root/tmp"

in_root() { chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
                   LANG=C.UTF-8 TERM=dumb bash -euo pipefail -c "$1"; }

# What a user has before the README: git, to clone.
in_root 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends git ca-certificates >/dev/null'
# The clone is made from outside (a worktree's .git points outside the root), at this checkout's HEAD.
rm -rf "$root/root/alignkit"
git clone -q --no-hardlinks "$repo" "$root/root/alignkit"
git -C "$root/root/alignkit" checkout -q "$(git -C "$repo" rev-parse HEAD)"
echo "fresh-root: cloned $(git -C "$repo" rev-parse --short HEAD) into $root/root/alignkit"

step "1. bash scripts/quickstart.sh (clone to result)" in_root 'cd /root/alignkit && bash scripts/quickstart.sh'

probe() {
  in_root 'cd /root/alignkit
    dpkg -r --force-depends pkg-config pkgconf pkgconf-bin >/dev/null 2>&1 || true
    if command -v pkg-config; then echo "pkg-config is still installed"; exit 1; fi
    if cmake -S . -B build-probe -G Ninja > /tmp/probe.log 2>&1; then echo "configure passed without pkg-config"; exit 1; fi
    grep -m1 "Could NOT find PkgConfig" /tmp/probe.log
    test -f build-probe/CMakeCache.txt && test ! -f build-probe/build.ninja
    ALIGNKIT_BUILD_DIR=build-probe bash scripts/setup.sh configure
    test -f build-probe/build.ninja && command -v pkg-config && rm -rf build-probe'
}
step "2. pkg-config missing, then setup.sh again" probe
step "3. bash scripts/test.sh" in_root 'cd /root/alignkit && bash scripts/test.sh'

echo
echo "fresh-root summary ($(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), commit $(git -C "$repo" rev-parse --short HEAD)):"
printf '  %s\n' "${results[@]}"
