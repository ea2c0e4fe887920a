#!/bin/bash
# demo.sh: set up and run the whole appliance on its embedded default, as root on Debian 12.
#   - installs the dependencies (ci/setup.sh) and builds into build/native
#   - a network lab in namespaces (tests/netlab/lab.sh, prefix cl-demo-): the vehicle, three
#     cellular paths through the userspace link emulator (tests/netlab/scenarios/tunnel-train.scn:
#     30/15/5 Mbit/s, 30-60 ms, loss, a link outage and an all-links outage), the hub, and an
#     "internet" host behind it
#   - corridor-hub in the hub namespace
#   - three simulated SIMCom modems (tests/sim/scenarios/demo.json: MTS, MegaFon, Beeline on a
#     looping trip east of Moscow, with a coverage hole, a 3G fallback, roaming and a silent
#     modem) and gpsd replaying the same route (gpsfake) in the vehicle namespace
#   - corridor-collector behind the hub (the data center), reached through the tunnel
#   - `corridor run` in the vehicle namespace: modems, position, coverage map, weights, tunnel,
#     telemetry cut into one-minute batches and uploaded to the collector
#   - the crew dashboard on http://127.0.0.1:8080/ (DEMO_PORT to change)
#   - every 5 s: `corridor status --brief` and a ping through the tunnel to the internet host
# Ctrl-C stops everything and removes the namespaces. DEMO_SECONDS=N stops after N seconds.
# ci/demo.sh --modems-only runs just the modems and corridor (no namespaces, no tunnel).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
MODE=${1:-full}
[ "${CORRIDOR_SKIP_SETUP:-0}" = 1 ] || bash ci/setup.sh
cmake -S . -B build/native -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo > /dev/null
ninja -C build/native corridor corridor-modemsim corridor-hub corridor-linkemu corridor-nmea-route \
    corridor-collector

D=$ROOT/build/demo
rm -rf "$D"
mkdir -p "$D/data"
B=$ROOT/build/native
BIN=$B/firmware/corridor
export CL_PREFIX=cl-demo- NETLAB_BIN=$B/tests/netlab
LAB=$ROOT/tests/netlab/lab.sh
INET=10.201.250.2

pids=()
cleanup() {
    trap - EXIT INT TERM
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill -TERM "${pids[i]}" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ "$MODE" = full ] && "$LAB" down > /dev/null 2>&1 || true
    echo "demo stopped; logs in $D"
}
trap cleanup EXIT INT TERM

in_veh=()
tunnel_json=""
telemetry_json='"telemetry": { "batch_seconds": 60, "balance_alert": 100 },'
position_json='"position": { "gpsd": "" },'
if [ "$MODE" = full ]; then
    "$LAB" down > /dev/null 2>&1 || true
    "$LAB" up --links 3 --scenario tests/netlab/scenarios/tunnel-train.scn > "$D/lab.log" 2>&1 \
        || { cat "$D/lab.log"; exit 1; }
    in_veh=("$LAB" exec veh)
    hubpub=$("$B/agg/hub/corridor-hub" keygen "$D/hub.key")
    vehpub=$("$BIN" keygen "$D/vehicle.key")
    cat > "$D/hub.json" <<JSON
{ "listen": "10.201.0.1:5555", "private_key_file": "$D/hub.key", "tun": "hub0",
  "address": "10.77.0.1/16",
  "vehicles": [ { "id": "demo-train-0001", "public_key": "$vehpub", "address": "10.77.0.2" } ] }
JSON
    "$LAB" exec hub "$B/agg/hub/corridor-hub" run --config "$D/hub.json" 2> "$D/hub.log" &
    pids+=($!)
    tunnel_json='"tunnel": { "hubs": ["10.201.0.1:5555"], "private_key_file": "'$D'/vehicle.key",
                "hub_public_key": "'$hubpub'", "tun": "corr0", "address": "10.77.0.2/16" },'
    # gpsd replays the same route the modems' GNSS follows (about 1 epoch per second)
    "$B/tests/position/corridor-nmea-route" tests/sim/scenarios/demo.json "$D/route.nmea" > /dev/null
    "$LAB" exec veh timeout -s KILL 31536000 gpsfake -q -n -c 0.33 -P 2947 "$D/route.nmea" \
        > "$D/gpsfake.log" 2>&1 &
    pids+=($!)
    position_json='"position": { "gpsd": "127.0.0.1:2947" },'
    # the data-center collector behind the hub, reached through the tunnel
    token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
    echo "$token" > "$D/vehicle.token"
    chmod 600 "$D/vehicle.token"
    echo "demo-train-0001 $(printf '%s' "$token" | sha256sum | cut -d' ' -f1)" > "$D/collector.tokens"
    for _ in $(seq 50); do "$LAB" exec hub ip link show hub0 > /dev/null 2>&1 && break; sleep 0.1; done
    "$LAB" exec hub "$B/telemetry/collector/corridor-collector" --db "$D/collector.db" \
        --tokens "$D/collector.tokens" --listen 10.77.0.1 --port 8080 2> "$D/collector.log" &
    pids+=($!)
    telemetry_json='"telemetry": { "batch_seconds": 60, "balance_alert": 100,
                   "upload_url": "http://10.77.0.1:8080/v1/batches",
                   "token_file": "'$D'/vehicle.token" },'
fi

cat > "$D/corridor.json" <<JSON
{
  "vehicle_id": "demo-train-0001",
  "data_dir": "$D/data",
  "control_socket": "$D/control.sock",
  "log": { "level": "info" },
  "board": { "power": "sim", "sim_control": "$D/sim.sock" },
  "dashboard": { "listen": "127.0.0.1:8080" },
  $tunnel_json
  $position_json
  $telemetry_json
  "links": [
    { "name": "mts", "interface": "veh-l1",
      "modem": { "port": "/tmp/corridor-sim/mts", "apn": "internet.mts.ru", "balance_ussd": "*100#" } },
    { "name": "megafon", "interface": "veh-l2",
      "modem": { "port": "/tmp/corridor-sim/megafon", "apn": "internet", "balance_ussd": "*100#" } },
    { "name": "beeline", "interface": "veh-l3",
      "modem": { "port": "/tmp/corridor-sim/beeline", "apn": "internet.beeline.ru", "balance_ussd": "*102#" } }
  ]
}
JSON
"$BIN" check-config "$D/corridor.json"

"$B/tests/sim/corridor-modemsim" --control "$D/sim.sock" tests/sim/scenarios/demo.json \
    2> "$D/modemsim.log" &
pids+=($!)
for _ in $(seq 50); do [ -S "$D/sim.sock" ] && break; sleep 0.1; done
"${in_veh[@]}" "$BIN" run --config "$D/corridor.json" 2> "$D/corridor.log" &
pids+=($!)
cpid=$!
if [ "$MODE" = full ]; then
    for _ in $(seq 50); do "$LAB" exec veh ip link show corr0 > /dev/null 2>&1 && break; sleep 0.1; done
    "$LAB" exec veh ip route replace 10.201.250.0/24 dev corr0
    # The dashboard listens on the vehicle namespace's loopback: bring it to this machine's.
    socat TCP-LISTEN:${DEMO_PORT:-8080},bind=127.0.0.1,reuseaddr,fork \
        EXEC:"ip netns exec ${CL_PREFIX}veh socat STDIO TCP\:127.0.0.1\:8080" 2> "$D/socat.log" &
    pids+=($!)
fi
echo "corridor running (logs in $D); dashboard on http://127.0.0.1:${DEMO_PORT:-8080}/"
echo "status every 5 s, Ctrl-C to stop"

end=$(($(date +%s) + ${DEMO_SECONDS:-31536000}))
while [ "$(date +%s)" -lt "$end" ]; do
    sleep 5
    kill -0 "$cpid" 2> /dev/null || { echo "corridor exited"; tail -20 "$D/corridor.log"; exit 1; }
    echo
    "$BIN" status --socket "$D/control.sock" --brief || true
    if [ "$MODE" = full ]; then
        "$LAB" exec veh ping -c 3 -i 0.2 -W 1 -q "$INET" 2>&1 | tail -2 | sed 's/^/  tunnel ping: /' || true
    fi
done
