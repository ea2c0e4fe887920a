#!/usr/bin/env bash
# A full 1500-byte inner MTU by fragments (docs/tunnel.md "MTU"): both ends with inner_mtu 1500
# over 1500-byte paths. Packets up to 1447 bytes cross whole; bigger ones as two pieces, each
# possibly on another link, joined after the reorder buffer. Checks: 1500-byte DF pings cross
# both ways, a 1501-byte DF packet is answered with mtu=1500, and a TCP flow with the full
# 1460-byte MSS reaches the rate of two 10 Mbit/s links.
#   tunnel_mtu.sh BUILD_DIR
export CL_PREFIX=cl-tm-
source "$(dirname "$0")/tunnel_lib.sh"
cat >"/tmp/tunnel_mtu.scn" <<'SCN'
links 2
link 1 rate=10M delay=20ms
link 2 rate=10M delay=30ms
SCN
TN_HUB_EXTRA='"inner_mtu": 1500,' tn_up 2 /tmp/tunnel_mtu.scn --inner-mtu 1500
mtu=$("$LAB" exec veh cat /sys/class/net/corr0/mtu)
big_ok=$("$LAB" exec veh ping -M do -s 1472 -c 5 -i 0.2 -W 2 -q "$INET" 2>/dev/null | grep -c " 0% packet loss" || true)
too_big=$("$LAB" exec veh ping -M do -s 1473 -c 1 -W 1 "$INET" 2>&1 | grep -c "mtu=1500" || true)
up=$(tn_iperf 5 -M 1460)
down=$(tn_iperf 5 -M 1460 -R)
echo "TUN MTU $mtu, up ${up} Mbit/s, down ${down} Mbit/s (MSS 1460: every segment in 2 pieces)"
tn_check "TUN MTU 1500" "$mtu == 1500"
tn_check "1500-byte DF pings cross (5 of 5)" "$big_ok == 1"
tn_check "1501-byte DF packet refused with mtu=1500" "$too_big >= 1"
# two pieces per segment cost one extra header (53 B per 1500): >= 80 % of 20 Mbit/s
tn_check "uplink >= 16 Mbit/s of 20" "$up >= 16"
tn_check "downlink >= 16 Mbit/s of 20" "$down >= 16"
exit $TN_FAIL
