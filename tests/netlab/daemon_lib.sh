#!/usr/bin/env bash
# Shared helpers of the netlab tests that run the real daemons (`corridor run`, `corridor-hub`)
# in a lab of their own: routing.sh, provision.sh. Source it after setting CL_PREFIX and NAME,
# then call dl_setup BUILD_DIR [lab.sh up options...].
#   Sets B, LAB, RUN, CORRIDOR, HUB, hubpub/vehpub (after dl_keys); FAIL counts failed checks.
#   check DESCRIPTION COMMAND...   prints ok/FAIL
#   wait_for SECONDS COMMAND...    retries every 250 ms
# Everything started with its pid in $RUN/*.pid is stopped, and the lab torn down, on exit.
set -euo pipefail
DL_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB="$DL_HERE/lab.sh"
INET=10.201.250.2
FAIL=0

check() { if "${@:2}"; then echo "ok   $1"; else echo "FAIL $1"; FAIL=1; fi; }
wait_for() {
    local end=$((SECONDS + $1))
    while ((SECONDS < end)); do "${@:2}" && return 0; sleep 0.25; done
    return 1
}
dl_down() {
    for f in "$RUN"/*.pid; do [[ -e $f ]] && kill "$(cat "$f")" 2>/dev/null || true; done
    sleep 0.3
    "$LAB" down >/dev/null 2>&1 || true
}

# dl_setup BUILD_DIR TOOLS [lab.sh up options...]: checks root, tools and binaries, brings up
# a fresh lab. TOOLS: space-separated commands the test needs (skipped, 77, if missing).
dl_setup() {
    B=$(cd "$1" && pwd)
    export NETLAB_BIN=$B/tests/netlab
    RUN=/tmp/corridor-netlab/${CL_PREFIX%-}-$NAME
    [[ $(id -u) -eq 0 ]] || { echo "$NAME: needs root (skipped)"; exit 77; }
    local t b
    for t in $2; do command -v "$t" >/dev/null || { echo "$NAME: $t missing (skipped)"; exit 77; }; done
    CORRIDOR=$B/firmware/corridor HUB=$B/agg/hub/corridor-hub
    for b in "$CORRIDOR" "$HUB" "$NETLAB_BIN/corridor-linkemu"; do
        [[ -x $b ]] || { echo "$NAME: $b not built"; exit 1; }
    done
    "$LAB" down >/dev/null 2>&1 || true
    rm -rf "$RUN"
    mkdir -p "$RUN"
    trap dl_down EXIT
    "$LAB" up "${@:3}" >"$RUN/lab.log" 2>&1 || { cat "$RUN/lab.log"; exit 1; }
    hubpub=$("$HUB" keygen "$RUN/hub.key")
    vehpub=$("$HUB" keygen "$RUN/veh.key")
}

# The hub's file for one vehicle "train-0042" at 10.77.0.2 (extra JSON keys in $1).
dl_hub_json() {
    cat >"$RUN/hub.json" <<JSON
{"listen": "10.201.0.1:5555", "private_key_file": "$RUN/hub.key", "tun": "hub0",
 "address": "10.77.0.1/16", ${1:-}
 "vehicles": [{"id": "train-0042", "public_key": "$vehpub", "address": "10.77.0.2"}]}
JSON
}
# In a subshell: killing it later prints no job notice.
dl_start_hub() {
    ("$LAB" exec hub "$HUB" run --config "$RUN/hub.json" >>"$RUN/hub.log" 2>&1 &
     echo $! >"$RUN/hub.pid")
}
# corridor status field (jq path), or "" when the daemon does not answer.
dl_status() { "$CORRIDOR" status --socket "$RUN/control.sock" 2>/dev/null | jq -r "$1 // \"\""; }
dl_connected() { [[ $(dl_status .tunnel.hub_state) == connected ]]; }
