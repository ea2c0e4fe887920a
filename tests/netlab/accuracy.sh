#!/usr/bin/env bash
# Accuracy tests of corridor-linkemu inside the lab: the rate, delay, jitter, loss and outage
# timing it applies must be the ones asked for.
#   accuracy.sh <rate|rate100|delay|jitter|loss|outage|cut|shared|control> BIN_DIR
# Prints "MEASURE <name> measured=<x> expected=<y> tol=<t>" lines; exits 1 if any is out of
# tolerance, 77 (skip) without root or network namespaces.
set -euo pipefail

CASE=${1:?case}
BIN=${2:?binary dir}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export CL_PREFIX=cl-nt-
export NETLAB_BIN=$BIN
LAB="$HERE/lab.sh"
HUB=10.201.0.1
FAILS=0
SEED=${NETLAB_SEED:-1} # loss draws are reproducible; set NETLAB_SEED to try another realisation
TMP=$(mktemp -d /tmp/netlab-acc.XXXXXX)

[[ $EUID -eq 0 ]] || { echo "SKIP: needs root"; exit 77; }
ip netns add cl-nt-probe 2>/dev/null && ip netns del cl-nt-probe || { echo "SKIP: no netns"; exit 77; }
for t in iperf3 ethtool ping jq nft socat; do
    command -v $t >/dev/null || { echo "SKIP: $t not installed"; exit 77; }
done

cleanup() {
    "$LAB" down >/dev/null 2>&1 || true
    rm -rf "$TMP"
}
trap cleanup EXIT
"$LAB" down >/dev/null 2>&1 || true # a previous run killed hard

# check NAME MEASURED EXPECTED ABS_TOLERANCE
check() {
    local ok
    ok=$(awk -v m="$2" -v e="$3" -v t="$4" 'BEGIN { d = m - e; if (d < 0) d = -d; print (d <= t) ? 1 : 0 }')
    printf 'MEASURE %-28s measured=%-10s expected=%-10s tol=+-%s %s\n' "$1" "$2" "$3" "$4" \
        "$([[ $ok == 1 ]] && echo ok || echo FAIL)"
    [[ $ok == 1 ]] || FAILS=$((FAILS + 1))
}
# relative tolerance in percent
check_rel() {
    check "$1" "$2" "$3" "$(awk -v e="$3" -v p="$4" 'BEGIN { printf "%.4f", e * p / 100 }')"
}
kv() { # key file
    awk -F= -v k="$1" '$1 == k {print $2}' "$2"
}
probe() { # out-file args...  (vehicle -> hub over link 1 unless --dev given)
    local out=$1
    shift
    "$BIN/corridor-netprobe" --from cl-nt-veh --to cl-nt-hub --dst "$HUB" "$@" >"$out"
}
ctl() { "$LAB" ctl "$@" >/dev/null; }
# resolve ARP before measuring: the first packet would otherwise wait one emulated round trip
warm() {
    local k
    for k in "$@"; do
        "$LAB" exec veh ping -q -c 1 -W 2 -I veh-l$k "$HUB" >/dev/null
    done
}
stat_field() { # link dir field -> value from the emulator's stats line
    "$LAB" ctl "$1" stats | awk -v d="$2" -v f="$3" '$3 == d":" { for (i = 1; i <= NF; i++) { if ($i == f) print $(i + 1); else if ($i ~ "^"f"=") { sub(f"=", "", $i); sub(",", "", $i); print $i } } }'
}
iperf_tcp() { # extra iperf3 args -> receiver goodput in Mbit/s
    "$LAB" exec veh iperf3 -c "$HUB" --bind-dev veh-l1 -t 6 -O 1 -J "$@" >"$TMP/ip.json"
    jq -r '.end.sum_received.bits_per_second / 1e6' "$TMP/ip.json"
}

case $CASE in
rate | rate100)
    # Rates apply to IP bytes. TCP with timestamps: 1500-byte IP packet = 20 IP + 32 TCP + 1448
    # payload, so goodput = R * 1448/1500. UDP: 20 IP + 8 UDP + 1472 payload = R * 1472/1500.
    "$LAB" up --seed "$SEED" --links 1 >/dev/null
    # On a shared CI machine the sender or receiver (not the emulator) can be starved of CPU
    # for a whole run: a run outside tolerance is repeated once, and both are printed with the
    # emulator's view (its drops say whether it was the bottleneck).
    rates=(20)
    [[ $CASE == rate100 ]] && rates=(100)
    for R in "${rates[@]}"; do
        ctl 1 set rate=${R}M delay=5ms queue=100ms
        exp=$(awk -v r=$R 'BEGIN { printf "%.3f", r * 1448 / 1500 }')
        for dir in up down; do
            extra=()
            [[ $dir == down ]] && extra=(-R)
            ctl 1 reset-stats
            got=$(iperf_tcp "${extra[@]}")
            if ! awk -v m="$got" -v e="$exp" 'BEGIN { exit !(m >= e * 0.95 && m <= e * 1.05) }'; then
                echo "INFO tcp_${dir}_${R}M first run $got Mbit/s; emulator: $("$LAB" ctl 1 stats | tr '\n' ' ')"
                ctl 1 reset-stats
                got=$(iperf_tcp "${extra[@]}")
            fi
            check_rel "tcp_${dir}_${R}M_mbps" "$got" "$exp" 5
        done
    done
    [[ $CASE == rate100 ]] && { echo "netlab $CASE: $FAILS failed checks"; [[ $FAILS -eq 0 ]]; exit; }
    # UDP offered at 1.5 R for 3 s: the link is saturated, the receiver sees exactly R of IP bytes
    # With a 50 ms queue the saturated link holds one-way delay at 5 + 50 ms (+ one packet time,
    # 0.6 ms): the bounded queue, and its tail drops (a third of what is offered), show.
    ctl 1 set rate=20M delay=5ms queue=50ms
    ctl 1 reset-stats
    probe "$TMP/u" --dev veh-l1 --size 1472 --count 7650 --interval-us 392 --drain-ms 300
    check_rel udp_20M_goodput_mbps "$(kv rx_goodput_mbps "$TMP/u")" \
        "$(awk 'BEGIN { printf "%.3f", 20 * 1472 / 1500 }')" 5
    check_rel udp_full_queue_owd_p50_ms "$(kv owd_p50_ms "$TMP/u")" 55 5
    # p90, not the max: see the jitter case (a loaded machine delays some deliveries by ms)
    check udp_full_queue_owd_p90_le_57 "$(awk -v m="$(kv owd_p90_ms "$TMP/u")" 'BEGIN { print (m <= 57) }')" 1 0
    check_rel udp_queue_drop_fraction "$(awk -v l="$(kv lost "$TMP/u")" -v n="$(kv sent "$TMP/u")" 'BEGIN { printf "%.4f", l / n }')" 0.3333 5
    echo "INFO emulator queue drops (offered 1.5x): $(stat_field 1 ul queue), owd p50/p95/p99/max $(kv owd_p50_ms "$TMP/u")/$(kv owd_p95_ms "$TMP/u")/$(kv owd_p99_ms "$TMP/u")/$(kv owd_max_ms "$TMP/u") ms"
    ;;
delay)
    "$LAB" up --seed "$SEED" --links 1 >/dev/null
    warm 1
    ctl 1 set rate=20M delay=30ms
    # ping RTT = 2 D + serialisation of 84-byte packets twice (0.07 ms at 20 Mbit/s) + ~0.3 ms
    # of namespace/emulator processing: the small constant allowed on top of 5 %.
    rtt=$("$LAB" exec veh ping -q -c 40 -i 0.05 "$HUB" | awk -F'[/ =]+' '/^rtt/ {print $7}')
    check ping_rtt_ms "$rtt" 60 "$(awk 'BEGIN { print 60 * 0.05 + 0.5 }')"
    # one-way delay with one clock (vehicle -> hub), per direction
    ctl 1 set ul delay=20ms
    ctl 1 set dl delay=45ms
    probe "$TMP/o" --dev veh-l1 --count 500 --interval-us 2000 --drain-ms 200
    check owd_ul_mean_ms "$(kv owd_mean_ms "$TMP/o")" 20 "$(awk 'BEGIN { print 20 * 0.05 + 0.3 }')"
    check owd_ul_min_ms "$(kv owd_min_ms "$TMP/o")" 20 0.3
    rtt=$("$LAB" exec veh ping -q -c 20 -i 0.05 "$HUB" | awk -F'[/ =]+' '/^rtt/ {print $7}')
    check ping_rtt_asym_ms "$rtt" 65 "$(awk 'BEGIN { print 65 * 0.05 + 0.5 }')"
    ;;
jitter)
    "$LAB" up --seed "$SEED" --links 1 >/dev/null
    warm 1
    # uniform +-10 ms around 30 ms, probes 25 ms apart (wider than the jitter range, so keeping
    # order never delays a packet): mean 30, sd 10/sqrt(3) = 5.77, all within [20, 40]
    ctl 1 set delay=30ms jitter=10ms
    probe "$TMP/j" --dev veh-l1 --count 400 --interval-us 25000 --drain-ms 200
    check_rel jitter_mean_ms "$(kv owd_mean_ms "$TMP/j")" 30 5
    check_rel jitter_sd_ms "$(kv owd_sd_ms "$TMP/j")" 5.774 12
    check jitter_min_ge_20 "$(awk -v m="$(kv owd_min_ms "$TMP/j")" 'BEGIN { print (m >= 19.9) }')" 1 0
    # median, and the 95th percentile rather than the max (uniform: p95 = 39 ms): a loaded CI
    # machine deschedules the emulator or the probe now and then for a few ms. The bound itself
    # is exact in the model and checked by test_linkemu_model.
    check_rel jitter_p50_ms "$(kv owd_p50_ms "$TMP/j")" 30 5
    check jitter_p95_le_41 "$(awk -v m="$(kv owd_p95_ms "$TMP/j")" 'BEGIN { print (m <= 41) }')" 1 0
    echo "INFO jitter owd min/p50/p95/p99/max ms: $(kv owd_min_ms "$TMP/j")/$(kv owd_p50_ms "$TMP/j")/$(kv owd_p95_ms "$TMP/j")/$(kv owd_p99_ms "$TMP/j")/$(kv owd_max_ms "$TMP/j")"
    # dense probes (1 ms apart): order kept by default (a cellular bearer does not reorder) ...
    probe "$TMP/k" --dev veh-l1 --count 2000 --interval-us 1000 --drain-ms 200
    check jitter_fifo_reordered "$(kv reordered "$TMP/k")" 0 0
    # ... and with reorder=1 the packets overtake each other, mean delay stays 30 ms
    ctl 1 set reorder=1
    probe "$TMP/r" --dev veh-l1 --count 2000 --interval-us 1000 --drain-ms 200
    check jitter_reorder_some "$(awk -v r="$(kv reordered "$TMP/r")" 'BEGIN { print (r > 100) }')" 1 0
    check_rel jitter_reorder_mean_ms "$(kv owd_mean_ms "$TMP/r")" 30 5
    ;;
loss)
    "$LAB" up --seed "$SEED" --links 1 >/dev/null
    # Bernoulli 2 %, 200k packets: sigma = sqrt(p(1-p)/n) = 0.0313 points = 1.57 % relative,
    # so the 5 % relative tolerance is 3.2 sigma (false alarm ~0.15 %). 10k packets/s: faster
    # probes get dropped outside the emulator (veth backlog) when a loaded machine makes the
    # probe send late bursts.
    ctl 1 set ul loss=2%
    ctl 1 reset-stats
    probe "$TMP/l" --dev veh-l1 --count 200000 --interval-us 100 --drain-ms 300
    echo "INFO emulator: $("$LAB" ctl 1 stats | tr '\n' ' ')"
    check_rel bernoulli_loss_pct "$(kv loss_pct "$TMP/l")" 2.0 5
    # every probe loss is the emulator's doing (no socket-buffer drops)
    check emu_loss_drops_equal_probe_lost "$(stat_field 1 ul loss)" "$(kv lost "$TMP/l")" 0
    # Gilbert-Elliott p=1%, r=25%, bad-state loss 100 %: loss p/(p+r) = 3.846 %, bursts of 1/r = 4.
    # 100k packets, ~960 bursts of geometric length (mean 4, variance 12): relative sd of the
    # loss ~4.3 %, tolerance 15 % (3.5 sigma); of the mean burst length ~3.6 %, tolerance 12 %.
    ctl 1 set ul loss=0 gilbert=1%,25%,100%
    probe "$TMP/g" --dev veh-l1 --count 100000 --interval-us 100 --drain-ms 300
    check_rel gilbert_loss_pct "$(kv loss_pct "$TMP/g")" 3.846 15
    check_rel gilbert_mean_burst "$(awk -v l="$(kv lost "$TMP/g")" -v g="$(kv gaps "$TMP/g")" 'BEGIN { printf "%.3f", l / g }')" 4 12
    ;;
outage)
    # schedule: down at 1000 ms, up at 1500 ms (both directions); 10 ms one-way delay.
    # A hard cut also loses what is in flight, so probes sent from 990 ms on are lost.
    cat >"$TMP/scen" <<'EOF'
links 1
link 1 delay=10ms rate=50M
at 1000ms link 1 down
at 1500ms link 1 up
at 2000ms link 1 ul delay=40ms
EOF
    "$LAB" up --seed "$SEED" --scenario "$TMP/scen" --no-go >/dev/null
    probe "$TMP/s" --dev veh-l1 --count 1250 --interval-us 2000 --drain-ms 200 \
        --ctl /tmp/corridor-netlab/cl-nt/p1.sock --go
    check outage_gaps "$(kv gaps "$TMP/s")" 1 0
    check outage_start_ms "$(kv gap0_start_ms "$TMP/s")" 990 50
    check outage_end_ms "$(awk -v s="$(kv gap0_start_ms "$TMP/s")" -v d="$(kv gap0_dur_ms "$TMP/s")" 'BEGIN { print s + d }')" 1500 50
    # the later delay change: probes after 2000 ms see 40 ms
    probe "$TMP/s2" --dev veh-l1 --count 100 --interval-us 2000 --drain-ms 200
    check_rel scheduled_delay_ms "$(kv owd_mean_ms "$TMP/s2")" 40 5
    ;;
cut)
    "$LAB" up --seed "$SEED" --links 1 >/dev/null
    warm 1
    ctl 1 set delay=10ms rate=20M
    probe "$TMP/c" --dev veh-l1 --count 1000 --interval-us 2000 --drain-ms 200 \
        --ctl /tmp/corridor-netlab/cl-nt/p1.sock --cut-at 700 --restore-at 1300
    cut=$(kv cut_ms "$TMP/c")
    rest=$(kv restore_ms "$TMP/c")
    check cut_gaps "$(kv gaps "$TMP/c")" 1 0
    check cut_start_ms "$(kv gap0_start_ms "$TMP/c")" "$(awk -v c="$cut" 'BEGIN { print c - 10 }')" 50
    check cut_end_ms "$(awk -v s="$(kv gap0_start_ms "$TMP/c")" -v d="$(kv gap0_dur_ms "$TMP/c")" 'BEGIN { print s + d }')" "$rest" 50
    # SIGUSR2 toggles the same cut: a TCP transfer survives a 1 s cut and resumes
    "$LAB" exec veh iperf3 -c "$HUB" --bind-dev veh-l1 -t 5 -J >"$TMP/t.json" &
    ipid=$!
    sleep 1.5
    kill -USR2 "$(cat /tmp/corridor-netlab/cl-nt/p1.pid)"
    sleep 1
    kill -USR2 "$(cat /tmp/corridor-netlab/cl-nt/p1.pid)"
    wait $ipid
    got=$(jq -r '.end.sum_received.bits_per_second / 1e6' "$TMP/t.json")
    check tcp_survives_cut "$(awk -v g="$got" 'BEGIN { print (g > 5) }')" 1 0
    echo "INFO TCP goodput over 5 s with a 1 s cut: $got Mbit/s; down drops $(stat_field 1 ul down)"
    ;;
shared)
    # USB-modem mode: both vehicle interfaces are 10.201.200.2/24 behind gateway 10.201.200.1
    "$LAB" up --seed "$SEED" --links 2 --shared >/dev/null
    ctl 2 set rate=10M delay=5ms
    warm 1 2
    addrs=$("$LAB" exec veh ip -4 -o addr show | awk '$2 ~ /^veh-l/ {print $4}' | sort -u)
    check shared_same_address "$(echo "$addrs" | wc -l)" 1 0
    for k in 1 2; do
        ctl $k reset-stats
        probe "$TMP/p$k" --dev veh-l$k --count 200 --interval-us 1000 --drain-ms 200
        check shared_link${k}_received "$(kv received "$TMP/p$k")" 200 0
        # ARP may add a frame or two to the emulator's count
        check shared_link${k}_own_emulator "$(stat_field $k ul tx)" 201 2
    done
    got=$("$LAB" exec veh iperf3 -c "$HUB" --bind-dev veh-l2 -t 4 -O 1 -J |
        jq -r '.end.sum_received.bits_per_second / 1e6')
    check_rel shared_link2_tcp_mbps "$got" "$(awk 'BEGIN { printf "%.3f", 10 * 1448 / 1500 }')" 5
    ;;
control)
    # a bad scenario is refused before anything is created
    printf 'links 1\nlink 1 rate=fast\n' >"$TMP/bad.scn"
    rc=0
    "$LAB" up --seed "$SEED" --scenario "$TMP/bad.scn" >/dev/null 2>&1 || rc=$?
    check bad_scenario_refused "$rc" 2 0
    check bad_scenario_no_namespaces "$(ip netns list | grep -c '^cl-nt-' || true)" 0 0
    printf 'links 1\nlink 1 rate=5M delay=7ms\n' >"$TMP/ok.scn"
    "$LAB" up --seed "$SEED" --scenario "$TMP/ok.scn" >/dev/null
    E="$BIN/corridor-linkemu"
    S=/tmp/corridor-netlab/cl-nt/p1.sock
    rc=0
    "$E" --ctl-send "$S" "set rate=fast" >/dev/null || rc=$?
    check ctl_bad_value_is_error "$rc" 1 0
    rc=0
    "$E" --ctl-send "$S" "frobnicate" >/dev/null || rc=$?
    check ctl_unknown_is_error "$rc" 1 0
    rc=0
    "$E" --ctl-send "$S" "set $(head -c 3000 /dev/zero | tr '\0' x)" >/dev/null || rc=$?
    check ctl_overlong_is_error "$rc" 1 0
    # idle clients holding every slot cannot lock the driver out
    for _ in $(seq 12); do
        sleep 2 | socat - UNIX-CONNECT:"$S" >/dev/null 2>&1 &
    done
    sleep 0.3
    check ctl_after_idle_clients "$("$E" --ctl-send "$S" show | grep -c 'rate=5000000 delay=7000us')" 2 0
    # go restores the scenario's t = 0 parameters
    ctl 1 set rate=1M delay=1ms
    ctl 1 go
    check go_resets_params "$("$E" --ctl-send "$S" show | grep -c 'rate=5000000 delay=7000us')" 2 0
    # the emulator still forwards after all that
    warm 1
    probe "$TMP/c" --dev veh-l1 --count 50 --interval-us 2000 --drain-ms 100
    check ctl_then_forwarding "$(kv received "$TMP/c")" 50 0
    wait
    ;;
*)
    echo "unknown case $CASE" >&2
    exit 2
    ;;
esac

echo "netlab $CASE: $FAILS failed checks"
[[ $FAILS -eq 0 ]]
