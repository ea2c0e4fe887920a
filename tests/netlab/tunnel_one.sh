#!/usr/bin/env bash
# Tunnel step 1: ONE link (10 Mbit/s, 20 ms): handshake, encrypted data, ping and iperf3
# through the tunnel to the internet host, in both directions.
#   tunnel_one.sh BUILD_DIR
source "$(dirname "$0")/tunnel_lib.sh"
cat >"/tmp/tunnel_one.scn" <<'SCN'
links 1
link 1 rate=10M delay=20ms
SCN
tn_up 1 /tmp/tunnel_one.scn
rtt=$("$LAB" exec veh ping -c 5 -i 0.2 -q "$INET" | awk -F/ '/rtt/ {print $5}')
# MTU: 1500 - 53 bytes of overhead = 1447 inside; DF packets above it are refused with the MTU
big_ok=$("$LAB" exec veh ping -M do -s 1419 -c 2 -i 0.2 -W 1 -q "$INET" >/dev/null 2>&1 && echo 1 || echo 0)
too_big=$("$LAB" exec veh ping -M do -s 1420 -c 1 -W 1 "$INET" 2>&1 | grep -c "mtu=1447" || true)
up=$(tn_iperf 5)
down=$(tn_iperf 5 -R)
echo "ping avg ${rtt} ms, up ${up} Mbit/s, down ${down} Mbit/s"
tn_check "ping RTT ~40 ms" "$rtt > 38 && $rtt < 80"
tn_check "1447-byte DF packet crosses the tunnel" "$big_ok == 1"
tn_check "1448-byte DF packet refused with mtu=1447" "$too_big >= 1"
tn_check "uplink >= 8.5 Mbit/s of 10" "$up >= 8.5"
tn_check "downlink >= 8.5 Mbit/s of 10" "$down >= 8.5"
exit $TN_FAIL
