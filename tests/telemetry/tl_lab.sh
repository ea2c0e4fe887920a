#!/usr/bin/env bash
# tl_lab.sh: the whole appliance in the network lab for the telemetry lab test and benchmark
# (netlab_upload_path.sh, tests/bench/bench_telemetry_drain.sh). Source it after setting
#   B        a CMake build dir (corridor, corridor-hub, corridor-modemsim, corridor-collector,
#            corridor-linkemu built)
#   RUN      a run directory (created; logs, keys, databases)
#   CL_PREFIX  the lab's namespace prefix (cl-...)
#   TL_PORT  the collector's port
# Functions: tl_lab_up LINKS SCENARIO_FILE, tl_start_hub, tl_kill_hub, tl_start_collector PORT,
# tl_start_modems LINKS, tl_start_corridor TELEMETRY_JSON_EXTRA, tl_wait_tunnel. Everything
# started is stopped and the namespaces are removed on exit (trap).
TL_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export NETLAB_BIN=${NETLAB_BIN:-$B/tests/netlab}
TL_LAB="$TL_SRC/tests/netlab/lab.sh"
TL_INET=10.201.250.2
TL_VEHICLE=tl-0001

[[ $(id -u) -eq 0 ]] || { echo "needs root (skipped)"; exit 77; }
ip netns list >/dev/null 2>&1 || { echo "no network namespaces (skipped)"; exit 77; }
command -v sqlite3 >/dev/null || { echo "sqlite3 CLI missing (skipped)"; exit 77; }
for b in firmware/corridor agg/hub/corridor-hub tests/sim/corridor-modemsim \
    telemetry/collector/corridor-collector tests/netlab/corridor-linkemu; do
    [[ -x $B/$b ]] || { echo "$B/$b not built"; exit 1; }
done

tl_pids=()
tl_log() { echo "tl_lab: $*" >&2; }
tl_cleanup() {
    trap - EXIT INT TERM
    for ((i = ${#tl_pids[@]} - 1; i >= 0; i--)); do kill -TERM "${tl_pids[i]}" 2>/dev/null || true; done
    [[ -f $RUN/hub.pid ]] && kill -TERM "$(cat "$RUN/hub.pid")" 2>/dev/null || true
    tl_pids=()
    sleep 0.3
    "$TL_LAB" down >/dev/null 2>&1 || true
}

tl_lab_up() { # LINKS SCENARIO_FILE
    "$TL_LAB" down >/dev/null 2>&1 || true
    mkdir -p "$RUN/data" "$RUN/tty"
    trap tl_cleanup EXIT
    trap 'tl_cleanup; exit 130' INT TERM
    "$TL_LAB" up --links "$1" --scenario "$2" >"$RUN/lab.log" 2>&1 || { cat "$RUN/lab.log"; exit 1; }
    rm -f "$RUN/hub.key" "$RUN/vehicle.key" "$RUN/hub.pid"
    TL_HUBPUB=$("$B/agg/hub/corridor-hub" keygen "$RUN/hub.key")
    TL_VEHPUB=$("$B/firmware/corridor" keygen "$RUN/vehicle.key")
    cat >"$RUN/hub.json" <<JSON
{ "listen": "10.201.0.1:5555", "private_key_file": "$RUN/hub.key", "tun": "hub0",
  "address": "10.77.0.1/16",
  "vehicles": [ { "id": "$TL_VEHICLE", "public_key": "$TL_VEHPUB", "address": "10.77.0.2" } ] }
JSON
    local token
    token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
    echo "$token" >"$RUN/vehicle.token"
    chmod 600 "$RUN/vehicle.token"
    echo "$TL_VEHICLE $(printf '%s' "$token" | sha256sum | cut -d' ' -f1)" >"$RUN/collector.tokens"
}

tl_start_hub() {
    "$TL_LAB" exec hub "$B/agg/hub/corridor-hub" run --config "$RUN/hub.json" 2>>"$RUN/hub.log" &
    echo $! >"$RUN/hub.pid"
}
tl_kill_hub() {
    kill -KILL "$(cat "$RUN/hub.pid")"
    wait "$(cat "$RUN/hub.pid")" 2>/dev/null || true
    rm -f "$RUN/hub.pid"
}

# the data-center collector in the internet namespace, behind the hub
tl_start_collector() { # PORT
    "$TL_LAB" exec inet "$B/telemetry/collector/corridor-collector" --db "$RUN/collector.db" \
        --tokens "$RUN/collector.tokens" --listen "$TL_INET" --port "$1" 2>>"$RUN/collector.log" &
    TL_COLLECTOR_PID=$!
    tl_pids+=($TL_COLLECTOR_PID)
}

tl_start_modems() { # LINKS: that many modems of tests/sim/scenarios/demo.json
    python3 - "$TL_SRC/tests/sim/scenarios/demo.json" "$RUN" "$1" <<'PY'
import json, sys
src, run, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = json.load(open(src))
s["modems"] = s["modems"][:n]
for m in s["modems"]:
    m["path"] = "%s/tty/%s" % (run, m["name"])
    m.pop("faults", None)
json.dump(s, open(run + "/modems.json", "w"), indent=1)
PY
    "$B/tests/sim/corridor-modemsim" --control "$RUN/sim.sock" "$RUN/modems.json" \
        2>"$RUN/modemsim.log" &
    tl_pids+=($!)
    local _
    for _ in $(seq 50); do [[ -S $RUN/sim.sock ]] && break; sleep 0.1; done
    TL_MODEMS=($(python3 -c 'import json,sys; print(" ".join(m["name"] for m in json.load(open(sys.argv[1]))["modems"]))' "$RUN/modems.json"))
}

tl_start_corridor() { # TELEMETRY_JSON_EXTRA (e.g. '"batch_seconds": 10,')
    local links="" k
    for ((k = 0; k < ${#TL_MODEMS[@]}; k++)); do
        [[ -n $links ]] && links+=","
        links+="{ \"name\": \"${TL_MODEMS[k]}\", \"interface\": \"veh-l$((k + 1))\", \"modem\": { \"port\": \"$RUN/tty/${TL_MODEMS[k]}\" } }"
    done
    cat >"$RUN/corridor.json" <<JSON
{
  "vehicle_id": "$TL_VEHICLE",
  "data_dir": "$RUN/data",
  "control_socket": "$RUN/control.sock",
  "log": { "level": "info" },
  "board": { "power": "sim", "sim_control": "$RUN/sim.sock" },
  "tunnel": { "hubs": ["10.201.0.1:5555"], "private_key_file": "$RUN/vehicle.key",
              "hub_public_key": "$TL_HUBPUB", "tun": "corr0", "address": "10.77.0.2/16" },
  "position": { "gpsd": "" },
  "telemetry": { $1 "upload_url": "http://$TL_INET:$TL_PORT/v1/batches",
                 "token_file": "$RUN/vehicle.token", "storage_device": "none" },
  "links": [ $links ]
}
JSON
    "$B/firmware/corridor" check-config "$RUN/corridor.json" >/dev/null
    "$TL_LAB" exec veh "$B/firmware/corridor" run --config "$RUN/corridor.json" \
        2>>"$RUN/corridor.log" &
    TL_CORRIDOR_PID=$!
    tl_pids+=($TL_CORRIDOR_PID)
    local _
    for _ in $(seq 100); do "$TL_LAB" exec veh ip link show corr0 >/dev/null 2>&1 && break; sleep 0.1; done
    # the internet (collector, iperf3 server) through the tunnel, as the LAN clients see it
    "$TL_LAB" exec veh ip route replace 10.201.250.0/24 dev corr0
}

tl_wait_tunnel() { # TIMEOUT_S: 0 once a ping through the tunnel answers
    local end=$(($(date +%s) + $1))
    while (($(date +%s) < end)); do
        "$TL_LAB" exec veh ping -c1 -W1 -q "$TL_INET" >/dev/null 2>&1 && return 0
        sleep 0.3
    done
    return 1
}
