#!/bin/sh
# corridor-hub NAT: vehicles' tunnel addresses leave to the internet masqueraded behind the hub's
# public address (kernel nftables; corridor-hub itself never touches the firewall).
#
#   nat.sh up   [TUNNEL_NET[,LAN_NET...]] [OUT_IF]   e.g. nat.sh up 10.77.0.0/16 eth0
#   (add the vehicles' routed LAN prefixes, or a supernet of them, after a comma:
#    nat.sh up 10.77.0.0/16,10.128.0.0/9 eth0)
#   nat.sh down
#   nat.sh show
#
# What "up" does (idempotent: it replaces its own table, nothing else):
#   - net.ipv4.ip_forward=1
#   - table "ip corridor_hub":
#       postrouting: packets from TUNNEL_NET leaving through OUT_IF are masqueraded;
#       forward: traffic from the tunnel device to OUT_IF and established replies back are
#                accepted, the vehicles cannot reach each other or the hub's other networks
#                unless you add rules (policy drop only inside this table's forward chain);
#       TCP MSS of SYNs towards the tunnel is clamped to the path MTU (belt and braces: the
#       vehicle clamps too).
# Environment: CORRIDOR_TUN (default hub0) names the hub's TUN device.
#
# systemd: run it before corridor-hub, e.g. in corridor-hub.service
#   [Service]
#   ExecStartPre=/usr/lib/corridor/nat.sh up 10.77.0.0/16 eth0
#   ExecStart=/usr/bin/corridor-hub run --config /etc/corridor/hub.json
#   ExecStopPost=/usr/lib/corridor/nat.sh down
#   Restart=always
#   AmbientCapabilities=CAP_NET_ADMIN
set -eu

TUN=${CORRIDOR_TUN:-hub0}
cmd=${1:-}
NET=${2:-10.77.0.0/16}
OUT=${3:-}

case $cmd in
up)
    if [ -z "$OUT" ]; then
        # the interface of the default route
        OUT=$(ip -4 route show default | awk '{for (i = 1; i < NF; i++) if ($i == "dev") {print $(i + 1); exit}}')
    fi
    [ -n "$OUT" ] || { echo "nat.sh: no outgoing interface (give OUT_IF)" >&2; exit 2; }
    sysctl -qw net.ipv4.ip_forward=1
    nft list table ip corridor_hub >/dev/null 2>&1 && nft delete table ip corridor_hub
    nft -f - <<EOF2
table ip corridor_hub {
    chain postrouting {
        type nat hook postrouting priority srcnat; policy accept;
        ip saddr { $NET } oifname "$OUT" masquerade
    }
    chain forward {
        type filter hook forward priority filter; policy accept;
        oifname "$TUN" tcp flags syn tcp option maxseg size set rt mtu
        iifname "$TUN" oifname "$OUT" accept
        iifname "$OUT" oifname "$TUN" ct state established,related accept
        iifname "$OUT" oifname "$TUN" drop
        iifname "$TUN" oifname "$TUN" drop
    }
}
EOF2
    echo "nat.sh: $NET masqueraded out of $OUT (tunnel device $TUN)"
    ;;
down)
    nft list table ip corridor_hub >/dev/null 2>&1 && nft delete table ip corridor_hub
    echo "nat.sh: removed"
    ;;
show)
    nft list table ip corridor_hub
    ;;
*)
    echo "usage: nat.sh up [TUNNEL_NET[,LAN_NET...]] [OUT_IF] | down | show" >&2
    exit 2
    ;;
esac
