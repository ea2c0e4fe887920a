#!/bin/bash
# setup.sh: install everything corridor needs to build, run and test on Debian 12 (as root).
#   ci/setup.sh            build + run + test dependencies for this machine (amd64)
#   ci/setup.sh --arm64    also the arm64 cross toolchain, arm64 -dev packages and qemu-user
# Idempotent: does nothing (and needs no network) when everything is already installed.
set -euo pipefail

want_arm64=0
[ "${1:-}" = "--arm64" ] && want_arm64=1

# Runtime + build: the libraries the design requires, and the ones chosen in docs/dependencies.md.
PKGS="build-essential cmake ninja-build pkg-config git clang llvm libclang-rt-14-dev
      libserialport-dev libgps-dev libsqlite3-dev libcurl4-openssl-dev libmicrohttpd-dev
      libsodium-dev libjansson-dev liblz4-dev libzstd-dev
      gpsd gpsd-clients sqlite3 iproute2 nftables iperf3 socat procps psmisc python3
      ethtool iputils-ping jq file openssl chromium
      libgpiod-dev gpiod libsystemd-dev smartmontools wrk debootstrap dpkg-dev fakeroot
      libmnl-dev libnftables-dev"
ARM_PKGS="gcc-aarch64-linux-gnu libc6-dev:arm64 qemu-user
      libserialport-dev:arm64 libgps-dev:arm64 libsqlite3-dev:arm64 libcurl4-openssl-dev:arm64
      libmicrohttpd-dev:arm64 libsodium-dev:arm64 libjansson-dev:arm64 liblz4-dev:arm64
      libzstd-dev:arm64 libgpiod-dev:arm64 libsystemd-dev:arm64
      libmnl-dev:arm64 libnftables-dev:arm64"

if [ "$(id -u)" != 0 ]; then
    echo "ci/setup.sh: run as root (it installs packages with apt-get)" >&2
    exit 2
fi

missing() {
    local p out=""
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || out="$out $p"
    done
    echo "$out"
}

todo=$(missing $PKGS)
if [ "$want_arm64" = 1 ]; then
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
        dpkg --add-architecture arm64
        todo="$todo $ARM_PKGS"
    else
        todo="$todo $(missing $ARM_PKGS)"
    fi
fi
todo=$(echo $todo)
if [ -z "$todo" ]; then
    echo "ci/setup.sh: all dependencies present"
    exit 0
fi
echo "ci/setup.sh: installing: $todo"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $todo
