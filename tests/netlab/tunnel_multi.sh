#!/usr/bin/env bash
# Tunnel step 2: two links of different rate and delay (10 Mbit/s 20 ms + 20 Mbit/s 30 ms, no
# loss). One TCP flow must get clearly more than the best link alone (bonding works, capacities
# estimated, no rates typed in), and both links must carry data.
#   tunnel_multi.sh BUILD_DIR
source "$(dirname "$0")/tunnel_lib.sh"
cat >/tmp/tunnel_multi.scn <<'SCN'
links 2
link 1 rate=10M delay=20ms
link 2 rate=20M delay=30ms
SCN
tn_up 2 /tmp/tunnel_multi.scn
up=$(tn_iperf 12)
sleep 1.2
last=$(grep -n '^\[' "$TN_RUN/client.log" | tail -3)
echo "goodput ${up} Mbit/s (links 10 + 20)"
echo "$last"
tx1=$(echo "$last" | awk '/link op1/ { for (i = 1; i <= NF; i++) if ($i ~ /^tx=/) { split($i, a, "[=/]"); print a[2] } }')
tx2=$(echo "$last" | awk '/link op2/ { for (i = 1; i <= NF; i++) if ($i ~ /^tx=/) { split($i, a, "[=/]"); print a[2] } }')
tn_check "bonded goodput > 22 Mbit/s (best single link is 20)" "$up > 22"
tn_check "link 1 carried data" "${tx1:-0} > 5000"
tn_check "link 2 carried data" "${tx2:-0} > 5000"
exit $TN_FAIL
