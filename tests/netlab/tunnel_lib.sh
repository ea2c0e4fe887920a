#!/usr/bin/env bash
# Shared helpers of the tunnel's network-lab tests (tunnel_*.sh): bring up the lab (lab.sh) under
# its own prefix, generate keys, start corridor-hub in the hub namespace and the stand-alone
# vehicle driver (corridor-tunnel-client) in the vehicle namespace, route the "internet" host
# through the tunnel, and tear everything down on exit. Source it; then call tn_up.
#
# Binaries: $TN_BUILD (a CMake build dir: agg/hub/corridor-hub, tests/tunnel/corridor-tunnel-client,
# tests/netlab/corridor-linkemu) or TN_HUB / TN_CLIENT / NETLAB_BIN individually.
set -euo pipefail
TN_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export CL_PREFIX=${CL_PREFIX:-cl-tn-}
TN_RUN=/tmp/corridor-netlab/${CL_PREFIX%-}-tunnel
LAB="$TN_HERE/lab.sh"
INET=10.201.250.2

[[ $(id -u) -eq 0 ]] || { echo "tunnel netlab: needs root (skipped)"; exit 77; }
command -v iperf3 >/dev/null || { echo "iperf3 missing (skipped)"; exit 77; }

TN_BUILD=${TN_BUILD:-${1:-}}
TN_HUB=${TN_HUB:-$TN_BUILD/agg/hub/corridor-hub}
TN_CLIENT=${TN_CLIENT:-$TN_BUILD/tests/tunnel/corridor-tunnel-client}
if [[ -z ${NETLAB_BIN:-} && -x $TN_BUILD/tests/netlab/corridor-linkemu ]]; then
    export NETLAB_BIN=$TN_BUILD/tests/netlab
fi
for b in "$TN_HUB" "$TN_CLIENT"; do
    [[ -x $b ]] || { echo "tunnel netlab: $b not built"; exit 1; }
done

tn_log() { echo "tunnel: $*" >&2; }

tn_down() {
    [[ -f $TN_RUN/client.pid ]] && kill "$(cat "$TN_RUN/client.pid")" 2>/dev/null || true
    [[ -f $TN_RUN/hub.pid ]] && kill "$(cat "$TN_RUN/hub.pid")" 2>/dev/null || true
    [[ -f $TN_RUN/hub2.pid ]] && kill "$(cat "$TN_RUN/hub2.pid")" 2>/dev/null || true
    sleep 0.2
    "$LAB" down >/dev/null 2>&1 || true
}

# tn_up LINKS SCENARIO [extra client args...]
tn_up() {
    local links=$1 scen=$2
    shift 2
    "$LAB" down >/dev/null 2>&1 || true
    rm -rf "$TN_RUN"
    mkdir -p "$TN_RUN"
    trap tn_down EXIT
    local sargs=()
    [[ -n $scen ]] && sargs=(--scenario "$scen")
    "$LAB" up --links "$links" "${sargs[@]}" >"$TN_RUN/lab.log" 2>&1 || {
        cat "$TN_RUN/lab.log" >&2
        return 1
    }
    local hubpub vehpub
    hubpub=$("$TN_HUB" keygen "$TN_RUN/hub.key")
    vehpub=$("$TN_HUB" keygen "$TN_RUN/veh.key")
    echo "$hubpub" >"$TN_RUN/hub.pub"
    cat >"$TN_RUN/hub.json" <<JSON
{"listen": "10.201.0.1:5555", "private_key_file": "$TN_RUN/hub.key", "tun": "hub0",
 "address": "10.77.0.1/16", "stats_interval_s": ${TN_HUB_STATS_S:-5}, ${TN_HUB_EXTRA:-}
 "vehicles": [{"id": "train-0042", "public_key": "$vehpub", "address": "10.77.0.2"}]}
JSON
    "$LAB" exec hub "$TN_HUB" run --config "$TN_RUN/hub.json" >"$TN_RUN/hub.log" 2>&1 &
    echo $! >"$TN_RUN/hub.pid"
    local largs=() k
    for ((k = 1; k <= links; k++)); do
        largs+=(--link "op$k:veh-l$k:$((k - 1))")
    done
    "$LAB" exec veh "$TN_CLIENT" --tun corr0 --address 10.77.0.2/16 --key "$TN_RUN/veh.key" \
        --hub-key "$hubpub" --hub 10.201.0.1:5555 "${largs[@]}" --stats-ms 1000 "$@" \
        >"$TN_RUN/client.log" 2>&1 &
    echo $! >"$TN_RUN/client.pid"
    # wait for the tunnel, then send the internet host's traffic through it
    local i
    for ((i = 0; i < 50; i++)); do
        "$LAB" exec veh ip link show corr0 >/dev/null 2>&1 && break
        sleep 0.1
    done
    "$LAB" exec veh ip route replace 10.201.250.0/24 dev corr0
    for ((i = 0; i < 50; i++)); do
        "$LAB" exec veh ping -c1 -W1 -q "$INET" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    tn_log "tunnel did not come up"
    tail -20 "$TN_RUN/client.log" "$TN_RUN/hub.log" >&2
    return 1
}

# iperf3 from the vehicle to the internet host through the tunnel; prints Mbit/s received.
# tn_iperf SECONDS [extra iperf3 args]
tn_iperf() {
    local t=$1
    shift
    "$LAB" exec veh iperf3 -c "$INET" -t "$t" -O 2 -J "$@" >"$TN_RUN/iperf.json" || {
        cat "$TN_RUN/iperf.json" >&2
        return 1
    }
    jq -r '.end.sum_received.bits_per_second / 1e6' "$TN_RUN/iperf.json"
}

# pass/fail helpers
TN_FAIL=0
tn_check() { # description condition-as-awk-expression
    if awk "BEGIN { exit !($2) }"; then
        echo "ok   $1"
    else
        echo "FAIL $1 ($2)"
        TN_FAIL=1
    fi
}
