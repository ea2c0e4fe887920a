#!/usr/bin/env bash
# The daemon's own policy routing and multi-WAN fallback (firmware/netcfg.c, docs/routing.md),
# end to end in the network lab with the real `corridor run` and `corridor-hub`:
#   - a gateway as DHCP leaves it (one default route per modem, no rules: lab.sh --no-rules)
#     gets per-link tables and rules from the daemon, and the tunnel comes up over both links;
#   - a passenger host on the LAN (lab.sh --lan) reaches the internet host through the tunnel
#     (the internet host sees the vehicle's tunnel address);
#   - the hub dies: after routing.fallback_after_s new LAN connections leave directly through
#     the modems (the internet host sees the links' addresses, spread over both links);
#   - the hub returns: new connections take the tunnel again, and a connection opened during
#     the fallback keeps working (pinned to its link by its conntrack mark);
#   - on SIGTERM every rule, route and the nftables table are gone.
# usage: routing.sh BUILD_DIR     (needs root; exit 77 = skipped)
export CL_PREFIX=cl-rg-
NAME=routing
source "$(dirname "${BASH_SOURCE[0]}")/daemon_lib.sh"
dl_setup "${1:?usage: routing.sh BUILD_DIR}" "socat nft jq" --links 2 --no-rules --lan
# spare LAN addresses, to see new connections spread over the links
for i in $(seq 10 17); do "$LAB" exec lan ip addr add 10.201.240.$i/24 dev lan0; done

dl_hub_json
start_hub() { dl_start_hub; }
start_hub
cat >"$RUN/corridor.json" <<JSON
{"vehicle_id": "train-0042", "data_dir": "$RUN/data", "control_socket": "$RUN/control.sock",
 "position": {"gpsd": ""},
 "tunnel": {"hubs": ["10.201.0.1:5555"], "private_key_file": "$RUN/veh.key",
            "hub_public_key": "$hubpub", "tun": "corr0", "address": "10.77.0.2/16",
            "classes": [{"name": "ticketing", "dscp": 46, "mode": "redundant"}]},
 "routing": {"lan": ["10.201.240.0/24"], "fallback_after_s": 3},
 "links": [{"name": "op1", "interface": "veh-l1"}, {"name": "op2", "interface": "veh-l2"}]}
JSON
"$CORRIDOR" check-config "$RUN/corridor.json" >/dev/null
"$LAB" exec veh "$CORRIDOR" run --config "$RUN/corridor.json" 2>"$RUN/corridor.log" &
echo $! >"$RUN/corridor.pid"

# The internet host answers every TCP connection with the address it came from.
"$LAB" exec inet socat TCP-LISTEN:7000,bind=$INET,reuseaddr,fork SYSTEM:'echo $SOCAT_PEERADDR' \
    2>/dev/null &
echo $! >"$RUN/peer.pid"
"$LAB" exec inet socat TCP-LISTEN:7001,bind=$INET,reuseaddr,fork EXEC:cat 2>/dev/null &
echo $! >"$RUN/echo.pid"

peer() { # [source address] -> the address the internet host saw
    local bind=""
    [[ -n ${1:-} ]] && bind=",bind=$1"
    "$LAB" exec lan timeout 3 socat -T 2 - "TCP:$INET:7000,connect-timeout=2$bind" </dev/null 2>/dev/null || true
}
connected() { dl_connected; }
via_tunnel() { [[ $(peer) == 10.77.0.2 ]]; }
via_link() { [[ $(peer) == 10.201.[12].2 ]]; }

check "tunnel connects over the daemon's own per-link routing" wait_for 20 connected
rules=$("$LAB" exec veh ip rule show)
echo "$rules" | grep -E "^10(0[0-4])" | sed 's/^/     /'
check "rule: LAN lookup main without default routes" grep -q "1000:.*from 10.201.240.0/24 lookup main suppress_prefixlength 0" <<<"$rules"
check "rule: link addresses into their tables" grep -q "1002:.*from 10.201.2.2 lookup 101" <<<"$rules"
check "rule: bound sockets into their tables" grep -q "1003:.*oif veh-l1 lookup 100" <<<"$rules"
check "rule: LAN into the tunnel table" grep -q "1004:.*from 10.201.240.0/24 lookup 116" <<<"$rules"
check "table 101: default via the modem's gateway" grep -q "default via 10.201.2.1 dev veh-l2" <<<"$("$LAB" exec veh ip route show table 101)"
check "table 116: default into the tunnel" grep -q "default dev corr0" <<<"$("$LAB" exec veh ip route show table 116)"
check "LAN host reaches the internet through the tunnel" wait_for 10 via_tunnel
hub_classes() { grep -q "vehicle train-0042: 1 traffic classes for the downlink" "$RUN/hub.log"; }
check "the hub got the vehicle's class table for the downlink" wait_for 5 hub_classes

# SIGHUP: a second class, another log level and fallback delay are applied without a new
# handshake; a broken file changes nothing; then the original file again.
hs_before=$(grep -c "handshake from" "$RUN/hub.log")
cp "$RUN/corridor.json" "$RUN/corridor.orig.json"
jq '.tunnel.classes += [{"name": "cctv", "dscp": 10, "rate_kbps": 4000}] |
    .routing.fallback_after_s = 4 | .log = {"level": "debug"}' "$RUN/corridor.orig.json" >"$RUN/corridor.json"
kill -HUP "$(cat "$RUN/corridor.pid")"
reloaded() { grep -q "reload of .*applied: log.level, tunnel.classes, routing; needs a restart: nothing" "$RUN/corridor.log"; }
check "SIGHUP: log level, classes and routing applied, nothing needs a restart" wait_for 5 reloaded
hub_cls_two() { grep -q "vehicle train-0042: 2 traffic classes for the downlink" "$RUN/hub.log"; }
check "SIGHUP: the hub got the new class table" wait_for 5 hub_cls_two
check "SIGHUP: the tunnel kept its session (no new handshake)" test "$(grep -c "handshake from" "$RUN/hub.log")" -eq "$hs_before"
check "SIGHUP: rules in place again, LAN still through the tunnel" wait_for 5 via_tunnel
jq '.routing.fallback_after_s = 0' "$RUN/corridor.orig.json" >"$RUN/corridor.json"
kill -HUP "$(cat "$RUN/corridor.pid")"
refused() { grep -q 'reload refused, nothing changed: .*routing.fallback_after_s: must be in 1..3600' "$RUN/corridor.log"; }
check "SIGHUP with a broken file: refused by key, daemon keeps running" wait_for 5 refused
check "SIGHUP with a broken file: still connected" dl_connected
jq '.telemetry = {"batch_seconds": 60}' "$RUN/corridor.orig.json" >"$RUN/corridor.json"
kill -HUP "$(cat "$RUN/corridor.pid")"
needs() { grep -q "needs a restart: telemetry" "$RUN/corridor.log"; }
check "SIGHUP: a new section is named as needing a restart" wait_for 5 needs
cp "$RUN/corridor.orig.json" "$RUN/corridor.json"
kill -HUP "$(cat "$RUN/corridor.pid")"
sleep 1.5

# a connection through the tunnel: it dies with the hub (expected), so only count it
kill -KILL "$(cat "$RUN/hub.pid")"
t0=$SECONDS
# the vehicle notices a silent hub after 3 s (hub_timeout), then waits fallback_after_s (3 s)
check "hub gone: new LAN connections leave directly within 3 + 3 + 4 s" wait_for 10 via_link
echo "     direct after $((SECONDS - t0)) s"
declare -A seen=()
for i in $(seq 10 17); do
    p=$(peer 10.201.240.$i)
    [[ -n $p ]] && seen[$p]=1
done
echo "     sources 10.201.240.10-17 left as: ${!seen[*]}"
check "fallback spreads new connections over both links" test "${#seen[@]}" -eq 2
check "fallback event in the shared state" grep -q '"fallback"' <<<"$("$CORRIDOR" status --socket "$RUN/control.sock")"

# a long connection opened during the fallback, one line every 200 ms
(for i in $(seq 1 150); do echo "line $i"; sleep 0.2; done) |
    "$LAB" exec lan socat - "TCP:$INET:7001" >"$RUN/long.out" 2>"$RUN/long.err" &
echo $! >"$RUN/long.pid"
sleep 2
before=$(wc -l <"$RUN/long.out")
start_hub
check "hub back: tunnel reconnects" wait_for 20 connected
check "hub back: new LAN connections use the tunnel again" wait_for 10 via_tunnel
sleep 3
after=$(wc -l <"$RUN/long.out")
echo "     connection opened in fallback: $before lines before the hub returned, $after 3 s after"
check "the connection opened during the fallback keeps working" test "$after" -ge $((before + 10))

kill -TERM "$(cat "$RUN/corridor.pid")"
wait_for 10 bash -c "! kill -0 $(cat "$RUN/corridor.pid") 2>/dev/null" || true
check "stop: no rule left at 1000-1004" bash -c "! '$LAB' exec veh ip rule show | grep -qE '^100[0-4]:'"
check "stop: tables emptied" test -z "$("$LAB" exec veh ip route show table 100)$("$LAB" exec veh ip route show table 116)"
check "stop: nftables table removed" bash -c "! '$LAB' exec veh nft list table ip corridor >/dev/null 2>&1"

# Routed LAN prefix: no NAT on the vehicle; the hub routes 10.201.240.0/24 into its TUN and to
# this vehicle, so the internet host sees the passenger's own address. A class by LAN subnet
# then works in both directions (the hub matches it as destination).
kill "$(cat "$RUN/hub.pid")" 2>/dev/null || true
sleep 0.5
jq '.vehicles[0].routes = ["10.201.240.0/24"]' "$RUN/hub.json" >"$RUN/hub2.json"
mv "$RUN/hub2.json" "$RUN/hub.json"
start_hub
jq '.routing.lan_nat = false | .tunnel.classes = [{"name": "cctv", "src_subnet": "10.201.240.0/24",
    "mode": "failover", "failover_order": ["op2"]}]' "$RUN/corridor.json" >"$RUN/corridor2.json"
"$LAB" exec veh "$CORRIDOR" run --config "$RUN/corridor2.json" 2>"$RUN/corridor2.log" &
echo $! >"$RUN/corridor.pid"
via_own() { [[ $(peer) == 10.201.240.2 ]]; }
check "routed LAN: the internet host sees the passenger's own address" wait_for 20 via_own
check "hub: kernel route for the vehicle's LAN into its TUN" grep -q "10.201.240.0/24 dev hub0" <<<"$("$LAB" exec hub ip route show)"
hub_cls2() { [[ $(grep -c "1 traffic classes for the downlink" "$RUN/hub.log") -ge 2 ]]; }
check "hub: the subnet class arrived for the downlink" wait_for 12 hub_cls2
kill -TERM "$(cat "$RUN/corridor.pid")"
wait_for 10 bash -c "! kill -0 $(cat "$RUN/corridor.pid") 2>/dev/null" || true
jq '.vehicles[0].routes = ["10.77.9.0/24"]' "$RUN/hub.json" >"$RUN/hub-bad.json"
out=$("$LAB" exec hub "$HUB" run --config "$RUN/hub-bad.json" 2>&1 || true)
check "hub config: a route inside the tunnel network is refused by name" grep -q "vehicles\[0\] (train-0042): routes\[0\] '10.77.9.0/24' overlaps the tunnel network" <<<"$out"

# bad config: a LAN with host bits set is named with its key
sed 's#"10.201.240.0/24"#"10.201.240.1/24"#' "$RUN/corridor.json" >"$RUN/bad.json"
out=$("$CORRIDOR" check-config "$RUN/bad.json" 2>&1 || true)
check "config error names routing.lan[0]" grep -q 'routing.lan\[0\].*host bits' <<<"$out"

if ((FAIL)); then
    echo "--- corridor.log"; tail -30 "$RUN/corridor.log"
    exit 1
fi
echo "routing: all checks passed"
