#!/usr/bin/env bash
# Tunnel benchmarks of issue 3 in the network lab (root). Prints numbers; docs/performance.md
# records them with the exact command lines.
#
#   bench_tunnel.sh BUILD_DIR goodput SCENARIO [SECONDS] [--baseline] [--down]
#       one TCP flow (iperf3, default congestion control) vehicle -> internet through the
#       tunnel (and internet -> vehicle with --down); --baseline also measures plain TCP on
#       each link alone (tests/netlab/baseline.sh) and prints the ratio.
#   bench_tunnel.sh BUILD_DIR cut [SECONDS]
#       scenario cut-fastest.scn: TCP flow survives the cut of the fastest link; prints the
#       longest delivery gap (iperf3 100 ms intervals) and, in a second run, the loss of a
#       1 Mbit/s UDP stream across the cut.
#   bench_tunnel.sh BUILD_DIR slowstart SCENARIO [RUNS] [SECONDS]
#       where one TCP flow's slow start ends (IPERF_ARGS as for goodput, e.g. "-C cubic"):
#       RUNS flows of SECONDS (default 5 x 5 s), `ss -tin` every 20 ms in the vehicle
#       namespace; per run the end time, cwnd there and the RTT rise before it (ssexit.py).
#   bench_tunnel.sh BUILD_DIR loopback [SECONDS]
#       data-plane cost: tunnel_perf.sh (hub and client over plain veth, no emulator: goodput,
#       CPU seconds, instructions per packet if perf works) both directions, then bench_bond
#       (both ends in one thread over UDP loopback, no TUN).
#   bench_tunnel.sh BUILD_DIR rss16 [SECONDS]
#       vehicle VmHWM with 16 links under load (tunnel_perf.sh with 16 links).
set -euo pipefail
BUILD=${1:?build dir}
MODE=${2:?mode}
shift 2
HERE=$(cd "$(dirname "$0")" && pwd)
export TN_BUILD=$BUILD
source "$HERE/../netlab/tunnel_lib.sh" "$BUILD"

case $MODE in
goodput)
    SCEN=${1:?scenario}
    T=${2:-30}
    shift 2 || shift $#
    base=0 down=0
    for a in "$@"; do
        [[ $a == --baseline ]] && base=1
        [[ $a == --down ]] && down=1
    done
    n=$(awk '$1 == "links" {print $2; exit}' "$SCEN")
    tn_up "$n" "$SCEN"
    # IPERF_ARGS: e.g. "-C cubic" (the lab's default congestion control is the host's)
    up=$(tn_iperf "$T" ${IPERF_ARGS:-})
    rtx=$(jq -r '.end.sum_sent.retransmits' "$TN_RUN/iperf.json")
    echo "tunnel up_mbps=$up retransmits=$rtx cc=$(jq -r '.end.sender_tcp_congestion // "?"' "$TN_RUN/iperf.json")"
    if ((down)); then
        dn=$(tn_iperf "$T" -R ${IPERF_ARGS:-})
        echo "tunnel down_mbps=$dn"
    fi
    grep '^\[final\]\|^\[' "$TN_RUN/client.log" | tail -$((n + 2))
    if ((base)); then
        # plain TCP per link, no tunnel, same lab (the tunnel keeps running but idle)
        "$TN_HERE/baseline.sh" --time "${BASE_T:-$T}" --target hub | tee "$TN_RUN/baseline.txt"
        bu=$(awk '/^total/ {split($2, a, "="); print a[2]}' "$TN_RUN/baseline.txt")
        bd=$(awk '/^total/ {split($3, a, "="); print a[2]}' "$TN_RUN/baseline.txt")
        awk -v u="$up" -v b="$bu" 'BEGIN { printf "ratio up %.3f\n", u / b }'
        ((down)) && awk -v u="$dn" -v b="$bd" 'BEGIN { printf "ratio down %.3f\n", u / b }'
    fi
    ;;
cut)
    T=${1:-20}
    tn_up 3 "$TN_HERE/scenarios/cut-fastest.scn"
    "$LAB" go
    # the receiver's cumulative ACKs time the delivery gap exactly (tests/bench/ackgap.py)
    "$LAB" exec inet python3 "$HERE/ackgap.py" inet0 5201 "$TN_RUN/ackgap.json" &
    agpid=$!
    "$LAB" exec veh iperf3 -c "$INET" -t "$T" -i 0.1 -l 16K -J >"$TN_RUN/cut.json"
    sleep 0.3
    kill -TERM "$agpid" 2>/dev/null || true
    wait "$agpid" || true
    jq -r '"longest_delivery_gap_ms=\(.longest_gap_ms) at_s=\(.flows[0].gap_at_s) (receiver ACKs) over_100ms=\(.flows[0].over_100ms)"' \
        "$TN_RUN/ackgap.json" || echo "ackgap: no result"
    jq -r '[.intervals[] | .sum.bytes] | "intervals=\(length) zero_100ms_intervals=\([.[] | select(. == 0)] | length)"' "$TN_RUN/cut.json"
    jq -r '.intervals[] | "\(.sum.start) \(.sum.bits_per_second / 1e6)"' "$TN_RUN/cut.json" |
        awk '{ if ($2 < 0.01) { run += 100; if (run > mx) mx = run } else run = 0 }
             END { printf "longest_gap_ms<=%d (100 ms resolution)\n", mx + 100 }'
    echo "tcp goodput $(jq -r '.end.sum_received.bits_per_second / 1e6' "$TN_RUN/cut.json") Mbit/s"
    "$LAB" go
    "$LAB" exec veh iperf3 -c "$INET" -u -b 1M -l 1000 -t "$T" -J >"$TN_RUN/cutudp.json"
    jq -r '.end.sum | "udp lost=\(.lost_packets) of \(.packets)"' "$TN_RUN/cutudp.json"
    tail -4 "$TN_RUN/client.log"
    ;;
slowstart)
    SCEN=${1:?scenario}
    RUNS=${2:-5}
    T=${3:-5}
    n=$(awk '$1 == "links" {print $2; exit}' "$SCEN")
    tn_up "$n" "$SCEN"
    for r in $(seq "$RUNS"); do
        "$LAB" go
        (
            for i in $(seq $((T * 40))); do
                echo "T $i $(date +%s.%N)"
                "$LAB" exec veh ss -tin dst "$INET" || true
                sleep 0.02
            done
        ) >"$TN_RUN/ss.$r.txt" &
        sp=$!
        "$LAB" exec veh iperf3 -c "$INET" -t "$T" -J ${IPERF_ARGS:-} >"$TN_RUN/ss-iperf.$r.json" || true
        kill "$sp" 2>/dev/null || true
        wait "$sp" 2>/dev/null || true
        echo "run $r: $(python3 "$HERE/ssexit.py" "$TN_RUN/ss.$r.txt")" \
            "goodput=$(jq -r '.end.sum_received.bits_per_second / 1e6' "$TN_RUN/ss-iperf.$r.json")"
    done
    ;;
loopback)
    # plain veth, no emulator: see tests/netlab/tunnel_perf.sh (also prints CPU and VmHWM)
    trap - EXIT
    bash "$TN_HERE/tunnel_perf.sh" "$BUILD" 1 "${1:-10}"
    bash "$TN_HERE/tunnel_perf.sh" "$BUILD" 1 "${1:-10}" -R
    "$BUILD/tests/tunnel/bench_bond" 300000 1400 2
    ;;
rss16)
    trap - EXIT
    bash "$TN_HERE/tunnel_perf.sh" "$BUILD" 16 "${1:-8}"
    ;;
*)
    echo "unknown mode $MODE" >&2
    exit 2
    ;;
esac
