#!/bin/bash
# pkg_test: the .deb packages, installed for real into a clean Debian root.
#
#   pkg_test.sh SOURCE_DIR BINARY_DIR
#
# 1. cpack builds corridor_*.deb and corridor-hub_*.deb in BINARY_DIR, and again with Debian
#    revision 2 ("the next version") into a second directory.
# 2. A clean bookworm minbase root (debootstrap, cached as a tarball under
#    /var/cache/corridor-ci/ so repeated runs take seconds) gets the corridor package through
#    apt (which pulls the runtime libraries): files, modes, conffile, data dir; the default config
#    checks OK; the daemon starts from it (in its own network namespace), answers
#    `corridor status` and `corridor diag`, and stops cleanly on SIGTERM.
# 3. The "user" edits the config and leaves data; the upgrade keeps both. Remove keeps config
#    and data, purge removes them. The hub package installs with its key and conffiles.
# 4. arm64: a cross build (ci/toolchain-aarch64.cmake) packaged; dpkg-deb says arm64 and the
#    binary is aarch64.
#
# Needs root, debootstrap, network (first run, and for apt), unshare. Missing pieces: exit 77
# (ctest: skipped) with the reason. CORRIDOR_PKG_SKIP_ARM64=1 skips step 4;
# CORRIDOR_PKG_ARM64_BUILD=DIR packages an existing arm64 build instead of making one.
# Everything it creates lives under one mktemp directory and is removed on exit (trap).
set -u
SRC=$(cd "${1:?source dir}" && pwd)
BIN=$(cd "${2:?binary dir}" && pwd)
CACHE=${CORRIDOR_CI_CACHE:-/var/cache/corridor-ci}
SUITE=bookworm
MIRROR=${CORRIDOR_DEB_MIRROR:-http://deb.debian.org/debian}
ROOT_TAR=$CACHE/$SUITE-minbase.tar

pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
check() { # check "what" cmd...
    local what=$1
    shift
    if "$@"; then ok; else bad "$what"; fi
}
skip() { echo "SKIP: $*"; exit 77; }
step() { echo "--- $* ($(date -u +%T))"; }

[ "$(id -u)" = 0 ] || skip "needs root (chroot, mounts, dpkg in a root)"
for t in cpack dpkg-deb unshare chroot tar file; do
    command -v "$t" >/dev/null || skip "$t is not installed"
done

W=$(mktemp -d /var/tmp/corridor-pkgtest.XXXXXX)
DAEMON_PID=
cleanup() {
    [ -n "$DAEMON_PID" ] && kill "$DAEMON_PID" 2>/dev/null
    # the chroot's mounts live in private mount namespaces (unshare -m): nothing to unmount
    # here, but make sure no process from this test still runs inside the root
    if [ -d "$W/root" ]; then
        for p in /proc/[0-9]*; do
            [ "$(readlink "$p/root" 2>/dev/null)" = "$W/root" ] && kill -9 "${p#/proc/}" 2>/dev/null
        done
    fi
    rm -rf "$W"
}
trap cleanup EXIT

# ---------------------------------------------------------------- 1. packages
step "building packages in $BIN"
if ! (cd "$BIN" && cpack -G DEB -B "$W/pkg1" >"$W/cpack1.log" 2>&1); then
    cat "$W/cpack1.log"
    bad "cpack failed"
    exit 1
fi
if ! (cd "$BIN" && CORRIDOR_PKG_RELEASE=2 cpack -G DEB -B "$W/pkg2" >"$W/cpack2.log" 2>&1); then
    cat "$W/cpack2.log"
    bad "cpack (release 2) failed"
    exit 1
fi
DEB1=$(ls "$W"/pkg1/corridor_*_amd64.deb 2>/dev/null | head -1)
DEB2=$(ls "$W"/pkg2/corridor_*_amd64.deb 2>/dev/null | head -1)
HUB1=$(ls "$W"/pkg1/corridor-hub_*_amd64.deb 2>/dev/null | head -1)
[ -f "$DEB1" ] && [ -f "$DEB2" ] && [ -f "$HUB1" ] || { bad "packages missing: $(ls "$W"/pkg1 "$W"/pkg2)"; exit 1; }
V1=$(dpkg-deb -f "$DEB1" Version)
V2=$(dpkg-deb -f "$DEB2" Version)
echo "packages: $(basename "$DEB1") $(basename "$HUB1") and $V2"
check "version $V2 sorts after $V1" dpkg --compare-versions "$V2" gt "$V1"
check "architecture amd64" test "$(dpkg-deb -f "$DEB1" Architecture)" = amd64
check "corridor Depends names libjansson4" grep -q libjansson4 <<<"$(dpkg-deb -f "$DEB1" Depends)"
check "corridor-hub Depends names nftables" grep -q nftables <<<"$(dpkg-deb -f "$HUB1" Depends)"
check "conffiles of corridor" grep -qx /etc/corridor/corridor.json <(dpkg-deb --ctrl-tarfile "$DEB1" | tar -xO ./conffiles)
for s in postinst prerm postrm; do
    check "$s mode 0755" grep -q "^-rwxr-xr-x .* ./$s\$" <(dpkg-deb --ctrl-tarfile "$DEB1" | tar -tv)
done
contents=$(dpkg-deb -c "$DEB1")
for f in ./usr/bin/corridor ./lib/systemd/system/corridor.service ./etc/corridor/corridor.json; do
    check "corridor package has $f" grep -q " $f\$" <<<"$contents"
done
check "binary stripped" sh -c "dpkg-deb --fsys-tarfile '$DEB1' | tar -xO ./usr/bin/corridor > '$W/corridor.bin' && file '$W/corridor.bin' | grep -q ', stripped'"

# The units, checked by systemd itself against the unpacked packages.
if command -v systemd-analyze >/dev/null; then
    mkdir -p "$W/unpack"
    dpkg-deb -x "$DEB1" "$W/unpack" && dpkg-deb -x "$HUB1" "$W/unpack"
    # The binaries are not installed on this machine, so "is not executable" is expected;
    # anything else (unknown key, bad value, "file:line: ...") is a real problem in a unit.
    out=$(systemd-analyze verify "$W"/unpack/lib/systemd/system/corridor.service \
        "$W"/unpack/lib/systemd/system/corridor-hub.service \
        "$W"/unpack/lib/systemd/system/corridor-collector.service 2>&1 | grep -v "is not executable")
    check "systemd-analyze verify: $out" test -z "$out"
fi

# ---------------------------------------------------------------- 2. a clean root
command -v debootstrap >/dev/null || skip "debootstrap is not installed (apt-get install debootstrap)"
mkdir -p "$CACHE" "$CACHE/apt-archives/partial"
if [ ! -f "$ROOT_TAR" ]; then
    step "creating the cached $SUITE minbase root (first run only)"
    timeout 15 curl -fsI "$MIRROR/dists/$SUITE/Release" >/dev/null 2>&1 ||
        skip "no network to $MIRROR and no cached root $ROOT_TAR"
    t0=$(date +%s)
    tmp=$CACHE/$SUITE-minbase.build.$$
    rm -rf "$tmp"
    if ! debootstrap --variant=minbase "$SUITE" "$tmp" "$MIRROR" >"$W/debootstrap.log" 2>&1; then
        tail -20 "$W/debootstrap.log"
        rm -rf "$tmp"
        skip "debootstrap failed (network?); log above"
    fi
    tar -C "$tmp" -cf "$ROOT_TAR.part" . && mv "$ROOT_TAR.part" "$ROOT_TAR"
    rm -rf "$tmp"
    echo "debootstrap + cache took $(($(date +%s) - t0)) s"
fi
step "unpacking the clean root"
ROOT=$W/root
mkdir -p "$ROOT"
tar -C "$ROOT" -xf "$ROOT_TAR" || { bad "cannot unpack $ROOT_TAR"; exit 1; }
cp /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null
cp "$DEB1" "$DEB2" "$HUB1" "$ROOT/tmp/"
D1=/tmp/$(basename "$DEB1")
D2=/tmp/$(basename "$DEB2")
H1=/tmp/$(basename "$HUB1")

# in_root CMD...: run CMD in the root with /proc, /dev and the apt cache mounted in a private
# mount namespace (the mounts vanish with it, whatever happens to this script).
in_root() {
    unshare --mount --propagation private -- bash -c '
        r=$1; c=$2; shift 2
        mount -t proc proc "$r/proc" && mount --rbind /dev "$r/dev" &&
        mount --bind "$c/apt-archives" "$r/var/cache/apt/archives" &&
        exec chroot "$r" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
            DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 "$@"' \
        in_root "$ROOT" "$CACHE" "$@"
}
apt_install() { # apt_install ARGS...; refreshes stale package lists once
    # --no-install-recommends: proves the package starts with its Depends alone (gpsd and
    # iproute2 are only recommended) and keeps the download small.
    local opts=(-y -q --no-install-recommends -o Dpkg::Options::=--force-confold)
    in_root apt-get install "${opts[@]}" "$@" >"$W/apt.log" 2>&1 && return 0
    in_root apt-get update -q >>"$W/apt.log" 2>&1
    in_root apt-get install "${opts[@]}" "$@" >>"$W/apt.log" 2>&1 ||
        { tail -30 "$W/apt.log"; return 1; }
}
mode_of() { stat -c '%a %U:%G' "$ROOT$1" 2>/dev/null; }

step "installing $(basename "$DEB1") with apt"
t0=$(date +%s)
if ! apt_install "$D1"; then
    grep -q -E "Could not resolve|Temporary failure|Unable to fetch|Failed to fetch" "$W/apt.log" &&
        skip "apt could not download the runtime dependencies (network)"
    bad "apt-get install $D1"
    exit 1
fi
echo "install took $(($(date +%s) - t0)) s"
check "dpkg status installed" grep -q "install ok installed" <<<"$(in_root dpkg-query -W -f='${Status}' corridor)"
check "/usr/bin/corridor 755" test "$(mode_of /usr/bin/corridor)" = "755 root:root"
check "config 644" test "$(mode_of /etc/corridor/corridor.json)" = "644 root:root"
check "unit installed" test -f "$ROOT/lib/systemd/system/corridor.service"
check "data dir 750 root" test "$(mode_of /var/lib/corridor)" = "750 root:root"
check "conffile registered" grep -q /etc/corridor/corridor.json <<<"$(in_root dpkg-query -W -f='${Conffiles}' corridor)"
check "corridor version runs" grep -q "^corridor " <<<"$(in_root corridor version)"
out=$(in_root corridor check-config /etc/corridor/corridor.json 2>&1)
check "default config valid: $out" grep -q "OK: vehicle unconfigured" <<<"$out"

step "starting the daemon from the default config"
# Own network namespace: the default dashboard port and gpsd lookups stay inside the test.
unshare --mount --propagation private --net -- bash -c '
    r=$1
    mount -t proc proc "$r/proc" && mount --rbind /dev "$r/dev" &&
    ip link set lo up 2>/dev/null
    exec chroot "$r" /usr/bin/corridor run --config /etc/corridor/corridor.json' \
    run "$ROOT" >"$W/daemon.log" 2>&1 &
DAEMON_PID=$!
for _ in $(seq 50); do
    [ -S "$ROOT/run/corridor/control.sock" ] && break
    kill -0 "$DAEMON_PID" 2>/dev/null || break
    sleep 0.1
done
sleep 1
if kill -0 "$DAEMON_PID" 2>/dev/null; then ok; else bad "daemon exited: $(cat "$W/daemon.log")"; fi
out=$(in_root corridor status --brief 2>&1)
check "status answers: $out" grep -q "^unconfigured" <<<"$out"
check "status lists modem1" grep -q "^modem1" <<<"$out"
out=$(in_root corridor diag --out /tmp/diag.json 2>&1)
check "diag written: $out" test -s "$ROOT/tmp/diag.json"
check "diag saw the daemon" grep -q '"running": true' "$ROOT/tmp/diag.json"
check "diag file 600" test "$(mode_of /tmp/diag.json)" = "600 root:root"
check "daemon wrote to its data dir" test -e "$ROOT/var/lib/corridor/corridor.lock"
kill -TERM "$DAEMON_PID"
rc=0
for _ in $(seq 100); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$DAEMON_PID" 2>/dev/null; then
    bad "daemon ignored SIGTERM for 10 s"
else
    wait "$DAEMON_PID"
    rc=$?
    check "daemon exit status 0 on SIGTERM (got $rc): $(tail -3 "$W/daemon.log")" test "$rc" = 0
fi
DAEMON_PID=

step "upgrade to $V2 keeps the user's config and data"
sed -i 's/"vehicle_id": "unconfigured"/"vehicle_id": "train-0099"/' "$ROOT/etc/corridor/corridor.json"
check "config edited" grep -q train-0099 "$ROOT/etc/corridor/corridor.json"
echo "trip data" >"$ROOT/var/lib/corridor/user-data.bin"
chmod 0777 "$ROOT/var/lib/corridor" # a wrong mode is put right, the contents stay
if apt_install "$D2"; then ok; else bad "upgrade install"; fi
check "version after upgrade" test "$(in_root dpkg-query -W -f='${Version}' corridor)" = "$V2"
check "edited config kept" grep -q '"vehicle_id": "train-0099"' "$ROOT/etc/corridor/corridor.json"
check "no .dpkg-new/.dpkg-dist left" test -z "$(ls "$ROOT"/etc/corridor/*.dpkg-* 2>/dev/null)"
check "data kept" grep -q "trip data" "$ROOT/var/lib/corridor/user-data.bin"
check "data dir mode restored" test "$(mode_of /var/lib/corridor)" = "750 root:root"
out=$(in_root corridor check-config /etc/corridor/corridor.json 2>&1)
check "upgraded config valid: $out" grep -q "OK: vehicle train-0099" <<<"$out"

step "remove keeps config and data; purge removes them"
if in_root apt-get remove -y -q corridor >"$W/rm.log" 2>&1; then ok; else bad "remove: $(tail "$W/rm.log")"; fi
check "binary gone" test ! -e "$ROOT/usr/bin/corridor"
check "unit gone" test ! -e "$ROOT/lib/systemd/system/corridor.service"
check "config kept after remove" grep -q train-0099 "$ROOT/etc/corridor/corridor.json"
check "data kept after remove" test -f "$ROOT/var/lib/corridor/user-data.bin"
check "status config-files" grep -q "deinstall ok config-files" <<<"$(in_root dpkg-query -W -f='${Status}' corridor)"
# a reinstall of a removed package finds its config again
if apt_install "$D2"; then ok; else bad "reinstall"; fi
check "config back in use after reinstall" grep -q "OK: vehicle train-0099" <<<"$(in_root corridor check-config /etc/corridor/corridor.json 2>&1)"
if in_root apt-get purge -y -q corridor >"$W/purge.log" 2>&1; then ok; else bad "purge: $(tail "$W/purge.log")"; fi
check "config gone after purge" test ! -e "$ROOT/etc/corridor/corridor.json"
check "data gone after purge" test ! -e "$ROOT/var/lib/corridor"
check "package unknown after purge" test -z "$(in_root dpkg-query -W -f='${Status}' corridor 2>/dev/null)"

step "hub package"
if apt_install "$H1"; then
    ok
    check "hub key generated 600" test "$(mode_of /etc/corridor-hub/key)" = "600 root:root"
    check "hub.json conffile" grep -q /etc/corridor-hub/hub.json <<<"$(in_root dpkg-query -W -f='${Conffiles}' corridor-hub)"
    check "nat.sh executable" test -x "$ROOT/usr/lib/corridor/nat.sh"
    check "collector data dir 750" test "$(mode_of /var/lib/corridor-collector)" = "750 root:root"
    out=$(in_root corridor-hub 2>&1)
    check "corridor-hub runs: $out" grep -q "usage: corridor-hub" <<<"$out"
    key1=$(md5sum <"$ROOT/etc/corridor-hub/key")
    if apt_install --reinstall "$H1"; then ok; else bad "hub reinstall"; fi
    check "hub key not replaced" test "$(md5sum <"$ROOT/etc/corridor-hub/key")" = "$key1"
    if in_root apt-get purge -y -q corridor-hub >"$W/hpurge.log" 2>&1; then ok; else bad "hub purge"; fi
    check "hub key kept after purge" test -f "$ROOT/etc/corridor-hub/key"
    check "collector data gone after purge" test ! -e "$ROOT/var/lib/corridor-collector"
else
    bad "apt-get install $H1"
fi

step "maintainer scripts when systemd runs (a recording systemctl)"
# A chroot has no systemd: a systemctl that only records its arguments, plus /run/systemd/system,
# makes the scripts take their "systemd is running" branches, and the recorded calls are checked
# against the exact sequence the real systemd would be given.
SLOG=/tmp/systemctl.log
printf '#!/bin/sh\necho "$*" >> %s\n' "$SLOG" >"$ROOT/usr/bin/systemctl"
chmod 0755 "$ROOT/usr/bin/systemctl"
mkdir -p "$ROOT/run/systemd/system"
calls() { cat "$ROOT$SLOG" 2>/dev/null | tr '\n' ';'; : >"$ROOT$SLOG"; }
if apt_install "$D1"; then ok; else bad "install with systemd"; fi
c=$(calls)
check "install: enable, daemon-reload, start ($c)" test "$c" = "enable corridor.service;daemon-reload;start corridor.service;"
if apt_install "$D2"; then ok; else bad "upgrade with systemd"; fi
c=$(calls)
check "upgrade: no stop, daemon-reload, try-restart ($c)" test "$c" = "daemon-reload;try-restart corridor.service;"
in_root apt-get remove -y -q corridor >/dev/null 2>&1
c=$(calls)
check "remove: stop, daemon-reload ($c)" test "$c" = "stop corridor.service;daemon-reload;"
in_root apt-get purge -y -q corridor >/dev/null 2>&1
c=$(calls)
check "purge: disable, daemon-reload ($c)" test "$c" = "disable corridor.service;daemon-reload;"
rm -rf "$ROOT/usr/bin/systemctl" "$ROOT/run/systemd"

# ---------------------------------------------------------------- 4. arm64
if [ "${CORRIDOR_PKG_SKIP_ARM64:-0}" = 1 ]; then
    echo "arm64: skipped (CORRIDOR_PKG_SKIP_ARM64=1)"
elif ! command -v aarch64-linux-gnu-gcc >/dev/null; then
    echo "arm64: skipped (aarch64-linux-gnu-gcc not installed)"
else
    step "arm64 cross build and packages"
    # CORRIDOR_PKG_ARM64_BUILD: an existing arm64 build dir (CI's stage 5) to package from;
    # otherwise our own, kept between runs so a rebuild is incremental.
    A=${CORRIDOR_PKG_ARM64_BUILD:-$BIN/pkg-arm64}
    if { [ -f "$A/CMakeCache.txt" ] && [ -n "${CORRIDOR_PKG_ARM64_BUILD:-}" ] ||
        cmake -S "$SRC" -B "$A" -G Ninja -DCMAKE_TOOLCHAIN_FILE="$SRC/ci/toolchain-aarch64.cmake" \
            -DBUILD_TESTING=OFF -DCORRIDOR_WERROR=ON >"$W/arm64.log" 2>&1; } &&
        ninja -C "$A" -j2 corridor corridor-hub corridor-collector >>"$W/arm64.log" 2>&1 &&
        (cd "$A" && cpack -G DEB -B "$W/pkg-arm64") >>"$W/arm64.log" 2>&1; then
        ok
        ADEB=$(ls "$W"/pkg-arm64/corridor_*_arm64.deb 2>/dev/null | head -1)
        AHUB=$(ls "$W"/pkg-arm64/corridor-hub_*_arm64.deb 2>/dev/null | head -1)
        check "arm64 packages exist" test -f "$ADEB" -a -f "$AHUB"
        check "dpkg-deb: Architecture arm64" test "$(dpkg-deb -f "$ADEB" Architecture)" = arm64
        check "hub: Architecture arm64" test "$(dpkg-deb -f "$AHUB" Architecture)" = arm64
        check "arm64 Depends computed: $(dpkg-deb -f "$ADEB" Depends)" grep -q "libjansson4" <<<"$(dpkg-deb -f "$ADEB" Depends)"
        mkdir -p "$W/arm64-root"
        dpkg-deb -x "$ADEB" "$W/arm64-root"
        out=$(file "$W/arm64-root/usr/bin/corridor")
        check "binary is aarch64: $out" grep -q "ARM aarch64" <<<"$out"
        if command -v qemu-aarch64 >/dev/null; then
            out=$(qemu-aarch64 -L / "$W/arm64-root/usr/bin/corridor" version 2>&1)
            check "arm64 binary runs under qemu: $out" grep -q "^corridor " <<<"$out"
        fi
    else
        tail -30 "$W/arm64.log"
        bad "arm64 cross build or cpack failed"
    fi
fi

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
