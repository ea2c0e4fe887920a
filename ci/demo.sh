#!/bin/bash
# demo.sh: set up and run the appliance on its embedded default, as root on Debian 12.
#   - installs the dependencies (ci/setup.sh) and builds into build/native
#   - starts three simulated SIMCom modems (tests/sim/scenarios/demo.json: MTS, MegaFon, Beeline
#     on a looping trip, with a coverage hole, a 3G fallback, roaming and a silent modem)
#   - runs `corridor run` on them with the simulator as the board's power control
#   - prints `corridor status --brief` every 5 s until Ctrl-C (DEMO_SECONDS=N stops after N s)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
[ "${CORRIDOR_SKIP_SETUP:-0}" = 1 ] || bash ci/setup.sh
cmake -S . -B build/native -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo > /dev/null
ninja -C build/native corridor corridor-modemsim

D=$ROOT/build/demo
mkdir -p "$D/data"
SIM=$(find build/native -name corridor-modemsim -type f -perm -u+x | head -1)
BIN=build/native/firmware/corridor
cat > "$D/corridor.json" <<JSON
{
  "vehicle_id": "demo-train-0001",
  "data_dir": "$D/data",
  "control_socket": "$D/control.sock",
  "log": { "level": "info" },
  "board": { "power": "sim", "sim_control": "$D/sim.sock" },
  "links": [
    { "name": "mts", "interface": "usb0",
      "modem": { "port": "/tmp/corridor-sim/mts", "apn": "internet.mts.ru", "balance_ussd": "*100#" } },
    { "name": "megafon", "interface": "usb1",
      "modem": { "port": "/tmp/corridor-sim/megafon", "apn": "internet", "balance_ussd": "*100#" } },
    { "name": "beeline", "interface": "usb2",
      "modem": { "port": "/tmp/corridor-sim/beeline", "apn": "internet.beeline.ru", "balance_ussd": "*102#" } }
  ]
}
JSON
"$BIN" check-config "$D/corridor.json"

pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    echo "demo stopped; logs in $D"
}
trap cleanup EXIT INT TERM

"$SIM" --control "$D/sim.sock" tests/sim/scenarios/demo.json 2> "$D/modemsim.log" &
pids+=($!)
for _ in $(seq 50); do [ -S "$D/sim.sock" ] && break; sleep 0.1; done
"$BIN" run --config "$D/corridor.json" 2> "$D/corridor.log" &
pids+=($!)
echo "corridor running (log: $D/corridor.log); status every 5 s, Ctrl-C to stop"

end=$(( $(date +%s) + ${DEMO_SECONDS:-31536000} ))
while [ "$(date +%s)" -lt "$end" ]; do
    sleep 5
    kill -0 "${pids[1]}" 2>/dev/null || { echo "corridor exited"; tail -20 "$D/corridor.log"; exit 1; }
    echo; "$BIN" status --socket "$D/control.sock" --brief || true
done
