#!/usr/bin/env bash
# The hub list from the data center (firmware/provision.c, docs/tunnel.md), end to end in the
# network lab with the real `corridor run` and `corridor-hub`:
#   - the config names only a hub that does not exist; the provisioning server (plain HTTP in
#     the hub namespace, standing in for the data center) gives the real one: the tunnel
#     connects, and the list is cached in data_dir/hubs.json;
#   - restarted with the provisioning server gone, the vehicle connects from the cache at once;
#   - a server that answers garbage leaves the cached list in place.
# usage: provision.sh BUILD_DIR     (needs root; exit 77 = skipped)
export CL_PREFIX=cl-pv-
NAME=provision
source "$(dirname "${BASH_SOURCE[0]}")/daemon_lib.sh"
dl_setup "${1:?usage: provision.sh BUILD_DIR}" "python3 jq" --links 2
mkdir -p "$RUN/www"
dl_hub_json
dl_start_hub
echo '{"hubs": ["10.201.0.1:5555"], "comment": "served by the lab"}' >"$RUN/www/hubs-train-0042.json"
serve() {
    ("$LAB" exec hub python3 -m http.server --bind 10.201.0.1 8088 --directory "$RUN/www" \
        >"$RUN/www.log" 2>&1 & echo $! >"$RUN/www.pid")
    # python starts slowly on a busy machine: give it time, and say so if it never comes
    wait_for 30 "$LAB" exec hub bash -c "exec 3<>/dev/tcp/10.201.0.1/8088" 2>/dev/null ||
        { echo "provision: the lab's HTTP server did not start"; cat "$RUN/www.log"; return 1; }
}
serve
# the configured hub does not exist (nothing listens on 5599): only provisioning can help
cat >"$RUN/corridor.json" <<JSON
{"vehicle_id": "train-0042", "data_dir": "$RUN/data", "control_socket": "$RUN/control.sock",
 "position": {"gpsd": ""},
 "tunnel": {"hubs": ["10.201.0.1:5599"], "private_key_file": "$RUN/veh.key",
            "hub_public_key": "$hubpub", "tun": "corr0", "address": "10.77.0.2/16",
            "hubs_url": "http://10.201.0.1:8088/hubs-{vehicle_id}.json"},
 "links": [{"name": "op1", "interface": "veh-l1"}, {"name": "op2", "interface": "veh-l2"}]}
JSON
start_corridor() {
    ("$LAB" exec veh "$CORRIDOR" run --config "$RUN/corridor.json" 2>>"$RUN/corridor.log" &
     echo $! >"$RUN/corridor.pid")
}
stop_corridor() {
    kill -TERM "$(cat "$RUN/corridor.pid")" 2>/dev/null || true
    wait_for 10 bash -c "! kill -0 $(cat "$RUN/corridor.pid") 2>/dev/null" || true
}
connected() { dl_connected; }
t0=$SECONDS
start_corridor
check "provisioned hub list: the tunnel connects to the real hub" wait_for 20 connected
echo "     connected $((SECONDS - t0)) s after start"
check "the list is cached in data_dir/hubs.json" grep -q '"10.201.0.1:5555"' "$RUN/data/hubs.json"
check "the request named the vehicle" grep -q "GET /hubs-train-0042.json" "$RUN/www.log"
check "new hub list event" grep -q '"hub_list"' <<<"$("$CORRIDOR" status --socket "$RUN/control.sock")"
stop_corridor

# provisioning server gone: the cache is used at once
kill "$(cat "$RUN/www.pid")" 2>/dev/null || true
t0=$SECONDS
start_corridor
check "server gone: connects from the cached list" wait_for 15 connected
echo "     connected $((SECONDS - t0)) s after start"
check "the log says the cache was used" grep -q "hubs from the provisioning cache" "$RUN/corridor.log"
stop_corridor

# a server that answers garbage: the cached list stays, the error is named
echo '{"hubs": ["hub.example.com:5555"]}' >"$RUN/www/hubs-train-0042.json"
serve
start_corridor
check "garbage list: still connects from the cache" wait_for 15 connected
bad_named() { grep -q 'hubs\[0\]: must be "a.b.c.d:port"' "$RUN/corridor.log"; }
check "garbage list: the error names the entry" wait_for 5 bad_named
check "garbage list: the cache is unchanged" grep -q '"10.201.0.1:5555"' "$RUN/data/hubs.json"
stop_corridor

if ((FAIL)); then
    echo "--- corridor.log"; tail -30 "$RUN/corridor.log"
    exit 1
fi
echo "provision: all checks passed"
