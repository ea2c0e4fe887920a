#!/usr/bin/env bash
# Data-plane cost of the tunnel without link emulation: vehicle and hub namespaces joined by N
# plain veth pairs (no linkemu, no shaping), one TCP flow through the tunnel to the hub's
# tunnel address. Prints goodput, CPU seconds of the client and the hub, their instructions per
# forwarded packet (perf stat, if perf works here), and the client's peak RSS (VmHWM).
#   tunnel_perf.sh BUILD_DIR [LINKS=1] [SECONDS=10] [-R]
# Reference: the same iperf3 over one veth without the tunnel ("plain").
set -euo pipefail
[[ $(id -u) -eq 0 ]] || { echo "needs root (skipped)"; exit 77; }
BUILD=${1:-}
N=${2:-1}
T=${3:-10}
REV=${4:-}
HUB=${TN_HUB:-$BUILD/agg/hub/corridor-hub}
CLI=${TN_CLIENT:-$BUILD/tests/tunnel/corridor-tunnel-client}
P=cl-tp-
RUN=/tmp/corridor-netlab/tunnel-perf
V=${P}veh
H=${P}hub
cleanup() {
    for f in "$RUN"/*.pid; do [[ -f $f ]] && kill "$(cat "$f")" 2>/dev/null || true; done
    sleep 0.2
    ip netns del $V 2>/dev/null || true
    ip netns del $H 2>/dev/null || true
}
cleanup
rm -rf "$RUN"
mkdir -p "$RUN"
trap cleanup EXIT
ip netns add $V
ip netns add $H
ip -n $V link set lo up
ip -n $H link set lo up
ip -n $H addr add 10.202.0.1/32 dev lo
links=()
for ((k = 1; k <= N; k++)); do
    ip -n $V link add "v$k" type veth peer name "h$k" netns $H
    ip -n $V addr add "10.202.$k.2/24" dev "v$k"
    ip -n $H addr add "10.202.$k.1/24" dev "h$k"
    ip -n $V link set "v$k" up
    ip -n $H link set "h$k" up
    ip -n $V route add default via "10.202.$k.1" dev "v$k" table $((100 + k))
    ip -n $V rule add oif "v$k" lookup $((100 + k)) pref 101
    links+=(--link "l$k:v$k:$((k - 1))")
done
ip -n $V route add 10.202.0.1/32 via 10.202.1.1 dev v1
hubpub=$("$HUB" keygen "$RUN/hub.key")
vehpub=$("$HUB" keygen "$RUN/veh.key")
cat >"$RUN/hub.json" <<JSON
{"listen": "10.202.0.1:5555", "private_key_file": "$RUN/hub.key", "tun": "hub0",
 "address": "10.77.0.1/16",
 "vehicles": [{"id": "bench", "public_key": "$vehpub", "address": "10.77.0.2"}]}
JSON
ip netns exec $H "$HUB" run --config "$RUN/hub.json" --log-level warn >"$RUN/hub.log" 2>&1 &
echo $! >"$RUN/hub.pid"
ip netns exec $V "$CLI" --tun corr0 --address 10.77.0.2/16 --key "$RUN/veh.key" --hub-key "$hubpub" \
    --hub 10.202.0.1:5555 "${links[@]}" --log-level warn --stats-ms 1000 >"$RUN/client.log" 2>&1 &
echo $! >"$RUN/client.pid"
ip netns exec $H iperf3 -s -D -B 10.77.0.1 --pidfile "$RUN/iperf.pid" >/dev/null 2>&1 || true
ip netns exec $H iperf3 -s -D -B 10.202.0.1 -p 5202 --pidfile "$RUN/iperf2.pid" >/dev/null 2>&1 || true
for ((i = 0; i < 50; i++)); do
    ip netns exec $V ping -c1 -W1 -q 10.77.0.1 >/dev/null 2>&1 && break
    sleep 0.2
done
cpu() { awk '{print ($14 + $15) / 100}' "/proc/$1/stat"; }
cpid=$(cat "$RUN/client.pid")
hpid=$(cat "$RUN/hub.pid")
plain=$(ip netns exec $V iperf3 -c 10.202.0.1 -p 5202 -t 3 -J $REV | jq -r '.end.sum_received.bits_per_second / 1e6')
c0=$(cpu "$cpid")
h0=$(cpu "$hpid")
perf_ok=0
if perf stat -e instructions:u -p "$cpid" -- true >/dev/null 2>&1; then perf_ok=1; fi
if ((perf_ok)); then
    perf stat -x, -e instructions -p "$cpid" -o "$RUN/perf_client.txt" -- sleep "$T" &
    pc=$!
    perf stat -x, -e instructions -p "$hpid" -o "$RUN/perf_hub.txt" -- sleep "$T" &
    ph=$!
fi
ip netns exec $V iperf3 -c 10.77.0.1 -t "$T" -J $REV >"$RUN/iperf.json"
((perf_ok)) && wait $pc $ph || true
c1=$(cpu "$cpid")
h1=$(cpu "$hpid")
mbps=$(jq -r '.end.sum_received.bits_per_second / 1e6' "$RUN/iperf.json")
bytes=$(jq -r '.end.sum_received.bytes' "$RUN/iperf.json")
# data packets ~ bytes / MSS; ACKs travel the other way (counted separately below)
pk=$(awk -v b="$bytes" 'BEGIN { printf "%d", b / 1407 }')
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$cpid/status")
echo "links=$N dir=${REV:-up} plain_veth_mbps=$plain tunnel_mbps=$mbps client_cpu_s=$(awk -v a="$c0" -v b="$c1" 'BEGIN{print b-a}') hub_cpu_s=$(awk -v a="$h0" -v b="$h1" 'BEGIN{print b-a}') data_pkts=$pk client_VmHWM_kB=$hwm"
if ((perf_ok)); then
    ic=$(awk -F, '/instructions/ {print $1}' "$RUN/perf_client.txt")
    ih=$(awk -F, '/instructions/ {print $1}' "$RUN/perf_hub.txt")
    if [[ $ic =~ ^[0-9]+$ && $ih =~ ^[0-9]+$ ]]; then
        awk -v i="$ic" -v j="$ih" -v p="$pk" 'BEGIN { printf "instructions/data packet: client %.0f hub %.0f (all threads, incl. kernel, ACKs included)\n", i / p, j / p }'
    else
        echo "instructions/data packet: perf cannot count instructions here ($ic); use bench_bond under callgrind"
    fi
fi
