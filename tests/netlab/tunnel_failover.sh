#!/usr/bin/env bash
# Tunnel step 4: hub failover. Two hubs (same identity key, as a hub pool shares it) on two ports
# of the hub namespace; the vehicle lists both. The first hub is killed hard (SIGKILL) while a
# ping runs through the tunnel: the vehicle must move to the second hub and the ping must
# answer again within 10 s.
#   tunnel_failover.sh BUILD_DIR
source "$(dirname "$0")/tunnel_lib.sh"
cat >/tmp/tunnel_failover.scn <<'SCN'
links 2
link 1 rate=20M delay=10ms
link 2 rate=20M delay=15ms
SCN
tn_up 2 /tmp/tunnel_failover.scn --hub 10.201.0.1:5556
# second hub: same key, own port and TUN device
sed -e 's/:5555/:5556/' -e 's/"hub0"/"hub1"/' "$TN_RUN/hub.json" >"$TN_RUN/hub2.json"
"$LAB" exec hub "$TN_HUB" run --config "$TN_RUN/hub2.json" >"$TN_RUN/hub2.log" 2>&1 &
echo $! >"$TN_RUN/hub2.pid"
sleep 1
"$LAB" exec veh ping -D -i 0.1 -W 1 -c 150 "$INET" >"$TN_RUN/ping.txt" 2>&1 &
ping_pid=$!
sleep 2
t_kill=$(date +%s.%N)
# lab.sh exec execs "ip netns exec", which execs the hub: the recorded pid is the hub itself
kill -KILL "$(cat "$TN_RUN/hub.pid")"
wait "$(cat "$TN_RUN/hub.pid")" 2>/dev/null || true
wait $ping_pid || true
# longest run of missing replies (icmp_seq gaps) at 100 ms spacing
gap=$(awk -F'icmp_seq=' '/icmp_seq=/ { split($2, a, " "); s = a[1]; if (prev && s - prev - 1 > mx) mx = s - prev - 1; prev = s }
       END { printf "%.1f", (mx + 1) * 0.1 }' "$TN_RUN/ping.txt")
got=$(grep -c 'icmp_seq=' "$TN_RUN/ping.txt" || true)
switches=$(awk '/switches=/ { for (i = 1; i <= NF; i++) if ($i ~ /^switches=/) { split($i, a, "="); print a[2] } }' "$TN_RUN/client.log" | tail -1)
echo "killed hub 1 at $t_kill; longest ping outage ${gap} s; replies $got of 150; hub switches ${switches:-?}"
grep -h "hub .*connected\|silent" "$TN_RUN/client.log" | tail -4
tn_check "ping answers again within 10 s of the hub's death" "$gap < 10"
tn_check "replies after the failover" "$got > 60"
tn_check "exactly one hub switch" "${switches:-0} == 1"
exit $TN_FAIL
