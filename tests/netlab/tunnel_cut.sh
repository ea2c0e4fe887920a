#!/usr/bin/env bash
# Tunnel step 3: the fastest of three links is cut hard 3 s into a transfer (in-flight packets
# lost too). A 1 Mbit/s UDP stream may lose no more than what was in flight on the dead link,
# and a TCP flow must survive the cut and keep moving on the remaining links.
#   tunnel_cut.sh BUILD_DIR
source "$(dirname "$0")/tunnel_lib.sh"
cat >/tmp/tunnel_cut.scn <<'SCN'
links 3
link 1 rate=10M delay=20ms
link 2 rate=10M delay=25ms
link 3 rate=20M delay=15ms
at 3s link 3 down
SCN
tn_up 3 /tmp/tunnel_cut.scn
"$LAB" go >/dev/null
"$LAB" exec veh iperf3 -c "$INET" -u -b 1M -l 1000 -t 6 -J >"$TN_RUN/udp.json"
lost=$(jq -r '.end.sum.lost_packets' "$TN_RUN/udp.json")
pk=$(jq -r '.end.sum.packets' "$TN_RUN/udp.json")
echo "udp across the cut: lost $lost of $pk"
grep -h "link op3" "$TN_RUN/client.log" | grep -- "->" | head -3
# TCP across a second cut of link 3 (restore, then cut again)
"$LAB" ctl 3 restore >/dev/null
sleep 2
( sleep 3; "$LAB" ctl 3 cut >/dev/null ) &
cutter=$!
"$LAB" exec veh iperf3 -c "$INET" -t 8 -l 16K -i 0.1 -J >"$TN_RUN/tcp.json"
wait $cutter
tcp=$(jq -r '.end.sum_received.bits_per_second / 1e6' "$TN_RUN/tcp.json")
tail_mbps=$(jq -r '[.intervals[-20:][] | .sum.bits_per_second] | add / length / 1e6' "$TN_RUN/tcp.json")
echo "tcp across the cut: ${tcp} Mbit/s overall, ${tail_mbps} Mbit/s in the last 2 s"
tn_check "UDP loses at most what was in flight (<= 25 packets)" "$lost <= 25"
tn_check "TCP flow survives and moves on links 1+2 (> 8 Mbit/s at the end)" "$tail_mbps > 8"
exit $TN_FAIL
