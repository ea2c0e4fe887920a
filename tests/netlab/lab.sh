#!/usr/bin/env bash
# corridor network lab: vehicle, one emulated path per link, hub and an "internet" host, each in
# its own network namespace, joined by veth pairs. See README.md in this directory.
#
#   lab.sh up [--links N] [--scenario FILE] [--shared] [--bin DIR] [--seed N] [--no-go]
#             [--no-rules] [--lan]
#   lab.sh down
#   lab.sh exec <veh|hub|inet|pK|mK|full-ns-name> cmd...
#   lab.sh ctl <K|all> <cut|restore|set ...|go|stats|show|reset-stats>
#   lab.sh go          (re)start every link's scenario schedule at t = 0 now
#   lab.sh status
# Global option (before the command) or env CL_PREFIX: namespace prefix, default "cl-".
# Everything lives in namespaces named <prefix>*; nothing is configured in the root namespace.
set -euo pipefail

PREFIX=${CL_PREFIX:-cl-}
if [[ ${1:-} == --prefix ]]; then
    PREFIX=$2
    shift 2
fi
[[ $PREFIX =~ ^cl-[a-z0-9-]*$ ]] || { echo "lab.sh: prefix must match cl-[a-z0-9-]*" >&2; exit 2; }
RUN=${CL_RUNDIR:-/tmp/corridor-netlab/${PREFIX%-}}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

HUB_ADDR=10.201.0.1   # the hub listens here; reachable over every path
INET_ADDR=10.201.250.2 # iperf3 -s behind the hub
SHARED_NET=10.201.200 # shared mode: every modem LAN is 10.201.200.0/24, gateway .1

ns() { echo "${PREFIX}$1"; }
nsx() { ip netns exec "$(ns "$1")" "${@:2}"; }
log() { echo "lab.sh: $*" >&2; }

find_bin() {
    local cand
    for cand in "${NETLAB_BIN:-}" "$HERE/../../build/tests/netlab" "$HERE"/../../build-*/tests/netlab; do
        if [[ -n $cand && -x $cand/corridor-linkemu ]]; then
            (cd "$cand" && pwd)
            return 0
        fi
    done
    log "corridor-linkemu not found: build it and pass --bin DIR (or NETLAB_BIN)"
    return 1
}

mkns() {
    local n
    n=$(ns "$1")
    ip netns add "$n"
    ip -n "$n" link set lo up
    # no IPv6 chatter (router solicitations, DAD) on the emulated links
    nsx "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 2>/dev/null || true
    nsx "$1" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
    echo "$n" >>"$RUN/namespaces"
}

# veth between two of our namespaces, created inside the first one (never in the root namespace).
# Offloads off: the emulator forwards real frames, so they must be MTU-sized with real checksums.
mkveth() { # nsA ifA nsB ifB
    ip -n "$(ns "$1")" link add "$2" type veth peer name "$4" netns "$(ns "$3")"
    nsx "$1" ethtool -K "$2" tx off tso off gso off gro off >/dev/null 2>&1 || true
    nsx "$3" ethtool -K "$4" tx off tso off gso off gro off >/dev/null 2>&1 || true
    ip -n "$(ns "$1")" link set "$2" up
    ip -n "$(ns "$3")" link set "$4" up
}

scen_value() { # keyword file -> first value of "keyword value" lines
    awk -v k="$1" '{sub(/#.*/, "")} $1 == k {print $2; exit}' "$2"
}

cmd_up() {
    local links="" scenario="" shared=0 bin="" seed=1 go=1 rules=1 lan=0
    while [[ $# -gt 0 ]]; do
        case $1 in
        --links) links=$2; shift 2 ;;
        --scenario) scenario=$2; shift 2 ;;
        --shared) shared=1; shift ;;
        --bin) bin=$2; shift 2 ;;
        --seed) seed=$2; shift 2 ;;
        --no-go) go=0; shift ;;
        --no-rules) rules=0; shift ;; # like a fresh gateway: DHCP default routes only
        --lan) lan=1; shift ;;        # a passenger LAN namespace behind the vehicle
        *) log "up: unknown option $1"; exit 2 ;;
        esac
    done
    if [[ -n $scenario ]]; then
        [[ -r $scenario ]] || { log "scenario $scenario not readable"; exit 2; }
        scenario=$(cd "$(dirname "$scenario")" && pwd)/$(basename "$scenario")
        [[ -z $links ]] && links=$(scen_value links "$scenario")
        [[ $(scen_value mode "$scenario") == shared ]] && shared=1
    fi
    links=${links:-2}
    [[ $links =~ ^[0-9]+$ && $links -ge 1 && $links -le 16 ]] || { log "--links must be 1..16"; exit 2; }
    [[ $EUID -eq 0 ]] || { log "needs root (network namespaces)"; exit 77; }
    [[ -z $bin ]] && bin=$(find_bin)
    if [[ -n $scenario ]] && ! "$bin/corridor-linkemu" --check "$scenario" >/dev/null; then
        log "scenario $scenario rejected"
        exit 2
    fi
    if ip netns list | grep -q "^${PREFIX}veh\b"; then
        log "a lab with prefix $PREFIX is already up (lab.sh down first)"
        exit 1
    fi
    mkdir -p "$RUN"
    : >"$RUN/namespaces"
    echo "$links" >"$RUN/links"
    echo "$shared" >"$RUN/shared"
    echo "$bin" >"$RUN/bin"
    trap 'log "setup failed, tearing down"; cmd_down' ERR

    mkns veh
    mkns hub
    mkns inet
    nsx hub sysctl -qw net.ipv4.ip_forward=1
    ip -n "$(ns hub)" addr add "$HUB_ADDR/32" dev lo
    mkveth hub hub-inet inet inet0
    ip -n "$(ns hub)" addr add 10.201.250.1/24 dev hub-inet
    ip -n "$(ns inet)" addr add "$INET_ADDR/24" dev inet0
    ip -n "$(ns inet)" route add default via 10.201.250.1

    local k gw
    for ((k = 1; k <= links; k++)); do
        mkns "p$k"
        if ((shared)); then
            # USB-modem style: every modem offers the same LAN and gateway and NATs behind it
            mkns "m$k"
            nsx "m$k" sysctl -qw net.ipv4.ip_forward=1
            mkveth veh "veh-l$k" "m$k" lan0
            mkveth "m$k" wan0 "p$k" emu-v
            ip -n "$(ns veh)" addr add "$SHARED_NET.2/24" dev "veh-l$k"
            ip -n "$(ns "m$k")" addr add "$SHARED_NET.1/24" dev lan0
            ip -n "$(ns "m$k")" addr add "10.201.$((100 + k)).2/24" dev wan0
            ip -n "$(ns "m$k")" route add default via "10.201.$((100 + k)).1"
            nsx "m$k" nft -f - <<EOF
table ip nat {
    chain post { type nat hook postrouting priority 100; oifname "wan0" masquerade; }
}
EOF
            mkveth "p$k" emu-h hub "hub-l$k"
            ip -n "$(ns hub)" addr add "10.201.$((100 + k)).1/24" dev "hub-l$k"
            gw=$SHARED_NET.1
        else
            mkveth veh "veh-l$k" "p$k" emu-v
            mkveth "p$k" emu-h hub "hub-l$k"
            ip -n "$(ns veh)" addr add "10.201.$k.2/24" dev "veh-l$k"
            ip -n "$(ns hub)" addr add "10.201.$k.1/24" dev "hub-l$k"
            gw=10.201.$k.1
            ((rules)) && ip -n "$(ns veh)" rule add from "10.201.$k.2" lookup $((100 + k)) pref 100
        fi
        if ((rules)); then
            # per-link table: a socket bound to veh-lK (SO_BINDTODEVICE) reaches the hub over link K
            ip -n "$(ns veh)" route add default via "$gw" dev "veh-l$k" table $((100 + k))
            ip -n "$(ns veh)" rule add oif "veh-l$k" lookup $((100 + k)) pref 101
        else
            # what DHCP leaves on a gateway: one default route per modem, by metric
            ip -n "$(ns veh)" route add default via "$gw" dev "veh-l$k" metric $((100 + k))
        fi
        local args=(-a emu-v -b emu-h --link "$k" --ctl "$RUN/p$k.sock" --seed "$seed" --hold)
        [[ -n $scenario ]] && args+=(--scenario "$scenario")
        ip netns exec "$(ns "p$k")" "$bin/corridor-linkemu" "${args[@]}" >"$RUN/p$k.log" 2>&1 &
        echo $! >"$RUN/p$k.pid"
    done
    # unbound traffic (and ping without -I) takes link 1
    local gw1=10.201.1.1
    ((shared)) && gw1=$SHARED_NET.1
    if ((rules)); then
        ip -n "$(ns veh)" route add "$HUB_ADDR/32" via "$gw1" dev veh-l1
        ip -n "$(ns veh)" route add 10.201.250.0/24 via "$gw1" dev veh-l1
    fi
    if ((lan)); then
        # passengers: 10.201.240.0/24 behind the vehicle (veh-lan .1, lan0 .2)
        mkns lan
        mkveth veh veh-lan lan lan0
        ip -n "$(ns veh)" addr add 10.201.240.1/24 dev veh-lan
        ip -n "$(ns lan)" addr add 10.201.240.2/24 dev lan0
        ip -n "$(ns lan)" route add default via 10.201.240.1
    fi

    nsx inet iperf3 -s -D -B "$INET_ADDR" --pidfile "$RUN/iperf-inet.pid" >/dev/null
    nsx hub iperf3 -s -D -B "$HUB_ADDR" --pidfile "$RUN/iperf-hub.pid" >/dev/null
    for ((k = 1; k <= links; k++)); do
        local i
        for ((i = 0; i < 100; i++)); do
            [[ -S $RUN/p$k.sock ]] && break
            kill -0 "$(cat "$RUN/p$k.pid")" 2>/dev/null || { cat "$RUN/p$k.log" >&2; false; }
            sleep 0.02
        done
        [[ -S $RUN/p$k.sock ]] || { log "emulator $k did not start"; cat "$RUN/p$k.log" >&2; false; }
    done
    trap - ERR
    ((go)) && cmd_go >/dev/null
    log "up: $links links ($( ((shared)) && echo "shared subnet" || echo "distinct subnets")), hub $HUB_ADDR, inet $INET_ADDR, run dir $RUN"
}

cmd_go() {
    local links k
    links=$(cat "$RUN/links")
    for ((k = 1; k <= links; k++)); do
        "$(cat "$RUN/bin")/corridor-linkemu" --ctl-send "$RUN/p$k.sock" go
    done
}

cmd_ctl() {
    local which=$1 links k rc=0
    shift
    links=$(cat "$RUN/links")
    if [[ $which == all ]]; then
        for ((k = 1; k <= links; k++)); do
            "$(cat "$RUN/bin")/corridor-linkemu" --ctl-send "$RUN/p$k.sock" "$*" || rc=1
        done
        return $rc
    fi
    [[ $which =~ ^[0-9]+$ && $which -ge 1 && $which -le $links ]] || { log "no link $which"; exit 2; }
    "$(cat "$RUN/bin")/corridor-linkemu" --ctl-send "$RUN/p$which.sock" "$*"
}

cmd_down() {
    local f pid n
    for f in "$RUN"/*.pid; do
        [[ -e $f ]] || continue
        pid=$(cat "$f")
        # only processes we started, and only while they still live in one of our namespaces
        kill -TERM "$pid" 2>/dev/null || true
    done
    sleep 0.1
    # anything else still running inside our namespaces (e.g. a test's iperf3) is ours too
    for n in $(ip netns list | awk '{print $1}' | grep "^${PREFIX}" || true); do
        for pid in $(ip netns pids "$n" 2>/dev/null); do
            kill -KILL "$pid" 2>/dev/null || true
        done
        ip netns del "$n" 2>/dev/null || true
    done
    rm -f "$RUN"/*.pid "$RUN"/*.sock "$RUN/namespaces"
}

cmd_exec() {
    local n=$1
    shift
    [[ $n == "$PREFIX"* ]] || n=$(ns "$n")
    exec ip netns exec "$n" "$@"
}

cmd_status() {
    ip netns list | grep "^${PREFIX}" || { echo "no lab with prefix $PREFIX"; return 0; }
    [[ -r $RUN/links ]] && cmd_ctl all show || true
}

case ${1:-} in
up) shift; cmd_up "$@" ;;
down) cmd_down ;;
exec) shift; cmd_exec "$@" ;;
ctl) shift; cmd_ctl "$@" ;;
go) cmd_go ;;
status) cmd_status ;;
*)
    sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
