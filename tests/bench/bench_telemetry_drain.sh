#!/usr/bin/env bash
# bench_telemetry_drain.sh: a 7-day telemetry backlog drains while passengers use the tunnel.
# Prints numbers (docs/performance.md records them with this command line). Root.
#
#   bench_telemetry_drain.sh BUILD_DIR [base|RATE_KBPS...]  (default: base 512; 512 = default cap)
#     BATCHES=1008   backlog: 7 days of ten-minute batches, made by the recorder's own code
#                    (telemetry_preload: 1 track + 4 links per second, health every 10 s)
#     IPERF_S=20     length of each passenger measurement
#     DRAIN_MAX_S=900 give up waiting for the drain after this long
#
# Each case is a fresh run of the whole appliance in the network lab (2 links, 20 and 10 Mbit/s,
# 20 and 30 ms; two simulated modems; corridor-hub; the collector behind the hub, reached through
# the tunnel):
#   base        an EMPTY outbox: passenger goodput with no telemetry to speak of (the reference)
#   RATE_KBPS   the backlog in the outbox and telemetry.upload_rate_kbps = RATE_KBPS
# In every case the passengers are measured at the same tunnel age (6 s after it is up, when the
# links have left probing): two consecutive iperf3 TCP flows vehicle -> internet through the
# tunnel, IPERF_S seconds each, averaged; the collector's batches received meanwhile are counted
# (the drain really ran alongside). Then the drain's time (the collector's first to last receive
# of the backlog) and, after it, one more passenger measurement.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
B=$(cd "${1:?usage: bench_telemetry_drain.sh BUILD_DIR [RATE_KBPS...]}" && pwd)
shift
RATES=("$@")
((${#RATES[@]})) || RATES=(base 512)
BATCHES=${BATCHES:-1008}
IPERF_S=${IPERF_S:-15}
DRAIN_MAX_S=${DRAIN_MAX_S:-900}
export CL_PREFIX=${CL_PREFIX:-cl-tlb-}
RUN=/tmp/corridor-netlab/${CL_PREFIX%-}-drain
TL_PORT=8098
[[ -x $B/tests/telemetry/telemetry_preload ]] || { echo "telemetry_preload not built"; exit 1; }
rm -rf "$RUN"
mkdir -p "$RUN"
source "$HERE/../telemetry/tl_lab.sh"

# the backlog, made once
BACKLOG=$RUN/backlog.db
"$B/tests/telemetry/telemetry_preload" "$BACKLOG" "$TL_VEHICLE" "$BATCHES" 4 | tee "$RUN/preload.txt"
backlog_bytes=$(sqlite3 "$BACKLOG" "SELECT sum(length(body)) FROM batches")

cat >"$RUN/lab.scn" <<'SCN'
links 2
link 1 rate=20M delay=20ms
link 2 rate=10M delay=30ms
SCN

iperf_mbps() { # -> Mbit/s received
    "$TL_LAB" exec veh iperf3 -c "$TL_INET" -t "$IPERF_S" -O 2 -J >"$RUN/iperf.json" 2>&1 || {
        tail -5 "$RUN/iperf.json" >&2
        echo 0
        return
    }
    jq -r '.end.sum_received.bits_per_second / 1e6' "$RUN/iperf.json"
}
delivered() {
    sqlite3 "$RUN/collector.db" "SELECT count(*) FROM batches WHERE seq <= $BATCHES" 2>/dev/null || echo 0
}

received_ms() { # min|max
    sqlite3 "$RUN/collector.db" "SELECT $1(received_ms) FROM batches WHERE seq <= $BATCHES" 2>/dev/null || echo 0
}

results=()
base=""
for rate in "${RATES[@]}"; do
    rm -rf "$RUN/data" "$RUN/collector.db"* "$RUN"/*.log
    tl_lab_up 2 "$RUN/lab.scn"
    [[ $rate == base ]] || cp "$BACKLOG" "$RUN/data/outbox.db"
    tl_start_hub
    tl_start_collector $TL_PORT
    tl_start_modems 2
    if [[ $rate == base ]]; then tl_start_corridor ""; else tl_start_corridor "\"upload_rate_kbps\": $rate,"; fi
    tl_wait_tunnel 30 || { tl_log "tunnel did not come up"; tail "$RUN/corridor.log"; exit 1; }
    sleep 6 # the tunnel's links leave probing, the scheduler has capacity estimates
    n0=$(delivered)
    ga=$(iperf_mbps)
    gb=$(iperf_mbps)
    n1=$(delivered)
    g=$(awk -v a="$ga" -v b="$gb" 'BEGIN { printf "%.2f", (a + b) / 2 }')
    echo "$rate: passengers $ga, $gb -> $g Mbit/s ($((n1 - n0)) batches drained meanwhile, $n1 so far)"
    if [[ $rate == base ]]; then
        base=$g
        results+=("no backlog: passengers $g Mbit/s ($ga, $gb)")
        tl_cleanup
        continue
    fi
    end=$(($(date +%s) + DRAIN_MAX_S))
    while (($(delivered) < BATCHES)) && (($(date +%s) < end)); do sleep 1; done
    n=$(delivered)
    drain_s=$(awk -v a="$(received_ms min)" -v b="$(received_ms max)" 'BEGIN { printf "%.1f", (b - a) / 1000 }')
    sleep 2
    g_after=$(iperf_mbps)
    echo "$rate: passengers after the drain $g_after Mbit/s"
    loss=$(awk -v a="${base:-0}" -v b="$g" 'BEGIN { printf "%.1f", (a > 0) ? (a - b) / a * 100 : 0 }')
    kbps=$(awk -v by="$backlog_bytes" -v n="$n" -v N="$BATCHES" -v s="$drain_s" \
        'BEGIN { printf "%.0f", (s > 0) ? by * n / N * 8 / 1000 / s : 0 }')
    line=$(printf 'cap %s kbit/s: drained %s/%s batches (%s bytes) in %s s (%s kbit/s); passengers during the drain %s Mbit/s (%s, %s; %s batches meanwhile) = %s %% vs no backlog; %.2f after the drain' \
        "$rate" "$n" "$BATCHES" "$backlog_bytes" "$drain_s" "$kbps" "$g" "$ga" "$gb" "$((n1 - n0))" "-$loss" "$g_after")
    echo "$line"
    results+=("$line")
    tl_cleanup
done
echo
echo "backlog: $(cat "$RUN/preload.txt")"
printf '%s\n' "${results[@]}"
